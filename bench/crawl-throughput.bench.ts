/**
 * Crawl throughput: pages per second for N links (default 500) against the local fixture web server, politeness
 * off, at concurrency 1 and at the default concurrency, with peak memory.
 *
 *   npx tsx bench/crawl-throughput.bench.ts [--links 500] [--concurrency 8]
 *
 * The fixture server runs in a child process (so its work is not counted in this process's memory); every link
 * goes through the full `crawl()` path: normalisation, SSRF check, robots.txt (cached), fetch, extraction,
 * Markdown, content hash.
 */
import { spawn } from 'node:child_process';
import pLimit from 'p-limit';
import { crawl, DEFAULT_CRAWL_CONCURRENCY } from '../src/etl/dispatcher';
import { Fetcher } from '../src/etl/fetcher';
import { startFixtureServer } from '../test/etl/fixture-server';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function serve(): Promise<void> {
  const server = await startFixtureServer();
  process.stdout.write(`${server.url}\n`);
  process.on('SIGTERM', () => {
    void server.close().then(() => process.exit(0));
  });
}

async function startServerProcess(): Promise<{ url: string; stop: () => void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', __filename, '--serve'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()));
    child.once('exit', (code) => reject(new Error(`fixture server exited with ${code}`)));
  });
  return { url, stop: () => child.kill('SIGTERM') };
}

interface Run {
  concurrency: number;
  links: number;
  ok: number;
  failed: number;
  seconds: number;
  pagesPerSecond: number;
  peakRssMiB: number;
  peakHeapMiB: number;
}

async function run(baseUrl: string, links: number, concurrency: number, round: number): Promise<Run> {
  const fetcher = new Fetcher({
    ssrf: { allow: ['127.0.0.1'] },
    politeness: false,
    connectionsPerOrigin: Math.max(8, concurrency),
  });
  const limit = pLimit(concurrency);
  let peakRss = 0;
  let peakHeap = 0;
  const sample = (): void => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  };
  const timer = setInterval(sample, 20);
  let ok = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: links }, (_, i) =>
      limit(async () => {
        try {
          await crawl(`${baseUrl}/bench/r${round}-${i}`, { fetcher });
          ok++;
        } catch (err) {
          failed++;
          if (failed <= 3) console.error(`failed: ${(err as Error).message}`);
        }
      }),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  clearInterval(timer);
  sample();
  await fetcher.close();
  return {
    concurrency,
    links,
    ok,
    failed,
    seconds,
    pagesPerSecond: ok / seconds,
    peakRssMiB: peakRss / 2 ** 20,
    peakHeapMiB: peakHeap / 2 ** 20,
  };
}

async function main(): Promise<void> {
  const links = Number(arg('links') ?? 500);
  const concurrency = Number(arg('concurrency') ?? DEFAULT_CRAWL_CONCURRENCY);
  const server = await startServerProcess();
  try {
    // warm-up (JIT, connection pool, robots.txt cache are per fetcher; this warms the code paths)
    await run(server.url, 20, 4, 0);
    const results: Run[] = [];
    results.push(await run(server.url, links, 1, 1));
    results.push(await run(server.url, links, concurrency, 2));
    console.log(
      `\nCrawl throughput: ${links} links against the local fixture server (blog page, ~7 KB), politeness off`,
    );
    console.log(`command: npx tsx bench/crawl-throughput.bench.ts --links ${links} --concurrency ${concurrency}`);
    console.log(`node ${process.version}, ${process.platform}/${process.arch}\n`);
    console.log('concurrency  ok   failed  seconds  pages/s  peak RSS MiB  peak heap MiB');
    for (const r of results) {
      console.log(
        `${String(r.concurrency).padEnd(13)}${String(r.ok).padEnd(5)}${String(r.failed).padEnd(8)}${r.seconds.toFixed(2).padEnd(9)}${r.pagesPerSecond.toFixed(1).padEnd(9)}${r.peakRssMiB.toFixed(0).padEnd(14)}${r.peakHeapMiB.toFixed(0)}`,
      );
    }
  } finally {
    server.stop();
  }
}

if (process.argv.includes('--serve')) void serve();
else
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
