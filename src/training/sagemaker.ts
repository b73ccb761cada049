import {
  CreateTrainingJobCommand,
  DescribeTrainingJobCommand,
  SageMakerClient,
  StopTrainingJobCommand,
  type Channel,
  type CreateTrainingJobRequest,
  type DescribeTrainingJobResponse,
  type TrainingInstanceType,
} from '@aws-sdk/client-sagemaker';
import type { Secret, Settings } from '../config';
import {
  TERMINAL_STATUSES,
  TrainingJobError,
  type TrainingBackend,
  type TrainingJobRef,
  type TrainingJobState,
  type TrainingJobStatus,
} from './backend';
import { metricDefinitions } from './metrics';
import { hyperparameterEntries, type Hyperparameters, type TrainingJobSpec } from './spec';

/**
 * The Hugging Face PyTorch training image jobs/finetune/requirements.txt is pinned to (torch 2.9.0,
 * transformers 5.3.0, python 3.12, CUDA 13.0). Deep Learning Container images live in a per-region account.
 */
export const TRAINING_IMAGE_TAG = 'huggingface-pytorch-training:2.9.0-transformers5.3.0-gpu-py312-cu130-ubuntu22.04';
/** Text Generation Inference image for model packages (the serving side may override it). */
export const INFERENCE_IMAGE_TAG = 'huggingface-pytorch-tgi-inference:2.4.0-tgi3.0.1-gpu-py311-cu124-ubuntu22.04';

const DLC_ACCOUNTS: Record<string, string> = {
  'af-south-1': '626614931356',
  'ap-east-1': '871362719292',
  'ap-northeast-3': '364406365360',
  'ap-south-2': '772153158452',
  'ap-southeast-3': '907027046896',
  'ap-southeast-4': '457447274322',
  'cn-north-1': '727897471807',
  'cn-northwest-1': '727897471807',
  'eu-central-2': '380420809688',
  'eu-south-1': '692866216735',
  'eu-south-2': '503227376785',
  'il-central-1': '780543022126',
  'me-central-1': '914824155844',
  'me-south-1': '217643126080',
  'us-gov-east-1': '446045086412',
  'us-gov-west-1': '442386744353',
};

export function deepLearningContainerImage(region: string, tag: string): string {
  const account = DLC_ACCOUNTS[region] ?? '763104351884';
  const domain = region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
  return `${account}.dkr.ecr.${region}.${domain}/${tag}`;
}

export interface SageMakerTrainingConfig {
  region: string;
  roleArn: string;
  imageUri: string;
  instanceType: string;
  volumeSizeGb: number;
  maxRuntimeSeconds: number;
  /** Managed spot training (checkpoints to S3, resumed after an interruption). */
  spot: boolean;
  /** Spot only: how long to wait for capacity + run, ≥ maxRuntimeSeconds. */
  maxWaitSeconds?: number;
  /** `s3://bucket/prefix`: job output (`training/jobs/<job>/output/model.tar.gz`) and checkpoints go under it. */
  outputS3Uri: string;
  /** Passed to the job as HF_TOKEN (gated base models); read from settings at activity time, never in history. */
  hfToken?: Secret;
}

export function sageMakerTrainingConfig(settings: Settings): SageMakerTrainingConfig {
  const t = settings.training.sagemaker;
  const bucket = t.bucket ?? settings.artifacts.bucket;
  if (!settings.sagemaker.executionRoleArn) {
    throw new TrainingJobError(
      'SAGEMAKER_EXECUTION_ROLE_ARN is not set: SageMaker training jobs need an execution role (see docs/training.md)',
      'ConfigurationError',
      false,
    );
  }
  if (!bucket) {
    throw new TrainingJobError(
      'no S3 bucket for training: set SAGEMAKER_TRAINING_BUCKET or ARTIFACT_BUCKET',
      'ConfigurationError',
      false,
    );
  }
  const prefix = settings.artifacts.prefix.replace(/^\/+|\/+$/g, '');
  return {
    region: settings.aws.region,
    roleArn: settings.sagemaker.executionRoleArn,
    imageUri: t.imageUri ?? deepLearningContainerImage(settings.aws.region, TRAINING_IMAGE_TAG),
    instanceType: t.instanceType,
    volumeSizeGb: t.volumeSizeGb,
    maxRuntimeSeconds: t.maxRuntimeSeconds,
    spot: t.spot,
    maxWaitSeconds: t.maxWaitSeconds,
    outputS3Uri: `s3://${bucket}${prefix ? `/${prefix}` : ''}`,
    hfToken: settings.huggingFace.token,
  };
}

