import type { Command } from 'commander';
import type { ArtifactRef } from '../domain/artifacts';
import { renderMarkdown, type EvaluationReport } from '../evaluation/report';
import type { EvaluateModelInput, EvaluationResult, GeneratorBackend } from '../evaluation/types';
import { ArtifactRegistry } from '../infra/artifact-registry';
import { createArtifactStore } from '../infra/artifact-store';
import { openWarehouse } from '../infra/mongo';
import { fail, slug, startPipeline, withRunOptions, type CliContext, type RunOptions } from './context';

const score = (value: unknown) => (typeof value === 'number' ? value.toFixed(2) : '–');

export function formatEvaluationLine(artifact: ArtifactRef): string {
  const m = artifact.metadata;
  return [
    artifact.createdAt,
    String(m.model ?? '?').padEnd(52),
    m.passed ? 'passed ' : 'REJECTED',
    `accuracy=${score(m.accuracy)}`,
    `style=${score(m.style)}`,
    `faithfulness=${score(m.faithfulness)}`,
    `relevance=${score(m.contextRelevance)}`,
    `samples=${String(m.samples ?? '?')}`,
    `judge_failures=${String(m.judgeFailures ?? '?')}`,
    artifact.id,
  ].join('  ');
}

export function formatEvaluationResult(result: EvaluationResult): string[] {
  const s = result.scores;
  const lines = [
    `${result.model}: ${result.passed ? 'PASSED (status Approved)' : 'FAILED (status Rejected)'}`,
    `  accuracy ${score(s.accuracy)}  style ${score(s.style)}  faithfulness ${score(s.faithfulness)}  context relevance ${score(s.contextRelevance)}` +
      `  hit rate ${s.hitRate === undefined ? '–' : `${(s.hitRate * 100).toFixed(1)} %`}  (${s.samples} samples, ${s.judgeFailures} judge failures)`,
  ];
  for (const reason of result.reasons) lines.push(`  ✗ ${reason}`);
  if (result.baseline) {
    const b = result.baseline.scores;
    lines.push(
      `  baseline ${result.baseline.model}: accuracy ${score(b.accuracy)}  style ${score(b.style)}  (${b.samples} samples)`,
    );
  }
  lines.push(`  report ${result.report.id} → ${result.report.uri}`);
  return lines;
}

function number(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed)) fail(`not a number: ${value}`);
  return parsed;
}

