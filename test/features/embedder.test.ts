import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cosineSimilarity, createEmbedder, meanPoolAndNormalize, type Embedder } from '../../src/features/embedder';
import { OnnxEmbedder } from '../../src/features/embedder-onnx';
import { EmbeddingDimensionError, OpenAIEmbedder } from '../../src/features/embedder-openai';
import { WorkerPoolEmbedder } from '../../src/features/embedder-pool';
import { EMBEDDING_DIMENSION, EMBEDDING_MODEL_ID, ModelNotInstalledError } from '../../src/features/model-files';
import { loadReference, requireModelDir } from './helpers';

const PARAPHRASES: Array<[string, string, string]> = [
  [
    'How do I fine-tune a language model on my own data?',
    'What is the way to train an LLM further using a custom dataset?',
    'The recipe calls for two cups of flour and a pinch of salt.',
  ],
  [
    'The vector database stores embeddings for similarity search.',
    'Embeddings are kept in a vector store so that similar items can be found.',
    'She walked her dog along the beach at sunset.',
  ],
  [
    'Quantization reduces the memory footprint of a model.',
    'Lowering the precision of the weights makes the model use less memory.',
    'The football match was postponed because of heavy rain.',
  ],
];

function norm(v: Float32Array): number {
  return Math.sqrt(v.reduce((s, x) => s + x * x, 0));
}

describe('mean pooling', () => {
  it('averages only unmasked tokens and normalises', () => {
    // batch 1, seq 3, dim 2; third token masked out
    const [v] = meanPoolAndNormalize(new Float32Array([1, 0, 3, 4, 100, 100]), [1n, 1n, 0n], 1, 3, 2);
    assert.ok(Math.abs(v![0]! - 2 / Math.sqrt(8)) < 1e-6 && Math.abs(v![1]! - 2 / Math.sqrt(8)) < 1e-6);
  });
});

describe('OnnxEmbedder (all-MiniLM-L6-v2, real weights)', () => {
  let embedder: OnnxEmbedder;
  before(async () => {
    embedder = await OnnxEmbedder.create({ modelDir: requireModelDir(), batchSize: 4 });
  });
  after(async () => embedder.close());

  it('records the model id and dimension, returns 384-d unit vectors in input order', async () => {
    assert.equal(embedder.modelId, EMBEDDING_MODEL_ID);
    assert.equal(embedder.dimension, 384);
    const texts = ['short', 'a somewhat longer sentence about retrieval augmented generation', ''];
    const vectors = await embedder.embed(texts);
    assert.equal(vectors.length, 3);
    for (const v of vectors) {
      assert.equal(v.length, EMBEDDING_DIMENSION);
      assert.ok(Math.abs(norm(v) - 1) < 1e-5);
    }
    const [again] = await embedder.embed([texts[1]!]);
    assert.ok(cosineSimilarity(again!, vectors[1]!) > 0.99999);
    assert.deepEqual(await embedder.embed([]), []);
  });

  it('matches Python sentence-transformers (cosine > 0.999 on the reference sentences)', async () => {
    const ref = loadReference();
    const vectors = await embedder.embed(ref.sentences);
    ref.vectors.forEach((expected, i) => {
      const cos = cosineSimilarity(vectors[i]!, expected);
      assert.ok(cos > 0.999, `sentence ${i}: cosine ${cos}`);
    });
  });

  it('puts paraphrases closer than unrelated sentences', async () => {
    for (const [a, b, unrelated] of PARAPHRASES) {
      const [va, vb, vu] = await embedder.embed([a, b, unrelated]);
      const near = cosineSimilarity(va!, vb!);
      assert.ok(near > cosineSimilarity(va!, vu!) + 0.2, `${a} / ${b}: ${near}`);
      assert.ok(near > cosineSimilarity(vb!, vu!) + 0.2);
    }
  });

  it('gives the same vectors in a batch (with padding) as one at a time', async () => {
    const texts = PARAPHRASES.flat();
    const batched = await embedder.embed(texts);
    for (let i = 0; i < texts.length; i++) {
      const [single] = await embedder.embed([texts[i]!]);
      assert.ok(cosineSimilarity(single!, batched[i]!) > 0.99999, `text ${i}`);
    }
  });

  it('truncates at 256 tokens like sentence-transformers instead of failing', async () => {
    const long = 'token '.repeat(600);
    const [v] = await embedder.embed([long]);
    const [prefix] = await embedder.embed(['token '.repeat(254)]);
    assert.ok(cosineSimilarity(v!, prefix!) > 0.99999);
  });
});

