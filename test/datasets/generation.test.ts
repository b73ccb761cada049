/**
 * Generation against a scripted OpenAI-compatible server: the counts of extracts, completions, HTTP requests,
 * samples and drop reasons must come out exactly as scripted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildDataset } from '../../src/datasets/build';
import { generateAnswers, MemoryAnswerStore } from '../../src/datasets/generation';
import type { Extract, PreferenceTriple } from '../../src/datasets/types';
import { responseSchema } from '../../src/datasets/validation';
import { LlmClient, responseJsonSchema } from '../../src/infra/llm';
import { extractOf, reply, startScriptedLlmServer, type ScriptedLlmServer } from '../support/scripted-llm-server';
import { goodPairs, goodTriples, markerOf, syntheticExtract } from './helpers';

const FAST = { retryBaseDelayMs: 10 };

function client(server: ScriptedLlmServer, extra: Partial<ConstructorParameters<typeof LlmClient>[0]> = {}): LlmClient {
  return new LlmClient({
    model: 'gpt-4o-mini',
    baseUrl: server.url,
    apiKey: 'test-key',
    maxRetries: 2,
    timeoutMs: 10_000,
    ...extra,
  });
}

/** Counts requests per extract marker, so a script can answer the n-th request of an extract differently. */
function counter() {
  const calls = new Map<number, number>();
  return (i: number) => {
    const n = (calls.get(i) ?? 0) + 1;
    calls.set(i, n);
    return n;
  };
}

