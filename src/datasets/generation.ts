/**
 * Generation: one prompt per extract → LLM → per-item validation, with answers stored per extract id.
 *
 * Retries happen at two levels:
 *  - transport (timeouts, connection errors, 429 with Retry-After, 5xx): inside the LLM client, per HTTP request;
 *  - answer (no JSON, no item list, not one valid item): here, in rounds — after each round only the extracts that
 *    failed are asked again, after a backoff, up to `maxAttempts` completions per extract. An extract that still
 *    fails is counted as failed with its reason; it never affects another extract.
 * A partial answer (a short list, some invalid items) is kept: its valid items are used, the invalid ones are
 * counted as `invalid-item`, and it is not paid for again.
 *
 * Idempotency: every final answer is written to an {@link AnswerStore} under its extract id before the function
 * returns, and extracts with a stored answer are skipped — an activity retried after a crash, or a run restarted,
 * never pays for an extract twice. Transport failures are the exception: they are not stored, so a later attempt
 * (the next activity retry) asks again.
 *
 * Inputs and outputs are plain JSON, so one Temporal activity per batch of extracts can call
 * {@link generateAnswers} and return its small {@link GenerationSummary}.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import { sha256, stableStringify } from '../domain/artifacts';
import type { ArtifactStore } from '../infra/artifact-store';
import { LlmError, type LlmClient } from '../infra/llm';
import type { TextTokenizer } from '../infra/tokenizer';
import { promptVersion as versionOf, PROMPT_TEMPLATES, renderPrompt } from './prompts';
import type { DatasetType, Extract, ExtractAnswer, ExtractFailureReason } from './types';
import { parseItems, responseSchema } from './validation';

export interface GeneratorParams {
  /** Items asked for per extract. Default 5. */
  samplesPerExtract: number;
  /** Default 0.7. */
  temperature: number;
  /** Output budget per completion. Default 2048. */
  maxOutputTokens: number;
  /** Prompt budget (system + user) in tokens; longer extracts are truncated at a sentence end. Default 6000. */
  maxPromptTokens: number;
  /** Completions per extract for answer-level failures (malformed JSON, no valid items). Default 3. */
  maxAttempts: number;
  /** Wait before retry round r: base · 2^(r−1) ms. Default 500. */
  retryBaseDelayMs: number;
  /** Sampling seed sent with every request (retries get seed + attempt − 1); unset = none sent. */
  seed?: number;
}

export const DEFAULT_GENERATOR_PARAMS: Readonly<GeneratorParams> = {
  samplesPerExtract: 5,
  temperature: 0.7,
  maxOutputTokens: 2048,
  maxPromptTokens: 6000,
  maxAttempts: 3,
  retryBaseDelayMs: 500,
};

export function resolveGeneratorParams(params: Partial<GeneratorParams> = {}): GeneratorParams {
  const resolved = { ...DEFAULT_GENERATOR_PARAMS, ...params };
  if (!Number.isInteger(resolved.samplesPerExtract) || resolved.samplesPerExtract < 1)
    throw new RangeError('samplesPerExtract must be a positive integer');
  if (!Number.isInteger(resolved.maxAttempts) || resolved.maxAttempts < 1)
    throw new RangeError('maxAttempts must be a positive integer');
  return resolved;
}

/**
 * The answers of one generation setting: the same type, model, prompt version and parameters (and optional run
 * key) share stored answers, so a re-run with identical settings reuses them.
 */
export function answerScope(type: DatasetType, model: string, params: GeneratorParams, runKey = ''): string {
  const { retryBaseDelayMs: _delay, maxAttempts: _attempts, ...content } = params;
  return sha256(
    stableStringify({ type, model, promptVersion: versionOf(PROMPT_TEMPLATES[type]), params: content, runKey }),
  ).slice(0, 16);
}

/** Final answers per extract id, written before a batch returns (see module doc). */
export interface AnswerStore {
  get(extractId: string): Promise<ExtractAnswer | null>;
  put(answer: ExtractAnswer): Promise<void>;
}

/** Answers in the artifact store: `datasets/<type>/answers/<scope>/<extract id>.json` (local folder or S3). */
export class ArtifactAnswerStore implements AnswerStore {
  constructor(
    private readonly store: ArtifactStore,
    readonly type: DatasetType,
    readonly scope: string,
  ) {}

  private key(extractId: string): string {
    return `datasets/${this.type}/answers/${this.scope}/${extractId}.json`;
  }

  async get(extractId: string): Promise<ExtractAnswer | null> {
    if (!(await this.store.exists(this.key(extractId)))) return null;
    return JSON.parse((await this.store.get(this.key(extractId))).toString('utf8')) as ExtractAnswer;
  }

  async put(answer: ExtractAnswer): Promise<void> {
    await this.store.put(this.key(answer.extract_id), JSON.stringify(answer), 'application/json');
  }
}

