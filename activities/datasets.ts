/**
 * Activities of the `twin-llm` queue for dataset generation (issue 5). The queue's task-queue-wide rate limit
 * (WORKER_LLM_RATE_PER_SECOND) and slots bound how many of these run at once; the LLM client adds its own
 * request/token limits and transport retries.
 *
 * Claim check: `prepareExtracts` reads the cleaned documents from Qdrant, cuts them into extracts and writes them
 * to the artifact store as batch files under a content-addressed extract set; only keys and counts cross Temporal.
 * `generateForExtracts` answers one batch file (answers stored per extract id, so a retried or restarted batch pays
 * for nothing twice); `buildDatasetVersion` reads the stored answers back and writes + registers the version.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { sha256, stableStringify } from '../src/domain/artifacts';
import { DOCUMENT_CATEGORIES, type CleanedDocument, type DocumentCategory } from '../src/domain/documents';
import {
  answerScope,
  ArtifactAnswerStore,
  assembleDataset,
  DEFAULT_TEST_FRACTION,
  DEFAULT_SPLIT_SEED,
  DATASET_TYPES,
  extractsFromDocuments,
  generateAnswers,
  promptVersion,
  PROMPT_TEMPLATES,
  registerDataset,
  resolveGeneratorParams,
  type DatasetManifest,
  type DatasetType,
  type Extract,
  type ExtractionStats,
  type GenerationProgress,
  type GenerationSummary,
  type GeneratorParams,
} from '../src/datasets';
import type { Dependencies } from '../src/infra/dependencies';
import { createLlmClient, type LlmClient } from '../src/infra/llm';
import { badInput, currentProducer, withHeartbeat } from './support';

export const DEFAULT_EXTRACT_BATCH_SIZE = 8;
const MAX_BATCH_SIZE = 256;

export interface PrepareExtractsInput {
  type: DatasetType;
  /** authors' full names; default every author in the feature store */
  authors?: string[];
  /** default all three */
  categories?: DocumentCategory[];
  /** extracts per batch file (default 8) */
  batchSize?: number;
  /** cleaned-documents artifacts (lineage); default the newest recorded for each author */
  sourceArtifactIds?: string[];
}

export interface ExtractBatchRef {
  key: string;
  count: number;
}

export interface PrepareExtractsResult {
  /** artifact-store key of the extract set's index (ids + sources) */
  setKey: string;
  batches: ExtractBatchRef[];
  extraction: ExtractionStats;
  /** authors found in the cleaned collections */
  authors: string[];
  missingAuthors: string[];
  sources: string[];
}

interface ExtractSetIndex {
  type: DatasetType;
  extractIds: string[];
  sources: string[];
  extraction: ExtractionStats;
}

export interface GenerationRunOptions {
  type: DatasetType;
  /** default LLM_MODEL */
  model?: string;
  /** separates the stored answers of otherwise identical runs; default none (identical settings reuse answers) */
  runKey?: string;
  params?: Partial<GeneratorParams>;
}

export interface GenerateForExtractsInput extends GenerationRunOptions {
  batchKey: string;
}

export type BatchGenerationResult = Omit<GenerationSummary, 'failedExtractIds'> & { batchKey: string };

export interface BuildDatasetVersionInput extends GenerationRunOptions {
  setKey: string;
  testSplit?: number;
  seed?: number;
}

/** The manifest in a few numbers: the workflow's visible result. */
export interface DatasetVersionSummary {
  type: DatasetType;
  version: string;
  artifactId: string;
  uri: string;
  created: boolean;
  counts: DatasetManifest['counts'];
  extracts: DatasetManifest['extracts'];
  samples: DatasetManifest['samples'];
  drops: Record<string, number>;
  model: string;
  promptVersion: string;
  sources: string[];
  usage: DatasetManifest['usage'];
  manifestUri: string;
}

function checkType(type: unknown): DatasetType {
  if (!(DATASET_TYPES as readonly unknown[]).includes(type))
    throw badInput(`type must be one of ${DATASET_TYPES.join(', ')}, got ${JSON.stringify(type)}`);
  return type as DatasetType;
}

function checkCategories(categories: DocumentCategory[] | undefined): DocumentCategory[] {
  if (!categories || categories.length === 0) return [...DOCUMENT_CATEGORIES];
  const unknown = categories.filter((c) => !(DOCUMENT_CATEGORIES as readonly string[]).includes(c));
  if (unknown.length > 0) throw badInput(`unknown categories ${unknown.join(', ')}`);
  return DOCUMENT_CATEGORIES.filter((c) => categories.includes(c));
}

