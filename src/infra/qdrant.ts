/**
 * The vector store / feature store: Qdrant collections of cleaned documents and of embedded chunks.
 *
 * - `cleaned_{articles,posts,repositories}`: one point per cleaned document (point id = the document id), the
 *   whole CleanedDocument as payload, and no vectors (the collection is created with an empty named-vectors
 *   config `{}`, which Qdrant accepts for vector-less collections; points are upserted with `vector: {}`).
 * - `embedded_{articles,posts,repositories}`: one point per chunk (point id = the chunk id, UUIDv5 of document id +
 *   chunk text hash), 384-d cosine vectors, the chunk (without its vector) plus `embedding_model` and
 *   `embedding_dim` as payload.
 *
 * Both are created when missing, with keyword payload indexes on `author_id`, `platform` and `document_id`.
 * The embedding model id and dimension are stored in the collection's metadata (Qdrant ≥ 1.16) and on every point;
 * opening a collection whose vector size, distance, model id (metadata, or the payload of a stored point when the
 * collection has no metadata) or vector layout differ is a {@link VectorStoreMismatchError}: vectors of two models
 * are never mixed in one collection.
 *
 * Writes are batched and wait for the write to be applied (`wait: true`); reads page with scroll. A document's
 * chunks are replaced crash-safely: the new chunks are upserted first, then points of that document whose id is
 * not among the new ones are deleted by filter — a crash in between leaves extra points, never missing ones,
 * and the retry removes them.
 */
import { QdrantClient, type Schemas } from '@qdrant/js-client-rest';
import type { Settings } from '../config';
import { DOCUMENT_CATEGORIES, type Chunk, type CleanedDocument, type DocumentCategory } from '../domain/documents';
import { sha256 } from '../domain/artifacts';
import { EMBEDDING_DIMENSION, EMBEDDING_MODEL_ID } from '../features/model-files';

type Filter = Schemas['Filter'];
type Condition = Schemas['Condition'];

export type CollectionKind = 'cleaned' | 'embedded';

/** Fields every collection indexes (keyword), so filtered reads and searches by author / platform / document are cheap. */
export const PAYLOAD_INDEX_FIELDS = ['author_id', 'platform', 'document_id'] as const;

/** The embedding a collection of vectors is made with. */
export interface EmbeddingIdentity {
  /** e.g. `sentence-transformers/all-MiniLM-L6-v2` */
  modelId: string;
  dimension: number;
}

export interface VectorStoreOptions {
  url: string;
  apiKey?: string;
  /** Prepended to every collection name (tests, several platforms on one Qdrant). Default ''. */
  collectionPrefix?: string;
  /** The embedding of the embedded_* collections. */
  embedding: EmbeddingIdentity;
  /** Points per upsert request (default 128: 384-d vectors + payload ≈ 0.5 MB). */
  upsertBatchSize?: number;
  /** Points per scroll page (default 256). */
  scrollPageSize?: number;
  /** Request timeout in ms (default 60 000). */
  timeoutMs?: number;
}

/** A collection exists with a different vector size, distance, layout or embedding model than this platform uses. */
export class VectorStoreMismatchError extends Error {
  constructor(
    readonly collection: string,
    readonly expected: string,
    readonly found: string,
  ) {
    super(
      `Qdrant collection ${collection} does not match this platform: expected ${expected}, found ${found}. ` +
        'Vectors of different models or sizes must not be mixed: point QDRANT_COLLECTION_PREFIX at new collections, ' +
        'or delete the collection to re-embed everything.',
    );
    this.name = 'VectorStoreMismatchError';
  }
}

/** The stored form of a cleaned document: the document, its id again as `document_id` (indexed, as in chunks) and a hash of its content. */
export type CleanedPayload = CleanedDocument & { document_id: string; content_hash: string };

/** The stored form of a chunk: the chunk, its model and dimension (the vector is the point's vector). */
export type ChunkPayload = Chunk & { embedding_model: string; embedding_dim: number };

export interface ChunkWithVector {
  chunk: Chunk;
  vector: Float32Array | number[];
}

export interface ScoredChunk {
  id: string;
  score: number;
  payload: ChunkPayload;
}

export interface ReplaceChunksResult {
  upserted: number;
  /** stale points removed (chunks of these documents that are no longer produced) */
  deleted: number;
}

