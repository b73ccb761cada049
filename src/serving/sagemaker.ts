/**
 * SageMaker real-time endpoints for model versions: CreateModel (TGI or LMI container over the version's
 * model.tar.gz), CreateEndpointConfig, CreateEndpoint or a blue/green UpdateEndpoint with automatic rollback on
 * CloudWatch alarms, the wait until InService, Application Auto Scaling (target tracking on invocations per
 * instance), the smoke invocation and the rollback to the previous endpoint config. Every create is idempotent:
 * names are deterministic and an existing resource is adopted.
 */
import {
  ApplicationAutoScalingClient,
  DeregisterScalableTargetCommand,
  DescribeScalableTargetsCommand,
  PutScalingPolicyCommand,
  RegisterScalableTargetCommand,
  type PutScalingPolicyRequest,
  type RegisterScalableTargetRequest,
} from '@aws-sdk/client-application-auto-scaling';
import {
  CreateEndpointCommand,
  CreateEndpointConfigCommand,
  CreateModelCommand,
  DeleteEndpointCommand,
  DescribeEndpointCommand,
  DescribeEndpointConfigCommand,
  DescribeModelCommand,
  UpdateEndpointCommand,
  UpdateModelPackageCommand,
  type CreateEndpointConfigInput,
  type CreateModelInput,
  type DeploymentConfig,
  type DescribeEndpointOutput,
  type ProductionVariantInstanceType,
  type SageMakerClient,
} from '@aws-sdk/client-sagemaker';
import { InvokeEndpointCommand, type SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import type { Settings } from '../config';
import { sha256 } from '../domain/artifacts';
import { TrainingJobError } from '../training/backend';
import { renderPrompt } from '../training/chat-template';
import { classifySageMakerError, deepLearningContainerImage, INFERENCE_IMAGE_TAG } from '../training/sagemaker';
import type { EndpointApplyResult, SmokeTestResult } from './types';

/** LMI (DJL Serving with vLLM rolling batch) image; like INFERENCE_IMAGE_TAG, not checked against ECR here. */
export const LMI_IMAGE_TAG = 'djl-inference:0.31.0-lmi13.0.0-cu124';
/** The one production variant of a twin endpoint. */
export const VARIANT_NAME = 'AllTraffic';

export type ServingSettings = Settings['serving'];
export type EndpointSettings = ServingSettings['sagemaker'];

export function servingImage(settings: Settings): string {
  const s = settings.serving.sagemaker;
  if (s.imageUri) return s.imageUri;
  return deepLearningContainerImage(settings.aws.region, s.container === 'lmi' ? LMI_IMAGE_TAG : INFERENCE_IMAGE_TAG);
}

/** The serving container's environment: the model from /opt/ml/model (SageMaker unpacks ModelDataUrl there). */
export function containerEnvironment(s: EndpointSettings): Record<string, string> {
  if (s.container === 'lmi') {
    return {
      HF_MODEL_ID: '/opt/ml/model',
      OPTION_ROLLING_BATCH: 'vllm',
      TENSOR_PARALLEL_DEGREE: String(s.numGpus),
      OPTION_MAX_MODEL_LEN: String(s.maxTotalTokens),
      OPTION_MAX_ROLLING_BATCH_SIZE: '32',
      OPTION_DTYPE: 'bf16',
    };
  }
  return {
    HF_MODEL_ID: '/opt/ml/model',
    SM_NUM_GPUS: String(s.numGpus),
    MAX_INPUT_TOKENS: String(s.maxInputTokens),
    MAX_INPUT_LENGTH: String(s.maxInputTokens), // TGI < 2.1 reads this name
    MAX_TOTAL_TOKENS: String(s.maxTotalTokens),
    MAX_BATCH_TOTAL_TOKENS: String(s.maxBatchTotalTokens),
    MESSAGES_API_ENABLED: 'true',
  };
}

/** ≤ 63 chars of [a-zA-Z0-9-]: `<endpoint>-<suffix>-<10 hex>` with the endpoint part cut to fit. */
function resourceName(endpointName: string, suffix: string, hashInput: string): string {
  const hash = sha256(hashInput).slice(0, 10);
  const tail = `-${suffix}-${hash}`;
  const head = endpointName
    .replace(/[^a-zA-Z0-9-]/g, '-')
    .slice(0, 63 - tail.length)
    .replace(/-+$/, '');
  return `${head}${tail}`;
}

/**
 * Deterministic names: the same workflow and model version (a retried activity, a replayed workflow) find the same
 * model and config; a new deployment (another workflow id) or changed endpoint settings get new ones, so the
 * previous config stays intact for a rollback.
 */
export function sageMakerResourceNames(
  input: { endpointName: string; modelVersion: string; workflowId: string },
  settings: Settings,
): { modelName: string; endpointConfigName: string } {
  const s = settings.serving.sagemaker;
  const modelKey = JSON.stringify([
    input.workflowId,
    input.modelVersion,
    servingImage(settings),
    containerEnvironment(s),
  ]);
  const configKey = JSON.stringify([modelKey, s.instanceType, s.instanceCount, s.startupTimeoutSeconds]);
  return {
    modelName: resourceName(input.endpointName, 'm', modelKey),
    endpointConfigName: resourceName(input.endpointName, 'c', configKey),
  };
}

export function buildCreateModelRequest(input: {
  modelName: string;
  modelDataUrl: string;
  imageUri: string;
  roleArn: string;
  environment: Record<string, string>;
  modelVersion: string;
  endpointName: string;
}): CreateModelInput {
  // A model.tar.gz is unpacked into /opt/ml/model; an S3 prefix of uncompressed files is copied there as is.
  const compressed = input.modelDataUrl.endsWith('.tar.gz');
  return {
    ModelName: input.modelName,
    ExecutionRoleArn: input.roleArn,
    PrimaryContainer: {
      Image: input.imageUri,
      Mode: 'SingleModel',
      ...(compressed
        ? { ModelDataUrl: input.modelDataUrl }
        : {
            ModelDataSource: {
              S3DataSource: {
                S3Uri: input.modelDataUrl.endsWith('/') ? input.modelDataUrl : `${input.modelDataUrl}/`,
                S3DataType: 'S3Prefix',
                CompressionType: 'None',
              },
            },
          }),
      Environment: input.environment,
    },
    Tags: [
      { Key: 'twin:model-version', Value: input.modelVersion },
      { Key: 'twin:endpoint', Value: input.endpointName },
    ],
  };
}

export function buildCreateEndpointConfigRequest(input: {
  endpointConfigName: string;
  modelName: string;
  settings: EndpointSettings;
  modelVersion: string;
}): CreateEndpointConfigInput {
  const s = input.settings;
  return {
    EndpointConfigName: input.endpointConfigName,
    ProductionVariants: [
      {
        VariantName: VARIANT_NAME,
        ModelName: input.modelName,
        InstanceType: s.instanceType as ProductionVariantInstanceType,
        InitialInstanceCount: s.instanceCount,
        InitialVariantWeight: 1,
        ContainerStartupHealthCheckTimeoutInSeconds: s.startupTimeoutSeconds,
        // The model download is part of the start: allow as long for it as for the health check.
        ModelDataDownloadTimeoutInSeconds: s.startupTimeoutSeconds,
      },
    ],
    Tags: [{ Key: 'twin:model-version', Value: input.modelVersion }],
  };
}

/** Blue/green with the configured traffic shifting, rolled back by SageMaker when one of the alarms fires. */
export function buildDeploymentConfig(s: EndpointSettings): DeploymentConfig {
  const step = { Type: 'CAPACITY_PERCENT' as const, Value: s.canaryPercent };
  const routing =
    s.trafficRouting === 'CANARY'
      ? { Type: 'CANARY' as const, WaitIntervalInSeconds: s.waitIntervalSeconds, CanarySize: step }
      : s.trafficRouting === 'LINEAR'
        ? { Type: 'LINEAR' as const, WaitIntervalInSeconds: s.waitIntervalSeconds, LinearStepSize: step }
        : { Type: 'ALL_AT_ONCE' as const, WaitIntervalInSeconds: 0 };
  return {
    BlueGreenUpdatePolicy: {
      TrafficRoutingConfiguration: routing,
      TerminationWaitInSeconds: s.bakeSeconds,
      MaximumExecutionTimeoutInSeconds: Math.min(
        28_800,
        Math.max(
          600,
          s.startupTimeoutSeconds +
            s.bakeSeconds +
            (s.trafficRouting === 'ALL_AT_ONCE' ? 0 : s.waitIntervalSeconds * Math.ceil(100 / s.canaryPercent)) +
            900,
        ),
      ),
    },
    ...(s.rollbackAlarms.length > 0
      ? { AutoRollbackConfiguration: { Alarms: s.rollbackAlarms.map((AlarmName) => ({ AlarmName })) } }
      : {}),
  };
}

export function scalableTargetId(endpointName: string): string {
  return `endpoint/${endpointName}/variant/${VARIANT_NAME}`;
}

export function buildAutoscalingRequests(
  endpointName: string,
  s: EndpointSettings['autoscaling'],
): { target: RegisterScalableTargetRequest; policy: PutScalingPolicyRequest } {
  const ResourceId = scalableTargetId(endpointName);
  return {
    target: {
      ServiceNamespace: 'sagemaker',
      ResourceId,
      ScalableDimension: 'sagemaker:variant:DesiredInstanceCount',
      MinCapacity: s.minInstances,
      MaxCapacity: Math.max(s.minInstances, s.maxInstances),
    },
    policy: {
      PolicyName: `${endpointName}-invocations-per-instance`,
      ServiceNamespace: 'sagemaker',
      ResourceId,
      ScalableDimension: 'sagemaker:variant:DesiredInstanceCount',
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingScalingPolicyConfiguration: {
        TargetValue: s.targetInvocationsPerInstance,
        PredefinedMetricSpecification: { PredefinedMetricType: 'SageMakerVariantInvocationsPerInstance' },
        ScaleInCooldown: s.scaleInCooldownSeconds,
        ScaleOutCooldown: s.scaleOutCooldownSeconds,
      },
    },
  };
}

/** The smoke invocation's body: the prompt in the twin's chat template, greedy (TGI and LMI accept this shape). */
export function smokeRequestBody(prompt: string, maxTokens: number): string {
  return JSON.stringify({
    inputs: renderPrompt(prompt),
    parameters: { max_new_tokens: maxTokens, do_sample: false, return_full_text: false },
  });
}

/** generated_text of a TGI (`[{generated_text}]`) or LMI (`{generated_text}`) response. */
export function generatedText(body: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  const first: unknown = Array.isArray(parsed) ? parsed[0] : parsed;
  const text = (first as { generated_text?: unknown } | undefined)?.generated_text;
  return typeof text === 'string' ? text : undefined;
}

function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; message?: string };
  return (
    e.name === 'ResourceNotFound' ||
    ((e.name === 'ValidationException' || e.name === 'ValidationError') &&
      /could not find|not found|does not exist/i.test(e.message ?? ''))
  );
}

