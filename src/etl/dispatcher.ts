import { InvalidLinkError, normalizeLink, rawDocumentId } from '../domain/links';
import { articleCrawler } from './crawlers/article';
import { contentHash } from './crawlers/common';
import { crawlRepository, GITHUB_CRAWLER, parseGithubRepo } from './crawlers/github';
import { isLinkedInUrl, LINKEDIN_UNSUPPORTED_MESSAGE } from './crawlers/linkedin';
import { mediumCrawler } from './crawlers/medium';
import { substackCrawler } from './crawlers/substack';
import { CrawlError, isCrawlError } from './errors';
import { getDefaultFetcher, type FetchedPage } from './fetcher';
import type { ArticleContent, CrawlOptions, CrawlResult, HtmlCrawler } from './types';

/**
 * crawl(link) — the one entry point an activity calls per link.
 *
 * 1. normalise the link (invalid → 'invalid-url'; credentials refused);
 * 2. by URL: linkedin.com → 'unsupported' (use the data export); github.com/OWNER/REPO → repository crawler;
 *    medium.com / *.medium.com → Medium; *.substack.com → Substack;
 * 3. otherwise fetch the page once and pick by the page itself: Medium custom domains (Medium app meta tags),
 *    Substack custom domains (substackcdn.com assets / generator tag), else the generic article crawler;
 * 4. paywalled or truncated articles throw 'paywalled' / 'truncated' (not stored as if complete) unless
 *    options.allowPartial, in which case `completeness` says what they are.
 *
 * Resolves with a plain JSON-serialisable CrawlResult or rejects with a CrawlError (`kind`, `retryable`).
 */

/**
 * Links crawled in parallel by one caller (the workflow's bound on activities in flight). Per-host politeness
 * still applies underneath, so this mostly overlaps different sites and extraction with network waits.
 */
export const DEFAULT_CRAWL_CONCURRENCY = 8;

export const HTML_CRAWLERS: readonly HtmlCrawler[] = [mediumCrawler, substackCrawler];

export type Route = 'linkedin' | 'github' | 'github-other' | 'medium' | 'substack' | 'page';

/** Which crawler a URL goes to before anything is fetched ('page' = decided from the page). */
export function routeFor(url: URL): Route {
  if (isLinkedInUrl(url)) return 'linkedin';
  if (parseGithubRepo(url)) return 'github';
  if (url.hostname === 'github.com' || url.hostname === 'www.github.com') return 'github-other';
  if (mediumCrawler.matchesUrl(url)) return 'medium';
  if (substackCrawler.matchesUrl(url)) return 'substack';
  return 'page';
}

export async function crawl(link: string, options: CrawlOptions = {}): Promise<CrawlResult> {
  let normalized: string;
  try {
    normalized = normalizeLink(link);
  } catch (err) {
    if (err instanceof InvalidLinkError) {
      throw new CrawlError(err.reason === 'scheme' ? 'unsupported' : 'invalid-url', err.message, {
        data: { reason: err.reason },
      });
    }
    throw err;
  }
  const url = new URL(normalized);
  const documentId = rawDocumentId(normalized);
  const fetcher = options.fetcher ?? getDefaultFetcher();
  const route = routeFor(url);

  if (route === 'linkedin')
    throw new CrawlError('unsupported', `linkedin.com pages are not crawled: ${LINKEDIN_UNSUPPORTED_MESSAGE}`, {
      url: normalized,
    });

  if (route === 'github-other') {
    throw new CrawlError('unsupported', 'only GitHub repository links (https://github.com/OWNER/REPO) are crawled', {
      url: normalized,
    });
  }

  if (route === 'github') {
    const { owner, repo } = parseGithubRepo(url)!;
    const r = await crawlRepository(owner, repo, fetcher.ssrf, options.github);
    const content = r.files;
    return {
      link: normalized,
      documentId,
      category: 'repositories',
      platform: 'github',
      content,
      metadata: {
        name: repo,
        owner,
        commit: r.commit,
        branch: r.branch,
        files: Object.keys(content).length,
        totalBytes: r.totalBytes,
        skipped: r.skipped,
      },
      finalUrl: `https://github.com/${owner}/${repo}`,
      httpStatus: null,
      contentHash: contentHash(content),
      crawler: GITHUB_CRAWLER,
      fetchedAt: new Date().toISOString(),
      completeness: r.completeness,
      warnings: r.warnings,
    };
  }

  const page = await fetcher.fetch(normalized, options.signal ? { signal: options.signal } : {});
  const finalUrl = new URL(page.finalUrl);
  let crawler: HtmlCrawler;
  if (route === 'medium' || mediumCrawler.matchesUrl(finalUrl)) crawler = mediumCrawler;
  else if (route === 'substack' || substackCrawler.matchesUrl(finalUrl)) crawler = substackCrawler;
  else crawler = HTML_CRAWLERS.find((c) => c.matchesPage?.(page.body)) ?? articleCrawler;

  let extracted: ArticleContent;
  try {
    extracted = crawler.extract(page, options);
  } catch (err) {
    if (isCrawlError(err)) throw err;
    throw new CrawlError('parse', `could not parse the page: ${(err as Error).message}`, {
      url: page.finalUrl,
      cause: err,
    });
  }
  return toResult(normalized, documentId, page, crawler, extracted, options);
}

function toResult(
  link: string,
  documentId: string,
  page: FetchedPage,
  crawler: HtmlCrawler,
  a: ArticleContent,
  options: CrawlOptions,
): CrawlResult {
  if (!a.content.trim() && a.completeness === 'complete') {
    throw new CrawlError('parse', 'no article text found on the page', {
      url: page.finalUrl,
      data: { crawler: crawler.id.name, title: a.title },
    });
  }
  if (a.completeness !== 'complete' && !options.allowPartial) {
    throw new CrawlError(
      a.completeness,
      `${a.completeness} article: ${a.warnings.join('; ') || 'only part of the text is readable'}`,
      {
        url: page.finalUrl,
        status: page.status,
        data: { crawler: crawler.id.name, title: a.title, words: a.metadata.wordCount ?? 0 },
      },
    );
  }
  const platform =
    crawler === articleCrawler ? new URL(page.finalUrl).hostname.replace(/^www\./, '') : crawler.platform;
  const content = { Title: a.title, Subtitle: a.subtitle, Content: a.content };
  return {
    link,
    documentId,
    category: 'articles',
    platform,
    content,
    metadata: a.metadata,
    finalUrl: page.finalUrl,
    httpStatus: page.status,
    contentHash: contentHash(content),
    crawler: crawler.id,
    fetchedAt: page.fetchedAt,
    completeness: a.completeness,
    warnings: a.warnings,
  };
}
