/**
 * Starts the real local services (installed by scripts/install-services.sh) through src/infra/local-services
 * and checks each one answers with its real client, then that stop() leaves no process behind.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListBucketsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Connection } from '@temporalio/client';
import { MongoClient } from 'mongodb';
import {
  findBinary,
  getFreePort,
  MissingBinaryError,
  qdrantStandinScript,
  ServiceStartError,
  startFerretDb,
  startMoto,
  startQdrantStandin,
  startTemporalDevServer,
  stopAll,
  twinHome,
  type LocalService,
} from '../../src/infra/local-services';

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

async function assertStoppedAndGone(service: LocalService): Promise<void> {
  assert.ok(pidAlive(service.pid), `${service.name} pid ${service.pid} should be running before stop()`);
  await service.stop();
  assert.ok(service.exited(), `${service.name} should report exited after stop()`);
  assert.equal(pidAlive(service.pid), false, `${service.name} pid ${service.pid} should be gone after stop()`);
  assert.throws(() => process.kill(-service.pid, 0), { code: 'ESRCH' }, `${service.name} process group should be gone`);
  await service.stop(); // idempotent
}

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'local-services-test-'));
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

void describe('Temporal dev server', () => {
  void test('answers gRPC with the registered search attributes and serves the Web UI; a restart keeps state and adds new attributes', async () => {
    const dataDir = join(root, 'temporal');
    const temporal = await startTemporalDevServer({
      dataDir,
      searchAttributes: { TwinRunId: 'Keyword', TwinStep: 'Text', TwinAttempt: 'Int', TwinTags: 'KeywordList' },
    });
    try {
      assert.equal(temporal.url, temporal.address);
      assert.match(temporal.address, /^127\.0\.0\.1:\d+$/);
      const connection = await Connection.connect({ address: temporal.address });
      try {
        const info = await connection.workflowService.getSystemInfo({});
        assert.match(info.serverVersion ?? '', /^1\.29\./);
        const ns = await connection.workflowService.describeNamespace({ namespace: 'default' });
        assert.equal(ns.namespaceInfo?.name, 'default');
        const attributes = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
        const custom = attributes.customAttributes ?? {};
        // temporal.api.enums.v1.IndexedValueType: TEXT=1 KEYWORD=2 INT=3 KEYWORD_LIST=7
        assert.equal(Number(custom.TwinRunId), 2);
        assert.equal(Number(custom.TwinStep), 1);
        assert.equal(Number(custom.TwinAttempt), 3);
        assert.equal(Number(custom.TwinTags), 7);
      } finally {
        await connection.close();
      }
      const ui = await fetch(temporal.uiUrl);
      assert.equal(ui.status, 200);
      assert.match(ui.headers.get('content-type') ?? '', /text\/html/);
      assert.match(await ui.text(), /<html/i);
    } finally {
      await assertStoppedAndGone(temporal);
    }
    assert.ok(existsSync(join(dataDir, 'temporal.sqlite')));
    assert.ok(existsSync(temporal.logFile));

    // Same database file, one more attribute: the old ones persist and the new one is registered.
    const again = await startTemporalDevServer({
      dataDir,
      searchAttributes: { TwinRunId: 'Keyword', TwinScore: 'Double' },
    });
    try {
      assert.notEqual(again.pid, temporal.pid);
      const connection = await Connection.connect({ address: again.address });
      try {
        const custom =
          (await connection.operatorService.listSearchAttributes({ namespace: 'default' })).customAttributes ?? {};
        assert.equal(Number(custom.TwinRunId), 2);
        assert.equal(Number(custom.TwinAttempt), 3);
        assert.equal(Number(custom.TwinScore), 4);
      } finally {
        await connection.close();
      }
    } finally {
      await assertStoppedAndGone(again);
    }
  });
});

void describe('FerretDB', () => {
  void test('speaks the MongoDB protocol (insert + find) and keeps data across a restart', async () => {
    const dataDir = join(root, 'ferretdb');
    const ferret = await startFerretDb({ dataDir });
    try {
      assert.match(ferret.url, /^mongodb:\/\/127\.0\.0\.1:\d+\/$/);
      const client = new MongoClient(ferret.url, { directConnection: true, serverSelectionTimeoutMS: 5_000 });
      try {
        const docs = client.db('twin').collection<{ _id: string; author: string; words: number }>('articles');
        await docs.insertOne({ _id: 'a1', author: 'Ada', words: 1200 });
        await docs.insertOne({ _id: 'a2', author: 'Alan', words: 300 });
        const found = await docs.find({ words: { $gt: 500 } }).toArray();
        assert.deepEqual(found, [{ _id: 'a1', author: 'Ada', words: 1200 }]);
      } finally {
        await client.close();
      }
    } finally {
      await assertStoppedAndGone(ferret);
    }

    // Two instances at once must not clash (FerretDB's debug listener defaults to a fixed port).
    const [first, second] = await Promise.all([
      startFerretDb({ dataDir }),
      startFerretDb({ dataDir: join(root, 'ferretdb-2') }),
    ]);
    try {
      const client = new MongoClient(first.url, { directConnection: true, serverSelectionTimeoutMS: 5_000 });
      try {
        const doc = await client
          .db('twin')
          .collection('articles')
          .findOne({ _id: 'a2' as never });
        assert.equal(doc?.author, 'Alan');
      } finally {
        await client.close();
      }
    } finally {
      await stopAll([first, second]);
    }
    assert.equal(pidAlive(first.pid), false);
    assert.equal(pidAlive(second.pid), false);
  });
});

void describe('moto', () => {
  void test('serves S3: create a bucket, list it, put and get an object', async () => {
    const moto = await startMoto({ dataDir: join(root, 'moto') });
    try {
      assert.match(moto.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const s3 = new S3Client({
        endpoint: moto.url,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
      });
      try {
        await s3.send(new CreateBucketCommand({ Bucket: 'twin-artifacts' }));
        const listed = await s3.send(new ListBucketsCommand({}));
        assert.deepEqual(
          listed.Buckets?.map((b) => b.Name),
          ['twin-artifacts'],
        );
        await s3.send(new PutObjectCommand({ Bucket: 'twin-artifacts', Key: 'runs/1.json', Body: '{"ok":true}' }));
        const got = await s3.send(new GetObjectCommand({ Bucket: 'twin-artifacts', Key: 'runs/1.json' }));
        assert.equal(await got.Body?.transformToString(), '{"ok":true}');
      } finally {
        s3.destroy();
      }
    } finally {
      await assertStoppedAndGone(moto);
    }
  });

  void test('a service whose parent process dies is torn down by its supervisor', async () => {
    // A separate Node process starts moto, prints its pid, and is then SIGKILLed without calling stop().
    const dataDir = join(root, 'moto-orphan');
    const modulePath = require.resolve('../../src/infra/local-services');
    const code = `require(${JSON.stringify(modulePath)}).startMoto({ dataDir: ${JSON.stringify(dataDir)} })
      .then((s) => { process.stdout.write('PID ' + s.pid + '\\n'); setInterval(() => {}, 1000); })
      .catch((e) => { console.error(e); process.exit(1); });`;
    const parent = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), '-e', code], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    parent.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 120_000;
    while (!/PID (\d+)/.test(output) && parent.exitCode === null && Date.now() < deadline) await sleep(100);
    const pid = Number(/PID (\d+)/.exec(output)?.[1]);
    assert.ok(pid > 0, `the helper process should have started moto (output: ${output})`);
    assert.ok(pidAlive(pid));
    parent.kill('SIGKILL');
    const goneBy = Date.now() + 30_000;
    while (pidAlive(pid) && Date.now() < goneBy) await sleep(100);
    assert.equal(pidAlive(pid), false, `moto pid ${pid} should be gone after its parent died`);
  });
});

void describe('Qdrant stand-in', () => {
  const script = qdrantStandinScript();
  const skip = existsSync(script) ? false : `stand-in not present at ${script}`;
  void test('answers /healthz and the collections API', { skip }, async () => {
    const qdrant = await startQdrantStandin({ dataDir: join(root, 'qdrant') });
    try {
      assert.match(qdrant.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const health = await fetch(`${qdrant.url}/healthz`);
      assert.equal(health.status, 200);
      const collections = await fetch(`${qdrant.url}/collections`);
      assert.equal(collections.status, 200);
      const body = (await collections.json()) as { result?: { collections?: unknown[] } };
      assert.ok(Array.isArray(body.result?.collections));
    } finally {
      await assertStoppedAndGone(qdrant);
    }
  });
});

void describe('failures', () => {
  void test('a missing binary gives MissingBinaryError naming the install script', async () => {
    const saved = { TWIN_HOME: process.env.TWIN_HOME, PATH: process.env.PATH };
    const empty = mkdtempSync(join(root, 'empty-'));
    process.env.TWIN_HOME = empty;
    process.env.PATH = empty;
    try {
      assert.throws(
        () => findBinary('temporal'),
        (error: unknown) => {
          assert.ok(error instanceof MissingBinaryError);
          assert.match(error.message, /^temporal CLI not found .*: run `bash scripts\/install-temporal\.sh`$/);
          assert.equal(error.installScript, 'scripts/install-temporal.sh');
          assert.doesNotMatch(error.stack ?? '', /\n\s+at /, 'no stack trace');
          return true;
        },
      );
      assert.equal(twinHome(), empty);
      await assert.rejects(startTemporalDevServer({ dataDir: join(root, 'none') }), MissingBinaryError);
      await assert.rejects(startFerretDb({ dataDir: join(root, 'none') }), /run `bash scripts\/install-ferretdb\.sh`/);
      await assert.rejects(startMoto({ dataDir: join(root, 'none') }), /run `bash scripts\/install-moto\.sh`/);
      await assert.rejects(
        startQdrantStandin({ dataDir: join(root, 'none') }),
        /run `bash scripts\/install-qdrant-standin\.sh`/,
      );
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });

  void test('a server that exits before it is ready rejects with the end of its log', async () => {
    const fake = join(root, 'fake-server.sh');
    writeFileSync(fake, '#!/bin/sh\necho "starting on $4"\necho "fatal: cannot open the thing" >&2\nexit 3\n');
    chmodSync(fake, 0o755);
    const dataDir = join(root, 'fake');
    await assert.rejects(startMoto({ dataDir, binary: fake }), (error: unknown) => {
      assert.ok(error instanceof ServiceStartError);
      assert.match(error.message, /exited with code 3 before it was ready/);
      assert.match(error.logTail, /fatal: cannot open the thing/);
      assert.match(error.logTail, /starting on \d+/);
      return true;
    });
    assert.match(readFileSync(join(dataDir, 'moto.log'), 'utf8'), /fatal: cannot open the thing/);
  });

  void test('a server that never answers is killed after the ready timeout', async () => {
    const fake = join(root, 'silent-server.sh');
    writeFileSync(fake, '#!/bin/sh\necho "pid $$ listening nowhere"\nexec sleep 600\n');
    chmodSync(fake, 0o755);
    const port = await getFreePort();
    const dataDir = join(root, 'silent');
    await assert.rejects(startMoto({ dataDir, binary: fake, port, readyTimeoutMs: 1_500 }), (error: unknown) => {
      assert.ok(error instanceof ServiceStartError);
      assert.match(error.message, /no answer within/);
      return true;
    });
    const pid = Number(/pid (\d+) listening nowhere/.exec(readFileSync(join(dataDir, 'moto.log'), 'utf8'))?.[1]);
    assert.ok(pid > 0);
    assert.equal(pidAlive(pid), false, 'the unresponsive server should have been killed');
  });
});
