/**
 * Dataset-version freshness for continuous training: does a dataset version newer than the one the last model was
 * trained on exist, and what should be trained. Pure code (no I/O, no clock): runs inside workflows.
 */

/** The newest dataset version of a kind (an `instruction-dataset` / `preference-dataset` artifact). */
export interface DatasetCandidate {
  artifactId: string;
  version: string;
  /** When the artifact was first recorded (ISO 8601); identical content re-generated keeps the first time. */
  createdAt: string;
  count: number;
}

/** The newest registered model version of a mode, and the dataset it was trained on. */
export interface TrainedModelInfo {
  modelVersion: string;
  datasetArtifactId: string;
  /** createdAt of that dataset artifact; absent when the artifact record is gone. */
  datasetCreatedAt?: string;
  createdAt: string;
}

/** What `findTrainingFacts` reads from the artifact registry and the `models` collection. */
export interface TrainingFacts {
  instruction: DatasetCandidate | null;
  preference: DatasetCandidate | null;
  lastSft: TrainedModelInfo | null;
  lastDpo: TrainedModelInfo | null;
}

export const SKIPPED_NO_NEW_DATA = 'skipped: no new data';

export type TrainingPlan =
  | { action: 'skip'; reason: typeof SKIPPED_NO_NEW_DATA; detail: string }
  | {
      action: 'train';
      /** SFT on this instruction dataset, or null: DPO only, on top of `dpoBase`. */
      sft: { dataset: string } | null;
      /** DPO on this preference dataset, or null: SFT only. */
      dpo: { dataset: string; base: 'new-sft' | { modelVersion: string } } | null;
      detail: string;
    };

/**
 * A dataset version is newer than what a model was trained on when it is a different artifact that was first recorded
 * later (or when nothing was trained yet, or the trained-on artifact is unknown).
 */
export function isNewerDataset(candidate: DatasetCandidate, trainedOn: TrainedModelInfo | null): boolean {
  if (!trainedOn) return true;
  if (candidate.artifactId === trainedOn.datasetArtifactId) return false;
  if (!trainedOn.datasetCreatedAt) return true;
  return candidate.createdAt > trainedOn.datasetCreatedAt;
}

/**
 * The plan: a newer instruction dataset → SFT on it, then DPO on the newest preference dataset on top of the new SFT
 * model (unless `dpo` is off or there is no preference dataset); otherwise a newer preference dataset → DPO on top of
 * the last SFT model; otherwise skip.
 */
export function planTraining(facts: TrainingFacts, options: { dpo: boolean }): TrainingPlan {
  const { instruction, preference, lastSft, lastDpo } = facts;
  if (instruction && instruction.count > 0 && isNewerDataset(instruction, lastSft)) {
    const dpo =
      options.dpo && preference && preference.count > 0
        ? { dataset: preference.artifactId, base: 'new-sft' as const }
        : null;
    return {
      action: 'train',
      sft: { dataset: instruction.artifactId },
      dpo,
      detail: lastSft
        ? `instruction dataset ${instruction.artifactId} is newer than ${lastSft.datasetArtifactId} (model ${lastSft.modelVersion})`
        : `no SFT model yet; instruction dataset ${instruction.artifactId}`,
    };
  }
  if (options.dpo && preference && preference.count > 0 && lastSft && isNewerDataset(preference, lastDpo)) {
    return {
      action: 'train',
      sft: null,
      dpo: { dataset: preference.artifactId, base: { modelVersion: lastSft.modelVersion } },
      detail: lastDpo
        ? `preference dataset ${preference.artifactId} is newer than ${lastDpo.datasetArtifactId} (model ${lastDpo.modelVersion}); DPO on ${lastSft.modelVersion}`
        : `no DPO model yet; preference dataset ${preference.artifactId} on ${lastSft.modelVersion}`,
    };
  }
  const detail = !instruction
    ? 'no instruction dataset version exists'
    : `the newest instruction dataset ${instruction.artifactId}${options.dpo && preference ? ` and preference dataset ${preference.artifactId}` : ''} were trained on already`;
  return { action: 'skip', reason: SKIPPED_NO_NEW_DATA, detail };
}
