import {
  log,
  ParentClosePolicy,
  patched,
  proxyActivities,
  startChild,
  upsertMemo,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { DatasetVersionSummary } from '../activities/datasets';
import type { TrainingTriggerActivities } from '../activities/pipeline-state';
import type { continuousTraining } from './continuous-training';
import { failureOf } from './failures';
import { QUEUES } from './queues';

const { trainingTriggerFor } = proxyActivities<TrainingTriggerActivities>({
  taskQueue: QUEUES.llm,
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    maximumAttempts: 5,
    nonRetryableErrorTypes: ['BadSchedule'],
  },
});

/**
 * "Start training when a new dataset version is registered": after generateDatasets registered a version, start
 * continuousTraining (which trains only if the version is newer than what the last model was trained on) when
 * TRAIN_ON_NEW_DATASET is on (or the run asked with `trainOnNewVersion: true`; `false` never starts it).
 *
 * One fixed workflow id with ALLOW_DUPLICATE: a trigger while a triggered run is still going is dropped (that run, or
 * the next one, sees the newest versions), so runs do not pile up. ABANDON: the training outlives this run.
 * By type name (type-only import) because continuousTraining itself may start generateDatasets.
 */
export async function startTrainingOnNewDataset(
  dataset: DatasetVersionSummary,
  requested: boolean | undefined,
): Promise<void> {
  if (requested === false || !patched('train-on-new-dataset-version')) return;
  let trigger: Awaited<ReturnType<typeof trainingTriggerFor>>;
  try {
    trigger = await trainingTriggerFor({
      type: dataset.type,
      artifactId: dataset.artifactId,
      version: dataset.version,
      created: dataset.created,
      ...(requested ? { force: true } : {}),
    });
  } catch (error) {
    // The dataset version is built and registered; a misconfigured trigger must not turn that into a failed run.
    const reason = failureOf(error, []).reason;
    log.warn('the new-dataset training trigger failed', { reason });
    upsertMemo({ trainingTrigger: `failed: ${reason}` });
    return;
  }
  upsertMemo({ trainingTrigger: trigger.start ? `started ${trigger.workflowId}` : trigger.reason });
  if (!trigger.start) return;
  try {
    await startChild<typeof continuousTraining>('continuousTraining', {
      workflowId: trigger.workflowId,
      taskQueue: QUEUES.pipelines,
      args: [trigger.input],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
    });
    log.info('started continuousTraining for a new dataset version', {
      workflowId: trigger.workflowId,
      reason: trigger.reason,
    });
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
    log.info('continuousTraining is already running; this dataset version is left to it or the next run', {
      version: dataset.version,
    });
  }
}
