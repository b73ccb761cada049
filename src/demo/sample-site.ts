/**
 * Serves the offline sample site (demo/site/: a few of Maxime Labonne's articles from the MIT-licensed LLM
 * Engineer's Handbook corpus, as blog pages) on a loopback port, so the demo crawls real HTML over real HTTP
 * without internet.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import Fastify from 'fastify';

export const SAMPLE_SITE_DIR = path.resolve(__dirname, '..', '..', 'demo', 'site');
export const SAMPLE_SITE_AUTHOR = 'Maxime Labonne';

export interface SampleSiteArticle {
  /** path on the site, e.g. /posts/what-is-a-tensor-in-deep-learning.html */
  path: string;
  title: string;
  subtitle?: string;
  date?: string;
  /** where the article was first published */
  source: string;
}

export interface SampleSite {
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  author: string;
  articles: SampleSiteArticle[];
  /** absolute links of the articles (what the demo gives the ETL) */
  links: string[];
  /** requests served so far, by path */
  hits: Map<string, number>;
  close(): Promise<void>;
}

export function sampleSiteArticles(dir = SAMPLE_SITE_DIR): SampleSiteArticle[] {
  return JSON.parse(readFileSync(path.join(dir, 'articles.json'), 'utf8')) as SampleSiteArticle[];
}

/** Starts the static server on 127.0.0.1 (port 0 = a free one). */
export async function startSampleSite(
  options: {
    port?: number;
    dir?: string;
    /** answer article pages after this many ms (failure drills use it to hold crawls in flight) */
    articleDelayMs?: number;
  } = {},
): Promise<SampleSite> {
  const dir = options.dir ?? SAMPLE_SITE_DIR;
  const articles = sampleSiteArticles(dir);
  const hits = new Map<string, number>();
  const app = Fastify({ logger: false });
  app.addHook('onRequest', async (request) => {
    const p = request.url.split('?')[0]!;
    hits.set(p, (hits.get(p) ?? 0) + 1);
    if (options.articleDelayMs && p.startsWith('/posts/')) {
      await new Promise((resolve) => setTimeout(resolve, options.articleDelayMs));
    }
  });
  await app.register(fastifyStatic, { root: dir, index: ['index.html'], dotfiles: 'deny' });
  await app.listen({ host: '127.0.0.1', port: options.port ?? 0 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('sample site: no TCP address');
  const url = `http://127.0.0.1:${address.port}`;
  return {
    url,
    author: SAMPLE_SITE_AUTHOR,
    articles,
    links: articles.map((a) => `${url}${a.path}`),
    hits,
    close: () => app.close(),
  };
}
