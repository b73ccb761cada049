import { readFile } from 'node:fs/promises';
import { parse as parseCsv } from 'csv-parse/sync';
import { unzipSync } from 'fflate';
import { normalizeLink, rawDocumentId } from '../domain/links';
import { contentHash, wordCount } from './crawlers/common';
import { CrawlError } from './errors';
import { extractArticle } from './extraction';
import type { CrawlResult, CrawlerId } from './types';

/**
 * The LinkedIn data export ("Get a copy of your data" → a .zip): posts from Shares.csv (columns Date, ShareLink,
 * ShareCommentary, SharedUrl, MediaUrl, Visibility) and long-form articles from Articles/Articles/*.html.
 * Each becomes a CrawlResult (posts: category 'posts', content {Content}; articles: category 'articles',
 * content {Title, Subtitle, Content}), platform 'linkedin', keyed by the post's / article's link.
 *
 * Zip safety: only the entries we read are inflated, each capped (default 50 MiB uncompressed) — a zip bomb in
 * another entry costs nothing.
 */

export const LINKEDIN_EXPORT_CRAWLER: CrawlerId = { name: 'linkedin-export', version: '1.0.0' };

export interface LinkedInExportOptions {
  /** largest entry inflated (default 50 MiB) */
  maxEntryBytes?: number;
}

export interface LinkedInExportResult {
  posts: CrawlResult[];
  articles: CrawlResult[];
  /** rows or files not imported, with the reason (never silently dropped) */
  skipped: { source: string; reason: string }[];
}

const SHARES = /(^|\/)shares\.csv$/i;
const ARTICLE = /(^|\/)articles\/(articles\/)?[^/]+\.html?$/i;

/** Parses an export archive (path or bytes). Throws CrawlError('parse') when it is not a LinkedIn export zip. */
export async function parseLinkedInExport(
  zip: string | Uint8Array,
  options: LinkedInExportOptions = {},
): Promise<LinkedInExportResult> {
  const bytes = typeof zip === 'string' ? new Uint8Array(await readFile(zip)) : zip;
  const maxEntry = options.maxEntryBytes ?? 50 * 1024 * 1024;
  const skipped: LinkedInExportResult['skipped'] = [];
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes, {
      filter: (file) => {
        if (!SHARES.test(file.name) && !ARTICLE.test(file.name)) return false;
        if (file.originalSize > maxEntry) {
          skipped.push({
            source: file.name,
            reason: `entry of ${file.originalSize} bytes exceeds the ${maxEntry}-byte cap`,
          });
          return false;
        }
        return true;
      },
    });
  } catch (err) {
    throw new CrawlError('parse', `not a readable zip archive: ${(err as Error).message}`, { cause: err });
  }
  const names = Object.keys(entries);
  if (!names.length && !skipped.length)
    throw new CrawlError('parse', 'no Shares.csv or Articles/*.html in the archive: is it a LinkedIn data export?');

  const fetchedAt = new Date().toISOString();
  const decoder = new TextDecoder('utf-8', { fatal: false });
  const posts: CrawlResult[] = [];
  const articles: CrawlResult[] = [];
  const seen = new Set<string>();

  for (const name of names.filter((n) => SHARES.test(n))) {
    const rows = parseCsv<Record<string, string | undefined>>(decoder.decode(entries[name]).replace(/^\uFEFF/, ''), {
      columns: (header: string[]) => header.map((h) => h.trim()),
      skip_empty_lines: true,
      relax_quotes: true,
      relax_column_count: true,
      trim: false,
    });
    rows.forEach((row, i) => {
      const source = `${name}:${i + 2}`;
      const text = (row.ShareCommentary ?? '').replace(/\r\n?/g, '\n').replace(/^"|"$/g, '').trim();
      const rawLink = (row.ShareLink ?? '').trim();
      if (!text) {
        skipped.push({ source, reason: row.SharedUrl ? 'a re-share without commentary' : 'empty post' });
        return;
      }
      let link: string;
      try {
        link = normalizeLink(rawLink);
      } catch {
        skipped.push({ source, reason: `no valid ShareLink (${rawLink.slice(0, 80) || 'empty'})` });
        return;
      }
      if (seen.has(link)) {
        skipped.push({ source, reason: 'duplicate of an earlier row' });
        return;
      }
      seen.add(link);
      const content = { Content: text };
      const metadata: CrawlResult['metadata'] = { wordCount: wordCount(text), extraction: 'linkedin-export' };
      const date = parseLinkedInDate(row.Date);
      if (date) metadata.publishedAt = date;
      if (row.SharedUrl) metadata.sharedUrl = row.SharedUrl;
      if (row.MediaUrl) metadata.mediaUrl = row.MediaUrl;
      if (row.Visibility) metadata.visibility = row.Visibility;
      posts.push({
        link,
        documentId: rawDocumentId(link),
        category: 'posts',
        platform: 'linkedin',
        content,
        metadata,
        finalUrl: link,
        httpStatus: null,
        contentHash: contentHash(content),
        crawler: LINKEDIN_EXPORT_CRAWLER,
        fetchedAt,
        completeness: 'complete',
        warnings: [],
      });
    });
  }

  for (const name of names.filter((n) => ARTICLE.test(n))) {
    const html = decoder.decode(entries[name]);
    const a = extractArticle(html);
    const canonical = /<a[^>]+href="(https:\/\/www\.linkedin\.com\/pulse\/[^"]+)"/i.exec(html)?.[1] ?? a.canonicalUrl;
    const slug = name
      .split('/')
      .pop()!
      .replace(/\.html?$/i, '');
    let link: string;
    try {
      link = normalizeLink(canonical ?? `https://www.linkedin.com/pulse/${encodeURIComponent(slug)}`);
    } catch {
      skipped.push({ source: name, reason: 'article without a usable link' });
      continue;
    }
    if (!a.content.trim()) {
      skipped.push({ source: name, reason: 'article without text' });
      continue;
    }
    if (seen.has(link)) {
      skipped.push({ source: name, reason: 'duplicate article' });
      continue;
    }
    seen.add(link);
    const content = { Title: a.title, Subtitle: a.subtitle, Content: a.content };
    const metadata: CrawlResult['metadata'] = { wordCount: a.wordCount, extraction: 'linkedin-export' };
    if (a.publishedAt) metadata.publishedAt = a.publishedAt;
    articles.push({
      link,
      documentId: rawDocumentId(link),
      category: 'articles',
      platform: 'linkedin',
      content,
      metadata,
      finalUrl: link,
      httpStatus: null,
      contentHash: contentHash(content),
      crawler: LINKEDIN_EXPORT_CRAWLER,
      fetchedAt,
      completeness: 'complete',
      warnings: [],
    });
  }
  return { posts, articles, skipped };
}

/** "2023-05-04 10:11:12" (UTC in exports) → ISO; undefined when unparseable. */
function parseLinkedInDate(value: string | undefined): string | undefined {
  const v = (value ?? '').trim();
  if (!v) return undefined;
  const iso = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?$/.test(v) ? `${v.replace(' ', 'T')}Z` : v;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}
