import { ApplicationFailure, Context } from '@temporalio/activity';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SageMakerClient } from '@aws-sdk/client-sagemaker';
import { checksumOf, type ArtifactRef } from '../src/domain/artifacts';
import { createS3Client } from '../src/infra/artifact-store';
import type { Dependencies } from '../src/infra/dependencies';
import {
  TERMINAL_STATUSES,
  TrainingJobError,
  type TrainingBackend,
  type TrainingJobRef,
  type TrainingJobState,
} from '../src/training/backend';
import { LocalTrainingBackend } from '../src/training/local';
import { prepareTraining, type PreparedTraining, type TrainModelInput } from '../src/training/prepare';
import { ModelRegistry, registerModelPackage, type ModelVersion } from '../src/training/registry';
import {
  createSageMakerClient,
  deepLearningContainerImage,
  INFERENCE_IMAGE_TAG,
  SageMakerTrainingBackend,
  sageMakerTrainingConfig,
} from '../src/training/sagemaker';
import { InvalidTrainingInput, type TrainingBackendName } from '../src/training/spec';
import { badInput, classifier, currentProducer, failureOf, heartbeatingWait, withHeartbeat } from './support';

/** What `waitForTrainingJob` returns once the job completed. */
export interface TrainingOutcome {
  status: 'Completed';
  metrics: Record<string, number>;
  modelArtifactUri: string;
  secondaryStatus: string;
  startedAt?: string;
  endedAt?: string;
  billableSeconds?: number;
}

/** The model version a run registered (also the workflow's result). */
export interface ModelVersionRef {
  modelVersion: string;
  mode: ModelVersion['mode'];
  backend: TrainingBackendName;
  jobName: string;
  artifact: ArtifactRef;
  artifactUri: string;
  datasetArtifactId: string;
  datasetVersion: string;
  baseModelVersion?: string;
  metrics: Record<string, number>;
  modelPackageArn?: string;
  status: ModelVersion['status'];
}

export interface TrainingActivityOptions {
  /** Replace a backend (tests). */
  backends?: Partial<Record<TrainingBackendName, TrainingBackend>>;
  sagemakerClient?: SageMakerClient;
  s3Client?: S3Client;
  /** Milliseconds between polls; default TRAINING_POLL_INTERVAL_S for SageMaker, 2 s for local jobs. */
  pollIntervalMs?: Partial<Record<TrainingBackendName, number>>;
}

/** Errors → Temporal failures: bad input and non-retryable job errors stop the retries with a clear message. */
function toFailure(error: unknown): unknown {
  if (error instanceof InvalidTrainingInput) return badInput(error.message, 'InvalidTrainingInput');
  if (error instanceof TrainingJobError) {
    return failureOf(error, error.code, error.retryable);
  }
  return error;
}

const classified = classifier(toFailure);

function describeState(state: TrainingJobState): Record<string, unknown> {
  const latest = state.latestMetric;
  return {
    status: state.status,
    secondaryStatus: state.secondaryStatus,
    ...(latest
      ? { latestMetric: `${latest.metric}=${latest.value}${latest.step !== undefined ? ` @ step ${latest.step}` : ''}` }
      : {}),
    ...(state.metrics.train_loss !== undefined ? { train_loss: state.metrics.train_loss } : {}),
  };
}

/**
 * Training activities on twin-ml. The wait is one long heartbeating activity (not a workflow timer loop): a
 * multi-hour job polled every 30 s would otherwise add thousands of events to the history, while heartbeats
 * carry the job's status and latest metric to the Web UI (pending activity details), a dead worker is noticed
 * within the heartbeat timeout, and workflow cancellation reaches the activity through its heartbeat.
 */
