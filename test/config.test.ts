import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, test } from 'node:test';
import { ConfigError, parseSettings, QUEUE_NAMES, type Secret, TASK_QUEUES } from '../src/config';
import { QUEUES } from '../workflows/queues';

function problemsOf(env: Record<string, string>): string[] {
  try {
    parseSettings(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail('expected the configuration to be rejected');
}

describe('settings', () => {
  test('defaults describe the local platform', () => {
    const s = parseSettings({ TWIN_HOME: '/tmp/twin-home' });
    assert.equal(s.temporal.address, undefined);
    assert.equal(s.temporal.namespace, 'default');
    assert.equal(s.temporal.uiPort, 8233);
    assert.equal(s.artifacts.store, 'local');
    assert.equal(s.artifacts.dir, '/tmp/twin-home/data/artifacts');
    assert.equal(s.embedding.modelDir, '/tmp/twin-home/models/all-MiniLM-L6-v2');
    assert.deepEqual(s.workers.queues, QUEUE_NAMES);
  });

  test('each malformed variable is named with what is expected', () => {
    const problems = problemsOf({
      TEMPORAL_ADDRESS: 'localhost',
      QDRANT_URL: 'qdrant:6333',
      API_PORT: 'eighty',
      TEMPORAL_TLS: 'maybe',
    });
    assert.equal(problems.length, 4);
    assert.match(
      problems.find((p) => p.startsWith('TEMPORAL_ADDRESS'))!,
      /expected host:port.*\(got "localhost"\)/,
    );
    assert.match(
      problems.find((p) => p.startsWith('QDRANT_URL'))!,
      /expected a URL starting with http:\/\/ or https:\/\//,
    );
    assert.match(
      problems.find((p) => p.startsWith('API_PORT'))!,
      /whole number/,
    );
    assert.match(
      problems.find((p) => p.startsWith('TEMPORAL_TLS'))!,
      /true or false/,
    );
  });

  test('cross-field rules: s3 needs a bucket, mTLS needs cert and key', () => {
    assert.match(problemsOf({ ARTIFACT_STORE: 's3' })[0]!, /^ARTIFACT_BUCKET: required when ARTIFACT_STORE=s3/);
    assert.match(problemsOf({ TEMPORAL_TLS_CERT: 'PEM' })[0]!, /set both the client certificate and its key/);
  });

  test('unknown worker queues are rejected with the valid names', () => {
    assert.match(
      problemsOf({ TWIN_WORKER_QUEUES: 'etl,gpu' })[0]!,
      /unknown queue "gpu".*pipelines, etl, features, llm, ml/,
    );
    assert.deepEqual(parseSettings({ TWIN_WORKER_QUEUES: 'etl, ml' }).workers.queues, ['etl', 'ml']);
  });

  test('secrets never show their value in errors, JSON or inspection', () => {
    const problems = problemsOf({ MONGODB_URI: 'mongodb://u:hunter2@h', TEMPORAL_ADDRESS: 'bad' });
    assert.ok(!problems.join(' ').includes('hunter2'));
    const s = parseSettings({ MONGODB_URI: 'mongodb://u:hunter2@h', OPENAI_API_KEY: 'sk-secret', API_KEYS: 'k1, k2' });
    const rendered = JSON.stringify(s) + inspect(s, { depth: 10 }) + String(s.llm.apiKey);
    assert.ok(!rendered.includes('hunter2') && !rendered.includes('sk-secret') && !rendered.includes('k1'));
    assert.equal(s.mongo.uri?.reveal(), 'mongodb://u:hunter2@h');
    assert.deepEqual(
      s.api.keys.map((k: Secret) => k.reveal()),
      ['k1', 'k2'],
    );
  });

  test('empty strings count as unset', () => {
    assert.equal(parseSettings({ TEMPORAL_ADDRESS: '' }).temporal.address, undefined);
  });

  test('workflow queue names are the configured ones', () => {
    assert.deepEqual(QUEUES, TASK_QUEUES);
  });
});
