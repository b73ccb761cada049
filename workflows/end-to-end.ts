import { ApplicationFailure, isCancellation, upsertMemo, upsertSearchAttributes } from '@temporalio/workflow';
import { SEARCH_ATTRIBUTES } from '../src/domain/search-attributes';
import type { EndToEndInput, EndToEndResult } from '../src/pipelines/types';
import type { GenerateDatasetsResult } from './generate-datasets';
import {
  PipelineTracker,
  runDatasetsChild,
  runEtlChild,
  runFeaturesChild,
  slugOf,
  trainEvaluateDeploy,
} from './pipeline-stages';

export type {
  ApprovalDecision,
  ApprovalOutcome,
  ApprovalPolicy,
  AuthorLinks,
  DeploymentOptions,
  DeploymentSummary,
  EndToEndInput,
  EndToEndResult,
  EvaluationOptions,
  GateDecision,
  PipelineProgress,
  TrainedModels,
} from '../src/pipelines/types';
export { approveDeployment, progressQuery } from './pipeline-stages';

function checkInput(input: EndToEndInput): void {
  if (!input || !Array.isArray(input.authors) || input.authors.length === 0) {
    throw ApplicationFailure.nonRetryable('input.authors must list at least one {name, links}', 'BadInput');
  }
  const slugs = new Set<string>();
  for (const author of input.authors) {
    if (typeof author?.name !== 'string' || author.name.trim() === '' || !Array.isArray(author.links)) {
      throw ApplicationFailure.nonRetryable('every author needs a name and a links list', 'BadInput');
    }
    const slug = slugOf(author.name);
    if (slugs.has(slug)) throw ApplicationFailure.nonRetryable(`author ${author.name} is listed twice`, 'BadInput');
    slugs.add(slug);
  }
  if (input.approval?.required && (input.deployment === false || input.deployment === undefined)) {
    throw ApplicationFailure.nonRetryable(
      'approval.required needs a deployment to approve (input.deployment)',
      'BadInput',
    );
  }
}

const datasetSummary = (workflowId: string, r: GenerateDatasetsResult) => ({
  workflowId,
  artifactId: r.dataset.artifactId,
  version: r.dataset.version,
  train: r.dataset.counts.train,
  test: r.dataset.counts.test,
});

/**
 * endToEnd — the whole twin, as child workflows: ETL (one per author, in parallel) → featureEngineering →
 * generateDatasets (instruction and preference, in parallel) → trainModel SFT → trainModel DPO on the SFT model →
 * evaluateModel of the final model → gate (failed: ends 'rejected', nothing deployed) → optional human approval
 * (Update `approveDeployment`, timeout policy) → deployModel.
 *
 * Child ids are `<this id>/<stage>`; cancelling this run cancels the running child (trainModel then stops its
 * training job). Query `progress` gives the stage, every stage's status, child ids and artifacts. Search attributes:
 * TwinPipeline=endToEnd, TwinAuthor, TwinDatasetVersion (instruction), TwinModelVersion (latest trained),
 * TwinStatus (the running stage, then deployed | rejected | completed | failed | cancelled).
 */
export async function endToEnd(input: EndToEndInput): Promise<EndToEndResult> {
  checkInput(input);
  const tracker = new PipelineTracker('endToEnd');
  const names = input.authors.map((a) => a.name.trim());
  upsertSearchAttributes([
    { key: SEARCH_ATTRIBUTES.pipeline, value: 'endToEnd' },
    { key: SEARCH_ATTRIBUTES.author, value: names },
    { key: SEARCH_ATTRIBUTES.status, value: 'running' },
  ]);
  upsertMemo({
    authors: names,
    links: input.authors.reduce((n, a) => n + a.links.length, 0),
    dpo: !input.skipDpo,
    deployment: input.deployment === false || input.deployment === undefined ? null : input.deployment,
    approvalRequired: Boolean(input.approval?.required),
  });
  try {
    // 1. ETL, one child per author, in parallel.
    tracker.stage('etl', 'running');
    const etl = await Promise.all(
      input.authors.map(async (author) => {
        const { workflowId, result } = await runEtlChild(tracker, author, input.etl);
        if (result.artifact) tracker.stage('etl', 'running', { artifacts: [result.artifact.id] });
        return {
          author: author.name.trim(),
          workflowId,
          links: result.counts.links,
          stored: result.counts.byStatus.stored + result.counts.byStatus.unchanged,
          failed: result.counts.byStatus.failed,
          artifact: result.artifact?.id ?? null,
        };
      }),
    );
    const rawArtifactIds = etl.flatMap((e) => (e.artifact ? [e.artifact] : []));
    tracker.stage('etl', 'completed', {
      detail: etl.map((e) => `${e.author}: ${e.stored}/${e.links} stored, ${e.failed} failed`).join('; '),
    });
    if (rawArtifactIds.length === 0) {
      throw ApplicationFailure.nonRetryable(
        'the ETL stored no document for any author: nothing to train on',
        'NoDocuments',
      );
    }

    // 2. Features.
    const { workflowId: featuresWorkflowId, result: features } = await runFeaturesChild(
      tracker,
      names,
      rawArtifactIds,
      input.features,
    );
    const cleaned = features.artifacts?.cleaned.id ?? null;
    const embedded = features.artifacts?.embedded.id ?? null;
    tracker.stage('features', 'completed', { artifacts: [cleaned, embedded].filter((a): a is string => a !== null) });
    if (!cleaned)
      throw ApplicationFailure.nonRetryable('featureEngineering found no documents of the authors', 'NoDocuments');

    // 3. Datasets: instruction and preference in parallel (preference only when DPO follows).
    const generate = async (type: 'instruction' | 'preference') => {
      const { workflowId, result } = await runDatasetsChild(tracker, type, names, cleaned, input);
      return datasetSummary(workflowId, result);
    };
    const [instruction, preference] = await Promise.all([
      generate('instruction'),
      input.skipDpo ? Promise.resolve(undefined) : generate('preference'),
    ]);
    tracker.stage('datasets', 'completed', {
      detail: `instruction ${instruction.version} (${instruction.train}+${instruction.test})${preference ? `, preference ${preference.version} (${preference.train}+${preference.test})` : ''}`,
    });
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.datasetVersion, value: instruction.version }]);
    upsertMemo({ instructionDataset: instruction.artifactId, preferenceDataset: preference?.artifactId ?? null });

    // 4–8. SFT → DPO → evaluation → gate → approval → deployment.
    const tail = await trainEvaluateDeploy(
      tracker,
      {
        sft: { dataset: instruction.artifactId },
        dpo: preference ? { dataset: preference.artifactId, base: 'new-sft' } : null,
        evaluationDataset: instruction.artifactId,
      },
      { ...input, evaluate: true },
    );
    const status = tail.status === 'trained' ? 'completed' : tail.status;
    tracker.finish(status);
    return {
      status,
      etl,
      features: { workflowId: featuresWorkflowId, cleaned, embedded, status: features.status },
      datasets: { instruction, ...(preference ? { preference } : {}) },
      models: tail.models,
      gate: tail.gate!,
      approval: tail.approval,
      deployment: tail.deployment,
      reason: tail.reason,
    };
  } catch (error) {
    tracker.fail(isCancellation(error));
    throw error;
  }
}
