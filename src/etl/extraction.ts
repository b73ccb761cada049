import { Readability } from '@mozilla/readability';
import { cleanText, parseDocument, type DomDocument, type DomElement, type DomNode } from './dom';
import { htmlToMarkdown, tidyMarkdown } from './markdown';

export { cleanText, parseDocument };

/**
 * Main-content extraction for articles and blog posts.
 *
 * Pipeline (see docs/etl.md for the measured effect of each step):
 *  1. metadata from JSON-LD (schema.org Article family, also inside @graph), Open Graph and <meta> tags;
 *  2. boilerplate pruning on the original DOM, where class names and roles still exist: navigation, headers,
 *     footers, asides, comment sections, share bars, cookie/consent banners, newsletter boxes, related-story
 *     lists, captions, hidden elements — each removal guarded so that a block holding most of the page's
 *     paragraph text is never removed;
 *  3. Mozilla Readability on the pruned DOM to find the main container;
 *  4. post-cleaning of the result: short boilerplate lines ("Advertisement", "Read more: …", "Image: Getty"),
 *     blocks repeated across the page, link-dense lists;
 *  5. fallbacks when the result is short: the JSON-LD `articleBody`, then the paragraphs of the best-scoring
 *     container;
 *  6. conversion to Markdown-like text that keeps paragraphs, headings, lists, quotes and code fences.
 */

export interface ArticleMetadata {
  title?: string;
  subtitle?: string;
  author?: string;
  publishedAt?: string;
  siteName?: string;
  language?: string;
  canonicalUrl?: string;
  tags?: string[];
  /** schema.org articleBody when the page ships one (plain text). */
  articleBody?: string;
  /** schema.org isAccessibleForFree === false */
  paywalled?: boolean;
}

export interface ExtractedArticle {
  title: string;
  subtitle: string;
  author?: string;
  publishedAt?: string;
  siteName?: string;
  language?: string;
  canonicalUrl?: string;
  tags?: string[];
  /** Markdown-like body text. */
  content: string;
  /** which path produced the body */
  method: 'readability' | 'json-ld' | 'paragraphs' | 'none';
  wordCount: number;
  paywalled?: boolean;
}

export interface ExtractOptions {
  /** Skip the pruning/cleaning steps: plain Readability (the benchmark's baseline). */
  plainReadability?: boolean;
}

// ---------------------------------------------------------------------------------------------------------
// helpers

function metaContent(doc: DomDocument, ...keys: string[]): string | undefined {
  for (const key of keys) {
    for (const attr of ['property', 'name', 'itemprop']) {
      const el = doc.querySelector(`meta[${attr}="${key}"]`);
      const v = cleanText(el?.getAttribute('content'));
      if (v) return v;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// JSON-LD

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const ARTICLE_TYPES =
  /^(Article|NewsArticle|BlogPosting|TechArticle|ScholarlyArticle|Report|AnalysisNewsArticle|OpinionNewsArticle|ReportageNewsArticle|ReviewNewsArticle|LiveBlogPosting|SocialMediaPosting|DiscussionForumPosting|Review|WebPage|MedicalWebPage|CreativeWork|Blog)$/;

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function jsonLdNodes(doc: DomDocument): JsonObject[] {
  const out: JsonObject[] = [];
  const visit = (v: Json): void => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (isObject(v)) {
      out.push(v);
      if (v['@graph']) visit(v['@graph']);
      if (isObject(v.mainEntity)) visit(v.mainEntity);
    }
  };
  for (const script of Array.from(doc.querySelectorAll('script[type="application/ld+json"]'))) {
    const raw = (script.textContent ?? '').trim().replace(/^<!--|-->$/g, '');
    try {
      visit(JSON.parse(raw) as Json);
    } catch {
      // Broken JSON-LD is common (unescaped newlines in strings): retry once with control characters removed.
      try {
        visit(JSON.parse(raw.replace(/\p{Cc}+/gu, ' ')) as Json);
      } catch {
        /* ignore this block */
      }
    }
  }
  return out;
}

function typesOf(node: JsonObject): string[] {
  const t = node['@type'];
  if (typeof t === 'string') return [t];
  if (Array.isArray(t)) return t.filter((x): x is string => typeof x === 'string');
  return [];
}

function jsonText(v: Json | undefined): string | undefined {
  if (typeof v === 'string') return cleanText(decodeEntities(v)) || undefined;
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v)) return v.map(jsonText).filter(Boolean).join(', ') || undefined;
  if (isObject(v)) return jsonText(v.name ?? v['@value']);
  return undefined;
}

