import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker, type ReplayWorkerOptions } from '@temporalio/worker';
import { testEnv } from '../support/env';

/**
 * Histories of real past runs. Record one from a running platform with
 * `temporal workflow show --address 127.0.0.1:7233 -w <workflowId> --output json > test/fixtures/histories/<name>.json`.
 */
const HISTORIES = path.resolve(__dirname, '..', 'fixtures', 'histories');

function replayOptions(): ReplayWorkerOptions {
  return testEnv.workflowBundle
    ? { workflowBundle: { codePath: testEnv.workflowBundle } }
    : { workflowsPath: require.resolve('../../workflows') };
}

describe('determinism: today’s workflow code replays past histories', () => {
  test('recorded histories in test/fixtures/histories replay without non-determinism', async () => {
    const files = (await readdir(HISTORIES)).filter((f) => f.endsWith('.json'));
    assert.ok(files.length > 0, 'at least one recorded history');
    for (const file of files) {
      const history = historyFromJSON(JSON.parse(await readFile(path.join(HISTORIES, file), 'utf8')));
      await Worker.runReplayHistory(replayOptions(), history, file);
    }
  });

  test('every closed run on the test server (from the suites before this one) replays', async (t) => {
    const client = new Client({ connection: await Connection.connect({ address: testEnv.temporalAddress }) });
    try {
      const histories = client.workflow.list({ query: 'ExecutionStatus != "Running"' }).intoHistories();
      let replayed = 0;
      for await (const result of Worker.runReplayHistories(replayOptions(), histories)) {
        assert.equal(result.error, undefined, `${result.workflowId}: ${String(result.error)}`);
        replayed++;
      }
      if (replayed === 0) t.skip('no closed runs on this server (run the whole suite to replay the e2e runs)');
    } finally {
      await client.connection.close();
    }
  });
});
