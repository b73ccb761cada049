import type { Collection, Db, Document } from 'mongodb';
import { v5 as uuidv5 } from 'uuid';
import { checksumOf, stableStringify, type ArtifactProducer, type ArtifactRef } from '../domain/artifacts';
import {
  DOCUMENT_CATEGORIES,
  rawDocumentFromRecord,
  type DocumentCategory,
  type RawDocument,
} from '../domain/documents';
import { normalizeLink, rawDocumentId, tryNormalizeLink } from '../domain/links';
import { contentHash } from '../etl/crawlers/common';
import type { CrawlResult } from '../etl/types';
import type { ArtifactRegistry } from './artifact-registry';
import type { ArtifactStore } from './artifact-store';

/**
 * The warehouse: the MongoDB collections `users`, `articles`, `posts` and `repositories`, in the reference
 * project's shapes (LLM Engineer's Handbook), plus crawl metadata.
 *
 * users:        { _id, first_name, last_name, name_key }
 * articles:     { _id, content: {Title, Subtitle, Content, language?}, platform, author_id, author_full_name, link, crawl }
 * posts:        { _id, content: {text, image?}, platform, author_id, author_full_name, link, image?, crawl }
 * repositories: { _id, content: {path: text}, name, platform, author_id, author_full_name, link, crawl }
 *
 * `crawl` = { source, normalizedLink, contentHash, finalUrl, fetchedAt, httpStatus, crawler {name, version},
 * completeness, warnings, metadata, storedAt, storedBy {workflowId, runId}, checkedAt } — everything the
 * reference lacks, in one field, so reference readers see the shapes they expect and `twin warehouse export`
 * can leave it out.
 *
 * Identity: a crawled document's `_id` is rawDocumentId(link) (UUIDv5 of the normalised link). A document imported
 * from the reference export keeps its own `_id`, and `document_links` maps rawDocumentId(its link) to it, so a
 * crawl of the same link finds it (and updates it in place) instead of storing it a second time. Every lookup is
 * by `_id` (FerretDB scans the whole collection for any other filter: 0.4 s per query at 1 000 articles).
 *
 * Key encoding: MongoDB-protocol servers (FerretDB always; MongoDB in update operators) refuse field names with
 * "." or a leading "$", and repository content is keyed by file path ("src/main.py"). Keys of repository content
 * (and of crawl metadata) are therefore stored percent-encoded ("%" → "%25", "." → "%2E", leading "$" → "%24");
 * `fromWarehouseRecord` and the export decode them.
 */

/** UUIDv5("urn:llm-twin-temporal:author", URL namespace): namespace of author ids. Changing it forks every author. */
export const AUTHOR_NAMESPACE = 'c1ad1af2-b0cb-5da5-b4cb-cae6a238fbc0';

export const WAREHOUSE_USERS = 'users';
/**
 * `document_links`: normalised link → document, for documents whose `_id` is not rawDocumentId(link) (imported
 * from the reference export under their own ids). Keyed by rawDocumentId(link), so every lookup is by `_id`.
 */
export const DOCUMENT_LINKS = 'document_links';

export interface DocumentLinkRecord {
  /** rawDocumentId(link) */
  _id: string;
  link: string;
  documentId: string;
  category: DocumentCategory;
}
export type WarehouseCollection = 'users' | DocumentCategory;

/** The reference project's export file per collection (`<Class>.json`, as its `tools/data_warehouse.py` writes). */
export const REFERENCE_EXPORT_FILES: Record<WarehouseCollection, string> = {
  users: 'UserDocument.json',
  articles: 'ArticleDocument.json',
  posts: 'PostDocument.json',
  repositories: 'RepositoryDocument.json',
};

export interface Author {
  id: string;
  fullName: string;
  firstName: string;
  lastName: string;
}

export interface UserRecord {
  _id: string;
  first_name: string;
  last_name: string;
  /** normalised, lower-cased full name: what get-or-create matches on (not exported) */
  name_key?: string;
}

export interface RunStamp {
  workflowId: string;
  runId: string;
}

export interface CrawlInfo {
  source: 'crawl' | 'import' | 'linkedin-export';
  normalizedLink: string | null;
  contentHash: string;
  finalUrl?: string;
  fetchedAt?: string;
  httpStatus?: number | null;
  crawler?: { name: string; version: string };
  completeness?: string;
  warnings?: string[];
  metadata?: Record<string, unknown>;
  storedAt: string;
  storedBy?: RunStamp | null;
  checkedAt?: string;
}

