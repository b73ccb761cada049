import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { getFreePort } from '../src/infra/local-services';
import { isolatedEnv, runTwin } from './support/cli';
import { testEnv } from './support/env';

/** A PATH without the Go bin folder, so only $TWIN_HOME/bin could provide the service binaries. */
const PATH_WITHOUT_GO_BINS = (process.env.PATH ?? '')
  .split(':')
  .filter((dir) => !dir.includes('/go/bin'))
  .join(':');

describe('twin CLI errors are one actionable line', () => {
  test('malformed variables are named, with what is expected', async () => {
    const result = await runTwin(['doctor'], isolatedEnv({ TEMPORAL_ADDRESS: 'localhost', API_PORT: 'x' }));
    assert.equal(result.code, 1);
    const lines = result.stderr.trim().split('\n');
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0]!, /^twin: Invalid configuration: .*TEMPORAL_ADDRESS: expected host:port/);
    assert.match(lines[0]!, /API_PORT: expected a whole number/);
  });

  test('unreachable services: doctor marks each with its fix, no stack trace', async () => {
    const result = await runTwin(
      ['doctor'],
      isolatedEnv({
        TEMPORAL_ADDRESS: '127.0.0.1:1',
        MONGODB_URI: 'mongodb://user:hunter2@127.0.0.1:1/',
        QDRANT_URL: 'http://127.0.0.1:1',
        TWIN_DATA_DIR: path.join(testEnv.tmpDir, 'doctor'),
      }),
    );
    assert.equal(result.code, 1);
    assert.match(result.stdout, /✘ Temporal .*127\.0\.0\.1:1[\s\S]*→ fix: check TEMPORAL_ADDRESS/);
    assert.match(
      result.stdout,
      /✘ MongoDB .*cannot reach mongodb:\/\/\*\*\*@127\.0\.0\.1:1[\s\S]*→ fix: check MONGODB_URI/,
    );
    assert.match(result.stdout, /✘ Qdrant [\s\S]*→ fix: check QDRANT_URL/);
    assert.doesNotMatch(result.stdout + result.stderr, /hunter2|\n\s+at /);
  });

  test('a missing service binary names the script that installs it', async () => {
    const result = await runTwin(
      ['dev'],
      isolatedEnv({
        TWIN_HOME: path.join(testEnv.tmpDir, 'empty-home'),
        TWIN_DATA_DIR: path.join(testEnv.tmpDir, 'empty-data'),
        PATH: PATH_WITHOUT_GO_BINS,
        TEMPORAL_PORT: String(await getFreePort()),
      }),
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr.trim(), /^twin: .*temporal.*not found.*bash scripts\/install-temporal\.sh/);
    assert.doesNotMatch(result.stderr, /\n\s+at /);
  });
});
