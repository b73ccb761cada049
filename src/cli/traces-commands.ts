import type { Command } from 'commander';
import type { Settings } from '../config';
import { openWarehouse } from '../infra/mongo';
import { TraceStore, type TraceRecord, type TraceSpan } from '../rag/tracing';

const print = (line: string) => process.stdout.write(`${line}\n`);

function ms(value: number | undefined): string {
  return value === undefined ? '-' : `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

export function formatTraceLine(trace: TraceRecord): string {
  const status = trace.status === 'ok' ? 'ok ' : 'ERR';
  const author = trace.author ? ` author=${trace.author.name}` : '';
  const tokens = `${trace.usage.inputTokens}→${trace.usage.outputTokens} tok`;
  return `${trace.createdAt.toISOString()}  ${trace._id}  ${status} ${ms(trace.latencyMs).padStart(9)}  ${tokens.padEnd(14)} ${oneLine(trace.request.query, 60)}${author}`;
}

function formatSpan(span: TraceSpan): string {
  const tokens =
    span.inputTokens !== undefined || span.outputTokens !== undefined
      ? ` tokens=${span.inputTokens ?? 0}→${span.outputTokens ?? 0}`
      : '';
  const model = span.model ? ` model=${span.model}` : '';
  const attributes = Object.entries(span.attributes)
    .map(([key, value]) => `${key}=${oneLine(typeof value === 'string' ? value : JSON.stringify(value), 120)}`)
    .join(' ');
  return `    ${span.name.padEnd(11)} ${span.status.padEnd(7)} ${ms(span.latencyMs).padStart(9)}${model}${tokens}${attributes ? `\n${' '.repeat(16)}${attributes}` : ''}${span.error ? `\n${' '.repeat(16)}error: ${span.error}` : ''}`;
}

/** `twin traces list | show <id>`: the RAG request traces (MongoDB `traces`, see docs/rag.md). */
export function registerTracesCommands(program: Command, platformSettings: () => Settings): void {
  const traces = program.command('traces').description('RAG request traces (prompt monitoring)');

  traces
    .command('list')
    .description('list traces, newest first')
    .option('-n, --limit <n>', 'how many', (v) => Number.parseInt(v, 10), 20)
    .option('--errors', 'only failed requests')
    .option('--json', 'one JSON object per line')
    .action(async (options: { limit: number; errors?: boolean; json?: boolean }) => {
      const warehouse = await openWarehouse(platformSettings().mongo);
      try {
        const list = await new TraceStore(warehouse.db).list({
          limit: options.limit,
          ...(options.errors ? { status: 'error' as const } : {}),
        });
        if (list.length === 0) print('no traces yet; ask the twin something (`twin ask`, POST /rag)');
        for (const trace of list) print(options.json ? JSON.stringify(trace) : formatTraceLine(trace));
      } finally {
        await warehouse.close();
      }
    });

  traces
    .command('show <id>')
    .description('show one trace: request, spans with latencies, tokens and models, sources, answer')
    .option('--json', 'the stored document as JSON')
    .action(async (id: string, options: { json?: boolean }) => {
      const warehouse = await openWarehouse(platformSettings().mongo);
      try {
        const trace = await new TraceStore(warehouse.db).get(id);
        if (!trace) {
          print(`no trace ${id}; list them with \`twin traces list\``);
          process.exitCode = 1;
          return;
        }
        if (options.json) {
          print(JSON.stringify(trace, null, 2));
          return;
        }
        print(`trace ${trace._id}`);
        print(
          `  created   ${trace.createdAt.toISOString()}  (${ms(trace.latencyMs)}${trace.stream ? ', streamed' : ''})`,
        );
        print(`  status    ${trace.status}${trace.error ? ` ${trace.error.code}: ${trace.error.message}` : ''}`);
        print(`  query     ${trace.request.query}`);
        if (trace.request.author) print(`  asked as  ${trace.request.author}`);
        print(`  author    ${trace.author ? `${trace.author.name} (${trace.author.id})` : '-'}`);
        print(
          `  k         ${trace.request.k}${trace.request.historyTurns ? `, ${trace.request.historyTurns} history turns` : ''}`,
        );
        if (trace.apiKeyId) print(`  api key   ${trace.apiKeyId}`);
        print(
          `  prompt    ${trace.promptTemplateVersion}${trace.chatTemplateChecksum ? ` (${trace.chatTemplateChecksum})` : ''}`,
        );
        print(
          `  models    ${Object.entries(trace.models)
            .map(([role, model]) => `${role}=${model}`)
            .join(' ')}`,
        );
        print(`  tokens    ${trace.usage.inputTokens} in, ${trace.usage.outputTokens} out`);
        print('  spans');
        for (const span of trace.spans) print(formatSpan(span));
        print('  sources');
        trace.sources.forEach((source, i) =>
          print(
            `    [${i + 1}] ${source.score.toFixed(4)}  ${source.title ?? source.documentId}  (chunk ${source.chunkId})`,
          ),
        );
        if (trace.answer !== undefined) {
          print('  answer');
          for (const line of trace.answer.split('\n')) print(`    ${line}`);
        }
      } finally {
        await warehouse.close();
      }
    });
}