export interface DocumentRecord extends Document {
  _id: string;
  content: Record<string, unknown>;
  platform: string;
  author_id: string;
  author_full_name: string;
  link?: string | null;
  crawl?: CrawlInfo;
}

/** A document already in the warehouse for a link. */
export interface ExistingDocument {
  id: string;
  category: DocumentCategory;
  platform: string;
  contentHash: string | undefined;
  storedBy: RunStamp | undefined;
}

export interface StoreOutcome {
  status: 'stored' | 'unchanged';
  documentId: string;
  category: DocumentCategory;
  /** an existing document's content was replaced (refresh found new text) */
  updated: boolean;
}

export interface ImportReport {
  collection: WarehouseCollection;
  read: number;
  inserted: number;
  updated: number;
  unchanged: number;
  /** records not stored, with the reason (never dropped silently) */
  skipped: { id: string; reason: string }[];
  warnings: string[];
}

// ---------------------------------------------------------------------------------------------------------------
// Authors
// ---------------------------------------------------------------------------------------------------------------

/** Trimmed, NFC, single spaces. Throws on an empty name. */
export function normalizeAuthorName(name: string): string {
  const clean = (name ?? '').normalize('NFC').trim().replace(/\s+/g, ' ');
  if (!clean) throw new Error('author name must not be empty');
  return clean;
}

export function authorNameKey(name: string): string {
  return normalizeAuthorName(name).toLowerCase();
}

/** Deterministic id of an author created by the ETL: UUIDv5 of the lower-cased normalised name. */
export function authorId(name: string): string {
  return uuidv5(authorNameKey(name), AUTHOR_NAMESPACE);
}

/** The reference project's split: the last word is the last name, the rest the first name (one word: both). */
export function splitFullName(name: string): { first_name: string; last_name: string } {
  const tokens = normalizeAuthorName(name).split(' ');
  if (tokens.length === 1) return { first_name: tokens[0]!, last_name: tokens[0]! };
  return { first_name: tokens.slice(0, -1).join(' '), last_name: tokens[tokens.length - 1]! };
}

function authorOf(user: UserRecord): Author {
  const fullName = user.first_name === user.last_name ? user.first_name : `${user.first_name} ${user.last_name}`;
  return { id: user._id, fullName, firstName: user.first_name, lastName: user.last_name };
}

// ---------------------------------------------------------------------------------------------------------------
// Key encoding and record mapping
// ---------------------------------------------------------------------------------------------------------------

export function encodeKey(key: string): string {
  return key.replace(/%/g, '%25').replace(/\./g, '%2E').replace(/^\$/, '%24');
}

export function decodeKey(key: string): string {
  return key.replace(/%(25|2E|24)/g, (_m, code: string) => (code === '25' ? '%' : code === '2E' ? '.' : '$'));
}

function mapKeys(value: Record<string, unknown>, map: (key: string) => string, deep: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    out[map(key)] =
      deep && v !== null && typeof v === 'object' && !Array.isArray(v)
        ? mapKeys(v as Record<string, unknown>, map, deep)
        : v;
  }
  return out;
}

/** Content as stored: repository paths encoded; other categories unchanged. */
export function encodeContent(category: DocumentCategory, content: Record<string, unknown>): Record<string, unknown> {
  return category === 'repositories' ? mapKeys(content, encodeKey, false) : content;
}

export function decodeContent(category: DocumentCategory, content: Record<string, unknown>): Record<string, unknown> {
  return category === 'repositories' ? mapKeys(content, decodeKey, false) : content;
}

/** Hash of a document's (decoded) content: sha256 of its key-sorted JSON, the same function the crawlers use. */
export function hashContent(content: Record<string, unknown>): string {
  return contentHash(content as Record<string, string>);
}

/** Reads a warehouse record into the typed raw document the feature pipeline works on (keys decoded). */
export function fromWarehouseRecord(category: DocumentCategory, record: Record<string, unknown>): RawDocument {
  const { crawl: _crawl, content, ...rest } = record;
  return rawDocumentFromRecord(category, {
    ...rest,
    content: decodeContent(category, (content ?? {}) as Record<string, unknown>),
  });
}

