/**
 * RAG metrics with live retrieval: three real articles cleaned, chunked and embedded (all-MiniLM-L6-v2) into this
 * file's Qdrant collections, the real RAG library (createRagService) answering the questions of a question file with
 * a scripted LLM for self-query, expansion, generation and the judge. The retrieved chunk texts are what the judge
 * sees as context; a question whose source document is loaded is a hit, one whose source is not loaded is a miss.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MongoClient } from 'mongodb';
import { measureRag, type EvaluationContext } from '../../src/evaluation/pipeline';
import { ArtifactRegistry } from '../../src/infra/artifact-registry';
import { LocalArtifactStore, createS3Client } from '../../src/infra/artifact-store';
import { createDependencies, type Dependencies } from '../../src/infra/dependencies';
import { LlmClient } from '../../src/infra/llm';
import { createLogger } from '../../src/infra/logger';
import { ModelRegistry } from '../../src/training/registry';
import { testEnv, uniqueName } from '../support/env';
import { reply, userMessage, ScriptedLlmServer } from '../support/scripted-llm-server';
import { loadCorpus, ragScript, ragSettings } from '../rag/helpers';

const database = uniqueName('evaluation_rag');
const prefix = `${uniqueName('evalrag')}_`;
const root = () => path.join(testEnv.tmpDir, database);
const GPTQ = 'https://maximelabonne.substack.com/p/4-bit-quantization-with-gptq-36b0f4f02c34';
const ABLITERATION = 'https://maximelabonne.substack.com/p/uncensor-any-llm-with-abliteration-d30148b7d43e';
const NOT_LOADED = 'https://decodingml.substack.com/p/the-4-advanced-rag-algorithms-you?r=1ttoeh';

describe('RAG metrics with live retrieval through the RAG library', () => {
  let llm: ScriptedLlmServer;
  let deps: Dependencies;
  let mongo: MongoClient;
  const ragScripted = ragScript({ generation: () => reply.text('GPTQ quantizes weights layer by layer [1].') });
  const judged: string[] = [];

  before(async () => {
    await mkdir(root(), { recursive: true });
    llm = await new ScriptedLlmServer((request) => {
      if (request.body.response_format?.json_schema?.name === 'rag_judgement') {
        judged.push(userMessage(request));
        return reply.json({
          faithfulness: { analysis: 'Supported.', score: 3 },
          contextRelevance: { analysis: 'On topic.', score: 3 },
        });
      }
      return ragScripted(request);
    }).start();
    deps = createDependencies(ragSettings({ database, prefix, llmUrl: llm.url }), createLogger({ level: 'error' }));
    await loadCorpus(database, deps, { titles: /GPTQ|abliteration|Graph Attention/ });
    mongo = await MongoClient.connect(testEnv.mongoUri);
  });

  after(async () => {
    await deps
      ?.vectorStore()
      .dropCollections()
      .catch(() => undefined);
    await deps?.close();
    await llm?.close();
    await mongo?.db(database).dropDatabase();
    await mongo?.close();
  });

  test('questions asked live: contexts from retrieval, hits where the source is loaded, judged', async () => {
    const questions = path.join(root(), 'questions.yaml');
    writeFileSync(
      questions,
      [
        'version: live-1',
        'questions:',
        '  - question: How does GPTQ quantize the weights of a large language model to 4 bits?',
        '    author: Maxime Labonne',
        `    source: ${GPTQ}`,
        '  - question: How can you uncensor an LLM with abliteration?',
        '    author: Maxime Labonne',
        `    source: ${ABLITERATION}`,
        '  - question: What are the four advanced RAG algorithms you must know?',
        `    source: ${NOT_LOADED}`,
        '',
      ].join('\n'),
    );
    const settings = ragSettings(
      { database, prefix, llmUrl: llm.url },
      { EVAL_RAG_QUESTIONS: questions, EVAL_JUDGE_BASE_URL: llm.url, EVAL_JUDGE_MODEL: 'scripted-judge' },
    );
    const db = mongo.db(database);
    const store = new LocalArtifactStore(path.join(root(), 'artifacts'));
    const ctx: EvaluationContext = {
      settings,
      store,
      artifacts: new ArtifactRegistry(db),
      models: new ModelRegistry(db),
      s3: () => createS3Client(settings.aws),
      db: () => Promise.resolve(db),
      dependencies: deps,
    };
    const judge = new LlmClient({ model: 'scripted-judge', baseUrl: llm.url, apiKey: 'x' });
    const outcome = await measureRag({ runKey: 'live-run', judgeKey: 'k' }, { ...ctx, llm: judge });
    assert.ok(!('skipped' in outcome), JSON.stringify(outcome));
    assert.equal(outcome.errors, 0);
    assert.deepEqual(outcome.origins, { live: 3 });
    assert.equal(outcome.samples, 3);
    assert.equal(outcome.withKnownSource, 3);
    assert.equal(outcome.hits, 2, 'the two loaded sources were retrieved, the unloaded one cannot be');
    assert.equal(outcome.hitRate, 0.667);
    assert.equal(outcome.faithfulness.mean, 3);
    assert.deepEqual(outcome.questionSet?.version, 'live-1');

    // What the judge saw: the RAG answer and the texts of the retrieved chunks, numbered.
    const gptq = judged.find((p) => p.includes('How does GPTQ quantize'));
    assert.ok(gptq);
    assert.match(gptq, /Answer to evaluate:\nGPTQ quantizes weights layer by layer \[1\]\./);
    assert.match(gptq, /\[1\] \S/);
    assert.match(gptq, /GPTQ/);

    // A retried measurement reuses the stored samples and verdicts: no new RAG or judge request.
    const requests = llm.requests.length;
    const again = await measureRag({ runKey: 'live-run', judgeKey: 'k' }, { ...ctx, llm: judge });
    assert.equal(llm.requests.length, requests);
    assert.ok(!('skipped' in again));
    assert.equal(again.hits, 2);
  });
});
