/**
 * RAG API load test: autocannon against POST /rag at 1, 10 and 50 concurrent clients, with a stub LLM that answers
 * at once, over the 76 real articles (real all-MiniLM-L6-v2 embeddings in the local Qdrant stand-in, the warehouse
 * in FerretDB). Prints requests/s and p50/p95/p99 latency per level, the server-side time split by trace span
 * (self_query, expansion, embed, search, rerank, generation — read back from the `traces` collection the RAG service
 * writes), and two baselines measured in the same run: GET /health over HTTP (the floor of the HTTP stack) and the
 * same RAG path called in-process without HTTP.
 *
 *   npx tsx bench/rag-api.bench.ts [--duration 10] [--levels 1,10,50] [--expansions 3] [--rerank] [--fresh]
 *                                  [--out results.json]
 *
 * - The API runs as its own process (src/api/server.ts, as in production); autocannon and the stub LLM run in this
 *   one. Services: MONGODB_URI / QDRANT_URL when set, else FerretDB and the Qdrant stand-in are started with their
 *   state under $TWIN_HOME/bench/rag-api, so the corpus is embedded once (~4 min on 2 cores) and reused; --fresh
 *   reloads it.
 * - Requests cycle through the retrieval questions of test/features/fixtures, each with its author (so self-query
 *   is a warehouse lookup, not an LLM call). Expansion (RAG_EXPANSIONS, default 3 = one stub-LLM call) and
 *   generation (one stub-LLM call) are on, as in production; rerank is off unless --rerank.
 * - Latency percentiles are computed from every response's time as autocannon measured it (not its histogram
 *   buckets); span times from the traces of exactly the requests of that level (one API key per level).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { MongoClient } from 'mongodb';
import { apiKeyId } from '../src/api/auth';
import { parseSettings, type Settings } from '../src/config';
import { createDependencies } from '../src/infra/dependencies';
import { createLogger } from '../src/infra/logger';
import {
  getFreePort,
  startFerretDb,
  startQdrantStandin,
  stopAll,
  twinHome,
  type LocalService,
} from '../src/infra/local-services';
import { createRagService } from '../src/rag/service';
import { SPAN_NAMES, TRACES_COLLECTION, type TraceRecord } from '../src/rag/tracing';
import { requireModelDir } from '../test/features/helpers';
import { loadCorpus, ragScript } from '../test/rag/helpers';
import { startScriptedLlmServer } from '../test/support/scripted-llm-server';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const flag = (name: string) => process.argv.includes(`--${name}`);

const DURATION_S = Number(arg('duration') ?? 10);
const LEVELS = (arg('levels') ?? '1,10,50').split(',').map(Number);
const EXPANSIONS = arg('expansions') ?? '3';
const RERANK = flag('rerank');
const DATABASE = 'bench_rag_api';
const PREFIX = 'bench_rag_api_';

interface Question {
  question: string;
  author: string;
}
const QUESTIONS = JSON.parse(
  readFileSync(join(__dirname, '..', 'test', 'features', 'fixtures', 'retrieval-questions.json'), 'utf8'),
) as Question[];
const BODIES = QUESTIONS.map((q) => JSON.stringify({ query: q.question, author: q.author }));

interface Latencies {
  count: number;
  errors: number;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function summarize(times: number[], errors: number, seconds: number): Latencies {
  const sorted = [...times].sort((a, b) => a - b);
  return {
    count: times.length,
    errors,
    rps: times.length / seconds,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? Number.NaN,
  };
}

/** autocannon for DURATION_S; every response's latency as autocannon measured it. */
async function load(options: {
  url: string;
  connections: number;
  method: 'GET' | 'POST';
  key?: string;
}): Promise<Latencies> {
  const times: number[] = [];
  let errors = 0;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        duration: DURATION_S,
        method: options.method,
        headers: {
          'content-type': 'application/json',
          ...(options.key ? { authorization: `Bearer ${options.key}` } : {}),
        },
        ...(options.method === 'POST' ? { requests: BODIES.map((body) => ({ method: 'POST' as const, body })) } : {}),
      },
      (error, done) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve(done)),
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode === 200) times.push(responseTime);
      else errors += 1;
    });
  });
  errors += result.errors + result.timeouts;
  return summarize(times, errors, result.duration);
}

interface SpanStats {
  traces: number;
  total: { mean: number; p50: number; p99: number };
  spans: Record<string, { mean: number; p50: number; p99: number; share: number }>;
}

