import { ApplicationFailure } from '@temporalio/workflow';

/** What to deploy: an approved model version of the registry (src/training/registry.ts). */
export interface DeployModelInput {
  /** Model version in the registry. */
  model: string;
  /** Default: the SERVING_BACKEND setting. */
  backend?: 'local' | 'sagemaker';
  /** Default: SERVING_ENDPOINT_NAME ('llm-twin'). */
  endpointName?: string;
}

export interface DeploymentResult {
  endpointName: string;
  backend: 'local' | 'sagemaker';
  modelVersion: string;
  status: 'InService';
  /** Local: the OpenAI-compatible base URL including /v1. */
  url?: string;
  previousModelVersion?: string;
  smokeTest: { ok: boolean; latencyMs: number; sample?: string };
}

/**
 * Deploys an Approved model version to an endpoint (SageMaker: model → endpoint config → create or blue/green update →
 * autoscaling → smoke test → rollback on failure; local: an OpenAI-compatible server, blue/green by process).
 * Skeleton: the contract is fixed, the body lands next.
 */
// eslint-disable-next-line @typescript-eslint/require-await
export async function deployModel(input: DeployModelInput): Promise<DeploymentResult> {
  throw ApplicationFailure.nonRetryable(`deployModel is not implemented yet (model ${input.model})`, 'NotImplemented');
}
