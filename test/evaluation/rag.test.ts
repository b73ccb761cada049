/**
 * RAG question sets and live answers: the shipped question set parses and names its sources; hit detection; live
 * questions through a RagEngine (here an in-process engine with scripted retrieval) give samples with the retrieved
 * texts as contexts and a hit per question with a known source; failed questions are counted; the RAG library loads.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseSettings } from '../../src/config';
import {
  askLive,
  DEFAULT_RAG_QUESTIONS,
  givenSamples,
  isSourceHit,
  loadQuestionSet,
  loadRagEngine,
} from '../../src/evaluation/rag';
import { RagError, type RagAnswer, type RagEngine, type RagRequest, type RagSource } from '../../src/rag/types';

const source = (link: string, text: string): RagSource => ({
  chunkId: `c-${text.length}`,
  documentId: `d-${link.length}`,
  authorId: 'a',
  authorName: 'Maxime Labonne',
  category: 'articles',
  platform: 'substack',
  link,
  score: 0.9,
  text,
});

describe('RAG question sets and live answers', () => {
  test('the shipped question set: versioned, every question with an author and a source link', async () => {
    const set = await loadQuestionSet(DEFAULT_RAG_QUESTIONS);
    assert.equal(set.version, '1');
    assert.match(set.checksum, /^sha256:[0-9a-f]{64}$/);
    assert.equal(set.questions.length, 10);
    for (const q of set.questions) {
      assert.ok(q.author, q.question);
      assert.match(q.source ?? '', /^https:\/\//);
      assert.equal(q.answer, undefined, 'asked live, not stored');
    }
    assert.deepEqual(givenSamples(set.questions), []);
  });

  test('a question file with errors is refused with the field that is wrong', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rag-questions-'));
    const file = path.join(dir, 'q.yaml');
    writeFileSync(file, 'version: 2\nquestions:\n  - author: X\n');
    await assert.rejects(loadQuestionSet(file), /questions\.0\.question/);
  });

  test('source hits: link (trailing slash, case), document id or title; not a different document', () => {
    const retrieved = [source('https://example.com/Post-A/', 'x')];
    assert.equal(isSourceHit('https://example.com/post-a', retrieved), true);
    assert.equal(isSourceHit(retrieved[0]?.documentId ?? '', retrieved), true);
    assert.equal(isSourceHit('https://example.com/post-b', retrieved), false);
  });

  test('live questions: contexts are the retrieved texts, hits per known source, failures counted', async () => {
    const requests: RagRequest[] = [];
    const engine: RagEngine = {
      answer: (request) => {
        requests.push(request);
        if (request.query.startsWith('fail'))
          return Promise.reject(new RagError('dependency_unavailable', 'qdrant down', 'qdrant'));
        const answer: RagAnswer = {
          answer: `About ${request.query}`,
          sources: [
            source('https://example.com/gptq', 'GPTQ quantizes weights.'),
            source('https://example.com/other', 'Other text.'),
          ],
          traceId: `t-${requests.length}`,
          model: 'm',
          usage: { inputTokens: 1, outputTokens: 1 },
        };
        return Promise.resolve(answer);
      },
      stream: () => {
        throw new Error('not used');
      },
      ready: () => Promise.resolve({}),
      close: () => Promise.resolve(),
    };
    const progress: number[] = [];
    const { samples, errors } = await askLive(
      engine,
      [
        { question: 'What is GPTQ?', author: 'Maxime Labonne', source: 'https://example.com/gptq' },
        { question: 'What is AWQ?', source: 'https://example.com/awq' },
        { question: 'Anything?' },
        { question: 'fail please' },
      ],
      { onAnswered: (n) => progress.push(n) },
    );
    assert.deepEqual(requests[0], { query: 'What is GPTQ?', author: 'Maxime Labonne' });
    assert.deepEqual(requests[1], { query: 'What is AWQ?' });
    assert.deepEqual(
      samples.map((s) => [s.question, s.hit, s.contexts.length, s.origin]),
      [
        ['What is GPTQ?', true, 2, 'live'],
        ['What is AWQ?', false, 2, 'live'],
        ['Anything?', undefined, 2, 'live'],
      ],
    );
    assert.deepEqual(samples[0]?.contexts, ['GPTQ quantizes weights.', 'Other text.']);
    assert.deepEqual(errors, [{ question: 'fail please', error: 'qdrant down' }]);
    assert.deepEqual(progress, [1, 2, 3, 4]);
  });

  test('the RAG library of this build loads (lazily: no connection until asked)', async () => {
    const loaded = await loadRagEngine(
      parseSettings({ ...process.env, MONGODB_URI: 'mongodb://127.0.0.1:1', QDRANT_URL: 'http://127.0.0.1:1' }),
    );
    assert.ok('engine' in loaded, 'unavailable' in loaded ? loaded.unavailable : '');
    await loaded.engine.close();
  });
});
