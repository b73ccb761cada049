import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { HeadObjectCommand, NotFound, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Settings } from '../config';
import { sha256, type ArtifactRef } from '../domain/artifacts';
import type { ArtifactRegistry } from '../infra/artifact-registry';
import { chatTemplateChecksum } from './chat-template';
import type { ModelRegistry } from './registry';
import { sageMakerTrainingConfig } from './sagemaker';
import { packageSourceDir, sourceDirKey } from './sourcedir';
import {
  effectiveHyperparameters,
  InvalidTrainingInput,
  TRAINING_BACKENDS,
  TRAINING_MODES,
  trainingJobName,
  type HyperparameterOverrides,
  type TrainingBackendName,
  type TrainingJobSpec,
  type TrainingMode,
} from './spec';

/** What a user asks for: `trainModel`'s input. */
export interface TrainModelInput {
  /** The dataset artifact (kind instruction-dataset for sft, preference-dataset for dpo). */
  dataset: string | { artifactId: string };
  mode: TrainingMode;
  /** A Hugging Face id / `s3://` / `file://` model, or a registered model version (DPO on top of SFT). */
  baseModel?: string | { modelVersion: string };
  hyperparameters?: HyperparameterOverrides;
  /** Default: TRAINING_BACKEND. */
  backend?: TrainingBackendName;
}

/** Everything resolved before a job starts; small (an activity result in the workflow history). */
export interface PreparedTraining {
  backend: TrainingBackendName;
  /** The model version this run will register (= the job name). */
  modelVersion: string;
  datasetArtifactId: string;
  datasetVersion: string;
  baseModelVersion?: string;
  baseModelArtifactId?: string;
  chatTemplateChecksum: string;
  spec: TrainingJobSpec;
}

export interface PrepareContext {
  workflowId: string;
  settings: Settings;
  artifacts: ArtifactRegistry;
  models: ModelRegistry;
  s3: () => S3Client;
}

export const DATASET_KIND: Record<TrainingMode, ArtifactRef['kind']> = {
  sft: 'instruction-dataset',
  dpo: 'preference-dataset',
};

/**
 * The split files of a dataset artifact (src/datasets/storage.ts: datasets/<type>/<version>/{train,test}.jsonl +
 * manifest.json): `metadata.trainUri` / `testUri` when recorded, else next to the URI (the version folder or a file
 * in it).
 */
export function datasetSplitUris(artifact: ArtifactRef): {
  folder: string;
  train: string;
  test: string;
  version: string;
} {
  let folder = artifact.uri.replace(/\/+$/, '');
  if (/\.jsonl?$/.test(folder)) folder = folder.slice(0, folder.lastIndexOf('/'));
  const { version, trainUri, testUri } = artifact.metadata;
  return {
    folder,
    train: typeof trainUri === 'string' ? trainUri : `${folder}/train.jsonl`,
    test: typeof testUri === 'string' ? testUri : `${folder}/test.jsonl`,
    version: typeof version === 'string' ? version : folder.slice(folder.lastIndexOf('/') + 1),
  };
}

function parseS3(uri: string): { bucket: string; key: string } {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!match?.[1] || !match[2]) throw new InvalidTrainingInput(`not an s3://bucket/key URI: ${uri}`);
  return { bucket: match[1], key: match[2] };
}

export async function uriExists(uri: string, s3: () => S3Client): Promise<boolean> {
  if (uri.startsWith('file://')) {
    return stat(fileURLToPath(uri)).then(
      (info) => info.isFile() || info.isDirectory(),
      () => false,
    );
  }
  if (uri.startsWith('s3://')) {
    const { bucket, key } = parseS3(uri);
    try {
      await s3().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return true;
    } catch (error) {
      if (
        error instanceof NotFound ||
        (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404
      )
        return false;
      throw error;
    }
  }
  throw new InvalidTrainingInput(`unsupported dataset URI ${uri} (expected file:// or s3://)`);
}

/** Puts bytes under an S3 URI unless an object is there already (keys are content addressed). */
async function putOnce(s3: S3Client, uri: string, body: Uint8Array, contentType: string): Promise<void> {
  if (await uriExists(uri, () => s3)) return;
  const { bucket, key } = parseS3(uri);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType }));
}

/** A local file as a content-addressed S3 object under `<base>/training/data/…` (S3 URIs pass through). */
async function inS3(uri: string, base: string, s3: S3Client): Promise<string> {
  if (uri.startsWith('s3://')) return uri;
  const bytes = await readFile(fileURLToPath(uri));
  const target = `${base}/training/data/${sha256(bytes).slice(0, 16)}/${uri.slice(uri.lastIndexOf('/') + 1)}`;
  await putOnce(s3, target, bytes, 'application/jsonlines');
  return target;
}