function isAlreadyExists(error: unknown): boolean {
  const e = error as { name?: string; message?: string };
  return (
    e.name === 'ResourceInUse' || /already exists|must be unique|cannot create already existing/i.test(e.message ?? '')
  );
}

/** The endpoint's state as the wait sees it. */
export interface EndpointState {
  status: string;
  endpointConfigName?: string;
  pendingEndpointConfigName?: string;
  failureReason?: string;
}

export function endpointState(described: DescribeEndpointOutput): EndpointState {
  return {
    status: described.EndpointStatus ?? 'Unknown',
    ...(described.EndpointConfigName ? { endpointConfigName: described.EndpointConfigName } : {}),
    ...(described.PendingDeploymentSummary?.EndpointConfigName
      ? { pendingEndpointConfigName: described.PendingDeploymentSummary.EndpointConfigName }
      : {}),
    ...(described.FailureReason ? { failureReason: described.FailureReason } : {}),
  };
}

/**
 * What a state means for a deployment waiting for `targetConfig`: still going, done, or over without it (the
 * endpoint Failed, or SageMaker rolled the update back: InService on another config).
 */
export function judgeEndpointState(
  state: EndpointState,
  targetConfig: string,
): { done: false } | { done: true; ok: true } | { done: true; ok: false; reason: string; rolledBack: boolean } {
  if (state.status === 'InService') {
    if (state.endpointConfigName === targetConfig) return { done: true, ok: true };
    return {
      done: true,
      ok: false,
      rolledBack: true,
      reason: `the update to ${targetConfig} was rolled back by SageMaker; ${state.endpointConfigName ?? '?'} serves${state.failureReason ? ` (${state.failureReason})` : ''}`,
    };
  }
  if (state.status === 'Failed' || state.status === 'UpdateRollbackFailed' || state.status === 'OutOfService') {
    return {
      done: true,
      ok: false,
      rolledBack: false,
      reason: `endpoint ${state.status}: ${state.failureReason ?? 'no reason given'}`,
    };
  }
  return { done: false };
}

