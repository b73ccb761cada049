/**
 * LLM client for any OpenAI-compatible chat-completions server (OpenAI, vLLM, TGI, Ollama, llama.cpp server, the
 * local node-llama-cpp server of `local-llm.ts`), built on the `openai` package.
 *
 * - Structured output: asks for `response_format: json_schema` (the schema is derived from a zod schema with
 *   `z.toJSONSchema`). A server that rejects it (HTTP 400/422 naming the response format) is asked again with
 *   `json_object`, then with no response format at all (the prompt itself describes the JSON); the downgrade is
 *   remembered for the client's lifetime. The reply is always parsed leniently (code fences, prose around JSON).
 * - Transient failures (timeouts, connection errors, 408/409/429/5xx) are retried by the `openai` package itself
 *   with exponential backoff and jitter, honouring `Retry-After` / `retry-after-ms`. Every HTTP attempt — retries
 *   included — passes through this client's `fetch`, which applies the requests-per-minute limit, holds *all*
 *   requests back while a 429's Retry-After is running, and counts attempts and statuses.
 * - Tokens per minute: each request reserves its estimated input tokens plus its output budget before it starts.
 * - Accounting: tokens in/out (the server's `usage`, or a tokenizer estimate when it sends none) and an estimated
 *   cost from a small price table.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { RateLimiter } from 'limiter';
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import pLimit from 'p-limit';
import { z } from 'zod';
import type { Secret, Settings } from '../config';
import { logger } from './logger';
import { defaultTokenizer, type TextTokenizer } from './tokenizer';

export type StructuredOutputMode = 'json_schema' | 'json_object' | 'prompt';

/** USD per million tokens. */
export interface LlmPrice {
  inputPerMillion: number;
  outputPerMillion: number;
}

/**
 * List prices (USD per million tokens, standard tier) of common OpenAI models. Dated snapshots match by prefix
 * (`gpt-4o-mini-2024-07-18` → `gpt-4o-mini`). Models not listed (local models, other vendors) have no estimate
 * unless a price is passed in `LlmClientOptions.prices`.
 */
export const LLM_PRICES: Readonly<Record<string, LlmPrice>> = {
  'gpt-4o': { inputPerMillion: 2.5, outputPerMillion: 10 },
  'gpt-4o-mini': { inputPerMillion: 0.15, outputPerMillion: 0.6 },
  'gpt-4.1': { inputPerMillion: 2, outputPerMillion: 8 },
  'gpt-4.1-mini': { inputPerMillion: 0.4, outputPerMillion: 1.6 },
  'gpt-4.1-nano': { inputPerMillion: 0.1, outputPerMillion: 0.4 },
  'gpt-5': { inputPerMillion: 1.25, outputPerMillion: 10 },
  'gpt-5-mini': { inputPerMillion: 0.25, outputPerMillion: 2 },
  'gpt-5-nano': { inputPerMillion: 0.05, outputPerMillion: 0.4 },
};

/** The price of `model`: exact name, else the longest listed name it starts with followed by `-`. */
export function priceFor(model: string, table: Readonly<Record<string, LlmPrice>> = LLM_PRICES): LlmPrice | null {
  if (table[model]) return table[model];
  const prefix = Object.keys(table)
    .filter((name) => model.startsWith(`${name}-`))
    .sort((a, b) => b.length - a.length)[0];
  return prefix ? (table[prefix] ?? null) : null;
}

/** Estimated cost in USD, or null when the model has no price. Rounded to 1e-6. */
export function estimateCostUsd(
  model: string,
  inputTokens: number,
  outputTokens: number,
  table: Readonly<Record<string, LlmPrice>> = LLM_PRICES,
): number | null {
  const price = priceFor(model, table);
  if (!price) return null;
  const usd = (inputTokens * price.inputPerMillion + outputTokens * price.outputPerMillion) / 1_000_000;
  return Math.round(usd * 1e6) / 1e6;
}