describe('quantized model', () => {
  it('stays close to the fp32 model (cosine > 0.98)', async () => {
    const ref = loadReference();
    const q = await OnnxEmbedder.create({ modelDir: requireModelDir(), quantized: true });
    try {
      const vectors = await q.embed(ref.sentences);
      ref.vectors.forEach((expected, i) => assert.ok(cosineSimilarity(vectors[i]!, expected) > 0.98, `sentence ${i}`));
    } finally {
      await q.close();
    }
  });
});

describe('WorkerPoolEmbedder', () => {
  let pool: Embedder;
  before(async () => {
    pool = await createEmbedder({ backend: 'local', workers: 2, modelDir: requireModelDir(), batchSize: 2 });
  });
  after(async () => pool.close());

  it('returns the same vectors as the in-process embedder, in input order', async () => {
    assert.ok(pool instanceof WorkerPoolEmbedder);
    const ref = loadReference();
    const vectors = await pool.embed(ref.sentences);
    assert.equal(vectors.length, ref.sentences.length);
    ref.vectors.forEach((expected, i) => assert.ok(cosineSimilarity(vectors[i]!, expected) > 0.999, `sentence ${i}`));
  });

  it('keeps the calling thread free while embedding', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    await pool.embed(
      Array.from({ length: 24 }, (_, i) => `Paragraph ${i}: ${'retrieval augmented generation '.repeat(20)}`),
    );
    clearInterval(timer);
    assert.ok(ticks > 1, `timer fired ${ticks} times during embedding`);
  });
});

describe('model location', () => {
  it('fails clearly when the model is not installed and remote downloads are off', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'no-model-'));
    await assert.rejects(OnnxEmbedder.create({ modelDir: empty }), ModelNotInstalledError);
    await assert.rejects(WorkerPoolEmbedder.create({ modelDir: empty, workers: 1 }), /failed to load the model/);
  });
});

describe('OpenAIEmbedder against an OpenAI-compatible server', () => {
  let server: Server;
  let local: OnnxEmbedder;
  let baseURL = '';
  const requests: Array<{ model: string; input: string[]; auth: string | undefined }> = [];

  before(async () => {
    local = await OnnxEmbedder.create({ modelDir: requireModelDir() });
    // A real /v1/embeddings endpoint serving the same model (the shape of OpenAI's API).
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const parsed = JSON.parse(body) as { model: string; input: string[]; dimensions?: number };
        requests.push({ model: parsed.model, input: parsed.input, auth: req.headers.authorization });
        if (req.url !== '/v1/embeddings') {
          res.writeHead(404).end();
          return;
        }
        local.embed(parsed.input).then(
          (vectors) => {
            const data = vectors
              .map((v, index) => ({
                object: 'embedding',
                index,
                embedding: Array.from(v.subarray(0, parsed.dimensions ?? v.length)),
              }))
              .reverse(); // out of order on purpose: the client must sort by index
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(
              JSON.stringify({
                object: 'list',
                data,
                model: parsed.model,
                usage: { prompt_tokens: 0, total_tokens: 0 },
              }),
            );
          },
          () => res.writeHead(500).end(),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  after(async () => {
    await local.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('returns the server vectors in input order, batched, with the configured model and key', async () => {
    const embedder = await createEmbedder({
      backend: 'openai',
      baseURL,
      apiKey: 'sk-test',
      model: 'all-MiniLM-L6-v2',
      dimension: 384,
      batchSize: 2,
    });
    assert.ok(embedder instanceof OpenAIEmbedder);
    assert.equal(embedder.modelId, 'all-MiniLM-L6-v2');
    assert.equal(embedder.dimension, 384);
    const ref = loadReference();
    requests.length = 0;
    const vectors = await embedder.embed(ref.sentences);
    assert.equal(requests.length, Math.ceil(ref.sentences.length / 2));
    assert.ok(requests.every((r) => r.model === 'all-MiniLM-L6-v2' && r.auth === 'Bearer sk-test'));
    ref.vectors.forEach((expected, i) => assert.ok(cosineSimilarity(vectors[i]!, expected) > 0.999, `sentence ${i}`));
    for (const v of vectors) assert.ok(Math.abs(norm(v) - 1) < 1e-5);
  });

  it('rejects vectors of the wrong dimension', async () => {
    const embedder = new OpenAIEmbedder({
      baseURL,
      model: 'm',
      dimension: 128,
      requestDimensions: false,
      maxRetries: 0,
    });
    await assert.rejects(embedder.embed(['x']), EmbeddingDimensionError);
    const shortened = new OpenAIEmbedder({
      baseURL,
      model: 'm',
      dimension: 128,
      requestDimensions: true,
      maxRetries: 0,
    });
    const [v] = await shortened.embed(['x']);
    assert.equal(v!.length, 128);
  });
});
