import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MongoClient, type Db } from 'mongodb';
import { rawDocumentId } from '../../src/domain/links';
import { contentHash } from '../../src/etl/crawlers/common';
import type { CrawlResult } from '../../src/etl/types';
import {
  authorId,
  collectionForFile,
  DocumentWarehouse,
  fromWarehouseRecord,
  REFERENCE_EXPORT_FILES,
  type WarehouseCollection,
} from '../../src/infra/warehouse';
import { ensureIndexes } from '../../src/infra/mongo';
import { runTwin, ROOT } from '../support/cli';
import { testEnv, uniqueName } from '../support/env';

/** The warehouse against the real MongoDB-protocol server (FerretDB from the test runner) and the real corpus. */

const CORPUS = process.env.TWIN_CORPUS_DIR ?? path.join(ROOT, '..', 'shared', 'corpus');
const USERS_FILE = path.join(CORPUS, 'UserDocument.json');
const ARTICLES_FILE = path.join(CORPUS, 'ArticleDocument.json');

type Rec = Record<string, unknown> & { _id: string };
const readJson = (file: string): Rec[] => JSON.parse(readFileSync(file, 'utf8')) as Rec[];
const byId = (records: Rec[]): Rec[] => [...records].sort((a, b) => a._id.localeCompare(b._id));

async function exportAll(warehouse: DocumentWarehouse, withCrawl = false): Promise<Record<WarehouseCollection, Rec[]>> {
  const out = {} as Record<WarehouseCollection, Rec[]>;
  for (const collection of Object.keys(REFERENCE_EXPORT_FILES) as WarehouseCollection[]) {
    const records: Rec[] = [];
    for await (const r of warehouse.exportReference(collection, { withCrawl })) records.push(r as Rec);
    out[collection] = byId(records);
  }
  return out;
}

function crawlResult(
  overrides: Partial<CrawlResult> & Pick<CrawlResult, 'link' | 'category' | 'content'>,
): CrawlResult {
  return {
    documentId: rawDocumentId(overrides.link),
    platform: 'example.com',
    metadata: {},
    finalUrl: overrides.link,
    httpStatus: 200,
    contentHash: contentHash(overrides.content),
    crawler: { name: 'test', version: '1' },
    fetchedAt: '2026-01-01T00:00:00.000Z',
    completeness: 'complete',
    warnings: [],
    ...overrides,
  };
}

