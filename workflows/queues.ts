/** Task queue names as workflows see them (kept equal to TASK_QUEUES in src/config.ts, checked by a test). */
export const QUEUES = {
  pipelines: 'twin-pipelines',
  etl: 'twin-etl',
  features: 'twin-features',
  llm: 'twin-llm',
  ml: 'twin-ml',
} as const;
