/** The SageMaker requests deployModel builds, and the smoke-test response parsing (pure functions). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseSettings } from '../../src/config';
import {
  buildCreateModelRequest,
  buildDeploymentConfig,
  containerEnvironment,
  generatedText,
  judgeEndpointState,
  LMI_IMAGE_TAG,
  sageMakerResourceNames,
  servingImage,
  smokeRequestBody,
} from '../../src/serving/sagemaker';
import { INFERENCE_IMAGE_TAG } from '../../src/training/sagemaker';

const settingsWith = (env: Record<string, string> = {}) => parseSettings({ AWS_REGION: 'eu-west-1', ...env });

describe('SageMaker serving requests', () => {
  test('resource names: deterministic, ≤ 63 characters, new per workflow, per version and per endpoint setting', () => {
    const settings = settingsWith();
    const input = { endpointName: 'llm-twin', modelVersion: 'twin-sft-a', workflowId: 'deploy-1' };
    const names = sageMakerResourceNames(input, settings);
    assert.deepEqual(sageMakerResourceNames(input, settings), names, 'a retry finds the same names');
    assert.match(names.modelName, /^llm-twin-m-[0-9a-f]{10}$/);
    assert.match(names.endpointConfigName, /^llm-twin-c-[0-9a-f]{10}$/);
    assert.notEqual(
      sageMakerResourceNames({ ...input, workflowId: 'deploy-2' }, settings).endpointConfigName,
      names.endpointConfigName,
    );
    assert.notEqual(
      sageMakerResourceNames({ ...input, modelVersion: 'twin-sft-b' }, settings).modelName,
      names.modelName,
    );
    const bigger = sageMakerResourceNames(input, settingsWith({ SAGEMAKER_ENDPOINT_INSTANCE_TYPE: 'ml.g6e.12xlarge' }));
    assert.equal(bigger.modelName, names.modelName, 'the model does not depend on the instance type');
    assert.notEqual(bigger.endpointConfigName, names.endpointConfigName);
    const long = sageMakerResourceNames({ ...input, endpointName: 'a'.repeat(63) }, settings);
    assert.ok(long.modelName.length <= 63 && long.endpointConfigName.length <= 63, long.endpointConfigName);
  });

  test('containers: TGI by default, LMI (vLLM rolling batch) on request, an explicit image wins', () => {
    const tgi = settingsWith();
    assert.equal(servingImage(tgi), `763104351884.dkr.ecr.eu-west-1.amazonaws.com/${INFERENCE_IMAGE_TAG}`);
    assert.deepEqual(containerEnvironment(tgi.serving.sagemaker), {
      HF_MODEL_ID: '/opt/ml/model',
      SM_NUM_GPUS: '1',
      MAX_INPUT_TOKENS: '2048',
      MAX_INPUT_LENGTH: '2048',
      MAX_TOTAL_TOKENS: '4096',
      MAX_BATCH_TOTAL_TOKENS: '8192',
      MESSAGES_API_ENABLED: 'true',
    });
    const lmi = settingsWith({ SAGEMAKER_ENDPOINT_CONTAINER: 'lmi', SAGEMAKER_ENDPOINT_NUM_GPUS: '4' });
    assert.equal(servingImage(lmi), `763104351884.dkr.ecr.eu-west-1.amazonaws.com/${LMI_IMAGE_TAG}`);
    assert.equal(containerEnvironment(lmi.serving.sagemaker).OPTION_ROLLING_BATCH, 'vllm');
    assert.equal(containerEnvironment(lmi.serving.sagemaker).TENSOR_PARALLEL_DEGREE, '4');
    assert.equal(servingImage(settingsWith({ SAGEMAKER_ENDPOINT_IMAGE_URI: 'acct.dkr.ecr/x:1' })), 'acct.dkr.ecr/x:1');
  });

  test('model data: a model.tar.gz is ModelDataUrl, an uncompressed S3 prefix is ModelDataSource', () => {
    const base = { modelName: 'm', imageUri: 'i', roleArn: 'r', environment: {}, modelVersion: 'v', endpointName: 'e' };
    const tar = buildCreateModelRequest({ ...base, modelDataUrl: 's3://b/k/model.tar.gz' });
    assert.equal(tar.PrimaryContainer?.ModelDataUrl, 's3://b/k/model.tar.gz');
    assert.equal(tar.PrimaryContainer?.ModelDataSource, undefined);
    const prefix = buildCreateModelRequest({ ...base, modelDataUrl: 's3://b/k/model' });
    assert.equal(prefix.PrimaryContainer?.ModelDataUrl, undefined);
    assert.deepEqual(prefix.PrimaryContainer?.ModelDataSource?.S3DataSource, {
      S3Uri: 's3://b/k/model/',
      S3DataType: 'S3Prefix',
      CompressionType: 'None',
    });
  });

  test('deployment config: all at once by default, no alarms block without alarms; linear steps', () => {
    const plain = buildDeploymentConfig(settingsWith().serving.sagemaker);
    assert.deepEqual(plain.BlueGreenUpdatePolicy?.TrafficRoutingConfiguration, {
      Type: 'ALL_AT_ONCE',
      WaitIntervalInSeconds: 0,
    });
    assert.equal(plain.BlueGreenUpdatePolicy?.TerminationWaitInSeconds, 300);
    assert.equal(plain.AutoRollbackConfiguration, undefined);
    const linear = buildDeploymentConfig(
      settingsWith({
        SAGEMAKER_ENDPOINT_TRAFFIC_ROUTING: 'LINEAR',
        SAGEMAKER_ENDPOINT_CANARY_PERCENT: '25',
        SAGEMAKER_ENDPOINT_ROLLBACK_ALARMS: 'a',
      }).serving.sagemaker,
    );
    assert.deepEqual(linear.BlueGreenUpdatePolicy?.TrafficRoutingConfiguration, {
      Type: 'LINEAR',
      WaitIntervalInSeconds: 300,
      LinearStepSize: { Type: 'CAPACITY_PERCENT', Value: 25 },
    });
    // 4 steps of 300 s + bake 300 + startup 900 + 900 margin.
    assert.equal(linear.BlueGreenUpdatePolicy?.MaximumExecutionTimeoutInSeconds, 3300);
    assert.deepEqual(linear.AutoRollbackConfiguration, { Alarms: [{ AlarmName: 'a' }] });
  });

  test('smoke request in the chat template; TGI and LMI responses; endpoint states', () => {
    const body = JSON.parse(smokeRequestBody('Hi there', 8)) as { inputs: string; parameters: Record<string, unknown> };
    assert.equal(body.inputs, '### Instruction:\nHi there\n\n### Response:\n');
    assert.deepEqual(body.parameters, { max_new_tokens: 8, do_sample: false, return_full_text: false });
    assert.equal(generatedText('[{"generated_text": "tgi"}]'), 'tgi');
    assert.equal(generatedText('{"generated_text": "lmi"}'), 'lmi');
    assert.equal(generatedText('{"error": "x"}'), undefined);
    assert.equal(generatedText('not json'), undefined);
    assert.deepEqual(
      judgeEndpointState({ status: 'Updating', endpointConfigName: 'old', pendingEndpointConfigName: 'new' }, 'new'),
      { done: false },
    );
    assert.deepEqual(judgeEndpointState({ status: 'InService', endpointConfigName: 'new' }, 'new'), {
      done: true,
      ok: true,
    });
    const back = judgeEndpointState({ status: 'InService', endpointConfigName: 'old', failureReason: 'alarm' }, 'new');
    assert.equal(back.done && !back.ok && back.rolledBack, true);
    const failed = judgeEndpointState({ status: 'Failed', failureReason: 'no capacity' }, 'new');
    assert.equal(failed.done && !failed.ok && !failed.rolledBack && failed.reason, 'endpoint Failed: no capacity');
  });
});
