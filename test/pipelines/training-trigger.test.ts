/**
 * "Start training when a new dataset version is registered" on the real dev server: with TRAIN_ON_NEW_DATASET=true,
 * generateDatasets starts continuousTraining (fixed id, the schedule spec's input) after it registered a NEW version;
 * a re-run that produced the same version starts nothing; `trainOnNewVersion: false` never asks. The preference
 * dataset alone is not enough to train (no instruction dataset), so the triggered run ends "skipped: no new data"
 * without training anything.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { MongoClient } from 'mongodb';
import { TRIGGERED_TRAINING_WORKFLOW_ID } from '../../activities/pipeline-state';
import { checksumOf } from '../../src/domain/artifacts';
import type { CleanedDocument } from '../../src/domain/documents';
import { cleanArticle } from '../../src/features/cleaning';
import { EMBEDDING_MODEL_ID } from '../../src/features/model-files';
import { ArtifactRegistry } from '../../src/infra/artifact-registry';
import { VectorStore } from '../../src/infra/qdrant';
import type { ContinuousTrainingResult } from '../../workflows/continuous-training';
import type { GenerateDatasetsInput, GenerateDatasetsResult } from '../../workflows/generate-datasets';
import { goodTriples } from '../datasets/helpers';
import { shortestArticlesOf } from '../features/helpers';
import { isolatedNamespace } from '../serving/helpers';
import { testEnv, uniqueName } from '../support/env';
import { extractOf, reply, ScriptedLlmServer } from '../support/scripted-llm-server';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';

const database = uniqueName('trigger');
const prefix = `${uniqueName('trg')}_`;
const AUTHOR = 'Maxime Labonne';

describe('generateDatasets starts continuousTraining on a new dataset version (TRAIN_ON_NEW_DATASET)', () => {
  let client: Client;
  let mongo: MongoClient;
  let vectors: VectorStore | undefined;
  let llm: ScriptedLlmServer | undefined;
  let workers: WorkerProcess | undefined;
  let cleanedId: string;
  let triggeredRunId: string | undefined;

  before(async () => {
    const namespace = await isolatedNamespace('trigger');
    client = new Client({ connection: await Connection.connect({ address: testEnv.temporalAddress }), namespace });
    mongo = await MongoClient.connect(testEnv.mongoUri);
    const docs: CleanedDocument[] = shortestArticlesOf(AUTHOR, 1).map(cleanArticle);
    vectors = new VectorStore({
      url: testEnv.qdrantUrl,
      collectionPrefix: prefix,
      embedding: { modelId: EMBEDDING_MODEL_ID, dimension: 384 },
    });
    await vectors.upsertCleaned('articles', docs);
    const producer = { workflowId: 'fixture', runId: 'fixture', activity: 'fixture', attempt: 1 };
    const cleaned = await new ArtifactRegistry(mongo.db(database)).record({
      kind: 'cleaned-documents',
      uri: `qdrant://test/${prefix}cleaned_articles`,
      count: docs.length,
      checksum: checksumOf('cleaned-trigger'),
      producer,
      inputs: [],
      metadata: { authors: AUTHOR },
    });
    cleanedId = cleaned.id;
    llm = await new ScriptedLlmServer((request) => reply.json({ triples: goodTriples(extractOf(request)) })).start();

    const dir = mkdtempSync(path.join(testEnv.tmpDir, 'trigger-'));
    const spec = path.join(dir, 'continuous-training.yaml');
    writeFileSync(
      spec,
      'id: trigger-test\nspec: {interval: 24h}\naction:\n  workflow: continuousTraining\n  input: {evaluate: false, trainingBackend: local}\n',
    );
    workers = await startWorkerProcess(['pipelines', 'llm', 'ml'], {
      TEMPORAL_NAMESPACE: namespace,
      MONGODB_DATABASE: database,
      QDRANT_COLLECTION_PREFIX: prefix,
      OPENAI_BASE_URL: llm.url,
      OPENAI_API_KEY: 'dummy',
      LLM_MODEL: 'scripted-twin-model',
      TWIN_WORKFLOW_BUNDLE: testEnv.workflowBundle ?? '',
      ARTIFACT_STORE: 'local',
      ARTIFACT_DIR: path.join(dir, 'artifacts'),
      TRAIN_ON_NEW_DATASET: 'true',
      CONTINUOUS_TRAINING_SCHEDULE: spec,
    });
  });

  after(async () => {
    await workers?.kill('SIGTERM');
    await vectors?.dropCollections().catch(() => undefined);
    await llm?.close();
    await mongo.db(database).dropDatabase();
    await mongo.close();
    await client.connection.close();
  });

  const generate = async (extra: Partial<GenerateDatasetsInput> = {}) => {
    const handle = await client.workflow.start('generateDatasets', {
      taskQueue: 'twin-pipelines',
      workflowId: uniqueName('trigger-datasets'),
      args: [
        {
          type: 'preference',
          authors: [AUTHOR],
          batchSize: 4,
          sourceArtifactIds: [cleanedId],
          ...extra,
        } satisfies GenerateDatasetsInput,
      ],
    });
    const result = (await handle.result()) as GenerateDatasetsResult;
    const events = (await handle.fetchHistory()).events ?? [];
    return {
      result,
      memo: (await handle.describe()).memo ?? {},
      children: events.flatMap((e) =>
        e.startChildWorkflowExecutionInitiatedEventAttributes
          ? [e.startChildWorkflowExecutionInitiatedEventAttributes]
          : [],
      ),
      activities: events.flatMap((e) =>
        e.activityTaskScheduledEventAttributes?.activityType?.name
          ? [e.activityTaskScheduledEventAttributes.activityType.name]
          : [],
      ),
    };
  };

  test('a new version starts continuousTraining (abandoned child, fixed id), which finds nothing it can train on', async () => {
    const first = await generate();
    assert.equal(first.result.dataset.created, true);
    assert.equal(first.children.length, 1);
    assert.equal(first.children[0]?.workflowType?.name, 'continuousTraining');
    assert.equal(first.children[0]?.workflowId, TRIGGERED_TRAINING_WORKFLOW_ID);
    assert.equal(first.children[0]?.parentClosePolicy, 2, 'PARENT_CLOSE_POLICY_ABANDON');
    assert.equal(first.memo.trainingTrigger, `started ${TRIGGERED_TRAINING_WORKFLOW_ID}`);
    const triggered = client.workflow.getHandle(TRIGGERED_TRAINING_WORKFLOW_ID);
    const ct = (await triggered.result()) as ContinuousTrainingResult;
    assert.equal(ct.status, 'skipped');
    assert.equal(ct.reason, 'skipped: no new data');
    assert.equal(ct.facts.preference?.artifactId, first.result.dataset.artifactId, 'it saw the new preference version');
    assert.equal(ct.facts.instruction, null);
    triggeredRunId = (await triggered.describe()).runId;
  });

  test('the same version again starts nothing; trainOnNewVersion: false does not even ask', async () => {
    const again = await generate();
    assert.equal(again.result.dataset.created, false);
    assert.equal(again.children.length, 0);
    assert.match(String(again.memo.trainingTrigger), /existed already/);
    assert.equal(
      (await client.workflow.getHandle(TRIGGERED_TRAINING_WORKFLOW_ID).describe()).runId,
      triggeredRunId,
      'no second run',
    );
    const off = await generate({ trainOnNewVersion: false, runKey: 'another-run' });
    assert.equal(off.children.length, 0);
    assert.ok(!off.activities.includes('trainingTriggerFor'), off.activities.join(','));
    assert.equal(off.memo.trainingTrigger, undefined);
  });
});
