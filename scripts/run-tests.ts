/**
 * Test runner: starts every real service the suite needs on free loopback ports (unless the matching URL is
 * already set), builds the workflow bundle once, runs all test files with Node's test runner, then stops
 * the services by PID. Usage: tsx scripts/run-tests.ts [test files or folders…]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SEARCH_ATTRIBUTE_DEFINITIONS } from '../src/domain/search-attributes';
import {
  startFerretDb,
  startMoto,
  startQdrantStandin,
  startTemporalDevServer,
  type LocalService as RunningService,
} from '../src/infra/local-services';
import { buildWorkflowBundle } from './build-workflow-bundle';

const ROOT = path.resolve(__dirname, '..');

async function testFiles(targets: string[]): Promise<string[]> {
  const found: string[] = [];
  const walk = async (target: string): Promise<void> => {
    const info = await stat(target);
    if (info.isDirectory()) {
      for (const entry of (await readdir(target)).sort()) {
        if (entry === 'fixtures' || entry === 'node_modules') continue;
        await walk(path.join(target, entry));
      }
    } else if (target.endsWith('.test.ts')) {
      found.push(target);
    }
  };
  for (const target of targets) await walk(path.resolve(ROOT, target));
  return found;
}

function log(message: string): void {
  process.stdout.write(`[run-tests] ${message}\n`);
}

async function main(): Promise<number> {
  const files = await testFiles(process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['test']);
  if (files.length === 0) throw new Error('no test files found');
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'twin-test-'));
  const services: RunningService[] = [];
  const env: Record<string, string> = {
    TWIN_TEST_TMP: tmp,
    TWIN_HOME: process.env.TWIN_HOME ?? path.join(os.homedir(), '.cache', 'llm-twin'),
    TWIN_DATA_DIR: path.join(tmp, 'data'),
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'testing',
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'testing',
    AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  };
  const started = Date.now();
  try {
    const starts: Promise<void>[] = [];
    if (!process.env.TEMPORAL_ADDRESS) {
      starts.push(
        startTemporalDevServer({
          dataDir: path.join(tmp, 'temporal'),
          searchAttributes: SEARCH_ATTRIBUTE_DEFINITIONS,
        }).then((s) => {
          services.push(s);
          env.TEMPORAL_ADDRESS = s.address;
          if (s.uiUrl) env.TEMPORAL_UI_URL = s.uiUrl;
        }),
      );
    }
    if (!process.env.MONGODB_URI) {
      starts.push(
        startFerretDb({ dataDir: path.join(tmp, 'ferretdb') }).then(
          (s) => void (services.push(s), (env.MONGODB_URI = s.url)),
        ),
      );
    }
    if (!process.env.QDRANT_URL) {
      starts.push(
        startQdrantStandin({ dataDir: path.join(tmp, 'qdrant') }).then(
          (s) => void (services.push(s), (env.QDRANT_URL = s.url)),
        ),
      );
    }
    if (!process.env.AWS_ENDPOINT_URL) {
      starts.push(
        startMoto({ dataDir: path.join(tmp, 'moto') }).then(
          (s) => void (services.push(s), (env.AWS_ENDPOINT_URL = s.url)),
        ),
      );
    }
    starts.push(
      buildWorkflowBundle(path.join(tmp, 'workflow-bundle.js')).then((file) => void (env.TWIN_WORKFLOW_BUNDLE = file)),
    );
    const results = await Promise.allSettled(starts);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0) throw new Error(failed.map((f) => (f.reason as Error).message).join('\n'));
    log(
      `services ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${services.map((s) => `${s.name}=${s.url}`).join(' ')}`,
    );

    const concurrency = process.env.TEST_CONCURRENCY ?? String(Math.max(1, os.availableParallelism() - 1));
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, ...files],
      { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...env } },
    );
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const code = await new Promise<number>((resolve) => child.once('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
    log(`tests finished in ${((Date.now() - started) / 1000).toFixed(1)} s (exit ${code})`);
    return code;
  } finally {
    await Promise.allSettled(services.map((s) => s.stop()));
    if (!process.env.KEEP_TEST_TMP) await rm(tmp, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`[run-tests] ${(error as Error).message}\n`);
    process.exit(1);
  },
);
