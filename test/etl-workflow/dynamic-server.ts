import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fixture } from '../etl/fixture-server';

/**
 * Pages whose answer changes over time, for the workflow tests (the static hostile cases are in
 * test/etl/fixture-server.ts):
 * - `/flaky-429/<name>`: 429 with `Retry-After: 1` on the first request, the article afterwards;
 * - `/changing/<name>`: an article whose text the test sets with `setVersion(name, n)`;
 * - `/slow/<name>`: an article answered after `slowMs` (a worker can be killed while it waits).
 * Every article is the realistic blog fixture with its own title, so each path is its own document.
 */

export interface DynamicServer {
  url: string;
  hits: Map<string, number>;
  setVersion(name: string, version: number): void;
  /** `/slow/` requests being answered right now */
  inFlight(): number;
  close(): Promise<void>;
}

const BLOG = fixture('blog-post.html');

function article(title: string, extra = ''): string {
  return BLOG.replaceAll('Parsing Logs with Python Generators', title).replace(
    '<div class="entry-content">',
    `<div class="entry-content">${extra}`,
  );
}

export async function startDynamicServer(options: { slowMs?: number } = {}): Promise<DynamicServer> {
  const hits = new Map<string, number>();
  const versions = new Map<string, number>();
  const slowMs = options.slowMs ?? 2_000;
  let slowInFlight = 0;
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://dynamic').pathname;
    const count = (hits.get(path) ?? 0) + 1;
    hits.set(path, count);
    const html = (body: string, status = 200, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', ...headers });
      res.end(body);
    };
    const [, kind, name] = path.split('/');
    if (path === '/robots.txt') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('User-agent: *\nAllow: /\n');
    } else if (kind === 'flaky-429' && name) {
      if (count === 1) html('<h1>Slow down</h1>', 429, { 'retry-after': '1' });
      else html(article(`Flaky ${name}`));
    } else if (kind === 'changing' && name) {
      const version = versions.get(name) ?? 1;
      html(
        article(
          `Changing ${name} v${version}`,
          `<p>This is version ${version} of the changing article ${name}, with enough words to be kept.</p>`,
        ),
      );
    } else if (kind === 'slow' && name) {
      slowInFlight++;
      const timer = setTimeout(() => html(article(`Slow ${name}`)), slowMs);
      res.on('close', () => {
        slowInFlight--;
        clearTimeout(timer);
      });
    } else {
      html('<h1>Not found</h1>', 404);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    setVersion: (name, version) => void versions.set(name, version),
    inFlight: () => slowInFlight,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
