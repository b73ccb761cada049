/**
 * The HTTP contract of the RAG API (src/api/app.ts) over a real socket, with a scripted RagEngine behind it:
 * auth, every error status and its JSON shape, body limits, rate limits, both streaming formats (checked with the
 * real `openai` client), OpenAPI, health/ready, and the paths a real RAG service cannot be made to take on demand
 * (a plain exception, a failure mid-stream, a client that hangs up). The same routes over the real RAG service:
 * rag-service.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { apiKeyId } from '../../src/api/auth';
import { buildApp } from '../../src/api/app';
import { ConfigError, parseSettings } from '../../src/config';
import { RagError, type RagStreamEvent } from '../../src/rag/types';
import {
  apiSettings,
  auth,
  KEY,
  listen,
  OTHER_KEY,
  postJson,
  readEvents,
  ScriptedEngine,
  type RunningApp,
} from './helpers';

describe('RAG API HTTP contract', () => {
  const engine = new ScriptedEngine();
  let api: RunningApp;

  before(async () => {
    api = await listen(engine, apiSettings({ API_RATE_LIMIT: '1000', API_BODY_LIMIT_BYTES: '4096' }));
  });
  after(async () => api.close());

  const resetEngine = () => {
    const fresh = new ScriptedEngine();
    engine.answerWith = fresh.answerWith;
    engine.streamWith = (request) => engine.defaultStream(request);
    engine.checks = fresh.checks;
    engine.requests.length = 0;
  };

  test('POST /rag answers with answer, sources and traceId; the engine gets the key id, never the key', async () => {
    resetEngine();
    const res = await postJson(`${api.url}/rag`, { query: 'What is the engine?', author: 'Ada Lovelace', k: 3 });
    assert.equal(res.status, 200);
    assert.equal(res.body.answer, 'echo: What is the engine?');
    assert.equal(res.body.traceId, 'trace-1');
    assert.equal((res.body.sources as { chunkId: string }[])[0]!.chunkId, 'c1');
    assert.deepEqual(engine.requests[0]!.request, { query: 'What is the engine?', author: 'Ada Lovelace', k: 3 });
    assert.equal(engine.requests[0]!.apiKeyId, apiKeyId(KEY));
    assert.match(engine.requests[0]!.apiKeyId, /^key_[0-9a-f]{12}$/);
    assert.ok(!JSON.stringify(engine.requests[0]).includes(KEY));
    // the second configured key works too and has its own id
    await postJson(`${api.url}/rag`, { query: 'q' }, auth(OTHER_KEY));
    assert.equal(engine.requests[1]!.apiKeyId, apiKeyId(OTHER_KEY));
    assert.notEqual(apiKeyId(KEY), apiKeyId(OTHER_KEY));
  });

  test('401 without a key, with a wrong key, and with a non-bearer scheme; the engine is never called', async () => {
    resetEngine();
    for (const headers of [{}, auth('wrong-key'), auth(`${KEY}x`), { authorization: `Basic ${KEY}` }]) {
      const res = await postJson(`${api.url}/rag`, { query: 'q' }, headers);
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
      assert.equal((res.body.error as { code: string }).code, 'unauthorized');
    }
    const models = await fetch(`${api.url}/v1/models`);
    assert.equal(models.status, 401);
    assert.equal(engine.requests.length, 0);
  });

  test('400 with the issues for schema violations; malformed JSON is a 400 with the same shape', async () => {
    for (const body of [{}, { query: '' }, { query: 'q', k: 0 }, { query: 'q', k: 'five' }, { query: 'q', extra: 1 }]) {
      const res = await postJson(`${api.url}/rag`, body);
      assert.equal(res.status, 400, JSON.stringify(body));
      const error = res.body.error as { code: string; message: string; issues: unknown[] };
      assert.equal(error.code, 'bad_request');
      assert.ok(error.issues.length > 0);
    }
    const malformed = await postJson(`${api.url}/rag`, '{"query": "unterminated');
    assert.equal(malformed.status, 400);
    assert.equal((malformed.body.error as { code: string }).code, 'bad_request');
    const chat = await postJson(`${api.url}/v1/chat/completions`, { model: 'twin', messages: [] });
    assert.equal(chat.status, 400);
    const lastNotUser = await postJson(`${api.url}/v1/chat/completions`, {
      model: 'twin',
      messages: [{ role: 'assistant', content: 'hi' }],
    });
    assert.equal(lastNotUser.status, 400);
    assert.match((lastNotUser.body.error as { message: string }).message, /last message must be a user message/);
  });

  test('413 for a body over API_BODY_LIMIT_BYTES, 415 for a non-JSON body, 404 for an unknown route', async () => {
    const big = await postJson(`${api.url}/rag`, { query: 'x'.repeat(5000) });
    assert.equal(big.status, 413);
    assert.equal((big.body.error as { code: string }).code, 'payload_too_large');
    const text = await fetch(`${api.url}/rag`, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/xml' },
      body: '<q/>',
    });
    assert.equal(text.status, 415);
    assert.equal(((await text.json()) as { error: { code: string } }).error.code, 'unsupported_media_type');
    const missing = await fetch(`${api.url}/nope`, { headers: auth() });
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { error: { code: 'not_found', message: 'no route GET /nope' } });
  });

  test('engine errors: 503 names the dependency, 502 for the model, 400 for bad requests, 500 without a stack', async () => {
    resetEngine();
    const cases: [Error, number, string][] = [
      [new RagError('dependency_unavailable', 'Qdrant is unreachable', 'qdrant'), 503, 'dependency_unavailable'],
      [new RagError('model_error', 'the model answered 500'), 502, 'model_error'],
      [new RagError('bad_request', 'unknown author "Nobody"'), 400, 'bad_request'],
      [new RagError('internal', 'secret detail at /srv/x.ts:10'), 500, 'internal'],
      [new TypeError("Cannot read properties of undefined (reading 'x')"), 500, 'internal'],
    ];
    for (const [error, status, code] of cases) {
      engine.answerWith = () => Promise.reject(error);
      const res = await postJson(`${api.url}/rag`, { query: 'q' });
      assert.equal(res.status, status);
      const body = res.body.error as { code: string; message: string; dependency?: string };
      assert.equal(body.code, code);
      if (status === 503) assert.equal(body.dependency, 'qdrant');
      if (status === 500) {
        assert.equal(body.message, 'internal error');
        assert.ok(!JSON.stringify(res.body).includes('.ts'), 'no stack or file paths in a 500');
      }
      const chat = await postJson(`${api.url}/v1/chat/completions`, {
        model: 'twin',
        messages: [{ role: 'user', content: 'q' }],
      });
      assert.equal(chat.status, status);
    }
  });

  test('POST /rag with stream: sources, tokens, done as named SSE events whose data mirror RagStreamEvent', async () => {
    resetEngine();
    const response = await fetch(`${api.url}/rag`, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'one two three', stream: true }),
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
    const events = await readEvents(response);
    assert.deepEqual(
      events.map((e) => e.event),
      ['sources', 'token', 'token', 'token', 'token', 'done'],
    );
    const data = events.map((e) => JSON.parse(e.data) as RagStreamEvent);
    assert.equal(data[0]!.type, 'sources');
    assert.equal(
      data
        .filter((e) => e.type === 'token')
        .map((e) => e.text)
        .join(''),
      'echo: one two three',
    );
    const done = data.at(-1)!;
    assert.ok(done.type === 'done' && done.answer.answer === 'echo: one two three');
    assert.equal(engine.requests[0]!.apiKeyId, apiKeyId(KEY));
  });

  test('a stream that fails before its first event gets a real status; one that fails midway ends with an error event', async () => {
    resetEngine();
    engine.streamWith = () =>
      (async function* (): AsyncIterable<RagStreamEvent> {
        const fail = await Promise.resolve(true);
        if (fail) throw new RagError('dependency_unavailable', 'MongoDB is down', 'mongodb');
        yield { type: 'token', text: 'never' };
      })();
    const early = await postJson(`${api.url}/rag`, { query: 'q', stream: true });
    assert.equal(early.status, 503);
    assert.equal((early.body.error as { dependency: string }).dependency, 'mongodb');

    engine.streamWith = () =>
      (async function* (): AsyncIterable<RagStreamEvent> {
        yield { type: 'sources', sources: [], traceId: 't' };
        yield { type: 'token', text: 'half' };
        throw new RagError('model_error', 'the model hung up');
      })();
    const midway = await fetch(`${api.url}/rag`, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'q', stream: true }),
    });
    assert.equal(midway.status, 200);
    const events = await readEvents(midway);
    assert.deepEqual(
      events.map((e) => e.event),
      ['sources', 'token', 'error'],
    );
    assert.deepEqual(JSON.parse(events[2]!.data), {
      type: 'error',
      error: { code: 'model_error', message: 'the model hung up' },
    });

    // the OpenAI client surfaces a mid-stream error as an exception
    const client = new OpenAI({ baseURL: `${api.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: 'twin',
      messages: [{ role: 'user', content: 'q' }],
      stream: true,
    });
    await assert.rejects(async () => {
      for await (const _chunk of stream) {
        /* drain */
      }
    }, /the model hung up/);
  });

  test('a client that hangs up mid-stream aborts the engine', async () => {
    resetEngine();
    let aborted: Promise<void> | undefined;
    engine.streamWith = (_request, signal) =>
      (async function* (): AsyncIterable<RagStreamEvent> {
        aborted = new Promise<void>((resolve) => signal!.addEventListener('abort', () => resolve()));
        yield { type: 'sources', sources: [], traceId: 't' };
        for (let i = 0; ; i++) {
          if (signal!.aborted) return;
          yield { type: 'token', text: `${i} ` };
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
    const controller = new AbortController();
    const response = await fetch(`${api.url}/rag`, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'q', stream: true }),
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort();
    await assert.doesNotReject(
      Promise.race([
        aborted!,
        new Promise((_, reject) => setTimeout(() => reject(new Error('engine was not aborted')), 5000)),
      ]),
    );
  });

  test('the openai client: non-streaming and streaming chat completions, author from model or metadata, models list', async () => {
    resetEngine();
    const client = new OpenAI({ baseURL: `${api.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const completion = await client.chat.completions.create({
      model: 'twin:Ada Lovelace',
      messages: [
        { role: 'system', content: 'ignored: the twin has its own system prompt' },
        { role: 'user', content: 'first question' },
        { role: 'assistant', content: 'first answer' },
        { role: 'user', content: 'What is the engine?' },
      ],
      max_tokens: 64,
      temperature: 0.2,
    });
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.choices[0]!.message.content, 'echo: What is the engine?');
    assert.equal(completion.choices[0]!.finish_reason, 'stop');
    assert.deepEqual(completion.usage, { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13 });
    const extended = completion as unknown as { sources: { chunkId: string }[]; trace_id: string };
    assert.equal(extended.sources[0]!.chunkId, 'c1');
    assert.equal(extended.trace_id, 'trace-1');
    assert.deepEqual(engine.requests[0]!.request, {
      query: 'What is the engine?',
      author: 'Ada Lovelace',
      history: [
        { role: 'user', content: 'first question' },
        { role: 'assistant', content: 'first answer' },
      ],
      maxTokens: 64,
      temperature: 0.2,
    });

    const stream = await client.chat.completions.create({
      model: 'twin',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'alpha beta' }] }],
      metadata: { author: 'Charles Babbage' },
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    const chunks = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      text += chunk.choices[0]?.delta.content ?? '';
    }
    assert.equal(text, 'echo: alpha beta');
    assert.equal(chunks[0]!.choices[0]!.delta.role, 'assistant');
    assert.equal((chunks[0] as unknown as { sources: unknown[] }).sources.length, 1);
    assert.equal(chunks.at(-2)!.choices[0]!.finish_reason, 'stop');
    assert.deepEqual(chunks.at(-1)!.usage, { prompt_tokens: 10, completion_tokens: 3, total_tokens: 13 });
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === 'chatcmpl-trace-1'));
    assert.equal(engine.requests[1]!.request.author, 'Charles Babbage');

    // the raw stream ends with data: [DONE]
    const raw = await fetch(`${api.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'twin', messages: [{ role: 'user', content: 'x' }], stream: true }),
    });
    const events = await readEvents(raw);
    assert.equal(events.at(-1)!.data, '[DONE]');

    const models = await client.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      ['twin'],
    );
  });

  test('GET /health needs nothing; GET /ready is 200 when every dependency is ok, else 503 with the detail', async () => {
    resetEngine();
    const health = await fetch(`${api.url}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
    const ready = await fetch(`${api.url}/ready`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { status: string }).status, 'ready');
    engine.checks = { qdrant: { ok: false, error: 'connect ECONNREFUSED' }, mongodb: { ok: true }, llm: { ok: true } };
    const notReady = await fetch(`${api.url}/ready`);
    assert.equal(notReady.status, 503);
    const body = (await notReady.json()) as {
      status: string;
      checks: Record<string, { ok: boolean }>;
      error: { code: string; dependency: string };
    };
    assert.equal(body.status, 'not_ready');
    assert.equal(body.checks.qdrant!.ok, false);
    assert.equal(body.checks.mongodb!.ok, true);
    assert.equal(body.error.code, 'dependency_unavailable');
    assert.equal(body.error.dependency, 'qdrant');
    engine.checks = new ScriptedEngine().checks;
  });

  test('GET /openapi.json documents the routes, their schemas and the bearer scheme; /docs serves the UI', async () => {
    const doc = (await (await fetch(`${api.url}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: unknown; security?: unknown }>>;
      components: { securitySchemes: Record<string, unknown> };
    };
    assert.match(doc.openapi, /^3\./);
    for (const path of ['/rag', '/v1/chat/completions', '/v1/models', '/health', '/ready']) {
      assert.ok(doc.paths[path], `missing ${path}`);
    }
    assert.ok(doc.paths['/rag']!.post!.requestBody);
    assert.deepEqual(doc.paths['/rag']!.post!.security, [{ bearerAuth: [] }]);
    assert.ok(doc.components.securitySchemes.bearerAuth);
    const ui = await fetch(`${api.url}/docs`, { redirect: 'follow' });
    assert.equal(ui.status, 200);
    assert.match(await ui.text(), /swagger/i);
  });
});

