/**
 * Versioned Temporal Schedule specs (configs/schedules/*.yaml): parse + validate (zod), compile to the
 * @temporalio/client ScheduleOptions, and decide create / update / unchanged for `twin schedule apply`.
 *
 * Idempotence: the spec's checksum (and the spec itself, for the diff) is stored in the schedule action's memo
 * (`twinSchedule`), which every update replaces. The server rewrites cron strings into calendar specs, so comparing
 * what `describe` returns with the file would report false changes; the checksum does not.
 */
import { readFile } from 'node:fs/promises';
import type { ScheduleDescription, ScheduleOptions, ScheduleUpdateOptions } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { checksumOf } from '../domain/artifacts';

/** Workflow types a schedule may start (the pipelines; registered in workflows/index.ts). */
export const SCHEDULABLE_WORKFLOWS = [
  'continuousTraining',
  'endToEnd',
  'digitalDataEtl',
  'featureEngineering',
  'generateDatasets',
  'trainModel',
  'evaluateModel',
  'deployModel',
] as const;

const duration = z
  .string()
  .min(1)
  .refine(
    (value) => {
      try {
        return msToNumber(value as never) > 0;
      } catch {
        return false;
      }
    },
    { message: 'expected a duration like "90s", "15m", "6h", "1 day"' },
  );

const oneOrMany = <T extends z.ZodType>(item: T) =>
  z.union([item, z.array(item).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]) as z.output<T>[]);

const cronExpression = z
  .string()
  .trim()
  .refine(
    (v) =>
      /^@(yearly|annually|monthly|weekly|daily|midnight|hourly|every\s+\S+)$/.test(v) || v.split(/\s+/).length >= 5,
    {
      message: 'expected a cron expression ("0 3 * * *") or @daily/@hourly/@every 6h',
    },
  );

/** An interval: "6h", or "6h/30m" = every 6 hours at offset 30 minutes (as the `temporal` CLI writes it). */
const interval = z
  .string()
  .trim()
  .refine((v) => v.split('/').length <= 2 && v.split('/').every((part) => duration.safeParse(part.trim()).success), {
    message: 'expected an interval like "6h" or "6h/30m" (every 6 hours at offset 30 minutes)',
  });

export const scheduleSpecSchema = z
  .object({
    /** the Temporal schedule id */
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/, 'letters, digits, ".", "_" and "-" only (at most 200)'),
    /** shown in the Web UI and `twin schedule describe` (the schedule's notes) */
    note: z.string().max(1000).default(''),
    spec: z
      .object({
        cron: oneOrMany(cronExpression).optional(),
        interval: oneOrMany(interval).optional(),
        timezone: z.string().optional(),
        jitter: duration.optional(),
      })
      .strict()
      .refine((s) => Boolean(s.cron?.length) || Boolean(s.interval?.length), {
        message: 'give spec.cron or spec.interval',
      }),
    action: z
      .object({
        workflow: z.enum(SCHEDULABLE_WORKFLOWS),
        /** base workflow id; the server appends the scheduled time (default `<id>`) */
        workflowId: z.string().min(1).optional(),
        taskQueue: z.string().min(1).default('twin-pipelines'),
        /** the workflow's single argument */
        input: z.record(z.string(), z.unknown()).default({}),
        executionTimeout: duration.optional(),
      })
      .strict(),
    policies: z
      .object({
        overlap: z
          .enum(['SKIP', 'BUFFER_ONE', 'BUFFER_ALL', 'CANCEL_OTHER', 'TERMINATE_OTHER', 'ALLOW_ALL'])
          .default('SKIP'),
        /** how late a missed action may still run after an outage (default 1 hour) */
        catchupWindow: duration.default('1 hour'),
        /** pause the schedule when a started workflow fails (default true) */
        pauseOnFailure: z.boolean().default(true),
      })
      .strict()
      .default({ overlap: 'SKIP', catchupWindow: '1 hour', pauseOnFailure: true }),
    /** only applied when the schedule is created; later pause/unpause is an operation (`twin schedule pause`) */
    paused: z.boolean().default(false),
  })
  .strict();

export type ScheduleSpecFile = z.output<typeof scheduleSpecSchema>;

