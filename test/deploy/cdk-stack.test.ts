/**
 * Assertions on the synthesized CloudFormation template of the CDK app (cdk/lib/twin-stack.ts).
 */
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-argument -- CloudFormation template JSON is untyped */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AssetManifestArtifact } from 'aws-cdk-lib/cx-api';
import { DeployConfigError, SECRET_KEYS, configFromContext, resolveDeployConfig } from '../../cdk/lib/config';
import { TwinStack } from '../../cdk/lib/twin-stack';
import { QUEUE_NAMES, TASK_QUEUES } from '../../src/config';

type Json = Record<string, any>;

function synth(context: Record<string, unknown> = {}): { stack: TwinStack; template: Template } {
  // Skip esbuild bundling of the Lambda here (test/deploy/cdk-synth.test.ts runs the real synth).
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [], ...context } });
  const config = configFromContext((key) => app.node.tryGetContext(key));
  const stack = new TwinStack(app, config.stackName, { config, env: { account: '123456789012', region: 'eu-west-1' } });
  return { stack, template: Template.fromStack(stack) };
}

const ALL_SECRET_KEYS: string[] = Object.values(SECRET_KEYS).flat();

const { stack, template } = synth();
const resources = (type: string): Array<[string, Json]> => Object.entries(template.findResources(type));
const containerOf = (taskDef: Json): Json => taskDef.Properties.ContainerDefinitions[0];
const envOf = (container: Json): Record<string, unknown> =>
  Object.fromEntries((container.Environment ?? []).map((e: { Name: string; Value: unknown }) => [e.Name, e.Value]));
const taskDefsByQueue = (t: Template): Map<string, Array<[string, Json]>> => {
  const out = new Map<string, Array<[string, Json]>>();
  for (const [id, def] of Object.entries(t.findResources('AWS::ECS::TaskDefinition')) as Array<[string, Json]>) {
    const queue = envOf(containerOf(def)).TWIN_WORKER_QUEUES as string | undefined;
    if (queue) out.set(queue, [...(out.get(queue) ?? []), [id, def]]);
  }
  return out;
};
const serviceUsing = (t: Template, taskDefId: string): Array<[string, Json]> =>
  (Object.entries(t.findResources('AWS::ECS::Service')) as Array<[string, Json]>).filter(
    ([, s]) => s.Properties.TaskDefinition?.Ref === taskDefId,
  );

/** Every IAM policy statement of the template, with the logical ids of the roles it is attached to. */
function statements(t: Template): Array<{ statement: Json; roles: string[] }> {
  const out: Array<{ statement: Json; roles: string[] }> = [];
  for (const [, policy] of Object.entries(t.findResources('AWS::IAM::Policy')) as Array<[string, Json]>) {
    const roles = (policy.Properties.Roles ?? []).map((r: Json) => r.Ref as string);
    for (const statement of policy.Properties.PolicyDocument.Statement) out.push({ statement, roles });
  }
  return out;
}
const actionsOf = (s: Json): string[] => [s.Action].flat();

