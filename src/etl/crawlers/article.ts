import { extractArticle } from '../extraction';
import type { FetchedPage } from '../fetcher';
import type { ArticleContent, HtmlCrawler } from '../types';

/**
 * Any other article or personal blog: main-content extraction (src/etl/extraction.ts) — metadata from JSON-LD,
 * Open Graph and <meta>; body without navigation, footer, cookie banners and comments; Markdown-like text.
 */
export const articleCrawler: HtmlCrawler = {
  id: { name: 'article', version: '1.0.0' },
  platform: 'web',
  matchesUrl: () => true,
  extract(page: FetchedPage): ArticleContent {
    const a = extractArticle(page.body, page.finalUrl);
    const metadata: ArticleContent['metadata'] = { wordCount: a.wordCount, extraction: a.method };
    if (a.author) metadata.author = a.author;
    if (a.publishedAt) metadata.publishedAt = a.publishedAt;
    if (a.siteName) metadata.siteName = a.siteName;
    if (a.language) metadata.language = a.language;
    if (a.tags) metadata.tags = a.tags;
    if (a.canonicalUrl) metadata.canonicalUrl = a.canonicalUrl;
    const warnings: string[] = [];
    // Many sites mark metered articles isAccessibleForFree: false yet serve the whole text: only a short body
    // behind that flag counts as paywalled.
    const paywalled = a.paywalled === true && a.wordCount < 150;
    if (a.paywalled) metadata.accessibleForFree = false;
    if (paywalled) warnings.push(`paywalled: ${a.wordCount} words readable`);
    if (a.method === 'json-ld' || a.method === 'paragraphs') warnings.push(`body from the ${a.method} fallback`);
    return {
      title: a.title,
      subtitle: a.subtitle,
      content: a.content,
      completeness: paywalled ? 'paywalled' : 'complete',
      metadata,
      warnings,
    };
  },
};
