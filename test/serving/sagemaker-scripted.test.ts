/**
 * deployModel's SageMaker state machine where moto cannot go (it has no UpdateEndpoint and every endpoint is
 * InService at once): scripted SDK responses (aws-sdk-client-mock) behind the real workflow and activities,
 * in-process workers in a namespace of their own. A blue/green update (deployment config, autoscaling released for
 * an instance type change and registered again); a failed smoke test rolling back to the previous endpoint config;
 * an endpoint that goes Failed; SageMaker rolling an update back on an alarm.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import {
  ApplicationAutoScalingClient,
  DeregisterScalableTargetCommand,
  DescribeScalableTargetsCommand,
  PutScalingPolicyCommand,
  RegisterScalableTargetCommand,
} from '@aws-sdk/client-application-auto-scaling';
import {
  CreateEndpointCommand,
  CreateEndpointConfigCommand,
  CreateModelCommand,
  DeleteEndpointCommand,
  DescribeEndpointCommand,
  DescribeEndpointConfigCommand,
  DescribeModelCommand,
  SageMakerClient,
  UpdateEndpointCommand,
  type DescribeEndpointOutput,
  type UpdateEndpointInput,
} from '@aws-sdk/client-sagemaker';
import { InvokeEndpointCommand, SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { mockClient } from 'aws-sdk-client-mock';
import { MongoClient, type Db } from 'mongodb';
import { parseSettings, type Settings } from '../../src/config';
import { createDependencies, type Dependencies } from '../../src/infra/dependencies';
import { createLogger } from '../../src/infra/logger';
import { ENDPOINTS_COLLECTION, EndpointStore } from '../../src/serving/endpoints';
import type { DeploymentResult, EndpointRecord } from '../../src/serving/types';
import { dropTestDatabase, testEnv, uniqueName } from '../support/env';
import { registerModel, startServingWorkers, type InProcessWorkers } from './helpers';

const database = uniqueName('serving_scripted');
const OLD_CONFIG = 'twin-old-c-0000000000';

function notFound(what: string): Error {
  return Object.assign(new Error(`Could not find ${what}.`), {
    name: 'ValidationException',
    $metadata: { httpStatusCode: 400 },
  });
}

type Outcome = 'in-service' | 'alarm-rollback' | 'failed';

/** A scripted SageMaker: one endpoint whose updates end as `outcome` after two DescribeEndpoint polls. */
class ScriptedSageMaker {
  readonly sm;
  readonly rt;
  readonly as;
  readonly log: string[] = [];
  endpoint?: { status: string; config: string; pending?: string; reason?: string; polls: number; outcome: Outcome };
  configs = new Map<string, string>([[OLD_CONFIG, 'ml.g5.2xlarge']]);
  outcomes: Outcome[] = [];
  smoke: () => Promise<{ Body: Uint8Array }> = () =>
    Promise.resolve({ Body: new TextEncoder().encode(JSON.stringify([{ generated_text: 'I write like you.' }])) });
  scalableTarget = false;

  constructor(
    readonly sagemaker: SageMakerClient,
    readonly runtime: SageMakerRuntimeClient,
    readonly autoscaling: ApplicationAutoScalingClient,
  ) {
    this.sm = mockClient(sagemaker);
    this.rt = mockClient(runtime);
    this.as = mockClient(autoscaling);
  }

