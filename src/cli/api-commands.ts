import { Option, type Command } from 'commander';
import { createParser } from 'eventsource-parser';
import { startApiServer } from '../api/server';
import type { RagAnswer, RagSource, RagStreamEvent } from '../rag/types';
import { fail, type CliContext } from './context';

/**
 * `twin serve`: the RAG API in this process, with the platform's settings (a running `twin dev` is adopted).
 * `twin ask "…"`: one question to a running RAG API, printed as the answer and its numbered sources.
 */
export function registerApiCommands(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description('run the RAG API (POST /rag, OpenAI-compatible /v1/chat/completions, /docs) until Ctrl-C')
    .option('-p, --port <port>', 'port (default API_PORT)', (v) => Number.parseInt(v, 10))
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option(
      '--allow-no-keys',
      'local development only: accept requests without an API key when API_KEYS is empty (= API_ALLOW_NO_KEYS=true)',
    )
    .action(async (options: { port?: number; host: string; allowNoKeys?: boolean }) => {
      const base = ctx.platformSettings();
      const settings = options.allowNoKeys ? { ...base, api: { ...base.api, allowNoKeys: true } } : base;
      const server = await startApiServer(settings, { host: options.host, port: options.port ?? settings.api.port });
      ctx.print(`RAG API listening on ${server.url}`);
      ctx.print(`  POST ${server.url}/rag   POST ${server.url}/v1/chat/completions   docs ${server.url}/docs`);
      ctx.print(
        settings.api.keys.length > 0
          ? `  ${settings.api.keys.length} API key(s) from API_KEYS; try: npx twin ask "…" --url ${server.url}`
          : '  no API keys: every request is accepted (local development only)',
      );
      let stopping = false;
      const stop = () => {
        if (stopping) process.exit(1);
        stopping = true;
        ctx.print('stopping …');
        server.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });

  program
    .command('ask <question>')
    .description('ask the twin a question through a running RAG API and print the answer and its sources')
    .option('-a, --author <name>', "answer from this author's writing")
    .option('-k, --k <n>', 'chunks of context to use', (v) => Number.parseInt(v, 10))
    .option('-s, --stream', 'print the answer as it is generated')
    .option('--url <url>', 'RAG API base URL (default http://127.0.0.1:API_PORT)')
    .addOption(new Option('--api-key <key>', 'bearer API key (default: the first of API_KEYS)').env('TWIN_API_KEY'))
    .option('--json', 'print the full JSON answer')
    .action(
      async (
        question: string,
        options: { author?: string; k?: number; stream?: boolean; url?: string; apiKey?: string; json?: boolean },
      ) => {
        const settings = ctx.platformSettings();
        const base = (options.url ?? `http://127.0.0.1:${settings.api.port}`).replace(/\/+$/, '');
        const apiKey = options.apiKey ?? settings.api.keys[0]?.reveal();
        const body = {
          query: question,
          ...(options.author ? { author: options.author } : {}),
          ...(options.k ? { k: options.k } : {}),
          ...(options.stream ? { stream: true } : {}),
        };
        let response: Response;
        try {
          response = await fetch(`${base}/rag`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              accept: options.stream ? 'text/event-stream' : 'application/json',
              ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
            },
            body: JSON.stringify(body),
          });
        } catch (error) {
          const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
          fail(`no RAG API at ${base} (${cause}); start one with \`npx twin serve\` or pass --url`);
        }
        if (!response.ok) fail(await describeFailure(response));
        const answer = options.stream ? await printStream(response, ctx.print) : ((await response.json()) as RagAnswer);
        if (options.json) {
          ctx.print(JSON.stringify(answer, null, 2));
          return;
        }
        if (!options.stream) ctx.print(answer.answer);
        ctx.print('');
        for (const line of formatSources(answer.sources)) ctx.print(line);
        ctx.print(
          `trace ${answer.traceId}  model ${answer.model}${answer.author ? `  author ${answer.author.name}` : ''}`,
        );
      },
    );
}

async function describeFailure(response: Response): Promise<string> {
  const text = await response.text();
  try {
    const { error } = JSON.parse(text) as { error: { code: string; message: string; dependency?: string } };
    const retry = response.headers.get('retry-after');
    return `the RAG API answered ${response.status} ${error.code}: ${error.message}${retry ? ` (retry after ${retry} s)` : ''}`;
  } catch {
    return `the RAG API answered ${response.status}: ${text.slice(0, 200)}`;
  }
}

export function formatSources(sources: RagSource[]): string[] {
  if (sources.length === 0) return ['no sources'];
  return [
    'Sources:',
    ...sources.map(
      (s, i) =>
        `  [${i + 1}] ${s.title ?? s.documentId} — ${s.authorName} (${s.platform}, ${s.category}, score ${s.score.toFixed(3)})${s.link ? `\n      ${s.link}` : ''}`,
    ),
  ];
}

/** Prints tokens as they arrive; returns the final answer (or fails on an error event). */
async function printStream(response: Response, print: (line: string) => void): Promise<RagAnswer> {
  let done: RagAnswer | undefined;
  let failure: string | undefined;
  const parser = createParser({
    onEvent: (message) => {
      const event = JSON.parse(message.data) as RagStreamEvent;
      if (event.type === 'token') process.stdout.write(event.text);
      else if (event.type === 'done') done = event.answer;
      else if (event.type === 'error') failure = `${event.error.code}: ${event.error.message}`;
    },
  });
  const decoder = new TextDecoder();
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    parser.feed(decoder.decode(chunk, { stream: true }));
  }
  print('');
  if (failure) fail(`the answer stopped: ${failure}`);
  if (!done) fail('the answer stream ended without a result');
  return done;
}
