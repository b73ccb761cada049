/**
 * A real LLM end to end: Gemma 3 270M (GGUF, scripts/install-local-llm.sh) run by node-llama-cpp behind the
 * OpenAI-compatible endpoint of src/infra/local-llm.ts, asked through the platform's LLM client with a JSON-schema
 * response format, for an instruction dataset from real corpus extracts. Proves the structured-output path gives
 * valid datasets from a real model, and prints the yield. Skipped (with the reason) when the model is not
 * installed; set TWIN_REQUIRE_LOCAL_LLM=1 to make that a failure instead.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { extractsFromDocuments } from '../../src/datasets/extracts';
import { generateDataset } from '../../src/datasets/pipeline';
import { readDatasetSplit } from '../../src/datasets/storage';
import { cleanArticle } from '../../src/features/cleaning';
import { LocalArtifactStore } from '../../src/infra/artifact-store';
import { LlmClient } from '../../src/infra/llm';
import { defaultLocalModelPath, startLocalLlmServer, type LocalLlmServer } from '../../src/infra/local-llm';
import { testEnv, uniqueName } from '../support/env';
import { loadCorpusArticles } from '../features/helpers';

const modelPath = process.env.LOCAL_LLM_MODEL_PATH ?? defaultLocalModelPath();
const installed = existsSync(modelPath);
if (!installed && process.env.TWIN_REQUIRE_LOCAL_LLM === '1') {
  throw new Error(`local LLM not installed at ${modelPath}: run scripts/install-local-llm.sh`);
}
const skip = installed ? false : `local LLM not installed at ${modelPath} (scripts/install-local-llm.sh)`;

describe(
  'instruction dataset from a real small LLM (Gemma 3 270M, node-llama-cpp, JSON-schema grammar)',
  { skip },
  () => {
    let server: LocalLlmServer;
    let startMs = 0;

    before(async () => {
      const started = Date.now();
      server = await startLocalLlmServer({ modelPath });
      startMs = Date.now() - started;
    });
    after(() => server?.close());

    test('valid rows come out of a real model, and the yield is reported', async () => {
      const documents = loadCorpusArticles().slice(0, 1).map(cleanArticle);
      const extracts = extractsFromDocuments(documents).extracts.slice(1, 3);
      assert.equal(extracts.length, 2);
      const llm = new LlmClient({
        model: server.model,
        baseUrl: server.url,
        timeoutMs: 600_000,
        maxRetries: 0,
        maxConcurrency: 1,
      });
      const store = new LocalArtifactStore(path.join(testEnv.tmpDir, uniqueName('local-llm')));
      const started = Date.now();
      const result = await generateDataset(
        {
          type: 'instruction',
          extracts,
          sources: ['cleaned-documents:corpus'],
          params: { maxOutputTokens: 700, maxAttempts: 2, temperature: 0.7, seed: 7 },
        },
        { llm, store, concurrency: 1 },
      );
      const wallMs = Date.now() - started;
      const { generation, dataset } = result;
      const m = dataset.manifest;
      const stats = llm.stats();
      const served = server.stats();

      const figures = {
        model: server.model,
        extracts: generation.extracts,
        answered: generation.answered,
        failed: generation.failed,
        completions: generation.completions,
        samplesRequested: m.samples.requested,
        samplesProduced: m.samples.produced,
        samplesKept: m.samples.kept,
        drops: Object.fromEntries(Object.entries(m.drops).filter(([, n]) => n > 0)),
        extractFailures: generation.failures,
        inputTokens: generation.inputTokens,
        outputTokens: generation.outputTokens,
        wallSeconds: Math.round(wallMs / 100) / 10,
        modelLoadSeconds: Math.round(startMs / 100) / 10,
        outputTokensPerSecond: Math.round((served.completionTokens / (served.generationMs / 1000)) * 10) / 10,
        structuredOutput: stats.structuredOutput,
        finishReasons: stats.finishReasons,
      };
      process.stdout.write(`[local-llm yield] ${JSON.stringify(figures)}\n`);

      // The server took the JSON schema (compiled to a grammar), with no format fallback: every reply is JSON of the
      // schema's shape, except one cut off by the output token limit (a tiny model may ramble until it hits it).
      assert.equal(stats.structuredOutput, 'json_schema');
      assert.deepEqual(stats.downgrades, []);
      assert.ok(
        (generation.failures['malformed-json'] ?? 0) <= (stats.finishReasons.length ?? 0),
        JSON.stringify(stats.finishReasons),
      );
      assert.equal(generation.failures['no-item-list'] ?? 0, 0);
      assert.equal(stats.tokensEstimated, false);
      assert.ok(generation.inputTokens > 500 && generation.outputTokens > 20);
      // A valid, non-empty dataset that the training job reads as is.
      assert.ok(m.samples.kept >= 1, `kept ${m.samples.kept}`);
      assert.equal(m.samples.produced, m.samples.kept + m.samples.dropped);
      const rows = [...(await readDatasetSplit(store, m, 'train')), ...(await readDatasetSplit(store, m, 'test'))];
      assert.equal(rows.length, m.samples.kept);
      for (const row of rows) assert.deepEqual(Object.keys(row), ['instruction', 'output']);
      process.stdout.write(`[local-llm rows] ${JSON.stringify(rows.slice(0, 5))}\n`);
    });
  },
);
