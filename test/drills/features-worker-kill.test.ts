/**
 * Drill (a): the features worker is SIGKILLed while it embeds (a real worker child process, like a crashed
 * container) and started again. Input: the offline sample site, crawled by the real ETL. The featureEngineering
 * run must complete, the feature store must hold exactly the chunks the library makes from the stored articles
 * (no duplicate point, none missing) and the per-item counts must add up.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { MongoClient } from 'mongodb';
import type { FeatureEngineeringResult } from '../../workflows/feature-engineering';
import type { DigitalDataEtlResult } from '../../workflows/digital-data-etl';
import { startSampleSite, type SampleSite } from '../../src/demo/sample-site';
import { EMBEDDING_MODEL_ID } from '../../src/features/model-files';
import { VectorStore } from '../../src/infra/qdrant';
import { testEnv, uniqueName } from '../support/env';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';
import { drillWorkerEnv, expectedChunks, runEtl, SAMPLE_AUTHOR, waitFor } from './helpers';

const { database, prefix, env } = drillWorkerEnv('fkill');

describe('drill: features worker killed during embedding', () => {
  let client: Client;
  let mongo: MongoClient;
  let site: SampleSite;
  let pipelines: WorkerProcess | undefined;
  let features: WorkerProcess | undefined;
  let store: VectorStore;
  let etl: DigitalDataEtlResult;
  let handle: WorkflowHandle;
  let result: FeatureEngineeringResult;
  let expected: Map<string, string[]>;
  let expectedTotal = 0;
  let killedAt = 0;

  before(async () => {
    client = new Client({ connection: await Connection.connect({ address: testEnv.temporalAddress }) });
    mongo = await MongoClient.connect(testEnv.mongoUri);
    site = await startSampleSite();
    store = new VectorStore({
      url: testEnv.qdrantUrl,
      collectionPrefix: prefix,
      embedding: { modelId: EMBEDDING_MODEL_ID, dimension: 384 },
    });
    pipelines = await startWorkerProcess(['pipelines', 'etl'], env);
    features = await startWorkerProcess(['features'], env);
    etl = await runEtl(client, site.links);
    expected = await expectedChunks(mongo.db(database));
    expectedTotal = [...expected.values()].reduce((n, ids) => n + ids.length, 0);

    // one document per embedding activity, one at a time: the kill lands between documents of a run
    handle = await client.workflow.start('featureEngineering', {
      taskQueue: 'twin-pipelines',
      workflowId: uniqueName('drill-features'),
      args: [{ authors: [SAMPLE_AUTHOR], categories: ['articles'], batchSize: 1, maxConcurrentBatches: 1 }],
    });
    // Kill while an embedding activity runs on the worker (after the first chunks are stored): between two
    // activities nothing would be in flight, and nothing retried.
    const embedding = async () =>
      (await handle.describe()).raw.pendingActivities?.some(
        (a) =>
          a.activityType?.name === 'embedDocuments' &&
          a.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
      ) ?? false;
    await waitFor(
      async () => (killedAt = await store.count('embedded', 'articles')) > 0 && (await embedding()),
      240_000,
      () => `no chunk stored; worker log:\n${features?.lines.slice(-20).join('\n')}`,
    );
    await features.kill('SIGKILL');
    features = await startWorkerProcess(['features'], env);
    result = (await handle.result()) as FeatureEngineeringResult;
    process.stdout.write(
      `# drill (a): killed after ${killedAt}/${expectedTotal} chunks; run ${result.status}, ` +
        `${result.totals.embedding.chunksEmbedded} chunks embedded, ${await store.count('embedded', 'articles')} points\n`,
    );
  });

  after(async () => {
    await features?.kill('SIGTERM');
    await pipelines?.kill('SIGTERM');
    await site?.close();
    await store?.dropCollections().catch(() => undefined);
    await mongo?.db(database).dropDatabase();
    await mongo?.close();
    await client?.connection.close();
  });

  test('the ETL stored every sample article once', async () => {
    assert.equal(etl.counts.links, site.links.length);
    assert.equal(etl.counts.byStatus.stored, site.links.length, JSON.stringify(etl.rows));
    assert.equal(await mongo.db(database).collection('articles').countDocuments(), site.links.length);
  });

  test('the run completes after the crash, and an activity was retried', async () => {
    assert.ok(killedAt > 0 && killedAt < expectedTotal, `killed after ${killedAt} of ${expectedTotal} chunks`);
    assert.equal(result.status, 'completed');
    const history = await handle.fetchHistory();
    const retried = history.events?.some(
      (e) =>
        (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1 ||
        e.activityTaskTimedOutEventAttributes ||
        e.activityTaskFailedEventAttributes,
    );
    assert.ok(retried, 'an activity was retried after the crash');
  });

  test('the feature store holds every chunk exactly once', async () => {
    assert.equal(await store.count('embedded', 'articles'), expectedTotal, 'no duplicate point, none missing');
    const stored = await store.storedChunkIds('articles', [...expected.keys()]);
    for (const [documentId, ids] of expected) {
      assert.deepEqual([...(stored.get(documentId)?.ids ?? [])].sort(), [...ids].sort(), `chunks of ${documentId}`);
    }
    assert.equal(await store.count('cleaned', 'articles'), site.links.length);
  });

  test('per-item accounting adds up', () => {
    const t = result.totals;
    assert.equal(t.documents, site.links.length);
    assert.equal(t.cleaning.cleaned, t.documents);
    assert.equal(t.cleaning.inserted + t.cleaning.updated + t.cleaning.unchanged, t.cleaning.cleaned);
    assert.equal(t.cleaning.failed + t.cleaning.missing, 0);
    assert.equal(t.embedding.documents, t.documents);
    assert.equal(t.embedding.missing, 0);
    // a document embedded by the killed attempt counts as unchanged on the retry: never twice as embedded
    assert.equal(t.embedding.embedded + t.embedding.unchanged + t.embedding.withoutChunks, t.embedding.documents);
    assert.equal(t.embedding.chunks, expectedTotal);
    assert.ok(t.embedding.chunksEmbedded <= expectedTotal, `${t.embedding.chunksEmbedded} embedded`);
  });
});
