/**
 * Inputs and results of the composite pipelines (endToEnd, continuousTraining). Plain types only: workflows import
 * them as types.
 */
import type { Duration } from '@temporalio/common';
import type { EvaluationResult, EvaluationThresholds, GeneratorConfig } from '../evaluation/types';
import type { HyperparameterOverrides, TrainingBackendName } from '../training/spec';
import type { TrainingPlan, TrainingFacts } from './freshness';

export interface AuthorLinks {
  /** the author's full name, e.g. "Maxime Labonne" */
  name: string;
  links: string[];
}

/** How trainModel runs: SFT, then DPO on top of the SFT model version. */
export interface TrainingOptions {
  /** SFT base model (Hugging Face id, `file://` / `s3://` folder); default TRAINING_BASE_MODEL */
  baseModel?: string;
  hyperparameters?: { sft?: HyperparameterOverrides; dpo?: HyperparameterOverrides };
  /** default TRAINING_BACKEND */
  trainingBackend?: TrainingBackendName;
  /** SFT only (the final model is the SFT model) */
  skipDpo?: boolean;
}

export interface EvaluationOptions {
  thresholds?: Partial<EvaluationThresholds>;
  maxSamples?: number;
  generator?: GeneratorConfig;
  rag?: boolean;
  /** a model version to compare against */
  baseline?: string;
}

export interface DeploymentOptions {
  backend?: 'local' | 'sagemaker';
  endpointName?: string;
}

/** An optional human approval between a passed evaluation and the deployment (the `approveDeployment` Update). */
export interface ApprovalPolicy {
  required: boolean;
  /** how long to wait for an answer (default 24 hours) */
  timeout?: Duration;
  /** what happens when nobody answers in time (default 'reject') */
  onTimeout?: 'reject' | 'approve';
}

/** The argument of the `approveDeployment` Update. */
export interface ApprovalDecision {
  approved: boolean;
  reviewer: string;
  comment?: string;
}

/** What the approval step decided, and who (or the timeout policy) decided it. */
export interface ApprovalOutcome {
  approved: boolean;
  by: 'reviewer' | 'timeout-policy' | 'not-required';
  reviewer?: string;
  comment?: string;
}

/** The evaluation gate, as it appears in results and the history. */
export interface GateDecision {
  model: string;
  passed: boolean;
  reasons: string[];
  scores: EvaluationResult['scores'];
  report: string;
}

export type StageName = 'etl' | 'features' | 'datasets' | 'sft' | 'dpo' | 'evaluation' | 'approval' | 'deployment';

export type StageStatus = 'pending' | 'running' | 'completed' | 'failed' | 'skipped' | 'cancelled';

export interface StageProgress {
  status: StageStatus;
  /** child workflow ids of the stage */
  workflowIds: string[];
  /** artifact ids / model versions / endpoint the stage produced */
  artifacts: string[];
  detail?: string;
}

export type PipelineStatus =
  'running' | 'awaiting-approval' | 'deployed' | 'completed' | 'rejected' | 'skipped' | 'failed' | 'cancelled';

/** The `progress` query of endToEnd and continuousTraining. */
export interface PipelineProgress {
  pipeline: 'endToEnd' | 'continuousTraining';
  status: PipelineStatus;
  /** the stage running now (or the last one that ran) */
  stage: StageName | null;
  stages: Record<StageName, StageProgress>;
  gate?: GateDecision;
  approval?: ApprovalOutcome;
}

/** Model versions a run trained. */
export interface TrainedModels {
  sft?: { modelVersion: string; artifactId: string; datasetArtifactId: string; metrics: Record<string, number> };
  dpo?: { modelVersion: string; artifactId: string; datasetArtifactId: string; metrics: Record<string, number> };
  /** the model evaluated and (maybe) deployed */
  final: string;
}

export interface DeploymentSummary {
  endpointName: string;
  backend: 'local' | 'sagemaker';
  modelVersion: string;
  url?: string;
  previousModelVersion?: string;
  smokeTest: { ok: boolean; latencyMs: number };
}

export interface EndToEndInput extends TrainingOptions {
  authors: AuthorLinks[];
  etl?: { refresh?: boolean; maxInFlight?: number };
  features?: { batchSize?: number };
  datasets?: { testSplit?: { instruction?: number; preference?: number }; batchSize?: number; seed?: number };
  /** LLM for dataset generation (default LLM_MODEL) */
  llmModel?: string;
  evaluation?: EvaluationOptions;
  /** false: stop after the gate (no deployment) */
  deployment?: DeploymentOptions | false;
  approval?: ApprovalPolicy;
}

export interface EndToEndResult {
  status: 'deployed' | 'rejected' | 'completed';
  etl: { author: string; workflowId: string; links: number; stored: number; failed: number; artifact: string | null }[];
  features: { workflowId: string; cleaned: string | null; embedded: string | null; status: string };
  datasets: {
    instruction: { workflowId: string; artifactId: string; version: string; train: number; test: number };
    preference?: { workflowId: string; artifactId: string; version: string; train: number; test: number };
  };
  models: TrainedModels;
  gate: GateDecision;
  approval: ApprovalOutcome | null;
  deployment: DeploymentSummary | null;
  /** why the run ended where it did */
  reason: string;
}

export interface ContinuousTrainingInput extends TrainingOptions {
  /** run ETL → features → datasets first, for these authors (otherwise only the registries are consulted) */
  refresh?: {
    authors: AuthorLinks[];
    llmModel?: string;
    datasets?: EndToEndInput['datasets'];
  };
  /** evaluate the trained model (default true) */
  evaluate?: boolean;
  evaluation?: EvaluationOptions;
  /** deploy a model that passed the gate (default false: train and evaluate only) */
  deployment?: DeploymentOptions | false;
  approval?: ApprovalPolicy;
}

export interface ContinuousTrainingResult {
  status: 'skipped' | 'trained' | 'rejected' | 'deployed';
  /** 'skipped: no new data' when there was nothing newer to train on */
  reason: string;
  facts: TrainingFacts;
  plan: TrainingPlan;
  models: TrainedModels | null;
  gate: GateDecision | null;
  approval: ApprovalOutcome | null;
  deployment: DeploymentSummary | null;
}