void describe('CDK stack: worker services', () => {
  void test('one Fargate service per task queue, each running only its queue, plus the API', () => {
    const byQueue = taskDefsByQueue(template);
    assert.deepEqual([...byQueue.keys()].sort(), [...QUEUE_NAMES].sort());
    for (const queue of QUEUE_NAMES) {
      const defs = byQueue.get(queue)!;
      assert.equal(defs.length, 1, `${queue}: one task definition`);
      const services = serviceUsing(template, defs[0]![0]);
      assert.equal(services.length, 1, `${queue}: one service`);
      assert.equal(services[0]![1].Properties.ServiceName, `LlmTwin-${TASK_QUEUES[queue]}`);
      assert.equal(services[0]![1].Properties.LaunchType, undefined, 'capacity providers, not a launch type');
    }
    template.resourceCountIs('AWS::ECS::Service', QUEUE_NAMES.length + 1);
  });

  void test('CPU, memory and counts come from the per-queue config', () => {
    const { config } = stack;
    for (const [queue, defs] of taskDefsByQueue(template)) {
      const [id, def] = defs[0]!;
      const q = config.workers.queues[queue as keyof typeof config.workers.queues];
      assert.equal(def.Properties.Cpu, String(q.cpu));
      assert.equal(def.Properties.Memory, String(q.memoryMiB));
      assert.equal(serviceUsing(template, id)[0]![1].Properties.DesiredCount, q.desiredCount);
    }
    assert.equal(config.workers.queues.features.cpu, 2048, 'the CPU-bound queue is sized larger by default');
  });

  void test('no service has a public IP, and all run in the private subnets', () => {
    const privateSubnets = resources('AWS::EC2::Subnet')
      .filter(([, s]) => s.Properties.MapPublicIpOnLaunch === false)
      .map(([id]) => id)
      .sort();
    assert.equal(privateSubnets.length, 2);
    for (const [id, service] of resources('AWS::ECS::Service')) {
      const vpc = service.Properties.NetworkConfiguration.AwsvpcConfiguration;
      assert.equal(vpc.AssignPublicIp, 'DISABLED', `${id} assigns public IPs`);
      assert.deepEqual(
        vpc.Subnets.map((s: Json) => s.Ref).sort(),
        privateSubnets,
        `${id} is not in the private subnets`,
      );
    }
  });

  void test('workers shut down gracefully: SIGTERM window and start-before-stop deployments', () => {
    for (const [, defs] of taskDefsByQueue(template)) {
      const [id, def] = defs[0]!;
      assert.equal(containerOf(def).StopTimeout, 120);
      const config = serviceUsing(template, id)[0]![1].Properties.DeploymentConfiguration;
      assert.equal(config.MinimumHealthyPercent, 100);
      assert.deepEqual(config.DeploymentCircuitBreaker, { Enable: true, Rollback: true });
    }
  });

  void test('the image is built from the repository Dockerfile for linux/amd64 unless an image URI is given', () => {
    const assembly = (stack.node.root as App).synth();
    const manifest = assembly.artifacts.find(
      (a): a is AssetManifestArtifact => a instanceof AssetManifestArtifact && a.id === `${stack.artifactId}.assets`,
    );
    const images = Object.values(manifest!.contents.dockerImages ?? {});
    assert.equal(images.length, 1, 'one image for every service');
    const source = images[0]!.source;
    assert.equal(source.dockerFile, 'Dockerfile');
    assert.equal(source.platform, 'linux/amd64');
    assert.deepEqual(source.dockerBuildArgs, { EMBEDDING_MODEL: 'baked' });
    // The staged build context is the repository root, filtered by .dockerignore.
    const staged = path.join(assembly.directory, source.directory!);
    assert.ok(existsSync(path.join(staged, 'Dockerfile')) && existsSync(path.join(staged, 'package-lock.json')));
    for (const ignored of ['node_modules', 'test', '.git', 'cdk.out'])
      assert.ok(!existsSync(path.join(staged, ignored)), `${ignored} is not in the build context`);
  });
});

