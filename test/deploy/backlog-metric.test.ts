/**
 * The scheduled backlog publisher (cdk/lambda/task-queue-backlog.ts): its pure parts, and the bundled function
 * (built with esbuild exactly as the CDK app bundles it) run against a real Temporal server.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { build } from 'esbuild';
import {
  connectionOptionsFrom,
  describeBacklog,
  publishBacklog,
  toEmfRecord,
  type DescribeTaskQueueService,
} from '../../cdk/lambda/task-queue-backlog';
import { temporal } from '@temporalio/proto';
import { startTemporalDevServer, type TemporalDevServer } from '../../src/infra/local-services';

const { TaskQueueType } = temporal.api.enums.v1;
const ROOT = path.resolve(__dirname, '..', '..');
const run = promisify(execFile);

type Response = temporal.api.workflowservice.v1.IDescribeTaskQueueResponse;
/** A DescribeTaskQueue response as the wire gives it (counts may be Long or number). */
const response = (value: unknown): Response => value as Response;

interface Emf {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: Array<{
      Namespace: string;
      Dimensions: string[][];
      Metrics: Array<{ Name: string; Unit: string }>;
    }>;
  };
  [key: string]: unknown;
}

void describe('backlog publisher: pure parts', () => {
  void test('an EMF record declares both metrics with the namespace and queue dimensions', () => {
    const line = toEmfRecord(
      'LlmTwin/Temporal',
      'prod',
      { taskQueue: 'twin-etl', backlog: 7, ageSeconds: 12.5 },
      1_700_000_000_000,
    );
    const record = JSON.parse(line) as Emf;
    assert.equal(record._aws.Timestamp, 1_700_000_000_000);
    const directive = record._aws.CloudWatchMetrics[0]!;
    assert.equal(directive.Namespace, 'LlmTwin/Temporal');
    assert.deepEqual(directive.Dimensions, [['TemporalNamespace', 'TaskQueue']]);
    assert.deepEqual(
      directive.Metrics.map((m) => m.Name),
      ['ApproximateBacklogCount', 'ApproximateBacklogAge'],
    );
    // Every dimension and metric named in the directive is a top-level member, as EMF requires.
    for (const key of [...directive.Dimensions[0]!, ...directive.Metrics.map((m) => m.Name)]) {
      assert.ok(key in record, `${key} missing from the record`);
    }
    assert.equal(record.TaskQueue, 'twin-etl');
    assert.equal(record.ApproximateBacklogCount, 7);
    assert.equal(record.ApproximateBacklogAge, 12.5);
  });

  void test('sums workflow and activity backlogs, keeps the oldest age, and asks for stats of both types', async () => {
    const requests: unknown[] = [];
    const service: DescribeTaskQueueService = {
      describeTaskQueue(request) {
        requests.push(request);
        const isWorkflow = request.taskQueueType === TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW;
        return Promise.resolve(
          response({
            stats: {
              approximateBacklogCount: isWorkflow ? 3 : { toNumber: () => 40 },
              approximateBacklogAge: isWorkflow ? { seconds: 5, nanos: 500_000_000 } : { seconds: 2 },
            },
          }),
        );
      },
    };
    const sample = await describeBacklog(service, 'ns', 'twin-llm');
    assert.deepEqual(sample, { taskQueue: 'twin-llm', backlog: 43, ageSeconds: 5.5 });
    assert.equal(requests.length, 2);
    for (const request of requests as Array<{ reportStats: boolean; namespace: string; taskQueue: { name: string } }>) {
      assert.equal(request.reportStats, true);
      assert.equal(request.namespace, 'ns');
      assert.equal(request.taskQueue.name, 'twin-llm');
    }
  });

  void test('a queue that cannot be described publishes nothing for it and fails the invocation', async () => {
    const service: DescribeTaskQueueService = {
      describeTaskQueue(request) {
        if (request.taskQueue?.name === 'twin-ml') return Promise.reject(new Error('unavailable'));
        return Promise.resolve(response({ stats: { approximateBacklogCount: 1 } }));
      },
    };
    const lines: string[] = [];
    await assert.rejects(
      publishBacklog(service, {
        temporalNamespace: 'ns',
        metricNamespace: 'M',
        taskQueues: ['twin-etl', 'twin-ml'],
        write: (l) => lines.push(l),
      }),
      /could not describe 1 task queue\(s\): twin-ml: unavailable/,
    );
    assert.equal(lines.length, 1);
    assert.equal(JSON.parse(lines[0]!).TaskQueue, 'twin-etl');
  });

  void test('a server without report_stats support is reported, not published as zero', async () => {
    const service: DescribeTaskQueueService = { describeTaskQueue: () => Promise.resolve({ pollers: [] }) };
    await assert.rejects(describeBacklog(service, 'ns', 'twin-etl'), /returned no stats/);
  });

  void test('connection options: API key, mTLS pair, and empty secret values treated as unset', () => {
    const apiKey = connectionOptionsFrom(
      { TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233' },
      { TEMPORAL_API_KEY: 'k', TEMPORAL_TLS_CERT: '', TEMPORAL_TLS_KEY: '' },
    );
    assert.equal(apiKey.apiKey, 'k');
    assert.equal(apiKey.tls, true);
    const mtls = connectionOptionsFrom(
      { TEMPORAL_ADDRESS: 'a:7233', TEMPORAL_TLS: 'true' },
      { TEMPORAL_TLS_CERT: 'CERT', TEMPORAL_TLS_KEY: 'KEY' },
    );
    assert.deepEqual(mtls.tls, { clientCertPair: { crt: Buffer.from('CERT'), key: Buffer.from('KEY') } });
    assert.equal(mtls.apiKey, undefined);
    const plain = connectionOptionsFrom(
      { TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_TLS: 'false' },
      { TEMPORAL_API_KEY: '' },
    );
    assert.equal(plain.tls, false);
    assert.equal(plain.apiKey, undefined);
    assert.throws(() => connectionOptionsFrom({}, {}), /TEMPORAL_ADDRESS is not set/);
  });
});

void describe('backlog publisher: bundled function against a real Temporal server', () => {
  let server: TemporalDevServer | undefined;
  let address: string;
  let dir: string;
  let bundle: string;
  const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'twin-backlog-'));
    if (process.env.TEMPORAL_ADDRESS) {
      address = process.env.TEMPORAL_ADDRESS;
    } else {
      server = await startTemporalDevServer({ dataDir: path.join(dir, 'temporal') });
      address = server.address;
    }
    // The same esbuild settings as the NodejsFunction in cdk/lib/twin-stack.ts.
    bundle = path.join(dir, 'index.js');
    await build({
      entryPoints: [path.join(ROOT, 'cdk', 'lambda', 'task-queue-backlog.ts')],
      outfile: bundle,
      bundle: true,
      platform: 'node',
      target: 'node22',
      format: 'cjs',
      minify: true,
      external: ['@aws-sdk/*'],
      logLevel: 'error',
    });
  });

  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  void test('publishes the backlog of a queue that has waiting workflow tasks and no worker', async () => {
    const queue = `twin-backlog-test-${process.pid}-${Date.now().toString(36)}`;
    const idle = `${queue}-idle`;
    const connection = await Connection.connect({ address });
    try {
      const client = new Client({ connection, namespace });
      for (let i = 0; i < 3; i++) {
        await client.workflow.start('neverPolled', { taskQueue: queue, workflowId: `${queue}-${i}`, args: [] });
      }
      // Stats are approximate and refreshed by the server in the background: poll the real function.
      let records: Array<Record<string, unknown>> = [];
      const deadline = Date.now() + 45_000;
      for (;;) {
        const { stdout } = await run(
          process.execPath,
          ['-e', `require(${JSON.stringify(bundle)}).handler().then((r) => process.stderr.write(JSON.stringify(r)))`],
          {
            cwd: ROOT,
            env: {
              ...process.env,
              NODE_PATH: path.join(ROOT, 'node_modules'),
              TEMPORAL_ADDRESS: address,
              TEMPORAL_NAMESPACE: namespace,
              TEMPORAL_TLS: 'false',
              TEMPORAL_SECRET_ARN: '',
              TASK_QUEUES: `${queue},${idle}`,
              METRIC_NAMESPACE: 'LlmTwin/Test',
            },
          },
        );
        records = stdout
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as Record<string, unknown>);
        const busy = records.find((r) => r.TaskQueue === queue);
        if ((busy?.ApproximateBacklogCount as number) >= 3 || Date.now() > deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      assert.equal(records.length, 2, 'one EMF record per queue');
      const busy = records.find((r) => r.TaskQueue === queue)!;
      const empty = records.find((r) => r.TaskQueue === idle)!;
      assert.equal(busy.ApproximateBacklogCount, 3);
      assert.ok((busy.ApproximateBacklogAge as number) >= 0);
      assert.equal(empty.ApproximateBacklogCount, 0);
      assert.equal(busy.TemporalNamespace, namespace);
      assert.equal(
        (busy._aws as { CloudWatchMetrics: Array<{ Namespace: string }> }).CloudWatchMetrics[0]!.Namespace,
        'LlmTwin/Test',
      );
      for (let i = 0; i < 3; i++) await client.workflow.getHandle(`${queue}-${i}`).terminate('test done');
    } finally {
      await connection.close();
    }
  });
});
