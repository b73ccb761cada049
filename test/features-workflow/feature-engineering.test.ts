/**
 * featureEngineering on the real Temporal dev server, with real worker processes (pipelines + features), over the
 * 76 real articles loaded into a MongoDB database of this file's own, into Qdrant collections with this file's own
 * prefix. The corpus is embedded once (the first run, during which the features worker is SIGKILLed mid-embedding
 * and restarted); the other tests reuse what it stored.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { MongoClient } from 'mongodb';
import {
  createFeatureActivities,
  type CleanDocumentsInput,
  type CleanDocumentsResult,
  type EmbedDocumentsInput,
} from '../../activities/features';
import type { FeatureEngineeringInput, FeatureEngineeringResult } from '../../workflows/feature-engineering';
import { parseSettings } from '../../src/config';
import type { Chunk, RawArticleDocument } from '../../src/domain/documents';
import { chunkDocument, MAX_CONTENT_TOKENS } from '../../src/features/chunking';
import { cleanArticle } from '../../src/features/cleaning';
import { createEmbedder, type Embedder } from '../../src/features/embedder';
import { EMBEDDING_MODEL_ID } from '../../src/features/model-files';
import type { TokenCounter } from '../../src/features/tokenizer';
import { createDependencies } from '../../src/infra/dependencies';
import { createLogger } from '../../src/infra/logger';
import { VectorStore, VectorStoreMismatchError, type ChunkPayload } from '../../src/infra/qdrant';
import { loadCorpusArticles, realTokenCounter, requireModelDir } from '../features/helpers';
import { testEnv, uniqueName } from '../support/env';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';

interface Question {
  question: string;
  author: string;
  title: string;
}

const CORPUS_DIR = process.env.TWIN_CORPUS_DIR ?? join(__dirname, '..', '..', '..', 'shared', 'corpus');
const questions = JSON.parse(
  readFileSync(join(__dirname, '..', 'features', 'fixtures', 'retrieval-questions.json'), 'utf8'),
) as Question[];

const database = uniqueName('features');
const prefix = `${uniqueName('fw')}_`;
const workerEnv = {
  MONGODB_DATABASE: database,
  QDRANT_COLLECTION_PREFIX: prefix,
  TWIN_WORKFLOW_BUNDLE: testEnv.workflowBundle ?? '',
  EMBEDDING_MODEL_DIR: requireModelDir(),
};
const AUTHORS = ['Maxime Labonne', 'Paul Iusztin'];

describe('featureEngineering over the 76 real articles', () => {
  let client: Client;
  let mongo: MongoClient;
  let workers: WorkerProcess | undefined;
  let store: VectorStore;
  let counter: TokenCounter;
  let corpus: RawArticleDocument[];
  /** chunk ids per document, made in this process from the same corpus with the library */
  const expected = new Map<string, Chunk[]>();
  let expectedTotal = 0;
  let first: FeatureEngineeringResult;
  let firstHandle: WorkflowHandle;
  let killedAt = 0;
  let firstWallSeconds = 0;

  const start = (workflowId: string, input: FeatureEngineeringInput) =>
    client.workflow.start('featureEngineering', { taskQueue: 'twin-pipelines', workflowId, args: [input] });

  before(async () => {
    client = new Client({ connection: await Connection.connect({ address: testEnv.temporalAddress }) });
    mongo = await MongoClient.connect(testEnv.mongoUri);
    const db = mongo.db(database);
    const users = JSON.parse(readFileSync(join(CORPUS_DIR, 'UserDocument.json'), 'utf8')) as Record<string, unknown>[];
    const articles = JSON.parse(readFileSync(join(CORPUS_DIR, 'ArticleDocument.json'), 'utf8')) as Record<
      string,
      unknown
    >[];
    await db.collection('users').insertMany(users);
    await db.collection('articles').insertMany(articles);
    store = new VectorStore({
      url: testEnv.qdrantUrl,
      collectionPrefix: prefix,
      embedding: { modelId: EMBEDDING_MODEL_ID, dimension: 384 },
    });

    counter = await realTokenCounter();
    corpus = loadCorpusArticles();
    for (const raw of corpus) {
      const chunks = chunkDocument(cleanArticle(raw), counter);
      expected.set(raw.id, chunks);
      expectedTotal += chunks.length;
    }

    // The first run, with a crash: the features worker is killed once some chunks are stored but not all.
    workers = await startWorkerProcess(['pipelines', 'features'], workerEnv);
    const t0 = Date.now();
    firstHandle = await start(uniqueName('features-first'), {
      authors: AUTHORS,
      categories: ['articles'],
      batchSize: 8,
    });
    const deadline = Date.now() + 240_000;
    for (;;) {
      const stored = await store.count('embedded', 'articles').catch(() => 0);
      if (stored > 0) {
        killedAt = stored;
        break;
      }
      if (Date.now() > deadline)
        throw new Error(`no chunk stored after 240 s; worker log:\n${workers.lines.slice(-30).join('\n')}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    await workers.kill('SIGKILL');
    workers = await startWorkerProcess(['pipelines', 'features'], workerEnv);
    first = (await firstHandle.result()) as FeatureEngineeringResult;
    firstWallSeconds = (Date.now() - t0) / 1000;
    process.stdout.write(
      `# first run (with a worker crash) took ${firstWallSeconds.toFixed(1)} s; ${expectedTotal} chunks expected\n`,
    );
  });

  after(async () => {
    await workers?.kill('SIGTERM');
    await store?.dropCollections().catch(() => undefined);
    await mongo?.db(database).dropDatabase();
    await mongo?.close();
    await client?.connection.close();
  });

  test('a worker killed mid-embedding and restarted: the run completes with every chunk, once', async () => {
    assert.ok(
      killedAt > 0 && killedAt < expectedTotal,
      `killed after ${killedAt} of ${expectedTotal} chunks were stored`,
    );
    const history = await firstHandle.fetchHistory();
    const retried = history.events?.some(
      (e) =>
        (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1 ||
        e.activityTaskTimedOutEventAttributes ||
        e.activityTaskFailedEventAttributes,
    );
    assert.ok(retried, 'an activity was retried after the crash');
    assert.equal(first.status, 'completed');
    assert.equal(first.totals.documents, 76);
    assert.equal(first.totals.cleaning.cleaned, 76);
    assert.equal(first.totals.embedding.documents, 76);
    assert.equal(first.totals.embedding.withoutChunks, 0, 'every document yields chunks');
    assert.equal(first.totals.embedding.chunks, expectedTotal);
    assert.ok(first.totals.embedding.maxTokens <= MAX_CONTENT_TOKENS);
    assert.equal(await store.count('embedded', 'articles'), expectedTotal, 'no chunk stored twice, none missing');
    assert.equal(await store.count('cleaned', 'articles'), 76);
  });

  test('every document yields exactly its chunks; none over the window (re-counted with the tokenizer)', async () => {
    const stored = await store.storedChunkIds('articles', [...expected.keys()]);
    for (const [documentId, chunks] of expected) {
      assert.ok(chunks.length > 0, `document ${documentId} yields chunks`);
      assert.deepEqual(
        [...(stored.get(documentId)?.ids ?? [])].sort(),
        chunks.map((c) => c.id).sort(),
        `chunks of ${documentId}`,
      );
    }
    let points = 0;
    for await (const { payload } of store.scrollPayloads<ChunkPayload>('embedded', 'articles', {
      fields: ['content', 'token_count', 'embedding_model', 'embedding_dim'],
    })) {
      points++;
      const tokens = counter.count(payload.content);
      assert.ok(tokens <= MAX_CONTENT_TOKENS && tokens + 2 <= 256, `a chunk of ${tokens} tokens`);
      assert.equal(tokens, payload.token_count);
      assert.equal(payload.embedding_model, EMBEDDING_MODEL_ID);
      assert.equal(payload.embedding_dim, 384);
      assert.ok(payload.content.trim().length > 0);
    }
    assert.equal(points, expectedTotal);
  });

  test('artifacts, search attributes and memo of the run', async () => {
    const { cleaned, embedded } = first.artifacts!;
    assert.equal(cleaned.kind, 'cleaned-documents');
    assert.equal(cleaned.count, 76);
    assert.equal(embedded.kind, 'embedded-chunks');
    assert.equal(embedded.count, expectedTotal);
    assert.deepEqual(embedded.inputs, [cleaned.id]);
    assert.equal(embedded.metadata.embeddingModel, EMBEDDING_MODEL_ID);
    assert.equal(embedded.producer.activity, 'recordFeatureArtifacts');
    const recorded = await mongo
      .db(database)
      .collection('artifacts')
      .countDocuments({ _id: { $in: [cleaned.id, embedded.id] } as never });
    assert.equal(recorded, 2);
    const description = await firstHandle.describe();
    assert.deepEqual(description.searchAttributes.TwinPipeline, ['featureEngineering']);
    assert.deepEqual(description.searchAttributes.TwinStatus, ['completed']);
    assert.deepEqual(description.searchAttributes.TwinAuthor, AUTHORS);
    const memo = description.memo as { documents?: number; chunks?: number };
    assert.equal(memo.documents, 76);
    assert.equal(memo.chunks, expectedTotal);
  });

  test('a second run (in pages of 30 ids: continueAsNew) changes nothing and embeds nothing', async () => {
    const handle = await start(uniqueName('features-second'), {
      authors: AUTHORS,
      categories: ['articles'],
      pageSize: 30,
    });
    const second = (await handle.result()) as FeatureEngineeringResult;
    assert.equal(second.runs, 3, '76 ids in pages of 30: three runs');
    assert.equal(second.totals.documents, 76);
    assert.equal(second.totals.cleaning.unchanged, 76);
    assert.equal(second.totals.embedding.unchanged, 76);
    assert.equal(second.totals.embedding.chunksEmbedded, 0);
    assert.equal(second.totals.embedding.chunks, expectedTotal);
    assert.equal(await store.count('embedded', 'articles'), expectedTotal, 'point count unchanged');
    assert.equal(second.artifacts!.embedded.id, first.artifacts!.embedded.id, 'the same content is the same artifact');
    assert.equal(second.artifacts!.cleaned.id, first.artifacts!.cleaned.id);
  });

  test('retrieval through Qdrant: for each question, the article is in the top 5 of its author', async () => {
    const embedder: Embedder = await createEmbedder({
      backend: 'local',
      workers: 0,
      intraOpThreads: 1,
      modelDir: requireModelDir(),
    });
    try {
      const users = await mongo
        .db(database)
        .collection<{ _id: string; first_name: string; last_name: string }>('users')
        .find()
        .toArray();
      const authorId = (name: string) => users.find((u) => `${u.first_name} ${u.last_name}` === name)!._id;
      const titleOf = new Map(corpus.map((d) => [d.id, cleanArticle(d).title ?? '']));
      const misses: string[] = [];
      for (const q of questions) {
        const [vector] = await embedder.embed([q.question]);
        const hits = await store.searchChunks('articles', vector!, { limit: 5, authorIds: [authorId(q.author)] });
        assert.equal(hits.length, 5);
        assert.ok(hits.every((h) => h.payload.author_full_name === q.author));
        if (!hits.some((h) => titleOf.get(h.payload.document_id) === q.title)) {
          misses.push(
            `${q.question}\n  ${hits.map((h) => `${h.score.toFixed(3)} ${titleOf.get(h.payload.document_id)}`).join('\n  ')}`,
          );
        }
      }
      assert.deepEqual(misses, []);
    } finally {
      await embedder.close();
    }
  });

  test("a changed document: its stale chunks are removed, the others' untouched", async () => {
    const targets = new Set(questions.map((q) => q.title));
    const victim = corpus.find(
      (d) => d.author_full_name === 'Maxime Labonne' && !targets.has(cleanArticle(d).title ?? ''),
    )!;
    const changedContent = `${victim.content.Content.slice(0, Math.floor(victim.content.Content.length / 2))}\n\nA new closing paragraph written for this test, about nothing in particular.`;
    await mongo
      .db(database)
      .collection('articles')
      .updateOne({ _id: victim.id as never }, { $set: { 'content.Content': changedContent } });
    const newChunks = chunkDocument(
      cleanArticle({ ...victim, content: { ...victim.content, Content: changedContent } }),
      counter,
    );
    const oldIds = new Set(expected.get(victim.id)!.map((c) => c.id));
    const kept = newChunks.filter((c) => oldIds.has(c.id)).length;
    assert.ok(kept > 0 && kept < oldIds.size, 'the change keeps some chunks and drops others');

    const handle = await start(uniqueName('features-changed'), {
      authors: ['Maxime Labonne'],
      categories: ['articles'],
    });
    const result = (await handle.result()) as FeatureEngineeringResult;
    assert.equal(result.totals.documents, 26);
    assert.equal(result.totals.cleaning.updated, 1);
    assert.equal(result.totals.embedding.embedded, 1);
    assert.equal(result.totals.embedding.unchanged, 25);
    assert.equal(result.totals.embedding.staleDeleted, oldIds.size - kept);
    const stored = await store.storedChunkIds('articles', [victim.id]);
    assert.deepEqual([...stored.get(victim.id)!.ids].sort(), newChunks.map((c) => c.id).sort());
    assert.equal(await store.count('embedded', 'articles'), expectedTotal - oldIds.size + newChunks.length);
    assert.notEqual(result.artifacts!.embedded.id, first.artifacts!.embedded.id, 'a new embedded set');
  });

  test('an embedded collection made for another model or size fails the activity as non-retryable VectorStoreMismatchError', async () => {
    const badPrefix = `${uniqueName('fbad')}_`;
    const bad = new VectorStore({
      url: testEnv.qdrantUrl,
      collectionPrefix: badPrefix,
      embedding: { modelId: EMBEDDING_MODEL_ID, dimension: 384 },
    });
    await bad.client.createCollection(bad.name('embedded', 'articles'), { vectors: { size: 768, distance: 'Cosine' } });
    const settings = parseSettings({ ...process.env, ...workerEnv, QDRANT_COLLECTION_PREFIX: badPrefix });
    const deps = createDependencies(settings, createLogger({ level: 'silent' }));
    try {
      const activities = createFeatureActivities(deps);
      const env = new MockActivityEnvironment();
      const ids = corpus.slice(0, 2).map((d) => d.id);
      const cleaned: CleanDocumentsResult = await env.run(
        (input: CleanDocumentsInput) => activities.cleanDocuments(input),
        { ids, category: 'articles' as const },
      );
      assert.equal(cleaned.cleaned, 2);
      await assert.rejects(
        env.run((input: EmbedDocumentsInput) => activities.embedDocuments(input), {
          ids,
          category: 'articles' as const,
        }),
        (error: unknown) => {
          assert.ok(error instanceof ApplicationFailure, String(error));
          assert.equal(error.type, 'VectorStoreMismatchError');
          assert.equal(error.nonRetryable, true);
          assert.match(error.message, /768/);
          return true;
        },
      );
      await assert.rejects(bad.ensureCollection('embedded', 'articles'), VectorStoreMismatchError);
    } finally {
      await deps.close();
      await bad.dropCollections();
    }
  });
});