export interface LlmClientOptions {
  model: string;
  /** OpenAI-compatible base URL including `/v1`; unset = the `openai` package's default (api.openai.com). */
  baseUrl?: string;
  apiKey?: Secret | string;
  /** Per HTTP attempt. Default 120 s. */
  timeoutMs?: number;
  /** HTTP-level retries of transient failures (timeouts, connection errors, 408, 409, 429, 5xx). Default 5. */
  maxRetries?: number;
  /** Requests per minute, every HTTP attempt counted. Unset = no limit. */
  requestsPerMinute?: number;
  /** Tokens per minute (estimated input + output budget per request). Unset = no limit. */
  tokensPerMinute?: number;
  /** Requests in flight at once. Default 8. */
  maxConcurrency?: number;
  /** 'auto' (default) starts with json_schema and downgrades when the server rejects it. */
  structuredOutput?: StructuredOutputMode | 'auto';
  /** Prices added to (or overriding) {@link LLM_PRICES}. */
  prices?: Record<string, LlmPrice>;
  tokenizer?: TextTokenizer;
  /** The fetch function under this client's accounting (tests, proxies). Default: global fetch. */
  fetch?: typeof globalThis.fetch;
}

export interface JsonCompletionRequest {
  system: string;
  user: string;
  /** The shape the answer must have; sent as a JSON schema when the server supports it. */
  schema: z.ZodType;
  /** Name of the schema in `response_format` (letters, digits, `_`, `-`). */
  schemaName: string;
  temperature?: number;
  /** Output budget. Default 2048. */
  maxOutputTokens?: number;
  /** Sampling seed, for servers that honour it (OpenAI: best effort; llama.cpp: reproducible). */
  seed?: number;
  signal?: AbortSignal;
}

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  /** True when the server sent no `usage` and the figures are tokenizer estimates. */
  estimated: boolean;
}

export interface JsonCompletion {
  /** The raw text the model produced. */
  content: string;
  /** Parsed JSON, when the content held any. */
  json: { ok: true; value: unknown } | { ok: false; error: string };
  finishReason: string | null;
  mode: StructuredOutputMode;
  usage: TokenUsage;
  /** HTTP attempts this completion took (1 = no retry). */
  httpAttempts: number;
  model: string;
}

export type LlmErrorKind =
  'timeout' | 'connection' | 'rate-limited' | 'server' | 'bad-request' | 'auth' | 'aborted' | 'other';

/** A failed completion after the transport retries were used up. */
export class LlmError extends Error {
  constructor(
    message: string,
    readonly kind: LlmErrorKind,
    /** Whether trying again later may succeed (transient), as opposed to a request the server will always refuse. */
    readonly retryable: boolean,
    readonly status?: number,
    readonly httpAttempts = 0,
  ) {
    super(message);
    this.name = 'LlmError';
  }
}

export interface LlmStats {
  model: string;
  /** Completions asked for. */
  requests: number;
  succeeded: number;
  failed: number;
  /** HTTP requests sent, retries included. */
  httpAttempts: number;
  /** Transport retries: HTTP attempts beyond one per request, not counting format/parameter adaptations. */
  retries: number;
  /** HTTP attempts by outcome: status code, `timeout` or `connection`. */
  outcomes: Record<string, number>;
  inputTokens: number;
  outputTokens: number;
  /** True when some token figures are estimates (a server without `usage`). */
  tokensEstimated: boolean;
  /** Completions by finish reason (`stop`, `length`, ...). */
  finishReasons: Record<string, number>;
  estimatedCostUsd: number | null;
  structuredOutput: StructuredOutputMode;
  /** Format downgrades that happened, e.g. `json_schema→json_object`. */
  downgrades: string[];
}

