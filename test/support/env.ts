/**
 * URLs of the real services the test runner (scripts/run-tests.ts) started, or that the user pointed the
 * suite at (TEMPORAL_ADDRESS, MONGODB_URI, QDRANT_URL, AWS_ENDPOINT_URL).
 */
import type { MongoClient } from 'mongodb';

export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: run the suite with \`npm test\` (it starts the services), or set ${name} yourself`,
    );
  }
  return value;
}

export const testEnv = {
  get temporalAddress() {
    return requireEnv('TEMPORAL_ADDRESS');
  },
  get mongoUri() {
    return requireEnv('MONGODB_URI');
  },
  get qdrantUrl() {
    return requireEnv('QDRANT_URL');
  },
  get awsEndpoint() {
    return requireEnv('AWS_ENDPOINT_URL');
  },
  get workflowBundle() {
    return process.env.TWIN_WORKFLOW_BUNDLE;
  },
  get tmpDir() {
    return requireEnv('TWIN_TEST_TMP');
  },
};

/** A database name per test file, so files can run in parallel against one server. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}`;
}

/** Teardown: drops a test's database (a failure is ignored) and closes the client; either may be missing (a failed before). */
export async function dropTestDatabase(mongo: MongoClient | undefined, database: string): Promise<void> {
  await mongo
    ?.db(database)
    .dropDatabase()
    .catch(() => undefined);
  await mongo?.close();
}