/** Answers in memory (tests, one-process runs). */
export class MemoryAnswerStore implements AnswerStore {
  readonly answers = new Map<string, ExtractAnswer>();
  get(extractId: string): Promise<ExtractAnswer | null> {
    return Promise.resolve(this.answers.get(extractId) ?? null);
  }
  put(answer: ExtractAnswer): Promise<void> {
    this.answers.set(answer.extract_id, structuredClone(answer));
    return Promise.resolve();
  }
}

export interface GenerateAnswersInput {
  type: DatasetType;
  extracts: readonly Extract[];
  params?: Partial<GeneratorParams>;
}

export interface GenerationProgress {
  total: number;
  done: number;
  answered: number;
  failed: number;
  fromStore: number;
}

export interface GenerateAnswersDeps {
  llm: LlmClient;
  /** Where answers are kept per extract id; without one nothing survives the call. */
  answers?: AnswerStore;
  /** Extracts in flight at once (the LLM client also limits requests). Default 8. */
  concurrency?: number;
  tokenizer?: TextTokenizer;
  signal?: AbortSignal;
  /** Called after each extract is settled (for activity heartbeats). */
  onProgress?: (progress: GenerationProgress) => void;
}

/** Small, JSON: what a batch did. */
export interface GenerationSummary {
  type: DatasetType;
  model: string;
  promptVersion: string;
  extracts: number;
  answered: number;
  failed: number;
  /** Settled by an answer stored earlier (not asked again). */
  fromStore: number;
  failures: Partial<Record<ExtractFailureReason, number>>;
  /** Failed on transport after the client's retries: not stored, asked again by the next call. */
  retryableFailures: number;
  /** Up to 50 ids of failed extracts. */
  failedExtractIds: string[];
  /** Completions made by this call. */
  completions: number;
  /** Extracts that needed more than one completion in this call. */
  retriedExtracts: number;
  httpAttempts: number;
  itemsRequested: number;
  itemsValid: number;
  itemsInvalid: number;
  /** Answers with fewer items than asked for. */
  shortLists: number;
  truncatedExtracts: number;
  /** Tokens of this call's completions (answers from the store cost nothing now). */
  inputTokens: number;
  outputTokens: number;
  estimatedCostUsd: number | null;
}

type Attempt =
  | { kind: 'answered'; items: ExtractAnswer['items']; invalid: number; invalidReasons: Record<string, number> }
  | { kind: 'failed'; reason: ExtractFailureReason; message: string; retryable: boolean; final: boolean };

interface ExtractState {
  extract: Extract;
  prompt: ReturnType<typeof renderPrompt>;
  attempts: number;
  httpAttempts: number;
  inputTokens: number;
  outputTokens: number;
  last?: Attempt;
}

