/** Public surface of the ETL library (fetching, crawling, extraction). Temporal glue lives in activities/. */
export { crawl, routeFor, DEFAULT_CRAWL_CONCURRENCY, type Route } from './dispatcher';
export {
  CrawlError,
  isCrawlError,
  isRetryableKind,
  NON_RETRYABLE_KINDS,
  RETRYABLE_KINDS,
  type CrawlErrorKind,
} from './errors';
export {
  Fetcher,
  getDefaultFetcher,
  CRAWLER_USER_AGENT,
  HTML_CONTENT_TYPES,
  type FetcherOptions,
  type FetchedPage,
  type FetchRequestOptions,
} from './fetcher';
export { SsrfPolicy, type SsrfOptions } from './ssrf';
export { RobotsCache, type RobotsOptions } from './robots';
export { HostScheduler, type PolitenessOptions } from './politeness';
export { extractArticle, extractMetadata, type ExtractedArticle, type ArticleMetadata } from './extraction';
export { htmlToMarkdown } from './markdown';
export { parseLinkedInExport, type LinkedInExportResult, type LinkedInExportOptions } from './linkedin-export';
export { LINKEDIN_UNSUPPORTED_MESSAGE } from './crawlers/linkedin';
export { crawlRepository, parseGithubRepo, type GithubOptions } from './crawlers/github';
export { contentHash } from './crawlers/common';
export type { CrawlResult, CrawlOptions, CrawlMetadata, DocumentCategory, Completeness, CrawlerId } from './types';
