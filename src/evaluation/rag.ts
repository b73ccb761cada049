/**
 * RAG metrics: a versioned question set (configs/evaluation/rag-questions.yaml) and/or the samples the RAG library
 * copies into Mongo `rag_eval_samples`. A question with its answer and contexts given is judged as is; a question
 * without them is asked live through the RAG library (`createRagService` from src/rag), whose retrieved sources also
 * give the retrieval hit rate when the question names its `source`.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Db } from 'mongodb';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Settings } from '../config';
import type { Dependencies } from '../infra/dependencies';
import { sha256 } from '../domain/artifacts';
import type { EvalSample } from '../rag/tracing';
import type { RagEngine, RagSource } from '../rag/types';

export const ragQuestionSchema = z.object({
  question: z.string().min(1),
  author: z.string().min(1).optional(),
  /** Where the answer is known to be: a document link, a document id, or a title (matched against retrieved sources). */
  source: z.string().min(1).optional(),
  /** A stored answer and its contexts: judged without asking the RAG library. */
  answer: z.string().optional(),
  contexts: z.array(z.string()).optional(),
});
export type RagQuestion = z.infer<typeof ragQuestionSchema>;

export const ragQuestionFileSchema = z.object({
  version: z.union([z.string(), z.number()]).transform(String),
  questions: z.array(ragQuestionSchema),
});

export const DEFAULT_RAG_QUESTIONS = path.resolve(__dirname, '..', '..', 'configs', 'evaluation', 'rag-questions.yaml');

/** One RAG sample ready to judge. */
export interface RagSample {
  id: string;
  origin: 'question-set' | 'rag_eval_samples' | 'live';
  question: string;
  answer: string;
  contexts: string[];
  /** The question's known source, and whether retrieval found it (live questions only). */
  source?: string;
  hit?: boolean;
  traceId?: string;
}

export async function loadQuestionSet(
  file: string,
): Promise<{ version: string; checksum: string; questions: RagQuestion[] }> {
  const text = await readFile(file, 'utf8');
  const raw: unknown = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  const parsed = ragQuestionFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(`${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return { version: parsed.data.version, checksum: `sha256:${sha256(text)}`, questions: parsed.data.questions };
}

type StoredSample = Pick<EvalSample, '_id' | 'question' | 'answer' | 'contexts' | 'author' | 'traceId'>;

/** The newest `limit` samples of `rag_eval_samples` (answers the RAG service gave, with their contexts). */
export async function loadStoredSamples(db: Db, limit: number): Promise<RagSample[]> {
  if (limit <= 0) return [];
  const docs = await db
    .collection<StoredSample>('rag_eval_samples')
    .find({})
    .sort({ createdAt: -1 })
    .limit(limit)
    .toArray();
  return docs
    .filter((d) => typeof d.question === 'string' && typeof d.answer === 'string' && Array.isArray(d.contexts))
    .map((d) => ({
      id: `stored:${d._id}`,
      origin: 'rag_eval_samples' as const,
      question: d.question,
      answer: d.answer,
      contexts: d.contexts.filter((c): c is string => typeof c === 'string'),
      traceId: d.traceId,
    }));
}

/** Whether a retrieved source is the question's known source (link, document id or title, case-insensitive). */
export function isSourceHit(
  source: string,
  retrieved: readonly Pick<RagSource, 'documentId' | 'link' | 'title' | 'chunkId'>[],
): boolean {
  const wanted = source.trim().toLowerCase().replace(/\/+$/, '');
  return retrieved.some((s) =>
    [s.documentId, s.chunkId, s.link, s.title].some(
      (v) => typeof v === 'string' && v.trim().toLowerCase().replace(/\/+$/, '') === wanted,
    ),
  );
}

export function questionId(question: RagQuestion): string {
  return `q:${sha256(`${question.question}\n${question.author ?? ''}`).slice(0, 16)}`;
}

/**
 * The RAG library's engine, when the library is part of this build; otherwise why not. `dependencies` (a worker's)
 * are shared with the engine, which then does not close them.
 */
export async function loadRagEngine(
  settings: Settings,
  dependencies?: Dependencies,
): Promise<{ engine: RagEngine } | { unavailable: string }> {
  // A computed specifier: evaluation builds and runs whether or not the RAG library is part of this build.
  const specifier = ['..', 'rag', 'service'].join('/');
  try {
    const mod = (await import(specifier)) as {
      createRagService?: (settings: Settings, options?: { dependencies?: Dependencies }) => RagEngine;
    };
    if (typeof mod.createRagService !== 'function') return { unavailable: 'the RAG library has no createRagService' };
    return { engine: mod.createRagService(settings, dependencies ? { dependencies } : {}) };
  } catch (error) {
    return { unavailable: `RAG library not available: ${(error as Error).message.split('\n')[0]}` };
  }
}

/** Asks the RAG engine each question (one at a time: retrieval is CPU bound here), keeping the sources' texts. */
export async function askLive(
  engine: RagEngine,
  questions: readonly RagQuestion[],
  options: { signal?: AbortSignal; onAnswered?: (done: number) => void } = {},
): Promise<{ samples: RagSample[]; errors: { question: string; error: string }[] }> {
  const samples: RagSample[] = [];
  const errors: { question: string; error: string }[] = [];
  for (const q of questions) {
    try {
      const answer = await engine.answer(
        { query: q.question, ...(q.author ? { author: q.author } : {}) },
        { signal: options.signal },
      );
      samples.push({
        id: questionId(q),
        origin: 'live',
        question: q.question,
        answer: answer.answer,
        contexts: answer.sources.map((s) => s.text),
        ...(q.source ? { source: q.source, hit: isSourceHit(q.source, answer.sources) } : {}),
        traceId: answer.traceId,
      });
    } catch (error) {
      errors.push({ question: q.question, error: (error as Error).message.slice(0, 300) });
    }
    options.onAnswered?.(samples.length + errors.length);
  }
  return { samples, errors };
}

/** Questions of the set that carry their own answer and contexts, as samples. */
export function givenSamples(questions: readonly RagQuestion[]): RagSample[] {
  return questions
    .filter((q) => q.answer !== undefined && q.contexts !== undefined)
    .map((q) => ({
      id: questionId(q),
      origin: 'question-set' as const,
      question: q.question,
      answer: q.answer ?? '',
      contexts: q.contexts ?? [],
      ...(q.source ? { source: q.source } : {}),
    }));
}