/** The content a crawl result is stored with: reference shapes (posts: `{text}`). */
export function storedContent(result: CrawlResult): Record<string, unknown> {
  if (result.category === 'posts') {
    const image = typeof result.metadata.mediaUrl === 'string' ? result.metadata.mediaUrl : undefined;
    return { text: result.content.Content ?? result.content.text ?? '', ...(image ? { image } : {}) };
  }
  return result.content;
}

/** The reference view of a record: everything but the platform's own fields, `_id` last, keys decoded. */
export function toReferenceRecord(
  category: WarehouseCollection,
  record: Record<string, unknown>,
  options: { withCrawl?: boolean } = {},
): Record<string, unknown> {
  const { _id, crawl, name_key: _nameKey, ...rest } = record;
  const out: Record<string, unknown> = { ...rest };
  if (category !== 'users' && rest.content && typeof rest.content === 'object') {
    out.content = decodeContent(category, rest.content as Record<string, unknown>);
  }
  if (options.withCrawl && crawl !== undefined) out.crawl = crawl;
  out._id = _id;
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The warehouse
// ---------------------------------------------------------------------------------------------------------------

const EXISTING_PROJECTION = { _id: 1, platform: 1, 'crawl.contentHash': 1, 'crawl.storedBy': 1 } as const;

function existingOf(category: DocumentCategory, found: DocumentRecord): ExistingDocument {
  return {
    id: found._id,
    category,
    platform: found.platform,
    contentHash: found.crawl?.contentHash,
    storedBy: found.crawl?.storedBy ?? undefined,
  };
}

export class DocumentWarehouse {
  constructor(readonly db: Db) {}

  users(): Collection<UserRecord> {
    return this.db.collection<UserRecord>(WAREHOUSE_USERS);
  }

  documents(category: DocumentCategory): Collection<DocumentRecord> {
    return this.db.collection<DocumentRecord>(category);
  }

  /** Link aliases of documents whose id is not derived from their link (imported under the reference's ids). */
  documentLinks(): Collection<DocumentLinkRecord> {
    return this.db.collection<DocumentLinkRecord>(DOCUMENT_LINKS);
  }

  /**
   * Finds the author by name (case-insensitive on the normalised name; then by exact first/last name, for users
   * imported without a name key), or creates it with the deterministic id authorId(name). Safe under concurrency:
   * two creators race to the same `_id`, and the loser reads the winner's record.
   */
  async getOrCreateAuthor(name: string): Promise<Author & { created: boolean }> {
    const key = authorNameKey(name);
    const found = await this.findAuthor(name);
    if (found) return { ...found, created: false };
    const user: UserRecord = { _id: authorId(name), ...splitFullName(name), name_key: key };
    try {
      await this.users().insertOne(user);
      return { ...authorOf(user), created: true };
    } catch (error) {
      if ((error as { code?: number }).code !== 11000) throw error;
      const existing = await this.users().findOne({ _id: user._id });
      if (!existing) throw error;
      return { ...authorOf(existing), created: false };
    }
  }

  async findAuthor(name: string): Promise<Author | null> {
    const key = authorNameKey(name);
    const byKey = await this.users().find({ name_key: key }).sort({ _id: 1 }).limit(1).toArray();
    if (byKey[0]) return authorOf(byKey[0]);
    const byName = await this.users().findOne(splitFullName(name));
    if (!byName) return null;
    await this.users().updateOne({ _id: byName._id }, { $set: { name_key: key } });
    return authorOf(byName);
  }

  /** The document stored for a link (by its deterministic id, then by normalised or literal link), if any. */
  async findByLink(link: string): Promise<ExistingDocument | null> {
    const normalized = normalizeLink(link);
    const id = rawDocumentId(normalized);
    // Only `_id` lookups: they are cheap everywhere (FerretDB scans a collection for any other filter).
    const [byId, alias] = await Promise.all([
      Promise.all(
        DOCUMENT_CATEGORIES.map((category) =>
          this.documents(category).findOne({ _id: id }, { projection: EXISTING_PROJECTION }),
        ),
      ),
      this.documentLinks().findOne({ _id: id }),
    ]);
    const index = byId.findIndex(Boolean);
    if (index >= 0) return existingOf(DOCUMENT_CATEGORIES[index]!, byId[index]!);
    if (!alias) return null;
    const aliased = await this.documents(alias.category).findOne(
      { _id: alias.documentId },
      { projection: EXISTING_PROJECTION },
    );
    return aliased ? existingOf(alias.category, aliased) : null;
  }

  /**
   * Stores a crawl result for an author. Idempotent: a document whose content hash is unchanged is not rewritten
   * ('unchanged', only `crawl.checkedAt` moves) — except that a repeat by the same run (an activity retried after
   * a crash that happened after the write) reports 'stored', as the first attempt did. Changed content replaces
   * the document in place, under its existing id.
   */
  async storeCrawlResult(
    result: CrawlResult,
    author: Pick<Author, 'id' | 'fullName'>,
    options: { storedBy?: RunStamp; existing?: ExistingDocument | null; source?: CrawlInfo['source']; now?: Date } = {},
  ): Promise<StoreOutcome> {
    const category = result.category;
    const existing = options.existing !== undefined ? options.existing : await this.findByLink(result.link);
    const now = (options.now ?? new Date()).toISOString();
    const content = storedContent(result);
    const hash = hashContent(content);
    const same = existing?.category === category ? existing : undefined;
    const id = same?.id ?? result.documentId;
    const collection = this.documents(category);

    if (same && same.contentHash === hash) {
      await collection.updateOne({ _id: id }, { $set: { 'crawl.checkedAt': now } });
      const sameRun =
        options.storedBy !== undefined &&
        same.storedBy?.workflowId === options.storedBy.workflowId &&
        same.storedBy.runId === options.storedBy.runId;
      return { status: sameRun ? 'stored' : 'unchanged', documentId: id, category, updated: false };
    }

    const record: DocumentRecord = {
      _id: id,
      content: encodeContent(category, content),
      platform: result.platform,
      author_id: author.id,
      author_full_name: author.fullName,
      link: result.link,
      ...(category === 'repositories'
        ? {
            name:
              typeof result.metadata.name === 'string'
                ? result.metadata.name
                : (result.link.split('/').pop() ?? result.link),
          }
        : {}),
      ...(category === 'posts' && typeof content.image === 'string' ? { image: content.image } : {}),
      crawl: {
        source: options.source ?? 'crawl',
        normalizedLink: result.link,
        contentHash: hash,
        finalUrl: result.finalUrl,
        fetchedAt: result.fetchedAt,
        httpStatus: result.httpStatus,
        crawler: result.crawler,
        completeness: result.completeness,
        warnings: result.warnings,
        metadata: mapKeys(result.metadata, encodeKey, true),
        storedAt: now,
        storedBy: options.storedBy ?? null,
        checkedAt: now,
      },
    };
    await collection.replaceOne({ _id: id }, record, { upsert: true });
    return { status: 'stored', documentId: id, category, updated: Boolean(same) };
  }

  /** `{_id, contentHash}` of the given documents, for artifact checksums. */
  async contentHashes(ids: string[]): Promise<{ id: string; category: DocumentCategory; contentHash: string }[]> {
    const wanted = [...new Set(ids)];
    const found: { id: string; category: DocumentCategory; contentHash: string }[] = [];
    for (const category of DOCUMENT_CATEGORIES) {
      for (let i = 0; i < wanted.length; i += 500) {
        const docs = await this.documents(category)
          .find(
            { _id: { $in: wanted.slice(i, i + 500) } },
            { projection: { _id: 1, content: 1, 'crawl.contentHash': 1 } },
          )
          .toArray();
        for (const doc of docs) {
          const hash = doc.crawl?.contentHash ?? hashContent(decodeContent(category, doc.content));
          found.push({ id: doc._id, category, contentHash: hash });
        }
      }
    }
    return found.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Documents per collection, optionally for one author. */
  async counts(authorId?: string): Promise<Record<WarehouseCollection, number>> {
    const filter = authorId ? { author_id: authorId } : {};
    const [users, articles, posts, repositories] = await Promise.all([
      authorId ? this.users().countDocuments({ _id: authorId }) : this.users().countDocuments({}),
      this.documents('articles').countDocuments(filter),
      this.documents('posts').countDocuments(filter),
      this.documents('repositories').countDocuments(filter),
    ]);
    return { users, articles, posts, repositories };
  }

  // -------------------------------------------------------------------------------------------------------------
  // Reference export format
  // -------------------------------------------------------------------------------------------------------------

  /**
   * Imports records in the reference export format (`_id` kept). Idempotent: a record equal to the stored one is
   * 'unchanged', a changed one replaces it, and a document whose link is already stored under another id is
   * skipped (reported) rather than stored twice.
   */
  async importReference(
    collection: WarehouseCollection,
    records: unknown[],
    now: Date = new Date(),
  ): Promise<ImportReport> {
    const report: ImportReport = {
      collection,
      read: records.length,
      inserted: 0,
      updated: 0,
      unchanged: 0,
      skipped: [],
      warnings: [],
    };
    for (const [index, raw] of records.entries()) {
      const problem = validateReferenceRecord(collection, raw);
      if (problem) {
        report.skipped.push({ id: idOf(raw) ?? `#${index}`, reason: problem });
        continue;
      }
      const record = raw as Record<string, unknown> & { _id: string };
      const outcome =
        collection === 'users'
          ? await this.importUser(record as unknown as UserRecord, report)
          : await this.importDocument(collection, record as DocumentRecord, now, report);
      if (outcome) report[outcome]++;
    }
    return report;
  }

  private async importUser(user: UserRecord, report: ImportReport): Promise<'inserted' | 'updated' | 'unchanged'> {
    const key = authorNameKey(`${user.first_name} ${user.last_name}`);
    const record: UserRecord = { _id: user._id, first_name: user.first_name, last_name: user.last_name, name_key: key };
    const existing = await this.users().findOne({ _id: user._id });
    const namesake = await this.users().findOne({ name_key: key, _id: { $ne: user._id } });
    if (namesake) report.warnings.push(`user ${user._id} has the same name as user ${namesake._id} (${key})`);
    if (existing) {
      if (
        existing.first_name === record.first_name &&
        existing.last_name === record.last_name &&
        existing.name_key === key
      ) {
        return 'unchanged';
      }
      await this.users().replaceOne({ _id: user._id }, record);
      return 'updated';
    }
    await this.users().insertOne(record);
    return 'inserted';
  }

  private async importDocument(
    category: DocumentCategory,
    doc: DocumentRecord,
    now: Date,
    report: ImportReport,
  ): Promise<'inserted' | 'updated' | 'unchanged' | undefined> {
    const collection = this.documents(category);
    const { crawl: givenCrawl, ...reference } = doc;
    const content = reference.content;
    const hash = hashContent(content);
    const link = typeof reference.link === 'string' ? reference.link : undefined;
    const normalizedLink = link ? (tryNormalizeLink(link) ?? null) : null;
    const record: DocumentRecord = {
      ...reference,
      content: encodeContent(category, content),
      crawl: {
        ...(givenCrawl ?? { source: 'import', storedAt: now.toISOString() }),
        normalizedLink,
        contentHash: hash,
      },
    };
    const existing = await collection.findOne({ _id: doc._id });
    if (existing) {
      const before = stableStringify(toReferenceRecord(category, existing));
      const after = stableStringify(toReferenceRecord(category, record));
      if (
        before === after &&
        (givenCrawl === undefined || stableStringify(existing.crawl) === stableStringify(record.crawl))
      ) {
        await this.linkAlias(category, doc._id, normalizedLink);
        return 'unchanged';
      }
      await collection.replaceOne(
        { _id: doc._id },
        givenCrawl === undefined && existing.crawl
          ? { ...record, crawl: { ...existing.crawl, contentHash: hash, normalizedLink } }
          : record,
      );
      await this.linkAlias(category, doc._id, normalizedLink);
      return 'updated';
    }
    if (link) {
      const other = await this.findByLink(link).catch(() => null);
      if (other) {
        report.skipped.push({
          id: doc._id,
          reason: `link ${normalizedLink ?? link} is already stored as ${other.category}/${other.id}`,
        });
        return undefined;
      }
    }
    await collection.insertOne(record);
    await this.linkAlias(category, doc._id, normalizedLink);
    return 'inserted';
  }

  /** Records the link → document alias when the document's id is not derived from its link. */
  private async linkAlias(
    category: DocumentCategory,
    documentId: string,
    normalizedLink: string | null,
  ): Promise<void> {
    if (!normalizedLink) return;
    const linkId = rawDocumentId(normalizedLink);
    if (linkId === documentId) return;
    await this.documentLinks().replaceOne(
      { _id: linkId },
      { link: normalizedLink, documentId, category },
      { upsert: true },
    );
  }

  /** Streams a collection in the reference export format, one record at a time (`_id` last, keys decoded). */
  async *exportReference(
    collection: WarehouseCollection,
    options: { withCrawl?: boolean } = {},
  ): AsyncGenerator<Record<string, unknown>> {
    const cursor = this.db.collection<Document>(collection).find({});
    for await (const record of cursor) yield toReferenceRecord(collection, record, options);
  }
}

function idOf(raw: unknown): string | undefined {
  return raw && typeof raw === 'object' && typeof (raw as { _id?: unknown })._id === 'string'
    ? (raw as { _id: string })._id
    : undefined;
}

/** Why a record cannot be imported into a collection, or undefined when it can. */
export function validateReferenceRecord(collection: WarehouseCollection, raw: unknown): string | undefined {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return 'not an object';
  const r = raw as Record<string, unknown>;
  if (typeof r._id !== 'string' || !r._id) return 'missing _id (string)';
  if (collection === 'users') {
    if (typeof r.first_name !== 'string' || typeof r.last_name !== 'string')
      return 'a user needs first_name and last_name';
    return undefined;
  }
  if (!r.content || typeof r.content !== 'object' || Array.isArray(r.content)) return 'missing content (object)';
  for (const field of ['platform', 'author_id', 'author_full_name'] as const) {
    if (typeof r[field] !== 'string') return `missing ${field} (string)`;
  }
  if (collection !== 'posts' && typeof r.link !== 'string') return 'missing link (string)';
  if (collection === 'articles' && typeof (r.content as Record<string, unknown>).Content !== 'string')
    return 'article content needs Content';
  return undefined;
}

/** Which collection a reference export file holds: by its name (`ArticleDocument.json`), else by its first record. */
export function collectionForFile(fileName: string, records: unknown[]): WarehouseCollection | undefined {
  const base = fileName
    .split(/[\\/]/)
    .pop()!
    .replace(/\.json$/i, '')
    .toLowerCase();
  for (const [collection, file] of Object.entries(REFERENCE_EXPORT_FILES)) {
    const stem = file.replace(/\.json$/, '').toLowerCase();
    if (base === stem || base === collection || base === stem.replace(/document$/, ''))
      return collection as WarehouseCollection;
  }
  const first = records[0] as Record<string, unknown> | undefined;
  if (!first || typeof first !== 'object') return undefined;
  if ('first_name' in first) return 'users';
  const content = first.content as Record<string, unknown> | undefined;
  if (content && typeof content === 'object') {
    if ('Content' in content || 'Title' in content) return 'articles';
    if ('text' in content) return 'posts';
    if ('name' in first) return 'repositories';
  }
  return undefined;
}

/**
 * Records raw documents as one ArtifactRef of kind 'raw-documents'. The checksum covers the author and every
 * document id with its content hash, so the same documents with the same text are the same artifact (a re-run
 * records nothing new); the manifest (ids, categories, hashes) goes to the artifact store and is the ref's uri.
 */
export async function recordRawDocumentsArtifact(
  warehouse: DocumentWarehouse,
  store: ArtifactStore,
  registry: ArtifactRegistry,
  input: {
    author: Pick<Author, 'id' | 'fullName'>;
    documentIds: string[];
    links: number;
    producer: ArtifactProducer;
    source: string;
  },
): Promise<ArtifactRef> {
  const documents = await warehouse.contentHashes(input.documentIds);
  const author = { id: input.author.id, fullName: input.author.fullName };
  const checksum = checksumOf({ authorId: author.id, documents });
  const perCategory: Record<DocumentCategory, number> = { articles: 0, posts: 0, repositories: 0 };
  for (const doc of documents) perCategory[doc.category]++;
  const manifest = { kind: 'raw-documents', author, database: warehouse.db.databaseName, documents };
  const key = `raw-documents/${checksum.replace(/^sha256:/, '').slice(0, 24)}/manifest.json`;
  const { uri } = await store.put(key, JSON.stringify(manifest), 'application/json');
  return registry.record({
    kind: 'raw-documents',
    uri,
    count: documents.length,
    checksum,
    producer: input.producer,
    inputs: [],
    metadata: {
      author: author.fullName,
      authorId: author.id,
      source: input.source,
      links: input.links,
      articles: perCategory.articles,
      posts: perCategory.posts,
      repositories: perCategory.repositories,
      missing: new Set(input.documentIds).size - documents.length,
    },
  });
}
