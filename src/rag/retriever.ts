/**
 * Retrieval: self-query → query expansion → one batched embedding of all queries → filtered vector search of the
 * `embedded_*` collections (one batch query per collection, all in parallel) → merge and de-duplicate by point id
 * → rerank (cross-encoder) or keep search order → top k. Every step is a span of the request's trace.
 */
import { DOCUMENT_CATEGORIES, type DocumentCategory } from '../domain/documents';
import type { Embedder } from '../features/embedder';
import { LlmError, type LlmClient } from '../infra/llm';
import type { ScoredChunk, VectorStore } from '../infra/qdrant';
import { expandQuery, extractAuthorName, type AuthorDirectory, type KnownAuthor } from './query';
import type { Reranker } from './reranker';
import type { RagTrace } from './tracing';
import { RagError, type RagSource } from './types';

/** How long a collection's point count is trusted for skipping empty collections. */
export const EMPTY_CHECK_MS = 30_000;

export interface RetrievalConfig {
  expansions: number;
  searchLimit: number;
  selfQuery: boolean;
  categories?: readonly DocumentCategory[];
}

export interface RetrievalParts {
  config: RetrievalConfig;
  /** LLM for self-query and expansion (the platform's LLM_MODEL). */
  llm: () => LlmClient;
  authors: AuthorDirectory;
  embedder: () => Promise<Embedder>;
  vectorStore: () => VectorStore;
  /** null = keep search order. */
  reranker: () => Promise<Reranker | null>;
}

export interface Retrieved {
  author?: KnownAuthor;
  queries: string[];
  /** Ranked (reranked when a reranker is configured), top k, full chunk text. */
  ranked: RagSource[];
  candidates: number;
}

/** LLM errors that mean "the server is not there" (vs. a refusal of this request). */
export function llmUnavailable(error: unknown): boolean {
  return error instanceof LlmError && ['timeout', 'connection', 'rate-limited', 'server'].includes(error.kind);
}

