import { ApplicationFailure, Context } from '@temporalio/activity';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SageMakerClient } from '@aws-sdk/client-sagemaker';
import { createS3Client } from '../src/infra/artifact-store';
import type { Dependencies } from '../src/infra/dependencies';
import { LlmClient } from '../src/infra/llm';
import { GenerationError } from '../src/evaluation/generation';
import {
  generateAnswers,
  judgeAnswers,
  measureRag,
  prepareEvaluation,
  recordEvaluation,
  type EvaluationContext,
  type EvaluationTarget,
  type GenerationSummary,
  type JudgeSummary,
  type PreparedEvaluation,
  type RagOutcome,
  type RecordRequest,
} from '../src/evaluation/pipeline';
import { EvaluationInputError } from '../src/evaluation/samples';
import type { EvaluateModelInput, EvaluationResult } from '../src/evaluation/types';
import { ModelRegistry } from '../src/training/registry';
import { createSageMakerClient } from '../src/training/sagemaker';
import { badInput, classifier, currentProducer, failureOf } from './support';

export interface EvaluationActivityOptions {
  /** Replace the judge client (tests). */
  judge?: LlmClient;
  s3Client?: S3Client;
  sagemakerClient?: SageMakerClient;
}

function toFailure(error: unknown): unknown {
  if (error instanceof EvaluationInputError) return badInput(error.message, 'InvalidEvaluationInput');
  if (error instanceof GenerationError) {
    return failureOf(error, 'GenerationFailed', error.retryable);
  }
  return error;
}

const classified = classifier(toFailure);

/** Heartbeats `details()` every 2 s while `work` runs (progress shows as the pending activity's details). */
async function heartbeating<T>(details: () => unknown, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const context = Context.current();
  context.heartbeat(details());
  const timer = setInterval(() => context.heartbeat(details()), 2_000);
  try {
    return await work(context.cancellationSignal);
  } finally {
    clearInterval(timer);
  }
}

/**
 * Evaluation activities. Generation and recording run on twin-ml (a local generation process is heavy; the registry
 * and SageMaker model package live there); judging and RAG metrics on twin-llm (rate-limited judge API). Each is
 * idempotent through the artifact store (see src/evaluation/pipeline.ts).
 */
export function createEvaluationActivities(deps: Dependencies, options: EvaluationActivityOptions = {}) {
  const { settings } = deps;
  let s3: S3Client | undefined;
  let sagemaker: SageMakerClient | undefined;
  let judge: LlmClient | undefined;
  const judgeClient = () =>
    (judge ??=
      options.judge ??
      new LlmClient({
        model: settings.evaluation.judge.model,
        baseUrl: settings.evaluation.judge.baseUrl,
        apiKey: settings.evaluation.judge.apiKey,
        maxConcurrency: settings.evaluation.judge.concurrency,
        requestsPerMinute: settings.evaluation.judge.requestsPerMinute,
      }));
  const context = async (): Promise<EvaluationContext> => {
    const warehouse = await deps.warehouse();
    return {
      settings,
      store: deps.artifactStore(),
      artifacts: await deps.artifactRegistry(),
      models: new ModelRegistry(warehouse.db),
      s3: () => (s3 ??= options.s3Client ?? createS3Client(settings.aws)),
      db: async () => (await deps.warehouse()).db,
      dependencies: deps,
    };
  };

  return {
    /** Model(s), dataset test split (stored), thresholds, generators, cache keys. */
    prepareEvaluation: async (input: EvaluateModelInput): Promise<PreparedEvaluation> =>
      classified(async () =>
        heartbeating(
          () => ({ phase: 'preparing' }),
          async () => prepareEvaluation(input, await context()),
        ),
      ),

    /** The model's answers to the samples (reused when already generated with the same settings). */
    generateEvaluationAnswers: async (request: {
      target: EvaluationTarget;
      samplesKey: string;
      params: PreparedEvaluation['params'];
    }): Promise<GenerationSummary> => {
      let progress = { model: request.target.model, backend: request.target.generator.backend, done: 0, total: 0 };
      return classified(async () => {
        const ctx = await context();
        const summary = await heartbeating(
          () => progress,
          (signal) => generateAnswers(request, ctx, { signal, onProgress: (p) => (progress = { ...progress, ...p }) }),
        );
        deps.log.info(
          { model: summary.model, answers: summary.answers, reused: summary.reused, stats: summary.stats },
          'evaluation answers ready',
        );
        return summary;
      });
    },

    /** LLM-as-judge over the answers; transport failures make the activity retry (judged samples are kept). */
    judgeEvaluationAnswers: async (request: {
      target: EvaluationTarget;
      samplesKey: string;
      judgeKey: string;
    }): Promise<JudgeSummary> => {
      let progress = { model: request.target.model, judged: 0, total: 0 };
      return classified(async () => {
        const ctx = await context();
        const summary = await heartbeating(
          () => progress,
          (signal) =>
            judgeAnswers(
              request,
              { ...ctx, llm: judgeClient() },
              { signal, onProgress: (judged, total) => (progress = { ...progress, judged, total }) },
            ),
        );
        if (summary.retryable > 0) {
          throw ApplicationFailure.create({
            message: `${summary.retryable} judge call(s) failed on transport errors (last: ${summary.lastError ?? '?'}); judged samples are kept, retrying the rest`,
            type: 'JudgeUnavailable',
          });
        }
        return summary;
      });
    },

    /** RAG faithfulness / context relevance / hit rate (or why they were skipped). */
    measureRagMetrics: async (request: { runKey: string; judgeKey: string }): Promise<RagOutcome> => {
      let progress = { phase: 'loading', done: 0, total: 0 };
      return classified(async () => {
        const ctx = await context();
        const outcome = await heartbeating(
          () => progress,
          (signal) =>
            measureRag(
              request,
              { ...ctx, llm: judgeClient() },
              { signal, onProgress: (phase, done, total) => (progress = { phase, done, total }) },
            ),
        );
        if (!('skipped' in outcome) && outcome.retryable > 0) {
          throw ApplicationFailure.create({
            message: `${outcome.retryable} RAG judge call(s) failed on transport errors; retrying them`,
            type: 'JudgeUnavailable',
          });
        }
        return outcome;
      });
    },

    /** Report artifact (JSON + Markdown), gate decision, registry (and model package) approval status. */
    recordEvaluation: async (request: Omit<RecordRequest, 'producer'>): Promise<EvaluationResult> =>
      classified(async () =>
        heartbeating(
          () => ({ phase: 'recording' }),
          async () =>
            recordEvaluation(
              { ...request, producer: currentProducer() },
              {
                ...(await context()),
                sagemaker: () => (sagemaker ??= options.sagemakerClient ?? createSageMakerClient(settings.aws)),
              },
            ),
        ),
      ),
  };
}

export type EvaluationActivities = ReturnType<typeof createEvaluationActivities>;
