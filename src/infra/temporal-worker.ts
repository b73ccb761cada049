import { DefaultLogger, makeTelemetryFilterString, Runtime, type LogLevel, type LogMetadata } from '@temporalio/worker';
import type { Logger } from './logger';

let installed = false;

/** Sends the Temporal runtime's logs (SDK and core) through our pino logger. Call once per process. */
export function installTemporalRuntime(log: Logger): void {
  if (installed) return;
  installed = true;
  const sink = log.child({ component: 'temporal' });
  const levels: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
    TRACE: 'trace',
    DEBUG: 'debug',
    INFO: 'info',
    WARN: 'warn',
    ERROR: 'error',
  };
  Runtime.install({
    logger: new DefaultLogger('INFO', ({ level, message, meta }: { level: LogLevel; message: string; meta?: LogMetadata }) => {
      // pino serialises Errors only under `err`; the SDK puts them under `error`.
      const { error, ...rest } = (meta ?? {}) as LogMetadata & { error?: unknown };
      sink[levels[level]](error instanceof Error ? { ...rest, err: error } : (meta ?? {}), message);
    }),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN', other: 'ERROR' }), forward: {} } },
  });
}