function asDependencyError(dependency: string, error: unknown): RagError {
  if (error instanceof RagError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new RagError('dependency_unavailable', `${dependency}: ${message}`, dependency, { cause: error });
}

/** Errors of the warehouse read (driver errors, ServiceUnavailableError of openWarehouse) → mongodb. */
export function mongoError(error: unknown): RagError {
  return asDependencyError('mongodb', error);
}

function qdrantError(error: unknown): RagError {
  if (error instanceof Error && error.name === 'VectorStoreMismatchError')
    return new RagError('internal', error.message, undefined, { cause: error });
  return asDependencyError('qdrant', error);
}

function sourceOf(point: ScoredChunk, titles: Map<string, string | undefined>): RagSource {
  const p = point.payload;
  const link = 'link' in p && typeof p.link === 'string' ? p.link : undefined;
  const title = titles.get(p.document_id) ?? ('name' in p && typeof p.name === 'string' ? p.name : undefined);
  return {
    chunkId: point.id,
    documentId: p.document_id,
    authorId: p.author_id,
    authorName: p.author_full_name,
    category: p.category,
    platform: p.platform,
    ...(title ? { title } : {}),
    ...(link ? { link } : {}),
    score: point.score,
    text: p.content,
  };
}

/** Merges result lists by point id, keeping each point's best score, best first (ties: first seen). */
export function mergeResults(lists: ScoredChunk[][]): ScoredChunk[] {
  const best = new Map<string, ScoredChunk>();
  for (const list of lists) {
    for (const point of list) {
      const seen = best.get(point.id);
      if (!seen || point.score > seen.score) best.set(point.id, point);
    }
  }
  return [...best.values()].sort((a, b) => b.score - a.score);
}

export class Retriever {
  /** document id → title (cleaned documents' titles, read once per process). */
  private readonly titles = new Map<string, string | undefined>();
  /** embedded_* collection → point count, when it was read */
  private readonly sizes = new Map<string, { at: number; count: number }>();

  constructor(private readonly parts: RetrievalParts) {}

  async retrieve(
    input: { query: string; author?: string; k: number },
    trace: RagTrace,
    signal?: AbortSignal,
  ): Promise<Retrieved> {
    const { config } = this.parts;
    const [author, queries] = await Promise.all([
      this.resolveAuthor(input, trace, signal),
      this.expand(input.query, trace, signal),
    ]);
    signal?.throwIfAborted();

    const vectors = await trace.span('embed', async (span) => {
      const embedder = await this.parts.embedder().catch((error: unknown) => {
        throw asDependencyError('embedder', error);
      });
      span.model = embedder.modelId;
      span.set({ texts: queries.length, batches: 1 });
      try {
        return await embedder.embed(queries);
      } catch (error) {
        throw asDependencyError('embedder', error);
      }
    });
    signal?.throwIfAborted();

    const categories = config.categories ?? DOCUMENT_CATEGORIES;
    const merged = await trace.span('search', async (span) => {
      let store: VectorStore;
      try {
        store = this.parts.vectorStore();
      } catch (error) {
        throw qdrantError(error);
      }
      const filter = author ? { authorIds: [author.id] } : {};
      span.set({
        collections: categories.map((c) => store.name('embedded', c)),
        queries: queries.length,
        limit: config.searchLimit,
        authorFilter: author?.id ?? null,
      });
      let perCategory: ScoredChunk[][][];
      try {
        const searched = await this.nonEmpty(store, categories);
        span.set({ skippedEmpty: categories.filter((c) => !searched.includes(c)) });
        perCategory = await Promise.all(
          searched.map((category) =>
            store.searchChunksBatch(category, vectors, { limit: config.searchLimit, ...filter }),
          ),
        );
      } catch (error) {
        throw qdrantError(error);
      }
      const lists = perCategory.flat();
      const hits = lists.reduce((n, l) => n + l.length, 0);
      const result = mergeResults(lists);
      span.set({ hits, unique: result.length, duplicates: hits - result.length });
      await this.loadTitles(store, result).catch(() => undefined);
      return result;
    });

    let ranked: RagSource[] = merged.map((point) => sourceOf(point, this.titles));
    const reranker = await this.parts.reranker();
    if (reranker && ranked.length > 0) {
      ranked = await trace.span('rerank', async (span) => {
        span.model = reranker.modelId;
        span.set({ candidates: ranked.length, k: input.k });
        let scores: number[];
        try {
          scores = await reranker.score(
            input.query,
            ranked.map((s) => s.text),
          );
        } catch (error) {
          throw asDependencyError('reranker', error);
        }
        const order = ranked
          .map((source, i) => ({ source: { ...source, score: scores[i]! }, before: i }))
          .sort((a, b) => b.source.score - a.source.score);
        span.set({ moved: order.filter((o, i) => o.before !== i).length });
        return order.map((o) => o.source);
      });
    } else {
      trace.skipped('rerank', { reason: reranker ? 'no candidates' : 'no reranker configured' });
    }
    return {
      ...(author ? { author } : {}),
      queries,
      ranked: ranked.slice(0, input.k),
      candidates: merged.length,
    };
  }

  private async resolveAuthor(
    input: { query: string; author?: string },
    trace: RagTrace,
    signal?: AbortSignal,
  ): Promise<KnownAuthor | undefined> {
    if (input.author !== undefined) {
      return trace.span('self_query', async (span) => {
        span.set({ source: 'request', name: input.author });
        const found = await this.parts.authors.find(input.author!).catch((error: unknown) => {
          throw mongoError(error);
        });
        span.set({ found: Boolean(found), authorId: found?.id ?? null });
        if (!found)
          throw new RagError('bad_request', `unknown author "${input.author}": no such user in the warehouse`);
        return found;
      });
    }
    if (!this.parts.config.selfQuery) {
      trace.skipped('self_query', { reason: 'RAG_SELF_QUERY=false' });
      return undefined;
    }
    return trace.span('self_query', async (span) => {
      span.set({ source: 'llm' });
      const llm = this.parts.llm();
      span.model = llm.model;
      let name: string | null;
      try {
        const extracted = await extractAuthorName(llm, input.query, { signal });
        span.model = extracted.model;
        span.usage(extracted.inputTokens, extracted.outputTokens);
        if (extracted.invalid) span.set({ invalidOutput: extracted.invalid });
        name = extracted.name;
      } catch (error) {
        if (llmUnavailable(error)) throw asDependencyError('llm', error);
        if (error instanceof LlmError && error.kind === 'aborted') throw error;
        // A refusal of this request (400, auth): answer without the author filter, and say so in the trace.
        span.set({ llmError: (error as Error).message });
        return undefined;
      }
      span.set({ extracted: name });
      if (!name) return undefined;
      const found = await this.parts.authors.find(name).catch((error: unknown) => {
        throw mongoError(error);
      });
      span.set({ found: Boolean(found), authorId: found?.id ?? null });
      return found ?? undefined;
    });
  }

  private async expand(query: string, trace: RagTrace, signal?: AbortSignal): Promise<string[]> {
    const n = this.parts.config.expansions;
    if (n <= 1) {
      trace.skipped('expansion', { reason: 'RAG_EXPANSIONS=1', queries: [query] });
      return [query];
    }
    return trace.span('expansion', async (span) => {
      const llm = this.parts.llm();
      span.model = llm.model;
      span.set({ n });
      try {
        const result = await expandQuery(llm, query, n, { signal });
        span.model = result.model;
        span.usage(result.inputTokens, result.outputTokens);
        span.set({ queries: result.queries, ...(result.fallback ? { fallback: result.fallback } : {}) });
        return result.queries;
      } catch (error) {
        if (llmUnavailable(error)) throw asDependencyError('llm', error);
        if (error instanceof LlmError && error.kind === 'aborted') throw error;
        span.set({ queries: [query], fallback: `LLM error: ${(error as Error).message}` });
        return [query];
      }
    });
  }

  /**
   * The categories whose embedded_* collection has points (counts cached for {@link EMPTY_CHECK_MS}): an empty
   * collection (e.g. no repositories crawled) costs a request per query for nothing. A failed count keeps the
   * category, so the search itself reports the failure.
   */
  private async nonEmpty(store: VectorStore, categories: readonly DocumentCategory[]): Promise<DocumentCategory[]> {
    const now = Date.now();
    const counts = await Promise.all(
      categories.map(async (category) => {
        const key = store.name('embedded', category);
        const cached = this.sizes.get(key);
        if (cached && now - cached.at < EMPTY_CHECK_MS) return cached.count;
        const count = await store.count('embedded', category).catch(() => Number.NaN);
        if (!Number.isNaN(count)) this.sizes.set(key, { at: now, count });
        return count;
      }),
    );
    return categories.filter((_, i) => !(counts[i] === 0));
  }

  /** Titles of the documents of `points` from the cleaned_* collections (cached per document). */
  private async loadTitles(store: VectorStore, points: ScoredChunk[]): Promise<void> {
    const missing = new Map<DocumentCategory, Set<string>>();
    for (const point of points) {
      const id = point.payload.document_id;
      if (this.titles.has(id)) continue;
      const set = missing.get(point.payload.category) ?? new Set<string>();
      set.add(id);
      missing.set(point.payload.category, set);
    }
    await Promise.all(
      [...missing].map(async ([category, ids]) => {
        const found = await store.client.retrieve(store.name('cleaned', category), {
          ids: [...ids],
          with_payload: ['title', 'name'],
          with_vector: false,
        });
        for (const point of found) {
          const payload = point.payload ?? {};
          const title =
            typeof payload.title === 'string'
              ? payload.title
              : typeof payload.name === 'string'
                ? payload.name
                : undefined;
          this.titles.set(String(point.id), title);
        }
        for (const id of ids) if (!this.titles.has(id)) this.titles.set(id, undefined);
        if (this.titles.size > 50_000) this.titles.clear();
      }),
    );
  }
}
