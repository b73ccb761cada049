import {
  CancellationScope,
  isCancellation,
  log,
  proxyActivities,
  upsertMemo,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { ModelVersionRef, TrainingActivities } from '../activities/training';
import { SEARCH_ATTRIBUTES } from '../src/domain/search-attributes';
import type { TrainingJobRef } from '../src/training/backend';
import type { TrainModelInput } from '../src/training/prepare';
import { QUEUES } from './queues';

export type { TrainModelInput } from '../src/training/prepare';
export type { ModelVersionRef } from '../activities/training';

const retry = { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute' } as const;

const { prepareTrainingJob, startTrainingJob, registerModelVersion } = proxyActivities<TrainingActivities>({
  taskQueue: QUEUES.ml,
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '1 minute',
  retry: { ...retry, maximumAttempts: 10 },
});

/** One long heartbeating poll; the heartbeat timeout notices a dead worker, the retry resumes the wait. */
const { waitForTrainingJob } = proxyActivities<TrainingActivities>({
  taskQueue: QUEUES.ml,
  startToCloseTimeout: '30 days',
  heartbeatTimeout: '2 minutes',
  retry: { ...retry, maximumAttempts: 20 },
});

const { stopTrainingJob } = proxyActivities<TrainingActivities>({
  taskQueue: QUEUES.ml,
  startToCloseTimeout: '2 minutes',
  retry: { ...retry, maximumAttempts: 10 },
});

/**
 * Fine-tunes a model on a dataset version (SFT on an instruction dataset, DPO on a preference dataset on top of an
 * SFT model version) with the local or SageMaker backend, and registers the result as a model version with its
 * lineage. Cancelling the workflow stops the training job.
 */
export async function trainModel(input: TrainModelInput): Promise<ModelVersionRef> {
  upsertSearchAttributes([
    { key: SEARCH_ATTRIBUTES.pipeline, value: 'trainModel' },
    { key: SEARCH_ATTRIBUTES.status, value: 'preparing' },
  ]);
  const prepared = await prepareTrainingJob(input);
  upsertSearchAttributes([
    { key: SEARCH_ATTRIBUTES.datasetVersion, value: prepared.datasetVersion },
    { key: SEARCH_ATTRIBUTES.modelVersion, value: prepared.modelVersion },
    { key: SEARCH_ATTRIBUTES.status, value: 'training' },
  ]);
  upsertMemo({
    mode: prepared.spec.mode,
    backend: prepared.backend,
    dataset: prepared.datasetArtifactId,
    baseModel: prepared.baseModelVersion ?? prepared.spec.baseModel,
    jobName: prepared.spec.jobName,
  });
  const job: TrainingJobRef = { backend: prepared.backend, jobName: prepared.spec.jobName };
  try {
    Object.assign(job, await startTrainingJob(prepared));
    const outcome = await waitForTrainingJob(job);
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: 'registering' }]);
    const result = await registerModelVersion({ prepared, job, outcome });
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: 'completed' }]);
    return result;
  } catch (error) {
    const cancelled = isCancellation(error);
    // Whatever ended the run, the job must not keep running (and billing) unwatched. Stop is a no-op for a job that
    // already ended; it runs even though the workflow is being cancelled.
    await CancellationScope.nonCancellable(async () => {
      try {
        await stopTrainingJob(job);
      } catch (stopError) {
        log.warn('could not stop the training job', { jobName: job.jobName, error: String(stopError) });
      }
      upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: cancelled ? 'cancelled' : 'failed' }]);
    });
    throw error;
  }
}
