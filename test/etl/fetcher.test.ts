import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CrawlError } from '../../src/etl/errors';
import { Fetcher } from '../../src/etl/fetcher';
import { SsrfPolicy } from '../../src/etl/ssrf';
import { startFixtureServer, type FixtureServer } from './fixture-server';

async function rejectsWith(p: Promise<unknown>, kind: string, check?: (e: CrawlError) => void): Promise<CrawlError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof CrawlError, `expected CrawlError, got ${String(err)}`);
    assert.equal(err.kind, kind, `kind: ${err.message}`);
    check?.(err);
    return err;
  }
  assert.fail(`expected a ${kind} CrawlError, but the fetch succeeded`);
}

describe('Fetcher against the local fixture server', () => {
  let server: FixtureServer;
  let fetcher: Fetcher;
  before(async () => {
    server = await startFixtureServer();
    fetcher = new Fetcher({
      ssrf: { allow: ['127.0.0.1'] },
      politeness: false,
      headersTimeoutMs: 800,
      bodyTimeoutMs: 800,
      totalTimeoutMs: 3_000,
      maxBodyBytes: 2 * 1024 * 1024,
    });
  });
  after(async () => {
    await fetcher.close();
    await server.close();
  });

  it('fetches an HTML page with status, content type, charset and final URL', async () => {
    const page = await fetcher.fetch(`${server.url}/blog/parsing-logs-with-python-generators`);
    assert.equal(page.status, 200);
    assert.equal(page.contentType, 'text/html');
    assert.equal(page.charset, 'utf-8');
    assert.match(page.body, /Parsing Logs with Python Generators/);
    assert.equal(page.finalUrl, `${server.url}/blog/parsing-logs-with-python-generators`);
    assert.deepEqual(page.redirects, []);
  });

  it('decompresses gzip and brotli bodies', async () => {
    for (const enc of ['gzip', 'br']) {
      const page = await fetcher.fetch(`${server.url}/blog/parsing-logs-with-python-generators?enc=${enc}`);
      assert.match(page.body, /A generator pipeline/, enc);
    }
  });

  it('follows redirects and reports them', async () => {
    const page = await fetcher.fetch(`${server.url}/to-blog`);
    assert.equal(page.finalUrl, `${server.url}/blog/parsing-logs-with-python-generators`);
    assert.deepEqual(page.redirects, [`${server.url}/blog/parsing-logs-with-python-generators`]);
  });

  it('detects redirect loops and too many redirects', async () => {
    await rejectsWith(fetcher.fetch(`${server.url}/loop-a`), 'too-many-redirects', (e) =>
      assert.match(e.message, /loop/),
    );
    await rejectsWith(fetcher.fetch(`${server.url}/redirect-chain`), 'too-many-redirects', (e) =>
      assert.equal(e.retryable, false),
    );
  });

  it('blocks redirects to loopback, the metadata service, unique-local IPv6 and non-http schemes', async () => {
    await rejectsWith(fetcher.fetch(`${server.url}/to-loopback`), 'blocked', (e) =>
      assert.match(e.message, /127\.0\.0\.2.*loopback/),
    );
    await rejectsWith(fetcher.fetch(`${server.url}/to-metadata`), 'blocked', (e) =>
      assert.match(e.message, /169\.254\.169\.254.*linkLocal/),
    );
    await rejectsWith(fetcher.fetch(`${server.url}/to-metadata-v6`), 'blocked', (e) =>
      assert.match(e.message, /uniqueLocal/),
    );
    await rejectsWith(fetcher.fetch(`${server.url}/to-file`), 'blocked');
    assert.equal(server.hits.get('/latest/meta-data/'), undefined);
  });

  it('the SSRF guard blocks the fixture server itself when it is not allow-listed, by IP and by name', async () => {
    const strict = new Fetcher({ politeness: false, robots: false });
    try {
      const before = server.hits.get('/blog/parsing-logs-with-python-generators') ?? 0;
      await rejectsWith(strict.fetch(`${server.url}/blog/parsing-logs-with-python-generators`), 'blocked');
      // "localhost" is resolved first; every address it resolves to is loopback → refused before connecting.
      await rejectsWith(
        strict.fetch(`http://localhost:${server.port}/blog/parsing-logs-with-python-generators`),
        'blocked',
        (e) => assert.match(e.message, /localhost/),
      );
      assert.equal(
        server.hits.get('/blog/parsing-logs-with-python-generators') ?? 0,
        before,
        'no request reached the server',
      );
    } finally {
      await strict.close();
    }
  });

  it('refuses URLs with credentials', async () => {
    await rejectsWith(
      fetcher.fetch(`http://user:secret@127.0.0.1:${server.port}/blog/parsing-logs-with-python-generators`),
      'invalid-url',
      (e) => assert.doesNotMatch(`${e.message} ${e.url ?? ''}`, /secret/),
    );
  });

  it('stops reading a 10 MB body at the size cap (streamed and declared)', async () => {
    await rejectsWith(fetcher.fetch(`${server.url}/big`), 'too-large');
    await rejectsWith(fetcher.fetch(`${server.url}/big-declared`), 'too-large');
    await rejectsWith(fetcher.fetch(`${server.url}/gzip-bomb`), 'too-large');
  });

  it('rejects wrong content types', async () => {
    await rejectsWith(fetcher.fetch(`${server.url}/pdf`), 'bad-content-type', (e) =>
      assert.match(e.message, /application\/pdf/),
    );
    await rejectsWith(fetcher.fetch(`${server.url}/no-type`), 'bad-content-type');
  });

  it('classifies 404 / 410 as final, 500 / 503 / 429 as retryable with Retry-After', async () => {
    await rejectsWith(fetcher.fetch(`${server.url}/404`), 'http-4xx', (e) => {
      assert.equal(e.status, 404);
      assert.equal(e.retryable, false);
    });
    await rejectsWith(fetcher.fetch(`${server.url}/410`), 'http-4xx');
    await rejectsWith(fetcher.fetch(`${server.url}/500`), 'http-5xx', (e) => {
      assert.equal(e.status, 500);
      assert.equal(e.retryable, true);
    });
    await rejectsWith(fetcher.fetch(`${server.url}/503`), 'http-5xx', (e) => {
      assert.ok(
        e.retryAfterMs !== undefined && e.retryAfterMs > 100_000 && e.retryAfterMs <= 120_000,
        `retryAfterMs ${e.retryAfterMs}`,
      );
    });
    await rejectsWith(fetcher.fetch(`${server.url}/429`), 'rate-limited', (e) => {
      assert.equal(e.retryAfterMs, 7_000);
      assert.equal(e.retryable, true);
    });
  });

  it('times out on missing headers, a stalled body and a body that never ends', async () => {
    await rejectsWith(fetcher.fetch(`${server.url}/hang-headers`), 'timeout', (e) => assert.equal(e.retryable, true));
    await rejectsWith(fetcher.fetch(`${server.url}/never-ends`), 'timeout');
    await rejectsWith(fetcher.fetch(`${server.url}/trickle`), 'timeout', (e) => assert.match(e.message, /total/));
  });

  it('decodes invalid UTF-8 with replacement characters and honours a latin-1 charset', async () => {
    const bad = await fetcher.fetch(`${server.url}/bad-utf8`);
    assert.match(bad.body, /Caf\uFFFD/);
    assert.match(bad.body, /au lait/);
    const latin = await fetcher.fetch(`${server.url}/latin1`);
    assert.equal(latin.charset, 'iso-8859-1');
    assert.match(latin.body, /Crème brûlée/);
  });

  it('network errors are retryable', async () => {
    const closed = await startFixtureServer();
    const url = `${closed.url}/blog/x`;
    await closed.close();
    await rejectsWith(fetcher.fetch(url), 'network', (e) => assert.equal(e.retryable, true));
  });

  it('respects robots.txt, fetching it once per origin', async () => {
    const robotsBefore = server.hits.get('/robots.txt') ?? 0;
    await rejectsWith(fetcher.fetch(`${server.url}/private/secret`), 'robots', (e) => assert.equal(e.retryable, false));
    await rejectsWith(fetcher.fetch(`${server.url}/no-bots/page`), 'robots');
    assert.equal(server.hits.get('/private/secret'), undefined, 'the disallowed page was not requested');
    await fetcher.fetch(`${server.url}/news/playgrounds`);
    assert.ok((server.hits.get('/robots.txt') ?? 0) - robotsBefore <= 1, 'robots.txt cached');
    const ignoring = new Fetcher({ ssrf: { allow: ['127.0.0.1'] }, politeness: false, robots: false });
    try {
      const page = await ignoring.fetch(`${server.url}/private/secret`);
      assert.equal(page.status, 200);
    } finally {
      await ignoring.close();
    }
  });
});