export interface UpsertCleanedResult {
  /** documents new to the collection */
  inserted: number;
  /** documents whose cleaned text changed */
  updated: number;
  /** documents stored with the same cleaned text before (left as they are) */
  unchanged: number;
}

/**
 * The model id and dimension the configured embedder produces, known without loading it: recorded in collection
 * metadata and on every point, and checked when a collection is opened.
 */
export function embeddingIdentity(settings: Pick<Settings, 'embedding'>): EmbeddingIdentity {
  return settings.embedding.backend === 'openai'
    ? { modelId: settings.embedding.apiModel, dimension: EMBEDDING_DIMENSION }
    : { modelId: EMBEDDING_MODEL_ID, dimension: EMBEDDING_DIMENSION };
}

export function collectionName(kind: CollectionKind, category: DocumentCategory, prefix = ''): string {
  return `${prefix}${kind}_${category}`;
}

export function contentHash(text: string): string {
  return `sha256:${sha256(text)}`;
}

const COLLECTION_KIND_META = 'llm-twin';

function httpStatus(error: unknown): number | undefined {
  const status = (error as { status?: unknown })?.status;
  return typeof status === 'number' ? status : undefined;
}

function describeVectors(vectors: unknown): string {
  return JSON.stringify(vectors ?? null);
}

export class VectorStore {
  readonly client: QdrantClient;
  readonly prefix: string;
  readonly embedding: EmbeddingIdentity;
  private readonly upsertBatchSize: number;
  private readonly scrollPageSize: number;
  private readonly opened = new Map<string, Promise<void>>();

  constructor(options: VectorStoreOptions) {
    this.client = new QdrantClient({
      url: options.url,
      apiKey: options.apiKey,
      timeout: options.timeoutMs ?? 60_000,
      // the stand-in reports 1.20.0-standin; a version check would only add a request per process
      checkCompatibility: false,
    });
    this.prefix = options.collectionPrefix ?? '';
    this.embedding = options.embedding;
    this.upsertBatchSize = options.upsertBatchSize ?? 128;
    this.scrollPageSize = options.scrollPageSize ?? 256;
  }

  static fromSettings(settings: Pick<Settings, 'qdrant'>, embedding: EmbeddingIdentity): VectorStore {
    if (!settings.qdrant.url) {
      throw new Error(
        'QDRANT_URL is not set: start the local platform with `twin dev`, or set QDRANT_URL to your Qdrant',
      );
    }
    return new VectorStore({
      url: settings.qdrant.url,
      apiKey: settings.qdrant.apiKey?.reveal(),
      collectionPrefix: settings.qdrant.collectionPrefix,
      embedding,
    });
  }

