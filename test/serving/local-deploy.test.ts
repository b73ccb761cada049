/**
 * deployModel with the local backend on the real dev server, real worker processes (in a namespace of their own) and
 * a real tiny model trained by jobs/finetune/train.py (SFT of the tiny random Llama on the instruction fixture):
 * jobs/serve/server.py answers /v1/chat/completions (plain and streamed) through the `openai` client; a second
 * deployment of the same version adopts the running server; a version that fails its smoke test leaves the previous
 * server serving and the endpoints document untouched; a new version replaces the old server only after it passed
 * (blue/green); `twin deploy rollback` puts the previous version back; `twin endpoints` lists it; the gate refuses
 * a Rejected version.
 */
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { MongoClient, type Db } from 'mongodb';
import OpenAI from 'openai';
import { EndpointStore } from '../../src/serving/endpoints';
import type { DeploymentResult, LocalServerRef } from '../../src/serving/types';
import { processGroupRunning } from '../../src/training/local';
import { isolatedEnv, runTwin } from '../support/cli';
import { testEnv, uniqueName } from '../support/env';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';
import { buildTinyBaseModel, fixtureVersion, JOB_DIR, run, trainingPython } from '../training/helpers';
import { isolatedNamespace, registerModel } from './helpers';

const database = uniqueName('serving_local');
const root = () => path.join(testEnv.tmpDir, database);
const ENDPOINT = 'llm-twin';
const PROMPT = 'How do you version datasets?';

function failure(error: unknown): ApplicationFailure {
  assert.ok(error instanceof WorkflowFailedError, String(error));
  const cause = error.cause instanceof ActivityFailure ? error.cause.cause : error.cause;
  assert.ok(cause instanceof ApplicationFailure, String(cause));
  return cause;
}

