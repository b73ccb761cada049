/**
 * Zod schemas of what the LLM must return and of the rows we write.
 *
 * Two levels: the *response* schema (sent to the server as `response_format: json_schema`, deliberately plain —
 * strings and a fixed-length list — so strict structured-output servers accept it) and the *item* schemas, which
 * validate every item on its own: one bad item costs that item only, never the extract's other items.
 */
import { z } from 'zod';
import { PROMPT_TEMPLATES } from './prompts';
import type { DatasetType, GeneratedItem } from './types';

/** An instruction: a real question or task, not a word or a paragraph. */
const instructionText = z
  .string()
  .trim()
  .min(10, 'instruction shorter than 10 characters')
  .max(1000, 'instruction longer than 1000 characters');
const answerText = z.string().trim().min(1, 'empty').max(8000, 'longer than 8000 characters');

export const instructionPairSchema = z.object({ instruction: instructionText, answer: answerText });
export const preferenceTripleSchema = z.object({
  instruction: instructionText,
  rejected: answerText,
  chosen: answerText,
});

export const ITEM_SCHEMAS = {
  instruction: instructionPairSchema,
  preference: preferenceTripleSchema,
} as const;

/** The answer shape sent as JSON schema: `{pairs: [...n]}` or `{triples: [...n]}`. */
export function responseSchema(type: DatasetType, n: number): z.ZodType {
  const item =
    type === 'instruction'
      ? z.object({ instruction: z.string(), answer: z.string() })
      : z.object({ instruction: z.string(), rejected: z.string(), chosen: z.string() });
  const list = z.array(item).min(n).max(n);
  return type === 'instruction' ? z.object({ pairs: list }) : z.object({ triples: list });
}

export type ParsedItems =
  | { ok: true; items: GeneratedItem[]; invalid: number; invalidReasons: Record<string, number> }
  | { ok: false; reason: 'no-item-list'; message: string };

/** The item list in a parsed answer: under its key, or the answer itself when it is a list, or its only list. */
function findList(type: DatasetType, value: unknown): unknown[] | undefined {
  if (Array.isArray(value)) return value as unknown[];
  if (value === null || typeof value !== 'object') return undefined;
  const record = value as Record<string, unknown>;
  const expected = record[PROMPT_TEMPLATES[type].listKey];
  if (Array.isArray(expected)) return expected as unknown[];
  const lists = Object.values(record).filter((v): v is unknown[] => Array.isArray(v));
  return lists.length === 1 ? lists[0] : undefined;
}

/** Validates every item of an answer on its own. */
export function parseItems(type: DatasetType, value: unknown): ParsedItems {
  const list = findList(type, value);
  if (!list) {
    return { ok: false, reason: 'no-item-list', message: `expected {"${PROMPT_TEMPLATES[type].listKey}": [...]}` };
  }
  const schema = ITEM_SCHEMAS[type];
  const items: GeneratedItem[] = [];
  const invalidReasons: Record<string, number> = {};
  let invalid = 0;
  for (const candidate of list) {
    const parsed = schema.safeParse(candidate);
    if (parsed.success) {
      items.push(parsed.data);
    } else {
      invalid += 1;
      const issue = parsed.error.issues[0];
      const key = issue ? `${issue.path.join('.') || 'item'}: ${issue.message}` : 'invalid';
      invalidReasons[key] = (invalidReasons[key] ?? 0) + 1;
    }
  }
  return { ok: true, items, invalid, invalidReasons };
}

/** A row of `train.jsonl`/`test.jsonl` of the instruction dataset: exactly these columns. */
export const instructionRowSchema = z.strictObject({ instruction: z.string().min(1), output: z.string().min(1) });
/** A row of the preference dataset: exactly these columns. */
export const preferenceRowSchema = z.strictObject({
  prompt: z.string().min(1),
  chosen: z.string().min(1),
  rejected: z.string().min(1),
});

export const ROW_SCHEMAS = {
  instruction: instructionRowSchema,
  preference: preferenceRowSchema,
} as const;