  name(kind: CollectionKind, category: DocumentCategory): string {
    return collectionName(kind, category, this.prefix);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Collections
  // -------------------------------------------------------------------------------------------------------------

  /**
   * Creates the collection if missing (with its payload indexes), or checks that the existing one matches
   * (else {@link VectorStoreMismatchError}). Once per collection per process; a failure is not cached.
   */
  ensureCollection(kind: CollectionKind, category: DocumentCategory): Promise<void> {
    const name = this.name(kind, category);
    let open = this.opened.get(name);
    if (!open) {
      open = this.openCollection(kind, name).catch((error: unknown) => {
        this.opened.delete(name);
        throw error;
      });
      this.opened.set(name, open);
    }
    return open;
  }

  /** Forgets which collections were checked (after a collection was deleted or recreated outside this object). */
  forgetCollections(): void {
    this.opened.clear();
  }

  private metadataFor(kind: CollectionKind): Record<string, unknown> {
    return kind === 'embedded'
      ? {
          platform: COLLECTION_KIND_META,
          kind,
          embedding_model: this.embedding.modelId,
          embedding_dim: this.embedding.dimension,
        }
      : { platform: COLLECTION_KIND_META, kind };
  }

  private async openCollection(kind: CollectionKind, name: string): Promise<void> {
    const { exists } = await this.client.collectionExists(name);
    if (!exists) {
      try {
        await this.client.createCollection(name, {
          vectors: kind === 'embedded' ? { size: this.embedding.dimension, distance: 'Cosine' } : {},
          metadata: this.metadataFor(kind),
        });
      } catch (error) {
        // Another worker created it first: check what it made.
        if (httpStatus(error) !== 409) throw error;
      }
    }
    await this.checkCollection(kind, name);
    await this.ensurePayloadIndexes(name);
  }

  private async checkCollection(kind: CollectionKind, name: string): Promise<void> {
    const info = await this.client.getCollection(name);
    const vectors = info.config.params.vectors as unknown;
    if (kind === 'cleaned') {
      const empty =
        vectors === undefined || vectors === null || (typeof vectors === 'object' && Object.keys(vectors).length === 0);
      if (!empty)
        throw new VectorStoreMismatchError(
          name,
          'a payload-only collection (vectors {})',
          `vectors ${describeVectors(vectors)}`,
        );
      return;
    }
    const expected = `${this.embedding.dimension}-d Cosine vectors of ${this.embedding.modelId}`;
    const params = vectors as { size?: unknown; distance?: unknown } | null;
    if (
      !params ||
      typeof params.size !== 'number' ||
      params.size !== this.embedding.dimension ||
      params.distance !== 'Cosine'
    ) {
      throw new VectorStoreMismatchError(name, expected, `vectors ${describeVectors(vectors)}`);
    }
    const metadata = (info.config as { metadata?: Record<string, unknown> | null }).metadata ?? undefined;
    const storedModel = metadata?.embedding_model;
    if (storedModel !== undefined) {
      if (storedModel !== this.embedding.modelId)
        throw new VectorStoreMismatchError(
          name,
          expected,
          `vectors of ${JSON.stringify(storedModel)} (collection metadata)`,
        );
      return;
    }
    // No metadata (made by an older Qdrant or by hand): the points say which model made them.
    const sample = await this.client.scroll(name, { limit: 1, with_payload: ['embedding_model'], with_vector: false });
    const pointModel = sample.points[0]?.payload?.embedding_model;
    if (pointModel !== undefined && pointModel !== this.embedding.modelId) {
      throw new VectorStoreMismatchError(name, expected, `points embedded with ${JSON.stringify(pointModel)}`);
    }
  }

  private async ensurePayloadIndexes(name: string): Promise<void> {
    const info = await this.client.getCollection(name);
    const present = new Set(Object.keys(info.payload_schema ?? {}));
    for (const field of PAYLOAD_INDEX_FIELDS) {
      if (present.has(field)) continue;
      await this.client.createPayloadIndex(name, { field_name: field, field_schema: 'keyword', wait: true });
    }
  }

  /** Deletes this store's collections (tests, `twin features --reset`-style maintenance). */
  async dropCollections(kinds: CollectionKind[] = ['cleaned', 'embedded']): Promise<void> {
    for (const kind of kinds) {
      for (const category of DOCUMENT_CATEGORIES) await this.client.deleteCollection(this.name(kind, category));
    }
    this.opened.clear();
  }

  // -------------------------------------------------------------------------------------------------------------
  // Cleaned documents
  // -------------------------------------------------------------------------------------------------------------

  /**
   * Stores cleaned documents (payload only, point id = document id). A document stored before with the same
   * cleaned text is left untouched; changed or new ones are (over)written.
   */
  async upsertCleaned(category: DocumentCategory, docs: CleanedDocument[]): Promise<UpsertCleanedResult> {
    const result: UpsertCleanedResult = { inserted: 0, updated: 0, unchanged: 0 };
    if (docs.length === 0) return result;
    await this.ensureCollection('cleaned', category);
    const name = this.name('cleaned', category);
    const stored = new Map<string, string | undefined>();
    for (let i = 0; i < docs.length; i += this.scrollPageSize) {
      const points = await this.client.retrieve(name, {
        ids: docs.slice(i, i + this.scrollPageSize).map((d) => d.id),
        with_payload: ['content_hash'],
        with_vector: false,
      });
      for (const point of points) stored.set(String(point.id), point.payload?.content_hash as string | undefined);
    }
    const writes: { id: string; vector: Record<string, never>; payload: Record<string, unknown> }[] = [];
    for (const doc of docs) {
      if (doc.category !== category) throw new Error(`document ${doc.id} is ${doc.category}, not ${category}`);
      const hash = contentHash(doc.content);
      if (!stored.has(doc.id)) result.inserted++;
      else if (stored.get(doc.id) === hash) {
        result.unchanged++;
        continue;
      } else result.updated++;
      writes.push({
        id: doc.id,
        vector: {},
        payload: { ...doc, document_id: doc.id, content_hash: hash } satisfies CleanedPayload,
      });
    }
    for (let i = 0; i < writes.length; i += this.upsertBatchSize) {
      await this.client.upsert(name, { wait: true, points: writes.slice(i, i + this.upsertBatchSize) });
    }
    return result;
  }

  /** Cleaned documents by id, in the order asked; ids not stored are left out. */
  async getCleaned(category: DocumentCategory, ids: string[]): Promise<CleanedPayload[]> {
    if (ids.length === 0) return [];
    await this.ensureCollection('cleaned', category);
    const name = this.name('cleaned', category);
    const found = new Map<string, CleanedPayload>();
    for (let i = 0; i < ids.length; i += this.scrollPageSize) {
      const points = await this.client.retrieve(name, {
        ids: ids.slice(i, i + this.scrollPageSize),
        with_payload: true,
        with_vector: false,
      });
      for (const point of points) found.set(String(point.id), point.payload as unknown as CleanedPayload);
    }
    return ids.flatMap((id) => (found.has(id) ? [found.get(id)!] : []));
  }

  // -------------------------------------------------------------------------------------------------------------
  // Embedded chunks
  // -------------------------------------------------------------------------------------------------------------

  /**
   * Makes the stored chunks of `documentIds` exactly `chunks`: upserts them (batched, waiting), then deletes the
   * documents' points whose id is not among the new chunk ids (stale chunks of changed text). Crash-safe in that
   * order, and idempotent: the point id is the chunk id.
   */
  async replaceDocumentChunks(
    category: DocumentCategory,
    documentIds: string[],
    chunks: ChunkWithVector[],
  ): Promise<ReplaceChunksResult> {
    if (documentIds.length === 0) return { upserted: 0, deleted: 0 };
    await this.ensureCollection('embedded', category);
    const name = this.name('embedded', category);
    const wanted = new Set(documentIds);
    const points = chunks.map(({ chunk, vector }) => {
      if (chunk.category !== category) throw new Error(`chunk ${chunk.id} is ${chunk.category}, not ${category}`);
      if (!wanted.has(chunk.document_id))
        throw new Error(`chunk ${chunk.id} belongs to document ${chunk.document_id}, which is not being replaced`);
      if (vector.length !== this.embedding.dimension) {
        throw new VectorStoreMismatchError(
          name,
          `${this.embedding.dimension}-d vectors`,
          `a ${vector.length}-d vector for chunk ${chunk.id}`,
        );
      }
      const payload: ChunkPayload = {
        ...chunk,
        embedding_model: this.embedding.modelId,
        embedding_dim: this.embedding.dimension,
      };
      return { id: chunk.id, vector: Array.from(vector), payload };
    });
    for (let i = 0; i < points.length; i += this.upsertBatchSize) {
      await this.client.upsert(name, { wait: true, points: points.slice(i, i + this.upsertBatchSize) as never });
    }
    const stale = await this.staleChunkIds(name, documentIds, new Set(points.map((p) => p.id)));
    for (let i = 0; i < stale.length; i += this.scrollPageSize) {
      await this.client.delete(name, { wait: true, points: stale.slice(i, i + this.scrollPageSize) });
    }
    return { upserted: points.length, deleted: stale.length };
  }

  /**
   * Ids of the documents' points not in `keep`. (Found by scrolling and deleted by id, rather than one delete by
   * `must_not has_id` filter: the id list of a large batch would make that filter as large as the batch.)
   */
  private async staleChunkIds(name: string, documentIds: string[], keep: Set<string>): Promise<string[]> {
    const stale: string[] = [];
    for await (const point of this.scroll(
      name,
      { must: [{ key: 'document_id', match: { any: documentIds } }] },
      false,
    )) {
      if (!keep.has(point.id)) stale.push(point.id);
    }
    return stale;
  }

  /** Chunk ids stored per document (with the model that embedded each), for deciding what needs embedding. */
  async storedChunkIds(
    category: DocumentCategory,
    documentIds: string[],
  ): Promise<Map<string, { ids: Set<string>; models: Set<string> }>> {
    const out = new Map<string, { ids: Set<string>; models: Set<string> }>();
    if (documentIds.length === 0) return out;
    await this.ensureCollection('embedded', category);
    const name = this.name('embedded', category);
    const filter: Filter = { must: [{ key: 'document_id', match: { any: documentIds } }] };
    for await (const point of this.scroll(name, filter, ['document_id', 'embedding_model'])) {
      const documentId = String(point.payload?.document_id);
      const entry = out.get(documentId) ?? { ids: new Set<string>(), models: new Set<string>() };
      entry.ids.add(point.id);
      entry.models.add(String(point.payload?.embedding_model));
      out.set(documentId, entry);
    }
    return out;
  }

  /** Nearest chunks to a query vector, optionally only of some authors / documents. */
  async searchChunks(
    category: DocumentCategory,
    vector: Float32Array | number[],
    options: { limit?: number; authorIds?: string[]; documentIds?: string[]; scoreThreshold?: number } = {},
  ): Promise<ScoredChunk[]> {
    await this.ensureCollection('embedded', category);
    const must: Condition[] = [];
    if (options.authorIds) must.push({ key: 'author_id', match: { any: options.authorIds } });
    if (options.documentIds) must.push({ key: 'document_id', match: { any: options.documentIds } });
    const response = await this.client.query(this.name('embedded', category), {
      query: Array.from(vector),
      filter: must.length > 0 ? { must } : undefined,
      limit: options.limit ?? 10,
      with_payload: true,
      score_threshold: options.scoreThreshold,
    });
    return response.points.map((p) => ({
      id: String(p.id),
      score: p.score,
      payload: p.payload as unknown as ChunkPayload,
    }));
  }

  /**
   * Nearest chunks to each of several query vectors in one request (Qdrant's query batch), with the same
   * optional author / document filter for all; one result list per vector, in order.
   */
  async searchChunksBatch(
    category: DocumentCategory,
    vectors: (Float32Array | number[])[],
    options: { limit?: number; authorIds?: string[]; documentIds?: string[]; scoreThreshold?: number } = {},
  ): Promise<ScoredChunk[][]> {
    if (vectors.length === 0) return [];
    await this.ensureCollection('embedded', category);
    const must: Condition[] = [];
    if (options.authorIds) must.push({ key: 'author_id', match: { any: options.authorIds } });
    if (options.documentIds) must.push({ key: 'document_id', match: { any: options.documentIds } });
    const filter = must.length > 0 ? { must } : undefined;
    const responses = await this.client.queryBatch(this.name('embedded', category), {
      searches: vectors.map((vector) => ({
        query: Array.from(vector),
        filter,
        limit: options.limit ?? 10,
        with_payload: true,
        score_threshold: options.scoreThreshold,
      })),
    });
    return responses.map((response) =>
      response.points.map((p) => ({ id: String(p.id), score: p.score, payload: p.payload as unknown as ChunkPayload })),
    );
  }

  /** Points of a collection (no vectors), page by page with scroll; optionally filtered by author. */
  async *scrollPayloads<T = Record<string, unknown>>(
    kind: CollectionKind,
    category: DocumentCategory,
    options: { authorIds?: string[]; documentIds?: string[]; fields?: string[] } = {},
  ): AsyncGenerator<{ id: string; payload: T }> {
    await this.ensureCollection(kind, category);
    const must: Condition[] = [];
    if (options.authorIds) must.push({ key: 'author_id', match: { any: options.authorIds } });
    if (options.documentIds) must.push({ key: 'document_id', match: { any: options.documentIds } });
    for await (const point of this.scroll(
      this.name(kind, category),
      must.length > 0 ? { must } : undefined,
      options.fields ?? true,
    )) {
      yield { id: point.id, payload: (point.payload ?? {}) as T };
    }
  }

  async count(
    kind: CollectionKind,
    category: DocumentCategory,
    options: { authorIds?: string[] } = {},
  ): Promise<number> {
    await this.ensureCollection(kind, category);
    const filter: Filter | undefined = options.authorIds
      ? { must: [{ key: 'author_id', match: { any: options.authorIds } }] }
      : undefined;
    const { count } = await this.client.count(this.name(kind, category), { filter, exact: true });
    return count;
  }

  private async *scroll(
    name: string,
    filter: Filter | undefined,
    withPayload: boolean | string[],
  ): AsyncGenerator<{ id: string; payload?: Record<string, unknown> | null }> {
    let offset: string | number | undefined;
    for (;;) {
      const page = await this.client.scroll(name, {
        filter,
        limit: this.scrollPageSize,
        offset,
        with_payload: withPayload,
        with_vector: false,
      });
      for (const point of page.points) yield { id: String(point.id), payload: point.payload };
      const next = page.next_page_offset;
      if (next === null || next === undefined || (typeof next !== 'string' && typeof next !== 'number')) return;
      offset = next;
    }
  }
}
