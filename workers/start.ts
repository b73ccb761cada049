import type { QueueName } from '../src/config';
import { ConfigError, settings as loadSettings } from '../src/config';
import { ServiceUnavailableError } from '../src/infra/errors';
import { createLogger } from '../src/infra/logger';
import { runWorkers } from './run';

/** Entry helper for the worker scripts: one-line errors for configuration and connectivity problems. */
export function startWorkers(queues?: QueueName[]): void {
  exitWithParent();
  let log = createLogger({ name: 'twin-worker' });
  try {
    const settings = loadSettings();
    log = createLogger({ name: 'twin-worker', level: settings.logLevel });
    runWorkers(queues ?? settings.workers.queues, settings, log).catch((error: unknown) => fail(error));
  } catch (error) {
    fail(error);
  }

  function fail(error: unknown): void {
    const known = error instanceof ConfigError || error instanceof ServiceUnavailableError;
    log.fatal(known ? { problem: (error as Error).message } : { err: error }, 'worker failed');
    process.exitCode = 1;
  }
}

/**
 * Under `twin dev` the workers are a child process: if that parent dies without stopping them (kill -9), shut
 * down gracefully instead of lingering as an orphan that still polls the queues.
 */
function exitWithParent(): void {
  const parent = Number(process.env.TWIN_EXIT_WITH_PARENT);
  if (!parent) return;
  const timer = setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      clearInterval(timer);
      process.kill(process.pid, 'SIGTERM');
    }
  }, 1_000);
  timer.unref();
}
