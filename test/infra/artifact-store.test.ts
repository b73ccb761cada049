import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { LocalArtifactStore, S3ArtifactStore, type ArtifactStore } from '../../src/infra/artifact-store';
import { testEnv, uniqueName } from '../support/env';

function behavesLikeAnArtifactStore(name: string, make: () => Promise<{ store: ArtifactStore; uriPrefix: string }>) {
  describe(name, () => {
    test('put → exists → get round-trips bytes under the shared key layout', async () => {
      const { store, uriPrefix } = await make();
      const body = JSON.stringify({ hello: 'world' });
      assert.equal(await store.exists('datasets/v1/train.jsonl'), false);
      const { uri, checksum } = await store.put('datasets/v1/train.jsonl', body, 'application/jsonl');
      assert.equal(uri, `${uriPrefix}datasets/v1/train.jsonl`);
      assert.equal(checksum, `sha256:${createHash('sha256').update(body).digest('hex')}`);
      assert.equal(await store.exists('datasets/v1/train.jsonl'), true);
      assert.equal((await store.get('datasets/v1/train.jsonl')).toString(), body);
    });

    test('overwriting a key replaces the content', async () => {
      const { store } = await make();
      await store.put('a/b.txt', 'one');
      await store.put('a/b.txt', 'two');
      assert.equal((await store.get('a/b.txt')).toString(), 'two');
    });

    test('keys cannot escape the store', async () => {
      const { store } = await make();
      await assert.rejects(store.put('../outside.txt', 'x'), /must not contain/);
    });
  });
}

behavesLikeAnArtifactStore('local artifact store', async () => {
  const root = path.join(testEnv.tmpDir, uniqueName('artifacts'));
  return { store: new LocalArtifactStore(root, 'runs'), uriPrefix: `file://${root}/runs/` };
});

behavesLikeAnArtifactStore('S3 artifact store (moto)', async () => {
  const client = new S3Client({ endpoint: testEnv.awsEndpoint, region: 'us-east-1', forcePathStyle: true });
  const bucket = uniqueName('artifacts').toLowerCase().replace(/_/g, '-');
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return { store: new S3ArtifactStore(client, bucket, 'runs'), uriPrefix: `s3://${bucket}/runs/` };
});

test('local store writes atomically: the final file has the whole content', async () => {
  const root = path.join(testEnv.tmpDir, uniqueName('atomic'));
  const store = new LocalArtifactStore(root);
  const big = 'x'.repeat(5_000_000);
  await store.put('big.txt', big);
  assert.equal((await readFile(path.join(root, 'big.txt'), 'utf8')).length, big.length);
});
