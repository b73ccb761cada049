import type { DocumentCategory } from '../etl/types';

/**
 * The contract between the RAG library (`src/rag/`) and its callers (the REST API in `src/api/`, `twin ask`,
 * evaluation). The library may add optional fields; it must not remove or rename these.
 */

export interface RagRequest {
  query: string;
  /** An author's name as the user wrote it; when absent, self-query may extract one from the query. */
  author?: string;
  /** Chunks kept after rerank (default from config). */
  k?: number;
  /** Earlier turns of a conversation (the OpenAI facade passes them); the last user turn is `query`. */
  history?: { role: 'user' | 'assistant'; content: string }[];
  /** Generation options passed through to the model backend. */
  maxTokens?: number;
  temperature?: number;
}

export interface RagSource {
  chunkId: string;
  documentId: string;
  authorId: string;
  authorName: string;
  category: DocumentCategory;
  platform: string;
  title?: string;
  link?: string;
  /** Rerank score when reranked, else the vector similarity. */
  score: number;
  text: string;
}

export interface RagUsage {
  inputTokens: number;
  outputTokens: number;
}

export interface RagAnswer {
  answer: string;
  sources: RagSource[];
  traceId: string;
  /** Model id of the generation backend that answered. */
  model: string;
  usage: RagUsage;
  /** The author the retrieval was filtered by (looked up, never created), when one was known. */
  author?: { id: string; name: string };
}

/** Events of a streamed answer, in this order: one `sources`, any number of `token`, one `done` (or `error`). */
export type RagStreamEvent =
  | { type: 'sources'; sources: RagSource[]; traceId: string; author?: { id: string; name: string } }
  | { type: 'token'; text: string }
  | { type: 'done'; answer: RagAnswer }
  | { type: 'error'; error: RagErrorShape };

export type RagErrorCode = 'bad_request' | 'dependency_unavailable' | 'model_error' | 'internal';

export interface RagErrorShape {
  code: RagErrorCode;
  message: string;
  /** Which dependency failed, for `dependency_unavailable`: 'qdrant' | 'mongodb' | 'llm' | 'embedder' | 'reranker'. */
  dependency?: string;
}

/** Thrown by the RAG service; the API maps `dependency_unavailable` to 503, `bad_request` to 400, others to 500/502. */
export class RagError extends Error {
  constructor(
    readonly code: RagErrorCode,
    message: string,
    readonly dependency?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RagError';
  }
  toJSON(): RagErrorShape {
    return { code: this.code, message: this.message, ...(this.dependency ? { dependency: this.dependency } : {}) };
  }
}

export interface DependencyCheck {
  ok: boolean;
  latencyMs?: number;
  error?: string;
}

export interface RagEngine {
  answer(request: RagRequest, options?: { signal?: AbortSignal; apiKeyId?: string }): Promise<RagAnswer>;
  stream(request: RagRequest, options?: { signal?: AbortSignal; apiKeyId?: string }): AsyncIterable<RagStreamEvent>;
  /** Readiness of each dependency: qdrant, mongodb, llm (the generation backend). */
  ready(): Promise<Record<string, DependencyCheck>>;
  close(): Promise<void>;
}
