import path from 'node:path';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { activitiesForQueue } from '../activities';
import { TASK_QUEUES, type QueueName, type Settings } from '../src/config';
import { createDependencies } from '../src/infra/dependencies';
import type { Logger } from '../src/infra/logger';
import { connectClient, connectionOptions, ensureSearchAttributes } from '../src/infra/temporal';
import { installTemporalRuntime } from '../src/infra/temporal-worker';

const WORKFLOWS_PATH = path.join(__dirname, '..', 'workflows', 'index');

function workflowSource(settings: Settings): Pick<WorkerOptions, 'workflowsPath' | 'workflowBundle'> {
  // Production uses the bundle built once at image build time; development bundles at start.
  return settings.workers.workflowBundle
    ? { workflowBundle: { codePath: settings.workers.workflowBundle } }
    : { workflowsPath: require.resolve(WORKFLOWS_PATH) };
}

/**
 * Worker Versioning (docs/deploy.md): a worker with a build id only gets tasks of its version; running workflows
 * stay pinned to the version that started them, so a deploy never replays old histories on new code.
 */
function versioning(settings: Settings): Pick<WorkerOptions, 'workerDeploymentOptions'> {
  const deployment = settings.workers.deployment;
  if (!deployment) return {};
  return {
    workerDeploymentOptions: { version: deployment, useWorkerVersioning: true, defaultVersioningBehavior: 'PINNED' },
  };
}

function queueOptions(queue: QueueName, settings: Settings): Partial<WorkerOptions> {
  const limit = settings.workers.concurrency[queue];
  switch (queue) {
    case 'pipelines':
      return { maxConcurrentWorkflowTaskExecutions: Math.min(limit, 100), maxCachedWorkflows: 500 };
    case 'llm':
      return {
        maxConcurrentActivityTaskExecutions: limit,
        maxTaskQueueActivitiesPerSecond: settings.workers.llmActivitiesPerSecond,
      };
    default:
      return { maxConcurrentActivityTaskExecutions: limit };
  }
}

/**
 * Runs one worker per requested task queue in this process until SIGINT/SIGTERM, then drains them
 * (the SDK's shutdown waits for running activities up to shutdownGraceTime) and closes connections.
 */
export async function runWorkers(queues: QueueName[], settings: Settings, log: Logger): Promise<void> {
  installTemporalRuntime(log);
  if (queues.includes('pipelines') && settings.temporal.address) await registerSearchAttributes(settings, log);
  const connection = await NativeConnection.connect(await connectionOptions(settings.temporal));
  const deps = createDependencies(settings, log);
  try {
    const workers = await Promise.all(
      queues.map((queue) =>
        Worker.create({
          connection,
          namespace: settings.temporal.namespace,
          taskQueue: TASK_QUEUES[queue],
          shutdownGraceTime: '10 seconds',
          // The SDK sends heartbeats at most every 60 s by default (0.8 × a 2-minute heartbeat timeout, capped):
          // a training job's phase or a batch's progress would show in describe and the Web UI up to a minute late.
          maxHeartbeatThrottleInterval: settings.workers.heartbeatFlushSeconds * 1_000,
          ...versioning(settings),
          ...queueOptions(queue, settings),
          ...(queue === 'pipelines' ? workflowSource(settings) : { activities: activitiesForQueue(queue, deps) }),
        }),
      ),
    );
    log.info({ queues: queues.map((q) => TASK_QUEUES[q]), namespace: settings.temporal.namespace }, 'workers running');
    await Promise.all(workers.map((worker) => worker.run()));
    log.info('workers stopped');
  } finally {
    await deps.close();
    await connection.close();
  }
}

/**
 * On a configured cluster, make sure the search attributes the workflows set exist (the dev server of `twin dev`
 * gets them as start flags). Not fatal: Temporal Cloud manages them in its UI and may refuse the call.
 */
async function registerSearchAttributes(settings: Settings, log: Logger): Promise<void> {
  try {
    const client = await connectClient(settings.temporal);
    try {
      await ensureSearchAttributes(client, settings.temporal.namespace, log);
    } finally {
      await client.connection.close();
    }
  } catch (error) {
    log.warn(
      { problem: (error as Error).message },
      'could not register search attributes; create TwinPipeline, TwinAuthor, TwinDatasetVersion, TwinModelVersion, TwinStatus in your namespace',
    );
  }
}
