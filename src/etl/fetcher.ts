import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { Agent, request } from 'undici';
import { CrawlError, errorForStatus, isCrawlError, parseRetryAfter } from './errors';
import { HostScheduler, type PolitenessOptions } from './politeness';
import { RobotsCache, type RobotsOptions } from './robots';
import { SsrfPolicy, type SsrfOptions } from './ssrf';

/**
 * The HTTP fetcher every crawler uses. One instance per worker process (it owns a connection pool, the per-host
 * scheduler and the robots.txt cache); see docs/etl.md.
 *
 * Per request: scheme and credential checks → SSRF check (literal IPs here, host names inside the connection's
 * DNS lookup) → robots.txt → per-host slot → GET with connect / header / idle-body / total timeouts → redirects
 * followed by hand, each hop re-checked (SSRF, robots, scheme), at most `maxRedirects`, loops detected →
 * status classification (429/503 with Retry-After) → content-type check → streamed body, decompressed
 * (gzip, deflate, br) and cut off at `maxBodyBytes` → charset detection and decoding (invalid bytes become U+FFFD).
 */

export const CRAWLER_USER_AGENT =
  'LLMTwinBot/0.1 (crawls the writing of the person who asked for it; respects robots.txt)';

export const HTML_CONTENT_TYPES = ['text/html', 'application/xhtml+xml'];

export interface FetcherOptions {
  userAgent?: string;
  /** TCP+TLS connect timeout (default 10 s) */
  connectTimeoutMs?: number;
  /** time to receive the response headers (default 20 s) */
  headersTimeoutMs?: number;
  /** longest pause between two body chunks (default 20 s) */
  bodyTimeoutMs?: number;
  /** whole fetch including redirects and body (default 60 s) */
  totalTimeoutMs?: number;
  /** maximum decoded body size in bytes (default 5 MiB) */
  maxBodyBytes?: number;
  /** redirects followed before giving up (default 5) */
  maxRedirects?: number;
  /** SSRF guard; `allow` names IPs/CIDRs that may be fetched although not public (tests, internal mirrors) */
  ssrf?: SsrfOptions;
  /** robots.txt respected by default; `false` turns it off (only for sites you own / tests) */
  robots?: boolean | RobotsOptions;
  /** per-host politeness; `false` turns it off (benchmarks against a local server) */
  politeness?: false | PolitenessOptions;
  /** max sockets per origin in the pool (default 8) */
  connectionsPerOrigin?: number;
}

export interface FetchRequestOptions {
  /** accepted media types (default: HTML); `'*'` accepts anything */
  accept?: readonly string[] | '*';
  /** overrides the fetcher's maxBodyBytes for this request */
  maxBodyBytes?: number;
  /** return the first maxBodyBytes instead of failing with too-large (robots.txt) */
  truncate?: boolean;
  /** skip robots.txt for this request */
  skipRobots?: boolean;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

export interface FetchedPage {
  /** URL asked for */
  url: string;
  /** URL of the response after redirects */
  finalUrl: string;
  status: number;
  redirects: string[];
  headers: Record<string, string>;
  /** media type without parameters, lower case ('' when the server sent none) */
  contentType: string;
  /** charset used to decode the body */
  charset: string;
  /** decoded body */
  body: string;
  /** decoded (decompressed) byte count */
  bytes: number;
  truncated: boolean;
  fetchedAt: string;
}

const DEFAULTS = {
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 20_000,
  bodyTimeoutMs: 20_000,
  totalTimeoutMs: 60_000,
  maxBodyBytes: 5 * 1024 * 1024,
  maxRedirects: 5,
};

export class Fetcher {
  readonly options: Required<
    Pick<
      FetcherOptions,
      'connectTimeoutMs' | 'headersTimeoutMs' | 'bodyTimeoutMs' | 'totalTimeoutMs' | 'maxBodyBytes' | 'maxRedirects'
    >
  > & {
    userAgent: string;
  };
  readonly ssrf: SsrfPolicy;
  readonly scheduler: HostScheduler;
  readonly robots: RobotsCache | undefined;
  private readonly agent: Agent;