async function spanStats(db: ReturnType<MongoClient['db']>, keyId: string): Promise<SpanStats> {
  const traces = await db
    .collection<TraceRecord>(TRACES_COLLECTION)
    .find({ apiKeyId: keyId, status: 'ok' }, { projection: { latencyMs: 1, spans: 1 } })
    .toArray();
  const stat = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const mean = values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
    return { mean, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
  };
  const totals = traces.map((t) => t.latencyMs);
  const total = stat(totals);
  const spans: SpanStats['spans'] = {};
  for (const name of SPAN_NAMES) {
    const values = traces.map((t) => t.spans.filter((s) => s.name === name).reduce((a, s) => a + s.latencyMs, 0));
    const s = stat(values);
    spans[name] = { ...s, share: total.mean > 0 ? s.mean / total.mean : 0 };
  }
  const accounted = traces.map((t) => t.latencyMs - t.spans.reduce((a, s) => a + s.latencyMs, 0));
  const other = stat(accounted);
  spans.other = { ...other, share: total.mean > 0 ? other.mean / total.mean : 0 };
  return { traces: traces.length, total, spans };
}

async function waitForHealth(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`API exited with ${child.exitCode}:\n${output()}`);
    try {
      if ((await fetch(`${url}/health`)).ok) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`API not healthy after 120 s:\n${output()}`);
}

