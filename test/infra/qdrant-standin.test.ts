/**
 * The Qdrant REST stand-in (scripts/services/qdrant_standin/server.py) driven through the real
 * `@qdrant/js-client-rest` client, the way the Qdrant adapter uses it.
 *
 * Without QDRANT_URL the test starts its own stand-in (the venv python that
 * scripts/install-qdrant-standin.sh installs) on a free port and a temporary --path, and stops it by PID.
 * With QDRANT_URL set it starts nothing and runs the same assertions against that server, so
 * `QDRANT_URL=http://localhost:6333 npx tsx --test test/infra/qdrant-standin.test.ts` checks a real Qdrant.
 * The restart test is about the stand-in's storage: it runs on instances of its own, and is skipped when
 * QDRANT_URL is a real Qdrant (which this test cannot restart).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { QdrantClient } from '@qdrant/js-client-rest';

const DIM = 384;
const SERVER = resolve(__dirname, '../../scripts/services/qdrant_standin/server.py');
const READY_LINE = /^qdrant-standin listening on (http:\/\/\S+)$/;

function standinPython(): string {
  const twinHome = process.env.TWIN_HOME || join(homedir(), '.cache', 'llm-twin');
  return join(twinHome, 'venv', 'bin', 'python');
}

interface StandIn {
  url: string;
  pid: number;
  /** Sends the signal to the stand-in's PID and resolves with its exit code (null when a signal ended it). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

async function startStandIn(dataDir: string): Promise<StandIn> {
  const python = standinPython();
  if (!existsSync(python)) {
    throw new Error(`${python} is missing: run \`bash scripts/install-qdrant-standin.sh\` first`);
  }
  const child: ChildProcess = spawn(python, [SERVER, '--host', '127.0.0.1', '--port', '0', '--path', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the stand-in printed no ready line within 60 s: ${stderr}`));
    }, 60_000);
    const onExit = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`the stand-in exited (${code}) before it was ready: ${stderr}`));
    };
    child.once('exit', onExit);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = READY_LINE.exec(line);
      if (match) {
        clearTimeout(timer);
        child.off('exit', onExit);
        resolveUrl(match[1]!);
      }
    });
  });
  const health = await fetch(`${url}/healthz`);
  assert.equal(health.status, 200, 'GET /healthz answers 200 once the ready line is printed');
  await health.text();
  return {
    url,
    pid: child.pid!,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      process.kill(child.pid!, signal);
      const [code] = await exited;
      return code;
    },
  };
}

/** Deterministic pseudo-random vectors (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomVectors(count: number, seed: number, dim = DIM): number[][] {
  const next = rng(seed);
  return Array.from({ length: count }, () => Array.from({ length: dim }, () => next() * 2 - 1));
}

/** A copy of `vector` moved slightly, still far closer to it than to any other random vector. */
function near(vector: number[], seed: number): number[] {
  const next = rng(seed);
  return vector.map((x) => x + (next() * 2 - 1) * 0.05);
}

function uniqueCollection(prefix: string): string {
  return `standin_${prefix}_${randomUUID().slice(0, 8)}`;
}

/** Qdrant's error answers: the client rejects with the HTTP status and the body {status: {error}}. */
async function assertQdrantError(promise: Promise<unknown>, status: number, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    const failure = error as { status?: unknown; data?: { status?: { error?: unknown } } };
    assert.equal(failure.status, status, `HTTP status of ${String(error)}`);
    assert.match(String(failure.data?.status?.error), message);
    return true;
  });
}

function assertVectorParams(vectors: unknown): void {
  const params = vectors as { size?: unknown; distance?: unknown };
  assert.equal(params.size, DIM);
  assert.equal(params.distance, 'Cosine');
}

function isDescending(scores: number[]): boolean {
  return scores.every((score, i) => i === 0 || scores[i - 1]! >= score);
}

interface ChunkPayload {
  author_id: string;
  platform: string;
  chunk_index: number;
}

