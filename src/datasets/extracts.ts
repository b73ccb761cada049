/**
 * Extracts: cleaned documents cut into ~1–2k-character spans on sentence boundaries, one prompt each (the
 * reference implementation's unit). Each extract is a verbatim slice of the document's cleaned content, so a
 * `chosen` passage can be checked against it and every sample traced back to its document.
 *
 * Sentences come from `Intl.Segmenter` (Unicode sentence boundaries; a line break always ends a unit, so headings
 * and list items stay whole), with common abbreviations ("Dr.", "e.g.", initials) not treated as ends. Fenced
 * code blocks are kept whole when they fit. Units are packed greedily up to `maxChars`; a span shorter than
 * `minChars` is only emitted when it cannot grow (end of document, or the next unit would overflow) and is at
 * least `minKeepChars` long — the reference silently dropped every span under 1,000 characters, which loses most
 * short posts. A unit longer than `maxChars` (a huge code block, a run-on paragraph) is split at whitespace.
 */
import type { CleanedDocument } from '../domain/documents';
import { sha256 } from '../domain/artifacts';
import type { Extract } from './types';

export interface ExtractOptions {
  /** Extracts grow until at least this many characters when the text allows. Default 1000. */
  minChars: number;
  /** Hard upper bound. Default 2000. */
  maxChars: number;
  /** Shorter leftovers are not worth a prompt. Default 400. */
  minKeepChars: number;
}

export const DEFAULT_EXTRACT_OPTIONS: Readonly<ExtractOptions> = { minChars: 1000, maxChars: 2000, minKeepChars: 400 };

/** Deterministic extract id: the same text of the same document always gets the same id. */
export function extractId(documentId: string, text: string): string {
  return sha256(`${documentId}\n${text}`).slice(0, 32);
}

interface Span {
  start: number;
  end: number;
}

