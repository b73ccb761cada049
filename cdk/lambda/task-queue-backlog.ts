/**
 * Scheduled Lambda: publishes the approximate backlog of each task queue to CloudWatch, so the ECS worker
 * services can scale on it (step scaling in cdk/lib/twin-stack.ts).
 *
 * It calls Temporal's DescribeTaskQueue with `report_stats` for the workflow and the activity type of every
 * queue, and writes one CloudWatch Embedded Metric Format record per queue to stdout (Lambda's log group turns
 * it into metrics; no PutMetricData call or permission is needed):
 *   <namespace>/ApproximateBacklogCount {TemporalNamespace, TaskQueue}  (workflow + activity tasks)
 *   <namespace>/ApproximateBacklogAge   {TemporalNamespace, TaskQueue}  (seconds, oldest of both types)
 *
 * Environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS (true/false), TASK_QUEUES (comma list),
 * METRIC_NAMESPACE, TEMPORAL_SECRET_ARN (optional: JSON secret with TEMPORAL_API_KEY or
 * TEMPORAL_TLS_CERT + TEMPORAL_TLS_KEY).
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Connection, type ConnectionOptions } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

const { TaskQueueType, TaskQueueKind } = temporal.api.enums.v1;

export interface QueueBacklog {
  taskQueue: string;
  /** Workflow + activity tasks waiting. */
  backlog: number;
  /** Age in seconds of the oldest waiting task of either type (0 when none). */
  ageSeconds: number;
}

/** The one RPC this function needs, so tests can hand in a real connection's service or a stand-in. */
export interface DescribeTaskQueueService {
  describeTaskQueue(
    request: temporal.api.workflowservice.v1.IDescribeTaskQueueRequest,
  ): Promise<temporal.api.workflowservice.v1.IDescribeTaskQueueResponse>;
}

function toNumber(value: number | { toNumber(): number } | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'number' ? value : value.toNumber();
}

/** Backlog of one task queue: the sum of its workflow and activity backlogs. */
export async function describeBacklog(
  service: DescribeTaskQueueService,
  namespace: string,
  taskQueue: string,
): Promise<QueueBacklog> {
  const types = [TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY];
  const responses = await Promise.all(
    types.map((taskQueueType) =>
      service.describeTaskQueue({
        namespace,
        taskQueue: { name: taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
        taskQueueType,
        reportStats: true,
      }),
    ),
  );
  let backlog = 0;
  let ageSeconds = 0;
  for (const response of responses) {
    if (!response.stats) {
      throw new Error(
        `DescribeTaskQueue(${taskQueue}) returned no stats: the server must support report_stats (Temporal Cloud, or server 1.27+)`,
      );
    }
    backlog += toNumber(response.stats.approximateBacklogCount);
    const age = response.stats.approximateBacklogAge;
    ageSeconds = Math.max(ageSeconds, toNumber(age?.seconds) + (age?.nanos ?? 0) / 1e9);
  }
  return { taskQueue, backlog, ageSeconds };
}

/** One CloudWatch Embedded Metric Format record for a queue's backlog. */
export function toEmfRecord(
  metricNamespace: string,
  temporalNamespace: string,
  sample: QueueBacklog,
  timestamp: number,
): string {
  return JSON.stringify({
    _aws: {
      Timestamp: timestamp,
      CloudWatchMetrics: [
        {
          Namespace: metricNamespace,
          Dimensions: [['TemporalNamespace', 'TaskQueue']],
          Metrics: [
            { Name: 'ApproximateBacklogCount', Unit: 'Count' },
            { Name: 'ApproximateBacklogAge', Unit: 'Seconds' },
          ],
        },
      ],
    },
    TemporalNamespace: temporalNamespace,
    TaskQueue: sample.taskQueue,
    ApproximateBacklogCount: sample.backlog,
    ApproximateBacklogAge: sample.ageSeconds,
  });
}

interface TemporalSecret {
  TEMPORAL_API_KEY?: string;
  TEMPORAL_TLS_CERT?: string;
  TEMPORAL_TLS_KEY?: string;
}

/** Connection options from the function's environment and the Temporal secret (empty values = unset). */
export function connectionOptionsFrom(env: NodeJS.ProcessEnv, secret: TemporalSecret): ConnectionOptions {
  const address = env.TEMPORAL_ADDRESS;
  if (!address) throw new Error('TEMPORAL_ADDRESS is not set');
  const cert = secret.TEMPORAL_TLS_CERT || undefined;
  const key = secret.TEMPORAL_TLS_KEY || undefined;
  const apiKey = secret.TEMPORAL_API_KEY || undefined;
  const tls = env.TEMPORAL_TLS === 'true' || Boolean(cert ?? apiKey);
  return {
    address,
    tls: cert && key ? { clientCertPair: { crt: Buffer.from(cert), key: Buffer.from(key) } } : tls,
    ...(apiKey ? { apiKey } : {}),
    connectTimeout: '10s',
  };
}

async function readTemporalSecret(arn: string | undefined): Promise<TemporalSecret> {
  if (!arn) return {};
  const client = new SecretsManagerClient({});
  const result = await client.send(new GetSecretValueCommand({ SecretId: arn }));
  return result.SecretString ? (JSON.parse(result.SecretString) as TemporalSecret) : {};
}

let connection: Connection | undefined;

/** Describes every configured queue and prints one EMF record each. Returns the samples (for logs and tests). */
export async function publishBacklog(
  service: DescribeTaskQueueService,
  options: {
    temporalNamespace: string;
    metricNamespace: string;
    taskQueues: string[];
    write?: (line: string) => void;
    now?: () => number;
  },
): Promise<QueueBacklog[]> {
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const now = options.now ?? Date.now;
  const settled = await Promise.allSettled(
    options.taskQueues.map((q) => describeBacklog(service, options.temporalNamespace, q)),
  );
  const samples: QueueBacklog[] = [];
  const failures: string[] = [];
  settled.forEach((result, index) => {
    if (result.status === 'fulfilled') {
      samples.push(result.value);
      write(toEmfRecord(options.metricNamespace, options.temporalNamespace, result.value, now()));
    } else {
      failures.push(`${options.taskQueues[index]}: ${(result.reason as Error).message}`);
    }
  });
  // No data point for a failed queue: its alarms see missing data and take no scaling action.
  if (failures.length > 0)
    throw new Error(`could not describe ${failures.length} task queue(s): ${failures.join('; ')}`);
  return samples;
}

export async function handler(): Promise<QueueBacklog[]> {
  const env = process.env;
  if (!connection) {
    const secret = await readTemporalSecret(env.TEMPORAL_SECRET_ARN);
    connection = await Connection.connect(connectionOptionsFrom(env, secret));
  }
  return publishBacklog(connection.workflowService, {
    temporalNamespace: env.TEMPORAL_NAMESPACE ?? 'default',
    metricNamespace: env.METRIC_NAMESPACE ?? 'LlmTwin/Temporal',
    taskQueues: (env.TASK_QUEUES ?? '')
      .split(',')
      .map((q) => q.trim())
      .filter(Boolean),
  });
}
