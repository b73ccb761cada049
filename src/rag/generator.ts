/**
 * Generation backends behind one interface:
 *
 * - `openai`: any OpenAI-compatible chat-completions server (OpenAI, vLLM, TGI's Messages API, Ollama, llama.cpp,
 *   the local node-llama-cpp server), streaming with Server-Sent Events; a server that ignores `stream` and answers
 *   with one JSON completion is handled too (the whole answer is one token event);
 * - `sagemaker`: a SageMaker real-time endpoint (Hugging Face TGI or LMI/DJL container): `InvokeEndpoint`, and
 *   `InvokeEndpointWithResponseStream` for streaming; the messages are rendered with the twin's chat template;
 * - `endpoint`: whatever the deployment workflow recorded in the MongoDB `endpoints` collection (a local
 *   OpenAI-compatible URL or a SageMaker endpoint name), re-read every few seconds.
 */
import { DescribeEndpointCommand } from '@aws-sdk/client-sagemaker';
import {
  InvokeEndpointCommand,
  InvokeEndpointWithResponseStreamCommand,
  SageMakerRuntimeClient,
} from '@aws-sdk/client-sagemaker-runtime';
import type { Db } from 'mongodb';
import OpenAI, { APIConnectionError, APIError, APIUserAbortError } from 'openai';
import type { Settings } from '../config';
import { defaultTokenizer } from '../infra/tokenizer';
import type { ChatMessage } from '../training/chat-template';
import { createSageMakerClient } from '../training/sagemaker';
import { renderRagPrompt } from './prompt';

export interface GenerateOptions {
  maxTokens: number;
  temperature: number;
  signal?: AbortSignal;
}

export interface Generation {
  text: string;
  /** Model id that answered (server-reported when it says). */
  model: string;
  usage: { inputTokens: number; outputTokens: number; estimated: boolean };
  finishReason?: string;
}

export interface Generator {
  /** `openai`, `sagemaker` or `endpoint` */
  readonly kind: string;
  /** Model id answers are attributed to. */
  model(): Promise<string>;
  generate(messages: ChatMessage[], options: GenerateOptions): Promise<Generation>;
  /** Yields text deltas; returns the whole generation. */
  stream(messages: ChatMessage[], options: GenerateOptions): AsyncGenerator<string, Generation>;
  /** Throws a {@link GeneratorError} when the backend cannot be reached. */
  check(): Promise<void>;
  close?(): Promise<void>;
}

/** A failed generation: `unavailable` when the backend cannot be reached (503 for the API), else a model error. */
export class GeneratorError extends Error {
  constructor(
    message: string,
    readonly unavailable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'GeneratorError';
  }
}

function estimate(text: string): number {
  return defaultTokenizer().count(text);
}

function inputEstimate(messages: ChatMessage[]): number {
  return messages.reduce((sum, m) => sum + estimate(m.content) + 4, 2);
}

/** Parses SSE / JSON-lines text into JSON objects, keeping the incomplete tail for the next chunk. */
export class EventLineParser {
  private buffer = '';
  push(text: string): unknown[] {
    this.buffer += text;
    const lines = this.buffer.split(/\r?\n/);
    this.buffer = lines.pop() ?? '';
    return lines.flatMap((line) => parseEventLine(line));
  }
  end(): unknown[] {
    const rest = this.buffer;
    this.buffer = '';
    return parseEventLine(rest);
  }
}

