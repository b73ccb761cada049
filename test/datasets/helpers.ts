/**
 * Helpers of the dataset tests: synthetic extracts with known sentences, and valid answers built from an
 * extract's own text (what a good model would return), used by the scripted LLM server.
 */
import { extractId } from '../../src/datasets/extracts';
import type { Extract, InstructionPair, PreferenceTriple } from '../../src/datasets/types';

const WORDS = (
  'model data training token layer weight gradient batch adapter quantization memory kernel cache prompt answer ' +
  'context window attention head vector embedding index retrieval query document chunk score judge metric loss ' +
  'epoch schedule warmup optimizer precision speed latency throughput cluster worker queue workflow activity ' +
  'history replay signal timer retry backoff budget limit server client request response schema parser'
).split(' ');

/** A deterministic pseudo-random sentence of at least 110 characters, different for every seed. */
export function syntheticSentence(seed: number): string {
  let state = (seed * 2654435761) >>> 0;
  const next = () => {
    state = (Math.imul(state ^ (state >>> 15), 2246822519) + 374761393) >>> 0;
    return state;
  };
  const words: string[] = [];
  while (words.join(' ').length < 110) words.push(WORDS[next() % WORDS.length] as string);
  const text = words.join(' ');
  return `${text[0]?.toUpperCase()}${text.slice(1)} number ${seed}.`;
}

/** Extract i: a marker sentence `Marker X<i>Y.` followed by five synthetic sentences. */
export function syntheticExtract(i: number, documentId = `doc-${i}`): Extract {
  const text = [`Marker X${i}Y.`, ...[0, 1, 2, 3, 4].map((k) => syntheticSentence(i * 10 + k))].join(' ');
  return {
    id: extractId(documentId, text),
    document_id: documentId,
    category: 'articles',
    author_id: 'author-1',
    author_full_name: 'Test Author',
    text,
    start: 0,
    end: text.length,
    index: 0,
  };
}

/** The marker number of a synthetic extract's text. */
export function markerOf(text: string): number {
  const match = /X(\d+)Y/.exec(text);
  if (!match) throw new Error(`no marker in: ${text.slice(0, 80)}`);
  return Number(match[1]);
}

let segmenter: Intl.Segmenter | undefined;
export function sentencesOf(text: string): string[] {
  segmenter ??= new Intl.Segmenter('en', { granularity: 'sentence' });
  return [...segmenter.segment(text)].map((s) => s.segment.trim()).filter(Boolean);
}

/** Verbatim passages of the text that pass the `chosen` rules: ≥ 100 chars, capital start, terminal end. */
export function chosenPassages(text: string): string[] {
  const passages: string[] = [];
  let current = '';
  for (const sentence of sentencesOf(text)) {
    if (sentence.includes('\n')) {
      current = '';
      continue;
    }
    current = current ? `${current} ${sentence}` : sentence;
    if (current.length >= 100) {
      if (/^\p{Lu}/u.test(current) && /[.!?]["')\]]*$/.test(current) && text.includes(current)) passages.push(current);
      current = '';
    }
  }
  return passages;
}

function question(passage: string, k: number): string {
  const words = passage
    .replace(/[^\p{L}\p{N}\s]/gu, ' ')
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 9)
    .join(' ');
  return `Question ${k + 1}: why ${words.toLowerCase()}?`;
}

/** n good instruction/answer pairs from an extract's sentences (fewer when the text has fewer sentences). */
export function goodPairs(text: string, n = 5): InstructionPair[] {
  const sentences = sentencesOf(text).filter((s) => s.length >= 20);
  return sentences.slice(0, n).map((sentence, k) => ({ instruction: question(sentence, k), answer: sentence }));
}

/** n good preference triples whose `chosen` is a verbatim passage of the text. */
export function goodTriples(text: string, n = 5): PreferenceTriple[] {
  return chosenPassages(text)
    .slice(0, n)
    .map((chosen, k) => ({
      instruction: question(chosen, k),
      chosen,
      rejected: `Generally speaking, it depends on many factors and there is no single answer (${k + 1}).`,
    }));
}
