/**
 * Plain, JSON-serialisable types of the dataset pipeline: extracts, generated items, per-extract answers and the
 * rows written to JSONL. Nothing here does I/O, so any of these can cross a Temporal activity boundary.
 */
import type { DocumentCategory } from '../domain/documents';

export const DATASET_TYPES = ['instruction', 'preference'] as const;
export type DatasetType = (typeof DATASET_TYPES)[number];

/** The artifact kind a dataset type is registered as. */
export const DATASET_ARTIFACT_KIND = {
  instruction: 'instruction-dataset',
  preference: 'preference-dataset',
} as const satisfies Record<DatasetType, string>;

/** A 1–2k-character span of a cleaned document, on sentence boundaries: the unit one prompt is made from. */
export interface Extract {
  /** sha256(document id + "\n" + text), hex, 32 chars: the same text of the same document is the same extract. */
  id: string;
  document_id: string;
  category: DocumentCategory;
  author_id: string;
  author_full_name: string;
  /** Verbatim `document.content.slice(start, end)`. */
  text: string;
  start: number;
  end: number;
  /** 0-based position of the extract within its document. */
  index: number;
}

/** One instruction/answer pair as the model returns it. */
export interface InstructionPair {
  instruction: string;
  answer: string;
}

/** One preference triple: `chosen` is a verbatim passage of the extract, `rejected` a generated answer. */
export interface PreferenceTriple {
  instruction: string;
  rejected: string;
  chosen: string;
}

export type GeneratedItem = InstructionPair | PreferenceTriple;

/** Why an extract has no usable answer after its attempts. */
export type ExtractFailureReason =
  /** The reply held no parseable JSON. */
  | 'malformed-json'
  /** JSON, but no list of items of the expected shape. */
  | 'no-item-list'
  /** A list, but not one item in it passed validation. */
  | 'no-valid-items'
  /** The LLM request itself failed (after the transport retries). */
  | 'llm-error';

/**
 * What the LLM answered for one extract: the unit of idempotency. Stored per extract id (see AnswerStore), so an
 * activity retry or a restarted run never pays for the same extract twice.
 */
export interface ExtractAnswer {
  extract_id: string;
  document_id: string;
  category: DocumentCategory;
  /** The extract text exactly as it was sent (after token-budget truncation); filters check `chosen` against it. */
  extract_text: string;
  truncated: boolean;
  type: DatasetType;
  prompt_version: string;
  model: string;
  status: 'answered' | 'failed';
  /** Items that passed schema validation, in the model's order. */
  items: GeneratedItem[];
  /** Items that failed schema validation (dropped as `invalid-item`). */
  invalid_items: number;
  /** Why items failed validation (`field: message` → count). */
  invalid_reasons: Record<string, number>;
  /** Items asked for. */
  requested: number;
  /** Completions made for this extract (1 = answered first time). */
  attempts: number;
  /** HTTP requests sent for it, transport retries included. */
  http_attempts: number;
  input_tokens: number;
  output_tokens: number;
  /** Set when status is 'failed'. */
  failure?: {
    reason: ExtractFailureReason;
    message: string;
    /** True for transport failures (timeouts, 429, 5xx): worth another run later; such answers are not cached. */
    retryable: boolean;
  };
}

/** A training row of the instruction dataset (Hugging Face / Alpaca-style columns). */
export interface InstructionRow {
  instruction: string;
  output: string;
}

/** A training row of the preference dataset (TRL DPO columns). */
export interface PreferenceRow {
  prompt: string;
  chosen: string;
  rejected: string;
}

export type DatasetRow = InstructionRow | PreferenceRow;

/** Where a row came from: written to `provenance.jsonl`, one line per row, in the same order as the splits. */
export interface RowProvenance {
  /** sha256 of the row's canonical JSON, hex 32. */
  id: string;
  split: 'train' | 'test';
  category: DocumentCategory;
  extract_id: string;
  document_id: string;
}
