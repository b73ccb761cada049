/**
 * `twin demo`: the whole twin, end to end, on the local platform, offline.
 *
 * 1. platform: its own in-process platform (Temporal dev server + Web UI, FerretDB, Qdrant stand-in, all workers)
 *    under `$TWIN_DATA_DIR/demo`, with the workers configured for the demo — or, with `platform: 'running'`, the
 *    platform a `twin dev` started (or TEMPORAL_ADDRESS & co.), whose workers keep their own configuration (real
 *    links, OpenAI, SageMaker);
 * 2. inputs: the offline sample site (a few articles of Maxime Labonne, demo/site/) on a loopback port, a real
 *    small LLM (Gemma 3 270M GGUF) behind an OpenAI-compatible endpoint for dataset generation, judging and the
 *    RAG helpers, and a tiny random Llama (made offline by jobs/finetune/tests/tiny_model.py) as the base model;
 * 3. `endToEnd` (ETL → features → datasets → SFT → DPO → evaluation → gate → [approval] → deployment, as child
 *    workflows), printed stage by stage from its `progress` query, with the Web UI link of the run;
 * 4. one RAG question through the REST API (in process, on a free port), answered by the deployed model, printed
 *    with its sources;
 * 5. wall time per stage.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { parseSettings, type Settings } from '../config';
import type { EndToEndInput, EndToEndResult, PipelineProgress, StageName } from '../pipelines/types';
import type { RagAnswer } from '../rag/types';
import { startApiServer, type ApiServer } from '../api/server';
import { parseDocument } from '../etl/dom';
import { startDevPlatform, type DevPlatform } from '../cli/dev';
import { adoptRunningPlatform } from '../cli/platform-state';
import { defaultLocalModelPath, startLocalLlmServer, type LocalLlmServer } from '../infra/local-llm';
import { connectClient } from '../infra/temporal';
import { LocalModelServers } from '../serving/local';
import { SAMPLE_SITE_DIR, startSampleSite, type SampleSite } from './sample-site';
import { TINY_MODEL_HYPERPARAMETERS } from '../training/spec';

const REPO_ROOT = path.resolve(__dirname, '..', '..');

/**
 * The gate of the offline demo. A randomly initialised 2-layer model trained for one epoch on a few dozen rows
 * cannot write a correct or well-styled answer: the judge scores it 1 of 3. The demo's gate is therefore set at the
 * floor of the scales (1), so what it shows is the mechanics (evaluation report, gate decision in the history,
 * deployment), not model quality. Real runs use EVAL_MIN_ACCURACY / EVAL_MIN_STYLE (default 2).
 */
export const DEMO_THRESHOLDS = { accuracy: 1, style: 1 };

export type DemoPlatformMode = 'auto' | 'own' | 'running';

export interface DemoOptions {
  /** own (default for the sample site), running (adopt `twin dev` / configured services), auto (running if found) */
  platform?: DemoPlatformMode;
  /** the author and links (default: the sample site's author and articles) */
  author?: string;
  links?: string[];
  /** how many sample-site articles to crawl (default 2: the LLM work grows with the text) */
  articles?: number;
  /** 'local' = start the local Gemma server (default with the own platform); 'configured' = OPENAI_BASE_URL/KEY */
  llm?: 'local' | 'configured';
  trainingBackend?: 'local' | 'sagemaker';
  deploymentBackend?: 'local' | 'sagemaker';
  /** default: a tiny random Llama built offline (local training), else TRAINING_BASE_MODEL */
  baseModel?: string;
  /** SFT only (default: true with the local Gemma, which rarely writes valid preference triples; false otherwise) */
  skipDpo?: boolean;
  /** require the approval step; the demo answers it itself (labelled "auto-approved by twin demo") */
  approval?: boolean;
  /** evaluation rows judged (default 4) */
  maxSamples?: number;
  question?: string;
  /** keep the own platform (and the Web UI) running after the demo until Ctrl-C */
  keep?: boolean;
  print?: (line: string) => void;
  /** the environment to read settings from (default process.env; changed in place for the own platform) */
  env?: NodeJS.ProcessEnv;
}

export interface StageTiming {
  stage: string;
  seconds: number;
  status: string;
  detail?: string;
}

