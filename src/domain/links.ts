import { v5 as uuidv5 } from 'uuid';

/**
 * Links: normalisation and the deterministic raw-document id.
 *
 * The raw document id is UUIDv5(normalizeLink(link), RAW_DOCUMENT_NAMESPACE), so the same article given twice —
 * with tracking parameters, a fragment, a trailing slash or a different letter case in the host — is stored once,
 * and a retried or re-run crawl writes to the same id.
 *
 * RAW_DOCUMENT_NAMESPACE = UUIDv5("urn:llm-twin-temporal:raw-document", the RFC 4122 URL namespace
 * 6ba7b811-9dad-11d1-80b4-00c04fd430c8). It is a constant: changing it changes every raw document id.
 */
export const RAW_DOCUMENT_NAMESPACE = '474da017-1736-5b59-ab1c-a4eaf790396f';

export type InvalidLinkReason = 'empty' | 'unparseable' | 'scheme' | 'no-host' | 'credentials';

export class InvalidLinkError extends Error {
  override readonly name = 'InvalidLinkError';
  constructor(
    readonly reason: InvalidLinkReason,
    message: string,
  ) {
    super(message);
  }
}

/** Query parameters that only track the visitor; removed everywhere. */
const TRACKING_PARAMS = new Set([
  'fbclid',
  'gclid',
  'dclid',
  'gbraid',
  'wbraid',
  'msclkid',
  'yclid',
  'mc_cid',
  'mc_eid',
  'igshid',
  '_hsenc',
  '_hsmi',
  'ref_src',
  'ref_url',
  'spm',
  'trk',
  'trkcampaign',
]);
/** Per-site tracking parameters (Medium's ?source=…, Substack's referral ?r=…). */
const SITE_TRACKING_PARAMS: [RegExp, Set<string>][] = [
  [/(^|\.)medium\.com$/, new Set(['source', 'gi'])],
  [/(^|\.)substack\.com$/, new Set(['r', 'showwelcome', 'triedredirect', 'triedsigningin', 's'])],
];

function isTracking(host: string, name: string): boolean {
  const lower = name.toLowerCase();
  if (lower.startsWith('utm_') || TRACKING_PARAMS.has(lower)) return true;
  return SITE_TRACKING_PARAMS.some(([re, names]) => re.test(host) && names.has(lower));
}

/**
 * Canonical form of an http(s) link, still fetchable: scheme and host lower-cased (IDN → punycode), default port,
 * fragment, tracking parameters and trailing slash removed, remaining query parameters sorted; a bare
 * "example.com/x" gets https://. GitHub repository links become https://github.com/owner/repo (lower case,
 * no .git). Throws InvalidLinkError for anything that is not an http(s) URL with a host, or that carries
 * credentials (user:password@host) — those are refused, never stored or fetched.
 */
export function normalizeLink(input: string): string {
  const raw = (input ?? '').trim();
  if (!raw) throw new InvalidLinkError('empty', 'empty link');
  const hasScheme = /^[a-z][a-z\d+.-]*:/i.test(raw) && !/^[^/:]+\.[^/:]+:\d+/.test(raw);
  // A bare "example.com/post" gets https://; a bare word without a dot is not taken for a host.
  if (!hasScheme && !/^(\/\/)?[^\s/?#]+\.[^\s/?#.]+([/?#:]|$)/.test(raw))
    throw new InvalidLinkError('unparseable', `not a URL: ${truncate(raw)}`);
  const withScheme = hasScheme ? raw : `https://${raw.replace(/^\/\//, '')}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new InvalidLinkError('unparseable', `not a URL: ${truncate(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidLinkError(
      'scheme',
      `only http and https links can be crawled, got ${url.protocol.replace(/:$/, '')}`,
    );
  }
  if (url.username || url.password)
    throw new InvalidLinkError('credentials', 'links with credentials (user:password@host) are refused');
  let host = url.hostname.replace(/\.$/, '');
  if (!host) throw new InvalidLinkError('no-host', `link has no host: ${truncate(raw)}`);
  host = host.toLowerCase();
  url.hostname = host;
  url.hash = '';

  const kept = [...url.searchParams.entries()].filter(([name]) => !isTracking(host, name));
  kept.sort(([a, av], [b, bv]) => (a === b ? av.localeCompare(bv) : a < b ? -1 : 1));
  url.search = kept.length ? `?${new URLSearchParams(kept).toString()}` : '';

  let path = url.pathname.replace(/\/{2,}/g, '/');
  if (host === 'github.com' || host === 'www.github.com') {
    const m = /^\/([^/]+)\/([^/]+?)(?:\.git)?(\/.*)?$/.exec(path);
    if (m?.[1] && m[2]) {
      url.hostname = 'github.com';
      url.protocol = 'https:';
      path = `/${m[1].toLowerCase()}/${m[2].toLowerCase()}${m[3] ?? ''}`;
    }
  }
  if (path.length > 1) path = path.replace(/\/+$/, '');
  url.pathname = path;
  return url.toString();
}

/** Deterministic id of the raw document crawled from `link` (normalised first). */
export function rawDocumentId(link: string): string {
  return uuidv5(normalizeLink(link), RAW_DOCUMENT_NAMESPACE);
}

/** Normalises when possible; returns undefined instead of throwing. */
export function tryNormalizeLink(input: string): string | undefined {
  try {
    return normalizeLink(input);
  } catch {
    return undefined;
  }
}

function truncate(s: string): string {
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}
