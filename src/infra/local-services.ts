/**
 * Starts the project's real local services as child processes on 127.0.0.1, for tests and `twin dev`:
 * Temporal dev server (+ Web UI), FerretDB (MongoDB wire protocol on SQLite), moto (AWS) and the Qdrant
 * stand-in. Binaries come from the installers in scripts/ (see docs/services.md).
 *
 * Each service runs in its own process group, watched by a tiny shell watchdog: if this Node process dies without
 * calling stop() (crash, SIGKILL, test-runner timeout), the watchdog sees its stdin pipe close and tears the group
 * down, so no orphaned servers are left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { createServer } from 'node:net';
import { delimiter, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { MongoClient } from 'mongodb';
import { logger } from './logger';

// ---------------------------------------------------------------------------------------------------------------
// Public types

export interface LocalService {
  /** 'temporal' | 'ferretdb' | 'moto' | 'qdrant-standin'. */
  readonly name: string;
  /**
   * How a client reaches it: `127.0.0.1:PORT` for Temporal (gRPC address, no scheme), `mongodb://127.0.0.1:PORT/`
   * for FerretDB, `http://127.0.0.1:PORT` for moto and the Qdrant stand-in.
   */
  readonly url: string;
  readonly port: number;
  /** PID of the server process; it leads its own process group. */
  readonly pid: number;
  /** stdout + stderr of the server, appended across restarts. */
  readonly logFile: string;
  readonly dataDir: string;
  /** Time from spawn to the readiness probe answering. */
  readonly startupMs: number;
  /** True once the server process has exited (stopped or crashed). Safe to call detached from the object. */
  readonly exited: () => boolean;
  /**
   * SIGTERM to the process group, SIGKILL after the grace period; resolves when every process of it is gone.
   * Idempotent; safe to call detached from the object.
   */
  readonly stop: () => Promise<void>;
}

export interface TemporalDevServer extends LocalService {
  /** gRPC address `127.0.0.1:PORT` (same as url), for `Connection.connect({ address })`. */
  readonly address: string;
  /** Web UI, `http://127.0.0.1:UIPORT`. */
  readonly uiUrl: string;
  readonly uiPort: number;
  readonly namespace: string;
}

export type SearchAttributeKind = 'Keyword' | 'Text' | 'Int' | 'Double' | 'Bool' | 'Datetime' | 'KeywordList';

export interface StartOptions {
  /** Directory for the service's state and its log file; created when missing. */
  dataDir: string;
  /** Port to listen on; a free one is picked (and retried on a bind race) when omitted. */
  port?: number;
  /** Absolute path of the executable; default: findBinary(). */
  binary?: string;
  /** How long to wait for the service to answer (default 120 s). */
  readyTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL (default 10 s). */
  stopGraceMs?: number;
  /** Extra environment for the child (merged over process.env). */
  env?: Record<string, string>;
}

export interface TemporalStartOptions extends StartOptions {
  uiPort?: number;
  /** Namespace created at start (the `default` namespace always exists). Default: 'default'. */
  namespace?: string;
  /** Custom search attributes registered in every namespace at start. */
  searchAttributes?: Record<string, SearchAttributeKind>;
  /** `--dynamic-config-value KEY=JSON` pairs. */
  dynamicConfig?: Record<string, unknown>;
  /** `--log-level` of the server (default 'warn'). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'never';
}

export interface QdrantStandinStartOptions extends StartOptions {
  /** Python interpreter with qdrant-client installed; default `$TWIN_HOME/venv/bin/python`. */
  python?: string;
  /** The stand-in's server.py; default scripts/services/qdrant_standin/server.py of this repository. */
  script?: string;
  /** Storage directory passed as --path; default `<dataDir>/storage`. */
  storageDir?: string;
}

