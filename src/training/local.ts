import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { extract as extractTar } from 'tar';
import type { Secret } from '../config';
import {
  TERMINAL_STATUSES,
  TrainingJobError,
  type TrainingBackend,
  type TrainingJobRef,
  type TrainingJobState,
} from './backend';
import { finetuneDir } from './job-files';
import { latestMetrics, parseJobLine, type MetricPoint } from './metrics';
import { hyperparameterArgs, type TrainingJobSpec } from './spec';

export interface LocalTrainingConfig {
  /** Python of the training venv ($TWIN_HOME/venv-train/bin/python). */
  python: string;
  /** Folder that holds one sub-folder per job (log, data copies, model, exit status). */
  workDir: string;
  /** jobs/finetune; default: found from this file. */
  jobDir?: string;
  /** For `s3://` inputs (datasets in the S3 artifact store, a base model trained on SageMaker). */
  s3?: S3Client;
  hfToken?: Secret;
  /** Extra environment for the job (tests: thread counts). */
  env?: Record<string, string>;
}

/** Runs the job, then records its exit status atomically; `$$` (the shell) leads the job's process group. */
const WRAPPER = 'echo $$ > pid; "$@"; code=$?; echo $code > exit_code.tmp; mv exit_code.tmp exit_code; exit $code';

interface LocalJobFile {
  jobName: string;
  createdAt: string;
  argv: string[];
  modelDir: string;
  logFile: string;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

async function readText(file: string): Promise<string | undefined> {
  return readFile(file, 'utf8').catch(() => undefined);
}

/** After a SIGTERM to the group: waits up to `graceMs` for it to end, then SIGKILLs what is left of it. */
export async function killGroupAfterGrace(pgid: number, graceMs: number): Promise<void> {
  const deadline = Date.now() + graceMs;
  while (processGroupRunning(pgid) && Date.now() < deadline) await sleep(100);
  if (processGroupRunning(pgid)) process.kill(-pgid, 'SIGKILL');
}

/**
 * Starts `command` detached in its own process group (it outlives the worker and is stopped as a group), stdout and
 * stderr appended to `logFile`, with the environment of a Python job (unbuffered output, no tokenizer threads, no
 * Hugging Face telemetry) over `env`. `onError` hears a failed start (no such program); returns the pid, if any.
 */
export function spawnDetached(
  command: string,
  args: string[],
  options: { cwd: string; logFile: string; env?: Record<string, string>; onError: (error: Error) => void },
): number | undefined {
  const log = openSync(options.logFile, 'a');
  try {
    const child = spawn(command, args, {
      cwd: options.cwd,
      detached: true,
      stdio: ['ignore', log, log],
      env: {
        ...process.env,
        ...options.env,
        PYTHONUNBUFFERED: '1',
        TOKENIZERS_PARALLELISM: 'false',
        HF_HUB_DISABLE_TELEMETRY: '1',
      },
    });
    child.once('error', options.onError);
    child.unref();
    return child.pid;
  } finally {
    closeSync(log);
  }
}

/**
 * Whether any process of the job's group still runs. On Linux it reads /proc, so zombies (exited, not yet reaped by
 * a PID 1 that does not reap) do not count as running; elsewhere a signal-0 probe of the group.
 */
export function processGroupRunning(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return true;
  }
  for (const pid of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid pgrp …" – comm may contain spaces and parentheses, so split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true;
  }
  return false;
}

function parseS3(uri: string): { bucket: string; key: string } {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!match?.[1] || !match[2])
    throw new TrainingJobError(`not an s3://bucket/key URI: ${uri}`, 'ValidationError', false);
  return { bucket: match[1], key: match[2] };
}

/**
 * jobs/finetune/train.py as a local process, for a machine with a GPU or for tiny CPU runs. The process is detached
 * into its own process group and writes its log, pid and exit status into the job folder, so it survives a worker
 * restart and any later poll (from any activity attempt) can read where it is; `stop` kills the whole group.
 */
export class LocalTrainingBackend implements TrainingBackend {
  readonly name = 'local' as const;

  constructor(private readonly config: LocalTrainingConfig) {}

  jobFolder(jobName: string): string {
    return path.join(this.config.workDir, jobName);
  }

  /** A local path for a `file://`, `s3://` or plain-path input (S3 objects are downloaded once into the job). */
  private async localInput(uri: string, target: string): Promise<string> {
    if (uri.startsWith('file://')) return fileURLToPath(uri);
    if (!uri.startsWith('s3://')) return uri;
    if (await exists(target)) return target;
    if (!this.config.s3)
      throw new TrainingJobError(`cannot read ${uri}: no S3 client configured`, 'ConfigurationError', false);
    const { bucket, key } = parseS3(uri);
    const object = await this.config.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (!object.Body) throw new TrainingJobError(`empty S3 object ${uri}`, 'ValidationError', false);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(`${target}.tmp`, await object.Body.transformToByteArray());
    await rename(`${target}.tmp`, target);
    return target;
  }

  /** The base model as a folder or a Hub id; a SageMaker `model.tar.gz` is downloaded and unpacked. */
  private async localBaseModel(uri: string, dir: string): Promise<string> {
    if (!uri.startsWith('s3://')) return this.localInput(uri, '');
    const unpacked = path.join(dir, 'base-model');
    if (await exists(path.join(unpacked, 'config.json'))) return unpacked;
    const archive = await this.localInput(uri, path.join(dir, 'data', 'base-model.tar.gz'));
    await mkdir(unpacked, { recursive: true });
    await extractTar({ file: archive, cwd: unpacked });
    return unpacked;
  }

