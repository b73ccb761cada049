import type { Settings } from '../config';
import type { ModelRegistry, ModelVersion } from '../training/registry';
import type { EndpointStore } from './endpoints';
import { sageMakerResourceNames } from './sagemaker';
import type { DeployModelInput, DeploymentPlan, RollbackDeploymentInput, ServingBackendName } from './types';

/** The gate: only an Approved model version reaches an endpoint. */
export class ModelNotApproved extends Error {
  constructor(
    readonly modelVersion: string,
    readonly status: string,
  ) {
    super(
      `model version ${modelVersion} is ${status}, not Approved: only a version that passed evaluation (evaluateModel sets ` +
        'Approved) can be deployed',
    );
    this.name = 'ModelNotApproved';
  }
}

/** A deployment that cannot work whatever is retried (unknown model, nothing to roll back to, wrong artifact). */
export class InvalidDeployment extends Error {
  constructor(
    message: string,
    readonly code = 'InvalidDeployment',
  ) {
    super(message);
    this.name = 'InvalidDeployment';
  }
}

export interface PlanContext {
  settings: Settings;
  models: ModelRegistry;
  endpoints: EndpointStore;
  workflowId: string;
}

async function approvedModel(models: ModelRegistry, version: string): Promise<ModelVersion> {
  const model = await models.get(version);
  if (!model)
    throw new InvalidDeployment(`model version ${version} is not in the registry (twin models list)`, 'ModelNotFound');
  if (model.status !== 'Approved') throw new ModelNotApproved(version, model.status);
  return model;
}

function checkArtifact(model: ModelVersion, backend: ServingBackendName): void {
  if (backend === 'sagemaker' && !model.artifactUri.startsWith('s3://')) {
    throw new InvalidDeployment(
      `model version ${model.version} is stored at ${model.artifactUri}; a SageMaker endpoint needs the model in S3 ` +
        '(train with TRAINING_BACKEND=sagemaker, or deploy it with --backend local)',
    );
  }
}

/** Resolves and gates a deployment of `input.model`; what serves now becomes the rollback target. */
export async function planDeployment(input: DeployModelInput, ctx: PlanContext): Promise<DeploymentPlan> {
  const { settings } = ctx;
  const backend = input.backend ?? settings.serving.backend;
  const endpointName = input.endpointName ?? settings.serving.endpointName;
  if (!/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/.test(endpointName)) {
    throw new InvalidDeployment(
      `endpoint name ${JSON.stringify(endpointName)}: letters, digits and hyphens, at most 63`,
    );
  }
  const model = await approvedModel(ctx.models, input.model);
  checkArtifact(model, backend);
  const current = await ctx.endpoints.get(endpointName);
  const serving =
    current && current.backend === backend && current.status !== 'Failed' && current.status !== 'Creating';
  const previousModelVersion =
    serving && current.modelVersion !== model.version ? current.modelVersion : current?.previousModelVersion;
  const plan: DeploymentPlan = {
    workflowId: ctx.workflowId,
    endpointName,
    backend,
    kind: 'deploy',
    modelVersion: model.version,
    artifactUri: model.artifactUri,
    ...(model.modelPackageArn ? { modelPackageArn: model.modelPackageArn } : {}),
    ...(previousModelVersion ? { previousModelVersion } : {}),
  };
  if (backend === 'sagemaker') {
    const names = sageMakerResourceNames(
      { endpointName, modelVersion: model.version, workflowId: ctx.workflowId },
      settings,
    );
    const previousConfig =
      current?.backend === 'sagemaker'
        ? current.endpointConfigName !== names.endpointConfigName
          ? current.endpointConfigName
          : current.previousEndpointConfigName
        : undefined;
    plan.sagemaker = {
      endpointName,
      ...names,
      ...(previousConfig ? { previousEndpointConfigName: previousConfig } : {}),
      container: settings.serving.sagemaker.container,
    };
  } else {
    plan.local = current?.backend === 'local' && current.localServer ? { previousServer: current.localServer } : {};
  }
  return plan;
}

/** Back to the endpoint's previous model version (its previous endpoint config on SageMaker). */
export async function planRollback(input: RollbackDeploymentInput, ctx: PlanContext): Promise<DeploymentPlan> {
  const endpointName = input.endpointName ?? ctx.settings.serving.endpointName;
  const current = await ctx.endpoints.get(endpointName);
  if (!current)
    throw new InvalidDeployment(`there is no endpoint ${endpointName} (twin endpoints)`, 'EndpointNotFound');
  if (!current.previousModelVersion) {
    throw new InvalidDeployment(
      `endpoint ${endpointName} has no previous model version to roll back to`,
      'NothingToRollBack',
    );
  }
  const model = await approvedModel(ctx.models, current.previousModelVersion);
  const plan: DeploymentPlan = {
    workflowId: ctx.workflowId,
    endpointName,
    backend: current.backend,
    kind: 'rollback',
    modelVersion: model.version,
    artifactUri: model.artifactUri,
    ...(model.modelPackageArn ? { modelPackageArn: model.modelPackageArn } : {}),
    previousModelVersion: current.modelVersion,
  };
  if (current.backend === 'sagemaker') {
    if (!current.previousEndpointConfigName) {
      throw new InvalidDeployment(`endpoint ${endpointName} records no previous endpoint config`, 'NothingToRollBack');
    }
    plan.sagemaker = {
      endpointName: current.sagemakerEndpointName ?? endpointName,
      modelName: '',
      endpointConfigName: current.previousEndpointConfigName,
      ...(current.endpointConfigName ? { previousEndpointConfigName: current.endpointConfigName } : {}),
      container: ctx.settings.serving.sagemaker.container,
    };
  } else {
    plan.local = current.localServer ? { previousServer: current.localServer } : {};
  }
  return plan;
}
