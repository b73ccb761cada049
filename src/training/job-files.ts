import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Where the Python job code (`jobs/finetune`) is: `TRAINING_JOB_DIR` if set, else the first `jobs/finetune` with
 * a train.py found walking up from this file (the repository in development, `/app` in the worker image where
 * the compiled code lives under dist/).
 */
export function finetuneDir(): string {
  const fromEnv = process.env.TRAINING_JOB_DIR;
  if (fromEnv) return path.resolve(fromEnv);
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, 'jobs', 'finetune');
    if (existsSync(path.join(candidate, 'train.py'))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`jobs/finetune/train.py not found above ${__dirname}; set TRAINING_JOB_DIR`);
    dir = parent;
  }
}

let cache: Map<string, string> | undefined;

/** A file of jobs/finetune as text, read once per process. */
export function readJobFile(name: string): string {
  cache ??= new Map();
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(path.join(finetuneDir(), name), 'utf8');
    cache.set(name, text);
  }
  return text;
}
