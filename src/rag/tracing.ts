/**
 * Prompt monitoring: every RAG request is one trace with one span per step (self_query, expansion, embed, search,
 * rerank, generation), each with its latency, token counts, model id and what went in / came out (sizes and ids, not
 * bodies of documents). Traces are stored in the MongoDB `traces` collection and, when OPIK_* settings are present,
 * exported to Opik. A sample of answered requests is copied into `rag_eval_samples` for the evaluation pipeline.
 *
 * Never stored: API keys (the caller passes a key *id*), model/server secrets. Export and storage failures are
 * logged and never fail the request.
 */
import { randomUUID } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import { logger } from '../infra/logger';

export const TRACES_COLLECTION = 'traces';
export const EVAL_SAMPLES_COLLECTION = 'rag_eval_samples';

export const SPAN_NAMES = ['self_query', 'expansion', 'embed', 'search', 'rerank', 'generation'] as const;
export type SpanName = (typeof SPAN_NAMES)[number];

export interface TraceSpan {
  name: SpanName;
  startedAt: Date;
  latencyMs: number;
  status: 'ok' | 'error' | 'skipped';
  /** Model that did the work (LLM, embedder, cross-encoder). */
  model?: string;
  inputTokens?: number;
  outputTokens?: number;
  /** Small, JSON-safe facts about the step (counts, choices, fallbacks). */
  attributes: Record<string, unknown>;
  error?: string;
}

export interface TraceSource {
  chunkId: string;
  documentId: string;
  title?: string;
  score: number;
}

export interface TraceRecord {
  _id: string;
  name: 'rag';
  createdAt: Date;
  endedAt: Date;
  latencyMs: number;
  status: 'ok' | 'error';
  error?: { code: string; message: string; dependency?: string };
  stream: boolean;
  /** The id of the API key the request came with (never the key). */
  apiKeyId?: string;
  request: { query: string; author?: string; k: number; historyTurns: number };
  author?: { id: string; name: string };
  /** Version of the RAG prompt (system prompt + context layout), see prompt.ts. */
  promptTemplateVersion: string;
  /** Checksum of the chat template the messages are rendered with for raw-prompt backends. */
  chatTemplateChecksum?: string;
  models: { generator?: string; embedder?: string; reranker?: string; llm?: string };
  spans: TraceSpan[];
  sources: TraceSource[];
  answer?: string;
  usage: { inputTokens: number; outputTokens: number };
  sampledForEval: boolean;
}

export interface EvalSample {
  _id: string;
  question: string;
  answer: string;
  contexts: string[];
  author?: string;
  traceId: string;
  createdAt: Date;
  model: string;
  promptTemplateVersion: string;
}

/** Where finished traces go (MongoDB, Opik, tests). */
export interface TraceSink {
  readonly name: string;
  write(trace: TraceRecord): Promise<void>;
  close?(): Promise<void>;
}

function errorMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.length > 500 ? `${message.slice(0, 500)}…` : message;
}

/** A running span: set attributes, tokens and the model while the step runs. */
export class SpanHandle {
  readonly attributes: Record<string, unknown> = {};
  model?: string;
  inputTokens?: number;
  outputTokens?: number;
  status: TraceSpan['status'] = 'ok';
  set(values: Record<string, unknown>): this {
    Object.assign(this.attributes, values);
    return this;
  }
  usage(inputTokens: number, outputTokens: number): this {
    this.inputTokens = (this.inputTokens ?? 0) + inputTokens;
    this.outputTokens = (this.outputTokens ?? 0) + outputTokens;
    return this;
  }
}

/** One request's trace while it runs. */
export class RagTrace {
  readonly id: string;
  readonly startedAt = new Date();
  private readonly t0 = performance.now();
  readonly spans: TraceSpan[] = [];

  constructor(id: string = randomUUID()) {
    this.id = id;
  }

  /** Runs `work` as span `name`: its latency, outcome and what the handle was given are recorded. */
  async span<T>(name: SpanName, work: (span: SpanHandle) => Promise<T>): Promise<T> {
    const handle = new SpanHandle();
    const startedAt = new Date();
    const t0 = performance.now();
    try {
      const result = await work(handle);
      this.push(name, startedAt, t0, handle);
      return result;
    } catch (error) {
      handle.status = 'error';
      this.push(name, startedAt, t0, handle, errorMessage(error));
      throw error;
    }
  }

