/**
 * The remote generation backends and the SageMaker side of the gate, against real protocol servers:
 * - OpenAI-compatible: the scripted server (one user turn per sample, a 503 retried, resume from the answers file);
 * - SageMaker: moto's InvokeEndpoint (scripted TGI responses) for a model version trained on SageMaker, judged by the
 *   scripted judge, recorded with its model package in moto's SageMaker Model Registry → Approved, then Rejected by a
 *   stricter threshold. The request body a TGI container gets is checked on a recording runtime client.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DescribeModelPackageCommand, SageMakerClient } from '@aws-sdk/client-sagemaker';
import type { SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import { MongoClient } from 'mongodb';
import { parseSettings, type Settings } from '../../src/config';
import { checksumOf, type ArtifactRef } from '../../src/domain/artifacts';
import { generateWithOpenAi, generateWithSageMaker, parseEndpointResponse } from '../../src/evaluation/generation';
import {
  generateAnswers,
  judgeAnswers,
  prepareEvaluation,
  recordEvaluation,
  type EvaluationContext,
} from '../../src/evaluation/pipeline';
import type { EvaluationThresholds } from '../../src/evaluation/types';
import { ArtifactRegistry } from '../../src/infra/artifact-registry';
import { LocalArtifactStore, createS3Client } from '../../src/infra/artifact-store';
import { LlmClient } from '../../src/infra/llm';
import { renderPrompt } from '../../src/training/chat-template';
import { ModelRegistry, registerModelPackage } from '../../src/training/registry';
import { testEnv, uniqueName } from '../support/env';
import { reply, ScriptedLlmServer, userMessage } from '../support/scripted-llm-server';

const database = uniqueName('evaluation_remote');
const root = () => path.join(testEnv.tmpDir, database);
const samples = [
  { id: 's1', instruction: 'What is LoRA?', reference: 'Low-rank adapters.' },
  { id: 's2', instruction: 'Why a fixed test split?', reference: 'To compare models.' },
  { id: 's3', instruction: 'What is DPO?', reference: 'Preference optimisation.' },
];

describe('remote generators and the SageMaker model package status', () => {
  let server: ScriptedLlmServer;
  let mongo: MongoClient;
  let settings: Settings;
  const flaky = new Set<string>();

  before(async () => {
    await mkdir(root(), { recursive: true });
    server = await new ScriptedLlmServer((request) => {
      if (request.body.response_format?.json_schema?.name === 'judgement') {
        return reply.json({ accuracy: { analysis: 'Right.', score: 3 }, style: { analysis: 'Clear.', score: 2 } });
      }
      const question = userMessage(request);
      if (question === 'Why a fixed test split?' && !flaky.has(question)) {
        flaky.add(question);
        return reply.error(503, 'warming up');
      }
      return reply.text(`Answer to: ${question}`, { prompt_tokens: 10, completion_tokens: 4 });
    }).start();
    mongo = await MongoClient.connect(testEnv.mongoUri);
    settings = parseSettings({
      ...process.env,
      MONGODB_URI: testEnv.mongoUri,
      MONGODB_DATABASE: database,
      AWS_ENDPOINT_URL: testEnv.awsEndpoint,
      ARTIFACT_STORE: 'local',
      ARTIFACT_DIR: path.join(root(), 'artifacts'),
      EVAL_DIR: path.join(root(), 'evaluation'),
      EVAL_SAGEMAKER_ENDPOINT: `twin-eval-${process.pid}`,
      EVAL_JUDGE_BASE_URL: server.url,
      EVAL_JUDGE_MODEL: 'scripted-judge',
      EVAL_MIN_ACCURACY: '2',
      EVAL_MIN_STYLE: '2',
      EVAL_GENERATION_CONCURRENCY: '1',
    });
  });

  after(async () => {
    await server.close();
    await mongo.db(database).dropDatabase();
    await mongo.close();
  });

  test('OpenAI-compatible: one user turn per sample, a 503 retried, answered samples never asked again', async () => {
    const answersFile = path.join(root(), 'openai', 'answers.jsonl');
    await mkdir(path.dirname(answersFile), { recursive: true });
    writeFileSync(answersFile, `${JSON.stringify({ id: 's1', answer: 'stored before a crash' })}\n{"id": "s3", "answ`);
    const before = server.requests.length;
    const answers = await generateWithOpenAi(
      samples,
      { maxNewTokens: 64, temperature: 0 },
      { baseUrl: server.url, model: 'twin-sft-x', answersFile, concurrency: 2 },
    );
    assert.deepEqual(
      answers.map((a) => [a.id, a.answer, a.outputTokens]),
      [
        ['s1', 'stored before a crash', undefined],
        ['s2', 'Answer to: Why a fixed test split?', 4],
        ['s3', 'Answer to: What is DPO?', 4],
      ],
    );
    const sent = server.requests.slice(before);
    assert.equal(sent.length, 3, 's2 twice (503, then the answer), s3 once, s1 never');
    for (const request of sent) {
      assert.equal(request.body.model, 'twin-sft-x');
      assert.deepEqual(
        request.body.messages.map((m) => m.role),
        ['user'],
      );
      assert.equal(request.body.max_tokens, 64);
      assert.equal(request.body.temperature, 0);
      assert.equal(request.body.response_format, undefined);
    }
    const lines = readFileSync(answersFile, 'utf8').trim().split('\n');
    assert.equal(lines.filter((l) => l.includes('"id":"s2"')).length, 1);
  });

  test('SageMaker: the TGI request carries the prompt in the training chat template', async () => {
    const sent: unknown[] = [];
    const runtime = {
      send: (command: { input: { Body: Uint8Array; EndpointName: string } }) => {
        sent.push({
          endpoint: command.input.EndpointName,
          body: JSON.parse(new TextDecoder().decode(command.input.Body)) as unknown,
        });
        return Promise.resolve({
          Body: new TextEncoder().encode(
            JSON.stringify([
              { generated_text: ' Adapters. ', details: { generated_tokens: 2, finish_reason: 'eos_token' } },
            ]),
          ),
        });
      },
    } as unknown as SageMakerRuntimeClient;
    const answers = await generateWithSageMaker(
      samples.slice(0, 1),
      { maxNewTokens: 32, temperature: 0 },
      {
        endpointName: 'ep',
        runtime,
        answersFile: path.join(root(), 'recorded', 'answers.jsonl'),
        concurrency: 1,
      },
    );
    assert.deepEqual(answers, [{ id: 's1', answer: 'Adapters.', outputTokens: 2, finishReason: 'eos_token' }]);
    assert.deepEqual(sent, [
      {
        endpoint: 'ep',
        body: {
          inputs: '### Instruction:\nWhat is LoRA?\n\n### Response:\n',
          parameters: { max_new_tokens: 32, do_sample: false, return_full_text: false, details: true },
        },
      },
    ]);
    assert.equal(renderPrompt('What is LoRA?'), '### Instruction:\nWhat is LoRA?\n\n### Response:\n');
    assert.deepEqual(parseEndpointResponse('{"generated_text": "x"}'), { answer: 'x' });
    assert.deepEqual(parseEndpointResponse('{"outputs": ["y"]}'), { answer: 'y' });
    assert.throws(() => parseEndpointResponse('[{"text": 1}]'), /unexpected endpoint response/);
  });

  test('a SageMaker-trained model: answers from the endpoint (moto), judged, model package Approved, then Rejected', async () => {
    const db = mongo.db(database);
    const artifacts = new ArtifactRegistry(db);
    const models = new ModelRegistry(db);
    const store = new LocalArtifactStore(path.join(root(), 'artifacts'));
    const producer = { workflowId: 'test', runId: 'test', activity: 'test', attempt: 1 };
    const folder = path.join(root(), 'dataset');
    await mkdir(folder, { recursive: true });
    writeFileSync(
      path.join(folder, 'test.jsonl'),
      samples.map((s) => `${JSON.stringify({ instruction: s.instruction, output: s.reference })}\n`).join(''),
    );
    const dataset: ArtifactRef = await artifacts.record({
      kind: 'instruction-dataset',
      uri: `file://${folder}`,
      count: 3,
      checksum: checksumOf(database),
      producer,
      inputs: [],
      metadata: { version: 'v1' },
    });
    const sagemaker = new SageMakerClient({ region: settings.aws.region, endpoint: testEnv.awsEndpoint });
    const version = `twin-sft-moto-${process.pid}`;
    const modelInfo = {
      version,
      mode: 'sft' as const,
      jobName: version,
      datasetArtifactId: dataset.id,
      datasetVersion: 'v1',
      baseModel: 'meta-llama/Llama-3.1-8B',
      artifactUri: `s3://twin-models/training/jobs/${version}/output/model.tar.gz`,
      metrics: { train_loss: 1.2 },
    };
    const packageArn = await registerModelPackage(sagemaker, {
      groupName: `twin-eval-${process.pid}`,
      model: modelInfo,
      inferenceImageUri: 'example.com/tgi:latest',
    });
    const modelArtifact = await artifacts.record({
      kind: 'model',
      uri: modelInfo.artifactUri,
      count: 1,
      checksum: checksumOf(version),
      producer,
      inputs: [dataset.id],
      metadata: {},
    });
    await models.register({
      ...modelInfo,
      hyperparameters: {},
      backend: 'sagemaker',
      artifactId: modelArtifact.id,
      chatTemplateChecksum: 'x',
      workflowId: 'test',
      modelPackageArn: packageArn,
    });

    // moto returns the queued results in order to new request bodies (concurrency 1 keeps the order).
    const queued = await fetch(`${testEnv.awsEndpoint}/moto-api/static/sagemaker/endpoint-results`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        region: settings.aws.region,
        results: samples.map((s) => ({
          Body: JSON.stringify([{ generated_text: `TGI says: ${s.reference}` }]),
          ContentType: 'application/json',
        })),
      }),
    });
    assert.equal(queued.status, 201, await queued.text());

    const ctx: EvaluationContext = {
      settings,
      store,
      artifacts,
      models,
      s3: () => createS3Client(settings.aws),
      db: () => Promise.resolve(db),
    };
    const llm = new LlmClient({ model: 'scripted-judge', baseUrl: server.url, apiKey: 'x' });
    const evaluate = async (thresholds: Partial<EvaluationThresholds>) => {
      const prepared = await prepareEvaluation({ model: version, rag: false, thresholds }, ctx);
      assert.deepEqual(prepared.candidate.generator, {
        backend: 'sagemaker',
        endpointName: `twin-eval-${process.pid}`,
      });
      const generation = await generateAnswers(
        { target: prepared.candidate, samplesKey: prepared.samplesKey, params: prepared.params },
        ctx,
      );
      const judge = await judgeAnswers(
        { target: prepared.candidate, samplesKey: prepared.samplesKey, judgeKey: prepared.judge.key },
        { ...ctx, llm },
      );
      return {
        generation,
        result: await recordEvaluation(
          { prepared, candidate: { generation, judge }, producer },
          { ...ctx, sagemaker: () => sagemaker },
        ),
      };
    };

    const first = await evaluate({});
    assert.equal(first.generation.reused, false);
    const answers = readFileSync(new URL(store.uriOf(first.generation.answersKey)), 'utf8');
    assert.deepEqual(
      answers
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { answer: string }).answer),
      samples.map((s) => `TGI says: ${s.reference}`),
    );
    assert.equal(first.result.passed, true);
    assert.deepEqual(first.result.scores, { accuracy: 3, style: 2, samples: 3, judgeFailures: 0 });
    const approved = await sagemaker.send(new DescribeModelPackageCommand({ ModelPackageName: packageArn }));
    assert.equal(approved.ModelApprovalStatus, 'Approved');
    assert.equal((await models.get(version))?.status, 'Approved');

    const second = await evaluate({ accuracy: 3, style: 2.5 });
    assert.equal(second.generation.reused, true, 'the endpoint is not asked again');
    assert.equal(second.result.passed, false);
    assert.deepEqual(second.result.reasons, ['style 2.00 < threshold 2.5']);
    const rejected = await sagemaker.send(new DescribeModelPackageCommand({ ModelPackageName: packageArn }));
    assert.equal(rejected.ModelApprovalStatus, 'Rejected');
    assert.equal(rejected.ApprovalDescription, 'failed evaluation: style 2.00 < threshold 2.5');
    assert.equal((await models.get(version))?.status, 'Rejected');
  });
});
