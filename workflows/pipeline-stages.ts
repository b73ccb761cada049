/**
 * What endToEnd and continuousTraining share: child workflow options (ids derived from the parent, cancellation
 * propagated), the `progress` query and the `approveDeployment` Update, the search-attribute bookkeeping, and the
 * train → evaluate → gate → approval → deploy tail. Deterministic workflow code only.
 */
import {
  ApplicationFailure,
  ChildWorkflowCancellationType,
  condition,
  defineQuery,
  defineUpdate,
  executeChild,
  log,
  ParentClosePolicy,
  proxyActivities,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
  WorkflowIdReusePolicy,
  type ChildWorkflowOptions,
} from '@temporalio/workflow';
import type { PipelineStateActivities } from '../activities/pipeline-state';
import { SEARCH_ATTRIBUTES } from '../src/domain/search-attributes';
import { slugOf } from '../src/domain/slug';
import type {
  ApprovalDecision,
  AuthorLinks,
  ApprovalOutcome,
  ApprovalPolicy,
  DeploymentOptions,
  DeploymentSummary,
  EndToEndInput,
  EvaluationOptions,
  GateDecision,
  PipelineProgress,
  PipelineStatus,
  StageName,
  StageProgress,
  StageStatus,
  TrainedModels,
  TrainingOptions,
} from '../src/pipelines/types';
import { deployModel } from './deploy-model';
import { digitalDataEtl } from './digital-data-etl';
import { evaluateModel } from './evaluate-model';
import { featureEngineering } from './feature-engineering';
import { generateDatasets } from './generate-datasets';
import { QUEUES } from './queues';
import { trainModel } from './train-model';

/** The query every composite pipeline answers: stage, per-stage status and artifacts, gate and approval. */
export const progressQuery = defineQuery<PipelineProgress>('progress');

/**
 * The human approval between a passed gate and the deployment. Accepted only while the run waits for it, once,
 * with a non-empty reviewer; returns what was decided.
 */
export const approveDeployment = defineUpdate<ApprovalOutcome, [ApprovalDecision]>('approveDeployment');

export const DEFAULT_APPROVAL_TIMEOUT = '24 hours';

const STAGES: StageName[] = ['etl', 'features', 'datasets', 'sft', 'dpo', 'evaluation', 'approval', 'deployment'];

export const { recordApprovalDecision, findTrainingFacts } = proxyActivities<PipelineStateActivities>({
  taskQueue: QUEUES.ml,
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    maximumAttempts: 10,
    nonRetryableErrorTypes: ['BadInput'],
  },
});

/**
 * Options of a child: id `<parent id>/<name>` (a retried or reset parent starts the same ids again, and every stage
 * is idempotent by content — ETL by link, chunks by hash, dataset versions by content, training jobs named from the
 * workflow id — so the re-started child adopts what its predecessor made); the parent's close (cancel, terminate,
 * timeout) REQUESTS CANCELLATION of a running child instead of terminating it, so trainModel stops its training job;
 * a cancelled parent waits until its children finished cancelling.
 */
export function childOptions(name: string): Omit<ChildWorkflowOptions, 'typeInfo'> & { workflowId: string } {
  return {
    workflowId: `${workflowInfo().workflowId}/${name}`,
    taskQueue: QUEUES.pipelines,
    parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
    cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
  };
}

export { slugOf };

/** Progress, its query, the approval Update, and the TwinStatus / memo bookkeeping of one pipeline run. */
export class PipelineTracker {
  readonly progress: PipelineProgress;
  private awaitingApproval = false;
  private decision: ApprovalOutcome | undefined;

  constructor(pipeline: PipelineProgress['pipeline']) {
    this.progress = {
      pipeline,
      status: 'running',
      stage: null,
      stages: Object.fromEntries(
        STAGES.map((s): [StageName, StageProgress] => [s, { status: 'pending', workflowIds: [], artifacts: [] }]),
      ) as PipelineProgress['stages'],
    };
    setHandler(progressQuery, () => this.progress);
    setHandler(
      approveDeployment,
      (decision) => {
        // Two Updates validated in the same task could both pass the validator; only the first one decides.
        if (!this.awaitingApproval || this.decision) {
          throw ApplicationFailure.nonRetryable(
            `already answered by ${this.decision?.reviewer ?? this.decision?.by}`,
            'AlreadyAnswered',
          );
        }
        this.decision = {
          approved: decision.approved,
          by: 'reviewer',
          reviewer: decision.reviewer.trim(),
          ...(decision.comment ? { comment: decision.comment } : {}),
        };
        return this.decision;
      },
      {
        validator: (decision) => {
          if (this.decision)
            throw new Error(
              `already answered: ${this.decision.approved ? 'approved' : 'rejected'} by ${this.decision.reviewer ?? this.decision.by}`,
            );
          if (!this.awaitingApproval)
            throw new Error(
              `not waiting for approval (status ${this.progress.status}, stage ${this.progress.stage ?? 'none'})`,
            );
          // The payload is JSON from outside: check it as unknown.
          const given = decision as unknown as Record<string, unknown> | null;
          if (typeof given !== 'object' || given === null) throw new Error('expected {approved, reviewer, comment?}');
          if (typeof given.approved !== 'boolean') throw new Error('approved must be true or false');
          if (typeof given.reviewer !== 'string' || given.reviewer.trim() === '')
            throw new Error('reviewer must not be empty');
          if (given.comment !== undefined && typeof given.comment !== 'string') throw new Error('comment must be text');
        },
      },
    );
  }

