import path from 'node:path';
import {
  Annotations,
  ArnFormat,
  CfnOutput,
  Duration,
  RemovalPolicy,
  SecretValue,
  Stack,
  type StackProps,
  aws_applicationautoscaling as appscaling,
  aws_certificatemanager as acm,
  aws_cloudwatch as cloudwatch,
  aws_ec2 as ec2,
  aws_ecr as ecr,
  aws_ecr_assets as ecrAssets,
  aws_ecs as ecs,
  aws_ecs_patterns as ecsPatterns,
  aws_elasticloadbalancingv2 as elbv2,
  aws_events as events,
  aws_events_targets as targets,
  aws_iam as iam,
  aws_lambda as lambda,
  aws_lambda_nodejs as lambdaNodejs,
  aws_logs as logs,
  aws_s3 as s3,
  aws_secretsmanager as secretsmanager,
} from 'aws-cdk-lib';
import { type Construct } from 'constructs';
import { QUEUE_NAMES, TASK_QUEUES, type QueueName } from '../../src/config';
import { PLACEHOLDER_TEMPORAL_ADDRESS, SECRET_KEYS, type DeployConfig, type SecretName } from './config';

/** Repository root: the Docker build context and the home of package-lock.json. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');

export interface TwinStackProps extends StackProps {
  config: DeployConfig;
}

/** What each queue's task role may do beyond reading its secrets. */
const QUEUE_PERMISSIONS: Record<
  QueueName,
  { artifacts: 'none' | 'read' | 'readWrite'; invokeEndpoints: boolean; sagemaker: boolean }
> = {
  pipelines: { artifacts: 'none', invokeEndpoints: false, sagemaker: false },
  etl: { artifacts: 'readWrite', invokeEndpoints: false, sagemaker: false },
  features: { artifacts: 'readWrite', invokeEndpoints: false, sagemaker: false },
  llm: { artifacts: 'readWrite', invokeEndpoints: true, sagemaker: false },
  ml: { artifacts: 'readWrite', invokeEndpoints: true, sagemaker: true },
};

const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/**
 * The whole production deployment of the LLM twin in one stack: network, ECS cluster, one Fargate service per
 * Temporal task queue (scaled on the queue's backlog), the RAG API behind an ALB (scaled on CPU), the S3
 * artifact bucket, the SageMaker execution role, and the application secrets.
 */
export class TwinStack extends Stack {
  readonly config: DeployConfig;
  readonly vpc: ec2.Vpc;
  readonly cluster: ecs.Cluster;
  readonly bucket: s3.Bucket;
  readonly sagemakerRole: iam.Role;
  readonly secrets: Record<SecretName, secretsmanager.Secret>;
  /** Worker services of the current version, by queue. */
  readonly workerServices: Record<QueueName, ecs.FargateService>;
  readonly api: ecsPatterns.ApplicationLoadBalancedFargateService;
  readonly backlogFunction: lambdaNodejs.NodejsFunction;

