/**
 * The steps of evaluateModel as plain functions (the activities in activities/evaluation.ts are thin wrappers):
 * prepare → generate answers (candidate, baseline) → judge → RAG metrics → record (report, gate, registry status).
 *
 * Idempotency: every intermediate lives in the artifact store under a key derived from what determines it —
 * samples by (dataset, cap), answers by (model, samples, generator, generation parameters, chat template), judgements
 * by (answers, judge model, judge prompt version, attempts). A retried activity or a re-run with the same settings
 * reuses them and pays for nothing twice.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { S3Client } from '@aws-sdk/client-s3';
import { UpdateModelPackageCommand, type SageMakerClient } from '@aws-sdk/client-sagemaker';
import type { Db } from 'mongodb';
import type { Settings } from '../config';
import { checksumOf, sha256, type ArtifactProducer, type ArtifactRef } from '../domain/artifacts';
import type { ArtifactRegistry } from '../infra/artifact-registry';
import type { ArtifactStore } from '../infra/artifact-store';
import type { Dependencies } from '../infra/dependencies';
import type { LlmClient } from '../infra/llm';
import { CHAT_TEMPLATE_FILE, chatTemplateChecksum } from '../training/chat-template';
import { finetuneDir } from '../training/job-files';
import type { ModelRegistry, ModelVersion } from '../training/registry';
import {
  aggregateJudgements,
  aggregateRag,
  decideGate,
  effectiveThresholds,
  toScores,
  type JudgeAggregate,
  type RagAggregate,
} from './aggregate';
import {
  createSageMakerRuntime,
  generateLocally,
  generateWithOpenAi,
  generateWithSageMaker,
  GenerationError,
  type GeneratedAnswer,
  type GenerationParams,
  type GenerationProgress,
} from './generation';
import {
  judgeAll,
  judgeAnswer,
  judgeRagSample,
  JUDGE_PROMPT_VERSION,
  type Judgement,
  type JudgeVerdict,
  type RagJudgeVerdict,
} from './judge';
import {
  askLive,
  DEFAULT_RAG_QUESTIONS,
  givenSamples,
  loadQuestionSet,
  loadRagEngine,
  loadStoredSamples,
  type RagSample,
} from './rag';
import { renderMarkdown, REPORT_SCHEMA, type EvaluationReport, type ModelEvaluation } from './report';
import { EvaluationInputError, fromJsonl, loadTestSamples, toJsonl, type EvalSample } from './samples';
import type { EvaluateModelInput, EvaluationResult, EvaluationThresholds, GeneratorConfig } from './types';

export interface EvaluationContext {
  settings: Settings;
  store: ArtifactStore;
  artifacts: ArtifactRegistry;
  models: ModelRegistry;
  s3: () => S3Client;
  db: () => Promise<Db>;
  /** The worker's dependencies, shared with the RAG library for live questions (embedder, Qdrant, Mongo). */
  dependencies?: Dependencies;
}

/** One model to evaluate and where its intermediates live. */
export interface EvaluationTarget {
  model: string;
  modelArtifactId: string;
  backend: ModelVersion['backend'];
  artifactUri: string;
  generator: GeneratorConfig;
  /** Artifact-store folder of this model's answers and judgements for these samples and settings. */
  prefix: string;
}

/** Everything resolved before generation; small (an activity result in the history). */
export interface PreparedEvaluation {
  candidate: EvaluationTarget;
  baseline?: EvaluationTarget;
  datasetArtifactId: string;
  testUri: string;
  samples: number;
  samplesKey: string;
  params: GenerationParams;
  thresholds: EvaluationThresholds;
  maxJudgeFailureRate: number;
  judge: { model: string; promptVersion: string; attempts: number; key: string };
  rag: boolean;
  /** Of the whole evaluation (candidate, baseline, samples, settings): names the report. */
  cacheKey: string;
}

const short = (value: unknown) => sha256(JSON.stringify(value)).slice(0, 16);

function defaultGenerator(model: ModelVersion, settings: Settings): GeneratorConfig {
  if (model.backend === 'sagemaker') {
    return {
      backend: 'sagemaker',
      endpointName: settings.evaluation.sagemakerEndpoint ?? settings.serving.endpointName,
    };
  }
  return { backend: 'local' };
}

