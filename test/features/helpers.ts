/**
 * Shared test helpers: the real corpus (76 articles in ../shared/corpus, never copied into the repo) and the
 * real model files (installed by scripts/install-embedding-model.sh).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { rawDocumentFromRecord, type RawArticleDocument } from '../../src/domain/documents';
import { defaultModelDir } from '../../src/features/model-files';
import { loadTokenCounter, type TokenCounter } from '../../src/features/tokenizer';

const REPO_ROOT = resolve(__dirname, '..', '..');

/** `${TWIN_CORPUS_DIR:-<repo>/../shared/corpus}/ArticleDocument.json` as typed raw articles. */
export function loadCorpusArticles(): RawArticleDocument[] {
  const dir = process.env.TWIN_CORPUS_DIR ?? join(REPO_ROOT, '..', 'shared', 'corpus');
  const file = join(dir, 'ArticleDocument.json');
  if (!existsSync(file)) throw new Error(`corpus not found at ${file} (set TWIN_CORPUS_DIR)`);
  const records = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>[];
  return records.map((r) => rawDocumentFromRecord('articles', r) as RawArticleDocument);
}

/** The author's `count` shortest corpus articles, shortest first (fast fixtures that are still real text). */
export function shortestArticlesOf(author: string, count: number): RawArticleDocument[] {
  return loadCorpusArticles()
    .filter((a) => a.author_full_name === author)
    .sort((a, b) => a.content.Content.length - b.content.Content.length)
    .slice(0, count);
}

/** The model directory, or a clear failure telling how to install it. */
export function requireModelDir(): string {
  const dir = process.env.EMBEDDING_MODEL_DIR ?? defaultModelDir();
  if (!existsSync(join(dir, 'onnx', 'model.onnx'))) {
    throw new Error(`embedding model not installed in ${dir}: run scripts/install-embedding-model.sh`);
  }
  return dir;
}

let counter: Promise<TokenCounter> | undefined;
/** The embedding model's own tokenizer, loaded once per test file. */
export function realTokenCounter(): Promise<TokenCounter> {
  counter ??= loadTokenCounter({ modelDir: requireModelDir() });
  return counter;
}

export interface Reference {
  sentences: string[];
  vectors: number[][];
}

/** Vectors made by Python sentence-transformers (bench/sentence_transformers_baseline.py --reference). */
export function loadReference(): Reference {
  return JSON.parse(readFileSync(join(__dirname, 'fixtures', 'minilm-reference.json'), 'utf8')) as Reference;
}
