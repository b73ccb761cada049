import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { ArtifactProducer } from '../src/domain/artifacts';

/** The producer stamp of the running activity, for ArtifactRefs. */
export function currentProducer(): ArtifactProducer {
  const { info } = Context.current();
  return {
    workflowId: info.workflowExecution?.workflowId ?? `activity:${info.activityId}`,
    runId: info.workflowExecution?.runId ?? '',
    activity: info.activityType,
    attempt: info.attempt,
  };
}

/** Waits while heartbeating, so a dead worker is noticed within the heartbeat timeout; stops on cancellation. */
export async function heartbeatingWait(ms: number, details?: unknown, everyMs = 1_000): Promise<void> {
  const context = Context.current();
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    context.heartbeat(details);
    await sleep(Math.min(everyMs, deadline - Date.now()), undefined, { signal: context.cancellationSignal });
  }
}

/**
 * Runs `work` while heartbeating on a timer, so long CPU- or I/O-bound calls keep the activity alive and
 * learn about cancellation. `progress()` gives what is reported in each heartbeat.
 */
export async function withHeartbeat<T>(
  work: () => Promise<T>,
  progress: () => unknown = () => undefined,
  everyMs = 2_000,
): Promise<T> {
  const context = Context.current();
  context.heartbeat(progress());
  const timer = setInterval(() => context.heartbeat(progress()), everyMs);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/** Bad input: retrying cannot help, so fail now with a message that says what to fix. */
export function badInput(message: string, type = 'BadInput', details?: unknown): ApplicationFailure {
  return ApplicationFailure.create({
    message,
    type,
    nonRetryable: true,
    details: details === undefined ? undefined : [details],
  });
}

/**
 * An error's own retryability as a Temporal failure: `retryable` false stops the retries now, with `type` for the
 * workflow's policy.
 */
export function failureOf(error: { message: string }, type: string, retryable: boolean): ApplicationFailure {
  return ApplicationFailure.create({ message: error.message, type, nonRetryable: !retryable });
}

/** Wraps work so that what it throws leaves as `toFailure` maps it (errors of a domain → Temporal failures). */
export function classifier(toFailure: (error: unknown) => unknown): <T>(work: () => Promise<T>) => Promise<T> {
  return async (work) => {
    try {
      return await work();
    } catch (error) {
      throw toFailure(error);
    }
  };
}
