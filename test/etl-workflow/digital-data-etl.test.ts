import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection, WorkflowFailedError, type ApplicationFailure } from '@temporalio/client';
import { strToU8, zipSync } from 'fflate';
import { MongoClient, type Db } from 'mongodb';
import type { LinkRow } from '../../activities/etl';
import { rawDocumentId } from '../../src/domain/links';
import { findBinary } from '../../src/infra/local-services';
import { authorId, fromWarehouseRecord } from '../../src/infra/warehouse';
import {
  MAX_LINKS_PER_RUN,
  type DigitalDataEtlInput,
  type DigitalDataEtlResult,
} from '../../workflows/digital-data-etl';
import { startFixtureServer, type FixtureServer } from '../etl/fixture-server';
import { runTwin } from '../support/cli';
import { testEnv, uniqueName } from '../support/env';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';
import { startDynamicServer, type DynamicServer } from './dynamic-server';

/**
 * digitalDataEtl on the real Temporal dev server, with real worker processes (twin-pipelines and twin-etl in two
 * processes, so the ETL worker can be killed alone), the real MongoDB-protocol server, the fixture web server
 * (realistic pages and hostile cases) and a real git repository cloned over file://.
 */

const database = uniqueName('etl_wf');
const AUTHOR = 'Ada Lovelace';
const FAST_RETRY = { maximumAttempts: 3, initialInterval: '200 milliseconds' } as const;

