/**
 * Generation over the real corpus: real articles cleaned by the feature pipeline's cleaning, cut into extracts,
 * answered by a scripted server that builds valid answers from the extract text it received.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildDataset, rowId } from '../../src/datasets/build';
import { extractsFromDocuments } from '../../src/datasets/extracts';
import { checkItem, isVerbatim } from '../../src/datasets/filters';
import { generateAnswers, MemoryAnswerStore } from '../../src/datasets/generation';
import { testSizeFor } from '../../src/datasets/split';
import type { PreferenceRow } from '../../src/datasets/types';
import type { CleanedDocument } from '../../src/domain/documents';
import { cleanArticle } from '../../src/features/cleaning';
import { LlmClient } from '../../src/infra/llm';
import { loadCorpusArticles } from '../features/helpers';
import { extractOf, reply, startScriptedLlmServer, type ScriptedLlmServer } from '../support/scripted-llm-server';
import { goodPairs, goodTriples } from './helpers';

describe('datasets from the real corpus (scripted answers built from each extract)', () => {
  let server: ScriptedLlmServer;
  let documents: CleanedDocument[];

  before(async () => {
    documents = loadCorpusArticles().slice(0, 12).map(cleanArticle);
    server = await startScriptedLlmServer((request) => {
      const text = extractOf(request);
      return request.body.response_format?.json_schema?.name === 'preference_samples'
        ? reply.json({ triples: goodTriples(text) })
        : reply.json({ pairs: goodPairs(text) });
    });
  });
  after(() => server.close());

  test('extracts of the real articles are 1–2k-character verbatim slices', () => {
    const { extracts, stats } = extractsFromDocuments(documents);
    assert.equal(stats.documents, 12);
    assert.equal(stats.documentsWithoutExtracts, 0);
    assert.ok(extracts.length >= 60, `${extracts.length} extracts`);
    const byId = new Map(documents.map((d) => [d.id, d]));
    for (const extract of extracts) {
      assert.equal(byId.get(extract.document_id)?.content.slice(extract.start, extract.end), extract.text);
      assert.ok(extract.text.length <= 2000 && extract.text.length >= 400);
    }
    const long = extracts.filter((e) => e.text.length >= 1000).length;
    assert.ok(long / extracts.length > 0.85, `${long} of ${extracts.length} extracts reach 1000 characters`);
    assert.ok(stats.charactersSkipped / documents.reduce((n, d) => n + d.content.length, 0) < 0.02);
  });

  test('instruction dataset: every kept row traces back to its extract, counts add up', async () => {
    const { extracts } = extractsFromDocuments(documents);
    const llm = new LlmClient({ model: 'scripted', baseUrl: server.url, maxRetries: 0 });
    const { summary, answers } = await generateAnswers(
      { type: 'instruction', extracts },
      { llm, answers: new MemoryAnswerStore() },
    );
    assert.equal(summary.answered, extracts.length);
    const built = buildDataset('instruction', answers);
    const dropped = Object.values(built.stats.drops).reduce((a, b) => a + b, 0);
    assert.equal(built.stats.samples.produced, built.stats.samples.kept + dropped);
    assert.equal(built.train.length + built.test.length, built.stats.samples.kept);
    assert.ok(built.stats.samples.kept > extracts.length * 4, `${built.stats.samples.kept} kept`);
    assert.equal(built.test.length, testSizeFor(built.stats.samples.kept, 0.1));
    const extractText = new Map(answers.map((a) => [a.extract_id, a.extract_text]));
    for (const p of built.provenance) assert.ok(extractText.has(p.extract_id));
    for (const row of built.train)
      assert.ok(answers.some((a) => a.extract_text.includes((row as { output: string }).output)));
  });

  test('preference dataset within a small token budget: chosen is verbatim in the text actually sent', async () => {
    const { extracts } = extractsFromDocuments(documents);
    const llm = new LlmClient({ model: 'scripted', baseUrl: server.url, maxRetries: 0 });
    const { summary, answers } = await generateAnswers(
      { type: 'preference', extracts, params: { maxPromptTokens: 700 } },
      { llm, answers: new MemoryAnswerStore() },
    );
    assert.ok(summary.truncatedExtracts > extracts.length / 4, `${summary.truncatedExtracts} truncated`);
    const built = buildDataset('preference', answers);
    assert.ok(
      built.stats.samples.kept >= extracts.length,
      `${built.stats.samples.kept} kept from ${extracts.length} extracts`,
    );
    const documentsById = new Map(documents.map((d) => [d.id, d.content]));
    const provenance = new Map(built.provenance.map((p) => [p.id, p]));
    const answerOf = new Map(answers.map((a) => [a.extract_id, a]));
    const rows = [...built.train, ...built.test] as PreferenceRow[];
    for (const row of rows) {
      const p = provenance.get(rowId(row));
      assert.ok(p);
      const answer = answerOf.get(p.extract_id);
      assert.ok(answer);
      assert.ok(isVerbatim(row.chosen, answer.extract_text));
      assert.ok(isVerbatim(row.chosen, documentsById.get(p.document_id) ?? ''));
      assert.equal(
        checkItem(
          'preference',
          { instruction: row.prompt, chosen: row.chosen, rejected: row.rejected },
          answer.extract_text,
        ),
        null,
      );
    }
    assert.equal(built.test.length, testSizeFor(rows.length, 0.05));
  });
});
