import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MongoClient, type Db } from 'mongodb';
import { checksumOf, type NewArtifact } from '../../src/domain/artifacts';
import { ArtifactRegistry } from '../../src/infra/artifact-registry';
import { ensureIndexes } from '../../src/infra/mongo';
import { testEnv, uniqueName } from '../support/env';

function artifact(
  kind: NewArtifact['kind'],
  content: unknown,
  inputs: string[] = [],
  workflowId = 'wf-1',
): NewArtifact {
  return {
    kind,
    uri: `file:///tmp/${kind}`,
    count: 3,
    checksum: checksumOf(content),
    producer: { workflowId, runId: 'run-1', activity: 'make', attempt: 1 },
    inputs,
    metadata: { note: 'x' },
  };
}

describe('artifact registry (MongoDB protocol server)', () => {
  let mongo: MongoClient;
  let db: Db;
  before(async () => {
    mongo = await MongoClient.connect(testEnv.mongoUri);
    db = mongo.db(uniqueName('registry'));
    await ensureIndexes(db);
  });
  after(async () => {
    await db.dropDatabase();
    await mongo.close();
  });

  test('recording the same content twice keeps one record and the first producer', async () => {
    const registry = new ArtifactRegistry(db);
    const first = await registry.record(artifact('raw-documents', { docs: [1, 2, 3] }));
    const again = await registry.record({ ...artifact('raw-documents', { docs: [1, 2, 3] }, [], 'wf-2') });
    assert.equal(again.id, first.id);
    assert.equal(again.producer.workflowId, 'wf-1');
    assert.equal(await db.collection('artifacts').countDocuments({ _id: first.id as never }), 1);
    const doc = await db.collection('artifacts').findOne({ _id: first.id as never });
    assert.deepEqual(
      (doc?.seenIn as { workflowId: string }[]).map((s) => s.workflowId),
      ['wf-1', 'wf-2'],
    );
  });

  test('lineage walks inputs back to the sources, each once', async () => {
    const registry = new ArtifactRegistry(db);
    const raw = await registry.record(artifact('raw-documents', 'raw-lineage'));
    const cleaned = await registry.record(artifact('cleaned-documents', 'cleaned-lineage', [raw.id]));
    const dataset = await registry.record(artifact('instruction-dataset', 'ds-lineage', [cleaned.id, raw.id]));
    const model = await registry.record(artifact('model', 'model-lineage', [dataset.id]));
    const graph = await registry.lineage(model.id);
    assert.deepEqual(
      graph.map((g) => [g.artifact.kind, g.depth]),
      [
        ['model', 0],
        ['instruction-dataset', 1],
        ['cleaned-documents', 2],
        ['raw-documents', 3],
      ],
    );
    assert.deepEqual(await registry.lineage('nope'), []);
  });

  test('list filters by kind, newest first', async () => {
    const registry = new ArtifactRegistry(db);
    await registry.record(artifact('evaluation-report', 'r1'), new Date('2026-01-01T00:00:00Z'));
    await registry.record(artifact('evaluation-report', 'r2'), new Date('2026-02-01T00:00:00Z'));
    const reports = await registry.list({ kind: 'evaluation-report' });
    assert.deepEqual(
      reports.map((r) => r.createdAt),
      ['2026-02-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'],
    );
  });
});