/**
 * Resolves a trainModel request into a job spec: the dataset artifact's split files, the base model (a model version
 * → its artifact URI), the effective hyperparameters, a deterministic job name; for SageMaker it also uploads the
 * job code (content-hashed sourcedir.tar.gz) and any local data to S3. Bad input throws InvalidTrainingInput.
 */
export async function prepareTraining(input: TrainModelInput, ctx: PrepareContext): Promise<PreparedTraining> {
  const { settings } = ctx;
  if (!TRAINING_MODES.includes(input.mode))
    throw new InvalidTrainingInput(`mode must be sft or dpo, got ${JSON.stringify(input.mode)}`);
  const backend = input.backend ?? settings.training.backend;
  if (!TRAINING_BACKENDS.includes(backend))
    throw new InvalidTrainingInput(`backend must be local or sagemaker, got ${JSON.stringify(backend)}`);

  const datasetId = typeof input.dataset === 'string' ? input.dataset : input.dataset?.artifactId;
  if (!datasetId) throw new InvalidTrainingInput('dataset: give the dataset artifact id');
  const dataset = await ctx.artifacts.get(datasetId);
  if (!dataset)
    throw new InvalidTrainingInput(
      `dataset artifact ${datasetId} not found (list them with \`twin artifacts --kind ${DATASET_KIND[input.mode]}\`)`,
    );
  if (dataset.kind !== DATASET_KIND[input.mode]) {
    throw new InvalidTrainingInput(
      `${input.mode} trains on a ${DATASET_KIND[input.mode]}, but ${datasetId} is a ${dataset.kind}`,
    );
  }
  const splits = datasetSplitUris(dataset);
  if (!(await uriExists(splits.train, ctx.s3)))
    throw new InvalidTrainingInput(`dataset ${datasetId} has no train split at ${splits.train}`);
  const hasTest = await uriExists(splits.test, ctx.s3);

  const hyperparameters = effectiveHyperparameters(input.mode, input.hyperparameters);

  let baseModel: string;
  let baseModelVersion: string | undefined;
  let baseModelArtifactId: string | undefined;
  if (input.baseModel && typeof input.baseModel === 'object') {
    const base = await ctx.models.get(input.baseModel.modelVersion);
    if (!base)
      throw new InvalidTrainingInput(
        `base model version ${input.baseModel.modelVersion} not found (see \`twin models list\`)`,
      );
    baseModel = base.artifactUri;
    baseModelVersion = base.version;
    baseModelArtifactId = base.artifactId;
  } else if (typeof input.baseModel === 'string' && input.baseModel) {
    baseModel = input.baseModel;
  } else if (input.mode === 'dpo') {
    throw new InvalidTrainingInput(
      'dpo trains on top of an SFT model: give baseModel: {modelVersion: "<sft version>"} (or a model id)',
    );
  } else {
    baseModel = settings.training.baseModel;
  }
  if (backend === 'sagemaker' && baseModel.startsWith('file://')) {
    throw new InvalidTrainingInput(
      `SageMaker cannot read the local base model ${baseModel}; train the base on SageMaker or upload it to S3`,
    );
  }

  const jobName = trainingJobName(ctx.workflowId, input.mode, {
    dataset: datasetId,
    baseModel,
    hyperparameters,
    backend,
  });
  const spec: TrainingJobSpec = {
    jobName,
    mode: input.mode,
    baseModel,
    hyperparameters,
    data: { train: splits.train, ...(hasTest ? { test: splits.test } : {}) },
    tags: {
      'twin:workflow-id': ctx.workflowId.slice(0, 256),
      'twin:dataset-version': splits.version.slice(0, 256),
      'twin:mode': input.mode,
    },
  };

  if (backend === 'sagemaker') {
    const config = sageMakerTrainingConfig(settings);
    const s3 = ctx.s3();
    const code = await packageSourceDir();
    const codeUri = `${config.outputS3Uri}/${sourceDirKey(code.checksum)}`;
    await putOnce(s3, codeUri, code.bytes, 'application/gzip');
    spec.sourceDir = { uri: codeUri, checksum: code.checksum };
    spec.data = {
      train: await inS3(splits.train, config.outputS3Uri, s3),
      ...(hasTest ? { test: await inS3(splits.test, config.outputS3Uri, s3) } : {}),
    };
    const general = String(hyperparameters.general_dataset ?? '');
    if (general.startsWith('file://'))
      spec.hyperparameters = { ...hyperparameters, general_dataset: await inS3(general, config.outputS3Uri, s3) };
  }

  return {
    backend,
    modelVersion: jobName,
    datasetArtifactId: datasetId,
    datasetVersion: splits.version,
    ...(baseModelVersion ? { baseModelVersion } : {}),
    ...(baseModelArtifactId ? { baseModelArtifactId } : {}),
    chatTemplateChecksum: chatTemplateChecksum(),
    spec,
  };
}