function paramsOf(input: GenerationRunOptions): GeneratorParams {
  try {
    return resolveGeneratorParams(input.params);
  } catch (error) {
    throw badInput(`bad generator params: ${(error as Error).message}`);
  }
}

export function createDatasetActivities(deps: Dependencies) {
  const clients = new Map<string, LlmClient>();
  /** One client per model per worker process: its rate limits and 429 pauses are shared by all batches. */
  const llmFor = (model: string | undefined): LlmClient => {
    const name = model ?? deps.settings.llm.model;
    let client = clients.get(name);
    if (!client) {
      client = createLlmClient({ ...deps.settings.llm, model: name });
      clients.set(name, client);
    }
    return client;
  };
  const answersFor = (input: GenerationRunOptions, params: GeneratorParams) => {
    const model = input.model ?? deps.settings.llm.model;
    return new ArtifactAnswerStore(
      deps.artifactStore(),
      input.type,
      answerScope(input.type, model, params, input.runKey),
    );
  };

  return {
    /**
     * Cleaned documents (Qdrant `cleaned_*`) of the authors → extracts → batch files in the artifact store under
     * `datasets/<type>/extract-sets/<hash>/`, where the hash covers the extract ids, the batch size and the sources,
     * so the same corpus gives the same keys (idempotent).
     */
    async prepareExtracts(input: PrepareExtractsInput): Promise<PrepareExtractsResult> {
      const type = checkType(input.type);
      const categories = checkCategories(input.categories);
      const batchSize = input.batchSize ?? DEFAULT_EXTRACT_BATCH_SIZE;
      if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_SIZE)
        throw badInput(`batchSize must be a whole number from 1 to ${MAX_BATCH_SIZE}`);
      const wanted = input.authors?.length ? new Set(input.authors) : null;
      const progress = { stage: 'reading', documents: 0 };
      return withHeartbeat(
        async () => {
          const vectors = deps.vectorStore();
          const docs: CleanedDocument[] = [];
          const found = new Map<string, string>();
          for (const category of categories) {
            const ids: string[] = [];
            for await (const { id, payload } of vectors.scrollPayloads<{
              author_full_name?: string;
              author_id?: string;
            }>('cleaned', category, { fields: ['author_full_name', 'author_id'] })) {
              const name = String(payload.author_full_name ?? '');
              if (wanted && !wanted.has(name)) continue;
              found.set(name, String(payload.author_id ?? ''));
              ids.push(id);
            }
            ids.sort();
            for (let i = 0; i < ids.length; i += 100) {
              const page = await vectors.getCleaned(category, ids.slice(i, i + 100));
              for (const p of page) {
                const { document_id: _d, content_hash: _h, ...doc } = p;
                docs.push(doc);
              }
              progress.documents = docs.length;
            }
          }
          const authors = [...found.keys()].sort();
          const missingAuthors = wanted ? [...wanted].filter((a) => !found.has(a)).sort() : [];
          const sources = input.sourceArtifactIds
            ? [...new Set(input.sourceArtifactIds)].sort()
            : await latestCleanedArtifacts(deps, authors);
          progress.stage = 'extracting';
          const { extracts, stats } = extractsFromDocuments(docs);
          const setHash = sha256(stableStringify({ type, ids: extracts.map((e) => e.id), batchSize, sources })).slice(
            0,
            16,
          );
          const prefix = `datasets/${type}/extract-sets/${setHash}`;
          const store = deps.artifactStore();
          const batches: ExtractBatchRef[] = [];
          for (let i = 0, n = 0; i < extracts.length; i += batchSize, n++) {
            const slice = extracts.slice(i, i + batchSize);
            const key = `${prefix}/batch-${String(n).padStart(5, '0')}.json`;
            if (!(await store.exists(key))) await store.put(key, JSON.stringify(slice), 'application/json');
            batches.push({ key, count: slice.length });
          }
          const setKey = `${prefix}/index.json`;
          const index: ExtractSetIndex = { type, extractIds: extracts.map((e) => e.id), sources, extraction: stats };
          if (!(await store.exists(setKey))) await store.put(setKey, JSON.stringify(index), 'application/json');
          return { setKey, batches, extraction: stats, authors, missingAuthors, sources };
        },
        () => progress,
      );
    },

    /**
     * Answers one batch file: extracts with a stored answer (this run's scope) are not asked again. Heartbeats
     * `{done, total, …}`; extracts that failed on transport after the client's retries are not stored, and the
     * activity then fails retryably so Temporal tries the batch again later (only those are asked).
     */
    async generateForExtracts(input: GenerateForExtractsInput): Promise<BatchGenerationResult> {
      checkType(input.type);
      const params = paramsOf(input);
      const store = deps.artifactStore();
      if (!(await store.exists(input.batchKey))) throw badInput(`no extract batch at ${input.batchKey}`);
      const extracts = JSON.parse((await store.get(input.batchKey)).toString('utf8')) as Extract[];
      const context = Context.current();
      let progress: GenerationProgress = { total: extracts.length, done: 0, answered: 0, failed: 0, fromStore: 0 };
      const { summary } = await withHeartbeat(
        () =>
          generateAnswers(
            { type: input.type, extracts, params },
            {
              llm: llmFor(input.model),
              answers: answersFor(input, params),
              signal: context.cancellationSignal,
              onProgress: (p) => {
                progress = p;
                context.heartbeat(p);
              },
            },
          ),
        () => progress,
      );
      const { failedExtractIds: _ids, ...counts } = summary;
      if (summary.retryableFailures > 0) {
        throw ApplicationFailure.create({
          message: `${summary.retryableFailures} of ${summary.extracts} extracts failed on transport; the batch is retried (answered extracts are not asked again)`,
          type: 'LlmTransportError',
          details: [counts],
        });
      }
      return { ...counts, batchKey: input.batchKey };
    },

    /** Stored answers of the extract set → filters, dedupe, split, JSONL + manifest → ArtifactRef. */
    async buildDatasetVersion(input: BuildDatasetVersionInput): Promise<DatasetVersionSummary> {
      const type = checkType(input.type);
      const params = paramsOf(input);
      const testFraction = input.testSplit ?? DEFAULT_TEST_FRACTION[type];
      if (!(testFraction >= 0 && testFraction < 1)) throw badInput('testSplit must be in [0, 1)');
      const store = deps.artifactStore();
      if (!(await store.exists(input.setKey))) throw badInput(`no extract set at ${input.setKey}`);
      const index = JSON.parse((await store.get(input.setKey)).toString('utf8')) as ExtractSetIndex;
      if (index.type !== type) throw badInput(`extract set ${input.setKey} is for ${index.type} datasets`);
      const model = input.model ?? deps.settings.llm.model;
      return withHeartbeat(async () => {
        const written = await assembleDataset(
          {
            type,
            extractIds: index.extractIds,
            sources: index.sources,
            generator: params,
            testFraction,
            seed: input.seed ?? DEFAULT_SPLIT_SEED,
          },
          {
            answers: answersFor(input, params),
            store,
            model,
            promptVersion: promptVersion(PROMPT_TEMPLATES[type]),
          },
        );
        const artifact = await registerDataset(await deps.artifactRegistry(), written, currentProducer());
        const m = written.manifest;
        return {
          type,
          version: written.version,
          artifactId: artifact.id,
          uri: written.uri,
          created: written.created,
          counts: m.counts,
          extracts: m.extracts,
          samples: m.samples,
          drops: Object.fromEntries(Object.entries(m.drops).filter(([, n]) => n > 0)),
          model: m.generator.model,
          promptVersion: m.promptVersion,
          sources: m.sources,
          usage: m.usage,
          manifestUri: store.uriOf(`${written.prefix}/manifest.json`),
        };
      });
    },
  };
}

/** The newest cleaned-documents artifact that covers each author (recorded by featureEngineering). */
async function latestCleanedArtifacts(deps: Dependencies, authors: string[]): Promise<string[]> {
  if (authors.length === 0) return [];
  const registry = await deps.artifactRegistry();
  const recorded = await registry.list({ kind: 'cleaned-documents', limit: 500 });
  const ids = new Set<string>();
  for (const author of authors) {
    const latest = recorded.find((a) =>
      String(a.metadata.authors ?? '')
        .split(', ')
        .includes(author),
    );
    if (latest) ids.add(latest.id);
  }
  return [...ids].sort();
}

export type DatasetActivities = ReturnType<typeof createDatasetActivities>;
