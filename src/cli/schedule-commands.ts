import { readdir } from 'node:fs/promises';
import path from 'node:path';
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  type Client,
  type ScheduleDescription,
  type ScheduleOverlapPolicy,
} from '@temporalio/client';
import { Option, type Command } from 'commander';
import { connectClient } from '../infra/temporal';
import {
  appliedSpecOf,
  decideApply,
  loadScheduleSpec,
  toScheduleOptions,
  toScheduleUpdate,
  type ScheduleSpecFile,
} from '../pipelines/schedule-spec';
import { fail, type CliContext } from './context';

export const SCHEDULES_DIR = path.resolve(__dirname, '..', '..', 'configs', 'schedules');

export interface ApplyOutcome {
  id: string;
  result: 'created' | 'updated' | 'unchanged';
  changed?: string[];
}

async function describeOrNull(client: Client, id: string): Promise<ScheduleDescription | null> {
  try {
    return await client.schedule.getHandle(id).describe();
  } catch (error) {
    if (error instanceof ScheduleNotFoundError) return null;
    throw error;
  }
}

/**
 * Create-or-update of one schedule from its spec: created when absent, updated when the spec's checksum differs
 * from the one the last apply stored in the action memo (the pause state on the server is kept), else unchanged.
 */
export async function applySchedule(client: Client, spec: ScheduleSpecFile): Promise<ApplyOutcome> {
  const current = await describeOrNull(client, spec.id);
  const decision = decideApply(spec, current);
  if (decision.action === 'unchanged') return { id: spec.id, result: 'unchanged' };
  if (decision.action === 'create') {
    try {
      await client.schedule.create(toScheduleOptions(spec));
      return { id: spec.id, result: 'created' };
    } catch (error) {
      // Created by someone else between describe and create: update it instead.
      if (!(error instanceof ScheduleAlreadyRunning)) throw error;
    }
  }
  await client.schedule.getHandle(spec.id).update((previous) => toScheduleUpdate(spec, previous));
  return { id: spec.id, result: 'updated', ...(decision.action === 'update' ? { changed: decision.changed } : {}) };
}

/** The spec files `apply` reads: the given files / folders, or every *.yaml under configs/schedules/. */
export async function scheduleFiles(targets: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const target of targets.length > 0 ? targets : [SCHEDULES_DIR]) {
    if (/\.ya?ml$/i.test(target)) files.push(path.resolve(target));
    else {
      const entries = (await readdir(target)).filter((f) => /\.ya?ml$/i.test(f)).sort();
      files.push(...entries.map((f) => path.resolve(target, f)));
    }
  }
  return files;
}

function specLine(d: ScheduleDescription): string {
  const parts = [
    ...(d.spec.calendars ?? []).map((c) => `calendar ${JSON.stringify(c)}`),
    ...(d.spec.intervals ?? []).map((i) => `every ${i.every} ms${i.offset ? ` (offset ${i.offset} ms)` : ''}`),
  ];
  return parts.join('; ') || '(none)';
}

export function formatSchedule(d: ScheduleDescription): string[] {
  const applied = appliedSpecOf(d);
  const lines = [
    `schedule      ${d.scheduleId}${d.state.paused ? '  (PAUSED)' : ''}`,
    `note          ${d.state.note ?? ''}`,
    `spec          ${applied?.spec.spec.cron ? `cron ${applied.spec.spec.cron.join(', ')}` : applied?.spec.spec.interval ? `interval ${applied.spec.spec.interval.join(', ')}` : specLine(d)}${d.spec.timezone ? ` (${d.spec.timezone})` : ''}`,
    `workflow      ${d.action.workflowType} on ${d.action.taskQueue}, id ${d.action.workflowId}-<time>`,
    `input         ${JSON.stringify(d.action.args?.[0] ?? null)}`,
    `policies      overlap ${d.policies.overlap}, catch-up window ${d.policies.catchupWindow / 1000} s, pause on failure ${d.policies.pauseOnFailure}`,
    `applied spec  ${applied ? applied.checksum : '(not made by twin schedule apply)'}`,
    `actions       ${d.info.numActionsTaken} taken, ${d.info.numActionsSkippedOverlap} skipped (overlap), ${d.info.numActionsMissedCatchupWindow} missed (catch-up window)`,
    `next          ${
      d.info.nextActionTimes
        .slice(0, 3)
        .map((t) => t.toISOString())
        .join(', ') || '(none)'
    }`,
  ];
  for (const run of d.info.runningActions) lines.push(`running       ${run.workflow.workflowId}`);
  for (const action of d.info.recentActions.slice(-5)) {
    lines.push(`recent        ${action.takenAt.toISOString()}  ${action.action.workflow.workflowId}`);
  }
  return lines;
}

const OVERLAP = ['SKIP', 'BUFFER_ONE', 'BUFFER_ALL', 'CANCEL_OTHER', 'TERMINATE_OTHER', 'ALLOW_ALL'] as const;