describe('per-host politeness', () => {
  it('spaces requests to one host by the minimum delay and caps concurrency', async () => {
    const server = await startFixtureServer();
    const fetcher = new Fetcher({
      ssrf: { allow: ['127.0.0.1'] },
      robots: false,
      politeness: { perHostConcurrency: 1, minDelayMs: 150 },
    });
    try {
      // A lower bound only (slowness can never make it fail): three requests to one host need two delays.
      const started = Date.now();
      await Promise.all([1, 2, 3].map((i) => fetcher.fetch(`${server.url}/bench/${i}`)));
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 2 * 150 - 5, `three requests took ${elapsed} ms, less than two 150 ms delays`);
      assert.equal([1, 2, 3].filter((i) => server.starts.get(`/bench/${i}`)?.length === 1).length, 3);
    } finally {
      await fetcher.close();
      await server.close();
    }
  });
});

describe('SsrfPolicy', () => {
  const policy = new SsrfPolicy();
  for (const [ip, range] of [
    ['127.0.0.1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['0.0.0.0', 'unspecified'],
    ['::1', 'loopback'],
    ['fd00:ec2::254', 'uniqueLocal'],
    ['fe80::1', 'linkLocal'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['64:ff9b::a00:1', 'rfc6052'],
  ] as const) {
    it(`refuses ${ip} (${range})`, () => assert.deepEqual(policy.check(ip), { allowed: false, range }));
  }
  it('allows public unicast and allow-listed CIDRs', () => {
    assert.equal(policy.check('93.184.216.34').allowed, true);
    assert.equal(policy.check('2606:4700:4700::1111').allowed, true);
    const lab = new SsrfPolicy({ allow: ['10.0.0.0/8', '::1'] });
    assert.equal(lab.check('10.9.8.7').allowed, true);
    assert.equal(lab.check('::1').allowed, true);
    assert.equal(lab.check('192.168.0.1').allowed, false);
  });
});
