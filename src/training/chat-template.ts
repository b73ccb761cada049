import { Template } from '@huggingface/jinja';
import { sha256 } from '../domain/artifacts';
import { readJobFile } from './job-files';

/**
 * The twin's one prompt format. The text is jobs/finetune/chat_template.jinja, the same file train.py installs on
 * the tokenizer for SFT and DPO and saves with the model, so evaluation and serving render prompts exactly as
 * training did (the reference trained on Alpaca text and served another format; that defect is not copied).
 */
export const CHAT_TEMPLATE_FILE = 'chat_template.jinja';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export function chatTemplate(): string {
  return readJobFile(CHAT_TEMPLATE_FILE);
}

/** `sha256:…` of the template text; recorded with every model version so a mismatch can be detected. */
export function chatTemplateChecksum(): string {
  return `sha256:${sha256(chatTemplate())}`;
}

let compiled: Template | undefined;

/**
 * Renders messages with the twin's template (the @huggingface/jinja engine, as transformers.js uses for chat
 * templates). `bosToken`/`eosToken` are the model tokenizer's special tokens as text (e.g. '<|begin_of_text|>');
 * leave them empty where the server adds them itself.
 */
export function renderChat(
  messages: ChatMessage[],
  options: { addGenerationPrompt?: boolean; bosToken?: string; eosToken?: string } = {},
): string {
  compiled ??= new Template(chatTemplate());
  return compiled.render({
    messages,
    add_generation_prompt: options.addGenerationPrompt ?? false,
    bos_token: options.bosToken ?? '',
    eos_token: options.eosToken ?? '',
  });
}

/** The prompt a served twin completes for one instruction: the user turn plus the generation prompt. */
export function renderPrompt(instruction: string, options: { system?: string; bosToken?: string } = {}): string {
  const messages: ChatMessage[] = options.system ? [{ role: 'system', content: options.system }] : [];
  messages.push({ role: 'user', content: instruction });
  return renderChat(messages, { addGenerationPrompt: true, bosToken: options.bosToken });
}