/** `twin schedule apply|list|describe|trigger|pause|unpause|delete`: Temporal Schedules from configs/schedules/. */
export function registerScheduleCommands(program: Command, ctx: CliContext): void {
  const schedule = program
    .command('schedule')
    .description('Temporal Schedules of the pipelines, from versioned specs in configs/schedules/');

  const withClient = async <T>(work: (client: Client) => Promise<T>): Promise<T> => {
    const client = await connectClient(ctx.platformSettings().temporal);
    try {
      return await work(client);
    } finally {
      await client.connection.close();
    }
  };
  const handleOf = async (client: Client, id: string) => {
    const handle = client.schedule.getHandle(id);
    if (!(await describeOrNull(client, id))) fail(`no schedule ${id}; list them with \`twin schedule list\``);
    return handle;
  };

  schedule
    .command('apply [files...]')
    .description('create or update schedules from spec files (default: every configs/schedules/*.yaml); idempotent')
    .option('--dry-run', 'only say what would change')
    .action(async (targets: string[], options: { dryRun?: boolean }) => {
      const files = await scheduleFiles(targets);
      if (files.length === 0) fail('no schedule spec files found');
      const specs: ScheduleSpecFile[] = [];
      for (const file of files) {
        try {
          specs.push(await loadScheduleSpec(file));
        } catch (error) {
          fail((error as Error).message);
        }
      }
      await withClient(async (client) => {
        for (const spec of specs) {
          if (options.dryRun) {
            const decision = decideApply(spec, await describeOrNull(client, spec.id));
            const verb = { create: 'would be created', update: 'would be updated', unchanged: 'unchanged' }[
              decision.action
            ];
            ctx.print(`${spec.id}: ${verb}${decision.action === 'update' ? ` (${decision.changed.join(', ')})` : ''}`);
            continue;
          }
          const outcome = await applySchedule(client, spec);
          ctx.print(
            `${outcome.id}: ${outcome.result}${outcome.changed?.length ? ` (${outcome.changed.join(', ')})` : ''}`,
          );
        }
      });
    });

  schedule
    .command('list')
    .description('list the schedules of the namespace')
    .action(async () => {
      await withClient(async (client) => {
        let count = 0;
        for await (const summary of client.schedule.list()) {
          count += 1;
          const next = summary.info.nextActionTimes[0]?.toISOString() ?? '-';
          ctx.print(
            `${summary.scheduleId.padEnd(32)} ${(summary.action?.workflowType ?? '?').padEnd(20)} ${summary.state.paused ? 'paused ' : 'active '} next ${next}  ${summary.state.note ?? ''}`,
          );
        }
        if (count === 0) ctx.print('no schedules (create them with `twin schedule apply`)');
      });
    });

  schedule
    .command('describe <id>')
    .description('spec, action, policies, state, recent and next actions of a schedule')
    .option('--json', 'the description as JSON')
    .action(async (id: string, options: { json?: boolean }) => {
      await withClient(async (client) => {
        const d = await describeOrNull(client, id);
        if (!d) fail(`no schedule ${id}; list them with \`twin schedule list\``);
        if (options.json) {
          const { raw: _raw, ...rest } = d;
          ctx.print(JSON.stringify(rest, null, 2));
        } else for (const line of formatSchedule(d)) ctx.print(line);
      });
    });

  schedule
    .command('trigger <id>')
    .description("start the schedule's workflow now")
    .addOption(
      new Option('--overlap <policy>', "overlap policy for this trigger (default: the schedule's own)").choices(
        OVERLAP,
      ),
    )
    .action(async (id: string, options: { overlap?: ScheduleOverlapPolicy }) => {
      await withClient(async (client) => {
        const handle = await handleOf(client, id);
        const overlap = options.overlap ?? (await handle.describe()).policies.overlap;
        await handle.trigger(overlap);
        ctx.print(`${id}: triggered (overlap ${overlap})`);
      });
    });

  for (const [name, verb] of [
    ['pause', 'paused'],
    ['unpause', 'unpaused'],
  ] as const) {
    schedule
      .command(`${name} <id>`)
      .description(`${name} a schedule`)
      .option('--note <text>', 'why (shown in the Web UI)')
      .action(async (id: string, options: { note?: string }) => {
        await withClient(async (client) => {
          const handle = await handleOf(client, id);
          await (name === 'pause' ? handle.pause(options.note) : handle.unpause(options.note));
          ctx.print(`${id}: ${verb}`);
        });
      });
  }

  schedule
    .command('delete <id>')
    .description('delete a schedule (running workflows it started go on)')
    .action(async (id: string) => {
      await withClient(async (client) => {
        const handle = await handleOf(client, id);
        await handle.delete();
        ctx.print(`${id}: deleted`);
      });
    });
}
