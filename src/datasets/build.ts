/**
 * Assembly: stored answers → quality filters → instruction dedupe → per-category seeded split → rows.
 * Pure and deterministic: the same answers and options give the same rows in the same order (answers are
 * processed in extract-id order, whatever order they are passed in).
 */
import { sha256, stableStringify } from '../domain/artifacts';
import type { DocumentCategory } from '../domain/documents';
import { dedupeByInstruction, DEFAULT_DEDUPE_OPTIONS, type DedupeOptions } from './dedupe';
import { checkItem, emptyDropCounts, type DropReason } from './filters';
import { DEFAULT_SPLIT_SEED, DEFAULT_TEST_FRACTION, splitByCategory } from './split';
import type {
  DatasetRow,
  DatasetType,
  ExtractAnswer,
  ExtractFailureReason,
  InstructionPair,
  PreferenceTriple,
  RowProvenance,
} from './types';

export interface BuildOptions {
  /** Default 0.1 (instruction) / 0.05 (preference). */
  testFraction?: number;
  /** Default 42. */
  seed?: number;
  dedupe?: Partial<DedupeOptions>;
}

export interface BuildStats {
  extracts: {
    total: number;
    answered: number;
    failed: number;
    failureReasons: Partial<Record<ExtractFailureReason, number>>;
    truncated: number;
  };
  samples: {
    /** samplesPerExtract × extracts. */
    requested: number;
    /** Items the model returned for answered extracts, valid or not. produced = kept + dropped. */
    produced: number;
    /** Asked for but not returned (short lists). */
    missing: number;
    kept: number;
    dropped: number;
  };
  /** Every dropped sample under exactly one reason. */
  drops: Record<DropReason, number>;
  usage: { completions: number; httpAttempts: number; inputTokens: number; outputTokens: number };
}

export interface BuiltDataset {
  type: DatasetType;
  model: string;
  promptVersion: string;
  split: { seed: number; testFraction: number };
  dedupe: DedupeOptions;
  train: DatasetRow[];
  test: DatasetRow[];
  provenance: RowProvenance[];
  perCategory: Record<string, { train: number; test: number }>;
  stats: BuildStats;
}

interface Candidate {
  id: string;
  row: DatasetRow;
  instruction: string;
  category: DocumentCategory;
  extract_id: string;
  document_id: string;
}

export function toRow(type: DatasetType, item: InstructionPair | PreferenceTriple): DatasetRow {
  if (type === 'instruction') {
    const pair = item as InstructionPair;
    return { instruction: pair.instruction, output: pair.answer };
  }
  const triple = item as PreferenceTriple;
  return { prompt: triple.instruction, chosen: triple.chosen, rejected: triple.rejected };
}

/** Row id: sha256 of the row's canonical JSON (hex, 32). */
export function rowId(row: DatasetRow): string {
  return sha256(stableStringify(row)).slice(0, 32);
}

function single(values: Iterable<string>, what: string): string {
  const unique = [...new Set(values)];
  if (unique.length > 1)
    throw new Error(`answers come from different ${what}s (${unique.join(', ')}): build one dataset per ${what}`);
  return unique[0] ?? '';
}

export function buildDataset(
  type: DatasetType,
  answers: readonly ExtractAnswer[],
  options: BuildOptions = {},
): BuiltDataset {
  const testFraction = options.testFraction ?? DEFAULT_TEST_FRACTION[type];
  const seed = options.seed ?? DEFAULT_SPLIT_SEED;
  const dedupe = { ...DEFAULT_DEDUPE_OPTIONS, ...(options.dedupe ?? {}) };
  const wrongType = answers.find((answer) => answer.type !== type);
  if (wrongType)
    throw new Error(`answer for extract ${wrongType.extract_id} is a ${wrongType.type} answer, not ${type}`);
  const sorted = [...answers].sort((a, b) => (a.extract_id < b.extract_id ? -1 : a.extract_id > b.extract_id ? 1 : 0));
  const stats: BuildStats = {
    extracts: { total: sorted.length, answered: 0, failed: 0, failureReasons: {}, truncated: 0 },
    samples: { requested: 0, produced: 0, missing: 0, kept: 0, dropped: 0 },
    drops: emptyDropCounts(),
    usage: { completions: 0, httpAttempts: 0, inputTokens: 0, outputTokens: 0 },
  };
  const candidates: Candidate[] = [];
  for (const answer of sorted) {
    stats.samples.requested += answer.requested;
    stats.usage.completions += answer.attempts;
    stats.usage.httpAttempts += answer.http_attempts;
    stats.usage.inputTokens += answer.input_tokens;
    stats.usage.outputTokens += answer.output_tokens;
    if (answer.truncated) stats.extracts.truncated += 1;
    if (answer.status !== 'answered') {
      stats.extracts.failed += 1;
      const reason = answer.failure?.reason ?? 'llm-error';
      stats.extracts.failureReasons[reason] = (stats.extracts.failureReasons[reason] ?? 0) + 1;
      continue;
    }
    stats.extracts.answered += 1;
    const returned = answer.items.length + answer.invalid_items;
    stats.samples.produced += returned;
    stats.samples.missing += Math.max(0, answer.requested - returned);
    stats.drops['invalid-item'] += answer.invalid_items;
    for (const item of answer.items) {
      const reason = checkItem(type, item, answer.extract_text);
      if (reason) {
        stats.drops[reason] += 1;
        continue;
      }
      const row = toRow(type, item);
      candidates.push({
        id: rowId(row),
        row,
        instruction: item.instruction,
        category: answer.category,
        extract_id: answer.extract_id,
        document_id: answer.document_id,
      });
    }
  }
  const deduped = dedupeByInstruction(candidates, (candidate) => candidate.instruction, dedupe);
  for (const dropped of deduped.dropped) stats.drops[dropped.reason] += 1;
  const split = splitByCategory(deduped.kept, { testFraction, seed, categoryOf: (c) => c.category, idOf: (c) => c.id });
  stats.samples.kept = deduped.kept.length;
  stats.samples.dropped = Object.values(stats.drops).reduce((sum, n) => sum + n, 0);
  const provenance = (part: 'train' | 'test', list: Candidate[]): RowProvenance[] =>
    list.map((c) => ({
      id: c.id,
      split: part,
      category: c.category,
      extract_id: c.extract_id,
      document_id: c.document_id,
    }));
  return {
    type,
    model: single(
      sorted.map((a) => a.model),
      'model',
    ),
    promptVersion: single(
      sorted.map((a) => a.prompt_version),
      'prompt version',
    ),
    split: { seed, testFraction },
    dedupe,
    train: split.train.map((c) => c.row),
    test: split.test.map((c) => c.row),
    provenance: [...provenance('train', split.train), ...provenance('test', split.test)],
    perCategory: split.perCategory,
    stats,
  };
}
