/**
 * Quality filters: per-sample rules that drop a generated item with a named reason. Every dropped sample is
 * counted under exactly one reason (the first rule it breaks, in the order below), so
 * `produced = kept + Σ drops` always holds.
 */
import type { DatasetType, GeneratedItem, InstructionPair, PreferenceTriple } from './types';

/** Every reason a sample can be dropped for, in the order the rules run. */
export const DROP_REASONS = [
  /** Failed the item schema (missing field, empty, too long) — counted at generation. */
  'invalid-item',
  /** The instruction talks about "the context/extract/text/passage" instead of the subject. */
  'instruction-mentions-source',
  /** Preference: `chosen` is not a verbatim passage of the extract (after whitespace normalisation). */
  'chosen-not-verbatim',
  /** Preference: `chosen` is shorter than 100 characters. */
  'chosen-too-short',
  /** Preference: `chosen` does not start with a capital letter. */
  'chosen-not-capitalized',
  /** Preference: `chosen` does not end with terminal punctuation. */
  'chosen-no-terminal-punctuation',
  /** Preference: `rejected` is the same text as `chosen`. */
  'rejected-equals-chosen',
  /** Same instruction (after normalisation) as an earlier sample. */
  'duplicate-instruction',
  /** Instruction nearly the same as an earlier sample's (word and character-shingle Jaccard, see dedupe.ts). */
  'near-duplicate-instruction',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export function emptyDropCounts(): Record<DropReason, number> {
  return Object.fromEntries(DROP_REASONS.map((reason) => [reason, 0])) as Record<DropReason, number>;
}

export const MIN_CHOSEN_CHARS = 100;

/** Collapses every run of whitespace to one space and trims. */
export function normalizeWhitespace(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/**
 * Whether `passage` occurs in `extract` verbatim, up to whitespace (line breaks vs spaces, runs of spaces) and
 * typographic quote/dash variants a model may swap in. Markdown emphasis markers are not forgiven: `**bold**`
 * quoted as `bold` is not verbatim.
 */
export function isVerbatim(passage: string, extract: string): boolean {
  const canon = (text: string) =>
    normalizeWhitespace(
      text
        .normalize('NFKC')
        .replace(/[\u2018\u2019\u201A\u201B]/g, "'")
        .replace(/[\u201C\u201D\u201E\u201F]/g, '"')
        .replace(/[\u2013\u2014]/g, '-'),
    );
  const needle = canon(passage);
  return needle.length > 0 && canon(extract).includes(needle);
}

/**
 * Phrases that refer to the source instead of the subject. "context", "extract", "excerpt", "passage" and
 * "snippet" after a determiner always count (but "the context window/length/size" does not); "text", "article",
 * "document" and "author" only in phrases that point at the source ("according to the text", "the article says",
 * "the provided document"), because "How should the text be split into chunks?" is a fine question.
 */
const MENTIONS_SOURCE_RES = [
  /\b(?:the|this|that|these|given|provided|above|following|attached|preceding)\s+(?:(?:given|provided|above|following|attached|preceding|original)\s+)?(?:context|extract|excerpt|passage|snippet)s?\b(?![\s-]*(?:window|length|size|free|manager|switch|switching|menu|vector|variable|clue)s?\b)/i,
  /\b(?:in|from|according\s+to|based\s+on|within|using)\s+(?:the|this)\s+(?:(?:given|provided|above|following|preceding)\s+)?(?:text|article|document)\b(?![\s-]*(?:box|field|file|editor|encoder|column|embedding|chunk|classification|generation|store|database|loader|model)s?\b)/i,
  /\b(?:the|this)\s+(?:text|article|document|author)\s+(?:above|below|provided|given|says?|said|mentions?|mentioned|describes?|described|states?|stated|suggests?|suggested|discuss(?:es|ed)?|explains?|explained|argues?|argued|claims?|claimed|thinks?|recommends?|notes?|highlights?)\b/i,
  /\b(?:given|provided|above|following|preceding)\s+(?:text|article|document)\b/i,
  /\baccording\s+to\s+the\s+(?:author|writer)\b/i,
];

export function mentionsSource(instruction: string): boolean {
  return MENTIONS_SOURCE_RES.some((re) => re.test(instruction));
}

/** Starts with an uppercase letter (any script). */
export function startsWithCapital(text: string): boolean {
  return /^\p{Lu}/u.test(text.trim());
}

/** Ends with . ! ? or … , optionally followed by closing quotes or brackets. */
export function endsWithTerminalPunctuation(text: string): boolean {
  return /[.!?…]["'”’)\]]*$/.test(text.trim());
}

export function checkInstructionPair(pair: InstructionPair): DropReason | null {
  if (mentionsSource(pair.instruction)) return 'instruction-mentions-source';
  return null;
}

export function checkPreferenceTriple(triple: PreferenceTriple, extractText: string): DropReason | null {
  if (mentionsSource(triple.instruction)) return 'instruction-mentions-source';
  if (!isVerbatim(triple.chosen, extractText)) return 'chosen-not-verbatim';
  if (triple.chosen.trim().length < MIN_CHOSEN_CHARS) return 'chosen-too-short';
  if (!startsWithCapital(triple.chosen)) return 'chosen-not-capitalized';
  if (!endsWithTerminalPunctuation(triple.chosen)) return 'chosen-no-terminal-punctuation';
  if (normalizeWhitespace(triple.rejected).toLowerCase() === normalizeWhitespace(triple.chosen).toLowerCase())
    return 'rejected-equals-chosen';
  return null;
}

/** The first rule an item breaks, or null when it passes. */
export function checkItem(type: DatasetType, item: GeneratedItem, extractText: string): DropReason | null {
  return type === 'instruction'
    ? checkInstructionPair(item as InstructionPair)
    : checkPreferenceTriple(item as PreferenceTriple, extractText);
}