describe('warehouse (real MongoDB-protocol server, real corpus)', () => {
  const databases: string[] = [];
  let mongo: MongoClient;
  const openDb = async (prefix: string): Promise<Db> => {
    const name = uniqueName(prefix);
    databases.push(name);
    const db = mongo.db(name);
    await ensureIndexes(db);
    return db;
  };

  before(async () => {
    if (!existsSync(ARTICLES_FILE)) throw new Error(`corpus not found at ${CORPUS} (set TWIN_CORPUS_DIR)`);
    mongo = await MongoClient.connect(testEnv.mongoUri);
  });
  after(async () => {
    if (!mongo) return;
    for (const name of databases) await mongo.db(name).dropDatabase();
    await mongo.close();
  });

  test('the corpus imports as-is (2 users, 76 articles), a second import stores nothing, and export gives it back', async () => {
    const warehouse = new DocumentWarehouse(await openDb('wh_corpus'));
    const users = readJson(USERS_FILE);
    const articles = readJson(ARTICLES_FILE);
    assert.equal(collectionForFile(USERS_FILE, users), 'users');
    assert.equal(collectionForFile(ARTICLES_FILE, articles), 'articles');

    const first = [
      await warehouse.importReference('users', users),
      await warehouse.importReference('articles', articles),
    ];
    assert.deepEqual(
      first.map((r) => [r.collection, r.read, r.inserted, r.updated, r.unchanged, r.skipped.length]),
      [
        ['users', 2, 2, 0, 0, 0],
        ['articles', 76, 76, 0, 0, 0],
      ],
    );
    const counts = await warehouse.counts();
    assert.deepEqual(counts, { users: 2, articles: 76, posts: 0, repositories: 0 });

    const second = [
      await warehouse.importReference('users', users),
      await warehouse.importReference('articles', articles),
    ];
    assert.deepEqual(
      second.map((r) => [r.inserted, r.updated, r.unchanged, r.skipped.length]),
      [
        [0, 0, 2, 0],
        [0, 0, 76, 0],
      ],
    );
    assert.deepEqual(await warehouse.counts(), counts);
    // The corpus keeps its own ids; each link is aliased to its document so a crawl finds it by `_id`.
    assert.equal(await warehouse.documentLinks().countDocuments({}), 76);

    const exported = await exportAll(warehouse);
    assert.deepEqual(exported.users, byId(users));
    assert.deepEqual(exported.articles, byId(articles));
    assert.deepEqual(Object.keys(exported.articles[0]!), [
      'content',
      'platform',
      'author_id',
      'author_full_name',
      'link',
      '_id',
    ]);
    assert.deepEqual(exported.posts, []);

    // The reference view keeps every field the features pipeline reads.
    const raw = await warehouse.documents('articles').findOne({ _id: 'a964f3ac-e92f-4fcb-847a-a46da3d697d9' });
    const doc = fromWarehouseRecord('articles', raw!);
    assert.equal(doc.category, 'articles');
    assert.equal(doc.author_full_name, 'Maxime Labonne');
    assert.equal(doc.link, 'https://mlabonne.github.io/blog/posts/2024-07-29_Finetune_Llama31.html');
  });

  test('authors: found by name whatever the case and spacing, created once with a deterministic id, race-free', async () => {
    const warehouse = new DocumentWarehouse(await openDb('wh_authors'));
    await warehouse.importReference('users', readJson(USERS_FILE));

    const maxime = await warehouse.getOrCreateAuthor('  maxime   LABONNE ');
    assert.deepEqual(maxime, {
      id: 'eff74089-0271-4319-8543-745c087f4f61',
      fullName: 'Maxime Labonne',
      firstName: 'Maxime',
      lastName: 'Labonne',
      created: false,
    });

    const racers = await Promise.all(
      Array.from({ length: 6 }, () => warehouse.getOrCreateAuthor('Grace Brewster Hopper')),
    );
    assert.deepEqual(new Set(racers.map((a) => a.id)), new Set([authorId('grace brewster hopper')]));
    assert.equal(racers.filter((a) => a.created).length >= 1, true);
    const grace = await warehouse.users().findOne({ _id: authorId('Grace Brewster Hopper') });
    assert.deepEqual({ first: grace?.first_name, last: grace?.last_name }, { first: 'Grace Brewster', last: 'Hopper' });
    assert.equal(await warehouse.users().countDocuments({}), 3);
    assert.equal((await warehouse.getOrCreateAuthor('Grace Brewster Hopper')).created, false);
    assert.equal(await warehouse.users().countDocuments({}), 3);
  });

  test('crawl results: idempotent by normalised link, updated in place (under an imported id too), repository paths survive', async () => {
    const db = await openDb('wh_store');
    const warehouse = new DocumentWarehouse(db);
    await warehouse.importReference('users', readJson(USERS_FILE));
    await warehouse.importReference('articles', readJson(ARTICLES_FILE));
    const paul = await warehouse.getOrCreateAuthor('Paul Iusztin');

    // A corpus link crawled again (without its ?r= tracking parameter): found under the corpus id, not stored twice.
    const link = 'https://decodingml.substack.com/p/real-time-feature-pipelines-with';
    const existing = await warehouse.findByLink(`${link}?utm_source=x`);
    assert.equal(existing?.id, 'd39ca560-21bf-4a6c-a080-064b1ad7996a');
    assert.equal(existing.category, 'articles');
    const crawled = crawlResult({
      link,
      category: 'articles',
      platform: 'substack',
      content: { Title: 'Real-time feature pipelines', Subtitle: '', Content: 'New text.' },
    });
    const run = { workflowId: 'wf-1', runId: 'run-1' };
    const stored = await warehouse.storeCrawlResult(crawled, paul, { storedBy: run });
    assert.deepEqual(stored, {
      status: 'stored',
      documentId: 'd39ca560-21bf-4a6c-a080-064b1ad7996a',
      category: 'articles',
      updated: true,
    });
    assert.equal(await warehouse.documents('articles').countDocuments({}), 76);
    // The same run again (a retried activity): still 'stored'; another run: 'unchanged'; nothing rewritten.
    assert.equal((await warehouse.storeCrawlResult(crawled, paul, { storedBy: run })).status, 'stored');
    assert.equal(
      (await warehouse.storeCrawlResult(crawled, paul, { storedBy: { workflowId: 'wf-2', runId: 'r' } })).status,
      'unchanged',
    );
    const record = await warehouse.documents('articles').findOne({ _id: 'd39ca560-21bf-4a6c-a080-064b1ad7996a' });
    assert.equal((record?.content as { Content: string }).Content, 'New text.');
    assert.equal(record?.crawl?.contentHash, crawled.contentHash);
    assert.equal(record?.crawl?.normalizedLink, link);
    assert.deepEqual(record?.crawl?.storedBy, run);
    assert.equal(record?.crawl?.httpStatus, 200);
    assert.deepEqual(record?.crawl?.crawler, { name: 'test', version: '1' });

    // A new link: stored under rawDocumentId(link).
    const fresh = crawlResult({
      link: 'https://example.com/post',
      category: 'articles',
      content: { Title: 'T', Subtitle: '', Content: 'Body.' },
    });
    assert.deepEqual(await warehouse.storeCrawlResult(fresh, paul), {
      status: 'stored',
      documentId: rawDocumentId('https://example.com/post'),
      category: 'articles',
      updated: false,
    });
    assert.equal(await warehouse.documents('articles').countDocuments({}), 77);

    // Repository content is keyed by file path: dots, a leading $ and % are stored encoded and read back as they were.
    const files = {
      'README.md': '# tiny',
      'src/app.py': 'print(1)\n',
      '$weird.txt': 'dollar',
      '100%.md': 'percent',
      'a%2Eb': 'literal',
    };
    const repo = crawlResult({
      link: 'https://github.com/alice/tiny-twin',
      category: 'repositories',
      platform: 'github',
      content: files,
      metadata: { name: 'tiny-twin', 'odd.key': 1 },
    });
    assert.equal((await warehouse.storeCrawlResult(repo, paul)).status, 'stored');
    const repoRecord = await db.collection('repositories').findOne({ _id: rawDocumentId(repo.link) as never });
    assert.ok(repoRecord);
    assert.deepEqual(Object.keys(repoRecord.content as object).sort(), [
      '%24weird%2Etxt',
      '100%25%2Emd',
      'README%2Emd',
      'a%252Eb',
      'src/app%2Epy',
    ]);
    const typed = fromWarehouseRecord('repositories', repoRecord);
    assert.deepEqual(typed.content, files);
    assert.equal(typed.category === 'repositories' && typed.name, 'tiny-twin');
    assert.equal((await warehouse.storeCrawlResult(repo, paul)).status, 'unchanged');
    const exported = await exportAll(warehouse);
    assert.deepEqual(exported.repositories[0]?.content, files);

    // Posts are stored in the reference shape {text}.
    const post = crawlResult({
      link: 'https://www.linkedin.com/feed/update/urn:li:activity:1',
      category: 'posts',
      platform: 'linkedin',
      content: { Content: 'A post.' },
      metadata: { mediaUrl: 'https://media.example/1.png' },
    });
    assert.equal((await warehouse.storeCrawlResult(post, paul, { source: 'linkedin-export' })).status, 'stored');
    const postDoc = fromWarehouseRecord('posts', (await db.collection('posts').findOne({}))!);
    assert.deepEqual(postDoc.content, { text: 'A post.', image: 'https://media.example/1.png' });

    const hashes = await warehouse.contentHashes([fresh.documentId, repo.documentId, 'missing']);
    assert.deepEqual(hashes.map((h) => h.category).sort(), ['articles', 'repositories']);
    assert.equal(hashes.find((h) => h.id === repo.documentId)?.contentHash, repo.contentHash);
  });

  test('import refuses bad records and links already stored under another id, with reasons', async () => {
    const warehouse = new DocumentWarehouse(await openDb('wh_bad'));
    await warehouse.importReference('articles', readJson(ARTICLES_FILE).slice(0, 1));
    const copy = {
      ...readJson(ARTICLES_FILE)[0]!,
      _id: 'another-id',
      link: 'https://mlabonne.github.io/blog/posts/2024-07-29_Finetune_Llama31.html?utm_source=x',
    };
    const report = await warehouse.importReference('articles', [
      copy,
      { _id: 'x' },
      'nope',
      { content: { Content: 'x' } },
    ]);
    assert.equal(report.inserted, 0);
    assert.deepEqual(
      report.skipped.map((s) => [s.id, s.reason.split(' ')[0]]),
      [
        ['another-id', 'link'],
        ['x', 'missing'],
        ['#2', 'not'],
        ['#3', 'missing'],
      ],
    );
    assert.match(report.skipped[0]!.reason, /already stored as articles\/a964f3ac/);
    assert.equal(await warehouse.documents('articles').countDocuments({}), 1);
  });

  test('export → import → export round trip is equal, with and without crawl metadata', async () => {
    const source = new DocumentWarehouse(await openDb('wh_rt_src'));
    await source.importReference('users', readJson(USERS_FILE));
    await source.importReference('articles', readJson(ARTICLES_FILE));
    const paul = await source.getOrCreateAuthor('Paul Iusztin');
    await source.storeCrawlResult(
      crawlResult({
        link: 'https://github.com/paul/repo',
        category: 'repositories',
        platform: 'github',
        content: { 'a.py': 'x = 1' },
        metadata: { name: 'repo' },
      }),
      paul,
    );

    for (const withCrawl of [false, true]) {
      const first = await exportAll(source, withCrawl);
      const target = new DocumentWarehouse(await openDb('wh_rt_dst'));
      for (const [collection, records] of Object.entries(first) as [WarehouseCollection, Rec[]][]) {
        const report = await target.importReference(collection, records);
        assert.equal(report.inserted, records.length, `${collection}: ${JSON.stringify(report.skipped)}`);
      }
      assert.deepEqual(await exportAll(target, withCrawl), first);
      assert.equal(first.repositories.length, 1);
      assert.equal(
        withCrawl,
        first.articles.every((a) => 'crawl' in a),
      );
    }
  });

  test('twin warehouse import (twice) and export: the CLI on the corpus', async () => {
    const database = uniqueName('wh_cli');
    databases.push(database);
    const env = { ...process.env, MONGODB_DATABASE: database };
    const first = await runTwin(['warehouse', 'import', USERS_FILE, ARTICLES_FILE], env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /UserDocument\.json → users: 2 read, 2 inserted, 0 updated, 0 unchanged, 0 skipped/);
    assert.match(first.stdout, /ArticleDocument\.json → articles: 76 read, 76 inserted/);
    const second = await runTwin(['warehouse', 'import', ARTICLES_FILE, USERS_FILE], env);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /articles: 76 read, 0 inserted, 0 updated, 76 unchanged, 0 skipped/);
    assert.match(second.stdout, /warehouse now: users=2 articles=76 posts=0 repositories=0/);

    const dir = await mkdtemp(path.join(testEnv.tmpDir, 'export-'));
    const exported = await runTwin(['warehouse', 'export', dir], env);
    assert.equal(exported.code, 0, exported.stderr);
    const articles = JSON.parse(await readFile(path.join(dir, 'ArticleDocument.json'), 'utf8')) as Rec[];
    assert.deepEqual(byId(articles), byId(readJson(ARTICLES_FILE)));
    assert.deepEqual(JSON.parse(await readFile(path.join(dir, 'PostDocument.json'), 'utf8')), []);
    const stats = await runTwin(['warehouse', 'stats', '--author', 'paul iusztin'], env);
    assert.match(
      stats.stdout,
      /Paul Iusztin \(b5fa1f08-75f0-402d-8e88-d1357e346d9e\): users=1 articles=50 posts=0 repositories=0/,
    );
  });
});
