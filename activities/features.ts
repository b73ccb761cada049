/**
 * Activities of the `twin-features` queue: list the documents of some authors (ids only), clean them into the
 * `cleaned_*` collections, chunk + embed + upsert them into `embedded_*`, and record the ArtifactRefs of the cleaned
 * and the embedded set. Only ids and counts cross Temporal; document bodies and vectors stay in MongoDB / Qdrant.
 *
 * The embedder (worker threads, off the event loop) and the tokenizer are loaded once per worker process through
 * {@link Dependencies}. Every activity is idempotent: cleaned points are keyed by document id, chunk points by
 * chunk id (UUIDv5 of document id + chunk text hash), and a document whose stored chunk ids already equal the ones
 * its cleaned text yields (same model) is not embedded again.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Filter as MongoFilter } from 'mongodb';
import { checksumOf, type ArtifactRef } from '../src/domain/artifacts';
import { DOCUMENT_CATEGORIES, type Chunk, type CleanedDocument, type DocumentCategory } from '../src/domain/documents';
import { chunkDocument } from '../src/features/chunking';
import { cleanDocument } from '../src/features/cleaning';
import { ModelNotInstalledError } from '../src/features/model-files';
import type { Dependencies } from '../src/infra/dependencies';
import { VectorStoreMismatchError, type ChunkWithVector, type VectorStore } from '../src/infra/qdrant';
import { DocumentWarehouse, fromWarehouseRecord, type DocumentRecord } from '../src/infra/warehouse';
import { badInput, currentProducer, withHeartbeat } from './support';

/** Most ids one listDocumentIds page returns (36-char UUIDs: ~40 kB of JSON). */
export const MAX_IDS_PER_PAGE = 1000;
/** Chunks embedded per embedder call: enough to keep every embedder worker thread busy, small enough for fine progress. */
const EMBED_GROUP_CHUNKS = 64;
/** Per-item failures listed in a result (the rest are counted). */
const MAX_LISTED_FAILURES = 20;

export interface FeatureAuthor {
  name: string;
  id: string;
}

export interface ListDocumentIdsInput {
  authors: string[];
  categories?: DocumentCategory[];
  /** continue after this document (ids are listed category by category, ascending within a category) */
  after?: { category: DocumentCategory; id: string };
  /** ids per page (default and maximum {@link MAX_IDS_PER_PAGE}) */
  limit?: number;
  /** documents per batch (default FEATURES_BATCH_SIZE) */
  batchSize?: number;
}

export interface DocumentBatch {
  category: DocumentCategory;
  ids: string[];
}

export interface ListDocumentIdsResult {
  authors: FeatureAuthor[];
  /** names given that are not in the warehouse */
  missingAuthors: string[];
  /** this page's ids, cut into batches of `batchSize` (one category per batch) */
  batches: DocumentBatch[];
  /** ids on this page */
  count: number;
  /** documents of these authors and categories in the warehouse (all pages) */
  total: number;
  batchSize: number;
  /** where the next page starts; absent on the last page */
  next?: { category: DocumentCategory; id: string };
}

export interface ItemFailure {
  id: string;
  reason: string;
}

export interface CleanDocumentsInput {
  ids: string[];
  category: DocumentCategory;
}

export interface CleanDocumentsResult {
  category: DocumentCategory;
  /** ids asked for */
  requested: number;
  /** cleaned documents now in cleaned_* for these ids */
  cleaned: number;
  inserted: number;
  updated: number;
  unchanged: number;
  /** cleaned text is empty (stored; yields no chunks) */
  empty: number;
  /** ids not in the warehouse (deleted since they were listed) */
  missing: number;
  /** records that could not be read or cleaned (first {@link MAX_LISTED_FAILURES}) */
  failures: ItemFailure[];
  failed: number;
}

export interface EmbedDocumentsInput {
  ids: string[];
  category: DocumentCategory;
  /** re-embed documents whose stored chunks are already current */
  force?: boolean;
}

