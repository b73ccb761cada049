/**
 * The judge against a real HTTP server speaking the OpenAI chat-completions protocol (the scripted server): valid
 * verdicts, invalid JSON, out-of-range and non-integer scores, missing fields, 5xx then success, a judge that stays
 * down; bounded concurrency; then aggregation and the gate on the judged results.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LlmClient } from '../../src/infra/llm';
import {
  aggregateJudgements,
  aggregateRag,
  decideGate,
  effectiveThresholds,
  toScores,
} from '../../src/evaluation/aggregate';
import {
  judgeAll,
  judgeAnswer,
  judgeRagSample,
  JUDGE_PROMPT_VERSION,
  type Judgement,
  type JudgeVerdict,
} from '../../src/evaluation/judge';
import { reply, ScriptedLlmServer, userMessage, type RecordedRequest } from '../support/scripted-llm-server';

const verdict = (accuracy: unknown, style: unknown) => ({
  accuracy: { analysis: 'Correct and complete.', score: accuracy },
  style: { analysis: 'Plain words, precise terms.', score: style },
});

/** The answer text inside a judge prompt, which the tests use to script per-sample behaviour. */
function answerOf(request: RecordedRequest): string {
  const user = userMessage(request);
  const start = user.indexOf('Answer to evaluate:\n');
  const end = user.indexOf('\n\nReply with one JSON object');
  return user.slice(start + 'Answer to evaluate:\n'.length, end);
}