/** A service binary is not installed: the message names the script that installs it. Print the message, not a stack. */
export class MissingBinaryError extends Error {
  constructor(
    readonly binary: string,
    readonly installScript: string,
    detail?: string,
    problem = 'not found',
  ) {
    super(`${describeBinary(binary)} ${problem}${detail ? ` (${detail})` : ''}: run \`bash ${installScript}\``);
    this.name = 'MissingBinaryError';
    // An operator fix, not a bug: keep stack traces out of whatever prints this error.
    this.stack = `${this.name}: ${this.message}`;
  }
}

/** The child exited, or did not answer in time, before it was ready. `logTail` holds the last lines of its log. */
export class ServiceStartError extends Error {
  constructor(
    readonly service: string,
    reason: string,
    readonly logFile: string,
    readonly logTail: string,
  ) {
    super(`${service} failed to start: ${reason} (log: ${logFile})\n--- last lines of the log ---\n${logTail}`);
    this.name = 'ServiceStartError';
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Binaries

/** Where the installers put things: `$TWIN_HOME`, default `~/.cache/llm-twin`. */
export function twinHome(): string {
  return process.env.TWIN_HOME || join(homedir(), '.cache', 'llm-twin');
}

const INSTALL_SCRIPTS: Record<string, { label: string; script: string }> = {
  temporal: { label: 'temporal CLI', script: 'scripts/install-temporal.sh' },
  ferretdb: { label: 'ferretdb', script: 'scripts/install-ferretdb.sh' },
  moto_server: { label: 'moto_server', script: 'scripts/install-moto.sh' },
  python: { label: 'Qdrant stand-in Python venv', script: 'scripts/install-qdrant-standin.sh' },
};

function describeBinary(name: string): string {
  return INSTALL_SCRIPTS[name]?.label ?? name;
}

function isExecutableFile(path: string): boolean {
  try {
    const stats = statSync(path);
    return stats.isFile() && (stats.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/**
 * Resolves a service executable: `$TWIN_HOME/bin/<name>`, then `$TWIN_HOME/venv/bin/<name>`, then PATH.
 * Throws MissingBinaryError naming the installer when none is found.
 */
export function findBinary(name: string): string {
  const home = twinHome();
  const candidates = [join(home, 'bin', name), join(home, 'venv', 'bin', name)];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir) candidates.push(join(dir, name));
  }
  const found = candidates.find(isExecutableFile);
  if (found) return found;
  const script = INSTALL_SCRIPTS[name]?.script ?? 'scripts/install-services.sh';
  throw new MissingBinaryError(name, script, `looked in ${join(home, 'bin')}, ${join(home, 'venv', 'bin')} and PATH`);
}

/** Asks the kernel for a free TCP port on 127.0.0.1 (bind to port 0, read it, release it). */
export async function getFreePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('could not read the port of a bound socket'));
        return;
      }
      server.close(() => resolvePort(address.port));
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Process supervision

/**
 * The watchdog: `sh -c WATCHDOG llm-twin-watchdog PGID TICKS`, a separate child in its own session whose stdin is
 * a pipe from this Node process. When the pipe closes (stop() was called, or Node died without calling it) it
 * SIGTERMs the service's process group, waits up to TICKS x 0.5 s, then SIGKILLs whatever is left, and exits.
 * It is not part of the service's group, so stop() never waits on it (nor on its zombie under a slow init).
 * (dash's kill builtin takes no '--' option: 'kill -TERM -PGID' is the portable spelling.)
 */
const WATCHDOG = `
while read -r _; do :; done
kill -TERM -"$1" 2>/dev/null
i=0
while kill -0 -"$1" 2>/dev/null && [ "$i" -lt "$2" ]; do sleep 0.5; i=$((i + 1)); done
kill -KILL -"$1" 2>/dev/null
exit 0
`;

const DEFAULT_READY_TIMEOUT_MS = 120_000;
const DEFAULT_STOP_GRACE_MS = 10_000;
const MAX_PORT_ATTEMPTS = 3;
const PROBE_TIMEOUT_MS = 10_000;

interface Probe {
  /** Resolves when the service answers; throws (any error) while it does not yet. */
  (): Promise<void>;
}

interface LaunchSpec {
  name: string;
  command: string;
  args: string[];
  dataDir: string;
  logFile: string;
  env?: Record<string, string>;
  probe: Probe;
  readyTimeoutMs: number;
  stopGraceMs: number;
  /** Maps a start failure seen in the log to a better error (e.g. a missing Python module). */
  diagnose?: (logTail: string) => Error | undefined;
}

interface Launched {
  pid: number;
  startupMs: number;
  exited: () => boolean;
  stop: () => Promise<void>;
}

function readLogSince(logFile: string, offset: number): string {
  try {
    return readFileSync(logFile).subarray(offset).toString('utf8');
  } catch {
    return '';
  }
}

function lastLines(text: string, maxLines: number): string {
  const trimmed = text.trimEnd();
  return trimmed ? trimmed.split('\n').slice(-maxLines).join('\n') : '(the service wrote nothing)';
}

function processGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // Already gone.
  }
}