export function createSageMakerClient(aws: Settings['aws']): SageMakerClient {
  return new SageMakerClient({ region: aws.region, ...(aws.endpoint ? { endpoint: aws.endpoint } : {}) });
}

function s3Channel(name: string, uri: string, contentType?: string): Channel {
  return {
    ChannelName: name,
    DataSource: { S3DataSource: { S3DataType: 'S3Prefix', S3Uri: uri, S3DataDistributionType: 'FullyReplicated' } },
    CompressionType: 'None',
    ...(contentType ? { ContentType: contentType } : {}),
  };
}

function requireS3(uri: string, what: string): string {
  if (!uri.startsWith('s3://')) {
    throw new TrainingJobError(`${what} must be in S3 for SageMaker, got ${uri}`, 'ValidationError', false);
  }
  return uri;
}

/**
 * The CreateTrainingJob request for a job: script mode (the training toolkit downloads sourcedir.tar.gz, installs
 * requirements.txt and runs `train.py --name value …`), JSON-encoded hyperparameter values as the SageMaker Python
 * SDK sends them, one S3 channel per dataset split (+ `model` for a base model from S3, `general` for a mixed-in
 * instruction set), metric regexes over the job's JSON lines.
 */
export function buildCreateTrainingJobRequest(
  spec: TrainingJobSpec,
  config: SageMakerTrainingConfig,
): CreateTrainingJobRequest {
  if (!spec.sourceDir)
    throw new TrainingJobError('the job code was not packaged (sourceDir missing)', 'ValidationError', false);
  const hyperparameters: Hyperparameters = { ...spec.hyperparameters, mode: spec.mode, base_model: spec.baseModel };
  const channels: Channel[] = [
    s3Channel('train', requireS3(spec.data.train, 'training data'), 'application/jsonlines'),
  ];
  if (spec.data.test) channels.push(s3Channel('test', requireS3(spec.data.test, 'test data'), 'application/jsonlines'));
  if (spec.baseModel.startsWith('s3://')) channels.push(s3Channel('model', spec.baseModel));
  const general = String(spec.hyperparameters.general_dataset ?? '');
  if (general.startsWith('s3://')) {
    channels.push(s3Channel('general', general, 'application/jsonlines'));
    hyperparameters.general_dataset = '';
  }
  const encoded = Object.fromEntries(
    hyperparameterEntries(hyperparameters).map(([name, value]) => [name, JSON.stringify(value)]),
  );
  const environment: Record<string, string> = { TOKENIZERS_PARALLELISM: 'false', HF_HUB_DISABLE_TELEMETRY: '1' };
  if (config.hfToken) environment.HF_TOKEN = config.hfToken.reveal();
  return {
    TrainingJobName: spec.jobName,
    RoleArn: config.roleArn,
    AlgorithmSpecification: {
      TrainingImage: config.imageUri,
      TrainingInputMode: 'File',
      MetricDefinitions: metricDefinitions(),
      EnableSageMakerMetricsTimeSeries: true,
    },
    HyperParameters: {
      ...encoded,
      sagemaker_program: JSON.stringify('train.py'),
      sagemaker_submit_directory: JSON.stringify(spec.sourceDir.uri),
      sagemaker_region: JSON.stringify(config.region),
      sagemaker_container_log_level: '20',
      sagemaker_job_name: JSON.stringify(spec.jobName),
    },
    InputDataConfig: channels,
    OutputDataConfig: { S3OutputPath: `${config.outputS3Uri}/training/jobs` },
    ResourceConfig: {
      InstanceType: config.instanceType as TrainingInstanceType,
      InstanceCount: 1,
      VolumeSizeInGB: config.volumeSizeGb,
    },
    StoppingCondition: {
      MaxRuntimeInSeconds: config.maxRuntimeSeconds,
      ...(config.spot
        ? {
            MaxWaitTimeInSeconds: Math.max(
              config.maxWaitSeconds ?? 2 * config.maxRuntimeSeconds,
              config.maxRuntimeSeconds,
            ),
          }
        : {}),
    },
    EnableManagedSpotTraining: config.spot,
    ...(config.spot
      ? {
          CheckpointConfig: {
            S3Uri: `${config.outputS3Uri}/training/checkpoints/${spec.jobName}`,
            LocalPath: '/opt/ml/checkpoints',
          },
        }
      : {}),
    Environment: environment,
    Tags: Object.entries(spec.tags ?? {}).map(([Key, Value]) => ({ Key, Value })),
  };
}