  install(existing?: { config: string }): void {
    this.sm.reset();
    this.rt.reset();
    this.as.reset();
    this.log.length = 0;
    this.endpoint = existing
      ? { status: 'InService', config: existing.config, polls: 0, outcome: 'in-service' }
      : undefined;
    const models = new Set<string>();
    this.sm.on(DescribeModelCommand).callsFake((input: { ModelName: string }) => {
      if (!models.has(input.ModelName)) throw notFound(`model ${input.ModelName}`);
      return { ModelName: input.ModelName };
    });
    this.sm.on(CreateModelCommand).callsFake((input: { ModelName: string }) => {
      this.log.push(`CreateModel ${input.ModelName}`);
      models.add(input.ModelName);
      return {};
    });
    this.sm.on(DescribeEndpointConfigCommand).callsFake((input: { EndpointConfigName: string }) => {
      const type = this.configs.get(input.EndpointConfigName);
      if (!type) throw notFound(`endpoint configuration ${input.EndpointConfigName}`);
      return {
        EndpointConfigName: input.EndpointConfigName,
        ProductionVariants: [{ VariantName: 'AllTraffic', InstanceType: type }],
      };
    });
    this.sm
      .on(CreateEndpointConfigCommand)
      .callsFake((input: { EndpointConfigName: string; ProductionVariants: { InstanceType: string }[] }) => {
        this.log.push(`CreateEndpointConfig ${input.EndpointConfigName}`);
        this.configs.set(input.EndpointConfigName, input.ProductionVariants[0]?.InstanceType ?? '?');
        return {};
      });
    this.sm.on(CreateEndpointCommand).callsFake((input: { EndpointConfigName: string }) => {
      this.log.push(`CreateEndpoint ${input.EndpointConfigName}`);
      this.endpoint = {
        status: 'Creating',
        config: input.EndpointConfigName,
        polls: 0,
        outcome: this.outcomes.shift() ?? 'in-service',
      };
      return { EndpointArn: 'arn:aws:sagemaker:us-east-1:123456789012:endpoint/x' };
    });
    this.sm.on(UpdateEndpointCommand).callsFake((input: UpdateEndpointInput) => {
      this.log.push(`UpdateEndpoint ${input.EndpointConfigName}`);
      assert.ok(this.endpoint && this.endpoint.status === 'InService', 'UpdateEndpoint only on an InService endpoint');
      this.endpoint = {
        ...this.endpoint,
        status: 'Updating',
        pending: input.EndpointConfigName,
        polls: 0,
        outcome: this.outcomes.shift() ?? 'in-service',
      };
      return {};
    });
    this.sm.on(DescribeEndpointCommand).callsFake((): DescribeEndpointOutput => {
      const e = this.endpoint;
      if (!e) throw notFound('endpoint');
      if ((e.status === 'Creating' || e.status === 'Updating') && ++e.polls >= 2) {
        const target = e.pending ?? e.config;
        if (e.outcome === 'in-service') Object.assign(e, { status: 'InService', config: target, pending: undefined });
        else if (e.outcome === 'alarm-rollback')
          Object.assign(e, { status: 'InService', pending: undefined, reason: 'Alarm twin-5xx fired; rolled back' });
        else
          Object.assign(e, {
            status: 'Failed',
            reason: 'CapacityError: Unable to provision requested ML compute capacity.',
          });
      }
      return {
        EndpointName: 'x',
        EndpointStatus: e.status as DescribeEndpointOutput['EndpointStatus'],
        EndpointConfigName: e.config,
        ...(e.pending ? { PendingDeploymentSummary: { EndpointConfigName: e.pending } } : {}),
        ...(e.reason ? { FailureReason: e.reason } : {}),
      } as DescribeEndpointOutput;
    });
    this.sm.on(DeleteEndpointCommand).callsFake(() => {
      this.log.push('DeleteEndpoint');
      if (!this.endpoint) throw notFound('endpoint');
      this.endpoint = undefined;
      return {};
    });
    this.rt.on(InvokeEndpointCommand).callsFake(async (input: { Body: Uint8Array }) => {
      this.log.push(
        `InvokeEndpoint ${JSON.stringify((JSON.parse(new TextDecoder().decode(input.Body)) as { inputs: string }).inputs)}`,
      );
      return this.smoke();
    });
    this.as
      .on(DescribeScalableTargetsCommand)
      .callsFake(() => ({ ScalableTargets: this.scalableTarget ? [{ ResourceId: 'x' }] : [] }));
    this.as.on(DeregisterScalableTargetCommand).callsFake(() => {
      this.log.push('DeregisterScalableTarget');
      this.scalableTarget = false;
      return {};
    });
    this.as.on(RegisterScalableTargetCommand).callsFake(() => {
      this.log.push('RegisterScalableTarget');
      this.scalableTarget = true;
      return {};
    });
    this.as.on(PutScalingPolicyCommand).callsFake(() => {
      this.log.push('PutScalingPolicy');
      return { PolicyARN: 'arn:aws:autoscaling:policy/x' };
    });
  }
}

