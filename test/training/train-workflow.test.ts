/**
 * trainModel on the real Temporal dev server with real worker processes and the local backend: datasets written and
 * registered by the dataset library (src/datasets), a tiny random Llama trained with SFT, then DPO on top of the SFT
 * model version; the registry entries, the lineage back to the raw documents, the search attributes, the metric
 * lines as SageMaker's regexes read them, and cancellation stopping the training process.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { MongoClient } from 'mongodb';
import { DEFAULT_GENERATOR_PARAMS, buildDataset, registerDataset, writeDataset, type ExtractAnswer } from '../../src/datasets';
import { checksumOf, type ArtifactRef } from '../../src/domain/artifacts';
import { ArtifactRegistry } from '../../src/infra/artifact-registry';
import { LocalArtifactStore } from '../../src/infra/artifact-store';
import { chatTemplateChecksum } from '../../src/training/chat-template';
import { processGroupRunning } from '../../src/training/local';
import { metricDefinitions, parseJobLine } from '../../src/training/metrics';
import type { ModelVersionRef, TrainModelInput } from '../../workflows/train-model';
import { isolatedEnv, runTwin } from '../support/cli';
import { testEnv, uniqueName } from '../support/env';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';
import { fixtureVersion, FIXTURES, JOB_DIR, run, trainingPython } from './helpers';

const database = uniqueName('training_e2e');
const root = () => path.join(testEnv.tmpDir, database);
const FAST = {
  num_train_epochs: 1,
  per_device_train_batch_size: 4,
  gradient_accumulation_steps: 1,
  max_length: 256,
  gradient_checkpointing: false,
  warmup_steps: 0,
  learning_rate: 0.001,
};

function readJsonl<T>(file: string): T[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as T);
}

/** LLM answers as the dataset generator stores them, made from the fixture rows (5 items per extract). */
function answersFrom(type: 'instruction' | 'preference'): ExtractAnswer[] {
  const folder = fixtureVersion(type);
  const rows = [...readJsonl<Record<string, string>>(path.join(folder, 'train.jsonl')), ...readJsonl<Record<string, string>>(path.join(folder, 'test.jsonl'))];
  const answers: ExtractAnswer[] = [];
  for (let i = 0; i < rows.length; i += 5) {
    const chunk = rows.slice(i, i + 5);
    const items =
      type === 'instruction'
        ? chunk.map((r) => ({ instruction: r.instruction!, answer: r.output! }))
        : chunk.map((r) => ({ instruction: r.prompt!, chosen: r.chosen!, rejected: r.rejected! }));
    answers.push({
      extract_id: `${type}-extract-${i / 5}`,
      document_id: `doc-${i / 5}`,
      category: 'articles',
      extract_text: chunk.map((r) => r.output ?? r.chosen).join(' '),
      truncated: false,
      type,
      prompt_version: 'fixture-v1',
      model: 'fixture-llm',
      status: 'answered',
      items,
      invalid_items: 0,
      invalid_reasons: {},
      requested: 5,
      attempts: 1,
      http_attempts: 1,
      input_tokens: 100,
      output_tokens: 100,
    });
  }
  return answers;
}