async function waitFor(condition: () => boolean, timeoutMs: number, intervalMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
  return true;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  const timer = new AbortController();
  try {
    return await Promise.race([
      promise,
      sleep(ms, undefined, { signal: timer.signal }).then(() => {
        throw new Error(message);
      }),
    ]);
  } finally {
    timer.abort();
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function launch(spec: LaunchSpec): Promise<Launched> {
  mkdirSync(spec.dataDir, { recursive: true });
  const logFd = openSync(spec.logFile, 'a');
  writeSync(logFd, `\n=== ${new Date().toISOString()} ${spec.command} ${spec.args.join(' ')}\n`);
  const logStart = statSync(spec.logFile).size;
  let child: ChildProcess;
  try {
    // Its own process group (detached), so stop() can signal the server and anything it forks, and so a Ctrl-C
    // meant for the terminal's foreground group does not reach it behind this process's back.
    child = spawn(spec.command, spec.args, {
      cwd: spec.dataDir,
      detached: true,
      stdio: ['ignore', logFd, logFd],
      env: { ...process.env, ...spec.env },
    });
  } finally {
    closeSync(logFd);
  }
  const started = Date.now();
  let exitInfo: string | undefined;
  let spawnError: Error | undefined;
  let watchdog: ChildProcess | undefined;
  const releaseWatchdog = (): void => {
    watchdog?.stdin?.destroy();
  };
  child.on('error', (error) => {
    spawnError = error;
    exitInfo ??= `could not be spawned: ${error.message}`;
  });
  child.on('exit', (code, signal) => {
    exitInfo = signal ? `exited on ${signal}` : `exited with code ${String(code)}`;
    releaseWatchdog();
  });
  // The server must not keep this Node process alive: stop() or the watchdog ends it.
  child.unref();

  const pid = child.pid;
  if (pid !== undefined) {
    const ticks = String(Math.max(1, Math.ceil(spec.stopGraceMs / 500)));
    watchdog = spawn('/bin/sh', ['-c', WATCHDOG, 'llm-twin-watchdog', String(pid), ticks], {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    watchdog.on('error', (error) => logger().warn({ service: spec.name, err: error }, 'local service watchdog failed'));
    watchdog.stdin?.on('error', () => undefined);
    watchdog.unref();
    (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  }
  const exited = (): boolean => exitInfo !== undefined || child.exitCode !== null || child.signalCode !== null;

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      releaseWatchdog();
      if (pid === undefined) return;
      signalGroup(pid, 'SIGTERM');
      const gone = (): boolean => exited() && !processGroupAlive(pid);
      if (!(await waitFor(gone, spec.stopGraceMs))) {
        logger().warn({ service: spec.name, servicePid: pid }, 'local service ignored SIGTERM; sending SIGKILL');
        signalGroup(pid, 'SIGKILL');
        if (!(await waitFor(gone, 5_000))) {
          throw new Error(`${spec.name} (pid ${pid}) is still running after SIGKILL`);
        }
      }
    })();
    return stopping;
  };

  const fail = async (reason: string): Promise<never> => {
    await stop().catch(() => undefined);
    // Only this run's output: the log file is appended to across restarts.
    const output = readLogSince(spec.logFile, logStart);
    throw spec.diagnose?.(output) ?? new ServiceStartError(spec.name, reason, spec.logFile, lastLines(output, 40));
  };

  if (pid === undefined) {
    await sleep(0);
    return fail(spawnError ? `could not spawn ${spec.command}: ${spawnError.message}` : 'could not spawn');
  }

  const deadline = started + spec.readyTimeoutMs;
  let lastProbeError = 'no answer yet';
  for (;;) {
    if (exited()) return fail(`${spec.command} ${exitInfo ?? 'exited'} before it was ready`);
    try {
      await withTimeout(spec.probe(), PROBE_TIMEOUT_MS, 'probe timed out');
      break;
    } catch (error) {
      lastProbeError = errorText(error);
    }
    if (exited()) return fail(`${spec.command} ${exitInfo ?? 'exited'} before it was ready`);
    if (Date.now() >= deadline) {
      return fail(`no answer within ${Math.round(spec.readyTimeoutMs / 1000)} s (last probe: ${lastProbeError})`);
    }
    await sleep(250);
  }
  return { pid, startupMs: Date.now() - started, exited, stop };
}

const ADDRESS_IN_USE = /address already in use|EADDRINUSE|Errno 98/i;

/** Launches with a picked port, picking another one when the first was taken between the probe bind and the server's bind. */
async function launchOnPort<T>(
  name: string,
  requestedPort: number | undefined,
  start: (port: number) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const port = requestedPort ?? (await getFreePort());
    try {
      return await start(port);
    } catch (error) {
      const retry =
        requestedPort === undefined &&
        attempt < MAX_PORT_ATTEMPTS &&
        error instanceof ServiceStartError &&
        ADDRESS_IN_USE.test(error.logTail);
      if (!retry) throw error;
      logger().warn({ service: name, port }, 'port was taken before the service bound it; retrying on another port');
    }
  }
}

function makeService<Extra extends object>(
  name: string,
  url: string,
  port: number,
  dataDir: string,
  logFile: string,
  launched: Launched,
  extra: Extra,
): LocalService & Extra {
  logger().info({ service: name, url, servicePid: launched.pid, startupMs: launched.startupMs }, 'local service ready');
  return {
    name,
    url,
    port,
    pid: launched.pid,
    logFile,
    dataDir,
    startupMs: launched.startupMs,
    exited: launched.exited,
    stop: launched.stop,
    ...extra,
  };
}

async function httpOk(url: string): Promise<void> {
  const response = await fetch(url, { signal: AbortSignal.timeout(3_000) });
  await response.body?.cancel();
  if (response.status !== 200) throw new Error(`GET ${url} answered ${response.status}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Services

/**
 * `temporal server start-dev` (Temporal Server 1.29 + Web UI 2.42, SQLite state in `<dataDir>/temporal.sqlite`).
 * Ready when the namespace can be described over gRPC and the UI answers 200.
 */
export async function startTemporalDevServer(options: TemporalStartOptions): Promise<TemporalDevServer> {
  const binary = options.binary ?? findBinary('temporal');
  const dataDir = resolve(options.dataDir);
  const logFile = join(dataDir, 'temporal.log');
  const namespace = options.namespace ?? 'default';
  const searchAttributes = options.searchAttributes ?? {};
  for (const [key, kind] of Object.entries(searchAttributes)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new Error(`invalid search attribute name ${JSON.stringify(key)}`);
    if (!Object.hasOwn(SEARCH_ATTRIBUTE_KINDS, kind))
      throw new Error(`invalid search attribute type ${String(kind)} for ${key}`);
  }
  return launchOnPort('temporal', options.port, async (port) => {
    const uiPort = options.uiPort ?? (await getFreePort());
    const address = `127.0.0.1:${port}`;
    const uiUrl = `http://127.0.0.1:${uiPort}`;
    const args = [
      'server',
      'start-dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--ui-port',
      String(uiPort),
      '--db-filename',
      join(dataDir, 'temporal.sqlite'),
      '--log-level',
      options.logLevel ?? 'warn',
      '--color',
      'never',
    ];
    if (namespace !== 'default') args.push('--namespace', namespace);
    for (const [key, kind] of Object.entries(searchAttributes)) args.push('--search-attribute', `${key}=${kind}`);
    for (const [key, value] of Object.entries(options.dynamicConfig ?? {})) {
      args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
    }
    const launched = await launch({
      name: 'temporal',
      command: binary,
      args,
      dataDir,
      logFile,
      env: options.env,
      readyTimeoutMs: options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
      stopGraceMs: options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS,
      probe: async () => {
        const connection = await Connection.connect({ address, connectTimeout: '3s' });
        try {
          await connection.workflowService.describeNamespace({ namespace });
        } finally {
          await connection.close();
        }
        await httpOk(uiUrl);
      },
    });
    // With an existing --db-filename the server keeps the namespace it already has: register attributes added since.
    await ensureSearchAttributes(address, namespace, searchAttributes).catch(async (error: unknown) => {
      await launched.stop();
      throw error;
    });
    return makeService('temporal', address, port, dataDir, logFile, launched, { address, uiUrl, uiPort, namespace });
  });
}

