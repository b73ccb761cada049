/**
 * Shared pieces of the failure drills: the offline sample site as input, the real ETL into a database of the
 * drill's own, and the chunks the library makes from what was stored (what the feature store must hold, once).
 */
import type { Client } from '@temporalio/client';
import type { Db } from 'mongodb';
import type { DigitalDataEtlInput, DigitalDataEtlResult } from '../../workflows/digital-data-etl';
import type { RawArticleDocument, RawDocument } from '../../src/domain/documents';
import { chunkDocument } from '../../src/features/chunking';
import { cleanArticle } from '../../src/features/cleaning';
import { fromWarehouseRecord } from '../../src/infra/warehouse';
import { realTokenCounter, requireModelDir } from '../features/helpers';
import { testEnv, uniqueName } from '../support/env';

export const SAMPLE_AUTHOR = 'Maxime Labonne';

/** Environment of a drill's worker processes: its own database and collections, loopback crawling allowed. */
export function drillWorkerEnv(name: string, extra: Record<string, string> = {}) {
  const database = uniqueName(`drill_${name}`);
  const prefix = `${uniqueName(`d${name.slice(0, 3)}`)}_`;
  return {
    database,
    prefix,
    env: {
      MONGODB_DATABASE: database,
      QDRANT_COLLECTION_PREFIX: prefix,
      TWIN_WORKFLOW_BUNDLE: testEnv.workflowBundle ?? '',
      EMBEDDING_MODEL_DIR: requireModelDir(),
      // the sample site is on 127.0.0.1: the crawler refuses it unless told otherwise (only these workers)
      ETL_SSRF_ALLOW: '127.0.0.1',
      ETL_POLITENESS: 'false',
      ARTIFACT_STORE: 'local',
      ARTIFACT_DIR: `${testEnv.tmpDir}/${database}-artifacts`,
      ...extra,
    } as Record<string, string>,
  };
}

export async function runEtl(
  client: Client,
  links: string[],
  input: Partial<DigitalDataEtlInput> = {},
): Promise<DigitalDataEtlResult> {
  return (await client.workflow.execute('digitalDataEtl', {
    taskQueue: 'twin-pipelines',
    workflowId: uniqueName('drill-etl'),
    args: [{ author: SAMPLE_AUTHOR, links, ...input }],
  })) as DigitalDataEtlResult;
}

/** The raw articles the warehouse holds, decoded. */
export async function storedArticles(db: Db): Promise<RawDocument[]> {
  const records = await db.collection('articles').find().toArray();
  return records.map((r) => fromWarehouseRecord('articles', r as Record<string, unknown>));
}

/** Chunk ids per document, made in this process by the library from the stored raw articles. */
export async function expectedChunks(db: Db): Promise<Map<string, string[]>> {
  const counter = await realTokenCounter();
  const expected = new Map<string, string[]>();
  for (const raw of await storedArticles(db)) {
    expected.set(
      raw.id,
      chunkDocument(cleanArticle(raw as RawArticleDocument), counter).map((c) => c.id),
    );
  }
  return expected;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns true (or throws after `timeoutMs` with `describe()`). */
export async function waitFor(probe: () => Promise<boolean>, timeoutMs: number, describe: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await sleep(200);
  }
}
