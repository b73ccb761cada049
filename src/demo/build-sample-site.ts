/**
 * Builds the offline sample site (demo/site/) from the shared real corpus: a few articles of one author, rendered
 * as ordinary blog pages (header, navigation, byline, article body, footer) plus an index page and robots.txt, so
 * the demo crawls them over HTTP with the same generic crawler as any personal blog.
 *
 * The corpus is the reference implementation's raw-document export (PacktPublishing/LLM-Engineers-Handbook,
 * MIT licence, © 2024 Packt); the articles are Maxime Labonne's. The generated site keeps that attribution on
 * every page and ships the licence next to it.
 *
 *   npx tsx src/demo/build-sample-site.ts [--corpus ../shared/corpus] [--out demo/site]
 *
 * The output is committed (a fresh clone has no corpus); this script documents how it was made and re-makes it.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { marked } from 'marked';

export const SAMPLE_AUTHOR = 'Maxime Labonne';

/** The articles shipped (links of the corpus), short ones first so the demo's LLM work stays small. */
export const SAMPLE_ARTICLE_LINKS = [
  'https://maximelabonne.substack.com/p/what-is-a-tensor-in-deep-learning-6dedd95d6507',
  'https://maximelabonne.substack.com/p/efficiently-iterating-over-rows-in-a-pandas-dataframe-7dd5f9992c01',
  'https://maximelabonne.substack.com/p/introduction-to-linear-programming-in-python-9261e7eb44b',
  'https://maximelabonne.substack.com/p/constraint-programming-67ac16fa0c81',
  'https://maximelabonne.substack.com/p/exllamav2-the-fastest-library-to-run-llms-32aeda294d26',
  'https://maximelabonne.substack.com/p/a-beginners-guide-to-llm-fine-tuning-4bae7d4da672',
];

interface CorpusArticle {
  content: { Title: string; Subtitle: string | null; Content: string };
  author_full_name: string;
  link: string;
}

export interface SampleArticle {
  slug: string;
  title: string;
  subtitle?: string;
  date?: string;
  /** original location of the article */
  source: string;
  markdown: string;
}

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/**
 * The article body of a Substack export: after the title block (title, subtitle, author, date, share widget),
 * before the closing share widget and comments.
 */
export function toSampleArticle(article: CorpusArticle): SampleArticle {
  const lines = article.content.Content.split('\n');
  const titleAt = lines.findIndex((l, i) => i > 0 && /^# \S/.test(l));
  if (titleAt < 0) throw new Error(`no title line in ${article.link}`);
  const title = lines[titleAt]!.slice(2).trim();
  let i = titleAt + 1;
  const next = () => {
    while (i < lines.length && lines[i]!.trim() === '') i++;
    return lines[i]?.trim() ?? '';
  };
  let subtitle: string | undefined;
  if (next().startsWith('### ')) {
    subtitle = next().slice(4).trim();
    i++;
  }
  let date: string | undefined;
  if (next() === article.author_full_name) {
    i++;
    if (/^[A-Z][a-z]{2} \d{1,2}, \d{4}$/.test(next())) {
      date = next();
      i++;
    }
  }
  // the share widget under the byline (after an optional like count) ends with a lone "Share"
  if (/^\d+$/.test(next())) i++;
  if (next() === 'Share this post') {
    const end = lines.findIndex((l, j) => j > i && l.trim() === 'Share');
    if (end > 0) i = end + 1;
  }
  const tail = lines.map((l) => l.trim()).lastIndexOf('Share this post');
  const body = lines.slice(i, tail > i ? tail : undefined);
  while (body.length && /^\s*\d*\s*$/.test(body[body.length - 1]!)) body.pop(); // trailing like count
  // a repeated subtitle heading at the top of the body
  while (body.length && (body[0]!.trim() === '' || body[0]!.trim() === `#### ${subtitle}`)) body.shift();
  const slug = new URL(article.link).pathname
    .split('/')
    .pop()!
    .replace(/-[0-9a-f]{10,12}$/, '');
  return { slug, title, subtitle, date, source: article.link, markdown: body.join('\n').trim() };
}

const ATTRIBUTION =
  'Article text from the LLM Engineer’s Handbook corpus (PacktPublishing/LLM-Engineers-Handbook, MIT licence, © 2024 Packt), written by Maxime Labonne; served locally for the LLM Twin demo.';

function page(opts: { title: string; head?: string; body: string }): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(opts.title)}</title>
<link rel="stylesheet" href="/style.css">
${opts.head ?? ''}
</head>
<body>
<header class="site-header">
  <a class="site-title" href="/">${escapeHtml(SAMPLE_AUTHOR)}</a>
  <nav><ul><li><a href="/">Articles</a></li><li><a href="/about.html">About</a></li><li><a href="/feed.xml">RSS</a></li></ul></nav>
</header>
${opts.body}
<footer class="site-footer">
  <p>${escapeHtml(ATTRIBUTION)} <a href="/LICENSE.txt">Licence</a>.</p>
  <p>© ${escapeHtml(SAMPLE_AUTHOR)} · <a href="/">Home</a> · <a href="/feed.xml">Subscribe</a></p>
