/**
 * The candidate's answers to the evaluation samples, through one of three backends, always with the twin's chat
 * template (jobs/finetune/chat_template.jinja):
 *
 * - `local`: `jobs/evaluate/generate.py` with the training venv's python on the model folder the local trainer
 *   produced (`file://…/model`); the template saved with the model, checked against the job's template.
 * - `openai`: any OpenAI-compatible chat-completions server serving the model (the server renders the chat template
 *   it was given — the local model server uses the one saved with the model).
 * - `sagemaker`: `InvokeEndpoint` on a TGI/LMI endpoint with the prompt rendered by `renderPrompt` (raw text in,
 *   generated text out).
 *
 * Answers are appended to a JSONL file as they arrive, and samples already answered are skipped, so a retried
 * activity resumes where it stopped.
 */
import { spawn } from 'node:child_process';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { InvokeEndpointCommand, SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import OpenAI from 'openai';
import pLimit from 'p-limit';
import { renderPrompt } from '../training/chat-template';
import type { EvalSample } from './samples';

export interface GeneratedAnswer {
  id: string;
  answer: string;
  outputTokens?: number;
  finishReason?: string;
}

export interface GenerationParams {
  maxNewTokens: number;
  temperature: number;
}

export interface GenerationProgress {
  done: number;
  total: number;
}

export class GenerationError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'GenerationError';
  }
}

async function readAnswers(file: string): Promise<Map<string, GeneratedAnswer>> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const answers = new Map<string, GeneratedAnswer>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const row = JSON.parse(line) as {
        id: string;
        answer: string;
        output_tokens?: number;
        outputTokens?: number;
        finish_reason?: string;
        finishReason?: string;
      };
      answers.set(row.id, {
        id: row.id,
        answer: row.answer,
        outputTokens: row.outputTokens ?? row.output_tokens,
        finishReason: row.finishReason ?? row.finish_reason,
      });
    } catch {
      // a line cut by a crash: regenerated
    }
  }
  return answers;
}

export interface LocalGenerationOptions {
  python: string;
  modelDir: string;
  /** Scratch folder of this evaluation (input and output JSONL, log). */
  workDir: string;
  chatTemplateFile: string;
  batchSize: number;
  device?: 'auto' | 'cpu' | 'cuda';
  onProgress?: (progress: GenerationProgress) => void;
  signal?: AbortSignal;
  env?: Record<string, string>;
}

/** Runs jobs/evaluate/generate.py; resolves with the answers in sample order and the script's `done` event. */
export async function generateLocally(
  samples: readonly EvalSample[],
  params: GenerationParams,
  options: LocalGenerationOptions,
): Promise<{ answers: GeneratedAnswer[]; stats: Record<string, unknown> }> {
  await mkdir(options.workDir, { recursive: true });
  const input = path.join(options.workDir, 'samples.jsonl');
  const output = path.join(options.workDir, 'answers.jsonl');
  await writeFile(input, samples.map((s) => `${JSON.stringify({ id: s.id, instruction: s.instruction })}\n`).join(''));
  const script = path.resolve(__dirname, '..', '..', 'jobs', 'evaluate', 'generate.py');
  const args = [
    script,
    '--model-dir',
    options.modelDir,
    '--input',
    input,
    '--output',
    output,
    '--chat-template',
    options.chatTemplateFile,
    '--max-new-tokens',
    String(params.maxNewTokens),
    '--temperature',
    String(params.temperature),
    '--batch-size',
    String(options.batchSize),
    '--device',
    options.device ?? 'auto',
  ];
  const child = spawn(options.python, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      TOKENIZERS_PARALLELISM: 'false',
      HF_HUB_OFFLINE: process.env.HF_HUB_OFFLINE ?? '1',
      ...(options.env ?? {}),
    },
    signal: options.signal,
  });
  let stats: Record<string, unknown> = {};
  let error: string | undefined;
  const stderr: string[] = [];
  child.stderr.on('data', (chunk: Buffer) => {
    stderr.push(chunk.toString('utf8'));
    if (stderr.length > 200) stderr.shift();
  });
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    let event: { event?: string; done?: number; total?: number; message?: string };
    try {
      event = JSON.parse(line) as typeof event;
    } catch {
      return;
    }
    if (event.event === 'progress' && typeof event.done === 'number' && typeof event.total === 'number') {
      options.onProgress?.({ done: event.done, total: event.total });
    } else if (event.event === 'done' || event.event === 'start') {
      stats = { ...stats, ...(event as Record<string, unknown>) };
    } else if (event.event === 'error') {
      error = event.message;
    }
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) {
    const tail = stderr.join('').split('\n').slice(-15).join('\n');
    // A model folder that cannot be loaded or a bad argument will fail the same way again.
    const permanent = /OSError|ValueError|SystemExit|not a valid|does not appear|no chat template|No such file/i.test(
      `${error ?? ''}\n${tail}`,
    );
    throw new GenerationError(`generate.py exited with ${code}: ${error ?? tail.slice(-1500)}`, !permanent);
  }
  const answers = await readAnswers(output);
  const missing = samples.filter((s) => !answers.has(s.id));
  if (missing.length)
    throw new GenerationError(`generate.py finished without answers for ${missing.length} sample(s)`, true);
  delete stats.event;
  return { answers: samples.map((s) => answers.get(s.id) as GeneratedAnswer), stats };
}

export interface RemoteGenerationOptions {
  /** File answers are appended to (resume after a crash). */
  answersFile: string;
  concurrency: number;
  onProgress?: (progress: GenerationProgress) => void;
  signal?: AbortSignal;
}

