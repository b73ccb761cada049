import { ActivityFailure, proxyActivities } from '@temporalio/workflow';
import type { createPingActivities } from '../activities/ping';
import { QUEUES } from './queues';

type PingActivities = ReturnType<typeof createPingActivities>;

export interface QueuePing {
  taskQueue: string;
  ok: boolean;
  detail: string;
}

/** Pings every activity queue; a queue with no polling worker shows up as a schedule-to-start timeout. */
export async function pingQueues(): Promise<QueuePing[]> {
  const queues = [QUEUES.etl, QUEUES.features, QUEUES.llm, QUEUES.ml];
  return Promise.all(
    queues.map(async (taskQueue) => {
      const { ping } = proxyActivities<PingActivities>({
        taskQueue,
        scheduleToStartTimeout: '5 seconds',
        startToCloseTimeout: '5 seconds',
        retry: { maximumAttempts: 1 },
      });
      try {
        const answer = await ping();
        return { taskQueue, ok: true, detail: `worker on ${answer.host} (pid ${answer.pid})` };
      } catch (error) {
        const reason = error instanceof ActivityFailure && error.cause ? error.cause.message : String(error);
        return { taskQueue, ok: false, detail: `no worker answered: ${reason}` };
      }
    }),
  );
}