  stage(
    name: StageName,
    status: StageStatus,
    update: { workflowIds?: string[]; artifacts?: string[]; detail?: string } = {},
  ): void {
    const stage = this.progress.stages[name];
    stage.status = status;
    if (update.workflowIds)
      stage.workflowIds.push(...update.workflowIds.filter((id) => !stage.workflowIds.includes(id)));
    if (update.artifacts) stage.artifacts.push(...update.artifacts.filter((id) => !stage.artifacts.includes(id)));
    if (update.detail !== undefined) stage.detail = update.detail;
    if (status === 'running') {
      this.progress.stage = name;
      upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: name }]);
    }
  }

  finish(status: PipelineStatus): void {
    this.progress.status = status;
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: status }]);
    upsertMemo({ status });
  }

  /** Marks the running stages cancelled or failed (the run is ending with an error). */
  fail(cancelled: boolean): void {
    for (const stage of Object.values(this.progress.stages))
      if (stage.status === 'running') stage.status = cancelled ? 'cancelled' : 'failed';
    this.finish(cancelled ? 'cancelled' : 'failed');
  }

  /**
   * Waits for the approveDeployment Update, or applies the timeout policy. A rejection (by a reviewer or the policy)
   * moves the model version to Rejected in the registry.
   */
  async awaitApproval(model: string, policy: ApprovalPolicy | undefined): Promise<ApprovalOutcome> {
    if (!policy?.required) {
      this.stage('approval', 'skipped', { detail: 'not required' });
      return { approved: true, by: 'not-required' };
    }
    this.stage('approval', 'running');
    this.progress.status = 'awaiting-approval';
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value: 'awaiting-approval' }]);
    this.awaitingApproval = true;
    const answered = await condition(() => this.decision !== undefined, policy.timeout ?? DEFAULT_APPROVAL_TIMEOUT);
    this.awaitingApproval = false;
    this.progress.status = 'running';
    const outcome: ApprovalOutcome =
      answered && this.decision
        ? this.decision
        : { approved: (policy.onTimeout ?? 'reject') === 'approve', by: 'timeout-policy' };
    this.decision ??= outcome;
    this.progress.approval = outcome;
    log.info('deployment approval', { ...outcome });
    if (!outcome.approved) await recordApprovalDecision({ model, approved: false });
    this.stage('approval', 'completed', {
      detail: `${outcome.approved ? 'approved' : 'rejected'} by ${outcome.by === 'reviewer' ? outcome.reviewer : 'the timeout policy'}`,
    });
    return outcome;
  }
}

/** One author's ETL child (`etl-<slug>`), recorded on the `etl` stage; returns its id and result. */
export async function runEtlChild(
  tracker: PipelineTracker,
  author: AuthorLinks,
  etl: EndToEndInput['etl'] = {},
): Promise<{ workflowId: string; result: Awaited<ReturnType<typeof digitalDataEtl>> }> {
  const child = childOptions(`etl-${slugOf(author.name)}`);
  tracker.stage('etl', 'running', { workflowIds: [child.workflowId] });
  const result = await executeChild(digitalDataEtl, {
    ...child,
    args: [
      {
        author: author.name.trim(),
        links: author.links,
        ...(etl.refresh !== undefined ? { refresh: etl.refresh } : {}),
        ...(etl.maxInFlight !== undefined ? { maxInFlight: etl.maxInFlight } : {}),
      },
    ],
  });
  return { workflowId: child.workflowId, result };
}

/** The featureEngineering child (`features`) over the raw artifacts, recorded on the `features` stage. */
export async function runFeaturesChild(
  tracker: PipelineTracker,
  authors: string[],
  rawArtifactIds: string[],
  features: EndToEndInput['features'] = {},
): Promise<{ workflowId: string; result: Awaited<ReturnType<typeof featureEngineering>> }> {
  const child = childOptions('features');
  tracker.stage('features', 'running', { workflowIds: [child.workflowId] });
  const result = await executeChild(featureEngineering, {
    ...child,
    args: [{ authors, rawArtifactIds, ...(features.batchSize ? { batchSize: features.batchSize } : {}) }],
  });
  return { workflowId: child.workflowId, result };
}