  constructor(options: FetcherOptions = {}) {
    this.options = {
      connectTimeoutMs: options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      headersTimeoutMs: options.headersTimeoutMs ?? DEFAULTS.headersTimeoutMs,
      bodyTimeoutMs: options.bodyTimeoutMs ?? DEFAULTS.bodyTimeoutMs,
      totalTimeoutMs: options.totalTimeoutMs ?? DEFAULTS.totalTimeoutMs,
      maxBodyBytes: options.maxBodyBytes ?? DEFAULTS.maxBodyBytes,
      maxRedirects: options.maxRedirects ?? DEFAULTS.maxRedirects,
      userAgent: options.userAgent ?? CRAWLER_USER_AGENT,
    };
    this.ssrf = new SsrfPolicy(options.ssrf);
    this.scheduler =
      options.politeness === false ? HostScheduler.unlimited() : new HostScheduler(options.politeness ?? {});
    this.agent = new Agent({
      connect: { timeout: this.options.connectTimeoutMs, lookup: this.ssrf.guardedLookup },
      headersTimeout: this.options.headersTimeoutMs,
      bodyTimeout: this.options.bodyTimeoutMs,
      connections: options.connectionsPerOrigin ?? 8,
      keepAliveTimeout: 10_000,
    });
    const robotsOption = options.robots ?? true;
    this.robots =
      robotsOption === false
        ? undefined
        : new RobotsCache(
            async (url) => {
              const page = await this.fetch(url, {
                accept: '*',
                skipRobots: true,
                maxBodyBytes: 512 * 1024,
                truncate: true,
              });
              return { status: page.status, body: page.body };
            },
            robotsOption === true ? {} : robotsOption,
          );
  }

  /** GET a page. Resolves only for 2xx responses of an accepted type; everything else is a CrawlError. */
  async fetch(url: string, request: FetchRequestOptions = {}): Promise<FetchedPage> {
    const deadline = AbortSignal.timeout(this.options.totalTimeoutMs);
    const signal = request.signal ? AbortSignal.any([deadline, request.signal]) : deadline;
    const redirects: string[] = [];
    const seen = new Set<string>();
    let current = url;
    for (;;) {
      const target = this.checkUrl(current, url);
      if (seen.has(target.href)) {
        throw new CrawlError('too-many-redirects', `redirect loop: ${[...redirects].join(' → ')}`, {
          url: target.href,
          data: { redirects },
        });
      }
      seen.add(target.href);
      if (this.robots && !request.skipRobots) {
        const verdict = await this.robots.assertAllowed(target.href);
        this.scheduler.setCrawlDelay(target.host, verdict.crawlDelay);
      }
      const result = await this.scheduler.run(target.host, () => this.once(target, request, signal));
      if ('redirect' in result) {
        if (redirects.length >= this.options.maxRedirects) {
          throw new CrawlError('too-many-redirects', `more than ${this.options.maxRedirects} redirects`, {
            url: target.href,
            status: result.status,
            data: { redirects },
          });
        }
        redirects.push(result.redirect);
        current = result.redirect;
        continue;
      }
      return { ...result, url, redirects };
    }
  }

  /** Closes the connection pool. */
  async close(): Promise<void> {
    await this.agent.close();
  }