export interface EmbedDocumentsResult {
  category: DocumentCategory;
  requested: number;
  /** cleaned documents found for the ids */
  documents: number;
  /** documents chunked and embedded now */
  embedded: number;
  /** documents whose stored chunks were already exactly the current ones (same ids, same model) */
  unchanged: number;
  /** documents whose cleaned text gives no chunk */
  withoutChunks: number;
  /** chunks the documents have now (embedded now or before) */
  chunks: number;
  /** chunks embedded and upserted now */
  chunksEmbedded: number;
  /** stale chunks (of changed text) deleted */
  staleDeleted: number;
  /** the largest chunk in tokens (content, without [CLS]/[SEP]) */
  maxTokens: number;
  /** ids without a cleaned document (clean step failed or skipped them) */
  missing: number;
  embeddingModel: string;
}

export interface EmbedProgress {
  category: DocumentCategory;
  done: number;
  total: number;
  chunksEmbedded: number;
}

export interface RecordFeatureArtifactsInput {
  authors: FeatureAuthor[];
  categories?: DocumentCategory[];
  /** raw-documents artifacts the run started from; default: the latest one of each author, when known */
  rawArtifactIds?: string[];
}

export interface FeatureArtifacts {
  cleaned: ArtifactRef;
  embedded: ArtifactRef;
}

/** Errors retrying cannot fix become non-retryable failures with their own type, named in the workflow's policy. */
async function classified<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof VectorStoreMismatchError || error instanceof ModelNotInstalledError) {
      throw ApplicationFailure.create({ message: error.message, type: error.name, nonRetryable: true, cause: error });
    }
    throw error;
  }
}

function categoriesOf(input: { categories?: DocumentCategory[] }): DocumentCategory[] {
  const wanted = input.categories && input.categories.length > 0 ? input.categories : [...DOCUMENT_CATEGORIES];
  const unknown = wanted.filter((c) => !(DOCUMENT_CATEGORIES as readonly string[]).includes(c));
  if (unknown.length > 0)
    throw badInput(`unknown categories ${unknown.join(', ')}; expected ${DOCUMENT_CATEGORIES.join(', ')}`);
  return DOCUMENT_CATEGORIES.filter((c) => wanted.includes(c));
}

function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.length > 300 ? `${message.slice(0, 300)}…` : message;
}

