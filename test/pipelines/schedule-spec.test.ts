import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { ScheduleDescription } from '@temporalio/client';
import {
  changedPaths,
  decideApply,
  parseScheduleSpec,
  ScheduleSpecError,
  specChecksum,
  toScheduleOptions,
  toScheduleUpdate,
} from '../../src/pipelines/schedule-spec';

const SPECS = path.resolve(__dirname, '..', '..', 'configs', 'schedules');

const minimal = `
id: nightly
spec:
  cron: '0 3 * * *'
action:
  workflow: continuousTraining
`;

/** What describe() returns for a schedule made from `options` (only the fields apply looks at). */
function described(spec: ReturnType<typeof parseScheduleSpec>, paused = false): ScheduleDescription {
  const options = toScheduleOptions(spec);
  return {
    scheduleId: spec.id,
    action: { ...options.action, memo: options.action.memo },
    state: { paused, note: spec.note },
  } as unknown as ScheduleDescription;
}

describe('schedule specs (configs/schedules/*.yaml)', () => {
  test('every committed spec parses and compiles', () => {
    const files = readdirSync(SPECS).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length >= 1);
    for (const file of files) {
      const spec = parseScheduleSpec(readFileSync(path.join(SPECS, file), 'utf8'), file);
      const options = toScheduleOptions(spec);
      assert.equal(options.policies?.overlap, 'SKIP', file);
      assert.equal(options.policies?.pauseOnFailure, true, file);
      assert.ok(options.policies?.catchupWindow, file);
    }
  });

  test('defaults: overlap SKIP, pause on failure, 1 hour catch-up window, twin-pipelines, workflow id = schedule id', () => {
    const spec = parseScheduleSpec(minimal);
    const options = toScheduleOptions(spec);
    assert.deepEqual(options.policies, { overlap: 'SKIP', catchupWindow: '1 hour', pauseOnFailure: true });
    assert.deepEqual(options.spec, { cronExpressions: ['0 3 * * *'] });
    assert.equal(options.action.workflowType, 'continuousTraining');
    assert.equal(options.action.taskQueue, 'twin-pipelines');
    assert.equal(options.action.workflowId, 'nightly');
    assert.deepEqual(options.action.args, [{}]);
    assert.deepEqual(options.state, { paused: false, note: '' });
  });

  test('intervals with an offset, jitter, timezone and timeouts compile to the SDK shape', () => {
    const spec = parseScheduleSpec(`
id: six-hourly
note: every 6 hours at :30
spec: {interval: ['6h/30m'], timezone: Europe/Bucharest, jitter: 2m}
action: {workflow: endToEnd, input: {authors: []}, executionTimeout: 12h}
policies: {overlap: BUFFER_ONE, catchupWindow: 10m, pauseOnFailure: false}
paused: true
`);
    const options = toScheduleOptions(spec);
    assert.deepEqual(options.spec, {
      intervals: [{ every: '6h', offset: '30m' }],
      timezone: 'Europe/Bucharest',
      jitter: '2m',
    });
    assert.equal(options.action.workflowExecutionTimeout, '12h');
    assert.deepEqual(options.state, { paused: true, note: 'every 6 hours at :30' });
  });

  test('bad specs are refused with the path of every problem', () => {
    const problems = (text: string) => {
      try {
        parseScheduleSpec(text, 'x.yaml');
      } catch (error) {
        assert.ok(error instanceof ScheduleSpecError);
        return error.problems;
      }
      assert.fail('accepted');
    };
    assert.deepEqual(problems('id: a\nspec: {}\naction: {workflow: continuousTraining}'), [
      'spec: give spec.cron or spec.interval',
    ]);
    const many = problems(
      'id: "bad id"\nspec: {cron: "* *", interval: "soon"}\naction: {workflow: rmRf}\npolicies: {overlap: NEVER, catchupWindow: 0s}\nextra: 1',
    );
    for (const fragment of [
      'id:',
      'spec.cron',
      'spec.interval',
      'action.workflow',
      'policies.overlap',
      'policies.catchupWindow',
      'Unrecognized key',
    ]) {
      assert.ok(
        many.some((p) => p.includes(fragment)),
        `${fragment} in ${many.join(' | ')}`,
      );
    }
    assert.match(problems('id: [')[0] ?? '', /not valid YAML/);
  });

  test('apply decides create / unchanged / update from the checksum in the action memo, and keeps the pause state', () => {
    const spec = parseScheduleSpec(minimal);
    assert.deepEqual(decideApply(spec, null), { action: 'create' });
    assert.deepEqual(decideApply(spec, described(spec)), { action: 'unchanged' });
    // `paused` is create-only: a different value in the file is not a change.
    assert.deepEqual(decideApply({ ...spec, paused: true }, described(spec)), { action: 'unchanged' });
    const changed = parseScheduleSpec(`${minimal}  input: {skipDpo: true}\nnote: now without DPO\n`);
    assert.notEqual(specChecksum(changed), specChecksum(spec));
    assert.deepEqual(decideApply(changed, described(spec)), {
      action: 'update',
      changed: ['action.input.skipDpo', 'note'],
    });
    const update = toScheduleUpdate(changed, described(spec, true));
    const state = update.state as { paused?: boolean; note?: string };
    assert.equal(state.paused, true, 'a paused schedule stays paused');
    assert.equal(state.note, 'now without DPO');
    assert.deepEqual(update.action.args, [{ skipDpo: true }]);
    const foreign = {
      ...described(spec),
      action: { workflowType: 'continuousTraining', memo: {} },
    } as unknown as ScheduleDescription;
    assert.deepEqual(decideApply(spec, foreign), { action: 'update', changed: ['(not made by twin schedule apply)'] });
  });

  test('changedPaths lists differing leaves', () => {
    assert.deepEqual(changedPaths({ a: 1, b: { c: [1] } }, { a: 1, b: { c: [2] }, d: 0 }), ['b.c', 'd']);
    assert.deepEqual(changedPaths({ a: 1 }, { a: 1 }), []);
  });
});
