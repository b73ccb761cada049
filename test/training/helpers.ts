import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { MockActivityEnvironment } from '@temporalio/testing';

export const ROOT = path.resolve(__dirname, '..', '..');
export const JOB_DIR = path.join(ROOT, 'jobs', 'finetune');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'datasets');

/** The training venv's python (scripts/install-training.sh makes it; `npm test` runs that installer). */
export function trainingPython(): string {
  const python =
    process.env.TRAINING_PYTHON ??
    path.join(process.env.TWIN_HOME ?? path.join(os.homedir(), '.cache', 'llm-twin'), 'venv-train', 'bin', 'python');
  if (!existsSync(python))
    throw new Error(`${python} is missing: run \`bash scripts/install-training.sh\` (npm test runs it)`);
  return python;
}

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ProcessResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? ROOT,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} timed out\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`));
    }, options.timeoutMs ?? 600_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** The fixture dataset version folder of a type (test/fixtures/datasets/<type>/<version>/). */
export function fixtureVersion(type: 'instruction' | 'preference'): string {
  const dir = path.join(FIXTURES, type);
  const entries = readdirSync(dir);
  if (entries.length !== 1 || !entries[0]) throw new Error(`expected one version folder in ${dir}`);
  return path.join(dir, entries[0]);
}

/**
 * Builds the tiny random Llama (jobs/finetune/tests/tiny_model.py) into `out`, its tokenizer trained on `texts`
 * (default: both fixture datasets and the general sample).
 */
export async function buildTinyBaseModel(
  out: string,
  texts = [
    path.join(fixtureVersion('instruction'), 'train.jsonl'),
    path.join(fixtureVersion('preference'), 'train.jsonl'),
    path.join(FIXTURES, 'general', 'alpaca-sample.jsonl'),
  ],
): Promise<string> {
  const built = await run(trainingPython(), [path.join(JOB_DIR, 'tests', 'tiny_model.py'), '--out', out, ...texts]);
  assert.equal(built.code, 0, built.stderr);
  return out;
}

/** Worker settings for local training under `root`: the local artifact store, training folder and venv. */
export function localTrainingEnv(root: string): Record<string, string> {
  return {
    ARTIFACT_STORE: 'local',
    ARTIFACT_DIR: path.join(root, 'artifacts'),
    TRAINING_DIR: path.join(root, 'training'),
    TRAINING_BACKEND: 'local',
    TRAINING_PYTHON: trainingPython(),
  };
}

/** MockActivityEnvironment.run with the result type kept (its signature cannot infer it). */
export async function runIn<R>(env: MockActivityEnvironment, fn: () => Promise<R>): Promise<R> {
  return env.run(fn);
}