export function createFeatureActivities(deps: Dependencies) {
  const warehouse = async () => new DocumentWarehouse((await deps.warehouse()).db);

  async function resolveAuthors(names: string[]): Promise<{ authors: FeatureAuthor[]; missing: string[] }> {
    const wh = await warehouse();
    const authors: FeatureAuthor[] = [];
    const missing: string[] = [];
    for (const name of names) {
      const found = await wh.findAuthor(name).catch((error: unknown) => {
        if (error instanceof Error && /must not be empty/.test(error.message))
          throw badInput('author names must not be empty');
        throw error;
      });
      if (found && !authors.some((a) => a.id === found.id)) authors.push({ name: found.fullName, id: found.id });
      else if (!found) missing.push(name);
    }
    return { authors, missing };
  }

  return {
    /** The ids of the authors' documents, one page at a time, cut into batches. Never document bodies. */
    async listDocumentIds(input: ListDocumentIdsInput): Promise<ListDocumentIdsResult> {
      if (!Array.isArray(input.authors) || input.authors.length === 0)
        throw badInput('featureEngineering needs at least one author');
      const categories = categoriesOf(input);
      const limit = Math.min(input.limit ?? MAX_IDS_PER_PAGE, MAX_IDS_PER_PAGE);
      const batchSize = input.batchSize ?? deps.settings.features.batchSize;
      if (!Number.isInteger(limit) || limit < 1)
        throw badInput(`limit must be a positive whole number, got ${input.limit}`);
      if (!Number.isInteger(batchSize) || batchSize < 1)
        throw badInput(`batchSize must be a positive whole number, got ${input.batchSize}`);
      const { authors, missing } = await resolveAuthors(input.authors);
      const wh = await warehouse();
      const authorIds = authors.map((a) => a.id);
      const batches: DocumentBatch[] = [];
      let count = 0;
      let total = 0;
      let next: ListDocumentIdsResult['next'];
      const startAt = input.after ? categories.indexOf(input.after.category) : 0;
      for (const [index, category] of categories.entries()) {
        if (authorIds.length === 0) break;
        const filter: MongoFilter<DocumentRecord> = { author_id: { $in: authorIds } };
        total += await wh.documents(category).countDocuments(filter);
        if (index < startAt || next) continue;
        const room = limit - count;
        const idFilter = input.after && index === startAt ? { ...filter, _id: { $gt: input.after.id } } : filter;
        const docs = await wh
          .documents(category)
          .find(idFilter, { projection: { _id: 1 } })
          .sort({ _id: 1 })
          .limit(room + 1)
          .toArray();
        const ids = docs.slice(0, room).map((d) => String(d._id));
        for (let i = 0; i < ids.length; i += batchSize) batches.push({ category, ids: ids.slice(i, i + batchSize) });
        count += ids.length;
        if (docs.length > room) next = { category, id: ids[ids.length - 1]! };
        else if (count >= limit && index < categories.length - 1) next = { category: categories[index + 1]!, id: '' };
      }
      return { authors, missingAuthors: missing, batches, count, total, batchSize, ...(next ? { next } : {}) };
    },

    /** Reads raw documents, cleans them and stores them in cleaned_* (payload only). Counts only. */
    async cleanDocuments(input: CleanDocumentsInput): Promise<CleanDocumentsResult> {
      categoriesOf({ categories: [input.category] });
      return classified(() =>
        withHeartbeat(async () => {
          const wh = await warehouse();
          const result: CleanDocumentsResult = {
            category: input.category,
            requested: input.ids.length,
            cleaned: 0,
            inserted: 0,
            updated: 0,
            unchanged: 0,
            empty: 0,
            missing: 0,
            failures: [],
            failed: 0,
          };
          const records = await wh
            .documents(input.category)
            .find({ _id: { $in: input.ids } })
            .toArray();
          result.missing = new Set(input.ids).size - records.length;
          const cleaned: CleanedDocument[] = [];
          for (const record of records) {
            try {
              const doc = cleanDocument(fromWarehouseRecord(input.category, record));
              if (!doc.content.trim()) result.empty++;
              cleaned.push(doc);
            } catch (error) {
              result.failed++;
              if (result.failures.length < MAX_LISTED_FAILURES)
                result.failures.push({ id: String(record._id), reason: reasonOf(error) });
            }
          }
          const stored = await deps.vectorStore().upsertCleaned(input.category, cleaned);
          Object.assign(result, stored, { cleaned: cleaned.length });
          return result;
        }),
      );
    },

    /**
     * Chunks the stored cleaned documents, embeds the chunks of documents whose stored chunks are not current, and
     * makes each document's points exactly its chunks (new upserted first, then stale deleted). Heartbeats
     * `{done, total}` documents; a retry after a crash finds the documents already done current and skips them.
     */
    async embedDocuments(input: EmbedDocumentsInput): Promise<EmbedDocumentsResult> {
      categoriesOf({ categories: [input.category] });
      const progress: EmbedProgress = { category: input.category, done: 0, total: input.ids.length, chunksEmbedded: 0 };
      return classified(() =>
        withHeartbeat(
          async () => {
            const store = deps.vectorStore();
            await store.ensureCollection('embedded', input.category);
            const [counter, docs] = await Promise.all([
              deps.tokenCounter(),
              store.getCleaned(input.category, input.ids),
            ]);
            progress.total = docs.length;
            const result: EmbedDocumentsResult = {
              category: input.category,
              requested: input.ids.length,
              documents: docs.length,
              embedded: 0,
              unchanged: 0,
              withoutChunks: 0,
              chunks: 0,
              chunksEmbedded: 0,
              staleDeleted: 0,
              maxTokens: 0,
              missing: new Set(input.ids).size - docs.length,
              embeddingModel: store.embedding.modelId,
            };
            const stored = await store.storedChunkIds(
              input.category,
              docs.map((d) => d.id),
            );
            const pending: { doc: CleanedDocument; chunks: Chunk[] }[] = [];
            for (const doc of docs) {
              const chunks = chunkDocument(doc, counter);
              result.chunks += chunks.length;
              for (const c of chunks) result.maxTokens = Math.max(result.maxTokens, c.token_count);
              if (chunks.length === 0) result.withoutChunks++;
              const have = stored.get(doc.id);
              const current =
                !input.force &&
                (have?.ids.size ?? 0) === chunks.length &&
                chunks.every((c) => have?.ids.has(c.id)) &&
                (chunks.length === 0 || (have?.models.size === 1 && have.models.has(store.embedding.modelId)));
              if (current) {
                result.unchanged++;
                progress.done++;
              } else pending.push({ doc, chunks });
            }
            // Documents are embedded in groups of about EMBED_GROUP_CHUNKS chunks; each group is written before the
            // next is embedded, so progress is durable document by document.
            let group: typeof pending = [];
            let groupChunks = 0;
            const flush = async () => {
              if (group.length === 0) return;
              const embedder = await deps.embedder();
              const chunks = group.flatMap((g) => g.chunks);
              const vectors = await embedder.embed(chunks.map((c) => c.content));
              const written = await writeChunks(
                store,
                input.category,
                group.map((g) => g.doc.id),
                chunks,
                vectors,
              );
              result.embedded += group.length;
              result.chunksEmbedded += written.upserted;
              result.staleDeleted += written.deleted;
              progress.done += group.length;
              progress.chunksEmbedded = result.chunksEmbedded;
              Context.current().heartbeat(progress);
              group = [];
              groupChunks = 0;
            };
            for (const item of pending) {
              group.push(item);
              groupChunks += item.chunks.length;
              if (groupChunks >= EMBED_GROUP_CHUNKS) await flush();
            }
            await flush();
            return result;
          },
          () => progress,
        ),
      );
    },

    /**
     * Records the cleaned set and the embedded set of these authors (as they now are in Qdrant) as ArtifactRefs.
     * Checksums cover every document's cleaned-text hash / every chunk id and the model, so an unchanged feature
     * store is the same artifact; manifests go to the artifact store.
     */
    async recordFeatureArtifacts(input: RecordFeatureArtifactsInput): Promise<FeatureArtifacts> {
      const categories = categoriesOf(input);
      return classified(async () => {
        const producer = currentProducer();
        const store = deps.vectorStore();
        const registry = await deps.artifactRegistry();
        const artifactStore = deps.artifactStore();
        const authorIds = input.authors.map((a) => a.id).sort();
        const authorNames = input.authors
          .map((a) => a.name)
          .sort()
          .join(', ');
        const rawInputs = input.rawArtifactIds ?? (await latestRawArtifacts(deps, authorIds));

        const cleanedDocs: { id: string; category: DocumentCategory; contentHash: string }[] = [];
        const chunkIds: { category: DocumentCategory; documentId: string; id: string }[] = [];
        const perCategory: Record<string, number> = {};
        for (const category of categories) {
          for await (const { id, payload } of store.scrollPayloads<{ content_hash?: string }>('cleaned', category, {
            authorIds,
            fields: ['content_hash'],
          })) {
            cleanedDocs.push({ id, category, contentHash: String(payload.content_hash) });
          }
          for await (const { id, payload } of store.scrollPayloads<{ document_id?: string }>('embedded', category, {
            authorIds,
            fields: ['document_id'],
          })) {
            chunkIds.push({ category, documentId: String(payload.document_id), id });
          }
          perCategory[`cleaned_${category}`] = cleanedDocs.filter((d) => d.category === category).length;
          perCategory[`chunks_${category}`] = chunkIds.filter((c) => c.category === category).length;
        }
        const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
        cleanedDocs.sort(byId);
        chunkIds.sort(byId);

        const cleanedChecksum = checksumOf({ kind: 'cleaned-documents', authorIds, documents: cleanedDocs });
        const cleanedKey = `cleaned-documents/${cleanedChecksum.replace(/^sha256:/, '').slice(0, 24)}/manifest.json`;
        const cleanedManifest = {
          kind: 'cleaned-documents',
          authors: input.authors,
          collections: categories.map((c) => store.name('cleaned', c)),
          documents: cleanedDocs,
        };
        const cleanedManifestUri = (
          await artifactStore.put(cleanedKey, JSON.stringify(cleanedManifest), 'application/json')
        ).uri;
        const cleaned = await registry.record({
          kind: 'cleaned-documents',
          uri: qdrantUri(deps, store, 'cleaned', categories),
          count: cleanedDocs.length,
          checksum: cleanedChecksum,
          producer,
          inputs: rawInputs,
          metadata: { authors: authorNames, manifest: cleanedManifestUri, ...perCategoryOf(perCategory, 'cleaned_') },
        });

        const model = store.embedding;
        const embeddedChecksum = checksumOf({ kind: 'embedded-chunks', authorIds, model, chunks: chunkIds });
        const embeddedKey = `embedded-chunks/${embeddedChecksum.replace(/^sha256:/, '').slice(0, 24)}/manifest.json`;
        const embeddedManifest = {
          kind: 'embedded-chunks',
          authors: input.authors,
          model,
          collections: categories.map((c) => store.name('embedded', c)),
          chunks: chunkIds,
        };
        const embeddedManifestUri = (
          await artifactStore.put(embeddedKey, JSON.stringify(embeddedManifest), 'application/json')
        ).uri;
        const embedded = await registry.record({
          kind: 'embedded-chunks',
          uri: qdrantUri(deps, store, 'embedded', categories),
          count: chunkIds.length,
          checksum: embeddedChecksum,
          producer,
          inputs: [cleaned.id],
          metadata: {
            authors: authorNames,
            manifest: embeddedManifestUri,
            embeddingModel: model.modelId,
            dimension: model.dimension,
            distance: 'Cosine',
            documents: new Set(chunkIds.map((c) => c.documentId)).size,
            ...perCategoryOf(perCategory, 'chunks_'),
          },
        });
        return { cleaned, embedded };
      });
    },
  };
}

