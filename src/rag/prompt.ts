/**
 * The RAG prompt: a system prompt, the retrieved context (numbered sources with title, platform and link) and the
 * question, plus earlier turns of a conversation. Messages use the twin's chat roles (src/training/chat-template.ts);
 * backends that take a raw prompt (SageMaker TGI/LMI) get them rendered with the one chat template the twin was
 * trained with, so serving sees the same format as training.
 *
 * Bump {@link RAG_PROMPT_VERSION} whenever the wording or the layout changes: traces record it, so answers can be
 * compared per prompt version.
 */
import { renderChat, type ChatMessage } from '../training/chat-template';
import type { RagSource } from './types';

export const RAG_PROMPT_VERSION = 'rag-v1';

export const RAG_SYSTEM_PROMPT = [
  'You are a content creator writing in the voice of the author of the sources below.',
  'Answer the question using only the information in the context. Cite sources by their number, like [1].',
  'If the context does not contain the answer, say that you do not know rather than making something up.',
].join(' ');

/** One source as the model sees it: a numbered header with its metadata, then the chunk text. */
export function formatSource(
  index: number,
  source: Pick<RagSource, 'title' | 'platform' | 'link' | 'authorName' | 'text'>,
): string {
  const meta = [
    source.title ? `title: ${source.title}` : undefined,
    source.authorName ? `author: ${source.authorName}` : undefined,
    source.platform ? `platform: ${source.platform}` : undefined,
    source.link ? `link: ${source.link}` : undefined,
  ].filter(Boolean);
  return `[${index}] ${meta.join(' | ')}\n${source.text.trim()}`;
}

export function formatContext(blocks: string[]): string {
  return blocks.length > 0 ? blocks.join('\n\n') : '(no relevant context was found)';
}

/** The user turn: context then question (the question last, where small models attend best). */
export function userTurn(question: string, context: string): string {
  return `Context:\n${context}\n\nQuestion: ${question.trim()}`;
}

export function buildMessages(
  question: string,
  context: string,
  history: { role: 'user' | 'assistant'; content: string }[] = [],
  system: string = RAG_SYSTEM_PROMPT,
): ChatMessage[] {
  return [
    { role: 'system', content: system },
    ...history.map((turn) => ({ role: turn.role, content: turn.content })),
    { role: 'user', content: userTurn(question, context) },
  ];
}

/** The raw prompt for completion-style endpoints: the messages in the twin's chat template, generation prompt added. */
export function renderRagPrompt(messages: ChatMessage[], options: { bosToken?: string } = {}): string {
  return renderChat(messages, { addGenerationPrompt: true, bosToken: options.bosToken });
}
