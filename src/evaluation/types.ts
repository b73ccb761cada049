import type { ArtifactRef } from '../domain/artifacts';

/**
 * Pass/fail thresholds. `accuracy` and `style` are mean judge scores on the 1–3 scale; `faithfulness` and
 * `contextRelevance` are mean RAG judge scores on the same 1–3 scale (1 = unsupported / irrelevant, 3 = fully
 * supported / relevant). A threshold that is not set is not checked.
 */
export interface EvaluationThresholds {
  accuracy: number;
  style: number;
  faithfulness?: number;
  contextRelevance?: number;
}

export type GeneratorBackend = 'local' | 'openai' | 'sagemaker';

export interface GeneratorConfig {
  backend: GeneratorBackend;
  /** OpenAI-compatible server (backend 'openai'). */
  baseUrl?: string;
  /** Model name sent to the OpenAI-compatible server (default: the model version). */
  model?: string;
  /** SageMaker endpoint (backend 'sagemaker'). */
  endpointName?: string;
}

export interface EvaluateModelInput {
  /** Model version (ModelRegistry), e.g. "twin-sft-…" / "twin-dpo-…". */
  model: string;
  /** Dataset artifact id; default: the model's training dataset (its test split). */
  dataset?: string;
  /** Another model version to compare against (evaluated on the same rows). */
  baseline?: string;
  /** Cap on test-split rows (default EVAL_MAX_SAMPLES). */
  maxSamples?: number;
  thresholds?: Partial<EvaluationThresholds>;
  /** How to get the candidate's answers; default by the model's training backend. */
  generator?: GeneratorConfig;
  /** Also compute RAG metrics (default true when a question set is available). */
  rag?: boolean;
}

export interface EvaluationScores {
  /** Mean judge accuracy, 1–3 (0 when nothing was judged). */
  accuracy: number;
  /** Mean judge style, 1–3 (0 when nothing was judged). */
  style: number;
  /** Mean RAG faithfulness, 1–3. */
  faithfulness?: number;
  /** Mean RAG context relevance, 1–3. */
  contextRelevance?: number;
  /** Share (0–1) of RAG questions with a known source whose source was retrieved. */
  hitRate?: number;
  /** Rows that were judged successfully. */
  samples: number;
  /** Judge calls that failed (invalid JSON, out-of-range score, errors); never scored. */
  judgeFailures: number;
}

export interface EvaluationResult {
  model: string;
  passed: boolean;
  /** Which threshold failed, or judge failures. Empty when passed. */
  reasons: string[];
  scores: EvaluationScores;
  baseline?: { model: string; scores: EvaluationScores };
  /** kind 'evaluation-report': JSON + Markdown in the artifact store. */
  report: ArtifactRef;
}