export class SageMakerServing {
  constructor(
    private readonly sagemaker: SageMakerClient,
    private readonly runtime: SageMakerRuntimeClient,
    private readonly autoscaling: ApplicationAutoScalingClient,
  ) {}

  /** CreateModel unless it exists (a retry, or a create that raced this one). */
  async ensureModel(request: CreateModelInput): Promise<{ created: boolean }> {
    const name = request.ModelName ?? '';
    try {
      await this.sagemaker.send(new DescribeModelCommand({ ModelName: name }));
      return { created: false };
    } catch (error) {
      if (!isNotFound(error)) throw classifySageMakerError(error, 'DescribeModel');
    }
    try {
      await this.sagemaker.send(new CreateModelCommand(request));
      return { created: true };
    } catch (error) {
      if (isAlreadyExists(error)) return { created: false };
      throw classifySageMakerError(error, 'CreateModel');
    }
  }

  async ensureEndpointConfig(request: CreateEndpointConfigInput): Promise<{ created: boolean }> {
    const name = request.EndpointConfigName ?? '';
    try {
      await this.sagemaker.send(new DescribeEndpointConfigCommand({ EndpointConfigName: name }));
      return { created: false };
    } catch (error) {
      if (!isNotFound(error)) throw classifySageMakerError(error, 'DescribeEndpointConfig');
    }
    try {
      await this.sagemaker.send(new CreateEndpointConfigCommand(request));
      return { created: true };
    } catch (error) {
      if (isAlreadyExists(error)) return { created: false };
      throw classifySageMakerError(error, 'CreateEndpointConfig');
    }
  }

