import type { Fetcher, FetchedPage } from './fetcher';
import type { GithubOptions } from './crawlers/github';

/** Warehouse collections, as in the reference project. */
export type DocumentCategory = 'articles' | 'posts' | 'repositories';

/** Whether the stored text is the whole document. */
export type Completeness = 'complete' | 'paywalled' | 'truncated';

export interface CrawlerId {
  name: string;
  version: string;
}

/**
 * What one crawl returns: a plain, JSON-serialisable object (safe as a Temporal activity result when small; for
 * big repositories pass it to the warehouse inside the activity and return only ids).
 */
export interface CrawlResult {
  /** normalised link: the document's identity */
  link: string;
  /** UUIDv5 of the normalised link (src/domain/links.ts) */
  documentId: string;
  category: DocumentCategory;
  /** 'medium' | 'substack' | 'github' | 'linkedin' | the host name for other sites */
  platform: string;
  /**
   * Reference-compatible content: articles {Title, Subtitle, Content}, posts {Content}, repositories
   * {path: text}. Content is Markdown-like text (paragraphs, headings, lists, quotes, code fences).
   */
  content: Record<string, string>;
  /** facts about the document that are not its text: author, dates, tags, repository stats */
  metadata: CrawlMetadata;
  finalUrl: string;
  /** HTTP status of the final response; null for git clones and export files */
  httpStatus: number | null;
  /** sha256 (hex) of the canonical JSON of `content`: equal hashes ⇔ unchanged text */
  contentHash: string;
  crawler: CrawlerId;
  fetchedAt: string;
  completeness: Completeness;
  /** non-fatal notes (caps hit, fallbacks used) */
  warnings: string[];
}

export interface CrawlMetadata {
  author?: string;
  publishedAt?: string;
  siteName?: string;
  language?: string;
  tags?: string[];
  canonicalUrl?: string;
  wordCount?: number;
  /** how the body was found: 'medium' | 'substack' | 'readability' | 'json-ld' | 'paragraphs' | ... */
  extraction?: string;
  [key: string]: unknown;
}

export interface CrawlOptions {
  /** shared fetcher (one per worker process: connection pool, politeness, robots cache); default: getDefaultFetcher() */
  fetcher?: Fetcher;
  /** return paywalled / truncated articles (completeness says so) instead of throwing 'paywalled' / 'truncated' */
  allowPartial?: boolean;
  github?: GithubOptions;
  signal?: AbortSignal;
}

/** A crawler for HTML pages: chosen by URL, or by the fetched page for custom domains. */
export interface HtmlCrawler {
  readonly id: CrawlerId;
  readonly platform: string;
  matchesUrl(url: URL): boolean;
  /** recognises the platform from the page itself (custom domains) */
  matchesPage?(html: string): boolean;
  extract(page: FetchedPage, options: CrawlOptions): ArticleContent;
}

/** What an HTML crawler extracts from a page. */
export interface ArticleContent {
  title: string;
  subtitle: string;
  content: string;
  completeness: Completeness;
  metadata: CrawlMetadata;
  warnings: string[];
}
