/**
 * Chunking: cleaned documents → chunks that fit the embedding model's window.
 *
 * Sizes are counted with the model's own tokenizer (a {@link TokenCounter}), so every chunk has at most
 * `maxTokens` content tokens (≤ 254 = 256 minus [CLS]/[SEP]); nothing is silently truncated by the embedder.
 *
 * How: the text is cut into atoms — sentences, list items and lines of prose; lines of code; the "# File:" header
 * of each repository file — each tagged with how strong the boundary before it is (file > section heading >
 * paragraph/code block > line/list item > sentence > "sticky" (right after a heading or decorator) > word >
 * character). Atoms longer than the window are split into words, and words into characters, only then. Chunk
 * boundaries are then chosen by dynamic programming over the atoms, minimising a cost made of the strength of the
 * boundaries cut and the distance of each chunk from the target size (with a steep penalty under `minTokens`), so
 * chunks end at headings and paragraphs when they can, tiny trailing pieces are absorbed by rebalancing rather
 * than dropped, and code is never cut inside a line unless a single line is longer than the window. Overlap is
 * whole sentences/lines from the end of the previous chunk, only when a chunk starts inside a paragraph or code
 * block, and only as far as the window allows. Every chunk is a verbatim slice of the cleaned text (`start`/`end`), so nothing is lost or rewritten.
 *
 * Pure and synchronous given the counter: callable from an activity or a worker thread.
 */
import { createHash } from 'node:crypto';
import { v5 as uuidv5 } from 'uuid';
import type {
  ArticleChunk,
  Chunk,
  ChunkMetadata,
  CleanedDocument,
  DocumentCategory,
  PostChunk,
  RepositoryChunk,
} from '../domain/documents';
import { EMBEDDING_MAX_TOKENS, SPECIAL_TOKENS } from './model-files';
import type { TokenCounter } from './tokenizer';

/**
 * Namespace of chunk ids: a fixed random UUID chosen once for this project. Chunk id =
 * UUIDv5(`${documentId}:${sha256hex(content)}`, CHUNK_ID_NAMESPACE). Never change it: ids in the vector store
 * would all change.
 */
export const CHUNK_ID_NAMESPACE = '183782d9-44ba-44b5-b92d-90b66f552793';

/** Deterministic chunk id: the same document and chunk text always give the same id (idempotent upserts). */
export function chunkId(documentId: string, content: string): string {
  const digest = createHash('sha256').update(content, 'utf8').digest('hex');
  return uuidv5(`${documentId}:${digest}`, CHUNK_ID_NAMESPACE);
}

/** Most content tokens a chunk may have: the model window minus [CLS] and [SEP]. */
export const MAX_CONTENT_TOKENS = EMBEDDING_MAX_TOKENS - SPECIAL_TOKENS;

export interface ChunkingSettings {
  /** Hard cap on content tokens per chunk; at most {@link MAX_CONTENT_TOKENS}. */
  maxTokens: number;
  /** Preferred chunk size in tokens. */
  targetTokens: number;
  /** Chunks below this are strongly avoided (merged or rebalanced with a neighbour). */
  minTokens: number;
  /** Tokens of whole sentences/lines repeated from the previous chunk when a chunk starts inside a paragraph or
   * code block. */
  overlapTokens: number;
}

/**
 * Defaults per category, in the spirit of the reference implementation (posts 250 chars/25 overlap,
 * articles 1000–2000 chars sentence-packed, repositories 1500 chars/100 overlap) but measured in tokens and
 * capped by the model window (1000–2000 characters of English is 220–450 tokens: the reference's article chunks
 * were silently truncated at 256).
 */
export const DEFAULT_CHUNKING_SETTINGS: Readonly<Record<DocumentCategory, Readonly<ChunkingSettings>>> = {
  posts: { maxTokens: 128, targetTokens: 96, minTokens: 24, overlapTokens: 16 },
  articles: { maxTokens: 254, targetTokens: 200, minTokens: 64, overlapTokens: 32 },
  repositories: { maxTokens: 254, targetTokens: 220, minTokens: 48, overlapTokens: 24 },
};

const STRATEGY: Record<DocumentCategory, string> = {
  posts: 'posts/paragraph-packed',
  articles: 'articles/sentence-packed',
  repositories: 'repositories/code-aware',
};

