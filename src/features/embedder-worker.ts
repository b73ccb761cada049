/**
 * Worker-thread entry of {@link WorkerPoolEmbedder}: loads one {@link OnnxEmbedder} and embeds the batches it is
 * sent. Vectors go back as one transferred Float32Array per batch (no copy).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { OnnxEmbedder, type OnnxEmbedderOptions, type OnnxEmbedderStats } from './embedder-onnx';

export type WorkerRequest = { id: number; texts: string[] };
export type WorkerResponse =
  | { type: 'ready'; dimension: number }
  | { type: 'init-error'; message: string }
  | { type: 'result'; id: number; data: Float32Array; count: number; stats: OnnxEmbedderStats }
  | { type: 'error'; id: number; message: string };

function post(message: WorkerResponse, transfer: ArrayBuffer[] = []): void {
  parentPort?.postMessage(message, transfer);
}

async function main(): Promise<void> {
  if (!parentPort) throw new Error('embedder-worker must run in a worker thread');
  let embedder: OnnxEmbedder;
  try {
    embedder = await OnnxEmbedder.create(workerData as OnnxEmbedderOptions);
  } catch (err) {
    post({ type: 'init-error', message: err instanceof Error ? err.message : String(err) });
    return;
  }
  parentPort.on('message', (req: WorkerRequest) => {
    embedder.embed(req.texts).then(
      (vectors) => {
        const dim = embedder.dimension;
        const data = new Float32Array(vectors.length * dim);
        vectors.forEach((v, i) => data.set(v, i * dim));
        post({ type: 'result', id: req.id, data, count: vectors.length, stats: { ...embedder.stats } }, [data.buffer]);
      },
      (err: unknown) => post({ type: 'error', id: req.id, message: err instanceof Error ? err.message : String(err) }),
    );
  });
  post({ type: 'ready', dimension: embedder.dimension });
}

void main();
