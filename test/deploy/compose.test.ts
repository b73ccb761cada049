/**
 * docker-compose.temporal.yml cannot run here (no Docker), so its structure is checked: the services a user
 * gets, what they are built from, their health checks, dependencies, ports and volumes.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { QUEUE_NAMES, TASK_QUEUES } from '../../src/config';
import { SEARCH_ATTRIBUTE_DEFINITIONS } from '../../src/domain/search-attributes';

const ROOT = path.resolve(__dirname, '..', '..');
const raw = readFileSync(path.join(ROOT, 'docker-compose.temporal.yml'), 'utf8');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string; args?: Record<string, string> };
  command?: string | string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  ports?: string[];
  volumes?: string[];
  configs?: Array<{ source: string; target: string }>;
}
interface Compose {
  name: string;
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
  configs?: Record<string, { content?: string; file?: string }>;
}

// `merge: true` resolves the `<<: *anchor` keys the way Docker Compose does.
const compose = parse(raw, { merge: true }) as Compose;
const services = compose.services;
const workers = QUEUE_NAMES.map((q) => [q, services[`worker-${q}`]] as const);
const commandText = (s: Service): string => [s.entrypoint ?? [], s.command ?? []].flat().join(' ');

void describe('docker-compose.temporal.yml', () => {
  void test('has the Temporal cluster (server, PostgreSQL, schema setup, UI, admin tools), MongoDB, Qdrant, workers and the API', () => {
    const expected = [
      'postgresql',
      'temporal-schema',
      'temporal',
      'temporal-ui',
      'temporal-admin-tools',
      'mongodb',
      'qdrant',
      'api',
      ...QUEUE_NAMES.map((q) => `worker-${q}`),
    ];
    assert.deepEqual(Object.keys(services).sort(), expected.sort());
    assert.match(services.temporal!.image!, /^temporalio\/server:\d+\.\d+\.\d+$/);
    assert.match(services['temporal-ui']!.image!, /^temporalio\/ui:\d+\.\d+\.\d+$/);
    assert.match(services['temporal-admin-tools']!.image!, /^temporalio\/admin-tools:\d+\.\d+\.\d+$/);
    assert.equal(services['temporal-schema']!.image, services['temporal-admin-tools']!.image);
    assert.equal(
      services.temporal!.image!.split(':')[1],
      services['temporal-admin-tools']!.image!.split(':')[1],
      'server and admin tools (schema) versions match',
    );
    assert.match(services.postgresql!.image!, /^postgres:\d+$/);
    assert.match(services.mongodb!.image!, /^mongo:\d+\.\d+$/);
    assert.match(services.qdrant!.image!, /^qdrant\/qdrant:v\d+\.\d+\.\d+$/);
    for (const [name, service] of Object.entries(services)) {
      if (!service.build) assert.doesNotMatch(service.image ?? '', /:latest$|^[^:]+$/, `${name}: pin the image tag`);
    }
  });

  void test('Temporal runs on PostgreSQL, with the schema created before the server starts', () => {
    const server = services.temporal!;
    assert.equal(server.environment!.DB, 'postgres12');
    assert.equal(server.environment!.POSTGRES_SEEDS, 'postgresql');
    assert.deepEqual(server.depends_on, { 'temporal-schema': { condition: 'service_completed_successfully' } });
    assert.deepEqual(services['temporal-schema']!.depends_on, { postgresql: { condition: 'service_healthy' } });
    const schema = commandText(services['temporal-schema']!);
    assert.match(schema, /temporal-sql-tool --plugin postgres12 --ep postgresql/);
    assert.match(schema, /update-schema -d "\/etc\/temporal\/schema\/postgresql\/v12\/\$\$db\/versioned"/);
    // The dynamic config file is provided inline and mounted where DYNAMIC_CONFIG_FILE_PATH points.
    const mount = server.configs![0]!;
    assert.ok(compose.configs![mount.source]!.content);
    assert.equal(mount.target, `/etc/temporal/${server.environment!.DYNAMIC_CONFIG_FILE_PATH}`);
    assert.ok(parse(compose.configs![mount.source]!.content!), 'the dynamic config is valid YAML');
  });

  void test('the admin tools create the namespace and exactly the platform search attributes', () => {
    const script = commandText(services['temporal-admin-tools']!);
    assert.match(script, /temporal operator namespace create --namespace default/);
    const declared = /for attribute in ([^;]+);/.exec(script)![1]!.trim().split(/\s+/);
    assert.deepEqual(
      Object.fromEntries(declared.map((pair) => pair.split(':') as [string, string])),
      SEARCH_ATTRIBUTE_DEFINITIONS,
      'same names and types as src/domain/search-attributes.ts',
    );
  });

  void test('one worker per task queue and the API, all built from the project Dockerfile as one image', () => {
    for (const [queue, worker] of workers) {
      assert.ok(worker, `worker-${queue}`);
      assert.deepEqual(worker.build, {
        context: '.',
        dockerfile: 'Dockerfile',
        args: { EMBEDDING_MODEL: '${EMBEDDING_MODEL:-baked}' },
      });
      assert.equal(worker.image, 'llm-twin:local');
      assert.equal(worker.environment!.TWIN_WORKER_QUEUES, queue, `worker-${queue} runs ${TASK_QUEUES[queue]} only`);
      assert.equal(worker.command, undefined, 'the image default command runs the workers');
    }
    const api = services.api!;
    assert.equal(api.image, 'llm-twin:local');
    assert.deepEqual(api.command, ['dist/src/api/server.js']);
    assert.equal(api.environment!.API_PORT, '8000');
    assert.ok(!('TWIN_WORKER_QUEUES' in api.environment!));
  });

  void test('the project containers reach the other services by their compose names', () => {
    for (const [name, service] of [...workers, ['api', services.api] as const]) {
      assert.ok(service, name);
      const env = service.environment!;
      assert.equal(env.TEMPORAL_ADDRESS, 'temporal:7233');
      assert.equal(env.MONGODB_URI, 'mongodb://mongodb:27017');
      assert.equal(env.QDRANT_URL, 'http://qdrant:6333');
      for (const dependency of ['temporal-admin-tools', 'mongodb', 'qdrant']) {
        assert.equal(service.depends_on![dependency]?.condition, 'service_healthy', `waits for ${dependency}`);
      }
      // Secrets come from the user's shell or .env, never from this file.
      for (const key of ['OPENAI_API_KEY', 'HF_TOKEN', 'OPIK_API_KEY']) assert.equal(env[key], `\${${key}:-}`);
    }
    assert.equal(services.api!.environment!.API_KEYS, '${API_KEYS:-}');
  });

  void test('health checks on every long-running service, and every dependency condition is satisfiable', () => {
    const oneShot = new Set(['temporal-schema']);
    for (const [name, service] of Object.entries(services)) {
      if (oneShot.has(name) || name.startsWith('worker-')) continue;
      assert.ok(service.healthcheck?.test.length, `${name} has a health check`);
      assert.ok(['CMD', 'CMD-SHELL'].includes(service.healthcheck.test[0]!), `${name}: exec-form health check`);
    }
    assert.match(services.api!.healthcheck!.test.join(' '), /http:\/\/127\.0\.0\.1:8000\/health/);
    for (const [name, service] of Object.entries(services)) {
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        assert.ok(services[dependency], `${name} depends on unknown ${dependency}`);
        if (condition === 'service_healthy')
          assert.ok(
            services[dependency].healthcheck,
            `${name} waits for ${dependency} to be healthy, which has no health check`,
          );
        if (condition === 'service_completed_successfully') assert.ok(oneShot.has(dependency));
      }
    }
  });

  void test('ports: Temporal gRPC, Web UI, MongoDB, Qdrant and the API', () => {
    const published = Object.values(services).flatMap((s) => s.ports ?? []);
    for (const port of ['7233:7233', '8080:8080', '27017:27017', '6333:6333', '8000:8000'])
      assert.ok(published.includes(port), port);
    assert.equal(new Set(published.map((p) => p.split(':')[0])).size, published.length, 'no host port published twice');
  });

  void test('state lives in named volumes, all declared', () => {
    const used = Object.values(services)
      .flatMap((s) => s.volumes ?? [])
      .map((v) => v.split(':')[0]!);
    assert.ok(used.length >= 4);
    for (const volume of used)
      assert.ok(volume in compose.volumes, `${volume} is a declared named volume, not a host path`);
    assert.deepEqual(Object.keys(compose.volumes).sort(), [...new Set(used)].sort(), 'no unused volume');
    assert.ok(services.postgresql!.volumes!.some((v) => v.endsWith(':/var/lib/postgresql/data')));
    assert.ok(services.mongodb!.volumes!.some((v) => v.endsWith(':/data/db')));
    assert.ok(services.qdrant!.volumes!.some((v) => v.endsWith(':/qdrant/storage')));
  });

  void test('every $ is either a ${VAR} interpolation or escaped as $$ for the container shell', () => {
    const stray = [...raw.matchAll(/\$(?!\$|\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\})/g)].filter(
      (m) => raw[m.index - 1] !== '$',
    );
    assert.deepEqual(
      stray.map((m) => raw.slice(Math.max(0, m.index - 20), m.index + 20)),
      [],
      'an unescaped $ would be interpolated by compose, not by the shell',
    );
  });
});
