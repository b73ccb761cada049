/**
 * Cleaning: raw documents → cleaned documents, per category.
 *
 * Keeps what a reader and the model need — headings, paragraphs, list items, tables, code blocks (re-emitted as
 * fenced blocks with their indentation and punctuation intact) — and removes noise: navigation and menu lines left
 * by the crawler, share/subscribe/comment widgets, page headers and footers, icon-font residue, tracking parameters
 * in URLs, zero-width and control characters, repeated whitespace. Unicode is NFKC-normalised (which also turns
 * the "𝗯𝗼𝗹𝗱" math alphanumerics of newsletters into plain letters) and fancy quotes become ASCII quotes.
 *
 * Unlike the reference implementation, newlines and code punctuation are kept. Everything here is a pure function
 * over plain data (callable from an activity or a worker thread). See docs/features.md for the rules and why.
 */
import type {
  CleanedArticleDocument,
  CleanedDocument,
  CleanedPostDocument,
  CleanedRepositoryDocument,
  CleanedRepositoryFile,
  RawArticleDocument,
  RawDocument,
  RawPostDocument,
  RawRepositoryDocument,
} from '../domain/documents';

// ---------------------------------------------------------------------------------------------------------------
// Character level
// ---------------------------------------------------------------------------------------------------------------

/** Zero-width and invisible formatting characters: ZWSP/ZWNJ/ZWJ, LRM/RLM, bidi embeddings, word joiner, BOM,
 * soft hyphen, variation selectors. */
const INVISIBLE_RE = /[\u00AD\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]|\uFE0E|\uFE0F/g;
/** C0/C1 control characters other than tab and newline. */
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/g;
const SINGLE_QUOTES_RE = /[\u2018\u2019\u201A\u201B\u2039\u203A]/g;
const DOUBLE_QUOTES_RE = /[\u201C\u201D\u201E\u201F\u00AB\u00BB]/g;

/** Line endings to `\n`, invisible and control characters removed. Safe for code (no NFKC, no quote changes). */
export function stripInvisible(text: string): string {
  return text
    .replace(/\r\n?|[\u2028\u2029\u0085]/g, '\n')
    .replace(INVISIBLE_RE, '')
    .replace(CONTROL_RE, '');
}

/** {@link stripInvisible} + NFKC + ASCII quotes. For prose. */
export function normalizeUnicode(text: string): string {
  return stripInvisible(text)
    .normalize('NFKC')
    .replace(CONTROL_RE, '')
    .replace(SINGLE_QUOTES_RE, "'")
    .replace(DOUBLE_QUOTES_RE, '"');
}

// ---------------------------------------------------------------------------------------------------------------
// URLs
// ---------------------------------------------------------------------------------------------------------------

/** Query parameters that only track the reader. `r` is Substack's referral code. */
const TRACKING_PARAMS = new Set([
  'fbclid',
  'gclid',
  'dclid',
  'gbraid',
  'wbraid',
  'msclkid',
  'mc_cid',
  'mc_eid',
  'igshid',
  'yclid',
  '_hsenc',
  '_hsmi',
  'mkt_tok',
  'oly_enc_id',
  'oly_anon_id',
  'vero_id',
  'spm',
  'ref_src',
  'ref_url',
  'source',
  'sk',
  'r',
  'triedredirect',
  'publication_id',
  'post_id',
  'isfreemail',
  'showwelcome',
  'token',
]);
const TRACKING_PREFIXES = ['utm_', 'pk_', 'mtm_', 'hsa_', 'ga_', '_ga'];

function isTrackingParam(name: string): boolean {
  const lower = name.toLowerCase();
  return TRACKING_PARAMS.has(lower) || TRACKING_PREFIXES.some((p) => lower.startsWith(p));
}

/** Removes tracking query parameters (utm_*, fbclid, Substack's `r`, ...). Returns the input if it is not a URL. */
export function stripTrackingParams(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return url;
  const names = [...new Set(parsed.searchParams.keys())];
  const drop = names.filter(isTrackingParam);
  if (drop.length === 0) return url;
  for (const name of drop) parsed.searchParams.delete(name);
  let out = parsed.toString();
  if (parsed.search === '' && !url.includes('?#')) out = out.replace('?', '');
  return out;
}

