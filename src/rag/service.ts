/**
 * The RAG service: retrieval (src/rag/retriever.ts) + the prompt (prompt.ts, context.ts) + a generation backend
 * (generator.ts), with every request traced (tracing.ts). The REST API, `twin ask` and evaluation call it through
 * the {@link RagEngine} contract of types.ts.
 *
 * Dependencies (MongoDB, Qdrant, the embedder, the cross-encoder, the LLMs) are opened lazily on first use and
 * closed by `close()`. A dependency that cannot be reached is a `RagError('dependency_unavailable', …, name)`
 * with name `qdrant`, `mongodb`, `llm`, `embedder` or `reranker`.
 */
import type { Db } from 'mongodb';
import type { Settings } from '../config';
import { createDependencies, type Dependencies } from '../infra/dependencies';
import { createLlmClient, LlmError, type LlmClient } from '../infra/llm';
import { logger } from '../infra/logger';
import { chatTemplateChecksum } from '../training/chat-template';
import { assembleContext } from './context';
import { createGenerator, GeneratorError, type Generation, type Generator } from './generator';
import { OpikTraceSink, opikConfigured } from './opik';
import { buildMessages, RAG_PROMPT_VERSION } from './prompt';
import { AuthorDirectory } from './query';
import { CrossEncoderReranker, rerankerInstalled, type Reranker } from './reranker';
import { mongoError, Retriever, type Retrieved } from './retriever';
import {
  EVAL_SAMPLES_COLLECTION,
  MongoTraceSink,
  RagTrace,
  sampledForEval,
  TraceRecorder,
  type EvalSample,
  type TraceRecord,
  type TraceSink,
} from './tracing';
import {
  RagError,
  type DependencyCheck,
  type RagAnswer,
  type RagEngine,
  type RagRequest,
  type RagSource,
  type RagStreamEvent,
} from './types';

export const MAX_QUERY_CHARS = 4_000;
export const MAX_K = 50;

export interface RagServiceOptions {
  /** Use these dependencies (shared with a worker, or a test's); default: opened by the service and closed by it. */
  dependencies?: Dependencies;
  /** LLM for self-query and expansion; default createLlmClient(settings.llm) with the RAG timeout. */
  llm?: LlmClient;
  generator?: Generator;
  /** A reranker, or null for none; default from RAG_RERANKER. */
  reranker?: Reranker | null;
  /** Where traces go; default MongoDB `traces` (when RAG_TRACES) plus Opik (when OPIK_* set). */
  traceSinks?: TraceSink[];
}

interface RequestOptions {
  signal?: AbortSignal;
  apiKeyId?: string;
}

function validate(request: RagRequest, settings: Settings): { query: string; k: number } {
  if (!request || typeof request.query !== 'string' || !request.query.trim())
    throw new RagError('bad_request', 'query must be a non-empty string');
  if (request.query.length > MAX_QUERY_CHARS)
    throw new RagError('bad_request', `query is longer than ${MAX_QUERY_CHARS} characters`);
  const k = request.k ?? settings.rag.topK;
  if (!Number.isInteger(k) || k < 1 || k > MAX_K)
    throw new RagError('bad_request', `k must be a whole number from 1 to ${MAX_K}`);
  if (request.author !== undefined && (typeof request.author !== 'string' || !request.author.trim()))
    throw new RagError('bad_request', 'author must be a non-empty string when given');
  if (request.maxTokens !== undefined && (!Number.isInteger(request.maxTokens) || request.maxTokens < 1))
    throw new RagError('bad_request', 'maxTokens must be a positive whole number');
  if (request.temperature !== undefined && !(request.temperature >= 0 && request.temperature <= 2))
    throw new RagError('bad_request', 'temperature must be between 0 and 2');
  return { query: request.query.trim(), k };
}

function generationError(error: unknown): RagError | Error {
  if (error instanceof RagError) return error;
  if (error instanceof GeneratorError)
    return error.unavailable
      ? new RagError('dependency_unavailable', error.message, 'llm', { cause: error })
      : new RagError('model_error', error.message, undefined, { cause: error });
  return error instanceof Error ? error : new Error(String(error));
}

