import { ApplicationFailure, log, proxyActivities, upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import type {
  BatchGenerationResult,
  DatasetActivities,
  DatasetVersionSummary,
  ExtractBatchRef,
  GenerationRunOptions,
} from '../activities/datasets';
import type { RetryPolicy } from '@temporalio/common';
import type { DatasetType } from '../src/datasets/types';
import type { GeneratorParams } from '../src/datasets/generation';
import type { ExtractionStats } from '../src/datasets/extracts';
import type { DocumentCategory } from '../src/domain/documents';
import { SEARCH_ATTRIBUTES } from '../src/domain/search-attributes';
import { QUEUES } from './queues';
import { forEachLimited } from './concurrency';
import { failureOf } from './failures';
import { addCounts } from './totals';
import { startTrainingOnNewDataset } from './training-trigger';

/**
 * generateDatasets — cleaned documents (Qdrant `cleaned_*`) → extracts → LLM answers per batch → one dataset version.
 *
 * prepareExtracts writes the extracts to the artifact store as batch files (claim check: only keys cross the
 * history); one generateForExtracts activity per batch on twin-llm, `maxConcurrentBatches` at a time (the queue's
 * rate limit and the LLM client's limits apply on top); a batch that still fails after its retries is counted in
 * `failedBatches` (its extracts then appear in the manifest as failed `llm-error` extracts) and the run goes on;
 * buildDatasetVersion filters, dedupes, splits and writes + registers the version.
 *
 * Idempotent per extract: answers are stored per extract id under a scope of (type, model, prompt version,
 * parameters, runKey), so a retried batch, a restarted run or a re-run with the same inputs pays for nothing twice
 * and gives the same version id.
 */

export const DEFAULT_MAX_CONCURRENT_BATCHES = 4;
const MAX_LISTED_FAILURES = 20;
const FATAL_TYPES = ['BadInput'];

export interface GenerateDatasetsInput {
  type: DatasetType;
  /** authors' full names; default every author in the feature store */
  authors?: string[];
  categories?: DocumentCategory[];
  /** held-out fraction (default 0.1 instruction, 0.05 preference) */
  testSplit?: number;
  /** split seed (default 42) */
  seed?: number;
  /** LLM model (default LLM_MODEL) */
  model?: string;
  /** extracts per generateForExtracts activity (default 8) */
  batchSize?: number;
  /** batches in flight at once (default 4) */
  maxConcurrentBatches?: number;
  /** keeps this run's stored answers apart from identical earlier runs (default: shared, so re-runs are free) */
  runKey?: string;
  params?: Partial<GeneratorParams>;
  /** cleaned-documents artifacts (lineage); default the newest recorded for each author */
  sourceArtifactIds?: string[];
  /** start continuousTraining when this run registers a new version (default: the TRAIN_ON_NEW_DATASET setting) */
  trainOnNewVersion?: boolean;
}

export interface FailedDatasetBatch {
  batchKey: string;
  extracts: number;
  reason: string;
}

export interface GenerationTotals {
  batches: number;
  batchesSucceeded: number;
  extracts: number;
  answered: number;
  failed: number;
  fromStore: number;
  completions: number;
  retriedExtracts: number;
  httpAttempts: number;
  inputTokens: number;
  outputTokens: number;
  failedBatches: FailedDatasetBatch[];
}

export interface GenerateDatasetsResult {
  type: DatasetType;
  authors: string[];
  missingAuthors: string[];
  extraction: ExtractionStats;
  generation: GenerationTotals;
  dataset: DatasetVersionSummary;
  status: 'completed' | 'completed-with-failures';
}

const retry: RetryPolicy = {
  initialInterval: '2 seconds',
  backoffCoefficient: 2,
  maximumInterval: '1 minute',
  maximumAttempts: 5,
  nonRetryableErrorTypes: FATAL_TYPES,
};

const { prepareExtracts, buildDatasetVersion } = proxyActivities<DatasetActivities>({
  taskQueue: QUEUES.llm,
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry,
});

// A batch waits on the LLM (and on 429 pauses); heartbeats come from a timer and from every settled extract.
const { generateForExtracts } = proxyActivities<DatasetActivities>({
  taskQueue: QUEUES.llm,
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '1 minute',
  retry,
});

function add(totals: GenerationTotals, r: BatchGenerationResult): void {
  totals.batchesSucceeded += 1;
  addCounts(totals, r, [
    'answered',
    'failed',
    'fromStore',
    'completions',
    'retriedExtracts',
    'httpAttempts',
    'inputTokens',
    'outputTokens',
  ]);
}

export async function generateDatasets(input: GenerateDatasetsInput): Promise<GenerateDatasetsResult> {
  if (!input || (input.type !== 'instruction' && input.type !== 'preference'))
    throw ApplicationFailure.nonRetryable("input.type must be 'instruction' or 'preference'", 'BadInput');
  const maxConcurrent = input.maxConcurrentBatches ?? DEFAULT_MAX_CONCURRENT_BATCHES;
  if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1)
    throw ApplicationFailure.nonRetryable('input.maxConcurrentBatches must be a positive whole number', 'BadInput');
  upsertSearchAttributes([
    { key: SEARCH_ATTRIBUTES.pipeline, value: 'generateDatasets' },
    { key: SEARCH_ATTRIBUTES.status, value: 'running' },
    ...(input.authors?.length ? [{ key: SEARCH_ATTRIBUTES.author, value: [...input.authors] }] : []),
  ]);
  upsertMemo({ type: input.type, authors: input.authors ?? null, model: input.model ?? null });
  const run: GenerationRunOptions = {
    type: input.type,
    ...(input.model ? { model: input.model } : {}),
    ...(input.runKey ? { runKey: input.runKey } : {}),
    ...(input.params ? { params: input.params } : {}),
  };
  try {
    const prepared = await prepareExtracts({
      type: input.type,
      ...(input.authors ? { authors: input.authors } : {}),
      ...(input.categories ? { categories: input.categories } : {}),
      ...(input.batchSize !== undefined ? { batchSize: input.batchSize } : {}),
      ...(input.sourceArtifactIds ? { sourceArtifactIds: input.sourceArtifactIds } : {}),
    });
    if (prepared.authors.length === 0) {
      throw ApplicationFailure.nonRetryable(
        `no cleaned documents${input.authors?.length ? ` of ${input.authors.join(', ')}` : ''} in the feature store (run featureEngineering first)`,
        'BadInput',
      );
    }
    if (!input.authors?.length) upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.author, value: prepared.authors }]);
    upsertMemo({ extracts: prepared.extraction.extracts, batches: prepared.batches.length });
    log.info('extracts prepared', { extracts: prepared.extraction.extracts, batches: prepared.batches.length });

    const totals: GenerationTotals = {
      batches: prepared.batches.length,
      batchesSucceeded: 0,
      extracts: prepared.extraction.extracts,
      answered: 0,
      failed: 0,
      fromStore: 0,
      completions: 0,
      retriedExtracts: 0,
      httpAttempts: 0,
      inputTokens: 0,
      outputTokens: 0,
      failedBatches: [],
    };
    await forEachLimited(prepared.batches, maxConcurrent, async (batch: ExtractBatchRef) => {
      try {
        add(totals, await generateForExtracts({ ...run, batchKey: batch.key }));
      } catch (error) {
        const { fatal, reason } = failureOf(error, FATAL_TYPES);
        if (fatal) throw error;
        log.warn('dataset batch failed', { batchKey: batch.key, reason });
        if (totals.failedBatches.length < MAX_LISTED_FAILURES)
          totals.failedBatches.push({ batchKey: batch.key, extracts: batch.count, reason });
      }
    });

    const dataset = await buildDatasetVersion({
      ...run,
      setKey: prepared.setKey,
      ...(input.testSplit !== undefined ? { testSplit: input.testSplit } : {}),
      ...(input.seed !== undefined ? { seed: input.seed } : {}),
    });
    const failedBatchCount = totals.batches - totals.batchesSucceeded;
    const status = failedBatchCount > 0 || dataset.extracts.failed > 0 ? 'completed-with-failures' : 'completed';
    upsertSearchAttributes([
      { key: SEARCH_ATTRIBUTES.datasetVersion, value: dataset.version },
      { key: SEARCH_ATTRIBUTES.status, value: status },
    ]);
    upsertMemo({
      version: dataset.version,
      artifactId: dataset.artifactId,
      train: dataset.counts.train,
      test: dataset.counts.test,
    });
    await startTrainingOnNewDataset(dataset, input.trainOnNewVersion);
    return {
      type: input.type,
      authors: prepared.authors,
      missingAuthors: prepared.missingAuthors,
      extraction: prepared.extraction,
      generation: totals,
      dataset,
      status,
    };
  } catch (error) {
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: 'failed' }]);
    throw error;
  }
}
