import { createHash } from 'node:crypto';

/** What kind of thing an artifact is; one name per concept, used in the registry, the UI and the CLI. */
export const ARTIFACT_KINDS = [
  'smoke-note',
  'raw-documents',
  'cleaned-documents',
  'embedded-chunks',
  'instruction-dataset',
  'preference-dataset',
  'model',
  'evaluation-report',
  'endpoint',
] as const;
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number];

/** Who made an artifact: the Temporal run and the activity attempt. */
export interface ArtifactProducer {
  workflowId: string;
  runId: string;
  activity: string;
  attempt: number;
}

/**
 * The claim check an activity returns instead of data: small, readable on its own in the Web UI
 * (what was made, how many, where, from what).
 */
export interface ArtifactRef {
  id: string;
  kind: ArtifactKind;
  uri: string;
  count: number;
  checksum: string;
  producer: ArtifactProducer;
  inputs: string[];
  metadata: Record<string, string | number | boolean | null>;
  createdAt: string;
}

export type NewArtifact = Omit<ArtifactRef, 'id' | 'createdAt'>;

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Artifact ids are content addressed: the same content of the same kind is the same artifact, so a
 * retried or re-run activity records nothing new.
 */
export function artifactId(kind: ArtifactKind, checksum: string): string {
  return `${kind}:${checksum.slice(0, 24)}`;
}

/** A stable checksum for a JSON-able value (object keys sorted). */
export function checksumOf(value: unknown): string {
  return `sha256:${sha256(stableStringify(value))}`;
}

export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
}
