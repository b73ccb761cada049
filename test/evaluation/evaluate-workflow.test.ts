/**
 * evaluateModel on the real Temporal dev server with real worker processes: a tiny random Llama is fine-tuned by the
 * real trainModel workflow (local backend) on the fixture instruction dataset, then evaluated — its answers generated
 * by jobs/evaluate/generate.py with the training chat template, judged by the scripted OpenAI-compatible judge (one
 * sample's judge answer is not JSON: a counted judge failure), RAG metrics on a question with stored contexts and a
 * `rag_eval_samples` document — against the untrained base as baseline. It ends in a report artifact and the
 * registry status Approved; a stricter threshold on the same model reuses the answers and verdicts, fails the gate,
 * names the threshold and sets Rejected. Unknown models fail the run as bad input.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { MongoClient } from 'mongodb';
import { checksumOf, type ArtifactRef } from '../../src/domain/artifacts';
import type { EvaluationReport } from '../../src/evaluation/report';
import { ArtifactRegistry } from '../../src/infra/artifact-registry';
import { ModelRegistry } from '../../src/training/registry';
import type { EvaluateModelInput, EvaluationResult } from '../../workflows/evaluate-model';
import type { ModelVersionRef, TrainModelInput } from '../../workflows/train-model';
import { isolatedEnv, runTwin } from '../support/cli';
import { testEnv, uniqueName } from '../support/env';
import { reply, ScriptedLlmServer, userMessage } from '../support/scripted-llm-server';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';
import { buildTinyBaseModel, fixtureVersion, FIXTURES, JOB_DIR, localTrainingEnv } from '../training/helpers';
import { TINY_MODEL_HYPERPARAMETERS } from '../../src/training/spec';

const database = uniqueName('evaluation_e2e');
const root = () => path.join(testEnv.tmpDir, database);
const FAST = { ...TINY_MODEL_HYPERPARAMETERS, max_steps: 2 };
/** The fixture test split has 3 rows; the judge answers this one's verdict with prose (a judge failure). */
const UNJUDGEABLE = 'Why keep a test split fixed?';
const verdict = (accuracy: number, style: number) => ({
  accuracy: { analysis: 'Mostly correct.', score: accuracy },
  style: { analysis: 'Readable.', score: style },
});

