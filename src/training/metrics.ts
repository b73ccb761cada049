/**
 * The job's metric lines (jobs/finetune/train.py prints one JSON object per line):
 *   {"metric": "train_loss", "value": 1.234, "step": 10, "epoch": 0.5}
 *   {"event": "phase", "phase": "Training"}
 *   {"event": "error", "message": "..."}
 * The local backend parses them from the process output; SageMaker picks values out of the same lines with the
 * regexes of `metricDefinitions()`.
 */
export interface MetricPoint {
  metric: string;
  value: number;
  step?: number;
  epoch?: number;
}

export type JobLine =
  | { kind: 'metric'; point: MetricPoint }
  | { kind: 'phase'; phase: string }
  | { kind: 'error'; message: string }
  | { kind: 'done' };

/** A number, or a numeric string (transformers 5 logs some numbers as text). */
function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && value.trim() !== '') {
    const parsed = Number(value);
    return Number.isFinite(parsed) ? parsed : undefined;
  }
  return undefined;
}

/** Parses one output line; anything that is not one of the job's JSON lines gives undefined. */
export function parseJobLine(line: string): JobLine | undefined {
  const start = line.indexOf('{"');
  if (start < 0) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(line.slice(start));
  } catch {
    return undefined;
  }
  if (!data || typeof data !== 'object') return undefined;
  const record = data as Record<string, unknown>;
  if (typeof record.metric === 'string') {
    const value = toNumber(record.value);
    if (value === undefined) return undefined;
    const point: MetricPoint = { metric: record.metric, value };
    const step = toNumber(record.step);
    const epoch = toNumber(record.epoch);
    if (step !== undefined) point.step = step;
    if (epoch !== undefined) point.epoch = epoch;
    return { kind: 'metric', point };
  }
  if (record.event === 'phase' && typeof record.phase === 'string') return { kind: 'phase', phase: record.phase };
  if (record.event === 'error')
    return { kind: 'error', message: typeof record.message === 'string' ? record.message : 'unknown error' };
  if (record.event === 'done') return { kind: 'done' };
  return undefined;
}

/** The last value of each metric. */
export function latestMetrics(points: Iterable<MetricPoint>): Record<string, number> {
  const latest: Record<string, number> = {};
  for (const point of points) latest[point.metric] = point.value;
  return latest;
}

/** Metrics SageMaker extracts from the job's log (CloudWatch metrics + FinalMetricDataList). */
export const SAGEMAKER_METRICS = [
  'train_loss',
  'learning_rate',
  'grad_norm',
  'mean_token_accuracy',
  'eval_loss',
  'eval_mean_token_accuracy',
  'rewards_chosen',
  'rewards_rejected',
  'rewards_accuracies',
  'rewards_margins',
  'eval_rewards_accuracies',
  'eval_rewards_margins',
  'train_loss_mean',
  'train_runtime',
  'train_tokens_per_second',
  'peak_memory_gb',
  'train_samples',
] as const;

const NUMBER = String.raw`(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)`;

/** The regex SageMaker applies to each log line for a metric; accepts the value quoted or not. */
export function metricRegex(name: string): string {
  return `"metric": "${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}", "value": "?${NUMBER}`;
}

export function metricDefinitions(): { Name: string; Regex: string }[] {
  return SAGEMAKER_METRICS.map((name) => ({ Name: name, Regex: metricRegex(name) }));
}