async function writeChunks(
  store: VectorStore,
  category: DocumentCategory,
  documentIds: string[],
  chunks: Chunk[],
  vectors: Float32Array[],
): Promise<{ upserted: number; deleted: number }> {
  if (vectors.length !== chunks.length)
    throw new Error(`embedder returned ${vectors.length} vectors for ${chunks.length} chunks`);
  const items: ChunkWithVector[] = chunks.map((chunk, i) => ({ chunk, vector: vectors[i]! }));
  return store.replaceDocumentChunks(category, documentIds, items);
}

function perCategoryOf(counts: Record<string, number>, prefix: string): Record<string, number> {
  return Object.fromEntries(
    Object.entries(counts)
      .filter(([k]) => k.startsWith(prefix))
      .map(([k, v]) => [k.slice(prefix.length), v]),
  );
}

/** `qdrant://host:port/cleaned_articles,cleaned_posts?author_id=…` style locator (no credentials). */
function qdrantUri(
  deps: Dependencies,
  store: VectorStore,
  kind: 'cleaned' | 'embedded',
  categories: DocumentCategory[],
): string {
  const url = new URL(deps.settings.qdrant.url ?? 'http://qdrant');
  return `qdrant://${url.host}/${categories.map((c) => store.name(kind, c)).join(',')}`;
}

/** The newest raw-documents artifact of each author, if the ETL recorded one. */
async function latestRawArtifacts(deps: Dependencies, authorIds: string[]): Promise<string[]> {
  const { db } = await deps.warehouse();
  const ids: string[] = [];
  for (const authorId of authorIds) {
    const [latest] = await db
      .collection<{ _id: string }>('artifacts')
      .find({ kind: 'raw-documents', 'metadata.authorId': authorId }, { projection: { _id: 1 } })
      .sort({ createdAt: -1 })
      .limit(1)
      .toArray();
    if (latest) ids.push(latest._id);
  }
  return ids;
}

export type FeatureActivities = ReturnType<typeof createFeatureActivities>;
