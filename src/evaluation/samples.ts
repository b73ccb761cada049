/**
 * The rows an evaluation asks the candidate about: a dataset artifact's test split (instruction rows
 * `{instruction, output}`; preference rows `{prompt, chosen}` — `chosen` is the author's own text), the first
 * `maxSamples` rows in file order (the split is already a seeded permutation), each with a stable id.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { sha256, type ArtifactRef } from '../domain/artifacts';
import { datasetSplitUris } from '../training/prepare';

export interface EvalSample {
  /** First 16 hex of sha256(instruction + "\n" + reference): the same row is the same sample in every run. */
  id: string;
  instruction: string;
  /** The author's answer from the dataset (used by the judge to check facts). */
  reference: string;
}

export class EvaluationInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EvaluationInputError';
  }
}

export async function readUri(uri: string, s3: () => S3Client): Promise<Buffer> {
  if (uri.startsWith('file://')) return readFile(fileURLToPath(uri));
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (match?.[1] && match[2]) {
    const result = await s3().send(new GetObjectCommand({ Bucket: match[1], Key: match[2] }));
    if (!result.Body) throw new Error(`empty S3 object ${uri}`);
    return Buffer.from(await result.Body.transformToByteArray());
  }
  throw new EvaluationInputError(`unsupported URI ${uri} (expected file:// or s3://)`);
}

export function sampleId(instruction: string, reference: string): string {
  return sha256(`${instruction}\n${reference}`).slice(0, 16);
}

/** Parses a test split (JSONL) into samples; a row without the fields of its dataset type is bad input. */
export function parseTestSplit(kind: ArtifactRef['kind'], text: string, maxSamples: number): EvalSample[] {
  const samples: EvalSample[] = [];
  const seen = new Set<string>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length && samples.length < maxSamples; i += 1) {
    const line = lines[i]?.trim();
    if (!line) continue;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new EvaluationInputError(`test split line ${i + 1} is not JSON`);
    }
    const instruction = kind === 'preference-dataset' ? row.prompt : row.instruction;
    const reference = kind === 'preference-dataset' ? row.chosen : row.output;
    if (typeof instruction !== 'string' || typeof reference !== 'string' || !instruction.trim()) {
      throw new EvaluationInputError(
        `test split line ${i + 1}: expected ${kind === 'preference-dataset' ? '"prompt" and "chosen"' : '"instruction" and "output"'} strings`,
      );
    }
    const id = sampleId(instruction, reference);
    if (seen.has(id)) continue;
    seen.add(id);
    samples.push({ id, instruction, reference });
  }
  return samples;
}

/** The test-split samples of a dataset artifact (instruction or preference dataset). */
export async function loadTestSamples(
  dataset: ArtifactRef,
  maxSamples: number,
  s3: () => S3Client,
): Promise<{ samples: EvalSample[]; testUri: string }> {
  if (dataset.kind !== 'instruction-dataset' && dataset.kind !== 'preference-dataset') {
    throw new EvaluationInputError(`${dataset.id} is a ${dataset.kind}, not an instruction or preference dataset`);
  }
  const { test } = datasetSplitUris(dataset);
  let text: string;
  try {
    text = (await readUri(test, s3)).toString('utf8');
  } catch (error) {
    if (error instanceof EvaluationInputError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? (error as { name?: string }).name;
    if (code === 'ENOENT' || code === 'NoSuchKey')
      throw new EvaluationInputError(`dataset ${dataset.id} has no test split at ${test}`);
    throw error;
  }
  const samples = parseTestSplit(dataset.kind, text, maxSamples);
  if (samples.length === 0) throw new EvaluationInputError(`the test split of ${dataset.id} (${test}) has no rows`);
  return { samples, testUri: test };
}

export function toJsonl(rows: readonly object[]): string {
  return rows.map((row) => `${JSON.stringify(row)}\n`).join('');
}

export function fromJsonl<T>(text: string): T[] {
  return text
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as T);
}
