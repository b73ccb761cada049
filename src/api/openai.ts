import type { RagAnswer, RagRequest, RagSource } from '../rag/types';
import { ApiError } from './errors';
import type { ChatCompletionRequest } from './schemas';

/**
 * The OpenAI-compatible facade: chat messages → a RagRequest, RagAnswer / stream events → chat.completion(.chunk)
 * objects. Sources and the trace id ride along as extra fields (`sources`, `trace_id`), which OpenAI clients
 * ignore unless asked.
 */

/** Model ids the facade lists; any model name is accepted, and `twin:<author>` picks the author. */
export const TWIN_MODEL = 'twin';
const AUTHOR_MODEL_PREFIX = `${TWIN_MODEL}:`;

type Message = ChatCompletionRequest['messages'][number];

function textOf(message: Message): string {
  const content = message.content;
  if (typeof content === 'string') return content;
  if (!content) return '';
  return content
    .filter((part) => part.type === 'text' && typeof part.text === 'string')
    .map((part) => part.text)
    .join('\n');
}

/** The author a chat request asks for: `metadata.author`, else the `<author>` of a `twin:<author>` model. */
export function authorOf(request: ChatCompletionRequest): string | undefined {
  const fromMetadata = request.metadata?.author?.trim();
  if (fromMetadata) return fromMetadata;
  if (request.model.startsWith(AUTHOR_MODEL_PREFIX)) {
    const name = request.model.slice(AUTHOR_MODEL_PREFIX.length).trim();
    return name || undefined;
  }
  return undefined;
}

/** Last message (a user turn) → query; earlier user/assistant turns → history; system/tool messages are ignored. */
export function toRagRequest(request: ChatCompletionRequest): RagRequest {
  const last = request.messages[request.messages.length - 1]!;
  const query = textOf(last).trim();
  if (last.role !== 'user' || !query) {
    throw new ApiError(400, 'bad_request', 'the last message must be a user message with text content', {
      param: 'messages',
    });
  }
  const history = request.messages
    .slice(0, -1)
    .filter((m): m is Message & { role: 'user' | 'assistant' } => m.role === 'user' || m.role === 'assistant')
    .map((m) => ({ role: m.role, content: textOf(m) }))
    .filter((m) => m.content.trim() !== '');
  const author = authorOf(request);
  const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? undefined;
  const temperature = request.temperature ?? undefined;
  return {
    query,
    ...(author ? { author } : {}),
    ...(history.length > 0 ? { history } : {}),
    ...(maxTokens !== undefined ? { maxTokens } : {}),
    ...(temperature !== undefined ? { temperature } : {}),
  };
}

export const completionId = (traceId: string) => `chatcmpl-${traceId}`;
const now = () => Math.floor(Date.now() / 1000);

export function toChatCompletion(answer: RagAnswer, model: string) {
  return {
    id: completionId(answer.traceId),
    object: 'chat.completion' as const,
    created: now(),
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant' as const, content: answer.answer, refusal: null },
        finish_reason: 'stop',
        logprobs: null,
      },
    ],
    usage: {
      prompt_tokens: answer.usage.inputTokens,
      completion_tokens: answer.usage.outputTokens,
      total_tokens: answer.usage.inputTokens + answer.usage.outputTokens,
    },
    sources: answer.sources,
    trace_id: answer.traceId,
  };
}

export function toChunk(
  traceId: string,
  model: string,
  delta: { role?: 'assistant'; content?: string },
  finishReason: string | null,
  extra: { sources?: RagSource[] } = {},
) {
  return {
    id: completionId(traceId),
    object: 'chat.completion.chunk' as const,
    created: now(),
    model,
    choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
    ...(extra.sources ? { sources: extra.sources, trace_id: traceId } : {}),
  };
}

export function toUsageChunk(answer: RagAnswer, model: string) {
  return {
    id: completionId(answer.traceId),
    object: 'chat.completion.chunk' as const,
    created: now(),
    model,
    choices: [],
    usage: {
      prompt_tokens: answer.usage.inputTokens,
      completion_tokens: answer.usage.outputTokens,
      total_tokens: answer.usage.inputTokens + answer.usage.outputTokens,
    },
  };
}
