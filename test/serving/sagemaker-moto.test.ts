/**
 * deployModel's SageMaker create path against moto (a real AWS API server), through the real workflow and
 * activities (in-process workers in a namespace of their own): CreateModel / CreateEndpointConfig / CreateEndpoint
 * read back with Describe*, the Application Auto Scaling target and target-tracking policy, the smoke invocation
 * (moto's scripted InvokeEndpoint result), the endpoints document, the registry record and the model package
 * approved; a retried deployment adopting what exists; the gate refusing Rejected and pending versions.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ApplicationAutoScalingClient,
  DescribeScalableTargetsCommand,
  DescribeScalingPoliciesCommand,
} from '@aws-sdk/client-application-auto-scaling';
import {
  DescribeEndpointCommand,
  DescribeEndpointConfigCommand,
  DescribeModelCommand,
  DescribeModelPackageCommand,
  ListEndpointConfigsCommand,
  SageMakerClient,
} from '@aws-sdk/client-sagemaker';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { MongoClient, type Db } from 'mongodb';
import { parseSettings, type Settings } from '../../src/config';
import { createDependencies, type Dependencies } from '../../src/infra/dependencies';
import { createLogger } from '../../src/infra/logger';
import { EndpointLeases, EndpointStore } from '../../src/serving/endpoints';
import { scalableTargetId } from '../../src/serving/sagemaker';
import type { DeploymentResult } from '../../src/serving/types';
import { INFERENCE_IMAGE_TAG } from '../../src/training/sagemaker';
import { registerModelPackage } from '../../src/training/registry';
import { dropTestDatabase, testEnv, uniqueName } from '../support/env';
import { registerModel, startServingWorkers, type InProcessWorkers } from './helpers';

const database = uniqueName('serving_moto');
const roleArn = 'arn:aws:iam::123456789012:role/twin-sagemaker-execution';
const endpointName = `twin-moto-${Date.now().toString(36)}`;
const artifactUri = 's3://twin-models/training/jobs/twin-sft-moto/output/model.tar.gz';

async function scriptInvocation(settings: Settings, body: unknown): Promise<void> {
  const response = await fetch(`${testEnv.awsEndpoint}/moto-api/static/sagemaker/endpoint-results`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      region: settings.aws.region,
      results: [{ Body: JSON.stringify(body), ContentType: 'application/json' }],
    }),
  });
  assert.equal(response.status, 201, await response.text());
}

function failureType(error: unknown): string | undefined {
  assert.ok(error instanceof WorkflowFailedError, String(error));
  const cause = error.cause instanceof ActivityFailure ? error.cause.cause : error.cause;
  assert.ok(cause instanceof ApplicationFailure, String(cause));
  return cause.type ?? undefined;
}

describe('deployModel to SageMaker against moto', () => {
  let settings: Settings;
  let deps: Dependencies;
  let mongo: MongoClient;
  let db: Db;
  let sagemaker: SageMakerClient;
  let autoscaling: ApplicationAutoScalingClient;
  let workers: InProcessWorkers;
  let packageArn: string;

  before(async () => {
    settings = parseSettings({
      ...process.env,
      MONGODB_DATABASE: database,
      AWS_ENDPOINT_URL: testEnv.awsEndpoint,
      SAGEMAKER_EXECUTION_ROLE_ARN: roleArn,
      SERVING_BACKEND: 'sagemaker',
      SERVING_ENDPOINT_NAME: endpointName,
      SAGEMAKER_ENDPOINT_INSTANCE_TYPE: 'ml.g4dn.xlarge', // moto rejects ml.g5.* in endpoint configs
      SAGEMAKER_ENDPOINT_MIN_INSTANCES: '1',
      SAGEMAKER_ENDPOINT_MAX_INSTANCES: '3',
      SAGEMAKER_ENDPOINT_TARGET_INVOCATIONS: '25',
      SAGEMAKER_ENDPOINT_SCALE_IN_COOLDOWN_S: '600',
      SAGEMAKER_ENDPOINT_SCALE_OUT_COOLDOWN_S: '90',
      SAGEMAKER_ENDPOINT_STARTUP_TIMEOUT_S: '1200',
    });
    deps = createDependencies(settings, createLogger({ level: 'silent' }));
    mongo = await MongoClient.connect(testEnv.mongoUri);
    db = mongo.db(database);
    sagemaker = new SageMakerClient({ region: settings.aws.region, endpoint: testEnv.awsEndpoint });
    autoscaling = new ApplicationAutoScalingClient({ region: settings.aws.region, endpoint: testEnv.awsEndpoint });
    packageArn = await registerModelPackage(sagemaker, {
      groupName: uniqueName('twin-serving').replace(/_/g, '-'),
      inferenceImageUri: `763104351884.dkr.ecr.${settings.aws.region}.amazonaws.com/${INFERENCE_IMAGE_TAG}`,
      model: {
        version: 'twin-sft-moto',
        mode: 'sft',
        jobName: 'twin-sft-moto',
        datasetArtifactId: 'instruction-dataset:test',
        datasetVersion: 'test',
        baseModel: 'tiny-llama',
        artifactUri,
        metrics: {},
      },
    });
    await registerModel(db, { version: 'twin-sft-moto', artifactUri, status: 'Approved', modelPackageArn: packageArn });
    await registerModel(db, { version: 'twin-sft-rejected', artifactUri, status: 'Rejected' });
    await registerModel(db, { version: 'twin-sft-pending', artifactUri, status: 'PendingManualApproval' });
    workers = await startServingWorkers(deps, { pollIntervalMs: 200 });
  });

  after(async () => {
    await workers?.stop();
    await deps?.close();
    await dropTestDatabase(mongo, database);
    sagemaker?.destroy();
    autoscaling?.destroy();
  });

  test('create path: model, endpoint config, endpoint, autoscaling, smoke test, endpoints document, registry', async () => {
    await scriptInvocation(settings, [{ generated_text: 'An LLM twin writes like you do.' }]);
    const workflowId = uniqueName('deploy-moto');
    const result = (await workers.client.workflow.execute('deployModel', {
      taskQueue: 'twin-pipelines',
      workflowId,
      args: [{ model: 'twin-sft-moto' }],
    })) as DeploymentResult;
    assert.equal(result.status, 'InService');
    assert.equal(result.backend, 'sagemaker');
    assert.equal(result.endpointName, endpointName);
    assert.equal(result.modelVersion, 'twin-sft-moto');
    assert.equal(result.previousModelVersion, undefined);
    assert.equal(result.smokeTest.ok, true);
    assert.equal(result.smokeTest.sample, 'An LLM twin writes like you do.');

    // What AWS holds, read back.
    const endpoint = await sagemaker.send(new DescribeEndpointCommand({ EndpointName: endpointName }));
    assert.equal(endpoint.EndpointStatus, 'InService');
    const config = await sagemaker.send(
      new DescribeEndpointConfigCommand({ EndpointConfigName: endpoint.EndpointConfigName }),
    );
    assert.match(config.EndpointConfigName ?? '', new RegExp(`^${endpointName}-c-[0-9a-f]{10}$`));
    const variant = config.ProductionVariants?.[0];
    assert.equal(variant?.VariantName, 'AllTraffic');
    assert.equal(variant?.InstanceType, 'ml.g4dn.xlarge');
    assert.equal(variant?.InitialInstanceCount, 1);
    const model = await sagemaker.send(new DescribeModelCommand({ ModelName: variant?.ModelName }));
    assert.match(model.ModelName ?? '', new RegExp(`^${endpointName}-m-[0-9a-f]{10}$`));
    assert.equal(model.ExecutionRoleArn, roleArn);
    assert.equal(model.PrimaryContainer?.ModelDataUrl, artifactUri);
    assert.equal(
      model.PrimaryContainer?.Image,
      `763104351884.dkr.ecr.${settings.aws.region}.amazonaws.com/${INFERENCE_IMAGE_TAG}`,
    );
    assert.equal(model.PrimaryContainer?.Environment?.HF_MODEL_ID, '/opt/ml/model');
    assert.equal(model.PrimaryContainer?.Environment?.SM_NUM_GPUS, '1');
    assert.equal(model.PrimaryContainer?.Environment?.MAX_INPUT_TOKENS, '2048');
    assert.equal(model.PrimaryContainer?.Environment?.MAX_TOTAL_TOKENS, '4096');

    const targets = await autoscaling.send(
      new DescribeScalableTargetsCommand({
        ServiceNamespace: 'sagemaker',
        ResourceIds: [scalableTargetId(endpointName)],
      }),
    );
    assert.equal(targets.ScalableTargets?.length, 1);
    assert.equal(targets.ScalableTargets?.[0]?.ScalableDimension, 'sagemaker:variant:DesiredInstanceCount');
    assert.equal(targets.ScalableTargets?.[0]?.MinCapacity, 1);
    assert.equal(targets.ScalableTargets?.[0]?.MaxCapacity, 3);
    const policies = await autoscaling.send(
      new DescribeScalingPoliciesCommand({ ServiceNamespace: 'sagemaker', ResourceId: scalableTargetId(endpointName) }),
    );
    const policy = policies.ScalingPolicies?.[0];
    assert.equal(policy?.PolicyType, 'TargetTrackingScaling');
    const tracking = policy?.TargetTrackingScalingPolicyConfiguration;
    assert.equal(tracking?.TargetValue, 25);
    assert.equal(
      tracking?.PredefinedMetricSpecification?.PredefinedMetricType,
      'SageMakerVariantInvocationsPerInstance',
    );
    assert.equal(tracking?.ScaleInCooldown, 600);
    assert.equal(tracking?.ScaleOutCooldown, 90);

    // The endpoints document the RAG library reads.
    const record = await new EndpointStore(db).get(endpointName);
    assert.ok(record);
    assert.equal(record.status, 'InService');
    assert.equal(record.backend, 'sagemaker');
    assert.equal(record.modelVersion, 'twin-sft-moto');
    assert.equal(record.sagemakerEndpointName, endpointName);
    assert.equal(record.endpointConfigName, config.EndpointConfigName);
    assert.equal(record.url, undefined);
    assert.deepEqual(
      record.history.map((h) => [h.action, h.modelVersion, h.outcome]),
      [
        ['deploy', 'twin-sft-moto', 'started'],
        ['deploy', 'twin-sft-moto', 'in-service'],
      ],
    );

    // The registry: deployment recorded on the version, its model package Approved.
    const stored = await db
      .collection<{ _id: string; lastDeployment?: { endpointName: string; workflowId: string }; endpoints?: string[] }>(
        'models',
      )
      .findOne({ _id: 'twin-sft-moto' });
    assert.equal(stored?.lastDeployment?.endpointName, endpointName);
    assert.equal(stored?.lastDeployment?.workflowId, workflowId);
    assert.deepEqual(stored?.endpoints, [endpointName]);
    const described = await sagemaker.send(new DescribeModelPackageCommand({ ModelPackageName: packageArn }));
    assert.equal(described.ModelApprovalStatus, 'Approved');

    // A retried deployment (same workflow id → same names) adopts everything: no second config, endpoint untouched.
    const configsBefore = (await sagemaker.send(new ListEndpointConfigsCommand({ NameContains: endpointName })))
      .EndpointConfigs?.length;
    await scriptInvocation(settings, [{ generated_text: 'Again.' }]);
    const again = (await workers.client.workflow.execute('deployModel', {
      taskQueue: 'twin-pipelines',
      workflowId,
      args: [{ model: 'twin-sft-moto' }],
    })) as DeploymentResult;
    assert.equal(again.status, 'InService');
    const configsAfter = (await sagemaker.send(new ListEndpointConfigsCommand({ NameContains: endpointName })))
      .EndpointConfigs?.length;
    assert.equal(configsAfter, configsBefore);
    assert.equal(
      (await sagemaker.send(new DescribeEndpointCommand({ EndpointName: endpointName }))).EndpointConfigName,
      config.EndpointConfigName,
    );
  });

  test('the gate: Rejected and pending versions are refused before anything is created', async () => {
    for (const model of ['twin-sft-rejected', 'twin-sft-pending']) {
      const name = `${endpointName}-gate`;
      const error = await workers.client.workflow
        .execute('deployModel', {
          taskQueue: 'twin-pipelines',
          workflowId: uniqueName(`deploy-${model}`),
          args: [{ model, endpointName: name }],
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      assert.equal(failureType(error), 'ModelNotApproved', model);
      await assert.rejects(
        sagemaker.send(new DescribeEndpointCommand({ EndpointName: name })),
        /Could not find endpoint/,
      );
      assert.equal(await new EndpointStore(db).get(name), null, 'no endpoints document for a refused model');
      assert.equal(await new EndpointLeases(db).holder(name), null, 'a refused deployment releases its claim');
    }
    const unknown = await workers.client.workflow
      .execute('deployModel', {
        taskQueue: 'twin-pipelines',
        workflowId: uniqueName('deploy-unknown'),
        args: [{ model: 'no-such-version' }],
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    assert.equal(failureType(unknown), 'ModelNotFound');
  });
  test('one deployment at a time per endpoint: a running holder → EndpointBusy; an ended one is taken over', async () => {
    const name = `${endpointName}-lease`;
    const leases = new EndpointLeases(db);
    // A run on a task queue nobody polls stays RUNNING: it holds the endpoint like a deployment in progress.
    const holder = await workers.client.workflow.start('deployModel', {
      taskQueue: uniqueName('nobody-polls'),
      workflowId: uniqueName('deploy-holder'),
      args: [{ model: 'twin-sft-moto', endpointName: name }],
    });
    assert.deepEqual(await leases.claim(name, holder.workflowId), { claimed: true });
    const deploy = () =>
      workers.client.workflow.execute('deployModel', {
        taskQueue: 'twin-pipelines',
        workflowId: uniqueName('deploy-lease'),
        args: [{ model: 'twin-sft-moto', endpointName: name }],
      }) as Promise<DeploymentResult>;
    const busy = await deploy().then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.equal(failureType(busy), 'EndpointBusy');
    assert.match(String((busy as WorkflowFailedError).cause?.message), new RegExp(holder.workflowId));
    assert.equal(await new EndpointStore(db).get(name), null, 'a busy endpoint is not touched');
    assert.equal((await leases.holder(name))?.workflowId, holder.workflowId);

    await holder.terminate('the test ends the holder without releasing its lease');
    await scriptInvocation(settings, [{ generated_text: 'Taken over.' }]);
    const result = await deploy();
    assert.equal(result.status, 'InService');
    assert.equal(await leases.holder(name), null, 'released when the deployment ended');
  });
});
