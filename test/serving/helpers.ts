import path from 'node:path';
import Long from 'long';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { Db } from 'mongodb';
import { createServingActivities } from '../../activities/serving';
import { SEARCH_ATTRIBUTE_DEFINITIONS } from '../../src/domain/search-attributes';
import type { Dependencies } from '../../src/infra/dependencies';
import { ModelRegistry, type ModelApprovalStatus, type ModelVersion } from '../../src/training/registry';
import { testEnv, uniqueName } from '../support/env';

/**
 * A namespace of its own on the shared dev server (with the project's search attributes), so this file's in-process
 * workers — whose activities use scripted or moto-bound AWS clients — never take twin-ml tasks of other test files'
 * worker processes, and theirs never take ours.
 */
export async function isolatedNamespace(prefix: string): Promise<string> {
  const namespace = uniqueName(prefix).replace(/_/g, '-');
  const connection = await Connection.connect({ address: testEnv.temporalAddress });
  try {
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: { seconds: Long.fromNumber(86_400) },
    });
    const types = temporal.api.enums.v1.IndexedValueType;
    const searchAttributes: Record<string, temporal.api.enums.v1.IndexedValueType> = {};
    for (const [name, type] of Object.entries(SEARCH_ATTRIBUTE_DEFINITIONS)) {
      searchAttributes[name] =
        type === 'KeywordList' ? types.INDEXED_VALUE_TYPE_KEYWORD_LIST : types.INDEXED_VALUE_TYPE_KEYWORD;
    }
    for (let attempt = 0; ; attempt++) {
      try {
        await connection.operatorService.addSearchAttributes({ namespace, searchAttributes });
        break;
      } catch (error) {
        if (attempt > 50) throw error; // the namespace becomes visible to the operator service after a moment
        await sleep(200);
      }
    }
    return namespace;
  } finally {
    await connection.close();
  }
}

export interface InProcessWorkers {
  client: Client;
  namespace: string;
  stop(): Promise<void>;
}

/** Workflows (twin-pipelines) and the serving activities (twin-ml) in this process, in an isolated namespace. */
export async function startServingWorkers(
  deps: Dependencies,
  options: Parameters<typeof createServingActivities>[1],
): Promise<InProcessWorkers> {
  try {
    // The expected failures (refused models, failed endpoints) would fill the output with the SDK's warnings.
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // installed before in this process
  }
  const namespace = await isolatedNamespace('serving');
  const connection = await NativeConnection.connect({ address: testEnv.temporalAddress });
  const bundle = testEnv.workflowBundle;
  const pipelines = await Worker.create({
    connection,
    namespace,
    taskQueue: 'twin-pipelines',
    ...(bundle
      ? { workflowBundle: { codePath: bundle } }
      : { workflowsPath: path.resolve(__dirname, '../../workflows/index.ts') }),
  });
  const ml = await Worker.create({
    connection,
    namespace,
    taskQueue: 'twin-ml',
    activities: createServingActivities(deps, options),
  });
  const running = Promise.all([pipelines.run(), ml.run()]);
  const clientConnection = await Connection.connect({ address: testEnv.temporalAddress });
  const client = new Client({ connection: clientConnection, namespace });
  return {
    client,
    namespace,
    async stop() {
      pipelines.shutdown();
      ml.shutdown();
      await running;
      await clientConnection.close();
      await connection.close();
    },
  };
}

/** A model version in the registry with the given approval status (what trainModel + evaluateModel leave). */
export async function registerModel(
  db: Db,
  input: {
    version: string;
    artifactUri: string;
    status: ModelApprovalStatus;
    backend?: 'local' | 'sagemaker';
    modelPackageArn?: string;
  },
): Promise<ModelVersion> {
  const registry = new ModelRegistry(db);
  await registry.register({
    version: input.version,
    mode: 'sft',
    baseModel: 'tiny-llama',
    datasetArtifactId: 'instruction-dataset:test',
    datasetVersion: 'test',
    hyperparameters: {},
    backend: input.backend ?? (input.artifactUri.startsWith('s3://') ? 'sagemaker' : 'local'),
    jobName: input.version,
    metrics: { train_loss: 1 },
    artifactUri: input.artifactUri,
    artifactId: `model:${input.version}`,
    chatTemplateChecksum: 'sha256:test',
    workflowId: 'test',
    ...(input.modelPackageArn ? { modelPackageArn: input.modelPackageArn } : {}),
  });
  if (input.status !== 'PendingManualApproval') await registry.setStatus(input.version, input.status);
  const stored = await registry.get(input.version);
  if (!stored) throw new Error('registered model vanished');
  return stored;
}
