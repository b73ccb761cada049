/**
 * RAG test helpers: the real corpus (76 articles, two authors) loaded into a MongoDB database and a Qdrant prefix
 * of the test file's own with the feature pipeline's library (clean → chunk → embed with the real
 * all-MiniLM-L6-v2 → upsert), once per file; settings pointing at the test services; a scripted LLM that answers
 * self-query, expansion and generation requests the way a test says.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { parseSettings, type Settings } from '../../src/config';
import { DOCUMENT_CATEGORIES } from '../../src/domain/documents';
import { chunkDocument } from '../../src/features/chunking';
import { cleanArticle } from '../../src/features/cleaning';
import type { Dependencies } from '../../src/infra/dependencies';
import { EXPANSION_SYSTEM, SELF_QUERY_SYSTEM } from '../../src/rag/query';
import { loadCorpusArticles, realTokenCounter, requireModelDir } from '../features/helpers';
import { reply, type RecordedRequest, type ScriptedReply } from '../support/scripted-llm-server';
import { dropTestDatabase, testEnv } from '../support/env';

export const CORPUS_DIR = process.env.TWIN_CORPUS_DIR ?? join(__dirname, '..', '..', '..', 'shared', 'corpus');

export const MAXIME = { id: 'eff74089-0271-4319-8543-745c087f4f61', name: 'Maxime Labonne' };
export const PAUL = { id: 'b5fa1f08-75f0-402d-8e88-d1357e346d9e', name: 'Paul Iusztin' };

/** Settings for a RAG service against the test services (plus overrides). */
export function ragSettings(
  names: { database: string; prefix: string; llmUrl: string },
  overrides: Record<string, string> = {},
): Settings {
  return parseSettings({
    TWIN_HOME: process.env.TWIN_HOME,
    MONGODB_URI: testEnv.mongoUri,
    MONGODB_DATABASE: names.database,
    QDRANT_URL: testEnv.qdrantUrl,
    QDRANT_COLLECTION_PREFIX: names.prefix,
    EMBEDDING_MODEL_DIR: requireModelDir(),
    OPENAI_BASE_URL: names.llmUrl,
    LLM_MODEL: 'scripted-llm',
    AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
    AWS_ENDPOINT_URL: process.env.AWS_ENDPOINT_URL,
    RAG_RERANKER: 'none',
    RAG_LLM_TIMEOUT_MS: '20000',
    LOG_LEVEL: 'error',
    ...overrides,
  });
}

export interface LoadedCorpus {
  documents: number;
  chunks: number;
  /** chunk id → author id, of every stored chunk */
  authorOfChunk: Map<string, string>;
  /** document id → title */
  titles: Map<string, string>;
}

/**
 * Imports the corpus's users and articles into `database` (as `twin warehouse import` stores reference exports:
 * `_id`s kept) and runs the feature pipeline's library over it into Qdrant collections under the deps' prefix.
 */
export async function loadCorpus(
  database: string,
  deps: Dependencies,
  options: { titles?: RegExp } = {},
): Promise<LoadedCorpus> {
  const mongo = await MongoClient.connect(testEnv.mongoUri);
  try {
    const db = mongo.db(database);
    const users = JSON.parse(readFileSync(join(CORPUS_DIR, 'UserDocument.json'), 'utf8')) as Record<string, unknown>[];
    const articles = JSON.parse(readFileSync(join(CORPUS_DIR, 'ArticleDocument.json'), 'utf8')) as Record<
      string,
      unknown
    >[];
    await db.collection('users').insertMany(users);
    await db.collection('articles').insertMany(articles);
  } finally {
    await mongo.close();
  }
  const counter = await realTokenCounter();
  const cleaned = loadCorpusArticles()
    .map(cleanArticle)
    .filter((doc) => !options.titles || options.titles.test(doc.title ?? ''));
  const store = deps.vectorStore();
  await store.upsertCleaned('articles', cleaned);
  const chunks = cleaned.flatMap((doc) => chunkDocument(doc, counter));
  const embedder = await deps.embedder();
  const vectors = await embedder.embed(chunks.map((c) => c.content));
  await store.replaceDocumentChunks(
    'articles',
    cleaned.map((d) => d.id),
    chunks.map((chunk, i) => ({ chunk, vector: vectors[i]! })),
  );
  // the other categories exist (empty), as after a feature run over articles only
  for (const category of DOCUMENT_CATEGORIES) await store.ensureCollection('embedded', category);
  return {
    documents: cleaned.length,
    chunks: chunks.length,
    authorOfChunk: new Map(chunks.map((c) => [c.id, c.author_id])),
    titles: new Map(cleaned.map((d) => [d.id, d.title ?? ''])),
  };
}