/** The request as it may be shown (docs, logs): the HF token replaced. */
export function redactRequest(request: CreateTrainingJobRequest): CreateTrainingJobRequest {
  if (!request.Environment?.HF_TOKEN) return request;
  return { ...request, Environment: { ...request.Environment, HF_TOKEN: '[redacted]' } };
}

interface AwsError {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

const RETRYABLE_NAMES = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'InternalFailure',
  'InternalServerError',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
]);

/**
 * AWS errors → TrainingJobError. Quota, capacity, validation and permission errors cannot be fixed by retrying:
 * non-retryable, with what to do. Throttling, 5xx and network errors: retryable.
 */
export function classifySageMakerError(error: unknown, operation: string): TrainingJobError {
  if (error instanceof TrainingJobError) return error;
  const e = (error ?? {}) as AwsError & { code?: string };
  const name = e.name ?? e.code ?? 'Error';
  const message = e.message ?? String(error);
  const status = e.$metadata?.httpStatusCode;
  if (name === 'ResourceLimitExceeded') {
    return new TrainingJobError(
      `SageMaker ${operation}: quota exceeded (${message}). Request a higher "training job usage" quota for this ` +
        'instance type in Service Quotas, stop other jobs, or set SAGEMAKER_TRAINING_INSTANCE_TYPE to another type.',
      name,
      false,
    );
  }
  if (/capacity/i.test(name) || /insufficient capacity|unable to provision/i.test(message)) {
    return new TrainingJobError(
      `SageMaker ${operation}: no capacity for the instance type (${message}). Try another instance type or region, ` +
        'or managed spot with a longer SAGEMAKER_TRAINING_MAX_WAIT_S.',
      'CapacityError',
      false,
    );
  }
  if (name === 'ValidationException' || name === 'ValidationError') {
    return new TrainingJobError(
      `SageMaker ${operation} rejected the request: ${message}`,
      'ValidationException',
      false,
    );
  }
  if (/AccessDenied|UnrecognizedClient|InvalidSignature|ExpiredToken|NotAuthorized/i.test(name)) {
    return new TrainingJobError(
      `SageMaker ${operation}: not authorised (${name}: ${message}); check the credentials and the role`,
      name,
      false,
    );
  }
  if (RETRYABLE_NAMES.has(name) || e.$retryable || (status !== undefined && status >= 500) || status === 429) {
    return new TrainingJobError(`SageMaker ${operation}: ${name}: ${message}`, name, true);
  }
  if (status !== undefined && status >= 400)
    return new TrainingJobError(`SageMaker ${operation}: ${name}: ${message}`, name, false);
  // No HTTP status: a network-level failure (connection reset, DNS, socket timeout) – worth another try.
  return new TrainingJobError(`SageMaker ${operation}: ${name}: ${message}`, name, true);
}

function isNotFound(error: unknown): boolean {
  const e = error as AwsError;
  return (
    e.name === 'ResourceNotFound' ||
    ((e.name === 'ValidationException' || e.name === 'ValidationError') &&
      /could not find|not found|does not exist/i.test(e.message ?? ''))
  );
}

