/**
 * LLM-as-judge: the reference's two 1–3 scales (accuracy = factual correctness; style = accessible blog/social tone
 * with precise technical terms), each with a short analysis, as structured output; and the RAG judge (faithfulness of
 * an answer to its retrieved contexts, relevance of the contexts to the question), on the same 1–3 scale.
 *
 * A judge answer that is not JSON, misses a field, or has a score outside 1–3 is asked again (up to `attempts`
 * completions), then counted as a judge failure with its reason — never scored. A transport failure that outlasted
 * the client's retries is reported as `retryable` so the caller can try that sample again later.
 */
import pLimit from 'p-limit';
import { z } from 'zod';
import { sha256 } from '../domain/artifacts';
import { LlmError, type LlmClient } from '../infra/llm';

// An enum rather than min/max: llama.cpp grammars (the local judge) enforce enum values but not numeric ranges.
const score = z.literal([1, 2, 3]);
const criterion = z.object({ analysis: z.string().min(1).max(4000), score });

/** What the judge must answer for one instruction/answer pair. */
export const judgeSchema = z.object({ accuracy: criterion, style: criterion });
export type JudgeVerdict = z.infer<typeof judgeSchema>;

/** What the RAG judge must answer for one question/answer/contexts sample. */
export const ragJudgeSchema = z.object({ faithfulness: criterion, contextRelevance: criterion });
export type RagJudgeVerdict = z.infer<typeof ragJudgeSchema>;

export const JUDGE_SYSTEM = `You are an expert judge of technical writing about machine learning, LLMs and MLOps.
You evaluate the quality of an answer to an instruction on two criteria and reply with JSON only.`;

export const JUDGE_TEMPLATE = `Evaluate the answer to the instruction below on two criteria.

1. Accuracy: how factually correct is the information in the answer? You are a technical expert in this topic. The
reference answer, written by the author, is given to help you check facts; the answer does not have to repeat it.
2. Style: is the tone and writing style appropriate for a blog post or social media content? It should use simple
but technical words and avoid formal or academic language.

Accuracy scale:
1 (Poor): contains factual errors or misleading information
2 (Good): mostly accurate with minor errors or omissions
3 (Excellent): highly accurate and comprehensive

Style scale:
1 (Poor): too formal, uses overly complex words
2 (Good): good balance of technical content and accessibility, but still uses formal words and expressions
3 (Excellent): perfectly accessible language for a blog or social media, with simple but precise technical terms
when necessary

Example of bad style: The Llama2 7B model constitutes a noteworthy progression in the field of artificial
intelligence, serving as the successor to its predecessor, the original Llama architecture.
Example of excellent style: Llama2 7B outperforms the original Llama model across multiple benchmarks.

Instruction:
{instruction}

Reference answer:
{reference}

Answer to evaluate:
{answer}

Reply with one JSON object with two keys, "accuracy" and "style". Each is an object with "analysis" (one or two
sentences explaining the score) and "score" (the whole number 1, 2 or 3).`;

export const RAG_JUDGE_SYSTEM = `You are an expert judge of retrieval-augmented answers. You check answers against the
retrieved context they were given and reply with JSON only.`;

export const RAG_JUDGE_TEMPLATE = `Evaluate a retrieval-augmented answer on two criteria.

1. Faithfulness: is every claim of the answer supported by the retrieved context?
1 (Poor): the answer states things the context does not support or contradicts it
2 (Good): mostly supported, with minor unsupported details
3 (Excellent): every claim is supported by the context

2. Context relevance: does the retrieved context contain what is needed to answer the question?
1 (Poor): the context is mostly unrelated to the question
2 (Good): the context is related but incomplete
3 (Excellent): the context is on topic and sufficient to answer the question

Question:
{question}

Retrieved context:
{contexts}

Answer to evaluate:
{answer}

Reply with one JSON object with two keys, "faithfulness" and "contextRelevance". Each is an object with "analysis"
(one or two sentences explaining the score) and "score" (the whole number 1, 2 or 3).`;

/** Version of both judge prompts: any edit to their text is a new version (part of the evaluation cache key). */
export const JUDGE_PROMPT_VERSION = `judge@1+${sha256(JUDGE_SYSTEM + JUDGE_TEMPLATE + RAG_JUDGE_SYSTEM + RAG_JUDGE_TEMPLATE).slice(0, 12)}`;

function fill(template: string, values: Record<string, string>): string {
  // One pass, so text inside a value that looks like a placeholder is never replaced.
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => values[name] ?? whole);
}

export function renderJudgePrompt(task: { instruction: string; reference: string; answer: string }): string {
  return fill(JUDGE_TEMPLATE, {
    instruction: task.instruction.trim(),
    reference: task.reference.trim() || '(none)',
    answer: task.answer.trim() || '(empty answer)',
  });
}

export function renderRagJudgePrompt(task: { question: string; answer: string; contexts: string[] }): string {
  const contexts = task.contexts.length
    ? task.contexts.map((text, i) => `[${i + 1}] ${text.trim()}`).join('\n\n')
    : '(no context was retrieved)';
  return fill(RAG_JUDGE_TEMPLATE, {
    question: task.question.trim(),
    contexts,
    answer: task.answer.trim() || '(empty answer)',
  });
}

export type JudgeFailureReason = 'invalid-json' | 'invalid-shape' | 'out-of-range' | 'llm-error';

