import type { Duration } from '@temporalio/common';
import {
  ActivityFailure,
  ApplicationFailure,
  isCancellation,
  log,
  proxyActivities,
  TimeoutFailure,
  upsertMemo,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { EtlActivities, EtlAuthor, LinkRow, LinkStatus } from '../activities/etl';
import type { ArtifactRef } from '../src/domain/artifacts';
import { InvalidLinkError, normalizeLink } from '../src/domain/links';
import { SEARCH_ATTRIBUTES } from '../src/domain/search-attributes';
import { QUEUES } from './queues';

/**
 * digitalDataEtl — from an author's links to raw documents in the warehouse, with a per-link account.
 *
 * 1. get-or-create the author (twin-etl);
 * 2. normalise every link here (pure code): invalid links are 'failed: invalid-url', a link equal to an earlier
 *    one after normalisation is 'skipped-duplicate' and is not crawled twice;
 * 3. crawl the rest with one `crawlLink` activity per link, at most `maxInFlight` at a time; final problems come
 *    back as rows, transient ones are retried by Temporal (Retry-After honoured) and, once the attempts are
 *    spent, become 'failed: <kind>: <reason> (gave up after N attempts)';
 * 4. record the raw-documents ArtifactRef of every stored or unchanged document.
 *
 * Invariant: stored + unchanged + skipped-duplicate + unsupported + failed = links given (one row per link, in
 * input order). Rows are small (~200 bytes, reasons clipped to 300 characters); a run takes at most
 * MAX_LINKS_PER_RUN links, so the result stays under ~250 KB and the history small — split longer lists into
 * several runs (`twin etl` does).
 */

export const MAX_LINKS_PER_RUN = 1000;
export const DEFAULT_MAX_IN_FLIGHT = 8;
const MAX_IN_FLIGHT_LIMIT = 64;

export interface DigitalDataEtlInput {
  /** the author's full name, e.g. "Maxime Labonne" */
  author: string;
  links: string[];
  /** re-crawl links already stored; documents are updated only when their content hash changed */
  refresh?: boolean;
  /** crawlLink activities in flight at once (default 8, at most 64) */
  maxInFlight?: number;
  /** retry policy of crawlLink for transient failures (default: 5 attempts, 2 s doubling to 1 min) */
  retry?: { maximumAttempts?: number; initialInterval?: Duration; maximumInterval?: Duration };
}

export interface EtlCounts {
  links: number;
  byStatus: Record<LinkStatus, number>;
  /** platform → status → links ('unknown' for links that are not URLs) */
  byPlatform: Record<string, Partial<Record<LinkStatus, number>>>;
}

export interface DigitalDataEtlResult {
  author: EtlAuthor;
  refresh: boolean;
  rows: LinkRow[];
  counts: EtlCounts;
  /** the raw-documents artifact (null when no document was stored or found) */
  artifact: ArtifactRef | null;
}

const { getOrCreateAuthor, recordEtlArtifact } = proxyActivities<EtlActivities>({
  taskQueue: QUEUES.etl,
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
});

function clip(text: string, max = 300): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function countRows(rows: LinkRow[]): EtlCounts {
  const byStatus: Record<LinkStatus, number> = {
    stored: 0,
    unchanged: 0,
    'skipped-duplicate': 0,
    unsupported: 0,
    failed: 0,
  };
  const byPlatform: EtlCounts['byPlatform'] = {};
  for (const row of rows) {
    byStatus[row.status]++;
    const platform = (byPlatform[row.platform ?? 'unknown'] ??= {});
    platform[row.status] = (platform[row.status] ?? 0) + 1;
  }
  return { links: rows.length, byStatus, byPlatform };
}

function failureReason(error: ActivityFailure, attempts: number): { kind: string; reason: string; platform?: string } {
  const cause = error.cause;
  if (cause instanceof ApplicationFailure) {
    const kind = cause.type ?? 'error';
    const platform = (cause.details?.[0] as { platform?: unknown } | undefined)?.platform;
    return {
      kind,
      reason: `${kind}: ${clip(cause.message)} (gave up after ${attempts} attempts)`,
      ...(typeof platform === 'string' ? { platform } : {}),
    };
  }
  if (cause instanceof TimeoutFailure) {
    return {
      kind: 'timeout',
      reason: `timeout: the crawl activity timed out (${cause.timeoutType ?? 'unknown'}; gave up after ${attempts} attempts)`,
    };
  }
  return { kind: 'error', reason: `error: ${clip(cause?.message ?? error.message)}` };
}

export async function digitalDataEtl(input: DigitalDataEtlInput): Promise<DigitalDataEtlResult> {
  if (!input || typeof input.author !== 'string' || !input.author.trim()) {
    throw ApplicationFailure.nonRetryable("input.author must be the author's full name", 'BadInput');
  }
  if (!Array.isArray(input.links))
    throw ApplicationFailure.nonRetryable('input.links must be a list of links', 'BadInput');
  if (input.links.length > MAX_LINKS_PER_RUN) {
    throw ApplicationFailure.nonRetryable(
      `${input.links.length} links in one run; at most ${MAX_LINKS_PER_RUN}: split the list into several runs (twin etl does this)`,
      'TooManyLinks',
    );
  }
  const refresh = input.refresh === true;
  const links = input.links.map((link) => (typeof link === 'string' ? link : String(link)));
  const maxInFlight = Math.max(
    1,
    Math.min(MAX_IN_FLIGHT_LIMIT, Math.floor(input.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT)),
  );
  const authorName = input.author.trim().replace(/\s+/g, ' ');
  upsertSearchAttributes([
    { key: SEARCH_ATTRIBUTES.pipeline, value: 'digitalDataEtl' },
    { key: SEARCH_ATTRIBUTES.author, value: [authorName] },
    { key: SEARCH_ATTRIBUTES.status, value: 'running' },
  ]);
  upsertMemo({ author: authorName, links: links.length, refresh });

  const author = await getOrCreateAuthor(authorName);
  const etlAuthor: EtlAuthor = { id: author.id, fullName: author.fullName };
  if (author.fullName !== authorName)
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.author, value: [author.fullName] }]);

  const maximumAttempts = Math.max(1, input.retry?.maximumAttempts ?? 5);
  const { crawlLink } = proxyActivities<EtlActivities>({
    taskQueue: QUEUES.etl,
    // A GitHub clone may take 2 minutes; heartbeats (every 2 s) notice a dead worker sooner.
    startToCloseTimeout: '5 minutes',
    heartbeatTimeout: '15 seconds',
    retry: {
      initialInterval: input.retry?.initialInterval ?? '2 seconds',
      backoffCoefficient: 2,
      maximumInterval: input.retry?.maximumInterval ?? '1 minute',
      maximumAttempts,
    },
  });

  // Plan: normalise, spot duplicates. One row per link, in input order.
  const rows: (LinkRow | undefined)[] = new Array<LinkRow | undefined>(links.length);
  const firstIndex = new Map<string, number>();
  const duplicateOf = new Map<number, number>();
  const toCrawl: number[] = [];
  links.forEach((link, i) => {
    let normalized: string;
    try {
      normalized = normalizeLink(link);
    } catch (error) {
      const kind = error instanceof InvalidLinkError && error.reason === 'scheme' ? 'unsupported' : 'invalid-url';
      const reason = `${kind}: ${clip((error as Error).message)}`;
      rows[i] = { link, status: kind === 'unsupported' ? 'unsupported' : 'failed', reason, errorKind: kind };
      return;
    }
    const first = firstIndex.get(normalized);
    if (first !== undefined) {
      duplicateOf.set(i, first);
      return;
    }
    firstIndex.set(normalized, i);
    toCrawl.push(i);
  });

  const crawlOne = async (i: number): Promise<LinkRow> => {
    const link = links[i]!;
    try {
      return await crawlLink({ link, author: etlAuthor, refresh });
    } catch (error) {
      if (isCancellation(error) || !(error instanceof ActivityFailure)) throw error;
      const { kind, reason, platform } = failureReason(error, maximumAttempts);
      log.warn('link failed after retries', { link, reason });
      return { link, status: 'failed', reason, errorKind: kind, ...(platform ? { platform } : {}) };
    }
  };
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < toCrawl.length) {
      const i = toCrawl[next++]!;
      rows[i] = await crawlOne(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(maxInFlight, toCrawl.length) }, lane));

  for (const [i, first] of duplicateOf) {
    const original = rows[first]!;
    rows[i] = {
      link: links[i]!,
      status: 'skipped-duplicate',
      reason: `same link as #${first + 1} (${original.link}) after normalisation`,
      ...(original.platform ? { platform: original.platform } : {}),
      ...(original.documentId ? { documentId: original.documentId } : {}),
    };
  }
  const table = rows.map((row, i) => row ?? { link: links[i]!, status: 'failed' as const, reason: 'internal: no row' });
  const counts = countRows(table);

  const documentIds = [
    ...new Set(
      table
        .filter((r) => (r.status === 'stored' || r.status === 'unchanged') && r.documentId)
        .map((r) => r.documentId!),
    ),
  ];
  const artifact =
    documentIds.length > 0 ? await recordEtlArtifact({ author: etlAuthor, documentIds, links: links.length }) : null;

  const status = counts.byStatus.failed > 0 ? 'completed-with-failures' : 'completed';
  upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: status }]);
  upsertMemo({ counts: counts.byStatus, artifact: artifact?.id ?? null });
  log.info('digitalDataEtl finished', { author: etlAuthor.fullName, ...counts.byStatus });
  return { author: etlAuthor, refresh, rows: table, counts, artifact };
}