  private checkUrl(href: string, original: string): URL {
    let target: URL;
    try {
      target = new URL(href);
    } catch {
      throw new CrawlError('invalid-url', `not a URL: ${href}`, { url: original });
    }
    if (target.protocol !== 'http:' && target.protocol !== 'https:') {
      throw new CrawlError(
        href === original ? 'invalid-url' : 'blocked',
        `only http(s) can be fetched, got ${target.protocol}`,
        { url: href },
      );
    }
    if (target.username || target.password) {
      throw new CrawlError('invalid-url', 'URLs with credentials (user:password@host) are refused', {
        url: `${target.protocol}//${target.host}${target.pathname}`,
      });
    }
    target.hash = '';
    const host = target.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host)) this.ssrf.assertAllowed(host, host, target.href);
    return target;
  }

  private async once(
    target: URL,
    options: FetchRequestOptions,
    signal: AbortSignal,
  ): Promise<{ redirect: string; status: number } | Omit<FetchedPage, 'url' | 'redirects'>> {
    const href = target.href;
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(href, {
        method: 'GET',
        dispatcher: this.agent,
        signal,
        headers: {
          'user-agent': this.options.userAgent,
          accept: options.accept === '*' ? '*/*' : 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.5',
          'accept-encoding': 'gzip, deflate, br',
          'accept-language': 'en;q=1, *;q=0.5',
          ...options.headers,
        },
      });
    } catch (err) {
      throw classifyTransportError(err, href, signal);
    }
    // Bodies we stop reading (redirects, errors, caps) are destroyed; undici then emits "aborted" on them.
    res.body.on('error', () => undefined);
    const headers = flattenHeaders(res.headers);
    const status = res.statusCode;

    if (status >= 300 && status < 400 && status !== 304) {
      res.body.destroy();
      const location = headers.location;
      if (!location)
        throw new CrawlError('http-4xx', `HTTP ${status} without a Location header`, { url: href, status });
      let next: string;
      try {
        next = new URL(location, href).href;
      } catch {
        throw new CrawlError('invalid-url', `redirect to an invalid URL: ${location.slice(0, 200)}`, {
          url: href,
          status,
        });
      }
      return { redirect: next, status };
    }
    if (status < 200 || status >= 300) {
      res.body.destroy();
      throw errorForStatus(status, href, parseRetryAfter(headers['retry-after']));
    }

    const contentType = (headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const accept = options.accept ?? HTML_CONTENT_TYPES;
    if (accept !== '*' && contentType && !accept.includes(contentType)) {
      res.body.destroy();
      throw new CrawlError('bad-content-type', `expected ${accept.join(' or ')}, got ${contentType}`, {
        url: href,
        status,
        data: { contentType },
      });
    }
    const maxBytes = options.maxBodyBytes ?? this.options.maxBodyBytes;
    const declared = Number(headers['content-length']);
    const encoding = (headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (!options.truncate && encoding === 'identity' && Number.isFinite(declared) && declared > maxBytes) {
      res.body.destroy();
      throw new CrawlError('too-large', `body of ${declared} bytes exceeds the ${maxBytes}-byte limit`, {
        url: href,
        status,
        data: { bytes: declared, limit: maxBytes },
      });
    }

    const { bytes, truncated } = await readBody(res.body, encoding, maxBytes, !!options.truncate, href, signal);
    if (accept !== '*' && !contentType && !looksLikeHtml(bytes)) {
      throw new CrawlError('bad-content-type', 'no Content-Type and the body is not HTML', { url: href, status });
    }
    const charset = detectCharset(headers['content-type'], bytes);
    return {
      finalUrl: href,
      status,
      headers,
      contentType,
      charset,
      body: decode(bytes, charset),
      bytes: bytes.length,
      truncated,
      fetchedAt: new Date().toISOString(),
    };
  }
}

// ---------------------------------------------------------------------------------------------------------

function flattenHeaders(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw))
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

async function readBody(
  body: Readable,
  encoding: string,
  maxBytes: number,
  truncate: boolean,
  url: string,
  signal: AbortSignal,
): Promise<{ bytes: Buffer; truncated: boolean }> {
  let stream: Readable = body;
  if (encoding === 'gzip' || encoding === 'x-gzip') stream = body.pipe(createGunzip());
  else if (encoding === 'br') stream = body.pipe(createBrotliDecompress());
  else if (encoding === 'deflate') stream = body.pipe(createInflate());
  else if (encoding !== 'identity' && encoding !== '') {
    body.destroy();
    throw new CrawlError('bad-content-type', `unsupported Content-Encoding ${encoding}`, { url });
  }
  if (stream !== body) body.on('error', (err) => stream.destroy(err));
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of stream) {
      const buf = chunk as Buffer;
      if (total + buf.length > maxBytes) {
        if (truncate) {
          chunks.push(buf.subarray(0, maxBytes - total));
          total = maxBytes;
          body.destroy();
          stream.destroy();
          return { bytes: Buffer.concat(chunks, total), truncated: true };
        }
        body.destroy();
        stream.destroy();
        throw new CrawlError('too-large', `body exceeds the ${maxBytes}-byte limit`, {
          url,
          data: { limit: maxBytes },
        });
      }
      chunks.push(buf);
      total += buf.length;
    }
  } catch (err) {
    body.destroy();
    if (isCrawlError(err)) throw err;
    const code = errorCode(err);
    if (code.startsWith('Z_') || code.startsWith('ERR_BROTLI') || code === 'ERR__ERROR_FORMAT_PADDING_1') {
      throw new CrawlError('parse', `corrupt ${encoding} body: ${(err as Error).message}`, { url, cause: err });
    }
    throw classifyTransportError(err, url, signal);
  }
  return { bytes: Buffer.concat(chunks, total), truncated: false };
}