export type Purpose = 'self_query' | 'expansion' | 'generation';

export function purposeOf(request: RecordedRequest): Purpose {
  const system = request.body.messages.find((m) => m.role === 'system')?.content ?? '';
  if (system === SELF_QUERY_SYSTEM) return 'self_query';
  if (system === EXPANSION_SYSTEM) return 'expansion';
  return 'generation';
}

/** The question inside a self-query / expansion prompt. */
export function questionOf(request: RecordedRequest): string {
  const user = request.body.messages.find((m) => m.role === 'user')?.content ?? '';
  const match = /Question: ([\s\S]*)$/.exec(user);
  return match?.[1]?.trim() ?? user;
}

export interface ScriptOptions {
  /** Self-query answer per question (default: a known author's name when the question contains it, else null). */
  selfQuery?: (question: string) => ScriptedReply;
  expansion?: (question: string, request: RecordedRequest) => ScriptedReply;
  generation?: (request: RecordedRequest) => ScriptedReply;
}

/** A scripted LLM that plays self-query, expansion and generation. */
export function ragScript(options: ScriptOptions = {}) {
  return (request: RecordedRequest): ScriptedReply => {
    const purpose = purposeOf(request);
    if (purpose === 'self_query') {
      const question = questionOf(request);
      if (options.selfQuery) return options.selfQuery(question);
      const named = [MAXIME.name, PAUL.name, 'Ada Lovelace'].find((n) => question.includes(n));
      return reply.json({ author: named ?? null }, { prompt_tokens: 60, completion_tokens: 8 });
    }
    if (purpose === 'expansion') {
      const question = questionOf(request);
      if (options.expansion) return options.expansion(question, request);
      return reply.json(
        { queries: [`In other words: ${question}`, `${question} Explain the main idea.`] },
        { prompt_tokens: 80, completion_tokens: 40 },
      );
    }
    if (options.generation) return options.generation(request);
    return reply.text('A scripted answer [1].', { prompt_tokens: 900, completion_tokens: 7 });
  };
}

/**
 * Builds a real cross-encoder graph for the reranker tests (test/rag/fixtures/make_cross_encoder.py: BERT sequence
 * classification from the all-MiniLM-L6-v2 weights with a seeded head) and installs it as ONNX into `dir` with
 * scripts/install-reranker-model.sh. Returns PyTorch's scores of `pairs`.
 */
export function buildFixtureCrossEncoder(dir: string, pairs: [string, string][]): number[] {
  const home = process.env.TWIN_HOME ?? join(homedir(), '.cache', 'llm-twin');
  const python = join(home, 'venv-export', 'bin', 'python');
  if (!existsSync(python)) throw new Error(`${python} missing: run scripts/install-embedding-model.sh`);
  const source = `${dir}-source`;
  const reference = `${dir}-reference.json`;
  execFileSync(python, [join(__dirname, 'fixtures', 'make_cross_encoder.py'), source, reference], {
    input: JSON.stringify(pairs),
    stdio: ['pipe', 'ignore', 'pipe'],
    env: { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1' },
  });
  execFileSync('bash', [join(__dirname, '..', '..', 'scripts', 'install-reranker-model.sh')], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, TWIN_HOME: home, RERANKER_SOURCE: source, RAG_RERANKER_MODEL_DIR: dir },
  });
  return (JSON.parse(readFileSync(reference, 'utf8')) as { scores: number[] }).scores;
}

/** Teardown of a RAG test: the Qdrant collections of `deps`, its connections, then the test database and client. */
export async function closeRagFixtures(
  deps: Dependencies | undefined,
  mongo: MongoClient | undefined,
  database: string,
): Promise<void> {
  await deps
    ?.vectorStore()
    .dropCollections()
    .catch(() => undefined);
  await deps?.close();
  await dropTestDatabase(mongo, database);
}