describe('preference generation: ten extracts with scripted failures', () => {
  let server: ScriptedLlmServer;
  const extracts: Extract[] = Array.from({ length: 10 }, (_, i) => syntheticExtract(i));
  const next = counter();
  const NOT_IN_EXTRACT =
    'This passage was never written in the extract, although it is long enough and shaped like a proper sentence of prose.';

  before(async () => {
    server = await startScriptedLlmServer((request) => {
      const text = extractOf(request);
      const i = markerOf(text);
      const n = next(i);
      const good = { triples: goodTriples(text) };
      switch (i) {
        case 3:
        case 4: // malformed JSON once, then good
          return n === 1 ? reply.text('{"triples": [{"instruction": "How does the') : reply.json(good);
        case 5: // always malformed
          return reply.text('Sure! Here are the triples you asked for: {oops');
        case 6: // one chosen that is not in the extract
          return reply.json({ triples: good.triples.map((t, k) => (k === 2 ? { ...t, chosen: NOT_IN_EXTRACT } : t)) });
        case 7: // rate limited once, told to wait 1 s
          return n === 1 ? reply.rateLimited(1) : reply.json(good);
        case 8: // server error once
          return n === 1 ? reply.error(500, 'upstream exploded') : reply.json(good);
        case 9: {
          // a short list of three, one of which has rejected == chosen
          const three = good.triples.slice(0, 3);
          three[1] = {
            ...(three[1] as PreferenceTriple),
            rejected: ` ${(three[1] as PreferenceTriple).chosen.replace(/ /g, '  ')} `,
          };
          return reply.json({ triples: three });
        }
        default:
          return reply.json(good);
      }
    });
  });
  after(() => server.close());

  test('counts, retries, drops and usage come out exactly right; a second run pays nothing', async () => {
    const llm = client(server);
    const answers = new MemoryAnswerStore();
    const { summary, answers: results } = await generateAnswers(
      { type: 'preference', extracts, params: { ...FAST, seed: 100 } },
      { llm, answers, concurrency: 4 },
    );

    // 10 first completions + 2 retries of the twice-malformed + 2 more of the always-malformed (3 attempts) = 14;
    // on the wire two more: the 429 and the 500 were each retried once by the client.
    assert.equal(summary.extracts, 10);
    assert.equal(summary.answered, 9);
    assert.equal(summary.failed, 1);
    assert.deepEqual(summary.failures, { 'malformed-json': 1 });
    assert.equal(summary.retryableFailures, 0);
    assert.equal(summary.completions, 14);
    assert.equal(summary.retriedExtracts, 3);
    assert.equal(summary.httpAttempts, 16);
    assert.equal(server.requests.length, 16);
    assert.equal(summary.itemsRequested, 50);
    assert.equal(summary.itemsValid, 5 * 8 + 3);
    assert.equal(summary.shortLists, 1);
    assert.equal(summary.inputTokens, 14 * 100);
    assert.equal(summary.outputTokens, 14 * 50);
    assert.equal(summary.estimatedCostUsd, 0.00063); // gpt-4o-mini: 1400 × $0.15/M + 700 × $0.60/M

    const perExtract = (i: number) => server.requests.filter((r) => markerOf(extractOf(r)) === i);
    assert.deepEqual(
      extracts.map((_, i) => perExtract(i).length),
      [1, 1, 1, 2, 2, 3, 1, 2, 2, 1],
    );
    // The sampling seed goes with each completion; a retried completion gets the next seed.
    assert.deepEqual(
      perExtract(3).map((r) => r.body.seed),
      [100, 101],
    );
    assert.deepEqual(
      perExtract(7).map((r) => r.body.seed),
      [100, 100],
      'a transport retry is the same request',
    );
    const [limited, retried] = perExtract(7);
    assert.ok(limited && retried);
    assert.ok(
      retried.at - limited.at >= 1000,
      `retry came ${retried.at - limited.at} ms after the 429 with Retry-After: 1`,
    );

    const failed = results.find((a) => a.status === 'failed');
    assert.equal(failed?.extract_id, extracts[5]?.id);
    assert.equal(failed?.attempts, 3);
    assert.equal(failed?.failure?.reason, 'malformed-json');
    assert.equal(failed?.failure?.retryable, false);
    assert.equal(results.find((a) => a.extract_id === extracts[7]?.id)?.http_attempts, 2);

    const stats = llm.stats();
    assert.equal(stats.requests, 14);
    assert.equal(stats.httpAttempts, 16);
    assert.equal(stats.retries, 2);
    assert.deepEqual(stats.outcomes, { '200': 14, '429': 1, '500': 1 });
    assert.equal(stats.structuredOutput, 'json_schema');

    // Every request asked for the JSON schema derived from the zod response schema.
    assert.deepEqual(server.requests[0]?.body.response_format, {
      type: 'json_schema',
      json_schema: {
        name: 'preference_samples',
        schema: responseJsonSchema(responseSchema('preference', 5)),
        strict: true,
      },
    });

    const built = buildDataset('preference', results);
    assert.deepEqual(built.stats.extracts, {
      total: 10,
      answered: 9,
      failed: 1,
      failureReasons: { 'malformed-json': 1 },
      truncated: 0,
    });
    assert.deepEqual(built.stats.samples, { requested: 50, produced: 43, missing: 2, kept: 41, dropped: 2 });
    const nonZero = Object.fromEntries(Object.entries(built.stats.drops).filter(([, n]) => n > 0));
    assert.deepEqual(nonZero, { 'chosen-not-verbatim': 1, 'rejected-equals-chosen': 1 });
    assert.equal(built.test.length, 3); // ceil(41 × 0.05)
    assert.equal(built.train.length, 38);
    assert.deepEqual(built.stats.usage, { completions: 14, httpAttempts: 16, inputTokens: 1400, outputTokens: 700 });
    assert.ok(!JSON.stringify(built.train).includes(NOT_IN_EXTRACT));

    // Idempotent per extract: the same batch again is settled from the store without a single request.
    const before = server.requests.length;
    const again = await generateAnswers(
      { type: 'preference', extracts, params: { ...FAST, seed: 100 } },
      { llm: client(server), answers },
    );
    assert.equal(server.requests.length, before);
    assert.equal(again.summary.fromStore, 10);
    assert.equal(again.summary.completions, 0);
    assert.deepEqual(buildDataset('preference', again.answers).train, built.train);
  });
});