export function resolveChunkingSettings(
  category: DocumentCategory,
  overrides: Partial<ChunkingSettings> = {},
): ChunkingSettings {
  const s = { ...DEFAULT_CHUNKING_SETTINGS[category], ...overrides };
  if (!Number.isInteger(s.maxTokens) || s.maxTokens < 8 || s.maxTokens > MAX_CONTENT_TOKENS) {
    throw new RangeError(`maxTokens must be an integer in [8, ${MAX_CONTENT_TOKENS}], got ${s.maxTokens}`);
  }
  if (s.minTokens < 0 || s.minTokens > s.targetTokens || s.targetTokens > s.maxTokens) {
    throw new RangeError(`need 0 <= minTokens <= targetTokens <= maxTokens, got ${JSON.stringify(s)}`);
  }
  if (s.overlapTokens < 0 || s.overlapTokens >= s.maxTokens) {
    throw new RangeError(`overlapTokens must be in [0, maxTokens), got ${s.overlapTokens}`);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// Atoms
// ---------------------------------------------------------------------------------------------------------------

/** Strength of the boundary before an atom (higher = better place to cut). */
const BRK = { CHAR: 0, WORD: 1, STICKY: 2, SENTENCE: 3, LINE: 4, BLOCK: 5, SECTION: 6, FILE: 7 } as const;
/** Cost of cutting a chunk at a boundary of each strength (index = strength). */
const BREAK_COST = [80, 30, 12, 5, 3, 1, 0, 0];
/** Cost of each section heading inside a chunk (not at its start): chunks prefer to begin at sections. */
const CROSS_SECTION_COST = 4;

/** A minimal unit of text: `text.slice(start, end)`, trimmed, never empty. */
export interface Atom {
  start: number;
  end: number;
  tokens: number;
  brk: number;
}

const FENCE_RE = /^ {0,3}(`{3,}|~{3,})/;
const HEADING_RE = /^ {0,3}#{1,6}\s/;
const LIST_RE = /^\s*([*+-]|\d{1,3}[.)])\s+/;
const CODE_DEF_RE =
  /^(export\s+)?(default\s+)?(async\s+)?(def|class|function|func|fn|pub|impl|struct|enum|interface|type|trait|module|package|const|let|var|public|private|protected|static|final|object|case class|@\w)/;
const PROSE_FILE_RE = /\.(md|markdown|mdx|rst|txt|adoc|org)$/i;

interface Line {
  start: number;
  end: number;
  text: string;
}

function linesOf(text: string, from: number, to: number): Line[] {
  const out: Line[] = [];
  let pos = from;
  while (pos < to) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0 || nl > to) nl = to;
    out.push({ start: pos, end: nl, text: text.slice(pos, nl) });
    pos = nl + 1;
  }
  return out;
}

/** Trimmed span of [start, end) in text, or null when it is only whitespace. */
function trimSpan(text: string, start: number, end: number): [number, number] | null {
  while (start < end && /\s/.test(text[start]!)) start++;
  while (end > start && /\s/.test(text[end - 1]!)) end--;
  return start < end ? [start, end] : null;
}

const segmenter = new Intl.Segmenter('en', { granularity: 'sentence' });

class Atomizer {
  readonly atoms: Atom[] = [];

  constructor(
    private readonly text: string,
    private readonly counter: TokenCounter,
    private readonly maxTokens: number,
  ) {}

  /**
   * Adds [start, end) as one atom, splitting it into words (then characters) if it exceeds the window. Code keeps
   * its indentation (`keepIndent`), so chunks of code start at the beginning of a line.
   */
  add(start: number, end: number, brk: number, keepIndent = false): void {
    const span = trimSpan(this.text, start, end);
    if (!span) return;
    const s = keepIndent ? start : span[0];
    const e = span[1];
    const tokens = this.counter.count(this.text.slice(s, e));
    if (tokens <= this.maxTokens) {
      this.atoms.push({ start: s, end: e, tokens, brk });
      return;
    }
    if (brk > BRK.WORD) {
      const words = [...this.text.slice(s, e).matchAll(/\S+/g)];
      if (words.length > 1) {
        words.forEach((w, i) => this.add(s + w.index, s + w.index + w[0].length, i === 0 ? brk : BRK.WORD));
        return;
      }
    }
    this.addChars(s, e, brk);
  }

  /** A single word longer than the window: cut at the longest prefix that fits (binary search on length). */
  private addChars(start: number, end: number, brk: number): void {
    let s = start;
    let first = true;
    while (s < end) {
      let lo = s + 1;
      let hi = end;
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        if (this.counter.count(this.text.slice(s, mid)) <= this.maxTokens) lo = mid;
        else hi = mid - 1;
      }
      // Do not split a UTF-16 surrogate pair.
      if (lo < end && /[\uDC00-\uDFFF]/.test(this.text[lo]!) && lo - 1 > s) lo--;
      this.atoms.push({
        start: s,
        end: lo,
        tokens: this.counter.count(this.text.slice(s, lo)),
        brk: first ? brk : BRK.CHAR,
      });
      first = false;
      s = lo;
    }
  }

  /** A prose line: one atom per sentence (only cut where there is whitespace, so no word is ever split). */
  addSentences(line: Line, brk: number): void {
    let first = true;
    let from = 0;
    for (const seg of segmenter.segment(line.text)) {
      const end = seg.index + seg.segment.length;
      if (end < line.text.length && !/\s$/.test(seg.segment)) continue; // e.g. `..."}` — not a real boundary
      if (line.text.slice(from, end).trim() !== '') {
        this.add(line.start + from, line.start + end, first ? brk : BRK.SENTENCE);
        first = false;
      }
      from = end;
    }
  }

  /** Code lines [from, to): one atom per line; blank lines and top-level definitions make stronger boundaries. */
  addCode(from: number, to: number, firstBrk: number): void {
    let afterBlank = false;
    let prev = '';
    let first = true;
    for (const line of linesOf(this.text, from, to)) {
      if (line.text.trim() === '') {
        afterBlank = true;
        continue;
      }
      let brk: number;
      const topLevel = !/^\s/.test(line.text);
      if (first) brk = firstBrk;
      else if (/^\s*@/.test(prev) || /[([{,\\]\s*$/.test(prev))
        brk = BRK.STICKY; // decorator or open bracket
      else if (afterBlank) brk = topLevel ? BRK.BLOCK : BRK.LINE;
      else if (topLevel && CODE_DEF_RE.test(line.text)) brk = BRK.BLOCK;
      else brk = BRK.SENTENCE;
      this.add(line.start, line.end, brk, true);
      prev = line.text;
      afterBlank = false;
      first = false;
    }
  }

  /** Markdown prose [from, to): headings, paragraphs, list items, tables, fenced code blocks. */
  addProse(from: number, to: number, firstBrk: number): void {
    const lines = linesOf(this.text, from, to);
    let next: number = firstBrk; // strength for the next block's first atom
    let inBlock = false;
    let i = 0;
    while (i < lines.length) {
      const line = lines[i]!;
      if (line.text.trim() === '') {
        if (inBlock && next < BRK.BLOCK) next = BRK.BLOCK;
        inBlock = false;
        i++;
        continue;
      }
      const fence = FENCE_RE.exec(line.text);
      if (fence) {
        const marker = fence[1]!;
        let j = i + 1;
        while (j < lines.length && !lines[j]!.text.trimStart().startsWith(marker)) j++;
        const close = Math.min(j, lines.length - 1);
        const openBrk = inBlock ? BRK.LINE : next;
        this.add(line.start, line.end, openBrk);
        if (j > i + 1) this.addCode(lines[i + 1]!.start, lines[j - 1]!.end, BRK.STICKY);
        if (j < lines.length) this.add(lines[close]!.start, lines[close]!.end, BRK.STICKY);
        next = BRK.BLOCK;
        inBlock = false;
        i = j + 1;
        continue;
      }
      if (HEADING_RE.test(line.text)) {
        this.add(line.start, line.end, Math.max(next, BRK.SECTION));
        next = BRK.STICKY; // keep a heading with what follows it
        inBlock = false;
        i++;
        continue;
      }
      const brk = inBlock ? (next === BRK.STICKY ? BRK.STICKY : BRK.LINE) : next;
      // List items and table rows start at LINE strength like any line inside a block.
      this.addSentences(line, LIST_RE.test(line.text) && inBlock && brk === BRK.LINE ? BRK.LINE : brk);
      inBlock = true;
      next = BRK.LINE;
      i++;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Packing
// ---------------------------------------------------------------------------------------------------------------

export interface Span {
  start: number;
  end: number;
  /** Estimated tokens (sum of the atoms'); chunkDocument re-counts the final text. */
  tokens: number;
  /** Index range of the atoms in the chunk (overlap excluded). */
  first: number;
  last: number;
  /** Index of the first atom including overlap. */
  overlapFirst: number;
}

function sizeCost(size: number, s: ChunkingSettings): number {
  let cost = 1; // per chunk: fewer chunks when otherwise equal
  if (size < s.minTokens) cost += 30 + (10 * (s.minTokens - size)) / Math.max(1, s.minTokens);
  if (size < s.targetTokens) cost += 10 * ((s.targetTokens - size) / s.targetTokens) ** 2;
  else cost += 3 * ((size - s.targetTokens) / (s.maxTokens - s.targetTokens + 1)) ** 2;
  return cost;
}

/**
 * Chooses chunk boundaries over atoms by dynamic programming (see the module comment). Atoms whose boundary is
 * at least `hardBreak` strong always start a new chunk (repository files are never mixed in one chunk).
 */
export function packAtoms(atoms: Atom[], s: ChunkingSettings, hardBreak = Infinity): Span[] {
  const spans: Span[] = [];
  let groupStart = 0;
  for (let k = 1; k <= atoms.length; k++) {
    if (k === atoms.length || atoms[k]!.brk >= hardBreak) {
      for (const span of packGroup(atoms.slice(groupStart, k), s)) {
        spans.push({
          ...span,
          first: span.first + groupStart,
          last: span.last + groupStart,
          overlapFirst: span.overlapFirst + groupStart,
        });
      }
      groupStart = k;
    }
  }
  return spans;
}

function packGroup(atoms: Atom[], s: ChunkingSettings): Span[] {
  const n = atoms.length;
  if (n === 0) return [];
  const prefix = new Float64Array(n + 1);
  const sections = new Int32Array(n + 1); // sections[k] = section-strength atoms among atoms[0..k)
  for (let i = 0; i < n; i++) {
    prefix[i + 1] = prefix[i]! + atoms[i]!.tokens;
    sections[i + 1] = sections[i]! + (atoms[i]!.brk >= BRK.SECTION ? 1 : 0);
  }
  const best = new Float64Array(n + 1).fill(Infinity);
  const from = new Int32Array(n + 1);
  best[0] = 0;
  for (let j = 1; j <= n; j++) {
    const cut = j < n ? BREAK_COST[atoms[j]!.brk]! : 0;
    for (let i = j - 1; i >= 0; i--) {
      const size = prefix[j]! - prefix[i]!;
      if (size > s.maxTokens && i < j - 1) break;
      const crossed = sections[j]! - sections[i + 1]!;
      const cost = best[i]! + sizeCost(size, s) + cut + CROSS_SECTION_COST * crossed;
      if (cost < best[j]!) {
        best[j] = cost;
        from[j] = i;
      }
    }
  }
  const ranges: Array<[number, number]> = [];
  for (let j = n; j > 0; j = from[j]!) ranges.unshift([from[j]!, j]);

  const spans: Span[] = [];
  for (let k = 0; k < ranges.length; k++) {
    const [i, j] = ranges[k]!;
    let size = prefix[j]! - prefix[i]!;
    let o = i;
    // Overlap: whole sentences/lines from the previous chunk, only when this chunk starts inside a paragraph or
    // code block (at a heading, paragraph, function or file boundary the previous text is another topic).
    if (k > 0 && s.overlapTokens > 0 && atoms[i]!.brk < BRK.BLOCK) {
      const prevFirst = ranges[k - 1]![0];
      const room = Math.min(s.overlapTokens, s.maxTokens - size);
      let candidate = i;
      let extra = 0;
      for (let a = i - 1; a > prevFirst; a--) {
        extra += atoms[a]!.tokens;
        if (extra > room) break;
        if (atoms[a]!.brk >= BRK.SENTENCE) candidate = a;
      }
      o = candidate;
      size += prefix[i]! - prefix[o]!;
    }
    spans.push({
      start: atoms[o]!.start,
      end: atoms[j - 1]!.end,
      tokens: size,
      first: i,
      last: j - 1,
      overlapFirst: o,
    });
  }
  return spans;
}

/** Atoms of a cleaned document (prose, or per-file code/prose for repositories). */
export function atomize(doc: CleanedDocument, counter: TokenCounter, maxTokens: number): Atom[] {
  const atomizer = new Atomizer(doc.content, counter, maxTokens);
  if (doc.category === 'repositories' && doc.files.length > 0) {
    for (const file of doc.files) {
      const headerEnd = doc.content.indexOf('\n', file.start);
      const bodyStart = headerEnd < 0 || headerEnd > file.end ? file.end : headerEnd + 1;
      atomizer.add(file.start, bodyStart, BRK.FILE);
      if (PROSE_FILE_RE.test(file.path)) atomizer.addProse(bodyStart, file.end, BRK.STICKY);
      else atomizer.addCode(bodyStart, file.end, BRK.STICKY);
    }
  } else if (doc.category === 'repositories') {
    atomizer.addCode(0, doc.content.length, BRK.FILE);
  } else {
    atomizer.addProse(0, doc.content.length, BRK.SECTION);
  }
  return atomizer.atoms;
}

/** Splits a text into token-bounded spans (the core of {@link chunkDocument}, for callers without a document). */
export function splitText(
  text: string,
  counter: TokenCounter,
  settings: ChunkingSettings,
  kind: 'prose' | 'code' = 'prose',
): Span[] {
  const atomizer = new Atomizer(text, counter, settings.maxTokens);
  if (kind === 'code') atomizer.addCode(0, text.length, BRK.SECTION);
  else atomizer.addProse(0, text.length, BRK.SECTION);
  return fitSpans(text, atomizer.atoms, counter, settings);
}

/**
 * Packs atoms and checks each span with the real tokenizer. Token counts of atoms joined by whitespace add up
 * exactly under WordPiece; the check only matters for pieces of a word cut at character level. A span that
 * still comes out too long loses its overlap, then is re-packed with a tighter cap.
 */
function fitSpans(
  text: string,
  atoms: Atom[],
  counter: TokenCounter,
  s: ChunkingSettings,
  hardBreak = Infinity,
): Span[] {
  const out: Span[] = [];
  for (const span of packAtoms(atoms, s, hardBreak)) {
    let real = counter.count(text.slice(span.start, span.end));
    if (real <= s.maxTokens) {
      out.push({ ...span, tokens: real });
      continue;
    }
    const noOverlap = { ...span, start: atoms[span.first]!.start, overlapFirst: span.first };
    real = counter.count(text.slice(noOverlap.start, noOverlap.end));
    if (real <= s.maxTokens) {
      out.push({ ...noOverlap, tokens: real });
      continue;
    }
    const sub = atoms.slice(span.first, span.last + 1);
    const tighter = { ...s, maxTokens: Math.max(1, s.maxTokens - (real - s.maxTokens) - 1), overlapTokens: 0 };
    tighter.targetTokens = Math.min(tighter.targetTokens, tighter.maxTokens);
    tighter.minTokens = Math.min(tighter.minTokens, tighter.targetTokens);
    if (sub.length === 1) throw new Error(`cannot fit a single atom of ${real} tokens into ${s.maxTokens}`);
    for (const inner of fitSpans(text, sub, counter, tighter)) {
      out.push({
        ...inner,
        first: inner.first + span.first,
        last: inner.last + span.first,
        overlapFirst: inner.overlapFirst + span.first,
      });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Documents → chunks
// ---------------------------------------------------------------------------------------------------------------

export type ChunkingOverrides = Partial<Record<DocumentCategory, Partial<ChunkingSettings>>>;

/**
 * Chunks one cleaned document. Returns chunks in document order with deterministic ids; a chunk whose text is
 * identical to an earlier chunk of the same document (same id) is left out.
 */
export function chunkDocument(doc: CleanedDocument, counter: TokenCounter, overrides: ChunkingOverrides = {}): Chunk[] {
  const settings = resolveChunkingSettings(doc.category, overrides[doc.category]);
  const atoms = atomize(doc, counter, settings.maxTokens);
  const spans = fitSpans(doc.content, atoms, counter, settings, doc.category === 'repositories' ? BRK.FILE : Infinity);
  const metadata: ChunkMetadata = {
    strategy: STRATEGY[doc.category],
    max_tokens: settings.maxTokens,
    target_tokens: settings.targetTokens,
    overlap_tokens: settings.overlapTokens,
    tokenizer: counter.name,
  };
  const seen = new Set<string>();
  const chunks: Chunk[] = [];
  for (const span of spans) {
    const content = doc.content.slice(span.start, span.end);
    const id = chunkId(doc.id, content);
    if (seen.has(id)) continue;
    seen.add(id);
    const base = {
      id,
      document_id: doc.id,
      platform: doc.platform,
      author_id: doc.author_id,
      author_full_name: doc.author_full_name,
      content,
      index: chunks.length,
      start: span.start,
      end: span.end,
      token_count: span.tokens,
      metadata,
    };
    switch (doc.category) {
      case 'articles':
        chunks.push({ ...base, category: 'articles', link: doc.link } satisfies ArticleChunk);
        break;
      case 'posts':
        chunks.push({ ...base, category: 'posts', image: doc.image } satisfies PostChunk);
        break;
      case 'repositories': {
        const file = doc.files.find((f) => f.start <= span.start && span.start < f.end);
        chunks.push({
          ...base,
          category: 'repositories',
          name: doc.name,
          link: doc.link,
          path: file?.path ?? null,
        } satisfies RepositoryChunk);
        break;
      }
    }
  }
  return chunks;
}

/** Chunks many documents (same settings). */
export function chunkDocuments(
  docs: CleanedDocument[],
  counter: TokenCounter,
  overrides: ChunkingOverrides = {},
): Chunk[] {
  return docs.flatMap((d) => chunkDocument(d, counter, overrides));
}
