/**
 * Helpers of the RAG API tests: start the app on a free port, read Server-Sent Events, and a scripted RagEngine
 * for the few paths a real service cannot be made to take on demand (a plain exception → 500, a failure in the
 * middle of a stream, a client that hangs up).
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { createLogger } from '../../src/infra/logger';
import { parseSettings, type Settings } from '../../src/config';
import { buildApp, type ApiApp } from '../../src/api/app';
import type { DependencyCheck, RagAnswer, RagEngine, RagRequest, RagSource, RagStreamEvent } from '../../src/rag/types';

export const KEY = 'test-key-0123456789';
export const OTHER_KEY = 'second-key-abcdef';

export function apiSettings(env: Record<string, string> = {}): Settings {
  return parseSettings({ API_KEYS: `${KEY},${OTHER_KEY}`, ...env });
}

export interface RunningApp {
  app: ApiApp;
  url: string;
  close(): Promise<void>;
}

export async function listen(engine: RagEngine, settings: Settings = apiSettings()): Promise<RunningApp> {
  const app = await buildApp({ engine, settings, readyTimeoutMs: 3000, logger: createLogger({ level: 'warn' }) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return { app, url: `http://127.0.0.1:${address.port}`, close: () => app.close() };
}

export const auth = (key = KEY) => ({ authorization: `Bearer ${key}` });

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = auth(),
): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new Error(`not JSON (${response.status}): ${text.slice(0, 300)}`);
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

/** All SSE messages of a response, in order. */
export async function readEvents(response: Response): Promise<EventSourceMessage[]> {
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event) });
  const decoder = new TextDecoder();
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    parser.feed(decoder.decode(chunk, { stream: true }));
  }
  return events;
}

export function source(overrides: Partial<RagSource> = {}): RagSource {
  return {
    chunkId: 'c1',
    documentId: 'd1',
    authorId: 'a1',
    authorName: 'Ada Lovelace',
    category: 'articles',
    platform: 'medium',
    title: 'Notes',
    link: 'https://example.com/notes',
    score: 0.9,
    text: 'The Analytical Engine weaves algebraic patterns.',
    ...overrides,
  };
}

/** A RagEngine whose behaviour each test sets; records what it was asked. */
export class ScriptedEngine implements RagEngine {
  readonly requests: { request: RagRequest; apiKeyId?: string; signal?: AbortSignal }[] = [];
  answerWith: (request: RagRequest) => Promise<RagAnswer> | RagAnswer = (request) => ({
    answer: `echo: ${request.query}`,
    sources: [source()],
    traceId: 'trace-1',
    model: 'scripted',
    usage: { inputTokens: 10, outputTokens: 3 },
  });
  streamWith: (request: RagRequest, signal?: AbortSignal) => AsyncIterable<RagStreamEvent> = (request) =>
    this.defaultStream(request);
  checks: Record<string, DependencyCheck> = { qdrant: { ok: true }, mongodb: { ok: true }, llm: { ok: true } };
  closed = false;

  async answer(request: RagRequest, options: { signal?: AbortSignal; apiKeyId?: string } = {}): Promise<RagAnswer> {
    this.requests.push({ request, ...options });
    return this.answerWith(request);
  }

  stream(request: RagRequest, options: { signal?: AbortSignal; apiKeyId?: string } = {}) {
    this.requests.push({ request, ...options });
    return this.streamWith(request, options.signal);
  }

  async *defaultStream(request: RagRequest): AsyncIterable<RagStreamEvent> {
    const answer = await this.answerWith(request);
    yield { type: 'sources', sources: answer.sources, traceId: answer.traceId };
    for (const word of answer.answer.split(/(?<= )/)) yield { type: 'token', text: word };
    yield { type: 'done', answer };
  }

  ready() {
    return Promise.resolve(this.checks);
  }

  close() {
    this.closed = true;
    return Promise.resolve();
  }
}