/** Asks the LLM for every extract without a stored answer; see the module doc for retries and idempotency. */
export async function generateAnswers(
  input: GenerateAnswersInput,
  deps: GenerateAnswersDeps,
): Promise<{ summary: GenerationSummary; answers: ExtractAnswer[] }> {
  const { type } = input;
  const params = resolveGeneratorParams(input.params);
  const llm = deps.llm;
  const promptVersion = versionOf(PROMPT_TEMPLATES[type]);
  const schema = responseSchema(type, params.samplesPerExtract);
  const limit = pLimit(deps.concurrency ?? 8);
  const summary: GenerationSummary = {
    type,
    model: llm.model,
    promptVersion,
    extracts: input.extracts.length,
    answered: 0,
    failed: 0,
    fromStore: 0,
    failures: {},
    retryableFailures: 0,
    failedExtractIds: [],
    completions: 0,
    retriedExtracts: 0,
    httpAttempts: 0,
    itemsRequested: 0,
    itemsValid: 0,
    itemsInvalid: 0,
    shortLists: 0,
    truncatedExtracts: 0,
    inputTokens: 0,
    outputTokens: 0,
    estimatedCostUsd: null,
  };
  const results = new Map<string, ExtractAnswer>();
  const progress = () =>
    deps.onProgress?.({
      total: input.extracts.length,
      done: results.size,
      answered: summary.answered,
      failed: summary.failed,
      fromStore: summary.fromStore,
    });

  const tally = (answer: ExtractAnswer) => {
    summary.itemsRequested += answer.requested;
    if (answer.status === 'answered') {
      summary.answered += 1;
      summary.itemsValid += answer.items.length;
      summary.itemsInvalid += answer.invalid_items;
      if (answer.items.length + answer.invalid_items < answer.requested) summary.shortLists += 1;
    } else {
      summary.failed += 1;
      const reason = answer.failure?.reason ?? 'llm-error';
      summary.failures[reason] = (summary.failures[reason] ?? 0) + 1;
      if (answer.failure?.retryable) summary.retryableFailures += 1;
      if (summary.failedExtractIds.length < 50) summary.failedExtractIds.push(answer.extract_id);
    }
    if (answer.truncated) summary.truncatedExtracts += 1;
  };

  // Settle what is already stored. Stored answers are final (transport failures are never stored).
  const pending: ExtractState[] = [];
  const unique = new Map(input.extracts.map((extract) => [extract.id, extract]));
  for (const extract of unique.values()) {
    const stored = await deps.answers?.get(extract.id);
    if (stored && stored.type === type && stored.prompt_version === promptVersion) {
      results.set(extract.id, stored);
      summary.fromStore += 1;
      tally(stored);
      continue;
    }
    const prompt = renderPrompt(type, extract, {
      samplesPerExtract: params.samplesPerExtract,
      maxPromptTokens: params.maxPromptTokens,
      tokenizer: deps.tokenizer,
    });
    pending.push({ extract, prompt, attempts: 0, httpAttempts: 0, inputTokens: 0, outputTokens: 0 });
  }
  progress();

  const attemptOnce = async (state: ExtractState): Promise<Attempt> => {
    state.attempts += 1;
    summary.completions += 1;
    let completion;
    try {
      completion = await llm.completeJson({
        system: state.prompt.system,
        user: state.prompt.user,
        schema,
        schemaName: `${type}_samples`,
        temperature: params.temperature,
        maxOutputTokens: params.maxOutputTokens,
        ...(params.seed !== undefined ? { seed: params.seed + state.attempts - 1 } : {}),
        signal: deps.signal,
      });
    } catch (error) {
      if (!(error instanceof LlmError)) throw error;
      if (error.kind === 'aborted') throw error;
      state.httpAttempts += error.httpAttempts;
      return { kind: 'failed', reason: 'llm-error', message: error.message, retryable: error.retryable, final: true };
    }
    state.httpAttempts += completion.httpAttempts;
    state.inputTokens += completion.usage.inputTokens;
    state.outputTokens += completion.usage.outputTokens;
    if (!completion.json.ok) {
      const cut = completion.finishReason === 'length' ? ' (the reply hit the output token limit)' : '';
      return {
        kind: 'failed',
        reason: 'malformed-json',
        message: `${completion.json.error}${cut}`,
        retryable: false,
        final: false,
      };
    }
    const parsed = parseItems(type, completion.json.value);
    if (!parsed.ok)
      return { kind: 'failed', reason: 'no-item-list', message: parsed.message, retryable: false, final: false };
    if (parsed.items.length === 0) {
      const reasons = Object.entries(parsed.invalidReasons)
        .map(([reason, count]) => `${reason} ×${count}`)
        .join(', ');
      return {
        kind: 'failed',
        reason: 'no-valid-items',
        message: `no valid item (${reasons || 'empty list'})`,
        retryable: false,
        final: false,
      };
    }
    return { kind: 'answered', items: parsed.items, invalid: parsed.invalid, invalidReasons: parsed.invalidReasons };
  };

  const settle = async (state: ExtractState): Promise<void> => {
    const last = state.last;
    if (!last) return;
    const answer: ExtractAnswer = {
      extract_id: state.extract.id,
      document_id: state.extract.document_id,
      category: state.extract.category,
      extract_text: state.prompt.extractText,
      truncated: state.prompt.truncated,
      type,
      prompt_version: promptVersion,
      model: llm.model,
      status: last.kind === 'answered' ? 'answered' : 'failed',
      items: last.kind === 'answered' ? last.items : [],
      invalid_items: last.kind === 'answered' ? last.invalid : 0,
      invalid_reasons: last.kind === 'answered' ? last.invalidReasons : {},
      requested: params.samplesPerExtract,
      attempts: state.attempts,
      http_attempts: state.httpAttempts,
      input_tokens: state.inputTokens,
      output_tokens: state.outputTokens,
      ...(last.kind === 'failed'
        ? { failure: { reason: last.reason, message: last.message, retryable: last.retryable } }
        : {}),
    };
    if (!answer.failure?.retryable) await deps.answers?.put(answer);
    results.set(answer.extract_id, answer);
    summary.httpAttempts += state.httpAttempts;
    summary.inputTokens += state.inputTokens;
    summary.outputTokens += state.outputTokens;
    if (state.attempts > 1) summary.retriedExtracts += 1;
    tally(answer);
    progress();
  };

  let round = pending;
  for (let attempt = 1; round.length > 0; attempt += 1) {
    if (attempt > 1) await sleep(params.retryBaseDelayMs * 2 ** (attempt - 2), undefined, { signal: deps.signal });
    const again: ExtractState[] = [];
    await Promise.all(
      round.map((state) =>
        limit(async () => {
          state.last = await attemptOnce(state);
          const retry = state.last.kind === 'failed' && !state.last.final && state.attempts < params.maxAttempts;
          if (retry) again.push(state);
          else await settle(state);
        }),
      ),
    );
    // Keep input order in the next round, whatever order this one finished in.
    const order = new Map(round.map((state, i) => [state.extract.id, i]));
    round = again.sort((a, b) => (order.get(a.extract.id) ?? 0) - (order.get(b.extract.id) ?? 0));
  }

  summary.estimatedCostUsd = llm.costOf(summary.inputTokens, summary.outputTokens);
  const answers = [...unique.keys()].map((id) => results.get(id)).filter((a): a is ExtractAnswer => a !== undefined);
  return { summary, answers };
}
