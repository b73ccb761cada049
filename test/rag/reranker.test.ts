/**
 * The in-process cross-encoder (ONNX through @huggingface/transformers) against PyTorch on the same weights: a real
 * BERT cross-encoder graph built by test/rag/fixtures/make_cross_encoder.py and installed with
 * scripts/install-reranker-model.sh (no registry package ships ms-marco weights; see docs/rag.md).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CrossEncoderReranker, RerankerNotInstalledError, rerankerInstalled } from '../../src/rag/reranker';
import { buildFixtureCrossEncoder } from './helpers';

const QUERY = 'How does LoRA reduce the memory needed to fine-tune a large language model?';
const PASSAGES = [
  'LoRA freezes the pretrained weights and trains small low-rank adapter matrices, so far fewer parameters need gradients and optimizer state.',
  'Iterating over a pandas DataFrame with iterrows is slow; vectorised operations are much faster.',
  'GraphSAGE samples a fixed number of neighbours per node to scale graph neural networks.',
  'QLoRA quantizes the frozen base model to 4 bits and trains LoRA adapters on top of it.',
  'Pulumi lets you write infrastructure as code in Python.',
  'A short one.',
  'Direct Preference Optimization fine-tunes a model on pairs of chosen and rejected answers without a reward model. '.repeat(
    8,
  ),
];

describe('cross-encoder reranker (ONNX, in process)', () => {
  let dir: string;
  let reference: number[];
  let reranker: CrossEncoderReranker;

  before(async () => {
    const root = mkdtempSync(join(process.env.TWIN_TEST_TMP ?? tmpdir(), 'reranker-'));
    dir = join(root, 'cross-encoder');
    reference = buildFixtureCrossEncoder(
      dir,
      PASSAGES.map((p) => [QUERY, p]),
    );
    // batches of 3: the 7 passages span three batches with different padding
    reranker = await CrossEncoderReranker.load(dir, { batchSize: 3 });
  });

  after(async () => {
    await reranker?.close();
    if (dir) rmSync(join(dir, '..'), { recursive: true, force: true });
  });

  test('the install script laid the model out for transformers.js', () => {
    assert.equal(rerankerInstalled(dir), true);
    assert.equal(reranker.modelId, `${dir}-source`, 'model id from reranker.json');
  });

  test('scores equal PyTorch’s logits for the same pairs (across batches and padding)', async () => {
    const scores = await reranker.score(QUERY, PASSAGES);
    assert.equal(scores.length, PASSAGES.length);
    for (let i = 0; i < scores.length; i++) {
      assert.ok(Math.abs(scores[i]! - reference[i]!) < 1e-3, `pair ${i}: onnx ${scores[i]} vs torch ${reference[i]}`);
    }
    // the scores are spread, so an order derived from them is meaningful
    assert.ok(Math.max(...scores) - Math.min(...scores) > 0.5, scores.join(', '));
  });

  test('a score does not depend on the other passages of the batch', async () => {
    const alone = await reranker.score(QUERY, [PASSAGES[3]!]);
    const together = await reranker.score(QUERY, PASSAGES);
    assert.ok(Math.abs(alone[0]! - together[3]!) < 1e-4);
    assert.deepEqual(await reranker.score(QUERY, []), []);
  });

  test('a missing model is a clear error', async () => {
    await assert.rejects(CrossEncoderReranker.load(join(dir, 'nope')), RerankerNotInstalledError);
  });
});