function errorCode(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return '';
}

/** Maps undici / socket / DNS errors onto crawl error kinds. */
export function classifyTransportError(err: unknown, url: string, signal?: AbortSignal): CrawlError {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e; depth++) {
    if (isCrawlError(e)) return e; // e.g. the SSRF guard inside the DNS lookup
    e = (e as { cause?: unknown }).cause;
  }
  const message = (err as Error)?.message ?? String(err);
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof Error && reason.name === 'TimeoutError')
      return new CrawlError('timeout', 'total fetch time limit exceeded', { url, cause: err });
    return new CrawlError('network', `fetch aborted: ${reason instanceof Error ? reason.message : String(reason)}`, {
      url,
      cause: err,
    });
  }
  const code = errorCode(err);
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new CrawlError('timeout', `connect timeout to ${safeHost(url)}`, { url, cause: err });
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new CrawlError('timeout', `no response headers from ${safeHost(url)} in time`, { url, cause: err });
    case 'UND_ERR_BODY_TIMEOUT':
      return new CrawlError('timeout', `body from ${safeHost(url)} stalled`, { url, cause: err });
    case 'ETIMEDOUT':
      return new CrawlError('timeout', `timed out talking to ${safeHost(url)}`, { url, cause: err });
    case 'ENOTFOUND':
      return new CrawlError('network', `host not found: ${safeHost(url)}`, { url, cause: err });
    default:
      return new CrawlError('network', `network error from ${safeHost(url)}: ${code || message}`, { url, cause: err });
  }
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function looksLikeHtml(bytes: Buffer): boolean {
  const head = bytes.subarray(0, 1024).toString('latin1').trimStart().toLowerCase();
  return head.startsWith('<') && /<(!doctype html|html|head|body|meta|title|div|p)\b/.test(head);
}

/** Charset from the Content-Type header, a BOM, or a <meta> in the first 4 KiB; UTF-8 otherwise. */
export function detectCharset(contentTypeHeader: string | undefined, bytes: Buffer): string {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return 'utf-8';
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return 'utf-16le';
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return 'utf-16be';
  const fromHeader = /charset\s*=\s*["']?([\w.:-]+)/i.exec(contentTypeHeader ?? '')?.[1];
  if (fromHeader && isKnownCharset(fromHeader)) return fromHeader.toLowerCase();
  const head = bytes.subarray(0, 4096).toString('latin1');
  const fromMeta = /<meta[^>]+charset\s*=\s*["']?([\w.:-]+)/i.exec(head)?.[1];
  if (fromMeta && isKnownCharset(fromMeta)) return fromMeta.toLowerCase();
  return 'utf-8';
}

function isKnownCharset(label: string): boolean {
  try {
    new TextDecoder(label);
    return true;
  } catch {
    return false;
  }
}

/** Decodes with replacement characters for invalid sequences; never throws. */
export function decode(bytes: Buffer, charset: string): string {
  try {
    return new TextDecoder(charset, { fatal: false }).decode(bytes);
  } catch {
    return new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  }
}

let defaultFetcher: Fetcher | undefined;

/** The process-wide fetcher with default options (politeness and robots on, no SSRF exceptions). */
export function getDefaultFetcher(): Fetcher {
  defaultFetcher ??= new Fetcher();
  return defaultFetcher;
}