void describe('CDK stack: secrets', () => {
  void test('application secrets are ECS secrets from Secrets Manager JSON keys, never plain environment values', () => {
    const secretIds = new Set(resources('AWS::SecretsManager::Secret').map(([id]) => id));
    assert.equal(secretIds.size, Object.keys(SECRET_KEYS).length);
    for (const [id, def] of resources('AWS::ECS::TaskDefinition')) {
      const container = containerOf(def);
      for (const name of Object.keys(envOf(container))) {
        assert.ok(!ALL_SECRET_KEYS.includes(name), `${id}: ${name} is a plain environment value`);
      }
      for (const secret of container.Secrets ?? []) {
        // { "Fn::Join": ["", [{Ref: <secret>}, ":KEY::"]] }
        const [ref, suffix] = secret.ValueFrom['Fn::Join'][1];
        assert.ok(secretIds.has(ref.Ref), `${id}: ${secret.Name} comes from a stack secret`);
        assert.equal(suffix, `:${secret.Name}::`, `${id}: ${secret.Name} reads its own JSON key`);
      }
    }
  });

  void test('each service gets the secrets it needs: Temporal credentials for workers, API keys for the API', () => {
    const secretNames = (def: Json): string[] =>
      (containerOf(def).Secrets ?? []).map((s: Json) => s.Name as string).sort();
    const byQueue = taskDefsByQueue(template);
    for (const queue of QUEUE_NAMES) {
      const names = secretNames(byQueue.get(queue)![0]![1]);
      for (const key of SECRET_KEYS.temporal) assert.ok(names.includes(key), `${queue} lacks ${key}`);
      assert.ok(!names.includes('API_KEYS'), `${queue} must not get the API keys`);
    }
    assert.deepEqual(
      secretNames(byQueue.get('pipelines')![0]![1]),
      [...SECRET_KEYS.temporal].sort(),
      'workflow-only workers get Temporal only',
    );
    assert.ok(secretNames(byQueue.get('llm')![0]![1]).includes('OPENAI_API_KEY'));
    const [api] = resources('AWS::ECS::TaskDefinition').filter(([, d]) => containerOf(d).Name === 'api');
    const apiNames = secretNames(api![1]);
    assert.ok(apiNames.includes('API_KEYS') && apiNames.includes('MONGODB_URI') && apiNames.includes('OPENAI_API_KEY'));
  });

  void test('secrets are created with every key present and empty, so task start never fails on a missing key', () => {
    for (const [, secret] of resources('AWS::SecretsManager::Secret')) {
      const value = JSON.parse(secret.Properties.SecretString as string) as Record<string, string>;
      assert.ok(Object.keys(value).length > 0);
      assert.ok(
        Object.values(value).every((v) => v === ''),
        'no secret value in the template',
      );
      assert.equal(secret.DeletionPolicy, 'Retain');
    }
  });
});

void describe('CDK stack: artifacts bucket', () => {
  void test('encrypted, versioned, not public, TLS only, with lifecycle rules for old job outputs', () => {
    template.resourceCountIs('AWS::S3::Bucket', 1);
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      VersioningConfiguration: { Status: 'Enabled' },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Prefix: 'jobs/', ExpirationInDays: 30, Status: 'Enabled' }),
          Match.objectLike({
            NoncurrentVersionExpiration: { NoncurrentDays: 30 },
            AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
          }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    const [, policy] = resources('AWS::S3::BucketPolicy')[0]!;
    for (const s of policy.Properties.PolicyDocument.Statement as Json[]) {
      assert.ok(!(s.Effect === 'Allow' && (s.Principal === '*' || s.Principal?.AWS === '*')), 'no public Allow');
    }
  });
});

