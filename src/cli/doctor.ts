import { access, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TASK_QUEUES, type Settings } from '../config';
import type { QueuePing } from '../../workflows/ping';
import { openWarehouse, redactUri } from '../infra/mongo';
import { connectClient, temporalAddress } from '../infra/temporal';
import { findBinary, MissingBinaryError } from '../infra/local-services';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** What to do when it failed. */
  fix?: string;
}

async function check(name: string, run: () => Promise<string>, fix: string): Promise<Check> {
  try {
    return { name, ok: true, detail: await run() };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { name, ok: false, detail: message.split('\n')[0] ?? message, fix };
  }
}

/** Checks every service and prerequisite, each with the exact fix when it fails. */
export async function runDoctor(settings: Settings): Promise<Check[]> {
  const checks: Check[] = [];
  const local = (name: string, script: string) =>
    check(`${name} installed`, () => Promise.resolve(findBinary(name)), `bash scripts/${script}`);
  if (!settings.temporal.address) checks.push(await local('temporal', 'install-temporal.sh'));
  if (!settings.mongo.uri) checks.push(await local('ferretdb', 'install-ferretdb.sh'));

  checks.push(
    await check(
      'Temporal',
      async () => {
        const client = await connectClient(settings.temporal);
        try {
          const info = await client.workflowService.getSystemInfo({});
          return `${temporalAddress(settings.temporal)} namespace ${settings.temporal.namespace} (server ${info.serverVersion || 'unknown'})`;
        } finally {
          await client.connection.close();
        }
      },
      settings.temporal.address
        ? 'check TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and the TLS / API key settings'
        : 'start the local platform: npm run dev',
    ),
  );
  checks.push(
    await check(
      'Workers',
      async () => {
        const client = await connectClient(settings.temporal);
        try {
          const pings = await client.workflow.execute<() => Promise<QueuePing[]>>('pingQueues', {
            taskQueue: TASK_QUEUES.pipelines,
            workflowId: `doctor-ping-${Date.now()}`,
            workflowExecutionTimeout: '30 seconds',
          });
          const down = pings.filter((p) => !p.ok);
          if (down.length > 0) throw new Error(down.map((p) => `${p.taskQueue}: ${p.detail}`).join('; '));
          return `every queue answers (${pings.map((p) => p.taskQueue).join(', ')})`;
        } finally {
          await client.connection.close();
        }
      },
      'start the workers: npm run dev (or `npx tsx workers/all.ts` against your cluster)',
    ),
  );
  checks.push(
    await check(
      'MongoDB',
      async () => {
        const warehouse = await openWarehouse(settings.mongo, { timeoutMs: 3_000 });
        await warehouse.close();
        return `${redactUri(settings.mongo.uri!.reveal())} database ${settings.mongo.database}`;
      },
      settings.mongo.uri
        ? 'check MONGODB_URI and that the server is running'
        : 'start the local platform: npm run dev (or set MONGODB_URI)',
    ),
  );
  checks.push(
    await check(
      'Qdrant',
      async () => {
        if (!settings.qdrant.url) throw new Error('QDRANT_URL is not set');
        const response = await fetch(new URL('/collections', settings.qdrant.url), {
          headers: settings.qdrant.apiKey ? { 'api-key': settings.qdrant.apiKey.reveal() } : {},
          signal: AbortSignal.timeout(3_000),
        });
        if (!response.ok) throw new Error(`HTTP ${response.status} from ${settings.qdrant.url}`);
        return settings.qdrant.url;
      },
      settings.qdrant.url
        ? 'check QDRANT_URL / QDRANT_API_KEY and that Qdrant is running'
        : 'start the local platform: npm run dev (or set QDRANT_URL)',
    ),
  );
  if (settings.artifacts.store === 'local') {
    checks.push(
      await check(
        'Artifact store',
        async () => {
          await mkdir(settings.artifacts.dir, { recursive: true });
          const probe = path.join(settings.artifacts.dir, `.doctor-${process.pid}`);
          await writeFile(probe, 'ok');
          await rm(probe);
          return `local folder ${settings.artifacts.dir}`;
        },
        'make ARTIFACT_DIR writable, or set ARTIFACT_STORE=s3 with ARTIFACT_BUCKET',
      ),
    );
  }
  if (settings.embedding.backend === 'local') {
    checks.push(
      await check(
        'Embedding model',
        async () => {
          await access(path.join(settings.embedding.modelDir, 'tokenizer.json'));
          return settings.embedding.modelDir;
        },
        'bash scripts/install-embedding-model.sh (or set EMBEDDING_MODEL_DIR)',
      ),
    );
  }
  return checks;
}

export function formatChecks(checks: Check[]): string {
  return checks
    .map((c) => `${c.ok ? '✔' : '✘'} ${c.name.padEnd(22)} ${c.detail}${c.ok || !c.fix ? '' : `\n  → fix: ${c.fix}`}`)
    .join('\n');
}

export { MissingBinaryError };
