/**
 * The SageMaker backend's wire calls against moto (a real AWS API server): the content-hashed sourcedir.tar.gz and
 * data in S3, the CreateTrainingJob request read back with DescribeTrainingJob, the adopt-on-retry start, and the
 * model registry entries (Mongo + a SageMaker Model Package in its group).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  DescribeModelPackageCommand,
  DescribeModelPackageGroupCommand,
  DescribeTrainingJobCommand,
  ListModelPackagesCommand,
  ListTrainingJobsCommand,
  SageMakerClient,
} from '@aws-sdk/client-sagemaker';
import { MockActivityEnvironment } from '@temporalio/testing';
import { MongoClient } from 'mongodb';
import { createTrainingActivities } from '../../activities/training';
import { parseSettings, type Settings } from '../../src/config';
import { checksumOf } from '../../src/domain/artifacts';
import { ArtifactRegistry } from '../../src/infra/artifact-registry';
import { createDependencies, type Dependencies } from '../../src/infra/dependencies';
import { createLogger } from '../../src/infra/logger';
import { prepareTraining, type PreparedTraining } from '../../src/training/prepare';
import { ModelRegistry, registerModelPackage } from '../../src/training/registry';
import {
  buildCreateTrainingJobRequest,
  redactRequest,
  SageMakerTrainingBackend,
  sageMakerTrainingConfig,
  TRAINING_IMAGE_TAG,
} from '../../src/training/sagemaker';
import { packageSourceDir, sourceDirKey } from '../../src/training/sourcedir';
import { testEnv, uniqueName } from '../support/env';
import { fixtureVersion, runIn } from './helpers';

const database = uniqueName('training_moto');
const bucket = uniqueName('twin-training').toLowerCase().replace(/_/g, '-');
const roleArn = 'arn:aws:iam::123456789012:role/twin-sagemaker-execution';

async function s3Text(s3: S3Client, uri: string): Promise<Buffer> {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  assert.ok(match, uri);
  const object = await s3.send(new GetObjectCommand({ Bucket: match[1], Key: match[2] }));
  return Buffer.from(await object.Body!.transformToByteArray());
}

describe('SageMaker training backend against moto', () => {
  let settings: Settings;
  let deps: Dependencies;
  let mongo: MongoClient;
  let s3: S3Client;
  let sagemaker: SageMakerClient;
  let datasetId: string;
  let prepared: PreparedTraining;

  before(async () => {
    settings = parseSettings({
      ...process.env,
      MONGODB_DATABASE: database,
      ARTIFACT_STORE: 'local',
      ARTIFACT_DIR: path.join(testEnv.tmpDir, database, 'artifacts'),
      SAGEMAKER_EXECUTION_ROLE_ARN: roleArn,
      SAGEMAKER_TRAINING_BUCKET: bucket,
      SAGEMAKER_TRAINING_SPOT: 'true',
      SAGEMAKER_MODEL_PACKAGE_GROUP: 'llm-twin-test',
      HF_TOKEN: 'hf_test_token_never_in_history',
      AWS_ENDPOINT_URL: testEnv.awsEndpoint,
    });
    deps = createDependencies(settings, createLogger({ level: 'silent' }));
    mongo = await MongoClient.connect(testEnv.mongoUri);
    s3 = new S3Client({ region: settings.aws.region, endpoint: testEnv.awsEndpoint, forcePathStyle: true });
    sagemaker = new SageMakerClient({ region: settings.aws.region, endpoint: testEnv.awsEndpoint });
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const folder = fixtureVersion('instruction');
    const version = path.basename(folder);
    const dataset = await new ArtifactRegistry((await deps.warehouse()).db).record({
      kind: 'instruction-dataset',
      uri: `file://${folder}/`,
      count: 23,
      checksum: checksumOf({ fixture: version }),
      producer: { workflowId: 'fixture', runId: 'fixture', activity: 'fixture', attempt: 1 },
      inputs: [],
      metadata: { version, datasetType: 'instruction' },
    });
    datasetId = dataset.id;
  });

  after(async () => {
    await mongo.db(database).dropDatabase();
    await mongo.close();
    await deps.close();
  });

  test('prepare uploads the content-hashed job code and the dataset splits to S3', async () => {
    prepared = await prepareTraining(
      { dataset: datasetId, mode: 'sft', backend: 'sagemaker', hyperparameters: { lora_r: 16 } },
      {
        workflowId: 'trainModel-moto-1',
        settings,
        artifacts: await deps.artifactRegistry(),
        models: new ModelRegistry((await deps.warehouse()).db),
        s3: () => s3,
      },
    );
    const code = await packageSourceDir();
    assert.deepEqual(prepared.spec.sourceDir, {
      uri: `s3://${bucket}/${sourceDirKey(code.checksum)}`,
      checksum: code.checksum,
    });
    const uploaded = await s3Text(s3, prepared.spec.sourceDir?.uri ?? '');
    assert.equal(
      `sha256:${createHash('sha256').update(uploaded).digest('hex')}`,
      code.checksum,
      'the object is the package it is named after',
    );

    const folder = fixtureVersion('instruction');
    for (const split of ['train', 'test'] as const) {
      const uri = prepared.spec.data[split]!;
      const local = readFileSync(path.join(folder, `${split}.jsonl`));
      assert.match(
        uri,
        new RegExp(
          `^s3://${bucket}/training/data/${createHash('sha256').update(local).digest('hex').slice(0, 16)}/${split}\\.jsonl$`,
        ),
      );
      assert.deepEqual(await s3Text(s3, uri), local);
    }
    assert.equal(prepared.datasetVersion, path.basename(folder));
    assert.equal(prepared.spec.baseModel, 'meta-llama/Llama-3.1-8B');
    assert.equal(prepared.spec.hyperparameters.lora_r, 16);
    assert.equal(prepared.modelVersion, prepared.spec.jobName);
  });

  test('CreateTrainingJob: the request read back with DescribeTrainingJob; a second start adopts the job', async () => {
    const config = sageMakerTrainingConfig(settings);
    assert.match(
      config.imageUri,
      new RegExp(
        `^763104351884\\.dkr\\.ecr\\.us-east-1\\.amazonaws\\.com/${TRAINING_IMAGE_TAG.replace(/\./g, '\\.')}$`,
      ),
    );
    const backend = new SageMakerTrainingBackend(sagemaker, config);
    const request = buildCreateTrainingJobRequest(prepared.spec, config);
    assert.equal(request.Environment?.HF_TOKEN, 'hf_test_token_never_in_history');
    assert.equal(redactRequest(request).Environment?.HF_TOKEN, '[redacted]');
    assert.ok(
      !JSON.stringify(prepared).includes('hf_test_token'),
      'the token is not in the prepared spec (workflow history)',
    );

    const ref = await backend.start(prepared.spec);
    assert.equal(ref.jobName, prepared.spec.jobName);
    assert.match(ref.arn ?? '', /:training-job\//);
    assert.ok(!JSON.stringify(ref).includes('hf_test_token'));
    const described = await sagemaker.send(new DescribeTrainingJobCommand({ TrainingJobName: ref.jobName }));
    assert.deepEqual(described.HyperParameters, request.HyperParameters);
    assert.equal(described.HyperParameters?.sagemaker_program, '"train.py"');
    assert.equal(described.HyperParameters?.sagemaker_submit_directory, JSON.stringify(prepared.spec.sourceDir!.uri));
    assert.equal(described.HyperParameters?.mode, '"sft"');
    assert.equal(described.HyperParameters?.lora_r, '16');
    assert.equal(
      described.HyperParameters?.lora_target_modules,
      '"q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"',
    );
    assert.deepEqual(described.InputDataConfig, request.InputDataConfig);
    assert.deepEqual(
      described.InputDataConfig?.map((c) => [c.ChannelName, c.DataSource?.S3DataSource?.S3Uri]),
      [
        ['train', prepared.spec.data.train],
        ['test', prepared.spec.data.test],
      ],
    );
    assert.deepEqual(described.OutputDataConfig, { S3OutputPath: `s3://${bucket}/training/jobs` });
    assert.deepEqual(described.ResourceConfig, {
      InstanceType: 'ml.g6e.2xlarge',
      InstanceCount: 1,
      VolumeSizeInGB: 100,
    });
    assert.deepEqual(described.StoppingCondition, { MaxRuntimeInSeconds: 86_400, MaxWaitTimeInSeconds: 172_800 });
    assert.equal(described.EnableManagedSpotTraining, true);
    assert.deepEqual(described.CheckpointConfig, {
      S3Uri: `s3://${bucket}/training/checkpoints/${ref.jobName}`,
      LocalPath: '/opt/ml/checkpoints',
    });
    assert.equal(described.RoleArn, roleArn);
    assert.equal(described.AlgorithmSpecification?.TrainingImage, config.imageUri);
    assert.equal(described.AlgorithmSpecification?.TrainingInputMode, 'File');
    // moto replaces MetricDefinitions with its own sample and does not store Environment (see docs/training.md).

    const again = await backend.start(prepared.spec);
    assert.equal(again.arn, ref.arn);
    const listed = await sagemaker.send(new ListTrainingJobsCommand({ NameContains: ref.jobName }));
    assert.equal(listed.TrainingJobSummaries?.length, 1);

    const state = await backend.poll(ref);
    assert.equal(state.status, 'Completed'); // moto completes jobs at once
    assert.equal(state.modelArtifactUri, `s3://${bucket}/training/jobs/${ref.jobName}/output/model.tar.gz`);
    await backend.stop(ref); // an ended job is left alone: no StopTrainingJob call (moto does not implement it)
  });

  test('registering the version: Mongo entry + ArtifactRef + model package (PendingManualApproval), idempotent', async () => {
    const activities = createTrainingActivities(deps, { sagemakerClient: sagemaker, s3Client: s3 });
    const job = { backend: 'sagemaker' as const, jobName: prepared.spec.jobName };
    const outcome = {
      status: 'Completed' as const,
      metrics: { train_loss: 1.5, eval_loss: 1.7 },
      modelArtifactUri: `s3://${bucket}/training/jobs/${job.jobName}/output/model.tar.gz`,
      secondaryStatus: 'Completed',
    };
    const env = new MockActivityEnvironment({
      workflowExecution: { workflowId: 'trainModel-moto-1', runId: 'run-1' },
      activityType: 'registerModelVersion',
    });
    const ref = await runIn(env, () => activities.registerModelVersion({ prepared, job, outcome }));
    assert.equal(ref.modelVersion, prepared.modelVersion);
    assert.equal(ref.status, 'PendingManualApproval');
    assert.equal(ref.artifact.kind, 'model');
    assert.deepEqual(ref.artifact.inputs, [datasetId]);
    assert.match(ref.modelPackageArn ?? '', /:model-package\/llm-twin-test\/1$/);

    const pkg = await sagemaker.send(new DescribeModelPackageCommand({ ModelPackageName: ref.modelPackageArn }));
    assert.equal(pkg.ModelApprovalStatus, 'PendingManualApproval');
    assert.equal(pkg.ModelPackageGroupName, 'llm-twin-test');
    assert.equal(pkg.InferenceSpecification?.Containers?.[0]?.ModelDataUrl, outcome.modelArtifactUri);
    assert.equal(pkg.CustomerMetadataProperties?.modelVersion, prepared.modelVersion);
    assert.equal(pkg.CustomerMetadataProperties?.datasetArtifactId, datasetId);
    assert.equal(pkg.CustomerMetadataProperties?.train_loss, '1.5');
    const group = await sagemaker.send(
      new DescribeModelPackageGroupCommand({ ModelPackageGroupName: 'llm-twin-test' }),
    );
    assert.ok(group.ModelPackageGroupArn);

    // A retried registration: same record, same package, nothing new.
    const retried = await runIn(
      new MockActivityEnvironment({
        workflowExecution: { workflowId: 'trainModel-moto-1', runId: 'run-1' },
        attempt: 2,
      }),
      () => activities.registerModelVersion({ prepared, job, outcome }),
    );
    assert.equal(retried.modelPackageArn, ref.modelPackageArn);
    assert.equal(retried.artifact.id, ref.artifact.id);
    const direct = await registerModelPackage(sagemaker, {
      groupName: 'llm-twin-test',
      model: { ...(await new ModelRegistry(mongo.db(database)).get(prepared.modelVersion))! },
      inferenceImageUri: 'unused',
    });
    assert.equal(direct, ref.modelPackageArn);
    const packages = await sagemaker.send(new ListModelPackagesCommand({ ModelPackageGroupName: 'llm-twin-test' }));
    assert.equal(packages.ModelPackageSummaryList?.length, 1);
    const docs = await mongo.db(database).collection('models').find({}).toArray();
    assert.equal(docs.length, 1);
    assert.equal(docs[0]?.modelPackageArn, ref.modelPackageArn);
    assert.equal(docs[0]?.status, 'PendingManualApproval');
    assert.equal(docs[0]?.jobName, prepared.spec.jobName);
    assert.deepEqual(docs[0]?.metrics, { train_loss: 1.5, eval_loss: 1.7 });
    assert.equal(await mongo.db(database).collection('artifacts').countDocuments({ kind: 'model' }), 1);
  });
});
