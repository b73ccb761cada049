import robotsParser from 'robots-parser';
import { CrawlError, isCrawlError } from './errors';

/**
 * robots.txt, per RFC 9309: fetched once per origin and cached (1 h by default); 2xx → parsed; 4xx (none
 * published) → everything allowed; 5xx, timeouts and network errors → the RFC says assume "disallow all", so the
 * page is not fetched and the error is reported as retryable ("robots.txt unreachable"), to be tried again later.
 */

export interface RobotsOptions {
  /** product token matched against User-agent lines (default "LLMTwinBot") */
  userAgentToken?: string;
  ttlMs?: number;
  maxEntries?: number;
}

export interface RobotsVerdict {
  allowed: boolean;
  /** Crawl-delay for our user agent, seconds */
  crawlDelay?: number;
}

/** What RobotsCache needs from the fetcher: GET a URL without robots checks, text body, status. */
export type RobotsTextFetcher = (url: string) => Promise<{ status: number; body: string }>;

interface Entry {
  expires: number;
  robot?: ReturnType<typeof robotsParser>;
}

export class RobotsCache {
  readonly userAgentToken: string;
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Entry>>();

  constructor(
    private readonly fetchText: RobotsTextFetcher,
    options: RobotsOptions = {},
  ) {
    this.userAgentToken = options.userAgentToken ?? 'LLMTwinBot';
    this.ttlMs = options.ttlMs ?? 3_600_000;
    this.maxEntries = options.maxEntries ?? 5_000;
  }

  async check(url: string): Promise<RobotsVerdict> {
    const origin = new URL(url).origin;
    const entry = await this.entryFor(origin);
    if (!entry.robot) return { allowed: true };
    const allowed = entry.robot.isAllowed(url, this.userAgentToken) !== false;
    const crawlDelay = entry.robot.getCrawlDelay(this.userAgentToken);
    return crawlDelay === undefined ? { allowed } : { allowed, crawlDelay };
  }

  /** Throws CrawlError('robots') when robots.txt disallows the URL. */
  async assertAllowed(url: string): Promise<RobotsVerdict> {
    const verdict = await this.check(url);
    if (!verdict.allowed)
      throw new CrawlError(
        'robots',
        `robots.txt of ${new URL(url).host} disallows ${new URL(url).pathname} for ${this.userAgentToken}`,
        { url },
      );
    return verdict;
  }

  private async entryFor(origin: string): Promise<Entry> {
    const cached = this.entries.get(origin);
    if (cached && cached.expires > Date.now()) return cached;
    let pending = this.inflight.get(origin);
    if (!pending) {
      pending = this.load(origin).finally(() => this.inflight.delete(origin));
      this.inflight.set(origin, pending);
    }
    return pending;
  }

  private async load(origin: string): Promise<Entry> {
    const robotsUrl = `${origin}/robots.txt`;
    let entry: Entry;
    try {
      const { status, body } = await this.fetchText(robotsUrl);
      if (status >= 200 && status < 300)
        entry = { expires: Date.now() + this.ttlMs, robot: robotsParser(robotsUrl, body) };
      else if (status >= 400 && status < 500) entry = { expires: Date.now() + this.ttlMs };
      else
        throw new CrawlError('http-5xx', `robots.txt of ${new URL(origin).host} answered HTTP ${status}`, {
          url: robotsUrl,
          status,
        });
    } catch (err) {
      if (isCrawlError(err) && err.kind === 'http-4xx') {
        entry = { expires: Date.now() + this.ttlMs };
      } else if (isCrawlError(err) && !err.retryable) {
        // A robots.txt that is blocked, too large or of a strange type is not a reason to give up on the site's
        // pages, which get their own checks: treat as "no robots.txt".
        entry = { expires: Date.now() + this.ttlMs };
      } else {
        const kind = isCrawlError(err) ? err.kind : 'network';
        throw new CrawlError(
          kind,
          `robots.txt of ${new URL(origin).host} unreachable (RFC 9309: assume disallow; retry later): ${(err as Error).message}`,
          {
            url: robotsUrl,
            cause: err,
            ...(isCrawlError(err) && err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
          },
        );
      }
    }
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(origin, entry);
    return entry;
  }
}
