import {
  CreateModelPackageCommand,
  CreateModelPackageGroupCommand,
  DescribeModelPackageCommand,
  DescribeModelPackageGroupCommand,
  ListModelPackagesCommand,
  type CreateModelPackageInput,
  type SageMakerClient,
} from '@aws-sdk/client-sagemaker';
import type { Collection, Db } from 'mongodb';
import { sha256 } from '../domain/artifacts';
import { classifySageMakerError } from './sagemaker';
import type { Hyperparameters, TrainingBackendName, TrainingMode } from './spec';

/** The approval states of a SageMaker model package; the project's registry uses the same words. */
export type ModelApprovalStatus = 'PendingManualApproval' | 'Approved' | 'Rejected';

/** One trained model: what it is, what it was made from, how it scored, where it is. */
export interface ModelVersion {
  /** The version id: the training job name (deterministic from the workflow and its inputs). */
  version: string;
  mode: TrainingMode;
  /** What the job started from: a Hugging Face id, or the artifact URI of the base model version. */
  baseModel: string;
  /** DPO on top of SFT: the SFT model version. */
  baseModelVersion?: string;
  datasetArtifactId: string;
  datasetVersion: string;
  hyperparameters: Hyperparameters;
  backend: TrainingBackendName;
  jobName: string;
  jobArn?: string;
  metrics: Record<string, number>;
  /** The merged model: `s3://…/model.tar.gz` (SageMaker) or `file://…/model` (local). */
  artifactUri: string;
  /** Its ArtifactRef (kind 'model') in the artifacts collection, for lineage. */
  artifactId: string;
  chatTemplateChecksum: string;
  modelPackageArn?: string;
  workflowId: string;
  createdAt: string;
  status: ModelApprovalStatus;
}

interface ModelDocument extends Omit<ModelVersion, 'version'> {
  _id: string;
}

/** The Mongo `models` collection: every trained model version, idempotent by job name. */
export class ModelRegistry {
  private readonly collection: Collection<ModelDocument>;

  constructor(db: Db) {
    this.collection = db.collection<ModelDocument>('models');
  }

  /** Records a version; a second call for the same version (a retried activity) returns the first record. */
  async register(model: Omit<ModelVersion, 'createdAt' | 'status'>, now: Date = new Date()): Promise<ModelVersion> {
    const { version, ...rest } = model;
    const document: ModelDocument = {
      _id: version,
      ...rest,
      createdAt: now.toISOString(),
      status: 'PendingManualApproval',
    };
    try {
      await this.collection.insertOne(document);
    } catch (error) {
      if ((error as { code?: number }).code !== 11000) throw error;
    }
    const stored = await this.get(version);
    if (!stored) throw new Error(`model version ${version} vanished right after it was registered`);
    return stored;
  }

  async get(version: string): Promise<ModelVersion | null> {
    const found = await this.collection.findOne({ _id: version });
    return found ? toModelVersion(found) : null;
  }

  async list(filter: { mode?: TrainingMode; limit?: number } = {}): Promise<ModelVersion[]> {
    const docs = await this.collection
      .find(filter.mode ? { mode: filter.mode } : {})
      .sort({ createdAt: -1 })
      .limit(filter.limit ?? 50)
      .toArray();
    return docs.map(toModelVersion);
  }

  async setModelPackage(version: string, arn: string): Promise<void> {
    await this.collection.updateOne({ _id: version }, { $set: { modelPackageArn: arn } });
  }

  /** Evaluation/deployment move a version to Approved or Rejected. */
  async setStatus(version: string, status: ModelApprovalStatus): Promise<void> {
    await this.collection.updateOne({ _id: version }, { $set: { status } });
  }
}

function toModelVersion(doc: ModelDocument): ModelVersion {
  const { _id, ...rest } = doc;
  return { version: _id, ...rest };
}

// ---- SageMaker Model Registry --------------------------------------------------------------------------------

function isMissing(error: unknown): boolean {
  const e = error as { name?: string; message?: string };
  return e.name === 'ResourceNotFound' || /does not exist|not found|could not find/i.test(e.message ?? '');
}

