import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import type { EtlAuthor, LinkRow } from '../../activities/etl';
import type { DigitalDataEtlInput, DigitalDataEtlResult } from '../../workflows/digital-data-etl';
import { parseLinkedInExport } from '../etl/linkedin-export';
import { ArtifactRegistry } from '../infra/artifact-registry';
import { createArtifactStore } from '../infra/artifact-store';
import { openWarehouse } from '../infra/mongo';
import { connectClient } from '../infra/temporal';
import { fail, slug, type CliContext } from './context';
import {
  collectionForFile,
  DocumentWarehouse,
  recordRawDocumentsArtifact,
  REFERENCE_EXPORT_FILES,
  type ImportReport,
  type WarehouseCollection,
} from '../infra/warehouse';

/** Same as MAX_LINKS_PER_RUN in workflows/digital-data-etl.ts (a workflow module is not imported here at runtime). */
export const LINKS_PER_RUN = 1000;

export type { CliContext };

export interface LinkList {
  author?: string;
  links: string[];
}

/**
 * Reads a link list: YAML/JSON `{author, links: [...]}`, the reference project's run config
 * `{parameters: {user_full_name, links}}`, a bare YAML/JSON list, or plain text (one link a line, `#` comments).
 */
export async function loadLinkList(file: string): Promise<LinkList> {
  const text = await readFile(file, 'utf8');
  if (/\.(ya?ml|json)$/i.test(file)) {
    const data: unknown = parseYaml(text);
    return linkListFrom(data, file);
  }
  const links = text
    .split(/\r?\n/)
    .map((line) => line.replace(/(^|\s)#.*$/, '').trim())
    .filter(Boolean);
  return { links };
}

function linkListFrom(data: unknown, file: string): LinkList {
  if (Array.isArray(data)) return { links: data.map(String) };
  if (data && typeof data === 'object') {
    const record = data as Record<string, unknown>;
    const params = (record.parameters && typeof record.parameters === 'object' ? record.parameters : record) as Record<
      string,
      unknown
    >;
    const author = params.author ?? params.user_full_name;
    if (Array.isArray(params.links)) {
      return { ...(typeof author === 'string' ? { author } : {}), links: params.links.map(String) };
    }
  }
  throw new Error(`${file}: expected {author, links: [...]}, {parameters: {user_full_name, links}} or a list of links`);
}

function pad(text: string, width: number): string {
  return text.length >= width ? text : text + ' '.repeat(width - text.length);
}

/** The per-link status table and the counts, as printed by `twin etl`. */
export function formatEtlResult(result: DigitalDataEtlResult): string[] {
  const lines: string[] = [];
  const statusWidth = Math.max(6, ...result.rows.map((r) => r.status.length));
  const platformWidth = Math.max(8, ...result.rows.map((r) => (r.platform ?? '-').length));
  lines.push(`${pad('#', 4)} ${pad('status', statusWidth)}  ${pad('platform', platformWidth)}  link  (reason)`);
  result.rows.forEach((row: LinkRow, i) => {
    const reason = row.reason ? `  (${row.reason})` : '';
    lines.push(
      `${pad(String(i + 1), 4)} ${pad(row.status, statusWidth)}  ${pad(row.platform ?? '-', platformWidth)}  ${row.link}${reason}`,
    );
  });
  const c = result.counts;
  lines.push('');
  lines.push(
    `${c.links} links: ${c.byStatus.stored} stored, ${c.byStatus.unchanged} unchanged, ${c.byStatus['skipped-duplicate']} skipped-duplicate, ` +
      `${c.byStatus.unsupported} unsupported, ${c.byStatus.failed} failed`,
  );
  const platforms = Object.entries(c.byPlatform)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(
      ([platform, statuses]) =>
        `${platform} ${Object.entries(statuses)
          .map(([s, n]) => `${s}=${n}`)
          .join(' ')}`,
    );
  lines.push(`per platform: ${platforms.join('; ')}`);
  lines.push(`author: ${result.author.fullName} (${result.author.id})`);
  lines.push(
    result.artifact
      ? `artifact: ${result.artifact.id} (${result.artifact.count} documents) ${result.artifact.uri}`
      : 'artifact: none (no documents)',
  );
  return lines;
}

function printImport(print: CliContext['print'], file: string, report: ImportReport): void {
  print(
    `${file} → ${report.collection}: ${report.read} read, ${report.inserted} inserted, ${report.updated} updated, ` +
      `${report.unchanged} unchanged, ${report.skipped.length} skipped`,
  );
  for (const s of report.skipped) print(`  skipped ${s.id}: ${s.reason}`);
  for (const w of report.warnings) print(`  warning: ${w}`);
}

export function registerEtlCommands(program: Command, ctx: CliContext): void {
  const { print } = ctx;

  const etl = program
    .command('etl')
    .description(
      "run the digitalDataEtl workflow: crawl an author's links into the warehouse and print the per-link status table",
    )
    .option('-a, --author <name>', "the author's full name (default: the file's author)")
    .option('-l, --links <file>', 'links: YAML/JSON {author, links} or a list, or text with one link a line')
    .option('-c, --config <file>', 'a run configuration YAML ({author, links}), e.g. configs/etl/maxime-labonne.yaml')
    .option('--refresh', 're-crawl links already stored; update documents whose content changed', false)
    .option('--max-in-flight <n>', 'links crawled at once', (v) => Number.parseInt(v, 10))
    .option('--workflow-id <id>', 'workflow id (default etl-<author>-<time>)')
    .option('--json', 'print the result as JSON', false)
    .action(
      async (options: {
        author?: string;
        links?: string;
        config?: string;
        refresh: boolean;
        maxInFlight?: number;
        workflowId?: string;
        json: boolean;
      }) => {
        const file = options.config ?? options.links;
        if (!file) fail('give the links: --links <file> or --config <file> (see configs/etl/)');
        const list = await loadLinkList(file).catch((error: Error) => fail(`cannot read ${file}: ${error.message}`));
        const author = options.author ?? list.author;
        if (!author) fail(`no author: give --author "Full Name" or put author: in ${file}`);
        if (list.links.length === 0) fail(`${file} has no links`);

        const settings = ctx.platformSettings();
        const client = await connectClient(settings.temporal);
        try {
          const batches: string[][] = [];
          for (let i = 0; i < list.links.length; i += LINKS_PER_RUN)
            batches.push(list.links.slice(i, i + LINKS_PER_RUN));
          const baseId = options.workflowId ?? `etl-${slug(author)}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
          for (const [n, links] of batches.entries()) {
            const workflowId = batches.length > 1 ? `${baseId}-${n + 1}` : baseId;
            const input: DigitalDataEtlInput = {
              author,
              links,
              refresh: options.refresh,
              ...(options.maxInFlight ? { maxInFlight: options.maxInFlight } : {}),
            };
            const handle = await client.workflow.start('digitalDataEtl', {
              taskQueue: 'twin-pipelines',
              workflowId,
              args: [input],
            });
            // With --json, stdout carries only the JSON; progress goes to stderr.
            const progress = options.json ? (line: string) => void process.stderr.write(`${line}\n`) : print;
            progress(
              `started ${workflowId} (${links.length} links${batches.length > 1 ? `, batch ${n + 1}/${batches.length}` : ''})`,
            );
            const link = ctx.webUiLink(settings, workflowId, handle.firstExecutionRunId);
            if (link) progress(`Web UI: ${link}`);
            const result = (await handle.result()) as DigitalDataEtlResult;
            if (options.json) print(JSON.stringify(result, null, 2));
            else for (const line of formatEtlResult(result)) print(line);
          }
        } finally {
          await client.connection.close();
        }
      },
    );

  etl
    .command('linkedin-export <zip>')
    .description(
      'import posts and articles from a LinkedIn data export archive into the warehouse (LinkedIn pages are not crawled)',
    )
    .option('-a, --author <name>', "the author's full name")
    .action(async (zip: string, options: { author?: string }) => {
      // `--author` after the subcommand may be taken by `twin etl`'s own --author: accept it from either.
      const authorName = options.author ?? etl.opts<{ author?: string }>().author;
      if (!authorName) fail('give the author: twin etl linkedin-export <zip> --author "Full Name"');
      const settings = ctx.platformSettings();
      const parsed = await parseLinkedInExport(zip);
      const mongo = await openWarehouse(settings.mongo);
      try {
        const warehouse = new DocumentWarehouse(mongo.db);
        const author = await warehouse.getOrCreateAuthor(authorName);
        const tally = { stored: 0, updated: 0, unchanged: 0 };
        const ids: string[] = [];
        for (const result of [...parsed.posts, ...parsed.articles]) {
          const outcome = await warehouse.storeCrawlResult(result, author, { source: 'linkedin-export' });
          ids.push(outcome.documentId);
          if (outcome.updated) tally.updated++;
          else tally[outcome.status]++;
        }
        print(`author: ${author.fullName} (${author.id})${author.created ? ' — created' : ''}`);
        print(
          `${zip}: ${parsed.posts.length} posts, ${parsed.articles.length} articles read; ` +
            `${tally.stored} stored, ${tally.updated} updated, ${tally.unchanged} unchanged, ${parsed.skipped.length} skipped`,
        );
        for (const s of parsed.skipped) print(`  skipped ${s.source}: ${s.reason}`);
        if (ids.length > 0) {
          const artifact = await recordRawDocumentsArtifact(
            warehouse,
            createArtifactStore(settings.artifacts, settings.aws),
            new ArtifactRegistry(mongo.db),
            {
              author,
              documentIds: ids,
              links: ids.length,
              producer: {
                workflowId: `cli:linkedin-export:${path.basename(zip)}`,
                runId: '',
                activity: 'linkedin-export',
                attempt: 1,
              },
              source: 'linkedin-export',
            },
          );
          print(`artifact: ${artifact.id} (${artifact.count} documents) ${artifact.uri}`);
        }
      } finally {
        await mongo.close();
      }
    });

  const warehouse = program
    .command('warehouse')
    .description('the raw-document warehouse (MongoDB): import, export, counts');

  warehouse
    .command('import <files...>')
    .description(
      "import files in the reference project's JSON export format (UserDocument.json, ArticleDocument.json, ...); idempotent",
    )
    .action(async (files: string[]) => {
      const settings = ctx.platformSettings();
      // Users first, so documents that name them find them.
      const loaded = await Promise.all(
        files.map(async (file) => {
          const data: unknown = await readFile(file, 'utf8')
            .then((text) => JSON.parse(text) as unknown)
            .catch((error: Error) => fail(`cannot read ${file}: ${error.message}`));
          if (!Array.isArray(data)) fail(`${file}: expected a JSON array of documents`);
          const collection = collectionForFile(file, data);
          if (!collection) {
            fail(
              `${file}: cannot tell which collection it holds; name it like ${Object.values(REFERENCE_EXPORT_FILES).join(', ')}`,
            );
          }
          return { file, data, collection };
        }),
      );
      loaded.sort((a, b) => Number(b.collection === 'users') - Number(a.collection === 'users'));
      const mongo = await openWarehouse(settings.mongo);
      try {
        const store = new DocumentWarehouse(mongo.db);
        for (const { file, data, collection } of loaded)
          printImport(print, file, await store.importReference(collection, data));
        const counts = await store.counts();
        print(
          `warehouse now: ${Object.entries(counts)
            .map(([c, n]) => `${c}=${n}`)
            .join(' ')}`,
        );
      } finally {
        await mongo.close();
      }
    });

  warehouse
    .command('export <dir>')
    .description("export users and documents in the reference project's JSON format (one <Class>.json per collection)")
    .option('--with-crawl-metadata', 'include the crawl metadata field (`crawl`) of each document', false)
    .action(async (dir: string, options: { withCrawlMetadata: boolean }) => {
      const settings = ctx.platformSettings();
      const mongo = await openWarehouse(settings.mongo);
      try {
        await mkdir(dir, { recursive: true });
        const store = new DocumentWarehouse(mongo.db);
        for (const [collection, name] of Object.entries(REFERENCE_EXPORT_FILES) as [WarehouseCollection, string][]) {
          const file = path.join(dir, name);
          const count = await writeJsonArray(
            file,
            store.exportReference(collection, { withCrawl: options.withCrawlMetadata }),
          );
          print(`${collection}: ${count} → ${file}`);
        }
      } finally {
        await mongo.close();
      }
    });

  warehouse
    .command('stats')
    .description('documents per collection (for one author with --author)')
    .option('-a, --author <name>', 'only this author')
    .action(async (options: { author?: string }) => {
      const mongo = await openWarehouse(ctx.platformSettings().mongo);
      try {
        const store = new DocumentWarehouse(mongo.db);
        let author: EtlAuthor | null = null;
        if (options.author) {
          author = await store.findAuthor(options.author);
          if (!author) {
            print(`no author named ${options.author}`);
            process.exitCode = 1;
            return;
          }
        }
        const counts = await store.counts(author?.id);
        print(
          `${author ? `${author.fullName} (${author.id}): ` : ''}${Object.entries(counts)
            .map(([c, n]) => `${c}=${n}`)
            .join(' ')}`,
        );
      } finally {
        await mongo.close();
      }
    });
}

/** Writes records as one JSON array, streaming (repositories can be large). Returns how many were written. */
async function writeJsonArray(file: string, records: AsyncIterable<Record<string, unknown>>): Promise<number> {
  const temp = `${file}.${process.pid}.tmp`;
  const out = createWriteStream(temp);
  const write = async (chunk: string): Promise<void> => {
    if (!out.write(chunk)) await once(out, 'drain');
  };
  let count = 0;
  await write('[');
  for await (const record of records) {
    await write(`${count > 0 ? ', ' : ''}${JSON.stringify(record)}`);
    count++;
  }
  await write(']');
  out.end();
  await once(out, 'finish');
  await rename(temp, file);
  return count;
}
