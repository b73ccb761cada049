/**
 * Local endpoints: jobs/serve/server.py (an OpenAI-compatible server over transformers) started detached in its own
 * process group, one per endpoint and model version, under `$SERVING_DIR/<endpoint>/<version>/` (server.json with
 * pid, port and URL; server.log). A server outlives the activity and the worker that started it; a retried start
 * adopts the running one.
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import OpenAI from 'openai';
import { extract as extractTar } from 'tar';
import { TrainingJobError } from '../training/backend';
import { killGroupAfterGrace, processGroupRunning, spawnDetached } from '../training/local';
import type { LocalServerRef, SmokeTestResult } from './types';

export interface LocalServingConfig {
  /** Python with torch + transformers ($TWIN_HOME/venv-train/bin/python). */
  python: string;
  /** Folder of the servers ($TWIN_DATA_DIR/serving). */
  dir: string;
  host: string;
  device: 'auto' | 'cpu' | 'cuda';
  /** jobs/serve; default: found from this file. */
  serveDir?: string;
  /** For a model version trained on SageMaker (`s3://…/model.tar.gz`): downloaded and unpacked once. */
  s3?: () => S3Client;
  /** Extra environment of the server (tests: SERVING_THREADS). */
  env?: Record<string, string>;
}

interface ServerFile {
  pid: number;
  host: string;
  port: number;
  url: string;
  model: string;
  modelDir: string;
  startedAt: string;
}

export type ServerHealth =
  | { state: 'ready'; model: string; device?: string; loadSeconds?: number }
  | { state: 'loading' }
  | { state: 'dead'; reason: string }
  | { state: 'unreachable'; reason: string };

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Folder-safe name of an endpoint or a model version. */
function safe(name: string): string {
  return name.replace(/[^a-zA-Z0-9._-]/g, '_');
}

export function serveDir(): string {
  return path.resolve(__dirname, '..', '..', 'jobs', 'serve');
}

export class LocalModelServers {
  constructor(private readonly config: LocalServingConfig) {}

  serverDir(endpointName: string, modelVersion: string): string {
    return path.join(this.config.dir, safe(endpointName), safe(modelVersion));
  }

  /** The model folder of a version: `file://` as is; `s3://…model.tar.gz` downloaded and unpacked once. */
  async modelFolder(modelVersion: string, artifactUri: string): Promise<string> {
    if (artifactUri.startsWith('file://')) return fileURLToPath(artifactUri);
    if (!artifactUri.startsWith('s3://')) return artifactUri;
    const target = path.join(this.config.dir, 'models', safe(modelVersion));
    if (await exists(path.join(target, 'config.json'))) return target;
    if (!this.config.s3)
      throw new TrainingJobError(`cannot read ${artifactUri}: no S3 client`, 'ConfigurationError', false);
    const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(artifactUri);
    if (!match?.[1] || !match[2])
      throw new TrainingJobError(`not an s3://bucket/key URI: ${artifactUri}`, 'ValidationError', false);
    const object = await this.config.s3().send(new GetObjectCommand({ Bucket: match[1], Key: match[2] }));
    if (!object.Body) throw new TrainingJobError(`empty S3 object ${artifactUri}`, 'ValidationError', false);
    const archive = `${target}.tar.gz`;
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(`${archive}.tmp`, await object.Body.transformToByteArray());
    await rename(`${archive}.tmp`, archive);
    const staging = `${target}.tmp`;
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    await extractTar({ file: archive, cwd: staging });
    await rm(target, { recursive: true, force: true });
    await rename(staging, target);
    await rm(archive, { force: true });
    return target;
  }

  private async readServer(dir: string): Promise<ServerFile | undefined> {
    return readJson<ServerFile>(path.join(dir, 'server.json'));
  }

  private toRef(file: ServerFile, dir: string, modelVersion: string, reused: boolean): LocalServerRef {
    return { modelVersion, pid: file.pid, port: file.port, url: file.url, dir, ...(reused ? { reused: true } : {}) };
  }

