import { MongoClient, type Db, type IndexDescription } from 'mongodb';
import type { Settings } from '../config';
import { ServiceUnavailableError } from './errors';

/** Indexes the platform relies on, created (idempotently) when the warehouse is opened. */
const INDEXES: Record<string, IndexDescription[]> = {
  artifacts: [
    { key: { kind: 1, createdAt: -1 }, name: 'kind_createdAt' },
    { key: { inputs: 1 }, name: 'inputs' },
    { key: { 'producer.workflowId': 1 }, name: 'producer_workflow' },
  ],
  smoke_notes: [{ key: { workflowId: 1 }, name: 'workflowId' }],
  // Warehouse (src/infra/warehouse.ts): documents are read per author; authors are found by normalised name.
  users: [{ key: { name_key: 1 }, name: 'name_key' }],
  articles: [{ key: { author_id: 1 }, name: 'author_id' }],
  posts: [{ key: { author_id: 1 }, name: 'author_id' }],
  repositories: [{ key: { author_id: 1 }, name: 'author_id' }],
  models: [
    { key: { mode: 1, createdAt: -1 }, name: 'mode_createdAt' },
    { key: { datasetArtifactId: 1 }, name: 'datasetArtifactId' },
  ],
  // @indexes (one entry per collection, owner's issue in a comment)
  // issue 8 (src/rag/tracing.ts): traces are listed newest first; eval samples read by date.
  traces: [{ key: { createdAt: -1 }, name: 'createdAt' }],
  rag_eval_samples: [{ key: { createdAt: -1 }, name: 'createdAt' }],
};

export interface Warehouse {
  client: MongoClient;
  db: Db;
  close(): Promise<void>;
}

/** Connects to MongoDB (or FerretDB), checks it answers, and ensures indexes. */
export async function openWarehouse(
  config: Settings['mongo'],
  options: { timeoutMs?: number } = {},
): Promise<Warehouse> {
  if (!config.uri) {
    throw new ServiceUnavailableError(
      'MongoDB',
      'MONGODB_URI is not set: start the local platform with `twin dev`, or set MONGODB_URI to your MongoDB',
    );
  }
  const uri = config.uri.reveal();
  const client = new MongoClient(uri, {
    serverSelectionTimeoutMS: options.timeoutMs ?? 5_000,
    connectTimeoutMS: options.timeoutMs ?? 5_000,
  });
  try {
    await client.connect();
    await client.db(config.database).command({ ping: 1 });
  } catch (error) {
    await client.close().catch(() => undefined);
    throw new ServiceUnavailableError('MongoDB', `cannot reach ${redactUri(uri)}: ${(error as Error).message}`);
  }
  const db = client.db(config.database);
  try {
    await ensureIndexes(db);
  } catch (error) {
    await client.close().catch(() => undefined);
    throw error;
  }
  return { client, db, close: () => client.close() };
}

/**
 * Creates the indexes that are missing. (Only the missing ones: FerretDB 1.24 drops the connection when asked to
 * create an index that already exists on a non-empty collection.)
 */
export async function ensureIndexes(db: Db): Promise<void> {
  for (const [name, indexes] of Object.entries(INDEXES)) {
    const collection = db.collection(name);
    const existing = new Set(
      (
        await collection
          .listIndexes()
          .toArray()
          .catch(() => [])
      ).map((index) => (index as { name?: string }).name),
    );
    const missing = indexes.filter((index) => !existing.has(index.name));
    if (missing.length > 0) await collection.createIndexes(missing);
  }
}

/** mongodb://user:pass@host → mongodb://***@host, for error messages. */
export function redactUri(uri: string): string {
  return uri.replace(/\/\/[^@/]*@/, '//***@');
}
