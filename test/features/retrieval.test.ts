/**
 * Retrieval sanity on the real corpus (issue 4 acceptance, library level): for questions whose answer is in a
 * known article, one of that article's chunks is in the top 5 of its author's chunks by cosine similarity.
 * Uses the real pipeline end to end in memory: clean → chunk → embed (default local embedder, fp32) → search.
 * The questions live in fixtures/retrieval-questions.json so the Qdrant-level test can reuse them.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Chunk } from '../../src/domain/documents';
import { chunkDocument } from '../../src/features/chunking';
import { cleanArticle } from '../../src/features/cleaning';
import { cosineSimilarity, createEmbedder, type Embedder } from '../../src/features/embedder';
import { loadCorpusArticles, realTokenCounter, requireModelDir } from './helpers';

interface Question {
  question: string;
  author: string;
  title: string;
}

const questions = JSON.parse(
  readFileSync(join(__dirname, 'fixtures', 'retrieval-questions.json'), 'utf8'),
) as Question[];

describe('retrieval over the 76 real articles', () => {
  let embedder: Embedder;
  let chunks: Chunk[] = [];
  let vectors: Float32Array[] = [];
  const titles = new Map<string, string>();

  before(async () => {
    const counter = await realTokenCounter();
    const docs = loadCorpusArticles().map(cleanArticle);
    for (const d of docs) titles.set(d.id, d.title ?? '');
    chunks = docs.flatMap((d) => chunkDocument(d, counter));
    embedder = await createEmbedder({ backend: 'local', workers: 2, modelDir: requireModelDir() });
    vectors = await embedder.embed(chunks.map((c) => c.content));
  });
  after(async () => embedder.close());

  it('has a target article for every question', () => {
    for (const q of questions) assert.ok([...titles.values()].includes(q.title), `no article titled ${q.title}`);
  });

  for (const q of questions) {
    it(`finds "${q.title}" in the top 5 for: ${q.question}`, async () => {
      const [query] = await embedder.embed([q.question]);
      const ranked = chunks
        .map((c, i) => ({ c, score: cosineSimilarity(query!, vectors[i]!) }))
        .filter(({ c }) => c.author_full_name === q.author)
        .sort((a, b) => b.score - a.score)
        .slice(0, 5);
      const top = ranked.map(({ c, score }) => `${score.toFixed(3)} ${titles.get(c.document_id)}`);
      assert.ok(
        ranked.some(({ c }) => titles.get(c.document_id) === q.title),
        `top 5 for "${q.question}":\n${top.join('\n')}`,
      );
    });
  }
});