void describe('CDK stack: SageMaker execution role and task roles', () => {
  const [roleId, role] = resources('AWS::IAM::Role').find(([id]) => id.startsWith('SageMakerExecutionRole'))!;

  void test('the SageMaker role is trusted by sagemaker.amazonaws.com only', () => {
    assert.deepEqual(role.Properties.AssumeRolePolicyDocument.Statement, [
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'sagemaker.amazonaws.com' } },
    ]);
    assert.equal(
      role.Properties.ManagedPolicyArns,
      undefined,
      'no broad managed policy such as AmazonSageMakerFullAccess',
    );
  });

  void test('the SageMaker role has least privilege: its bucket, the configured ECR repositories, SageMaker logs', () => {
    const own = statements(template).filter((s) => s.roles.includes(roleId));
    assert.ok(own.length > 0);
    for (const { statement } of own) {
      for (const action of actionsOf(statement))
        assert.ok(!action.endsWith(':*') && action !== '*', `wildcard action ${action}`);
      if ([statement.Resource].flat().includes('*')) {
        const actions = actionsOf(statement);
        const scoped = actions.every((a) => a === 'ecr:GetAuthorizationToken' || a === 'cloudwatch:PutMetricData');
        assert.ok(scoped, `only token/metric calls may use Resource "*": ${actions.join(',')}`);
        if (actions.includes('cloudwatch:PutMetricData'))
          assert.deepEqual(statement.Condition, { StringLike: { 'cloudwatch:namespace': '/aws/sagemaker/*' } });
      }
    }
    const ecrPull = own.find(({ statement }) => actionsOf(statement).includes('ecr:BatchGetImage'));
    assert.deepEqual([ecrPull!.statement.Resource].flat(), stack.config.sagemaker.imageRepositoryArns);
    const s3 = own.filter(({ statement }) => actionsOf(statement).some((a) => a.startsWith('s3:')));
    assert.ok(s3.length > 0);
    const s3Actions = s3.flatMap(({ statement }) => actionsOf(statement));
    assert.ok(s3Actions.includes('s3:PutObject') && s3Actions.includes('s3:GetObject*'));
    assert.ok(!s3Actions.some((a) => a.startsWith('s3:DeleteObject')), 'SageMaker cannot delete artifacts');
    for (const { statement } of s3) {
      for (const resource of [statement.Resource].flat())
        assert.match(JSON.stringify(resource), /Artifacts/, 'S3 access only on the artifacts bucket');
    }
  });

  void test('iam:PassRole is granted on exactly the SageMaker role, to SageMaker only, and only to the ml workers', () => {
    const passRole = statements(template).filter(({ statement }) =>
      actionsOf(statement).some((a) => a === 'iam:PassRole' || a === 'iam:*' || a === '*'),
    );
    assert.equal(passRole.length, 1);
    const [{ statement, roles }] = passRole as [{ statement: Json; roles: string[] }];
    assert.deepEqual(statement.Resource, { 'Fn::GetAtt': [roleId, 'Arn'] });
    assert.deepEqual(statement.Condition, { StringEquals: { 'iam:PassedToService': 'sagemaker.amazonaws.com' } });
    assert.equal(roles.length, 1);
    assert.match(roles[0]!, /^MlTaskRole/);
  });

  void test('only the ml workers may create SageMaker jobs and endpoints, scoped to this account and region', () => {
    const creators = statements(template).filter(({ statement }) =>
      actionsOf(statement).includes('sagemaker:CreateTrainingJob'),
    );
    assert.equal(creators.length, 1);
    assert.match(creators[0]!.roles[0]!, /^MlTaskRole/);
    const resourcesJson = JSON.stringify(creators[0]!.statement.Resource);
    for (const kind of ['training-job/*', 'model/*', 'endpoint-config/*', 'endpoint/*'])
      assert.ok(resourcesJson.includes(`:sagemaker:eu-west-1:123456789012:${kind}`), kind);
  });

  void test('only the ml workers may approve model packages (the evaluation gate) and read rollback alarms', () => {
    for (const action of [
      'sagemaker:UpdateModelPackage',
      'sagemaker:CreateModelPackage',
      'cloudwatch:DescribeAlarms',
    ]) {
      const granting = statements(template).filter(({ statement }) => actionsOf(statement).includes(action));
      assert.equal(granting.length, 1, action);
      assert.match(granting[0]!.roles[0]!, /^MlTaskRole/, action);
      assert.ok(!JSON.stringify(granting[0]!.statement.Resource).includes('"*"'), `${action} is scoped`);
    }
  });

  void test('the workflow-only workers have no data or AWS permissions at all', () => {
    const pipelinesRole = resources('AWS::IAM::Role').find(([id]) => id.startsWith('PipelinesTaskRole'))!;
    assert.equal(statements(template).filter(({ roles }) => roles.includes(pipelinesRole[0])).length, 0);
  });
});

