import { DefaultLogger, makeTelemetryFilterString, Runtime, type LogLevel, type LogMetadata } from '@temporalio/worker';
import type { Logger } from './logger';

let installed = false;

/** Expected on single-purpose workers (an activity queue has no workflows by design); not worth a warning. */
const QUIET_MESSAGES = ['No activities registered', 'No workflows registered', 'No Nexus services registered'];

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
    logger: new DefaultLogger(
      'INFO',
      ({ level, message, meta }: { level: LogLevel; message: string; meta?: LogMetadata }) => {
        if (QUIET_MESSAGES.some((quiet) => message.startsWith(quiet))) return sink.debug(meta ?? {}, message);
        // pino serialises Errors only under `err`; the SDK puts them under `error`.
        const { error, ...rest } = (meta ?? {}) as LogMetadata & { error?: unknown };
        sink[levels[level]](error instanceof Error ? { ...rest, err: error } : (meta ?? {}), message);
      },
    ),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN', other: 'ERROR' }), forward: {} } },
  });
}