function resolveGenerator(
  model: ModelVersion,
  requested: GeneratorConfig | undefined,
  settings: Settings,
): GeneratorConfig {
  const generator = requested ?? defaultGenerator(model, settings);
  switch (generator.backend) {
    case 'local':
      if (!model.artifactUri.startsWith('file://')) {
        throw new EvaluationInputError(
          `model ${model.version} is at ${model.artifactUri}; the local generator needs a local model folder — use generator "sagemaker" (an endpoint serving it) or "openai"`,
        );
      }
      return { backend: 'local' };
    case 'openai': {
      const baseUrl = generator.baseUrl ?? settings.evaluation.generatorBaseUrl;
      if (!baseUrl) throw new EvaluationInputError('generator openai needs a baseUrl (or EVAL_GENERATOR_BASE_URL)');
      return { backend: 'openai', baseUrl, model: generator.model ?? model.version };
    }
    case 'sagemaker': {
      const endpointName =
        generator.endpointName ?? settings.evaluation.sagemakerEndpoint ?? settings.serving.endpointName;
      return { backend: 'sagemaker', endpointName };
    }
    default:
      throw new EvaluationInputError(
        `generator backend must be local, openai or sagemaker, got ${JSON.stringify((generator as { backend: unknown }).backend)}`,
      );
  }
}

async function requireModel(models: ModelRegistry, version: string, what: string): Promise<ModelVersion> {
  const model = await models.get(version);
  if (!model) throw new EvaluationInputError(`${what} ${version} not found (see \`twin models list\`)`);
  return model;
}

export function samplesStoreKey(samplesKey: string): string {
  return `evaluations/samples/${samplesKey}.jsonl`;
}

/** Resolves model(s), dataset, thresholds and generators; writes the selected samples to the store. */
export async function prepareEvaluation(
  input: EvaluateModelInput,
  ctx: EvaluationContext,
): Promise<PreparedEvaluation> {
  const { settings } = ctx;
  const config = settings.evaluation;
  if (!input?.model || typeof input.model !== 'string')
    throw new EvaluationInputError('model: give a model version (see `twin models list`)');
  if (input.maxSamples !== undefined && (!Number.isInteger(input.maxSamples) || input.maxSamples < 1)) {
    throw new EvaluationInputError(
      `maxSamples must be a positive whole number, got ${JSON.stringify(input.maxSamples)}`,
    );
  }
  if (input.baseline === input.model)
    throw new EvaluationInputError('baseline must be another model version than model');
  const model = await requireModel(ctx.models, input.model, 'model version');
  const baselineModel = input.baseline
    ? await requireModel(ctx.models, input.baseline, 'baseline model version')
    : undefined;
  let thresholds: EvaluationThresholds;
  try {
    thresholds = effectiveThresholds(config.thresholds, input.thresholds);
  } catch (error) {
    throw new EvaluationInputError((error as Error).message);
  }

  const datasetArtifactId = input.dataset ?? model.datasetArtifactId;
  const dataset = await ctx.artifacts.get(datasetArtifactId);
  if (!dataset) throw new EvaluationInputError(`dataset artifact ${datasetArtifactId} not found`);
  const maxSamples = input.maxSamples ?? config.maxSamples;
  const { samples, testUri } = await loadTestSamples(dataset, maxSamples, ctx.s3);
  const samplesKey = short({ dataset: dataset.id, checksum: dataset.checksum, ids: samples.map((s) => s.id) });
  const key = samplesStoreKey(samplesKey);
  if (!(await ctx.store.exists(key))) await ctx.store.put(key, toJsonl(samples), 'application/jsonlines');

  const params: GenerationParams = { maxNewTokens: config.maxNewTokens, temperature: config.temperature };
  const template = chatTemplateChecksum();
  const target = (m: ModelVersion, generator: GeneratorConfig): EvaluationTarget => ({
    model: m.version,
    modelArtifactId: m.artifactId,
    backend: m.backend,
    artifactUri: m.artifactUri,
    generator,
    // The base URL is where the model is served, not what it answers: it is left out of the key.
    prefix: `evaluations/${m.version}/${short({ samplesKey, generator: { ...generator, baseUrl: undefined }, params, template })}`,
  });
  const candidate = target(model, resolveGenerator(model, input.generator, settings));
  const baseline = baselineModel
    ? target(baselineModel, resolveGenerator(baselineModel, undefined, settings))
    : undefined;
  const judge = { model: config.judge.model, promptVersion: JUDGE_PROMPT_VERSION, attempts: config.judge.attempts };
  const judgeKey = short(judge);
  return {
    candidate,
    ...(baseline ? { baseline } : {}),
    datasetArtifactId: dataset.id,
    testUri,
    samples: samples.length,
    samplesKey,
    params,
    thresholds,
    maxJudgeFailureRate: config.maxJudgeFailureRate,
    judge: { ...judge, key: judgeKey },
    rag: input.rag ?? true,
    cacheKey: short({
      candidate: candidate.prefix,
      baseline: baseline?.prefix,
      judgeKey,
      thresholds,
      rag: input.rag ?? true,
    }),
  };
}