const URL_IN_TEXT_RE = /\bhttps?:\/\/[^\s<>()[\]"'`]+/g;

/** Strips tracking parameters from every http(s) URL in a piece of text; trailing sentence punctuation is kept. */
export function cleanUrlsInText(text: string): string {
  return text.replace(URL_IN_TEXT_RE, (match) => {
    const trail = /[.,;:!?]+$/.exec(match)?.[0] ?? '';
    const url = trail ? match.slice(0, -trail.length) : match;
    return stripTrackingParams(url) + trail;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Boilerplate vocabulary
// ---------------------------------------------------------------------------------------------------------------

/** Lines that are page chrome wherever they appear (compared after {@link lineKey}). */
const STRONG_BOILERPLATE = new Set([
  'share this post',
  'copy link',
  'subscribesign in',
  'subscribe sign in',
  'sign insubscribe',
  'sign in',
  'sign up',
  'sign up for free',
  'open in app',
  'subscribe now',
  'subscribe for free',
  'ready for more?',
  'no posts',
  'restacks',
  'previousnext',
  'start writingget the app',
  'start writing get the app',
  'get the app',
  'substack is the home for great culture',
  'discussion about this post',
  'privacy ∙ terms ∙ collection notice',
  'privacy · terms · collection notice',
  'unblock scripts',
  'listenshare',
  'leave a comment',
  'share this article',
  'share on twitter',
  'share on linkedin',
  'share on facebook',
  'tweet',
  'skip to content',
  'toggle navigation',
  'back to top',
  'read more',
  'see more',
  'see all',
  '...see more',
  'see translation',
  'cookie policy',
]);

/** Short lines that are chrome only next to other chrome (a heading "Next" in an article is kept). */
const WEAK_BOILERPLATE = new Set([
  'share',
  'facebook',
  'email',
  'twitter',
  'linkedin',
  'reddit',
  'whatsapp',
  'telegram',
  'threads',
  'bluesky',
  'hacker news',
  'print',
  'note',
  'other',
  'subscribe',
  'comments',
  'comment',
  'discussions',
  'top',
  'latest',
  'new',
  'previous',
  'next',
  'like',
  'likes',
  'reply',
  'listen',
  'follow',
  'author',
  'authors',
  'published',
  'updated',
  'by',
  'menu',
  'search',
  'home',
  'about',
  'archive',
  'tags',
  'categories',
]);

const STRONG_BOILERPLATE_PATTERNS: RegExp[] = [
  /^this site requires javascript to run correctly\b/,
  /^(©|\(c\)|copyright\b)\s*\d{4}\b/,
  /^copyright\b.*\d{4}/,
  /^(©|\(c\))\s*\S/,
  /^thanks for reading\b.*\bsubscribe\b/,
  /^\d+ (min|minute)s? read$/,
  /^to make medium work, we log user data\b/,
  /^\d+ (repl(y|ies)|comments?|likes?|restacks?)( by .*)?$/,
];

/** Table-of-contents / navigation headings whose following list is navigation, in the page header. */
const NAV_HEADINGS = new Set(['sections', 'contents', 'table of contents', 'on this page', 'in this article', 'menu']);

const MONTHS =
  'jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sep(t(ember)?)?|oct(ober)?|nov(ember)?|dec(ember)?';
const DATE_RE = new RegExp(
  `^((${MONTHS})\\.? \\d{1,2}(st|nd|rd|th)?,? \\d{4}|\\d{1,2} (${MONTHS})\\.? \\d{4}|\\d{4}-\\d{2}-\\d{2})$`,
);
const NUMBER_ONLY_RE = /^[\d.,]+[km]?$/;

/** Comparison key of a line: markdown markers, emphasis, list markers and whitespace removed, lower case. */
export function lineKey(line: string): string {
  return line
    .replace(/^\s*(#{1,6}\s+|>\s*)+/, '')
    .replace(/^\s*([*+-]|\d+[.)])\s+/, '')
    .replace(/[*_`]+/g, '')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/[:.\s]+$/, '')
    .toLowerCase();
}

function isStrongBoilerplate(key: string): boolean {
  return STRONG_BOILERPLATE.has(key) || STRONG_BOILERPLATE_PATTERNS.some((re) => re.test(key));
}

// ---------------------------------------------------------------------------------------------------------------
// Glued page chrome (crawls whose text lost its line breaks, e.g. Medium)
// ---------------------------------------------------------------------------------------------------------------

/** Header of a Medium page: "...Sign in<title><subtitle>Author·FollowPublished inX·16 min read·Mar 16, 20242.1K13ListenShare". */
const GLUED_HEADER_RE = /^[^\n]{0,2000}?·\s*\d+ min read\s*·[^\n]{0,80}?(?:Listen)?Share/;
/** Footer markers of a Medium page; everything from the first one (in the second half of the text) is chrome. */
const GLUED_FOOTER_MARKERS = [
  'Sign up to discover human stories',
  'Written by ',
  'More from ',
  'Recommended from Medium',
  'See all from ',
  'HelpStatusAboutCareers',
  'To make Medium work, we log user data',
];

function cutGluedChrome(text: string): string {
  let out = text;
  const header = GLUED_HEADER_RE.exec(out);
  if (header) out = out.slice(header[0].length);
  const half = Math.floor(out.length / 2);
  let cut = out.length;
  for (const marker of GLUED_FOOTER_MARKERS) {
    const at = out.indexOf(marker, half);
    if (at >= 0 && at < cut) cut = at;
  }
  return out.slice(0, cut);
}

/** Lines of glued text (no paragraph breaks): break after sentence ends that run straight into a capital
 * ("...different?By finishing"), so sentences and paragraphs can be found again. */
function unglue(text: string): string {
  return text.replace(/([a-z0-9)\]][.?!])(?=[A-Z][a-z])/g, '$1\n\n');
}

// ---------------------------------------------------------------------------------------------------------------
// Block structure
// ---------------------------------------------------------------------------------------------------------------

type Block =
  | { kind: 'heading'; level: number; text: string }
  | { kind: 'paragraph'; text: string }
  | { kind: 'item'; indent: number; marker: string; text: string }
  | { kind: 'table'; lines: string[] }
  | { kind: 'code'; lang: string; lines: string[] }
  | { kind: 'break' };

const FENCE_RE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
const LIST_RE = /^(\s*)([*+-]|\d{1,3}[.)])\s+(.*)$/;
const HEADING_RE = /^ {0,3}(#{1,6})(?:\s+(.*?))?\s*#*\s*$/;
const RULE_RE = /^\s*([*_-])(\s*\1){2,}\s*$/;
const TABLE_SEP_RE = /^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/;

function indentOf(line: string): number {
  return /^[ \t]*/.exec(line)?.[0].replace(/\t/g, '    ').length ?? 0;
}

function isBlank(line: string): boolean {
  return line.trim() === '';
}

/** Removes the unpaired "__" left by icon fonts (copy buttons, menu icons) from a prose line. */
function stripIconResidue(line: string): string {
  let out = line.replace(/(^|\s)__(?=\s|$)/g, '$1').replace(/\s+__$/, '');
  const pairs = out.match(/__/g)?.length ?? 0;
  if (pairs % 2 === 1) out = out.replace(/(^|\s)__(?=\S)/, '$1');
  return out;
}

/** Markdown backslash escapes (html2text writes "\-", "1\.", "\_"): unescaped, except a leading "\#". */
function unescapeMarkdown(line: string): string {
  return line.replace(/\\([\\`*_{}[\]()+\-.!|>~])/g, '$1');
}

function normalizeSpaces(text: string): string {
  return text.replace(/[ \t\u00A0]+/g, ' ').trim();
}

function fenceFor(lines: string[]): string {
  let longest = 0;
  for (const line of lines) for (const run of line.match(/`+/g) ?? []) longest = Math.max(longest, run.length);
  return '`'.repeat(Math.max(3, longest + 1));
}

/** Code lines: common indentation removed, trailing whitespace and icon residue stripped, outer blanks dropped. */
function tidyCode(lines: string[]): string[] {
  const out = lines.map((l) => l.replace(/\s+$/, ''));
  while (out.length && out[0] === '') out.shift();
  while (out.length && out[out.length - 1] === '') out.pop();
  // The copy-button icon leaves "__" after the last line: "...quant)__" or "... __" (never after a word character,
  // so a trailing `__init__` stays).
  if (out.length) out[out.length - 1] = out[out.length - 1]!.replace(/(\s+|(?<=[^\w\s]))__$/, '').replace(/^__$/, '');
  const indents = out.filter((l) => l !== '').map(indentOf);
  const common = indents.length ? Math.min(...indents) : 0;
  return out.map((l) => l.replace(/\t/g, '    ').slice(Math.min(common, indentOf(l))));
}

/**
 * Parses Markdown-ish crawl output into blocks. Recognises fenced code, html2text's indented code (opened by a
 * whitespace-only line of 4+ spaces, or an indented line after a blank line outside a list), headings (with
 * their wrapped continuation lines), list items (with continuation lines), tables, rules and paragraphs. Prose
 * lines soft-wrapped by the crawler are joined; hard breaks (two trailing spaces) are kept as newlines.
 */
function parseBlocks(text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let i = 0;
  const state: { lastNonBlank: Block['kind'] | 'blank' } = { lastNonBlank: 'blank' };
  const push = (b: Block): void => {
    blocks.push(b);
    state.lastNonBlank = b.kind;
  };

  while (i < lines.length) {
    const raw = lines[i]!;

    const fence = FENCE_RE.exec(raw);
    if (fence) {
      const marker = fence[1]!;
      const body: string[] = [];
      i++;
      while (i < lines.length && !lines[i]!.trimStart().startsWith(marker)) body.push(lines[i++]!);
      i++; // closing fence (or end of text)
      push({ kind: 'code', lang: fence[2] ?? '', lines: tidyCode(body.map(stripInvisible)) });
      continue;
    }

    const whitespaceMarker = raw.length >= 4 && isBlank(raw) && raw.replace(/\t/g, '    ').length >= 4;
    const indentedAfterBlank =
      indentOf(raw) >= 4 &&
      !isBlank(raw) &&
      (i === 0 || isBlank(lines[i - 1]!)) &&
      state.lastNonBlank !== 'item' &&
      !LIST_RE.test(raw);
    if (whitespaceMarker || indentedAfterBlank) {
      const body: string[] = [];
      while (i < lines.length) {
        const l = lines[i]!;
        if (l === '') {
          // A truly empty line ends the block unless the code continues right after it.
          const next = lines[i + 1];
          if (next !== undefined && indentOf(next) >= 4 && !isBlank(next) && !LIST_RE.test(next)) {
            body.push('');
            i++;
            continue;
          }
          break;
        }
        if (!isBlank(l) && indentOf(l) < 4) break;
        body.push(l);
        i++;
      }
      const code = tidyCode(body);
      if (code.some((l) => l.trim() !== '')) push({ kind: 'code', lang: '', lines: code });
      continue;
    }

    if (isBlank(raw)) {
      if (blocks.length && blocks[blocks.length - 1]!.kind !== 'break') blocks.push({ kind: 'break' });
      state.lastNonBlank = 'blank';
      i++;
      continue;
    }

    const line = unescapeMarkdown(stripIconResidue(raw.replace(/\s+$/, '')));
    if (line.trim() === '') {
      i++;
      continue;
    }
    if (RULE_RE.test(line)) {
      blocks.push({ kind: 'break' });
      i++;
      continue;
    }

    const heading = HEADING_RE.exec(line);
    if (heading) {
      let textOfHeading = heading[2] ?? '';
      i++;
      // html2text wraps long headings; the continuation is the following non-blank prose lines.
      while (i < lines.length && !isBlank(lines[i]!) && isProseContinuation(lines[i]!)) {
        textOfHeading += ' ' + unescapeMarkdown(stripIconResidue(lines[i]!.trim()));
        i++;
      }
      const t = normalizeSpaces(textOfHeading);
      if (t) push({ kind: 'heading', level: heading[1]!.length, text: t });
      continue;
    }

    const item = LIST_RE.exec(line);
    if (item) {
      const indent = indentOf(line);
      const marker = /^\d/.test(item[2]!) ? item[2]! : '-';
      let body = item[3] ?? '';
      i++;
      while (i < lines.length && !isBlank(lines[i]!) && isProseContinuation(lines[i]!)) {
        body = joinWrapped(body, unescapeMarkdown(stripIconResidue(lines[i]!.trim())));
        i++;
      }
      const t = normalizeSpaces(body);
      if (t) push({ kind: 'item', indent, marker, text: t });
      continue;
    }

    // Table: this line and the next (separator) or previous rows contain pipes.
    if (line.includes('|') && i + 1 < lines.length && TABLE_SEP_RE.test(lines[i + 1]!)) {
      const rows: string[] = [];
      while (i < lines.length && !isBlank(lines[i]!) && (lines[i]!.includes('|') || TABLE_SEP_RE.test(lines[i]!))) {
        rows.push(normalizeSpaces(unescapeMarkdown(lines[i]!)));
        i++;
      }
      push({ kind: 'table', lines: rows });
      continue;
    }

    // Paragraph: join soft-wrapped lines, keep hard breaks.
    let para = line.trim();
    let hard = /\s{2,}$/.test(raw);
    i++;
    while (i < lines.length && !isBlank(lines[i]!) && isProseContinuation(lines[i]!)) {
      const next = unescapeMarkdown(stripIconResidue(lines[i]!.replace(/\s+$/, ''))).trim();
      // Hard breaks and quoted lines (">") stay on their own line; soft wraps are joined.
      para = hard || next.startsWith('>') ? `${para}\n${next}` : joinWrapped(para, next);
      hard = /\s{2,}$/.test(lines[i]!);
      i++;
    }
    const t = para
      .split('\n')
      .map(normalizeSpaces)
      .filter((l) => l !== '')
      .join('\n');
    if (t) push({ kind: 'paragraph', text: t });
  }
  return blocks;
}

/** Whether a line continues the current paragraph/item/heading rather than starting a new block. */
function isProseContinuation(line: string): boolean {
  if (FENCE_RE.test(line) || HEADING_RE.test(line) || RULE_RE.test(line)) return false;
  if (LIST_RE.test(unescapeMarkdown(line))) return false;
  if (indentOf(line) >= 4 && isBlank(line)) return false;
  return true;
}

/** Joins a soft-wrapped line: "fine-" + "tuning" → "fine-tuning", otherwise with a space. */
function joinWrapped(prev: string, next: string): string {
  if (/[A-Za-z]-$/.test(prev) && /^[a-z]/.test(next)) return prev + next;
  return `${prev} ${next}`;
}

function blockKey(b: Block): string {
  switch (b.kind) {
    case 'heading':
    case 'paragraph':
    case 'item':
      return lineKey(b.text);
    default:
      return '';
  }
}

function wordCount(text: string): number {
  return text.split(/\s+/).filter((w) => /[\p{L}\p{N}]/u.test(w)).length;
}

// ---------------------------------------------------------------------------------------------------------------
// Boilerplate removal over blocks
// ---------------------------------------------------------------------------------------------------------------

interface PageContext {
  title?: string | null;
  subtitle?: string | null;
  author?: string | null;
  link?: string | null;
}

function hostOf(link: string | null | undefined): string | null {
  if (!link) return null;
  try {
    return new URL(link).hostname.toLowerCase();
  } catch {
    return null;
  }
}

/** Marks page chrome: widgets, header before the title heading, footer after the comments marker, nav lists. */
function removeChrome(blocks: Block[], ctx: PageContext): Block[] {
  const keep = blocks.map(() => true);
  const keys = blocks.map(blockKey);
  const titleKey = ctx.title ? lineKey(cleanTitle(ctx.title, ctx.author)) : '';
  const subtitleKey = ctx.subtitle ? lineKey(normalizeUnicode(ctx.subtitle)) : '';
  const authorKey = ctx.author ? lineKey(normalizeUnicode(ctx.author)) : '';
  const host = hostOf(ctx.link);
  const n = blocks.length;
  const isContent = (b: Block): boolean => b.kind !== 'break';

  // 1. Header: everything before the first heading that repeats the title (within the first 40%) is page chrome.
  if (titleKey) {
    const limit = Math.max(10, Math.floor(n * 0.4));
    for (let i = 0; i < Math.min(n, limit); i++) {
      const b = blocks[i]!;
      if (b.kind === 'heading' && matchesTitle(keys[i]!, titleKey)) {
        for (let j = 0; j <= i; j++) keep[j] = false;
        break;
      }
    }
  }

  // 2. Footer: from the comments/"ready for more" marker in the second half on.
  for (let i = Math.floor(n / 2); i < n; i++) {
    if (keys[i] === 'discussion about this post' || keys[i] === 'ready for more?') {
      for (let j = i; j < n; j++) keep[j] = false;
      break;
    }
  }

  // 3. Share widgets: "Share this post" ... "Other" [Share], within a few lines.
  for (let i = 0; i < n; i++) {
    if (keys[i] !== 'share this post') continue;
    let end = -1;
    for (let j = i + 1, seen = 0; j < n && seen < 10; j++) {
      if (!isContent(blocks[j]!)) continue;
      seen++;
      if (keys[j] === 'other') {
        end = j;
        break;
      }
    }
    if (end < 0) continue;
    for (let j = i; j <= end; j++) keep[j] = false;
    for (let j = end + 1; j < n; j++) {
      if (!isContent(blocks[j]!)) continue;
      if (keys[j] === 'share') keep[j] = false;
      break;
    }
  }

  // 4. Line vocabulary: strong chrome anywhere; repeated title/subtitle; byline; host name; dates.
  const strong = blocks.map(() => false);
  for (let i = 0; i < n; i++) {
    const b = blocks[i]!;
    const k = keys[i]!;
    if (b.kind === 'code' || b.kind === 'table' || b.kind === 'break') continue;
    if (b.kind === 'heading' && k === '') strong[i] = true;
    else if (isStrongBoilerplate(k)) strong[i] = true;
    else if (b.kind !== 'item' && (matchesTitle(k, titleKey) || (subtitleKey !== '' && k === subtitleKey)))
      strong[i] = true;
    else if (authorKey !== '' && k === authorKey && b.kind !== 'item') strong[i] = true;
    else if (host !== null && k === host) strong[i] = true;
    else if (/^[\w.-]+\.(substack\.com|medium\.com|github\.io)$/.test(k)) strong[i] = true;
    else if (DATE_RE.test(k)) strong[i] = true;
    else if (k === '' && b.kind === 'paragraph') strong[i] = true;
    if (strong[i]) keep[i] = false;
  }

  // 5. Weak chrome (short words such as "Share", "Note", like counts) only next to removed lines.
  let changed = true;
  while (changed) {
    changed = false;
    for (let i = 0; i < n; i++) {
      if (!keep[i] || !isContent(blocks[i]!)) continue;
      const b = blocks[i]!;
      const k = keys[i]!;
      const weak =
        (b.kind === 'paragraph' || b.kind === 'heading') && (WEAK_BOILERPLATE.has(k) || NUMBER_ONLY_RE.test(k));
      if (!weak) continue;
      const prev = neighbour(blocks, i, -1);
      const next = neighbour(blocks, i, +1);
      if ((prev >= 0 && !keep[prev]) || (next >= 0 && !keep[next]) || prev < 0) {
        keep[i] = false;
        changed = true;
      }
    }
  }

  // 6. Page header (before the first real paragraph): label words ("Author", "Published") and the name that
  //    follows an author label are byline, whatever their neighbours.
  const firstProseIdx = blocks.findIndex(
    (b, idx) => keep[idx] && b.kind === 'paragraph' && wordCount(b.text) >= 15 && /[.!?:]/.test(b.text),
  );
  for (let idx = 0; idx < (firstProseIdx < 0 ? n : firstProseIdx); idx++) {
    const b = blocks[idx]!;
    if (!keep[idx] || (b.kind !== 'paragraph' && b.kind !== 'heading')) continue;
    const k = keys[idx]!;
    if (WEAK_BOILERPLATE.has(k) || NUMBER_ONLY_RE.test(k)) {
      keep[idx] = false;
      if (k === 'author' || k === 'authors' || k === 'by') {
        const next = neighbour(blocks, idx, +1);
        if (
          next >= 0 &&
          blocks[next]!.kind === 'paragraph' &&
          wordCount((blocks[next] as { text: string }).text) <= 4
        ) {
          keep[next] = false;
        }
      }
    }
  }

  // 7. Navigation lists in the page header: before the first real paragraph, a run of >= 5 short items (menus,
  //    sidebars of other articles, tables of contents), or any list right after a "Sections"/"Contents" heading.
  const firstProse = blocks.findIndex(
    (b, i) => keep[i] && b.kind === 'paragraph' && wordCount(b.text) >= 15 && /[.!?:]/.test(b.text),
  );
  const headerEnd = firstProse < 0 ? n : firstProse;
  let i = 0;
  while (i < headerEnd) {
    const b = blocks[i]!;
    if (b.kind === 'heading' && NAV_HEADINGS.has(keys[i]!)) {
      keep[i] = false;
      let j = i + 1;
      while (j < headerEnd && (blocks[j]!.kind === 'item' || blocks[j]!.kind === 'break')) keep[j++] = false;
      i = j;
      continue;
    }
    if (b.kind === 'item') {
      let j = i;
      const items: number[] = [];
      while (j < headerEnd && (blocks[j]!.kind === 'item' || blocks[j]!.kind === 'break')) {
        if (blocks[j]!.kind === 'item') items.push(j);
        j++;
      }
      const short = items.filter(
        (k) =>
          wordCount((blocks[k] as { text: string }).text) <= 6 && !/[.!?]$/.test((blocks[k] as { text: string }).text),
      );
      if (items.length >= 5 && short.length >= items.length * 0.8) for (const k of items) keep[k] = false;
      i = j;
      continue;
    }
    i++;
  }

  return blocks.filter((_, idx) => keep[idx]);
}

/** A heading repeats the title when it equals it or is a 3+ word part of it ("Site - Title" page titles). */
function matchesTitle(key: string, titleKey: string): boolean {
  if (!titleKey || !key) return false;
  if (key === titleKey) return true;
  return key.split(' ').length >= 3 && (titleKey.includes(key) || key.startsWith(titleKey));
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Page title without the site decoration crawlers keep: "Author - Title", "Title - by Author", "Title | Site". */
export function cleanTitle(title: string, author?: string | null): string {
  let t = normalizeSpaces(normalizeUnicode(title));
  if (author) {
    const a = escapeRegExp(normalizeSpaces(normalizeUnicode(author)));
    t = t
      .replace(new RegExp(`\\s+[-|–—]\\s+(by\\s+)?${a}$`, 'i'), '')
      .replace(new RegExp(`^${a}\\s+[-|–—]\\s+`, 'i'), '');
  }
  return t.replace(/\s+\|\s+[^|]+$/, '').trim() || normalizeSpaces(normalizeUnicode(title));
}

function neighbour(blocks: Block[], i: number, step: 1 | -1): number {
  for (let j = i + step; j >= 0 && j < blocks.length; j += step) if (blocks[j]!.kind !== 'break') return j;
  return -1;
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------------------------

function renderBlocks(blocks: Block[]): string {
  const parts: string[] = [];
  let lastItem = -2;
  for (const b of blocks) {
    if (b.kind === 'break') continue;
    let text: string;
    switch (b.kind) {
      case 'heading':
        text = `${'#'.repeat(b.level)} ${cleanUrlsInText(b.text)}`;
        break;
      case 'paragraph':
        text = cleanUrlsInText(b.text);
        break;
      case 'item': {
        const nested = b.indent >= 4 ? '  ' : '';
        text = `${nested}${b.marker} ${cleanUrlsInText(b.text)}`;
        break;
      }
      case 'table':
        text = b.lines.map(cleanUrlsInText).join('\n');
        break;
      case 'code': {
        const fence = fenceFor(b.lines);
        text = `${fence}${b.lang}\n${b.lines.join('\n')}\n${fence}`;
        break;
      }
    }
    // Consecutive list items form one block (single newline); everything else is separated by a blank line.
    const sep = parts.length === 0 ? '' : b.kind === 'item' && lastItem === parts.length - 1 ? '\n' : '\n\n';
    parts.push(sep + text);
    if (b.kind === 'item') lastItem = parts.length - 1;
  }
  return parts.join('');
}

/**
 * Cleans Markdown-ish crawl text (an article body or a post), keeping its structure. `ctx` (title, subtitle,
 * author, link) lets the cleaner recognise the page header, repeated titles and bylines.
 */
export function cleanMarkdown(text: string, ctx: PageContext = {}): string {
  let t = normalizeUnicode(text);
  // Text whose lines were lost (most of it in lines over 1500 characters) gets its page chrome cut by markers.
  const longLines = t.split('\n').reduce((sum, l) => sum + (l.length > 1500 ? l.length : 0), 0);
  if (longLines > t.length / 2) t = unglue(cutGluedChrome(t));
  const blocks = removeChrome(parseBlocks(t), ctx);
  return renderBlocks(blocks)
    .replace(/[ \t]+$/gm, '')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

// ---------------------------------------------------------------------------------------------------------------
// Per category
// ---------------------------------------------------------------------------------------------------------------

function titleBlock(title: string | null, subtitle: string | null | undefined): string {
  const parts: string[] = [];
  const t = title ?? '';
  const s = subtitle ? normalizeSpaces(normalizeUnicode(subtitle)) : '';
  if (t) parts.push(`# ${t}`);
  if (s && lineKey(s) !== lineKey(t)) parts.push(s);
  return parts.join('\n\n');
}

/** Article: "# Title", subtitle, then the cleaned body. Keeps the raw document's id. */
export function cleanArticle(doc: RawArticleDocument): CleanedArticleDocument {
  const { Title, Subtitle, Content } = doc.content;
  const body = cleanMarkdown(Content, {
    title: Title,
    subtitle: Subtitle,
    author: doc.author_full_name,
    link: doc.link,
  });
  const title = Title ? cleanTitle(Title, doc.author_full_name) : null;
  const head = titleBlock(title, Subtitle);
  return {
    id: doc.id,
    category: 'articles',
    platform: doc.platform,
    author_id: doc.author_id,
    author_full_name: doc.author_full_name,
    title,
    link: stripTrackingParams(doc.link),
    content: [head, body].filter((p) => p !== '').join('\n\n'),
  };
}

/** Post: the text cleaned like an article body (no title). */
export function cleanPost(doc: RawPostDocument): CleanedPostDocument {
  const link = doc.link ? stripTrackingParams(doc.link) : null;
  return {
    id: doc.id,
    category: 'posts',
    platform: doc.platform,
    author_id: doc.author_id,
    author_full_name: doc.author_full_name,
    image: doc.image ?? doc.content.image ?? null,
    link,
    content: cleanMarkdown(doc.content.text, { author: doc.author_full_name, link }),
  };
}

/** Files that carry no meaning for retrieval: binaries, lock files, minified bundles, generated maps. */
const SKIPPED_FILE_RE =
  /(^|\/)(\.git\/|node_modules\/|dist\/|build\/|__pycache__\/|\.venv\/|venv\/)|\.(lock|png|jpe?g|gif|ico|svg|webp|pdf|zip|gz|tar|whl|bin|onnx|pt|safetensors|pkl|npy|parquet|min\.js|min\.css|map)$|(^|\/)(package-lock\.json|yarn\.lock|pnpm-lock\.yaml|poetry\.lock|uv\.lock|Cargo\.lock|go\.sum)$/i;

/** Whether a repository file is kept by {@link cleanRepository}. */
export function isIndexableFile(path: string, text: string): boolean {
  if (SKIPPED_FILE_RE.test(path)) return false;
  if (text.includes('\u0000')) return false;
  const lines = text.split('\n');
  // Minified / generated: very long lines dominate.
  if (text.length > 5000 && lines.length < text.length / 1000) return false;
  return text.trim() !== '';
}

/** Header line that introduces each file in a cleaned repository's content. */
export function fileHeader(path: string): string {
  return `# File: ${path}`;
}

/**
 * Repository: every indexable file, in path order, as "# File: path" followed by its text. Code keeps every
 * character except invisible/control characters, trailing whitespace and runs of more than two blank lines; no
 * NFKC or quote changes (they could change string literals). `files` records each file's span.
 */
export function cleanRepository(doc: RawRepositoryDocument): CleanedRepositoryDocument {
  const paths = Object.keys(doc.content).sort();
  const files: CleanedRepositoryFile[] = [];
  let content = '';
  for (const path of paths) {
    const raw = doc.content[path] ?? '';
    if (!isIndexableFile(path, raw)) continue;
    const text = stripInvisible(raw)
      .replace(/[ \t]+$/gm, '')
      .replace(/\n{4,}/g, '\n\n\n')
      .replace(/^\n+|\n+$/g, '');
    if (text.trim() === '') continue;
    if (content !== '') content += '\n\n';
    const start = content.length;
    content += `${fileHeader(path)}\n\n${text}`;
    files.push({ path, start, end: content.length });
  }
  return {
    id: doc.id,
    category: 'repositories',
    platform: doc.platform,
    author_id: doc.author_id,
    author_full_name: doc.author_full_name,
    name: doc.name,
    link: stripTrackingParams(doc.link),
    content,
    files,
  };
}

/** Cleans any raw document by its category. */
export function cleanDocument(doc: RawDocument): CleanedDocument {
  switch (doc.category) {
    case 'articles':
      return cleanArticle(doc);
    case 'posts':
      return cleanPost(doc);
    case 'repositories':
      return cleanRepository(doc);
  }
}
