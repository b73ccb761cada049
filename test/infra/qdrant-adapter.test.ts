/**
 * The Qdrant adapter (src/infra/qdrant.ts) against the Qdrant the test runner started (the stand-in), or any real
 * Qdrant named by QDRANT_URL: collections, payload indexes, idempotent batched upserts, crash-safe replacement of a
 * document's chunks, scroll paging, filtered search, and refusal of collections made for another model or size.
 * Collections get a unique prefix and are deleted at the end.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { QdrantClient } from '@qdrant/js-client-rest';
import type { ArticleChunk, CleanedArticleDocument } from '../../src/domain/documents';
import { chunkId } from '../../src/features/chunking';
import {
  collectionName,
  contentHash,
  PAYLOAD_INDEX_FIELDS,
  VectorStore,
  VectorStoreMismatchError,
} from '../../src/infra/qdrant';
import { testEnv, uniqueName } from '../support/env';

const MODEL = { modelId: 'sentence-transformers/all-MiniLM-L6-v2', dimension: 384 };
const prefixes: string[] = [];

function store(options: { prefix?: string; embedding?: typeof MODEL; scrollPageSize?: number } = {}): VectorStore {
  const prefix = options.prefix ?? `${uniqueName('qa')}_`;
  prefixes.push(prefix);
  return new VectorStore({
    url: testEnv.qdrantUrl,
    collectionPrefix: prefix,
    embedding: options.embedding ?? MODEL,
    scrollPageSize: options.scrollPageSize,
  });
}

/** A deterministic pseudo-random unit vector per seed. */
function vector(seed: number, dim = 384): number[] {
  let x = (seed * 2654435761) % 4294967296 || 1;
  const v = Array.from({ length: dim }, () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648 - 0.5;
  });
  const norm = Math.hypot(...v);
  return v.map((n) => n / norm);
}

function article(id: string, author: string, content: string): CleanedArticleDocument {
  return {
    id,
    category: 'articles',
    platform: 'substack',
    author_id: author,
    author_full_name: `Author ${author}`,
    content,
    title: `Title ${id}`,
    link: `https://x.test/${id}`,
  };
}

function chunk(documentId: string, author: string, index: number, text: string): ArticleChunk {
  return {
    id: chunkId(documentId, text),
    category: 'articles',
    document_id: documentId,
    platform: 'substack',
    author_id: author,
    author_full_name: `Author ${author}`,
    content: text,
    index,
    start: 0,
    end: text.length,
    token_count: 3,
    link: `https://x.test/${documentId}`,
    metadata: { strategy: 'test', max_tokens: 254, target_tokens: 200, overlap_tokens: 0, tokenizer: 'test' },
  };
}

const DOC_A = '11111111-1111-4111-8111-111111111111';
const DOC_B = '22222222-2222-4222-8222-222222222222';

