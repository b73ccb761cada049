/**
 * Prompt templates for dataset generation, versioned. A template's version id is `<name>@<revision>+<hash>` where
 * the hash covers the template text itself, so any edit — even one someone forgot to bump the revision for —
 * gives a new prompt version, and the version is part of every dataset's lineage (manifest `promptVersion`).
 *
 * The extract goes between `<extract>` tags at the end of the user message. It is truncated (at a sentence end) to
 * the model's prompt-token budget with a real tokenizer, and the text actually sent is what later checks use.
 */
import { sha256 } from '../domain/artifacts';
import { defaultTokenizer, type TextTokenizer } from '../infra/tokenizer';
import type { DatasetType, Extract } from './types';

export interface PromptTemplate {
  type: DatasetType;
  name: string;
  /** Bump when the wording changes on purpose. */
  revision: number;
  system: string;
  /** `{{n}}`, `{{author}}` and `{{extract}}` are filled in. */
  user: string;
  /** JSON key holding the item list in the answer. */
  listKey: 'pairs' | 'triples';
}

export const EXTRACT_OPEN = '<extract>';
export const EXTRACT_CLOSE = '</extract>';

const SELF_CONTAINED = `- Each instruction is a self-contained question or task about one specific idea, fact, method or opinion in the extract. Someone who has never seen the extract must understand it, so name the subject ("How does LoRA cut the memory needed for fine-tuning?"). Never refer to the extract itself: no "the extract", "the text", "the context", "the passage", "the article", "the author" or "above".
- The {{n}} instructions are about {{n}} different points.`;

export const INSTRUCTION_TEMPLATE: PromptTemplate = {
  type: 'instruction',
  name: 'instruction-pairs',
  revision: 1,
  listKey: 'pairs',
  system:
    'You create fine-tuning data that teaches a model to answer questions the way a particular writer would. You reply with one JSON object and nothing else.',
  user: `Below is an extract from a text by {{author}}. Write {{n}} instruction/answer pairs based on it.

Rules:
${SELF_CONTAINED}
- Each answer responds to its instruction in the writer's own voice and style, is faithful to what the extract says, and is complete on its own: 2 to 6 sentences, no bullet lists unless the instruction asks for steps.
- Reply with JSON only: an object whose "pairs" list holds {{n}} objects, each with an "instruction" string and an "answer" string.

${EXTRACT_OPEN}
{{extract}}
${EXTRACT_CLOSE}`,
};

export const PREFERENCE_TEMPLATE: PromptTemplate = {
  type: 'preference',
  name: 'preference-triples',
  revision: 1,
  listKey: 'triples',
  system:
    "You create preference data that teaches a model to prefer a particular writer's own words over a generic answer. You reply with one JSON object and nothing else.",
  user: `Below is an extract from a text by {{author}}. Write {{n}} instruction/rejected/chosen triples based on it.

Rules:
${SELF_CONTAINED}
- "chosen" answers the instruction with a passage COPIED VERBATIM from the extract: character for character, with the same punctuation, at least two full sentences (100 characters or more), starting at the start of a sentence and ending with that sentence's final punctuation. Do not shorten, paraphrase, add words or use "..." to skip text; if the answer is spread out, choose the best single continuous passage.
- "rejected" is a plausible answer to the same instruction written in a generic, impersonal assistant style, in your own words; it must not copy the extract.
- Reply with JSON only: an object whose "triples" list holds {{n}} objects, each with an "instruction", a "rejected" and a "chosen" string.

${EXTRACT_OPEN}
{{extract}}
${EXTRACT_CLOSE}`,
};

export const PROMPT_TEMPLATES: Readonly<Record<DatasetType, PromptTemplate>> = {
  instruction: INSTRUCTION_TEMPLATE,
  preference: PREFERENCE_TEMPLATE,
};

/** `<name>@<revision>+<first 8 hex of sha256(system + user)>`. */
export function promptVersion(template: PromptTemplate): string {
  return `${template.name}@${template.revision}+${sha256(`${template.system}\n\n${template.user}`).slice(0, 8)}`;
}

export interface RenderOptions {
  samplesPerExtract: number;
  /** Budget for system + user message, in tokens. Default 6000. */
  maxPromptTokens?: number;
  tokenizer?: TextTokenizer;
  template?: PromptTemplate;
}

export interface RenderedPrompt {
  system: string;
  user: string;
  /** The extract text as it appears in the prompt (shorter than the extract when truncated). */
  extractText: string;
  truncated: boolean;
  promptTokens: number;
  promptVersion: string;
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (whole, key: string) => values[key] ?? whole);
}

/** The prompt for one extract, its extract truncated to fit `maxPromptTokens`. */
export function renderPrompt(type: DatasetType, extract: Extract, options: RenderOptions): RenderedPrompt {
  const template = options.template ?? PROMPT_TEMPLATES[type];
  const tokenizer = options.tokenizer ?? defaultTokenizer();
  const maxPromptTokens = options.maxPromptTokens ?? 6000;
  const values = { n: String(options.samplesPerExtract), author: extract.author_full_name.trim() || 'the writer' };
  const render = (text: string) => fill(template.user, { ...values, extract: text });
  const overhead = tokenizer.count(template.system) + tokenizer.count(render(''));
  const budget = maxPromptTokens - overhead;
  if (budget < 50)
    throw new RangeError(
      `maxPromptTokens ${maxPromptTokens} leaves no room for the extract (template needs ${overhead})`,
    );
  const extractText = tokenizer.truncate(extract.text, budget);
  const user = render(extractText);
  return {
    system: template.system,
    user,
    extractText,
    truncated: extractText !== extract.text,
    promptTokens: overhead + tokenizer.count(extractText),
    promptVersion: promptVersion(template),
  };
}
