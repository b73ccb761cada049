import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  isNewerDataset,
  planTraining,
  SKIPPED_NO_NEW_DATA,
  type DatasetCandidate,
  type TrainedModelInfo,
  type TrainingFacts,
} from '../../src/pipelines/freshness';

const dataset = (id: string, createdAt: string, count = 40): DatasetCandidate => ({
  artifactId: id,
  version: `v-${id}`,
  createdAt,
  count,
});
const model = (version: string, datasetArtifactId: string, datasetCreatedAt?: string): TrainedModelInfo => ({
  modelVersion: version,
  datasetArtifactId,
  ...(datasetCreatedAt ? { datasetCreatedAt } : {}),
  createdAt: '2026-11-01T00:00:00.000Z',
});
const T1 = '2026-10-01T00:00:00.000Z';
const T2 = '2026-10-02T00:00:00.000Z';

describe('dataset-version freshness', () => {
  test('newer = a different artifact recorded later; the same artifact or an older one is not newer', () => {
    assert.equal(isNewerDataset(dataset('a', T2), null), true);
    assert.equal(isNewerDataset(dataset('a', T2), model('m', 'a', T2)), false);
    assert.equal(isNewerDataset(dataset('b', T2), model('m', 'a', T1)), true);
    assert.equal(isNewerDataset(dataset('b', T1), model('m', 'a', T2)), false);
    assert.equal(isNewerDataset(dataset('b', T1), model('m', 'gone')), true, 'trained-on artifact unknown');
  });

  test('nothing at all, or everything trained on already: skipped: no new data', () => {
    const none = planTraining({ instruction: null, preference: null, lastSft: null, lastDpo: null }, { dpo: true });
    assert.equal(none.action, 'skip');
    assert.equal(none.action === 'skip' && none.reason, SKIPPED_NO_NEW_DATA);
    assert.match(none.action === 'skip' ? none.detail : '', /no instruction dataset/);
    const done: TrainingFacts = {
      instruction: dataset('i1', T1),
      preference: dataset('p1', T1),
      lastSft: model('sft-1', 'i1', T1),
      lastDpo: model('dpo-1', 'p1', T1),
    };
    const plan = planTraining(done, { dpo: true });
    assert.deepEqual(plan.action === 'skip' && [plan.reason, plan.detail], [
      SKIPPED_NO_NEW_DATA,
      'the newest instruction dataset i1 and preference dataset p1 were trained on already',
    ]);
  });

  test('a newer instruction dataset: SFT on it, then DPO on the newest preference dataset on top of the new SFT model', () => {
    const plan = planTraining(
      {
        instruction: dataset('i2', T2),
        preference: dataset('p1', T1),
        lastSft: model('sft-1', 'i1', T1),
        lastDpo: model('dpo-1', 'p1', T1),
      },
      { dpo: true },
    );
    assert.equal(plan.action, 'train');
    assert.deepEqual(plan.action === 'train' && [plan.sft, plan.dpo], [
      { dataset: 'i2' },
      { dataset: 'p1', base: 'new-sft' },
    ]);
    const sftOnly = planTraining(
      { instruction: dataset('i2', T2), preference: dataset('p1', T1), lastSft: null, lastDpo: null },
      { dpo: false },
    );
    assert.deepEqual(sftOnly.action === 'train' && [sftOnly.sft, sftOnly.dpo], [{ dataset: 'i2' }, null]);
  });

  test('only a newer preference dataset: DPO on top of the last SFT model; without an SFT model nothing to do', () => {
    const plan = planTraining(
      {
        instruction: dataset('i1', T1),
        preference: dataset('p2', T2),
        lastSft: model('sft-1', 'i1', T1),
        lastDpo: model('dpo-1', 'p1', T1),
      },
      { dpo: true },
    );
    assert.deepEqual(plan.action === 'train' && [plan.sft, plan.dpo], [
      null,
      { dataset: 'p2', base: { modelVersion: 'sft-1' } },
    ]);
    const noDpo = planTraining(
      {
        instruction: dataset('i1', T1),
        preference: dataset('p2', T2),
        lastSft: model('sft-1', 'i1', T1),
        lastDpo: null,
      },
      { dpo: false },
    );
    assert.equal(noDpo.action, 'skip');
  });

  test('an empty dataset version is never trained on', () => {
    const plan = planTraining(
      { instruction: dataset('i2', T2, 0), preference: null, lastSft: model('sft-1', 'i1', T1), lastDpo: null },
      { dpo: true },
    );
    assert.equal(plan.action, 'skip');
  });
});
