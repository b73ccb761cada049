/**
 * Embeddings from an OpenAI-compatible `/v1/embeddings` API (OpenAI, or a local server such as text-embeddings-
 * inference, vLLM, llama.cpp or Ollama serving all-MiniLM-L6-v2) behind the same {@link Embedder} interface.
 * The base URL comes from options, so the same code talks to OpenAI or a local server.
 */
import OpenAI from 'openai';
import { type Embedder, l2NormalizeInPlace } from './embedder';

export interface OpenAIEmbedderOptions {
  /** Model name sent to the API and recorded with every vector. */
  model: string;
  /** Expected vector length; every response is checked against it. */
  dimension: number;
  /** API base URL, e.g. `http://127.0.0.1:8080/v1` (default: the OpenAI API). */
  baseURL?: string;
  /** API key; local servers usually accept any value (default `OPENAI_API_KEY`, else "unused"). */
  apiKey?: string;
  /** Inputs per request (default 128). */
  batchSize?: number;
  /** Send `dimensions` (only for models that support shortening, e.g. text-embedding-3-*). Default false. */
  requestDimensions?: boolean;
  /** L2-normalise the returned vectors (default true; a no-op for APIs that already do). */
  normalize?: boolean;
  /** Request timeout in ms (default 60 000) and retries of transient errors (default 2), as in the openai client. */
  timeoutMs?: number;
  maxRetries?: number;
}

export class EmbeddingDimensionError extends Error {
  constructor(model: string, expected: number, got: number) {
    super(`embedding model ${model} returned ${got}-d vectors, expected ${expected}`);
    this.name = 'EmbeddingDimensionError';
  }
}

export class OpenAIEmbedder implements Embedder {
  readonly modelId: string;
  readonly dimension: number;
  private readonly client: OpenAI;
  private readonly batchSize: number;

  constructor(private readonly options: OpenAIEmbedderOptions) {
    if (!options.model) throw new Error('OpenAIEmbedder needs a model name');
    if (!Number.isInteger(options.dimension) || options.dimension <= 0) {
      throw new RangeError(`OpenAIEmbedder needs a positive dimension, got ${options.dimension}`);
    }
    this.modelId = options.model;
    this.dimension = options.dimension;
    this.batchSize = options.batchSize ?? 128;
    this.client = new OpenAI({
      apiKey: options.apiKey ?? process.env.OPENAI_API_KEY ?? 'unused',
      baseURL: options.baseURL,
      timeout: options.timeoutMs ?? 60_000,
      maxRetries: options.maxRetries ?? 2,
    });
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let s = 0; s < texts.length; s += this.batchSize) {
      const input = texts.slice(s, s + this.batchSize);
      const response = await this.client.embeddings.create({
        model: this.options.model,
        input,
        encoding_format: 'float',
        ...(this.options.requestDimensions ? { dimensions: this.dimension } : {}),
      });
      if (response.data.length !== input.length) {
        throw new Error(`embeddings API returned ${response.data.length} vectors for ${input.length} inputs`);
      }
      const byIndex = [...response.data].sort((a, b) => a.index - b.index);
      for (const item of byIndex) {
        if (item.embedding.length !== this.dimension) {
          throw new EmbeddingDimensionError(this.modelId, this.dimension, item.embedding.length);
        }
        const v = Float32Array.from(item.embedding);
        out.push(this.options.normalize === false ? v : l2NormalizeInPlace(v));
      }
    }
    return out;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