const modelError = () =>
  Promise.reject(Object.assign(new Error('Received server error (500) from primary'), { name: 'ModelError' }));

function failure(error: unknown): ApplicationFailure {
  assert.ok(error instanceof WorkflowFailedError, String(error));
  const cause = error.cause instanceof ActivityFailure ? error.cause.cause : error.cause;
  assert.ok(cause instanceof ApplicationFailure, String(cause));
  return cause;
}

describe('deployModel SageMaker state machine (scripted SDK responses)', () => {
  let settings: Settings;
  let deps: Dependencies;
  let mongo: MongoClient;
  let db: Db;
  let aws: ScriptedSageMaker;
  let workers: InProcessWorkers;
  let endpointName: string;

  const deploy = (model: string) =>
    workers.client.workflow.execute('deployModel', {
      taskQueue: 'twin-pipelines',
      workflowId: uniqueName(`deploy-${model}`),
      args: [{ model, endpointName }],
    }) as Promise<DeploymentResult>;

  /** The failure a deployment ends with (undefined when it succeeded). */
  const deployFailure = (model: string) =>
    deploy(model).then(
      () => undefined,
      (e: unknown) => e,
    );

  /** An endpoint serving twin-old on OLD_CONFIG, as a previous deployModel left it. */
  async function seedServing(): Promise<void> {
    const record: EndpointRecord = {
      _id: endpointName,
      backend: 'sagemaker',
      status: 'InService',
      modelVersion: 'twin-old',
      sagemakerEndpointName: endpointName,
      endpointConfigName: OLD_CONFIG,
      updatedAt: new Date().toISOString(),
      history: [{ at: new Date().toISOString(), action: 'deploy', modelVersion: 'twin-old', outcome: 'in-service' }],
    };
    await db.collection<EndpointRecord>(ENDPOINTS_COLLECTION).insertOne(record);
    aws.install({ config: OLD_CONFIG });
  }

  before(async () => {
    settings = parseSettings({
      ...process.env,
      MONGODB_DATABASE: database,
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9', // never reached: every client is scripted
      SAGEMAKER_EXECUTION_ROLE_ARN: 'arn:aws:iam::123456789012:role/twin',
      SERVING_BACKEND: 'sagemaker',
      SAGEMAKER_ENDPOINT_INSTANCE_TYPE: 'ml.g6e.2xlarge',
      SAGEMAKER_ENDPOINT_TRAFFIC_ROUTING: 'CANARY',
      SAGEMAKER_ENDPOINT_CANARY_PERCENT: '20',
      SAGEMAKER_ENDPOINT_WAIT_INTERVAL_S: '120',
      SAGEMAKER_ENDPOINT_BAKE_S: '600',
      SAGEMAKER_ENDPOINT_ROLLBACK_ALARMS: 'twin-5xx, twin-latency',
    });
    deps = createDependencies(settings, createLogger({ level: 'silent' }));
    mongo = await MongoClient.connect(testEnv.mongoUri);
    db = mongo.db(database);
    const region = settings.aws.region;
    aws = new ScriptedSageMaker(
      new SageMakerClient({ region, endpoint: 'http://127.0.0.1:9' }),
      new SageMakerRuntimeClient({ region, endpoint: 'http://127.0.0.1:9' }),
      new ApplicationAutoScalingClient({ region, endpoint: 'http://127.0.0.1:9' }),
    );
    const artifactUri = 's3://twin-models/jobs/x/output/model.tar.gz';
    await registerModel(db, { version: 'twin-old', artifactUri, status: 'Approved' });
    await registerModel(db, {
      version: 'twin-new',
      artifactUri: 's3://twin-models/jobs/y/output/model.tar.gz',
      status: 'Approved',
    });
    workers = await startServingWorkers(deps, {
      sagemakerClient: aws.sagemaker,
      runtimeClient: aws.runtime,
      autoscalingClient: aws.autoscaling,
      pollIntervalMs: 50,
    });
  });

  beforeEach(() => {
    endpointName = `twin-${Math.random().toString(36).slice(2, 8)}`;
  });

  after(async () => {
    await workers?.stop();
    await deps?.close();
    await dropTestDatabase(mongo, database);
  });

  test('blue/green update: deployment config with canary and alarms, autoscaling released for the new instance type and registered again', async () => {
    await seedServing();
    aws.scalableTarget = true;
    const result = await deploy('twin-new');
    assert.equal(result.status, 'InService');
    assert.equal(result.modelVersion, 'twin-new');
    assert.equal(result.previousModelVersion, 'twin-old');
    assert.equal(result.smokeTest.sample, 'I write like you.');

    const updates = aws.sm.commandCalls(UpdateEndpointCommand).map((call) => call.args[0].input);
    assert.equal(updates.length, 1);
    const update = updates[0]!;
    assert.equal(update.EndpointName, endpointName);
    assert.match(update.EndpointConfigName ?? '', new RegExp(`^${endpointName}-c-[0-9a-f]{10}$`));
    assert.deepEqual(update.DeploymentConfig?.BlueGreenUpdatePolicy?.TrafficRoutingConfiguration, {
      Type: 'CANARY',
      WaitIntervalInSeconds: 120,
      CanarySize: { Type: 'CAPACITY_PERCENT', Value: 20 },
    });
    assert.equal(update.DeploymentConfig?.BlueGreenUpdatePolicy?.TerminationWaitInSeconds, 600);
    assert.deepEqual(update.DeploymentConfig?.AutoRollbackConfiguration, {
      Alarms: [{ AlarmName: 'twin-5xx' }, { AlarmName: 'twin-latency' }],
    });
    // The order AWS needs: the scalable target let go before an update that changes the instance type, registered again after.
    const order = aws.log
      .filter((line) => !line.startsWith('Create') && !line.startsWith('InvokeEndpoint'))
      .map((line) => line.split(' ')[0]);
    assert.deepEqual(order, [
      'DeregisterScalableTarget',
      'UpdateEndpoint',
      'RegisterScalableTarget',
      'PutScalingPolicy',
    ]);
    assert.match(
      aws.log.find((line) => line.startsWith('InvokeEndpoint')) ?? '',
      /### Instruction:\\n.+\\n\\n### Response:\\n"$/,
    );

    const record = await new EndpointStore(db).get(endpointName);
    assert.equal(record?.status, 'InService');
    assert.equal(record?.modelVersion, 'twin-new');
    assert.equal(record?.endpointConfigName, update.EndpointConfigName);
    assert.equal(record?.previousEndpointConfigName, OLD_CONFIG);
    assert.equal(record?.previousModelVersion, 'twin-old');
    assert.equal(record?.targetModelVersion, undefined);
  });

  test('a failed smoke test rolls the endpoint back to the previous endpoint config', async () => {
    await seedServing();
    aws.smoke = modelError;
    const cause = failure(await deployFailure('twin-new'));
    assert.equal(cause.type, 'SmokeTestFailed');
    assert.match(cause.message, /ModelError: Received server error/);
    assert.match(cause.message, new RegExp(`rolled back to ${OLD_CONFIG}`));

    const updates = aws.sm.commandCalls(UpdateEndpointCommand).map((call) => call.args[0].input.EndpointConfigName);
    assert.equal(updates.length, 2);
    assert.notEqual(updates[0], OLD_CONFIG);
    assert.equal(updates[1], OLD_CONFIG, 'the second update goes back to the previous config');
    assert.equal(aws.endpoint?.config, OLD_CONFIG);
    assert.equal(aws.endpoint?.status, 'InService');

    const record = await new EndpointStore(db).get(endpointName);
    assert.equal(record?.status, 'InService', 'the previous version serves again');
    assert.equal(record?.modelVersion, 'twin-old');
    assert.equal(record?.endpointConfigName, OLD_CONFIG);
    assert.match(record?.history.at(-1)?.outcome ?? '', /^rolled-back: smoke test failed/);
    assert.equal(record?.history.at(-1)?.modelVersion, 'twin-new');
  });

  test('an endpoint that goes Failed on create fails the deployment with its reason; nothing is smoke-tested', async () => {
    aws.install();
    aws.outcomes = ['failed'];
    const cause = failure(await deployFailure('twin-new'));
    assert.equal(cause.type, 'EndpointFailed');
    assert.match(cause.message, /CapacityError: Unable to provision/);
    assert.deepEqual(
      aws.log.map((line) => line.split(' ')[0]),
      ['CreateModel', 'CreateEndpointConfig', 'CreateEndpoint'],
    );
    const record = await new EndpointStore(db).get(endpointName);
    assert.equal(record?.status, 'Failed');
    assert.match(record?.history.at(-1)?.outcome ?? '', /^failed: EndpointFailed/);
  });

  test('an update SageMaker rolls back on an alarm fails the deployment; the previous version keeps serving', async () => {
    await seedServing();
    aws.outcomes = ['alarm-rollback'];
    const cause = failure(await deployFailure('twin-new'));
    assert.equal(cause.type, 'DeploymentRolledBack');
    assert.match(cause.message, /Alarm twin-5xx fired/);
    assert.equal(aws.rt.commandCalls(InvokeEndpointCommand).length, 0);
    const record = await new EndpointStore(db).get(endpointName);
    assert.equal(record?.status, 'InService');
    assert.equal(record?.modelVersion, 'twin-old');
    assert.match(record?.history.at(-1)?.outcome ?? '', /^rolled-back: DeploymentRolledBack/);
  });
  test('a new endpoint whose first smoke test fails is deleted with its scalable target: nothing to roll back to, and it would bill', async () => {
    aws.install();
    aws.smoke = modelError;
    const cause = failure(await deployFailure('twin-new'));
    assert.equal(cause.type, 'SmokeTestFailed');
    assert.match(cause.message, /no previous endpoint config to roll back to; the endpoint was deleted/);
    assert.deepEqual(
      aws.log.map((line) => line.split(' ')[0]).filter((call) => !call?.startsWith('Create')),
      ['RegisterScalableTarget', 'PutScalingPolicy', 'InvokeEndpoint', 'DeregisterScalableTarget', 'DeleteEndpoint'],
    );
    assert.equal(aws.endpoint, undefined);
    const record = await new EndpointStore(db).get(endpointName);
    assert.equal(record?.status, 'Failed');
    assert.match(record?.history.at(-1)?.outcome ?? '', /^failed: smoke test failed: .*\(endpoint deleted\)$/);
  });
  test('an endpoint SageMaker left Failed is deleted and created again (it served nothing)', async () => {
    aws.install();
    aws.smoke = () =>
      Promise.resolve({ Body: new TextEncoder().encode(JSON.stringify([{ generated_text: 'Back again.' }])) });
    aws.endpoint = {
      status: 'Failed',
      config: OLD_CONFIG,
      reason: 'CapacityError: Unable to provision requested ML compute capacity.',
      polls: 0,
      outcome: 'in-service',
    };
    const result = await deploy('twin-new');
    assert.equal(result.status, 'InService');
    assert.equal(result.smokeTest.sample, 'Back again.');
    const calls = aws.log.map((line) => line.split(' ')[0]);
    assert.ok(calls.indexOf('DeleteEndpoint') >= 0, calls.join(' '));
    assert.ok(calls.indexOf('DeleteEndpoint') < calls.indexOf('CreateEndpoint'), calls.join(' '));
    assert.ok(!calls.includes('UpdateEndpoint'));
    assert.equal(aws.endpoint?.status, 'InService');
    assert.notEqual(aws.endpoint?.config, OLD_CONFIG);
  });
});
