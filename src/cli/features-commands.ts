import type { Command } from 'commander';
import type { FeatureEngineeringInput, FeatureEngineeringResult } from '../../workflows/feature-engineering';
import { DOCUMENT_CATEGORIES, type DocumentCategory } from '../domain/documents';
import { fail, slug, startPipeline, withRunOptions, type CliContext, type RunOptions } from './context';

export type FeatureCliContext = CliContext;

/** What `twin features` prints for a finished run: per-stage counts and the two artifacts. */
export function formatFeatureResult(result: FeatureEngineeringResult): string[] {
  const t = result.totals;
  const c = t.cleaning;
  const e = t.embedding;
  const lines = [
    `authors: ${result.authors.map((a) => `${a.name} (${a.id})`).join(', ')}${result.missingAuthors.length > 0 ? `; not found: ${result.missingAuthors.join(', ')}` : ''}`,
    `documents: ${t.documents} in ${t.batches} batches (${result.categories.join(', ')}; ${result.runs} run${result.runs === 1 ? '' : 's'})`,
    `cleaned:   ${c.cleaned} (${c.inserted} new, ${c.updated} changed, ${c.unchanged} unchanged, ${c.empty} empty, ${c.missing} missing, ${c.failed} failed)`,
    `embedded:  ${e.embedded} documents now, ${e.unchanged} already current, ${e.withoutChunks} without chunks; ` +
      `${e.chunks} chunks (${e.chunksEmbedded} embedded now, ${e.staleDeleted} stale deleted; largest ${e.maxTokens} tokens)`,
  ];
  for (const [category, per] of Object.entries(t.perCategory))
    lines.push(`  ${category}: ${per.documents} documents, ${per.chunks} chunks`);
  for (const f of t.failures) lines.push(`  failed ${f.id}: ${f.reason}`);
  for (const b of t.failedBatches)
    lines.push(`  failed batch (${b.category}, ${b.stage}, ${b.documents} documents from ${b.firstId}): ${b.reason}`);
  if (result.artifacts) {
    lines.push(
      `artifact: ${result.artifacts.cleaned.id} (${result.artifacts.cleaned.count} cleaned documents) ${result.artifacts.cleaned.uri}`,
    );
    lines.push(
      `artifact: ${result.artifacts.embedded.id} (${result.artifacts.embedded.count} chunks) ${result.artifacts.embedded.uri}`,
    );
  }
  lines.push(`status: ${result.status}`);
  return lines;
}

export function registerFeatureCommands(program: Command, ctx: FeatureCliContext): void {
  withRunOptions(
    program
      .command('features')
      .description(
        "run the featureEngineering workflow: clean, chunk and embed the authors' documents into Qdrant, and print the counts",
      )
      .requiredOption('-a, --author <name...>', "author's full name as in the warehouse (repeat for several)")
      .option('-c, --category <category...>', `only these categories (${DOCUMENT_CATEGORIES.join(', ')}); default all`)
      .option('--batch-size <n>', 'documents per clean/embed activity (default FEATURES_BATCH_SIZE)', (v) =>
        Number.parseInt(v, 10),
      )
      .option('--force', 're-embed documents whose chunks are already current', false),
    'features-<author>-<time>',
  ).action(
    async (
      options: {
        author: string[];
        category?: string[];
        batchSize?: number;
        force: boolean;
      } & RunOptions,
    ) => {
      const categories = options.category ?? [];
      const unknown = categories.filter((c) => !(DOCUMENT_CATEGORIES as readonly string[]).includes(c));
      if (unknown.length > 0)
        fail(`unknown category ${unknown.join(', ')}: expected ${DOCUMENT_CATEGORIES.join(', ')}`);
      if (options.batchSize !== undefined && !(Number.isInteger(options.batchSize) && options.batchSize > 0))
        fail('--batch-size must be a positive whole number');
      const input: FeatureEngineeringInput = {
        authors: options.author,
        ...(categories.length > 0 ? { categories: categories as DocumentCategory[] } : {}),
        ...(options.batchSize ? { batchSize: options.batchSize } : {}),
        ...(options.force ? { force: true } : {}),
      };
      await startPipeline<FeatureEngineeringResult>(ctx, options, {
        workflowType: 'featureEngineering',
        idPrefix: `features-${slug(options.author.join('-'))}`,
        input,
        format: formatFeatureResult,
      });
    },
  );
}
