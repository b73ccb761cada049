/**
 * The dataset manifest (`manifest.json` next to `train.jsonl` and `test.jsonl`): what is in the dataset, how it
 * was made and from what. The dataset version is a content hash of the type and the two training files, so the
 * same rows are the same version whoever made them, and a version's files never change.
 */
import { z } from 'zod';
import { sha256 } from '../domain/artifacts';
import { DROP_REASONS } from './filters';
import { COLUMNS } from './jsonl';
import { DATASET_TYPES, type DatasetType } from './types';

export const MANIFEST_SCHEMA_ID = 'twin.dataset-manifest/1';

const count = z.number().int().nonnegative();
const fileEntry = z.object({
  /** Artifact-store key. */
  key: z.string(),
  uri: z.string(),
  rows: count,
  bytes: count,
  /** `sha256:<hex>` of the file's bytes. */
  checksum: z.string().regex(/^sha256:[0-9a-f]{64}$/),
});

export const datasetManifestSchema = z.object({
  schema: z.literal(MANIFEST_SCHEMA_ID),
  type: z.enum(DATASET_TYPES),
  version: z.string().regex(/^[0-9a-f]{16}$/),
  createdAt: z.string(),
  /** Columns of every row, in order (Hugging Face / TRL names). */
  columns: z.array(z.string()),
  files: z.object({ train: fileEntry, test: fileEntry, provenance: fileEntry }),
  counts: z.object({
    train: count,
    test: count,
    total: count,
    perCategory: z.record(z.string(), z.object({ train: count, test: count })),
  }),
  extracts: z.object({
    total: count,
    answered: count,
    failed: count,
    failureReasons: z.record(z.string(), count),
    truncated: count,
  }),
  samples: z.object({ requested: count, produced: count, missing: count, kept: count, dropped: count }),
  drops: z.record(z.enum(DROP_REASONS), count),
  generator: z.object({
    model: z.string(),
    samplesPerExtract: count,
    temperature: z.number(),
    maxOutputTokens: count,
    maxPromptTokens: count,
    maxAttempts: count,
    seed: z.number().int().nullable(),
  }),
  promptVersion: z.string(),
  /** Artifact ids of what the dataset was made from (cleaned documents). */
  sources: z.array(z.string()),
  split: z.object({ seed: z.number().int(), testFraction: z.number() }),
  dedupe: z.object({ threshold: z.number(), charThreshold: z.number(), shingleSize: count }),
  usage: z.object({
    completions: count,
    httpAttempts: count,
    inputTokens: count,
    outputTokens: count,
    estimatedCostUsd: z.number().nullable(),
  }),
});

export type DatasetManifest = z.infer<typeof datasetManifestSchema>;

export function parseManifest(text: string): DatasetManifest {
  return datasetManifestSchema.parse(JSON.parse(text));
}

/** Content hash of a dataset: sha256 over the type and the sha256 of each training file (hex, 64). */
export function datasetContentHash(
  type: DatasetType,
  trainJsonl: string | Uint8Array,
  testJsonl: string | Uint8Array,
): string {
  return sha256(`${type}\n${sha256(trainJsonl)}\n${sha256(testJsonl)}`);
}

/** Version id: the first 16 hex of the content hash. */
export function datasetVersion(
  type: DatasetType,
  trainJsonl: string | Uint8Array,
  testJsonl: string | Uint8Array,
): string {
  return datasetContentHash(type, trainJsonl, testJsonl).slice(0, 16);
}

/** The folder of a dataset version in the artifact store. */
export function datasetPrefix(type: DatasetType, version: string): string {
  return `datasets/${type}/${version}`;
}

export const DATASET_FILES = {
  train: 'train.jsonl',
  test: 'test.jsonl',
  provenance: 'provenance.jsonl',
  manifest: 'manifest.json',
} as const;

export { COLUMNS };