function toRagError(error: unknown): RagError {
  if (error instanceof RagError) return error;
  if (error instanceof LlmError && error.kind === 'aborted') return new RagError('bad_request', 'request aborted');
  if (error instanceof Error && (error.name === 'AbortError' || error.name === 'APIUserAbortError'))
    return new RagError('bad_request', 'request aborted');
  const message = error instanceof Error ? error.message : String(error);
  return new RagError('internal', message, undefined, { cause: error });
}

export class RagService implements RagEngine {
  readonly settings: Settings;
  private readonly deps: Dependencies;
  private readonly ownsDeps: boolean;
  private llmClient?: LlmClient;
  private generatorInstance?: Generator;
  private rerankerLoad?: Promise<Reranker | null>;
  private readonly retriever: Retriever;
  readonly recorder: TraceRecorder;
  private closed = false;

  constructor(settings: Settings, options: RagServiceOptions = {}) {
    this.settings = settings;
    this.deps = options.dependencies ?? createDependencies(settings, logger());
    this.ownsDeps = !options.dependencies;
    this.llmClient = options.llm;
    this.generatorInstance = options.generator;
    if (options.reranker !== undefined) this.rerankerLoad = Promise.resolve(options.reranker);
    this.recorder = new TraceRecorder(options.traceSinks ?? this.defaultSinks());
    this.retriever = new Retriever({
      config: {
        expansions: settings.rag.expansions,
        searchLimit: settings.rag.searchLimit,
        selfQuery: settings.rag.selfQuery,
      },
      llm: () => this.llm(),
      authors: new AuthorDirectory(() => this.db()),
      embedder: () => this.deps.embedder(),
      vectorStore: () => this.deps.vectorStore(),
      reranker: () => this.reranker(),
    });
  }

  private defaultSinks(): TraceSink[] {
    const sinks: TraceSink[] = [];
    if (this.settings.rag.traces) sinks.push(new MongoTraceSink(() => this.db()));
    if (opikConfigured(this.settings)) sinks.push(new OpikTraceSink(this.settings));
    return sinks;
  }

  private async db(): Promise<Db> {
    try {
      return (await this.deps.warehouse()).db;
    } catch (error) {
      throw mongoError(error);
    }
  }

  private llm(): LlmClient {
    this.llmClient ??= createLlmClient(this.settings.llm, {
      timeoutMs: this.settings.rag.llmTimeoutMs,
      maxRetries: 1,
    });
    return this.llmClient;
  }

  /** The generation backend (RAG_GENERATOR). */
  generator(): Generator {
    if (!this.generatorInstance) {
      try {
        this.generatorInstance = createGenerator(this.settings, () => this.db());
      } catch (error) {
        throw generationError(error);
      }
    }
    return this.generatorInstance;
  }

  /** The cross-encoder (RAG_RERANKER): loaded once; null when not configured (or `auto` and not installed). */
  reranker(): Promise<Reranker | null> {
    const { reranker, rerankerModelDir } = this.settings.rag;
    this.rerankerLoad ??=
      reranker === 'none' || (reranker === 'auto' && !rerankerInstalled(rerankerModelDir))
        ? Promise.resolve(null)
        : CrossEncoderReranker.load(rerankerModelDir).catch((error: unknown) => {
            this.rerankerLoad = undefined;
            throw new RagError('dependency_unavailable', (error as Error).message, 'reranker', { cause: error });
          });
    return this.rerankerLoad;
  }

  // -------------------------------------------------------------------------------------------------------------

  async answer(request: RagRequest, options: RequestOptions = {}): Promise<RagAnswer> {
    let answer: RagAnswer | undefined;
    for await (const event of this.run(request, options, false)) {
      if (event.type === 'done') answer = event.answer;
    }
    if (!answer) throw new RagError('internal', 'no answer produced');
    return answer;
  }

  /**
   * Streams `sources`, then `token`s, then `done`. Errors before the first event (bad request, retrieval's
   * dependencies down) are thrown from the iterator's first `next()` as {@link RagError}, so a caller can still
   * answer with an HTTP status; errors after it arrive as one `error` event, which ends the stream.
   */
  stream(request: RagRequest, options: RequestOptions = {}): AsyncIterable<RagStreamEvent> {
    return this.run(request, options, true);
  }

