import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';

const ROOT = path.resolve(__dirname, '..', '..');

export interface WorkerProcess {
  child: ChildProcess;
  /** Log lines seen so far (pino JSON), for assertions and failure messages. */
  lines: string[];
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts real worker processes (workers/main.ts) the way production does, and resolves once they poll.
 * A separate process, so a test can kill it mid-activity like a crashed container.
 */
export async function startWorkerProcess(
  queues: string[],
  env: Record<string, string> = {},
  timeoutMs = 120_000,
): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'workers', 'main.ts')], {
    cwd: ROOT,
    // TWIN_EXIT_WITH_PARENT: if this test process dies, the workers stop instead of lingering as orphans.
    env: {
      ...process.env,
      LOG_LEVEL: 'info',
      ...env,
      TWIN_WORKER_QUEUES: queues.join(','),
      TWIN_EXIT_WITH_PARENT: String(process.pid),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`workers not ready after ${timeoutMs} ms:\n${lines.slice(-20).join('\n')}`)),
      timeoutMs,
    );
    for (const stream of [child.stdout, child.stderr]) {
      readline.createInterface({ input: stream }).on('line', (line) => {
        lines.push(line);
        if (line.includes('"workers running"')) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`workers exited with ${code} before they were ready:\n${lines.slice(-20).join('\n')}`));
    });
  });
  await ready;
  return {
    child,
    lines,
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}