/** temporal.api.enums.v1.IndexedValueType numbers (stable in the API protos). */
const SEARCH_ATTRIBUTE_KINDS: Record<SearchAttributeKind, number> = {
  Text: 1,
  Keyword: 2,
  Int: 3,
  Double: 4,
  Bool: 5,
  Datetime: 6,
  KeywordList: 7,
};

async function ensureSearchAttributes(
  address: string,
  namespace: string,
  wanted: Record<string, SearchAttributeKind>,
): Promise<void> {
  if (Object.keys(wanted).length === 0) return;
  const connection = await Connection.connect({ address, connectTimeout: '10s' });
  try {
    const existing = await connection.operatorService.listSearchAttributes({ namespace });
    const have = existing.customAttributes ?? {};
    const missing: Record<string, number> = {};
    for (const [key, kind] of Object.entries(wanted)) {
      const code = SEARCH_ATTRIBUTE_KINDS[kind];
      const current = have[key];
      if (current === undefined || current === null) missing[key] = code;
      else if (Number(current) !== code) {
        throw new Error(
          `search attribute ${key} exists in namespace ${namespace} with another type (${String(current)}), wanted ${kind}`,
        );
      }
    }
    if (Object.keys(missing).length > 0) {
      await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
    }
  } finally {
    await connection.close();
  }
}