function gitRepository(root: string): void {
  const git = (cwd: string, ...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', ...args], { cwd, stdio: 'pipe' });
  const work = path.join(root, 'work');
  mkdirSync(path.join(work, 'src'), { recursive: true });
  writeFileSync(path.join(work, 'README.md'), '# tiny-twin\n\nA tiny project crawled by the ETL workflow test.\n');
  writeFileSync(path.join(work, 'src', 'app.py'), 'def answer():\n    return 42\n');
  git(work, 'init', '-q', '-b', 'main');
  git(work, 'add', '-A');
  git(work, 'commit', '-q', '-m', 'initial');
  mkdirSync(path.join(root, 'git', 'alice'), { recursive: true });
  git(root, 'clone', '-q', '--bare', work, path.join(root, 'git', 'alice', 'tiny-twin.git'));
}

describe('digitalDataEtl workflow on the real dev server', () => {
  let client: Client;
  let mongo: MongoClient;
  let db: Db;
  let fixture: FixtureServer;
  let dynamic: DynamicServer;
  let pipelines: WorkerProcess | undefined;
  let etl: WorkerProcess | undefined;
  let workerEnv: Record<string, string>;

  before(async () => {
    const root = mkdtempSync(path.join(testEnv.tmpDir, 'etl-wf-'));
    gitRepository(root);
    fixture = await startFixtureServer();
    dynamic = await startDynamicServer({ slowMs: 2_000 });
    workerEnv = {
      MONGODB_DATABASE: database,
      TWIN_WORKFLOW_BUNDLE: testEnv.workflowBundle ?? '',
      ETL_SSRF_ALLOW: '127.0.0.1',
      ETL_POLITENESS: 'false',
      ETL_GITHUB_CLONE_URL: `file://${root}/git/{owner}/{repo}.git`,
      ARTIFACT_DIR: path.join(root, 'artifacts'),
    };
    client = new Client({ connection: await Connection.connect({ address: testEnv.temporalAddress }) });
    mongo = await MongoClient.connect(testEnv.mongoUri);
    db = mongo.db(database);
    [pipelines, etl] = await Promise.all([
      startWorkerProcess(['pipelines'], workerEnv),
      startWorkerProcess(['etl'], workerEnv),
    ]);
  });

  after(async () => {
    await Promise.all([pipelines?.kill('SIGKILL'), etl?.kill('SIGKILL')]);
    await db?.dropDatabase();
    await mongo?.close();
    await client?.connection.close();
    await fixture?.close();
    await dynamic?.close();
  });

  const run = (input: DigitalDataEtlInput, prefix = 'etl') =>
    client.workflow.execute<(input: DigitalDataEtlInput) => Promise<DigitalDataEtlResult>>('digitalDataEtl', {
      taskQueue: 'twin-pipelines',
      workflowId: uniqueName(prefix),
      args: [input],
    });

  const documentCounts = async () => ({
    users: await db.collection('users').countDocuments({}),
    articles: await db.collection('articles').countDocuments({}),
    posts: await db.collection('posts').countDocuments({}),
    repositories: await db.collection('repositories').countDocuments({}),
  });

  const summary = (rows: LinkRow[]) => rows.map((r) => [r.status, r.errorKind ?? null, r.platform ?? null]);
  const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

  let mainLinks: string[] = [];
  let firstResult: DigitalDataEtlResult;

  test(
    'a mixed batch: every link gets its status, transient failures are retried, nothing is lost',
    { timeout: 240_000 },
    async () => {
      const F = fixture.url;
      mainLinks = [
        `${F}/medium/building-durable-pipelines`,
        `${F}/p/notes-on-fine-tuning-small-models`,
        `${F}/blog/parsing-logs-with-python-generators`,
        `${F}/blog/parsing-logs-with-python-generators/?utm_source=newsletter#comments`,
        `${F}/404`,
        `${F}/500`,
        `${dynamic.url}/flaky-429/a`,
        `${F}/to-metadata`,
        'https://www.linkedin.com/in/ada-lovelace/recent-activity/all/',
        'not a link',
        `${F}/no-bots/page`,
        `${F}/pdf`,
        `${F}/medium/member-only`,
        'https://github.com/Alice/tiny-twin',
        `${F}/loop-a`,
        `${F}/big`,
        'ftp://example.com/file.txt',
      ];
      const result = await run({ author: AUTHOR, links: mainLinks, retry: FAST_RETRY, maxInFlight: 4 });
      firstResult = result;

      assert.deepEqual(result.author, { id: authorId(AUTHOR), fullName: AUTHOR });
      assert.equal(result.rows.length, mainLinks.length);
      assert.deepEqual(
        result.rows.map((r) => r.link),
        mainLinks,
        'one row per link, in input order',
      );
      assert.deepEqual(summary(result.rows), [
        ['stored', null, 'medium'],
        ['stored', null, 'substack'],
        ['stored', null, '127.0.0.1'],
        ['skipped-duplicate', null, '127.0.0.1'],
        ['failed', 'http-4xx', '127.0.0.1'],
        ['failed', 'http-5xx', '127.0.0.1'],
        ['stored', null, '127.0.0.1'],
        ['failed', 'blocked', '127.0.0.1'],
        ['unsupported', 'unsupported', 'linkedin'],
        ['failed', 'invalid-url', null],
        ['failed', 'robots', '127.0.0.1'],
        ['failed', 'bad-content-type', '127.0.0.1'],
        ['failed', 'paywalled', '127.0.0.1'],
        ['stored', null, 'github'],
        ['failed', 'too-many-redirects', '127.0.0.1'],
        ['failed', 'too-large', '127.0.0.1'],
        ['unsupported', 'unsupported', null],
      ]);
      const reasons = result.rows.map((r) => r.reason ?? '');
      assert.match(reasons[3]!, /same link as #3/);
      assert.match(reasons[5]!, /^http-5xx: HTTP 500 from 127\.0\.0\.1:\d+ \(gave up after 3 attempts\)$/);
      assert.match(reasons[7]!, /169\.254\.169\.254.*SSRF guard/);
      assert.match(reasons[8]!, /use the LinkedIn data export/);

      // Retries: 500 was tried three times, 429 (Retry-After: 1) twice and then stored; the duplicate never fetched.
      assert.equal(fixture.hits.get('/500'), 3);
      assert.equal(dynamic.hits.get('/flaky-429/a'), 2);
      assert.equal(fixture.hits.get('/blog/parsing-logs-with-python-generators'), 1);

      // The account adds up.
      assert.deepEqual(result.counts.byStatus, {
        stored: 5,
        unchanged: 0,
        'skipped-duplicate': 1,
        unsupported: 2,
        failed: 9,
      });
      assert.equal(sum(result.counts.byStatus), mainLinks.length);
      assert.equal(result.counts.links, mainLinks.length);
      assert.equal(
        sum(
          Object.fromEntries(
            Object.entries(result.counts.byPlatform).map(([p, s]) => [p, sum(s as Record<string, number>)]),
          ),
        ),
        mainLinks.length,
      );
      assert.deepEqual(result.counts.byPlatform.github, { stored: 1 });
      assert.deepEqual(result.counts.byPlatform.linkedin, { unsupported: 1 });
      assert.deepEqual(result.counts.byPlatform.unknown, { failed: 1, unsupported: 1 });

      // The warehouse: one user, the four articles and the repository, in the reference shapes.
      assert.deepEqual(await documentCounts(), { users: 1, articles: 4, posts: 0, repositories: 1 });
      const medium = await db.collection('articles').findOne({ _id: rawDocumentId(mainLinks[0]!) as never });
      assert.ok(medium);
      assert.equal(medium.author_id, authorId(AUTHOR));
      assert.equal(medium.author_full_name, AUTHOR);
      assert.equal(medium.platform, 'medium');
      assert.equal(medium.link, mainLinks[0]);
      assert.equal(typeof (medium.content as { Title: string }).Title, 'string');
      assert.equal(medium.crawl.httpStatus, 200);
      assert.equal(medium.crawl.crawler.name, 'medium');
      assert.match(medium.crawl.contentHash as string, /^[0-9a-f]{64}$/);
      const repo = await db.collection('repositories').findOne({});
      assert.ok(repo);
      const typedRepo = fromWarehouseRecord('repositories', repo);
      assert.deepEqual(Object.keys(typedRepo.content).sort(), ['README.md', 'src/app.py']);
      assert.equal(repo.link, 'https://github.com/alice/tiny-twin');

      // The artifact: the five documents, recorded once.
      assert.ok(result.artifact);
      assert.equal(result.artifact.kind, 'raw-documents');
      assert.equal(result.artifact.count, 5);
      assert.equal(result.artifact.metadata.author, AUTHOR);
      assert.equal(await db.collection('artifacts').countDocuments({ _id: result.artifact.id as never }), 1);

      // Small payload: rows, not documents.
      const json = JSON.stringify(result);
      assert.ok(json.length < 20_000, `result is ${json.length} bytes`);
      assert.doesNotMatch(json, /def answer|generator expression/i);

      // Visible in the Web UI: search attributes and memo.
      const handle = client.workflow.getHandle(result.artifact.producer.workflowId);
      const description = await handle.describe();
      assert.deepEqual(description.searchAttributes.TwinPipeline, ['digitalDataEtl']);
      assert.deepEqual(description.searchAttributes.TwinAuthor, [AUTHOR]);
      assert.deepEqual(description.searchAttributes.TwinStatus, ['completed-with-failures']);
      assert.deepEqual((description.memo as { counts?: unknown }).counts, result.counts.byStatus);
    },
  );

  test(
    'running the same ETL again stores nothing twice: stored links are unchanged, the artifact is the same',
    { timeout: 240_000 },
    async () => {
      assert.ok(firstResult, 'needs the first run');
      const before = await documentCounts();
      const blogHits = fixture.hits.get('/blog/parsing-logs-with-python-generators');
      const result = await run({ author: AUTHOR, links: mainLinks, retry: FAST_RETRY, maxInFlight: 4 });
      assert.deepEqual(
        result.rows.map((r) => r.status),
        firstResult.rows.map((r) => (r.status === 'stored' ? 'unchanged' : r.status)),
      );
      assert.deepEqual(result.counts.byStatus, {
        stored: 0,
        unchanged: 5,
        'skipped-duplicate': 1,
        unsupported: 2,
        failed: 9,
      });
      assert.deepEqual(await documentCounts(), before);
      assert.equal(
        fixture.hits.get('/blog/parsing-logs-with-python-generators'),
        blogHits,
        'stored links are not fetched again',
      );
      assert.equal(result.artifact?.id, firstResult.artifact?.id, 'same documents, same text: the same artifact');
      assert.equal(await db.collection('artifacts').countDocuments({ kind: 'raw-documents' }), 1);
    },
  );

  test('refresh re-crawls and updates only the documents whose content changed', { timeout: 240_000 }, async () => {
    const links = [`${dynamic.url}/changing/x`, `${dynamic.url}/changing/y`];
    const first = await run({ author: AUTHOR, links });
    assert.deepEqual(
      first.rows.map((r) => r.status),
      ['stored', 'stored'],
    );
    const before = await documentCounts();

    dynamic.setVersion('x', 2);
    const withoutRefresh = await run({ author: AUTHOR, links });
    assert.deepEqual(
      withoutRefresh.rows.map((r) => r.status),
      ['unchanged', 'unchanged'],
    );
    assert.equal(dynamic.hits.get('/changing/x'), 1, 'without refresh nothing is fetched again');

    const refreshed = await run({ author: AUTHOR, links, refresh: true });
    assert.deepEqual(
      refreshed.rows.map((r) => [r.status, r.reason]),
      [
        ['stored', 'content changed: updated'],
        ['unchanged', 'content unchanged'],
      ],
    );
    assert.equal(dynamic.hits.get('/changing/x'), 2);
    assert.equal(dynamic.hits.get('/changing/y'), 2);
    assert.deepEqual(await documentCounts(), before, 'updated in place');
    const x = await db.collection('articles').findOne({ _id: rawDocumentId(links[0]!) as never });
    assert.equal((x?.content as { Title: string }).Title, 'Changing x v2');
    assert.match((x?.content as { Content: string }).Content, /This is version 2 of the changing article x/);
    assert.equal(refreshed.rows[0]!.documentId, first.rows[0]!.documentId);
    assert.notEqual(refreshed.artifact?.id, first.artifact?.id, 'new text, new artifact');
  });

  test(
    'the ETL worker killed mid-run (SIGKILL) and restarted: the run completes, nothing duplicated',
    { timeout: 300_000 },
    async () => {
      const links = Array.from({ length: 10 }, (_, i) => `${dynamic.url}/slow/s${i + 1}`);
      const ids = links.map((link) => rawDocumentId(link));
      const workflowId = uniqueName('etl-crash');
      const handle = await client.workflow.start('digitalDataEtl', {
        taskQueue: 'twin-pipelines',
        workflowId,
        args: [{ author: AUTHOR, links, maxInFlight: 3 } satisfies DigitalDataEtlInput],
      });
      const stored = () => db.collection('articles').countDocuments({ _id: { $in: ids as never[] } });
      const deadline = Date.now() + 120_000;
      // Kill once two documents are stored and another crawl is waiting on its page (the worker is mid-activity).
      while (((await stored()) < 2 || dynamic.inFlight() === 0) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      assert.ok(
        (await stored()) >= 2 && dynamic.inFlight() > 0,
        `two documents stored and one crawl in flight; worker log:\n${etl?.lines.slice(-20).join('\n')}`,
      );
      await etl!.kill('SIGKILL');
      const storedAtCrash = await stored();
      assert.ok(storedAtCrash < links.length, 'the worker died mid-run');

      etl = await startWorkerProcess(['etl'], workerEnv);
      const result = (await handle.result()) as DigitalDataEtlResult;
      assert.deepEqual(
        result.rows.map((r) => r.status),
        links.map(() => 'stored'),
      );
      assert.deepEqual(result.counts.byStatus, {
        stored: 10,
        unchanged: 0,
        'skipped-duplicate': 0,
        unsupported: 0,
        failed: 0,
      });
      assert.equal(await stored(), 10);
      assert.equal(
        await db.collection('articles').countDocuments({ 'crawl.normalizedLink': { $in: links } }),
        10,
        'each link stored once',
      );
      assert.equal(result.artifact?.count, 10);

      const history = await handle.fetchHistory();
      const retried = (history.events ?? []).filter(
        (e) => e.activityTaskStartedEventAttributes && (e.activityTaskStartedEventAttributes.attempt ?? 1) > 1,
      );
      const attempts = (history.events ?? [])
        .filter((e) => e.activityTaskStartedEventAttributes)
        .map((e) => e.activityTaskStartedEventAttributes?.attempt ?? 1);
      assert.ok(
        retried.length >= 1,
        `the activities in flight at the crash were retried on the new worker (stored at crash: ${storedAtCrash}; attempts: ${attempts.join(',')})`,
      );
    },
  );
  test(
    'twin etl --config / --links: starts the workflow and prints the status table; the temporal CLI starts it too',
    { timeout: 240_000 },
    async () => {
      const dir = mkdtempSync(path.join(testEnv.tmpDir, 'etl-cli-'));
      const config = path.join(dir, 'grace.yaml');
      writeFileSync(
        config,
        `author: Grace Hopper\nlinks:\n  - ${fixture.url}/news/playgrounds\n  - https://www.linkedin.com/in/grace/\n  - ${fixture.url}/news/playgrounds?utm_medium=email\n`,
      );
      const env = { ...process.env, MONGODB_DATABASE: database };
      const first = await runTwin(['etl', '--config', config], env, 180_000);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /^started etl-grace-hopper-/m);
      assert.match(
        first.stdout,
        /^Web UI: http:\/\/127\.0\.0\.1:\d+\/namespaces\/default\/workflows\/etl-grace-hopper-/m,
      );
      assert.match(first.stdout, /^1 +stored +127\.0\.0\.1 +http:\/\/127\.0\.0\.1:\d+\/news\/playgrounds$/m);
      assert.match(
        first.stdout,
        /^2 +unsupported +linkedin +https:\/\/www\.linkedin\.com\/in\/grace\/ +\(unsupported: .*use the LinkedIn data export/m,
      );
      assert.match(first.stdout, /^3 +skipped-duplicate +127\.0\.0\.1 .*\(same link as #1/m);
      assert.match(first.stdout, /^3 links: 1 stored, 0 unchanged, 1 skipped-duplicate, 1 unsupported, 0 failed$/m);
      assert.match(first.stdout, /^author: Grace Hopper \(/m);
      assert.match(first.stdout, /^artifact: raw-documents:sha256:[0-9a-f]+ \(1 documents\) file:\/\//m);

      const list = path.join(dir, 'links.txt');
      writeFileSync(list, `# Grace's posts\n${fixture.url}/news/playgrounds\n\n`);
      const second = await runTwin(['etl', '--author', 'grace   hopper', '--links', list, '--json'], env, 180_000);
      assert.equal(second.code, 0, second.stderr);
      const result = JSON.parse(second.stdout) as DigitalDataEtlResult; // --json: only JSON on stdout
      assert.match(second.stderr, /^started etl-grace-hopper-/m);
      assert.deepEqual(
        result.rows.map((r) => r.status),
        ['unchanged'],
      );
      assert.equal(result.author.fullName, 'Grace Hopper');

      // As the README shows: the temporal CLI with a JSON input.
      const temporal = findBinary('temporal');
      const input = JSON.stringify({
        author: 'Grace Hopper',
        links: [`${fixture.url}/news/playgrounds`, 'https://lnkd.in/abc'],
      });
      const { stdout } = await promisify(execFile)(temporal, [
        'workflow',
        'execute',
        '--type',
        'digitalDataEtl',
        '--task-queue',
        'twin-pipelines',
        '--workflow-id',
        uniqueName('etl-temporal-cli'),
        '--address',
        testEnv.temporalAddress,
        '--input',
        input,
        '--output',
        'json',
      ]);
      const executed = JSON.parse(stdout) as { result: DigitalDataEtlResult };
      assert.deepEqual(executed.result.counts.byStatus, {
        stored: 0,
        unchanged: 1,
        'skipped-duplicate': 0,
        unsupported: 1,
        failed: 0,
      });
    },
  );

  test(
    'twin etl linkedin-export imports posts and articles from the data export, idempotently',
    { timeout: 120_000 },
    async () => {
      const dir = mkdtempSync(path.join(testEnv.tmpDir, 'linkedin-'));
      const zip = path.join(dir, 'Basic_LinkedInDataExport.zip');
      const shares = [
        'Date,ShareLink,ShareCommentary,SharedUrl,MediaUrl,Visibility',
        '2024-01-15 09:30:12,https://www.linkedin.com/feed/update/urn%3Ali%3Ashare%3A1,"Shipped our first Temporal workflow today.",,,MEMBER_NETWORK',
        '2024-02-01 18:00:00,https://www.linkedin.com/feed/update/urn%3Ali%3Ashare%3A2,,https://example.com/article,,MEMBER_NETWORK',
        '2024-03-10 12:00:00,https://www.linkedin.com/feed/update/urn%3Ali%3Ashare%3A3,"Idempotent activities, every time.",,https://media.licdn.com/x.jpg,CONNECTIONS',
      ].join('\r\n');
      const article =
        '<html><head><title>Why I write</title></head><body><h1>Why I write</h1><div><p>Writing is how I find out what I think. Every long post I have published started as a question I could not answer in a sentence.</p><p>This article collects the habits that keep me writing every week.</p></div></body></html>';
      writeFileSync(
        zip,
        zipSync({
          'Shares.csv': strToU8(shares),
          'Articles/Articles/2023-11-02 10:00:00.0-Why I write.html': strToU8(article),
        }),
      );
      const env = { ...process.env, MONGODB_DATABASE: database };
      const first = await runTwin(['etl', 'linkedin-export', zip, '--author', 'Ada Lovelace'], env);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /2 posts, 1 articles read; 3 stored, 0 updated, 0 unchanged, 1 skipped/);
      assert.match(first.stdout, /skipped Shares\.csv:3: a re-share without commentary/);
      const again = await runTwin(['etl', 'linkedin-export', zip, '--author', 'Ada Lovelace'], env);
      assert.match(again.stdout, /0 stored, 0 updated, 3 unchanged, 1 skipped/);
      const posts = await db
        .collection('posts')
        .find({ author_id: authorId(AUTHOR) })
        .toArray();
      assert.equal(posts.length, 2);
      const typed = posts.map((p) => fromWarehouseRecord('posts', p));
      assert.deepEqual(
        typed.map((p) => p.content).sort((a, b) => ('text' in a && 'text' in b ? a.text.localeCompare(b.text) : 0)),
        [
          { text: 'Idempotent activities, every time.', image: 'https://media.licdn.com/x.jpg' },
          { text: 'Shipped our first Temporal workflow today.' },
        ],
      );
      assert.equal(posts[0]!.platform, 'linkedin');
    },
  );
  test('bad input fails the run at once: no author, more links than one run takes', { timeout: 60_000 }, async () => {
    const failure = async (input: unknown) => {
      const error = await run(input as DigitalDataEtlInput, 'etl-bad').then(
        () => undefined,
        (e: unknown) => e as WorkflowFailedError,
      );
      assert.ok(error instanceof WorkflowFailedError, 'the workflow failed');
      return error.cause as ApplicationFailure;
    };
    const noAuthor = await failure({ author: '  ', links: ['https://example.com/a'] });
    assert.equal(noAuthor.type, 'BadInput');
    const tooMany = await failure({
      author: AUTHOR,
      links: Array.from({ length: MAX_LINKS_PER_RUN + 1 }, (_, i) => `https://example.com/${i}`),
    });
    assert.equal(tooMany.type, 'TooManyLinks');
    assert.match(tooMany.message, /1001 links in one run; at most 1000/);
  });
});
