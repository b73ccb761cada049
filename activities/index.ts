import type { QueueName } from '../src/config';
import type { Dependencies } from '../src/infra/dependencies';
import { createDatasetActivities } from './datasets';
import { createEtlActivities } from './etl';
import { createEvaluationActivities } from './evaluation';
import { createFeatureActivities } from './features';
import { createPingActivities } from './ping';
import { createServingActivities } from './serving';
import { createPipelineStateActivities, createTrainingTriggerActivities } from './pipeline-state';
import { createSmokeActivities } from './smoke';
import { createTrainingActivities } from './training';

/** The activities each activity task queue serves (DESIGN.md §3). `pipelines` runs workflows only. */
export function activitiesForQueue(
  queue: Exclude<QueueName, 'pipelines'>,
  deps: Dependencies,
): Record<string, (...args: never[]) => Promise<unknown>> {
  const common = createPingActivities();
  switch (queue) {
    case 'etl':
      return { ...common, ...createSmokeActivities(deps), ...createEtlActivities(deps) };
    case 'features':
      return { ...common, ...createFeatureActivities(deps) };
    case 'llm':
      return {
        ...common,
        ...createDatasetActivities(deps),
        // @activities:llm (one line per factory)
        ...createEvaluationActivities(deps),
        ...createTrainingTriggerActivities(deps),
      };
    case 'ml':
      return {
        ...common,
        ...createTrainingActivities(deps),
        // @activities:ml (one line per factory)
        ...createServingActivities(deps),
        ...createEvaluationActivities(deps),
        ...createPipelineStateActivities(deps),
      };
  }
}