void describe('CDK stack: API, load balancer, autoscaling, logs, outputs', () => {
  void test('the API sits behind a public ALB that checks /health; HTTP only without a certificate', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Scheme: 'internet-facing',
      Type: 'application',
    });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      HealthCheckPath: '/health',
      Port: 80,
      Protocol: 'HTTP',
      TargetType: 'ip',
    });
    template.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 1);
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 80, Protocol: 'HTTP' });
    const [api] = resources('AWS::ECS::TaskDefinition').filter(([, d]) => containerOf(d).Name === 'api');
    const container = containerOf(api![1]);
    assert.deepEqual(container.Command, ['dist/src/api/server.js']);
    assert.equal(container.PortMappings[0].ContainerPort, 8000);
    assert.match(container.HealthCheck.Command.join(' '), /\/health/);
  });

  void test('HTTPS with the given certificate, and HTTP redirected to it', () => {
    const arn = 'arn:aws:acm:eu-west-1:123456789012:certificate/abc';
    const { template: https } = synth({ 'twin:certificateArn': arn });
    https.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 443,
      Protocol: 'HTTPS',
      Certificates: [{ CertificateArn: arn }],
    });
    https.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 80,
      DefaultActions: [
        Match.objectLike({ Type: 'redirect', RedirectConfig: Match.objectLike({ Protocol: 'HTTPS', Port: '443' }) }),
      ],
    });
    assert.match(JSON.stringify(https.findOutputs('ApiUrl')), /https:\/\//);
  });

  void test('autoscaling: CPU target tracking for the API, backlog step scaling for every worker queue', () => {
    template.resourceCountIs('AWS::ApplicationAutoScaling::ScalableTarget', QUEUE_NAMES.length + 1);
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingScalingPolicyConfiguration: Match.objectLike({
        PredefinedMetricSpecification: { PredefinedMetricType: 'ECSServiceAverageCPUUtilization' },
        TargetValue: 60,
      }),
    });
    const backlogAlarms = resources('AWS::CloudWatch::Alarm').filter(
      ([, a]) => a.Properties.MetricName === 'ApproximateBacklogCount',
    );
    const alarmedQueues = new Set(
      backlogAlarms.map(
        ([, a]) => (a.Properties.Dimensions as Json[]).find((d) => d.Name === 'TaskQueue')!.Value as string,
      ),
    );
    assert.deepEqual([...alarmedQueues].sort(), QUEUE_NAMES.map((q) => TASK_QUEUES[q]).sort());
    for (const [, alarm] of backlogAlarms) {
      assert.equal(alarm.Properties.Namespace, 'LlmTwin/Temporal');
      assert.ok(
        (alarm.Properties.Dimensions as Json[]).some((d) => d.Name === 'TemporalNamespace' && d.Value === 'default'),
      );
    }
    // Scale out and scale in, per queue.
    assert.equal(backlogAlarms.length, QUEUE_NAMES.length * 2);
    const stepPolicies = resources('AWS::ApplicationAutoScaling::ScalingPolicy').filter(
      ([, p]) => p.Properties.PolicyType === 'StepScaling',
    );
    assert.equal(stepPolicies.length, QUEUE_NAMES.length * 2);
    const etlTarget = resources('AWS::ApplicationAutoScaling::ScalableTarget').find(([id]) =>
      id.startsWith('WorkerEtl'),
    )!;
    assert.equal(etlTarget[1].Properties.MinCapacity, stack.config.workers.queues.etl.minCount);
    assert.equal(etlTarget[1].Properties.MaxCapacity, stack.config.workers.queues.etl.maxCount);
  });

  void test('a scheduled function publishes the backlog of every queue, with read access to the Temporal secret only', () => {
    const [fnId, fn] = resources('AWS::Lambda::Function').find(([id]) => id.startsWith('BacklogMetricFunction'))!;
    const env = fn.Properties.Environment.Variables as Record<string, unknown>;
    assert.deepEqual(
      (env.TASK_QUEUES as string).split(','),
      QUEUE_NAMES.map((q) => TASK_QUEUES[q]),
    );
    assert.equal(env.METRIC_NAMESPACE, 'LlmTwin/Temporal');
    assert.ok(
      !Object.keys(env).some((k) => ALL_SECRET_KEYS.includes(k)),
      'no secret values in the function environment',
    );
    assert.ok(fn.Properties.VpcConfig, 'runs in the VPC (reaches a self-hosted Temporal too)');
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [fnId, 'Arn'] } })],
    });
    const roleRef = fn.Properties.Role['Fn::GetAtt'][0] as string;
    const secretReads = statements(template).filter(
      ({ roles, statement }) =>
        roles.includes(roleRef) && actionsOf(statement).includes('secretsmanager:GetSecretValue'),
    );
    assert.equal(secretReads.length, 1);
    assert.deepEqual(secretReads[0]!.statement.Resource, {
      Ref: resources('AWS::SecretsManager::Secret').find(([id]) => id.startsWith('TemporalSecret'))![0],
    });
  });

  void test('every log group has a retention period', () => {
    const groups = resources('AWS::Logs::LogGroup');
    assert.equal(groups.length, QUEUE_NAMES.length + 2, 'one per worker service, the API and the backlog function');
    for (const [, group] of groups) assert.equal(group.Properties.RetentionInDays, 30);
  });

  void test('outputs: API URL, bucket, SageMaker role ARN and the secret ARNs', () => {
    const outputs = template.findOutputs('*');
    for (const name of [
      'ApiUrl',
      'ArtifactBucketName',
      'SageMakerExecutionRoleArn',
      'TemporalSecretArn',
      'MongodbSecretArn',
    ]) {
      assert.ok(outputs[name], `output ${name}`);
    }
    assert.match(JSON.stringify(outputs.ApiUrl!.Value), /http:\/\//);
    assert.deepEqual(outputs.SageMakerExecutionRoleArn!.Value, {
      'Fn::GetAtt': [resources('AWS::IAM::Role').find(([id]) => id.startsWith('SageMakerExecutionRole'))![0], 'Arn'],
    });
  });

  void test('containers get the bucket, SageMaker role and Temporal settings as plain configuration', () => {
    const [, def] = taskDefsByQueue(template).get('ml')![0]!;
    const env = envOf(containerOf(def));
    assert.equal(env.ARTIFACT_STORE, 's3');
    assert.deepEqual(env.ARTIFACT_BUCKET, { Ref: resources('AWS::S3::Bucket')[0]![0] });
    assert.deepEqual(env.SAGEMAKER_EXECUTION_ROLE_ARN, {
      'Fn::GetAtt': [resources('AWS::IAM::Role').find(([id]) => id.startsWith('SageMakerExecutionRole'))![0], 'Arn'],
    });
    assert.equal(env.TEMPORAL_TLS, 'true');
    assert.equal(env.TWIN_WORKER_DEPLOYMENT, 'llm-twin');
    assert.equal(env.TWIN_WORKER_BUILD_ID, 'v1');
  });
});

