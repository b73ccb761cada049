/**
 * Reranking with a cross-encoder (ms-marco-MiniLM class: a BERT that reads query and passage together and outputs
 * one relevance logit), run in process with ONNX Runtime through @huggingface/transformers, offline from a local
 * folder laid out as transformers.js expects (config.json, tokenizer.json, onnx/model.onnx) — see
 * scripts/install-reranker-model.sh. Pluggable: anything with `score(query, passages)` is a {@link Reranker}.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

export interface Reranker {
  readonly modelId: string;
  /** One relevance score per passage (higher = more relevant), in input order. */
  score(query: string, passages: string[]): Promise<number[]>;
  close(): Promise<void>;
}

export class RerankerNotInstalledError extends Error {
  constructor(readonly modelDir: string) {
    super(
      `Cross-encoder model not found in ${modelDir} (expected tokenizer.json and onnx/model.onnx). ` +
        'Run scripts/install-reranker-model.sh, set RAG_RERANKER_MODEL_DIR, or set RAG_RERANKER=none.',
    );
    this.name = 'RerankerNotInstalledError';
  }
}

export function rerankerInstalled(modelDir: string): boolean {
  return existsSync(join(modelDir, 'tokenizer.json')) && existsSync(join(modelDir, 'onnx', 'model.onnx'));
}

interface SequenceClassifier {
  (inputs: Record<string, unknown>): Promise<{ logits: { data: ArrayLike<number>; dims: number[] } }>;
  dispose?(): Promise<unknown>;
}
type Tokenize = (
  text: string[],
  options: { text_pair: string[]; padding: boolean; truncation: boolean; max_length?: number },
) => Record<string, unknown>;

export class CrossEncoderReranker implements Reranker {
  private constructor(
    readonly modelId: string,
    private readonly tokenize: Tokenize,
    private readonly model: SequenceClassifier,
    private readonly maxLength: number,
    private readonly batchSize: number,
  ) {}

  /** Loads the model from a local folder (never from the network). */
  static async load(
    modelDir: string,
    options: { maxLength?: number; batchSize?: number; threads?: number } = {},
  ): Promise<CrossEncoderReranker> {
    const dir = resolve(modelDir);
    if (!rerankerInstalled(dir)) throw new RerankerNotInstalledError(dir);
    const { env, AutoTokenizer, AutoModelForSequenceClassification } = await import('@huggingface/transformers');
    env.allowLocalModels = true;
    env.allowRemoteModels = false;
    env.localModelPath = dirname(dir);
    const id = basename(dir);
    const tokenizer = await AutoTokenizer.from_pretrained(id);
    const model = await AutoModelForSequenceClassification.from_pretrained(id, {
      dtype: 'fp32',
      model_file_name: 'model',
      session_options: { intraOpNumThreads: options.threads ?? 1, interOpNumThreads: 1 },
    });
    let modelId = id;
    try {
      const meta = JSON.parse(readFileSync(join(dir, 'reranker.json'), 'utf8')) as { modelId?: string };
      if (meta.modelId) modelId = meta.modelId;
    } catch {
      // no metadata file: the folder name is the id
    }
    return new CrossEncoderReranker(modelId, tokenizer, model, options.maxLength ?? 512, options.batchSize ?? 16);
  }

  async score(query: string, passages: string[]): Promise<number[]> {
    const scores: number[] = [];
    for (let i = 0; i < passages.length; i += this.batchSize) {
      const batch = passages.slice(i, i + this.batchSize);
      const inputs = this.tokenize(
        batch.map(() => query),
        { text_pair: batch, padding: true, truncation: true, max_length: this.maxLength },
      );
      const { logits } = await this.model(inputs);
      const labels = logits.dims[1] ?? 1;
      for (let j = 0; j < batch.length; j++) scores.push(Number(logits.data[j * labels]));
    }
    return scores;
  }

  async close(): Promise<void> {
    await this.model.dispose?.();
  }
}