/** Asks `ask` for every sample not yet in the answers file, `concurrency` at once, appending each answer. */
async function generateRemotely(
  samples: readonly EvalSample[],
  ask: (sample: EvalSample) => Promise<Omit<GeneratedAnswer, 'id'>>,
  options: RemoteGenerationOptions,
): Promise<GeneratedAnswer[]> {
  await mkdir(path.dirname(options.answersFile), { recursive: true });
  const answers = await readAnswers(options.answersFile);
  const limit = pLimit(Math.max(1, options.concurrency));
  let done = samples.filter((s) => answers.has(s.id)).length;
  let firstError: unknown;
  await Promise.all(
    samples
      .filter((s) => !answers.has(s.id))
      .map((sample) =>
        limit(async () => {
          if (firstError !== undefined || options.signal?.aborted) return;
          try {
            const answer: GeneratedAnswer = { id: sample.id, ...(await ask(sample)) };
            answers.set(sample.id, answer);
            await appendFile(options.answersFile, `${JSON.stringify(answer)}\n`);
            done += 1;
            options.onProgress?.({ done, total: samples.length });
          } catch (error) {
            firstError ??= error;
          }
        }),
      ),
  );
  if (firstError !== undefined) throw firstError instanceof Error ? firstError : new Error(JSON.stringify(firstError));
  return samples.map((s) => answers.get(s.id) as GeneratedAnswer);
}

function classifyHttp(error: unknown, where: string): GenerationError {
  const status =
    (error as { status?: number }).status ??
    (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const message = `${where}: ${(error as Error).message ?? String(error)}`;
  const retryable = status === undefined || status >= 500 || status === 429 || status === 408 || status === 409;
  return new GenerationError(message, retryable);
}

/** Chat completions on an OpenAI-compatible server: one user turn per sample, as the twin is served. */
export function generateWithOpenAi(
  samples: readonly EvalSample[],
  params: GenerationParams,
  options: RemoteGenerationOptions & { baseUrl: string; model: string; apiKey?: string; timeoutMs?: number },
): Promise<GeneratedAnswer[]> {
  const client = new OpenAI({
    baseURL: options.baseUrl,
    apiKey: options.apiKey ?? 'not-needed',
    timeout: options.timeoutMs ?? 300_000,
    maxRetries: 3,
  });
  return generateRemotely(
    samples,
    async (sample) => {
      try {
        const response = await client.chat.completions.create(
          {
            model: options.model,
            messages: [{ role: 'user', content: sample.instruction }],
            max_tokens: params.maxNewTokens,
            temperature: params.temperature,
          },
          { signal: options.signal },
        );
        const choice = response.choices[0];
        return {
          answer: (choice?.message?.content ?? '').trim(),
          outputTokens: response.usage?.completion_tokens,
          finishReason: choice?.finish_reason ?? undefined,
        };
      } catch (error) {
        throw classifyHttp(error, `OpenAI-compatible server ${options.baseUrl}`);
      }
    },
    options,
  );
}

/** InvokeEndpoint on a TGI/LMI container, the prompt rendered with the twin's chat template. */
export function generateWithSageMaker(
  samples: readonly EvalSample[],
  params: GenerationParams,
  options: RemoteGenerationOptions & { endpointName: string; runtime: SageMakerRuntimeClient },
): Promise<GeneratedAnswer[]> {
  return generateRemotely(
    samples,
    async (sample) => {
      const sampling = params.temperature > 0;
      const body = {
        inputs: renderPrompt(sample.instruction),
        parameters: {
          max_new_tokens: params.maxNewTokens,
          do_sample: sampling,
          ...(sampling ? { temperature: params.temperature } : {}),
          return_full_text: false,
          details: true,
        },
      };
      let raw: string;
      try {
        const response = await options.runtime.send(
          new InvokeEndpointCommand({
            EndpointName: options.endpointName,
            ContentType: 'application/json',
            Accept: 'application/json',
            Body: new TextEncoder().encode(JSON.stringify(body)),
          }),
          { abortSignal: options.signal },
        );
        raw = new TextDecoder().decode(response.Body ?? new Uint8Array());
      } catch (error) {
        throw classifyHttp(error, `SageMaker endpoint ${options.endpointName}`);
      }
      return parseEndpointResponse(raw);
    },
    options,
  );
}

/** The text of a TGI (`[{generated_text, details}]`) or LMI (`{generated_text}` / `{outputs: [...]}`) response. */
export function parseEndpointResponse(raw: string): Omit<GeneratedAnswer, 'id'> {
  let body: unknown;
  try {
    body = JSON.parse(raw) as unknown;
  } catch {
    throw new GenerationError(`endpoint answered non-JSON: ${raw.slice(0, 200)}`, false);
  }
  const first = (Array.isArray(body) ? body[0] : body) as
    | { generated_text?: unknown; details?: { generated_tokens?: unknown; finish_reason?: unknown }; outputs?: unknown }
    | undefined;
  if (first && typeof first.generated_text === 'string') {
    return {
      answer: first.generated_text.trim(),
      ...(typeof first.details?.generated_tokens === 'number' ? { outputTokens: first.details.generated_tokens } : {}),
      ...(typeof first.details?.finish_reason === 'string' ? { finishReason: first.details.finish_reason } : {}),
    };
  }
  if (first && Array.isArray(first.outputs) && typeof first.outputs[0] === 'string')
    return { answer: first.outputs[0].trim() };
  throw new GenerationError(`unexpected endpoint response: ${raw.slice(0, 200)}`, false);
}

export function createSageMakerRuntime(aws: { region: string; endpoint?: string }): SageMakerRuntimeClient {
  return new SageMakerRuntimeClient({ region: aws.region, ...(aws.endpoint ? { endpoint: aws.endpoint } : {}) });
}