export interface DemoReport {
  platform: 'own' | 'running';
  /** Temporal frontend the run is on */
  temporalAddress: string;
  namespace: string;
  workflowId: string;
  runId: string;
  webUi?: string;
  webUiLink?: string;
  result: EndToEndResult;
  answer: RagAnswer;
  question: string;
  timings: StageTiming[];
  totalSeconds: number;
  /** the own platform, when `keep` asked to leave it running; stop() ends it */
  platformHandle?: DevPlatform;
}

export const DEFAULT_QUESTION = 'What is a tensor in deep learning, and why is it different from an array?';

const STAGES: StageName[] = ['etl', 'features', 'datasets', 'sft', 'dpo', 'evaluation', 'approval', 'deployment'];

async function freePort(preferred?: number): Promise<number> {
  const tryListen = (port: number) =>
    new Promise<number | undefined>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(undefined));
      server.listen(port, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : undefined));
      });
    });
  if (preferred) {
    const port = await tryListen(preferred);
    if (port) return port;
  }
  return (await tryListen(0))!;
}

/** Plain text of the sample site's articles (the tiny model's tokenizer is trained on it). */
async function sampleSiteText(dir = SAMPLE_SITE_DIR): Promise<string> {
  const articles = JSON.parse(await readFile(path.join(dir, 'articles.json'), 'utf8')) as { path: string }[];
  const texts: string[] = [];
  for (const a of articles) {
    const document = parseDocument(await readFile(path.join(dir, a.path), 'utf8'));
    texts.push(
      ...(document.querySelector('article')?.textContent ?? '')
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean),
    );
  }
  return texts.join('\n');
}

function runProcess(command: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
  });
}

/** The tiny random Llama the offline demo fine-tunes: built once (seconds) with the training venv, then reused. */
export async function ensureTinyBaseModel(settings: Settings, dir: string): Promise<string> {
  if (existsSync(path.join(dir, 'config.json')) && existsSync(path.join(dir, 'tokenizer.json'))) return dir;
  await mkdir(dir, { recursive: true });
  const textFile = path.join(dir, '..', 'tiny-base-corpus.txt');
  await writeFile(textFile, await sampleSiteText());
  const python = settings.training.python;
  if (!existsSync(python)) {
    throw new Error(`${python} is missing: run \`bash scripts/install-training.sh\` (the local training venv)`);
  }
  const built = await runProcess(python, [
    path.join(REPO_ROOT, 'jobs', 'finetune', 'tests', 'tiny_model.py'),
    '--out',
    dir,
    textFile,
  ]);
  if (built.code !== 0) throw new Error(`building the tiny base model failed:\n${built.output.slice(-2000)}`);
  return dir;
}

/** Stops the local model servers deployModel started under the demo's serving folder (they are detached). */
export async function stopLocalModelServers(settings: Settings): Promise<number> {
  const servers = new LocalModelServers({
    python: settings.serving.python,
    dir: settings.serving.dir,
    host: settings.serving.host,
    device: settings.serving.device,
  });
  const files: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (e.isDirectory()) await walk(path.join(dir, e.name));
      else if (e.name === 'server.json') files.push(path.join(dir, e.name));
    }
  };
  await walk(settings.serving.dir);
  let stopped = 0;
  for (const file of files) {
    const { pid } = JSON.parse(await readFile(file, 'utf8')) as { pid: number };
    if (await servers.stop({ pid, dir: path.dirname(file) })) stopped++;
  }
  return stopped;
}

const seconds = (ms: number) => Math.round(ms / 100) / 10;

