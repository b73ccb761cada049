import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { extractArticle, extractMetadata, parseDocument } from '../../src/etl/extraction';
import { htmlToMarkdown } from '../../src/etl/markdown';
import { fixture } from './fixture-server';

const LONG = 'This sentence is part of a long paragraph that carries the article text and nothing else at all. ';

describe('htmlToMarkdown', () => {
  it('keeps headings, lists, quotes, code fences with language, tables; drops images and link targets; no escaping', () => {
    const md = htmlToMarkdown(
      '<h2>Intro</h2><p>Use <code>snake_case</code> and <a href="https://x.example">this link</a> 1. ok_<em>really</em></p>' +
        '<img src="a.png" alt="pic"><ul><li>one</li><li>two</li></ul><ol><li>first</li></ol><blockquote><p>quoted</p></blockquote>' +
        '<pre><code class="language-rust">fn main() {\n    println!("hi");\n}</code></pre><table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>',
    );
    assert.equal(
      md,
      '## Intro\n\nUse `snake_case` and this link 1. ok_*really*\n\n-   one\n-   two\n\n1.  first\n\n> quoted\n\n```rust\nfn main() {\n    println!("hi");\n}\n```\n\na | b\n1 | 2',
    );
  });
});

describe('extractMetadata', () => {
  it('reads JSON-LD inside @graph, Open Graph and meta tags', () => {
    const meta = extractMetadata(parseDocument(fixture('blog-post.html')));
    assert.equal(meta.title, 'Parsing Logs with Python Generators');
    assert.equal(meta.author, 'Alex Kim');
    assert.equal(meta.publishedAt, '2023-09-14T07:30:00+00:00');
    assert.equal(meta.siteName, 'Dev Notes by Alex Kim');
    assert.deepEqual(meta.tags, ['python', 'generators', 'logging']);
  });
  it('prefers alternativeHeadline as subtitle and survives broken JSON-LD', () => {
    const meta = extractMetadata(parseDocument(fixture('news-article.html')));
    assert.equal(
      meta.subtitle,
      'Twelve schools will open their playgrounds to the public on Saturdays and Sundays from April',
    );
    const broken = extractMetadata(
      parseDocument(
        '<html><head><script type="application/ld+json">{"@type":"Article","headline":"A\nB",</script><meta property="og:title" content="OG title"></head><body></body></html>',
      ),
    );
    assert.equal(broken.title, 'OG title');
  });
});

describe('extractArticle', () => {
  it('never removes the main content because of a misleading class name', () => {
    const html = `<html><body><nav><a href="/">Home</a><a href="/a">About</a></nav><div class="sidebar-layout"><div class="widget-content">
      <h1>Title</h1><p>${LONG.repeat(4)}</p><p>${LONG.repeat(3)}</p><p>Final words of the article.</p></div></div><footer>© Someone</footer></body></html>`;
    const a = extractArticle(html);
    assert.match(a.content, /Final words of the article\./);
    assert.doesNotMatch(a.content, /About|©/);
  });

  it('falls back to the JSON-LD articleBody when the page body is rendered by JavaScript', () => {
    const body =
      'First paragraph of a story that only exists in structured data.\n\nSecond paragraph, with more words to make it an article body worth keeping: '.concat(
        LONG.repeat(6),
      );
    const html = `<html><head><script type="application/ld+json">${JSON.stringify({ '@type': 'NewsArticle', headline: 'JS story', articleBody: body })}</script></head><body><div id="app"></div><script>render()</script></body></html>`;
    const a = extractArticle(html);
    assert.equal(a.method, 'json-ld');
    assert.equal(a.title, 'JS story');
    assert.ok(a.content.startsWith('First paragraph of a story'));
    assert.match(a.content, /\n\nSecond paragraph/);
  });

  it('returns empty content, not an exception, for an empty or garbage page', () => {
    assert.equal(extractArticle('').content, '');
    const garbage = extractArticle('<<<>>> \u0000 garbage');
    assert.ok(garbage.wordCount < 5);
    assert.equal(garbage.title, '');
  });

  it('removes boilerplate lines and repeated template blocks that Readability keeps', () => {
    const share = '<p>Whatsapp Facebook Pinterest</p>';
    const html = `<html><body><article><h1>T</h1><p>${LONG.repeat(3)}</p>${share}<p>Advertisement</p><p>${LONG.repeat(2)}</p>${share}<p>Read more: Another story you might like</p><p>${LONG}The end.</p>${share}</article></body></html>`;
    const a = extractArticle(html);
    assert.match(a.content, /The end\./);
    assert.doesNotMatch(a.content, /Whatsapp|Advertisement|Read more/);
    const plain = extractArticle(html, undefined, { plainReadability: true });
    assert.match(plain.content, /Whatsapp/, 'plain Readability (the baseline) keeps them');
  });
});