export type JudgeOutcome<T> =
  | { ok: true; verdict: T; completions: number }
  | { ok: false; reason: JudgeFailureReason; detail: string; completions: number; retryable: boolean };

/** Why a parsed value is not a verdict: a score outside 1–3 is `out-of-range`, anything else `invalid-shape`. */
export function classifyVerdict<T>(
  schema: z.ZodType<T>,
  value: unknown,
): { ok: true; verdict: T } | { ok: false; reason: JudgeFailureReason; detail: string } {
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, verdict: parsed.data };
  const rangeIssue = parsed.error.issues.find(
    (issue) =>
      issue.path[issue.path.length - 1] === 'score' &&
      (issue.code === 'too_small' ||
        issue.code === 'too_big' ||
        issue.code === 'invalid_type' ||
        issue.code === 'invalid_value' ||
        issue.code === 'invalid_format'),
  );
  const detail = parsed.error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
    .join('; ');
  if (rangeIssue && (rangeIssue.code === 'too_small' || rangeIssue.code === 'too_big'))
    return { ok: false, reason: 'out-of-range', detail };
  // A non-integer score (2.5) is outside the scale too.
  if (rangeIssue && typeof getPath(value, rangeIssue.path) === 'number')
    return { ok: false, reason: 'out-of-range', detail };
  return { ok: false, reason: 'invalid-shape', detail };
}

function getPath(value: unknown, path: PropertyKey[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

export interface JudgeCallOptions {
  /** Completions per sample before an invalid answer counts as a failure. Default 2. */
  attempts?: number;
  temperature?: number;
  maxOutputTokens?: number;
  signal?: AbortSignal;
}

/** Asks the judge once (or again while its answer is invalid) and classifies the outcome. */
export async function judgeWith<T>(
  llm: LlmClient,
  request: { system: string; user: string; schema: z.ZodType<T>; schemaName: string },
  options: JudgeCallOptions = {},
): Promise<JudgeOutcome<T>> {
  const attempts = Math.max(1, options.attempts ?? 2);
  let last: { reason: JudgeFailureReason; detail: string } = { reason: 'invalid-json', detail: 'no answer' };
  for (let completion = 1; completion <= attempts; completion += 1) {
    let content;
    try {
      content = await llm.completeJson({
        system: request.system,
        user: request.user,
        schema: request.schema,
        schemaName: request.schemaName,
        temperature: options.temperature ?? 0,
        maxOutputTokens: options.maxOutputTokens ?? 512,
        signal: options.signal,
      });
    } catch (error) {
      const retryable = error instanceof LlmError ? error.retryable : false;
      return {
        ok: false,
        reason: 'llm-error',
        detail: (error as Error).message.slice(0, 300),
        completions: completion,
        retryable,
      };
    }
    if (!content.json.ok) {
      last = {
        reason: 'invalid-json',
        detail: `${content.json.error.slice(0, 200)} (finish: ${content.finishReason ?? 'unknown'})`,
      };
      continue;
    }
    const verdict = classifyVerdict(request.schema, content.json.value);
    if (verdict.ok) return { ok: true, verdict: verdict.verdict, completions: completion };
    last = { reason: verdict.reason, detail: verdict.detail };
  }
  return { ok: false, ...last, completions: attempts, retryable: false };
}

export interface JudgeTask {
  /** Stable sample id (the row's hash). */
  id: string;
  instruction: string;
  reference: string;
  answer: string;
}

export function judgeAnswer(
  llm: LlmClient,
  task: JudgeTask,
  options: JudgeCallOptions = {},
): Promise<JudgeOutcome<JudgeVerdict>> {
  return judgeWith(
    llm,
    { system: JUDGE_SYSTEM, user: renderJudgePrompt(task), schema: judgeSchema, schemaName: 'judgement' },
    options,
  );
}

export interface RagJudgeTask {
  id: string;
  question: string;
  answer: string;
  contexts: string[];
}

export function judgeRagSample(
  llm: LlmClient,
  task: RagJudgeTask,
  options: JudgeCallOptions = {},
): Promise<JudgeOutcome<RagJudgeVerdict>> {
  return judgeWith(
    llm,
    { system: RAG_JUDGE_SYSTEM, user: renderRagJudgePrompt(task), schema: ragJudgeSchema, schemaName: 'rag_judgement' },
    options,
  );
}

/** One judged sample as stored (the verdict, or the failure with its reason). */
export type Judgement<T> = { id: string } & JudgeOutcome<T>;

/**
 * Judges every task with at most `concurrency` judge calls in flight. `done` holds earlier results by id (a retried
 * activity): those are not asked again, unless they failed retryably. `onJudged` sees every new result.
 */
export async function judgeAll<Task extends { id: string }, T>(
  tasks: readonly Task[],
  judge: (task: Task) => Promise<JudgeOutcome<T>>,
  options: {
    concurrency?: number;
    done?: ReadonlyMap<string, Judgement<T>>;
    onJudged?: (judgement: Judgement<T>) => void;
  } = {},
): Promise<Judgement<T>[]> {
  const limit = pLimit(Math.max(1, options.concurrency ?? 4));
  return Promise.all(
    tasks.map((task) => {
      const earlier = options.done?.get(task.id);
      if (earlier && (earlier.ok || !earlier.retryable)) return Promise.resolve(earlier);
      return limit(async () => {
        const judgement: Judgement<T> = { id: task.id, ...(await judge(task)) };
        options.onJudged?.(judgement);
        return judgement;
      });
    }),
  );
}
