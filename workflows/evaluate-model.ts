import { proxyActivities, upsertMemo, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { EvaluationActivities } from '../activities/evaluation';
import { SEARCH_ATTRIBUTES } from '../src/domain/search-attributes';
import type {
  EvaluationTarget,
  GenerationSummary,
  JudgeSummary,
  PreparedEvaluation,
  RagOutcome,
} from '../src/evaluation/pipeline';
import type { EvaluateModelInput, EvaluationResult } from '../src/evaluation/types';
import { QUEUES } from './queues';

export type {
  EvaluateModelInput,
  EvaluationResult,
  EvaluationScores,
  EvaluationThresholds,
  GeneratorConfig,
} from '../src/evaluation/types';

const retry = { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute' } as const;
const nonRetryableErrorTypes = ['InvalidEvaluationInput'];

/** Preparation, generation (a local generation process, or calls to the serving endpoint) and recording: twin-ml. */
const { prepareEvaluation, generateEvaluationAnswers, recordEvaluation } = proxyActivities<EvaluationActivities>({
  taskQueue: QUEUES.ml,
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '2 minutes',
  retry: { ...retry, maximumAttempts: 5, nonRetryableErrorTypes },
});

/** Judging and RAG metrics: twin-llm (rate-limited judge API); retried while the judge is unreachable. */
const { judgeEvaluationAnswers, measureRagMetrics } = proxyActivities<EvaluationActivities>({
  taskQueue: QUEUES.llm,
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '2 minutes',
  retry: { ...retry, maximumAttempts: 10, nonRetryableErrorTypes },
});

/**
 * Evaluates a model version: the candidate's answers on the dataset's test split (same chat template as training) →
 * LLM-as-judge (accuracy, style 1–3) → RAG metrics (faithfulness, context relevance, hit rate) → report artifact
 * (JSON + Markdown) → pass/fail against thresholds; sets the model's approval status (Approved / Rejected) in the
 * registry and its SageMaker model package. The deployment workflow refuses Rejected models.
 *
 * Search attributes: TwinPipeline = "evaluateModel", TwinModelVersion, TwinDatasetVersion (the dataset artifact id),
 * TwinStatus (preparing → evaluating → recording → passed | rejected; failed when the run itself failed).
 */
export async function evaluateModel(input: EvaluateModelInput): Promise<EvaluationResult> {
  upsertSearchAttributes([
    { key: SEARCH_ATTRIBUTES.pipeline, value: 'evaluateModel' },
    { key: SEARCH_ATTRIBUTES.modelVersion, value: String(input?.model ?? '') },
    { key: SEARCH_ATTRIBUTES.status, value: 'preparing' },
  ]);
  try {
    const prepared = await prepareEvaluation(input);
    upsertSearchAttributes([
      { key: SEARCH_ATTRIBUTES.datasetVersion, value: prepared.datasetArtifactId },
      { key: SEARCH_ATTRIBUTES.status, value: 'evaluating' },
    ]);
    upsertMemo({
      model: prepared.candidate.model,
      baseline: prepared.baseline?.model ?? null,
      dataset: prepared.datasetArtifactId,
      samples: prepared.samples,
      generator: prepared.candidate.generator.backend,
      judge: prepared.judge.model,
      thresholds: prepared.thresholds,
    });

    const evaluate = async (
      target: EvaluationTarget,
    ): Promise<{ generation: GenerationSummary; judge: JudgeSummary }> => {
      const generation = await generateEvaluationAnswers({
        target,
        samplesKey: prepared.samplesKey,
        params: prepared.params,
      });
      const judge = await judgeEvaluationAnswers({
        target,
        samplesKey: prepared.samplesKey,
        judgeKey: prepared.judge.key,
      });
      return { generation, judge };
    };
    const runKey = `${prepared.cacheKey}-${workflowInfo()
      .workflowId.replace(/[^A-Za-z0-9_-]+/g, '-')
      .slice(0, 80)}`;
    const [candidate, baseline, rag] = await Promise.all([
      evaluate(prepared.candidate),
      prepared.baseline ? evaluate(prepared.baseline) : Promise.resolve(undefined),
      prepared.rag
        ? measureRagMetrics({ runKey, judgeKey: prepared.judge.key })
        : Promise.resolve<RagOutcome | undefined>(undefined),
    ]);

    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: 'recording' }]);
    const result = await recordEvaluation({
      prepared,
      candidate,
      ...(baseline ? { baseline } : {}),
      ...(rag ? { rag } : {}),
    });
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: result.passed ? 'passed' : 'rejected' }]);
    upsertMemo({ passed: result.passed, scores: result.scores, reasons: result.reasons, report: result.report.id });
    return result;
  } catch (error) {
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: 'failed' }]);
    throw error;
  }
}

export type { PreparedEvaluation };