/**
 * FerretDB 1.x with its SQLite handler (`<dataDir>/sqlite/`): MongoDB wire protocol at `mongodb://127.0.0.1:PORT/`.
 * Its debug HTTP listener (default 127.0.0.1:8088, which two instances would fight over) and telemetry are off.
 */
export async function startFerretDb(options: StartOptions): Promise<LocalService> {
  const binary = options.binary ?? findBinary('ferretdb');
  const dataDir = resolve(options.dataDir);
  const logFile = join(dataDir, 'ferretdb.log');
  const sqliteDir = join(dataDir, 'sqlite');
  mkdirSync(sqliteDir, { recursive: true });
  return launchOnPort('ferretdb', options.port, async (port) => {
    const url = `mongodb://127.0.0.1:${port}/`;
    const launched = await launch({
      name: 'ferretdb',
      command: binary,
      args: [
        '--handler=sqlite',
        `--sqlite-url=${pathToFileURL(sqliteDir).href}/`,
        `--listen-addr=127.0.0.1:${port}`,
        `--state-dir=${dataDir}`,
        '--debug-addr=-',
        '--telemetry=disable',
        '--log-level=warn',
      ],
      dataDir,
      logFile,
      env: options.env,
      readyTimeoutMs: options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
      stopGraceMs: options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS,
      probe: async () => {
        const client = new MongoClient(url, {
          serverSelectionTimeoutMS: 2_000,
          connectTimeoutMS: 2_000,
          directConnection: true,
        });
        try {
          await client.connect();
          await client.db('admin').command({ ping: 1 });
        } finally {
          await client.close();
        }
      },
      diagnose: (log) =>
        log.includes('build/version/version.txt')
          ? new MissingBinaryError(
              'ferretdb',
              INSTALL_SCRIPTS.ferretdb!.script,
              `${binary} was built by a plain \`go install\` and panics at start`,
              'is unusable',
            )
          : undefined,
    });
    return makeService('ferretdb', url, port, dataDir, logFile, launched, {});
  });
}