  constructor(scope: Construct, id: string, props: TwinStackProps) {
    super(scope, id, props);
    const config = (this.config = props.config);

    if (config.temporal.address === PLACEHOLDER_TEMPORAL_ADDRESS) {
      Annotations.of(this).addWarningV2(
        'twin:temporal-address-placeholder',
        'temporal.address is the placeholder; set it (-c twin:temporalAddress=host:7233 or the config file) before `cdk deploy`.',
      );
    }

    // ---- network & cluster --------------------------------------------------------------------------------
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(config.vpc.cidr),
      maxAzs: config.vpc.maxAzs,
      natGateways: config.vpc.natGateways,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
      ],
    });
    // S3 traffic from the private subnets stays off the NAT gateway.
    this.vpc.addGatewayEndpoint('S3Endpoint', { service: ec2.GatewayVpcEndpointAwsService.S3 });

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: this.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
      enableFargateCapacityProviders: true,
    });

    // ---- artifacts bucket ---------------------------------------------------------------------------------
    this.bucket = new s3.Bucket(this, 'Artifacts', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      versioned: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        ...config.artifacts.jobOutputPrefixes.map((prefix) => ({
          id: `expire-job-outputs-${prefix.replace(/[^A-Za-z0-9]/g, '')}`,
          prefix: `${config.artifacts.prefix}${prefix}`,
          expiration: Duration.days(config.artifacts.jobOutputExpirationDays),
        })),
        {
          id: 'expire-noncurrent-versions',
          noncurrentVersionExpiration: Duration.days(config.artifacts.noncurrentVersionExpirationDays),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
          expiredObjectDeleteMarker: true,
        },
      ],
    });

    // ---- secrets (values are put by the operator after the first deploy; see docs/deploy.md) ------------------
    this.secrets = Object.fromEntries(
      (Object.keys(SECRET_KEYS) as SecretName[]).map((name) => [
        name,
        new secretsmanager.Secret(this, `${capitalize(name)}Secret`, {
          secretName: `${config.stackName}/${name}`,
          description: `LLM twin ${name} settings: JSON with keys ${SECRET_KEYS[name].join(', ')} (empty = unset)`,
          // Every key exists (empty) so ECS can always resolve `secret:KEY` references at task start.
          secretObjectValue: Object.fromEntries(SECRET_KEYS[name].map((key) => [key, SecretValue.unsafePlainText('')])),
          removalPolicy: RemovalPolicy.RETAIN,
        }),
      ]),
    ) as Record<SecretName, secretsmanager.Secret>;

    // ---- SageMaker execution role -------------------------------------------------------------------------
    this.sagemakerRole = new iam.Role(this, 'SageMakerExecutionRole', {
      assumedBy: new iam.ServicePrincipal('sagemaker.amazonaws.com'),
      description: 'Role SageMaker training jobs and endpoints of the LLM twin run as',
    });
    this.bucket.grantRead(this.sagemakerRole);
    this.bucket.grantPut(this.sagemakerRole);
    this.sagemakerRole.addToPolicy(
      new iam.PolicyStatement({ sid: 'EcrAuth', actions: ['ecr:GetAuthorizationToken'], resources: ['*'] }),
    );
    this.sagemakerRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'EcrPull',
        actions: ['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'],
        resources: config.sagemaker.imageRepositoryArns,
      }),
    );
    this.sagemakerRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'Logs',
        actions: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
        resources: [
          this.formatArn({
            service: 'logs',
            resource: 'log-group',
            resourceName: '/aws/sagemaker/*',
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
      }),
    );
    this.sagemakerRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'Metrics',
        actions: ['cloudwatch:PutMetricData'],
        resources: ['*'],
        conditions: { StringLike: { 'cloudwatch:namespace': '/aws/sagemaker/*' } },
      }),
    );

    // ---- image --------------------------------------------------------------------------------------------
    const currentImage = this.image(config.image.uri, 'Current');

    // ---- workers ------------------------------------------------------------------------------------------
    const versions = config.workers.versions;
    const current = versions[versions.length - 1]!;
    const images = new Map(
      versions.map((v) => [
        v,
        v === current ? currentImage : this.image(v.imageUri, `Version${v.buildId.replace(/[^A-Za-z0-9]/g, '')}`),
      ]),
    );
    const services: Partial<Record<QueueName, ecs.FargateService>> = {};
    for (const queue of QUEUE_NAMES) {
      const role = this.taskRole(queue);
      for (const version of versions) {
        const isCurrent = version === current;
        const service = this.workerService(queue, version.buildId, isCurrent, images.get(version)!, role);
        if (isCurrent) services[queue] = service;
      }
    }
    this.workerServices = services as Record<QueueName, ecs.FargateService>;

    // ---- backlog metric and scaling ------------------------------------------------------------------------
    this.backlogFunction = this.backlogPublisher();
    for (const queue of QUEUE_NAMES) this.scaleOnBacklog(queue, this.workerServices[queue]);

    // ---- RAG API ------------------------------------------------------------------------------------------
    this.api = this.apiService(currentImage);

    // ---- outputs ------------------------------------------------------------------------------------------
    const scheme = config.api.certificateArn ? 'https' : 'http';
    new CfnOutput(this, 'ApiUrl', {
      value: `${scheme}://${this.api.loadBalancer.loadBalancerDnsName}`,
      description: 'RAG API base URL',
    });
    new CfnOutput(this, 'ArtifactBucketName', {
      value: this.bucket.bucketName,
      description: 'S3 artifact store (ARTIFACT_BUCKET)',
    });
    new CfnOutput(this, 'SageMakerExecutionRoleArn', {
      value: this.sagemakerRole.roleArn,
      description: 'SAGEMAKER_EXECUTION_ROLE_ARN',
    });
    new CfnOutput(this, 'ClusterName', { value: this.cluster.clusterName });
    for (const name of Object.keys(SECRET_KEYS) as SecretName[]) {
      new CfnOutput(this, `${capitalize(name)}SecretArn`, {
        value: this.secrets[name].secretArn,
        description: `put-secret-value here: ${SECRET_KEYS[name].join(', ')}`,
      });
    }
  }

  /** An image from a URI (ECR repositories get pull permissions) or, without one, built from ./Dockerfile. */
  private image(uri: string | undefined, id: string): ecs.ContainerImage {
    if (!uri) {
      return ecs.ContainerImage.fromAsset(REPO_ROOT, {
        file: 'Dockerfile',
        buildArgs: { EMBEDDING_MODEL: this.config.image.embeddingModel },
        platform:
          this.config.image.cpuArchitecture === 'ARM64'
            ? ecrAssets.Platform.LINUX_ARM64
            : ecrAssets.Platform.LINUX_AMD64,
      });
    }
    const match =
      /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\/([^:@]+)(?::([^@]+))?(?:@(sha256:[a-f0-9]+))?$/.exec(
        uri,
      );
    if (!match) return ecs.ContainerImage.fromRegistry(uri);
    const [, account, region, name, tag, digest] = match;
    const repository = ecr.Repository.fromRepositoryAttributes(this, `${id}Repository`, {
      repositoryName: name!,
      repositoryArn: `arn:${this.partition}:ecr:${region}:${account}:repository/${name}`,
    });
    return ecs.ContainerImage.fromEcrRepository(repository, digest ?? tag ?? 'latest');
  }

  /** Plain (non-secret) environment shared by every container. */
  private baseEnvironment(): Record<string, string> {
    const { config } = this;
    const env: Record<string, string> = {
      LOG_LEVEL: config.app.logLevel,
      TEMPORAL_ADDRESS: config.temporal.address,
      TEMPORAL_NAMESPACE: config.temporal.namespace,
      TEMPORAL_TLS: String(config.temporal.tls),
      MONGODB_DATABASE: config.app.mongodbDatabase,
      ARTIFACT_STORE: 's3',
      ARTIFACT_BUCKET: this.bucket.bucketName,
      ARTIFACT_PREFIX: config.artifacts.prefix,
      AWS_REGION: this.region,
      LLM_MODEL: config.app.llmModel,
      EMBEDDING_BACKEND: config.app.embeddingBackend,
      SAGEMAKER_EXECUTION_ROLE_ARN: this.sagemakerRole.roleArn,
    };
    if (config.app.qdrantUrl) env.QDRANT_URL = config.app.qdrantUrl;
    if (config.app.openaiBaseUrl) env.OPENAI_BASE_URL = config.app.openaiBaseUrl;
    if (config.app.opikWorkspace) env.OPIK_WORKSPACE = config.app.opikWorkspace;
    return env;
  }

  /** ECS secrets: each environment variable is resolved from its JSON key in Secrets Manager at task start. */
  private ecsSecrets(names: SecretName[]): Record<string, ecs.Secret> {
    const out: Record<string, ecs.Secret> = {};
    for (const name of names) {
      for (const key of SECRET_KEYS[name]) out[key] = ecs.Secret.fromSecretsManager(this.secrets[name], key);
    }
    return out;
  }

  private logGroup(id: string): logs.LogGroup {
    return new logs.LogGroup(this, id, {
      retention: this.config.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
  }

  private taskRole(queue: QueueName): iam.Role {
    const permissions = QUEUE_PERMISSIONS[queue];
    const role = new iam.Role(this, `${capitalize(queue)}TaskRole`, {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: `Task role of the ${TASK_QUEUES[queue]} workers`,
    });
    if (permissions.artifacts === 'readWrite') this.bucket.grantReadWrite(role);
    if (permissions.artifacts === 'read') this.bucket.grantRead(role);
    if (permissions.invokeEndpoints) this.grantInvokeEndpoints(role);
    if (permissions.sagemaker) {
      const sm = (resource: string) => this.formatArn({ service: 'sagemaker', resource, resourceName: '*' });
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'SageMakerJobsAndEndpoints',
          actions: [
            'sagemaker:CreateTrainingJob',
            'sagemaker:DescribeTrainingJob',
            'sagemaker:StopTrainingJob',
            'sagemaker:CreateModel',
            'sagemaker:DescribeModel',
            'sagemaker:DeleteModel',
            'sagemaker:CreateEndpointConfig',
            'sagemaker:DescribeEndpointConfig',
            'sagemaker:DeleteEndpointConfig',
            'sagemaker:CreateEndpoint',
            'sagemaker:DescribeEndpoint',
            'sagemaker:UpdateEndpoint',
            'sagemaker:DeleteEndpoint',
            'sagemaker:AddTags',
            'sagemaker:ListTags',
          ],
          resources: [sm('training-job'), sm('model'), sm('endpoint-config'), sm('endpoint')],
        }),
      );
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'SageMakerList',
          actions: ['sagemaker:ListTrainingJobs', 'sagemaker:ListEndpoints', 'sagemaker:ListModels'],
          resources: ['*'],
        }),
      );
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'PassSageMakerRole',
          actions: ['iam:PassRole'],
          resources: [this.sagemakerRole.roleArn],
          conditions: { StringEquals: { 'iam:PassedToService': 'sagemaker.amazonaws.com' } },
        }),
      );
      role.addToPolicy(
        new iam.PolicyStatement({
          // The model registry: trainModel registers packages, evaluateModel approves or rejects, deployModel records.
          sid: 'ModelRegistry',
          actions: [
            'sagemaker:CreateModelPackageGroup',
            'sagemaker:DescribeModelPackageGroup',
            'sagemaker:CreateModelPackage',
            'sagemaker:DescribeModelPackage',
            'sagemaker:UpdateModelPackage',
            'sagemaker:ListModelPackages',
          ],
          resources: [sm('model-package-group'), sm('model-package')],
        }),
      );
      role.addToPolicy(
        new iam.PolicyStatement({
          // deployModel checks the rollback alarms it hands to a blue/green UpdateEndpoint.
          sid: 'RollbackAlarms',
          actions: ['cloudwatch:DescribeAlarms'],
          resources: [
            this.formatArn({
              service: 'cloudwatch',
              resource: 'alarm',
              resourceName: '*',
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          ],
        }),
      );
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'EndpointAutoscaling',
          actions: [
            'application-autoscaling:RegisterScalableTarget',
            'application-autoscaling:DeregisterScalableTarget',
            'application-autoscaling:PutScalingPolicy',
            'application-autoscaling:DeleteScalingPolicy',
            'application-autoscaling:DescribeScalableTargets',
            'application-autoscaling:DescribeScalingPolicies',
          ],
          resources: ['*'],
        }),
      );
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'EndpointAutoscalingServiceLinkedRole',
          actions: ['iam:CreateServiceLinkedRole'],
          resources: ['*'],
          conditions: { StringEquals: { 'iam:AWSServiceName': 'sagemaker.application-autoscaling.amazonaws.com' } },
        }),
      );
      role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'TrainingJobLogs',
          actions: ['logs:GetLogEvents', 'logs:DescribeLogStreams'],
          resources: [
            this.formatArn({
              service: 'logs',
              resource: 'log-group',
              resourceName: '/aws/sagemaker/*',
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          ],
        }),
      );
    }
    return role;
  }

  private grantInvokeEndpoints(role: iam.IRole): void {
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'InvokeEndpoints',
        actions: ['sagemaker:InvokeEndpoint'],
        resources: [this.formatArn({ service: 'sagemaker', resource: 'endpoint', resourceName: '*' })],
      }),
    );
  }

  private taskDefinition(
    id: string,
    size: { cpu: number; memoryMiB: number },
    taskRole: iam.IRole,
  ): ecs.FargateTaskDefinition {
    return new ecs.FargateTaskDefinition(this, id, {
      cpu: size.cpu,
      memoryLimitMiB: size.memoryMiB,
      taskRole,
      runtimePlatform: {
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
        cpuArchitecture:
          this.config.image.cpuArchitecture === 'ARM64' ? ecs.CpuArchitecture.ARM64 : ecs.CpuArchitecture.X86_64,
      },
    });
  }

  private workerService(
    queue: QueueName,
    buildId: string,
    isCurrent: boolean,
    image: ecs.ContainerImage,
    role: iam.IRole,
  ): ecs.FargateService {
    const { config } = this;
    const q = config.workers.queues[queue];
    const id = isCurrent
      ? `Worker${capitalize(queue)}`
      : `Worker${capitalize(queue)}Draining${buildId.replace(/[^A-Za-z0-9]/g, '')}`;
    const taskDefinition = this.taskDefinition(`${id}Task`, q, role);
    taskDefinition.addContainer('worker', {
      image,
      essential: true,
      environment: {
        ...this.baseEnvironment(),
        TWIN_WORKER_QUEUES: queue,
        TWIN_WORKER_DEPLOYMENT: config.workers.deploymentName,
        TWIN_WORKER_BUILD_ID: buildId,
        ...q.environment,
      },
      secrets: this.ecsSecrets(q.secrets),
      logging: ecs.LogDrivers.awsLogs({
        streamPrefix: queue,
        logGroup: this.logGroup(`${id}Logs`),
        mode: ecs.AwsLogDriverMode.NON_BLOCKING,
      }),
      stopTimeout: Duration.seconds(config.workers.stopTimeoutSeconds),
    });
    const drainingCount = config.workers.drainingTaskCount;
    return new ecs.FargateService(this, id, {
      cluster: this.cluster,
      serviceName: `${config.stackName}-${TASK_QUEUES[queue]}${isCurrent ? '' : `-${buildId}`}`,
      taskDefinition,
      desiredCount: isCurrent ? q.desiredCount : drainingCount,
      assignPublicIp: false,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      // New tasks start (and poll) before old ones get SIGTERM.
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { enable: true, rollback: true },
      enableExecuteCommand: false,
      capacityProviderStrategies: q.spot
        ? [
            { capacityProvider: 'FARGATE_SPOT', weight: 3 },
            { capacityProvider: 'FARGATE', weight: 1, base: 1 },
          ]
        : [{ capacityProvider: 'FARGATE', weight: 1 }],
    });
  }

  /** Scheduled function that publishes each queue's backlog (cdk/lambda/task-queue-backlog.ts). */
  private backlogPublisher(): lambdaNodejs.NodejsFunction {
    const { config } = this;
    const securityGroup = new ec2.SecurityGroup(this, 'BacklogMetricSecurityGroup', {
      vpc: this.vpc,
      description: 'Task-queue backlog publisher: outbound to Temporal and AWS APIs only',
      allowAllOutbound: true,
    });
    const fn = new lambdaNodejs.NodejsFunction(this, 'BacklogMetricFunction', {
      entry: path.join(__dirname, '..', 'lambda', 'task-queue-backlog.ts'),
      handler: 'handler',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 256,
      timeout: Duration.seconds(30),
      description: 'Publishes Temporal task-queue backlog (DescribeTaskQueue) to CloudWatch for worker autoscaling',
      vpc: this.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [securityGroup],
      logGroup: this.logGroup('BacklogMetricLogs'),
      depsLockFilePath: path.join(REPO_ROOT, 'package-lock.json'),
      projectRoot: REPO_ROOT,
      environment: {
        TEMPORAL_ADDRESS: config.temporal.address,
        TEMPORAL_NAMESPACE: config.temporal.namespace,
        TEMPORAL_TLS: String(config.temporal.tls),
        TEMPORAL_SECRET_ARN: this.secrets.temporal.secretArn,
        TASK_QUEUES: QUEUE_NAMES.map((q) => TASK_QUEUES[q]).join(','),
        METRIC_NAMESPACE: config.backlogMetric.namespace,
      },
      bundling: { target: 'node22', minify: true, sourceMap: false, externalModules: ['@aws-sdk/*'] },
    });
    this.secrets.temporal.grantRead(fn);
    new events.Rule(this, 'BacklogMetricSchedule', {
      schedule: events.Schedule.rate(Duration.minutes(config.backlogMetric.scheduleMinutes)),
      targets: [new targets.LambdaFunction(fn, { retryAttempts: 0 })],
    });
    return fn;
  }

  backlogMetric(queue: QueueName): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: this.config.backlogMetric.namespace,
      metricName: 'ApproximateBacklogCount',
      dimensionsMap: { TemporalNamespace: this.config.temporal.namespace, TaskQueue: TASK_QUEUES[queue] },
      statistic: cloudwatch.Stats.MAXIMUM,
      period: Duration.minutes(this.config.backlogMetric.scheduleMinutes),
    });
  }

  /** Step scaling on the backlog: +1 task at `scaleOutBacklog`, +3 at 5×; −1 after a few empty periods. */
  private scaleOnBacklog(queue: QueueName, service: ecs.FargateService): void {
    const q = this.config.workers.queues[queue];
    const scaling = service.autoScaleTaskCount({ minCapacity: q.minCount, maxCapacity: q.maxCount });
    scaling.scaleOnMetric('BacklogScaling', {
      metric: this.backlogMetric(queue),
      adjustmentType: appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
      scalingSteps: [
        { upper: 0, change: -1 },
        { lower: q.scaleOutBacklog, change: +1 },
        { lower: q.scaleOutBacklog * 5, change: +3 },
      ],
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      cooldown: Duration.minutes(3),
      metricAggregationType: appscaling.MetricAggregationType.MAXIMUM,
    });
  }

  private apiService(image: ecs.ContainerImage): ecsPatterns.ApplicationLoadBalancedFargateService {
    const { config } = this;
    const a = config.api;
    const role = new iam.Role(this, 'ApiTaskRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'Task role of the RAG API',
    });
    this.bucket.grantRead(role);
    this.grantInvokeEndpoints(role);
    const taskDefinition = this.taskDefinition('ApiTask', a, role);
    taskDefinition.addContainer('api', {
      image,
      essential: true,
      command: ['dist/src/api/server.js'],
      environment: { ...this.baseEnvironment(), API_PORT: String(a.port) },
      secrets: this.ecsSecrets(a.secrets),
      portMappings: [{ containerPort: a.port }],
      logging: ecs.LogDrivers.awsLogs({
        streamPrefix: 'api',
        logGroup: this.logGroup('ApiLogs'),
        mode: ecs.AwsLogDriverMode.NON_BLOCKING,
      }),
      stopTimeout: Duration.seconds(30),
      healthCheck: {
        command: [
          'CMD',
          'node',
          '-e',
          `fetch('http://127.0.0.1:${a.port}/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`,
        ],
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
        retries: 3,
        startPeriod: Duration.seconds(30),
      },
    });
    const certificate = a.certificateArn
      ? acm.Certificate.fromCertificateArn(this, 'ApiCertificate', a.certificateArn)
      : undefined;
    const api = new ecsPatterns.ApplicationLoadBalancedFargateService(this, 'Api', {
      cluster: this.cluster,
      serviceName: `${config.stackName}-api`,
      taskDefinition,
      desiredCount: a.desiredCount,
      assignPublicIp: false,
      taskSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      publicLoadBalancer: true,
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { rollback: true },
      healthCheckGracePeriod: Duration.seconds(60),
      ...(certificate
        ? {
            certificate,
            protocol: elbv2.ApplicationProtocol.HTTPS,
            redirectHTTP: true,
            sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
          }
        : { protocol: elbv2.ApplicationProtocol.HTTP }),
    });
    api.targetGroup.configureHealthCheck({
      path: '/health',
      healthyHttpCodes: '200',
      interval: Duration.seconds(15),
      timeout: Duration.seconds(5),
      healthyThresholdCount: 2,
      unhealthyThresholdCount: 3,
    });
    api.targetGroup.setAttribute('deregistration_delay.timeout_seconds', '20');
    const scaling = api.service.autoScaleTaskCount({ minCapacity: a.minCount, maxCapacity: a.maxCount });
    scaling.scaleOnCpuUtilization('CpuScaling', {
      targetUtilizationPercent: a.targetCpuPercent,
      scaleInCooldown: Duration.minutes(5),
      scaleOutCooldown: Duration.minutes(1),
    });
    return api;
  }
}