  async describeEndpoint(name: string): Promise<EndpointState | undefined> {
    try {
      return endpointState(await this.sagemaker.send(new DescribeEndpointCommand({ EndpointName: name })));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw classifySageMakerError(error, 'DescribeEndpoint');
    }
  }

  async instanceTypeOf(endpointConfigName: string): Promise<string | undefined> {
    try {
      const config = await this.sagemaker.send(
        new DescribeEndpointConfigCommand({ EndpointConfigName: endpointConfigName }),
      );
      return config.ProductionVariants?.[0]?.InstanceType;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw classifySageMakerError(error, 'DescribeEndpointConfig');
    }
  }

  /**
   * Points the endpoint at `endpointConfigName`: CreateEndpoint when there is none, else a blue/green UpdateEndpoint
   * with `deploymentConfig`. Adopts an endpoint already on (or already moving to) that config, so a retried call
   * does not start a second update.
   */
  async applyEndpoint(input: {
    endpointName: string;
    endpointConfigName: string;
    deploymentConfig?: DeploymentConfig;
    knownPreviousConfig?: string;
    tags?: { Key: string; Value: string }[];
    /** Called before an update, with the config that serves now (autoscaling must be let go of on a type change). */
    beforeUpdate?: (currentConfig: string) => Promise<void>;
    /** An endpoint SageMaker left Failed serves nothing: delete it and create it again (retried until it is gone). */
    replaceFailed?: boolean;
  }): Promise<EndpointApplyResult> {
    const state = await this.describeEndpoint(input.endpointName);
    if (!state) {
      try {
        await this.sagemaker.send(
          new CreateEndpointCommand({
            EndpointName: input.endpointName,
            EndpointConfigName: input.endpointConfigName,
            Tags: input.tags,
          }),
        );
        return { action: 'create' };
      } catch (error) {
        if (!isAlreadyExists(error)) throw classifySageMakerError(error, 'CreateEndpoint');
        return this.applyEndpoint(input); // created concurrently: look again
      }
    }
    const previous =
      state.endpointConfigName !== input.endpointConfigName ? state.endpointConfigName : input.knownPreviousConfig;
    if (
      state.endpointConfigName === input.endpointConfigName ||
      state.pendingEndpointConfigName === input.endpointConfigName
    ) {
      return { action: 'adopt', ...(previous ? { previousEndpointConfigName: previous } : {}) };
    }
    if (
      state.status === 'Creating' ||
      state.status === 'Updating' ||
      state.status === 'SystemUpdating' ||
      state.status === 'RollingBack' ||
      state.status === 'Deleting'
    ) {
      // Another deployment is under way: SageMaker would refuse the update. Retried by Temporal until it settles.
      throw new TrainingJobError(
        `SageMaker endpoint ${input.endpointName} is ${state.status} (another deployment?); waiting for it to settle`,
        'EndpointBusy',
        true,
      );
    }
    if (state.status === 'Failed') {
      const reason = state.failureReason ?? 'no reason';
      if (!input.replaceFailed) {
        throw new TrainingJobError(
          `SageMaker endpoint ${input.endpointName} is Failed (${reason}): delete it before deploying again ` +
            `(aws sagemaker delete-endpoint --endpoint-name ${input.endpointName}), or let deployModel replace it ` +
            '(SAGEMAKER_ENDPOINT_KEEP_FAILED=false)',
          'EndpointFailed',
          false,
        );
      }
      await this.deleteEndpoint(input.endpointName);
      throw new TrainingJobError(
        `SageMaker endpoint ${input.endpointName} was Failed (${reason}) and served nothing: deleted; it is created ` +
          'again once it is gone',
        'EndpointBusy',
        true,
      );
    }
    if (state.endpointConfigName) await input.beforeUpdate?.(state.endpointConfigName);
    try {
      await this.sagemaker.send(
        new UpdateEndpointCommand({
          EndpointName: input.endpointName,
          EndpointConfigName: input.endpointConfigName,
          ...(input.deploymentConfig ? { DeploymentConfig: input.deploymentConfig } : {}),
        }),
      );
    } catch (error) {
      throw classifySageMakerError(error, 'UpdateEndpoint');
    }
    return { action: 'update', ...(previous ? { previousEndpointConfigName: previous } : {}) };
  }

