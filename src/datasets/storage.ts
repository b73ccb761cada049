/**
 * Writing and reading dataset versions through the artifact store (local folder or S3, same keys):
 *
 *   datasets/<type>/<version>/train.jsonl        training rows (exact HF/TRL columns)
 *   datasets/<type>/<version>/test.jsonl         held-out rows
 *   datasets/<type>/<version>/provenance.jsonl   per row: id, split, category, extract_id, document_id
 *   datasets/<type>/<version>/manifest.json      written last: a version with a manifest is complete
 *
 * A version is immutable: when its manifest already exists, nothing is written again (a retried activity or a
 * re-run that made the same rows gets the existing version back).
 */
import { sha256, type ArtifactProducer, type ArtifactRef, type NewArtifact } from '../domain/artifacts';
import type { ArtifactRegistry } from '../infra/artifact-registry';
import type { ArtifactStore } from '../infra/artifact-store';
import { estimateCostUsd, LLM_PRICES, type LlmPrice } from '../infra/llm';
import type { BuiltDataset } from './build';
import type { GeneratorParams } from './generation';
import { COLUMNS, datasetRowsToJsonl, parseDatasetRows, toJsonl } from './jsonl';
import {
  DATASET_FILES,
  datasetContentHash,
  datasetManifestSchema,
  datasetPrefix,
  MANIFEST_SCHEMA_ID,
  parseManifest,
  type DatasetManifest,
} from './manifest';
import { DATASET_ARTIFACT_KIND, type DatasetRow, type DatasetType, type RowProvenance } from './types';

export interface WriteDatasetOptions {
  /** Artifact ids the dataset was made from (cleaned-documents artifacts). */
  sources: readonly string[];
  generator: GeneratorParams;
  /** Prices for the cost estimate, added to the built-in table. */
  prices?: Record<string, LlmPrice>;
  now?: Date;
}

export interface WrittenDataset {
  type: DatasetType;
  version: string;
  /** sha256 hex of the content (the version is its first 16 characters). */
  contentHash: string;
  /** False when this version already existed and nothing was written. */
  created: boolean;
  /** Key prefix of the version's folder. */
  prefix: string;
  /** URI of the version's folder, ending in `/`. */
  uri: string;
  manifest: DatasetManifest;
}

const PROVENANCE_COLUMNS = ['id', 'split', 'category', 'extract_id', 'document_id'] as const;

export async function writeDataset(
  store: ArtifactStore,
  built: BuiltDataset,
  options: WriteDatasetOptions,
): Promise<WrittenDataset> {
  const { type } = built;
  const train = datasetRowsToJsonl(type, built.train);
  const test = datasetRowsToJsonl(type, built.test);
  const provenance = toJsonl(built.provenance, PROVENANCE_COLUMNS);
  const contentHash = datasetContentHash(type, train, test);
  const version = contentHash.slice(0, 16);
  const prefix = datasetPrefix(type, version);
  const key = (file: string) => `${prefix}/${file}`;
  const result = { type, version, contentHash, prefix, uri: `${store.uriOf(prefix)}/` };

  if (await store.exists(key(DATASET_FILES.manifest))) {
    const manifest = parseManifest((await store.get(key(DATASET_FILES.manifest))).toString('utf8'));
    return { ...result, created: false, manifest };
  }

  const put = async (file: string, body: string, rows: number) => {
    const written = await store.put(key(file), body, 'application/jsonl');
    return { key: key(file), uri: written.uri, rows, bytes: Buffer.byteLength(body), checksum: written.checksum };
  };
  const files = {
    train: await put(DATASET_FILES.train, train, built.train.length),
    test: await put(DATASET_FILES.test, test, built.test.length),
    provenance: await put(DATASET_FILES.provenance, provenance, built.provenance.length),
  };
  const { stats } = built;
  const manifest: DatasetManifest = datasetManifestSchema.parse({
    schema: MANIFEST_SCHEMA_ID,
    type,
    version,
    createdAt: (options.now ?? new Date()).toISOString(),
    columns: [...COLUMNS[type]],
    files,
    counts: {
      train: built.train.length,
      test: built.test.length,
      total: built.train.length + built.test.length,
      perCategory: built.perCategory,
    },
    extracts: stats.extracts,
    samples: stats.samples,
    drops: stats.drops,
    generator: {
      model: built.model,
      samplesPerExtract: options.generator.samplesPerExtract,
      temperature: options.generator.temperature,
      maxOutputTokens: options.generator.maxOutputTokens,
      maxPromptTokens: options.generator.maxPromptTokens,
      maxAttempts: options.generator.maxAttempts,
      seed: options.generator.seed ?? null,
    },
    promptVersion: built.promptVersion,
    sources: [...new Set(options.sources)].sort(),
    split: built.split,
    dedupe: built.dedupe,
    usage: {
      ...stats.usage,
      estimatedCostUsd: estimateCostUsd(built.model, stats.usage.inputTokens, stats.usage.outputTokens, {
        ...LLM_PRICES,
        ...(options.prices ?? {}),
      }),
    },
  });
  await store.put(key(DATASET_FILES.manifest), `${JSON.stringify(manifest, null, 2)}\n`, 'application/json');
  return { ...result, created: true, manifest };
}

/** The ArtifactRef fields of a written dataset: lineage = its sources. */
export function datasetArtifact(written: WrittenDataset, producer: ArtifactProducer): NewArtifact {
  const { manifest } = written;
  return {
    kind: DATASET_ARTIFACT_KIND[written.type],
    uri: written.uri,
    count: manifest.counts.total,
    checksum: `sha256:${written.contentHash}`,
    producer,
    inputs: manifest.sources,
    metadata: {
      datasetType: written.type,
      version: written.version,
      train: manifest.counts.train,
      test: manifest.counts.test,
      trainUri: manifest.files.train.uri,
      testUri: manifest.files.test.uri,
      manifestKey: `${written.prefix}/${DATASET_FILES.manifest}`,
      promptVersion: manifest.promptVersion,
      model: manifest.generator.model,
      seed: manifest.split.seed,
      testFraction: manifest.split.testFraction,
      extractsFailed: manifest.extracts.failed,
      samplesDropped: manifest.samples.dropped,
    },
  };
}

/** Records the dataset in the registry (idempotent: same content → same artifact). */
export async function registerDataset(
  registry: ArtifactRegistry,
  written: WrittenDataset,
  producer: ArtifactProducer,
): Promise<ArtifactRef> {
  return registry.record(datasetArtifact(written, producer));
}

export async function readManifest(store: ArtifactStore, type: DatasetType, version: string): Promise<DatasetManifest> {
  return parseManifest((await store.get(`${datasetPrefix(type, version)}/${DATASET_FILES.manifest}`)).toString('utf8'));
}

/** Rows of one split, checked against the manifest's checksum and the row schema. */
export async function readDatasetSplit(
  store: ArtifactStore,
  manifest: DatasetManifest,
  split: 'train' | 'test',
): Promise<DatasetRow[]> {
  const entry = manifest.files[split];
  const bytes = await store.get(entry.key);
  const checksum = `sha256:${sha256(bytes)}`;
  if (checksum !== entry.checksum)
    throw new Error(`${entry.key}: checksum ${checksum} does not match the manifest's ${entry.checksum}`);
  return parseDatasetRows(manifest.type, bytes.toString('utf8'));
}

export async function readProvenance(store: ArtifactStore, manifest: DatasetManifest): Promise<RowProvenance[]> {
  const text = (await store.get(manifest.files.provenance.key)).toString('utf8');
  return text
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as RowProvenance);
}