  /** Records a step that did not run (e.g. rerank not configured), so every trace has every span. */
  skipped(name: SpanName, attributes: Record<string, unknown> = {}): void {
    this.spans.push({ name, startedAt: new Date(), latencyMs: 0, status: 'skipped', attributes });
  }

  /** Starts a span that ends later (generation while streaming). */
  begin(name: SpanName): { handle: SpanHandle; end(error?: unknown): void } {
    const handle = new SpanHandle();
    const startedAt = new Date();
    const t0 = performance.now();
    let ended = false;
    return {
      handle,
      end: (error?: unknown) => {
        if (ended) return;
        ended = true;
        if (error !== undefined) handle.status = 'error';
        this.push(name, startedAt, t0, handle, error === undefined ? undefined : errorMessage(error));
      },
    };
  }

  elapsedMs(): number {
    return performance.now() - this.t0;
  }

  private push(name: SpanName, startedAt: Date, t0: number, handle: SpanHandle, error?: string): void {
    this.spans.push({
      name,
      startedAt,
      latencyMs: Math.round((performance.now() - t0) * 1000) / 1000,
      status: handle.status,
      ...(handle.model ? { model: handle.model } : {}),
      ...(handle.inputTokens !== undefined ? { inputTokens: handle.inputTokens } : {}),
      ...(handle.outputTokens !== undefined ? { outputTokens: handle.outputTokens } : {}),
      attributes: handle.attributes,
      ...(error ? { error } : {}),
    });
  }
}

/** The MongoDB `traces` collection (indexed on createdAt; see src/infra/mongo.ts). */
export class MongoTraceSink implements TraceSink {
  readonly name = 'mongodb';
  constructor(private readonly db: () => Promise<Db>) {}
  async write(trace: TraceRecord): Promise<void> {
    await (await this.db()).collection<TraceRecord>(TRACES_COLLECTION).insertOne(trace);
  }
}

/** Reads stored traces (`twin traces`, tests). */
export class TraceStore {
  constructor(private readonly db: Db) {}
  collection(): Collection<TraceRecord> {
    return this.db.collection<TraceRecord>(TRACES_COLLECTION);
  }
  async list(options: { limit?: number; status?: 'ok' | 'error' } = {}): Promise<TraceRecord[]> {
    return this.collection()
      .find(options.status ? { status: options.status } : {})
      .sort({ createdAt: -1 })
      .limit(options.limit ?? 20)
      .toArray();
  }
  async get(id: string): Promise<TraceRecord | null> {
    return this.collection().findOne({ _id: id });
  }
  async evalSamples(limit = 100): Promise<EvalSample[]> {
    return this.db
      .collection<EvalSample>(EVAL_SAMPLES_COLLECTION)
      .find({})
      .sort({ createdAt: -1 })
      .limit(limit)
      .toArray();
  }
}

/**
 * Sends finished traces to every sink, in the background: a request never waits for (or fails because of) its
 * trace. `flush()` waits for what is in flight (tests, shutdown).
 */
export class TraceRecorder {
  private readonly pending = new Set<Promise<void>>();
  constructor(readonly sinks: TraceSink[]) {}

  record(trace: TraceRecord): void {
    for (const sink of this.sinks) {
      const write = sink
        .write(trace)
        .catch((error: unknown) =>
          logger().warn({ sink: sink.name, traceId: trace._id, err: errorMessage(error) }, 'trace export failed'),
        )
        .finally(() => this.pending.delete(write));
      this.pending.add(write);
    }
  }

  /** Runs a write in the background under the same rules (logged on failure, awaited by flush). */
  background(label: string, work: () => Promise<void>): void {
    const task = work()
      .catch((error: unknown) => logger().warn({ task: label, err: errorMessage(error) }, 'background write failed'))
      .finally(() => this.pending.delete(task));
    this.pending.add(task);
  }

  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  async close(): Promise<void> {
    await this.flush();
    for (const sink of this.sinks) await sink.close?.().catch(() => undefined);
  }
}

/** Deterministic sampling by trace id (so a rerun of a test samples the same requests), rate in [0, 1]. */
export function sampledForEval(traceId: string, rate: number): boolean {
  if (rate <= 0) return false;
  if (rate >= 1) return true;
  const bucket = Number.parseInt(traceId.replace(/-/g, '').slice(0, 8), 16) / 0xffffffff;
  return bucket < rate;
}