function decodeEntities(s: string): string {
  if (!/&[#\w]+;/.test(s)) return s;
  const doc = parseDocument(`<html><body><textarea>${s.replace(/</g, '&lt;')}</textarea></body></html>`);
  return doc.querySelector('textarea')?.textContent ?? s;
}

function pickArticleNode(nodes: JsonObject[]): JsonObject | undefined {
  const ranked = nodes.filter((n) => typesOf(n).some((t) => ARTICLE_TYPES.test(t))).sort((a, b) => score(b) - score(a));
  return ranked[0];
  function score(n: JsonObject): number {
    const types = typesOf(n);
    let s = 0;
    if (types.some((t) => /Article|Posting|Report|Review/.test(t))) s += 10;
    if (typeof n.articleBody === 'string') s += 5;
    if (n.headline) s += 2;
    return s;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Metadata

export function extractMetadata(doc: DomDocument): ArticleMetadata {
  const ld = pickArticleNode(jsonLdNodes(doc));
  const meta: ArticleMetadata = {};

  const h1 = cleanText(doc.querySelector('article h1, main h1, h1')?.textContent);
  meta.title =
    jsonText(ld?.headline) ??
    metaContent(doc, 'og:title', 'twitter:title') ??
    (h1 || undefined) ??
    (cleanText(doc.querySelector('title')?.textContent) || undefined);

  const alt = jsonText(ld?.alternativeHeadline);
  const description = metaContent(doc, 'og:description', 'description', 'twitter:description');
  meta.subtitle =
    alt ?? jsonText(ld?.description) ?? (description ? cleanText(decodeEntities(description)) : undefined);

  const ldAuthor = ld?.author ?? ld?.creator;
  const authorFromLd = Array.isArray(ldAuthor) ? ldAuthor.map(jsonText).filter(Boolean).join(', ') : jsonText(ldAuthor);
  meta.author =
    (authorFromLd || undefined) ??
    metaContent(doc, 'author', 'article:author', 'parsely-author', 'sailthru.author', 'dc.creator', 'DC.creator') ??
    (cleanText(
      doc.querySelector('[rel="author"], [itemprop="author"] [itemprop="name"], [itemprop="author"]')?.textContent,
    ) ||
      undefined);
  if (meta.author && /^https?:\/\//.test(meta.author)) meta.author = undefined;

  meta.publishedAt =
    jsonText(ld?.datePublished) ??
    metaContent(
      doc,
      'article:published_time',
      'datePublished',
      'pubdate',
      'publishdate',
      'date',
      'dc.date',
      'DC.date.issued',
    ) ??
    (doc.querySelector('time[datetime]')?.getAttribute('datetime') || undefined);

  const publisher = ld?.publisher;
  meta.siteName =
    metaContent(doc, 'og:site_name', 'application-name') ??
    (isObject(publisher) ? jsonText(publisher.name) : undefined);
  meta.language =
    (doc.documentElement?.getAttribute('lang') || undefined) ??
    metaContent(doc, 'og:locale', 'language', 'content-language') ??
    jsonText(ld?.inLanguage);
  meta.canonicalUrl = doc.querySelector('link[rel="canonical"]')?.getAttribute('href') ?? metaContent(doc, 'og:url');

  const keywords = ld?.keywords ?? metaContent(doc, 'keywords', 'news_keywords');
  const tagList = Array.isArray(keywords)
    ? keywords.map(jsonText).filter((x): x is string => !!x)
    : typeof keywords === 'string'
      ? keywords
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean)
      : Array.from(doc.querySelectorAll('meta[property="article:tag"]'))
          .map((m) => cleanText(m.getAttribute('content')))
          .filter(Boolean);
  if (tagList.length) meta.tags = tagList.slice(0, 30);

  if (ld && typeof ld.articleBody === 'string' && ld.articleBody.trim())
    meta.articleBody = decodeEntities(ld.articleBody).trim();
  const free = ld?.isAccessibleForFree;
  if (free === false || (typeof free === 'string' && /^false$/i.test(free))) meta.paywalled = true;
  for (const k of Object.keys(meta) as (keyof ArticleMetadata)[])
    if (meta[k] === undefined || meta[k] === '') delete meta[k];
  return meta;
}

// ---------------------------------------------------------------------------------------------------------
// Boilerplate pruning (before Readability, while class names and roles are still there)

const REMOVE_TAGS =
  'script, style, noscript, template, iframe, svg, canvas, button, select, input, textarea, dialog, object, embed, link, meta';
const REMOVE_ALWAYS_GUARDED = 'nav, aside, footer, header, form, figcaption, menu';
const REMOVE_ROLES =
  /^(navigation|banner|contentinfo|complementary|dialog|alertdialog|search|menu|menubar|toolbar|tooltip|alert|status)$/;

/** Words in class/id names that mark a block as boilerplate wherever they appear. */
const STRONG = new Set([
  'comment',
  'comments',
  'commentlist',
  'disqus',
  'respond',
  'replies',
  'share',
  'sharing',
  'sharebar',
  'sharetools',
  'social',
  'socials',
  'related',
  'recommended',
  'recommendation',
  'recommendations',
  'recirc',
  'recirculation',
  'newsletter',
  'subscribe',
  'subscription',
  'signup',
  'advert',
  'advertisement',
  'advertising',
  'ad',
  'ads',
  'adslot',
  'adunit',
  'dfp',
  'gpt',
  'sponsor',
  'sponsored',
  'cookie',
  'cookies',
  'consent',
  'gdpr',
  'breadcrumb',
  'breadcrumbs',
  'outbrain',
  'taboola',
  'zergnet',
  'caption',
  'credit',
  'credits',
  'hidden',
  'sronly',
  'popup',
  'modal',
  'overlay',
  'toast',
  'trending',
  'mostread',
  'mostpopular',
  'morestories',
  'readmore',
  'readnext',
  'upnext',
  'printonly',
  'skiplink',
  'skip',
  'paywallprompt',
  'promo',
  'promotion',
]);
/** Words that mark boilerplate only when the name does not also say it is the content. */
const WEAK = new Set([
  'meta',
  'metadata',
  'tags',
  'tag',
  'tagcloud',
  'topics',
  'categories',
  'author',
  'authors',
  'bio',
  'byline',
  'dateline',
  'timestamp',
  'date',
  'published',
  'updated',
  'header',
  'footer',
  'nav',
  'navbar',
  'navigation',
  'menu',
  'sidebar',
  'widget',
  'widgets',
  'banner',
  'masthead',
  'toolbar',
  'pagination',
  'pager',
  'rating',
  'reactions',
  'follow',
  'login',
  'signin',
  'register',
  'print',
  'tools',
  'utility',
  'links',
  'more',
  'also',
  'popular',
  'feedback',
  'about',
]);
const PROTECT = new Set([
  'content',
  'article',
  'body',
  'main',
  'post',
  'entry',
  'story',
  'text',
  'prose',
  'markup',
  'richtext',
]);

/** Class and id tokens, each split into lower-case parts ("postMeta" / "post-meta" → ["post", "meta"]). */
function nameTokens(el: DomElement): string[][] {
  const raw = `${el.getAttribute('class') ?? ''} ${el.getAttribute('id') ?? ''}`;
  const tokens: string[][] = [];
  for (const token of raw.split(/\s+/)) {
    if (!token) continue;
    const parts = token
      .replace(/([a-z])([A-Z])/g, '$1-$2')
      .toLowerCase()
      .split(/[-_:]+/)
      .filter(Boolean);
    if (parts.length) tokens.push([...parts, parts.join('')]);
  }
  return tokens;
}

/**
 * A block is boilerplate by name when any class/id part is a strong word ("share", "comments", "cookie"), or
 * when a token's head word — its last part, as in "post-meta", "entry-footer", "author-bio" — is a weak word and
 * no token's head word says it is the content ("entry-content", "article-body").
 */
function isBoilerplateName(el: DomElement): boolean {
  const tokens = nameTokens(el);
  if (!tokens.length) return false;
  let weak = false;
  for (const parts of tokens) {
    const head = parts[parts.length - 2] ?? '';
    if (parts.some((w) => STRONG.has(w))) return true;
    if (PROTECT.has(head) || (parts.length === 2 && PROTECT.has(parts[1] ?? ''))) return false;
    if (WEAK.has(head) || WEAK.has(parts[parts.length - 1] ?? '')) weak = true;
  }
  return weak;
}

function isHidden(el: DomElement): boolean {
  if (el.hasAttribute('hidden') || el.getAttribute('aria-hidden') === 'true') return true;
  const style = (el.getAttribute('style') ?? '').replace(/\s+/g, '').toLowerCase();
  return style.includes('display:none') || style.includes('visibility:hidden');
}

function paragraphTextLength(root: DomElement | DomDocument): number {
  let n = 0;
  for (const p of Array.from(root.querySelectorAll('p'))) n += cleanText(p.textContent).length;
  return n;
}

function prune(doc: DomDocument): void {
  for (const el of Array.from(doc.querySelectorAll(REMOVE_TAGS))) el.remove();
  const body = doc.body ?? doc.documentElement;
  if (!body) return;
  const totalP = Math.max(1, paragraphTextLength(body));
  const totalText = Math.max(1, cleanText(body.textContent).length);
  // A block holding a large part of the page's paragraph text (or, on pages written without <p>, of all its
  // text) is never removed by a name/role rule: class names lie more often than text does.
  const guarded = (el: DomElement): boolean =>
    paragraphTextLength(el) > totalP * 0.35 || (totalP < 500 && cleanText(el.textContent).length > totalText * 0.35);

  for (const el of Array.from(body.querySelectorAll(REMOVE_ALWAYS_GUARDED))) {
    if (el.isConnected && !guarded(el)) el.remove();
  }
  for (const el of Array.from(body.querySelectorAll('[role], [hidden], [aria-hidden], [style]'))) {
    if (!el.isConnected) continue;
    const role = el.getAttribute('role') ?? '';
    if ((REMOVE_ROLES.test(role) || isHidden(el)) && !guarded(el)) el.remove();
  }
  for (const el of Array.from(body.querySelectorAll('[class], [id]'))) {
    if (!el.isConnected) continue;
    const tag = el.tagName.toLowerCase();
    if (tag === 'html' || tag === 'body' || tag === 'main') continue;
    if (isBoilerplateName(el) && !guarded(el)) el.remove();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Post-cleaning of the extracted container

const BOILERPLATE_LINE = new RegExp(
  [
    '^advertisement$',
    '^advertisements?\\b',
    '^ad$',
    '^sponsored( content)?$',
    '^(read|see|watch) (more|also|next)\\b',
    '^(related|more)( (stories|articles|coverage|reading|news))?\\s*[:|]',
    '^don.?t miss\\b',
    '^recommended\\b',
    '^continue reading\\b',
    '^(sign up|subscribe)\\b',
    '^click here\\b',
    '^(image|photo|picture|video|graphic|illustration|credit|source)s?( credit)?\\s*[:|]',
    '^(image|photo)s?:? (getty|ap|reuters|afp|shutterstock)\\b',
    '^this slideshow requires javascript',
    '^skip to (main )?content',
    '^share (this|on)\\b',
    '^(follow|like) us on\\b',
    '^(published|updated|posted)\\s*[:]?\\s*\\d',
    '^image \\d+ of \\d+$',
    '^\\d+ of \\d+$',
    '^(listen|print|email|share|tweet|comments?)$',
    '^getty images$',
  ].join('|'),
  'i',
);

const BLOCK_SELECTOR = 'p, li, h1, h2, h3, h4, h5, h6, blockquote, pre, figure, table, dd, dt';

function postClean(root: DomElement, doc: DomDocument): void {
  // 1. Short lines that are boilerplate by their wording.
  for (const el of Array.from(root.querySelectorAll('p, li, h2, h3, h4, h5, h6, div, span, figure'))) {
    if (!root.contains(el)) continue;
    const text = cleanText(el.textContent);
    if (!text) {
      if (!el.querySelector('img, pre, code, br, table') && el.tagName !== 'BR') el.remove();
      continue;
    }
    if (text.length < 120 && BOILERPLATE_LINE.test(text)) el.remove();
  }
  // 2. Blocks repeated three times or more on the page are template text (share bars, "Baixar", captions).
  const counts = new Map<string, number>();
  // Readability moved the article out of the document: count in both what is left of the page and the article.
  const leafSelector = 'p, li, h2, h3, h4, figcaption, span, a, div';
  const pageBlocks = [
    ...Array.from(doc.querySelectorAll(leafSelector)),
    ...Array.from(root.querySelectorAll(leafSelector)),
  ].filter((e) => e.children.length === 0);
  for (const el of pageBlocks) {
    const t = cleanText(el.textContent).toLowerCase();
    if (t.length >= 3 && t.length < 200) counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  for (const el of Array.from(root.querySelectorAll(BLOCK_SELECTOR))) {
    if (!root.contains(el)) continue;
    const t = cleanText(el.textContent).toLowerCase();
    if (t.length < 200 && (counts.get(t) ?? 0) >= 3) el.remove();
  }
  // 3. Lists and blocks that are mostly links (related-story lists, tag clouds) — unless they are a large part
  //    of the article itself (a "links of the week" post is made of links).
  const rootText = Math.max(1, cleanText(root.textContent).length);
  for (const el of Array.from(root.querySelectorAll('ul, ol, div, section'))) {
    if (!root.contains(el)) continue;
    const text = cleanText(el.textContent);
    if (!text) continue;
    let linkText = 0;
    for (const a of Array.from(el.querySelectorAll('a'))) linkText += cleanText(a.textContent).length;
    const items = el.querySelectorAll('li').length;
    if (
      linkText / text.length > 0.8 &&
      (items >= 2 || text.length < 200) &&
      text.length < rootText * 0.3 &&
      !el.querySelector('pre, code')
    ) {
      el.remove();
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Fallback: collect paragraphs of the container with the most paragraph text

function paragraphFallback(doc: DomDocument): string {
  const body = doc.body;
  if (!body) return '';
  let best: DomElement = body;
  let bestScore = 0;
  for (const el of Array.from(body.querySelectorAll('article, main, section, div'))) {
    let s = 0;
    for (const p of Array.from(el.querySelectorAll(':scope > p, :scope > * > p'))) {
      const t = cleanText(p.textContent);
      if (t.length > 40) s += t.length;
    }
    if (s > bestScore) {
      bestScore = s;
      best = el;
    }
  }
  const blocks: string[] = [];
  for (const el of Array.from(best.querySelectorAll('p, h2, h3, h4, li, pre, blockquote'))) {
    if (el.parentElement?.closest('p, li, pre, blockquote') && el.tagName !== 'PRE') continue;
    const t = el.tagName === 'PRE' ? htmlToMarkdown(el) : cleanText(el.textContent);
    if (t)
      blocks.push(
        /^H\d$/.test(el.tagName) ? `${'#'.repeat(Number(el.tagName[1]))} ${t}` : el.tagName === 'LI' ? `- ${t}` : t,
      );
  }
  return blocks.join('\n\n');
}

function articleBodyToMarkdown(body: string): string {
  const text = /<\/?(p|div|br|h\d|li)\b/i.test(body) ? htmlToMarkdown(body) : body;
  return tidyMarkdown(text.replace(/\r\n?/g, '\n'));
}

function wordCount(s: string): number {
  return (s.match(/[\p{L}\p{N}_]+/gu) ?? []).length;
}

// ---------------------------------------------------------------------------------------------------------

/** Extracts the main article from an HTML page. Never throws on malformed HTML; `content` may be empty. */
export function extractArticle(html: string, url?: string, options: ExtractOptions = {}): ExtractedArticle {
  const metaDoc = parseDocument(html);
  const meta = extractMetadata(metaDoc);

  const doc = parseDocument(html);
  if (url) setBaseUrl(doc, url);
  if (!options.plainReadability) prune(doc);

  let content = '';
  let method: ExtractedArticle['method'] = 'none';
  let readabilityTitle: string | undefined;
  let byline: string | undefined;
  try {
    const reader = new Readability<DomNode>(doc, {
      serializer: (n: DomNode) => n,
      charThreshold: 400,
      keepClasses: true,
    });
    const result = reader.parse();
    readabilityTitle = cleanText(result?.title) || undefined;
    byline = cleanText(result?.byline) || undefined;
    const node = result?.content as DomElement | null | undefined;
    if (node) {
      if (!options.plainReadability) postClean(node, doc);
      content = htmlToMarkdown(node);
      method = 'readability';
    }
  } catch {
    content = '';
  }

  if (!options.plainReadability) {
    const words = wordCount(content);
    const ldBody = meta.articleBody ? articleBodyToMarkdown(meta.articleBody) : '';
    if (ldBody && wordCount(ldBody) > Math.max(50, words * 1.5)) {
      content = ldBody;
      method = 'json-ld';
    } else if (words < 60) {
      const fallbackDoc = parseDocument(html);
      prune(fallbackDoc);
      const para = paragraphFallback(fallbackDoc);
      if (wordCount(para) > words * 1.5) {
        content = tidyMarkdown(para);
        method = 'paragraphs';
      }
    }
  }

  const title = meta.title ?? readabilityTitle ?? '';
  const out: ExtractedArticle = {
    title,
    subtitle: meta.subtitle ?? '',
    content,
    method: content ? method : 'none',
    wordCount: wordCount(content),
  };
  const author = meta.author ?? byline;
  if (author) out.author = author;
  if (meta.publishedAt) out.publishedAt = meta.publishedAt;
  if (meta.siteName) out.siteName = meta.siteName;
  if (meta.language) out.language = meta.language;
  if (meta.canonicalUrl) out.canonicalUrl = meta.canonicalUrl;
  if (meta.tags) out.tags = meta.tags;
  if (meta.paywalled) out.paywalled = true;
  return out;
}

function setBaseUrl(doc: DomDocument, url: string): void {
  // Readability resolves relative links against documentURI/baseURI; linkedom has no URL, add a <base>.
  if (doc.querySelector('base[href]') || !doc.head) return;
  const base = doc.createElement('base');
  base.setAttribute('href', url);
  doc.head.appendChild(base);
}
