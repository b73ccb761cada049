import type { Command } from 'commander';
import type { GenerateDatasetsInput, GenerateDatasetsResult } from '../../workflows/generate-datasets';
import type { Settings } from '../config';
import {
  DATASET_TYPES,
  DatasetNotFoundError,
  diffDatasets,
  formatDatasetDiff,
  formatDatasetList,
  formatDatasetShow,
  listDatasets,
  showDataset,
  type DatasetType,
} from '../datasets';
import { DOCUMENT_CATEGORIES, type DocumentCategory } from '../domain/documents';
import { ArtifactRegistry } from '../infra/artifact-registry';
import { createArtifactStore, type ArtifactStore } from '../infra/artifact-store';
import { openWarehouse } from '../infra/mongo';
import { fail, startPipeline, withRunOptions, type CliContext, type RunOptions } from './context';

export type DatasetCliContext = CliContext;

const positiveInt = (v: string) => Number.parseInt(v, 10);

/** What `twin datasets generate` prints for a finished run. */
export function formatGenerateResult(result: GenerateDatasetsResult): string[] {
  const g = result.generation;
  const d = result.dataset;
  const lines = [
    `authors: ${result.authors.join(', ')}${result.missingAuthors.length ? `; not found: ${result.missingAuthors.join(', ')}` : ''}`,
    `extracts: ${result.extraction.extracts} from ${result.extraction.documents} documents, in ${g.batches} batches (${g.batchesSucceeded} succeeded)`,
    `answers:  ${g.answered} answered (${g.fromStore} stored earlier), ${g.failed} failed; ${g.completions} completions, ${g.httpAttempts} HTTP attempts, ${g.inputTokens} tokens in, ${g.outputTokens} out`,
    `dataset:  ${d.type} ${d.version}${d.created ? '' : ' (already existed)'}: ${d.counts.train} train + ${d.counts.test} test; ${d.samples.produced} samples produced, ${d.samples.kept} kept`,
  ];
  for (const [reason, n] of Object.entries(d.drops)) lines.push(`  dropped ${reason}: ${n}`);
  for (const b of g.failedBatches) lines.push(`  failed batch ${b.batchKey} (${b.extracts} extracts): ${b.reason}`);
  lines.push(`artifact: ${d.artifactId} ${d.uri}`, `status: ${result.status}`);
  return lines;
}

async function withCatalog<T>(
  settings: Settings,
  work: (registry: ArtifactRegistry, store: ArtifactStore) => Promise<T>,
): Promise<T> {
  const warehouse = await openWarehouse(settings.mongo);
  try {
    return await work(new ArtifactRegistry(warehouse.db), createArtifactStore(settings.artifacts, settings.aws));
  } catch (error) {
    if (error instanceof DatasetNotFoundError) fail(error.message);
    throw error;
  } finally {
    await warehouse.close();
  }
}