describe('Qdrant adapter', () => {
  const raw = new QdrantClient({ url: testEnv.qdrantUrl, checkCompatibility: false });

  after(async () => {
    const { collections } = await raw.getCollections();
    for (const { name } of collections) if (prefixes.some((p) => name.startsWith(p))) await raw.deleteCollection(name);
  });

  test('creates cleaned_* (no vectors) and embedded_* (384, Cosine, model in metadata) with payload indexes', async () => {
    const vs = store();
    await vs.ensureCollection('cleaned', 'articles');
    await vs.ensureCollection('embedded', 'articles');
    const cleaned = await raw.getCollection(vs.name('cleaned', 'articles'));
    assert.deepEqual(cleaned.config.params.vectors, {});
    const embedded = await raw.getCollection(vs.name('embedded', 'articles'));
    assert.deepEqual(embedded.config.params.vectors, { size: 384, distance: 'Cosine' });
    assert.equal((embedded.config as { metadata?: Record<string, unknown> }).metadata?.embedding_model, MODEL.modelId);
    for (const info of [cleaned, embedded]) {
      for (const field of PAYLOAD_INDEX_FIELDS) assert.equal(info.payload_schema?.[field]?.data_type, 'keyword', field);
    }
    assert.equal(vs.name('embedded', 'posts'), `${vs.prefix}embedded_posts`);
    assert.equal(collectionName('cleaned', 'repositories'), 'cleaned_repositories');
    // A second store on the same collections (another worker) opens them without error.
    await store({ prefix: vs.prefix }).ensureCollection('embedded', 'articles');
  });

  test('cleaned documents: inserted, then unchanged, then updated; read back whole', async () => {
    const vs = store();
    const docs = [article(DOC_A, 'a1', 'First text.'), article(DOC_B, 'a2', 'Second text.')];
    assert.deepEqual(await vs.upsertCleaned('articles', docs), { inserted: 2, updated: 0, unchanged: 0 });
    assert.deepEqual(await vs.upsertCleaned('articles', docs), { inserted: 0, updated: 0, unchanged: 2 });
    assert.deepEqual(await vs.upsertCleaned('articles', [article(DOC_A, 'a1', 'First text, edited.')]), {
      inserted: 0,
      updated: 1,
      unchanged: 0,
    });
    const [a, b] = await vs.getCleaned('articles', [DOC_A, DOC_B, '33333333-3333-4333-8333-333333333333']);
    assert.equal(a?.content, 'First text, edited.');
    assert.equal(a?.content_hash, contentHash('First text, edited.'));
    assert.equal(a?.document_id, DOC_A);
    assert.deepEqual(
      { ...b, content_hash: undefined, document_id: undefined },
      { ...docs[1], content_hash: undefined, document_id: undefined },
    );
    assert.equal(await vs.count('cleaned', 'articles'), 2);
    assert.equal(await vs.count('cleaned', 'articles', { authorIds: ['a2'] }), 1);
    await assert.rejects(vs.upsertCleaned('posts', docs), /is articles, not posts/);
  });

  test('chunks: batched upsert, idempotent re-run, stale chunks of a changed document removed, others untouched', async () => {
    const vs = store({ scrollPageSize: 50 });
    const aChunks = Array.from({ length: 300 }, (_, i) => chunk(DOC_A, 'a1', i, `A chunk ${i}`));
    const bChunks = Array.from({ length: 20 }, (_, i) => chunk(DOC_B, 'a2', i, `B chunk ${i}`));
    const withVectors = (chunks: ArticleChunk[], offset: number) =>
      chunks.map((c, i) => ({ chunk: c, vector: vector(offset + i) }));

    assert.deepEqual(
      await vs.replaceDocumentChunks(
        'articles',
        [DOC_A, DOC_B],
        [...withVectors(aChunks, 0), ...withVectors(bChunks, 1000)],
      ),
      { upserted: 320, deleted: 0 },
    );
    assert.equal(await vs.count('embedded', 'articles'), 320);
    assert.deepEqual(
      await vs.replaceDocumentChunks(
        'articles',
        [DOC_A, DOC_B],
        [...withVectors(aChunks, 0), ...withVectors(bChunks, 1000)],
      ),
      { upserted: 320, deleted: 0 },
    );
    assert.equal(await vs.count('embedded', 'articles'), 320, 'a re-run adds nothing');

    // Document A changes: 100 chunks kept, 50 new; the 200 others are stale.
    const changed = [
      ...aChunks.slice(0, 100),
      ...Array.from({ length: 50 }, (_, i) => chunk(DOC_A, 'a1', 100 + i, `A new chunk ${i}`)),
    ];
    assert.deepEqual(await vs.replaceDocumentChunks('articles', [DOC_A], withVectors(changed, 0)), {
      upserted: 150,
      deleted: 200,
    });
    const stored = await vs.storedChunkIds('articles', [DOC_A, DOC_B]);
    assert.deepEqual([...stored.get(DOC_A)!.ids].sort(), changed.map((c) => c.id).sort());
    assert.deepEqual([...stored.get(DOC_B)!.ids].sort(), bChunks.map((c) => c.id).sort(), 'document B untouched');
    assert.deepEqual([...stored.get(DOC_A)!.models], [MODEL.modelId]);

    // Scroll pages through everything (page size 50), each point once, payload without vectors.
    const seen: string[] = [];
    for await (const { id, payload } of vs.scrollPayloads('embedded', 'articles', {
      fields: ['document_id', 'embedding_model', 'embedding_dim'],
    })) {
      seen.push(id);
      assert.equal(payload.embedding_model, MODEL.modelId);
      assert.equal(payload.embedding_dim, 384);
    }
    assert.equal(seen.length, 170);
    assert.equal(new Set(seen).size, 170);

    // A document with no chunks left loses all of its points.
    assert.deepEqual(await vs.replaceDocumentChunks('articles', [DOC_B], []), { upserted: 0, deleted: 20 });
    assert.equal(await vs.count('embedded', 'articles', { authorIds: ['a2'] }), 0);
    await assert.rejects(
      vs.replaceDocumentChunks('articles', [DOC_B], withVectors(aChunks.slice(0, 1), 0)),
      /not being replaced/,
    );
  });

  test('search: nearest chunk first, filtered by author', async () => {
    const vs = store();
    const aChunks = Array.from({ length: 30 }, (_, i) => ({
      chunk: chunk(DOC_A, 'a1', i, `A ${i}`),
      vector: vector(i),
    }));
    const bChunks = Array.from({ length: 30 }, (_, i) => ({
      chunk: chunk(DOC_B, 'a2', i, `B ${i}`),
      vector: vector(100 + i),
    }));
    await vs.replaceDocumentChunks('articles', [DOC_A, DOC_B], [...aChunks, ...bChunks]);
    const hits = await vs.searchChunks('articles', vector(105), { limit: 5 });
    assert.equal(hits[0]?.id, bChunks[5]!.chunk.id);
    assert.ok(hits[0].score > 0.99);
    const filtered = await vs.searchChunks('articles', vector(105), { limit: 5, authorIds: ['a1'] });
    assert.equal(filtered.length, 5);
    assert.ok(filtered.every((h) => h.payload.author_id === 'a1' && h.payload.content.startsWith('A ')));
    assert.ok(filtered.every((h, i) => i === 0 || h.score <= filtered[i - 1]!.score));
  });

  test('a collection made with another size, distance, model or layout is a VectorStoreMismatchError', async () => {
    const prefix = `${uniqueName('qm')}_`;
    prefixes.push(prefix);
    const vs = store({ prefix });
    await raw.createCollection(vs.name('embedded', 'articles'), { vectors: { size: 3, distance: 'Cosine' } });
    await assert.rejects(
      vs.ensureCollection('embedded', 'articles'),
      (e: unknown) =>
        e instanceof VectorStoreMismatchError && /384-d Cosine/.test(e.message) && /"size":3/.test(e.message),
    );
    await assert.rejects(
      vs.replaceDocumentChunks('articles', [DOC_A], [{ chunk: chunk(DOC_A, 'a1', 0, 'x'), vector: vector(1) }]),
      VectorStoreMismatchError,
    );
    assert.equal((await raw.count(vs.name('embedded', 'articles'), { exact: true })).count, 0, 'nothing written');

    await raw.createCollection(vs.name('embedded', 'posts'), { vectors: { size: 384, distance: 'Dot' } });
    await assert.rejects(vs.ensureCollection('embedded', 'posts'), VectorStoreMismatchError);

    // Same size, another model: in the collection metadata ...
    const other = store({ prefix: `${uniqueName('qo')}_` });
    await other.ensureCollection('embedded', 'articles');
    const differentModel = store({
      prefix: other.prefix,
      embedding: { modelId: 'BAAI/bge-small-en-v1.5', dimension: 384 },
    });
    await assert.rejects(
      differentModel.ensureCollection('embedded', 'articles'),
      (e: unknown) => e instanceof VectorStoreMismatchError && /all-MiniLM-L6-v2/.test(e.message),
    );
    // ... or, for a collection without metadata, on its points.
    await raw.createCollection(vs.name('embedded', 'repositories'), { vectors: { size: 384, distance: 'Cosine' } });
    await raw.upsert(vs.name('embedded', 'repositories'), {
      wait: true,
      points: [{ id: DOC_A, vector: vector(7), payload: { embedding_model: 'BAAI/bge-small-en-v1.5' } }],
    });
    await assert.rejects(
      vs.ensureCollection('embedded', 'repositories'),
      (e: unknown) => e instanceof VectorStoreMismatchError && /bge-small/.test(e.message),
    );

    // A cleaned_* collection that holds vectors is not the payload-only collection this platform writes.
    await raw.createCollection(vs.name('cleaned', 'posts'), { vectors: { size: 384, distance: 'Cosine' } });
    await assert.rejects(vs.ensureCollection('cleaned', 'posts'), VectorStoreMismatchError);
    // A vector of the wrong length is refused before anything is sent.
    const good = store();
    await assert.rejects(
      good.replaceDocumentChunks('articles', [DOC_A], [{ chunk: chunk(DOC_A, 'a1', 0, 'x'), vector: vector(1, 3) }]),
      VectorStoreMismatchError,
    );
  });
});
