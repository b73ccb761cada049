import { upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import { SEARCH_ATTRIBUTES } from '../src/domain/search-attributes';
import type { EvaluateModelInput, EvaluationResult } from '../src/evaluation/types';

export type {
  EvaluateModelInput,
  EvaluationResult,
  EvaluationScores,
  EvaluationThresholds,
  GeneratorConfig,
} from '../src/evaluation/types';

/**
 * Evaluates a model version: answers on the dataset's test split → LLM-as-judge (accuracy, style 1–3) → RAG
 * metrics → report artifact → pass/fail against thresholds, and sets the model's approval status.
 * (Skeleton: the activities land next.)
 */
export async function evaluateModel(input: EvaluateModelInput): Promise<EvaluationResult> {
  upsertSearchAttributes([
    { key: SEARCH_ATTRIBUTES.pipeline, value: 'evaluateModel' },
    { key: SEARCH_ATTRIBUTES.modelVersion, value: input.model },
    { key: SEARCH_ATTRIBUTES.status, value: 'failed' },
  ]);
  upsertMemo({ model: input.model });
  return Promise.reject(new Error('evaluateModel is not implemented yet'));
}