describe('RAG API rate limits and key policy', () => {
  test('429 with Retry-After once a key used up its window; each key has its own budget', async () => {
    const engine = new ScriptedEngine();
    const api = await listen(engine, apiSettings({ API_RATE_LIMIT: '3', API_RATE_LIMIT_WINDOW_S: '30' }));
    try {
      for (let i = 0; i < 3; i++) assert.equal((await postJson(`${api.url}/rag`, { query: 'q' })).status, 200);
      const limited = await postJson(`${api.url}/rag`, { query: 'q' });
      assert.equal(limited.status, 429);
      const retryAfter = Number(limited.headers.get('retry-after'));
      assert.ok(retryAfter > 0 && retryAfter <= 30, `Retry-After ${retryAfter}`);
      const error = limited.body.error as { code: string; retryAfterSeconds: number };
      assert.equal(error.code, 'rate_limited');
      assert.equal(error.retryAfterSeconds, retryAfter);
      // the chat facade shares the key's budget
      const chat = await postJson(`${api.url}/v1/chat/completions`, {
        model: 'twin',
        messages: [{ role: 'user', content: 'q' }],
      });
      assert.equal(chat.status, 429);
      // another key is not affected; health is never limited
      assert.equal((await postJson(`${api.url}/rag`, { query: 'q' }, auth(OTHER_KEY))).status, 200);
      assert.equal((await fetch(`${api.url}/health`)).status, 200);
      assert.equal(engine.requests.length, 4);
    } finally {
      await api.close();
    }
  });

  test('no API_KEYS: refuses to start, saying how to fix it; API_ALLOW_NO_KEYS=true serves without keys', async () => {
    const engine = new ScriptedEngine();
    await assert.rejects(
      buildApp({ engine, settings: parseSettings({}) }),
      (error: unknown) =>
        error instanceof ConfigError && /API_KEYS/.test(error.message) && /API_ALLOW_NO_KEYS=true/.test(error.message),
    );
    const api = await listen(engine, parseSettings({ API_ALLOW_NO_KEYS: 'true' }));
    try {
      const res = await postJson(`${api.url}/rag`, { query: 'q' }, {});
      assert.equal(res.status, 200);
      assert.equal(engine.requests[0]!.apiKeyId, undefined);
    } finally {
      await api.close();
    }
  });
});
