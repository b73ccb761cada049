import { z } from 'zod';

/** Request and response schemas of the RAG API: validation (400 on mismatch) and the OpenAPI document. */

export const errorBodySchema = z
  .object({
    error: z.looseObject({
      code: z.string().describe('stable machine-readable code, e.g. bad_request, unauthorized, rate_limited'),
      message: z.string(),
    }),
  })
  .describe('Every error, on every route');

const turnSchema = z.object({ role: z.enum(['user', 'assistant']), content: z.string().max(20_000) });

export const ragRequestSchema = z.strictObject({
  query: z.string().trim().min(1).max(4000).describe('The question'),
  author: z
    .string()
    .trim()
    .min(1)
    .max(200)
    .optional()
    .describe('Author whose writing to answer from (looked up by name; else extracted from the query)'),
  k: z.int().min(1).max(50).optional().describe('Chunks kept after rerank (default RAG_TOP_K)'),
  stream: z.boolean().optional().describe('Answer as Server-Sent Events: sources, token…, done (or error)'),
  history: z.array(turnSchema).max(50).optional().describe('Earlier turns of the conversation'),
  maxTokens: z.int().min(1).max(8192).optional(),
  temperature: z.number().min(0).max(2).optional(),
});
export type RagRequestBody = z.infer<typeof ragRequestSchema>;

export const sourceSchema = z.object({
  chunkId: z.string(),
  documentId: z.string(),
  authorId: z.string(),
  authorName: z.string(),
  category: z.string(),
  platform: z.string(),
  title: z.string().nullish(),
  link: z.string().nullish(),
  score: z.number(),
  text: z.string(),
});

const authorSchema = z.object({ id: z.string(), name: z.string() });

export const ragAnswerSchema = z.object({
  answer: z.string(),
  sources: z.array(sourceSchema),
  traceId: z.string(),
  model: z.string(),
  usage: z.object({ inputTokens: z.number(), outputTokens: z.number() }),
  author: authorSchema.optional(),
});

// ---- OpenAI-compatible chat completions ---------------------------------------------------------------------

const contentPartSchema = z.looseObject({ type: z.string(), text: z.string().optional() });

export const chatMessageSchema = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: z.union([z.string(), z.array(contentPartSchema), z.null()]).optional(),
});

export const chatCompletionRequestSchema = z.looseObject({
  model: z.string().min(1).max(300).describe('"twin", or "twin:<author name>" to answer from that author'),
  messages: z.array(chatMessageSchema).min(1).max(100),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  max_tokens: z.int().min(1).max(8192).nullish(),
  max_completion_tokens: z.int().min(1).max(8192).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  n: z.int().min(1).max(1).nullish().describe('only 1 is supported'),
  metadata: z
    .record(z.string(), z.string())
    .nullish()
    .describe('metadata.author: the author to answer from (wins over a "twin:<author>" model name)'),
  user: z.string().nullish().describe('end-user id (accepted, not used for retrieval)'),
});
export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;

export const chatCompletionSchema = z.looseObject({
  id: z.string(),
  object: z.literal('chat.completion'),
  created: z.int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.int(),
      message: z.object({ role: z.literal('assistant'), content: z.string(), refusal: z.null() }),
      finish_reason: z.string(),
      logprobs: z.null(),
    }),
  ),
  usage: z.object({ prompt_tokens: z.number(), completion_tokens: z.number(), total_tokens: z.number() }),
  sources: z.array(sourceSchema).describe('extension: the chunks the answer was grounded on'),
  trace_id: z.string().describe('extension: the trace of this request (traces collection)'),
});

export const modelListSchema = z.object({
  object: z.literal('list'),
  data: z.array(z.object({ id: z.string(), object: z.literal('model'), created: z.int(), owned_by: z.string() })),
});

export const healthSchema = z.object({ status: z.literal('ok') });

const checkSchema = z.object({ ok: z.boolean(), latencyMs: z.number().optional(), error: z.string().optional() });
export const readySchema = z.looseObject({
  status: z.enum(['ready', 'not_ready']),
  checks: z.record(z.string(), checkSchema),
});