/**
 * One generateDatasets child (`datasets-<type>`) over the cleaned artifact, recorded on the `datasets` stage. The
 * pipeline trains on what it made itself: no extra continuousTraining run from the new-dataset trigger.
 */
export async function runDatasetsChild(
  tracker: PipelineTracker,
  type: 'instruction' | 'preference',
  authors: string[],
  cleaned: string,
  options: { llmModel?: string; datasets?: EndToEndInput['datasets'] },
): Promise<{ workflowId: string; result: Awaited<ReturnType<typeof generateDatasets>> }> {
  const child = childOptions(`datasets-${type}`);
  tracker.stage('datasets', 'running', { workflowIds: [child.workflowId] });
  const testSplit = options.datasets?.testSplit?.[type];
  const result = await executeChild(generateDatasets, {
    ...child,
    args: [
      {
        type,
        authors,
        sourceArtifactIds: [cleaned],
        trainOnNewVersion: false,
        ...(options.llmModel ? { model: options.llmModel } : {}),
        ...(testSplit !== undefined ? { testSplit } : {}),
        ...(options.datasets?.batchSize ? { batchSize: options.datasets.batchSize } : {}),
        ...(options.datasets?.seed !== undefined ? { seed: options.datasets.seed } : {}),
      },
    ],
  });
  tracker.stage('datasets', 'running', { artifacts: [result.dataset.artifactId] });
  return { workflowId: child.workflowId, result };
}

export interface TrainPlanStep {
  /** SFT on this instruction dataset artifact, or null (DPO only, on `dpo.base`) */
  sft: { dataset: string } | null;
  dpo: { dataset: string; base: 'new-sft' | { modelVersion: string } } | null;
  /** the instruction dataset whose test split evaluation uses */
  evaluationDataset?: string;
}

export interface TailOptions extends TrainingOptions {
  evaluate: boolean;
  evaluation?: EvaluationOptions;
  deployment?: DeploymentOptions | false;
  approval?: ApprovalPolicy;
}

export interface TailResult {
  models: TrainedModels;
  gate: GateDecision | null;
  approval: ApprovalOutcome | null;
  deployment: DeploymentSummary | null;
  status: 'trained' | 'rejected' | 'deployed' | 'completed';
  reason: string;
}

