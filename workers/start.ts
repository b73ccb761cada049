import type { QueueName } from '../src/config';
import { ConfigError, settings as loadSettings } from '../src/config';
import { ServiceUnavailableError } from '../src/infra/errors';
import { createLogger } from '../src/infra/logger';
import { runWorkers } from './run';

/** Entry helper for the worker scripts: one-line errors for configuration and connectivity problems. */
export function startWorkers(queues?: QueueName[]): void {
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
