import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  metricDefinitions,
  metricRegex,
  parseJobLine,
  latestMetrics,
  type MetricPoint,
} from '../../src/training/metrics';
import { packageSourceDir, sourceDirFiles, sourceDirKey } from '../../src/training/sourcedir';
import {
  effectiveHyperparameters,
  hyperparameterArgs,
  InvalidTrainingInput,
  JOB_NAME_PATTERN,
  trainingJobName,
} from '../../src/training/spec';
import { JOB_DIR } from './helpers';

describe('training job names', () => {
  test('are valid SageMaker names, deterministic, and differ when the inputs differ', () => {
    const long = 'endToEnd/2024-06-01T10:00:00Z/child:trainModel-sft-with-a-very-long-workflow-id-that-goes-on';
    const name = trainingJobName(long, 'sft', { dataset: 'a' });
    assert.ok(name.length <= 63, name);
    assert.match(name, JOB_NAME_PATTERN);
    assert.match(name, /^twin-sft-endtoend-2024-06-01t10-00-00z-child-[a-z0-9-]*-[0-9a-f]{10}$/);
    assert.equal(trainingJobName(long, 'sft', { dataset: 'a' }), name, 'same workflow + inputs → same job');
    assert.notEqual(trainingJobName(long, 'sft', { dataset: 'b' }), name, 'other inputs → another job');
    assert.notEqual(trainingJobName(`${long}-2`, 'sft', { dataset: 'a' }), name, 'another workflow → another job');
    assert.match(trainingJobName('___', 'dpo', {}), /^twin-dpo-[0-9a-f]{10}$/);
    for (const id of ['a', 'x'.repeat(300), '--weird--id--', 'ÜNÏCÖDÉ-✓'])
      assert.match(trainingJobName(id, 'dpo', {}), JOB_NAME_PATTERN);
  });
});

describe('hyperparameters', () => {
  test('unknown names, bad values and mode mismatches are rejected before any job starts', () => {
    assert.throws(
      () => effectiveHyperparameters('sft', { lora_rank: 8 }),
      (e: Error) => e instanceof InvalidTrainingInput && /unknown hyperparameter "lora_rank"/.test(e.message),
    );
    assert.throws(() => effectiveHyperparameters('sft', { learning_rate: -1 }), /learning_rate/);
    assert.throws(() => effectiveHyperparameters('sft', { beta: 0.1 }), /beta applies to dpo only/);
    assert.throws(() => effectiveHyperparameters('dpo', { general_dataset_ratio: 0.5 }), /sft only/);
  });

  test('overrides win, lists become comma strings, and the job gets --name value arguments in name order', () => {
    const hp = effectiveHyperparameters('sft', { lora_r: 8, lora_target_modules: ['q_proj', 'v_proj'], bf16: true });
    assert.equal(hp.lora_r, 8);
    assert.equal(hp.lora_target_modules, 'q_proj,v_proj');
    const args = hyperparameterArgs({ seed: 1, bf16: true, lora_r: 8, general_dataset: '' });
    assert.deepEqual(args, ['--bf16', 'true', '--lora_r', '8', '--seed', '1']);
  });
});

