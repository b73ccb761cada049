import { log, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { SmokeActivities, SmokeNoteInput } from '../activities/smoke';
import type { ArtifactRef } from '../src/domain/artifacts';
import { SEARCH_ATTRIBUTES } from '../src/domain/search-attributes';
import { QUEUES } from './queues';

const { writeSmokeNote } = proxyActivities<SmokeActivities>({
  taskQueue: QUEUES.etl,
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '5 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 10 },
});

export interface SmokeResult {
  artifact: ArtifactRef;
  taskQueue: string;
}

/** Crosses every layer once: client → workflow → activity on another queue → MongoDB → artifact registry. */
export async function smoke(input: SmokeNoteInput): Promise<SmokeResult> {
  upsertSearchAttributes([
    { key: SEARCH_ATTRIBUTES.pipeline, value: 'smoke' },
    { key: SEARCH_ATTRIBUTES.status, value: 'running' },
  ]);
  log.info('smoke started', { workflowId: workflowInfo().workflowId });
  const artifact = await writeSmokeNote(input);
  upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: 'completed' }]);
  return { artifact, taskQueue: QUEUES.etl };
}
