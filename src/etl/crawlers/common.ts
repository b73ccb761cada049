import { createHash } from 'node:crypto';
import { cleanText, type DomDocument, type DomElement } from '../dom';
import { extractMetadata, type ArticleMetadata } from '../extraction';
import type { CrawlMetadata } from '../types';

/** sha256 of the canonical JSON (keys sorted) of a content object. */
export function contentHash(content: Record<string, string>): string {
  const sorted = Object.keys(content)
    .sort()
    .map((k) => [k, content[k]]);
  return createHash('sha256').update(JSON.stringify(sorted)).digest('hex');
}

export function wordCount(s: string): number {
  return (s.match(/[\p{L}\p{N}_]+/gu) ?? []).length;
}

/** First non-empty text among selectors. */
export function firstText(root: DomDocument | DomElement, selectors: string[]): string | undefined {
  for (const sel of selectors) {
    const t = cleanText(root.querySelector(sel)?.textContent);
    if (t) return t;
  }
  return undefined;
}

/** Removes every element matching any selector. */
export function removeAll(root: DomElement, selectors: string[]): void {
  for (const sel of selectors) for (const el of Array.from(root.querySelectorAll(sel))) el.remove();
}

/** Metadata of a page in CrawlMetadata shape (no articleBody). */
export function pageMetadata(meta: ArticleMetadata): CrawlMetadata {
  const out: CrawlMetadata = {};
  if (meta.author) out.author = meta.author;
  if (meta.publishedAt) out.publishedAt = meta.publishedAt;
  if (meta.siteName) out.siteName = meta.siteName;
  if (meta.language) out.language = meta.language;
  if (meta.tags) out.tags = meta.tags;
  if (meta.canonicalUrl) out.canonicalUrl = meta.canonicalUrl;
  return out;
}

export { extractMetadata };

/** Minutes from "7 min read" style labels. */
export function readingMinutes(label: string | undefined): number | undefined {
  const m = /(\d+)\s*min(?:ute)?s?\s*read/i.exec(label ?? '');
  return m?.[1] ? Number(m[1]) : undefined;
}
