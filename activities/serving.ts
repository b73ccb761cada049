import { ApplicationFailure, Context } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { ApplicationAutoScalingClient } from '@aws-sdk/client-application-auto-scaling';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SageMakerClient } from '@aws-sdk/client-sagemaker';
import { SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import { createS3Client } from '../src/infra/artifact-store';
import type { Dependencies } from '../src/infra/dependencies';
import { EndpointLeases, EndpointStore } from '../src/serving/endpoints';
import { LocalModelServers, smokeTestOpenAi } from '../src/serving/local';
import {
  InvalidDeployment,
  ModelNotApproved,
  planDeployment,
  planRollback,
  type PlanContext,
} from '../src/serving/plan';
import {
  buildCreateEndpointConfigRequest,
  buildCreateModelRequest,
  buildDeploymentConfig,
  containerEnvironment,
  createAutoScalingClient,
  judgeEndpointState,
  SageMakerServing,
  servingImage,
} from '../src/serving/sagemaker';
import type {
  DeployModelInput,
  DeploymentPlan,
  DeploymentResult,
  EndpointApplyResult,
  LocalServerRef,
  RollbackDeploymentInput,
  SmokeTestResult,
} from '../src/serving/types';
import { TrainingJobError } from '../src/training/backend';
import { ModelRegistry } from '../src/training/registry';
import { createSageMakerClient } from '../src/training/sagemaker';
import { badInput, classifier, currentProducer, failureOf, heartbeatingWait, withHeartbeat } from './support';

export interface ServingActivityOptions {
  sagemakerClient?: SageMakerClient;
  runtimeClient?: SageMakerRuntimeClient;
  autoscalingClient?: ApplicationAutoScalingClient;
  s3Client?: S3Client;
  /** Milliseconds between DescribeEndpoint polls; default SAGEMAKER_ENDPOINT_POLL_INTERVAL_S. */
  pollIntervalMs?: number;
  /** Extra environment of local model servers (tests: SERVING_THREADS). */
  serverEnv?: Record<string, string>;
}

/** Errors → Temporal failures: the gate and bad input are final; AWS errors keep their retryability. */
function toFailure(error: unknown): unknown {
  if (error instanceof ModelNotApproved) {
    return badInput(error.message, 'ModelNotApproved', { modelVersion: error.modelVersion, status: error.status });
  }
  if (error instanceof InvalidDeployment) return badInput(error.message, error.code);
  if (error instanceof TrainingJobError) {
    return failureOf(error, error.code, error.retryable);
  }
  return error;
}

const classified = classifier(toFailure);

function requireSageMaker(plan: DeploymentPlan): NonNullable<DeploymentPlan['sagemaker']> {
  if (!plan.sagemaker) throw badInput(`deployment of ${plan.modelVersion} has no SageMaker plan`, 'InvalidDeployment');
  return plan.sagemaker;
}

/**
 * Deployment activities on twin-ml. Each step is idempotent (deterministic SageMaker names, adopted resources, a
 * local server per endpoint and version reused while it runs), so Temporal's retries never duplicate anything.
 */
export function createServingActivities(deps: Dependencies, options: ServingActivityOptions = {}) {
  const { settings } = deps;
  const serving = settings.serving;
  let sagemakerClient: SageMakerClient | undefined;
  let sagemakerServing: SageMakerServing | undefined;
  let s3: S3Client | undefined;
  const sm = () => {
    sagemakerClient ??= options.sagemakerClient ?? createSageMakerClient(settings.aws);
    sagemakerServing ??= new SageMakerServing(
      sagemakerClient,
      options.runtimeClient ??
        new SageMakerRuntimeClient({
          region: settings.aws.region,
          ...(settings.aws.endpoint ? { endpoint: settings.aws.endpoint } : {}),
        }),
      options.autoscalingClient ?? createAutoScalingClient(settings.aws),
    );
    return sagemakerServing;
  };
  const servers = new LocalModelServers({
    python: serving.python,
    dir: serving.dir,
    host: serving.host,
    device: serving.device,
    s3: () => (s3 ??= options.s3Client ?? createS3Client(settings.aws)),
    ...(options.serverEnv ? { env: options.serverEnv } : {}),
  });
  const stores = async () => {
    const { db } = await deps.warehouse();
    return { endpoints: new EndpointStore(db), models: new ModelRegistry(db), leases: new EndpointLeases(db), db };
  };

  const isRunning = async (workflowId: string): Promise<boolean> => {
    try {
      return (await Context.current().client.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return false;
      throw error;
    }
  };

  /**
   * Claims the endpoint for this workflow, taking it over from a holder that ended without releasing it
   * (terminated, timed out); a running holder → EndpointBusy, final, naming that workflow.
   */
  const claimEndpoint = async (leases: EndpointLeases, endpointName: string, workflowId: string): Promise<void> => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const claim = await leases.claim(endpointName, workflowId);
      if (claim.claimed) return;
      if (await isRunning(claim.holder)) {
        throw badInput(
          `endpoint ${endpointName} is being changed by workflow ${claim.holder} (since ${claim.since}): one deployment ` +
            `at a time per endpoint. Wait for it to end, or cancel it (temporal workflow cancel --workflow-id ` +
            `${claim.holder}), then run this again`,
          'EndpointBusy',
          { endpointName, holder: claim.holder, since: claim.since },
        );
      }
      if (await leases.takeOver(endpointName, claim.holder, workflowId)) {
        deps.log.warn(
          { endpoint: endpointName, from: claim.holder },
          'endpoint lease taken over from an ended workflow',
        );
        return;
      }
    }
    throw new Error(`endpoint ${endpointName}: its lease kept changing hands; try again`);
  };

  /** Claim the endpoint, then `work`; the claim is released again when `work` fails (the workflow releases it otherwise). */
  const withEndpointClaim = async <T>(
    leases: EndpointLeases,
    endpointName: string,
    workflowId: string,
    work: () => Promise<T>,
  ): Promise<T> => {
    await claimEndpoint(leases, endpointName, workflowId);
    try {
      return await work();
    } catch (error) {
      await leases.release(endpointName, workflowId);
      throw error;
    }
  };
  const pollIntervalMs = options.pollIntervalMs ?? serving.sagemaker.pollIntervalSeconds * 1_000;

  /** One heartbeating wait until the endpoint is InService on `endpointConfigName` (or failed / rolled back). */
  const waitForEndpoint = async (
    endpointName: string,
    endpointConfigName: string,
  ): Promise<{ status: 'InService' }> => {
    const context = Context.current();
    let last = '';
    for (;;) {
      const state = await classified(() => sm().describeEndpoint(endpointName));
      if (!state)
        throw badInput(
          `SageMaker endpoint ${endpointName} does not exist (deleted during the deployment?)`,
          'EndpointNotFound',
        );
      context.heartbeat(state);
      if (state.status !== last) {
        deps.log.info({ endpointName, ...state }, 'endpoint status');
        last = state.status;
      }
      const verdict = judgeEndpointState(state, endpointConfigName);
      if (verdict.done) {
        if (verdict.ok) return { status: 'InService' };
        throw ApplicationFailure.create({
          message: `SageMaker endpoint ${endpointName}: ${verdict.reason}`,
          type: verdict.rolledBack ? 'DeploymentRolledBack' : 'EndpointFailed',
          nonRetryable: true,
          details: [{ ...state, rolledBack: verdict.rolledBack }],
        });
      }
      await heartbeatingWait(pollIntervalMs, state);
    }
  };

  /** Claims the endpoint, plans the deployment or rollback, and marks the endpoint Creating/Updating. */
  const prepare = async (
    kind: 'deploy' | 'rollback',
    requestedEndpoint: string | undefined,
    plan: (ctx: PlanContext) => Promise<DeploymentPlan>,
  ): Promise<DeploymentPlan> => {
    const { workflowId } = currentProducer();
    const endpointName = requestedEndpoint ?? settings.serving.endpointName;
    return classified(async () => {
      const { endpoints, models, leases } = await stores();
      return withEndpointClaim(leases, endpointName, workflowId, async () => {
        const planned = await plan({ settings, models, endpoints, workflowId });
        await endpoints.begin({
          name: planned.endpointName,
          backend: planned.backend,
          modelVersion: planned.modelVersion,
          kind,
          workflowId,
        });
        deps.log.info(
          {
            endpoint: planned.endpointName,
            backend: planned.backend,
            model: planned.modelVersion,
            previous: planned.previousModelVersion,
          },
          `${kind} planned`,
        );
        return planned;
      });
    });
  };

  return {
    /** The gate (the version must be Approved) + everything later steps need; marks the endpoint Creating/Updating. */
    prepareDeployment: (input: DeployModelInput): Promise<DeploymentPlan> =>
      prepare('deploy', input.endpointName, (ctx) => planDeployment(input, ctx)),

    /** `twin deploy rollback`: the endpoint's previous version (and, on SageMaker, its previous endpoint config). */
    prepareRollback: (input: RollbackDeploymentInput): Promise<DeploymentPlan> =>
      prepare('rollback', input.endpointName, (ctx) => planRollback(input, ctx)),

    /** The deployment workflow ended (however): the next deployment of this endpoint may start. */
    releaseEndpoint: async (input: { endpointName: string }): Promise<void> => {
      const { leases } = await stores();
      await leases.release(input.endpointName, currentProducer().workflowId);
    },

    createSageMakerModel: async (plan: DeploymentPlan): Promise<{ modelName: string; created: boolean }> => {
      const target = requireSageMaker(plan);
      return classified(async () => {
        if (!settings.sagemaker.executionRoleArn) {
          throw new InvalidDeployment(
            'SAGEMAKER_EXECUTION_ROLE_ARN is not set: SageMaker endpoints need an execution role',
            'ConfigurationError',
          );
        }
        const request = buildCreateModelRequest({
          modelName: target.modelName,
          modelDataUrl: plan.artifactUri,
          imageUri: servingImage(settings),
          roleArn: settings.sagemaker.executionRoleArn,
          environment: containerEnvironment(serving.sagemaker),
          modelVersion: plan.modelVersion,
          endpointName: plan.endpointName,
        });
        const { created } = await sm().ensureModel(request);
        return { modelName: target.modelName, created };
      });
    },

    createSageMakerEndpointConfig: async (
      plan: DeploymentPlan,
    ): Promise<{ endpointConfigName: string; created: boolean }> => {
      const target = requireSageMaker(plan);
      return classified(async () => {
        const request = buildCreateEndpointConfigRequest({
          endpointConfigName: target.endpointConfigName,
          modelName: target.modelName,
          settings: serving.sagemaker,
          modelVersion: plan.modelVersion,
        });
        const { created } = await sm().ensureEndpointConfig(request);
        return { endpointConfigName: target.endpointConfigName, created };
      });
    },

    /**
     * CreateEndpoint, or a blue/green UpdateEndpoint (traffic shifting, bake time, auto-rollback alarms). On an
     * update that changes the instance type the variant's scalable target is released first (AWS refuses the
     * update otherwise); configureEndpointAutoscaling registers it again once InService.
     */
    applySageMakerEndpoint: async (plan: DeploymentPlan): Promise<EndpointApplyResult> => {
      const target = requireSageMaker(plan);
      return classified(async () => {
        const result = await sm().applyEndpoint({
          endpointName: target.endpointName,
          endpointConfigName: target.endpointConfigName,
          deploymentConfig: buildDeploymentConfig(serving.sagemaker),
          ...(target.previousEndpointConfigName ? { knownPreviousConfig: target.previousEndpointConfigName } : {}),
          tags: [{ Key: 'twin:endpoint', Value: plan.endpointName }],
          replaceFailed: !serving.sagemaker.keepFailedEndpoint,
          beforeUpdate: async (currentConfig) => {
            const [before, after] = await Promise.all([
              sm().instanceTypeOf(currentConfig),
              sm().instanceTypeOf(target.endpointConfigName),
            ]);
            if (before && after && before !== after && (await sm().releaseAutoscaling(target.endpointName))) {
              deps.log.info(
                { endpoint: target.endpointName, before, after },
                'autoscaling released for an instance type change',
              );
            }
          },
        });
        deps.log.info(
          { endpoint: target.endpointName, config: target.endpointConfigName, ...result },
          'endpoint create/update sent',
        );
        return result;
      });
    },

    /**
     * A new endpoint (no previous config to roll back to) failed its smoke test: delete it so it stops billing,
     * unless SAGEMAKER_ENDPOINT_KEEP_FAILED. Idempotent.
     */
    deleteFailedSageMakerEndpoint: async (plan: DeploymentPlan): Promise<{ deleted: boolean }> => {
      const target = requireSageMaker(plan);
      if (serving.sagemaker.keepFailedEndpoint) return { deleted: false };
      return classified(async () => {
        const deleted = await sm().deleteEndpoint(target.endpointName);
        deps.log.warn({ endpoint: target.endpointName, deleted }, 'endpoint deleted after its first smoke test failed');
        return { deleted };
      });
    },

    /** Heartbeats DescribeEndpoint until InService on the config (or Failed / rolled back by SageMaker's alarms). */
    waitForSageMakerEndpoint: async (input: {
      endpointName: string;
      endpointConfigName: string;
    }): Promise<{ status: 'InService' }> => waitForEndpoint(input.endpointName, input.endpointConfigName),

    /** RegisterScalableTarget (min/max) + PutScalingPolicy (target tracking on invocations per instance). */
    configureEndpointAutoscaling: async (
      plan: DeploymentPlan,
    ): Promise<{ resourceId?: string; policyArn?: string; skipped?: true }> => {
      const target = requireSageMaker(plan);
      if (!serving.sagemaker.autoscaling.enabled) return { skipped: true };
      return classified(() => sm().configureAutoscaling(target.endpointName, serving.sagemaker.autoscaling));
    },

    /** One chat-template prompt through the endpoint (InvokeEndpoint, or the local server's /v1/chat/completions). */
    smokeTestEndpoint: async (input: { plan: DeploymentPlan; url?: string }): Promise<SmokeTestResult> => {
      const { plan } = input;
      const { prompt, maxTokens, timeoutSeconds } = serving.smoke;
      const result = await withHeartbeat(() =>
        plan.backend === 'sagemaker'
          ? sm().smokeTest(requireSageMaker(plan).endpointName, prompt, maxTokens, timeoutSeconds * 1_000)
          : input.url
            ? smokeTestOpenAi({
                url: input.url,
                model: plan.modelVersion,
                prompt,
                maxTokens,
                timeoutMs: timeoutSeconds * 1_000,
              })
            : Promise.resolve<SmokeTestResult>({ ok: false, latencyMs: 0, error: 'no URL to test' }),
      );
      deps.log.info(
        { endpoint: plan.endpointName, model: plan.modelVersion, ...result },
        result.ok ? 'smoke test passed' : 'smoke test failed',
      );
      return result;
    },

    /** After a failed smoke test: UpdateEndpoint back to the previous config, then the same wait until InService. */
    rollbackSageMakerEndpoint: async (input: {
      plan: DeploymentPlan;
      toEndpointConfigName: string;
    }): Promise<{ status: 'InService' }> => {
      const target = requireSageMaker(input.plan);
      await classified(() =>
        sm().applyEndpoint({
          endpointName: target.endpointName,
          endpointConfigName: input.toEndpointConfigName,
          deploymentConfig: {
            BlueGreenUpdatePolicy: {
              TrafficRoutingConfiguration: { Type: 'ALL_AT_ONCE', WaitIntervalInSeconds: 0 },
              TerminationWaitInSeconds: 0,
            },
          },
        }),
      );
      deps.log.warn({ endpoint: target.endpointName, to: input.toEndpointConfigName }, 'rolling the endpoint back');
      return waitForEndpoint(target.endpointName, input.toEndpointConfigName);
    },

    /** Starts (or adopts) the local server of the version; resolves once it listens. */
    startLocalModelServer: async (plan: DeploymentPlan): Promise<LocalServerRef> =>
      classified(async () => {
        const ref = await withHeartbeat(() =>
          servers.start({
            endpointName: plan.endpointName,
            modelVersion: plan.modelVersion,
            artifactUri: plan.artifactUri,
          }),
        );
        deps.log.info(
          {
            endpoint: plan.endpointName,
            model: plan.modelVersion,
            url: ref.url,
            pid: ref.pid,
            reused: ref.reused ?? false,
          },
          'local model server started',
        );
        return ref;
      }),

    /** Heartbeats /health until the model is loaded; a server that died fails non-retryably with its log's tail. */
    waitForLocalModelServer: async (ref: LocalServerRef): Promise<{ loadSeconds?: number; device?: string }> => {
      const context = Context.current();
      const deadline = Date.now() + serving.startupTimeoutSeconds * 1_000;
      for (;;) {
        const health = await servers.health(ref);
        context.heartbeat(health);
        if (health.state === 'ready') {
          if (health.model !== ref.modelVersion) {
            throw badInput(`the server at ${ref.url} serves ${health.model}, not ${ref.modelVersion}`, 'ServerFailed');
          }
          return {
            ...(health.loadSeconds !== undefined ? { loadSeconds: health.loadSeconds } : {}),
            ...(health.device ? { device: health.device } : {}),
          };
        }
        if (health.state === 'dead') {
          throw badInput(`the model server for ${ref.modelVersion} failed: ${health.reason}`, 'ServerFailed', {
            dir: ref.dir,
          });
        }
        if (Date.now() > deadline) {
          await servers.stop(ref);
          throw badInput(
            `the model server for ${ref.modelVersion} was not ready within SERVING_STARTUP_TIMEOUT_S=${serving.startupTimeoutSeconds}: ${await servers.logTail(ref.dir)}`,
            'ServerStartTimeout',
          );
        }
        await heartbeatingWait(500, health);
      }
    },

    /** Stops a local server that did not make it; never the one the endpoint serves from. */
    stopLocalModelServer: async (input: {
      endpointName: string;
      server: LocalServerRef;
    }): Promise<{ stopped: boolean }> => {
      const { endpoints } = await stores();
      const current = await endpoints.get(input.endpointName);
      if (current?.status === 'InService' && current.localServer?.pid === input.server.pid) return { stopped: false };
      return { stopped: await servers.stop(input.server) };
    },

    /**
     * The new version passed: the endpoints document switches to it (readers follow within their cache time), the
     * deployment is recorded on the model version (and its SageMaker model package set Approved), and only then the
     * previous local server is stopped.
     */
    recordDeployment: async (input: {
      plan: DeploymentPlan;
      smokeTest: SmokeTestResult;
      server?: LocalServerRef;
      apply?: EndpointApplyResult;
    }): Promise<DeploymentResult> =>
      classified(async () => {
        const { plan, smokeTest, server } = input;
        const { endpoints, db } = await stores();
        const at = new Date();
        const previousConfig = input.apply?.previousEndpointConfigName ?? plan.sagemaker?.previousEndpointConfigName;
        // What serves right before the switch (another deployment may have switched since this one was planned, or
        // the endpoint moves from a local server to SageMaker): stopped after the switch, like the planned one.
        const servingBefore = (await endpoints.get(plan.endpointName))?.localServer;
        const record = await endpoints.inService({
          name: plan.endpointName,
          backend: plan.backend,
          modelVersion: plan.modelVersion,
          kind: plan.kind,
          workflowId: plan.workflowId,
          ...(server ? { url: server.url, localServer: server } : {}),
          ...(plan.sagemaker
            ? {
                sagemakerEndpointName: plan.sagemaker.endpointName,
                endpointConfigName: plan.sagemaker.endpointConfigName,
                ...(previousConfig && previousConfig !== plan.sagemaker.endpointConfigName
                  ? { previousEndpointConfigName: previousConfig }
                  : {}),
              }
            : {}),
          ...(plan.previousModelVersion ? { previousModelVersion: plan.previousModelVersion } : {}),
          now: at,
        });
        await db.collection<{ _id: string }>('models').updateOne(
          { _id: plan.modelVersion },
          {
            $set: {
              lastDeployment: {
                endpointName: plan.endpointName,
                backend: plan.backend,
                at: at.toISOString(),
                workflowId: plan.workflowId,
              },
            },
            $addToSet: { endpoints: plan.endpointName },
          },
        );
        if (plan.modelPackageArn && plan.backend === 'sagemaker') {
          await sm().approveModelPackage(
            plan.modelPackageArn,
            `deployed to ${plan.endpointName} by ${plan.workflowId}`,
          );
        }
        const replaced = new Map<number, LocalServerRef>();
        for (const previous of [plan.local?.previousServer, servingBefore]) {
          if (previous && previous.pid !== server?.pid) replaced.set(previous.pid, previous);
        }
        for (const previous of replaced.values()) {
          const stopped = await servers.stop(previous);
          deps.log.info(
            { endpoint: plan.endpointName, previous: previous.modelVersion, pid: previous.pid, stopped },
            'previous local server stopped',
          );
        }
        return {
          endpointName: plan.endpointName,
          backend: plan.backend,
          modelVersion: plan.modelVersion,
          status: 'InService' as const,
          ...(record.url ? { url: record.url } : {}),
          ...(plan.previousModelVersion ? { previousModelVersion: plan.previousModelVersion } : {}),
          smokeTest: {
            ok: smokeTest.ok,
            latencyMs: smokeTest.latencyMs,
            ...(smokeTest.sample !== undefined ? { sample: smokeTest.sample } : {}),
          },
        };
      }),

    /** The deployment failed: the document says whether the previous version still serves (InService) or nothing does (Failed). */
    recordDeploymentFailure: async (input: {
      plan: DeploymentPlan;
      reason: string;
      stillServing: boolean;
      rolledBack: boolean;
    }): Promise<void> => {
      const { endpoints } = await stores();
      await endpoints.failed({
        name: input.plan.endpointName,
        modelVersion: input.plan.modelVersion,
        kind: input.plan.kind,
        workflowId: input.plan.workflowId,
        reason: input.reason,
        stillServing: input.stillServing,
        rolledBack: input.rolledBack,
      });
      deps.log.warn(
        { endpoint: input.plan.endpointName, model: input.plan.modelVersion, ...input, plan: undefined },
        'deployment failed',
      );
    },
  };
}

export type ServingActivities = ReturnType<typeof createServingActivities>;
