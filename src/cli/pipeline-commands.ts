import { readFile } from 'node:fs/promises';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { Option, type Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { connectClient } from '../infra/temporal';
import type {
  ApprovalDecision,
  ApprovalOutcome,
  ContinuousTrainingInput,
  ContinuousTrainingResult,
  EndToEndInput,
  EndToEndResult,
  PipelineProgress,
} from '../pipelines/types';
import { fail, slug, startPipeline, withRunOptions, type CliContext, type RunOptions } from './context';
import { loadLinkList } from './etl-commands';

async function readInputFile(file: string): Promise<Record<string, unknown>> {
  const data: unknown = parseYaml(await readFile(file, 'utf8'));
  if (!data || typeof data !== 'object' || Array.isArray(data)) fail(`${file}: expected a YAML/JSON object`);
  return data as Record<string, unknown>;
}

export function formatEndToEnd(r: EndToEndResult): string[] {
  const lines = [`status      ${r.status}: ${r.reason}`];
  for (const e of r.etl)
    lines.push(`etl         ${e.author}: ${e.stored}/${e.links} stored, ${e.failed} failed → ${e.artifact ?? '-'}`);
  lines.push(
    `features    cleaned ${r.features.cleaned ?? '-'}, embedded ${r.features.embedded ?? '-'} (${r.features.status})`,
  );
  const d = r.datasets;
  lines.push(`datasets    instruction ${d.instruction.artifactId} (${d.instruction.train}+${d.instruction.test})`);
  if (d.preference)
    lines.push(`            preference ${d.preference.artifactId} (${d.preference.train}+${d.preference.test})`);
  if (r.models.sft) lines.push(`sft         ${r.models.sft.modelVersion}`);
  if (r.models.dpo) lines.push(`dpo         ${r.models.dpo.modelVersion}`);
  lines.push(
    `gate        ${r.gate.passed ? 'passed' : 'FAILED'} — accuracy ${r.gate.scores.accuracy.toFixed(2)}, style ${r.gate.scores.style.toFixed(2)}` +
      `${r.gate.reasons.length ? ` (${r.gate.reasons.join('; ')})` : ''}; report ${r.gate.report}`,
  );
  if (r.approval)
    lines.push(
      `approval    ${r.approval.approved ? 'approved' : 'rejected'} by ${r.approval.reviewer ?? r.approval.by}`,
    );
  if (r.deployment)
    lines.push(`deployment  ${r.deployment.endpointName} (${r.deployment.backend}) ${r.deployment.url ?? ''}`);
  return lines;
}

export function formatContinuousTraining(r: ContinuousTrainingResult): string[] {
  const lines = [`status      ${r.status}: ${r.reason}`];
  if (r.plan.action === 'skip') lines.push(`why         ${r.plan.detail}`);
  if (r.models?.sft) lines.push(`sft         ${r.models.sft.modelVersion}`);
  if (r.models?.dpo) lines.push(`dpo         ${r.models.dpo.modelVersion}`);
  if (r.gate) lines.push(`gate        ${r.gate.passed ? 'passed' : 'FAILED'} ${r.gate.reasons.join('; ')}`);
  if (r.deployment) lines.push(`deployment  ${r.deployment.endpointName} (${r.deployment.backend})`);
  return lines;
}

export function formatProgress(p: PipelineProgress): string[] {
  const lines = [`${p.pipeline}: ${p.status}${p.stage ? ` (stage ${p.stage})` : ''}`];
  for (const [name, stage] of Object.entries(p.stages)) {
    lines.push(
      `  ${name.padEnd(11)} ${stage.status.padEnd(9)} ${stage.artifacts.join(', ')}${stage.detail ? `  — ${stage.detail}` : ''}`,
    );
  }
  if (p.gate) lines.push(`  gate: ${p.gate.passed ? 'passed' : 'failed'} ${p.gate.reasons.join('; ')}`);
  return lines;
}

/** `twin run end-to-end | continuous-training | progress | approve`. */
export function registerPipelineCommands(program: Command, ctx: CliContext): void {
  const run = program.command('run').description('the composite pipelines: endToEnd and continuousTraining');

  withRunOptions(
    run
      .command('end-to-end')
      .description('ETL → features → datasets → SFT → DPO → evaluation gate → (approval) → deploy, as child workflows')
      .requiredOption('-l, --links <file...>', 'link lists, one per author (configs/etl/*.yaml: {author, links})')
      .option(
        '-i, --input <file>',
        'YAML/JSON with more EndToEndInput fields (hyperparameters, evaluation, datasets, …)',
      )
      .option('--base-model <model>', 'SFT base model (default TRAINING_BASE_MODEL)')
      .addOption(new Option('--backend <backend>', 'training backend').choices(['local', 'sagemaker']))
      .option('--skip-dpo', 'SFT only')
      .option('--no-deploy', 'stop after the evaluation gate')
      .option('--endpoint <name>', 'endpoint name (default SERVING_ENDPOINT_NAME)')
      .option('--approval <timeout>', 'require a human approval (twin run approve) within this time, e.g. 24h')
      .addOption(
        new Option('--on-timeout <policy>', 'when nobody answers').choices(['reject', 'approve']).default('reject'),
      ),
    'end-to-end-<time>',
  ).action(
    async (
      options: {
        links: string[];
        input?: string;
        baseModel?: string;
        backend?: 'local' | 'sagemaker';
        skipDpo?: boolean;
        deploy: boolean;
        endpoint?: string;
        approval?: string;
        onTimeout: 'reject' | 'approve';
      } & RunOptions,
    ) => {
      const authors = [];
      for (const file of options.links) {
        const list = await loadLinkList(file);
        if (!list.author) fail(`${file}: no author name ({author, links})`);
        authors.push({ name: list.author, links: list.links });
      }
      const extra = options.input ? await readInputFile(options.input) : {};
      const input: EndToEndInput = {
        ...(extra as Partial<EndToEndInput>),
        authors,
        ...(options.baseModel ? { baseModel: options.baseModel } : {}),
        ...(options.backend ? { trainingBackend: options.backend } : {}),
        ...(options.skipDpo ? { skipDpo: true } : {}),
        deployment: options.deploy
          ? {
              ...((extra.deployment as object | undefined) ?? {}),
              ...(options.endpoint ? { endpointName: options.endpoint } : {}),
            }
          : false,
        ...(options.approval
          ? { approval: { required: true, timeout: options.approval as never, onTimeout: options.onTimeout } }
          : {}),
      };
      await startPipeline<EndToEndResult>(ctx, options, {
        workflowType: 'endToEnd',
        idPrefix: `end-to-end-${slug(authors.map((a) => a.name).join('-'))}`,
        input,
        format: formatEndToEnd,
      });
    },
  );

  withRunOptions(
    run
      .command('continuous-training')
      .description('train → evaluate → deploy only when a dataset version newer than the last trained one exists')
      .option(
        '-i, --input <file>',
        'ContinuousTrainingInput as YAML/JSON (default: the input of configs/schedules/continuous-training.yaml)',
      ),
    'continuous-training-<time>',
  ).action(async (options: { input?: string } & RunOptions) => {
    let input: ContinuousTrainingInput;
    if (options.input) input = await readInputFile(options.input);
    else {
      const { loadScheduleSpec } = await import('../pipelines/schedule-spec');
      input = (await loadScheduleSpec(ctx.platformSettings().schedules.continuousTrainingSpec)).action.input;
    }
    await startPipeline<ContinuousTrainingResult>(ctx, options, {
      workflowType: 'continuousTraining',
      idPrefix: 'continuous-training',
      input,
      format: formatContinuousTraining,
    });
  });

  run
    .command('progress <workflowId>')
    .description('the stage, every stage’s status and artifacts of an endToEnd / continuousTraining run')
    .option('--json', 'as JSON')
    .action(async (workflowId: string, options: { json?: boolean }) => {
      const client = await connectClient(ctx.platformSettings().temporal);
      try {
        const progress = await client.workflow.getHandle(workflowId).query<PipelineProgress>('progress');
        if (options.json) ctx.print(JSON.stringify(progress, null, 2));
        else for (const line of formatProgress(progress)) ctx.print(line);
      } finally {
        await client.connection.close();
      }
    });

  run
    .command('approve <workflowId>')
    .description('answer the approval step of a run waiting for it (approve, or --reject)')
    .requiredOption('--reviewer <name>', 'who decides')
    .option('--reject', 'reject the deployment')
    .option('--comment <text>', 'why')
    .action(async (workflowId: string, options: { reviewer: string; reject?: boolean; comment?: string }) => {
      const client = await connectClient(ctx.platformSettings().temporal);
      try {
        const decision: ApprovalDecision = {
          approved: !options.reject,
          reviewer: options.reviewer,
          ...(options.comment ? { comment: options.comment } : {}),
        };
        const outcome = await client.workflow
          .getHandle(workflowId)
          .executeUpdate<ApprovalOutcome, [ApprovalDecision]>('approveDeployment', { args: [decision] })
          .catch((error: unknown) => {
            if (error instanceof WorkflowUpdateFailedError) fail(`refused: ${error.cause?.message ?? error.message}`);
            throw error;
          });
        ctx.print(
          `${workflowId}: deployment ${outcome.approved ? 'approved' : 'rejected'} by ${outcome.reviewer ?? outcome.by}`,
        );
      } finally {
        await client.connection.close();
      }
    });
}