describe('instruction generation: per-item validation and answer-level failures', () => {
  let server: ScriptedLlmServer;
  const extracts = Array.from({ length: 7 }, (_, i) => syntheticExtract(100 + i));
  const next = counter();

  before(async () => {
    server = await startScriptedLlmServer((request) => {
      const text = extractOf(request);
      const i = markerOf(text) - 100;
      const n = next(i);
      const pairs = goodPairs(text);
      switch (i) {
        case 1: // one item without an answer, one that talks about "the context"
          return reply.json({
            pairs: [
              ...pairs.slice(0, 3),
              { instruction: 'An instruction without its answer field' },
              { instruction: 'What does the context say about gradient budgets?', answer: 'It says a lot.' },
            ],
          });
        case 2: // never a list
          return reply.json({ answer: 'I think the answer is 42.' });
        case 3: // all items invalid first, then good
          return n === 1
            ? reply.json({ pairs: [{ instruction: 'short', answer: '' }, { foo: 1 }] })
            : reply.json({ pairs });
        case 4: // JSON wrapped in prose and code fences
          return reply.text(
            `Here you go:\n\n\`\`\`json\n${JSON.stringify({ pairs }, null, 2)}\n\`\`\`\nHope this helps!`,
          );
        case 5: // the same instruction as extract 0's first pair, another answer
          return reply.json({
            pairs: [
              { instruction: goodPairs(syntheticExtract(100).text)[0]?.instruction ?? '', answer: 'Different.' },
              ...pairs.slice(1),
            ],
          });
        case 6: // a server that sends no usage
          return reply.json({ pairs }, null);
        default:
          return reply.json({ pairs });
      }
    });
  });
  after(() => server.close());

  test('bad items cost only themselves; bad answers are retried, then counted', async () => {
    const llm = client(server);
    const { summary, answers } = await generateAnswers(
      { type: 'instruction', extracts, params: FAST },
      { llm, answers: new MemoryAnswerStore() },
    );
    assert.equal(summary.answered, 6);
    assert.equal(summary.failed, 1);
    assert.deepEqual(summary.failures, { 'no-item-list': 1 });
    assert.equal(summary.completions, 7 + 2 + 1); // extract 2: three attempts; extract 3: two
    assert.equal(server.requests.length, 10);
    assert.equal(summary.itemsInvalid, 1);

    const noUsage = answers.find((a) => a.extract_id === extracts[6]?.id);
    assert.ok(
      noUsage && noUsage.input_tokens > 100 && noUsage.output_tokens > 50,
      'tokens estimated with the tokenizer when usage is missing',
    );
    assert.equal(llm.stats().tokensEstimated, true);

    const built = buildDataset('instruction', answers);
    const drops = Object.fromEntries(Object.entries(built.stats.drops).filter(([, n]) => n > 0));
    assert.deepEqual(drops, { 'invalid-item': 1, 'instruction-mentions-source': 1, 'duplicate-instruction': 1 });
    assert.equal(built.stats.samples.produced, 30);
    assert.equal(built.stats.samples.kept, 27);
    assert.equal(built.train.length + built.test.length, 27);
    assert.equal(built.test.length, 3); // ceil(27 × 0.1)
    for (const row of [...built.train, ...built.test]) assert.deepEqual(Object.keys(row), ['instruction', 'output']);
  });
});

