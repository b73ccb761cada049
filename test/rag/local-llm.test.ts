/**
 * RAG with a real small LLM (Gemma 3 270M behind the local OpenAI-compatible server) for self-query, expansion and
 * generation, over a few real articles with real embeddings. A model this small is no judge of authors, so the test
 * asserts what must hold whatever it says: structured output through the JSON-schema grammar (expansion yields
 * the asked number of queries or a recorded fallback), lookup-only self-query, a non-empty answer with the model's
 * own token counts, and the trace.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { MongoClient } from 'mongodb';
import { createDependencies, type Dependencies } from '../../src/infra/dependencies';
import { defaultLocalModelPath, startLocalLlmServer, type LocalLlmServer } from '../../src/infra/local-llm';
import { createLogger } from '../../src/infra/logger';
import { createRagService } from '../../src/rag/service';
import { TRACES_COLLECTION, type TraceRecord } from '../../src/rag/tracing';
import { testEnv, uniqueName } from '../support/env';
import { closeRagFixtures, loadCorpus, MAXIME, ragSettings } from './helpers';

const modelPath = process.env.LOCAL_LLM_MODEL_PATH ?? defaultLocalModelPath();
const installed = existsSync(modelPath);
if (!installed && process.env.TWIN_REQUIRE_LOCAL_LLM === '1') {
  throw new Error(`local LLM not installed at ${modelPath}: run scripts/install-local-llm.sh`);
}
const skip = installed ? false : `local LLM not installed at ${modelPath} (scripts/install-local-llm.sh)`;

const database = uniqueName('raggemma');
const prefix = `${uniqueName('raggemma')}_`;

describe('RAG with a real small LLM (Gemma 3 270M)', { skip }, () => {
  let server: LocalLlmServer;
  let deps: Dependencies;
  let mongo: MongoClient;

  before(async () => {
    server = await startLocalLlmServer({ modelPath });
    deps = createDependencies(
      ragSettings({ database, prefix, llmUrl: server.url }, { LLM_MODEL: server.model }),
      createLogger({ level: 'error' }),
    );
    await loadCorpus(database, deps, { titles: /abliteration|GPTQ|Weight Quantization|LLM Twin/i });
    mongo = await MongoClient.connect(testEnv.mongoUri);
  });

  after(async () => {
    await closeRagFixtures(deps, mongo, database);
    await server?.close();
  });

  test('self-query, expansion and answer from the real model, traced', async (t) => {
    const rag = createRagService(
      ragSettings(
        { database, prefix, llmUrl: server.url },
        {
          LLM_MODEL: server.model,
          RAG_EXPANSIONS: '3',
          RAG_MAX_TOKENS: '96',
          RAG_TEMPERATURE: '0',
          RAG_CONTEXT_TOKENS: '900',
        },
      ),
      { dependencies: deps },
    );
    try {
      const usersBefore = await mongo.db(database).collection('users').countDocuments();
      const answer = await rag.answer({
        query: `What does ${MAXIME.name} write about 4-bit quantization with GPTQ?`,
        k: 3,
      });
      assert.ok(answer.answer.trim().length > 0, 'a non-empty answer');
      assert.equal(answer.model, server.model);
      assert.ok(answer.usage.inputTokens > 100, `${answer.usage.inputTokens} prompt tokens counted by the model`);
      assert.ok(answer.usage.outputTokens > 0 && answer.usage.outputTokens <= 96);
      assert.ok(answer.sources.length > 0 && answer.sources.length <= 3);
      if (answer.author) {
        assert.deepEqual(answer.author, MAXIME);
        assert.ok(answer.sources.every((s) => s.authorId === MAXIME.id));
      }
      assert.equal(await mongo.db(database).collection('users').countDocuments(), usersBefore, 'no user created');

      await rag.flushTraces();
      const trace = await mongo
        .db(database)
        .collection<TraceRecord>(TRACES_COLLECTION)
        .findOne({ _id: answer.traceId });
      assert.ok(trace);
      const byName = Object.fromEntries(trace.spans.map((s) => [s.name, s]));
      const expansion = byName.expansion!;
      const queries = expansion.attributes.queries as string[];
      assert.ok(
        queries.length === 3 || typeof expansion.attributes.fallback === 'string',
        `3 queries or a recorded fallback: ${JSON.stringify(expansion.attributes)}`,
      );
      assert.equal(byName.embed!.attributes.texts, queries.length);
      t.diagnostic(
        `self-query extracted ${JSON.stringify(byName.self_query!.attributes.extracted)} (found: ${String(byName.self_query!.attributes.found)}); ` +
          `${queries.length} queries${expansion.attributes.fallback ? ` (fallback: ${JSON.stringify(expansion.attributes.fallback)})` : ''}; ` +
          `answer ${answer.usage.outputTokens} tokens in ${Math.round(byName.generation!.latencyMs)} ms`,
      );
      for (const name of ['self_query', 'expansion', 'generation'] as const) {
        assert.equal(byName[name]!.model, server.model);
        assert.ok((byName[name]!.inputTokens ?? 0) > 0, `${name} tokens`);
      }
    } finally {
      await rag.close();
    }
  });
});