const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(1).padStart(7) : '      -');
const print = (line = '') => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const services: LocalService[] = [];
  const dataDir = join(twinHome(), 'bench', 'rag-api');
  let mongoUri = process.env.MONGODB_URI;
  let qdrantUrl = process.env.QDRANT_URL;
  if (!mongoUri) {
    const ferret = await startFerretDb({ dataDir: join(dataDir, 'ferretdb') });
    services.push(ferret);
    mongoUri = ferret.url;
  }
  if (!qdrantUrl) {
    const qdrant = await startQdrantStandin({ dataDir: join(dataDir, 'qdrant') });
    services.push(qdrant);
    qdrantUrl = qdrant.url;
  }
  process.env.MONGODB_URI = mongoUri; // loadCorpus reads the test env
  process.env.QDRANT_URL = qdrantUrl;
  const llm = await startScriptedLlmServer(ragScript());
  const keys: Record<string, string> = { warmup: 'bench-key-warmup' };
  for (const c of LEVELS) keys[`c${c}`] = `bench-key-${c}`;
  const env: Record<string, string> = {
    MONGODB_URI: mongoUri,
    MONGODB_DATABASE: DATABASE,
    QDRANT_URL: qdrantUrl,
    QDRANT_COLLECTION_PREFIX: PREFIX,
    EMBEDDING_MODEL_DIR: requireModelDir(),
    OPENAI_BASE_URL: llm.url,
    OPENAI_API_KEY: 'stub',
    LLM_MODEL: 'stub-llm',
    RAG_RERANKER: RERANK ? 'cross-encoder' : 'none',
    RAG_EXPANSIONS: EXPANSIONS,
    API_KEYS: Object.values(keys).join(','),
    API_RATE_LIMIT: '100000000',
    API_HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
  };
  const settings: Settings = parseSettings({ ...process.env, ...env });

  const mongo = await MongoClient.connect(mongoUri);
  const db = mongo.db(DATABASE);
  let api: ChildProcess | undefined;
  try {
    // the corpus, once
    const deps = createDependencies(settings, createLogger({ level: 'warn' }));
    const stored = await deps
      .vectorStore()
      .count('embedded', 'articles')
      .catch(() => 0);
    if (stored === 0 || flag('fresh')) {
      if (flag('fresh')) {
        await deps.vectorStore().dropCollections();
        await db.dropDatabase();
      }
      print('loading the corpus (76 articles: clean, chunk, embed, upsert) …');
      const t0 = Date.now();
      const corpus = await loadCorpus(DATABASE, deps);
      print(`  ${corpus.documents} documents, ${corpus.chunks} chunks in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    }
    const chunks = await deps.vectorStore().count('embedded', 'articles');
    await deps.close();
    await db.collection(TRACES_COLLECTION).deleteMany({});

    // the API as its own process
    const port = await getFreePort();
    const url = `http://127.0.0.1:${port}`;
    let output = '';
    api = spawn(process.execPath, ['--import', 'tsx', join(__dirname, '..', 'src', 'api', 'server.ts')], {
      env: { ...process.env, ...env, API_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    api.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    api.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    await waitForHealth(url, api, () => output);
    // warm up: model load, connections, JIT
    for (const body of BODIES.concat(BODIES)) {
      const res = await fetch(`${url}/rag`, {
        method: 'POST',
        headers: { authorization: `Bearer ${keys.warmup!}`, 'content-type': 'application/json' },
        body,
      });
      if (!res.ok) throw new Error(`warm-up request failed: ${res.status} ${await res.text()}`);
    }

    const rows: { clients: number; health: Latencies; rag: Latencies; spans: SpanStats }[] = [];
    for (const clients of LEVELS) {
      const health = await load({ url: `${url}/health`, connections: clients, method: 'GET' });
      const rag = await load({ url: `${url}/rag`, connections: clients, method: 'POST', key: keys[`c${clients}`]! });
      await new Promise((r) => setTimeout(r, 1500)); // traces are written in the background
      const spans = await spanStats(db, apiKeyId(keys[`c${clients}`]!));
      rows.push({ clients, health, rag, spans });
      print(`  ${clients} clients: ${rag.rps.toFixed(1)} req/s, p99 ${rag.p99.toFixed(1)} ms (${rag.errors} errors)`);
    }
    api.kill('SIGTERM');

    // baseline: the same RAG path in this process, no HTTP
    const rag = createRagService(settings);
    const inproc: { clients: number; lat: Latencies; spans: SpanStats }[] = [];
    for (const clients of LEVELS.filter((c) => c <= 10)) {
      const keyId = `inprocess-${clients}`;
      for (const q of QUESTIONS) await rag.answer({ query: q.question, author: q.author }, { apiKeyId: 'warmup' });
      const times: number[] = [];
      const t0 = performance.now();
      let next = 0;
      const deadline = t0 + DURATION_S * 1000;
      await Promise.all(
        Array.from({ length: clients }, async () => {
          while (performance.now() < deadline) {
            const q = QUESTIONS[next++ % QUESTIONS.length]!;
            const s = performance.now();
            await rag.answer({ query: q.question, author: q.author }, { apiKeyId: keyId });
            times.push(performance.now() - s);
          }
        }),
      );
      const seconds = (performance.now() - t0) / 1000;
      await rag.flushTraces();
      inproc.push({ clients, lat: summarize(times, 0, seconds), spans: await spanStats(db, keyId) });
    }
    await rag.close();

    // report
    print();
    print(
      `RAG API benchmark — ${new Date().toISOString()}, node ${process.version}, ${chunks} chunks of 76 articles, ` +
        `expansions ${EXPANSIONS}, rerank ${RERANK ? 'cross-encoder' : 'off'}, ${DURATION_S} s per run`,
    );
    print();
    print('POST /rag over HTTP (autocannon, every response timed)');
    print(
      'clients   req/s     p50     p95     p99     max  errors | /health req/s  p99 | in-process p50   p99 | HTTP/in-proc p50',
    );
    for (const { clients, health, rag: r } of rows) {
      const base = inproc.find((i) => i.clients === clients);
      print(
        `${String(clients).padStart(7)} ${r.rps.toFixed(1).padStart(7)} ${ms(r.p50)} ${ms(r.p95)} ${ms(r.p99)} ${ms(r.max)} ${String(r.errors).padStart(7)} | ` +
          `${health.rps.toFixed(0).padStart(13)} ${ms(health.p99)} | ` +
          `${base ? `${ms(base.lat.p50)} ${ms(base.lat.p99)}` : '              -       -'} | ` +
          `${base ? (r.p50 / base.lat.p50).toFixed(2).padStart(6) : '     -'}x`,
      );
    }
    print();
    print('Server-side time by span (from the traces of exactly these requests; mean ms, p99 ms, share of the trace)');
    const names = [...SPAN_NAMES, 'other'];
    print(`clients  traces   total(mean/p99) ${names.map((n) => n.padStart(18)).join('')}`);
    const spanLine = (label: string, s: SpanStats) =>
      `${label.padStart(7)} ${String(s.traces).padStart(7)} ${ms(s.total.mean)} /${ms(s.total.p99)} ${names
        .map((n) => {
          const v = s.spans[n]!;
          return `${v.mean.toFixed(1)}/${v.p99.toFixed(1)} ${(v.share * 100).toFixed(0)}%`.padStart(18);
        })
        .join('')}`;
    for (const row of rows) print(spanLine(String(row.clients), row.spans));
    for (const row of inproc) print(spanLine(`in${row.clients}`, row.spans));
    print();
    print('How: the API is `src/api/server.ts` in its own Node process (Fastify, real RAG service, API keys, rate');
    print('limiter on), requests from autocannon in this process; the stub LLM (test/support/scripted-llm-server)');
    print('answers self-query/expansion/generation at once. HTTP latency = autocannon per-response time; span times =');
    print('the `traces` documents the RAG service wrote for each request; "other" = trace time not in a span');
    print('(context assembly, prompt, bookkeeping); HTTP overhead ≈ HTTP latency − trace total. in-process = the same');
    print('createRagService().answer() called directly from this process with the same concurrency.');

    const out = arg('out');
    if (out)
      writeFileSync(out, JSON.stringify({ rows, inproc, chunks, expansions: EXPANSIONS, rerank: RERANK }, null, 2));
  } finally {
    api?.kill('SIGTERM');
    await mongo.close();
    await llm.close();
    await stopAll(services);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