/** moto's stand-alone server (all AWS services in memory) at `http://127.0.0.1:PORT`; ready when GET /moto-api/ is 200. */
export async function startMoto(options: StartOptions): Promise<LocalService> {
  const binary = options.binary ?? findBinary('moto_server');
  const dataDir = resolve(options.dataDir);
  const logFile = join(dataDir, 'moto.log');
  return launchOnPort('moto', options.port, async (port) => {
    const url = `http://127.0.0.1:${port}`;
    const launched = await launch({
      name: 'moto',
      command: binary,
      args: ['-H', '127.0.0.1', '-p', String(port)],
      dataDir,
      logFile,
      env: options.env,
      readyTimeoutMs: options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
      stopGraceMs: options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS,
      probe: () => httpOk(`${url}/moto-api/`),
    });
    return makeService('moto', url, port, dataDir, logFile, launched, {});
  });
}

/** The repository root: the nearest folder above this file with the project's package.json. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        const parsed = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown };
        if (parsed.name === 'llm-twin-temporal') return dir;
      } catch {
        // Not ours; keep walking up.
      }
    }
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}

/** Default location of the Qdrant stand-in's server script. */
export function qdrantStandinScript(): string {
  return join(repoRoot(), 'scripts', 'services', 'qdrant_standin', 'server.py');
}

/**
 * The Qdrant stand-in (REST API of Qdrant over qdrant-client's local mode) at `http://127.0.0.1:PORT`;
 * ready when GET /healthz is 200.
 */
export async function startQdrantStandin(options: QdrantStandinStartOptions): Promise<LocalService> {
  const python = options.python ?? options.binary ?? join(twinHome(), 'venv', 'bin', 'python');
  if (!isExecutableFile(python)) {
    throw new MissingBinaryError('python', INSTALL_SCRIPTS.python!.script, `no Python at ${python}`);
  }
  const script = options.script ?? qdrantStandinScript();
  if (!existsSync(script)) throw new Error(`Qdrant stand-in script not found at ${script}`);
  const dataDir = resolve(options.dataDir);
  const storageDir = resolve(options.storageDir ?? join(dataDir, 'storage'));
  mkdirSync(storageDir, { recursive: true });
  const logFile = join(dataDir, 'qdrant-standin.log');
  return launchOnPort('qdrant-standin', options.port, async (port) => {
    const url = `http://127.0.0.1:${port}`;
    const launched = await launch({
      name: 'qdrant-standin',
      command: python,
      args: [script, '--host', '127.0.0.1', '--port', String(port), '--path', storageDir],
      dataDir,
      logFile,
      env: { PYTHONUNBUFFERED: '1', ...options.env },
      readyTimeoutMs: options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
      stopGraceMs: options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS,
      probe: () => httpOk(`${url}/healthz`),
      diagnose: (log) =>
        /ModuleNotFoundError|No module named/.test(log)
          ? new MissingBinaryError(
              'python',
              INSTALL_SCRIPTS.python!.script,
              `${python} lacks a module the stand-in needs`,
              'is incomplete',
            )
          : undefined,
    });
    return makeService('qdrant-standin', url, port, dataDir, logFile, launched, {});
  });
}

/** Stops services concurrently; waits for all, then rethrows the first failure. */
export async function stopAll(services: ReadonlyArray<LocalService | undefined>): Promise<void> {
  const results = await Promise.allSettled(services.map((service) => (service ? service.stop() : Promise.resolve())));
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
}
