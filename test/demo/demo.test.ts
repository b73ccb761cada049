/**
 * `twin demo` end to end, through the CLI as a user runs it, then its run checked in the Temporal Web UI with
 * Debian's Chromium.
 *
 * The demo starts its own platform (Temporal dev server + Web UI, FerretDB, Qdrant stand-in, all workers), the
 * offline sample site, a tiny random Llama as the base model, and runs endToEnd: real ETL over HTTP, real features
 * (all-MiniLM-L6-v2), real generateDatasets, SFT then DPO with the local backend, real evaluateModel, deployModel to
 * a local OpenAI-compatible server, and one RAG question through the REST API answered by the deployed model.
 *
 * The LLM (dataset generation, judge, self-query, query expansion) is the scripted OpenAI-compatible server here
 * (`--llm configured` + OPENAI_BASE_URL), not the local Gemma the default `twin demo` starts: on 2 shared cores
 * Gemma needs tens of minutes for the datasets (docs/demo.md has the figures). Everything else is what
 * `npx twin demo` runs.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import type { Browser, Page } from 'playwright-core';
import type { DemoReport } from '../../src/demo/demo';
import { SAMPLE_SITE_AUTHOR } from '../../src/demo/sample-site';
import { goodPairs, goodTriples } from '../datasets/helpers';
import { launchChromium } from '../support/browser';
import { isolatedEnv, startTwin } from '../support/cli';
import { testEnv, uniqueName } from '../support/env';
import { extractOf, reply, ScriptedLlmServer } from '../support/scripted-llm-server';
import { findBySearchAttribute, openRun, progressQuery, relationships, screenshot, startFromUi } from './web-ui';

type Report = Omit<DemoReport, 'platformHandle'>;

const CHILDREN = [
  'etl-maxime-labonne',
  'features',
  'datasets-instruction',
  'datasets-preference',
  'train-sft',
  'train-dpo',
  'evaluate',
  'deploy',
];

function parseReport(output: string): Report {
  const end = output.lastIndexOf('The demo platform keeps running');
  const start = output.lastIndexOf('\n{\n', end);
  assert.ok(start >= 0 && end > start, `no JSON report in the output:\n${output.slice(-3000)}`);
  return JSON.parse(output.slice(start + 1, end)) as Report;
}

describe('twin demo (CLI) and its run in the Web UI', () => {
  let llm: ScriptedLlmServer;
  let demo: Awaited<ReturnType<typeof startTwin>> | undefined;
  let report: Report;
  let output = '';
  let browser: Browser | undefined;
  let page: Page;
  const shots = path.join(testEnv.tmpDir, 'screenshots');

  before(async () => {
    llm = await new ScriptedLlmServer((request) => {
      const schema = request.body.response_format?.json_schema?.name;
      const verdict = (a: string, b: string) => ({
        [a]: { analysis: 'Scripted verdict.', score: 2 },
        [b]: { analysis: 'Scripted verdict.', score: 2 },
      });
      if (schema === 'judgement') return reply.json(verdict('accuracy', 'style'));
      if (schema === 'rag_judgement') return reply.json(verdict('faithfulness', 'contextRelevance'));
      if (schema === 'self_query') return reply.json({ author: SAMPLE_SITE_AUTHOR });
      if (schema === 'query_expansion') {
        return reply.json({
          queries: ['How do tensors differ from NumPy arrays?', 'Why does deep learning use tensors?'],
        });
      }
      if (schema === 'preference_samples') return reply.json({ triples: goodTriples(extractOf(request)) });
      return reply.json({ pairs: goodPairs(extractOf(request)) });
    }).start();
    const env = isolatedEnv({
      TWIN_DATA_DIR: path.join(testEnv.tmpDir, uniqueName('demo')),
      OPENAI_BASE_URL: llm.url,
      OPENAI_API_KEY: 'dummy',
      LLM_MODEL: 'scripted-twin-model',
      SERVING_DEVICE: 'cpu',
    });
    const started = Date.now();
    demo = await startTwin(
      ['demo', '--llm', 'configured', '--keep', '--json'],
      env,
      /The demo platform keeps running/,
      3_600_000,
    );
    output = demo.output();
    report = parseReport(output);
    process.stdout.write(`# twin demo (scripted LLM) took ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    for (const t of report.timings) process.stdout.write(`#   ${t.stage}: ${t.seconds} s (${t.status})\n`);
    process.stdout.write(`# Q: ${report.question}\n# A: ${JSON.stringify(report.answer.answer)}\n`);
    for (const s of report.answer.sources)
      process.stdout.write(`#   source: ${s.title ?? s.documentId} ${s.link ?? ''}\n`);
  });

  after(async () => {
    await browser?.close();
    if (demo && demo.child.exitCode === null) {
      const exited = new Promise((resolve) => demo!.child.once('exit', resolve));
      demo.child.kill('SIGINT');
      await exited;
    }
    await llm?.close();
  });

  test('prints every stage, deploys the twin and answers from the sample author with sources', () => {
    for (const stage of ['etl', 'features', 'datasets', 'sft', 'dpo', 'evaluation', 'deployment']) {
      assert.match(output, new RegExp(`✔ ${stage} completed \\(`), `stage ${stage} printed`);
    }
    assert.match(output, /Web UI: http:\/\/127\.0\.0\.1:\d+\/namespaces\/default\/workflows\/demo-/);
    assert.match(output, /Wall time per stage:/);
    assert.equal(report.platform, 'own');
    assert.equal(report.result.status, 'deployed', report.result.reason);
    assert.ok(report.result.gate.passed);
    assert.equal(report.result.etl[0]!.stored, 2, 'two sample-site articles crawled');
    const deployment = report.result.deployment!;
    assert.equal(deployment.backend, 'local');
    assert.equal(deployment.modelVersion, report.result.models.final);
    assert.ok(report.result.models.dpo, 'DPO ran on top of SFT');
    assert.ok(report.answer.answer.trim().length > 0, 'a non-empty answer');
    assert.ok(report.answer.sources.length > 0, 'sources');
    for (const s of report.answer.sources) {
      assert.equal(s.authorName, SAMPLE_SITE_AUTHOR);
      assert.match(s.link ?? '', /^http:\/\/127\.0\.0\.1:\d+\/posts\/.+\.html$/);
    }
    assert.match(output, /Sources:\n {2}\[1\] /);
  });

  test('the Web UI finds the run by TwinPipeline="endToEnd" and shows its children, artifacts and result', async () => {
    browser = await launchChromium();
    // tall: the UI's JSON viewers render only the lines in view
    page = await browser.newPage({ viewport: { width: 1400, height: 3000 } });
    const run = {
      uiUrl: report.webUi!,
      namespace: report.namespace,
      workflowId: report.workflowId,
      runId: report.runId,
    };
    const list = await findBySearchAttribute(page, run);
    assert.match(list, /endToEnd/);
    await screenshot(page, shots, 'web-ui-1-workflows');
    const history = await openRun(page, run);
    assert.match(history, /endToEnd/);
    assert.match(history, /Completed/);
    await screenshot(page, shots, 'web-ui-2-run');
    const rel = await relationships(
      page,
      run,
      CHILDREN.map((c) => `${report.workflowId}/${c}`),
    );
    for (const type of [
      'digitalDataEtl',
      'featureEngineering',
      'generateDatasets',
      'trainModel',
      'evaluateModel',
      'deployModel',
    ]) {
      assert.match(rel, new RegExp(type), `child ${type} listed`);
    }
    await screenshot(page, shots, 'web-ui-3-children');
    const r = report.result;
    const progress = await progressQuery(page, run, r.datasets.instruction.artifactId);
    for (const artifact of [
      r.etl[0]!.artifact!,
      r.features.cleaned!,
      r.features.embedded!,
      r.datasets.preference!.artifactId,
      r.models.final,
    ]) {
      assert.ok(progress.includes(artifact), `artifact ${artifact} in the progress query`);
    }
    assert.ok(progress.includes(r.deployment!.endpointName), 'the endpoint in the progress query');
    await screenshot(page, shots, 'web-ui-4-progress-query');
    if (process.env.TWIN_UPDATE_DOC_IMAGES) {
      const docs = path.join(__dirname, '..', '..', 'docs', 'images');
      await mkdir(docs, { recursive: true });
      for (const name of ['web-ui-1-workflows', 'web-ui-2-run', 'web-ui-3-children', 'web-ui-4-progress-query']) {
        await copyFile(path.join(shots, `${name}.png`), path.join(docs, `${name}.png`));
      }
    }
  });

  test('"Start Workflow" in the Web UI starts a run the workers execute', async () => {
    browser ??= await launchChromium();
    page ??= await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const workflowId = uniqueName('ui-smoke');
    const status = await startFromUi(
      page,
      { uiUrl: report.webUi!, namespace: report.namespace },
      { workflowId, taskQueue: 'twin-pipelines', workflowType: 'smoke', input: { message: 'started from the Web UI' } },
    );
    assert.equal(status, 200);
    await screenshot(page, shots, 'web-ui-5-start-workflow');
    const client = new Client({
      connection: await Connection.connect({ address: report.temporalAddress }),
      namespace: report.namespace,
    });
    try {
      const handle = client.workflow.getHandle(workflowId);
      const result = (await handle.result()) as { artifact: { kind: string; producer: { workflowId: string } } };
      assert.equal(result.artifact.kind, 'smoke-note');
      assert.equal(result.artifact.producer.workflowId, workflowId);
      const history = await handle.fetchHistory();
      const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
      assert.deepEqual(JSON.parse(Buffer.from(input!).toString('utf8')), { message: 'started from the Web UI' });
    } finally {
      await client.connection.close();
    }
  });
});