void describe('Qdrant REST stand-in through @qdrant/js-client-rest', () => {
  const external = process.env.QDRANT_URL;
  let standIn: StandIn | undefined;
  let dataDir: string | undefined;
  let url: string;
  let client: QdrantClient;
  let isStandIn = false;
  const created: string[] = [];

  async function createCollection(prefix: string): Promise<string> {
    const name = uniqueCollection(prefix);
    created.push(name);
    assert.equal(await client.createCollection(name, { vectors: { size: DIM, distance: 'Cosine' } }), true);
    return name;
  }

  before(async () => {
    if (external) {
      url = external.replace(/\/+$/, '');
    } else {
      dataDir = await mkdtemp(join(tmpdir(), 'qdrant-standin-'));
      standIn = await startStandIn(dataDir);
      url = standIn.url;
    }
    client = new QdrantClient({ url, checkCompatibility: false });
    const root = (await (await fetch(`${url}/`)).json()) as { title?: string; version?: string };
    isStandIn = root.version?.endsWith('-standin') ?? false;
  });

  after(async () => {
    for (const name of created) {
      await client.deleteCollection(name).catch(() => undefined);
    }
    if (standIn) assert.equal(await standIn.stop(), 0, 'the stand-in exits with 0 on SIGTERM');
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  void it('answers the root, the health probes and the collection lifecycle', async () => {
    const info = await client.versionInfo();
    assert.equal(info.title, 'qdrant - vector search engine');
    assert.match(info.version, /^\d+\.\d+\.\d+/);
    if (!external) assert.match(info.version, /-standin$/);
    for (const probe of ['/healthz', '/readyz', '/livez']) {
      const response = await fetch(`${url}${probe}`);
      assert.equal(response.status, 200, probe);
      await response.text();
    }

    const name = await createCollection('lifecycle');
    assert.deepEqual(await client.collectionExists(name), { exists: true });
    const { collections } = await client.getCollections();
    assert.ok(collections.some((c) => c.name === name));
    const collection = await client.getCollection(name);
    assert.equal(collection.status, 'green');
    assert.equal(collection.points_count, 0);
    assertVectorParams(collection.config.params.vectors);
    await assertQdrantError(
      client.createCollection(name, { vectors: { size: DIM, distance: 'Cosine' } }),
      409,
      /already exists/,
    );

    assert.equal(await client.deleteCollection(name), true);
    assert.deepEqual(await client.collectionExists(name), { exists: false });
  });

  void describe('points', () => {
    let name: string;
    const authorA = randomUUID();
    const authorB = randomUUID();
    const ids = Array.from({ length: 150 }, () => randomUUID());
    const vectors = randomVectors(150, 42);
    // every third point is author B's: 100 of A's, 50 of B's
    const authorOf = (i: number): string => (i % 3 === 2 ? authorB : authorA);
    const batchIds = Array.from({ length: 10 }, () => randomUUID());
    const batchVectors = randomVectors(10, 7);

    before(async () => {
      name = await createCollection('points');
      for (const [field, schema] of [
        ['author_id', 'keyword'],
        ['platform', 'keyword'],
        ['chunk_index', 'integer'],
      ] as const) {
        const result = await client.createPayloadIndex(name, { field_name: field, field_schema: schema, wait: true });
        assert.equal(result.status, 'completed');
      }
      const upserted = await client.upsert(name, {
        wait: true,
        points: ids.map((id, i) => ({
          id,
          vector: vectors[i]!,
          payload: { author_id: authorOf(i), platform: 'medium', chunk_index: i, content: `chunk ${i}` },
        })),
      });
      assert.equal(upserted.status, 'completed');
      // the column ("batch") form of the same request
      const batch = await client.upsert(name, {
        wait: true,
        batch: {
          ids: batchIds,
          vectors: batchVectors,
          payloads: batchIds.map((_, i) => ({ author_id: authorA, platform: 'github', chunk_index: 1000 + i })),
        },
      });
      assert.equal(batch.status, 'completed');
    });

    void it('records payload indexes in the collection info', async () => {
      const info = await client.getCollection(name);
      assert.equal(info.points_count, 160);
      assert.equal(info.payload_schema.author_id?.data_type, 'keyword');
      assert.equal(info.payload_schema.platform?.data_type, 'keyword');
      assert.equal(info.payload_schema.chunk_index?.data_type, 'integer');
    });

    void it('retrieves points by UUID with payload and vector', async () => {
      const records = await client.retrieve(name, {
        ids: [ids[0]!, batchIds[3]!, randomUUID()],
        with_payload: true,
        with_vector: true,
      });
      assert.deepEqual(records.map((r) => r.id).sort(), [ids[0]!, batchIds[3]!].sort());
      const first = records.find((r) => r.id === ids[0])!;
      assert.deepEqual(first.payload, { author_id: authorA, platform: 'medium', chunk_index: 0, content: 'chunk 0' });
      const stored = first.vector as number[];
      assert.equal(stored.length, DIM);
      // Cosine collections store normalised vectors
      const norm = Math.hypot(...vectors[0]!);
      stored.forEach((x, i) => assert.ok(Math.abs(x - vectors[0]![i]! / norm) < 1e-5));
      const fromBatch = records.find((r) => r.id === batchIds[3])!;
      assert.equal((fromBatch.payload as unknown as ChunkPayload).chunk_index, 1003);
    });

    void it('counts with a filter on author_id', async () => {
      assert.equal((await client.count(name, { exact: true })).count, 160);
      const byAuthor = (author: string) => ({ must: [{ key: 'author_id', match: { value: author } }] });
      assert.equal((await client.count(name, { filter: byAuthor(authorA), exact: true })).count, 110);
      assert.equal((await client.count(name, { filter: byAuthor(authorB), exact: true })).count, 50);
      const githubOfA = {
        must: [
          { key: 'author_id', match: { value: authorA } },
          { key: 'platform', match: { value: 'github' } },
        ],
      };
      assert.equal((await client.count(name, { filter: githubOfA, exact: true })).count, 10);
      const range = { must: [{ key: 'chunk_index', range: { gte: 10, lt: 20 } }] };
      assert.equal((await client.count(name, { filter: range, exact: true })).count, 10);
    });

    void it('queries with a filter: the nearest point first, scores descending', async () => {
      const target = 16; // author A's (16 % 3 === 1)
      assert.equal(authorOf(target), authorA);
      const filter = { must: [{ key: 'author_id', match: { value: authorA } }] };
      const { points } = await client.query(name, {
        query: near(vectors[target]!, 1),
        filter,
        limit: 8,
        with_payload: true,
      });
      assert.equal(points.length, 8);
      assert.equal(points[0]!.id, ids[target]);
      assert.ok(points[0]!.score > 0.9, `nearest score ${points[0]!.score}`);
      assert.ok(isDescending(points.map((p) => p.score)), JSON.stringify(points.map((p) => p.score)));
      for (const point of points) assert.equal((point.payload as unknown as ChunkPayload).author_id, authorA);

      // B's point is the nearest overall but is filtered out for A
      const ofB = 2;
      const { points: filtered } = await client.query(name, { query: near(vectors[ofB]!, 2), filter, limit: 3 });
      assert.ok(!filtered.some((p) => p.id === ids[ofB]));
      assert.ok(filtered[0]!.payload == null, 'no payload unless asked for');
      const { points: unfiltered } = await client.query(name, { query: near(vectors[ofB]!, 2), limit: 1 });
      assert.equal(unfiltered[0]!.id, ids[ofB]);

      const { points: above } = await client.query(name, { query: vectors[target]!, score_threshold: 0.9, limit: 10 });
      assert.deepEqual(
        above.map((p) => p.id),
        [ids[target]],
      );
    });

    void it('answers query batches and the legacy search endpoints', async () => {
      const results = await client.queryBatch(name, {
        searches: [
          { query: near(vectors[5]!, 3), limit: 3 },
          { query: near(batchVectors[4]!, 4), limit: 3, with_payload: ['platform'] },
        ],
      });
      assert.equal(results.length, 2);
      assert.equal(results[0]!.points[0]!.id, ids[5]);
      assert.equal(results[1]!.points[0]!.id, batchIds[4]);
      assert.deepEqual(results[1]!.points[0]!.payload, { platform: 'github' });

      // POST /points/search{,/batch}: dropped from the OpenAPI spec (and from the JS client) but still served.
      const search = await fetch(`${url}/collections/${name}/points/search`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          vector: near(vectors[8]!, 5),
          limit: 4,
          with_payload: true,
          filter: { must: [{ key: 'author_id', match: { value: authorB } }] },
        }),
      });
      assert.equal(search.status, 200);
      const found = (await search.json()) as {
        status: string;
        result: Array<{ id: string; score: number; payload: ChunkPayload }>;
      };
      assert.equal(found.status, 'ok');
      assert.equal(found.result[0]!.id, ids[8]);
      assert.ok(isDescending(found.result.map((p) => p.score)));
      assert.ok(found.result.every((p) => p.payload.author_id === authorB));

      const batch = await fetch(`${url}/collections/${name}/points/search/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          searches: [
            { vector: near(vectors[9]!, 6), limit: 1 },
            { vector: near(vectors[10]!, 7), limit: 1 },
          ],
        }),
      });
      assert.equal(batch.status, 200);
      const batchResult = ((await batch.json()) as { result: Array<Array<{ id: string }>> }).result;
      assert.deepEqual(
        batchResult.map((r) => r[0]!.id),
        [ids[9], ids[10]],
      );
    });

    void it('scrolls through more than 100 points with next_page_offset', async () => {
      const seen: string[] = [];
      let offset: string | number | undefined;
      let pages = 0;
      for (;;) {
        const page = await client.scroll(name, { limit: 40, offset, with_payload: true, with_vector: false });
        pages += 1;
        for (const point of page.points) {
          seen.push(String(point.id));
          assert.ok(point.vector == null, 'no vector unless asked for');
          assert.ok(point.payload?.author_id);
        }
        if (page.next_page_offset === null || page.next_page_offset === undefined) break;
        offset = page.next_page_offset as string;
        assert.ok(pages < 10, 'scroll does not end');
      }
      assert.equal(pages, 4);
      assert.equal(new Set(seen).size, 160, 'no point twice');
      assert.deepEqual(new Set(seen), new Set([...ids, ...batchIds]));

      const filtered: string[] = [];
      offset = undefined;
      do {
        const page = await client.scroll(name, {
          filter: { must: [{ key: 'author_id', match: { value: authorB } }] },
          limit: 20,
          offset,
          with_payload: false,
        });
        filtered.push(...page.points.map((p) => String(p.id)));
        offset = (page.next_page_offset ?? undefined) as string | undefined;
      } while (offset !== undefined);
      assert.deepEqual(new Set(filtered), new Set(ids.filter((_, i) => authorOf(i) === authorB)));
    });

    void it('sets payload on points selected by a filter', async () => {
      const result = await client.setPayload(name, {
        payload: { reviewed: true },
        filter: { must: [{ key: 'platform', match: { value: 'github' } }] },
        wait: true,
      });
      assert.equal(result.status, 'completed');
      const reviewed = await client.count(name, { filter: { must: [{ key: 'reviewed', match: { value: true } }] } });
      assert.equal(reviewed.count, 10);
      const [record] = await client.retrieve(name, { ids: [batchIds[0]!] });
      assert.deepEqual(record!.payload, { author_id: authorA, platform: 'github', chunk_index: 1000, reviewed: true });
    });

    void it('rejects vectors of the wrong dimension with 400', async () => {
      await assertQdrantError(
        client.upsert(name, { wait: true, points: [{ id: randomUUID(), vector: [0.1, 0.2, 0.3], payload: {} }] }),
        400,
        /dimension/i,
      );
      await assertQdrantError(client.query(name, { query: [0.1, 0.2, 0.3], limit: 1 }), 400, /dimension/i);
      assert.equal((await client.count(name)).count, 160, 'the rejected point was not stored');
    });

    void it('deletes by filter and by ids', async () => {
      const byB = { must: [{ key: 'author_id', match: { value: authorB } }] };
      const deleted = await client.delete(name, { wait: true, filter: byB });
      assert.equal(deleted.status, 'completed');
      assert.equal((await client.count(name, { filter: byB })).count, 0);
      assert.equal((await client.count(name)).count, 110);

      await client.delete(name, { wait: true, points: [ids[0]!, batchIds[0]!] });
      assert.equal((await client.count(name)).count, 108);
      assert.deepEqual(await client.retrieve(name, { ids: [ids[0]!, batchIds[0]!] }), []);
    });
  });

  void it('filtered searches follow every write (upsert, payload change, delete) between repeated queries', async () => {
    // The stand-in caches filter masks between writes; a real Qdrant has no such cache. Same assertions for both.
    const name = await createCollection('filter-follows-writes');
    const [query, ...others] = randomVectors(4, 99);
    const author = randomUUID();
    const search = async (): Promise<string[]> =>
      (
        await client.query(name, {
          query: query!,
          filter: { must: [{ key: 'author_id', match: { value: author } }] },
          limit: 10,
        })
      ).points
        .map((point) => String(point.id))
        .sort();
    const [first, second, third] = [randomUUID(), randomUUID(), randomUUID()];
    await client.upsert(name, {
      wait: true,
      points: [
        { id: first, vector: others[0]!, payload: { author_id: author } },
        { id: second, vector: others[1]!, payload: { author_id: 'someone else' } },
      ],
    });
    assert.deepEqual(await search(), [first]);
    assert.deepEqual(await search(), [first], 'the same filter again');
    await client.upsert(name, {
      wait: true,
      points: [{ id: third, vector: others[2]!, payload: { author_id: author } }],
    });
    assert.deepEqual(await search(), [first, third].sort(), 'a new matching point is found');
    await client.setPayload(name, { wait: true, points: [second], payload: { author_id: author } });
    assert.deepEqual(await search(), [first, second, third].sort(), 'a payload change moves a point into the filter');
    await client.delete(name, { wait: true, points: [first] });
    assert.deepEqual(await search(), [second, third].sort(), 'a deleted point is gone');
  });

  void it('answers 404 for a missing collection', async () => {
    const missing = uniqueCollection('missing');
    await assertQdrantError(client.getCollection(missing), 404, new RegExp(`Collection \`${missing}\` doesn't exist`));
    await assertQdrantError(client.count(missing), 404, /doesn't exist/);
    await assertQdrantError(
      client.upsert(missing, {
        wait: true,
        points: [{ id: randomUUID(), vector: randomVectors(1, 1)[0]!, payload: {} }],
      }),
      404,
      /doesn't exist/,
    );
    await assertQdrantError(client.query(missing, { query: randomVectors(1, 2)[0]!, limit: 1 }), 404, /doesn't exist/);
    assert.deepEqual(await client.collectionExists(missing), { exists: false });
  });

  void it('keeps collections, points and payload indexes across restarts on the same --path', async (t) => {
    if (external && !isStandIn) {
      t.skip('QDRANT_URL is a real Qdrant, which this test cannot restart');
      return;
    }
    const dir = await mkdtemp(join(tmpdir(), 'qdrant-standin-restart-'));
    const instances: StandIn[] = [];
    try {
      const start = async (): Promise<QdrantClient> => {
        const instance = await startStandIn(dir);
        instances.push(instance);
        return new QdrantClient({ url: instance.url, checkCompatibility: false });
      };
      const name = uniqueCollection('restart');
      const pointIds = Array.from({ length: 12 }, () => randomUUID());
      const pointVectors = randomVectors(12, 99);
      const points = (from: number, to: number) =>
        pointIds
          .slice(from, to)
          .map((id, i) => ({ id, vector: pointVectors[from + i]!, payload: { author_id: `a${(from + i) % 2}` } }));

      let first = await start();
      await first.createCollection(name, { vectors: { size: DIM, distance: 'Cosine' } });
      await first.createPayloadIndex(name, { field_name: 'author_id', field_schema: 'keyword', wait: true });
      await first.upsert(name, { wait: true, points: points(0, 6) });
      assert.equal(await instances[0]!.stop('SIGTERM'), 0, 'clean exit on SIGTERM');

      first = await start();
      let info = await first.getCollection(name);
      assert.equal(info.points_count, 6);
      assert.equal(info.payload_schema.author_id?.data_type, 'keyword');
      // a write, then a crash: every write is committed before it is answered
      await first.upsert(name, { wait: true, points: points(6, 12) });
      assert.equal(await instances[1]!.stop('SIGKILL'), null);

      const last = await start();
      info = await last.getCollection(name);
      assert.equal(info.points_count, 12);
      assertVectorParams(info.config.params.vectors);
      assert.equal(
        (await last.count(name, { filter: { must: [{ key: 'author_id', match: { value: 'a1' } }] } })).count,
        6,
      );
      const { points: nearest } = await last.query(name, { query: near(pointVectors[9]!, 8), limit: 1 });
      assert.equal(nearest[0]!.id, pointIds[9]);
    } finally {
      for (const instance of instances) await instance.stop('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    }
  });
});
