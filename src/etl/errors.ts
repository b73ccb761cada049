/**
 * Typed crawl errors. Every failure of `crawl()` is a CrawlError whose `kind` tells the calling activity whether
 * to retry: bad input and refusals are final, transient trouble is retried with backoff.
 */

export const NON_RETRYABLE_KINDS = [
  'invalid-url',
  'unsupported',
  'blocked',
  'robots',
  'http-4xx',
  'too-large',
  'too-many-redirects',
  'bad-content-type',
  'parse',
  'paywalled',
  'truncated',
] as const;
export const RETRYABLE_KINDS = ['timeout', 'http-5xx', 'rate-limited', 'network'] as const;

export type CrawlErrorKind = (typeof NON_RETRYABLE_KINDS)[number] | (typeof RETRYABLE_KINDS)[number];

const RETRYABLE = new Set<string>(RETRYABLE_KINDS);

export function isRetryableKind(kind: CrawlErrorKind): boolean {
  return RETRYABLE.has(kind);
}

export interface CrawlErrorDetails {
  /** the URL being fetched when it failed (may be a redirect target) */
  url?: string;
  /** HTTP status, for http-4xx / http-5xx / rate-limited */
  status?: number;
  /** server-requested wait (Retry-After), for rate-limited and 503 */
  retryAfterMs?: number;
  cause?: unknown;
  /** small, JSON-serialisable extra facts (e.g. the partial article's title for paywalled) */
  data?: Record<string, unknown>;
}

export class CrawlError extends Error {
  override readonly name = 'CrawlError';
  readonly kind: CrawlErrorKind;
  readonly retryable: boolean;
  readonly url?: string;
  readonly status?: number;
  readonly retryAfterMs?: number;
  readonly data?: Record<string, unknown>;

  constructor(kind: CrawlErrorKind, message: string, details: CrawlErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.kind = kind;
    this.retryable = isRetryableKind(kind);
    if (details.url !== undefined) this.url = details.url;
    if (details.status !== undefined) this.status = details.status;
    if (details.retryAfterMs !== undefined) this.retryAfterMs = details.retryAfterMs;
    if (details.data !== undefined) this.data = details.data;
  }

  /** Plain object for activity results and logs (no stack, no cause). */
  toJSON(): {
    kind: CrawlErrorKind;
    retryable: boolean;
    message: string;
    url?: string;
    status?: number;
    retryAfterMs?: number;
    data?: Record<string, unknown>;
  } {
    return {
      kind: this.kind,
      retryable: this.retryable,
      message: this.message,
      ...(this.url !== undefined ? { url: this.url } : {}),
      ...(this.status !== undefined ? { status: this.status } : {}),
      ...(this.retryAfterMs !== undefined ? { retryAfterMs: this.retryAfterMs } : {}),
      ...(this.data !== undefined ? { data: this.data } : {}),
    };
  }
}

export function isCrawlError(err: unknown): err is CrawlError {
  return err instanceof CrawlError;
}

/** Classifies an HTTP status that is not a success. */
export function errorForStatus(status: number, url: string, retryAfterMs?: number): CrawlError {
  if (status === 429) {
    return new CrawlError('rate-limited', `HTTP 429 Too Many Requests from ${hostOf(url)}`, {
      url,
      status,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
  if (status >= 500) {
    return new CrawlError('http-5xx', `HTTP ${status} from ${hostOf(url)}`, {
      url,
      status,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
  if (status === 408) return new CrawlError('timeout', `HTTP 408 Request Timeout from ${hostOf(url)}`, { url, status });
  return new CrawlError('http-4xx', `HTTP ${status} from ${hostOf(url)}`, { url, status });
}

/** Parses Retry-After (delta-seconds or HTTP-date) into milliseconds from `now`; undefined when absent/invalid. */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  const trimmed = v.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
