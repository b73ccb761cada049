/**
 * The query side of retrieval, both with structured LLM output (src/infra/llm.ts):
 *
 * - self-query: which author is the question about (or asked to answer as)? The name is only *looked up* in the
 *   warehouse `users` collection — never created (the reference created a user for any name it extracted);
 * - query expansion: N−1 rewrites of the question plus the original, in one call.
 *
 * Both degrade instead of failing: output that is not the JSON asked for means "no author" / "only the original
 * query", and the reason is returned so the trace records it.
 */
import type { Db } from 'mongodb';
import { z } from 'zod';
import type { LlmClient } from '../infra/llm';
import { authorNameKey, normalizeAuthorName, WAREHOUSE_USERS, type UserRecord } from '../infra/warehouse';

export const SELF_QUERY_SYSTEM = [
  'You extract metadata from a question sent to a writing assistant.',
  'Return the full name of the person (author) the question names, whose writing it asks about or whose voice it asks',
  'the answer in. Return null when no person is named. Copy the name as written; do not guess.',
  'Answer with JSON only: {"author": "<name>"} or {"author": null}.',
  'Examples: "What does Jane Doe think about vector databases?" → {"author": "Jane Doe"};',
  '"Write a post like John Smith about RAG" → {"author": "John Smith"}; "How does LoRA work?" → {"author": null}.',
].join(' ');

export const selfQuerySchema = z.object({ author: z.string().nullable() });

export const EXPANSION_SYSTEM = [
  'You are an AI assistant that rewrites a user question for a vector search over a document database.',
  'Write different versions of the question that keep its meaning but use other words and angles, so that the',
  'search finds relevant documents that the literal question would miss. Do not answer the question.',
].join(' ');

export const expansionSchema = z.object({ queries: z.array(z.string()) });

export interface SelfQueryResult {
  /** Name the model extracted (null when none). */
  name: string | null;
  /** Why the extraction gave nothing usable, when it did not. */
  invalid?: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
}

export async function extractAuthorName(
  llm: LlmClient,
  query: string,
  options: { signal?: AbortSignal } = {},
): Promise<SelfQueryResult> {
  const completion = await llm.completeJson({
    system: SELF_QUERY_SYSTEM,
    user: `Question: ${query}`,
    schema: selfQuerySchema,
    schemaName: 'self_query',
    temperature: 0,
    maxOutputTokens: 64,
    signal: options.signal,
  });
  const base = {
    model: completion.model,
    inputTokens: completion.usage.inputTokens,
    outputTokens: completion.usage.outputTokens,
  };
  if (!completion.json.ok) return { ...base, name: null, invalid: completion.json.error };
  const parsed = selfQuerySchema.safeParse(completion.json.value);
  if (!parsed.success) return { ...base, name: null, invalid: `unexpected shape: ${parsed.error.issues[0]?.message}` };
  const name = parsed.data.author?.trim();
  return { ...base, name: name ? name : null };
}

export interface ExpansionResult {
  /** The original query first, then the distinct rewrites (at most n − 1). */
  queries: string[];
  /** Why the model's rewrites were not (all) used, when they were not. */
  fallback?: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
}

export function expansionPrompt(query: string, n: number): string {
  return [
    `Write ${n - 1} different versions of the question below.`,
    `Answer with JSON only: {"queries": [${Array.from({ length: n - 1 }, (_, i) => `"version ${i + 1}"`).join(', ')}]}.`,
    '',
    `Question: ${query}`,
  ].join('\n');
}

export async function expandQuery(
  llm: LlmClient,
  query: string,
  n: number,
  options: { signal?: AbortSignal } = {},
): Promise<ExpansionResult> {
  const completion = await llm.completeJson({
    system: EXPANSION_SYSTEM,
    user: expansionPrompt(query, n),
    schema: expansionSchema,
    schemaName: 'query_expansion',
    temperature: 0.7,
    maxOutputTokens: 80 * n,
    signal: options.signal,
  });
  const base = {
    model: completion.model,
    inputTokens: completion.usage.inputTokens,
    outputTokens: completion.usage.outputTokens,
  };
  if (!completion.json.ok) return { ...base, queries: [query], fallback: `invalid output: ${completion.json.error}` };
  const parsed = expansionSchema.safeParse(completion.json.value);
  if (!parsed.success)
    return { ...base, queries: [query], fallback: `invalid output: ${parsed.error.issues[0]?.message ?? 'shape'}` };
  const seen = new Set([query.trim().toLowerCase()]);
  const rewrites: string[] = [];
  for (const raw of parsed.data.queries) {
    const text = typeof raw === 'string' ? raw.trim() : '';
    if (!text || text.length > 1000 || seen.has(text.toLowerCase())) continue;
    seen.add(text.toLowerCase());
    rewrites.push(text);
    if (rewrites.length === n - 1) break;
  }
  if (rewrites.length === 0) return { ...base, queries: [query], fallback: 'no usable rewrite in the output' };
  return {
    ...base,
    queries: [query, ...rewrites],
    ...(rewrites.length < n - 1 ? { fallback: `only ${rewrites.length} of ${n - 1} rewrites usable` } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Author lookup (read-only)
// ---------------------------------------------------------------------------------------------------------------

export interface KnownAuthor {
  id: string;
  name: string;
}

function fullNameOf(user: UserRecord): string {
  return user.first_name === user.last_name ? user.first_name : `${user.first_name} ${user.last_name}`;
}

/**
 * Looks authors up in the warehouse `users` collection, read-only (it never inserts or updates a user). The
 * collection is small (the people whose twin this is), so it is read whole and cached briefly; a name matches by
 * the warehouse's normalised key (case-insensitive full name), else — for one word — by first or last name when
 * that is unambiguous.
 */
export class AuthorDirectory {
  private cache?: { at: number; users: UserRecord[] };

  constructor(
    private readonly db: () => Promise<Db>,
    private readonly ttlMs = 30_000,
  ) {}

  private async users(): Promise<UserRecord[]> {
    if (this.cache && Date.now() - this.cache.at < this.ttlMs) return this.cache.users;
    const users = await (
      await this.db()
    )
      .collection<UserRecord>(WAREHOUSE_USERS)
      .find({}, { projection: { _id: 1, first_name: 1, last_name: 1, name_key: 1 } })
      .limit(10_000)
      .toArray();
    this.cache = { at: Date.now(), users };
    return users;
  }

  async find(name: string): Promise<KnownAuthor | null> {
    let key: string;
    try {
      key = authorNameKey(name);
    } catch {
      return null;
    }
    const users = await this.users();
    const exact = users.find((u) => (u.name_key ?? authorNameKey(fullNameOf(u))) === key);
    if (exact) return { id: exact._id, name: fullNameOf(exact) };
    if (!normalizeAuthorName(name).includes(' ')) {
      const partial = users.filter((u) => u.first_name.toLowerCase() === key || u.last_name.toLowerCase() === key);
      if (partial.length === 1) return { id: partial[0]!._id, name: fullNameOf(partial[0]!) };
    }
    return null;
  }

  forget(): void {
    this.cache = undefined;
  }
}