  private async *run(request: RagRequest, options: RequestOptions, stream: boolean): AsyncGenerator<RagStreamEvent> {
    if (this.closed) throw new RagError('internal', 'the RAG service is closed');
    const { query, k } = validate(request, this.settings);
    const trace = new RagTrace();
    const history = request.history ?? [];
    const models: TraceRecord['models'] = { llm: this.settings.llm.model };
    let retrieved: Retrieved | undefined;
    let sources: RagSource[] = [];
    let generation: Generation | undefined;
    let started = false;
    let answered: RagAnswer | undefined;
    let recorded = false;
    try {
      retrieved = await this.retriever.retrieve({ query, author: request.author, k }, trace, options.signal);
      const context = assembleContext(retrieved.ranked, this.settings.rag.contextTokens);
      sources = context.sources;
      const messages = buildMessages(query, context.text, history);
      const generator = this.generator();
      const generationSpan = trace.begin('generation');
      const genOptions = {
        maxTokens: Math.min(request.maxTokens ?? this.settings.rag.maxTokens, this.settings.rag.maxTokens),
        temperature: request.temperature ?? this.settings.rag.temperature,
        signal: options.signal,
      };
      generationSpan.handle.set({
        backend: generator.kind,
        contextTokens: context.tokens,
        contextSources: context.sources.length,
        droppedForBudget: context.dropped,
        truncatedForBudget: context.truncated,
        historyTurns: history.length,
        maxTokens: genOptions.maxTokens,
        temperature: genOptions.temperature,
        stream,
      });
      try {
        const model = await generator.model();
        generationSpan.handle.model = model;
        models.generator = model;
        if (stream) {
          started = true;
          yield {
            type: 'sources',
            sources,
            traceId: trace.id,
            ...(retrieved.author ? { author: retrieved.author } : {}),
          };
          const tokens = generator.stream(messages, genOptions);
          let tokenEvents = 0;
          for (;;) {
            const next = await tokens.next();
            if (next.done) {
              generation = next.value;
              break;
            }
            tokenEvents++;
            yield { type: 'token', text: next.value };
          }
          generationSpan.handle.set({ tokenEvents });
        } else {
          generation = await generator.generate(messages, genOptions);
        }
        generationSpan.handle.model = generation.model;
        models.generator = generation.model;
        generationSpan.handle.usage(generation.usage.inputTokens, generation.usage.outputTokens);
        generationSpan.handle.set({
          tokensEstimated: generation.usage.estimated,
          finishReason: generation.finishReason ?? null,
          answerChars: generation.text.length,
        });
        generationSpan.end();
      } catch (error) {
        generationSpan.end(error);
        throw generationError(error);
      }
      answered = {
        answer: generation.text,
        sources,
        traceId: trace.id,
        model: generation.model,
        usage: { inputTokens: generation.usage.inputTokens, outputTokens: generation.usage.outputTokens },
        ...(retrieved.author ? { author: retrieved.author } : {}),
      };
      recorded = true;
      this.finish(trace, { request, query, k, stream, options, models, retrieved, sources, answer: answered });
      yield { type: 'done', answer: answered };
    } catch (error) {
      const ragError = toRagError(error);
      if (!recorded) {
        recorded = true;
        this.finish(trace, { request, query, k, stream, options, models, retrieved, sources, error: ragError });
      }
      if (started) {
        yield { type: 'error', error: ragError.toJSON() };
        return;
      }
      throw ragError;
    } finally {
      // The consumer stopped reading (client went away) before the end.
      if (!recorded) {
        const aborted = new RagError('bad_request', 'the client stopped reading the stream');
        this.finish(trace, { request, query, k, stream, options, models, retrieved, sources, error: aborted });
      }
    }
  }

