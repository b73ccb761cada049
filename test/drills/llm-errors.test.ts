/**
 * Drill (c): the LLM server answers with errors for a while (500, 503 and 429 with Retry-After) during
 * generateDatasets, then recovers. Input: the offline sample site, crawled and cleaned by the real ETL and feature
 * pipelines; the LLM is the scripted OpenAI-compatible server (good answers built from each extract's own text).
 * The run must complete with every extract answered, each extract paid for once (no second good answer), no
 * duplicate row in the dataset, and counts that add up.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { MongoClient } from 'mongodb';
import type { GenerateDatasetsResult } from '../../workflows/generate-datasets';
import type { FeatureEngineeringResult } from '../../workflows/feature-engineering';
import { parseJsonl, readManifest } from '../../src/datasets';
import { startSampleSite, type SampleSite } from '../../src/demo/sample-site';
import { EMBEDDING_MODEL_ID } from '../../src/features/model-files';
import { LocalArtifactStore } from '../../src/infra/artifact-store';
import { VectorStore } from '../../src/infra/qdrant';
import { goodPairs } from '../datasets/helpers';
import { testEnv, uniqueName } from '../support/env';
import { extractOf, reply, ScriptedLlmServer } from '../support/scripted-llm-server';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';
import { drillWorkerEnv, runEtl, SAMPLE_AUTHOR } from './helpers';

const MODEL = 'scripted-drill-model';
const OUTAGE_MS = 8000;

describe('drill: LLM server errors for a while during generateDatasets', () => {
  let llm: ScriptedLlmServer;
  let client: Client;
  let mongo: MongoClient;
  let site: SampleSite;
  let workers: WorkerProcess | undefined;
  let store: VectorStore;
  let features: FeatureEngineeringResult;
  let result: GenerateDatasetsResult;
  let artifactDir: string;
  let database: string;
  let outageStart = 0;
  /** status served per request (200 for good answers) */
  const served: { status: number; extract: string }[] = [];

  before(async () => {
    llm = await new ScriptedLlmServer((request) => {
      const now = Date.now();
      outageStart ||= now;
      const extract = extractOf(request);
      if (now - outageStart < OUTAGE_MS) {
        const status = [500, 503, 429][request.index % 3]!;
        served.push({ status, extract });
        return status === 429
          ? reply.error(429, 'scripted rate limit', { 'retry-after': '1' })
          : reply.error(status, `scripted ${status}`);
      }
      served.push({ status: 200, extract });
      return reply.json({ pairs: goodPairs(extract) });
    }).start();
    const drill = drillWorkerEnv('llmerr', { OPENAI_BASE_URL: llm.url, LLM_MODEL: MODEL });
    database = drill.database;
    artifactDir = drill.env.ARTIFACT_DIR!;
    client = new Client({ connection: await Connection.connect({ address: testEnv.temporalAddress }) });
    mongo = await MongoClient.connect(testEnv.mongoUri);
    site = await startSampleSite();
    store = new VectorStore({
      url: testEnv.qdrantUrl,
      collectionPrefix: drill.prefix,
      embedding: { modelId: EMBEDDING_MODEL_ID, dimension: 384 },
    });
    workers = await startWorkerProcess(['pipelines', 'etl', 'features', 'llm'], drill.env);
    await runEtl(client, site.links);
    features = (await client.workflow.execute('featureEngineering', {
      taskQueue: 'twin-pipelines',
      workflowId: uniqueName('drill-llm-features'),
      args: [{ authors: [SAMPLE_AUTHOR], categories: ['articles'] }],
    })) as FeatureEngineeringResult;
    result = (await client.workflow.execute('generateDatasets', {
      taskQueue: 'twin-pipelines',
      workflowId: uniqueName('drill-llm-datasets'),
      args: [{ type: 'instruction', authors: [SAMPLE_AUTHOR], batchSize: 8, maxConcurrentBatches: 2 }],
    })) as GenerateDatasetsResult;
    const errors = served.filter((s) => s.status !== 200).length;
    process.stdout.write(
      `# drill (c): ${result.extraction.extracts} extracts, ${llm.requests.length} requests (${errors} errors over ` +
        `${OUTAGE_MS} ms), ${result.generation.httpAttempts} HTTP attempts counted, status ${result.status}, ` +
        `${result.dataset.counts.total} rows\n`,
    );
  });

  after(async () => {
    await workers?.kill('SIGTERM');
    await site?.close();
    await store?.dropCollections().catch(() => undefined);
    await mongo?.db(database).dropDatabase();
    await mongo?.close();
    await client?.connection.close();
    await llm?.close();
  });

  test('the outage really happened: 5xx and 429 answers were served before the good ones', () => {
    assert.equal(features.status, 'completed');
    const statuses = new Set(served.map((s) => s.status));
    for (const status of [500, 503, 429, 200]) assert.ok(statuses.has(status), `served ${status}`);
    assert.ok(served.filter((s) => s.status !== 200).length >= 3);
  });

  test('the run completes with every extract answered and no failed batch', () => {
    assert.equal(result.status, 'completed');
    const g = result.generation;
    assert.ok(result.extraction.extracts > 0);
    assert.equal(g.answered, result.extraction.extracts);
    assert.equal(g.failed, 0);
    assert.deepEqual(g.failedBatches, []);
    assert.equal(g.batchesSucceeded, g.batches);
  });

  test('each extract got exactly one good answer (nothing asked again after it was answered)', () => {
    const good = served.filter((s) => s.status === 200);
    assert.equal(good.length, result.extraction.extracts);
    assert.equal(new Set(good.map((s) => s.extract)).size, good.length);
  });

  test('the dataset has no duplicate row and its counts add up', async () => {
    const d = result.dataset;
    assert.equal(d.extracts.total, d.extracts.answered + d.extracts.failed);
    assert.equal(d.samples.produced, d.samples.kept + d.samples.dropped);
    assert.equal(d.samples.kept, d.counts.total);
    assert.equal(d.counts.train + d.counts.test, d.counts.total);
    const files = new LocalArtifactStore(artifactDir);
    const manifest = await readManifest(files, 'instruction', d.version);
    const rows = [
      ...parseJsonl((await files.get(manifest.files.train.key)).toString('utf8')),
      ...parseJsonl((await files.get(manifest.files.test.key)).toString('utf8')),
    ];
    assert.equal(rows.length, d.counts.total);
    assert.equal(new Set(rows.map((r) => JSON.stringify(r))).size, rows.length, 'no duplicate row');
    const datasets = await mongo.db(database).collection('artifacts').countDocuments({ kind: 'instruction-dataset' });
    assert.equal(datasets, 1, 'one dataset version recorded');
  });
});
