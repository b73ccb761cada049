/**
 * endToEnd on the real Temporal dev server with real worker processes and every local backend: links served by a
 * local web server (the ETL fixture pages), the real featureEngineering (all-MiniLM-L6-v2, Qdrant stand-in), the real
 * generateDatasets against a scripted OpenAI-compatible server (which is also the judge), a tiny random Llama trained
 * with SFT then DPO by the local backend, the real evaluateModel (answers by jobs/evaluate/generate.py) and the real
 * deployModel to a local OpenAI-compatible server.
 *
 * Asserted: the child workflows and their ids, artifacts and the gate decision in the run's history; the approval
 * Update (validator refusals, approval, duplicate answer); the gate blocking a failing model (no deploy child,
 * endpoint unchanged); the timeout policy; cancellation of the parent cancelling the training child (which stops the
 * training process); continuousTraining skipping when nothing is newer and training when a newer dataset exists.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  Client,
  Connection,
  WorkflowFailedError,
  WorkflowUpdateFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { MongoClient, type Db } from 'mongodb';
import { checksumOf } from '../../src/domain/artifacts';
import { ArtifactRegistry } from '../../src/infra/artifact-registry';
import { processGroupRunning } from '../../src/training/local';
import type { ContinuousTrainingInput, ContinuousTrainingResult } from '../../workflows/continuous-training';
import type { ApprovalOutcome, EndToEndInput, EndToEndResult, PipelineProgress } from '../../workflows/end-to-end';
import { goodPairs, goodTriples } from '../datasets/helpers';
import { startFixtureServer, type FixtureServer } from '../etl/fixture-server';
import { isolatedNamespace } from '../serving/helpers';
import { testEnv, uniqueName } from '../support/env';
import { extractOf, reply, ScriptedLlmServer } from '../support/scripted-llm-server';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';
import { buildTinyBaseModel, localTrainingEnv } from '../training/helpers';
import { TINY_MODEL_HYPERPARAMETERS } from '../../src/training/spec';

const database = uniqueName('e2e');
const prefix = `${uniqueName('e2e')}_`;
const AUTHOR = 'Ada Lovelace';
const ENDPOINT = uniqueName('e2e-twin').replace(/_/g, '-');
const root = () => path.join(testEnv.tmpDir, database);
const FAST = TINY_MODEL_HYPERPARAMETERS;

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

async function historyOf(handle: WorkflowHandle): Promise<HistoryEvent[]> {
  return (await handle.fetchHistory()).events ?? [];
}

function childStarts(events: HistoryEvent[]): { type: string; id: string; parentClosePolicy: unknown }[] {
  return events.flatMap((e) => {
    const a = e.startChildWorkflowExecutionInitiatedEventAttributes;
    return a
      ? [{ type: a.workflowType?.name ?? '', id: a.workflowId ?? '', parentClosePolicy: a.parentClosePolicy }]
      : [];
  });
}

describe('endToEnd on the real dev server (local backends, tiny Llama)', () => {
  let client: Client;
  let mongo: MongoClient;
  let db: Db;
  let site: FixtureServer;
  let llm: ScriptedLlmServer;
  let workers: WorkerProcess | undefined;
  let namespace: string;
  let tinyBase: string;
  /** what the scripted judge answers: 3 passes the gate (thresholds 2), 1 fails it */
  let judgeScore = 3;
  let links: string[];
  let deployed: EndToEndResult;
  const started = new Map<string, number>();

  const input = (extra: Partial<EndToEndInput> = {}): EndToEndInput => ({
    authors: [{ name: AUTHOR, links }],
    baseModel: `file://${tinyBase}`,
    trainingBackend: 'local',
    hyperparameters: { sft: FAST, dpo: FAST },
    datasets: { batchSize: 4 },
    evaluation: { maxSamples: 4, rag: false, thresholds: { accuracy: 2, style: 2 } },
    deployment: { backend: 'local', endpointName: ENDPOINT },
    ...extra,
  });

  const start = async (name: string, e2e: EndToEndInput) => {
    const workflowId = uniqueName(name);
    started.set(workflowId, Date.now());
    return client.workflow.start('endToEnd', { taskQueue: 'twin-pipelines', workflowId, args: [e2e] });
  };

  const resultOf = async <T>(handle: WorkflowHandle): Promise<T> => {
    const result = (await handle.result().catch((error: unknown) => {
      throw new Error(
        `${String(error)}: ${String((error as { cause?: unknown }).cause)}\n${workers?.lines.slice(-40).join('\n')}`,
      );
    })) as T;
    const t0 = started.get(handle.workflowId);
    if (t0) process.stdout.write(`# ${handle.workflowId}: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    return result;
  };

  const waitFor = async (handle: WorkflowHandle, ready: (p: PipelineProgress) => boolean, timeoutMs = 900_000) => {
    const deadline = Date.now() + timeoutMs;
    let last: PipelineProgress | undefined;
    while (Date.now() < deadline) {
      last = await handle.query<PipelineProgress>('progress');
      if (ready(last)) return last;
      if (last.status === 'failed') break;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`progress never got there: ${JSON.stringify(last)}\n${workers?.lines.slice(-30).join('\n')}`);
  };

  before(async () => {
    namespace = await isolatedNamespace('e2e');
    client = new Client({ connection: await Connection.connect({ address: testEnv.temporalAddress }), namespace });
    mongo = await MongoClient.connect(testEnv.mongoUri);
    db = mongo.db(database);
    site = await startFixtureServer();
    links = [
      `${site.url}/medium/building-durable-pipelines`,
      `${site.url}/p/notes-on-fine-tuning-small-models`,
      `${site.url}/blog/parsing-logs-with-python-generators`,
    ];
    llm = await new ScriptedLlmServer((request) => {
      const schema = request.body.response_format?.json_schema?.name;
      if (schema === 'judgement') {
        return reply.json({
          accuracy: { analysis: 'Scripted verdict.', score: judgeScore },
          style: { analysis: 'Scripted verdict.', score: judgeScore },
        });
      }
      if (schema === 'preference_samples') return reply.json({ triples: goodTriples(extractOf(request)) });
      return reply.json({ pairs: goodPairs(extractOf(request)) });
    }).start();

    tinyBase = await buildTinyBaseModel(path.join(root(), 'tiny-base'));

    workers = await startWorkerProcess(['pipelines', 'etl', 'features', 'llm', 'ml'], {
      TEMPORAL_NAMESPACE: namespace,
      MONGODB_DATABASE: database,
      QDRANT_COLLECTION_PREFIX: prefix,
      TWIN_WORKFLOW_BUNDLE: testEnv.workflowBundle ?? '',
      ETL_SSRF_ALLOW: '127.0.0.1',
      ETL_POLITENESS: 'false',
      OPENAI_BASE_URL: llm.url,
      OPENAI_API_KEY: 'dummy',
      LLM_MODEL: 'scripted-twin-model',
      ...localTrainingEnv(root()),
      EVAL_DIR: path.join(root(), 'evaluation'),
      SERVING_DIR: path.join(root(), 'serving'),
      SERVING_DEVICE: 'cpu',
    });
  });

  after(async () => {
    await workers?.kill('SIGTERM');
    // Local model servers deployModel started (detached process groups): stop them.
    const servingDir = path.join(root(), 'serving');
    const walk = (dir: string): string[] =>
      existsSync(dir)
        ? readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
            d.isDirectory() ? walk(path.join(dir, d.name)) : d.name === 'server.json' ? [path.join(dir, d.name)] : [],
          )
        : [];
    for (const file of walk(servingDir)) {
      const { pid } = JSON.parse(readFileSync(file, 'utf8')) as { pid: number };
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    await site.close();
    await llm.close();
    await db.dropDatabase();
    await mongo.close();
    await client.connection.close();
  });

  test('ETL → features → datasets → SFT → DPO → evaluation → approval (Update) → deploy, all visible in the history', async () => {
    judgeScore = 3;
    const handle = await start(
      'e2e-approve',
      input({ approval: { required: true, timeout: '30 minutes', onTimeout: 'reject' } }),
    );
    const id = handle.workflowId;

    // Nobody may approve before the run waits for it.
    await assert.rejects(
      handle.executeUpdate('approveDeployment', { args: [{ approved: true, reviewer: 'early bird' }] }),
      (error: unknown) =>
        error instanceof WorkflowUpdateFailedError && /not waiting for approval/.test(String(error.cause?.message)),
    );
    const waiting = await waitFor(handle, (p) => p.status === 'awaiting-approval');
    assert.equal(waiting.stage, 'approval');
    assert.equal(waiting.gate?.passed, true);
    for (const stage of ['etl', 'features', 'datasets', 'sft', 'dpo', 'evaluation'] as const)
      assert.equal(waiting.stages[stage].status, 'completed', stage);
    assert.equal(waiting.stages.deployment.status, 'pending');
    assert.deepEqual((await handle.describe()).searchAttributes.TwinStatus, ['awaiting-approval']);

    await assert.rejects(
      handle.executeUpdate('approveDeployment', { args: [{ approved: true, reviewer: '  ' }] }),
      (error: unknown) =>
        error instanceof WorkflowUpdateFailedError && /reviewer must not be empty/.test(String(error.cause?.message)),
    );
    const outcome = await handle.executeUpdate<
      ApprovalOutcome,
      [{ approved: boolean; reviewer: string; comment: string }]
    >('approveDeployment', {
      args: [{ approved: true, reviewer: 'grace', comment: 'scores look fine' }],
    });
    assert.deepEqual(outcome, { approved: true, by: 'reviewer', reviewer: 'grace', comment: 'scores look fine' });
    await assert.rejects(
      handle.executeUpdate('approveDeployment', { args: [{ approved: false, reviewer: 'mallory' }] }),
      (error: unknown) =>
        error instanceof WorkflowUpdateFailedError &&
        /already answered: approved by grace/.test(String(error.cause?.message)),
    );

    deployed = await resultOf<EndToEndResult>(handle);
    assert.equal(deployed.status, 'deployed', deployed.reason);
    assert.equal(deployed.etl.length, 1);
    assert.equal(deployed.etl[0]?.stored, 3);
    assert.ok(deployed.etl[0]?.artifact?.startsWith('raw-documents:'));
    assert.ok(deployed.features.cleaned?.startsWith('cleaned-documents:'));
    assert.ok(deployed.datasets.instruction.artifactId.startsWith('instruction-dataset:'));
    assert.ok(deployed.datasets.preference?.artifactId.startsWith('preference-dataset:'));
    assert.ok(deployed.models.sft && deployed.models.dpo);
    assert.equal(deployed.models.final, deployed.models.dpo.modelVersion);
    assert.equal(deployed.gate.passed, true);
    assert.equal(deployed.gate.model, deployed.models.dpo.modelVersion);
    assert.equal(deployed.gate.scores.accuracy, 3);
    assert.ok(deployed.gate.report.startsWith('evaluation-report:'));
    assert.equal(deployed.approval?.reviewer, 'grace');
    assert.equal(deployed.deployment?.endpointName, ENDPOINT);
    assert.equal(deployed.deployment?.modelVersion, deployed.models.final);
    assert.equal(deployed.deployment?.smokeTest.ok, true);

    // Children, in order, with ids derived from the parent and cancel-on-close.
    const events = await historyOf(handle);
    const children = childStarts(events);
    assert.deepEqual(
      children.map((c) => c.type),
      [
        'digitalDataEtl',
        'featureEngineering',
        'generateDatasets',
        'generateDatasets',
        'trainModel',
        'trainModel',
        'evaluateModel',
        'deployModel',
      ],
    );
    assert.deepEqual(
      children.map((c) => c.id),
      [
        'etl-ada-lovelace',
        'features',
        'datasets-instruction',
        'datasets-preference',
        'train-sft',
        'train-dpo',
        'evaluate',
        'deploy',
      ].map((s) => `${id}/${s}`),
    );
    assert.ok(
      children.every((c) => c.parentClosePolicy === 3),
      'PARENT_CLOSE_POLICY_REQUEST_CANCEL',
    );
    assert.equal(events.filter((e) => e.childWorkflowExecutionCompletedEventAttributes).length, 8);
    // The gate decision and the approval are in the history: the evaluateModel child's result and the Update.
    const evalDone = events.find(
      (e) => e.childWorkflowExecutionCompletedEventAttributes?.workflowType?.name === 'evaluateModel',
    )?.childWorkflowExecutionCompletedEventAttributes;
    const evalResult = JSON.parse(Buffer.from(evalDone?.result?.payloads?.[0]?.data ?? []).toString('utf8')) as {
      passed: boolean;
    };
    assert.equal(evalResult.passed, true);
    assert.equal(
      events.filter((e) => e.workflowExecutionUpdateCompletedEventAttributes).length,
      1,
      'one accepted Update (the refused ones leave no event)',
    );
    const final = events.find(
      (e) => e.workflowExecutionCompletedEventAttributes,
    )?.workflowExecutionCompletedEventAttributes;
    const resultInHistory = JSON.parse(
      Buffer.from(final?.result?.payloads?.[0]?.data ?? []).toString('utf8'),
    ) as EndToEndResult;
    assert.equal(resultInHistory.gate.passed, true);
    assert.ok(JSON.stringify(resultInHistory).length < 16_000, 'the result stays small');

    const description = await handle.describe();
    assert.deepEqual(description.searchAttributes.TwinPipeline, ['endToEnd']);
    assert.deepEqual(description.searchAttributes.TwinAuthor, [AUTHOR]);
    assert.deepEqual(description.searchAttributes.TwinStatus, ['deployed']);
    assert.deepEqual(description.searchAttributes.TwinDatasetVersion, [deployed.datasets.instruction.version]);
    assert.deepEqual(description.searchAttributes.TwinModelVersion, [deployed.models.final]);
    const progress = await handle.query<PipelineProgress>('progress');
    assert.equal(progress.status, 'deployed');
    assert.deepEqual(progress.stages.deployment.artifacts, [ENDPOINT]);

    // The registry, the endpoint and the lineage agree.
    const model = await db.collection('models').findOne({ _id: deployed.models.final as never });
    assert.equal(model?.status, 'Approved');
    const endpoint = await db.collection('endpoints').findOne({ _id: ENDPOINT as never });
    assert.equal(endpoint?.modelVersion, deployed.models.final);
    assert.equal(endpoint?.status, 'InService');
    const lineage = await new ArtifactRegistry(db).lineage(deployed.models.dpo.artifactId);
    assert.deepEqual([...new Set(lineage.map((l) => l.artifact.kind))].sort(), [
      'cleaned-documents',
      'instruction-dataset',
      'model',
      'preference-dataset',
      'raw-documents',
    ]);
    // The deployed model answers on its OpenAI-compatible endpoint.
    const models = await fetch(`${deployed.deployment?.url}/models`);
    assert.equal(models.status, 200);
  });

  test('the gate blocks a failing model: ends rejected, no deploy child, the endpoint keeps serving the previous model', async () => {
    assert.ok(deployed, 'the first test deployed a model');
    judgeScore = 1;
    const before = await db.collection('endpoints').findOne({ _id: ENDPOINT as never });
    const handle = await start('e2e-gate', input({ skipDpo: true }));
    const result = await resultOf<EndToEndResult>(handle);
    judgeScore = 3;
    assert.equal(result.status, 'rejected');
    assert.equal(result.gate.passed, false);
    assert.equal(result.gate.scores.accuracy, 1);
    assert.ok(
      result.gate.reasons.some((r) => /accuracy/.test(r)),
      result.gate.reasons.join('; '),
    );
    assert.equal(result.deployment, null);
    assert.equal(result.models.dpo, undefined);
    assert.match(result.reason, /^gate failed: /);

    const children = childStarts(await historyOf(handle));
    assert.deepEqual(
      children.map((c) => c.type),
      ['digitalDataEtl', 'featureEngineering', 'generateDatasets', 'trainModel', 'evaluateModel'],
    );
    const after = await db.collection('endpoints').findOne({ _id: ENDPOINT as never });
    assert.equal(after?.modelVersion, deployed.models.final);
    assert.deepEqual(after?.history, before?.history, 'the endpoint was not touched');
    const model = await db.collection('models').findOne({ _id: result.models.final as never });
    assert.equal(model?.status, 'Rejected');
    const description = await handle.describe();
    assert.deepEqual(description.searchAttributes.TwinStatus, ['rejected']);
    // The same data again: the ETL stored nothing new and the dataset version is the same one.
    assert.equal(result.datasets.instruction.artifactId, deployed.datasets.instruction.artifactId);
  });

  test('nobody answers the approval: the timeout policy rejects, nothing is deployed', async () => {
    const handle = await start(
      'e2e-timeout',
      input({ skipDpo: true, approval: { required: true, timeout: '2 seconds', onTimeout: 'reject' } }),
    );
    const result = await resultOf<EndToEndResult>(handle);
    assert.equal(result.status, 'rejected');
    assert.equal(result.gate.passed, true);
    assert.deepEqual(result.approval, { approved: false, by: 'timeout-policy' });
    assert.equal(result.deployment, null);
    assert.match(result.reason, /timeout policy/);
    assert.ok(!childStarts(await historyOf(handle)).some((c) => c.type === 'deployModel'));
    const model = await db.collection('models').findOne({ _id: result.models.final as never });
    assert.equal(model?.status, 'Rejected');
    const endpoint = await db.collection('endpoints').findOne({ _id: ENDPOINT as never });
    assert.equal(endpoint?.modelVersion, deployed.models.final);
  });

  test('cancelling the parent cancels the training child, which stops the training process', async () => {
    // Far more epochs than the test waits for (500 took 38 s on an idle 2-core machine, which raced the old 60 s
    // heartbeat flush): the job must still be training when the parent is cancelled.
    const handle = await start(
      'e2e-cancel',
      input({ skipDpo: true, hyperparameters: { sft: { ...FAST, num_train_epochs: 20_000 } } }),
    );
    try {
      await waitFor(handle, (p) => p.stage === 'sft');
      const child = client.workflow.getHandle(`${handle.workflowId}/train-sft`);
      // Wait until the training process runs (the wait activity heartbeats its phase).
      const deadline = Date.now() + 300_000;
      let jobName: string | undefined;
      while (Date.now() < deadline) {
        const description = await child.describe().catch(() => undefined);
        const wait = description?.raw.pendingActivities?.find((a) => a.activityType?.name === 'waitForTrainingJob');
        const payload = wait?.heartbeatDetails?.payloads?.[0]?.data;
        if (
          payload &&
          (JSON.parse(Buffer.from(payload).toString('utf8')) as { secondaryStatus?: string }).secondaryStatus ===
            'Training'
        ) {
          jobName = description?.searchAttributes.TwinModelVersion?.[0] as string | undefined;
          break;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
      assert.ok(jobName, 'the SFT job is training');
      const jobDir = path.join(root(), 'training', jobName);
      const pgid = Number(readFileSync(path.join(jobDir, 'pid'), 'utf8'));
      assert.ok(processGroupRunning(pgid));

      await handle.cancel();
      await assert.rejects(
        handle.result(),
        (error: unknown) => error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure,
      );
      assert.equal((await child.describe()).status.name, 'CANCELLED');
      assert.ok(existsSync(path.join(jobDir, 'stop_requested')), 'trainModel asked the job to stop');
      assert.equal(processGroupRunning(pgid), false, 'the training process group is gone');
      const description = await handle.describe();
      assert.equal(description.status.name, 'CANCELLED');
      assert.deepEqual(description.searchAttributes.TwinStatus, ['cancelled']);
      const events = await historyOf(handle);
      assert.ok(
        events.some(
          (e) =>
            e.requestCancelExternalWorkflowExecutionInitiatedEventAttributes ||
            e.childWorkflowExecutionCanceledEventAttributes,
        ),
      );
      assert.ok(!childStarts(events).some((c) => c.type === 'evaluateModel'));
    } finally {
      // a failed assertion above must not leave a training process running for hours
      await handle.cancel().catch(() => undefined);
    }
  });

  test('continuousTraining: nothing newer → skipped: no new data; a newer instruction dataset → trains', async () => {
    const ct = async (name: string, ctInput: ContinuousTrainingInput) => {
      const workflowId = uniqueName(name);
      started.set(workflowId, Date.now());
      const handle = await client.workflow.start('continuousTraining', {
        taskQueue: 'twin-pipelines',
        workflowId,
        args: [ctInput],
      });
      return { handle, result: await resultOf<ContinuousTrainingResult>(handle) };
    };
    const base: ContinuousTrainingInput = {
      baseModel: `file://${tinyBase}`,
      trainingBackend: 'local',
      hyperparameters: { sft: FAST, dpo: FAST },
      skipDpo: true,
      evaluate: false,
    };
    const skipped = await ct('ct-skip', base);
    assert.equal(skipped.result.status, 'skipped');
    assert.equal(skipped.result.reason, 'skipped: no new data');
    assert.equal(skipped.result.facts.instruction?.artifactId, deployed.datasets.instruction.artifactId);
    assert.equal(skipped.result.facts.lastSft?.datasetArtifactId, deployed.datasets.instruction.artifactId);
    assert.match(skipped.result.plan.detail, /trained on already/);

    // New data arrives: a newer instruction dataset version (same rows, recorded as a new version now).
    const registry = new ArtifactRegistry(db);
    const current = await registry.get(deployed.datasets.instruction.artifactId);
    assert.ok(current);
    const { id: _id, createdAt: _createdAt, ...rest } = current;
    const newer = await registry.record({
      ...rest,
      checksum: checksumOf({ sameRowsAs: current.checksum, version: 2 }),
      metadata: { ...current.metadata, version: `${String(current.metadata.version)}-v2` },
    });
    assert.notEqual(newer.id, current.id);
    const trained = await ct('ct-train', base);
    assert.equal(trained.result.status, 'trained', trained.result.reason);
    assert.deepEqual(trained.result.plan.action === 'train' && trained.result.plan.sft, { dataset: newer.id });
    assert.equal(trained.result.models?.sft?.datasetArtifactId, newer.id);
    assert.deepEqual(
      childStarts(await historyOf(trained.handle)).map((c) => [c.type, c.id]),
      [['trainModel', `${trained.handle.workflowId}/train-sft`]],
    );
    const again = await ct('ct-again', base);
    assert.equal(again.result.reason, 'skipped: no new data');
  });
});
