import { ApplicationFailure, Context } from '@temporalio/activity';
import type { ArtifactRef } from '../src/domain/artifacts';
import { InvalidLinkError, normalizeLink } from '../src/domain/links';
import { crawl, isCrawlError, routeFor, type CrawlErrorKind, type CrawlOptions, type CrawlResult } from '../src/etl';
import type { Dependencies } from '../src/infra/dependencies';
import { DocumentWarehouse, recordRawDocumentsArtifact, type Author } from '../src/infra/warehouse';
import { badInput, currentProducer, withHeartbeat } from './support';

/**
 * Activities of the digital-data ETL (twin-etl queue). Thin: they call the ETL library (src/etl) and the
 * warehouse (src/infra/warehouse) and classify errors. They return small rows and refs, never document bodies.
 */

/** What happened to one link: the row of the run's status table. */
export type LinkStatus = 'stored' | 'unchanged' | 'skipped-duplicate' | 'unsupported' | 'failed';
export const LINK_STATUSES: readonly LinkStatus[] = [
  'stored',
  'unchanged',
  'skipped-duplicate',
  'unsupported',
  'failed',
];

export interface LinkRow {
  /** the link as given */
  link: string;
  status: LinkStatus;
  /** why (failed / unsupported / skipped / unchanged / updated), e.g. "http-4xx: HTTP 404 from example.com" */
  reason?: string;
  /** the warehouse document (stored / unchanged) */
  documentId?: string;
  platform?: string;
  category?: 'articles' | 'posts' | 'repositories';
  /** CrawlError kind of a failure, for grouping ('invalid-url', 'http-5xx', ...) */
  errorKind?: string;
}

export interface EtlAuthor {
  id: string;
  fullName: string;
}

export interface CrawlLinkInput {
  link: string;
  author: EtlAuthor;
  /** re-crawl links already stored and update those whose content hash changed */
  refresh?: boolean;
}

export interface RecordEtlArtifactInput {
  author: EtlAuthor;
  /** ids of the documents this run stored or found unchanged */
  documentIds: string[];
  /** links given to the run, for the artifact's metadata */
  links: number;
}

/** Retry-After beyond this is not waited for by one activity retry (the run would stall); the next attempt may get 429 again. */
export const MAX_RETRY_AFTER_MS = 5 * 60_000;

/** The platform a link belongs to, from the URL alone (for rows of links that were never fetched or failed). */
export function platformOfLink(link: string): string | undefined {
  try {
    const url = new URL(normalizeLink(link));
    switch (routeFor(url)) {
      case 'linkedin':
        return 'linkedin';
      case 'github':
      case 'github-other':
        return 'github';
      case 'medium':
        return 'medium';
      case 'substack':
        return 'substack';
      default:
        return url.hostname.replace(/^www\./, '');
    }
  } catch {
    return undefined;
  }
}

/** A non-retryable CrawlError as a row; the run goes on with an honest account. */
export function rowForError(link: string, kind: CrawlErrorKind | 'invalid-url', message: string): LinkRow {
  const platform = platformOfLink(link);
  return {
    link,
    status: kind === 'unsupported' ? 'unsupported' : 'failed',
    reason: `${kind}: ${message.length > 300 ? `${message.slice(0, 299)}…` : message}`,
    errorKind: kind,
    ...(platform ? { platform } : {}),
  };
}

function githubOptions(template: string | undefined): CrawlOptions['github'] {
  if (!template) return undefined;
  const scheme = template.split(':')[0]!.toLowerCase();
  return {
    cloneUrl: (owner, repo) => template.replace('{owner}', owner).replace('{repo}', repo),
    allowedProtocols: [...new Set(['https', scheme])],
  };
}

