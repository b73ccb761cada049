/**
 * Measures one digitalDataEtl run at the per-run cap (MAX_LINKS_PER_RUN links) on the real dev server: wall time,
 * result size and history size. Not a test (no assertions on time): a figure for docs/etl.md.
 *
 *   npx tsx test/etl-workflow/large-run.ts [links]
 *
 * Starts its own Temporal dev server and FerretDB, the fixture web server (distinct blog pages under /bench/),
 * and two worker processes (twin-pipelines, twin-etl; politeness off, 127.0.0.1 allowed).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTE_DEFINITIONS } from '../../src/domain/search-attributes';
import { startFerretDb, startTemporalDevServer, stopAll } from '../../src/infra/local-services';
import {
  MAX_LINKS_PER_RUN,
  type DigitalDataEtlInput,
  type DigitalDataEtlResult,
} from '../../workflows/digital-data-etl';
import { startFixtureServer } from '../etl/fixture-server';
import { startWorkerProcess } from '../support/worker-process';

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? MAX_LINKS_PER_RUN);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'twin-etl-large-'));
  const [temporal, mongo] = await Promise.all([
    startTemporalDevServer({ dataDir: path.join(tmp, 'temporal'), searchAttributes: SEARCH_ATTRIBUTE_DEFINITIONS }),
    startFerretDb({ dataDir: path.join(tmp, 'ferretdb') }),
  ]);
  const fixture = await startFixtureServer();
  const env = {
    TEMPORAL_ADDRESS: temporal.address,
    MONGODB_URI: mongo.url,
    MONGODB_DATABASE: 'etl_large',
    TWIN_DATA_DIR: path.join(tmp, 'data'),
    ETL_SSRF_ALLOW: '127.0.0.1',
    ETL_POLITENESS: 'false',
  };
  const workers = await Promise.all([startWorkerProcess(['pipelines'], env), startWorkerProcess(['etl'], env)]);
  const client = new Client({ connection: await Connection.connect({ address: temporal.address }) });
  try {
    const links = Array.from({ length: count }, (_, i) => `${fixture.url}/bench/${i}`);
    const workflowId = `etl-large-${Date.now()}`;
    const started = Date.now();
    const result = await client.workflow.execute<(input: DigitalDataEtlInput) => Promise<DigitalDataEtlResult>>(
      'digitalDataEtl',
      {
        taskQueue: 'twin-pipelines',
        workflowId,
        args: [{ author: 'Bench Author', links }],
      },
    );
    const seconds = (Date.now() - started) / 1000;
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    const historyBytes = Buffer.byteLength(JSON.stringify(history));
    process.stdout.write(
      `digitalDataEtl, ${count} links (fixture blog pages, politeness off, maxInFlight 8, WORKER_ETL_CONCURRENCY default)\n` +
        `statuses: ${JSON.stringify(result.counts.byStatus)}\n` +
        `wall ${seconds.toFixed(1)} s (${(count / seconds).toFixed(1)} links/s); result ${(Buffer.byteLength(JSON.stringify(result)) / 1024).toFixed(1)} KiB; ` +
        `history ${history.events?.length ?? 0} events, ~${(historyBytes / 1024).toFixed(0)} KiB as JSON\n`,
    );
  } finally {
    await client.connection.close();
    await Promise.all(workers.map((w) => w.kill('SIGTERM')));
    await fixture.close();
    await stopAll([temporal, mongo]);
    await rm(tmp, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
