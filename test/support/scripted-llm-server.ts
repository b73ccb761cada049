/**
 * A local OpenAI-compatible chat-completions server whose every answer a test scripts: good answers, malformed
 * JSON, short lists, 429 with Retry-After, 500s, hangs past the client's timeout, rejected response formats. It
 * records every request it got (arrival time, body), so tests can assert exact counts and retry timing.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EXTRACT_CLOSE, EXTRACT_OPEN } from '../../src/datasets/prompts';

export interface ChatRequestBody {
  model: string;
  messages: { role: string; content: string }[];
  temperature?: number;
  max_tokens?: number;
  max_completion_tokens?: number;
  seed?: number;
  response_format?: { type: string; json_schema?: { name: string; schema: Record<string, unknown>; strict?: boolean } };
}

export interface RecordedRequest {
  /** 0-based arrival order. */
  index: number;
  /** Arrival time, ms since epoch. */
  at: number;
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: ChatRequestBody;
}

export type ScriptedReply =
  | {
      kind: 'completion';
      content: string;
      usage?: { prompt_tokens: number; completion_tokens: number } | null;
      finishReason?: string;
    }
  | { kind: 'error'; status: number; message: string; headers?: Record<string, string> }
  /** Waits `ms` before answering with `then` (the client will usually have given up by then). */
  | { kind: 'hang'; ms: number; then?: ScriptedReply };

export type Script = (request: RecordedRequest, server: ScriptedLlmServer) => ScriptedReply | Promise<ScriptedReply>;

export const DEFAULT_USAGE = { prompt_tokens: 100, completion_tokens: 50 };

export const reply = {
  /** A completion whose content is `value` as JSON (or the string as is). */
  json(
    value: unknown,
    usage: { prompt_tokens: number; completion_tokens: number } | null = DEFAULT_USAGE,
  ): ScriptedReply {
    return { kind: 'completion', content: typeof value === 'string' ? value : JSON.stringify(value), usage };
  },
  text(
    content: string,
    usage: { prompt_tokens: number; completion_tokens: number } | null = DEFAULT_USAGE,
  ): ScriptedReply {
    return { kind: 'completion', content, usage };
  },
  error(status: number, message = `scripted ${status}`, headers: Record<string, string> = {}): ScriptedReply {
    return { kind: 'error', status, message, headers };
  },
  rateLimited(retryAfterSeconds: number): ScriptedReply {
    return {
      kind: 'error',
      status: 429,
      message: 'Rate limit reached (scripted)',
      headers: { 'retry-after': String(retryAfterSeconds) },
    };
  },
  hang(ms: number, then?: ScriptedReply): ScriptedReply {
    return { kind: 'hang', ms, then };
  },
};

/** The user message of a request. */
export function userMessage(request: RecordedRequest): string {
  return request.body.messages.find((m) => m.role === 'user')?.content ?? '';
}

/** The extract text inside the prompt's `<extract>` tags. */
export function extractOf(request: RecordedRequest): string {
  const user = userMessage(request);
  const start = user.lastIndexOf(`${EXTRACT_OPEN}\n`);
  const end = user.lastIndexOf(`\n${EXTRACT_CLOSE}`);
  if (start < 0 || end < start) throw new Error('request has no <extract> block');
  return user.slice(start + EXTRACT_OPEN.length + 1, end);
}

export class ScriptedLlmServer {
  readonly requests: RecordedRequest[] = [];
  private readonly server = createServer((req, res) => void this.handle(req, res));
  private readonly timers = new Set<NodeJS.Timeout>();
  private baseUrl = '';

  constructor(private script: Script) {}

  /** Base URL including `/v1`, as the OpenAI client wants it. */
  get url(): string {
    return this.baseUrl;
  }

  setScript(script: Script): void {
    this.script = script;
  }

  /** Requests whose extract contains `marker`. */
  requestsFor(marker: string): RecordedRequest[] {
    return this.requests.filter((r) => userMessage(r).includes(marker));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.baseUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
    return this;
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = Date.now();
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { message: 'not found' } }));
      return;
    }
    let body: ChatRequestBody;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChatRequestBody;
    } catch {
      res
        .writeHead(400, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { message: 'bad JSON body' } }));
      return;
    }
    const request: RecordedRequest = {
      index: this.requests.length,
      at,
      method: req.method,
      path: req.url,
      headers: req.headers,
      body,
    };
    this.requests.push(request);
    let scripted: ScriptedReply;
    try {
      scripted = await this.script(request, this);
    } catch (error) {
      scripted = reply.error(500, `script failed: ${(error as Error).message}`);
    }
    await this.send(res, request, scripted);
  }

  private async send(res: ServerResponse, request: RecordedRequest, scripted: ScriptedReply): Promise<void> {
    if (scripted.kind === 'hang') {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          resolve();
        }, scripted.ms);
        this.timers.add(timer);
      });
      if (res.destroyed || res.socket?.destroyed) return;
      await this.send(res, request, scripted.then ?? reply.error(504, 'hung'));
      return;
    }
    if (res.destroyed) return;
    if (scripted.kind === 'error') {
      res
        .writeHead(scripted.status, { 'content-type': 'application/json', ...(scripted.headers ?? {}) })
        .end(JSON.stringify({ error: { message: scripted.message, type: 'scripted', code: null } }));
      return;
    }
    const completion = {
      id: `chatcmpl-scripted-${request.index}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: request.body.model,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: scripted.content },
          finish_reason: scripted.finishReason ?? 'stop',
        },
      ],
      ...(scripted.usage === null
        ? {}
        : {
            usage: {
              ...(scripted.usage ?? DEFAULT_USAGE),
              total_tokens:
                (scripted.usage ?? DEFAULT_USAGE).prompt_tokens + (scripted.usage ?? DEFAULT_USAGE).completion_tokens,
            },
          }),
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion));
  }
}

export async function startScriptedLlmServer(script: Script): Promise<ScriptedLlmServer> {
  return new ScriptedLlmServer(script).start();
}
