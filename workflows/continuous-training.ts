import { ApplicationFailure, isCancellation, upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import { SEARCH_ATTRIBUTES } from '../src/domain/search-attributes';
import { planTraining } from '../src/pipelines/freshness';
import type { ContinuousTrainingInput, ContinuousTrainingResult } from '../src/pipelines/types';
import {
  findTrainingFacts,
  PipelineTracker,
  runDatasetsChild,
  runEtlChild,
  runFeaturesChild,
  trainEvaluateDeploy,
} from './pipeline-stages';

export type { ContinuousTrainingInput, ContinuousTrainingResult } from '../src/pipelines/types';
export type { TrainingFacts, TrainingPlan } from '../src/pipelines/freshness';
export { SKIPPED_NO_NEW_DATA } from '../src/pipelines/freshness';

/** Optional first part: ETL → features → datasets for the spec's authors (the new data, if any, comes from here). */
async function refreshData(
  tracker: PipelineTracker,
  refresh: NonNullable<ContinuousTrainingInput['refresh']>,
  dpo: boolean,
): Promise<void> {
  const names = refresh.authors.map((a) => a.name.trim());
  tracker.stage('etl', 'running');
  const etl = await Promise.all(
    refresh.authors.map(async (author) => (await runEtlChild(tracker, author)).result.artifact?.id ?? null),
  );
  const rawArtifactIds = etl.filter((id): id is string => id !== null);
  tracker.stage('etl', 'completed', { artifacts: rawArtifactIds });
  if (rawArtifactIds.length === 0) {
    tracker.stage('features', 'skipped', { detail: 'no documents' });
    tracker.stage('datasets', 'skipped', { detail: 'no documents' });
    return;
  }
  const features = (await runFeaturesChild(tracker, names, rawArtifactIds)).result;
  const cleaned = features.artifacts?.cleaned.id;
  tracker.stage('features', 'completed', { artifacts: cleaned ? [cleaned] : [] });
  if (!cleaned) {
    tracker.stage('datasets', 'skipped', { detail: 'no cleaned documents' });
    return;
  }
  const types: ('instruction' | 'preference')[] = dpo ? ['instruction', 'preference'] : ['instruction'];
  await Promise.all(types.map((type) => runDatasetsChild(tracker, type, names, cleaned, refresh)));
  tracker.stage('datasets', 'completed');
}

/**
 * continuousTraining — what a Schedule starts (and the new-dataset trigger): trains only when a dataset version newer
 * than the one the last model was trained on exists, otherwise ends with "skipped: no new data".
 *
 * (optional `refresh`: ETL → features → datasets first) → findTrainingFacts (newest instruction/preference dataset
 * artifacts; newest SFT/DPO model versions and the datasets they were trained on) → planTraining → trainModel SFT
 * [+ DPO] → evaluateModel → gate → optional approval → deployModel (when `deployment` is given). Same child ids,
 * cancellation, `progress` query and `approveDeployment` Update as endToEnd.
 */
export async function continuousTraining(input: ContinuousTrainingInput = {}): Promise<ContinuousTrainingResult> {
  const options = input ?? {};
  if (options.approval?.required && !options.deployment) {
    throw ApplicationFailure.nonRetryable(
      'approval.required needs a deployment to approve (input.deployment)',
      'BadInput',
    );
  }
  const tracker = new PipelineTracker('continuousTraining');
  const dpo = !options.skipDpo;
  upsertSearchAttributes([
    { key: SEARCH_ATTRIBUTES.pipeline, value: 'continuousTraining' },
    { key: SEARCH_ATTRIBUTES.status, value: 'running' },
    ...(options.refresh?.authors.length
      ? [{ key: SEARCH_ATTRIBUTES.author, value: options.refresh.authors.map((a) => a.name.trim()) }]
      : []),
  ]);
  try {
    if (options.refresh?.authors.length) await refreshData(tracker, options.refresh, dpo);
    else
      for (const stage of ['etl', 'features', 'datasets'] as const)
        tracker.stage(stage, 'skipped', { detail: 'no refresh requested' });

    const facts = await findTrainingFacts();
    const plan = planTraining(facts, { dpo });
    upsertMemo({
      plan: plan.action,
      detail: plan.detail,
      instructionDataset: facts.instruction?.artifactId ?? null,
      lastSft: facts.lastSft?.modelVersion ?? null,
    });
    if (plan.action === 'skip') {
      for (const stage of ['sft', 'dpo', 'evaluation', 'approval', 'deployment'] as const)
        tracker.stage(stage, 'skipped', { detail: plan.reason });
      tracker.finish('skipped');
      return {
        status: 'skipped',
        reason: plan.reason,
        facts,
        plan,
        models: null,
        gate: null,
        approval: null,
        deployment: null,
      };
    }
    if (facts.instruction && plan.sft)
      upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.datasetVersion, value: facts.instruction.version }]);

    const tail = await trainEvaluateDeploy(
      tracker,
      {
        sft: plan.sft,
        dpo: plan.dpo,
        evaluationDataset: plan.sft?.dataset ?? facts.lastSft?.datasetArtifactId,
      },
      { ...options, evaluate: options.evaluate ?? true },
    );
    const status = tail.status === 'completed' ? 'trained' : tail.status;
    tracker.finish(status === 'trained' ? 'completed' : status);
    return {
      status,
      reason: `${plan.detail}; ${tail.reason}`,
      facts,
      plan,
      models: tail.models,
      gate: tail.gate,
      approval: tail.approval,
      deployment: tail.deployment,
    };
  } catch (error) {
    tracker.fail(isCancellation(error));
    throw error;
  }
}