const FENCE_RE = /^([ \t]*)(`{3,}|~{3,})[^\n]*\n[\s\S]*?^\1\2[^\n]*$/gm;
/** A segment ending like this is an abbreviation or an initial, not the end of a sentence. */
const ABBREVIATION_END_RE =
  /(?:^|[\s(["'])(?:Mr|Mrs|Ms|Dr|Prof|Sr|Jr|St|Mt|vs|etc|e\.g|i\.e|cf|al|Fig|Figs|Eq|No|Vol|approx|Inc|Ltd|[A-Z])\.[ \t]*$/;

let segmenter: Intl.Segmenter | undefined;

function sentenceSpans(text: string, offset: number): Span[] {
  segmenter ??= new Intl.Segmenter('en', { granularity: 'sentence' });
  const spans: Span[] = [];
  let pendingStart: number | undefined;
  for (const { segment, index } of segmenter.segment(text)) {
    const start = pendingStart ?? offset + index;
    const end = offset + index + segment.length;
    if (ABBREVIATION_END_RE.test(segment) && !segment.endsWith('\n') && end < offset + text.length) {
      pendingStart = start;
      continue;
    }
    pendingStart = undefined;
    spans.push({ start, end });
  }
  if (pendingStart !== undefined) spans.push({ start: pendingStart, end: offset + text.length });
  return spans;
}

/** Splits a span longer than `max` at whitespace (or hard, when a run has none) into pieces of at most `max`. */
function splitLong(content: string, span: Span, max: number): Span[] {
  const pieces: Span[] = [];
  let start = span.start;
  while (span.end - start > max) {
    const window = content.slice(start, start + max);
    const lastBreak = Math.max(window.lastIndexOf('\n'), window.lastIndexOf(' '), window.lastIndexOf('\t'));
    const cut = lastBreak > max / 4 ? start + lastBreak + 1 : start + max;
    pieces.push({ start, end: cut });
    start = cut;
  }
  if (start < span.end) pieces.push({ start, end: span.end });
  return pieces;
}

/** Units that are never cut: sentences (or lines) of prose, whole fenced code blocks. */
function units(content: string, max: number): Span[] {
  const spans: Span[] = [];
  let cursor = 0;
  for (const fence of content.matchAll(FENCE_RE)) {
    if (fence.index > cursor) spans.push(...sentenceSpans(content.slice(cursor, fence.index), cursor));
    // The fence plus its trailing newline is one unit.
    const end = fence.index + fence[0].length + (content[fence.index + fence[0].length] === '\n' ? 1 : 0);
    spans.push({ start: fence.index, end });
    cursor = end;
  }
  if (cursor < content.length) spans.push(...sentenceSpans(content.slice(cursor), cursor));
  return spans.flatMap((span) => (span.end - span.start > max ? splitLong(content, span, max) : [span]));
}

/** The span without leading/trailing whitespace. */
function trimSpan(content: string, span: Span): Span {
  let { start, end } = span;
  while (start < end && /\s/.test(content[start] ?? '')) start += 1;
  while (end > start && /\s/.test(content[end - 1] ?? '')) end -= 1;
  return { start, end };
}

/** Cuts one cleaned document into extracts. Pure and deterministic. */
export function splitIntoExtracts(doc: CleanedDocument, options: Partial<ExtractOptions> = {}): Extract[] {
  const { minChars, maxChars, minKeepChars } = { ...DEFAULT_EXTRACT_OPTIONS, ...options };
  if (!(minKeepChars <= minChars && minChars <= maxChars)) {
    throw new RangeError(
      `extract sizes must satisfy minKeepChars <= minChars <= maxChars (got ${minKeepChars}, ${minChars}, ${maxChars})`,
    );
  }
  const content = doc.content;
  const spans: Span[] = [];
  let current: Span | undefined;
  const emit = (span: Span) => {
    const trimmed = trimSpan(content, span);
    if (trimmed.end - trimmed.start >= minKeepChars) spans.push(trimmed);
  };
  for (const unit of units(content, maxChars)) {
    if (!current) {
      current = { ...unit };
      continue;
    }
    const grown = trimSpan(content, { start: current.start, end: unit.end });
    if (grown.end - grown.start <= maxChars) {
      current.end = unit.end;
    } else {
      emit(current);
      current = { ...unit };
    }
    // A span that reached the minimum and sits on a paragraph break is a natural place to stop.
    const length = trimSpan(content, current).end - trimSpan(content, current).start;
    if (
      length >= minChars &&
      content.slice(current.start, current.end).endsWith('\n\n') &&
      length >= (minChars + maxChars) / 2
    ) {
      emit(current);
      current = undefined;
    }
  }
  if (current) emit(current);
  return spans.map((span, index) => {
    const text = content.slice(span.start, span.end);
    return {
      id: extractId(doc.id, text),
      document_id: doc.id,
      category: doc.category,
      author_id: doc.author_id,
      author_full_name: doc.author_full_name,
      text,
      start: span.start,
      end: span.end,
      index,
    };
  });
}

export interface ExtractionStats {
  documents: number;
  extracts: number;
  /** Documents too short to give a single extract. */
  documentsWithoutExtracts: number;
  /** Non-whitespace characters of content not in any extract (short leftovers, short documents). */
  charactersSkipped: number;
}

/** Extracts of many documents, in document order, with what was left out. Duplicate extract ids are kept once. */
export function extractsFromDocuments(
  docs: readonly CleanedDocument[],
  options: Partial<ExtractOptions> = {},
): { extracts: Extract[]; stats: ExtractionStats } {
  const extracts: Extract[] = [];
  const seen = new Set<string>();
  let withoutExtracts = 0;
  let covered = 0;
  let total = 0;
  const visible = (text: string) => text.replace(/\s+/g, '').length;
  for (const doc of docs) {
    const own = splitIntoExtracts(doc, options);
    total += visible(doc.content);
    if (own.length === 0) withoutExtracts += 1;
    for (const extract of own) {
      if (seen.has(extract.id)) continue;
      seen.add(extract.id);
      covered += visible(extract.text);
      extracts.push(extract);
    }
  }
  return {
    extracts,
    stats: {
      documents: docs.length,
      extracts: extracts.length,
      documentsWithoutExtracts: withoutExtracts,
      charactersSkipped: Math.max(0, total - covered),
    },
  };
}
