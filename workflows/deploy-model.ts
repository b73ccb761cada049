import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  log,
  patched,
  proxyActivities,
  upsertMemo,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { ServingActivities } from '../activities/serving';
import { SEARCH_ATTRIBUTES } from '../src/domain/search-attributes';
import type {
  DeployModelInput,
  DeploymentPlan,
  DeploymentResult,
  EndpointApplyResult,
  LocalServerRef,
  RollbackDeploymentInput,
  SmokeTestResult,
} from '../src/serving/types';
import { QUEUES } from './queues';

export type { DeployModelInput, DeploymentResult, RollbackDeploymentInput } from '../src/serving/types';

const retry = { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute' } as const;

const steps = proxyActivities<ServingActivities>({
  taskQueue: QUEUES.ml,
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: { ...retry, maximumAttempts: 10 },
});

/** The long waits: one heartbeating activity each (a blue/green update with canary steps and bake time takes hours). */
const waits = proxyActivities<ServingActivities>({
  taskQueue: QUEUES.ml,
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '2 minutes',
  retry: { ...retry, maximumAttempts: 20 },
});

function reasonOf(error: unknown): string {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  const type = cause instanceof ApplicationFailure ? cause.type : undefined;
  const message = cause instanceof Error ? cause.message : String(cause);
  return type ? `${type}: ${message}` : message;
}

function typeOf(error: unknown): string | undefined {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  return cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined;
}

/**
 * An activity's typed failure as the workflow's own failure of the same type, so a parent (endToEnd) reads
 * `ChildWorkflowFailure.cause.type === 'ModelNotApproved'` without digging through the ActivityFailure.
 */
function surfaced(error: unknown): unknown {
  if (!(error instanceof ActivityFailure) || !(error.cause instanceof ApplicationFailure)) return error;
  const cause = error.cause;
  return ApplicationFailure.create({
    message: cause.message,
    type: cause.type ?? 'DeploymentFailed',
    nonRetryable: true,
    details: cause.details as unknown[] | undefined,
    cause: error,
  });
}

function smokeFailure(plan: DeploymentPlan, smoke: SmokeTestResult, what: string): ApplicationFailure {
  return ApplicationFailure.create({
    message: `smoke test of ${plan.modelVersion} on ${plan.endpointName} failed (${smoke.error ?? 'no answer'}); ${what}`,
    type: 'SmokeTestFailed',
    nonRetryable: true,
    details: [smoke],
  });
}

function status(value: string): void {
  upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.status, value }]);
}

/** SageMaker: model → endpoint config → create / blue-green update → InService → autoscaling → smoke test. */
async function deploySageMaker(plan: DeploymentPlan): Promise<DeploymentResult> {
  const target = plan.sagemaker;
  if (!target) throw ApplicationFailure.nonRetryable('no SageMaker plan', 'InvalidDeployment');
  let apply: EndpointApplyResult | undefined;
  const previousConfig = () => apply?.previousEndpointConfigName ?? target.previousEndpointConfigName;
  try {
    if (plan.kind === 'deploy') {
      await steps.createSageMakerModel(plan);
      await steps.createSageMakerEndpointConfig(plan);
    }
    apply = await steps.applySageMakerEndpoint(plan);
    status('waiting');
    await waits.waitForSageMakerEndpoint({
      endpointName: target.endpointName,
      endpointConfigName: target.endpointConfigName,
    });
    status('configuring');
    await steps.configureEndpointAutoscaling(plan);
  } catch (error) {
    // Nothing was switched by us: an update that failed (or that SageMaker rolled back on an alarm) leaves the
    // previous config serving; a failed create leaves nothing.
    await CancellationScope.nonCancellable(async () => {
      const stillServing = apply ? apply.action !== 'create' : Boolean(previousConfig());
      await steps.recordDeploymentFailure({
        plan,
        reason: reasonOf(error),
        stillServing,
        rolledBack: typeOf(error) === 'DeploymentRolledBack',
      });
      status('failed');
    });
    throw surfaced(error);
  }
  status('smoke-testing');
  const smoke = await steps.smokeTestEndpoint({ plan });
  if (smoke.ok) {
    const result = await steps.recordDeployment({ plan, smokeTest: smoke, apply });
    status('completed');
    return result;
  }
  const back = previousConfig();
  if (!back) {
    // Nothing to roll back to: the new endpoint would bill while serving nothing anyone uses.
    const deleted = patched('delete-failed-endpoint')
      ? (await steps.deleteFailedSageMakerEndpoint(plan)).deleted
      : false;
    const what = deleted
      ? `there is no previous endpoint config to roll back to; the endpoint was deleted (its logs stay in CloudWatch /aws/sagemaker/Endpoints/${target.endpointName})`
      : 'there is no previous endpoint config to roll back to';
    await steps.recordDeploymentFailure({
      plan,
      reason: `smoke test failed: ${smoke.error ?? ''}${deleted ? ' (endpoint deleted)' : ''}`,
      stillServing: false,
      rolledBack: false,
    });
    status('failed');
    throw smokeFailure(plan, smoke, what);
  }
  status('rolling-back');
  try {
    await waits.rollbackSageMakerEndpoint({ plan, toEndpointConfigName: back });
  } catch (error) {
    await steps.recordDeploymentFailure({
      plan,
      reason: `smoke test failed, then the rollback failed: ${reasonOf(error)}`,
      stillServing: false,
      rolledBack: false,
    });
    status('failed');
    throw surfaced(error);
  }
  await steps.recordDeploymentFailure({
    plan,
    reason: `smoke test failed: ${smoke.error ?? ''}`,
    stillServing: true,
    rolledBack: true,
  });
  status('rolled-back');
  throw smokeFailure(plan, smoke, `rolled back to ${back}`);
}

