/**
 * The context passed to the model: the ranked sources, each as a numbered block with its title, author, platform
 * and link, added in rank order while they fit the token budget. A source that does not fit whole is cut at a
 * sentence boundary when at least {@link MIN_PARTIAL_TOKENS} of it fit (so the best source is never dropped just
 * because it is long); after that, assembly stops.
 */
import { defaultTokenizer, type TextTokenizer } from '../infra/tokenizer';
import { formatContext, formatSource } from './prompt';
import type { RagSource } from './types';

export const MIN_PARTIAL_TOKENS = 64;

export interface AssembledContext {
  text: string;
  /** The sources in the context (text as the model saw it: possibly cut), in order: [1], [2], … */
  sources: RagSource[];
  /** Tokens of the context text (with the budget's tokenizer). */
  tokens: number;
  /** Sources left out or cut for the budget. */
  dropped: number;
  truncated: number;
}

export function assembleContext(
  ranked: RagSource[],
  budgetTokens: number,
  tokenizer: TextTokenizer = defaultTokenizer(),
): AssembledContext {
  const blocks: string[] = [];
  const sources: RagSource[] = [];
  let used = 0;
  let truncated = 0;
  const separator = tokenizer.count('\n\n');
  for (const source of ranked) {
    const index = sources.length + 1;
    const block = formatSource(index, source);
    const cost = tokenizer.count(block) + (blocks.length > 0 ? separator : 0);
    if (used + cost <= budgetTokens) {
      blocks.push(block);
      sources.push(source);
      used += cost;
      continue;
    }
    const header = formatSource(index, { ...source, text: '' });
    const room = budgetTokens - used - tokenizer.count(header) - (blocks.length > 0 ? separator : 0) - 1;
    if (room >= MIN_PARTIAL_TOKENS) {
      const cut = tokenizer.truncate(source.text, room);
      if (cut.trim()) {
        const partial = { ...source, text: cut };
        const partialBlock = formatSource(index, partial);
        const partialCost = tokenizer.count(partialBlock) + (blocks.length > 0 ? separator : 0);
        if (used + partialCost <= budgetTokens) {
          blocks.push(partialBlock);
          sources.push(partial);
          used += partialCost;
          truncated++;
        }
      }
    }
    break;
  }
  const text = formatContext(blocks);
  return {
    text,
    sources,
    tokens: blocks.length > 0 ? tokenizer.count(text) : 0,
    dropped: ranked.length - sources.length,
    truncated,
  };
}