export function createEtlActivities(deps: Dependencies) {
  const warehouse = async () => new DocumentWarehouse((await deps.warehouse()).db);
  const github = githubOptions(deps.settings.etl.githubCloneUrl);

  return {
    /** Finds the author by name or creates it (deterministic id); returns its id and full name. */
    async getOrCreateAuthor(name: string): Promise<Author & { created: boolean }> {
      if (typeof name !== 'string' || !name.trim()) throw badInput('author name must not be empty');
      const author = await (await warehouse()).getOrCreateAuthor(name);
      deps.log.info({ author: author.fullName, id: author.id, created: author.created }, 'author');
      return author;
    },

    /**
     * Crawls one link and stores the document. Returns the link's row. Bad input and refusals (invalid URL, 4xx,
     * unsupported site, SSRF guard, robots.txt, too large, paywalled, ...) are final and come back as a
     * 'failed' / 'unsupported' row; transient trouble (timeouts, 5xx, 429, connection resets) is thrown as a
     * retryable failure — with the server's Retry-After as the next retry delay — so Temporal retries it.
     */
    async crawlLink(input: CrawlLinkInput): Promise<LinkRow> {
      const { link, author } = input;
      let normalized: string;
      try {
        normalized = normalizeLink(link);
      } catch (error) {
        if (error instanceof InvalidLinkError) {
          return rowForError(link, error.reason === 'scheme' ? 'unsupported' : 'invalid-url', error.message);
        }
        throw error;
      }
      const context = Context.current();
      const producer = currentProducer();
      const stamp = { workflowId: producer.workflowId, runId: producer.runId };
      let phase = 'lookup';
      return withHeartbeat(
        async () => {
          const store = await warehouse();
          const existing = await store.findByLink(normalized);
          if (existing && !input.refresh) {
            const sameRun =
              existing.storedBy?.workflowId === stamp.workflowId && existing.storedBy.runId === stamp.runId;
            return {
              link,
              status: sameRun ? 'stored' : 'unchanged',
              ...(sameRun ? {} : { reason: 'already in the warehouse (refresh re-crawls it)' }),
              documentId: existing.id,
              platform: existing.platform,
              category: existing.category,
            };
          }
          phase = 'crawl';
          let result: CrawlResult;
          try {
            result = await crawl(normalized, {
              fetcher: deps.fetcher(),
              signal: context.cancellationSignal,
              ...(github ? { github } : {}),
            });
          } catch (error) {
            if (!isCrawlError(error)) throw error;
            if (!error.retryable) {
              deps.log.info({ link, kind: error.kind, reason: error.message }, 'link not crawled');
              return rowForError(link, error.kind, error.message);
            }
            deps.log.warn(
              { link, kind: error.kind, reason: error.message, attempt: producer.attempt },
              'transient crawl failure; will retry',
            );
            throw ApplicationFailure.create({
              type: error.kind,
              message: error.message,
              nonRetryable: false,
              details: [{ ...error.toJSON(), platform: platformOfLink(link) ?? null }],
              ...(error.retryAfterMs !== undefined
                ? { nextRetryDelay: Math.min(Math.max(error.retryAfterMs, 1_000), MAX_RETRY_AFTER_MS) }
                : {}),
            });
          }
          phase = 'store';
          const outcome = await store.storeCrawlResult(result, author, { storedBy: stamp, existing });
          deps.log.info(
            { link, status: outcome.status, documentId: outcome.documentId, platform: result.platform },
            'link crawled',
          );
          return {
            link,
            status: outcome.status,
            ...(outcome.updated
              ? { reason: 'content changed: updated' }
              : outcome.status === 'unchanged'
                ? { reason: 'content unchanged' }
                : {}),
            documentId: outcome.documentId,
            platform: result.platform,
            category: result.category,
          };
        },
        () => ({ link, phase }),
      );
    },

    /** Records the run's stored and unchanged documents as one 'raw-documents' ArtifactRef (see the warehouse). */
    async recordEtlArtifact(input: RecordEtlArtifactInput): Promise<ArtifactRef> {
      return recordRawDocumentsArtifact(await warehouse(), deps.artifactStore(), await deps.artifactRegistry(), {
        ...input,
        producer: currentProducer(),
        source: 'digitalDataEtl',
      });
    },
  };
}

export type EtlActivities = ReturnType<typeof createEtlActivities>;