describe('trainModel on the real dev server (local backend, tiny Llama)', () => {
  let client: Client;
  let mongo: MongoClient;
  let workers: WorkerProcess | undefined;
  let registry: ArtifactRegistry;
  let raw: ArtifactRef;
  let instruction: ArtifactRef;
  let preference: ArtifactRef;
  let tinyBase: string;
  let sft: ModelVersionRef;

  before(async () => {
    client = new Client({ connection: await Connection.connect({ address: testEnv.temporalAddress }) });
    mongo = await MongoClient.connect(testEnv.mongoUri);
    registry = new ArtifactRegistry(mongo.db(database));

    // The feature pipeline's outputs, then datasets written and registered by the dataset library.
    const producer = { workflowId: 'fixture', runId: 'fixture', activity: 'fixture', attempt: 1 };
    raw = await registry.record({ kind: 'raw-documents', uri: 'mongodb:///twin/documents', count: 9, checksum: checksumOf('raw'), producer, inputs: [], metadata: {} });
    const cleaned = await registry.record({
      kind: 'cleaned-documents',
      uri: 'qdrant:///cleaned_articles',
      count: 9,
      checksum: checksumOf('cleaned'),
      producer,
      inputs: [raw.id],
      metadata: {},
    });
    const store = new LocalArtifactStore(path.join(root(), 'artifacts'));
    const register = async (type: 'instruction' | 'preference') => {
      const built = buildDataset(type, answersFrom(type));
      const written = await writeDataset(store, built, { sources: [cleaned.id], generator: DEFAULT_GENERATOR_PARAMS });
      return registerDataset(registry, written, { ...producer, workflowId: `generateDatasets-${type}` });
    };
    instruction = await register('instruction');
    preference = await register('preference');
    assert.ok(instruction.count >= 20 && preference.count >= 8, `datasets kept the fixture rows: ${instruction.count}, ${preference.count}`);

    tinyBase = path.join(root(), 'tiny-base');
    const built = await run(trainingPython(), [
      path.join(JOB_DIR, 'tests', 'tiny_model.py'),
      '--out',
      tinyBase,
      path.join(fixtureVersion('instruction'), 'train.jsonl'),
      path.join(fixtureVersion('preference'), 'train.jsonl'),
      path.join(FIXTURES, 'general', 'alpaca-sample.jsonl'),
    ]);
    assert.equal(built.code, 0, built.stderr);

    workers = await startWorkerProcess(['pipelines', 'ml'], {
      MONGODB_DATABASE: database,
      TWIN_WORKFLOW_BUNDLE: testEnv.workflowBundle ?? '',
      ARTIFACT_DIR: path.join(root(), 'artifacts'),
      TRAINING_DIR: path.join(root(), 'training'),
      TRAINING_BACKEND: 'local',
      TRAINING_PYTHON: trainingPython(),
    });
  });

  after(async () => {
    await workers?.kill('SIGTERM');
    await mongo.db(database).dropDatabase();
    await mongo.close();
    await client.connection.close();
  });

  const start = (workflowId: string, input: TrainModelInput) =>
    client.workflow.start('trainModel', { taskQueue: 'twin-pipelines', workflowId, args: [input] });

  test('SFT: a model version with metrics, registry entry, ArtifactRef and search attributes', async () => {
    const workflowId = uniqueName('train-sft');
    const handle = await start(workflowId, { dataset: instruction.id, mode: 'sft', baseModel: `file://${tinyBase}`, backend: 'local', hyperparameters: FAST });
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
    assert.ok(Number.isFinite(sft.metrics.train_loss) && Number.isFinite(sft.metrics.eval_loss), JSON.stringify(sft.metrics));
    assert.equal(sft.metrics.train_samples, Number(instruction.metadata.train));
    assert.equal(sft.artifact.kind, 'model');
    assert.deepEqual(sft.artifact.inputs, [instruction.id]);
    assert.equal(sft.artifact.producer.workflowId, workflowId);

    const modelDir = path.join(root(), 'training', sft.jobName, 'model');
    for (const file of ['config.json', 'model.safetensors', 'tokenizer.json', 'twin_training.json']) assert.ok(existsSync(path.join(modelDir, file)), file);
    const savedTemplate = existsSync(path.join(modelDir, 'chat_template.jinja'))
      ? readFileSync(path.join(modelDir, 'chat_template.jinja'), 'utf8')
      : String((JSON.parse(readFileSync(path.join(modelDir, 'tokenizer_config.json'), 'utf8')) as { chat_template?: string }).chat_template);
    assert.equal(savedTemplate, readFileSync(path.join(JOB_DIR, 'chat_template.jinja'), 'utf8'), 'the model carries the serving template');

    const doc = await mongo.db(database).collection('models').findOne({ _id: sft.modelVersion as never });
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
    const scheduled = (history.events ?? []).flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes] : []));
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
    const doc = await mongo.db(database).collection('models').findOne({ _id: dpo.modelVersion as never });
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
    assert.ok(lineage.some((l) => l.artifact.id === raw.id));

    const env = isolatedEnv({ MONGODB_URI: testEnv.mongoUri, MONGODB_DATABASE: database });
    const list = await runTwin(['models', 'list'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`${dpo.modelVersion}\\s+dpo\\s+local`));
    assert.match(list.stdout, new RegExp(`${sft.modelVersion}\\s+sft\\s+local`));
    const show = await runTwin(['models', 'show', dpo.modelVersion], env);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, new RegExp(`base model\\s+${sft.artifactUri.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(model version ${sft.modelVersion}\\)`));
    assert.match(show.stdout, /beta\s+0\.5/);
    assert.match(show.stdout, /← preference-dataset:\S+ \(preference-dataset/);
    assert.match(show.stdout, /← raw-documents:\S+ \(raw-documents, 9\)/);
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
    await assert.rejects(handle.result(), (error: unknown) => error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure);
    assert.ok(existsSync(path.join(jobDir, 'stop_requested')), 'stop was requested');
    assert.equal(processGroupRunning(pgid), false, 'no process of the training process group runs (zombies not reaped by PID 1 aside)');
    assert.ok(!existsSync(path.join(jobDir, 'exit_code')), 'it was killed, it did not finish');
    const description = await handle.describe();
    assert.equal(description.status.name, 'CANCELLED');
    assert.deepEqual(description.searchAttributes.TwinStatus, ['cancelled']);
    assert.equal(await mongo.db(database).collection('models').countDocuments({ _id: jobName as never }), 0);
    const history = await handle.fetchHistory();
    const names = (history.events ?? []).flatMap((e) => (e.activityTaskScheduledEventAttributes?.activityType?.name ? [e.activityTaskScheduledEventAttributes.activityType.name] : []));
    assert.deepEqual(names, ['prepareTrainingJob', 'startTrainingJob', 'waitForTrainingJob', 'stopTrainingJob']);
  });
});
