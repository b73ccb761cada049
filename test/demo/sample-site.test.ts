/**
 * The offline sample site: served on loopback, crawled by the real generic crawler (robots.txt respected), each
 * page extracted to the article text of the corpus without the site's navigation and footer; the default SSRF
 * policy refuses it (the demo has to allow 127.0.0.1 for itself).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { crawl, Fetcher, isCrawlError } from '../../src/etl';
import { startSampleSite, type SampleSite } from '../../src/demo/sample-site';

describe('sample site', () => {
  let site: SampleSite;
  let fetcher: Fetcher;

  before(async () => {
    site = await startSampleSite();
    fetcher = new Fetcher({ ssrf: { allow: ['127.0.0.1'] }, politeness: false });
  });
  after(async () => {
    await fetcher?.close();
    await site?.close();
  });

  test('ships several articles of one author, with the corpus licence', async () => {
    assert.ok(site.articles.length >= 5, `${site.articles.length} articles`);
    assert.equal(site.author, 'Maxime Labonne');
    const licence = await fetch(`${site.url}/LICENSE.txt`).then((r) => r.text());
    assert.match(licence, /MIT License[\s\S]*Packt/);
    const index = await fetch(site.url).then((r) => r.text());
    for (const a of site.articles) assert.ok(index.includes(`href="${a.path}"`), `index links ${a.path}`);
    assert.equal((await fetch(`${site.url}/../package.json`)).status, 404);
  });

  test('the generic crawler extracts every article: title, author, date, body without site chrome', async () => {
    for (const [i, link] of site.links.entries()) {
      const article = site.articles[i]!;
      const result = await crawl(link, { fetcher });
      assert.equal(result.category, 'articles');
      assert.equal(result.crawler.name, 'article', `${link} went to the generic crawler`);
      assert.equal(result.completeness, 'complete');
      assert.equal(result.content.Title, article.title);
      assert.equal(result.metadata.author, 'Maxime Labonne');
      const body = result.content.Content!;
      assert.ok(body.length > 4000, `${article.path}: ${body.length} characters`);
      assert.doesNotMatch(
        body,
        /LLM Engineer’s Handbook corpus|More articles|All articles by/,
        'footer/aside left out',
      );
      assert.doesNotMatch(body, /Share this post|Copy link/, 'Substack share widgets left out');
    }
    // the robots.txt was asked for (and allows everything)
    assert.ok((site.hits.get('/robots.txt') ?? 0) >= 1);
  });

  test('the tensor article keeps its headings, list and closing quote', async () => {
    const link = site.links.find((l) => l.includes('what-is-a-tensor'))!;
    const { content } = await crawl(link, { fetcher });
    assert.match(content.Content!, /Tensors in computer science/);
    assert.match(content.Content!, /Data structure/);
    assert.match(content.Content!, /n-dimensional arrays/);
  });

  test('without an SSRF exception the crawler refuses the loopback site', async () => {
    const strict = new Fetcher({ politeness: false });
    try {
      await assert.rejects(crawl(site.links[0]!, { fetcher: strict }), (error: unknown) => {
        assert.ok(isCrawlError(error), String(error));
        assert.match(error.kind, /ssrf|blocked|forbidden/i);
        return true;
      });
    } finally {
      await strict.close();
    }
  });
});