  /** Registers the variant (RegisterScalableTarget is an upsert) and puts the target tracking policy. */
  async configureAutoscaling(
    endpointName: string,
    s: EndpointSettings['autoscaling'],
  ): Promise<{ resourceId: string; policyArn?: string }> {
    const { target, policy } = buildAutoscalingRequests(endpointName, s);
    try {
      await this.autoscaling.send(new RegisterScalableTargetCommand(target));
      const put = await this.autoscaling.send(new PutScalingPolicyCommand(policy));
      return { resourceId: target.ResourceId ?? '', ...(put.PolicyARN ? { policyArn: put.PolicyARN } : {}) };
    } catch (error) {
      throw classifySageMakerError(error, 'ApplicationAutoScaling');
    }
  }

  /** Lets go of the variant's scalable target (an update that changes the instance type is refused while it exists). */
  async releaseAutoscaling(endpointName: string): Promise<boolean> {
    const resourceId = scalableTargetId(endpointName);
    try {
      const found = await this.autoscaling.send(
        new DescribeScalableTargetsCommand({
          ServiceNamespace: 'sagemaker',
          ResourceIds: [resourceId],
          ScalableDimension: 'sagemaker:variant:DesiredInstanceCount',
        }),
      );
      if (!found.ScalableTargets?.length) return false;
      await this.autoscaling.send(
        new DeregisterScalableTargetCommand({
          ServiceNamespace: 'sagemaker',
          ResourceId: resourceId,
          ScalableDimension: 'sagemaker:variant:DesiredInstanceCount',
        }),
      );
      return true;
    } catch (error) {
      throw classifySageMakerError(error, 'ApplicationAutoScaling');
    }
  }

