/**
 * A real LLM on this machine, offline: a GGUF model run in process by node-llama-cpp (llama.cpp bindings, prebuilt
 * CPU binary from the `@node-llama-cpp/linux-x64` npm package — nothing is downloaded or compiled), served as a
 * small OpenAI-compatible HTTP endpoint so the platform's one LLM client (`llm.ts`) talks to it like to OpenAI,
 * vLLM or Ollama.
 *
 * - `POST /v1/chat/completions`: messages (system/user/assistant), temperature, max_tokens / max_completion_tokens,
 *   seed, and `response_format`: `json_schema` → the schema compiled to a llama.cpp grammar (the model cannot
 *   produce anything else), `json_object` → the generic JSON grammar, none → free text. A schema the grammar
 *   compiler does not support is answered with HTTP 400 naming `response_format`, which makes the client fall back.
 * - `usage` from the sequence's token meter (real model tokens), `finish_reason` `length` when max tokens hit.
 * - One request at a time (one context sequence); others wait in order.
 * - `GET /v1/models` lists the one model.
 *
 * Default model: Gemma 3 270M instruction-tuned, Q4_K_M (scripts/install-local-llm.sh).
 */
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import Fastify from 'fastify';
import type * as NodeLlamaCppModule from 'node-llama-cpp';
import type {
  ChatHistoryItem,
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaGrammar,
  LlamaModel,
} from 'node-llama-cpp';
import pLimit from 'p-limit';
import { logger } from './logger';

export const DEFAULT_LOCAL_MODEL_FILE = 'gemma-3-270m-q4_k_m.gguf';

/** `${TWIN_HOME:-~/.cache/llm-twin}/models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf` (or LOCAL_LLM_MODEL_DIR). */
export function defaultLocalModelPath(env: Record<string, string | undefined> = process.env): string {
  const home = env.TWIN_HOME || path.join(os.homedir(), '.cache', 'llm-twin');
  const dir = env.LOCAL_LLM_MODEL_DIR || path.join(home, 'models', 'gemma-3-270m');
  return path.join(dir, DEFAULT_LOCAL_MODEL_FILE);
}

export interface LocalLlmOptions {
  modelPath: string;
  /** Name the endpoint reports and accepts. Default: the file name without `.gguf`. */
  modelName?: string;
  /** Tokens of context. Default 4096. */
  contextSize?: number;
  /**
   * CPU threads. Default: half the cores (at least 1). llama.cpp threads spin while waiting, so more threads than
   * free cores makes generation much slower, not faster.
   */
  threads?: number;
  host?: string;
  /** 0 (default) = a free port. */
  port?: number;
}

export interface LocalLlmStats {
  requests: number;
  promptTokens: number;
  completionTokens: number;
  /** Time spent generating (prompt evaluation included), ms. */
  generationMs: number;
}

export interface LocalLlmServer {
  /** Base URL including `/v1`. */
  url: string;
  model: string;
  stats(): LocalLlmStats;
  close(): Promise<void>;
}

type NodeLlamaCpp = typeof NodeLlamaCppModule;

/**
 * node-llama-cpp is an ES module with top-level await, which `require` cannot load; this project compiles to
 * CommonJS (where TypeScript would turn `import()` into `require`), so the import is made at run time.
 */
// eslint-disable-next-line @typescript-eslint/no-implied-eval
const importModule = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

let loaded: Promise<NodeLlamaCpp> | undefined;
export function loadNodeLlamaCpp(): Promise<NodeLlamaCpp> {
  loaded ??= importModule(pathToFileURL(require.resolve('node-llama-cpp')).href) as Promise<NodeLlamaCpp>;
  return loaded;
}

interface ChatBody {
  model?: string;
  messages?: { role?: string; content?: unknown }[];
  temperature?: number;
  max_tokens?: number;
  max_completion_tokens?: number;
  seed?: number;
  frequency_penalty?: number;
  presence_penalty?: number;
  response_format?: { type?: string; json_schema?: { name?: string; schema?: Record<string, unknown> } };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return (content as unknown[])
      .map((part) => {
        const text = part && typeof part === 'object' ? (part as { text?: unknown }).text : undefined;
        return typeof text === 'string' ? text : '';
      })
      .join('');
  }
  return '';
}

/** OpenAI's penalties range −2…2; llama.cpp's 0…1 here. */
function clampPenalty(value: number | undefined): number | undefined {
  return value === undefined ? undefined : Math.min(1, Math.max(0, value / 2));
}

