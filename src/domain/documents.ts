/**
 * Plain document types of the feature pipeline: raw documents (as the ETL stores them in the warehouse), cleaned
 * documents, chunks and embedded chunks. Shapes follow the reference implementation (LLM Engineer's Handbook):
 * raw `content` is a dict (`{Title, Subtitle, Content}` for articles, `{text, image?}` for posts,
 * `{file path: file text}` for repositories); cleaned documents and chunks carry `content` as one string.
 *
 * Ids are strings (UUIDs). Field names use the reference's snake_case so the same objects can be stored in
 * MongoDB and as Qdrant payloads without renaming. Nothing here does I/O.
 */
import { z } from 'zod';

export const DOCUMENT_CATEGORIES = ['articles', 'posts', 'repositories'] as const;
export type DocumentCategory = (typeof DOCUMENT_CATEGORIES)[number];

export const documentCategorySchema = z.enum(DOCUMENT_CATEGORIES);

// ---------------------------------------------------------------------------------------------------------------
// Raw documents (warehouse)
// ---------------------------------------------------------------------------------------------------------------

/** Article content as crawled: Markdown-ish text with whatever navigation the crawler could not strip. */
export interface ArticleContent {
  Title?: string | null;
  Subtitle?: string | null;
  Content: string;
  language?: string | null;
}

/** A social-media post (LinkedIn export, X, ...). */
export interface PostContent {
  text: string;
  image?: string | null;
}

/** A source repository: file path (relative to the repository root) → file text. */
export type RepositoryContent = Record<string, string>;

interface RawDocumentBase {
  /** UUID; derived by the ETL from the normalised link. Cleaned documents keep it. */
  id: string;
  platform: string;
  author_id: string;
  author_full_name: string;
}

export interface RawArticleDocument extends RawDocumentBase {
  category: 'articles';
  content: ArticleContent;
  link: string;
}

export interface RawPostDocument extends RawDocumentBase {
  category: 'posts';
  content: PostContent;
  image?: string | null;
  link?: string | null;
}

export interface RawRepositoryDocument extends RawDocumentBase {
  category: 'repositories';
  content: RepositoryContent;
  name: string;
  link: string;
}

export type RawDocument = RawArticleDocument | RawPostDocument | RawRepositoryDocument;

const rawBase = {
  id: z.string().min(1),
  platform: z.string().min(1),
  author_id: z.string().min(1),
  author_full_name: z.string(),
};

export const rawArticleDocumentSchema = z.object({
  ...rawBase,
  category: z.literal('articles'),
  content: z.object({
    Title: z.string().nullish(),
    Subtitle: z.string().nullish(),
    Content: z.string(),
    language: z.string().nullish(),
  }),
  link: z.string().min(1),
});

export const rawPostDocumentSchema = z.object({
  ...rawBase,
  category: z.literal('posts'),
  content: z.object({ text: z.string(), image: z.string().nullish() }),
  image: z.string().nullish(),
  link: z.string().nullish(),
});

export const rawRepositoryDocumentSchema = z.object({
  ...rawBase,
  category: z.literal('repositories'),
  content: z.record(z.string(), z.string()),
  name: z.string().min(1),
  link: z.string().min(1),
});

export const rawDocumentSchema = z.discriminatedUnion('category', [
  rawArticleDocumentSchema,
  rawPostDocumentSchema,
  rawRepositoryDocumentSchema,
]);

/**
 * Reads a warehouse record (MongoDB shape: `_id` instead of `id`, no `category` field because the collection
 * says it) into a typed raw document. Throws a ZodError on a malformed record.
 */
export function rawDocumentFromRecord(category: DocumentCategory, record: Record<string, unknown>): RawDocument {
  const { _id, ...rest } = record;
  return rawDocumentSchema.parse({ ...rest, id: rest.id ?? _id, category });
}

// ---------------------------------------------------------------------------------------------------------------
// Cleaned documents (collections cleaned_{articles,posts,repositories})
// ---------------------------------------------------------------------------------------------------------------

interface CleanedDocumentBase {
  /** Same id as the raw document it was cleaned from. */
  id: string;
  platform: string;
  author_id: string;
  author_full_name: string;
  /** Cleaned text: Markdown with headings, paragraphs, list items and fenced code blocks kept. */
  content: string;
}

export interface CleanedArticleDocument extends CleanedDocumentBase {
  category: 'articles';
  title: string | null;
  link: string;
}

export interface CleanedPostDocument extends CleanedDocumentBase {
  category: 'posts';
  image: string | null;
  link: string | null;
}

/** One file of a cleaned repository; `start`/`end` are its character span in the document's `content`. */
export interface CleanedRepositoryFile {
  path: string;
  start: number;
  end: number;
}

export interface CleanedRepositoryDocument extends CleanedDocumentBase {
  category: 'repositories';
  name: string;
  link: string;
  /** Files in `content` order; lets the chunker split on file boundaries and name the file of each chunk. */
  files: CleanedRepositoryFile[];
}

export type CleanedDocument = CleanedArticleDocument | CleanedPostDocument | CleanedRepositoryDocument;

// ---------------------------------------------------------------------------------------------------------------
// Chunks (embedded_{articles,posts,repositories} payloads)
// ---------------------------------------------------------------------------------------------------------------

/** How a chunk was made; stored with it so a change of chunking settings is visible in the data. */
export interface ChunkMetadata {
  /** Chunking strategy name, e.g. `articles/sentence-packed`. */
  strategy: string;
  /** Maximum content tokens per chunk (without [CLS]/[SEP]). */
  max_tokens: number;
  target_tokens: number;
  overlap_tokens: number;
  /** Tokenizer the counts were made with (the embedding model's own). */
  tokenizer: string;
}

interface ChunkBase {
  /** UUIDv5(document id + sha256(content)): stable across re-runs, so re-upserting is idempotent. */
  id: string;
  document_id: string;
  platform: string;
  author_id: string;
  author_full_name: string;
  /** Verbatim slice `cleaned.content.slice(start, end)`. */
  content: string;
  /** 0-based position of the chunk within its document. */
  index: number;
  start: number;
  end: number;
  /** Tokens of `content` under the embedding model's tokenizer, without special tokens. */
  token_count: number;
  metadata: ChunkMetadata;
}

export interface ArticleChunk extends ChunkBase {
  category: 'articles';
  link: string;
}

export interface PostChunk extends ChunkBase {
  category: 'posts';
  image: string | null;
}

export interface RepositoryChunk extends ChunkBase {
  category: 'repositories';
  name: string;
  link: string;
  /** Path of the file the chunk starts in. */
  path: string | null;
}

export type Chunk = ArticleChunk | PostChunk | RepositoryChunk;

/** A chunk with its vector; the model id and dimension travel with every vector. */
export type EmbeddedChunk = Chunk & {
  embedding: number[];
  embedding_model: string;
  embedding_dim: number;
};
