/**
 * SageMaker state sequences moto cannot play (it completes every job at once and has no StopTrainingJob), played by
 * scripted SDK responses (aws-sdk-client-mock) through the real activities: InProgress → Completed with metrics,
 * → Failed with a reason, capacity and quota errors, throttling, a start that races another, cancellation → stop.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import {
  CreateTrainingJobCommand,
  DescribeTrainingJobCommand,
  ResourceInUse,
  ResourceLimitExceeded,
  SageMakerClient,
  StopTrainingJobCommand,
  type DescribeTrainingJobResponse,
} from '@aws-sdk/client-sagemaker';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { mockClient } from 'aws-sdk-client-mock';
import { createTrainingActivities } from '../../activities/training';
import { parseSettings } from '../../src/config';
import { createDependencies } from '../../src/infra/dependencies';
import { createLogger } from '../../src/infra/logger';
import type { PreparedTraining } from '../../src/training/prepare';
import { classifySageMakerError } from '../../src/training/sagemaker';
import { effectiveHyperparameters } from '../../src/training/spec';
import { runIn } from './helpers';

const settings = parseSettings({
  TWIN_HOME: '/nonexistent',
  AWS_REGION: 'eu-west-1',
  SAGEMAKER_EXECUTION_ROLE_ARN: 'arn:aws:iam::123456789012:role/twin',
  SAGEMAKER_TRAINING_BUCKET: 'twin-bucket',
});
const jobName = 'twin-sft-scripted-0123456789';
const job = { backend: 'sagemaker' as const, jobName };
const prepared: PreparedTraining = {
  backend: 'sagemaker',
  modelVersion: jobName,
  datasetArtifactId: 'instruction-dataset:abc',
  datasetVersion: 'v1',
  chatTemplateChecksum: 'sha256:x',
  spec: {
    jobName,
    mode: 'sft',
    baseModel: 'meta-llama/Llama-3.1-8B',
    hyperparameters: effectiveHyperparameters('sft'),
    data: { train: 's3://twin-bucket/d/train.jsonl' },
    sourceDir: { uri: 's3://twin-bucket/training/code/abc/sourcedir.tar.gz', checksum: 'sha256:abc' },
  },
};

function described(
  status: DescribeTrainingJobResponse['TrainingJobStatus'],
  secondary: string,
  extra: Partial<DescribeTrainingJobResponse> = {},
): DescribeTrainingJobResponse {
  return {
    TrainingJobName: jobName,
    TrainingJobArn: `arn:aws:sagemaker:eu-west-1:123456789012:training-job/${jobName}`,
    TrainingJobStatus: status,
    SecondaryStatus: secondary as DescribeTrainingJobResponse['SecondaryStatus'],
    ...extra,
  } as DescribeTrainingJobResponse;
}

function awsError(name: string, message: string, httpStatusCode = 400): Error {
  return Object.assign(new Error(message), { name, $metadata: { httpStatusCode } });
}

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a failure');
}

describe('SageMaker backend with scripted responses', () => {
  const sagemaker = mockClient(SageMakerClient);
  const deps = createDependencies(settings, createLogger({ level: 'silent' }));
  const activities = createTrainingActivities(deps, {
    sagemakerClient: new SageMakerClient({ region: 'eu-west-1' }),
    pollIntervalMs: { sagemaker: 5 },
  });
  const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
  const env = () =>
    new MockActivityEnvironment(
      { workflowExecution: { workflowId: 'wf', runId: 'run' }, heartbeatTimeoutMs: 60_000 },
      { logger: quiet },
    );

  beforeEach(() => sagemaker.reset());
  afterEach(() => sagemaker.reset());

  test('InProgress (Starting → Downloading → Training) → Completed: heartbeats carry the states, final metrics come back', async () => {
    sagemaker
      .on(DescribeTrainingJobCommand)
      .resolvesOnce(
        described('InProgress', 'Starting', {
          SecondaryStatusTransitions: [
            { Status: 'Starting', StartTime: new Date(), StatusMessage: 'Launching requested ML instances' },
          ],
        }),
      )
      .resolvesOnce(described('InProgress', 'Downloading'))
      .resolvesOnce(
        described('InProgress', 'Training', {
          FinalMetricDataList: [{ MetricName: 'train_loss', Value: 2.5, Timestamp: new Date() }],
        }),
      )
      .resolves(
        described('Completed', 'Completed', {
          ModelArtifacts: { S3ModelArtifacts: `s3://twin-bucket/training/jobs/${jobName}/output/model.tar.gz` },
          FinalMetricDataList: [
            { MetricName: 'train_loss', Value: 1.25, Timestamp: new Date() },
            { MetricName: 'eval_loss', Value: 1.5, Timestamp: new Date() },
            { MetricName: 'train_tokens_per_second', Value: 4321, Timestamp: new Date() },
          ],
          TrainingStartTime: new Date('2024-01-01T00:00:00Z'),
          TrainingEndTime: new Date('2024-01-01T01:00:00Z'),
          BillableTimeInSeconds: 1800,
        }),
      );
    const activity = env();
    const heartbeats: Record<string, unknown>[] = [];
    activity.on('heartbeat', (details: Record<string, unknown>) => heartbeats.push(details));
    const outcome = await runIn(activity, () => activities.waitForTrainingJob(job));
    assert.deepEqual(outcome.metrics, { train_loss: 1.25, eval_loss: 1.5, train_tokens_per_second: 4321 });
    assert.equal(outcome.modelArtifactUri, `s3://twin-bucket/training/jobs/${jobName}/output/model.tar.gz`);
    assert.equal(outcome.billableSeconds, 1800);
    assert.equal(outcome.startedAt, '2024-01-01T00:00:00.000Z');
    const seen = [...new Set(heartbeats.map((h) => `${String(h.status)}/${String(h.secondaryStatus)}`))];
    assert.deepEqual(seen, [
      'InProgress/Starting: Launching requested ML instances',
      'InProgress/Downloading',
      'InProgress/Training',
      'Completed/Completed',
    ]);
    assert.ok(
      heartbeats.some((h) => h.train_loss === 2.5),
      'metrics reported while training',
    );
  });

  test("→ Failed: a non-retryable failure with the job's reason; capacity failures are named so", async () => {
    sagemaker
      .on(DescribeTrainingJobCommand)
      .resolvesOnce(described('InProgress', 'Training'))
      .resolves(
        described('Failed', 'Failed', {
          FailureReason: 'AlgorithmError: CUDA out of memory. Tried to allocate 2.00 GiB',
        }),
      );
    const failed = await failureOf(runIn(env(), () => activities.waitForTrainingJob(job)));
    assert.equal(failed.nonRetryable, true);
    assert.equal(failed.type, 'TrainingJobFailed');
    assert.match(failed.message, /failed: AlgorithmError: CUDA out of memory/);

    sagemaker.reset();
    sagemaker.on(DescribeTrainingJobCommand).resolves(
      described('Failed', 'Failed', {
        FailureReason:
          'CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML instance type.',
      }),
    );
    const capacity = await failureOf(runIn(env(), () => activities.waitForTrainingJob(job)));
    assert.equal(capacity.type, 'CapacityError');
    assert.equal(capacity.nonRetryable, true);
  });

  test('CreateTrainingJob errors: quota and validation are final with what to do; throttling is retried', async () => {
    sagemaker.on(DescribeTrainingJobCommand).rejects(awsError('ValidationException', `Requested resource not found.`));
    sagemaker.on(CreateTrainingJobCommand).rejects(
      new ResourceLimitExceeded({
        message: 'The account-level service limit for ml.g6e.2xlarge for training job usage is 0 Instances',
        $metadata: { httpStatusCode: 400 },
      }),
    );
    const quota = await failureOf(runIn(env(), () => activities.startTrainingJob(prepared)));
    assert.equal(quota.type, 'ResourceLimitExceeded');
    assert.equal(quota.nonRetryable, true);
    assert.match(quota.message, /quota exceeded .* Service Quotas/);

    sagemaker
      .on(CreateTrainingJobCommand)
      .rejects(awsError('ValidationException', 'Could not assume role arn:aws:iam::123456789012:role/twin'));
    const invalid = await failureOf(runIn(env(), () => activities.startTrainingJob(prepared)));
    assert.equal(invalid.type, 'ValidationException');
    assert.equal(invalid.nonRetryable, true);
    assert.match(invalid.message, /rejected the request: Could not assume role/);

    sagemaker.on(CreateTrainingJobCommand).rejects(awsError('ThrottlingException', 'Rate exceeded'));
    const throttled = await failureOf(runIn(env(), () => activities.startTrainingJob(prepared)));
    assert.equal(throttled.type, 'ThrottlingException');
    assert.equal(throttled.nonRetryable, false);

    sagemaker.reset();
    sagemaker.on(DescribeTrainingJobCommand).rejects(awsError('InternalFailure', 'oops', 500));
    const polled = await failureOf(runIn(env(), () => activities.waitForTrainingJob(job)));
    assert.equal(polled.nonRetryable, false, 'a 5xx while polling retries the wait');

    assert.equal(
      classifySageMakerError(Object.assign(new Error('socket hang up'), { name: 'ECONNRESET' }), 'X').retryable,
      true,
    );
    assert.equal(classifySageMakerError(awsError('AccessDeniedException', 'no'), 'X').retryable, false);
  });

  test('a start that lost a race (ResourceInUse) adopts the job the other attempt created', async () => {
    sagemaker
      .on(DescribeTrainingJobCommand)
      .rejectsOnce(awsError('ValidationException', 'Requested resource not found.'))
      .resolves(described('InProgress', 'Starting'));
    sagemaker
      .on(CreateTrainingJobCommand)
      .rejects(new ResourceInUse({ message: 'Training job names must be unique', $metadata: { httpStatusCode: 400 } }));
    const ref = await runIn(env(), () => activities.startTrainingJob(prepared));
    assert.equal(ref.arn, `arn:aws:sagemaker:eu-west-1:123456789012:training-job/${jobName}`);
    assert.equal(sagemaker.commandCalls(CreateTrainingJobCommand).length, 1);
  });

  test('cancellation: the wait stops at its next heartbeat, and stop calls StopTrainingJob (only for a running job)', async () => {
    sagemaker.on(DescribeTrainingJobCommand).resolves(described('InProgress', 'Training'));
    sagemaker.on(StopTrainingJobCommand).resolves({});
    const activity = env();
    activity.once('heartbeat', () => setTimeout(() => activity.cancel('CANCELLED'), 20));
    await assert.rejects(
      runIn(activity, () => activities.waitForTrainingJob(job)),
      (error: Error) => /abort|cancel/i.test(`${error.name} ${error.message}`),
    );

    await runIn(env(), () => activities.stopTrainingJob(job));
    const stops = sagemaker.commandCalls(StopTrainingJobCommand);
    assert.equal(stops.length, 1);
    assert.deepEqual(stops[0]?.args[0].input, { TrainingJobName: jobName });

    sagemaker.reset();
    sagemaker.on(DescribeTrainingJobCommand).resolves(described('Completed', 'Completed'));
    await runIn(env(), () => activities.stopTrainingJob(job));
    assert.equal(sagemaker.commandCalls(StopTrainingJobCommand).length, 0, 'nothing to stop');

    sagemaker.reset();
    sagemaker
      .on(DescribeTrainingJobCommand)
      .resolvesOnce(described('InProgress', 'Uploading'))
      .resolves(described('Completed', 'Completed'));
    sagemaker.on(StopTrainingJobCommand).rejects(awsError('ValidationException', 'The job is not in progress'));
    await runIn(env(), () => activities.stopTrainingJob(job)); // it ended between describe and stop: fine
  });
});