describe('metric lines', () => {
  const lines = [
    '{"metric": "train_loss", "value": 1.25, "step": 3, "epoch": 0.5}',
    '{"metric": "train_loss", "value": "0.75", "step": 4}',
    "{'loss': '0.75', 'grad_norm': '0.2'}",
    '{"metric": "eval_loss", "value": null, "note": "nan"}',
    '{"event": "phase", "phase": "Training", "max_steps": 9}',
    '{"event": "error", "message": "boom"}',
    'Loading weights: 100%',
  ];

  test('parse into metric points, phases and errors; quoted numbers count, NaN (null) does not', () => {
    const parsed = lines.map(parseJobLine);
    assert.deepEqual(parsed[0], { kind: 'metric', point: { metric: 'train_loss', value: 1.25, step: 3, epoch: 0.5 } });
    assert.deepEqual(parsed[1], { kind: 'metric', point: { metric: 'train_loss', value: 0.75, step: 4 } });
    assert.equal(parsed[2], undefined);
    assert.equal(parsed[3], undefined);
    assert.deepEqual(parsed[4], { kind: 'phase', phase: 'Training' });
    assert.deepEqual(parsed[5], { kind: 'error', message: 'boom' });
    assert.equal(parsed[6], undefined);
    const points: MetricPoint[] = parsed.flatMap((p) => (p?.kind === 'metric' ? [p.point] : []));
    assert.deepEqual(latestMetrics(points), { train_loss: 0.75 });
  });

  test('the SageMaker metric regexes pick the same values out of the same lines', () => {
    const regex = new RegExp(metricRegex('train_loss'));
    assert.equal(regex.exec(lines[0]!)?.[1], '1.25');
    assert.equal(regex.exec(lines[1]!)?.[1], '0.75');
    assert.equal(regex.exec('{"metric": "train_loss_mean", "value": 2}'), null, 'no prefix collisions');
    assert.equal(
      new RegExp(metricRegex('grad_norm')).exec('{"metric": "grad_norm", "value": 3.5e-05, "step": 1}')?.[1],
      '3.5e-05',
    );
    const definitions = metricDefinitions();
    assert.ok(definitions.length <= 40, 'SageMaker allows 40 metric definitions');
    for (const d of definitions) {
      assert.ok(d.Regex.length <= 500 && /^[a-zA-Z0-9_]+$/.test(d.Name), d.Name);
      assert.doesNotThrow(() => new RegExp(d.Regex));
    }
  });
});

describe('sourcedir.tar.gz', () => {
  test('is byte-for-byte reproducible, holds the job code only, and changes when the code changes', async () => {
    const first = await packageSourceDir();
    const second = await packageSourceDir();
    assert.equal(first.checksum, second.checksum);
    assert.equal(first.checksum, `sha256:${createHash('sha256').update(first.bytes).digest('hex')}`);
    assert.deepEqual(first.files, ['chat_template.jinja', 'defaults.json', 'requirements.txt', 'train.py']);
    assert.equal(sourceDirKey(first.checksum), `training/code/${first.checksum.slice(7, 23)}/sourcedir.tar.gz`);

    const out = mkdtempSync(path.join(os.tmpdir(), 'sourcedir-'));
    writeFileSync(path.join(out, 'sourcedir.tar.gz'), first.bytes);
    const listing = execFileSync('tar', ['-tvzf', path.join(out, 'sourcedir.tar.gz')], {
      encoding: 'utf8',
      env: { ...process.env, TZ: 'UTC' },
    })
      .trim()
      .split('\n');
    assert.equal(listing.length, 4);
    for (const line of listing) assert.match(line, /^-rw-r--r-- 0\/0 .* 1970-01-01 00:00 /, line);
    execFileSync('tar', ['-xzf', path.join(out, 'sourcedir.tar.gz'), '-C', out]);
    for (const file of first.files)
      assert.equal(readFileSync(path.join(out, file), 'utf8'), readFileSync(path.join(JOB_DIR, file), 'utf8'));

    // A copy of the job with one byte changed packages to another hash.
    const copy = mkdtempSync(path.join(os.tmpdir(), 'job-copy-'));
    for (const file of await sourceDirFiles())
      writeFileSync(path.join(copy, file), readFileSync(path.join(JOB_DIR, file)));
    assert.equal(
      (await packageSourceDir(copy)).checksum,
      first.checksum,
      'the same files elsewhere → the same package',
    );
    writeFileSync(path.join(copy, 'train.py'), `${readFileSync(path.join(JOB_DIR, 'train.py'), 'utf8')}\n`);
    assert.notEqual((await packageSourceDir(copy)).checksum, first.checksum);
  });
});