/** Runs the demo; prints as it goes; returns what it did (the CLI prints the summary). */
export async function runDemo(options: DemoOptions = {}): Promise<DemoReport> {
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const env = options.env ?? process.env;
  const t0 = Date.now();
  const timings: StageTiming[] = [];
  const timed = async <T>(stage: string, fn: () => Promise<T>, detail?: (value: T) => string): Promise<T> => {
    const started = Date.now();
    const value = await fn();
    const timing: StageTiming = { stage, seconds: seconds(Date.now() - started), status: 'done' };
    if (detail) timing.detail = detail(value);
    timings.push(timing);
    print(`  ✔ ${stage} (${timing.seconds} s)${timing.detail ? ` — ${timing.detail}` : ''}`);
    return value;
  };

  const usesSampleSite = !options.links || options.links.length === 0;
  const base = parseSettings(env);
  let mode: 'own' | 'running';
  if (options.platform === 'running') mode = 'running';
  else if (options.platform === 'own') mode = 'own';
  else mode = !usesSampleSite && adoptRunningPlatform(base.dataDir, { ...env }) ? 'running' : 'own';

  let site: SampleSite | undefined;
  let llm: LocalLlmServer | undefined;
  let platform: DevPlatform | undefined;
  let api: ApiServer | undefined;
  let client: Client | undefined;
  let keepPlatform = false;
  // Ctrl-C while the demo runs: stop what it started (services, workers, model servers) before exiting.
  const interrupted = () => {
    print('\ninterrupted: stopping the demo platform …');
    void (async () => {
      await api?.close().catch(() => undefined);
      if (platform) {
        await platform.stop().catch(() => undefined);
        await stopLocalModelServers(parseSettings(env)).catch(() => 0);
      }
      await llm?.close().catch(() => undefined);
      await site?.close().catch(() => undefined);
      process.exit(130);
    })();
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    print(
      `LLM Twin demo — ${mode === 'own' ? 'starting its own local platform in this process' : 'using the running platform'}`,
    );
    let author = options.author ?? 'Maxime Labonne';
    let links = options.links ?? [];
    if (usesSampleSite) {
      site = await timed(
        'sample site',
        () => startSampleSite(),
        (s) => `${s.url} (${s.articles.length} articles of ${s.author})`,
      );
      author = site.author;
      links = site.links.slice(0, Math.max(1, options.articles ?? 2));
    }

    const llmMode = options.llm ?? (mode === 'own' ? 'local' : 'configured');
    if (llmMode === 'local') {
      const modelPath = defaultLocalModelPath(env);
      if (!existsSync(modelPath)) {
        throw new Error(`${modelPath} is missing: run \`bash scripts/install-local-llm.sh\` (Gemma 3 270M, offline)`);
      }
      llm = await timed(
        'local LLM (Gemma 3 270M)',
        () => startLocalLlmServer({ modelPath, threads: 1 }),
        (s) => `${s.url} model ${s.model}`,
      );
    }

    const endpointName = mode === 'own' ? 'llm-twin-demo' : (env.SERVING_ENDPOINT_NAME ?? 'llm-twin');
    if (mode === 'own') {
      // The workers are this process's children: everything they must do differently for the demo is set here,
      // only for them (and for this process's API).
      const demoDir = path.join(base.dataDir, 'demo');
      env.TWIN_DATA_DIR = demoDir;
      delete env.ARTIFACT_DIR;
      delete env.TRAINING_DIR;
      env.TEMPORAL_PORT = String(await freePort(base.temporal.devServerPort));
      env.TEMPORAL_UI_PORT = String(await freePort(base.temporal.uiPort));
      if (usesSampleSite) env.ETL_SSRF_ALLOW = [env.ETL_SSRF_ALLOW, '127.0.0.1'].filter(Boolean).join(',');
      if (llm) {
        env.OPENAI_BASE_URL = llm.url;
        env.LLM_MODEL = llm.model;
        env.OPENAI_API_KEY = env.OPENAI_API_KEY ?? 'local';
        // one request at a time is what the local server does: more in flight only waits into timeouts
        env.WORKER_LLM_CONCURRENCY = '1';
        // a 270M judge fails now and then (1 of 6 judgements in a test run) and the default gate allows 10 %:
        // the offline demo allows half, and says so
        env.EVAL_MAX_JUDGE_FAILURE_RATE = env.EVAL_MAX_JUDGE_FAILURE_RATE ?? '0.5';
      }
      env.TRAINING_BACKEND = options.trainingBackend ?? 'local';
      env.SERVING_BACKEND = options.deploymentBackend ?? 'local';
      env.SERVING_ENDPOINT_NAME = endpointName;
      env.LOG_LEVEL = env.LOG_LEVEL ?? 'warn';
      env.LOG_FORMAT = env.LOG_FORMAT ?? 'pretty';
      const settings = parseSettings(env);
      platform = await timed(
        'platform (Temporal + Web UI, FerretDB, Qdrant stand-in, workers)',
        () => startDevPlatform(settings, (line) => print(`    ${line}`)),
        (p) => p.webUi ?? '',
      );
      Object.assign(env, platform.env);
    } else {
      adoptRunningPlatform(base.dataDir, env);
    }
    const settings = parseSettings(env);

    let baseModel = options.baseModel;
    let tinyBase = false;
    const trainingBackend = options.trainingBackend ?? (mode === 'own' ? 'local' : settings.training.backend);
    if (!baseModel && trainingBackend === 'local') {
      const dir = await timed('tiny base model', () =>
        ensureTinyBaseModel(settings, path.join(settings.dataDir, 'tiny-base')),
      );
      baseModel = `file://${dir}`;
      tinyBase = true;
    }

    // Gemma 3 270M rarely writes a valid preference triple (its `chosen` must be a verbatim passage): in a test run
    // on one article it made 0 rows, and DPO has nothing to train on. With the local LLM the demo trains SFT only
    // unless asked (`skipDpo: false`, CLI --dpo).
    const skipDpo = options.skipDpo ?? Boolean(llm);
    if (skipDpo && llm && options.skipDpo === undefined) {
      print('  (local Gemma: SFT only — it rarely writes valid preference triples; --dpo to try DPO anyway)');
    }
    client = await connectClient(settings.temporal);
    const input: EndToEndInput = {
      authors: [{ name: author, links }],
      trainingBackend,
      ...(baseModel ? { baseModel } : {}),
      ...(trainingBackend === 'local'
        ? { hyperparameters: { sft: TINY_MODEL_HYPERPARAMETERS, dpo: TINY_MODEL_HYPERPARAMETERS } }
        : {}),
      ...(skipDpo ? { skipDpo: true } : {}),
      ...(llm ? { llmModel: llm.model, datasets: { batchSize: 2 } } : {}),
      evaluation: {
        maxSamples: options.maxSamples ?? 4,
        ...(trainingBackend === 'local' && !options.baseModel ? { thresholds: DEMO_THRESHOLDS } : {}),
      },
      deployment: { backend: options.deploymentBackend ?? settings.serving.backend, endpointName },
      ...(options.approval ? { approval: { required: true, timeout: '1 hour', onTimeout: 'reject' } } : {}),
    };
    const workflowId = `demo-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    const handle = await client.workflow.start('endToEnd', {
      taskQueue: 'twin-pipelines',
      workflowId,
      args: [input],
    });
    const webUi = platform?.webUi ?? (mode === 'running' ? `http://127.0.0.1:${settings.temporal.uiPort}` : undefined);
    const webUiLink = webUi
      ? `${webUi}/namespaces/${settings.temporal.namespace}/workflows/${encodeURIComponent(workflowId)}/${handle.firstExecutionRunId}/history`
      : undefined;
    print(`endToEnd started: ${workflowId}`);
    if (webUiLink) print(`  Web UI: ${webUiLink}`);
    print(
      `  author ${author}, ${links.length} links, training ${trainingBackend}, base ${baseModel ?? settings.training.baseModel}`,
    );

    // Follow the run: print every stage change from the progress query.
    const pipelineStarted = Date.now();
    const seen = new Map<StageName, { status: string; since: number }>();
    let approved = false;
    const resultPromise = handle.result() as Promise<EndToEndResult>;
    let done = false;
    void resultPromise.then(
      () => (done = true),
      () => (done = true),
    );
    const observe = async () => {
      const progress = await handle.query<PipelineProgress>('progress').catch(() => undefined);
      if (!progress) return;
      for (const stage of STAGES) {
        const s = progress.stages[stage];
        const before = seen.get(stage);
        if (!s || s.status === 'pending' || before?.status === s.status) continue;
        const now = Date.now();
        if (s.status === 'running') {
          print(
            `  ▶ ${stage} running${s.workflowIds.length ? ` (${s.workflowIds.map((w) => w.split('/').pop()).join(', ')})` : ''}`,
          );
          seen.set(stage, { status: s.status, since: now });
        } else {
          const since = before?.since ?? now;
          const timing: StageTiming = { stage, seconds: seconds(now - since), status: s.status };
          if (s.detail) timing.detail = s.detail;
          timings.push(timing);
          const mark = s.status === 'completed' ? '✔' : s.status === 'skipped' ? '·' : '✖';
          print(`  ${mark} ${stage} ${s.status} (${timing.seconds} s)${s.detail ? ` — ${s.detail}` : ''}`);
          if (s.artifacts.length) print(`      artifacts: ${s.artifacts.join(', ')}`);
          seen.set(stage, { status: s.status, since: now });
        }
      }
      if (options.approval && progress.status === 'awaiting-approval' && !approved) {
        approved = true;
        await handle.executeUpdate('approveDeployment', {
          args: [{ approved: true, reviewer: 'twin-demo', comment: 'auto-approved by twin demo (not a human review)' }],
        });
        print('  ✔ approval: auto-approved by twin demo (reviewer "twin-demo" — not a human review)');
      }
    };
    while (!done) {
      await observe();
      await new Promise((r) => setTimeout(r, 2000));
    }
    await observe();
    const result = await resultPromise;
    timings.push({ stage: 'endToEnd (total)', seconds: seconds(Date.now() - pipelineStarted), status: result.status });
    print(`endToEnd ${result.status}: ${result.reason}`);
    const gate = result.gate;
    print(
      `  gate: ${gate.passed ? 'passed' : 'failed'} — accuracy ${fmt(gate.scores, 'accuracy')}, style ${fmt(gate.scores, 'style')}${gate.reasons.length ? ` (${gate.reasons.join('; ')})` : ''}`,
    );
    if (result.deployment) {
      print(
        `  endpoint ${result.deployment.endpointName} (${result.deployment.backend}) serves ${result.deployment.modelVersion}`,
      );
    }
    if (!result.deployment) throw new Error(`nothing was deployed (${result.status}: ${result.reason})`);

    // One question through the REST API, answered by the deployed model.
    const apiEnv: NodeJS.ProcessEnv = {
      ...env,
      RAG_GENERATOR: 'endpoint',
      RAG_ENDPOINT_NAME: result.deployment.endpointName,
      API_ALLOW_NO_KEYS: 'true',
    };
    if (tinyBase) {
      // The tiny model reads 1,024 positions with a 600-token vocabulary (~3 of its tokens per embedder token):
      // a small context budget and a short answer keep the prompt inside its window.
      apiEnv.RAG_CONTEXT_TOKENS = '150';
      apiEnv.RAG_MAX_TOKENS = '48';
      print('  (tiny model: RAG context 150 tokens, answers of at most 48 tokens)');
    }
    const apiSettings = parseSettings(apiEnv);
    api = await timed(
      'API (in process)',
      () => startApiServer(apiSettings, { host: '127.0.0.1', port: 0 }),
      (a) => a.url,
    );
    const question = options.question ?? DEFAULT_QUESTION;
    print(`Q: ${question}`);
    const answer = await timed('RAG answer', async () => {
      const response = await fetch(`${api!.url}/rag`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: question, author }),
      });
      if (!response.ok) throw new Error(`POST /rag → ${response.status}: ${await response.text()}`);
      return (await response.json()) as RagAnswer;
    });
    print(`A (${answer.model}): ${answer.answer.trim() || '(empty answer)'}`);
    print('Sources:');
    for (const [i, s] of answer.sources.entries()) {
      print(
        `  [${i + 1}] ${s.title ?? s.documentId} — ${s.authorName}${s.link ? ` — ${s.link}` : ''} (score ${s.score.toFixed(3)})`,
      );
    }
    const totalSeconds = seconds(Date.now() - t0);
    print('');
    print('Wall time per stage:');
    for (const t of timings) print(`  ${t.stage.padEnd(58)} ${String(t.seconds).padStart(7)} s  ${t.status}`);
    print(`  ${'total'.padEnd(58)} ${String(totalSeconds).padStart(7)} s`);
    if (webUiLink) print(`Web UI of the run: ${webUiLink}`);
    keepPlatform = Boolean(options.keep && platform);
    return {
      platform: mode,
      temporalAddress: settings.temporal.address ?? '',
      namespace: settings.temporal.namespace,
      workflowId,
      runId: handle.firstExecutionRunId,
      webUi,
      webUiLink,
      result,
      answer,
      question,
      timings,
      totalSeconds,
      ...(keepPlatform ? { platformHandle: platform } : {}),
    };
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    await api?.close().catch(() => undefined);
    await client?.connection.close().catch(() => undefined);
    if (platform && !keepPlatform) {
      await platform.stop().catch(() => undefined);
      await stopLocalModelServers(parseSettings(env)).catch(() => 0);
    }
    await llm?.close().catch(() => undefined);
    await site?.close().catch(() => undefined);
  }
}

function fmt(scores: EndToEndResult['gate']['scores'], key: 'accuracy' | 'style'): string {
  return scores[key].toFixed(2);
}
