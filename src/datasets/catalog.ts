/**
 * `twin datasets list | show <version> | diff <a> <b>`: the dataset versions recorded in the artifact registry,
 * their manifests (from the artifact store) and what changed between two versions. Functions return data; the
 * `format*` functions render it for a terminal.
 */
import type { ArtifactRef } from '../domain/artifacts';
import type { ArtifactRegistry } from '../infra/artifact-registry';
import type { ArtifactStore } from '../infra/artifact-store';
import { rowId } from './build';
import { DROP_REASONS } from './filters';
import { parseManifest, type DatasetManifest } from './manifest';
import { readDatasetSplit } from './storage';
import { DATASET_ARTIFACT_KIND, DATASET_TYPES, type DatasetType } from './types';

export interface DatasetListing {
  version: string;
  type: DatasetType;
  artifactId: string;
  uri: string;
  createdAt: string;
  train: number;
  test: number;
  promptVersion: string;
  model: string;
  sources: string[];
  workflowId: string;
}

function typeOf(artifact: ArtifactRef): DatasetType | undefined {
  return DATASET_TYPES.find((type) => DATASET_ARTIFACT_KIND[type] === artifact.kind);
}

function toListing(artifact: ArtifactRef): DatasetListing | undefined {
  const type = typeOf(artifact);
  const m = artifact.metadata;
  if (!type || typeof m.version !== 'string') return undefined;
  return {
    version: m.version,
    type,
    artifactId: artifact.id,
    uri: artifact.uri,
    createdAt: artifact.createdAt,
    train: Number(m.train ?? 0),
    test: Number(m.test ?? 0),
    promptVersion: String(m.promptVersion ?? ''),
    model: String(m.model ?? ''),
    sources: artifact.inputs,
    workflowId: artifact.producer.workflowId,
  };
}

/** Dataset versions, newest first. */
export async function listDatasets(
  registry: ArtifactRegistry,
  options: { type?: DatasetType; limit?: number } = {},
): Promise<DatasetListing[]> {
  const limit = options.limit ?? 50;
  const types = options.type ? [options.type] : [...DATASET_TYPES];
  const artifacts = (
    await Promise.all(types.map((type) => registry.list({ kind: DATASET_ARTIFACT_KIND[type], limit })))
  ).flat();
  return artifacts
    .map(toListing)
    .filter((listing): listing is DatasetListing => listing !== undefined)
    .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0))
    .slice(0, limit);
}

export class DatasetNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetNotFoundError';
  }
}

/** The registry entry of a version: its full id, a unique prefix of it (≥ 4 characters), or its artifact id. */
export async function findDataset(registry: ArtifactRegistry, version: string): Promise<ArtifactRef> {
  const byId = version.includes(':') ? await registry.get(version) : null;
  if (byId && typeOf(byId)) return byId;
  if (version.length < 4)
    throw new DatasetNotFoundError(`dataset version "${version}" is too short: give at least 4 characters`);
  const all = (
    await Promise.all(DATASET_TYPES.map((type) => registry.list({ kind: DATASET_ARTIFACT_KIND[type], limit: 10_000 })))
  ).flat();
  const matches = all.filter(
    (artifact) => typeof artifact.metadata.version === 'string' && artifact.metadata.version.startsWith(version),
  );
  if (matches.length === 0)
    throw new DatasetNotFoundError(`no dataset version "${version}" in the registry (see \`twin datasets list\`)`);
  if (matches.length > 1) {
    throw new DatasetNotFoundError(
      `"${version}" matches ${matches.length} versions: ${matches.map((m) => String(m.metadata.version)).join(', ')}`,
    );
  }
  return matches[0] as ArtifactRef;
}

export async function showDataset(
  registry: ArtifactRegistry,
  store: ArtifactStore,
  version: string,
): Promise<{ artifact: ArtifactRef; manifest: DatasetManifest }> {
  const artifact = await findDataset(registry, version);
  const key = String(
    artifact.metadata.manifestKey ?? `datasets/${typeOf(artifact)}/${String(artifact.metadata.version)}/manifest.json`,
  );
  const manifest = parseManifest((await store.get(key)).toString('utf8'));
  return { artifact, manifest };
}

