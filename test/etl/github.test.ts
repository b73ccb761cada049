import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { crawlRepository } from '../../src/etl/crawlers/github';
import { crawl } from '../../src/etl/dispatcher';
import { CrawlError } from '../../src/etl/errors';
import { Fetcher } from '../../src/etl/fetcher';
import { SsrfPolicy } from '../../src/etl/ssrf';

/** A real repository served by `git daemon` on 127.0.0.1, cloned by the crawler over git://. */

function git(cwd: string, ...args: string[]): void {
  execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', ...args], { cwd, stdio: 'pipe' });
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('git daemon did not start');
}

describe('GitHub repository crawler (local git daemon)', () => {
  let root: string;
  let daemon: ChildProcess;
  let port: number;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'twin-git-fixture-'));
    const work = join(root, 'work');
    mkdirSync(join(work, 'src'), { recursive: true });
    mkdirSync(join(work, 'vendor', 'lib'), { recursive: true });
    mkdirSync(join(work, 'dist'), { recursive: true });
    mkdirSync(join(work, 'docs'), { recursive: true });
    writeFileSync(join(work, 'README.md'), '# tiny-twin\n\nA tiny project used to test the repository crawler.\n');
    writeFileSync(join(work, 'src', 'app.ts'), 'export const answer = 42;\n');
    writeFileSync(join(work, 'src', 'schema.generated.ts'), '// generated\nexport type X = 1;\n');
    writeFileSync(join(work, 'docs', 'guide.md'), '## Guide\n\nRun `npm start`.\n');
    writeFileSync(join(work, 'package-lock.json'), '{"lockfileVersion":3}\n');
    writeFileSync(join(work, 'vendor', 'lib', 'jquery.js'), 'window.$ = 1;\n');
    writeFileSync(join(work, 'dist', 'bundle.min.js'), 'var a=1;\n');
    writeFileSync(join(work, 'logo.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d]));
    writeFileSync(join(work, 'data.txt'), Buffer.from([0x66, 0x6f, 0x6f, 0x00, 0x62, 0x61, 0x72]));
    writeFileSync(join(work, 'latin1.txt'), Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    writeFileSync(join(work, 'big.txt'), 'x'.repeat(300 * 1024));
    writeFileSync(join(work, '.gitattributes'), 'src/schema.generated.ts linguist-generated=true\n');
    writeFileSync(join(work, '.gitignore'), 'secrets.env\nbuild/\n');
    writeFileSync(join(work, 'secrets.env'), 'TOKEN=do-not-store\n');
    symlinkSync('/etc/passwd', join(work, 'passwd-link'));
    git(work, 'init', '-q', '-b', 'main');
    git(work, 'add', '-A');
    git(work, 'commit', '-q', '-m', 'initial');
    mkdirSync(join(root, 'serve', 'alice'), { recursive: true });
    git(root, 'clone', '-q', '--bare', work, join(root, 'serve', 'alice', 'tiny-twin.git'));
    port = await freePort();
    daemon = spawn(
      'git',
      [
        'daemon',
        '--reuseaddr',
        '--export-all',
        `--base-path=${join(root, 'serve')}`,
        '--listen=127.0.0.1',
        `--port=${port}`,
        join(root, 'serve'),
      ],
      {
        stdio: 'ignore',
      },
    );
    await waitForPort(port);
  });

  after(() => {
    daemon?.kill('SIGTERM');
    rmSync(root, { recursive: true, force: true });
  });

  const options = () => ({
    cloneUrl: (owner: string, repo: string) => `git://127.0.0.1:${port}/${owner}/${repo}.git`,
    allowedProtocols: ['git'],
  });

  it('clones the default branch and keeps only tracked text files, skipping binaries, locks, vendored, generated, symlinks and big files', async () => {
    const fetcher = new Fetcher({ ssrf: { allow: ['127.0.0.1'] } });
    try {
      const r = await crawl('https://github.com/Alice/tiny-twin.git', { fetcher, github: options() });
      assert.equal(r.category, 'repositories');
      assert.equal(r.platform, 'github');
      assert.equal(r.link, 'https://github.com/alice/tiny-twin');
      assert.equal(r.crawler.name, 'github');
      assert.deepEqual(Object.keys(r.content).sort(), [
        '.gitattributes',
        '.gitignore',
        'README.md',
        'docs/guide.md',
        'src/app.ts',
      ]);
      assert.equal(r.content['src/app.ts'], 'export const answer = 42;\n');
      assert.equal(r.completeness, 'complete');
      assert.equal(r.metadata.branch, 'main');
      assert.match(String(r.metadata.commit), /^[0-9a-f]{40}$/);
      assert.deepEqual(r.metadata.skipped, { binary: 3, lock: 1, vendored: 3, tooLarge: 1, overTotal: 0, symlink: 1 });
      assert.equal(r.httpStatus, null);
    } finally {
      await fetcher.close();
    }
  });

  it('reports the total-size cap when hit', async () => {
    const r = await crawlRepository('alice', 'tiny-twin', new SsrfPolicy({ allow: ['127.0.0.1'] }), {
      ...options(),
      maxTotalBytes: 80,
    });
    assert.equal(r.completeness, 'truncated');
    assert.ok(r.skipped.overTotal > 0);
    assert.ok('README.md' in r.files, 'README is kept first');
    assert.match(r.warnings.join(' '), /total size cap/);
  });

  it('a missing repository is a final http-4xx', async () => {
    await assert.rejects(
      crawlRepository('alice', 'missing', new SsrfPolicy({ allow: ['127.0.0.1'] }), options()),
      (e: unknown) => {
        assert.ok(e instanceof CrawlError);
        assert.equal(e.kind, 'http-4xx');
        assert.equal(e.retryable, false);
        return true;
      },
    );
  });

  it('the SSRF guard applies to the clone host, and other git transports are refused', async () => {
    await assert.rejects(
      crawlRepository('alice', 'tiny-twin', new SsrfPolicy(), options()),
      (e: unknown) => e instanceof CrawlError && e.kind === 'blocked',
    );
    await assert.rejects(
      crawlRepository('alice', 'tiny-twin', new SsrfPolicy(), {
        cloneUrl: () => `file://${join(root, 'serve', 'alice', 'tiny-twin.git')}`,
      }),
      (e: unknown) => e instanceof CrawlError && e.kind === 'blocked',
    );
  });
});
