/** Feature pipeline library: cleaning, chunking, tokenizer and embedders. Pure functions + an embedder object. */
export {
  cleanArticle,
  cleanDocument,
  cleanMarkdown,
  cleanPost,
  cleanRepository,
  cleanTitle,
  cleanUrlsInText,
  fileHeader,
  isIndexableFile,
  normalizeUnicode,
  stripInvisible,
  stripTrackingParams,
} from './cleaning';
export {
  CHUNK_ID_NAMESPACE,
  DEFAULT_CHUNKING_SETTINGS,
  MAX_CONTENT_TOKENS,
  chunkDocument,
  chunkDocuments,
  chunkId,
  resolveChunkingSettings,
  splitText,
  type ChunkingOverrides,
  type ChunkingSettings,
  type Span,
} from './chunking';
export { loadTokenCounter, loadTokenizer, tokenCounterFor, type TokenCounter } from './tokenizer';
export {
  EMBEDDING_DIMENSION,
  EMBEDDING_MAX_TOKENS,
  EMBEDDING_MODEL_ID,
  HUB_ONNX_MODEL_ID,
  ModelNotInstalledError,
  defaultModelDir,
  twinHome,
  type ModelLocation,
} from './model-files';
export {
  cosineSimilarity,
  createEmbedder,
  l2NormalizeInPlace,
  meanPoolAndNormalize,
  type Embedder,
  type EmbedderConfig,
} from './embedder';
export { OnnxEmbedder, type OnnxEmbedderOptions, type OnnxEmbedderStats } from './embedder-onnx';
export { WorkerPoolEmbedder, type WorkerPoolOptions } from './embedder-pool';
export { EmbeddingDimensionError, OpenAIEmbedder, type OpenAIEmbedderOptions } from './embedder-openai';
