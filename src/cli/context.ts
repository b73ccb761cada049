import type { Command } from 'commander';
import type { Settings } from '../config';
import { connectClient } from '../infra/temporal';

/** What every `twin` command group needs from the program: settings of the running platform and output. */
export interface CliContext {
  platformSettings: () => Settings;
  webUiLink: (settings: Settings, workflowId: string, runId: string) => string | undefined;
  print: (line: string) => void;
}

/** A usage problem: one line on stderr, exit code 1 (no stack, no help dump). */
export function fail(message: string): never {
  process.stderr.write(`twin: ${message}\n`);
  process.exit(1);
}

/** A short, id-safe form of a name for workflow ids (the same one the pipeline workflows use for child ids). */
export { slugOf as slug } from '../domain/slug';

/** `<prefix>-<ISO time>`: a readable workflow id that sorts by start time. */
export function timestampedId(prefix: string): string {
  return `${prefix}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
}

/** The options of every command that starts a workflow run, as commander parses them. */
export interface RunOptions {
  workflowId?: string;
  wait: boolean;
  json?: boolean;
}

/** Adds `--workflow-id`, `--no-wait` and `--json` (see {@link RunOptions}) to a command that starts a workflow run. */
export function withRunOptions(command: Command, defaultId: string): Command {
  return command
    .option('--workflow-id <id>', `workflow id (default ${defaultId})`)
    .option('--no-wait', 'start the run and print its Web UI link without waiting for the result')
    .option('--json', 'print the result as JSON');
}

/**
 * Starts a pipeline workflow on twin-pipelines under `--workflow-id` or `<idPrefix>-<time>`, prints its id and Web UI
 * link, and (unless --no-wait) waits for the result and prints it as JSON or through `format`, with the elapsed time.
 */
export async function startPipeline<Result>(
  ctx: CliContext,
  options: RunOptions,
  run: {
    workflowType: string;
    idPrefix: string;
    input: unknown;
    format: (result: Result) => string[];
  },
): Promise<void> {
  const settings = ctx.platformSettings();
  const client = await connectClient(settings.temporal);
  try {
    const started = Date.now();
    const workflowId = options.workflowId ?? timestampedId(run.idPrefix);
    const handle = await client.workflow.start(run.workflowType, {
      taskQueue: 'twin-pipelines',
      workflowId,
      args: [run.input],
    });
    ctx.print(`started ${workflowId}`);
    const link = ctx.webUiLink(settings, workflowId, handle.firstExecutionRunId);
    if (link) ctx.print(`Web UI: ${link}`);
    if (!options.wait) return;
    const result = (await handle.result()) as Result;
    if (options.json) ctx.print(JSON.stringify(result, null, 2));
    else for (const line of run.format(result)) ctx.print(line);
    ctx.print(`took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await client.connection.close();
  }
}
