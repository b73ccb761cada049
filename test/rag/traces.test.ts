/**
 * Prompt monitoring end to end: a RAG request's trace is stored in MongoDB and exported to Opik (a local HTTP
 * server that records the Opik SDK's REST calls, reached through OPIK_URL_OVERRIDE), an Opik that is down or
 * failing never fails a request, and `twin traces list | show` print what was stored.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { MongoClient } from 'mongodb';
import { createDependencies, type Dependencies } from '../../src/infra/dependencies';
import { createLogger } from '../../src/infra/logger';
import { createRagService } from '../../src/rag/service';
import { TRACES_COLLECTION, type TraceRecord } from '../../src/rag/tracing';
import { isolatedEnv, runTwin } from '../support/cli';
import { testEnv, uniqueName } from '../support/env';
import { startScriptedLlmServer, type ScriptedLlmServer } from '../support/scripted-llm-server';
import { closeRagFixtures, ragScript, ragSettings } from './helpers';

interface OpikCall {
  method: string;
  path: string;
  authorization?: string;
  workspace?: string;
  body: Record<string, unknown>;
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

/** Records Opik REST calls; answers `status` to each. */
async function startOpikRecorder(status = 204): Promise<{ server: Server; url: string; calls: OpikCall[] }> {
  const calls: OpikCall[] = [];
  const server = createServer((req, res) => {
    void readBody(req).then((body) => {
      calls.push({
        method: req.method ?? '',
        path: req.url ?? '',
        authorization: req.headers.authorization,
        workspace: req.headers['comet-workspace'] as string | undefined,
        body,
      });
      res
        .writeHead(status, { 'content-type': 'application/json' })
        .end(status === 204 ? undefined : '{"errors":["boom"]}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`, calls };
}

async function stop(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

const database = uniqueName('ragtraces');
const prefix = `${uniqueName('ragtr')}_`;

describe('RAG traces: MongoDB, Opik export, twin traces', () => {
  let llm: ScriptedLlmServer;
  let deps: Dependencies;
  let mongo: MongoClient;
  const names = () => ({ database, prefix, llmUrl: llm.url });

  before(async () => {
    llm = await startScriptedLlmServer(ragScript());
    deps = createDependencies(ragSettings(names()), createLogger({ level: 'error' }));
    mongo = await MongoClient.connect(testEnv.mongoUri);
    await mongo
      .db(database)
      .collection('users')
      .insertOne({ _id: 'eff74089-0271-4319-8543-745c087f4f61' as never, first_name: 'Maxime', last_name: 'Labonne' });
  });

  after(async () => {
    await closeRagFixtures(deps, mongo, database);
    await llm?.close();
  });

  test('a trace goes to MongoDB and to Opik with one span per step; the Opik key is never stored', async () => {
    const opik = await startOpikRecorder();
    const rag = createRagService(
      ragSettings(names(), { OPIK_URL_OVERRIDE: opik.url, OPIK_API_KEY: 'opik-secret-key', OPIK_WORKSPACE: 'twin-ws' }),
      { dependencies: deps },
    );
    try {
      const answer = await rag.answer(
        { query: 'What does Maxime Labonne think about model merging?' },
        { apiKeyId: 'k1' },
      );
      await rag.flushTraces();
      const stored = await mongo
        .db(database)
        .collection<TraceRecord>(TRACES_COLLECTION)
        .findOne({ _id: answer.traceId });
      assert.ok(stored);
      assert.deepEqual(stored.author, { id: 'eff74089-0271-4319-8543-745c087f4f61', name: 'Maxime Labonne' });
      assert.equal(stored.sources.length, 0, 'nothing embedded under this prefix');
      assert.ok(!JSON.stringify(stored).includes('opik-secret-key'));

      const traceCalls = opik.calls.filter((c) => c.path === '/api/v1/private/traces/batch');
      const spanCalls = opik.calls.filter((c) => c.path === '/api/v1/private/spans/batch');
      assert.equal(traceCalls.length, 1, JSON.stringify(opik.calls.map((c) => c.path)));
      assert.equal(traceCalls[0]!.authorization, 'opik-secret-key');
      assert.equal(traceCalls[0]!.workspace, 'twin-ws');
      const [trace] = traceCalls[0]!.body.traces as Record<string, unknown>[];
      assert.equal(trace!.name, 'rag');
      assert.equal(trace!.project_name, 'llm-twin');
      assert.deepEqual(
        (trace!.input as Record<string, unknown>).query,
        'What does Maxime Labonne think about model merging?',
      );
      assert.equal((trace!.metadata as Record<string, unknown>).traceId, answer.traceId);
      assert.equal((trace!.metadata as Record<string, unknown>).apiKeyId, 'k1');
      const spans = spanCalls.flatMap((c) => c.body.spans as Record<string, unknown>[]);
      assert.deepEqual(spans.map((s) => s.name).sort(), [
        'embed',
        'expansion',
        'generation',
        'rerank',
        'search',
        'self_query',
      ]);
      for (const span of spans) assert.equal(span.trace_id, trace!.id);
      const generation = spans.find((s) => s.name === 'generation')!;
      assert.equal(generation.type, 'llm');
      assert.equal(generation.model, 'scripted-llm');
      assert.deepEqual(generation.usage, { prompt_tokens: 900, completion_tokens: 7, total_tokens: 907 });
      // the span keeps its own timing, not the export time
      const latency = Date.parse(generation.end_time as string) - Date.parse(generation.start_time as string);
      const storedGeneration = stored.spans.find((s) => s.name === 'generation')!;
      assert.ok(Math.abs(latency - storedGeneration.latencyMs) <= 1, `${latency} vs ${storedGeneration.latencyMs}`);
    } finally {
      await rag.close();
      await stop(opik.server);
    }
  });

  test('an Opik that fails (HTTP 500) or is down never fails a request; MongoDB still gets the trace', async () => {
    const failing = await startOpikRecorder(500);
    const down = await startOpikRecorder();
    const downUrl = down.url;
    await stop(down.server);
    for (const url of [failing.url, downUrl]) {
      const rag = createRagService(ragSettings(names(), { OPIK_URL_OVERRIDE: url, OPIK_API_KEY: 'x' }), {
        dependencies: deps,
      });
      try {
        const answer = await rag.answer({ query: 'model merging' });
        assert.equal(answer.answer, 'A scripted answer [1].');
        await rag.flushTraces();
        assert.equal(
          await mongo
            .db(database)
            .collection(TRACES_COLLECTION)
            .countDocuments({ _id: answer.traceId as never }),
          1,
        );
      } finally {
        await rag.close();
      }
    }
    assert.ok(failing.calls.length > 0, 'the failing Opik was called');
    await stop(failing.server);
  });

  test('twin traces list and show', async () => {
    const rag = createRagService(ragSettings(names()), { dependencies: deps });
    let traceId: string;
    try {
      traceId = (await rag.answer({ query: 'Maxime Labonne on abliteration' }, { apiKeyId: 'ops' })).traceId;
      await rag.flushTraces();
    } finally {
      await rag.close();
    }
    const env = isolatedEnv({ MONGODB_URI: testEnv.mongoUri, MONGODB_DATABASE: database, LOG_LEVEL: 'error' });
    const list = await runTwin(['traces', 'list', '-n', '50'], env);
    assert.equal(list.code, 0, list.stderr);
    const line = list.stdout.split('\n').find((l) => l.includes(traceId));
    assert.ok(line, list.stdout);
    assert.match(line, /ok .* Maxime Labonne on abliteration author=Maxime Labonne/);
    const show = await runTwin(['traces', 'show', traceId], env);
    assert.equal(show.code, 0, show.stderr);
    for (const expected of [
      'self_query',
      'expansion',
      'embed',
      'search',
      'rerank',
      'generation',
      'api key   ops',
      'rag-v1',
    ]) {
      assert.ok(show.stdout.includes(expected), `${expected} in:\n${show.stdout}`);
    }
    assert.match(show.stdout, /generation\s+ok\s+[\d.]+ ms model=scripted-llm tokens=900→7/);
    const json = await runTwin(['traces', 'show', traceId, '--json'], env);
    assert.equal((JSON.parse(json.stdout) as { _id: string })._id, traceId);
    const missing = await runTwin(['traces', 'show', 'no-such-trace'], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stdout, /no trace no-such-trace/);
  });
});