  /**
   * Starts a server for the version, or adopts the one already running for it (same folder, live process group,
   * /health naming the version). Resolves once the port is bound; the model loads after that (see `health`).
   */
  async start(input: { endpointName: string; modelVersion: string; artifactUri: string }): Promise<LocalServerRef> {
    const dir = this.serverDir(input.endpointName, input.modelVersion);
    const running = await this.readServer(dir);
    if (running && processGroupRunning(running.pid)) {
      const ref = this.toRef(running, dir, input.modelVersion, true);
      const health = await this.health(ref);
      if ((health.state === 'ready' && health.model === input.modelVersion) || health.state === 'loading') return ref;
      await this.stop(ref); // something else answers there: replace it
    }
    const modelDir = await this.modelFolder(input.modelVersion, input.artifactUri);
    if (
      !(await exists(path.join(modelDir, 'config.json'))) &&
      !(await exists(path.join(modelDir, 'adapter_config.json')))
    ) {
      throw new TrainingJobError(
        `model folder ${modelDir} has neither config.json nor adapter_config.json`,
        'ModelNotFound',
        false,
      );
    }
    await mkdir(dir, { recursive: true });
    await rm(path.join(dir, 'server.json'), { force: true });
    const serverPy = path.join(this.config.serveDir ?? serveDir(), 'server.py');
    const args = [
      serverPy,
      '--model-dir',
      modelDir,
      '--model-name',
      input.modelVersion,
      '--host',
      this.config.host,
      '--port',
      '0',
      '--state-file',
      path.join(dir, 'server.json'),
      '--device',
      this.config.device,
    ];
    let spawnError: Error | undefined;
    const pid = spawnDetached(this.config.python, args, {
      cwd: dir,
      logFile: path.join(dir, 'server.log'),
      ...(this.config.env ? { env: this.config.env } : {}),
      onError: (error) => (spawnError = error),
    });
    const deadline = Date.now() + 60_000;
    for (;;) {
      const file = await this.readServer(dir);
      if (file) return this.toRef(file, dir, input.modelVersion, false);
      if (spawnError)
        throw new TrainingJobError(
          `cannot start ${this.config.python}: ${spawnError.message}`,
          'ServerStartFailed',
          false,
        );
      if (pid === undefined || !processGroupRunning(pid) || Date.now() > deadline) {
        throw new TrainingJobError(
          `the model server for ${input.modelVersion} exited before it listened: ${await this.logTail(dir)}`,
          'ServerStartFailed',
          false,
        );
      }
      await sleep(100);
    }
  }

  async logTail(dir: string, lines = 5): Promise<string> {
    const text = await readFile(path.join(dir, 'server.log'), 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((line) => line.trim() && !line.includes('Loading weights'))
      .slice(-lines)
      .join(' | ');
  }

  running(ref: LocalServerRef): boolean {
    return processGroupRunning(ref.pid);
  }

  async health(ref: LocalServerRef, timeoutMs = 2_000): Promise<ServerHealth> {
    if (!processGroupRunning(ref.pid)) return { state: 'dead', reason: await this.logTail(ref.dir) };
    try {
      const response = await fetch(`${ref.url.replace(/\/v1\/?$/, '')}/health`, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      const body = (await response.json()) as {
        status?: string;
        model?: string;
        device?: string;
        loadSeconds?: number;
        error?: string;
      };
      if (response.ok && body.status === 'ok') {
        return {
          state: 'ready',
          model: body.model ?? '',
          ...(body.device ? { device: body.device } : {}),
          ...(body.loadSeconds !== undefined ? { loadSeconds: body.loadSeconds } : {}),
        };
      }
      if (body.status === 'failed') return { state: 'dead', reason: body.error ?? 'failed to load' };
      return { state: 'loading' };
    } catch (error) {
      return { state: 'unreachable', reason: String(error) };
    }
  }

  /**
   * SIGTERM to the server's group, SIGKILL after the grace period; no-op for a server that ended. The pid must still
   * be the one its server.json names and run server.py (a pid recorded long ago may belong to another process now).
   */
  async stop(ref: Pick<LocalServerRef, 'pid' | 'dir'>, graceMs = 10_000): Promise<boolean> {
    if (!processGroupRunning(ref.pid)) return false;
    const file = await this.readServer(ref.dir);
    if (file && file.pid !== ref.pid) return false;
    const cmdline = await readFile(`/proc/${ref.pid}/cmdline`, 'utf8').catch(() => undefined);
    if (cmdline !== undefined && !cmdline.includes('server.py')) return false;
    try {
      process.kill(-ref.pid, 'SIGTERM');
    } catch {
      return false;
    }
    await killGroupAfterGrace(ref.pid, graceMs);
    return true;
  }
}

/**
 * A chat completion through the `openai` client, as any consumer of the endpoint would call it: greedy, the
 * configured prompt; ok when the server answers with non-empty text under the expected model id.
 */
export async function smokeTestOpenAi(input: {
  url: string;
  model: string;
  prompt: string;
  maxTokens: number;
  timeoutMs: number;
}): Promise<SmokeTestResult> {
  const client = new OpenAI({ baseURL: input.url, apiKey: 'local', timeout: input.timeoutMs, maxRetries: 0 });
  const started = Date.now();
  try {
    const completion = await client.chat.completions.create({
      model: input.model,
      messages: [{ role: 'user', content: input.prompt }],
      max_tokens: input.maxTokens,
      temperature: 0,
    });
    const latencyMs = Date.now() - started;
    const text = completion.choices[0]?.message.content ?? '';
    if (completion.model !== input.model) {
      return {
        ok: false,
        latencyMs,
        error: `the server answers as model ${completion.model}, expected ${input.model}`,
      };
    }
    if (!text.trim()) return { ok: false, latencyMs, error: 'the model generated nothing' };
    return { ok: true, latencyMs, sample: text.slice(0, 200) };
  } catch (error) {
    return {
      ok: false,
      latencyMs: Date.now() - started,
      error: error instanceof Error ? error.message : String(error),
    };
  }
}
