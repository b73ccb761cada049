/**
 * Extraction-quality benchmark of the generic article extractor.
 *
 *   npx tsx bench/extraction.bench.ts [--dir ../shared/extraction-benchmark] [--worst 10] [--only ours|baseline]
 *
 * Data: the public article-extraction benchmark (181 real pages, true article bodies), read in place from
 * ../shared/extraction-benchmark (never copied into the repo). Metric, as in its README and the upstream
 * evaluate.py: 4-word shingles (word = run of Unicode letters/digits/underscore) of the predicted and true bodies
 * as multisets; per page tp/fp/fn normalised by their sum; precision and recall averaged over pages; F1 from the
 * two averages. "Accuracy" = share of pages whose token sequences are identical.
 *
 * Runs two extractors on the same pages: plain @mozilla/readability on a linkedom DOM (text content; the named
 * baseline) and ours (src/etl/extraction.ts, Markdown output), then prints both next to the published table.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Readability } from '@mozilla/readability';
import { parseDocument } from '../src/etl/dom';
import { extractArticle } from '../src/etl/extraction';

const PUBLISHED: [string, number][] = [
  ['rs-trafilatura', 0.97],
  ['go-trafilatura', 0.96],
  ['trafilatura (Python)', 0.958],
  ['newspaper4k', 0.949],
  ['Readability.js (published)', 0.947],
  ['go-domdistiller', 0.927],
  ['readability-lxml', 0.922],
  ['goose3', 0.896],
];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const TOKEN = /[\p{L}\p{N}_]+/gu;
const tokenize = (s: string): string[] => s.match(TOKEN) ?? [];

function shingles(text: string, n = 4): Map<string, number> {
  const tokens = tokenize(text);
  const out = new Map<string, number>();
  for (let i = 0; i < Math.max(1, tokens.length - n + 1); i++) {
    const s = tokens.slice(i, i + n);
    if (!s.length) continue;
    const key = s.join('\u0001');
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}

export function shingleMatch(truth: string, pred: string): [number, number, number] {
  const t = shingles(truth);
  const p = shingles(pred);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (const key of new Set([...t.keys(), ...p.keys()])) {
    const a = t.get(key) ?? 0;
    const b = p.get(key) ?? 0;
    tp += Math.min(a, b);
    fp += Math.max(0, b - a);
    fn += Math.max(0, a - b);
  }
  const s = tp + fp + fn;
  return s > 0 ? [tp / s, fp / s, fn / s] : [0, 0, 0];
}

const precisionScore = (tp: number, fp: number, fn: number): number =>
  fp === 0 && fn === 0 ? 1 : tp === 0 && fp === 0 ? 0 : tp / (tp + fp);
const recallScore = (tp: number, fp: number, fn: number): number =>
  fp === 0 && fn === 0 ? 1 : tp === 0 && fn === 0 ? 0 : tp / (tp + fn);
const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

interface Score {
  precision: number;
  recall: number;
  f1: number;
  accuracy: number;
  ms: number;
  perPage: { key: string; url: string; p: number; r: number }[];
}

type Extractor = (html: string, url: string) => string;

function evaluate(pages: Page[], extractor: Extractor): Score {
  const ps: number[] = [];
  const rs: number[] = [];
  let exact = 0;
  const perPage: Score['perPage'] = [];
  const started = performance.now();
  for (const page of pages) {
    let pred = '';
    try {
      pred = extractor(page.html, page.url);
    } catch (err) {
      console.error(`extractor failed on ${page.key}: ${(err as Error).message}`);
    }
    const [tp, fp, fn] = shingleMatch(page.truth, pred);
    const p = precisionScore(tp, fp, fn);
    const r = recallScore(tp, fp, fn);
    if (tp + fp > 0) ps.push(p);
    if (tp + fn > 0) rs.push(r);
    if (tokenize(page.truth).join(' ') === tokenize(pred).join(' ')) exact++;
    perPage.push({ key: page.key, url: page.url, p, r });
  }
  const ms = performance.now() - started;
  const precision = mean(ps);
  const recall = mean(rs);
  return {
    precision,
    recall,
    f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0,
    accuracy: exact / pages.length,
    ms,
    perPage,
  };
}

interface Page {
  key: string;
  url: string;
  truth: string;
  html: string;
}

function loadPages(dir: string): Page[] {
  const truth = JSON.parse(readFileSync(resolve(dir, 'ground-truth.json'), 'utf8')) as Record<
    string,
    { url: string; articleBody: string }
  >;
  return Object.entries(truth)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, v]) => ({
      key,
      url: v.url,
      truth: v.articleBody,
      html: gunzipSync(readFileSync(resolve(dir, 'html', `${key}.html.gz`))).toString('utf8'),
    }));
}

const baseline: Extractor = (html) => {
  return new Readability(parseDocument(html)).parse()?.textContent ?? '';
};
const ours: Extractor = (html, url) => extractArticle(html, url).content;

function main(): void {
  const dir = resolve(arg('dir') ?? resolve(__dirname, '../../shared/extraction-benchmark'));
  if (!existsSync(resolve(dir, 'ground-truth.json'))) {
    console.error(`benchmark data not found in ${dir} (pass --dir)`);
    process.exit(2);
  }
  const pages = loadPages(dir);
  const only = arg('only');
  const rows: [string, Score][] = [];
  if (only !== 'ours')
    rows.push(['@mozilla/readability 0.6 + linkedom (baseline, measured here)', evaluate(pages, baseline)]);
  if (only !== 'baseline') rows.push(['twin extractor (src/etl/extraction.ts, measured here)', evaluate(pages, ours)]);

  console.log(`\nExtraction benchmark: ${pages.length} pages from ${dir}`);
  console.log('command: npx tsx bench/extraction.bench.ts\n');
  console.log('extractor'.padEnd(64) + 'F1     precision recall accuracy  ms/page');
  for (const [name, s] of rows) {
    console.log(
      name.padEnd(64) +
        `${s.f1.toFixed(3)}  ${s.precision.toFixed(3)}     ${s.recall.toFixed(3)}  ${s.accuracy.toFixed(3)}     ${(s.ms / pages.length).toFixed(1)}`,
    );
  }
  console.log('\npublished F1 on the same benchmark (from its README):');
  for (const [name, f1] of PUBLISHED) console.log(`  ${name.padEnd(30)} ${f1.toFixed(3)}`);
  const mine = rows.find(([n]) => n.startsWith('twin'))?.[1];
  if (mine) {
    const above = PUBLISHED.filter(([, f1]) => mine.f1 > f1).map(([n]) => n);
    console.log(
      `\ntwin extractor F1 ${mine.f1.toFixed(3)}: above ${above.length ? above.join(', ') : 'none of the published entries'}`,
    );
  }

  const worst = Number(arg('worst') ?? 0);
  if (worst > 0 && mine) {
    const byF = [...mine.perPage].sort((a, b) => a.p + a.r - (b.p + b.r));
    console.log(`\nworst ${worst} pages (ours):`);
    for (const w of byF.slice(0, worst))
      console.log(`  p=${w.p.toFixed(2)} r=${w.r.toFixed(2)} ${w.key.slice(0, 10)} ${w.url}`);
  }
}

main();
