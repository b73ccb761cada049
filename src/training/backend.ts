import type { MetricPoint } from './metrics';
import type { TrainingBackendName, TrainingJobSpec } from './spec';

/** SageMaker's TrainingJobStatus values; the local backend reports the same ones. */
export type TrainingJobStatus = 'InProgress' | 'Completed' | 'Failed' | 'Stopping' | 'Stopped';

export const TERMINAL_STATUSES: readonly TrainingJobStatus[] = ['Completed', 'Failed', 'Stopped'];

/** Identifies a started job; small and JSON-able (it is an activity result). */
export interface TrainingJobRef {
  backend: TrainingBackendName;
  jobName: string;
  /** SageMaker: the job ARN. */
  arn?: string;
  /** Local: the job folder (log, model, exit status). */
  workDir?: string;
}

export interface TrainingJobState {
  status: TrainingJobStatus;
  /** SageMaker's SecondaryStatus (Starting, Downloading, Training, Uploading, …); the local job's phase. */
  secondaryStatus: string;
  /** Last value of each metric seen so far (final values once Completed). */
  metrics: Record<string, number>;
  /** The newest metric line, for heartbeats. */
  latestMetric?: MetricPoint;
  failureReason?: string;
  /** Where the trained model is (`s3://…/model.tar.gz`, `file://…/model`), once Completed. */
  modelArtifactUri?: string;
  startedAt?: string;
  endedAt?: string;
  /** SageMaker: billable seconds (spot savings show as fewer billable than training seconds). */
  billableSeconds?: number;
}

/** One way of running jobs/finetune: SageMaker training jobs, or a local process. */
export interface TrainingBackend {
  readonly name: TrainingBackendName;
  /** Starts the job; idempotent by `spec.jobName` (a second start of the same job returns the running one). */
  start(spec: TrainingJobSpec): Promise<TrainingJobRef>;
  poll(job: TrainingJobRef): Promise<TrainingJobState>;
  /** Asks the job to stop; a job that already ended is left alone. */
  stop(job: TrainingJobRef): Promise<void>;
}

/**
 * A training error classified for retries: `retryable: false` means retrying cannot help (quota, validation,
 * capacity, a failed job) and the message says what to change.
 */
export class TrainingJobError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'TrainingJobError';
  }
}