</footer>
</body>
</html>
`;
}

export function renderArticle(a: SampleArticle, siteTitle = SAMPLE_AUTHOR): string {
  const published = a.date ? new Date(`${a.date} UTC`).toISOString().slice(0, 10) : undefined;
  const jsonLd = {
    '@context': 'https://schema.org',
    '@type': 'BlogPosting',
    headline: a.title,
    ...(a.subtitle ? { description: a.subtitle } : {}),
    author: { '@type': 'Person', name: SAMPLE_AUTHOR },
    ...(published ? { datePublished: published } : {}),
    isBasedOn: a.source,
  };
  const head = [
    `<meta name="author" content="${escapeHtml(SAMPLE_AUTHOR)}">`,
    a.subtitle ? `<meta name="description" content="${escapeHtml(a.subtitle)}">` : '',
    `<meta property="og:type" content="article">`,
    `<meta property="og:title" content="${escapeHtml(a.title)}">`,
    `<meta property="og:site_name" content="${escapeHtml(siteTitle)}">`,
    published ? `<meta property="article:published_time" content="${published}">` : '',
    `<script type="application/ld+json">${JSON.stringify(jsonLd).replace(/</g, '\\u003c')}</script>`,
  ]
    .filter(Boolean)
    .join('\n');
  const body = `<main>
<article class="post">
  <h1>${escapeHtml(a.title)}</h1>
  ${a.subtitle ? `<p class="subtitle">${escapeHtml(a.subtitle)}</p>` : ''}
  <p class="byline">By <span class="author">${escapeHtml(SAMPLE_AUTHOR)}</span>${a.date ? ` · <time datetime="${published}">${escapeHtml(a.date)}</time>` : ''}</p>
  <div class="post-body">
${marked.parse(a.markdown, { async: false })}
  </div>
</article>
<aside class="related"><h2>More articles</h2><p><a href="/">All articles by ${escapeHtml(SAMPLE_AUTHOR)}</a></p></aside>
</main>`;
  return page({ title: `${a.title} | ${siteTitle}`, head, body });
}

export function renderIndex(articles: SampleArticle[]): string {
  const items = articles
    .map(
      (a) =>
        `<li><a href="/posts/${a.slug}.html">${escapeHtml(a.title)}</a>${a.date ? ` <time>${escapeHtml(a.date)}</time>` : ''}${a.subtitle ? `<br><span class="subtitle">${escapeHtml(a.subtitle)}</span>` : ''}</li>`,
    )
    .join('\n');
  return page({
    title: `${SAMPLE_AUTHOR} — articles`,
    body: `<main><h1>Articles</h1><ul class="post-list">\n${items}\n</ul></main>`,
  });
}

const STYLE = `body{font:17px/1.6 Georgia,serif;max-width:46rem;margin:0 auto;padding:0 1rem;color:#222}
.site-header{display:flex;justify-content:space-between;align-items:center;border-bottom:1px solid #ddd}
.site-header nav ul{list-style:none;display:flex;gap:1rem;padding:0}
.subtitle{color:#555;font-style:italic}.byline{color:#777}
pre{background:#f5f5f5;padding:.75rem;overflow:auto}code{font-size:90%}
.site-footer{border-top:1px solid #ddd;margin-top:3rem;font-size:80%;color:#666}
`;

export async function buildSampleSite(corpusDir: string, outDir: string): Promise<SampleArticle[]> {
  const corpus = JSON.parse(await readFile(path.join(corpusDir, 'ArticleDocument.json'), 'utf8')) as CorpusArticle[];
  const articles = SAMPLE_ARTICLE_LINKS.map((link) => {
    const found = corpus.find((a) => a.link === link);
    if (!found) throw new Error(`${link} is not in the corpus`);
    return toSampleArticle(found);
  });
  await rm(outDir, { recursive: true, force: true });
  await mkdir(path.join(outDir, 'posts'), { recursive: true });
  for (const a of articles) await writeFile(path.join(outDir, 'posts', `${a.slug}.html`), renderArticle(a));
  await writeFile(path.join(outDir, 'index.html'), renderIndex(articles));
  await writeFile(
    path.join(outDir, 'about.html'),
    page({
      title: `About — ${SAMPLE_AUTHOR}`,
      body: `<main><h1>About</h1><p>A local copy of a few articles by ${escapeHtml(SAMPLE_AUTHOR)}, for the LLM Twin demo. Originals: ${articles.map((a) => `<a href="${escapeHtml(a.source)}">${escapeHtml(a.title)}</a>`).join(', ')}.</p></main>`,
    }),
  );
  await writeFile(path.join(outDir, 'style.css'), STYLE);
  await writeFile(path.join(outDir, 'robots.txt'), 'User-agent: *\nAllow: /\n');
  await writeFile(path.join(outDir, 'LICENSE.txt'), await readFile(path.join(corpusDir, 'LICENSE'), 'utf8'));
  await writeFile(
    path.join(outDir, 'articles.json'),
    `${JSON.stringify(
      articles.map(({ slug, title, subtitle, date, source }) => ({
        path: `/posts/${slug}.html`,
        title,
        subtitle,
        date,
        source,
      })),
      null,
      2,
    )}\n`,
  );
  return articles;
}

if (require.main === module) {
  const { values } = parseArgs({
    options: {
      corpus: { type: 'string', default: path.resolve(__dirname, '..', '..', '..', 'shared', 'corpus') },
      out: { type: 'string', default: path.resolve(__dirname, '..', '..', 'demo', 'site') },
    },
  });
  buildSampleSite(values.corpus, values.out).then(
    (articles) => process.stdout.write(`${articles.length} articles → ${values.out}\n`),
    (error: unknown) => {
      process.stderr.write(`${String(error)}\n`);
      process.exit(1);
    },
  );
}