export interface DatasetDiff {
  a: { version: string; type: DatasetType };
  b: { version: string; type: DatasetType };
  counts: { train: [number, number]; test: [number, number]; total: [number, number] };
  perCategory: Record<string, { a: { train: number; test: number }; b: { train: number; test: number } }>;
  rows: {
    /** Rows (by content) in both versions. */
    common: number;
    onlyInA: number;
    onlyInB: number;
    /** Rows in both but in a different split. */
    movedSplit: number;
  };
  drops: Record<string, [number, number]>;
  /** Settings that differ: name → [a, b]. */
  changed: Record<string, [unknown, unknown]>;
  sources: { onlyInA: string[]; onlyInB: string[] };
}

async function rowSplits(store: ArtifactStore, manifest: DatasetManifest): Promise<Map<string, 'train' | 'test'>> {
  const map = new Map<string, 'train' | 'test'>();
  for (const split of ['train', 'test'] as const) {
    for (const row of await readDatasetSplit(store, manifest, split)) map.set(rowId(row), split);
  }
  return map;
}

export async function diffDatasets(
  registry: ArtifactRegistry,
  store: ArtifactStore,
  a: string,
  b: string,
): Promise<DatasetDiff> {
  const [left, right] = await Promise.all([showDataset(registry, store, a), showDataset(registry, store, b)]);
  const ma = left.manifest;
  const mb = right.manifest;
  const [rowsA, rowsB] = await Promise.all([rowSplits(store, ma), rowSplits(store, mb)]);
  let common = 0;
  let moved = 0;
  for (const [id, split] of rowsA) {
    const other = rowsB.get(id);
    if (other === undefined) continue;
    common += 1;
    if (other !== split) moved += 1;
  }
  const categories = [
    ...new Set([...Object.keys(ma.counts.perCategory), ...Object.keys(mb.counts.perCategory)]),
  ].sort();
  const zero = { train: 0, test: 0 };
  const changed: Record<string, [unknown, unknown]> = {};
  const compare = (name: string, x: unknown, y: unknown) => {
    if (JSON.stringify(x) !== JSON.stringify(y)) changed[name] = [x, y];
  };
  compare('type', ma.type, mb.type);
  compare('promptVersion', ma.promptVersion, mb.promptVersion);
  for (const [key, value] of Object.entries(ma.generator))
    compare(`generator.${key}`, value, (mb.generator as Record<string, unknown>)[key]);
  compare('split.seed', ma.split.seed, mb.split.seed);
  compare('split.testFraction', ma.split.testFraction, mb.split.testFraction);
  compare('dedupe', ma.dedupe, mb.dedupe);
  return {
    a: { version: ma.version, type: ma.type },
    b: { version: mb.version, type: mb.type },
    counts: {
      train: [ma.counts.train, mb.counts.train],
      test: [ma.counts.test, mb.counts.test],
      total: [ma.counts.total, mb.counts.total],
    },
    perCategory: Object.fromEntries(
      categories.map((category) => [
        category,
        { a: ma.counts.perCategory[category] ?? zero, b: mb.counts.perCategory[category] ?? zero },
      ]),
    ),
    rows: { common, onlyInA: rowsA.size - common, onlyInB: rowsB.size - common, movedSplit: moved },
    drops: Object.fromEntries(
      DROP_REASONS.filter((reason) => (ma.drops[reason] ?? 0) !== 0 || (mb.drops[reason] ?? 0) !== 0).map((reason) => [
        reason,
        [ma.drops[reason] ?? 0, mb.drops[reason] ?? 0],
      ]),
    ),
    changed,
    sources: {
      onlyInA: ma.sources.filter((s) => !mb.sources.includes(s)),
      onlyInB: mb.sources.filter((s) => !ma.sources.includes(s)),
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Terminal rendering
// ---------------------------------------------------------------------------------------------------------------

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function formatDatasetList(listings: readonly DatasetListing[]): string {
  if (listings.length === 0) return 'no datasets yet (run generateDatasets)';
  return table([
    ['VERSION', 'TYPE', 'TRAIN', 'TEST', 'MODEL', 'PROMPT', 'CREATED'],
    ...listings.map((l) => [l.version, l.type, String(l.train), String(l.test), l.model, l.promptVersion, l.createdAt]),
  ]);
}

export function formatDatasetShow({
  artifact,
  manifest: m,
}: {
  artifact: ArtifactRef;
  manifest: DatasetManifest;
}): string {
  const drops = Object.entries(m.drops).filter(([, n]) => n > 0);
  const failures = Object.entries(m.extracts.failureReasons).filter(([, n]) => n > 0);
  return [
    `${m.type} dataset ${m.version}  (${artifact.id})`,
    `  location     ${artifact.uri}`,
    `  rows         ${m.counts.train} train + ${m.counts.test} test = ${m.counts.total}   columns: ${m.columns.join(', ')}`,
    ...Object.entries(m.counts.perCategory).map(
      ([category, c]) => `    ${category.padEnd(12)} ${c.train} train, ${c.test} test`,
    ),
    `  extracts     ${m.extracts.total} (${m.extracts.answered} answered, ${m.extracts.failed} failed${failures.length ? `: ${failures.map(([r, n]) => `${r} ${n}`).join(', ')}` : ''})`,
    `  samples      ${m.samples.produced} produced of ${m.samples.requested} requested, ${m.samples.kept} kept, ${m.samples.dropped} dropped`,
    ...drops.map(([reason, n]) => `    ${reason.padEnd(32)} ${n}`),
    `  generator    ${m.generator.model}, ${m.generator.samplesPerExtract} per extract, temperature ${m.generator.temperature}`,
    `  prompt       ${m.promptVersion}`,
    `  split        seed ${m.split.seed}, test fraction ${m.split.testFraction}`,
    `  usage        ${m.usage.inputTokens} tokens in, ${m.usage.outputTokens} out, ${m.usage.completions} completions` +
      (m.usage.estimatedCostUsd === null ? '' : `, ~$${m.usage.estimatedCostUsd.toFixed(4)}`),
    `  sources      ${m.sources.join(', ') || '(none)'}`,
    `  made by      ${artifact.producer.workflowId} (${artifact.producer.activity})`,
  ].join('\n');
}

export function formatDatasetDiff(diff: DatasetDiff): string {
  const pair = ([x, y]: [unknown, unknown]) => `${JSON.stringify(x)} → ${JSON.stringify(y)}`;
  return [
    `${diff.a.type} ${diff.a.version} → ${diff.b.type} ${diff.b.version}`,
    `  rows     train ${pair(diff.counts.train)}, test ${pair(diff.counts.test)}`,
    `  content  ${diff.rows.common} common, ${diff.rows.onlyInA} only in ${diff.a.version}, ${diff.rows.onlyInB} only in ${diff.b.version}, ${diff.rows.movedSplit} changed split`,
    ...Object.entries(diff.perCategory).map(
      ([c, v]) => `  ${c.padEnd(12)} ${v.a.train}/${v.a.test} → ${v.b.train}/${v.b.test} (train/test)`,
    ),
    ...Object.entries(diff.drops).map(([reason, v]) => `  drop ${reason.padEnd(30)} ${pair(v)}`),
    ...Object.entries(diff.changed).map(([name, v]) => `  ${name.padEnd(20)} ${pair(v)}`),
    ...(diff.sources.onlyInA.length || diff.sources.onlyInB.length
      ? [`  sources  -${diff.sources.onlyInA.join(', -')} +${diff.sources.onlyInB.join(', +')}`]
      : []),
  ].join('\n');
}