/** Parses JSON out of model output: plain, inside ``` fences, or surrounded by prose. */
export function parseJsonLoose(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  const trimmed = text.trim();
  if (!trimmed) return { ok: false, error: 'empty content' };
  const candidates = [trimmed];
  const fenced = /```(?:json|JSON)?\s*\n?([\s\S]*?)```/.exec(trimmed);
  if (fenced?.[1]) candidates.push(fenced[1].trim());
  const firstObject = trimmed.search(/[{[]/);
  if (firstObject >= 0) {
    const close = trimmed[firstObject] === '{' ? '}' : ']';
    const last = trimmed.lastIndexOf(close);
    if (last > firstObject) candidates.push(trimmed.slice(firstObject, last + 1));
  }
  let firstError = '';
  for (const candidate of candidates) {
    try {
      return { ok: true, value: JSON.parse(candidate) as unknown };
    } catch (error) {
      firstError ||= (error as Error).message;
    }
  }
  return { ok: false, error: `not JSON: ${firstError}` };
}

/** Milliseconds a 429/503 asks us to wait (`retry-after-ms`, `retry-after` seconds or HTTP date), if any. */
export function retryAfterMs(headers: Headers, now = Date.now()): number | undefined {
  const ms = Number.parseFloat(headers.get('retry-after-ms') ?? '');
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers.get('retry-after');
  if (!value) return undefined;
  const seconds = Number.parseFloat(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}

/** JSON schema of a zod schema as `response_format` wants it (no `$schema` key). */
export function responseJsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { target: 'draft-7', io: 'output' }) as Record<
    string,
    unknown
  >;
  return rest;
}

const DOWNGRADE: Record<StructuredOutputMode, StructuredOutputMode | undefined> = {
  json_schema: 'json_object',
  json_object: 'prompt',
  prompt: undefined,
};

/** A 400/422 that says the server does not do this response format (rather than a bad prompt). */
function rejectsResponseFormat(error: unknown): boolean {
  return (
    error instanceof APIError &&
    (error.status === 400 || error.status === 422 || error.status === 501) &&
    /response_format|json_schema|json_object|structured|schema|grammar/i.test(error.message)
  );
}

function rejectsMaxTokens(error: unknown): boolean {
  return (
    error instanceof APIError &&
    error.status === 400 &&
    /max_tokens/.test(error.message) &&
    /max_completion_tokens/.test(error.message)
  );
}

function rejectsTemperature(error: unknown): boolean {
  return (
    error instanceof APIError &&
    error.status === 400 &&
    /temperature/i.test(error.message) &&
    /unsupported|not support|only the default/i.test(error.message)
  );
}

function toLlmError(error: unknown, attempts: number): LlmError {
  if (error instanceof LlmError) return error;
  if (error instanceof APIUserAbortError) return new LlmError('request aborted', 'aborted', false, undefined, attempts);
  if (error instanceof APIConnectionTimeoutError)
    return new LlmError(`timed out after ${attempts} attempt(s)`, 'timeout', true, undefined, attempts);
  if (error instanceof APIConnectionError)
    return new LlmError(
      `connection failed after ${attempts} attempt(s): ${error.message}`,
      'connection',
      true,
      undefined,
      attempts,
    );
  if (error instanceof APIError && typeof error.status === 'number') {
    const status = error.status;
    const message = `HTTP ${status} after ${attempts} attempt(s): ${error.message}`;
    if (status === 429) return new LlmError(message, 'rate-limited', true, status, attempts);
    if (status >= 500 || status === 408 || status === 409)
      return new LlmError(message, 'server', true, status, attempts);
    if (status === 401 || status === 403) return new LlmError(message, 'auth', false, status, attempts);
    return new LlmError(message, 'bad-request', false, status, attempts);
  }
  return new LlmError((error as Error)?.message ?? String(error), 'other', false, undefined, attempts);
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError');
}

/** A chat-completions client with structured output, rate limits, retries and token/cost accounting. */
export class LlmClient {
  readonly model: string;
  private readonly openai: OpenAI;
  private readonly tokenizer: TextTokenizer;
  private readonly prices: Readonly<Record<string, LlmPrice>>;
  private readonly requestLimiter?: RateLimiter;
  private readonly tokenLimiter?: RateLimiter;
  private readonly tokensPerMinute?: number;
  private readonly inFlight: pLimit.Limit;
  private readonly attemptContext = new AsyncLocalStorage<{ attempts: number }>();
  private mode: StructuredOutputMode;
  private maxTokensParam: 'max_tokens' | 'max_completion_tokens' = 'max_tokens';
  private sendTemperature = true;
  private pausedUntil = 0;
  private readonly totals = {
    requests: 0,
    succeeded: 0,
    failed: 0,
    httpAttempts: 0,
    formatRetries: 0,
    outcomes: {} as Record<string, number>,
    inputTokens: 0,
    outputTokens: 0,
    tokensEstimated: false,
    finishReasons: {} as Record<string, number>,
    downgrades: [] as string[],
  };

  constructor(options: LlmClientOptions) {
    this.model = options.model;
    this.tokenizer = options.tokenizer ?? defaultTokenizer();
    this.prices = { ...LLM_PRICES, ...(options.prices ?? {}) };
    this.mode =
      !options.structuredOutput || options.structuredOutput === 'auto' ? 'json_schema' : options.structuredOutput;
    if (options.requestsPerMinute)
      this.requestLimiter = new RateLimiter({ tokensPerInterval: options.requestsPerMinute, interval: 'minute' });
    if (options.tokensPerMinute) {
      this.tokensPerMinute = options.tokensPerMinute;
      this.tokenLimiter = new RateLimiter({ tokensPerInterval: options.tokensPerMinute, interval: 'minute' });
    }
    this.inFlight = pLimit(options.maxConcurrency ?? 8);
    const apiKey = typeof options.apiKey === 'string' ? options.apiKey : options.apiKey?.reveal();
    const baseFetch = options.fetch ?? globalThis.fetch;
    this.openai = new OpenAI({
      // Local servers need no key, but the package insists on one.
      apiKey: apiKey ?? (options.baseUrl ? 'not-needed' : undefined),
      baseURL: options.baseUrl,
      timeout: options.timeoutMs ?? 120_000,
      maxRetries: options.maxRetries ?? 5,
      fetch: (input, init) => this.accountedFetch(baseFetch, input, init),
    });
  }

  /** Every HTTP attempt goes through here: pause after a 429, requests-per-minute, counting. */
  private async accountedFetch(
    baseFetch: typeof globalThis.fetch,
    input: string | URL | Request,
    init?: RequestInit,
  ): Promise<Response> {
    const context = this.attemptContext.getStore();
    // The first attempt was admitted by completeJson (outside the SDK's per-attempt timeout); retries are
    // admitted here, as they are requests too.
    if (context && context.attempts > 0) await this.admit();
    if (context) context.attempts += 1;
    this.totals.httpAttempts += 1;
    try {
      const response = await baseFetch(input, init);
      this.count(String(response.status));
      if (response.status === 429) {
        const delay = retryAfterMs(response.headers);
        if (delay !== undefined) this.pausedUntil = Math.max(this.pausedUntil, Date.now() + delay);
      }
      return response;
    } catch (error) {
      this.count(isAbort(error) ? 'timeout' : 'connection');
      throw error;
    }
  }

  /** Waits out a running 429 pause, then takes one request from the requests-per-minute budget. */
  private async admit(): Promise<void> {
    const wait = this.pausedUntil - Date.now();
    if (wait > 0) await sleep(wait);
    await this.requestLimiter?.removeTokens(1);
  }

  private count(outcome: string): void {
    this.totals.outcomes[outcome] = (this.totals.outcomes[outcome] ?? 0) + 1;
  }

  /** Asks for one JSON answer. Throws {@link LlmError} when the transport retries are used up. */
  async completeJson(request: JsonCompletionRequest): Promise<JsonCompletion> {
    const maxOutputTokens = request.maxOutputTokens ?? 2048;
    const inputEstimate = this.tokenizer.count(request.system) + this.tokenizer.count(request.user) + 16;
    if (this.tokenLimiter && this.tokensPerMinute) {
      await this.tokenLimiter.removeTokens(Math.min(inputEstimate + maxOutputTokens, this.tokensPerMinute));
    }
    this.totals.requests += 1;
    const context = { attempts: 0 };
    try {
      const result = await this.inFlight(async () => {
        await this.admit();
        return this.attemptContext.run(context, () => this.send(request, maxOutputTokens, inputEstimate));
      });
      this.totals.succeeded += 1;
      return { ...result, httpAttempts: context.attempts };
    } catch (error) {
      this.totals.failed += 1;
      throw toLlmError(error, context.attempts);
    }
  }

  private async send(
    request: JsonCompletionRequest,
    maxOutputTokens: number,
    inputEstimate: number,
  ): Promise<Omit<JsonCompletion, 'httpAttempts'>> {
    for (;;) {
      const mode = this.mode;
      const body: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming = {
        model: this.model,
        messages: [
          { role: 'system', content: request.system },
          { role: 'user', content: request.user },
        ],
        ...(this.sendTemperature && request.temperature !== undefined ? { temperature: request.temperature } : {}),
        ...(request.seed !== undefined ? { seed: request.seed } : {}),
        ...(this.maxTokensParam === 'max_tokens'
          ? { max_tokens: maxOutputTokens }
          : { max_completion_tokens: maxOutputTokens }),
        ...(mode === 'json_schema'
          ? {
              response_format: {
                type: 'json_schema' as const,
                json_schema: { name: request.schemaName, schema: responseJsonSchema(request.schema), strict: true },
              },
            }
          : mode === 'json_object'
            ? { response_format: { type: 'json_object' as const } }
            : {}),
      };
      try {
        const response = await this.openai.chat.completions.create(body, { signal: request.signal });
        const choice = response.choices[0];
        const content = choice?.message?.content ?? '';
        const usage: TokenUsage = response.usage
          ? {
              inputTokens: response.usage.prompt_tokens,
              outputTokens: response.usage.completion_tokens,
              estimated: false,
            }
          : { inputTokens: inputEstimate, outputTokens: this.tokenizer.count(content), estimated: true };
        this.totals.inputTokens += usage.inputTokens;
        this.totals.outputTokens += usage.outputTokens;
        this.totals.tokensEstimated ||= usage.estimated;
        const finish = choice?.finish_reason ?? 'unknown';
        this.totals.finishReasons[finish] = (this.totals.finishReasons[finish] ?? 0) + 1;
        return {
          content,
          json: parseJsonLoose(content),
          finishReason: choice?.finish_reason ?? null,
          mode,
          usage,
          model: response.model || this.model,
        };
      } catch (error) {
        // Adapt to what the server supports and ask again; each adaptation happens once per client.
        if (rejectsMaxTokens(error) && this.maxTokensParam === 'max_tokens') {
          this.maxTokensParam = 'max_completion_tokens';
        } else if (rejectsTemperature(error) && this.sendTemperature) {
          this.sendTemperature = false;
        } else if (rejectsResponseFormat(error) && DOWNGRADE[mode]) {
          // Another request may already have downgraded; only step down from the mode this request used.
          if (this.mode === mode) {
            this.mode = DOWNGRADE[mode];
            this.totals.downgrades.push(`${mode}→${this.mode}`);
            logger().warn(
              { model: this.model, from: mode, to: this.mode, reason: (error as Error).message },
              'LLM server rejected the response format; downgrading',
            );
          }
        } else {
          throw error;
        }
        this.totals.formatRetries += 1;
      }
    }
  }

  /** Running totals of this client (all completions so far). */
  stats(): LlmStats {
    const t = this.totals;
    return {
      model: this.model,
      requests: t.requests,
      succeeded: t.succeeded,
      failed: t.failed,
      httpAttempts: t.httpAttempts,
      retries: Math.max(0, t.httpAttempts - t.requests - t.formatRetries),
      outcomes: { ...t.outcomes },
      inputTokens: t.inputTokens,
      outputTokens: t.outputTokens,
      tokensEstimated: t.tokensEstimated,
      finishReasons: { ...t.finishReasons },
      estimatedCostUsd: estimateCostUsd(this.model, t.inputTokens, t.outputTokens, this.prices),
      structuredOutput: this.mode,
      downgrades: [...t.downgrades],
    };
  }

  /** Estimated cost of the given token counts with this client's price table. */
  costOf(inputTokens: number, outputTokens: number): number | null {
    return estimateCostUsd(this.model, inputTokens, outputTokens, this.prices);
  }

  get structuredOutput(): StructuredOutputMode {
    return this.mode;
  }
}

/** The client configured by the platform settings (OPENAI_BASE_URL, OPENAI_API_KEY, LLM_MODEL), plus overrides. */
export function createLlmClient(llm: Settings['llm'], overrides: Partial<LlmClientOptions> = {}): LlmClient {
  return new LlmClient({ model: llm.model, baseUrl: llm.baseUrl, apiKey: llm.apiKey, ...overrides });
}
