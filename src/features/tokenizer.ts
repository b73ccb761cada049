/**
 * Token counting with the embedding model's own tokenizer (all-MiniLM-L6-v2's WordPiece), so chunk sizes are
 * measured in the unit that the model's 256-token window is measured in.
 */
import { AutoTokenizer, type PreTrainedTokenizer } from '@huggingface/transformers';
import { type ModelLocation, prepareModelLoad } from './model-files';

/** Counts tokens of a text without special tokens. Synchronous, so chunking stays a pure function. */
export interface TokenCounter {
  /** Which tokenizer: recorded in chunk metadata. */
  readonly name: string;
  count(text: string): number;
}

/** Loads the model's tokenizer (offline from the local model directory unless `allowRemote`). */
export async function loadTokenizer(location: ModelLocation = {}): Promise<PreTrainedTokenizer> {
  const { modelId } = prepareModelLoad(location);
  return AutoTokenizer.from_pretrained(modelId);
}

/** A {@link TokenCounter} over the embedding model's tokenizer. */
export async function loadTokenCounter(location: ModelLocation = {}): Promise<TokenCounter> {
  const tokenizer = await loadTokenizer(location);
  return tokenCounterFor(tokenizer, 'all-MiniLM-L6-v2/wordpiece');
}

export function tokenCounterFor(tokenizer: PreTrainedTokenizer, name: string): TokenCounter {
  return {
    name,
    count: (text: string) => tokenizer.encode(text, { add_special_tokens: false }).length,
  };
}
