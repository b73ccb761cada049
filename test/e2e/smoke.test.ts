import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { MongoClient } from 'mongodb';
import type { SmokeResult } from '../../workflows/smoke';
import { testEnv, uniqueName } from '../support/env';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';

const database = uniqueName('smoke');
const workerEnv = { MONGODB_DATABASE: database, TWIN_WORKFLOW_BUNDLE: testEnv.workflowBundle ?? '' };

describe('smoke workflow on the real dev server', () => {
  let client: Client;
  let mongo: MongoClient;
  let workers: WorkerProcess | undefined;

  before(async () => {
    client = new Client({ connection: await Connection.connect({ address: testEnv.temporalAddress }) });
    mongo = await MongoClient.connect(testEnv.mongoUri);
  });

  after(async () => {
    await workers?.kill('SIGKILL');
    await mongo.db(database).dropDatabase();
    await mongo.close();
    await client.connection.close();
  });

  test('client → workflow → activity on twin-etl → MongoDB → artifact, visible in history', async () => {
    workers = await startWorkerProcess(['pipelines', 'etl'], workerEnv);
    const workflowId = uniqueName('smoke-basic');
    const result = await client.workflow.execute<() => Promise<SmokeResult>>('smoke', {
      taskQueue: 'twin-pipelines',
      workflowId,
      args: [{ message: 'hello' }] as never,
    });
    assert.equal(result.taskQueue, 'twin-etl');
    assert.equal(result.artifact.kind, 'smoke-note');
    assert.equal(result.artifact.producer.workflowId, workflowId);
    assert.equal(result.artifact.producer.activity, 'writeSmokeNote');

    const note = await mongo.db(database).collection('smoke_notes').findOne({ workflowId });
    assert.equal(note?.message, 'hello');
    const recorded = await mongo
      .db(database)
      .collection('artifacts')
      .findOne({ _id: result.artifact.id as never });
    assert.equal(recorded?.kind, 'smoke-note');

    const handle = client.workflow.getHandle(workflowId);
    const description = await handle.describe();
    assert.deepEqual(description.searchAttributes.TwinPipeline, ['smoke']);
    assert.deepEqual(description.searchAttributes.TwinStatus, ['completed']);
    const history = await handle.fetchHistory();
    const scheduled = history.events?.find((e) => e.activityTaskScheduledEventAttributes);
    assert.equal(scheduled?.activityTaskScheduledEventAttributes?.taskQueue?.name, 'twin-etl');
    const visible = await client.workflow.count(`WorkflowId = "${workflowId}" AND TwinPipeline = "smoke"`);
    assert.equal(visible.count, 1);
    await workers.kill();
    workers = undefined;
  });

  test('a worker killed mid-activity and restarted: the run completes and nothing is written twice', async () => {
    workers = await startWorkerProcess(['pipelines', 'etl'], workerEnv);
    const workflowId = uniqueName('smoke-crash');
    const handle = await client.workflow.start('smoke', {
      taskQueue: 'twin-pipelines',
      workflowId,
      args: [{ message: 'survives a crash', holdMs: 4_000 }],
    });
    // Wait until the note is written (the activity is then holding, heartbeating), and kill the worker hard.
    const notes = mongo.db(database).collection('smoke_notes');
    const deadline = Date.now() + 60_000;
    while (!(await notes.findOne({ workflowId })) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    assert.ok(
      await notes.findOne({ workflowId }),
      `the first attempt wrote its note; worker log:\n${workers.lines.slice(-30).join('\n')}`,
    );
    await workers.kill('SIGKILL');

    workers = await startWorkerProcess(['pipelines', 'etl'], workerEnv);
    const result = (await handle.result()) as SmokeResult;
    assert.ok(
      result.artifact.producer.attempt >= 2,
      `retried after the crash (attempt ${result.artifact.producer.attempt})`,
    );

    assert.equal(await notes.countDocuments({ workflowId }), 1, 'one note, however many attempts');
    const note = await notes.findOne({ workflowId });
    assert.deepEqual([...(note?.attempts as number[])].sort(), [1, result.artifact.producer.attempt].sort());
    const artifacts = await mongo
      .db(database)
      .collection('artifacts')
      .countDocuments({ 'producer.workflowId': workflowId });
    assert.equal(artifacts, 1, 'one artifact record');
  });
});
