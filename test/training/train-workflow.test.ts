/**
 * trainModel on the real Temporal dev server with real worker processes and the local backend: the instruction and
 * preference datasets are produced by the real generateDatasets workflow (2 short real articles as cleaned documents
 * in Qdrant, the scripted OpenAI-compatible server answering with verbatim passages), a tiny random Llama trained
 * with SFT on the first, then DPO on the second on top of the SFT model version; the registry entries, the lineage
 * model → dataset (made by the generateDatasets run) → cleaned → raw documents, the search attributes, the metric
 * lines as SageMaker's regexes read them, and cancellation stopping the training process.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { MongoClient } from 'mongodb';
import { checksumOf, type ArtifactRef } from '../../src/domain/artifacts';
import type { CleanedDocument } from '../../src/domain/documents';
import { cleanArticle } from '../../src/features/cleaning';
import { EMBEDDING_MODEL_ID } from '../../src/features/model-files';
import { ArtifactRegistry } from '../../src/infra/artifact-registry';
import { VectorStore } from '../../src/infra/qdrant';
import { chatTemplateChecksum } from '../../src/training/chat-template';
import { processGroupRunning } from '../../src/training/local';
import { metricDefinitions, parseJobLine } from '../../src/training/metrics';
import type { GenerateDatasetsInput, GenerateDatasetsResult } from '../../workflows/generate-datasets';
import type { ModelVersionRef, TrainModelInput } from '../../workflows/train-model';
import { goodPairs, goodTriples } from '../datasets/helpers';
import { shortestArticlesOf } from '../features/helpers';
import { isolatedEnv, runTwin } from '../support/cli';
import { testEnv, uniqueName } from '../support/env';
import { extractOf, reply, ScriptedLlmServer } from '../support/scripted-llm-server';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';
import { buildTinyBaseModel, JOB_DIR, localTrainingEnv } from './helpers';
import { TINY_MODEL_HYPERPARAMETERS } from '../../src/training/spec';

const database = uniqueName('training_e2e');
const prefix = `${uniqueName('tw')}_`;
const AUTHOR = 'Maxime Labonne';
const LLM_MODEL = 'scripted-twin-model';
const root = () => path.join(testEnv.tmpDir, database);
const FAST = TINY_MODEL_HYPERPARAMETERS;

describe('trainModel on the real dev server (local backend, tiny Llama)', () => {
  let client: Client;
  let mongo: MongoClient;
  let workers: WorkerProcess | undefined;
  let registry: ArtifactRegistry;
  let vectors: VectorStore | undefined;
  let llm: ScriptedLlmServer | undefined;
  let raw: ArtifactRef;
  let cleaned: ArtifactRef;
  let instruction: ArtifactRef;
  let instructionWorkflowId: string;
  let preferenceWorkflowId: string;
  let preference: ArtifactRef;
  let tinyBase: string;
  let sft: ModelVersionRef;

  before(async () => {
    client = new Client({ connection: await Connection.connect({ address: testEnv.temporalAddress }) });
    mongo = await MongoClient.connect(testEnv.mongoUri);
    registry = new ArtifactRegistry(mongo.db(database));

    // The feature pipeline's outputs: 2 short real articles of one author cleaned into this file's own Qdrant
    // collections, recorded as cleaned documents made from raw documents (what featureEngineering records).
    const docs: CleanedDocument[] = shortestArticlesOf(AUTHOR, 2).map(cleanArticle);
    assert.equal(docs.length, 2, 'the corpus has 2 articles of the author');
    vectors = new VectorStore({
      url: testEnv.qdrantUrl,
      collectionPrefix: prefix,
      embedding: { modelId: EMBEDDING_MODEL_ID, dimension: 384 },
    });
    await vectors.upsertCleaned('articles', docs);
    const producer = { workflowId: 'fixture', runId: 'fixture', activity: 'fixture', attempt: 1 };
    raw = await registry.record({
      kind: 'raw-documents',
      uri: 'mongodb:///twin/documents',
      count: docs.length,
      checksum: checksumOf('raw'),
      producer,
      inputs: [],
      metadata: {},
    });
    cleaned = await registry.record({
      kind: 'cleaned-documents',
      uri: `qdrant://test/${prefix}cleaned_articles`,
      count: docs.length,
      checksum: checksumOf('cleaned'),
      producer,
      inputs: [raw.id],
      metadata: { authors: AUTHOR },
    });

    // The scripted LLM: instruction pairs and preference triples whose `chosen` is a verbatim passage of the extract.
    llm = await new ScriptedLlmServer((request) =>
      request.body.response_format?.json_schema?.name === 'preference_samples'
        ? reply.json({ triples: goodTriples(extractOf(request)) })
        : reply.json({ pairs: goodPairs(extractOf(request)) }),
    ).start();

    workers = await startWorkerProcess(['pipelines', 'llm', 'ml'], {
      MONGODB_DATABASE: database,
      QDRANT_COLLECTION_PREFIX: prefix,
      OPENAI_BASE_URL: llm.url,
      OPENAI_API_KEY: 'dummy',
      LLM_MODEL,
      TWIN_WORKFLOW_BUNDLE: testEnv.workflowBundle ?? '',
      ...localTrainingEnv(root()),
    });

    // Both datasets made by the real generateDatasets workflow.
    const generate = async (type: 'instruction' | 'preference') => {
      const workflowId = uniqueName(`datasets-${type}`);
      const input: GenerateDatasetsInput = { type, authors: [AUTHOR], batchSize: 4, sourceArtifactIds: [cleaned.id] };
      const result = (await client.workflow
        .execute('generateDatasets', { taskQueue: 'twin-pipelines', workflowId, args: [input] })
        .catch((error: unknown) => {
          throw new Error(`${String(error)}\n${workers?.lines.slice(-40).join('\n')}`);
        })) as GenerateDatasetsResult;
      assert.equal(result.status, 'completed', JSON.stringify(result));
      const ref = await registry.get(result.dataset.artifactId);
      assert.ok(ref, `dataset artifact ${result.dataset.artifactId} registered`);
      process.stdout.write(
        `# ${type}: ${result.extraction.extracts} extracts, ${result.dataset.counts.train} train + ${result.dataset.counts.test} test\n`,
      );
      return { workflowId, ref };
    };
    const madeInstruction = await generate('instruction');
    const madePreference = await generate('preference');
    instruction = madeInstruction.ref;
    preference = madePreference.ref;
    instructionWorkflowId = madeInstruction.workflowId;
    preferenceWorkflowId = madePreference.workflowId;
    assert.ok(
      instruction.count >= 20 && preference.count >= 8,
      `datasets have rows to train on: ${instruction.count}, ${preference.count}`,
    );

    tinyBase = await buildTinyBaseModel(path.join(root(), 'tiny-base'));
  });

  after(async () => {
    await workers?.kill('SIGTERM');
    await vectors?.dropCollections().catch(() => undefined);
    await llm?.close();
    await mongo.db(database).dropDatabase();
    await mongo.close();
    await client.connection.close();
  });

  const start = (workflowId: string, input: TrainModelInput) =>
    client.workflow.start('trainModel', { taskQueue: 'twin-pipelines', workflowId, args: [input] });

  test('SFT: a model version with metrics, registry entry, ArtifactRef and search attributes', async () => {
    const workflowId = uniqueName('train-sft');
    const handle = await start(workflowId, {
      dataset: instruction.id,
      mode: 'sft',
      baseModel: `file://${tinyBase}`,
      backend: 'local',
      hyperparameters: FAST,
    });
    sft = (await handle.result().catch((error: unknown) => {
      throw new Error(`${String(error)}\n${workers?.lines.slice(-40).join('\n')}`);
    })) as ModelVersionRef;

    assert.equal(sft.mode, 'sft');
    assert.equal(sft.backend, 'local');
    assert.equal(sft.status, 'PendingManualApproval');
    assert.equal(sft.datasetArtifactId, instruction.id);
    assert.equal(sft.datasetVersion, instruction.metadata.version);
    assert.match(sft.modelVersion, /^twin-sft-train-sft-/);
    assert.equal(sft.artifactUri, `file://${path.join(root(), 'training', sft.jobName, 'model')}`);
    assert.ok(
      Number.isFinite(sft.metrics.train_loss) && Number.isFinite(sft.metrics.eval_loss),
      JSON.stringify(sft.metrics),
    );
    assert.equal(sft.metrics.train_samples, Number(instruction.metadata.train));
    assert.equal(sft.artifact.kind, 'model');
    assert.deepEqual(sft.artifact.inputs, [instruction.id]);
    assert.equal(sft.artifact.producer.workflowId, workflowId);

    const modelDir = path.join(root(), 'training', sft.jobName, 'model');
    for (const file of ['config.json', 'model.safetensors', 'tokenizer.json', 'twin_training.json'])
      assert.ok(existsSync(path.join(modelDir, file)), file);
    const savedTemplate = existsSync(path.join(modelDir, 'chat_template.jinja'))
      ? readFileSync(path.join(modelDir, 'chat_template.jinja'), 'utf8')
      : String(
          (JSON.parse(readFileSync(path.join(modelDir, 'tokenizer_config.json'), 'utf8')) as { chat_template?: string })
            .chat_template,
        );
    assert.equal(
      savedTemplate,
      readFileSync(path.join(JOB_DIR, 'chat_template.jinja'), 'utf8'),
      'the model carries the serving template',
    );

    const doc = await mongo
      .db(database)
      .collection('models')
      .findOne({ _id: sft.modelVersion as never });
    assert.ok(doc);
    assert.equal(doc.jobName, sft.jobName);
    assert.equal(doc.baseModel, `file://${tinyBase}`);
    assert.equal(doc.chatTemplateChecksum, chatTemplateChecksum());
    assert.equal((doc.hyperparameters as Record<string, unknown>).lora_r, 32);
    assert.equal((doc.hyperparameters as Record<string, unknown>).max_length, 256);
    assert.equal(doc.workflowId, workflowId);

    const description = await handle.describe();
    assert.deepEqual(description.searchAttributes.TwinPipeline, ['trainModel']);
    assert.deepEqual(description.searchAttributes.TwinModelVersion, [sft.modelVersion]);
    assert.deepEqual(description.searchAttributes.TwinDatasetVersion, [String(instruction.metadata.version)]);
    assert.deepEqual(description.searchAttributes.TwinStatus, ['completed']);
    const history = await handle.fetchHistory();
    const scheduled = (history.events ?? []).flatMap((e) =>
      e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes] : [],
    );
    assert.deepEqual(
      scheduled.map((a) => a.activityType?.name),
      ['prepareTrainingJob', 'startTrainingJob', 'waitForTrainingJob', 'registerModelVersion'],
    );
    assert.ok(scheduled.every((a) => a.taskQueue?.name === 'twin-ml'));

    // What SageMaker's metric regexes would read from this job's log equals what the TypeScript parser reads.
    const log = readFileSync(path.join(root(), 'training', sft.jobName, 'train.log'), 'utf8').split('\n');
    let matched = 0;
    for (const definition of metricDefinitions()) {
      const regex = new RegExp(definition.Regex);
      const byRegex = log.flatMap((line) => {
        const m = regex.exec(line);
        return m?.[1] ? [Number(m[1])] : [];
      });
      const byParser = log.flatMap((line) => {
        const parsed = parseJobLine(line);
        return parsed?.kind === 'metric' && parsed.point.metric === definition.Name ? [parsed.point.value] : [];
      });
      assert.deepEqual(byRegex, byParser, definition.Name);
      if (byRegex.length > 0) matched += 1;
    }
    assert.ok(matched >= 6, `regexes matched ${matched} metrics in the real log`);
  });

  test('DPO on top of the SFT model version; lineage runs back to the raw documents', async () => {
    assert.ok(sft, 'the SFT test ran first');
    const workflowId = uniqueName('train-dpo');
    const handle = await start(workflowId, {
      dataset: preference.id,
      mode: 'dpo',
      baseModel: { modelVersion: sft.modelVersion },
      backend: 'local',
      hyperparameters: FAST,
    });
    const dpo = (await handle.result().catch((error: unknown) => {
      throw new Error(`${String(error)}\n${workers?.lines.slice(-40).join('\n')}`);
    })) as ModelVersionRef;
    assert.equal(dpo.mode, 'dpo');
    assert.equal(dpo.baseModelVersion, sft.modelVersion);
    assert.deepEqual(dpo.artifact.inputs, [preference.id, sft.artifact.id]);
    for (const name of ['train_loss', 'rewards_chosen', 'rewards_rejected', 'rewards_margins', 'rewards_accuracies']) {
      assert.ok(Number.isFinite(dpo.metrics[name]), `${name}: ${JSON.stringify(dpo.metrics)}`);
    }
    const doc = await mongo
      .db(database)
      .collection('models')
      .findOne({ _id: dpo.modelVersion as never });
    assert.equal(doc?.baseModel, sft.artifactUri, 'DPO started from the SFT model files');
    assert.equal((doc?.hyperparameters as Record<string, unknown>).beta, 0.5);

    const lineage = await registry.lineage(dpo.artifact.id);
    const ids = lineage.map((l) => `${l.depth}:${l.artifact.kind}`);
    assert.deepEqual(ids, [
      '0:model',
      '1:preference-dataset',
      '2:cleaned-documents',
      '3:raw-documents',
      '1:model',
      '2:instruction-dataset',
    ]);
    // (the SFT model's dataset leads to the same cleaned/raw documents, listed once)
    assert.deepEqual(
      lineage.filter((l) => l.artifact.kind !== 'model').map((l) => l.artifact.id),
      [preference.id, cleaned.id, raw.id, instruction.id],
    );
    // Each dataset was made by its generateDatasets run, from the cleaned documents.
    for (const [dataset, workflowId] of [
      [preference, preferenceWorkflowId],
      [instruction, instructionWorkflowId],
    ] as const) {
      const entry = lineage.find((l) => l.artifact.id === dataset.id);
      assert.equal(entry?.artifact.producer.workflowId, workflowId);
      assert.equal(entry?.artifact.producer.activity, 'buildDatasetVersion');
      assert.deepEqual(entry?.artifact.inputs, [cleaned.id]);
    }
    const description = await client.workflow.getHandle(preferenceWorkflowId).describe();
    assert.deepEqual(description.searchAttributes.TwinPipeline, ['generateDatasets']);

    const env = isolatedEnv({ MONGODB_URI: testEnv.mongoUri, MONGODB_DATABASE: database });
    const list = await runTwin(['models', 'list'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`${dpo.modelVersion}\\s+dpo\\s+local`));
    assert.match(list.stdout, new RegExp(`${sft.modelVersion}\\s+sft\\s+local`));
    const show = await runTwin(['models', 'show', dpo.modelVersion], env);
    assert.equal(show.code, 0, show.stderr);
    assert.match(
      show.stdout,
      new RegExp(
        `base model\\s+${sft.artifactUri.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(model version ${sft.modelVersion}\\)`,
      ),
    );
    assert.match(show.stdout, /beta\s+0\.5/);
    assert.match(show.stdout, /← preference-dataset:\S+ \(preference-dataset/);
    assert.match(show.stdout, /← raw-documents:\S+ \(raw-documents, 2\)/);
    const missing = await runTwin(['models', 'show', 'no-such-version'], env);
    assert.equal(missing.code, 1);
  });

  test('cancelling the workflow stops the training process and registers nothing', async () => {
    const workflowId = uniqueName('train-cancel');
    const handle = await start(workflowId, {
      dataset: instruction.id,
      mode: 'sft',
      baseModel: `file://${tinyBase}`,
      backend: 'local',
      hyperparameters: { ...FAST, num_train_epochs: 500 },
    });
    // Wait until the wait activity heartbeats that the job is training.
    let details: Record<string, unknown> | undefined;
    const deadline = Date.now() + 180_000;
    while (Date.now() < deadline) {
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      const wait = pending.find((a) => a.activityType?.name === 'waitForTrainingJob');
      const payload = wait?.heartbeatDetails?.payloads?.[0]?.data;
      if (payload) {
        details = JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>;
        if (details.secondaryStatus === 'Training' && details.latestMetric) break;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(details?.status, 'InProgress', JSON.stringify(details));
    assert.equal(details?.secondaryStatus, 'Training');
    assert.match(String(details?.latestMetric), /^\w+=[-0-9.e]+/);

    const jobName = String((await handle.describe()).searchAttributes.TwinModelVersion?.[0]);
    const jobDir = path.join(root(), 'training', jobName);
    const pgid = Number(readFileSync(path.join(jobDir, 'pid'), 'utf8'));
    assert.ok(processGroupRunning(pgid), 'the job is running');

    await handle.cancel();
    await assert.rejects(
      handle.result(),
      (error: unknown) => error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure,
    );
    assert.ok(existsSync(path.join(jobDir, 'stop_requested')), 'stop was requested');
    assert.equal(
      processGroupRunning(pgid),
      false,
      'no process of the training process group runs (zombies not reaped by PID 1 aside)',
    );
    assert.ok(!existsSync(path.join(jobDir, 'exit_code')), 'it was killed, it did not finish');
    const description = await handle.describe();
    assert.equal(description.status.name, 'CANCELLED');
    assert.deepEqual(description.searchAttributes.TwinStatus, ['cancelled']);
    assert.equal(
      await mongo
        .db(database)
        .collection('models')
        .countDocuments({ _id: jobName as never }),
      0,
    );
    const history = await handle.fetchHistory();
    const names = (history.events ?? []).flatMap((e) =>
      e.activityTaskScheduledEventAttributes?.activityType?.name
        ? [e.activityTaskScheduledEventAttributes.activityType.name]
        : [],
    );
    assert.deepEqual(names, ['prepareTrainingJob', 'startTrainingJob', 'waitForTrainingJob', 'stopTrainingJob']);
  });
});
