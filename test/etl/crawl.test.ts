import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rawDocumentId } from '../../src/domain/links';
import { crawl, routeFor } from '../../src/etl/dispatcher';
import { CrawlError } from '../../src/etl/errors';
import { Fetcher } from '../../src/etl/fetcher';
import type { CrawlResult } from '../../src/etl/types';
import { startFixtureServer, type FixtureServer } from './fixture-server';

async function crawlError(p: Promise<unknown>): Promise<CrawlError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof CrawlError, `expected CrawlError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the crawl to fail');
}

function paragraphs(md: string): string[] {
  return md.split(/\n{2,}/).map((p) => p.trim());
}

describe('crawl() through the dispatcher, against the fixture server', () => {
  let server: FixtureServer;
  let fetcher: Fetcher;
  before(async () => {
    server = await startFixtureServer();
    fetcher = new Fetcher({
      ssrf: { allow: ['127.0.0.1'] },
      politeness: false,
      headersTimeoutMs: 1_000,
      bodyTimeoutMs: 1_000,
      totalTimeoutMs: 3_000,
    });
  });
  after(async () => {
    await fetcher.close();
    await server.close();
  });

  it('Medium story on a custom domain: detected from the page; title, subtitle, author, date, headings, lists, quote, code', async () => {
    const r = await crawl(`${server.url}/medium/building-durable-pipelines?utm_source=twitter`, { fetcher });
    assert.equal(r.crawler.name, 'medium');
    assert.equal(r.platform, 'medium');
    assert.equal(r.category, 'articles');
    assert.equal(r.completeness, 'complete');
    assert.equal(r.content.Title, 'Building Durable Pipelines with Temporal');
    assert.equal(r.content.Subtitle, 'Why retries belong in the orchestrator, not in your code');
    assert.equal(r.metadata.author, 'Jane Doe');
    assert.equal(r.metadata.publishedAt, '2024-03-12T09:14:03.215Z');
    const body = r.content.Content!;
    assert.ok(body.startsWith('Every data pipeline I have written eventually grew a retry loop.'), body.slice(0, 120));
    assert.match(body, /^# Activities are the unit of retry$/m);
    assert.match(body, /^## What changed in production$/m);
    assert.match(
      body,
      /```typescript\nexport async function crawlLink\(link: string\): Promise<CrawlResult> \{\n {2}const page = await fetcher\.fetch\(link\);\n {2}return extract\(page\);\n\}\n```/,
    );
    assert.match(body, /^1\. +Derive every identifier from the input, never from the clock\.$/m);
    assert.match(body, /^- +Rate limits are respected through \*\*Retry-After\*\*\.$/m);
    assert.match(body, /^> If a step cannot be retried safely, it is not finished yet\.$/m);
    assert.match(body, /simple `for` loop/);
    for (const chrome of [
      'Open in app',
      'Sign up',
      'Listen',
      'Share',
      'Follow',
      'min read',
      'Mar 12, 2024',
      'Written by',
      'Responses',
      'What are your thoughts',
      'Help',
      'Careers',
      'Temporal</div>',
    ]) {
      assert.ok(!body.includes(chrome), `chrome "${chrome}" leaked into the body`);
    }
    assert.ok(!body.includes('Building Durable Pipelines with Temporal'), 'title is not repeated in the body');
    assert.equal(r.link, `${server.url}/medium/building-durable-pipelines`);
    assert.equal(r.documentId, rawDocumentId(`${server.url}/medium/building-durable-pipelines`));
    assert.equal(r.httpStatus, 200);
    assert.match(r.contentHash, /^[0-9a-f]{64}$/);
    assert.deepEqual(JSON.parse(JSON.stringify(r)), r, 'plain JSON-serialisable');
  });

  it('member-only Medium story is reported as paywalled, not stored as complete', async () => {
    const err = await crawlError(crawl(`${server.url}/medium/member-only`, { fetcher }));
    assert.equal(err.kind, 'paywalled');
    assert.equal(err.retryable, false);
    assert.equal(err.data?.title, 'The Hidden Cost of Retries');
    const partial = await crawl(`${server.url}/medium/member-only`, { fetcher, allowPartial: true });
    assert.equal(partial.completeness, 'paywalled');
    assert.match(partial.content.Content!, /^Retries look free\./);
    assert.doesNotMatch(partial.content.Content!, /Create an account|members only|Sign in/);
  });

  it('Substack post on a custom domain: title, subtitle, author, body without subscribe widgets or comments', async () => {
    const r = await crawl(`${server.url}/p/notes-on-fine-tuning-small-models`, { fetcher });
    assert.equal(r.crawler.name, 'substack');
    assert.equal(r.platform, 'substack');
    assert.equal(r.content.Title, 'Notes on Fine-Tuning Small Models');
    assert.equal(r.content.Subtitle, 'What LoRA rank actually buys you, measured on three tasks');
    assert.equal(r.metadata.author, 'Sam Rivera');
    assert.equal(r.metadata.publishedAt, '2024-06-18T14:03:11+00:00');
    const body = r.content.Content!;
    assert.ok(body.startsWith('Most fine-tuning advice is folklore.'));
    assert.match(body, /^## Setup$/m);
    assert.match(body, /```\nlora:\n {2}r: 32\n {2}alpha: 32\n/);
    assert.match(body, /^- +Rank 8 already recovers/m);
    assert.match(body, /^> Measure before you scale the adapter\.$/m);
    for (const chrome of [
      'Subscribe',
      'Thanks for reading',
      'Discussion about this post',
      'Great write-up',
      'Privacy',
      'Sign in',
      'Share',
    ]) {
      assert.ok(!body.includes(chrome), `"${chrome}" leaked into the body`);
    }
  });

  it('personal blog: paragraphs, headings, code kept; nav, cookie banner, share buttons, comments, sidebar, footer gone', async () => {
    const r = await crawl(`${server.url}/blog/parsing-logs-with-python-generators`, { fetcher });
    assert.equal(r.crawler.name, 'article');
    assert.equal(r.platform, '127.0.0.1');
    assert.equal(r.content.Title, 'Parsing Logs with Python Generators');
    assert.equal(
      r.content.Subtitle,
      'Stream gigabytes of logs through a few lines of Python without running out of memory.',
    );
    assert.equal(r.metadata.author, 'Alex Kim');
    assert.equal(r.metadata.publishedAt, '2023-09-14T07:30:00+00:00');
    const body = r.content.Content!;
    const paras = paragraphs(body);
    assert.equal(
      paras[0],
      'Last week a colleague asked why our log parser needed 12 GB of memory. The answer was a single call to `readlines()`, and the fix was a generator.',
    );
    assert.ok(paras.includes('## The problem'));
    assert.ok(paras.includes('### When not to use this'));
    assert.match(
      body,
      /```python\ndef read_lines\(path\):\n {4}with open\(path, encoding="utf-8", errors="replace"\) as f:\n {8}for line in f:\n {12}yield line\.rstrip\("\\n"\)\n/,
    );
    assert.equal(paras[paras.length - 1], 'For everything else, stream it.');
    for (const chrome of [
      'cookies',
      'Skip to content',
      'Archives',
      'About me',
      'Share this',
      'Twitter',
      'Posted in',
      'Tagged',
      'Five SQLite tricks',
      'thoughts on',
      'Priya',
      'saved our batch job',
      'Leave a Reply',
      'Recent Posts',
      'Proudly powered',
    ]) {
      assert.ok(!body.includes(chrome), `"${chrome}" leaked into the body`);
    }
  });

  it('news article: byline, captions, inline ads, related links, newsletter, more stories, comments and cookie banner removed', async () => {
    const r = await crawl(`${server.url}/news/playgrounds`, { fetcher });
    assert.equal(r.content.Title, 'City council approves plan to open school playgrounds on weekends');
    assert.equal(
      r.content.Subtitle,
      'Twelve schools will open their playgrounds to the public on Saturdays and Sundays from April',
    );
    assert.equal(r.metadata.author, 'Maria Lopez');
    const paras = paragraphs(r.content.Content!);
    assert.deepEqual(paras, [
      'The city council voted 7-2 on Tuesday to open the playgrounds of twelve public schools to residents on weekends, a pilot that supporters say will give families in dense neighbourhoods somewhere safe to play.',
      'The schools will keep their gates open from 9am to 6pm on Saturdays and Sundays starting in April. The district will pay for extra cleaning and two part-time attendants per site.',
      '## Concerns about cost',
      'Council member Dana Whitfield, who voted against the plan, said the budget of $310,000 a year did not include repairs. "We are opening facilities we already struggle to maintain," she said.',
      'Parents at the meeting mostly spoke in favour. Several said the nearest public park was more than a mile away.',
      'The pilot will be reviewed after six months, when the district will report on use, incidents and costs.',
    ]);
  });

  it('follows a redirect and records the final URL', async () => {
    const r = await crawl(`${server.url}/to-blog`, { fetcher });
    assert.equal(r.finalUrl, `${server.url}/blog/parsing-logs-with-python-generators`);
    assert.equal(r.link, `${server.url}/to-blog`);
  });

  it('compressed pages give the same content hash', async () => {
    const plain = await crawl(`${server.url}/news/playgrounds`, { fetcher });
    const gz = await crawl(`${server.url}/news/playgrounds?enc=gzip`, { fetcher });
    assert.equal(plain.contentHash, gz.contentHash);
  });

  it('bad input is classified without fetching', async () => {
    assert.equal((await crawlError(crawl('not a url at all', { fetcher }))).kind, 'invalid-url');
    assert.equal((await crawlError(crawl('ftp://example.com/file', { fetcher }))).kind, 'unsupported');
    assert.equal(
      (await crawlError(crawl(`http://admin:hunter2@127.0.0.1:${server.port}/blog/x`, { fetcher }))).kind,
      'invalid-url',
    );
    const gh = await crawlError(crawl('https://github.com/temporalio', { fetcher }));
    assert.equal(gh.kind, 'unsupported');
    const li = await crawlError(crawl('https://www.linkedin.com/posts/someone_activity-123', { fetcher }));
    assert.equal(li.kind, 'unsupported');
    assert.match(li.message, /use the LinkedIn data export: twin etl linkedin-export <zip>/);
  });

  it('hostile pages map to their kinds through crawl() too', async () => {
    const cases: [string, string][] = [
      ['/big', 'too-large'],
      ['/loop-a', 'too-many-redirects'],
      ['/to-metadata', 'blocked'],
      ['/pdf', 'bad-content-type'],
      ['/404', 'http-4xx'],
      ['/500', 'http-5xx'],
      ['/429', 'rate-limited'],
      ['/never-ends', 'timeout'],
      ['/private/secret', 'robots'],
    ];
    const results = await Promise.allSettled(cases.map(([path]) => crawl(`${server.url}${path}`, { fetcher })));
    results.forEach((res, i) => {
      if (res.status !== 'rejected') assert.fail(`${cases[i]![0]} should have failed`);
      const err = res.reason as CrawlError;
      assert.equal(err.kind, cases[i]![1], `${cases[i]![0]}: ${err.message}`);
    });
    // ...while a good link in the same batch is unaffected
    const ok: CrawlResult = await crawl(`${server.url}/news/playgrounds`, { fetcher });
    assert.equal(ok.completeness, 'complete');
  });

  it('invalid UTF-8 never crashes the crawl', async () => {
    const r = await crawl(`${server.url}/bad-utf8`, { fetcher });
    assert.match(r.content.Content!, /Caf\uFFFD/);
    assert.match(r.content.Content!, /real text/);
  });
});

describe('routeFor', () => {
  it('routes by host', () => {
    assert.equal(routeFor(new URL('https://www.linkedin.com/in/x')), 'linkedin');
    assert.equal(routeFor(new URL('https://github.com/temporalio/sdk-typescript')), 'github');
    assert.equal(routeFor(new URL('https://github.com/orgs/temporalio')), 'github-other');
    assert.equal(routeFor(new URL('https://github.com/temporalio')), 'github-other');
    assert.equal(routeFor(new URL('https://medium.com/@x/y-123')), 'medium');
    assert.equal(routeFor(new URL('https://towardsai.medium.com/y')), 'medium');
    assert.equal(routeFor(new URL('https://someone.substack.com/p/post')), 'substack');
    assert.equal(routeFor(new URL('https://example.com/blog/post')), 'page');
  });
});