/** Local: start (or adopt) the version's server → /health → smoke test → switch the document → stop the old server. */
async function deployLocal(plan: DeploymentPlan): Promise<DeploymentResult> {
  let server: LocalServerRef | undefined;
  try {
    server = await steps.startLocalModelServer(plan);
    status('waiting');
    await waits.waitForLocalModelServer(server);
    status('smoke-testing');
    const smoke = await steps.smokeTestEndpoint({ plan, url: server.url });
    if (!smoke.ok) throw smokeFailure(plan, smoke, 'the previous server keeps serving');
    const result = await steps.recordDeployment({ plan, smokeTest: smoke, server });
    status('completed');
    return result;
  } catch (error) {
    await CancellationScope.nonCancellable(async () => {
      if (server) {
        try {
          await steps.stopLocalModelServer({ endpointName: plan.endpointName, server });
        } catch (stopError) {
          log.warn('could not stop the new local server', { pid: server.pid, error: String(stopError) });
        }
      }
      await steps.recordDeploymentFailure({
        plan,
        reason: reasonOf(error),
        stillServing: Boolean(plan.local?.previousServer),
        rolledBack: false,
      });
      status('failed');
    });
    throw surfaced(error);
  }
}

async function run(plan: DeploymentPlan): Promise<DeploymentResult> {
  upsertSearchAttributes([
    { key: SEARCH_ATTRIBUTES.modelVersion, value: plan.modelVersion },
    { key: SEARCH_ATTRIBUTES.status, value: 'deploying' },
  ]);
  upsertMemo({
    endpoint: plan.endpointName,
    backend: plan.backend,
    kind: plan.kind,
    previousModelVersion: plan.previousModelVersion ?? null,
    ...(plan.sagemaker ? { endpointConfig: plan.sagemaker.endpointConfigName } : {}),
  });
  const deploy = () => (plan.backend === 'sagemaker' ? deploySageMaker(plan) : deployLocal(plan));
  // Runs started before endpoint leases existed end without releasing; the next deployment takes the lease over.
  if (!patched('endpoint-lease')) return deploy();
  try {
    return await deploy();
  } finally {
    // A release that fails does not change the outcome: the next deployment takes over a lease whose holder ended.
    await CancellationScope.nonCancellable(() =>
      steps
        .releaseEndpoint({ endpointName: plan.endpointName })
        .catch((error: unknown) => log.warn('could not release the endpoint lease', { error: String(error) })),
    );
  }
}

/**
 * Deploys an Approved model version to an endpoint. SageMaker: CreateModel → CreateEndpointConfig → CreateEndpoint
 * or blue/green UpdateEndpoint (auto-rollback on alarms) → InService → autoscaling → smoke test → UpdateEndpoint back
 * to the previous config when the smoke test fails. Local: an OpenAI-compatible server per version, switched to in
 * the endpoints document only after it passed its smoke test; the old server is stopped after the switch.
 * A version that is not Approved is refused (ApplicationFailure type ModelNotApproved, non-retryable).
 */
export async function deployModel(input: DeployModelInput): Promise<DeploymentResult> {
  upsertSearchAttributes([
    { key: SEARCH_ATTRIBUTES.pipeline, value: 'deployModel' },
    { key: SEARCH_ATTRIBUTES.status, value: 'preparing' },
  ]);
  let plan: DeploymentPlan;
  try {
    plan = await steps.prepareDeployment(input);
  } catch (error) {
    status(typeOf(error) === 'ModelNotApproved' ? 'refused' : 'failed');
    throw surfaced(error);
  }
  return run(plan);
}

/** Puts the endpoint's previous model version back (its previous endpoint config on SageMaker), smoke-tested. */
export async function rollbackDeployment(input: RollbackDeploymentInput = {}): Promise<DeploymentResult> {
  upsertSearchAttributes([
    { key: SEARCH_ATTRIBUTES.pipeline, value: 'rollbackDeployment' },
    { key: SEARCH_ATTRIBUTES.status, value: 'preparing' },
  ]);
  const plan = await steps.prepareRollback(input);
  return run(plan);
}
