import pino, { type Logger } from 'pino';

export type { Logger };

/** Keys whose values are never written to logs, at any depth pino can reach. */
const REDACTED_PATHS = [
  '*.password',
  '*.apiKey',
  '*.token',
  '*.secret',
  '*.authorization',
  '*.Authorization',
  'headers.authorization',
  '*.headers.authorization',
];

let rootLogger: Logger | undefined;

/** Human-readable logs (for `twin dev`) when LOG_FORMAT=pretty; JSON lines otherwise (production, tests). */
export function createLogger(options: { level?: string; pretty?: boolean; name?: string } = {}): Logger {
  const pretty = options.pretty ?? process.env.LOG_FORMAT === 'pretty';
  return pino({
    name: options.name ?? 'twin',
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    ...(pretty
      ? { transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname', sync: true } } }
      : {}),
  });
}

/** The process-wide logger; created on first use with LOG_LEVEL from the environment. */
export function logger(): Logger {
  rootLogger ??= createLogger();
  return rootLogger;
}

export function setLogger(next: Logger): void {
  rootLogger = next;
}
