/**
 * Drill (b): the Temporal server restarts in the middle of a run. This file starts its own dev server with a
 * persistent database file under TWIN_TEST_TMP (the shared test server is not touched), real worker processes
 * connected to it, and a digitalDataEtl run over the offline sample site (pages answered slowly, so crawls are in
 * flight); once the first article is stored the server is stopped and started again on the same port and file.
 * The run must complete from the persisted history, with every article stored exactly once in MongoDB and one
 * row per link.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { MongoClient } from 'mongodb';
import type { DigitalDataEtlResult } from '../../workflows/digital-data-etl';
import { startSampleSite, type SampleSite } from '../../src/demo/sample-site';
import { SEARCH_ATTRIBUTE_DEFINITIONS } from '../../src/domain/search-attributes';
import { startTemporalDevServer, type TemporalDevServer } from '../../src/infra/local-services';
import { testEnv, uniqueName } from '../support/env';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';
import { drillWorkerEnv, SAMPLE_AUTHOR, sleep, waitFor } from './helpers';

const { database, env } = drillWorkerEnv('trestart');

describe('drill: Temporal server restarted during a run', () => {
  const dataDir = join(testEnv.tmpDir, uniqueName('drill-temporal'));
  let server: TemporalDevServer | undefined;
  let mongo: MongoClient;
  let site: SampleSite;
  let workers: WorkerProcess | undefined;
  let result: DigitalDataEtlResult;
  let storedAtStop = 0;
  let workflowId: string;
  let firstRunId: string;
  let finalRunId: string | undefined;
  let restartMs = 0;

  const start = (port?: number) =>
    startTemporalDevServer({ dataDir, port, searchAttributes: SEARCH_ATTRIBUTE_DEFINITIONS });
  const connect = async (address: string) => new Client({ connection: await Connection.connect({ address }) });

  before(async () => {
    mongo = await MongoClient.connect(testEnv.mongoUri);
    site = await startSampleSite({ articleDelayMs: 1500 });
    server = await start();
    workers = await startWorkerProcess(['pipelines', 'etl'], { ...env, TEMPORAL_ADDRESS: server.address });

    const before = await connect(server.address);
    workflowId = uniqueName('drill-restart-etl');
    const handle = await before.workflow.start('digitalDataEtl', {
      taskQueue: 'twin-pipelines',
      workflowId,
      args: [{ author: SAMPLE_AUTHOR, links: site.links, maxInFlight: 2 }],
    });
    firstRunId = handle.firstExecutionRunId;
    const articles = mongo.db(database).collection('articles');
    await waitFor(
      async () => (storedAtStop = await articles.countDocuments()) > 0,
      120_000,
      () => `no article stored; worker log:\n${workers?.lines.slice(-20).join('\n')}`,
    );
    await before.connection.close();

    // stop the server mid-run (crawls in flight), then start it again on the same port and database file
    const port = server.port;
    const t0 = Date.now();
    await server.stop();
    await sleep(2000);
    server = await start(port);
    restartMs = Date.now() - t0;

    const after = await connect(server.address);
    try {
      const resumed = after.workflow.getHandle(workflowId);
      result = (await resumed.result()) as DigitalDataEtlResult;
      finalRunId = (await resumed.describe()).runId;
    } finally {
      await after.connection.close();
    }
    process.stdout.write(
      `# drill (b): server stopped after ${storedAtStop}/${site.links.length} articles, back in ${restartMs} ms; ` +
        `rows ${JSON.stringify(result.counts.byStatus)}\n`,
    );
  });

  after(async () => {
    await workers?.kill('SIGTERM');
    await server?.stop();
    await site?.close();
    await mongo?.db(database).dropDatabase();
    await mongo?.close();
  });

  test('the run completed from the persisted history (same run)', () => {
    assert.ok(storedAtStop > 0 && storedAtStop < site.links.length, `stopped after ${storedAtStop} articles`);
    assert.equal(finalRunId, firstRunId, 'the run that was started before the restart is the one that completed');
    assert.equal(result.author.fullName, SAMPLE_AUTHOR);
  });

  test('one row per link; every link stored or found unchanged; none failed', () => {
    assert.equal(result.rows.length, site.links.length);
    const c = result.counts.byStatus;
    assert.equal(c.stored + c.unchanged, site.links.length, JSON.stringify(result.rows));
    assert.equal(c.failed, 0);
    assert.equal(
      Object.values(c).reduce((a, b) => a + b, 0),
      site.links.length,
    );
  });

  test('nothing duplicated in MongoDB', async () => {
    const db = mongo.db(database);
    const docs = await db.collection('articles').find().toArray();
    assert.equal(docs.length, site.links.length);
    assert.equal(new Set(docs.map((d) => String(d.link))).size, site.links.length, 'one document per link');
    assert.equal(await db.collection('users').countDocuments(), 1, 'one author');
    const artifacts = await db.collection('artifacts').find({ kind: 'raw-documents' }).toArray();
    assert.equal(artifacts.length, 1, 'one raw-documents artifact');
  });
});