function isAlreadyExists(error: unknown): boolean {
  const e = error as AwsError;
  return e.name === 'ResourceInUse' || /already exists|must be unique/i.test(e.message ?? '');
}

/** SageMaker's status; a job being deleted counts as stopped. */
function statusOf(job: DescribeTrainingJobResponse): TrainingJobStatus {
  const status = job.TrainingJobStatus ?? 'InProgress';
  return status === 'Deleting' ? 'Stopped' : status;
}

function toState(job: DescribeTrainingJobResponse): TrainingJobState {
  const metrics: Record<string, number> = {};
  for (const metric of job.FinalMetricDataList ?? []) {
    if (metric.MetricName && metric.Value !== undefined && Number.isFinite(metric.Value))
      metrics[metric.MetricName] = metric.Value;
  }
  const transitions = job.SecondaryStatusTransitions ?? [];
  const lastMessage = transitions[transitions.length - 1]?.StatusMessage;
  return {
    status: statusOf(job),
    secondaryStatus: lastMessage ? `${job.SecondaryStatus ?? ''}: ${lastMessage}` : (job.SecondaryStatus ?? ''),
    metrics,
    ...(job.FailureReason ? { failureReason: job.FailureReason } : {}),
    ...(job.TrainingJobStatus === 'Completed' && job.ModelArtifacts?.S3ModelArtifacts
      ? { modelArtifactUri: job.ModelArtifacts.S3ModelArtifacts }
      : {}),
    ...(job.TrainingStartTime ? { startedAt: job.TrainingStartTime.toISOString() } : {}),
    ...(job.TrainingEndTime ? { endedAt: job.TrainingEndTime.toISOString() } : {}),
    ...(job.BillableTimeInSeconds !== undefined ? { billableSeconds: job.BillableTimeInSeconds } : {}),
  };
}

export class SageMakerTrainingBackend implements TrainingBackend {
  readonly name = 'sagemaker' as const;

  constructor(
    private readonly client: SageMakerClient,
    private readonly config: SageMakerTrainingConfig,
  ) {}

  private async describe(jobName: string): Promise<DescribeTrainingJobResponse | undefined> {
    try {
      return await this.client.send(new DescribeTrainingJobCommand({ TrainingJobName: jobName }));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw classifySageMakerError(error, 'DescribeTrainingJob');
    }
  }

  /** Creates the job unless a job of that name exists already (a retried start), which is then adopted. */
  async start(spec: TrainingJobSpec): Promise<TrainingJobRef> {
    const request = buildCreateTrainingJobRequest(spec, this.config);
    const existing = await this.describe(spec.jobName);
    if (existing) return { backend: 'sagemaker', jobName: spec.jobName, arn: existing.TrainingJobArn };
    try {
      const created = await this.client.send(new CreateTrainingJobCommand(request));
      return { backend: 'sagemaker', jobName: spec.jobName, arn: created.TrainingJobArn };
    } catch (error) {
      if (isAlreadyExists(error)) {
        const raced = await this.describe(spec.jobName);
        if (raced) return { backend: 'sagemaker', jobName: spec.jobName, arn: raced.TrainingJobArn };
      }
      throw classifySageMakerError(error, 'CreateTrainingJob');
    }
  }

  async poll(job: TrainingJobRef): Promise<TrainingJobState> {
    const described = await this.describe(job.jobName);
    if (!described)
      throw new TrainingJobError(`SageMaker training job ${job.jobName} does not exist`, 'NotFound', false);
    return toState(described);
  }

  async stop(job: TrainingJobRef): Promise<void> {
    const described = await this.describe(job.jobName);
    if (!described || TERMINAL_STATUSES.includes(statusOf(described)) || statusOf(described) === 'Stopping') {
      return;
    }
    try {
      await this.client.send(new StopTrainingJobCommand({ TrainingJobName: job.jobName }));
    } catch (error) {
      // It may have ended between the describe and the stop.
      const now = await this.describe(job.jobName);
      if (now && (TERMINAL_STATUSES.includes(statusOf(now)) || statusOf(now) === 'Stopping')) return;
      throw classifySageMakerError(error, 'StopTrainingJob');
    }
  }
}
