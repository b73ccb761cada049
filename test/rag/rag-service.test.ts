/**
 * The RAG service over the 76 real articles with real embeddings (all-MiniLM-L6-v2) in the Qdrant stand-in and the
 * warehouse in FerretDB, with a scripted LLM for self-query, expansion and generation: author filter, lookup-only
 * self-query, merged and de-duplicated expansions, rerank order, the context's token budget, invalid LLM output,
 * traces with every span, evaluation samples, streaming, and dependencies that are down.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MongoClient, type Db } from 'mongodb';
import { createDependencies, type Dependencies } from '../../src/infra/dependencies';
import { createLogger } from '../../src/infra/logger';
import { gptTokenizer } from '../../src/infra/tokenizer';
import { createRagService, type RagService } from '../../src/rag/service';
import { RAG_PROMPT_VERSION } from '../../src/rag/prompt';
import type { Reranker } from '../../src/rag/reranker';
import { EVAL_SAMPLES_COLLECTION, SPAN_NAMES, TRACES_COLLECTION, type TraceRecord } from '../../src/rag/tracing';
import { RagError, type RagStreamEvent } from '../../src/rag/types';
import { testEnv, uniqueName } from '../support/env';
import { reply, startScriptedLlmServer, type ScriptedLlmServer } from '../support/scripted-llm-server';
import {
  buildFixtureCrossEncoder,
  closeRagFixtures,
  loadCorpus,
  MAXIME,
  PAUL,
  purposeOf,
  ragScript,
  ragSettings,
  type LoadedCorpus,
} from './helpers';

const database = uniqueName('rag');
const prefix = `${uniqueName('rag')}_`;

describe('RAG service over the real corpus', () => {
  let llm: ScriptedLlmServer;
  let deps: Dependencies;
  let corpus: LoadedCorpus;
  let mongo: MongoClient;
  let db: Db;
  const services: RagService[] = [];
  const names = () => ({ database, prefix, llmUrl: llm.url });

  function service(overrides: Record<string, string> = {}, options: { reranker?: Reranker | null } = {}) {
    const rag = createRagService(ragSettings(names(), overrides), { dependencies: deps, ...options });
    services.push(rag);
    return rag;
  }

  async function traceOf(rag: RagService, id: string): Promise<TraceRecord> {
    await rag.flushTraces();
    const trace = await db.collection<TraceRecord>(TRACES_COLLECTION).findOne({ _id: id });
    assert.ok(trace, `trace ${id} stored`);
    return trace;
  }

  before(async () => {
    llm = await startScriptedLlmServer(ragScript());
    deps = createDependencies(ragSettings(names()), createLogger({ level: 'error' }));
    corpus = await loadCorpus(database, deps);
    mongo = await MongoClient.connect(testEnv.mongoUri);
    db = mongo.db(database);
  });

  after(async () => {
    for (const rag of services) await rag.close();
    await closeRagFixtures(deps, mongo, database);
    await llm?.close();
  });

  test('the corpus is loaded: 76 articles of two authors, chunked and embedded', () => {
    assert.equal(corpus.documents, 76);
    assert.ok(corpus.chunks > 76, `${corpus.chunks} chunks`);
    assert.deepEqual(new Set(corpus.authorOfChunk.values()), new Set([MAXIME.id, PAUL.id]));
  });

  test('self-query finds the author named in the question and every source is that author’s', async () => {
    const rag = service();
    for (const [author, question] of [
      [MAXIME, `What does ${MAXIME.name} say about removing the refusal direction of a model?`],
      [PAUL, `How does ${PAUL.name} use Pulumi for infrastructure as code?`],
    ] as const) {
      const answer = await rag.answer({ query: question, k: 5 });
      assert.deepEqual(answer.author, author);
      assert.equal(answer.sources.length, 5);
      for (const source of answer.sources) {
        assert.equal(source.authorId, author.id, `source ${source.title} is by ${source.authorName}`);
        assert.equal(corpus.authorOfChunk.get(source.chunkId), author.id);
        assert.ok(source.platform, 'sources carry their platform');
        assert.ok(source.link?.startsWith('http'), 'sources carry their link');
        assert.ok(source.title, 'sources carry their title');
      }
      assert.equal(answer.answer, 'A scripted answer [1].');
      assert.equal(answer.model, 'scripted-llm');
    }
  });

  test('the author filter changes what is found: the same question without a name searches both authors', async () => {
    const rag = service();
    const question = 'How do you fine-tune and deploy a large language model?';
    const both = await rag.answer({ query: question, k: 10 });
    assert.equal(both.author, undefined);
    const authors = new Set(both.sources.map((s) => s.authorId));
    assert.equal(authors.size, 2, 'an unfiltered search over this question finds both authors');
    const maxime = await rag.answer({ query: question, author: 'maxime labonne', k: 10 });
    assert.deepEqual(maxime.author, MAXIME);
    assert.ok(maxime.sources.every((s) => s.authorId === MAXIME.id));
  });

  test('the retrieved article is the one the question is about (retrieval quality on the corpus)', async () => {
    const rag = service();
    const answer = await rag.answer({
      query: `${MAXIME.name}: how can you find and remove the refusal direction so a model stops refusing harmful requests?`,
      k: 3,
    });
    assert.ok(
      answer.sources.some((s) => /abliteration/i.test(s.title ?? '')),
      answer.sources.map((s) => s.title).join(' | '),
    );
  });

  test('self-query only looks authors up: unknown names are never created', async () => {
    const rag = service();
    const before = await db.collection('users').countDocuments();
    const answer = await rag.answer({ query: 'What would Ada Lovelace say about graph neural networks?' });
    assert.equal(answer.author, undefined, 'an unknown name means no filter');
    const trace = await traceOf(rag, answer.traceId);
    const span = trace.spans.find((s) => s.name === 'self_query')!;
    assert.equal(span.attributes.extracted, 'Ada Lovelace');
    assert.equal(span.attributes.found, false);
    await assert.rejects(
      rag.answer({ query: 'graph neural networks', author: 'Ada Lovelace' }),
      (error: unknown) =>
        error instanceof RagError && error.code === 'bad_request' && /unknown author/.test(error.message),
    );
    assert.equal(await db.collection('users').countDocuments(), before);
    assert.equal(await db.collection('users').countDocuments({ first_name: 'Ada' }), 0);
  });

  test('expansion: the original and N−1 rewrites are embedded in one batch, searched, merged and de-duplicated', async () => {
    const rag = service({ RAG_EXPANSIONS: '3', RAG_SEARCH_LIMIT: '8' });
    const requestsBefore = llm.requests.length;
    const answer = await rag.answer({ query: `${PAUL.name} on feature stores for LLM systems`, k: 50 });
    const mine = llm.requests.slice(requestsBefore);
    assert.equal(mine.filter((r) => purposeOf(r) === 'expansion').length, 1, 'one expansion call');
    const trace = await traceOf(rag, answer.traceId);
    const expansion = trace.spans.find((s) => s.name === 'expansion')!;
    assert.equal((expansion.attributes.queries as string[]).length, 3);
    const embed = trace.spans.find((s) => s.name === 'embed')!;
    assert.equal(embed.attributes.texts, 3);
    assert.equal(embed.attributes.batches, 1);
    const search = trace.spans.find((s) => s.name === 'search')!;
    // 3 queries × 8 per collection over articles (posts and repositories are empty)
    assert.equal(search.attributes.hits, 24);
    const unique = search.attributes.unique as number;
    assert.ok(unique < 24, `rewrites of one question overlap: ${unique} unique of 24`);
    assert.equal(search.attributes.duplicates, 24 - unique);
    assert.equal(answer.sources.length <= unique, true);
    assert.equal(new Set(answer.sources.map((s) => s.chunkId)).size, answer.sources.length, 'no chunk twice');
    // merged by best score, best first
    for (let i = 1; i < answer.sources.length; i++) assert.ok(answer.sources[i - 1]!.score >= answer.sources[i]!.score);
  });

  test('invalid LLM output: expansion falls back to the original query, self-query to no author, both in the trace', async () => {
    const rag = service({ RAG_EXPANSIONS: '4' });
    llm.setScript(
      ragScript({
        selfQuery: () => reply.text('I think the author might be someone famous'),
        expansion: () => reply.text('Sure! Here are some rewrites: 1. foo 2. bar'),
      }),
    );
    try {
      const answer = await rag.answer({ query: `${MAXIME.name} on GPTQ quantization` });
      assert.equal(answer.author, undefined);
      const trace = await traceOf(rag, answer.traceId);
      const expansion = trace.spans.find((s) => s.name === 'expansion')!;
      assert.deepEqual(expansion.attributes.queries, [`${MAXIME.name} on GPTQ quantization`]);
      assert.match(String(expansion.attributes.fallback), /invalid output/);
      const selfQuery = trace.spans.find((s) => s.name === 'self_query')!;
      assert.match(String(selfQuery.attributes.invalidOutput), /not JSON/);
      assert.equal(trace.spans.find((s) => s.name === 'embed')!.attributes.texts, 1);
      assert.ok(answer.sources.length > 0, 'still answers from the original query');
    } finally {
      llm.setScript(ragScript());
    }
  });

  test('rerank reorders the candidates by the reranker’s scores and keeps the top k', async () => {
    // A reranker that prefers passages mentioning "quantization" (deterministic stand-in for a cross-encoder;
    // test/rag/reranker.test.ts runs the real one).
    const calls: { query: string; passages: number }[] = [];
    const keyword: Reranker = {
      modelId: 'test/keyword-reranker',
      score(query, passages) {
        calls.push({ query, passages: passages.length });
        return Promise.resolve(passages.map((p) => (p.match(/quantiz/gi) ?? []).length));
      },
      close: () => Promise.resolve(),
    };
    const query = `${MAXIME.name}: fine-tuning models on a single GPU`;
    const plain = await service({ RAG_EXPANSIONS: '1' }).answer({ query, k: 4 });
    const reranked = await service({ RAG_EXPANSIONS: '1' }, { reranker: keyword }).answer({ query, k: 4 });
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.query, query);
    assert.ok(calls[0]!.passages >= 4);
    const counts = reranked.sources.map((s) => (s.text.match(/quantiz/gi) ?? []).length);
    assert.deepEqual(
      counts,
      [...counts].sort((a, b) => b - a),
      'sorted by the reranker’s score',
    );
    assert.deepEqual(
      reranked.sources.map((s) => s.score),
      counts,
      'scores are the reranker’s',
    );
    assert.notDeepEqual(
      reranked.sources.map((s) => s.chunkId),
      plain.sources.map((s) => s.chunkId),
      'rerank changed the order / the top k',
    );
    const trace = await traceOf(services.at(-1)!, reranked.traceId);
    const rerank = trace.spans.find((s) => s.name === 'rerank')!;
    assert.equal(rerank.status, 'ok');
    assert.equal(rerank.model, 'test/keyword-reranker');
    assert.equal(trace.models.reranker, 'test/keyword-reranker');
    const plainTrace = await traceOf(services.at(-2)!, plain.traceId);
    assert.equal(plainTrace.spans.find((s) => s.name === 'rerank')!.status, 'skipped');
  });

  test('with RAG_RERANKER=cross-encoder the ONNX cross-encoder reorders the candidates by its scores', async () => {
    const dir = join(mkdtempSync(join(testEnv.tmpDir, 'rag-ce-')), 'cross-encoder');
    buildFixtureCrossEncoder(dir, [['q', 'p']]);
    const rag = service({ RAG_RERANKER: 'cross-encoder', RAG_RERANKER_MODEL_DIR: dir, RAG_EXPANSIONS: '1' });
    const query = `${MAXIME.name}: how do you quantize a model to 4 bits?`;
    const plain = await service({ RAG_EXPANSIONS: '1' }).answer({ query, k: 50 });
    const reranked = await rag.answer({ query, k: 50 });
    // the same candidates, in the cross-encoder's order, with its scores
    assert.deepEqual(reranked.sources.map((s) => s.chunkId).sort(), plain.sources.map((s) => s.chunkId).sort());
    const reranker = (await rag.reranker())!;
    const direct = await reranker.score(
      query,
      reranked.sources.map((s) => s.text),
    );
    reranked.sources.forEach((s, i) => assert.ok(Math.abs(s.score - direct[i]!) < 1e-3));
    for (let i = 1; i < reranked.sources.length; i++)
      assert.ok(reranked.sources[i - 1]!.score >= reranked.sources[i]!.score);
    assert.notDeepEqual(
      reranked.sources.map((s) => s.chunkId),
      plain.sources.map((s) => s.chunkId),
    );
    const trace = await traceOf(rag, reranked.traceId);
    const span = trace.spans.find((s) => s.name === 'rerank')!;
    assert.equal(span.status, 'ok');
    assert.equal(span.model, `${dir}-source`);
    assert.ok((span.attributes.moved as number) > 0);
  });

  test('the context stays within the token budget, with source metadata', async () => {
    const budget = 300;
    const rag = service({ RAG_CONTEXT_TOKENS: String(budget) });
    const before = llm.requests.length;
    const answer = await rag.answer({ query: `${PAUL.name}: what is an LLM twin?`, k: 10 });
    const generation = llm.requests.slice(before).find((r) => purposeOf(r) === 'generation')!;
    const user = generation.body.messages.at(-1)!.content;
    const context = user.slice('Context:\n'.length, user.lastIndexOf('\n\nQuestion: '));
    const tokens = gptTokenizer().count(context);
    assert.ok(tokens <= budget, `context of ${tokens} tokens within ${budget}`);
    assert.ok(tokens > budget / 2, `the budget is used (${tokens} tokens)`);
    assert.ok(answer.sources.length < 10, `${answer.sources.length} sources fit`);
    assert.match(context, /^\[1\] title: .+ \| author: Paul Iusztin \| platform: [\w.]+ \| link: https?:\/\//);
    assert.match(user, /\n\nQuestion: Paul Iusztin: what is an LLM twin\?$/);
    const trace = await traceOf(rag, answer.traceId);
    const span = trace.spans.find((s) => s.name === 'generation')!;
    assert.ok((span.attributes.contextTokens as number) <= budget);
  });

  test('history turns are passed to the model before the question', async () => {
    const rag = service();
    const before = llm.requests.length;
    await rag.answer({
      query: 'And how does he deploy it?',
      author: PAUL.name,
      history: [
        { role: 'user', content: 'What is an LLM twin?' },
        { role: 'assistant', content: 'An AI character that writes like you.' },
      ],
    });
    const generation = llm.requests.slice(before).find((r) => purposeOf(r) === 'generation')!;
    assert.deepEqual(
      generation.body.messages.map((m) => m.role),
      ['system', 'user', 'assistant', 'user'],
    );
    assert.equal(generation.body.messages[1]!.content, 'What is an LLM twin?');
  });

  test('every request is traced with all spans, latencies, tokens, models and the prompt version — never a key', async () => {
    const rag = service({ RAG_EVAL_SAMPLE_RATE: '1' });
    const answer = await rag.answer(
      { query: `${MAXIME.name} on decoding strategies`, k: 3 },
      { apiKeyId: 'key-ops-1' },
    );
    const trace = await traceOf(rag, answer.traceId);
    assert.deepEqual(trace.spans.map((s) => s.name).sort(), [...SPAN_NAMES].sort());
    for (const span of trace.spans) {
      assert.equal(typeof span.latencyMs, 'number');
      assert.ok(span.startedAt instanceof Date);
    }
    const byName = Object.fromEntries(trace.spans.map((s) => [s.name, s]));
    assert.equal(byName.self_query!.inputTokens, 60);
    assert.equal(byName.self_query!.outputTokens, 8);
    assert.equal(byName.expansion!.inputTokens, 80);
    assert.equal(byName.generation!.inputTokens, 900);
    assert.equal(byName.generation!.outputTokens, 7);
    assert.equal(byName.generation!.model, 'scripted-llm');
    assert.equal(byName.embed!.model, 'sentence-transformers/all-MiniLM-L6-v2');
    assert.equal(trace.status, 'ok');
    assert.equal(trace.promptTemplateVersion, RAG_PROMPT_VERSION);
    assert.deepEqual(trace.usage, { inputTokens: 60 + 80 + 900, outputTokens: 8 + 40 + 7 });
    assert.equal(trace.apiKeyId, 'key-ops-1');
    assert.deepEqual(trace.author, MAXIME);
    assert.equal(trace.sources.length, answer.sources.length);
    assert.equal(trace.answer, answer.answer);
    assert.ok(!JSON.stringify(trace).includes('not-needed'), 'no key material');
    // sampled into the evaluation set
    assert.equal(trace.sampledForEval, true);
    const sample = await db.collection(EVAL_SAMPLES_COLLECTION).findOne({ traceId: answer.traceId });
    assert.ok(sample);
    assert.equal(sample.question, `${MAXIME.name} on decoding strategies`);
    assert.equal(sample.answer, answer.answer);
    assert.equal(sample.author, MAXIME.name);
    assert.deepEqual(
      sample.contexts,
      answer.sources.map((s) => s.text),
    );
    // rate 0 (default): not sampled
    const other = service();
    const unsampled = await other.answer({ query: 'quantization' });
    await other.flushTraces();
    assert.equal(await db.collection(EVAL_SAMPLES_COLLECTION).countDocuments({ traceId: unsampled.traceId }), 0);
  });

  test('stream: sources, then tokens, then done — from an SSE server and from one that does not stream', async () => {
    // an OpenAI-compatible server that streams three deltas and usage
    const sse: Server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (const piece of ['Hello', ' from', ' the twin']) {
          res.write(
            `data: ${JSON.stringify({ model: 'sse-model', choices: [{ index: 0, delta: { content: piece } }] })}\n\n`,
          );
        }
        res.write(
          `data: ${JSON.stringify({ model: 'sse-model', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`,
        );
        res.write(
          `data: ${JSON.stringify({ model: 'sse-model', choices: [], usage: { prompt_tokens: 321, completion_tokens: 3 } })}\n\n`,
        );
        res.end('data: [DONE]\n\n');
      });
    });
    await new Promise<void>((resolve) => sse.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(sse.address() as AddressInfo).port}/v1`;
      const rag = service({ RAG_GENERATOR_BASE_URL: url, RAG_GENERATOR_MODEL: 'sse-model' });
      const events: RagStreamEvent[] = [];
      for await (const event of rag.stream({ query: `${PAUL.name} on RAG`, k: 2 })) events.push(event);
      assert.deepEqual(
        events.map((e) => e.type),
        ['sources', 'token', 'token', 'token', 'done'],
      );
      const first = events[0] as Extract<RagStreamEvent, { type: 'sources' }>;
      assert.equal(first.sources.length, 2);
      assert.deepEqual(first.author, PAUL);
      const done = events.at(-1) as Extract<RagStreamEvent, { type: 'done' }>;
      assert.equal(done.answer.answer, 'Hello from the twin');
      assert.deepEqual(done.answer.usage, { inputTokens: 321, outputTokens: 3 });
      assert.equal(done.answer.traceId, first.traceId);
      const trace = await traceOf(rag, first.traceId);
      assert.equal(trace.stream, true);
      assert.equal(trace.spans.find((s) => s.name === 'generation')!.attributes.tokenEvents, 3);

      // the scripted server answers `stream: true` with one JSON completion: one token event
      const plain = service();
      const types: string[] = [];
      for await (const event of plain.stream({ query: 'What is an LLM twin?' })) types.push(event.type);
      assert.deepEqual(types, ['sources', 'token', 'done']);
    } finally {
      sse.closeAllConnections();
      await new Promise<void>((resolve) => sse.close(() => resolve()));
    }
  });

  test('the endpoint generator answers with what the endpoints collection names', async () => {
    await db.collection('endpoints').insertOne({
      _id: 'twin-test' as never,
      backend: 'local',
      status: 'InService',
      url: llm.url,
      modelVersion: 'sft-2026-11-27-abc',
    });
    const rag = service({ RAG_GENERATOR: 'endpoint', RAG_ENDPOINT_NAME: 'twin-test' });
    const answer = await rag.answer({ query: 'What is an LLM twin?' });
    assert.equal(answer.model, 'sft-2026-11-27-abc');
    assert.equal((await rag.ready()).llm!.ok, true);
    const missing = service({ RAG_GENERATOR: 'endpoint', RAG_ENDPOINT_NAME: 'no-such-endpoint' });
    await assert.rejects(
      missing.answer({ query: 'What is an LLM twin?' }),
      (e: unknown) => e instanceof RagError && e.code === 'dependency_unavailable' && e.dependency === 'llm',
    );
    assert.equal((await missing.ready()).llm!.ok, false);
  });

  test('retrieval latency per span over the corpus (reported as diagnostics, not asserted)', async (t) => {
    const rag = service({ RAG_EXPANSIONS: '3', RAG_SELF_QUERY: 'true' });
    const questions = [
      `${MAXIME.name}: how does GPTQ quantize weights?`,
      'What is the difference between LoRA and QLoRA?',
      `${PAUL.name}: how to design a feature pipeline?`,
      'How do graph attention networks work?',
      'Why use a vector database for RAG?',
    ];
    const spans: Record<string, number[]> = {};
    const retrieval: number[] = [];
    for (let round = 0; round < 4; round++) {
      for (const query of questions) {
        const answer = await rag.answer({ query, k: 5 });
        const trace = await traceOf(rag, answer.traceId);
        for (const span of trace.spans) (spans[span.name] ??= []).push(span.latencyMs);
        const generation = trace.spans.find((s) => s.name === 'generation')!;
        retrieval.push(trace.latencyMs - generation.latencyMs);
      }
    }
    const quantile = (values: number[], q: number) => {
      const sorted = [...values].sort((a, b) => a - b);
      return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    };
    for (const [name, values] of Object.entries(spans)) {
      assert.equal(values.length, 20);
      t.diagnostic(`${name}: p50 ${quantile(values, 0.5).toFixed(1)} ms, p95 ${quantile(values, 0.95).toFixed(1)} ms`);
    }
    t.diagnostic(
      `retrieval (all but generation, scripted LLM): p50 ${quantile(retrieval, 0.5).toFixed(1)} ms, p95 ${quantile(retrieval, 0.95).toFixed(1)} ms`,
    );
  });

  test('bad requests are RagError bad_request', async () => {
    const rag = service();
    for (const request of [
      { query: '' },
      { query: '   ' },
      { query: 'x', k: 0 },
      { query: 'x', k: 1000 },
      { query: 'x'.repeat(5000) },
    ]) {
      await assert.rejects(
        rag.answer(request),
        (e: unknown) => e instanceof RagError && e.code === 'bad_request',
        JSON.stringify(request).slice(0, 60),
      );
    }
  });

  test('ready() names qdrant, mongodb and llm', async () => {
    const checks = await service().ready();
    assert.deepEqual(Object.keys(checks).sort(), ['llm', 'mongodb', 'qdrant']);
    for (const [name, check] of Object.entries(checks)) assert.equal(check.ok, true, `${name}: ${check.error}`);
  });

  describe('dependencies down → RagError dependency_unavailable', () => {
    const closedPort = async (): Promise<number> => {
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      await new Promise<void>((resolve) => server.close(() => resolve()));
      return port;
    };

    async function expectDown(overrides: Record<string, string>, dependency: string, readyKey: string) {
      const settings = ragSettings(names(), { ...overrides });
      const own = createDependencies(settings, createLogger({ level: 'error' }));
      const rag = createRagService(settings, { dependencies: own });
      try {
        await assert.rejects(
          rag.answer({ query: `${MAXIME.name} on quantization` }),
          (e: unknown) => e instanceof RagError && e.code === 'dependency_unavailable' && e.dependency === dependency,
        );
        const checks = await rag.ready();
        assert.equal(checks[readyKey]!.ok, false, `ready() reports ${readyKey} down`);
        assert.ok(checks[readyKey]!.error);
      } finally {
        await rag.close();
        await own.close();
      }
    }

    test('Qdrant', async () => {
      await expectDown({ QDRANT_URL: `http://127.0.0.1:${await closedPort()}` }, 'qdrant', 'qdrant');
    });
    test('MongoDB', async () => {
      await expectDown({ MONGODB_URI: `mongodb://127.0.0.1:${await closedPort()}/` }, 'mongodb', 'mongodb');
    });
    test('the LLM', async () => {
      await expectDown({ OPENAI_BASE_URL: `http://127.0.0.1:${await closedPort()}/v1` }, 'llm', 'llm');
    });
    test('the generation backend alone (HTTP 503) → llm; an HTTP 400 → model_error', async () => {
      const rag = service();
      llm.setScript(ragScript({ generation: () => reply.error(503, 'overloaded') }));
      try {
        await assert.rejects(
          rag.answer({ query: 'quantization' }),
          (e: unknown) => e instanceof RagError && e.code === 'dependency_unavailable' && e.dependency === 'llm',
        );
        llm.setScript(ragScript({ generation: () => reply.error(400, 'context too long') }));
        const failed = await rag.answer({ query: 'quantization' }).catch((e: unknown) => e);
        assert.ok(failed instanceof RagError && failed.code === 'model_error', String(failed));
      } finally {
        llm.setScript(ragScript());
      }
      const stored = await rag
        .flushTraces()
        .then(() => db.collection<TraceRecord>(TRACES_COLLECTION).find({ status: 'error' }).toArray());
      assert.ok(
        stored.some((t) => t.error?.code === 'model_error'),
        'failed requests are traced too',
      );
      const failedTrace = stored.find((t) => t.error?.code === 'model_error')!;
      assert.equal(failedTrace.spans.find((s) => s.name === 'generation')!.status, 'error');
    });
  });
});