  async start(spec: TrainingJobSpec): Promise<TrainingJobRef> {
    const dir = this.jobFolder(spec.jobName);
    const ref: TrainingJobRef = { backend: 'local', jobName: spec.jobName, workDir: dir };
    if (await exists(path.join(dir, 'job.json'))) return ref; // started before (a retried start): adopt it
    await mkdir(path.join(dir, 'data'), { recursive: true });

    const train = await this.localInput(spec.data.train, path.join(dir, 'data', 'train.jsonl'));
    const test = spec.data.test
      ? await this.localInput(spec.data.test, path.join(dir, 'data', 'test.jsonl'))
      : undefined;
    const base = await this.localBaseModel(spec.baseModel, dir);
    const hyperparameters = { ...spec.hyperparameters };
    const general = String(hyperparameters.general_dataset ?? '');
    if (general.startsWith('s3://') || general.startsWith('file://')) {
      hyperparameters.general_dataset = await this.localInput(general, path.join(dir, 'data', 'general.jsonl'));
    }
    const modelDir = path.join(dir, 'model');
    const trainPy = path.join(this.config.jobDir ?? finetuneDir(), 'train.py');
    const argv = [
      trainPy,
      '--mode',
      spec.mode,
      '--base-model',
      base,
      '--train',
      train,
      ...(test ? ['--test', test] : []),
      '--model-dir',
      modelDir,
      ...hyperparameterArgs(hyperparameters),
    ];
    const job: LocalJobFile = {
      jobName: spec.jobName,
      createdAt: new Date().toISOString(),
      argv,
      modelDir,
      logFile: path.join(dir, 'train.log'),
    };
    await writeFile(path.join(dir, 'job.json.tmp'), JSON.stringify(job, null, 2));
    await rename(path.join(dir, 'job.json.tmp'), path.join(dir, 'job.json'));

    spawnDetached('/bin/sh', ['-c', WRAPPER, 'sh', this.config.python, ...argv], {
      cwd: dir,
      logFile: job.logFile,
      env: { ...this.config.env, ...(this.config.hfToken ? { HF_TOKEN: this.config.hfToken.reveal() } : {}) },
      onError: () => undefined, // a missing shell shows up as a job without pid (Failed) in poll
    });
    return ref;
  }

  async poll(ref: TrainingJobRef): Promise<TrainingJobState> {
    const dir = ref.workDir ?? this.jobFolder(ref.jobName);
    const jobText = await readText(path.join(dir, 'job.json'));
    if (!jobText)
      throw new TrainingJobError(`local training job ${ref.jobName} does not exist (${dir})`, 'NotFound', false);
    const job = JSON.parse(jobText) as LocalJobFile;
    const log = (await readText(job.logFile)) ?? '';
    const points: MetricPoint[] = [];
    let phase = 'Starting';
    let error: string | undefined;
    for (const line of log.split('\n')) {
      const parsed = parseJobLine(line);
      if (parsed?.kind === 'metric') points.push(parsed.point);
      else if (parsed?.kind === 'phase') phase = parsed.phase;
      else if (parsed?.kind === 'error') error = parsed.message;
    }
    const pidText = await readText(path.join(dir, 'pid'));
    const exitText = await readText(path.join(dir, 'exit_code'));
    const stopRequested = await exists(path.join(dir, 'stop_requested'));
    const pid = pidText ? Number.parseInt(pidText, 10) : undefined;
    const exitCode = exitText === undefined ? undefined : Number.parseInt(exitText, 10);
    const alive = pid !== undefined && processGroupRunning(pid);
    const tail = () =>
      log
        .split('\n')
        .filter((l) => l.trim() && !l.startsWith('{"'))
        .slice(-3)
        .join(' | ');

    let status: TrainingJobState['status'];
    let failureReason: string | undefined;
    if (exitCode === 0) status = 'Completed';
    else if (exitCode !== undefined) {
      status = stopRequested ? 'Stopped' : 'Failed';
      failureReason = error ?? `train.py exited with ${exitCode}: ${tail()}`;
    } else if (alive) status = stopRequested ? 'Stopping' : 'InProgress';
    else if (pid === undefined && Date.now() - Date.parse(job.createdAt) < 60_000)
      status = 'InProgress'; // starting
    else if (stopRequested) status = 'Stopped';
    else {
      status = 'Failed';
      failureReason =
        error ?? `the training process ended without an exit status (killed, or the machine restarted): ${tail()}`;
    }
    const modelSaved = status === 'Completed' && (await exists(path.join(job.modelDir, 'config.json')));
    const createdAt = job.createdAt;
    return {
      status,
      secondaryStatus: TERMINAL_STATUSES.includes(status) ? status : phase,
      metrics: latestMetrics(points),
      ...(points.length > 0 ? { latestMetric: points[points.length - 1] } : {}),
      ...(failureReason ? { failureReason } : {}),
      ...(modelSaved ? { modelArtifactUri: `file://${job.modelDir}` } : {}),
      startedAt: createdAt,
    };
  }

  async stop(ref: TrainingJobRef, graceMs = 10_000): Promise<void> {
    const dir = ref.workDir ?? this.jobFolder(ref.jobName);
    if (!(await exists(path.join(dir, 'job.json')))) return;
    if (await exists(path.join(dir, 'exit_code'))) return;
    await writeFile(path.join(dir, 'stop_requested'), new Date().toISOString());
    const pidText = await readText(path.join(dir, 'pid'));
    const pgid = pidText ? Number.parseInt(pidText, 10) : undefined;
    if (pgid === undefined || !processGroupRunning(pgid)) return;
    process.kill(-pgid, 'SIGTERM');
    await killGroupAfterGrace(pgid, graceMs);
  }
}
