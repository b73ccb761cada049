import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { create as createTar } from 'tar';
import { sha256 } from '../domain/artifacts';
import { finetuneDir } from './job-files';

/** Not shipped to SageMaker: tests, caches and the local environment's requirements. */
const EXCLUDED = [
  /^tests(\/|$)/,
  /(^|\/)__pycache__(\/|$)/,
  /\.pyc$/,
  /(^|\/)\.pytest_cache(\/|$)/,
  /^requirements-local\.txt$/,
];

/** The files of the job folder that go into sourcedir.tar.gz, relative and sorted (byte order). */
export async function sourceDirFiles(dir = finetuneDir()): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .filter((file) => !EXCLUDED.some((pattern) => pattern.test(file)))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export interface SourceDirPackage {
  bytes: Buffer;
  /** `sha256:<hex>` of the .tar.gz bytes. */
  checksum: string;
  files: string[];
}

/**
 * jobs/finetune as SageMaker script mode's `sourcedir.tar.gz`, byte-for-byte reproducible: sorted entries, files
 * only, a fixed mtime, portable headers (no uid/gid/user names, umask-independent modes, a gzip header without
 * time or OS). The same code therefore always has the same content hash and S3 key.
 */
export async function packageSourceDir(dir = finetuneDir()): Promise<SourceDirPackage> {
  const files = await sourceDirFiles(dir);
  if (!files.includes('train.py')) throw new Error(`${dir} has no train.py`);
  const stream = createTar({ cwd: dir, gzip: true, portable: true, mtime: new Date(0), noDirRecurse: true }, files);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  const bytes = Buffer.concat(chunks);
  return { bytes, checksum: `sha256:${sha256(bytes)}`, files };
}

/** Content-addressed key of a package inside the training bucket/prefix. */
export function sourceDirKey(checksum: string): string {
  return `training/code/${checksum.replace(/^sha256:/, '').slice(0, 16)}/sourcedir.tar.gz`;
}
