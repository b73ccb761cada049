/**
 * The embedder interface shared by every backend, the helpers they share, and the factory that picks a backend
 * from configuration. Backends:
 *
 * - `local`: all-MiniLM-L6-v2 through ONNX Runtime in this process ({@link OnnxEmbedder}), optionally in a pool
 *   of worker threads ({@link WorkerPoolEmbedder}) so the event loop (activity heartbeats) stays free;
 * - `openai`: any OpenAI-compatible `/v1/embeddings` API ({@link OpenAIEmbedder}).
 */
import { availableParallelism } from 'node:os';
import type { OnnxEmbedderOptions } from './embedder-onnx';
import type { OpenAIEmbedderOptions } from './embedder-openai';
import type { WorkerPoolOptions } from './embedder-pool';

export interface Embedder {
  /** Model id recorded with every vector, e.g. `sentence-transformers/all-MiniLM-L6-v2`. */
  readonly modelId: string;
  /** Vector length (384 for all-MiniLM-L6-v2). */
  readonly dimension: number;
  /** One L2-normalised vector per text, in input order. */
  embed(texts: string[]): Promise<Float32Array[]>;
  /** Releases sessions / threads. Idempotent. */
  close(): Promise<void>;
}

export type EmbedderConfig =
  | ({ backend: 'local'; workers?: number } & OnnxEmbedderOptions & Omit<WorkerPoolOptions, 'workers'>)
  | ({ backend: 'openai' } & OpenAIEmbedderOptions);

/**
 * Creates an embedder from configuration. `local` runs the model in `workers` worker threads (default: one per
 * core, each with `floor(cores / workers)` ONNX threads unless `intraOpThreads` is given) — the fastest setting
 * measured on 2 cores, and the calling thread's event loop stays free; `workers: 0` runs it on the calling
 * thread (one session with `intraOpThreads`, default all cores: lowest latency for a single query).
 */
export async function createEmbedder(config: EmbedderConfig): Promise<Embedder> {
  if (config.backend === 'openai') {
    const { OpenAIEmbedder } = await import('./embedder-openai');
    return new OpenAIEmbedder(config);
  }
  const { backend: _backend, workers = availableParallelism(), ...options } = config;
  if (workers > 0) {
    const { WorkerPoolEmbedder } = await import('./embedder-pool');
    return WorkerPoolEmbedder.create({ ...options, workers });
  }
  const { OnnxEmbedder } = await import('./embedder-onnx');
  return OnnxEmbedder.create(options);
}

/** Scales a vector to unit L2 norm in place (a zero vector stays zero). */
export function l2NormalizeInPlace(v: Float32Array): Float32Array {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i]! * v[i]!;
  const norm = Math.sqrt(sum);
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i] = v[i]! / norm;
  return v;
}

/**
 * sentence-transformers' mean pooling: average of the token vectors where the attention mask is 1, then L2
 * normalisation. `hidden` is [batch, seq, dim] row-major; `mask` is [batch, seq].
 */
export function meanPoolAndNormalize(
  hidden: Float32Array,
  mask: ArrayLike<number | bigint>,
  batch: number,
  seq: number,
  dim: number,
): Float32Array[] {
  const out: Float32Array[] = [];
  for (let b = 0; b < batch; b++) {
    const v = new Float32Array(dim);
    let count = 0;
    for (let t = 0; t < seq; t++) {
      if (Number(mask[b * seq + t]) === 0) continue;
      count++;
      const base = (b * seq + t) * dim;
      for (let d = 0; d < dim; d++) v[d] = v[d]! + hidden[base + d]!;
    }
    const denom = Math.max(count, 1e-9);
    for (let d = 0; d < dim; d++) v[d] = v[d]! / denom;
    out.push(l2NormalizeInPlace(v));
  }
  return out;
}

/** Cosine similarity of two vectors (dot product when both are unit length). */
export function cosineSimilarity(a: Float32Array | number[], b: Float32Array | number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb || 1);
}