export function createTrainingActivities(deps: Dependencies, options: TrainingActivityOptions = {}) {
  const { settings } = deps;
  let s3: S3Client | undefined;
  let sagemaker: SageMakerClient | undefined;
  const s3Client = () => (s3 ??= options.s3Client ?? createS3Client(settings.aws));
  const sagemakerClient = () => (sagemaker ??= options.sagemakerClient ?? createSageMakerClient(settings.aws));
  const backends = new Map<TrainingBackendName, TrainingBackend>();
  const backendFor = (name: TrainingBackendName): TrainingBackend => {
    let backend = options.backends?.[name] ?? backends.get(name);
    if (!backend) {
      backend =
        name === 'sagemaker'
          ? new SageMakerTrainingBackend(sagemakerClient(), sageMakerTrainingConfig(settings))
          : new LocalTrainingBackend({
              python: settings.training.python,
              workDir: settings.training.dir,
              s3: s3Client(),
              hfToken: settings.huggingFace.token,
            });
      backends.set(name, backend);
    }
    return backend;
  };
  const pollIntervalMs = (name: TrainingBackendName) =>
    options.pollIntervalMs?.[name] ?? (name === 'local' ? 2_000 : settings.training.pollIntervalSeconds * 1_000);
  const models = async () => new ModelRegistry((await deps.warehouse()).db);

  return {
    /** Resolves dataset, base model and hyperparameters; packages and uploads the job code for SageMaker. */
    prepareTrainingJob: async (input: TrainModelInput): Promise<PreparedTraining> => {
      const { workflowId } = currentProducer();
      return classified(() =>
        withHeartbeat(async () =>
          prepareTraining(input, {
            workflowId,
            settings,
            artifacts: await deps.artifactRegistry(),
            models: await models(),
            s3: s3Client,
          }),
        ),
      );
    },

    /** Starts the job (idempotent by job name: a retried start adopts the job it started before). */
    startTrainingJob: async (prepared: PreparedTraining): Promise<TrainingJobRef> => {
      return classified(async () => {
        const job = await withHeartbeat(() => backendFor(prepared.backend).start(prepared.spec));
        deps.log.info({ jobName: job.jobName, backend: job.backend, arn: job.arn }, 'training job started');
        return job;
      });
    },

    /**
     * Polls until the job ends, heartbeating its status, secondary status and latest metric. Completed → the
     * outcome; Failed/Stopped → a non-retryable failure with the job's reason. Cancelled through its heartbeat.
     */
    waitForTrainingJob: async (job: TrainingJobRef): Promise<TrainingOutcome> => {
      const context = Context.current();
      const backend = backendFor(job.backend);
      let lastPhase = '';
      for (;;) {
        const state = await classified(() => backend.poll(job));
        const details = describeState(state);
        context.heartbeat(details);
        if (state.secondaryStatus !== lastPhase) {
          deps.log.info({ jobName: job.jobName, ...details }, 'training job status');
          lastPhase = state.secondaryStatus;
        }
        if (TERMINAL_STATUSES.includes(state.status)) {
          if (state.status === 'Completed') {
            if (!state.modelArtifactUri) {
              throw ApplicationFailure.create({
                message: `training job ${job.jobName} completed without a model artifact (save_model=false?)`,
                type: 'NoModelArtifact',
                nonRetryable: true,
              });
            }
            return {
              status: 'Completed',
              metrics: state.metrics,
              modelArtifactUri: state.modelArtifactUri,
              secondaryStatus: state.secondaryStatus,
              ...(state.startedAt ? { startedAt: state.startedAt } : {}),
              ...(state.endedAt ? { endedAt: state.endedAt } : {}),
              ...(state.billableSeconds !== undefined ? { billableSeconds: state.billableSeconds } : {}),
            };
          }
          const reason = state.failureReason ?? 'no reason given';
          const capacity = /capacity/i.test(reason);
          throw ApplicationFailure.create({
            message: `training job ${job.jobName} ${state.status.toLowerCase()}: ${reason}`,
            type: state.status === 'Stopped' ? 'TrainingJobStopped' : capacity ? 'CapacityError' : 'TrainingJobFailed',
            nonRetryable: true,
            details: [
              {
                jobName: job.jobName,
                status: state.status,
                secondaryStatus: state.secondaryStatus,
                metrics: state.metrics,
              },
            ],
          });
        }
        await heartbeatingWait(pollIntervalMs(job.backend), details);
      }
    },

    /** Stops the job (workflow cancelled or failed); a job that already ended is left alone. */
    stopTrainingJob: async (job: TrainingJobRef): Promise<void> => {
      await classified(() => backendFor(job.backend).stop(job));
      deps.log.info({ jobName: job.jobName, backend: job.backend }, 'training job stop requested');
    },

    /**
     * Records the model version: an ArtifactRef of kind 'model' (inputs: the dataset, and the base model version for
     * DPO), the Mongo `models` entry, and on SageMaker a model package (PendingManualApproval). Idempotent.
     */
    registerModelVersion: async (input: {
      prepared: PreparedTraining;
      job: TrainingJobRef;
      outcome: TrainingOutcome;
    }): Promise<ModelVersionRef> => {
      const { prepared, job, outcome } = input;
      return classified(async () => {
        const producer = currentProducer();
        const registry = await deps.artifactRegistry();
        const artifact = await registry.record({
          kind: 'model',
          uri: outcome.modelArtifactUri,
          count: 1,
          checksum: checksumOf({ jobName: job.jobName, uri: outcome.modelArtifactUri, backend: job.backend }),
          producer,
          inputs: [prepared.datasetArtifactId, ...(prepared.baseModelArtifactId ? [prepared.baseModelArtifactId] : [])],
          metadata: {
            modelVersion: prepared.modelVersion,
            mode: prepared.spec.mode,
            backend: job.backend,
            jobName: job.jobName,
            baseModel: prepared.spec.baseModel,
            baseModelVersion: prepared.baseModelVersion ?? null,
            datasetVersion: prepared.datasetVersion,
            ...Object.fromEntries(
              ['train_loss', 'eval_loss', 'rewards_accuracies', 'train_runtime'].flatMap((name) =>
                outcome.metrics[name] !== undefined ? [[name, outcome.metrics[name]]] : [],
              ),
            ),
          },
        });
        const modelRegistry = await models();
        let version = await modelRegistry.register({
          version: prepared.modelVersion,
          mode: prepared.spec.mode,
          baseModel: prepared.spec.baseModel,
          ...(prepared.baseModelVersion ? { baseModelVersion: prepared.baseModelVersion } : {}),
          datasetArtifactId: prepared.datasetArtifactId,
          datasetVersion: prepared.datasetVersion,
          hyperparameters: prepared.spec.hyperparameters,
          backend: job.backend,
          jobName: job.jobName,
          ...(job.arn ? { jobArn: job.arn } : {}),
          metrics: outcome.metrics,
          artifactUri: outcome.modelArtifactUri,
          artifactId: artifact.id,
          chatTemplateChecksum: prepared.chatTemplateChecksum,
          workflowId: producer.workflowId,
        });
        if (job.backend === 'sagemaker' && !version.modelPackageArn) {
          const arn = await registerModelPackage(sagemakerClient(), {
            groupName: settings.training.sagemaker.modelPackageGroup,
            model: version,
            inferenceImageUri:
              settings.training.sagemaker.inferenceImageUri ??
              deepLearningContainerImage(settings.aws.region, INFERENCE_IMAGE_TAG),
          });
          await modelRegistry.setModelPackage(version.version, arn);
          version = { ...version, modelPackageArn: arn };
        }
        return {
          modelVersion: version.version,
          mode: version.mode,
          backend: version.backend,
          jobName: version.jobName,
          artifact,
          artifactUri: version.artifactUri,
          datasetArtifactId: version.datasetArtifactId,
          datasetVersion: version.datasetVersion,
          ...(version.baseModelVersion ? { baseModelVersion: version.baseModelVersion } : {}),
          metrics: version.metrics,
          ...(version.modelPackageArn ? { modelPackageArn: version.modelPackageArn } : {}),
          status: version.status,
        };
      });
    },
  };
}

export type TrainingActivities = ReturnType<typeof createTrainingActivities>;