void describe('CDK config and worker versions', () => {
  void test('the example config file (cdk/config/example.yaml) is valid and takes effect', () => {
    const { stack: example, template: t } = synth({
      'twin:config': path.join(__dirname, '..', '..', 'cdk', 'config', 'example.yaml'),
    });
    assert.equal(example.config.temporal.address, 'my-ns.a1b2c.tmprl.cloud:7233');
    const [etlId, etlDef] = taskDefsByQueue(t).get('etl')![0]!;
    assert.equal(envOf(containerOf(etlDef)).WORKER_ETL_CONCURRENCY, '32');
    assert.equal(envOf(containerOf(etlDef)).TEMPORAL_NAMESPACE, 'my-ns.a1b2c');
    const etlService = serviceUsing(t, etlId)[0]![1];
    assert.deepEqual(
      etlService.Properties.CapacityProviderStrategy.map((s: Json) => s.CapacityProvider),
      ['FARGATE_SPOT', 'FARGATE'],
      'spot with an on-demand base',
    );
    const [, featuresDef] = taskDefsByQueue(t).get('features')![0]!;
    assert.equal(featuresDef.Properties.Cpu, '4096');
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 443, Protocol: 'HTTPS' });
    for (const [, group] of Object.entries(t.findResources('AWS::Logs::LogGroup')) as Array<[string, Json]>)
      assert.equal(group.Properties.RetentionInDays, 90);
  });

  void test('invalid sizes and counts are rejected naming the key', () => {
    assert.throws(
      () =>
        resolveDeployConfig({
          workers: { queues: { etl: { cpu: 512, memoryMiB: 512 } } },
          api: { minCount: 3, desiredCount: 2 },
        }),
      (error: unknown) => {
        assert.ok(error instanceof DeployConfigError);
        assert.ok(
          error.problems.some((p) =>
            p.startsWith('workers.queues.etl.memoryMiB: 512 MiB is not a valid Fargate memory size'),
          ),
          error.message,
        );
        assert.ok(
          error.problems.some((p) => p.startsWith('api.desiredCount: expected minCount <= desiredCount <= maxCount')),
          error.message,
        );
        return true;
      },
    );
    assert.throws(() => resolveDeployConfig({ workers: { queues: { gpu: {} } } }), /workers\.queues/);
    assert.throws(
      () => resolveDeployConfig({ logRetentionDays: 31 }),
      /logRetentionDays: not a CloudWatch Logs retention period/,
    );
  });

  void test('a draining version needs the image it was deployed with', () => {
    assert.throws(
      () => resolveDeployConfig({ workers: { versions: [{ buildId: 'v1' }, { buildId: 'v2' }] } }),
      /workers\.versions\.0\.imageUri: draining version v1/,
    );
  });

  void test('two versions: the current one autoscaled, the draining one at a fixed count on its own image', () => {
    const old = '123456789012.dkr.ecr.eu-west-1.amazonaws.com/llm-twin:v1';
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const config = resolveDeployConfig({
      image: { uri: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/llm-twin:v2' },
      workers: { versions: [{ buildId: 'v1', imageUri: old }, { buildId: 'v2' }] },
    });
    const two = Template.fromStack(
      new TwinStack(app, 'Two', { config, env: { account: '123456789012', region: 'eu-west-1' } }),
    );
    const byQueue = taskDefsByQueue(two);
    for (const queue of QUEUE_NAMES) {
      const defs = byQueue.get(queue)!;
      assert.equal(defs.length, 2, `${queue}: current + draining`);
      const [current] = defs.filter(([, d]) => envOf(containerOf(d)).TWIN_WORKER_BUILD_ID === 'v2');
      const [draining] = defs.filter(([, d]) => envOf(containerOf(d)).TWIN_WORKER_BUILD_ID === 'v1');
      assert.match(JSON.stringify(containerOf(draining![1]).Image), /llm-twin:v1/);
      assert.match(JSON.stringify(containerOf(current![1]).Image), /llm-twin:v2/);
      const drainingService = serviceUsing(two, draining![0])[0]!;
      assert.equal(drainingService[1].Properties.DesiredCount, 1);
      assert.equal(drainingService[1].Properties.ServiceName, `LlmTwin-${TASK_QUEUES[queue]}-v1`);
    }
    // Only the current version's services scale (plus the API).
    two.resourceCountIs('AWS::ApplicationAutoScaling::ScalableTarget', QUEUE_NAMES.length + 1);
    // An ECR image URI grants the task execution roles pull access on that repository, nothing broader.
    const pulls = statements(two).filter(({ statement }) => actionsOf(statement).includes('ecr:BatchGetImage'));
    assert.ok(pulls.length > 0);
    for (const { statement } of pulls.filter(({ roles }) =>
      roles.some((r) => r.includes('ExecutionRole') && !r.startsWith('SageMaker')),
    )) {
      assert.match(JSON.stringify(statement.Resource), /repository\/llm-twin/);
    }
  });
});