  private finish(
    trace: RagTrace,
    outcome: {
      request: RagRequest;
      query: string;
      k: number;
      stream: boolean;
      options: RequestOptions;
      models: TraceRecord['models'];
      retrieved?: Retrieved;
      sources: RagSource[];
      answer?: RagAnswer;
      error?: RagError;
    },
  ): void {
    const { answer, error, retrieved } = outcome;
    const embedSpan = trace.spans.find((s) => s.name === 'embed');
    const rerankSpan = trace.spans.find((s) => s.name === 'rerank');
    const sampled = Boolean(answer) && sampledForEval(trace.id, this.settings.rag.evalSampleRate);
    const totals = trace.spans.reduce(
      (sum, span) => ({
        inputTokens: sum.inputTokens + (span.inputTokens ?? 0),
        outputTokens: sum.outputTokens + (span.outputTokens ?? 0),
      }),
      { inputTokens: 0, outputTokens: 0 },
    );
    const record: TraceRecord = {
      _id: trace.id,
      name: 'rag',
      createdAt: trace.startedAt,
      endedAt: new Date(),
      latencyMs: Math.round(trace.elapsedMs() * 1000) / 1000,
      status: error ? 'error' : 'ok',
      ...(error ? { error: error.toJSON() } : {}),
      stream: outcome.stream,
      ...(outcome.options.apiKeyId ? { apiKeyId: outcome.options.apiKeyId } : {}),
      request: {
        query: outcome.query,
        ...(outcome.request.author ? { author: outcome.request.author } : {}),
        k: outcome.k,
        historyTurns: outcome.request.history?.length ?? 0,
      },
      ...(retrieved?.author ? { author: retrieved.author } : {}),
      promptTemplateVersion: RAG_PROMPT_VERSION,
      ...(this.generatorInstance?.kind === 'sagemaker' || this.generatorInstance?.kind === 'endpoint'
        ? { chatTemplateChecksum: chatTemplateChecksum() }
        : {}),
      models: {
        ...outcome.models,
        ...(embedSpan?.model ? { embedder: embedSpan.model } : {}),
        ...(rerankSpan?.model ? { reranker: rerankSpan.model } : {}),
      },
      spans: trace.spans,
      sources: outcome.sources.map((s) => ({
        chunkId: s.chunkId,
        documentId: s.documentId,
        ...(s.title ? { title: s.title } : {}),
        score: s.score,
      })),
      ...(answer ? { answer: answer.answer } : {}),
      usage: totals,
      sampledForEval: sampled,
    };
    this.recorder.record(record);
    if (sampled && answer) {
      const sample: EvalSample = {
        _id: trace.id,
        question: outcome.query,
        answer: answer.answer,
        contexts: outcome.sources.map((s) => s.text),
        ...(answer.author ? { author: answer.author.name } : {}),
        traceId: trace.id,
        createdAt: record.createdAt,
        model: answer.model,
        promptTemplateVersion: RAG_PROMPT_VERSION,
      };
      this.recorder.background('eval-sample', async () => {
        await (await this.db()).collection<EvalSample>(EVAL_SAMPLES_COLLECTION).insertOne(sample);
      });
    }
  }

  /** Readiness of qdrant, mongodb and llm (the generation backend), each with its latency. */
  async ready(): Promise<Record<string, DependencyCheck>> {
    const check = async (work: () => Promise<unknown>): Promise<DependencyCheck> => {
      const t0 = performance.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          work(),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error('timed out after 5 s')), 5_000);
          }),
        ]);
        return { ok: true, latencyMs: Math.round(performance.now() - t0) };
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        return { ok: false, latencyMs: Math.round(performance.now() - t0), error: message.slice(0, 300) };
      } finally {
        clearTimeout(timer);
      }
    };
    const [qdrant, mongodb, llm] = await Promise.all([
      check(async () => {
        await this.deps.vectorStore().client.getCollections();
      }),
      check(async () => {
        await (await this.db()).command({ ping: 1 });
      }),
      check(async () => {
        await this.generator().check();
      }),
    ]);
    return { qdrant, mongodb, llm };
  }

  /** Waits for traces and samples still being written (tests, shutdown). */
  flushTraces(): Promise<void> {
    return this.recorder.flush();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.recorder.close();
    await this.generatorInstance?.close?.().catch(() => undefined);
    const reranker = await this.rerankerLoad?.catch(() => null);
    await reranker?.close().catch(() => undefined);
    if (this.ownsDeps) await this.deps.close();
  }
}

/** A RAG service over the platform settings; dependencies open on first use. */
export function createRagService(settings: Settings, options: RagServiceOptions = {}): RagService {
  return new RagService(settings, options);
}
