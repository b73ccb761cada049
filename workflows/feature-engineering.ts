import {
  ApplicationFailure,
  ContinueAsNew,
  continueAsNew,
  log,
  proxyActivities,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type {
  CleanDocumentsResult,
  DocumentBatch,
  EmbedDocumentsResult,
  FeatureActivities,
  FeatureArtifacts,
  FeatureAuthor,
  ItemFailure,
  ListDocumentIdsResult,
} from '../activities/features';
import type { RetryPolicy } from '@temporalio/common';
import type { DocumentCategory } from '../src/domain/documents';
import { SEARCH_ATTRIBUTES } from '../src/domain/search-attributes';
import { QUEUES } from './queues';
import { forEachLimited } from './concurrency';
import { failureOf } from './failures';
import { addCounts } from './totals';

/**
 * featureEngineering — from an author's raw documents in the warehouse to the feature store in Qdrant:
 * list ids → per batch: clean → store cleaned (cleaned_*) → chunk → embed → upsert (embedded_*) → record the
 * ArtifactRefs of the cleaned set and the embedded set.
 *
 * Only ids and counts pass through the history (claim check): `listDocumentIds` returns a page of at most
 * `pageSize` ids (≤ 1000) cut into batches of `batchSize` documents; each batch is one `cleanDocuments` and one
 * `embedDocuments` activity on twin-features, `maxConcurrentBatches` batches at a time.
 *
 * Large corpora: one page per run; when a page is done and more ids remain, the workflow continues as new with
 * the cursor and the running totals, so each run's history stays small (a 1000-id page in batches of 16 is
 * ~63 batches × 2 activities ≈ 800 events) however large the corpus. Chosen over child workflows because the
 * batches need no isolation of their own and one workflow id keeps the run, its totals and its result in one place.
 *
 * Re-runs are cheap and idempotent: unchanged cleaned documents are not rewritten, and a document whose stored
 * chunk ids equal those its text yields now (same model) is not embedded again (`force` re-embeds everything).
 * A batch that still fails after its retries is reported in `failedBatches` and the run goes on; errors no retry
 * can fix for any batch (a Qdrant collection made for another model/size, the model not installed, bad input)
 * fail the run.
 */

export const DEFAULT_PAGE_SIZE = 1000;
export const DEFAULT_MAX_CONCURRENT_BATCHES = 2;
const MAX_LISTED_FAILURES = 20;
const FATAL_TYPES = ['BadInput', 'VectorStoreMismatchError', 'ModelNotInstalledError'];

export interface FeatureEngineeringInput {
  /** authors' full names as in the warehouse, e.g. ["Maxime Labonne"] */
  authors: string[];
  /** default: all three (articles, posts, repositories) */
  categories?: DocumentCategory[];
  /** documents per clean/embed activity (default FEATURES_BATCH_SIZE, 16) */
  batchSize?: number;
  /** batches in flight at once (default 2, the features worker's default slots) */
  maxConcurrentBatches?: number;
  /** ids per run before continuing as new (default and maximum 1000) */
  pageSize?: number;
  /** re-embed documents whose chunks are already current */
  force?: boolean;
  /** raw-documents artifacts this run reads (default: each author's newest, when the ETL recorded one) */
  rawArtifactIds?: string[];
  /** @internal carried across continueAsNew */
  carry?: FeatureEngineeringCarry;
}

export interface FeatureEngineeringCarry {
  cursor: NonNullable<ListDocumentIdsResult['next']>;
  totals: FeatureTotals;
  runs: number;
}

export interface CleaningTotals {
  cleaned: number;
  inserted: number;
  updated: number;
  unchanged: number;
  empty: number;
  missing: number;
  failed: number;
}

export interface EmbeddingTotals {
  documents: number;
  embedded: number;
  unchanged: number;
  withoutChunks: number;
  chunks: number;
  chunksEmbedded: number;
  staleDeleted: number;
  missing: number;
  maxTokens: number;
}

export interface FailedBatch {
  category: DocumentCategory;
  stage: 'clean' | 'embed';
  documents: number;
  firstId: string;
  reason: string;
}

export interface FeatureTotals {
  /** documents listed (and handed to the batches) */
  documents: number;
  batches: number;
  cleaning: CleaningTotals;
  embedding: EmbeddingTotals;
  perCategory: Partial<Record<DocumentCategory, { documents: number; chunks: number }>>;
  /** documents that could not be cleaned (first 20) */
  failures: ItemFailure[];
  failedBatches: FailedBatch[];
}

export interface FeatureEngineeringResult {
  authors: FeatureAuthor[];
  missingAuthors: string[];
  categories: DocumentCategory[];
  totals: FeatureTotals;
  /** the cleaned set and the embedded set, or null when no author was found */
  artifacts: FeatureArtifacts | null;
  /** runs of this workflow id (1 + continueAsNew count) */
  runs: number;
  status: 'completed' | 'completed-with-failures';
}

const ALL_CATEGORIES: DocumentCategory[] = ['articles', 'posts', 'repositories'];

const retry: RetryPolicy = {
  initialInterval: '2 seconds',
  backoffCoefficient: 2,
  maximumInterval: '1 minute',
  maximumAttempts: 5,
  nonRetryableErrorTypes: FATAL_TYPES,
};

const { listDocumentIds, cleanDocuments, recordFeatureArtifacts } = proxyActivities<FeatureActivities>({
  taskQueue: QUEUES.features,
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry,
});

// Embedding is CPU-bound and long: heartbeats (every 2 s, from the event loop the embedder's worker threads keep
// free) let a dead worker be noticed within 20 s; the retry then skips the documents already written.
const { embedDocuments } = proxyActivities<FeatureActivities>({
  taskQueue: QUEUES.features,
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '20 seconds',
  retry,
});

export function emptyTotals(): FeatureTotals {
  return {
    documents: 0,
    batches: 0,
    cleaning: { cleaned: 0, inserted: 0, updated: 0, unchanged: 0, empty: 0, missing: 0, failed: 0 },
    embedding: {
      documents: 0,
      embedded: 0,
      unchanged: 0,
      withoutChunks: 0,
      chunks: 0,
      chunksEmbedded: 0,
      staleDeleted: 0,
      missing: 0,
      maxTokens: 0,
    },
    perCategory: {},
    failures: [],
    failedBatches: [],
  };
}

function addCleaning(totals: FeatureTotals, r: CleanDocumentsResult): void {
  addCounts(totals.cleaning, r, ['cleaned', 'inserted', 'updated', 'unchanged', 'empty', 'missing', 'failed']);
  for (const f of r.failures) if (totals.failures.length < MAX_LISTED_FAILURES) totals.failures.push(f);
}

function addEmbedding(totals: FeatureTotals, r: EmbedDocumentsResult): void {
  const e = totals.embedding;
  addCounts(e, r, [
    'documents',
    'embedded',
    'unchanged',
    'withoutChunks',
    'chunks',
    'chunksEmbedded',
    'staleDeleted',
    'missing',
  ]);
  e.maxTokens = Math.max(e.maxTokens, r.maxTokens);
  addCounts((totals.perCategory[r.category] ??= { documents: 0, chunks: 0 }), r, ['documents', 'chunks']);
}

async function runBatch(batch: DocumentBatch, force: boolean, totals: FeatureTotals): Promise<void> {
  let stage: FailedBatch['stage'] = 'clean';
  try {
    addCleaning(totals, await cleanDocuments({ ids: batch.ids, category: batch.category }));
    stage = 'embed';
    addEmbedding(totals, await embedDocuments({ ids: batch.ids, category: batch.category, force }));
  } catch (error) {
    const { fatal, reason } = failureOf(error, FATAL_TYPES);
    if (fatal) throw error;
    log.warn('feature batch failed', { category: batch.category, stage, reason });
    if (totals.failedBatches.length < MAX_LISTED_FAILURES) {
      totals.failedBatches.push({
        category: batch.category,
        stage,
        documents: batch.ids.length,
        firstId: batch.ids[0] ?? '',
        reason,
      });
    }
  }
}

export async function featureEngineering(input: FeatureEngineeringInput): Promise<FeatureEngineeringResult> {
  if (
    !input ||
    !Array.isArray(input.authors) ||
    input.authors.length === 0 ||
    input.authors.some((a) => typeof a !== 'string' || !a.trim())
  ) {
    throw ApplicationFailure.nonRetryable('input.authors must be a non-empty list of author names', 'BadInput');
  }
  const categories =
    input.categories && input.categories.length > 0
      ? ALL_CATEGORIES.filter((c) => input.categories!.includes(c))
      : ALL_CATEGORIES;
  if (input.categories && categories.length !== new Set(input.categories).size) {
    throw ApplicationFailure.nonRetryable(`input.categories must be among ${ALL_CATEGORIES.join(', ')}`, 'BadInput');
  }
  const maxConcurrent = input.maxConcurrentBatches ?? DEFAULT_MAX_CONCURRENT_BATCHES;
  const pageSize = Math.min(input.pageSize ?? DEFAULT_PAGE_SIZE, DEFAULT_PAGE_SIZE);
  const totals = input.carry?.totals ?? emptyTotals();
  const runs = (input.carry?.runs ?? 0) + 1;

  upsertSearchAttributes([
    { key: SEARCH_ATTRIBUTES.pipeline, value: 'featureEngineering' },
    { key: SEARCH_ATTRIBUTES.author, value: [...input.authors] },
    { key: SEARCH_ATTRIBUTES.status, value: 'running' },
  ]);
  upsertMemo({
    authors: input.authors,
    categories,
    batchSize: input.batchSize ?? null,
    force: input.force ?? false,
    run: runs,
  });

  try {
    const page = await listDocumentIds({
      authors: input.authors,
      categories,
      limit: pageSize,
      ...(input.batchSize !== undefined ? { batchSize: input.batchSize } : {}),
      ...(input.carry ? { after: input.carry.cursor } : {}),
    });
    if (page.authors.length === 0) {
      throw ApplicationFailure.nonRetryable(
        `no such author in the warehouse: ${page.missingAuthors.join(', ')} (run digitalDataEtl or \`twin warehouse import\` first)`,
        'BadInput',
      );
    }
    upsertMemo({ documents: page.total, batchSize: page.batchSize });
    log.info('feature page', { run: runs, ids: page.count, total: page.total, batches: page.batches.length });
    totals.documents += page.count;
    totals.batches += page.batches.length;
    await forEachLimited(page.batches, maxConcurrent, (batch) => runBatch(batch, input.force ?? false, totals));

    if (page.next) {
      await continueAsNew<typeof featureEngineering>({ ...input, carry: { cursor: page.next, totals, runs } });
    }

    const artifacts = await recordFeatureArtifacts({
      authors: page.authors,
      categories,
      ...(input.rawArtifactIds ? { rawArtifactIds: input.rawArtifactIds } : {}),
    });
    const status =
      totals.failedBatches.length > 0 || totals.cleaning.failed > 0 ? 'completed-with-failures' : 'completed';
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: status }]);
    upsertMemo({
      chunks: artifacts.embedded.count,
      cleanedArtifact: artifacts.cleaned.id,
      embeddedArtifact: artifacts.embedded.id,
    });
    return { authors: page.authors, missingAuthors: page.missingAuthors, categories, totals, artifacts, runs, status };
  } catch (error) {
    // continueAsNew works by throwing; it is not a failure.
    if (error instanceof ContinueAsNew) throw error;
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: 'failed' }]);
    log.error('featureEngineering failed', { workflowId: workflowInfo().workflowId, error: String(error) });
    throw error;
  }
}
