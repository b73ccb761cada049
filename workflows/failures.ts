import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';

/**
 * How a batch activity failed, for the run's per-batch account: a one-line reason (type and message, capped), and
 * whether the error type is one that must fail the whole run (bad input, a misconfigured store) rather than be
 * counted and skipped.
 */
export function failureOf(error: unknown, fatalTypes: readonly string[]): { fatal: boolean; reason: string } {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  const type = cause instanceof ApplicationFailure ? cause.type : undefined;
  const message = cause instanceof Error ? cause.message : String(cause);
  const reason = `${type ?? (cause instanceof Error ? cause.name : 'error')}: ${message.length > 300 ? `${message.slice(0, 299)}…` : message}`;
  return { fatal: type !== undefined && type !== null && fatalTypes.includes(type), reason };
}
