/**
 * The RAG API over the real RAG service (src/rag/service.ts): the 76 real articles imported into a MongoDB database
 * of this file's own and run through the feature library (clean → chunk → real all-MiniLM-L6-v2 embeddings) into
 * Qdrant collections under this file's own prefix; generation, self-query and expansion by the scripted
 * OpenAI-compatible server. Acceptance of issue 8: a question about one author's article, asked with that author's
 * name, is answered from that author's chunks through both POST /rag and POST /v1/chat/completions. Also: streaming
 * over the real service, traces carry the key id and never the key, readiness, dependencies down (Qdrant, MongoDB,
 * the LLM on closed ports → 503 naming it), `node dist`-style process entry via `twin serve`, and `twin ask`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MongoClient, type Db } from 'mongodb';
import OpenAI from 'openai';
import { apiKeyId } from '../../src/api/auth';
import { startApiServer, type ApiServer } from '../../src/api/server';
import type { Settings } from '../../src/config';
import { createDependencies, type Dependencies } from '../../src/infra/dependencies';
import { createLogger } from '../../src/infra/logger';
import { createRagService, type RagService } from '../../src/rag/service';
import { TRACES_COLLECTION, type TraceRecord } from '../../src/rag/tracing';
import type { RagAnswer, RagSource, RagStreamEvent } from '../../src/rag/types';
import { runTwin, startTwin } from '../support/cli';
import { uniqueName } from '../support/env';
import { startScriptedLlmServer, type ScriptedLlmServer } from '../support/scripted-llm-server';
import { loadCorpus, MAXIME, PAUL, purposeOf, ragScript, ragSettings, type LoadedCorpus } from '../rag/helpers';
import { KEY, postJson, readEvents } from './helpers';

interface Question {
  question: string;
  author: string;
  title: string;
}

const questions = JSON.parse(
  readFileSync(join(__dirname, '..', 'features', 'fixtures', 'retrieval-questions.json'), 'utf8'),
) as Question[];
const paulQuestion = questions.find((q) => q.author === PAUL.name)!;
const maximeQuestion = questions.find((q) => q.author === MAXIME.name)!;

const database = uniqueName('api');
const prefix = `${uniqueName('api')}_`;

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('RAG API over the real RAG service and the real corpus', () => {
  let llm: ScriptedLlmServer;
  let deps: Dependencies;
  let corpus: LoadedCorpus;
  let mongo: MongoClient;
  let db: Db;
  let settings: Settings;
  let rag: RagService;
  let server: ApiServer;
  const extraServers: ApiServer[] = [];

  const settingsWith = (overrides: Record<string, string> = {}) =>
    ragSettings(
      { database, prefix, llmUrl: llm.url },
      { API_KEYS: KEY, API_RATE_LIMIT: '10000', RAG_EXPANSIONS: '2', ...overrides },
    );

  before(async () => {
    llm = await startScriptedLlmServer(ragScript());
    settings = settingsWith();
    deps = createDependencies(settings, createLogger({ level: 'error' }));
    corpus = await loadCorpus(database, deps);
    mongo = await MongoClient.connect(settings.mongo.uri!.reveal());
    db = mongo.db(database);
    rag = createRagService(settings, { dependencies: deps });
    server = await startApiServer(settings, { engine: rag, host: '127.0.0.1', port: 0 });
  });

  after(async () => {
    await server?.close();
    for (const extra of extraServers) await extra.close();
    await deps
      ?.vectorStore()
      .dropCollections()
      .catch(() => undefined);
    await db?.dropDatabase().catch(() => undefined);
    await mongo?.close();
    await deps?.close();
    await llm?.close();
  });

  function assertFromAuthor(sources: RagSource[], author: { id: string; name: string }, title: string) {
    assert.ok(sources.length > 0, 'has sources');
    for (const s of sources) {
      assert.equal(s.authorId, author.id, `source ${s.chunkId} (${s.title}) is by ${s.authorName}, not ${author.name}`);
      assert.equal(corpus.authorOfChunk.get(s.chunkId), author.id, `${s.chunkId} is a stored chunk of the author`);
    }
    assert.ok(
      sources.some((s) => s.title === title),
      `"${title}" among the sources: ${sources.map((s) => s.title).join(' | ')}`,
    );
  }

  test("acceptance: POST /rag answers a question about an author's article from that author's chunks", async () => {
    for (const q of [paulQuestion, maximeQuestion]) {
      const author = q.author === PAUL.name ? PAUL : MAXIME;
      // the author named in the question (self-query) …
      const named = await postJson(`${server.url}/rag`, { query: `${author.name}: ${q.question}` });
      assert.equal(named.status, 200, JSON.stringify(named.body));
      const answer = named.body as unknown as RagAnswer;
      assertFromAuthor(answer.sources, author, q.title);
      assert.deepEqual(answer.author, author);
      assert.equal(answer.answer, 'A scripted answer [1].');
      assert.match(answer.traceId, /\S/);
      // … and given as the author field
      const given = await postJson(`${server.url}/rag`, { query: q.question, author: author.name, k: 3 });
      assert.equal(given.status, 200);
      assert.equal((given.body.sources as RagSource[]).length, 3);
      assertFromAuthor(given.body.sources as RagSource[], author, q.title);
    }
    // the generator was given the retrieved context
    const generation = llm.requests.filter((r) => purposeOf(r) === 'generation').at(-1)!;
    assert.ok(generation.body.messages.some((m) => m.content.includes(maximeQuestion.question)));
  });

  test('acceptance: /v1/chat/completions with the real openai client answers from the named author, streaming too', async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const completion = await client.chat.completions.create({
      model: `twin:${PAUL.name}`,
      messages: [{ role: 'user', content: paulQuestion.question }],
    });
    assert.equal(completion.choices[0]!.message.content, 'A scripted answer [1].');
    const extended = completion as unknown as { sources: RagSource[]; trace_id: string };
    assertFromAuthor(extended.sources, PAUL, paulQuestion.title);
    assert.ok(completion.usage!.prompt_tokens > 0);

    const stream = await client.chat.completions.create({
      model: 'twin',
      messages: [
        { role: 'user', content: 'Who writes about fine-tuning?' },
        { role: 'assistant', content: 'Several people.' },
        { role: 'user', content: maximeQuestion.question },
      ],
      metadata: { author: MAXIME.name },
      stream: true,
    });
    let text = '';
    let sources: RagSource[] = [];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      const extra = chunk as unknown as { sources?: RagSource[] };
      if (extra.sources) sources = extra.sources;
    }
    assert.equal(text, 'A scripted answer [1].');
    assertFromAuthor(sources, MAXIME, maximeQuestion.title);
  });

  test('POST /rag stream over the real service: sources, tokens, done; the stored trace has the key id, never the key', async () => {
    const response = await fetch(`${server.url}/rag`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: paulQuestion.question, author: PAUL.name, stream: true }),
    });
    assert.equal(response.status, 200);
    const events = (await readEvents(response)).map((e) => ({
      name: e.event,
      data: JSON.parse(e.data) as RagStreamEvent,
    }));
    assert.equal(events[0]!.name, 'sources');
    assert.equal(events.at(-1)!.name, 'done');
    assert.ok(events.slice(1, -1).every((e) => e.name === 'token'));
    const first = events[0]!.data;
    const done = events.at(-1)!.data;
    assert.ok(first.type === 'sources' && done.type === 'done');
    assertFromAuthor(first.sources, PAUL, paulQuestion.title);
    assert.equal(
      events
        .slice(1, -1)
        .map((e) => (e.data.type === 'token' ? e.data.text : ''))
        .join(''),
      done.answer.answer,
    );

    await rag.flushTraces();
    const trace = await db.collection<TraceRecord>(TRACES_COLLECTION).findOne({ _id: first.traceId });
    assert.ok(trace, 'trace stored');
    assert.equal(trace.apiKeyId, apiKeyId(KEY));
    assert.equal(trace.stream, true);
    assert.ok(!JSON.stringify(trace).includes(KEY), 'the key itself is never stored');
  });

  test('auth and validation in front of the real service; nothing reaches the LLM', async () => {
    const before = llm.requests.length;
    assert.equal((await postJson(`${server.url}/rag`, { query: 'q' }, {})).status, 401);
    assert.equal((await postJson(`${server.url}/rag`, { query: 'q' }, { authorization: 'Bearer nope' })).status, 401);
    assert.equal((await postJson(`${server.url}/rag`, { query: 'q', k: 51 })).status, 400);
    assert.equal((await postJson(`${server.url}/rag`, { query: 'x'.repeat(70_000) })).status, 413);
    assert.equal(llm.requests.length, before);
  });

  test('GET /ready is 200 with Qdrant, MongoDB and the LLM up', async () => {
    const ready = await fetch(`${server.url}/ready`);
    const body = (await ready.json()) as { status: string; checks: Record<string, { ok: boolean }> };
    assert.equal(ready.status, 200, JSON.stringify(body));
    assert.deepEqual(Object.keys(body.checks).sort(), ['llm', 'mongodb', 'qdrant']);
  });

  for (const dependency of ['qdrant', 'mongodb', 'llm'] as const) {
    test(`${dependency} on a closed port: /rag, /v1/chat/completions and /ready answer 503 naming it`, async () => {
      const port = await closedPort();
      const overrides: Record<string, string> = {
        qdrant: { QDRANT_URL: `http://127.0.0.1:${port}` },
        mongodb: { MONGODB_URI: `mongodb://127.0.0.1:${port}/?serverSelectionTimeoutMS=1000&connectTimeoutMS=1000` },
        llm: { OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1`, RAG_SELF_QUERY: 'false', RAG_EXPANSIONS: '1' },
      }[dependency];
      // the server creates its own RAG service from the settings, as the process entry does
      const down = await startApiServer(settingsWith(overrides), { host: '127.0.0.1', port: 0 });
      extraServers.push(down);
      const res = await postJson(`${down.url}/rag`, { query: paulQuestion.question, author: PAUL.name });
      assert.equal(res.status, 503, JSON.stringify(res.body));
      const error = res.body.error as { code: string; dependency: string; message: string };
      assert.equal(error.code, 'dependency_unavailable');
      assert.equal(error.dependency, dependency);
      assert.ok(!/\n\s+at /.test(error.message), 'no stack trace');
      const chat = await postJson(`${down.url}/v1/chat/completions`, {
        model: `twin:${PAUL.name}`,
        messages: [{ role: 'user', content: paulQuestion.question }],
      });
      assert.equal(chat.status, 503);
      const streamed = await fetch(`${down.url}/rag`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query: paulQuestion.question, author: PAUL.name, stream: true }),
      });
      if (dependency === 'llm') {
        // retrieval worked, so the sources went out before generation failed: the stream ends with an error event
        assert.equal(streamed.status, 200);
        const events = await readEvents(streamed);
        assert.deepEqual(
          events.map((e) => e.event),
          ['sources', 'error'],
        );
        const last = JSON.parse(events[1]!.data) as { error: { code: string; dependency: string } };
        assert.equal(last.error.code, 'dependency_unavailable');
        assert.equal(last.error.dependency, 'llm');
      } else {
        assert.equal(streamed.status, 503);
        assert.equal(((await streamed.json()) as { error: { dependency: string } }).error.dependency, dependency);
      }
      const ready = await fetch(`${down.url}/ready`);
      assert.equal(ready.status, 503);
      const body = (await ready.json()) as { checks: Record<string, { ok: boolean }>; error: { dependency: string } };
      assert.equal(body.checks[dependency]!.ok, false);
      assert.equal(body.error.dependency, dependency);
      assert.equal((await fetch(`${down.url}/health`)).status, 200, 'liveness does not depend on anything');
    });
  }

  test('twin ask prints the answer and its sources; --stream prints tokens; a wrong key fails with the API error', async () => {
    const env = { ...process.env, API_KEYS: KEY, LOG_LEVEL: 'error' };
    const asked = await runTwin(['ask', paulQuestion.question, '--author', PAUL.name, '--url', server.url], env);
    assert.equal(asked.code, 0, asked.stderr);
    assert.match(asked.stdout, /^A scripted answer \[1\]\./);
    assert.match(asked.stdout, /Sources:\n {2}\[1\] .+ — Paul Iusztin \(/);
    assert.ok(asked.stdout.includes(paulQuestion.title), asked.stdout);
    assert.match(asked.stdout, /trace \S+ {2}model scripted-llm {2}author Paul Iusztin/);

    const streamed = await runTwin(
      ['ask', paulQuestion.question, '-a', PAUL.name, '--stream', '--url', server.url],
      env,
    );
    assert.equal(streamed.code, 0, streamed.stderr);
    assert.match(streamed.stdout, /^A scripted answer \[1\]\.\n\nSources:/);

    const wrong = await runTwin(['ask', 'q', '--url', server.url, '--api-key', 'nope'], env);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /401 unauthorized: invalid API key/);

    const nothing = await runTwin(['ask', 'q', '--url', `http://127.0.0.1:${await closedPort()}`], env);
    assert.equal(nothing.code, 1);
    assert.match(nothing.stderr, /no RAG API at .*twin serve/);
  });

  test('twin serve runs the API with the settings and stops on SIGTERM; it refuses to start without keys', async () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      MONGODB_URI: settings.mongo.uri!.reveal(),
      MONGODB_DATABASE: database,
      QDRANT_URL: settings.qdrant.url,
      QDRANT_COLLECTION_PREFIX: prefix,
      OPENAI_BASE_URL: llm.url,
      LLM_MODEL: 'scripted-llm',
      EMBEDDING_MODEL_DIR: settings.embedding.modelDir,
      RAG_RERANKER: 'none',
      API_KEYS: KEY,
      LOG_LEVEL: 'error',
    };
    const { child, output } = await startTwin(['serve', '--port', '0'], env, /RAG API listening on (http:\S+)/);
    try {
      const url = /RAG API listening on (http:\S+)/.exec(output())![1]!;
      assert.equal((await fetch(`${url}/health`)).status, 200);
      const res = await postJson(`${url}/rag`, { query: paulQuestion.question, author: PAUL.name });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assertFromAuthor(res.body.sources as RagSource[], PAUL, paulQuestion.title);
    } finally {
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    }
    const refused = await runTwin(['serve', '--port', '0'], { ...env, API_KEYS: '' });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /API_KEYS: no API keys configured.*API_ALLOW_NO_KEYS=true/s);
  });
});