export class ScheduleSpecError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: ${problems.join('; ')}`);
    this.name = 'ScheduleSpecError';
  }
}

export function parseScheduleSpec(text: string, file = '<spec>'): ScheduleSpecFile {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new ScheduleSpecError(file, [`not valid YAML: ${(error as Error).message}`]);
  }
  const parsed = scheduleSpecSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ScheduleSpecError(
      file,
      parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`),
    );
  }
  return parsed.data;
}

export async function loadScheduleSpec(file: string): Promise<ScheduleSpecFile> {
  return parseScheduleSpec(await readFile(file, 'utf8'), file);
}

/** The checksum of what `apply` manages (everything but the create-only `paused`). */
export function specChecksum(spec: ScheduleSpecFile): string {
  const { paused: _paused, ...managed } = spec;
  return checksumOf(managed);
}

/** What the action memo carries so the next `apply` can tell whether anything changed. */
export interface ScheduleSpecMemo {
  checksum: string;
  spec: Omit<ScheduleSpecFile, 'paused'>;
}

export const SPEC_MEMO_KEY = 'twinSchedule';

/** A validated duration string as the SDK's type (ms-formatted). */
const asDuration = (value: string): Duration => value as Duration;

function intervalSpec(value: string): { every: Duration; offset?: Duration } {
  const [every, offset] = value.split('/').map((p) => asDuration(p.trim()));
  return offset ? { every: every!, offset } : { every: every! };
}

/** The schedule as @temporalio/client takes it (create: with scheduleId, memo and initial state). */
export function toScheduleOptions(spec: ScheduleSpecFile): ScheduleOptions {
  const { paused, ...managed } = spec;
  const memo: ScheduleSpecMemo = { checksum: specChecksum(spec), spec: managed };
  return {
    scheduleId: spec.id,
    spec: {
      ...(spec.spec.cron ? { cronExpressions: spec.spec.cron } : {}),
      ...(spec.spec.interval ? { intervals: spec.spec.interval.map(intervalSpec) } : {}),
      ...(spec.spec.timezone ? { timezone: spec.spec.timezone } : {}),
      ...(spec.spec.jitter ? { jitter: asDuration(spec.spec.jitter) } : {}),
    },
    action: {
      type: 'startWorkflow',
      workflowType: spec.action.workflow,
      workflowId: spec.action.workflowId ?? spec.id,
      taskQueue: spec.action.taskQueue,
      args: [spec.action.input],
      memo: { [SPEC_MEMO_KEY]: memo, schedule: spec.id },
      ...(spec.action.executionTimeout ? { workflowExecutionTimeout: asDuration(spec.action.executionTimeout) } : {}),
    },
    policies: {
      overlap: spec.policies.overlap,
      catchupWindow: asDuration(spec.policies.catchupWindow),
      pauseOnFailure: spec.policies.pauseOnFailure,
    },
    state: { paused, note: spec.note },
  };
}

/** The update: everything from the spec; the pause state stays what it is on the server. */
export function toScheduleUpdate(spec: ScheduleSpecFile, current: ScheduleDescription): ScheduleUpdateOptions {
  const { scheduleId: _id, memo: _memo, state, ...rest } = toScheduleOptions(spec);
  return {
    ...rest,
    state: { ...state, paused: current.state.paused, note: spec.note },
  };
}

/** The spec memo of a described schedule (absent for schedules not made by `twin schedule apply`). */
export function appliedSpecOf(description: ScheduleDescription): ScheduleSpecMemo | undefined {
  const memo = description.action.memo?.[SPEC_MEMO_KEY] as ScheduleSpecMemo | undefined;
  return memo && typeof memo.checksum === 'string' ? memo : undefined;
}

export type ApplyDecision = { action: 'create' } | { action: 'unchanged' } | { action: 'update'; changed: string[] };

/** Dotted paths whose values differ between two JSON values (leaves; arrays compared whole). */
export function changedPaths(before: unknown, after: unknown, prefix = ''): string[] {
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((key) => changedPaths(before[key], after[key], prefix ? `${prefix}.${key}` : key));
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [prefix || '(root)'];
}

export function decideApply(spec: ScheduleSpecFile, current: ScheduleDescription | null): ApplyDecision {
  if (!current) return { action: 'create' };
  const applied = appliedSpecOf(current);
  if (applied?.checksum === specChecksum(spec)) return { action: 'unchanged' };
  const { paused: _paused, ...managed } = spec;
  return {
    action: 'update',
    changed: applied ? changedPaths(applied.spec, managed) : ['(not made by twin schedule apply)'],
  };
}