  /**
   * Deletes an endpoint (its scalable target first): instances stop billing; the endpoint config, the model and the
   * CloudWatch logs (/aws/sagemaker/Endpoints/<name>) stay. False when there was no endpoint.
   */
  async deleteEndpoint(endpointName: string): Promise<boolean> {
    await this.releaseAutoscaling(endpointName);
    try {
      await this.sagemaker.send(new DeleteEndpointCommand({ EndpointName: endpointName }));
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw classifySageMakerError(error, 'DeleteEndpoint');
    }
  }

  /** InvokeEndpoint with a chat-template prompt; a failure is a result (ok: false), not an exception. */
  async smokeTest(
    endpointName: string,
    prompt: string,
    maxTokens: number,
    timeoutMs: number,
  ): Promise<SmokeTestResult> {
    const started = Date.now();
    try {
      const response = await this.runtime.send(
        new InvokeEndpointCommand({
          EndpointName: endpointName,
          ContentType: 'application/json',
          Accept: 'application/json',
          Body: new TextEncoder().encode(smokeRequestBody(prompt, maxTokens)),
        }),
        { abortSignal: AbortSignal.timeout(timeoutMs) },
      );
      const latencyMs = Date.now() - started;
      const body = response.Body ? new TextDecoder().decode(response.Body) : '';
      const text = generatedText(body);
      if (text === undefined)
        return { ok: false, latencyMs, error: `no generated_text in the response: ${body.slice(0, 200)}` };
      if (!text.trim()) return { ok: false, latencyMs, error: 'the model generated nothing' };
      return { ok: true, latencyMs, sample: text.slice(0, 200) };
    } catch (error) {
      const e = error as { name?: string; message?: string };
      return {
        ok: false,
        latencyMs: Date.now() - started,
        error: `${e.name ?? 'Error'}: ${e.message ?? String(error)}`,
      };
    }
  }

  /** The model package (SageMaker Model Registry) of a deployed version: Approved. */
  async approveModelPackage(arn: string, description: string): Promise<void> {
    try {
      await this.sagemaker.send(
        new UpdateModelPackageCommand({
          ModelPackageArn: arn,
          ModelApprovalStatus: 'Approved',
          ApprovalDescription: description,
        }),
      );
    } catch (error) {
      throw classifySageMakerError(error, 'UpdateModelPackage');
    }
  }
}

export function createAutoScalingClient(aws: Settings['aws']): ApplicationAutoScalingClient {
  return new ApplicationAutoScalingClient({ region: aws.region, ...(aws.endpoint ? { endpoint: aws.endpoint } : {}) });
}
