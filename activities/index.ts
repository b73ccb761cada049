import type { QueueName } from '../src/config';
import type { Dependencies } from '../src/infra/dependencies';
import { createSmokeActivities } from './smoke';

/** The activities each activity task queue serves (DESIGN.md §3). `pipelines` runs workflows only. */
export function activitiesForQueue(queue: Exclude<QueueName, 'pipelines'>, deps: Dependencies): Record<string, (...args: never[]) => Promise<unknown>> {
  switch (queue) {
    case 'etl':
      return { ...createSmokeActivities(deps) };
    case 'features':
      return {};
    case 'llm':
      return {};
    case 'ml':
      return {};
  }
}
