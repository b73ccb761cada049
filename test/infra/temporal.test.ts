import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseSettings } from '../../src/config';
import { SEARCH_ATTRIBUTE_DEFINITIONS } from '../../src/domain/search-attributes';
import { startTemporalDevServer, type TemporalDevServer } from '../../src/infra/local-services';
import { connectClient, ensureSearchAttributes } from '../../src/infra/temporal';
import { ServiceUnavailableError } from '../../src/infra/errors';
import { testEnv, uniqueName } from '../support/env';

describe('Temporal adapter', () => {
  let bare: TemporalDevServer;
  before(async () => {
    // A server started without our search attributes, like a fresh self-hosted cluster.
    bare = await startTemporalDevServer({ dataDir: path.join(testEnv.tmpDir, uniqueName('bare-temporal')) });
  });
  after(async () => {
    await bare.stop();
  });

  test('ensureSearchAttributes registers the missing ones once', async () => {
    const client = await connectClient(parseSettings({ TEMPORAL_ADDRESS: bare.address }).temporal);
    try {
      const added = await ensureSearchAttributes(client, 'default');
      assert.deepEqual(added.sort(), Object.keys(SEARCH_ATTRIBUTE_DEFINITIONS).sort());
      const listed = await client.connection.operatorService.listSearchAttributes({ namespace: 'default' });
      for (const name of added) assert.ok(name in (listed.customAttributes ?? {}), `${name} registered`);
      assert.deepEqual(await ensureSearchAttributes(client, 'default'), [], 'second call adds nothing');
    } finally {
      await client.connection.close();
    }
  });

  test('an unreachable server is a ServiceUnavailableError that says what to check', async () => {
    await assert.rejects(
      connectClient(parseSettings({ TEMPORAL_ADDRESS: '127.0.0.1:1' }).temporal),
      (error: unknown) =>
        error instanceof ServiceUnavailableError &&
        /cannot reach 127\.0\.0\.1:1.*Check TEMPORAL_ADDRESS/.test(error.message),
    );
  });
});