function parseEventLine(line: string): unknown[] {
  let data = line.trim();
  if (!data || data.startsWith(':') || data.startsWith('event:') || data.startsWith('id:')) return [];
  if (data.startsWith('data:')) data = data.slice(5).trim();
  if (!data || data === '[DONE]') return [];
  try {
    return [JSON.parse(data) as unknown];
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------------------------------------------
// OpenAI-compatible
// ---------------------------------------------------------------------------------------------------------------

export interface OpenAiGeneratorOptions {
  baseUrl?: string;
  apiKey?: string;
  model: string;
  timeoutMs?: number;
  maxRetries?: number;
}

function classifyOpenAiError(error: unknown, baseUrl: string | undefined): GeneratorError | Error {
  if (error instanceof GeneratorError) return error;
  if (error instanceof APIUserAbortError) return error;
  const where = baseUrl ?? 'api.openai.com';
  if (error instanceof APIConnectionError)
    return new GeneratorError(`LLM server ${where} unreachable: ${error.message}`, true, { cause: error });
  if (error instanceof APIError) {
    const status: number = typeof error.status === 'number' ? error.status : 0;
    const unavailable = status === 429 || status === 502 || status === 503 || status === 504;
    return new GeneratorError(`LLM server ${where} answered HTTP ${status}: ${error.message}`, unavailable, {
      cause: error,
    });
  }
  return error instanceof Error ? error : new Error(String(error));
}

export class OpenAiGenerator implements Generator {
  readonly kind = 'openai';
  private readonly client: OpenAI;
  constructor(private readonly options: OpenAiGeneratorOptions) {
    this.client = new OpenAI({
      apiKey: options.apiKey ?? 'not-needed',
      baseURL: options.baseUrl,
      timeout: options.timeoutMs ?? 60_000,
      maxRetries: options.maxRetries ?? 1,
    });
  }

  model(): Promise<string> {
    return Promise.resolve(this.options.model);
  }

  private body(messages: ChatMessage[], options: GenerateOptions) {
    return {
      model: this.options.model,
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      max_tokens: options.maxTokens,
      temperature: options.temperature,
    };
  }

  async generate(messages: ChatMessage[], options: GenerateOptions): Promise<Generation> {
    try {
      const response = await this.client.chat.completions.create(this.body(messages, options), {
        signal: options.signal,
      });
      return this.fromCompletion(response, messages);
    } catch (error) {
      throw classifyOpenAiError(error, this.options.baseUrl);
    }
  }

  private fromCompletion(response: OpenAI.Chat.ChatCompletion, messages: ChatMessage[]): Generation {
    const choice = response.choices[0];
    const text = choice?.message?.content ?? '';
    return {
      text,
      model: response.model || this.options.model,
      usage: response.usage
        ? {
            inputTokens: response.usage.prompt_tokens,
            outputTokens: response.usage.completion_tokens,
            estimated: false,
          }
        : { inputTokens: inputEstimate(messages), outputTokens: estimate(text), estimated: true },
      finishReason: choice?.finish_reason ?? undefined,
    };
  }

  async *stream(messages: ChatMessage[], options: GenerateOptions): AsyncGenerator<string, Generation> {
    let response: Response;
    try {
      response = await this.client.chat.completions
        .create(
          { ...this.body(messages, options), stream: true, stream_options: { include_usage: true } },
          { signal: options.signal },
        )
        .asResponse();
    } catch (error) {
      throw classifyOpenAiError(error, this.options.baseUrl);
    }
    const type = response.headers.get('content-type') ?? '';
    if (!type.includes('text/event-stream')) {
      // A server that does not stream answered with one completion.
      const completion = (await response.json()) as OpenAI.Chat.ChatCompletion;
      const generation = this.fromCompletion(completion, messages);
      if (generation.text) yield generation.text;
      return generation;
    }
    const parser = new EventLineParser();
    const decoder = new TextDecoder();
    let text = '';
    let model = this.options.model;
    let usage: Generation['usage'] | undefined;
    let finishReason: string | undefined;
    const handle = function* (events: unknown[]): IterableIterator<string> {
      for (const event of events as OpenAI.Chat.ChatCompletionChunk[]) {
        if (event.model) model = event.model;
        if (event.usage)
          usage = {
            inputTokens: event.usage.prompt_tokens,
            outputTokens: event.usage.completion_tokens,
            estimated: false,
          };
        const choice = event.choices?.[0];
        if (choice?.finish_reason) finishReason = choice.finish_reason;
        const delta = choice?.delta?.content;
        if (delta) {
          text += delta;
          yield delta;
        }
      }
    };
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        yield* handle(parser.push(decoder.decode(chunk, { stream: true })));
      }
      yield* handle(parser.end());
    } catch (error) {
      throw classifyOpenAiError(error, this.options.baseUrl);
    }
    return {
      text,
      model,
      usage: usage ?? { inputTokens: inputEstimate(messages), outputTokens: estimate(text), estimated: true },
      finishReason,
    };
  }

  /** Any HTTP answer from `GET {base}/models` proves the server is up (some servers have no such route). */
  async check(): Promise<void> {
    const base = (this.options.baseUrl ?? 'https://api.openai.com/v1').replace(/\/+$/, '');
    try {
      const response = await fetch(`${base}/models`, {
        headers: this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {},
        signal: AbortSignal.timeout(3_000),
      });
      await response.body?.cancel();
      if (response.status >= 500) throw new GeneratorError(`LLM server ${base} answered HTTP ${response.status}`, true);
    } catch (error) {
      if (error instanceof GeneratorError) throw error;
      throw new GeneratorError(`LLM server ${base} unreachable: ${(error as Error).message}`, true, { cause: error });
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// SageMaker endpoint (TGI or LMI container)
// ---------------------------------------------------------------------------------------------------------------

export type SageMakerPayload = 'tgi' | 'lmi';

export interface SageMakerGeneratorOptions {
  endpointName: string;
  payload: SageMakerPayload;
  aws: Settings['aws'];
  /** Model id answers are attributed to (a model version); default `sagemaker:<endpoint>`. */
  model?: string;
  timeoutMs?: number;
  runtime?: SageMakerRuntimeClient;
}

/** The request body of a TGI or LMI container for one prompt. */
export function sageMakerRequest(
  payload: SageMakerPayload,
  prompt: string,
  options: Pick<GenerateOptions, 'maxTokens' | 'temperature'>,
  stream: boolean,
): Record<string, unknown> {
  const sampling = options.temperature > 0;
  const parameters: Record<string, unknown> = {
    max_new_tokens: options.maxTokens,
    do_sample: sampling,
    ...(sampling ? { temperature: options.temperature } : {}),
  };
  if (payload === 'tgi') {
    return { inputs: prompt, parameters: { ...parameters, return_full_text: false, details: !stream }, stream };
  }
  return { inputs: prompt, parameters, ...(stream ? { stream: true } : {}) };
}

/** The generated text (and token count, when the container says) of a TGI / LMI response body. */
export function parseSageMakerResponse(body: unknown): { text: string; outputTokens?: number } {
  const first = Array.isArray(body) ? (body[0] as unknown) : body;
  if (first && typeof first === 'object') {
    const record = first as {
      generated_text?: unknown;
      details?: { generated_tokens?: unknown };
      outputs?: unknown;
    };
    if (typeof record.generated_text === 'string') {
      const tokens = record.details?.generated_tokens;
      return { text: record.generated_text, ...(typeof tokens === 'number' ? { outputTokens: tokens } : {}) };
    }
    if (Array.isArray(record.outputs) && typeof record.outputs[0] === 'string') return { text: record.outputs[0] };
  }
  throw new GeneratorError(`unexpected SageMaker response: ${JSON.stringify(body).slice(0, 200)}`, false);
}

/** The text delta of one streamed event (TGI: `{token: {text, special}}`; LMI jsonlines: `{token: {text}}` or `{outputs: [...]}`). */
export function streamedToken(event: unknown): string {
  if (!event || typeof event !== 'object') return '';
  const record = event as { token?: { text?: unknown; special?: unknown }; outputs?: unknown };
  if (record.token && typeof record.token.text === 'string')
    return record.token.special === true ? '' : record.token.text;
  if (Array.isArray(record.outputs) && typeof record.outputs[0] === 'string') return record.outputs[0];
  return '';
}

function classifySageMakerError(error: unknown, endpoint: string): GeneratorError | Error {
  if (error instanceof GeneratorError) return error;
  if ((error as Error)?.name === 'AbortError') return error as Error;
  const name = (error as { name?: string })?.name ?? 'Error';
  const status = (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  const message = `SageMaker endpoint ${endpoint}: ${name}: ${(error as Error)?.message ?? String(error)}`;
  const unavailable =
    status === undefined ||
    status >= 500 ||
    status === 429 ||
    /ServiceUnavailable|Throttling|Could not find endpoint|NotFound|ECONNREFUSED|TimeoutError/i.test(
      `${name} ${message}`,
    );
  return new GeneratorError(message, unavailable, { cause: error });
}

export class SageMakerGenerator implements Generator {
  readonly kind = 'sagemaker';
  private readonly runtime: SageMakerRuntimeClient;

  constructor(private readonly options: SageMakerGeneratorOptions) {
    this.runtime =
      options.runtime ??
      new SageMakerRuntimeClient({
        region: options.aws.region,
        ...(options.aws.endpoint ? { endpoint: options.aws.endpoint } : {}),
        requestHandler: { requestTimeout: options.timeoutMs ?? 60_000 },
      });
  }

  model(): Promise<string> {
    return Promise.resolve(this.options.model ?? `sagemaker:${this.options.endpointName}`);
  }

  async generate(messages: ChatMessage[], options: GenerateOptions): Promise<Generation> {
    const prompt = renderRagPrompt(messages);
    try {
      const response = await this.runtime.send(
        new InvokeEndpointCommand({
          EndpointName: this.options.endpointName,
          ContentType: 'application/json',
          Accept: 'application/json',
          Body: new TextEncoder().encode(
            JSON.stringify(sageMakerRequest(this.options.payload, prompt, options, false)),
          ),
        }),
        { abortSignal: options.signal },
      );
      const raw = new TextDecoder().decode(response.Body ?? new Uint8Array());
      let body: unknown;
      try {
        body = JSON.parse(raw) as unknown;
      } catch {
        throw new GeneratorError(`SageMaker endpoint answered non-JSON: ${raw.slice(0, 200)}`, false);
      }
      const { text, outputTokens } = parseSageMakerResponse(body);
      return {
        text,
        model: await this.model(),
        usage: { inputTokens: estimate(prompt), outputTokens: outputTokens ?? estimate(text), estimated: true },
      };
    } catch (error) {
      throw classifySageMakerError(error, this.options.endpointName);
    }
  }

  async *stream(messages: ChatMessage[], options: GenerateOptions): AsyncGenerator<string, Generation> {
    const prompt = renderRagPrompt(messages);
    let text = '';
    try {
      const response = await this.runtime.send(
        new InvokeEndpointWithResponseStreamCommand({
          EndpointName: this.options.endpointName,
          ContentType: 'application/json',
          Accept: 'application/jsonlines',
          Body: new TextEncoder().encode(JSON.stringify(sageMakerRequest(this.options.payload, prompt, options, true))),
        }),
        { abortSignal: options.signal },
      );
      const parser = new EventLineParser();
      const decoder = new TextDecoder();
      for await (const event of response.Body ?? []) {
        if (event.ModelStreamError)
          throw new GeneratorError(`model stream error: ${event.ModelStreamError.Message ?? ''}`, false);
        if (event.InternalStreamFailure)
          throw new GeneratorError(`stream failure: ${event.InternalStreamFailure.Message ?? ''}`, true);
        const bytes = event.PayloadPart?.Bytes;
        if (!bytes) continue;
        for (const parsed of parser.push(decoder.decode(bytes, { stream: true }))) {
          const delta = streamedToken(parsed);
          if (delta) {
            text += delta;
            yield delta;
          }
        }
      }
      for (const parsed of parser.end()) {
        const delta = streamedToken(parsed);
        if (delta) {
          text += delta;
          yield delta;
        }
      }
    } catch (error) {
      throw classifySageMakerError(error, this.options.endpointName);
    }
    return {
      text,
      model: await this.model(),
      usage: { inputTokens: estimate(prompt), outputTokens: estimate(text), estimated: true },
    };
  }

  async check(): Promise<void> {
    try {
      const described = await createSageMakerClient(this.options.aws).send(
        new DescribeEndpointCommand({ EndpointName: this.options.endpointName }),
        { abortSignal: AbortSignal.timeout(5_000) },
      );
      if (described.EndpointStatus !== 'InService' && described.EndpointStatus !== 'Updating') {
        throw new GeneratorError(
          `SageMaker endpoint ${this.options.endpointName} is ${described.EndpointStatus ?? 'unknown'}`,
          true,
        );
      }
    } catch (error) {
      const classified = classifySageMakerError(error, this.options.endpointName);
      // whatever DescribeEndpoint says (missing endpoint, no permission), the backend is not usable
      throw classified instanceof GeneratorError && !classified.unavailable
        ? new GeneratorError(classified.message, true, { cause: error })
        : classified;
    }
  }

  close(): Promise<void> {
    this.runtime.destroy();
    return Promise.resolve();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The deployed endpoint recorded by the deployment workflow
// ---------------------------------------------------------------------------------------------------------------

export const ENDPOINTS_COLLECTION = 'endpoints';

/** What the deployment workflow writes in `endpoints` (issue 7). */
export interface EndpointRecord {
  _id: string;
  backend: 'local' | 'sagemaker';
  status: string;
  /** OpenAI-compatible base URL including /v1 (backend local). */
  url?: string;
  sagemakerEndpointName?: string;
  modelVersion?: string;
}

/** Statuses in which an endpoint serves requests (SageMaker's, and plain words a local deployment may use). */
const SERVING_STATUS = /^(inservice|in_service|updating|ready|active|deployed|serving|running)$/i;

export interface EndpointGeneratorOptions {
  name: string;
  db: () => Promise<Db>;
  aws: Settings['aws'];
  payload: SageMakerPayload;
  apiKey?: string;
  timeoutMs?: number;
  /** How long a read of the endpoints document is reused (default 10 s). */
  cacheMs?: number;
}

export class EndpointGenerator implements Generator {
  readonly kind = 'endpoint';
  private cached?: { at: number; key: string; generator: Generator; record: EndpointRecord };

  constructor(private readonly options: EndpointGeneratorOptions) {}

  /** The backend the endpoints document names now (cached for `cacheMs`). */
  async current(): Promise<{ generator: Generator; record: EndpointRecord }> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < (this.options.cacheMs ?? 10_000)) return this.cached;
    const record = await (
      await this.options.db()
    )
      .collection<EndpointRecord>(ENDPOINTS_COLLECTION)
      .findOne({ _id: this.options.name });
    if (!record) throw new GeneratorError(`no deployed endpoint ${this.options.name} (endpoints collection)`, true);
    if (!SERVING_STATUS.test(record.status ?? ''))
      throw new GeneratorError(`endpoint ${this.options.name} is ${record.status}, not serving`, true);
    const key = JSON.stringify([record.backend, record.url, record.sagemakerEndpointName, record.modelVersion]);
    if (this.cached?.key === key) {
      this.cached = { ...this.cached, at: now, record };
      return this.cached;
    }
    let generator: Generator;
    const model = record.modelVersion ?? this.options.name;
    if (record.backend === 'local') {
      if (!record.url) throw new GeneratorError(`endpoint ${this.options.name} (local) has no url`, true);
      generator = new OpenAiGenerator({
        baseUrl: record.url,
        apiKey: this.options.apiKey,
        model,
        timeoutMs: this.options.timeoutMs,
      });
    } else if (record.backend === 'sagemaker') {
      if (!record.sagemakerEndpointName)
        throw new GeneratorError(`endpoint ${this.options.name} (sagemaker) has no sagemakerEndpointName`, true);
      generator = new SageMakerGenerator({
        endpointName: record.sagemakerEndpointName,
        payload: this.options.payload,
        aws: this.options.aws,
        model,
        timeoutMs: this.options.timeoutMs,
      });
    } else {
      throw new GeneratorError(`endpoint ${this.options.name} has unknown backend ${String(record.backend)}`, false);
    }
    const previous = this.cached?.generator;
    this.cached = { at: now, key, generator, record };
    await previous?.close?.();
    return this.cached;
  }

  async model(): Promise<string> {
    return (await this.current()).generator.model();
  }

  async generate(messages: ChatMessage[], options: GenerateOptions): Promise<Generation> {
    return (await this.current()).generator.generate(messages, options);
  }

  async *stream(messages: ChatMessage[], options: GenerateOptions): AsyncGenerator<string, Generation> {
    const { generator } = await this.current();
    return yield* generator.stream(messages, options);
  }

  async check(): Promise<void> {
    await (await this.current()).generator.check();
  }

  async close(): Promise<void> {
    await this.cached?.generator.close?.();
    this.cached = undefined;
  }
}

/** The generator RAG_GENERATOR selects. */
export function createGenerator(settings: Settings, db: () => Promise<Db>): Generator {
  const { rag } = settings;
  const apiKey = settings.llm.apiKey?.reveal();
  if (rag.generator === 'sagemaker') {
    if (!rag.sagemakerEndpoint)
      throw new GeneratorError('RAG_GENERATOR=sagemaker needs RAG_SAGEMAKER_ENDPOINT (the endpoint name)', false);
    return new SageMakerGenerator({
      endpointName: rag.sagemakerEndpoint,
      payload: rag.sagemakerPayload,
      aws: settings.aws,
      timeoutMs: rag.llmTimeoutMs,
    });
  }
  if (rag.generator === 'endpoint') {
    return new EndpointGenerator({
      name: rag.endpointName,
      db,
      aws: settings.aws,
      payload: rag.sagemakerPayload,
      apiKey,
      timeoutMs: rag.llmTimeoutMs,
    });
  }
  return new OpenAiGenerator({
    baseUrl: rag.generatorBaseUrl,
    apiKey,
    model: rag.generatorModel,
    timeoutMs: rag.llmTimeoutMs,
  });
}
