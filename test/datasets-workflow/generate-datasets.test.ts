/**
 * generateDatasets on the real Temporal dev server with real worker processes (pipelines + llm), over 3 real
 * articles of one author (plus 1 of another author that must be left out) written as cleaned documents into Qdrant
 * collections of this file's own, against the scripted OpenAI-compatible server: good answers for every extract,
 * except one whose first answer is malformed JSON (answered on the library's retry). The expected dataset is made
 * in this process by the library from the same documents and an always-good server: the workflow must produce the
 * same version with the same counts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { MongoClient } from 'mongodb';
import type { GenerateDatasetsInput, GenerateDatasetsResult } from '../../workflows/generate-datasets';
import {
  extractsFromDocuments,
  generateDataset,
  MemoryAnswerStore,
  parseJsonl,
  readDatasetSplit,
  readManifest,
  readProvenance,
  type Extract,
  type GenerateDatasetResult,
} from '../../src/datasets';
import type { CleanedDocument } from '../../src/domain/documents';
import { cleanArticle } from '../../src/features/cleaning';
import { EMBEDDING_MODEL_ID } from '../../src/features/model-files';
import { ArtifactRegistry } from '../../src/infra/artifact-registry';
import { LocalArtifactStore } from '../../src/infra/artifact-store';
import { LlmClient } from '../../src/infra/llm';
import { VectorStore } from '../../src/infra/qdrant';
import { goodPairs } from '../datasets/helpers';
import { loadCorpusArticles } from '../features/helpers';
import { runTwin } from '../support/cli';
import { testEnv, uniqueName } from '../support/env';
import { extractOf, reply, ScriptedLlmServer, type Script } from '../support/scripted-llm-server';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';

const MODEL = 'scripted-twin-model';
const AUTHOR = 'Maxime Labonne';
const database = uniqueName('datasets');
const prefix = `${uniqueName('dw')}_`;

const good: Script = (request) => reply.json({ pairs: goodPairs(extractOf(request)) });

describe('generateDatasets over real articles with a scripted LLM', () => {
  let client: Client;
  let mongo: MongoClient;
  let workers: WorkerProcess | undefined;
  let vectors: VectorStore;
  let llm: ScriptedLlmServer;
  let reference: ScriptedLlmServer;
  let artifactDir: string;
  let extracts: Extract[];
  let malformedTarget: Extract;
  let cleanedArtifactId: string;
  let expected: GenerateDatasetResult;
  let first: GenerateDatasetsResult;
  let firstWorkflowId: string;
  let requestsAfterFirst = 0;

  const input: GenerateDatasetsInput = {
    type: 'instruction',
    authors: [AUTHOR],
    batchSize: 4,
    maxConcurrentBatches: 3,
  };
  const run = (workflowId: string) =>
    client.workflow.execute('generateDatasets', {
      taskQueue: 'twin-pipelines',
      workflowId,
      args: [input],
    }) as Promise<GenerateDatasetsResult>;

  before(async () => {
    client = new Client({ connection: await Connection.connect({ address: testEnv.temporalAddress }) });
    mongo = await MongoClient.connect(testEnv.mongoUri);
    artifactDir = mkdtempSync(join(testEnv.tmpDir, 'datasets-artifacts-'));

    // 3 short articles of one author + 1 of another, cleaned as featureEngineering does, into cleaned_articles.
    const corpus = loadCorpusArticles().sort((a, b) => a.content.Content.length - b.content.Content.length);
    const mine = corpus.filter((a) => a.author_full_name === AUTHOR).slice(0, 3);
    const other = corpus.find((a) => a.author_full_name !== AUTHOR);
    assert.ok(mine.length === 3 && other, 'corpus has 3 articles of the author and one of another');
    const docs: CleanedDocument[] = mine.map(cleanArticle);
    vectors = new VectorStore({
      url: testEnv.qdrantUrl,
      collectionPrefix: prefix,
      embedding: { modelId: EMBEDDING_MODEL_ID, dimension: 384 },
    });
    await vectors.upsertCleaned('articles', [...docs, cleanArticle(other)]);
    extracts = extractsFromDocuments(docs).extracts;
    malformedTarget = extracts[1]!;

    // The cleaned-documents artifact featureEngineering would have recorded (the dataset's lineage).
    const registry = new ArtifactRegistry(mongo.db(database));
    cleanedArtifactId = (
      await registry.record({
        kind: 'cleaned-documents',
        uri: `qdrant://test/${prefix}cleaned_articles`,
        count: docs.length,
        checksum: `sha256:${'c'.repeat(64)}`,
        producer: { workflowId: 'test', runId: '', activity: 'test', attempt: 1 },
        inputs: [],
        metadata: { authors: AUTHOR },
      })
    ).id;

    // The expected dataset: the library in this process, an always-good server, memory answers, its own folder.
    reference = await new ScriptedLlmServer(good).start();
    expected = await generateDataset(
      { type: 'instruction', documents: docs, sources: [cleanedArtifactId] },
      {
        llm: new LlmClient({ model: MODEL, baseUrl: reference.url }),
        store: new LocalArtifactStore(mkdtempSync(join(testEnv.tmpDir, 'datasets-expected-'))),
        answers: new MemoryAnswerStore(),
      },
    );

    let malformedSent = 0;
    llm = await new ScriptedLlmServer((request, server) => {
      if (extractOf(request) === malformedTarget.text && malformedSent++ === 0)
        return reply.text('{"pairs": [{"instruction": "What is');
      return good(request, server);
    }).start();

    workers = await startWorkerProcess(['pipelines', 'llm'], {
      MONGODB_DATABASE: database,
      QDRANT_COLLECTION_PREFIX: prefix,
      TWIN_WORKFLOW_BUNDLE: testEnv.workflowBundle ?? '',
      OPENAI_BASE_URL: llm.url,
      LLM_MODEL: MODEL,
      ARTIFACT_STORE: 'local',
      ARTIFACT_DIR: artifactDir,
    });
    firstWorkflowId = uniqueName('datasets-first');
    first = await run(firstWorkflowId);
    requestsAfterFirst = llm.requests.length;
    process.stdout.write(
      `# ${extracts.length} extracts, ${requestsAfterFirst} requests, version ${first.dataset.version}: ` +
        `${first.dataset.counts.train} train + ${first.dataset.counts.test} test, ` +
        `${first.dataset.samples.produced} produced, drops ${JSON.stringify(first.dataset.drops)}\n`,
    );
  });

  after(async () => {
    await workers?.kill('SIGTERM');
    await vectors?.dropCollections().catch(() => undefined);
    await mongo?.db(database).dropDatabase();
    await mongo?.close();
    await client?.connection.close();
    await llm?.close();
    await reference?.close();
  });

  test('every extract of the author answered once, the malformed one on its retry; exact counts', () => {
    assert.ok(extracts.length >= 6, `${extracts.length} extracts`);
    assert.deepEqual(first.authors, [AUTHOR]);
    assert.equal(first.extraction.documents, 3, 'the other author is left out');
    assert.equal(first.extraction.extracts, extracts.length);
    assert.equal(first.generation.batches, Math.ceil(extracts.length / 4));
    assert.equal(first.generation.batchesSucceeded, first.generation.batches);
    assert.deepEqual(first.generation.failedBatches, []);
    assert.equal(first.generation.answered, extracts.length);
    assert.equal(first.generation.failed, 0);
    assert.equal(first.generation.completions, extracts.length + 1);
    assert.equal(first.generation.retriedExtracts, 1);
    assert.equal(requestsAfterFirst, extracts.length + 1);
    assert.equal(llm.requests.filter((r) => extractOf(r) === malformedTarget.text).length, 2);
    assert.equal(new Set(llm.requests.map(extractOf)).size, extracts.length, 'one prompt per extract');
    assert.equal(first.status, 'completed');
  });

  test('the manifest is the library’s: same version, counts, drops, samples', () => {
    const d = first.dataset;
    const m = expected.dataset.manifest;
    assert.equal(d.version, expected.dataset.version);
    assert.deepEqual(d.counts, m.counts);
    assert.deepEqual(d.samples, m.samples);
    assert.deepEqual(d.extracts, { ...m.extracts, total: extracts.length, answered: extracts.length, failed: 0 });
    assert.equal(d.samples.kept, d.counts.total);
    assert.equal(d.samples.produced, d.samples.kept + d.samples.dropped);
    assert.ok(d.counts.train > 0 && d.counts.test > 0, `${d.counts.train}/${d.counts.test}`);
    assert.equal(d.counts.test, Math.ceil(d.counts.total * 0.1));
    assert.equal(d.usage.completions, extracts.length + 1);
    assert.equal(d.model, MODEL);
    assert.deepEqual(d.sources, [cleanedArtifactId]);
    assert.equal(d.created, true);
  });

  test('the files are in the local artifact store with the HF columns and match the manifest', async () => {
    const store = new LocalArtifactStore(artifactDir);
    const manifest = await readManifest(store, 'instruction', first.dataset.version);
    assert.ok(first.dataset.uri.startsWith('file://') || first.dataset.uri.includes(artifactDir), first.dataset.uri);
    const train = parseJsonl((await store.get(manifest.files.train.key)).toString('utf8'));
    assert.equal(train.length, first.dataset.counts.train);
    for (const row of train) assert.deepEqual(Object.keys(row as object), ['instruction', 'output']);
    assert.equal((await readDatasetSplit(store, manifest, 'test')).length, first.dataset.counts.test);
    const provenance = await readProvenance(store, manifest);
    assert.equal(provenance.length, first.dataset.counts.total);
    const extractIds = new Set(extracts.map((e) => e.id));
    assert.ok(provenance.every((p) => extractIds.has(p.extract_id)));
  });

  test('registered as an instruction-dataset made from the cleaned documents; search attributes', async () => {
    const registry = new ArtifactRegistry(mongo.db(database));
    const artifact = await registry.get(first.dataset.artifactId);
    assert.ok(artifact);
    assert.equal(artifact.kind, 'instruction-dataset');
    assert.deepEqual(artifact.inputs, [cleanedArtifactId]);
    assert.equal(artifact.metadata.version, first.dataset.version);
    assert.equal(artifact.producer.workflowId, firstWorkflowId);
    assert.equal(artifact.producer.activity, 'buildDatasetVersion');
    const lineage = await registry.lineage(artifact.id);
    assert.deepEqual(
      lineage.map((l) => [l.artifact.kind, l.depth]),
      [
        ['instruction-dataset', 0],
        ['cleaned-documents', 1],
      ],
    );
    const description = await client.workflow.getHandle(firstWorkflowId).describe();
    assert.deepEqual(description.searchAttributes.TwinPipeline, ['generateDatasets']);
    assert.deepEqual(description.searchAttributes.TwinDatasetVersion, [first.dataset.version]);
    assert.deepEqual(description.searchAttributes.TwinAuthor, [AUTHOR]);
    assert.deepEqual(description.searchAttributes.TwinStatus, ['completed']);
  });

  test('a re-run with the same inputs asks the LLM nothing and gives the same version', async () => {
    const again = await run(uniqueName('datasets-again'));
    assert.equal(llm.requests.length, requestsAfterFirst, 'no request for extracts already answered');
    assert.equal(again.generation.fromStore, extracts.length);
    assert.equal(again.generation.completions, 0);
    assert.equal(again.dataset.version, first.dataset.version);
    assert.equal(again.dataset.artifactId, first.dataset.artifactId);
    assert.equal(again.dataset.created, false);
    assert.deepEqual(again.dataset.counts, first.dataset.counts);
  });

  test('twin datasets generate / list / show / diff', async () => {
    const env = {
      ...process.env,
      MONGODB_DATABASE: database,
      QDRANT_COLLECTION_PREFIX: prefix,
      ARTIFACT_STORE: 'local',
      ARTIFACT_DIR: artifactDir,
      LLM_MODEL: MODEL,
    };
    const twin = async (args: string[]) => {
      const result = await runTwin(args, env);
      assert.equal(result.code, 0, `twin ${args.join(' ')}:\n${result.stdout}\n${result.stderr}`);
      return result.stdout;
    };
    // Same answers, another split: a second version made without a single LLM request.
    const generated = await twin([
      'datasets',
      'generate',
      '--type',
      'instruction',
      '--author',
      AUTHOR,
      '--batch-size',
      '4',
      '--test-split',
      '0.25',
    ]);
    assert.equal(llm.requests.length, requestsAfterFirst);
    const second = /dataset: {2}instruction ([0-9a-f]{16})/.exec(generated)?.[1];
    assert.ok(second && second !== first.dataset.version, generated);
    assert.match(generated, /status: completed/);

    const list = await twin(['datasets', 'list', '--type', 'instruction']);
    assert.ok(list.includes(first.dataset.version) && list.includes(second), list);
    const show = await twin(['datasets', 'show', first.dataset.version.slice(0, 8)]);
    assert.match(show, new RegExp(`rows +${first.dataset.counts.train} train \\+ ${first.dataset.counts.test} test`));
    assert.ok(show.includes(cleanedArtifactId), show);
    const diff = JSON.parse(await twin(['datasets', 'diff', first.dataset.version, second, '--json'])) as {
      rows: { common: number; onlyInA: number; onlyInB: number; movedSplit: number };
      changed: Record<string, unknown>;
    };
    assert.deepEqual(
      { common: diff.rows.common, onlyInA: diff.rows.onlyInA, onlyInB: diff.rows.onlyInB },
      { common: first.dataset.counts.total, onlyInA: 0, onlyInB: 0 },
    );
    assert.ok(diff.rows.movedSplit > 0);
    assert.deepEqual(diff.changed['split.testFraction'], [0.1, 0.25]);
  });
});