/** Creates the Model Package Group unless it exists. */
export async function ensureModelPackageGroup(
  client: SageMakerClient,
  name: string,
  description: string,
): Promise<string> {
  try {
    const found = await client.send(new DescribeModelPackageGroupCommand({ ModelPackageGroupName: name }));
    if (found.ModelPackageGroupArn) return found.ModelPackageGroupArn;
  } catch (error) {
    if (!isMissing(error)) throw classifySageMakerError(error, 'DescribeModelPackageGroup');
  }
  try {
    const created = await client.send(
      new CreateModelPackageGroupCommand({ ModelPackageGroupName: name, ModelPackageGroupDescription: description }),
    );
    return created.ModelPackageGroupArn ?? '';
  } catch (error) {
    // Created by a concurrent registration in between: fine.
    const again = await client
      .send(new DescribeModelPackageGroupCommand({ ModelPackageGroupName: name }))
      .catch(() => undefined);
    if (again?.ModelPackageGroupArn) return again.ModelPackageGroupArn;
    throw classifySageMakerError(error, 'CreateModelPackageGroup');
  }
}

export interface ModelPackageInput {
  groupName: string;
  model: Pick<
    ModelVersion,
    'version' | 'mode' | 'jobName' | 'datasetArtifactId' | 'datasetVersion' | 'baseModel' | 'artifactUri' | 'metrics'
  >;
  inferenceImageUri: string;
}

export function buildCreateModelPackageRequest(input: ModelPackageInput): CreateModelPackageInput {
  const { model } = input;
  const metadata: Record<string, string> = {
    modelVersion: model.version,
    mode: model.mode,
    jobName: model.jobName,
    datasetArtifactId: model.datasetArtifactId,
    datasetVersion: model.datasetVersion,
    baseModel: model.baseModel,
  };
  for (const name of ['train_loss', 'eval_loss', 'rewards_accuracies']) {
    const value = model.metrics[name];
    if (value !== undefined) metadata[name] = String(value);
  }
  return {
    ModelPackageGroupName: input.groupName,
    ModelPackageDescription: `LLM Twin ${model.mode.toUpperCase()} model ${model.version}`,
    ModelApprovalStatus: 'PendingManualApproval',
    // Real SageMaker returns the first package for a repeated token; the registry also checks by metadata.
    ClientToken: sha256(model.version).slice(0, 32),
    InferenceSpecification: {
      Containers: [
        {
          Image: input.inferenceImageUri,
          ModelDataUrl: model.artifactUri,
          Environment: {
            HF_MODEL_ID: '/opt/ml/model',
            SM_NUM_GPUS: '1',
            MAX_INPUT_TOKENS: '2048',
            MAX_TOTAL_TOKENS: '4096',
          },
        },
      ],
      SupportedContentTypes: ['application/json'],
      SupportedResponseMIMETypes: ['application/json'],
    },
    CustomerMetadataProperties: Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, v.slice(0, 256)])),
  };
}

/**
 * Registers the model version as a package of the group (approval PendingManualApproval until evaluation passes),
 * unless a recent package of the group already carries this model version.
 */
export async function registerModelPackage(client: SageMakerClient, input: ModelPackageInput): Promise<string> {
  await ensureModelPackageGroup(client, input.groupName, 'LLM Twin models (SFT and DPO), registered by trainModel');
  try {
    const recent = await client.send(
      new ListModelPackagesCommand({
        ModelPackageGroupName: input.groupName,
        SortBy: 'CreationTime',
        SortOrder: 'Descending',
        MaxResults: 20,
      }),
    );
    for (const summary of recent.ModelPackageSummaryList ?? []) {
      if (!summary.ModelPackageArn) continue;
      const described = await client.send(
        new DescribeModelPackageCommand({ ModelPackageName: summary.ModelPackageArn }),
      );
      if (described.CustomerMetadataProperties?.modelVersion === input.model.version) return summary.ModelPackageArn;
    }
    const created = await client.send(new CreateModelPackageCommand(buildCreateModelPackageRequest(input)));
    if (!created.ModelPackageArn) throw new Error('CreateModelPackage returned no ARN');
    return created.ModelPackageArn;
  } catch (error) {
    throw classifySageMakerError(error, 'CreateModelPackage');
  }
}