async function readSamples(store: ArtifactStore, samplesKey: string): Promise<EvalSample[]> {
  return fromJsonl<EvalSample>((await store.get(samplesStoreKey(samplesKey))).toString('utf8'));
}

export interface GenerationSummary {
  model: string;
  answersKey: string;
  answers: number;
  /** True when the answers were already in the store. */
  reused: boolean;
  stats: Record<string, unknown>;
}

/** The model's answers to every sample (generated now, or found in the store). */
export async function generateAnswers(
  request: { target: EvaluationTarget; samplesKey: string; params: GenerationParams },
  ctx: EvaluationContext,
  hooks: { onProgress?: (progress: GenerationProgress) => void; signal?: AbortSignal } = {},
): Promise<GenerationSummary> {
  const { target, params } = request;
  const answersKey = `${target.prefix}/answers.jsonl`;
  const statsKey = `${target.prefix}/generation.json`;
  if (await ctx.store.exists(statsKey)) {
    const stats = JSON.parse((await ctx.store.get(statsKey)).toString('utf8')) as Record<string, unknown>;
    return { model: target.model, answersKey, answers: Number(stats.answers ?? 0), reused: true, stats };
  }
  const samples = await readSamples(ctx.store, request.samplesKey);
  const config = ctx.settings.evaluation;
  const workDir = path.join(config.dir, target.prefix.replace(/^evaluations\//, ''));
  const started = Date.now();
  let answers: GeneratedAnswer[];
  let stats: Record<string, unknown> = {};
  const generator = target.generator;
  if (generator.backend === 'local') {
    const modelDir = fileURLToPath(target.artifactUri);
    if (!existsSync(modelDir))
      throw new EvaluationInputError(`model folder ${modelDir} of ${target.model} does not exist`);
    const result = await generateLocally(samples, params, {
      python: ctx.settings.training.python,
      modelDir,
      workDir,
      chatTemplateFile: path.join(finetuneDir(), CHAT_TEMPLATE_FILE),
      batchSize: config.generationBatchSize,
      onProgress: hooks.onProgress,
      signal: hooks.signal,
    });
    answers = result.answers;
    stats = result.stats;
  } else if (generator.backend === 'openai') {
    answers = await generateWithOpenAi(samples, params, {
      baseUrl: generator.baseUrl ?? '',
      model: generator.model ?? target.model,
      apiKey: ctx.settings.llm.apiKey?.reveal(),
      answersFile: path.join(workDir, 'answers.jsonl'),
      concurrency: config.generationConcurrency,
      onProgress: hooks.onProgress,
      signal: hooks.signal,
    });
  } else {
    answers = await generateWithSageMaker(samples, params, {
      endpointName: generator.endpointName ?? '',
      runtime: createSageMakerRuntime(ctx.settings.aws),
      answersFile: path.join(workDir, 'answers.jsonl'),
      concurrency: config.generationConcurrency,
      onProgress: hooks.onProgress,
      signal: hooks.signal,
    });
  }
  const outputTokens = answers.reduce((sum, a) => sum + (a.outputTokens ?? 0), 0);
  const seconds = (Date.now() - started) / 1000;
  stats = {
    ...stats,
    backend: generator.backend,
    answers: answers.length,
    outputTokens,
    seconds: Math.round(seconds * 10) / 10,
    truncated: answers.filter((a) => a.finishReason === 'length').length,
    empty: answers.filter((a) => !a.answer.trim()).length,
  };
  await ctx.store.put(answersKey, toJsonl(answers), 'application/jsonlines');
  await ctx.store.put(statsKey, JSON.stringify(stats, null, 2), 'application/json');
  return { model: target.model, answersKey, answers: answers.length, reused: false, stats };
}

export interface JudgeSummary {
  model: string;
  judgementsKey: string;
  aggregate: JudgeAggregate;
  /** Judge calls that failed retryably (transport) in this attempt: the activity throws so Temporal retries them. */
  retryable: number;
  lastError?: string;
}

/** Judges every answer (skipping those judged before); stores the judgements; aggregates. */
export async function judgeAnswers(
  request: { target: EvaluationTarget; samplesKey: string; judgeKey: string },
  ctx: EvaluationContext & { llm: LlmClient },
  hooks: { onProgress?: (done: number, total: number) => void; signal?: AbortSignal } = {},
): Promise<JudgeSummary> {
  const { target } = request;
  const judgementsKey = `${target.prefix}/judgements-${request.judgeKey}.json`;
  const samples = await readSamples(ctx.store, request.samplesKey);
  const answers = new Map(
    fromJsonl<GeneratedAnswer>((await ctx.store.get(`${target.prefix}/answers.jsonl`)).toString('utf8')).map((a) => [
      a.id,
      a,
    ]),
  );
  const done = new Map<string, Judgement<JudgeVerdict>>();
  if (await ctx.store.exists(judgementsKey)) {
    for (const j of JSON.parse((await ctx.store.get(judgementsKey)).toString('utf8')) as Judgement<JudgeVerdict>[])
      done.set(j.id, j);
  }
  const tasks = samples.map((s) => {
    const answer = answers.get(s.id);
    if (!answer) throw new Error(`no answer of ${target.model} for sample ${s.id}`);
    return { id: s.id, instruction: s.instruction, reference: s.reference, answer: answer.answer };
  });
  let judged = [...done.values()].filter((j) => j.ok || !j.retryable).length;
  const judgements = await judgeAll(
    tasks,
    (task) => judgeAnswer(ctx.llm, task, { attempts: ctx.settings.evaluation.judge.attempts, signal: hooks.signal }),
    {
      concurrency: ctx.settings.evaluation.judge.concurrency,
      done,
      onJudged: () => hooks.onProgress?.((judged += 1), tasks.length),
    },
  );
  await ctx.store.put(judgementsKey, JSON.stringify(judgements), 'application/json');
  const retryable = judgements.filter((j) => !j.ok && j.retryable);
  const final = judgements.filter((j) => j.ok || !j.retryable);
  const lastError = retryable.length ? (retryable[retryable.length - 1] as { detail: string }).detail : undefined;
  return {
    model: target.model,
    judgementsKey,
    aggregate: aggregateJudgements(final),
    retryable: retryable.length,
    ...(lastError ? { lastError } : {}),
  };
}

export type RagOutcome =
  | (RagAggregate & {
      questionSet?: { file: string; version: string; checksum: string };
      origins: Record<string, number>;
      errors: number;
      retryable: number;
      judgementsKey: string;
    })
  | { skipped: string };

/**
 * RAG metrics: question-set samples with given answers/contexts, `rag_eval_samples`, and live answers of the RAG
 * library to the other questions (when the library and its vectors are available). Stored per run key.
 */
export async function measureRag(
  request: { runKey: string; judgeKey: string },
  ctx: EvaluationContext & { llm: LlmClient },
  hooks: { onProgress?: (phase: string, done: number, total: number) => void; signal?: AbortSignal } = {},
): Promise<RagOutcome> {
  const config = ctx.settings.evaluation;
  const file = config.ragQuestions ?? DEFAULT_RAG_QUESTIONS;
  const key = `evaluations/rag/${request.runKey}`;
  const samplesKey = `${key}/samples.json`;
  let questionSet: { file: string; version: string; checksum: string } | undefined;
  let samples: RagSample[];
  let errors = 0;
  if (await ctx.store.exists(samplesKey)) {
    const stored = JSON.parse((await ctx.store.get(samplesKey)).toString('utf8')) as {
      samples: RagSample[];
      errors: number;
      questionSet?: typeof questionSet;
    };
    ({ samples, errors, questionSet } = stored);
  } else {
    const set = existsSync(file) ? await loadQuestionSet(file) : undefined;
    if (set)
      questionSet = { file: path.relative(process.cwd(), file) || file, version: set.version, checksum: set.checksum };
    const questions = (set?.questions ?? []).slice(0, config.ragMaxQuestions);
    samples = givenSamples(questions);
    const live = questions.filter((q) => q.answer === undefined || q.contexts === undefined);
    const notes: string[] = [];
    if (live.length) {
      const loaded = await loadRagEngine(ctx.settings, ctx.dependencies);
      if ('engine' in loaded) {
        try {
          const answered = await askLive(loaded.engine, live, {
            signal: hooks.signal,
            onAnswered: (n) => hooks.onProgress?.('asking', n, live.length),
          });
          samples.push(...answered.samples);
          errors = answered.errors.length;
        } finally {
          await loaded.engine.close().catch(() => undefined);
        }
      } else {
        notes.push(`${live.length} question(s) need the RAG library: ${loaded.unavailable}`);
      }
    }
    const room = config.ragMaxQuestions - samples.length;
    samples.push(...(await loadStoredSamples(await ctx.db(), room)));
    if (samples.length === 0)
      return { skipped: notes[0] ?? `no RAG questions with answers (${file}) and no rag_eval_samples` };
    await ctx.store.put(samplesKey, JSON.stringify({ samples, errors, questionSet }), 'application/json');
  }

  const judgementsKey = `${key}/judgements-${request.judgeKey}.json`;
  const done = new Map<string, Judgement<RagJudgeVerdict>>();
  if (await ctx.store.exists(judgementsKey)) {
    for (const j of JSON.parse((await ctx.store.get(judgementsKey)).toString('utf8')) as Judgement<RagJudgeVerdict>[])
      done.set(j.id, j);
  }
  let judged = 0;
  const judgements = await judgeAll(
    samples,
    (s) => judgeRagSample(ctx.llm, s, { attempts: config.judge.attempts, signal: hooks.signal }),
    {
      concurrency: config.judge.concurrency,
      done,
      onJudged: () => hooks.onProgress?.('judging', (judged += 1), samples.length),
    },
  );
  await ctx.store.put(judgementsKey, JSON.stringify(judgements), 'application/json');
  const final = judgements.filter((j) => j.ok || !j.retryable);
  const origins: Record<string, number> = {};
  for (const s of samples) origins[s.origin] = (origins[s.origin] ?? 0) + 1;
  const aggregate = aggregateRag(
    final,
    samples.map((s) => ({ knownSource: s.hit !== undefined, hit: s.hit === true })),
  );
  return {
    ...aggregate,
    ...(questionSet ? { questionSet } : {}),
    origins,
    errors,
    retryable: judgements.length - final.length,
    judgementsKey,
  };
}

export interface RecordRequest {
  prepared: PreparedEvaluation;
  candidate: { generation: GenerationSummary; judge: JudgeSummary };
  baseline?: { generation: GenerationSummary; judge: JudgeSummary };
  rag?: RagOutcome;
  producer: ArtifactProducer;
}

async function examples(
  store: ArtifactStore,
  samplesKey: string,
  generation: GenerationSummary,
  judge: JudgeSummary,
): Promise<ModelEvaluation['examples']> {
  const samples = await readSamples(store, samplesKey);
  const answers = new Map(
    fromJsonl<GeneratedAnswer>((await store.get(generation.answersKey)).toString('utf8')).map((a) => [a.id, a]),
  );
  const judgements = JSON.parse((await store.get(judge.judgementsKey)).toString('utf8')) as Judgement<JudgeVerdict>[];
  const byId = new Map(judgements.map((j) => [j.id, j]));
  return samples
    .map((s) => ({ s, j: byId.get(s.id) }))
    .sort((a, b) => (a.j?.ok ? a.j.verdict.accuracy.score : 0) - (b.j?.ok ? b.j.verdict.accuracy.score : 0))
    .slice(0, 5)
    .map(({ s, j }) => ({
      instruction: s.instruction,
      answer: answers.get(s.id)?.answer ?? '',
      ...(j?.ok
        ? { accuracy: j.verdict.accuracy.score, style: j.verdict.style.score, analysis: j.verdict.accuracy.analysis }
        : { failure: j ? `${j.reason}: ${j.detail}` : 'not judged' }),
    }));
}

/** The report (JSON + Markdown) as an ArtifactRef, the gate decision, and the model's registry status. */
export async function recordEvaluation(
  request: RecordRequest,
  ctx: EvaluationContext & { sagemaker?: () => SageMakerClient },
  now: Date = new Date(),
): Promise<EvaluationResult> {
  const { prepared } = request;
  const rag = request.rag && !('skipped' in request.rag) ? request.rag : undefined;
  const scores = toScores(request.candidate.judge.aggregate, rag);
  const ragJudged = rag ? rag.samples + rag.judgeFailures : 0;
  const judged =
    request.candidate.judge.aggregate.samples + request.candidate.judge.aggregate.judgeFailures + ragJudged;
  const gate = decideGate({
    scores,
    thresholds: prepared.thresholds,
    judged,
    maxJudgeFailureRate: prepared.maxJudgeFailureRate,
    ragUnavailable:
      request.rag && 'skipped' in request.rag
        ? request.rag.skipped
        : !prepared.rag
          ? 'rag: false in the input'
          : undefined,
  });
  const evaluation = async (
    target: EvaluationTarget,
    run: { generation: GenerationSummary; judge: JudgeSummary },
    withRag: boolean,
  ): Promise<ModelEvaluation> => ({
    model: target.model,
    generator: { ...target.generator, ...(target.generator.baseUrl ? { baseUrl: target.generator.baseUrl } : {}) },
    judge: run.judge.aggregate,
    scores: toScores(run.judge.aggregate, withRag ? rag : undefined),
    generation: run.generation.stats,
    examples: await examples(ctx.store, prepared.samplesKey, run.generation, run.judge),
  });
  const candidate = await evaluation(prepared.candidate, request.candidate, true);
  const baseline =
    prepared.baseline && request.baseline ? await evaluation(prepared.baseline, request.baseline, false) : undefined;
  const report: EvaluationReport = {
    schema: REPORT_SCHEMA,
    model: prepared.candidate.model,
    modelArtifactId: prepared.candidate.modelArtifactId,
    dataset: { artifactId: prepared.datasetArtifactId, testUri: prepared.testUri, samples: prepared.samples },
    passed: gate.passed,
    reasons: gate.reasons,
    thresholds: prepared.thresholds,
    maxJudgeFailureRate: prepared.maxJudgeFailureRate,
    judge: {
      model: prepared.judge.model,
      promptVersion: prepared.judge.promptVersion,
      attempts: prepared.judge.attempts,
    },
    candidate,
    ...(baseline ? { baseline } : {}),
    ...(request.rag
      ? {
          rag:
            'skipped' in request.rag
              ? request.rag
              : (({ retryable: _r, judgementsKey: _k, ...rest }) => rest)(request.rag),
        }
      : {}),
    cacheKey: prepared.cacheKey,
    workflowId: request.producer.workflowId,
    createdAt: now.toISOString(),
  };
  // The content (without the time and the run) names the report: a retried record finds the same artifact.
  const checksum = checksumOf({ ...report, createdAt: undefined, workflowId: undefined });
  const folder = `evaluations/reports/${prepared.candidate.model}/${checksum.slice(7, 23)}`;
  const json = await ctx.store.put(`${folder}/report.json`, JSON.stringify(report, null, 2), 'application/json');
  await ctx.store.put(`${folder}/report.md`, renderMarkdown(report), 'text/markdown');
  const artifact: ArtifactRef = await ctx.artifacts.record(
    {
      kind: 'evaluation-report',
      uri: json.uri,
      count: prepared.samples,
      checksum,
      producer: request.producer,
      inputs: [
        prepared.candidate.modelArtifactId,
        prepared.datasetArtifactId,
        ...(prepared.baseline ? [prepared.baseline.modelArtifactId] : []),
      ],
      metadata: {
        model: report.model,
        passed: gate.passed,
        accuracy: scores.accuracy,
        style: scores.style,
        faithfulness: scores.faithfulness ?? null,
        contextRelevance: scores.contextRelevance ?? null,
        hitRate: scores.hitRate ?? null,
        samples: scores.samples,
        judgeFailures: scores.judgeFailures,
        baseline: baseline?.model ?? null,
        judgeModel: prepared.judge.model,
        markdownUri: ctx.store.uriOf(`${folder}/report.md`),
        reportKey: `${folder}/report.json`,
      },
    },
    now,
  );
  const status = gate.passed ? 'Approved' : 'Rejected';
  await ctx.models.setStatus(prepared.candidate.model, status);
  const model = await ctx.models.get(prepared.candidate.model);
  if (model?.modelPackageArn && ctx.sagemaker) {
    await ctx.sagemaker().send(
      new UpdateModelPackageCommand({
        ModelPackageArn: model.modelPackageArn,
        ModelApprovalStatus: status,
        ApprovalDescription: (gate.passed
          ? 'passed evaluation'
          : `failed evaluation: ${gate.reasons.join('; ')}`
        ).slice(0, 1024),
      }),
    );
  }
  return {
    model: report.model,
    passed: gate.passed,
    reasons: gate.reasons,
    scores,
    ...(baseline ? { baseline: { model: baseline.model, scores: baseline.scores } } : {}),
    report: artifact,
  };
}

export { GenerationError };
