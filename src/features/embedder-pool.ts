/**
 * all-MiniLM-L6-v2 in a pool of worker threads. Tokenising and ONNX both run in the workers, so the calling
 * thread's event loop stays free for Temporal heartbeats and I/O. Each worker loads the model once; batches go to
 * whichever worker is idle; results come back in input order. A worker that dies fails its batch and is replaced.
 */
import { availableParallelism } from 'node:os';
import { extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Embedder } from './embedder';
import type { OnnxEmbedderOptions, OnnxEmbedderStats } from './embedder-onnx';
import type { WorkerRequest, WorkerResponse } from './embedder-worker';
import { EMBEDDING_DIMENSION, EMBEDDING_MODEL_ID } from './model-files';

export interface WorkerPoolOptions extends OnnxEmbedderOptions {
  /** Number of worker threads (default: one per core). Each gets `floor(cores / workers)` ONNX threads unless set. */
  workers?: number;
}

interface Job {
  id: number;
  texts: string[];
  resolve: (vectors: Float32Array[]) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  job: Job | null;
  stats: OnnxEmbedderStats | null;
}

/**
 * Bootstrap code of a worker: requires the worker module next to this one — `.ts` through tsx's require hook
 * (tests, dev), `.js` when compiled. Evaluated as a script, so no loader flags (execArgv) are needed.
 */
function workerBootstrap(): string {
  const ext = extname(__filename);
  const file = join(__dirname, `embedder-worker${ext}`);
  const hook = ext === '.ts' ? `require(${JSON.stringify(require.resolve('tsx/cjs'))});\n` : '';
  return `${hook}require(${JSON.stringify(file)});\n`;
}

export class WorkerPoolEmbedder implements Embedder {
  readonly modelId = EMBEDDING_MODEL_ID;
  readonly dimension = EMBEDDING_DIMENSION;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 0;
  private closed = false;

  private constructor(
    private readonly workerOptions: OnnxEmbedderOptions,
    private readonly batchSize: number,
  ) {}

  static async create(options: WorkerPoolOptions = {}): Promise<WorkerPoolEmbedder> {
    const { workers = availableParallelism(), ...rest } = options;
    if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`workers must be >= 1, got ${workers}`);
    const intraOpThreads = rest.intraOpThreads ?? Math.max(1, Math.floor(availableParallelism() / workers));
    const pool = new WorkerPoolEmbedder({ ...rest, intraOpThreads }, rest.batchSize ?? 16);
    try {
      await Promise.all(Array.from({ length: workers }, () => pool.spawn()));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  private spawn(): Promise<void> {
    const worker = new Worker(workerBootstrap(), { eval: true, workerData: this.workerOptions });
    const slot: Slot = { worker, job: null, stats: null };
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      worker.on('message', (msg: WorkerResponse) => {
        switch (msg.type) {
          case 'ready':
            ready = true;
            this.slots.push(slot);
            resolve();
            this.pump();
            break;
          case 'init-error':
            reject(new Error(`embedder worker failed to load the model: ${msg.message}`));
            void worker.terminate();
            break;
          case 'result': {
            const job = slot.job;
            slot.job = null;
            slot.stats = msg.stats;
            if (job) {
              const dim = this.dimension;
              job.resolve(Array.from({ length: msg.count }, (_, i) => msg.data.subarray(i * dim, (i + 1) * dim)));
            }
            this.pump();
            break;
          }
          case 'error': {
            const job = slot.job;
            slot.job = null;
            job?.reject(new Error(`embedding failed in worker: ${msg.message}`));
            this.pump();
            break;
          }
        }
      });
      worker.on('error', (err) => {
        if (!ready) reject(err);
        this.retire(slot, err);
      });
      worker.on('exit', (code) => {
        if (!ready) reject(new Error(`embedder worker exited with code ${code} before it was ready`));
        this.retire(slot, new Error(`embedder worker exited with code ${code}`));
      });
    });
  }

  /** A dead worker: fail its job, drop it, and start a replacement while the pool is open. */
  private retire(slot: Slot, err: Error): void {
    const at = this.slots.indexOf(slot);
    if (at < 0) return;
    this.slots.splice(at, 1);
    slot.job?.reject(err);
    slot.job = null;
    if (!this.closed) {
      this.spawn().catch((spawnErr: unknown) => {
        for (const job of this.queue.splice(0))
          job.reject(spawnErr instanceof Error ? spawnErr : new Error(String(spawnErr)));
      });
    }
  }

  /** Time spent in the workers (tokenising, ONNX, pooling), summed over the live workers. */
  get stats(): OnnxEmbedderStats {
    const total: OnnxEmbedderStats = { texts: 0, batches: 0, tokens: 0, tokenizeMs: 0, inferenceMs: 0, poolMs: 0 };
    for (const { stats } of this.slots) {
      if (!stats) continue;
      for (const key of Object.keys(total) as Array<keyof OnnxEmbedderStats>) total[key] += stats[key];
    }
    return total;
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (slot.job || this.queue.length === 0) continue;
      const job = this.queue.shift()!;
      slot.job = job;
      slot.worker.postMessage({ id: job.id, texts: job.texts } satisfies WorkerRequest);
    }
  }

  private submit(texts: string[]): Promise<Float32Array[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, texts, resolve, reject });
      this.pump();
    });
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    if (this.closed) throw new Error('WorkerPoolEmbedder is closed');
    if (texts.length === 0) return [];
    // Sort by length here so every batch pads little, then spread the batches over the workers.
    const order = texts.map((_, i) => i).sort((a, b) => texts[b]!.length - texts[a]!.length || a - b);
    const batches: number[][] = [];
    for (let s = 0; s < order.length; s += this.batchSize) batches.push(order.slice(s, s + this.batchSize));
    const results = await Promise.all(batches.map((idx) => this.submit(idx.map((i) => texts[i]!))));
    const out = new Array<Float32Array>(texts.length);
    batches.forEach((idx, b) => idx.forEach((i, k) => (out[i] = results[b]![k]!)));
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error('WorkerPoolEmbedder closed'));
    await Promise.all(this.slots.splice(0).map((s) => s.worker.terminate()));
  }
}