/** `twin evaluate <model>` and `twin evaluations list | show`. */
export function registerEvaluationCommands(program: Command, ctx: CliContext): void {
  withRunOptions(
    program
      .command('evaluate <model>')
      .description(
        'evaluate a model version (evaluateModel workflow): judge scores, RAG metrics, gate → Approved/Rejected',
      )
      .option('-b, --baseline <model>', 'another model version to compare against')
      .option('-d, --dataset <artifact>', "dataset artifact id (default: the model's training dataset, test split)")
      .option('-n, --max-samples <n>', 'test-split rows to evaluate', (v) => Number.parseInt(v, 10))
      .option('--min-accuracy <x>', 'accuracy threshold (1-3) for this run', number)
      .option('--min-style <x>', 'style threshold (1-3) for this run', number)
      .option('--min-faithfulness <x>', 'RAG faithfulness threshold (1-3) for this run', number)
      .option('--min-context-relevance <x>', 'RAG context relevance threshold (1-3) for this run', number)
      .option('-g, --generator <backend>', 'local | openai | sagemaker (default: by the model backend)')
      .option('--base-url <url>', 'OpenAI-compatible server of the candidate (generator openai)')
      .option('--endpoint <name>', 'SageMaker endpoint of the candidate (generator sagemaker)')
      .option('--no-rag', 'skip the RAG metrics'),
    'evaluate-<model>-<time>',
  ).action(
    async (
      model: string,
      options: {
        baseline?: string;
        dataset?: string;
        maxSamples?: number;
        minAccuracy?: number;
        minStyle?: number;
        minFaithfulness?: number;
        minContextRelevance?: number;
        generator?: string;
        baseUrl?: string;
        endpoint?: string;
        rag: boolean;
      } & RunOptions,
    ) => {
      if (options.generator && !['local', 'openai', 'sagemaker'].includes(options.generator)) {
        fail(`--generator must be local, openai or sagemaker, got ${options.generator}`);
      }
      const thresholds = {
        ...(options.minAccuracy !== undefined ? { accuracy: options.minAccuracy } : {}),
        ...(options.minStyle !== undefined ? { style: options.minStyle } : {}),
        ...(options.minFaithfulness !== undefined ? { faithfulness: options.minFaithfulness } : {}),
        ...(options.minContextRelevance !== undefined ? { contextRelevance: options.minContextRelevance } : {}),
      };
      const input: EvaluateModelInput = {
        model,
        ...(options.baseline ? { baseline: options.baseline } : {}),
        ...(options.dataset ? { dataset: options.dataset } : {}),
        ...(options.maxSamples ? { maxSamples: options.maxSamples } : {}),
        ...(Object.keys(thresholds).length ? { thresholds } : {}),
        ...(options.generator
          ? {
              generator: {
                backend: options.generator as GeneratorBackend,
                ...(options.baseUrl ? { baseUrl: options.baseUrl } : {}),
                ...(options.endpoint ? { endpointName: options.endpoint } : {}),
              },
            }
          : {}),
        rag: options.rag,
      };
      await startPipeline<EvaluationResult>(ctx, options, {
        workflowType: 'evaluateModel',
        idPrefix: `evaluate-${slug(model)}`,
        input,
        format: formatEvaluationResult,
      });
      // A rejected model is a result, not an error of the command; scripts read `passed` from --json.
    },
  );

  const evaluations = program.command('evaluations').description('evaluation reports (evaluateModel)');

  evaluations
    .command('list')
    .description('list evaluation reports, newest first')
    .option('-m, --model <version>', 'only reports of this model version')
    .option('-n, --limit <n>', 'how many', (v) => Number.parseInt(v, 10), 20)
    .action(async (options: { model?: string; limit: number }) => {
      const warehouse = await openWarehouse(ctx.platformSettings().mongo);
      try {
        const reports = (
          await new ArtifactRegistry(warehouse.db).list({
            kind: 'evaluation-report',
            limit: options.model ? 500 : options.limit,
          })
        )
          .filter((a) => !options.model || a.metadata.model === options.model)
          .slice(0, options.limit);
        if (reports.length === 0) ctx.print('no evaluation reports yet; run `twin evaluate <model version>`');
        for (const report of reports) ctx.print(formatEvaluationLine(report));
      } finally {
        await warehouse.close();
      }
    });

  evaluations
    .command('show <report-or-model>')
    .description('show an evaluation report (its Markdown); a model version shows its newest report')
    .option('--json', 'print the report JSON')
    .action(async (which: string, options: { json?: boolean }) => {
      const settings = ctx.platformSettings();
      const warehouse = await openWarehouse(settings.mongo);
      try {
        const registry = new ArtifactRegistry(warehouse.db);
        let artifact = which.startsWith('evaluation-report:') ? await registry.get(which) : null;
        if (!artifact) {
          artifact =
            (await registry.list({ kind: 'evaluation-report', limit: 500 })).find((a) => a.metadata.model === which) ??
            null;
        }
        if (!artifact || artifact.kind !== 'evaluation-report') {
          ctx.print(`no evaluation report ${which}; list them with \`twin evaluations list\``);
          process.exitCode = 1;
          return;
        }
        const key = artifact.metadata.reportKey;
        if (typeof key !== 'string') fail(`report ${artifact.id} has no reportKey`);
        const report = JSON.parse(
          (await createArtifactStore(settings.artifacts, settings.aws).get(key)).toString('utf8'),
        ) as EvaluationReport;
        if (options.json) ctx.print(JSON.stringify(report, null, 2));
        else ctx.print(renderMarkdown(report));
        ctx.print(`(${artifact.id}, ${artifact.uri})`);
      } finally {
        await warehouse.close();
      }
    });
}