export function registerDatasetCommands(program: Command, ctx: DatasetCliContext): void {
  const { print } = ctx;
  const datasets = program
    .command('datasets')
    .description('instruction and preference datasets: generate (generateDatasets workflow), list, show, diff');

  withRunOptions(
    datasets
      .command('generate')
      .description('run the generateDatasets workflow over the cleaned documents in the feature store')
      .requiredOption('-t, --type <type>', `dataset type (${DATASET_TYPES.join(', ')})`)
      .option('-a, --author <name...>', "author's full name (repeat for several); default every author")
      .option('-c, --category <category...>', `only these categories (${DOCUMENT_CATEGORIES.join(', ')})`)
      .option(
        '--test-split <fraction>',
        'held-out fraction (default 0.1 instruction, 0.05 preference)',
        Number.parseFloat,
      )
      .option('--seed <n>', 'split seed (default 42)', positiveInt)
      .option('-m, --model <model>', 'LLM model (default LLM_MODEL)')
      .option('--batch-size <n>', 'extracts per activity (default 8)', positiveInt)
      .option('--run-key <key>', 'keep this run’s answers apart from identical earlier runs (default: reuse them)'),
    'datasets-<type>-<time>',
  ).action(
    async (
      options: {
        type: string;
        author?: string[];
        category?: string[];
        testSplit?: number;
        seed?: number;
        model?: string;
        batchSize?: number;
        runKey?: string;
      } & RunOptions,
    ) => {
      if (!(DATASET_TYPES as readonly string[]).includes(options.type))
        fail(`--type must be one of ${DATASET_TYPES.join(', ')}`);
      const categories = options.category ?? [];
      const unknown = categories.filter((c) => !(DOCUMENT_CATEGORIES as readonly string[]).includes(c));
      if (unknown.length > 0) fail(`unknown category ${unknown.join(', ')}`);
      if (options.testSplit !== undefined && !(options.testSplit >= 0 && options.testSplit < 1))
        fail('--test-split must be a fraction in [0, 1)');
      if (options.batchSize !== undefined && !(Number.isInteger(options.batchSize) && options.batchSize > 0))
        fail('--batch-size must be a positive whole number');
      if (options.seed !== undefined && !Number.isInteger(options.seed)) fail('--seed must be a whole number');
      const input: GenerateDatasetsInput = {
        type: options.type as DatasetType,
        ...(options.author?.length ? { authors: options.author } : {}),
        ...(categories.length ? { categories: categories as DocumentCategory[] } : {}),
        ...(options.testSplit !== undefined ? { testSplit: options.testSplit } : {}),
        ...(options.seed !== undefined ? { seed: options.seed } : {}),
        ...(options.model ? { model: options.model } : {}),
        ...(options.batchSize ? { batchSize: options.batchSize } : {}),
        ...(options.runKey ? { runKey: options.runKey } : {}),
      };
      await startPipeline<GenerateDatasetsResult>(ctx, options, {
        workflowType: 'generateDatasets',
        idPrefix: `datasets-${options.type}`,
        input,
        format: formatGenerateResult,
      });
    },
  );

  datasets
    .command('list')
    .description('dataset versions in the artifact registry, newest first')
    .option('-t, --type <type>', `only this type (${DATASET_TYPES.join(', ')})`)
    .option('-n, --limit <n>', 'how many', positiveInt, 50)
    .option('--json', 'print JSON', false)
    .action(async (options: { type?: string; limit: number; json: boolean }) => {
      if (options.type !== undefined && !(DATASET_TYPES as readonly string[]).includes(options.type))
        fail(`--type must be one of ${DATASET_TYPES.join(', ')}`);
      const listings = await withCatalog(ctx.platformSettings(), (registry) =>
        listDatasets(registry, {
          ...(options.type ? { type: options.type as DatasetType } : {}),
          limit: options.limit,
        }),
      );
      print(options.json ? JSON.stringify(listings, null, 2) : formatDatasetList(listings));
    });

  datasets
    .command('show <version>')
    .description('a dataset version (a unique prefix of ≥ 4 characters, or its artifact id) and its manifest')
    .option('--json', 'print the artifact and manifest as JSON', false)
    .action(async (version: string, options: { json: boolean }) => {
      const shown = await withCatalog(ctx.platformSettings(), (registry, store) =>
        showDataset(registry, store, version),
      );
      print(options.json ? JSON.stringify(shown, null, 2) : formatDatasetShow(shown));
    });

  datasets
    .command('diff <a> <b>')
    .description('what changed between two dataset versions: rows, splits, categories, drops, settings, sources')
    .option('--json', 'print JSON', false)
    .action(async (a: string, b: string, options: { json: boolean }) => {
      const diff = await withCatalog(ctx.platformSettings(), (registry, store) => diffDatasets(registry, store, a, b));
      print(options.json ? JSON.stringify(diff, null, 2) : formatDatasetDiff(diff));
    });
}