describe('LLM-as-judge against a scripted OpenAI-compatible server', () => {
  let server: ScriptedLlmServer;
  let llm: LlmClient;
  const calls = new Map<string, number>();
  let inFlight = 0;
  let maxInFlight = 0;

  before(async () => {
    server = await new ScriptedLlmServer(async (request) => {
      const answer =
        request.body.response_format?.json_schema?.name === 'rag_judgement'
          ? `rag:${answerOf(request)}`
          : answerOf(request);
      const n = (calls.get(answer) ?? 0) + 1;
      calls.set(answer, n);
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        await new Promise((resolve) => setTimeout(resolve, 20));
        if (answer === 'good') return reply.json(verdict(3, 2));
        if (answer.startsWith('mixed-'))
          return reply.json(verdict(Number(answer.slice(6, 7)), Number(answer.slice(7, 8))));
        if (answer === 'not json') return reply.text('I would rate accuracy as 3 and style as 2.');
        if (answer === 'fenced')
          return reply.text(`Here you go:\n\`\`\`json\n${JSON.stringify(verdict(2, 2))}\n\`\`\``);
        if (answer === 'bad then good')
          return n === 1 ? reply.text('{"accuracy": {"analysis": "cut off') : reply.json(verdict(2, 3));
        if (answer === 'too high') return reply.json(verdict(4, 2));
        if (answer === 'zero') return reply.json(verdict(3, 0));
        if (answer === 'half') return reply.json(verdict(2.5, 2));
        if (answer === 'no style') return reply.json({ accuracy: { analysis: 'ok', score: 2 } });
        if (answer === 'string score') return reply.json(verdict('3', 2));
        if (answer === 'flaky') return n === 1 ? reply.error(503, 'overloaded') : reply.json(verdict(2, 2));
        if (answer === 'down') return reply.error(500, 'judge is down');
        if (answer === 'rag:grounded')
          return reply.json({
            faithfulness: { analysis: 'All supported.', score: 3 },
            contextRelevance: { analysis: 'On topic.', score: 2 },
          });
        if (answer === 'rag:invented')
          return reply.json({
            faithfulness: { analysis: 'Made up.', score: 1 },
            contextRelevance: { analysis: 'x', score: 5 },
          });
        return reply.error(400, `unscripted answer ${answer}`);
      } finally {
        inFlight -= 1;
      }
    }).start();
    llm = new LlmClient({
      model: 'judge-model',
      baseUrl: server.url,
      apiKey: 'test',
      maxRetries: 2,
      maxConcurrency: 16,
    });
  });

  after(async () => {
    await server.close();
  });

  const task = (answer: string) => ({
    id: answer,
    instruction: 'How do you version datasets?',
    reference: 'With a content hash of the rows.',
    answer,
  });

  test('a valid verdict: scores and analyses, the rubric, the reference answer and a JSON schema in the request', async () => {
    const outcome = await judgeAnswer(llm, task('good'));
    assert.deepEqual(outcome, { ok: true, verdict: verdict(3, 2), completions: 1 });
    const request = server.requests.find((r) => answerOf(r) === 'good');
    assert.ok(request);
    assert.equal(request.body.response_format?.type, 'json_schema');
    assert.equal(request.body.response_format?.json_schema?.name, 'judgement');
    const schema = JSON.stringify(request.body.response_format?.json_schema?.schema);
    // the 1–3 scale as an enum: grammar-constrained servers (llama.cpp, the local judge) enforce enums, not ranges
    assert.match(schema, /"score":\{"type":"number","enum":\[1,2,3\]\}/);
    assert.equal(request.body.temperature, 0);
    const prompt = userMessage(request);
    assert.match(prompt, /How do you version datasets\?/);
    assert.match(prompt, /With a content hash of the rows\./);
    assert.match(prompt, /3 \(Excellent\): perfectly accessible language for a blog or social media/);
    assert.match(JUDGE_PROMPT_VERSION, /^judge@1\+[0-9a-f]{12}$/);
  });

  test('JSON in a code fence is accepted; prose without JSON is a failure after every attempt', async () => {
    assert.deepEqual(await judgeAnswer(llm, task('fenced')), { ok: true, verdict: verdict(2, 2), completions: 1 });
    const failed = await judgeAnswer(llm, task('not json'), { attempts: 3 });
    assert.equal(failed.ok, false);
    assert.ok(!failed.ok);
    assert.equal(failed.reason, 'invalid-json');
    assert.equal(failed.completions, 3);
    assert.equal(failed.retryable, false);
    assert.equal(calls.get('not json'), 3, 'asked exactly `attempts` times');
  });

  test('an invalid first answer is asked again and the second one counts', async () => {
    const outcome = await judgeAnswer(llm, task('bad then good'), { attempts: 2 });
    assert.deepEqual(outcome, { ok: true, verdict: verdict(2, 3), completions: 2 });
  });

  test('scores outside 1–3 or not whole numbers are out-of-range failures; missing fields are invalid-shape', async () => {
    for (const [answer, reason] of [
      ['too high', 'out-of-range'],
      ['zero', 'out-of-range'],
      ['half', 'out-of-range'],
      ['no style', 'invalid-shape'],
      ['string score', 'invalid-shape'],
    ] as const) {
      const outcome = await judgeAnswer(llm, task(answer), { attempts: 1 });
      assert.ok(!outcome.ok, answer);
      assert.equal(outcome.reason, reason, `${answer}: ${outcome.detail}`);
      assert.equal(outcome.retryable, false);
    }
  });

  test('a 5xx is retried by the client and the verdict counts; a judge that stays down is a retryable llm-error', async () => {
    assert.deepEqual(await judgeAnswer(llm, task('flaky')), { ok: true, verdict: verdict(2, 2), completions: 1 });
    assert.equal(calls.get('flaky'), 2, 'one 503, then the answer');
    const down = await judgeAnswer(llm, task('down'));
    assert.ok(!down.ok);
    assert.equal(down.reason, 'llm-error');
    assert.equal(down.retryable, true);
    assert.match(down.detail, /HTTP 500/);
    assert.equal(calls.get('down'), 3, 'the first request and maxRetries=2 retries');
  });

  test('judgeAll: bounded concurrency, earlier verdicts reused, retryable failures asked again', async () => {
    maxInFlight = 0;
    const tasks = [1, 2, 3].flatMap((a) => [1, 2, 3].map((s) => task(`mixed-${a}${s}`)));
    const earlier: Judgement<JudgeVerdict> = {
      id: 'mixed-11',
      ok: true,
      verdict: verdict(1, 1) as JudgeVerdict,
      completions: 1,
    };
    const retryLater: Judgement<JudgeVerdict> = {
      id: 'mixed-22',
      ok: false,
      reason: 'llm-error',
      detail: 'x',
      completions: 1,
      retryable: true,
    };
    const seen: string[] = [];
    const judgements = await judgeAll(tasks, (t) => judgeAnswer(llm, t), {
      concurrency: 2,
      done: new Map<string, Judgement<JudgeVerdict>>([
        [earlier.id, earlier],
        [retryLater.id, retryLater],
      ]),
      onJudged: (j) => seen.push(j.id),
    });
    assert.equal(judgements.length, 9);
    assert.deepEqual(
      judgements.map((j) => j.id),
      tasks.map((t) => t.id),
      'results in task order',
    );
    assert.equal(calls.get('mixed-11'), undefined, 'a stored verdict is not asked again');
    assert.equal(calls.get('mixed-22'), 1, 'a retryable failure is asked again');
    assert.equal(seen.length, 8);
    assert.ok(maxInFlight <= 2, `at most 2 judge requests in flight, saw ${maxInFlight}`);
    assert.equal(maxInFlight, 2, 'and the two slots were used');

    const aggregate = aggregateJudgements(judgements);
    assert.equal(aggregate.samples, 9);
    assert.equal(aggregate.judgeFailures, 0);
    assert.equal(aggregate.accuracy.mean, 2);
    assert.equal(aggregate.style.mean, 2);
    assert.deepEqual(aggregate.accuracy.distribution, { 1: 3, 2: 3, 3: 3 });
  });

  test('aggregation scores only valid verdicts, counts failures by reason; the gate names what failed', async () => {
    const judgements = await judgeAll(
      ['good', 'mixed-13', 'too high', 'not json', 'mixed-21'].map(task),
      (t) => judgeAnswer(llm, t, { attempts: 1 }),
      { concurrency: 4 },
    );
    const aggregate = aggregateJudgements(judgements);
    assert.equal(aggregate.samples, 3);
    assert.equal(aggregate.judgeFailures, 2);
    assert.deepEqual(aggregate.failureReasons, { 'out-of-range': 1, 'invalid-json': 1 });
    assert.equal(aggregate.accuracy.mean, 2); // (3 + 1 + 2) / 3
    assert.equal(aggregate.style.mean, 2); // (2 + 3 + 1) / 3
    const scores = toScores(aggregate);
    assert.deepEqual(scores, { accuracy: 2, style: 2, samples: 3, judgeFailures: 2 });

    const lenient = decideGate({ scores, thresholds: { accuracy: 2, style: 2 }, judged: 5, maxJudgeFailureRate: 0.5 });
    assert.deepEqual(lenient, { passed: true, reasons: [] });
    const strict = decideGate({
      scores,
      thresholds: { accuracy: 2.5, style: 1.5 },
      judged: 5,
      maxJudgeFailureRate: 0.1,
    });
    assert.equal(strict.passed, false);
    assert.deepEqual(strict.reasons, ['accuracy 2.00 < threshold 2.5', 'judge failures 2/5 (40.0 %) > allowed 10.0 %']);
    const unmeasured = decideGate({
      scores,
      thresholds: { accuracy: 1, style: 1, faithfulness: 2 },
      judged: 5,
      maxJudgeFailureRate: 1,
      ragUnavailable: 'no questions',
    });
    assert.deepEqual(unmeasured.reasons, ['faithfulness: not measured (no questions), threshold 2']);
    const nothing = decideGate({
      scores: { accuracy: 0, style: 0, samples: 0, judgeFailures: 5 },
      thresholds: { accuracy: 1, style: 1 },
      judged: 5,
      maxJudgeFailureRate: 1,
    });
    assert.deepEqual(nothing.reasons, ['no sample was judged successfully']);
  });

  test('RAG judge: faithfulness and context relevance, out-of-range counted; hit rate over questions with a known source', async () => {
    const judgements = await judgeAll(
      [
        {
          id: 'a',
          question: 'What is GPTQ?',
          answer: 'grounded',
          contexts: ['GPTQ quantizes weights layer by layer.'],
        },
        { id: 'b', question: 'What is GPTQ?', answer: 'invented', contexts: [] },
      ],
      (t) => judgeRagSample(llm, t, { attempts: 1 }),
    );
    const request = server.requests.find((r) => r.body.response_format?.json_schema?.name === 'rag_judgement');
    assert.ok(request);
    assert.match(userMessage(request), /\[1\] GPTQ quantizes weights layer by layer\./);
    const rag = aggregateRag(judgements, [
      { knownSource: true, hit: true },
      { knownSource: true, hit: false },
      { knownSource: false, hit: false },
    ]);
    assert.equal(rag.samples, 1);
    assert.equal(rag.judgeFailures, 1);
    assert.deepEqual(rag.failureReasons, { 'out-of-range': 1 });
    assert.equal(rag.faithfulness.mean, 3);
    assert.equal(rag.contextRelevance.mean, 2);
    assert.equal(rag.hitRate, 0.5);
    assert.equal(rag.withKnownSource, 2);
  });

  test('thresholds: configured values, overridden per run, validated', () => {
    assert.deepEqual(effectiveThresholds({ accuracy: 2, style: 2, faithfulness: 2 }, { style: 1.5 }), {
      accuracy: 2,
      style: 1.5,
      faithfulness: 2,
    });
    assert.deepEqual(effectiveThresholds({ accuracy: 2, style: 2, faithfulness: 2 }, { faithfulness: undefined }), {
      accuracy: 2,
      style: 2,
    });
    assert.throws(
      () => effectiveThresholds({ accuracy: 2, style: 2 }, { accuracy: 4 }),
      /accuracy must be between 0 and 3/,
    );
  });
});
