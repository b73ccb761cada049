/**
 * Token counting and truncation for LLM prompts.
 *
 * Prompts are measured with OpenAI's o200k_base BPE (the `gpt-tokenizer` package: pure JavaScript, works offline,
 * no download). For OpenAI models that is the model's own tokenizer; for other OpenAI-compatible servers (Llama,
 * Gemma, Mistral, ...) it is an estimate that is usually within ±15 % for English prose, which is what a prompt
 * budget needs. The server's own `usage` figures, when it returns them, are what the run's accounting uses.
 */
import { countTokens, decode, encode } from 'gpt-tokenizer';

export interface TextTokenizer {
  /** Which tokenizer: recorded in dataset manifests next to the token figures. */
  readonly name: string;
  count(text: string): number;
  /**
   * The longest prefix of `text` within `maxTokens`, cut back to the last sentence end (or line end, or word
   * end) inside that budget, so a truncated prompt never ends mid-word. Returns `text` itself when it fits.
   */
  truncate(text: string, maxTokens: number): string;
}

/** Where a prefix may end: after terminal punctuation (with closing quotes/brackets) or a line break. */
const SENTENCE_END_RE = /[.!?…]["')\]]*(?=\s)|\n/g;

/** Cuts `prefix` back to its last sentence end, else its last whitespace; keeps at least half of it. */
export function cutAtBoundary(prefix: string): string {
  let sentenceEnd = -1;
  for (const match of prefix.matchAll(SENTENCE_END_RE)) sentenceEnd = match.index + match[0].length;
  if (sentenceEnd >= prefix.length / 2) return prefix.slice(0, sentenceEnd).trimEnd();
  const space = prefix.search(/\s\S*$/);
  if (space >= prefix.length / 2) return prefix.slice(0, space).trimEnd();
  return prefix.trimEnd();
}

/**
 * Special-token strings in the input (`<|im_start|>`, `<|endoftext|>` — common in texts about LLMs) are counted as
 * the plain text they are, never as control tokens: the package would otherwise refuse to encode them.
 */
const AS_PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

/** o200k_base (GPT-4o / GPT-4.1 / GPT-5 family) via `gpt-tokenizer`. */
export function gptTokenizer(): TextTokenizer {
  return {
    name: 'o200k_base',
    count: (text: string) => countTokens(text, AS_PLAIN_TEXT),
    truncate(text: string, maxTokens: number): string {
      if (maxTokens <= 0) return '';
      const tokens = encode(text, AS_PLAIN_TEXT);
      if (tokens.length <= maxTokens) return text;
      // Decoding a token prefix can end inside a multi-byte character; the replacement char is cut away below.
      const prefix = decode(tokens.slice(0, maxTokens)).replace(/\uFFFD+$/, '');
      return cutAtBoundary(prefix);
    },
  };
}

let shared: TextTokenizer | undefined;
/** One tokenizer per process (the BPE tables are built once). */
export function defaultTokenizer(): TextTokenizer {
  shared ??= gptTokenizer();
  return shared;
}
