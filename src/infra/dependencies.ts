import type { Settings } from '../config';
import type { Embedder } from '../features/embedder';
import type { TokenCounter } from '../features/tokenizer';
import { Fetcher } from '../etl/fetcher';
import { ArtifactRegistry } from './artifact-registry';
import { createArtifactStore, type ArtifactStore } from './artifact-store';
import type { Logger } from './logger';
import { openWarehouse, type Warehouse } from './mongo';
import { embeddingIdentity, VectorStore } from './qdrant';

/**
 * What activities need from the outside world, opened lazily once per worker process and closed on
 * shutdown. Activities receive this object; tests build one against the real test services.
 */
export interface Dependencies {
  settings: Settings;
  log: Logger;
  warehouse(): Promise<Warehouse>;
  artifactRegistry(): Promise<ArtifactRegistry>;
  artifactStore(): ArtifactStore;
  /** The embedding model (worker threads for the local backend): loaded on first use, once per process. */
  embedder(): Promise<Embedder>;
  /** The embedding model's tokenizer as a token counter (chunking): loaded on first use, once per process. */
  tokenCounter(): Promise<TokenCounter>;
  /** The Qdrant feature store (cleaned_* and embedded_* collections). */
  vectorStore(): VectorStore;
  /** The crawler's HTTP fetcher: one per process (connection pool, per-host politeness, robots cache). */
  fetcher(): Fetcher;
  close(): Promise<void>;
}

export function createDependencies(settings: Settings, log: Logger): Dependencies {
  let warehouse: Promise<Warehouse> | undefined;
  let store: ArtifactStore | undefined;
  let embedder: Promise<Embedder> | undefined;
  let tokenCounter: Promise<TokenCounter> | undefined;
  let vectorStore: VectorStore | undefined;
  let fetcher: Fetcher | undefined;
  const openOnce = (): Promise<Warehouse> => {
    // A failed open is not cached: the next activity attempt tries again.
    warehouse ??= openWarehouse(settings.mongo).catch((error: unknown) => {
      warehouse = undefined;
      throw error;
    });
    return warehouse;
  };
  return {
    settings,
    log,
    warehouse: openOnce,
    artifactRegistry: async () => new ArtifactRegistry((await openOnce()).db),
    artifactStore: () => (store ??= createArtifactStore(settings.artifacts, settings.aws)),
    fetcher: () =>
      (fetcher ??= new Fetcher({
        ssrf: { allow: settings.etl.ssrfAllow },
        robots: settings.etl.respectRobots,
        ...(settings.etl.politeness ? {} : { politeness: false as const }),
      })),
    embedder: () =>
      (embedder ??= loadEmbedder(settings).catch((error: unknown) => {
        embedder = undefined;
        throw error;
      })),
    tokenCounter: () =>
      (tokenCounter ??= loadTokenCounterFor(settings).catch((error: unknown) => {
        tokenCounter = undefined;
        throw error;
      })),
    vectorStore: () => (vectorStore ??= VectorStore.fromSettings(settings, embeddingIdentity(settings))),
    async close() {
      const openEmbedder = embedder;
      embedder = undefined;
      await (await openEmbedder?.catch(() => undefined))?.close().catch(() => undefined);
      const openFetcher = fetcher;
      fetcher = undefined;
      await openFetcher?.close().catch(() => undefined);
      const opened = warehouse;
      warehouse = undefined;
      if (opened) await (await opened.catch(() => undefined))?.close();
    },
  };
}

/** The configured embedder: local all-MiniLM-L6-v2 in worker threads (off the event loop), or the OpenAI-compatible API. */
async function loadEmbedder(settings: Settings): Promise<Embedder> {
  const { createEmbedder } = await import('../features/embedder');
  const { embedding } = settings;
  if (embedding.backend === 'openai') {
    const { dimension, modelId } = embeddingIdentity(settings);
    return createEmbedder({
      backend: 'openai',
      model: modelId,
      dimension,
      baseURL: embedding.apiBaseUrl,
      apiKey: embedding.apiKey?.reveal(),
    });
  }
  return createEmbedder({ backend: 'local', modelDir: embedding.modelDir });
}

/** The local model's tokenizer (chunk sizes are counted in its tokens whatever the embedding backend). */
async function loadTokenCounterFor(settings: Settings): Promise<TokenCounter> {
  const { loadTokenCounter } = await import('../features/tokenizer');
  return loadTokenCounter({ modelDir: settings.embedding.modelDir });
}