describe('deployModel with the local backend (real tiny trained model, real server)', () => {
  let namespace: string;
  let client: Client;
  let mongo: MongoClient;
  let db: Db;
  let workers: WorkerProcess | undefined;
  let store: EndpointStore;
  let workerEnv: Record<string, string>;
  const servers = new Set<number>();
  let first: DeploymentResult;
  let firstServer: LocalServerRef;

  const deploy = (model: string) =>
    client.workflow
      .execute('deployModel', {
        taskQueue: 'twin-pipelines',
        workflowId: uniqueName(`deploy-${model}`),
        args: [{ model }],
      })
      .then((result) => result as DeploymentResult);

  const serving = async () => {
    const record = await store.get(ENDPOINT);
    assert.ok(record, 'endpoints document');
    if (record.localServer) servers.add(record.localServer.pid);
    return record;
  };

  const chat = (url: string, model: string) =>
    new OpenAI({ baseURL: url, apiKey: 'local', maxRetries: 0, timeout: 60_000 }).chat.completions.create({
      model,
      messages: [{ role: 'user', content: PROMPT }],
      max_tokens: 12,
      temperature: 0,
    });

  before(async () => {
    namespace = await isolatedNamespace('serving-local');
    client = new Client({ connection: await Connection.connect({ address: testEnv.temporalAddress }), namespace });
    mongo = await MongoClient.connect(testEnv.mongoUri);
    db = mongo.db(database);
    store = new EndpointStore(db);

    // A real trained model: the tiny random Llama, then a few SFT steps of the project's own job on the fixture.
    const python = trainingPython();
    const instruction = fixtureVersion('instruction');
    const base = await buildTinyBaseModel(path.join(root(), 'tiny-base'), [path.join(instruction, 'train.jsonl')]);
    const trained = path.join(root(), 'sft-model');
    const sft = await run(
      python,
      [
        path.join(JOB_DIR, 'train.py'),
        '--mode',
        'sft',
        '--base-model',
        base,
        '--train',
        path.join(instruction, 'train.jsonl'),
        '--test',
        path.join(instruction, 'test.jsonl'),
        '--model-dir',
        trained,
        '--num_train_epochs',
        '1',
        '--max_steps',
        '3',
        '--per_device_train_batch_size',
        '4',
        '--gradient_accumulation_steps',
        '1',
        '--max_length',
        '256',
        '--gradient_checkpointing',
        'false',
        '--warmup_steps',
        '0',
        '--learning_rate',
        '0.001',
      ],
      { env: { ...process.env, OMP_NUM_THREADS: '1' } },
    );
    assert.equal(sft.code, 0, `${sft.stdout.slice(-2000)}\n${sft.stderr.slice(-2000)}`);
    // Same weights under another version: a second good deployment. A copy whose context (max_position_embeddings)
    // is shorter than the smoke prompt: it loads and reports healthy, but refuses the smoke request.
    const second = path.join(root(), 'sft-model-b');
    const broken = path.join(root(), 'sft-model-broken');
    await cp(trained, second, { recursive: true });
    await cp(trained, broken, { recursive: true });
    const config = JSON.parse(await readFile(path.join(broken, 'config.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(path.join(broken, 'config.json'), JSON.stringify({ ...config, max_position_embeddings: 8 }));

    await registerModel(db, { version: 'twin-sft-a', artifactUri: `file://${trained}`, status: 'Approved' });
    await registerModel(db, { version: 'twin-sft-b', artifactUri: `file://${second}`, status: 'Approved' });
    await registerModel(db, { version: 'twin-sft-broken', artifactUri: `file://${broken}`, status: 'Approved' });
    await registerModel(db, { version: 'twin-sft-rejected', artifactUri: `file://${trained}`, status: 'Rejected' });

    workerEnv = {
      TEMPORAL_ADDRESS: testEnv.temporalAddress,
      TEMPORAL_NAMESPACE: namespace,
      MONGODB_URI: testEnv.mongoUri,
      MONGODB_DATABASE: database,
      SERVING_BACKEND: 'local',
      SERVING_ENDPOINT_NAME: ENDPOINT,
      SERVING_DIR: path.join(root(), 'serving'),
      SERVING_PYTHON: python,
      SERVING_DEVICE: 'cpu',
      SERVING_SMOKE_MAX_TOKENS: '8',
    };
    workers = await startWorkerProcess(['pipelines', 'ml'], {
      ...workerEnv,
      TWIN_WORKFLOW_BUNDLE: testEnv.workflowBundle ?? '',
      SERVING_THREADS: '1', // read by jobs/serve/server.py: 2 shared cores
    });
  });

  after(async () => {
    await workers?.kill('SIGTERM');
    for (const pid of servers) {
      if (processGroupRunning(pid)) process.kill(-pid, 'SIGKILL');
    }
    await mongo
      ?.db(database)
      .dropDatabase()
      .catch(() => undefined);
    await mongo?.close();
    await client?.connection.close();
  });

  test('deploy: a running local endpoint that answers /v1/chat/completions, plain and streamed', async () => {
    const started = Date.now();
    first = await deploy('twin-sft-a').catch((error: unknown) => {
      throw new Error(`${String(error)}\n${workers?.lines.slice(-30).join('\n')}`);
    });
    const took = Date.now() - started;
    assert.equal(first.status, 'InService');
    assert.equal(first.backend, 'local');
    assert.equal(first.endpointName, ENDPOINT);
    assert.equal(first.modelVersion, 'twin-sft-a');
    assert.equal(first.previousModelVersion, undefined);
    assert.equal(first.smokeTest.ok, true);
    assert.ok(first.smokeTest.sample && first.smokeTest.sample.trim().length > 0, 'the smoke test saw generated text');
    assert.match(first.url ?? '', /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    process.stdout.write(
      `# local deploy: ${(took / 1000).toFixed(1)} s, smoke latency ${first.smokeTest.latencyMs} ms\n`,
    );

    const record = await serving();
    assert.equal(record.status, 'InService');
    assert.equal(record.backend, 'local');
    assert.equal(record.modelVersion, 'twin-sft-a');
    assert.equal(record.url, first.url);
    assert.ok(record.localServer && processGroupRunning(record.localServer.pid), 'the server runs');
    firstServer = record.localServer;

    const url = first.url!;
    const models = (await (await fetch(`${url}/models`)).json()) as { data: { id: string }[] };
    assert.deepEqual(
      models.data.map((m) => m.id),
      ['twin-sft-a'],
    );
    const plain = await chat(url, 'twin-sft-a');
    const text = plain.choices[0]?.message.content ?? '';
    assert.ok(text.length > 0, 'generated text');
    assert.equal(plain.model, 'twin-sft-a');
    assert.ok(
      plain.usage && plain.usage.completion_tokens > 0 && plain.usage.completion_tokens <= 12,
      JSON.stringify(plain.usage),
    );

    const stream = await new OpenAI({ baseURL: url, apiKey: 'local', maxRetries: 0 }).chat.completions.create({
      model: 'twin-sft-a',
      messages: [{ role: 'user', content: PROMPT }],
      max_tokens: 12,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let streamed = '';
    let finish: string | null | undefined;
    let usage: { completion_tokens: number } | undefined;
    for await (const chunk of stream) {
      streamed += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(streamed, text, 'greedy: the streamed answer equals the plain one');
    assert.ok(finish === 'length' || finish === 'stop', String(finish));
    assert.equal(usage?.completion_tokens, plain.usage.completion_tokens);
  });

  test('deploying the same version again adopts the running server', async () => {
    const again = await deploy('twin-sft-a');
    assert.equal(again.url, first.url);
    const record = await serving();
    assert.equal(record.localServer?.pid, firstServer.pid);
    assert.equal(record.localServer?.reused, true);
    assert.ok(processGroupRunning(firstServer.pid));
  });

  test('a version that fails its smoke test never reaches the endpoint; the previous server keeps serving', async () => {
    const error = await deploy('twin-sft-broken').then(
      () => undefined,
      (e: unknown) => e,
    );
    const cause = failure(error);
    assert.equal(cause.type, 'SmokeTestFailed');
    assert.match(cause.message, /maximum context length is 8 tokens/);

    const record = await serving();
    assert.equal(record.status, 'InService');
    assert.equal(record.modelVersion, 'twin-sft-a');
    assert.equal(record.url, first.url);
    assert.match(record.history.at(-1)?.outcome ?? '', /^failed: SmokeTestFailed/);
    assert.ok(processGroupRunning(firstServer.pid), 'the previous server still runs');
    assert.ok((await chat(first.url!, 'twin-sft-a')).choices[0]?.message.content, 'and answers');
    const brokenState = JSON.parse(
      await readFile(path.join(root(), 'serving', ENDPOINT, 'twin-sft-broken', 'server.json'), 'utf8'),
    ) as { pid: number };
    servers.add(brokenState.pid);
    assert.equal(processGroupRunning(brokenState.pid), false, 'the failed server was stopped');
  });

  test('a new version replaces the old server only after it passed (blue/green), and rollback puts the old one back', async () => {
    const second = await deploy('twin-sft-b');
    assert.equal(second.modelVersion, 'twin-sft-b');
    assert.equal(second.previousModelVersion, 'twin-sft-a');
    assert.notEqual(second.url, first.url);
    const record = await serving();
    assert.equal(record.modelVersion, 'twin-sft-b');
    assert.equal(record.previousModelVersion, 'twin-sft-a');
    assert.equal(processGroupRunning(firstServer.pid), false, 'the old server was stopped after the switch');
    assert.equal((await chat(second.url!, 'twin-sft-b')).model, 'twin-sft-b');
    const secondPid = record.localServer!.pid;

    const env = isolatedEnv(workerEnv);
    const rolled = await runTwin(['deploy', 'rollback', '--json'], env, 300_000);
    assert.equal(rolled.code, 0, `${rolled.stdout}\n${rolled.stderr}`);
    const result = JSON.parse(
      rolled.stdout.slice(rolled.stdout.indexOf('{'), rolled.stdout.lastIndexOf('}') + 1),
    ) as DeploymentResult;
    assert.equal(result.modelVersion, 'twin-sft-a');
    assert.equal(result.previousModelVersion, 'twin-sft-b');
    const back = await serving();
    assert.equal(back.modelVersion, 'twin-sft-a');
    assert.equal(back.previousModelVersion, 'twin-sft-b');
    assert.equal(back.history.at(-1)?.action, 'rollback');
    assert.equal(processGroupRunning(secondPid), false, 'the rolled-back-from server was stopped');
    assert.equal((await chat(back.url!, 'twin-sft-a')).model, 'twin-sft-a');

    const listed = await runTwin(['endpoints'], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(
      listed.stdout,
      new RegExp(
        `^${ENDPOINT}\\s+local\\s+InService\\s+twin-sft-a\\s+${back.url!.replace(/[./]/g, '\\$&')}\\s+previous=twin-sft-b`,
        'm',
      ),
    );
  });

  test('the gate: a Rejected version is refused', async () => {
    const error = await deploy('twin-sft-rejected').then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.equal(failure(error).type, 'ModelNotApproved');
    assert.equal((await serving()).modelVersion, 'twin-sft-a');
  });
});
