import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import type { Settings } from '../config';
import { SEARCH_ATTRIBUTE_DEFINITIONS } from '../domain/search-attributes';
import {
  startFerretDb,
  startQdrantStandin,
  startTemporalDevServer,
  type LocalService as RunningService,
} from '../infra/local-services';
import { clearPlatformState, writePlatformState } from './platform-state';

const REPO_ROOT = path.resolve(__dirname, '..', '..');

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** The preferred port when free (stable addresses for a second terminal), else any free one. */
async function preferredPort(port: number): Promise<number | undefined> {
  return (await portIsFree(port)) ? port : undefined;
}

export interface DevPlatform {
  services: RunningService[];
  workers: ChildProcess;
  env: Record<string, string>;
  webUi?: string;
  stop(): Promise<void>;
}

/**
 * Starts the local platform: each service whose URL is not configured (Temporal dev server with a persistent
 * SQLite file and the Web UI, FerretDB, the Qdrant stand-in), then every worker in a child process.
 */
export async function startDevPlatform(settings: Settings, print: (line: string) => void): Promise<DevPlatform> {
  const dataDir = settings.dataDir;
  await mkdir(dataDir, { recursive: true });
  const services: RunningService[] = [];
  const env: Record<string, string> = {};
  let webUi: string | undefined;
  const stopServices = async () => {
    for (const service of [...services].reverse()) await service.stop().catch(() => undefined);
  };
  try {
    if (!settings.temporal.address) {
      const devPort = settings.temporal.devServerPort;
      if (!(await portIsFree(devPort))) {
        throw new Error(
          `port ${devPort} is taken: another Temporal server (or \`twin dev\`) is running. Stop it, or set TEMPORAL_ADDRESS=127.0.0.1:${devPort} to use it.`,
        );
      }
      print('starting Temporal dev server …');
      const temporal = await startTemporalDevServer({
        dataDir: path.join(dataDir, 'temporal'),
        port: devPort,
        uiPort: await preferredPort(settings.temporal.uiPort),
        namespace: settings.temporal.namespace,
        searchAttributes: SEARCH_ATTRIBUTE_DEFINITIONS,
      });
      services.push(temporal);
      env.TEMPORAL_ADDRESS = temporal.address;
      webUi = temporal.uiUrl;
    }
    if (!settings.mongo.uri) {
      print('starting FerretDB (MongoDB protocol) …');
      const ferret = await startFerretDb({ dataDir: path.join(dataDir, 'ferretdb'), port: await preferredPort(27017) });
      services.push(ferret);
      env.MONGODB_URI = ferret.url;
    }
    if (!settings.qdrant.url) {
      print('starting Qdrant stand-in …');
      const qdrant = await startQdrantStandin({
        dataDir: path.join(dataDir, 'qdrant'),
        port: await preferredPort(6333),
      });
      services.push(qdrant);
      env.QDRANT_URL = qdrant.url;
    }
    env.ARTIFACT_DIR = settings.artifacts.dir;
    print('starting workers …');
    const workers = spawn(process.execPath, [require.resolve('tsx/cli'), path.join(REPO_ROOT, 'workers', 'all.ts')], {
      cwd: REPO_ROOT,
      env: { LOG_FORMAT: 'pretty', ...process.env, ...env, TWIN_EXIT_WITH_PARENT: String(process.pid) },
      stdio: 'inherit',
    });
    await writePlatformState(dataDir, {
      pid: process.pid,
      startedAt: new Date().toISOString(),
      env,
      webUi,
      processes: [...services.map((s) => ({ name: s.name, pid: s.pid })), { name: 'workers', pid: workers.pid ?? -1 }],
    });
    const stop = async () => {
      if (workers.exitCode === null && workers.signalCode === null) {
        const exited = new Promise((resolve) => workers.once('exit', resolve));
        workers.kill('SIGTERM');
        const forced = setTimeout(() => workers.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(forced);
      }
      await stopServices();
      await clearPlatformState(dataDir);
    };
    return { services, workers, env, webUi, stop };
  } catch (error) {
    await stopServices();
    throw error;
  }
}
