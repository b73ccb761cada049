/**
 * The whole dataset pipeline in one process — extracts → answers → build → write → register — for tests, the CLI
 * and small runs. The Temporal workflow runs the same steps as separate activities: `extractsFromDocuments`,
 * `generateAnswers` per batch of extracts (answers kept in an {@link ArtifactAnswerStore}), then
 * `assembleDataset` reading the stored answers back.
 */
import type { ArtifactProducer, ArtifactRef } from '../domain/artifacts';
import type { CleanedDocument } from '../domain/documents';
import type { ArtifactRegistry } from '../infra/artifact-registry';
import type { ArtifactStore } from '../infra/artifact-store';
import type { LlmClient, LlmPrice } from '../infra/llm';
import type { TextTokenizer } from '../infra/tokenizer';
import { buildDataset, type BuildOptions } from './build';
import { extractsFromDocuments, type ExtractionStats, type ExtractOptions } from './extracts';
import {
  answerScope,
  ArtifactAnswerStore,
  generateAnswers,
  resolveGeneratorParams,
  type AnswerStore,
  type GenerationProgress,
  type GenerationSummary,
  type GeneratorParams,
} from './generation';
import { registerDataset, writeDataset, type WrittenDataset } from './storage';
import type { DatasetType, Extract, ExtractAnswer } from './types';

export interface AssembleInput extends BuildOptions {
  type: DatasetType;
  /** Ids of the extracts whose stored answers make the dataset. */
  extractIds: readonly string[];
  sources: readonly string[];
  generator: GeneratorParams;
  prices?: Record<string, LlmPrice>;
}

/**
 * Reads the stored answers of `extractIds` and writes the dataset version. Extracts without a stored answer
 * (transport failures still outstanding) are counted as failed `llm-error` extracts, so the manifest accounts for
 * every extract of the run.
 */
export async function assembleDataset(
  input: AssembleInput,
  deps: { answers: AnswerStore; store: ArtifactStore; model: string; promptVersion: string; now?: Date },
): Promise<WrittenDataset> {
  const answers: ExtractAnswer[] = [];
  for (const id of new Set(input.extractIds)) {
    const stored = await deps.answers.get(id);
    answers.push(
      stored ?? {
        extract_id: id,
        document_id: '',
        category: 'articles',
        extract_text: '',
        truncated: false,
        type: input.type,
        prompt_version: deps.promptVersion,
        model: deps.model,
        status: 'failed',
        items: [],
        invalid_items: 0,
        invalid_reasons: {},
        requested: input.generator.samplesPerExtract,
        attempts: 0,
        http_attempts: 0,
        input_tokens: 0,
        output_tokens: 0,
        failure: { reason: 'llm-error', message: 'no answer stored (transport failure)', retryable: true },
      },
    );
  }
  const built = buildDataset(input.type, answers, input);
  return writeDataset(deps.store, built, {
    sources: input.sources,
    generator: input.generator,
    prices: input.prices,
    now: deps.now,
  });
}

export interface GenerateDatasetInput extends BuildOptions {
  type: DatasetType;
  /** Cleaned documents to cut into extracts, or `extracts` directly. */
  documents?: readonly CleanedDocument[];
  extracts?: readonly Extract[];
  extractOptions?: Partial<ExtractOptions>;
  /** Artifact ids of the sources (lineage). */
  sources: readonly string[];
  params?: Partial<GeneratorParams>;
  /** Separates stored answers of otherwise identical runs; default none (identical settings reuse answers). */
  runKey?: string;
}

export interface GenerateDatasetDeps {
  llm: LlmClient;
  store: ArtifactStore;
  /** Default: answers in the artifact store under the run's scope. */
  answers?: AnswerStore;
  registry?: ArtifactRegistry;
  producer?: ArtifactProducer;
  tokenizer?: TextTokenizer;
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (progress: GenerationProgress) => void;
  now?: Date;
}

export interface GenerateDatasetResult {
  extraction: ExtractionStats | null;
  generation: GenerationSummary;
  dataset: WrittenDataset;
  artifact: ArtifactRef | null;
}

export async function generateDataset(
  input: GenerateDatasetInput,
  deps: GenerateDatasetDeps,
): Promise<GenerateDatasetResult> {
  const params = resolveGeneratorParams(input.params);
  let extraction: ExtractionStats | null = null;
  let extracts: readonly Extract[];
  if (input.extracts) {
    extracts = input.extracts;
  } else {
    const result = extractsFromDocuments(input.documents ?? [], input.extractOptions);
    extracts = result.extracts;
    extraction = result.stats;
  }
  const answers =
    deps.answers ??
    new ArtifactAnswerStore(deps.store, input.type, answerScope(input.type, deps.llm.model, params, input.runKey));
  const { summary } = await generateAnswers(
    { type: input.type, extracts, params },
    {
      llm: deps.llm,
      answers,
      tokenizer: deps.tokenizer,
      concurrency: deps.concurrency,
      signal: deps.signal,
      onProgress: deps.onProgress,
    },
  );
  const dataset = await assembleDataset(
    { ...input, extractIds: extracts.map((e) => e.id), generator: params },
    { answers, store: deps.store, model: deps.llm.model, promptVersion: summary.promptVersion, now: deps.now },
  );
  const artifact = deps.registry && deps.producer ? await registerDataset(deps.registry, dataset, deps.producer) : null;
  return { extraction, generation: summary, dataset, artifact };
}