describe('evaluateModel on the real dev server (tiny Llama trained by trainModel, scripted judge)', () => {
  let client: Client;
  let mongo: MongoClient;
  let workers: WorkerProcess | undefined;
  let judge: ScriptedLlmServer | undefined;
  let registry: ArtifactRegistry;
  let dataset: ArtifactRef;
  let sft: ModelVersionRef;
  let baselineVersion: string;
  let baselineArtifact: ArtifactRef;
  let passed: EvaluationResult;
  const runs: string[] = [];

  const judgeRequests = () =>
    judge?.requests.filter((r) => r.body.response_format?.json_schema?.name === 'judgement') ?? [];

  before(async () => {
    client = new Client({ connection: await Connection.connect({ address: testEnv.temporalAddress }) });
    mongo = await MongoClient.connect(testEnv.mongoUri);
    const db = mongo.db(database);
    registry = new ArtifactRegistry(db);
    await mkdir(root(), { recursive: true });

    // The fixture instruction dataset as generateDatasets records a version (uri = the version folder).
    const folder = fixtureVersion('instruction');
    const producer = { workflowId: 'fixture', runId: 'fixture', activity: 'fixture', attempt: 1 };
    dataset = await registry.record({
      kind: 'instruction-dataset',
      uri: `file://${folder}`,
      count: 23,
      checksum: checksumOf(`evaluation-fixture-${database}`),
      producer,
      inputs: [],
      metadata: {
        version: path.basename(folder),
        train: 20,
        test: 3,
        trainUri: `file://${folder}/train.jsonl`,
        testUri: `file://${folder}/test.jsonl`,
      },
    });

    // The untrained tiny base (the baseline) and the judge.
    const tinyBase = await buildTinyBaseModel(path.join(root(), 'tiny-base'), [
      path.join(folder, 'train.jsonl'),
      path.join(fixtureVersion('preference'), 'train.jsonl'),
      path.join(FIXTURES, 'general', 'alpaca-sample.jsonl'),
    ]);
    baselineArtifact = await registry.record({
      kind: 'model',
      uri: `file://${tinyBase}`,
      count: 1,
      checksum: checksumOf(`tiny-base-${database}`),
      producer,
      inputs: [],
      metadata: {},
    });
    baselineVersion = `tiny-base-${process.pid}`;
    await new ModelRegistry(db).register({
      version: baselineVersion,
      mode: 'sft',
      baseModel: 'random-init',
      datasetArtifactId: dataset.id,
      datasetVersion: String(dataset.metadata.version),
      hyperparameters: {},
      backend: 'local',
      jobName: 'none',
      metrics: {},
      artifactUri: `file://${tinyBase}`,
      artifactId: baselineArtifact.id,
      chatTemplateChecksum: 'sha256:none',
      workflowId: 'fixture',
    });

    judge = await new ScriptedLlmServer((request) => {
      const prompt = userMessage(request);
      if (request.body.response_format?.json_schema?.name === 'rag_judgement') {
        return reply.json({
          faithfulness: { analysis: 'Supported by [1].', score: 3 },
          contextRelevance: { analysis: 'Related.', score: 2 },
        });
      }
      if (prompt.includes(`Instruction:\n${UNJUDGEABLE}`))
        return reply.text('Both criteria look fine to me, I would say good.');
      return reply.json(verdict(2, 2));
    }).start();

    // RAG: one question with its stored answer and contexts, and one sample the RAG service would have copied.
    const questions = path.join(root(), 'rag-questions.yaml');
    writeFileSync(
      questions,
      [
        'version: test-1',
        'questions:',
        '  - question: What does LoRA train?',
        '    answer: Small low-rank adapter matrices next to the frozen weights.',
        '    contexts:',
        '      - LoRA freezes the base weights and trains two low-rank matrices per projection.',
        '',
      ].join('\n'),
    );
    await db.collection('rag_eval_samples').insertOne({
      _id: 'trace-1' as never,
      question: 'Why a fixed test split?',
      answer: 'So that models are compared on the same questions.',
      contexts: ['A test set that changes with every dataset version makes progress impossible to measure.'],
      traceId: 'trace-1',
      createdAt: new Date(),
      model: 'x',
      promptTemplateVersion: 'x',
    });

    workers = await startWorkerProcess(['pipelines', 'llm', 'ml'], {
      MONGODB_DATABASE: database,
      QDRANT_COLLECTION_PREFIX: `${database}_`,
      OPENAI_API_KEY: 'dummy',
      OPENAI_BASE_URL: judge.url,
      LLM_MODEL: 'scripted-judge',
      TWIN_WORKFLOW_BUNDLE: testEnv.workflowBundle ?? '',
      ...localTrainingEnv(root()),
      EVAL_DIR: path.join(root(), 'evaluation'),
      EVAL_JUDGE_BASE_URL: judge.url,
      EVAL_JUDGE_MODEL: 'scripted-judge',
      EVAL_JUDGE_ATTEMPTS: '1',
      EVAL_MAX_JUDGE_FAILURE_RATE: '0.5',
      EVAL_MIN_ACCURACY: '2',
      EVAL_MIN_STYLE: '2',
      EVAL_MAX_NEW_TOKENS: '12',
      EVAL_RAG_QUESTIONS: questions,
    });

    const handle = await client.workflow.start('trainModel', {
      taskQueue: 'twin-pipelines',
      workflowId: uniqueName('eval-train-sft'),
      args: [
        {
          dataset: dataset.id,
          mode: 'sft',
          baseModel: `file://${tinyBase}`,
          backend: 'local',
          hyperparameters: FAST,
        } satisfies TrainModelInput,
      ],
    });
    sft = (await handle.result().catch((error: unknown) => {
      throw new Error(`${String(error)}\n${workers?.lines.slice(-40).join('\n')}`);
    })) as ModelVersionRef;
  });

  after(async () => {
    await workers?.kill('SIGTERM');
    await judge?.close();
    await mongo.db(database).dropDatabase();
    await mongo.close();
    await client.connection.close();
  });

  const evaluate = (workflowId: string, input: EvaluateModelInput) => {
    runs.push(workflowId);
    return client.workflow.start('evaluateModel', { taskQueue: 'twin-pipelines', workflowId, args: [input] });
  };

  const result = async (handle: Awaited<ReturnType<typeof evaluate>>) =>
    (await handle.result().catch((error: unknown) => {
      throw new Error(`${String(error)}\n${workers?.lines.slice(-40).join('\n')}`);
    })) as EvaluationResult;

  test('a model that meets the thresholds: scores, judge failure counted, baseline, RAG metrics, report artifact, Approved', async () => {
    const workflowId = uniqueName('evaluate-pass');
    const handle = await evaluate(workflowId, { model: sft.modelVersion, baseline: baselineVersion });
    passed = await result(handle);

    assert.equal(passed.model, sft.modelVersion);
    assert.equal(passed.passed, true, passed.reasons.join('; '));
    assert.deepEqual(passed.reasons, []);
    // 3 test rows: two judged 2/2, one judge answer without JSON (counted, not scored); RAG: 2 samples judged 3 / 2.
    assert.deepEqual(passed.scores, {
      accuracy: 2,
      style: 2,
      faithfulness: 3,
      contextRelevance: 2,
      samples: 2,
      judgeFailures: 1,
    });
    assert.deepEqual(passed.baseline, {
      model: baselineVersion,
      scores: { accuracy: 2, style: 2, samples: 2, judgeFailures: 1 },
    });

    // The judge saw the instruction, the author's reference answer and each model's generated answer.
    const sftAnswers = readFileSync(
      path.join(
        root(),
        'evaluation',
        sft.modelVersion,
        readdir1(path.join(root(), 'evaluation', sft.modelVersion)),
        'answers.jsonl',
      ),
      'utf8',
    )
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; answer: string; output_tokens: number });
    assert.equal(sftAnswers.length, 3);
    assert.ok(
      sftAnswers.every((a) => a.output_tokens > 0 && a.output_tokens <= 12),
      JSON.stringify(sftAnswers),
    );
    const prompts = judgeRequests().map(userMessage);
    assert.equal(
      prompts.length,
      6,
      'candidate and baseline: 3 samples each, one completion each (EVAL_JUDGE_ATTEMPTS=1)',
    );
    for (const a of sftAnswers)
      assert.ok(
        prompts.some((p) => p.includes(`Answer to evaluate:\n${a.answer.trim() || '(empty answer)'}`)),
        a.answer,
      );
    assert.ok(
      prompts.some((p) => p.includes('Reference answer:\nSo that two models are compared on the same questions.')),
    );

    // The report: an ArtifactRef of kind evaluation-report with lineage, JSON + Markdown in the store.
    const report = passed.report;
    assert.equal(report.kind, 'evaluation-report');
    assert.deepEqual(report.inputs, [sft.artifact.id, dataset.id, baselineArtifact.id]);
    assert.equal(report.count, 3);
    assert.equal(report.metadata.passed, true);
    assert.equal(report.producer.workflowId, workflowId);
    assert.equal(report.producer.activity, 'recordEvaluation');
    assert.ok((await registry.get(report.id))?.kind === 'evaluation-report');
    const json = JSON.parse(readFileSync(new URL(report.uri), 'utf8')) as EvaluationReport;
    assert.equal(json.schema, 'twin.evaluation-report/1');
    assert.equal(json.dataset.testUri, dataset.metadata.testUri);
    assert.deepEqual(json.candidate.judge.failureReasons, { 'invalid-json': 1 });
    assert.ok(!json.rag || !('skipped' in json.rag));
    assert.deepEqual(json.rag && 'origins' in json.rag ? json.rag.origins : null, {
      'question-set': 1,
      rag_eval_samples: 1,
    });
    // Generated with the training chat template (the model's saved copy equals jobs/finetune/chat_template.jinja).
    const template = createHash('sha256')
      .update(readFileSync(path.join(JOB_DIR, 'chat_template.jinja')))
      .digest('hex');
    assert.equal(json.candidate.generation.chat_template_sha256, template);
    assert.equal(json.candidate.generation.saved_template_matches, true);
    assert.equal(json.candidate.generation.backend, 'local');
    const markdown = readFileSync(new URL(String(report.metadata.markdownUri)), 'utf8');
    assert.match(markdown, new RegExp(`^# Evaluation of ${sft.modelVersion}: PASSED`));
    assert.match(markdown, /\| accuracy \| 2\.00 \| 2\.00 \| 2\.00 \| \+0\.00 \|/);
    assert.match(markdown, /judge failures: 1 \(invalid-json 1\)/);

    // Registry status, search attributes, memo, queues.
    const model = await new ModelRegistry(mongo.db(database)).get(sft.modelVersion);
    assert.equal(model?.status, 'Approved');
    const description = await handle.describe();
    assert.deepEqual(description.searchAttributes.TwinPipeline, ['evaluateModel']);
    assert.deepEqual(description.searchAttributes.TwinModelVersion, [sft.modelVersion]);
    assert.deepEqual(description.searchAttributes.TwinStatus, ['passed']);
    const memo = description.memo as { passed?: boolean; scores?: { accuracy?: number } };
    assert.equal(memo.passed, true);
    assert.equal(memo.scores?.accuracy, 2);
    const history = await handle.fetchHistory();
    const scheduled = (history.events ?? []).flatMap((e) =>
      e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes] : [],
    );
    const queueOf = (name: string) => [
      ...new Set(scheduled.filter((a) => a.activityType?.name === name).map((a) => a.taskQueue?.name)),
    ];
    assert.deepEqual(queueOf('generateEvaluationAnswers'), ['twin-ml']);
    assert.deepEqual(queueOf('judgeEvaluationAnswers'), ['twin-llm']);
    assert.deepEqual(queueOf('measureRagMetrics'), ['twin-llm']);
    assert.deepEqual(queueOf('recordEvaluation'), ['twin-ml']);
    assert.equal(
      scheduled.filter((a) => a.activityType?.name === 'generateEvaluationAnswers').length,
      2,
      'candidate and baseline',
    );
  });

  test('a stricter threshold on the same model: answers and verdicts reused, gate fails naming the threshold, Rejected', async () => {
    assert.ok(passed, 'the passing evaluation ran first');
    const before = judgeRequests().length;
    const workflowId = uniqueName('evaluate-fail');
    const handle = await evaluate(workflowId, { model: sft.modelVersion, thresholds: { accuracy: 2.5 } });
    const failed = await result(handle);
    assert.equal(failed.passed, false);
    assert.deepEqual(failed.reasons, ['accuracy 2.00 < threshold 2.5']);
    assert.deepEqual(failed.scores, passed.scores);
    assert.equal(judgeRequests().length, before, 'the stored verdicts were reused: no judge call for the answers');
    assert.notEqual(failed.report.id, passed.report.id);
    assert.equal(failed.report.metadata.passed, false);

    const model = await new ModelRegistry(mongo.db(database)).get(sft.modelVersion);
    assert.equal(model?.status, 'Rejected');
    const description = await handle.describe();
    assert.deepEqual(description.searchAttributes.TwinStatus, ['rejected']);
    const history = await handle.fetchHistory();
    const generated = (history.events ?? []).flatMap((e) => {
      const payload = e.activityTaskCompletedEventAttributes?.result?.payloads?.[0]?.data;
      if (!payload) return [];
      const value = JSON.parse(Buffer.from(payload).toString('utf8')) as { answersKey?: string; reused?: boolean };
      return value.answersKey ? [value] : [];
    });
    assert.deepEqual(
      generated.map((g) => g.reused),
      [true],
      'the answers were reused, not generated again',
    );

    // The CLI lists both reports and shows the newest one of the model.
    const env = isolatedEnv({
      MONGODB_URI: testEnv.mongoUri,
      MONGODB_DATABASE: database,
      ARTIFACT_STORE: 'local',
      ARTIFACT_DIR: path.join(root(), 'artifacts'),
    });
    const list = await runTwin(['evaluations', 'list'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(
      list.stdout,
      new RegExp(
        `${sft.modelVersion}\\s+REJECTED\\s+accuracy=2\\.00\\s+style=2\\.00\\s+faithfulness=3\\.00\\s+relevance=2\\.00\\s+samples=2\\s+judge_failures=1`,
      ),
    );
    assert.match(list.stdout, new RegExp(`${sft.modelVersion}\\s+passed\\s+accuracy=2\\.00`));
    const show = await runTwin(['evaluations', 'show', sft.modelVersion], env);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /: FAILED/);
    assert.match(show.stdout, /- accuracy 2\.00 < threshold 2\.5/);
  });

  test('an unknown model version fails the run as bad input, without retries', async () => {
    const handle = await evaluate(uniqueName('evaluate-missing'), { model: 'twin-sft-no-such-model' });
    await assert.rejects(handle.result(), (error: unknown) => {
      assert.ok(error instanceof WorkflowFailedError);
      assert.ok(error.cause instanceof ActivityFailure);
      assert.ok(error.cause.cause instanceof ApplicationFailure);
      assert.equal(error.cause.cause.type, 'InvalidEvaluationInput');
      assert.match(error.cause.cause.message, /model version twin-sft-no-such-model not found/);
      return true;
    });
    const description = await handle.describe();
    assert.deepEqual(description.searchAttributes.TwinStatus, ['failed']);
  });

  test('the recorded histories replay with today’s workflow code (determinism)', async () => {
    assert.equal(runs.length, 3);
    for (const workflowId of runs) {
      const history = await client.workflow.getHandle(workflowId).fetchHistory();
      await Worker.runReplayHistory(
        testEnv.workflowBundle
          ? { workflowBundle: { codePath: testEnv.workflowBundle } }
          : { workflowsPath: require.resolve('../../workflows') },
        history,
        workflowId,
      );
    }
  });
});

function readdir1(dir: string): string {
  const entries = existsSync(dir) ? readdirSync(dir) : [];
  assert.equal(entries.length, 1, `one evaluation folder in ${dir}: ${entries.join(', ')}`);
  return entries[0] as string;
}
