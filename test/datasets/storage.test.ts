/**
 * Dataset versions written through the artifact store (local folder and S3 on moto), registered in the artifact
 * registry (MongoDB protocol server), and read back by the catalog (`twin datasets list | show | diff`).
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { MongoClient, type Db } from 'mongodb';
import { buildDataset } from '../../src/datasets/build';
import {
  diffDatasets,
  findDataset,
  formatDatasetDiff,
  formatDatasetList,
  formatDatasetShow,
  listDatasets,
  showDataset,
} from '../../src/datasets/catalog';
import { generateAnswers, MemoryAnswerStore, resolveGeneratorParams } from '../../src/datasets/generation';
import { parseDatasetRows } from '../../src/datasets/jsonl';
import { datasetVersion, parseManifest } from '../../src/datasets/manifest';
import { generateDataset } from '../../src/datasets/pipeline';
import {
  readDatasetSplit,
  readManifest,
  readProvenance,
  registerDataset,
  writeDataset,
} from '../../src/datasets/storage';
import type { ExtractAnswer } from '../../src/datasets/types';
import { sha256 } from '../../src/domain/artifacts';
import { ArtifactRegistry } from '../../src/infra/artifact-registry';
import { LocalArtifactStore, S3ArtifactStore, type ArtifactStore } from '../../src/infra/artifact-store';
import { LlmClient } from '../../src/infra/llm';
import { ensureIndexes } from '../../src/infra/mongo';
import { testEnv, uniqueName } from '../support/env';
import { extractOf, reply, startScriptedLlmServer, type ScriptedLlmServer } from '../support/scripted-llm-server';
import { goodPairs, goodTriples, syntheticExtract } from './helpers';

const PRODUCER = { workflowId: 'wf-datasets', runId: 'run-1', activity: 'assembleDataset', attempt: 1 };
const SOURCES = ['cleaned-documents:sha256:aaaaaaaaaaaaaaaa', 'cleaned-documents:sha256:bbbbbbbbbbbbbbbb'];

async function s3Store(): Promise<S3ArtifactStore> {
  const client = new S3Client({ endpoint: testEnv.awsEndpoint, region: 'us-east-1', forcePathStyle: true });
  const bucket = uniqueName('datasets').toLowerCase().replace(/_/g, '-');
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return new S3ArtifactStore(client, bucket, 'twin');
}

describe('dataset versions in the artifact store, registry and catalog', () => {
  let server: ScriptedLlmServer;
  let answers: ExtractAnswer[];
  let mongo: MongoClient;
  let db: Db;
  const extracts = Array.from({ length: 24 }, (_, i) => syntheticExtract(1000 + i, `doc-${i % 3}`));

  before(async () => {
    server = await startScriptedLlmServer((request) => {
      const text = extractOf(request);
      return request.body.response_format?.json_schema?.name === 'preference_samples'
        ? reply.json({ triples: goodTriples(text) })
        : reply.json({ pairs: goodPairs(text) });
    });
    const llm = new LlmClient({ model: 'gpt-4o-mini', baseUrl: server.url, maxRetries: 0 });
    answers = (await generateAnswers({ type: 'instruction', extracts }, { llm, answers: new MemoryAnswerStore() }))
      .answers;
    mongo = await MongoClient.connect(testEnv.mongoUri);
    db = mongo.db(uniqueName('datasets'));
    await ensureIndexes(db);
  });
  after(async () => {
    await server.close();
    await db.dropDatabase();
    await mongo.close();
  });

  const generator = resolveGeneratorParams();

  async function roundTrip(store: ArtifactStore) {
    const built = buildDataset('instruction', answers, { seed: 42 });
    const written = await writeDataset(store, built, {
      sources: SOURCES,
      generator,
      now: new Date('2026-01-02T03:04:05Z'),
    });
    assert.equal(written.created, true);
    assert.match(written.version, /^[0-9a-f]{16}$/);
    const m = written.manifest;
    assert.equal(m.counts.train, built.train.length);
    assert.equal(m.counts.test, built.test.length);
    assert.equal(m.counts.total, 120);
    assert.equal(m.counts.test, 12);
    assert.deepEqual(m.counts.perCategory, { articles: { train: 108, test: 12 } });
    assert.deepEqual(m.columns, ['instruction', 'output']);
    assert.equal(m.generator.model, 'gpt-4o-mini');
    assert.match(m.promptVersion, /^instruction-pairs@1\+/);
    assert.deepEqual(m.sources, SOURCES);
    assert.deepEqual(m.split, { seed: 42, testFraction: 0.1 });
    assert.equal(m.usage.inputTokens, 24 * 100);
    assert.equal(m.usage.estimatedCostUsd, estimate(24 * 100, 24 * 50));

    // Files: keys under datasets/<type>/<version>/, checksums of the exact bytes, rows that parse with exact columns.
    const train = await store.get(`datasets/instruction/${written.version}/train.jsonl`);
    const test = await store.get(`datasets/instruction/${written.version}/test.jsonl`);
    assert.equal(m.files.train.checksum, `sha256:${sha256(train)}`);
    assert.equal(m.files.test.checksum, `sha256:${sha256(test)}`);
    assert.equal(m.files.train.bytes, train.length);
    assert.equal(datasetVersion('instruction', train, test), written.version);
    assert.deepEqual(parseDatasetRows('instruction', train.toString('utf8')), built.train);
    assert.deepEqual(await readDatasetSplit(store, m, 'test'), built.test);
    assert.equal((await readProvenance(store, m)).length, 120);
    const manifestBytes = await store.get(`datasets/instruction/${written.version}/manifest.json`);
    assert.deepEqual(parseManifest(manifestBytes.toString('utf8')), m);
    assert.deepEqual(await readManifest(store, 'instruction', written.version), m);

    // A version is immutable: writing the same rows again writes nothing and returns the stored manifest.
    const again = await writeDataset(store, buildDataset('instruction', [...answers].reverse(), { seed: 42 }), {
      sources: SOURCES,
      generator,
      now: new Date('2030-01-01T00:00:00Z'),
    });
    assert.equal(again.created, false);
    assert.equal(again.version, written.version);
    assert.equal(again.manifest.createdAt, '2026-01-02T03:04:05.000Z');
    return written;
  }

  function estimate(input: number, output: number): number {
    return Math.round(((input * 0.15 + output * 0.6) / 1e6) * 1e6) / 1e6;
  }

  test('local folder and S3 hold the same version with the same checksums', async () => {
    const root = path.join(testEnv.tmpDir, uniqueName('datasets'));
    const local = await roundTrip(new LocalArtifactStore(root));
    const s3 = await roundTrip(await s3Store());
    assert.equal(s3.version, local.version);
    assert.deepEqual(s3.manifest.files.train.checksum, local.manifest.files.train.checksum);
    assert.match(s3.uri, /^s3:\/\/[^/]+\/twin\/datasets\/instruction\/[0-9a-f]{16}\/$/);
    assert.equal(local.uri, `file://${root}/datasets/instruction/${local.version}/`);

    // A changed file no longer matches its manifest.
    const file = path.join(root, 'datasets', 'instruction', local.version, 'train.jsonl');
    await writeFile(file, (await readFile(file, 'utf8')).replace('Question', 'Questiom'));
    await assert.rejects(
      readDatasetSplit(new LocalArtifactStore(root), local.manifest, 'train'),
      /does not match the manifest/,
    );
  });

  test('registered with lineage, listed, shown and diffed', async () => {
    const store = new LocalArtifactStore(path.join(testEnv.tmpDir, uniqueName('catalog')));
    const registry = new ArtifactRegistry(db);
    const a = await writeDataset(store, buildDataset('instruction', answers, { seed: 1 }), {
      sources: SOURCES,
      generator,
    });
    const b = await writeDataset(store, buildDataset('instruction', answers.slice(0, 20), { seed: 2 }), {
      sources: SOURCES.slice(0, 1),
      generator,
    });
    const refA = await registerDataset(registry, a, PRODUCER);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const refB = await registerDataset(registry, b, { ...PRODUCER, runId: 'run-2' });
    assert.equal(refA.kind, 'instruction-dataset');
    assert.equal(refA.count, 120);
    assert.deepEqual(refA.inputs, SOURCES);
    assert.equal(refA.checksum, `sha256:${a.contentHash}`);
    assert.equal(refA.metadata.version, a.version);
    assert.equal((await registerDataset(registry, a, { ...PRODUCER, runId: 'run-3' })).id, refA.id, 'idempotent');

    const listed = await listDatasets(registry);
    assert.deepEqual(
      listed.map((l) => l.version),
      [b.version, a.version],
    );
    assert.deepEqual(
      listed.map((l) => [l.train, l.test]),
      [
        [b.manifest.counts.train, b.manifest.counts.test],
        [108, 12],
      ],
    );
    assert.match(formatDatasetList(listed), new RegExp(a.version));
    assert.deepEqual(await listDatasets(registry, { type: 'preference' }), []);

    const shown = await showDataset(registry, store, a.version.slice(0, 8));
    assert.equal(shown.artifact.id, refA.id);
    assert.deepEqual(shown.manifest, a.manifest);
    assert.match(formatDatasetShow(shown), /108 train \+ 12 test = 120/);
    assert.equal((await findDataset(registry, refB.id)).id, refB.id);
    await assert.rejects(findDataset(registry, 'ffffffff'), /no dataset version/);

    const diff = await diffDatasets(registry, store, a.version, b.version);
    assert.deepEqual(diff.counts.total, [120, 100]);
    assert.equal(diff.rows.common, 100);
    assert.equal(diff.rows.onlyInA, 20);
    assert.equal(diff.rows.onlyInB, 0);
    assert.ok(diff.rows.movedSplit > 0, 'another seed moves rows between splits');
    assert.deepEqual(diff.changed['split.seed'], [1, 2]);
    assert.deepEqual(diff.sources, { onlyInA: [SOURCES[1]], onlyInB: [] });
    assert.match(formatDatasetDiff(diff), /100 common, 20 only in/);
  });

  test('the whole pipeline on S3: answers persist per extract, a re-run pays nothing and gives the same version', async () => {
    const store = await s3Store();
    const registry = new ArtifactRegistry(db);
    const llm = new LlmClient({ model: 'gpt-4o-mini', baseUrl: server.url, maxRetries: 0 });
    const some = extracts.slice(0, 6);
    const input = { type: 'preference' as const, extracts: some, sources: SOURCES };
    const before = server.requests.length;
    const first = await generateDataset(input, { llm, store, registry, producer: PRODUCER });
    assert.equal(server.requests.length - before, 6);
    assert.equal(first.generation.answered, 6);
    assert.equal(first.dataset.manifest.counts.total, 30);
    assert.equal(first.artifact?.kind, 'preference-dataset');
    assert.deepEqual(first.dataset.manifest.columns, ['prompt', 'chosen', 'rejected']);
    const rows = await readDatasetSplit(store, first.dataset.manifest, 'train');
    for (const row of rows) assert.deepEqual(Object.keys(row), ['prompt', 'chosen', 'rejected']);

    const second = await generateDataset(input, { llm, store, registry, producer: { ...PRODUCER, runId: 'run-2' } });
    assert.equal(server.requests.length - before, 6, 'no new requests: answers came from S3');
    assert.equal(second.generation.fromStore, 6);
    assert.equal(second.dataset.version, first.dataset.version);
    assert.equal(second.dataset.created, false);
    assert.equal(second.artifact?.id, first.artifact?.id);
  });
});
