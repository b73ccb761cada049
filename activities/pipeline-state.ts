import path from 'node:path';
import type { Dependencies } from '../src/infra/dependencies';
import type { DatasetCandidate, TrainedModelInfo, TrainingFacts } from '../src/pipelines/freshness';
import { loadScheduleSpec, ScheduleSpecError } from '../src/pipelines/schedule-spec';
import type { ContinuousTrainingInput } from '../src/pipelines/types';
import { ModelRegistry, type ModelVersion } from '../src/training/registry';
import { badInput } from './support';

/** What generateDatasets asks after it registered a dataset version. */
export interface TrainingTriggerInput {
  type: 'instruction' | 'preference';
  artifactId: string;
  version: string;
  /** false when the run re-produced a version that already existed */
  created: boolean;
  /** start even when TRAIN_ON_NEW_DATASET is off (the run asked for it) */
  force?: boolean;
}

export type TrainingTrigger =
  | { start: false; reason: string }
  | { start: true; workflowId: string; input: ContinuousTrainingInput; reason: string };

/** The id every triggered continuousTraining run uses, so triggers arriving while one runs do not pile up. */
export const TRIGGERED_TRAINING_WORKFLOW_ID = 'twin-continuous-training-on-new-dataset';

/**
 * Small Mongo lookups of the composite pipelines (endToEnd, continuousTraining) on twin-ml: what is the newest
 * dataset version and what was the last model trained on, should a new dataset version start training, and
 * recording a reviewer's rejection in the model registry.
 */
export function createPipelineStateActivities(deps: Dependencies) {
  const models = async () => new ModelRegistry((await deps.warehouse()).db);

  return {
    async findTrainingFacts(): Promise<TrainingFacts> {
      const registry = await deps.artifactRegistry();
      const newest = async (kind: 'instruction-dataset' | 'preference-dataset'): Promise<DatasetCandidate | null> => {
        const [ref] = await registry.list({ kind, limit: 1 });
        return ref
          ? {
              artifactId: ref.id,
              version: String(ref.metadata.version ?? ref.checksum),
              createdAt: ref.createdAt,
              count: ref.count,
            }
          : null;
      };
      const trained = async (mode: 'sft' | 'dpo'): Promise<TrainedModelInfo | null> => {
        const [model]: ModelVersion[] = await (await models()).list({ mode, limit: 1 });
        if (!model) return null;
        const dataset = await registry.get(model.datasetArtifactId);
        return {
          modelVersion: model.version,
          datasetArtifactId: model.datasetArtifactId,
          ...(dataset ? { datasetCreatedAt: dataset.createdAt } : {}),
          createdAt: model.createdAt,
        };
      };
      const [instruction, preference, lastSft, lastDpo] = await Promise.all([
        newest('instruction-dataset'),
        newest('preference-dataset'),
        trained('sft'),
        trained('dpo'),
      ]);
      return { instruction, preference, lastSft, lastDpo };
    },

    /** A reviewer (or the timeout policy) rejected the deployment: the model version becomes Rejected. */
    async recordApprovalDecision(input: { model: string; approved: boolean }): Promise<void> {
      const registry = await models();
      const model = await registry.get(input.model);
      if (!model) throw badInput(`no model version ${input.model}`);
      if (!input.approved) await registry.setStatus(input.model, 'Rejected');
    },
  };
}

export type PipelineStateActivities = ReturnType<typeof createPipelineStateActivities>;

/**
 * The new-dataset trigger, on twin-llm next to the rest of generateDatasets' activities (so a datasets-only
 * deployment without a twin-ml worker never waits for it).
 */
export function createTrainingTriggerActivities(deps: Dependencies) {
  return {
    /**
     * Whether generateDatasets should start continuousTraining for the version it registered: only when
     * TRAIN_ON_NEW_DATASET is on and the version is new; the input is the action input of the continuous-training
     * schedule spec (CONTINUOUS_TRAINING_SCHEDULE), so the trigger and the schedule train the same way.
     */
    async trainingTriggerFor(input: TrainingTriggerInput): Promise<TrainingTrigger> {
      const { trainOnNewDataset, continuousTrainingSpec } = deps.settings.schedules;
      if (!trainOnNewDataset && !input.force) return { start: false, reason: 'TRAIN_ON_NEW_DATASET is off' };
      if (!input.created) return { start: false, reason: `dataset version ${input.version} existed already` };
      const file = path.resolve(continuousTrainingSpec);
      try {
        const spec = await loadScheduleSpec(file);
        if (spec.action.workflow !== 'continuousTraining') {
          throw badInput(`${file} starts ${spec.action.workflow}, not continuousTraining`, 'BadSchedule');
        }
        return {
          start: true,
          workflowId: TRIGGERED_TRAINING_WORKFLOW_ID,
          input: spec.action.input,
          reason: `new ${input.type} dataset version ${input.version}`,
        };
      } catch (error) {
        if (error instanceof ScheduleSpecError) throw badInput(error.message, 'BadSchedule');
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
          throw badInput(`CONTINUOUS_TRAINING_SCHEDULE ${file} does not exist`, 'BadSchedule');
        }
        throw error;
      }
    },
  };
}

export type TrainingTriggerActivities = ReturnType<typeof createTrainingTriggerActivities>;