/** SFT → DPO → evaluation → gate → approval → deployment, each a child workflow (or, for approval, an Update). */
export async function trainEvaluateDeploy(
  tracker: PipelineTracker,
  plan: TrainPlanStep,
  options: TailOptions,
): Promise<TailResult> {
  const hyperparameters = options.hyperparameters ?? {};
  const backend = options.trainingBackend ? { backend: options.trainingBackend } : {};
  const models: Partial<TrainedModels> = {};

  let dpoBase: string | undefined = plan.dpo && plan.dpo.base !== 'new-sft' ? plan.dpo.base.modelVersion : undefined;
  if (plan.sft) {
    const child = childOptions('train-sft');
    tracker.stage('sft', 'running', { workflowIds: [child.workflowId] });
    const sft = await executeChild(trainModel, {
      ...child,
      args: [
        {
          dataset: plan.sft.dataset,
          mode: 'sft',
          ...(options.baseModel ? { baseModel: options.baseModel } : {}),
          ...(hyperparameters.sft ? { hyperparameters: hyperparameters.sft } : {}),
          ...backend,
        },
      ],
    });
    models.sft = {
      modelVersion: sft.modelVersion,
      artifactId: sft.artifact.id,
      datasetArtifactId: sft.datasetArtifactId,
      metrics: sft.metrics,
    };
    dpoBase = sft.modelVersion;
    tracker.stage('sft', 'completed', { artifacts: [sft.modelVersion, sft.artifact.id] });
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.modelVersion, value: sft.modelVersion }]);
  } else {
    tracker.stage('sft', 'skipped', { detail: `DPO on ${dpoBase}` });
  }

  if (plan.dpo && dpoBase) {
    const child = childOptions('train-dpo');
    tracker.stage('dpo', 'running', { workflowIds: [child.workflowId] });
    const dpo = await executeChild(trainModel, {
      ...child,
      args: [
        {
          dataset: plan.dpo.dataset,
          mode: 'dpo',
          baseModel: { modelVersion: dpoBase },
          ...(hyperparameters.dpo ? { hyperparameters: hyperparameters.dpo } : {}),
          ...backend,
        },
      ],
    });
    models.dpo = {
      modelVersion: dpo.modelVersion,
      artifactId: dpo.artifact.id,
      datasetArtifactId: dpo.datasetArtifactId,
      metrics: dpo.metrics,
    };
    tracker.stage('dpo', 'completed', { artifacts: [dpo.modelVersion, dpo.artifact.id] });
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.modelVersion, value: dpo.modelVersion }]);
  } else {
    tracker.stage('dpo', 'skipped', { detail: plan.dpo ? 'no SFT model' : 'not requested' });
  }
  const final = models.dpo?.modelVersion ?? models.sft?.modelVersion;
  if (!final) throw ApplicationFailure.nonRetryable('nothing was trained', 'BadInput');
  const trained: TrainedModels = { ...models, final };
  upsertMemo({ model: final });

  if (!options.evaluate) {
    tracker.stage('evaluation', 'skipped', { detail: 'not requested' });
    tracker.stage('approval', 'skipped');
    tracker.stage('deployment', 'skipped');
    return {
      models: trained,
      gate: null,
      approval: null,
      deployment: null,
      status: 'trained',
      reason: `trained ${final}; evaluation not requested`,
    };
  }

  const evalChild = childOptions('evaluate');
  tracker.stage('evaluation', 'running', { workflowIds: [evalChild.workflowId] });
  const evaluation = options.evaluation ?? {};
  const result = await executeChild(evaluateModel, {
    ...evalChild,
    args: [
      {
        model: final,
        ...(plan.evaluationDataset ? { dataset: plan.evaluationDataset } : {}),
        ...(evaluation.baseline ? { baseline: evaluation.baseline } : {}),
        ...(evaluation.maxSamples !== undefined ? { maxSamples: evaluation.maxSamples } : {}),
        ...(evaluation.thresholds ? { thresholds: evaluation.thresholds } : {}),
        ...(evaluation.generator ? { generator: evaluation.generator } : {}),
        ...(evaluation.rag !== undefined ? { rag: evaluation.rag } : {}),
      },
    ],
  });
  const gate: GateDecision = {
    model: final,
    passed: result.passed,
    reasons: result.reasons,
    scores: result.scores,
    report: result.report.id,
  };
  tracker.progress.gate = gate;
  tracker.stage('evaluation', 'completed', {
    artifacts: [result.report.id],
    detail: result.passed ? 'passed' : `failed: ${result.reasons.join('; ')}`,
  });
  upsertMemo({
    gate: { passed: gate.passed, reasons: gate.reasons, accuracy: gate.scores.accuracy, style: gate.scores.style },
  });
  log.info('evaluation gate', { model: final, passed: gate.passed, reasons: gate.reasons });

  if (!gate.passed) {
    tracker.stage('approval', 'skipped', { detail: 'gate failed' });
    tracker.stage('deployment', 'skipped', { detail: 'gate failed' });
    return {
      models: trained,
      gate,
      approval: null,
      deployment: null,
      status: 'rejected',
      reason: `gate failed: ${gate.reasons.join('; ')}`,
    };
  }
  if (options.deployment === false || options.deployment === undefined) {
    tracker.stage('approval', 'skipped', { detail: 'no deployment requested' });
    tracker.stage('deployment', 'skipped', { detail: 'not requested' });
    return {
      models: trained,
      gate,
      approval: null,
      deployment: null,
      status: 'completed',
      reason: 'gate passed; no deployment requested',
    };
  }

  const approval = await tracker.awaitApproval(final, options.approval);
  if (!approval.approved) {
    tracker.stage('deployment', 'skipped', { detail: 'not approved' });
    const who =
      approval.by === 'reviewer'
        ? `by ${approval.reviewer}${approval.comment ? `: ${approval.comment}` : ''}`
        : 'by the timeout policy (nobody answered)';
    return {
      models: trained,
      gate,
      approval,
      deployment: null,
      status: 'rejected',
      reason: `deployment rejected ${who}`,
    };
  }

  const deployChild = childOptions('deploy');
  tracker.stage('deployment', 'running', { workflowIds: [deployChild.workflowId] });
  const deployed = await executeChild(deployModel, {
    ...deployChild,
    args: [
      {
        model: final,
        ...(options.deployment.backend ? { backend: options.deployment.backend } : {}),
        ...(options.deployment.endpointName ? { endpointName: options.deployment.endpointName } : {}),
      },
    ],
  });
  const deployment: DeploymentSummary = {
    endpointName: deployed.endpointName,
    backend: deployed.backend,
    modelVersion: deployed.modelVersion,
    ...(deployed.url ? { url: deployed.url } : {}),
    ...(deployed.previousModelVersion ? { previousModelVersion: deployed.previousModelVersion } : {}),
    smokeTest: { ok: deployed.smokeTest.ok, latencyMs: deployed.smokeTest.latencyMs },
  };
  tracker.stage('deployment', 'completed', { artifacts: [deployed.endpointName] });
  upsertMemo({ endpoint: deployed.endpointName });
  return {
    models: trained,
    gate,
    approval,
    deployment,
    status: 'deployed',
    reason: `deployed ${final} to ${deployed.endpointName}`,
  };
}
