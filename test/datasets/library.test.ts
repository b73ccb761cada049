/** Pure parts of the dataset library: extracts, prompts, tokenizer, filters, dedupe, split, JSONL, LLM helpers. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildDataset, rowId } from '../../src/datasets/build';
import { dedupeByInstruction, jaccard, normalizeInstruction, shingles, wordSet } from '../../src/datasets/dedupe';
import { extractId, splitIntoExtracts } from '../../src/datasets/extracts';
import { checkPreferenceTriple, isVerbatim, mentionsSource } from '../../src/datasets/filters';
import { datasetRowsToJsonl, parseDatasetRows, parseJsonl, toJsonl } from '../../src/datasets/jsonl';
import { INSTRUCTION_TEMPLATE, promptVersion, renderPrompt } from '../../src/datasets/prompts';
import { seededOrder, splitByCategory, testSizeFor } from '../../src/datasets/split';
import type { ExtractAnswer } from '../../src/datasets/types';
import type { CleanedArticleDocument } from '../../src/domain/documents';
import { estimateCostUsd, parseJsonLoose, priceFor, retryAfterMs } from '../../src/infra/llm';
import { gptTokenizer } from '../../src/infra/tokenizer';
import { syntheticExtract, syntheticSentence } from './helpers';

function article(content: string, id = 'doc-1'): CleanedArticleDocument {
  return {
    id,
    category: 'articles',
    platform: 'blog',
    author_id: 'a1',
    author_full_name: 'Ada Writer',
    content,
    title: null,
    link: 'https://example.com/a',
  };
}

describe('extracts', () => {
  const sentences = Array.from({ length: 40 }, (_, i) => syntheticSentence(i));
  const paragraphs = [0, 1, 2, 3, 4, 5, 6, 7].map((p) => sentences.slice(p * 5, p * 5 + 5).join(' '));
  const content = `# A heading\n\n${paragraphs.join('\n\n')}\n`;

  test('are verbatim slices of 1–2k characters that end on sentence ends, with deterministic ids', () => {
    const extracts = splitIntoExtracts(article(content));
    assert.ok(extracts.length >= 3);
    for (const [i, extract] of extracts.entries()) {
      assert.equal(content.slice(extract.start, extract.end), extract.text);
      assert.ok(extract.text.length <= 2000, `extract ${i} has ${extract.text.length} chars`);
      if (i < extracts.length - 1)
        assert.ok(extract.text.length >= 1000, `extract ${i} has ${extract.text.length} chars`);
      assert.match(extract.text, /[.!?]$/);
      assert.equal(extract.id, extractId('doc-1', extract.text));
      assert.equal(extract.index, i);
    }
    // Consecutive extracts cover the document in order without overlap.
    for (let i = 1; i < extracts.length; i += 1) assert.ok((extracts[i]?.start ?? 0) >= (extracts[i - 1]?.end ?? 0));
    assert.deepEqual(splitIntoExtracts(article(content)), extracts);
    assert.notEqual(splitIntoExtracts(article(content, 'doc-2'))[0]?.id, extracts[0]?.id);
  });

  test('do not end after an abbreviation or an initial, and keep fenced code whole', () => {
    const code =
      '```python\n' +
      Array.from({ length: 12 }, (_, i) => `value_${i} = compute(${i})  # step ${i}. done.`).join('\n') +
      '\n```';
    const text = `${sentences.slice(0, 6).join(' ')} As Dr. Smith and J. Doe showed, e.g. in 2020, it works.\n\n${code}\n\n${sentences.slice(6, 14).join(' ')}`;
    const extracts = splitIntoExtracts(article(text));
    for (const extract of extracts) {
      assert.doesNotMatch(extract.text, /(?:Dr|e\.g|J)\.$/);
      const fences = extract.text.match(/```/g)?.length ?? 0;
      assert.equal(fences % 2, 0, 'a code block is never cut');
    }
    assert.ok(extracts.some((e) => e.text.includes(code)));
  });

  test('a short document gives one extract if long enough to be worth a prompt, none otherwise', () => {
    assert.equal(splitIntoExtracts(article(sentences.slice(0, 5).join(' '))).length, 1);
    assert.equal(splitIntoExtracts(article('Too short to ask five questions about.')).length, 0);
    assert.throws(() => splitIntoExtracts(article(content), { minChars: 3000, maxChars: 2000 }), RangeError);
  });

  test('a run without sentence ends longer than the maximum is split at whitespace', () => {
    const run = Array.from({ length: 600 }, (_, i) => `word${i}`).join(' ');
    const extracts = splitIntoExtracts(article(run));
    assert.ok(extracts.length >= 2);
    for (const extract of extracts) {
      assert.ok(extract.text.length <= 2000);
      assert.doesNotMatch(extract.text, /^\S*\d\S* $/);
    }
    assert.equal(extracts.map((e) => e.text).join(' '), run);
  });
});

describe('prompts and tokenizer', () => {
  test('prompt versions hash the template text; any edit is a new version', () => {
    const v = promptVersion(INSTRUCTION_TEMPLATE);
    assert.match(v, /^instruction-pairs@1\+[0-9a-f]{8}$/);
    assert.notEqual(promptVersion({ ...INSTRUCTION_TEMPLATE, user: `${INSTRUCTION_TEMPLATE.user} ` }), v);
  });

  test('the prompt carries n, the author and the extract; a long extract is cut at a sentence end to the budget', () => {
    const extract = syntheticExtract(1);
    const full = renderPrompt('instruction', extract, { samplesPerExtract: 5 });
    assert.equal(full.truncated, false);
    assert.ok(
      full.user.includes(extract.text) &&
        full.user.includes('Write 5 instruction/answer pairs') &&
        full.user.includes('Test Author'),
    );
    assert.ok(!/\{\{\w+\}\}/.test(full.user));

    const tokenizer = gptTokenizer();
    const small = renderPrompt('instruction', extract, {
      samplesPerExtract: 5,
      maxPromptTokens: full.promptTokens - 40,
      tokenizer,
    });
    assert.equal(small.truncated, true);
    assert.ok(extract.text.startsWith(small.extractText));
    assert.match(small.extractText, /\.$/);
    assert.ok(tokenizer.count(small.system) + tokenizer.count(small.user) <= full.promptTokens - 40);
    assert.throws(
      () => renderPrompt('instruction', extract, { samplesPerExtract: 5, maxPromptTokens: 100 }),
      RangeError,
    );
  });

  test('o200k tokenizer counts and truncates without splitting words', () => {
    const tokenizer = gptTokenizer();
    assert.equal(tokenizer.count('Hello world'), 2);
    const text = 'One sentence here. Another sentence follows it. And a third one ends the text.';
    assert.equal(tokenizer.truncate(text, 1000), text);
    const twoSentences = 'One sentence here. Another sentence follows it.';
    assert.equal(tokenizer.truncate(text, tokenizer.count(twoSentences) + 2), twoSentences);
    assert.equal(tokenizer.truncate(text, 6), 'One sentence here.');
    const run = 'alpha beta gamma delta epsilon zeta eta theta iota kappa lambda';
    const words = tokenizer.truncate(run, 5);
    assert.ok(run.startsWith(`${words} `) && tokenizer.count(words) <= 5, words);
    assert.equal(tokenizer.truncate(text, 0), '');
    // Texts about LLMs contain chat-template markers; they are plain text here, not control tokens.
    assert.ok(tokenizer.count('Start with <|im_start|>user and end with <|endoftext|>.') > 5);
    const marked = 'A <|im_start|> marker.';
    assert.equal(tokenizer.truncate(`${marked} Then more text follows here.`, tokenizer.count(marked) + 2), marked);
  });
});

describe('filters', () => {
  test('instructions that point at the source are caught; questions about text processing are not', () => {
    for (const bad of [
      'What does the context say about LoRA?',
      'According to the extract, why is DPO stable?',
      'Summarize the passage above.',
      'In this excerpt, what is the main claim?',
      'What does the text say about quantization?',
      'Based on the provided article, list the steps.',
      'What does the author argue about RAG?',
    ]) {
      assert.equal(mentionsSource(bad), true, bad);
    }
    for (const good of [
      'How large is the context window of Llama 3.1?',
      'How should the text be split into chunks before embedding?',
      'Why does increasing the context length slow down attention?',
      'What is a text embedding model used for?',
      'Write an article introduction about model merging.',
    ]) {
      assert.equal(mentionsSource(good), false, good);
    }
  });

  test('chosen is verbatim after whitespace and quote normalisation only', () => {
    const extract = 'He said \u201cthe model\u201d was\nready.  It shipped on time \u2014 mostly.';
    assert.equal(isVerbatim('He said "the model" was ready. It shipped', extract), true);
    assert.equal(isVerbatim('It shipped on time - mostly.', extract), true);
    assert.equal(isVerbatim('He said the model was ready.', extract), false);
    assert.equal(isVerbatim('', extract), false);
  });

  test('each preference rule drops with its own reason', () => {
    const extract = `${syntheticSentence(1)} ${syntheticSentence(2)} lowercase start of a long sentence that goes on and on without any ending punctuation at all here`;
    const chosen = syntheticSentence(1);
    const ok = { instruction: 'Why does the gradient budget matter here?', rejected: 'It depends.', chosen };
    assert.equal(checkPreferenceTriple(ok, extract), null);
    assert.equal(
      checkPreferenceTriple(
        {
          ...ok,
          chosen:
            'Not in there at all, not one bit of it, whatever the model may have believed at the time of writing.',
        },
        extract,
      ),
      'chosen-not-verbatim',
    );
    assert.equal(checkPreferenceTriple({ ...ok, chosen: chosen.slice(0, 60).trim() }, extract), 'chosen-too-short');
    const lower =
      'lowercase start of a long sentence that goes on and on, and then on some more, until it finally ends here.';
    assert.equal(checkPreferenceTriple({ ...ok, chosen: lower }, `${extract} ${lower}`), 'chosen-not-capitalized');
    assert.equal(
      checkPreferenceTriple({ ...ok, chosen: chosen.slice(0, -1) }, extract),
      'chosen-no-terminal-punctuation',
    );
    assert.equal(checkPreferenceTriple({ ...ok, rejected: chosen.toUpperCase() }, extract), 'rejected-equals-chosen');
    assert.equal(
      checkPreferenceTriple({ ...ok, instruction: 'What does this passage claim?' }, extract),
      'instruction-mentions-source',
    );
  });
});

describe('dedupe', () => {
  test('normalised duplicates and close rephrasings go; different questions stay', () => {
    assert.equal(normalizeInstruction('  What is LoRA?! '), 'what is lora');
    const words = (s: string) => wordSet(normalizeInstruction(s));
    assert.ok(jaccard(words('How does DPO differ from PPO?'), words('How does DPO differ from SFT?')) < 0.8);
    const items = [
      'How does LoRA reduce the memory needed for fine-tuning large models?',
      'How does DPO differ from PPO?',
      'how does lora reduce the memory needed for fine tuning large models',
      'How does DPO differ from SFT?',
      'How does LoRA reduce the memory needed for the fine-tuning of large models?',
      'How does LoRA reduce the memory needed when fine-tuning large models?',
      'What is LoRA?',
      'Why is full fine-tuning better than LoRA?',
      'Why is LoRA better than full fine-tuning?',
    ];
    const { kept, dropped } = dedupeByInstruction(items, (s) => s);
    assert.deepEqual(kept, [items[0], items[1], items[3], items[6], items[7], items[8]]);
    assert.deepEqual(
      dropped.map((d) => [d.item, d.reason, d.duplicateOf]),
      [
        [items[2], 'duplicate-instruction', items[0]],
        [items[4], 'near-duplicate-instruction', items[0]],
        [items[5], 'near-duplicate-instruction', items[0]],
      ],
    );
  });

  test('prefix filtering finds the same near-duplicates as comparing every pair', () => {
    const items = Array.from({ length: 300 }, (_, i) => {
      const base = syntheticSentence(i % 120).slice(0, 60 + (i % 7) * 5);
      return i % 3 === 0 ? `${base} now` : base;
    });
    const threshold = 0.8;
    const { kept } = dedupeByInstruction(items, (s) => s, { threshold });
    // Brute force: keep an item when it is neither equal to nor near any kept one.
    const brute: string[] = [];
    const near = (a: string, b: string) =>
      jaccard(wordSet(normalizeInstruction(a)), wordSet(normalizeInstruction(b))) >= threshold &&
      jaccard(shingles(normalizeInstruction(a)), shingles(normalizeInstruction(b))) >= 0.6;
    for (const item of items) {
      if (!brute.some((k) => normalizeInstruction(k) === normalizeInstruction(item) || near(k, item))) brute.push(item);
    }
    assert.ok(
      brute.length < items.length * 0.9 && brute.length > 50,
      `${brute.length} kept: the case exercises near-duplicates`,
    );
    assert.deepEqual(kept, brute);
  });
});

describe('split', () => {
  const items = Array.from({ length: 200 }, (_, i) => ({
    id: `row-${i}`,
    category: i % 4 === 0 ? 'posts' : 'articles',
  }));
  const options = {
    testFraction: 0.1,
    seed: 7,
    categoryOf: (x: { category: string }) => x.category,
    idOf: (x: { id: string }) => x.id,
  };

  test('is per category, deterministic, and independent of input order', () => {
    const a = splitByCategory(items, options);
    assert.deepEqual(a.perCategory, { articles: { train: 135, test: 15 }, posts: { train: 45, test: 5 } });
    assert.equal(a.train.length + a.test.length, 200);
    assert.equal(new Set([...a.train, ...a.test].map((x) => x.id)).size, 200);
    const b = splitByCategory([...items].reverse(), options);
    assert.deepEqual(b, a);
    const c = splitByCategory(items, { ...options, seed: 8 });
    assert.notDeepEqual(c.test.map((x) => x.id).sort(), a.test.map((x) => x.id).sort());
    assert.notDeepEqual(
      a.train.slice(0, 10),
      items.filter((x) => !a.test.includes(x)).slice(0, 10),
      'shuffled, not input order',
    );
  });

  test('adding samples does not move existing samples between splits much', () => {
    const a = splitByCategory(items, options);
    const more = [...items, ...Array.from({ length: 20 }, (_, i) => ({ id: `new-${i}`, category: 'articles' }))];
    const b = splitByCategory(more, options);
    const testA = new Set(a.test.filter((x) => x.category === 'articles').map((x) => x.id));
    const testB = new Set(b.test.filter((x) => x.category === 'articles').map((x) => x.id));
    const stayed = [...testA].filter((id) => testB.has(id)).length;
    assert.ok(stayed >= testA.size - 2, `${stayed} of ${testA.size} test rows stayed in test`);
  });

  test('test sizes follow ceil(n·f), never the whole category', () => {
    assert.deepEqual(
      [0, 1, 2, 10, 11, 41].map((n) => testSizeFor(n, 0.05)),
      [0, 0, 1, 1, 1, 3],
    );
    assert.equal(testSizeFor(10, 0.1), 1);
    assert.equal(testSizeFor(100, 0), 0);
    assert.deepEqual(
      seededOrder(['a', 'b', 'c'], 1, (x) => x),
      seededOrder(['c', 'a', 'b'], 1, (x) => x),
    );
    assert.throws(() => splitByCategory(items, { ...options, testFraction: 1 }), RangeError);
  });
});

describe('JSONL', () => {
  test('rows round-trip with exact columns in a fixed order, and bad lines are named', () => {
    const rows = [
      { output: 'Answer "quoted"\nwith a newline and ünïcode', instruction: 'Q1?' },
      { instruction: 'Q2?', output: 'A2' },
    ];
    const text = datasetRowsToJsonl('instruction', rows);
    assert.equal(text.split('\n').length, 3);
    assert.ok(text.endsWith('\n'));
    assert.ok(text.startsWith('{"instruction":"Q1?","output":'));
    assert.deepEqual(parseDatasetRows('instruction', text), [
      { instruction: 'Q1?', output: rows[0]?.output },
      { instruction: 'Q2?', output: 'A2' },
    ]);
    assert.throws(
      () => parseDatasetRows('instruction', `${text}{"instruction":"x","output":"y","extra":1}\n`),
      /line 3/,
    );
    assert.throws(() => parseDatasetRows('preference', text), /line 1/);
    assert.throws(() => parseJsonl('{"a":1}\nnot json\n'), /line 2: not JSON/);
    assert.deepEqual(parseJsonl(toJsonl([{ a: 1 }, { b: [2] }])), [{ a: 1 }, { b: [2] }]);
  });

  test('buildDataset maps items to the HF columns and is independent of answer order', () => {
    const answer = (i: number): ExtractAnswer => ({
      extract_id: `e${i}`,
      document_id: `d${i}`,
      category: 'articles',
      extract_text: 'x',
      truncated: false,
      type: 'instruction',
      prompt_version: 'p',
      model: 'm',
      status: 'answered',
      items: [{ instruction: `Why is number ${i} ${'very '.repeat(i)}special?`, answer: `Because of ${i}.` }],
      invalid_items: 0,
      invalid_reasons: {},
      requested: 5,
      attempts: 1,
      http_attempts: 1,
      input_tokens: 10,
      output_tokens: 5,
    });
    const answers = Array.from({ length: 12 }, (_, i) => answer(i));
    const built = buildDataset('instruction', answers);
    assert.deepEqual(buildDataset('instruction', [...answers].reverse()), built);
    assert.equal(built.test.length, 2);
    assert.equal(built.provenance.length, 12);
    assert.deepEqual(
      built.provenance.slice(0, built.train.length).map((p) => p.id),
      built.train.map(rowId),
    );
    assert.deepEqual(Object.keys(built.train[0] ?? {}), ['instruction', 'output']);
    assert.throws(
      () => buildDataset('instruction', [answer(1), { ...answer(2), prompt_version: 'q' }]),
      /different prompt versions/,
    );
  });
});

describe('LLM helpers', () => {
  test('lenient JSON parsing, Retry-After and prices', () => {
    assert.deepEqual(parseJsonLoose('{"a":1}'), { ok: true, value: { a: 1 } });
    assert.deepEqual(parseJsonLoose('Sure:\n```json\n{"a":[1]}\n```'), { ok: true, value: { a: [1] } });
    assert.deepEqual(parseJsonLoose('Result: [1, 2] done'), { ok: true, value: [1, 2] });
    assert.equal(parseJsonLoose('{"a":').ok, false);
    assert.equal(parseJsonLoose('   ').ok, false);
    assert.equal(retryAfterMs(new Headers({ 'retry-after': '2' })), 2000);
    assert.equal(retryAfterMs(new Headers({ 'retry-after-ms': '150', 'retry-after': '2' })), 150);
    assert.equal(retryAfterMs(new Headers({ 'retry-after': new Date(10_000).toUTCString() }), 4_000), 6_000);
    assert.equal(retryAfterMs(new Headers()), undefined);
    assert.equal(priceFor('gpt-4o-mini-2024-07-18')?.inputPerMillion, 0.15);
    assert.equal(priceFor('gpt-4o-2024-08-06')?.inputPerMillion, 2.5);
    assert.equal(priceFor('gemma-3-270m'), null);
    assert.equal(estimateCostUsd('gpt-4.1', 1_000_000, 500_000), 6);
    assert.equal(estimateCostUsd('local', 10, 10, { local: { inputPerMillion: 0, outputPerMillion: 0 } }), 0);
  });
});