describe('transport failures, timeouts and response-format fallback', () => {
  test('a hung request times out and is retried; the answer still counts once', async () => {
    const next = counter();
    const server = await startScriptedLlmServer((request) => {
      const text = extractOf(request);
      return next(markerOf(text)) === 1
        ? reply.hang(3000, reply.json({ pairs: goodPairs(text) }))
        : reply.json({ pairs: goodPairs(text) });
    });
    try {
      const llm = client(server, { timeoutMs: 400, maxRetries: 2 });
      const { summary, answers } = await generateAnswers(
        { type: 'instruction', extracts: [syntheticExtract(200)], params: FAST },
        { llm },
      );
      assert.equal(summary.answered, 1);
      assert.equal(summary.completions, 1);
      assert.equal(summary.httpAttempts, 2);
      assert.equal(server.requests.length, 2);
      assert.equal(answers[0]?.items.length, 5);
      assert.deepEqual(llm.stats().outcomes, { timeout: 1, '200': 1 });
    } finally {
      await server.close();
    }
  });

  test('rate limits admit requests; a request larger than the token budget is clamped, not refused', async () => {
    const server = await startScriptedLlmServer((request) => reply.json({ pairs: goodPairs(extractOf(request)) }));
    try {
      const llm = client(server, { requestsPerMinute: 100, tokensPerMinute: 500 });
      const { summary } = await generateAnswers(
        { type: 'instruction', extracts: [syntheticExtract(600)], params: { ...FAST, maxOutputTokens: 4000 } },
        { llm },
      );
      assert.equal(summary.answered, 1);
      assert.equal(server.requests[0]?.body.max_tokens, 4000);
    } finally {
      await server.close();
    }
  });

  test('a transport failure that outlasts the retries is not stored, so the next run asks again', async () => {
    let healthy = false;
    const server = await startScriptedLlmServer((request) =>
      healthy ? reply.json({ pairs: goodPairs(extractOf(request)) }) : reply.error(503, 'overloaded'),
    );
    try {
      const answers = new MemoryAnswerStore();
      const extracts = [syntheticExtract(300), syntheticExtract(301)];
      const first = await generateAnswers(
        { type: 'instruction', extracts, params: FAST },
        { llm: client(server, { maxRetries: 1 }), answers },
      );
      assert.equal(first.summary.failed, 2);
      assert.equal(first.summary.retryableFailures, 2);
      assert.deepEqual(first.summary.failures, { 'llm-error': 2 });
      assert.equal(first.summary.completions, 2); // no answer-level retry on top of the client's transport retries
      assert.equal(server.requests.length, 4);
      assert.equal(answers.answers.size, 0);

      healthy = true;
      const second = await generateAnswers(
        { type: 'instruction', extracts, params: FAST },
        { llm: client(server), answers },
      );
      assert.equal(second.summary.answered, 2);
      assert.equal(second.summary.fromStore, 0);
      assert.equal(server.requests.length, 6);
      assert.equal(answers.answers.size, 2);
    } finally {
      await server.close();
    }
  });

  test('a request the server refuses (400) fails its extract only, finally', async () => {
    const server = await startScriptedLlmServer((request) => {
      const text = extractOf(request);
      return markerOf(text) === 400
        ? reply.error(400, 'This model does not like this prompt')
        : reply.json({ pairs: goodPairs(text) });
    });
    try {
      const answers = new MemoryAnswerStore();
      const { summary } = await generateAnswers(
        { type: 'instruction', extracts: [syntheticExtract(400), syntheticExtract(401)], params: FAST },
        { llm: client(server), answers },
      );
      assert.equal(summary.answered, 1);
      assert.equal(summary.failed, 1);
      assert.equal(summary.retryableFailures, 0);
      assert.equal(server.requests.length, 2);
      assert.equal((await answers.get(syntheticExtract(400).id))?.failure?.reason, 'llm-error');
    } finally {
      await server.close();
    }
  });

  test('a server without json_schema / json_object support gets plain prompts, and the JSON is still parsed', async () => {
    const server = await startScriptedLlmServer((request) => {
      const format = request.body.response_format?.type;
      if (format === 'json_schema')
        return reply.error(
          400,
          "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.",
        );
      if (format === 'json_object') return reply.error(400, "'response_format' json_object is not supported");
      return reply.text(`Sure.\n${JSON.stringify({ pairs: goodPairs(extractOf(request)) })}`);
    });
    try {
      const llm = client(server);
      const { summary } = await generateAnswers(
        { type: 'instruction', extracts: [syntheticExtract(500), syntheticExtract(501)], params: FAST },
        { llm, concurrency: 1 },
      );
      assert.equal(summary.answered, 2);
      assert.deepEqual(
        server.requests.map((r) => r.body.response_format?.type ?? 'none'),
        ['json_schema', 'json_object', 'none', 'none'],
      );
      const stats = llm.stats();
      assert.deepEqual(stats.downgrades, ['json_schema→json_object', 'json_object→prompt']);
      assert.equal(stats.structuredOutput, 'prompt');
      assert.equal(stats.retries, 0);
    } finally {
      await server.close();
    }
  });
});
