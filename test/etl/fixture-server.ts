import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';

/**
 * A local web server for the ETL tests and the throughput bench: realistic pages from test/fixtures/sites and
 * hostile cases. Listens on 127.0.0.1, port 0 (a free port). `hits` counts requests per path.
 */

export const SITES_DIR = join(__dirname, '..', 'fixtures', 'sites');

export function fixture(name: string): string {
  return readFileSync(join(SITES_DIR, name), 'utf8');
}

export interface FixtureServer {
  url: string;
  port: number;
  hits: Map<string, number>;
  /** request start times per path (ms since epoch) */
  starts: Map<string, number[]>;
  close(): Promise<void>;
}

const PAGES: Record<string, string> = {
  '/medium/building-durable-pipelines': 'medium-article.html',
  '/medium/member-only': 'medium-member-only.html',
  '/p/notes-on-fine-tuning-small-models': 'substack-post.html',
  '/blog/parsing-logs-with-python-generators': 'blog-post.html',
  '/news/playgrounds': 'news-article.html',
};

const TEN_MB = 10 * 1024 * 1024;

export async function startFixtureServer(options: { robots?: string } = {}): Promise<FixtureServer> {
  const pages = new Map(Object.entries(PAGES).map(([path, file]) => [path, fixture(file)]));
  const hits = new Map<string, number>();
  const starts = new Map<string, number[]>();
  const open = new Set<ServerResponse>();
  const robots =
    options.robots ??
    'User-agent: *\nDisallow: /private/\n\nUser-agent: LLMTwinBot\nDisallow: /private/\nDisallow: /no-bots/\n';
  let port = 0;

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://fixture');
    const path = url.pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    starts.set(path, [...(starts.get(path) ?? []), Date.now()]);
    open.add(res);
    res.on('close', () => open.delete(res));
    const html = (body: string | Buffer, status = 200, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', ...headers });
      res.end(body);
    };

    const page = pages.get(path);
    if (page) {
      const enc = String(req.headers['accept-encoding'] ?? '');
      if (url.searchParams.get('enc') === 'br' && enc.includes('br')) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-encoding': 'br' });
        res.end(brotliCompressSync(page));
      } else if (url.searchParams.get('enc') === 'gzip' && enc.includes('gzip')) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-encoding': 'gzip' });
        res.end(gzipSync(page));
      } else html(page);
      return;
    }
    if (path.startsWith('/bench/')) {
      html(
        pages
          .get('/blog/parsing-logs-with-python-generators')!
          .replace('Parsing Logs with Python Generators</h1>', `Parsing Logs ${path}</h1>`),
      );
      return;
    }
    switch (path) {
      case '/robots.txt':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(robots);
        return;
      case '/private/secret':
      case '/no-bots/page':
        html(pages.get('/blog/parsing-logs-with-python-generators')!);
        return;
      case '/big': {
        // 10 MB streamed without Content-Length: the fetcher must stop reading at its cap.
        res.writeHead(200, { 'content-type': 'text/html' });
        const chunk = Buffer.alloc(64 * 1024, 'a');
        let sent = 0;
        const pump = (): void => {
          while (sent < TEN_MB) {
            sent += chunk.length;
            if (!res.write(chunk)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        res.write('<html><body><p>');
        pump();
        return;
      }
      case '/big-declared':
        res.writeHead(200, { 'content-type': 'text/html', 'content-length': String(TEN_MB) });
        res.end(Buffer.alloc(TEN_MB, 'b'));
        return;
      case '/gzip-bomb':
        res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'gzip' });
        res.end(gzipSync(Buffer.alloc(TEN_MB * 2, ' ')));
        return;
      case '/loop-a':
        res.writeHead(302, { location: '/loop-b' });
        res.end();
        return;
      case '/loop-b':
        res.writeHead(301, { location: `http://127.0.0.1:${port}/loop-a` });
        res.end();
        return;
      case '/redirect-chain': {
        const n = Number(url.searchParams.get('n') ?? '0');
        res.writeHead(302, {
          location: n >= 10 ? '/blog/parsing-logs-with-python-generators' : `/redirect-chain?n=${n + 1}`,
        });
        res.end();
        return;
      }
      case '/to-blog':
        res.writeHead(301, { location: '/blog/parsing-logs-with-python-generators' });
        res.end();
        return;
      case '/to-loopback':
        res.writeHead(302, { location: `http://127.0.0.2:${port}/blog/parsing-logs-with-python-generators` });
        res.end();
        return;
      case '/to-metadata':
        res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/iam/security-credentials/' });
        res.end();
        return;
      case '/to-metadata-v6':
        res.writeHead(302, { location: 'http://[fd00:ec2::254]/latest/meta-data/' });
        res.end();
        return;
      case '/to-file':
        res.writeHead(302, { location: 'file:///etc/passwd' });
        res.end();
        return;
      case '/pdf':
        res.writeHead(200, { 'content-type': 'application/pdf' });
        res.end('%PDF-1.4 fake');
        return;
      case '/no-type':
        res.writeHead(200, {});
        res.end(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0]));
        return;
      case '/404':
        html('<h1>Not found</h1>', 404);
        return;
      case '/410':
        html('<h1>Gone</h1>', 410);
        return;
      case '/500':
        html('<h1>Oops</h1>', 500);
        return;
      case '/503':
        html('<h1>Maintenance</h1>', 503, { 'retry-after': new Date(Date.now() + 120_000).toUTCString() });
        return;
      case '/429':
        html('<h1>Slow down</h1>', 429, { 'retry-after': '7' });
        return;
      case '/hang-headers':
        return; // never answers
      case '/never-ends':
        res.writeHead(200, { 'content-type': 'text/html' });
        res.write('<html><body><p>The beginning of a page that never');
        return; // ...ends
      case '/trickle': {
        res.writeHead(200, { 'content-type': 'text/html' });
        const timer = setInterval(() => res.write('.'), 50);
        res.on('close', () => clearInterval(timer));
        return;
      }
      case '/bad-utf8': {
        const head = Buffer.from(
          '<html><head><title>Broken bytes</title></head><body><article><h1>Broken bytes</h1><p>Caf',
        );
        const tail = Buffer.from(
          ' au lait and a stray byte here: \u00e9 end. '.repeat(1) +
            '</p><p>This paragraph is long enough for the extractor to keep it as the body of the page, even with broken bytes around it, because it is real text.</p></article></body></html>',
        );
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(Buffer.concat([head, Buffer.from([0xe9, 0xff, 0xc3, 0x28]), tail]));
        return;
      }
      case '/latin1': {
        const body =
          '<html><head><title>Crème brûlée</title></head><body><article><h1>Crème brûlée</h1><p>Une crème brûlée parfaite demande de la patience, du sucre et un chalumeau. Voilà pourquoi ce dessert reste un classique des bistrots français depuis des décennies.</p></article></body></html>';
        res.writeHead(200, { 'content-type': 'text/html; charset=iso-8859-1' });
        res.end(Buffer.from(body, 'latin1'));
        return;
      }
      case '/linkedin-like':
        html('<html><body>login wall</body></html>');
        return;
      default:
        html('<h1>Not found</h1>', 404);
    }
  };

  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    hits,
    starts,
    close: async () => {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