/** Loads the model and serves it; resolves when the endpoint is listening. */
export async function startLocalLlmServer(options: LocalLlmOptions): Promise<LocalLlmServer> {
  const { getLlama, LlamaChatSession } = await loadNodeLlamaCpp();
  const modelName = options.modelName ?? path.basename(options.modelPath).replace(/\.gguf$/i, '');
  const threads = options.threads ?? Math.max(1, Math.floor(os.availableParallelism() / 2));
  const log = logger().child({ component: 'local-llm', model: modelName });

  const llama: Llama = await getLlama({
    gpu: false,
    build: 'never',
    usePrebuiltBinaries: true,
    skipDownload: true,
    progressLogs: false,
    logLevel: 'error' as never,
  });
  let model: LlamaModel | undefined;
  let context: LlamaContext | undefined;
  try {
    model = await llama.loadModel({ modelPath: options.modelPath });
    context = await model.createContext({ contextSize: options.contextSize ?? 4096, threads });
  } catch (error) {
    await llama.dispose();
    throw error;
  }
  const sequence: LlamaContextSequence = context.getSequence();
  const grammars = new Map<string, Promise<LlamaGrammar>>();
  const oneAtATime = pLimit(1);
  const stats: LocalLlmStats = { requests: 0, promptTokens: 0, completionTokens: 0, generationMs: 0 };

  const grammarFor = async (format: ChatBody['response_format']): Promise<LlamaGrammar | undefined> => {
    if (!format?.type || format.type === 'text') return undefined;
    if (format.type === 'json_object') return llama.getGrammarFor('json');
    if (format.type !== 'json_schema' || !format.json_schema?.schema) {
      throw new HttpError(400, `response_format ${format.type} without a json_schema.schema is not supported`);
    }
    const key = JSON.stringify(format.json_schema.schema);
    let grammar = grammars.get(key);
    if (!grammar) {
      grammar = llama.createGrammarForJsonSchema(format.json_schema.schema as never) as Promise<LlamaGrammar>;
      grammars.set(key, grammar);
    }
    try {
      return await grammar;
    } catch (error) {
      grammars.delete(key);
      throw new HttpError(
        400,
        `response_format json_schema not supported by the grammar compiler: ${(error as Error).message}`,
      );
    }
  };

  const complete = async (body: ChatBody, signal: AbortSignal) => {
    const messages = (body.messages ?? []).map((m) => ({ role: m.role ?? 'user', text: textOf(m.content) }));
    const last = messages.at(-1);
    if (!last || last.role !== 'user') throw new HttpError(400, 'messages must end with a user message');
    const grammar = await grammarFor(body.response_format);
    const history: ChatHistoryItem[] = messages.slice(0, -1).map((m): ChatHistoryItem => {
      if (m.role === 'system' || m.role === 'developer') return { type: 'system', text: m.text };
      if (m.role === 'assistant') return { type: 'model', response: [m.text] };
      return { type: 'user', text: m.text };
    });
    return oneAtATime(async () => {
      await sequence.clearHistory();
      const session = new LlamaChatSession({ contextSequence: sequence, autoDisposeSequence: false });
      try {
        session.setChatHistory(history);
        const before = sequence.tokenMeter.getState();
        const started = Date.now();
        const result = await session.promptWithMeta(last.text, {
          grammar,
          maxTokens: body.max_completion_tokens ?? body.max_tokens ?? 1024,
          temperature: body.temperature ?? 0.7,
          seed: body.seed,
          // llama.cpp server's defaults: repetition penalty 1.1 over the last 64 tokens (newlines exempt, so JSON
          // layout is not punished), OpenAI's frequency/presence penalties mapped; plus DRY, which breaks the
          // token loops ("_on_test_on_test_...") small models fall into.
          repeatPenalty: {
            penalty: 1.1,
            lastTokens: 64,
            penalizeNewLine: false,
            frequencyPenalty: clampPenalty(body.frequency_penalty),
            presencePenalty: clampPenalty(body.presence_penalty),
          },
          dryRepeatPenalty: { strength: 0.8 },
          signal,
          stopOnAbortSignal: true,
        });
        const used = sequence.tokenMeter.diff(before);
        stats.requests += 1;
        stats.promptTokens += used.usedInputTokens;
        stats.completionTokens += used.usedOutputTokens;
        stats.generationMs += Date.now() - started;
        return {
          text: result.responseText,
          finishReason: result.stopReason === 'maxTokens' ? 'length' : 'stop',
          usage: { prompt_tokens: used.usedInputTokens, completion_tokens: used.usedOutputTokens },
        };
      } finally {
        session.dispose({ disposeSequence: false });
      }
    });
  };

  const app = Fastify({ logger: false, bodyLimit: 8 * 1024 * 1024 });
  app.get('/v1/models', () => ({ object: 'list', data: [{ id: modelName, object: 'model', owned_by: 'local' }] }));
  app.post('/v1/chat/completions', async (request, reply) => {
    const body = (request.body ?? {}) as ChatBody;
    const abort = new AbortController();
    // The client went away (timeout, cancellation) before the answer: stop generating.
    reply.raw.on('close', () => {
      if (!reply.raw.writableEnded) abort.abort();
    });
    try {
      const result = await complete(body, abort.signal);
      return {
        id: `chatcmpl-local-${stats.requests}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: modelName,
        choices: [
          { index: 0, message: { role: 'assistant', content: result.text }, finish_reason: result.finishReason },
        ],
        usage: { ...result.usage, total_tokens: result.usage.prompt_tokens + result.usage.completion_tokens },
      };
    } catch (error) {
      const status = error instanceof HttpError ? error.status : 500;
      if (status === 500) log.error({ err: error }, 'local completion failed');
      return reply.code(status).send({
        error: { message: (error as Error).message, type: status === 400 ? 'invalid_request_error' : 'server_error' },
      });
    }
  });
  const address = await app.listen({ host: options.host ?? '127.0.0.1', port: options.port ?? 0 });
  log.info({ address, threads }, 'local LLM endpoint ready');

  return {
    url: `${address}/v1`,
    model: modelName,
    stats: () => ({ ...stats }),
    async close() {
      await app.close();
      await llama.dispose();
    },
  };
}
