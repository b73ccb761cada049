/**
 * all-MiniLM-L6-v2 in process: the model's own WordPiece tokenizer and ONNX graph through @huggingface/transformers
 * (ONNX Runtime for Node underneath), mean pooling over the attention mask and L2 normalisation — the same
 * computation as sentence-transformers' `encode(..., normalize_embeddings=True)`.
 *
 * Loaded once per instance; texts are sorted by length and embedded in batches so padding stays small; inputs are
 * truncated at 256 tokens like sentence-transformers' max_seq_length (chunks made by ./chunking never are).
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import {
  AutoModel,
  AutoTokenizer,
  type PreTrainedModel,
  type PreTrainedTokenizer,
  type Tensor,
} from '@huggingface/transformers';
import type { Embedder } from './embedder';
import { meanPoolAndNormalize } from './embedder';
import {
  EMBEDDING_DIMENSION,
  EMBEDDING_MAX_TOKENS,
  EMBEDDING_MODEL_ID,
  type ModelLocation,
  prepareModelLoad,
} from './model-files';

export interface OnnxEmbedderOptions extends ModelLocation {
  /** Use onnx/model_quantized.onnx (dynamic int8, ~3x smaller; cosine to fp32 ≈ 0.99). Default false. */
  quantized?: boolean;
  /** Use the graph with ONNX Runtime's BERT fusions (onnx/model_opt*.onnx). Default: when it is installed. */
  optimized?: boolean;
  /** Texts per ONNX run (default 32). */
  batchSize?: number;
  /** ONNX Runtime intra-op threads (default: all cores). */
  intraOpThreads?: number;
  /** ONNX Runtime inter-op threads (default 1). */
  interOpThreads?: number;
  /** Truncation length including special tokens (default 256). */
  maxTokens?: number;
}

/** Where the time went, summed over all `embed` calls (for benchmarks and logs). */
export interface OnnxEmbedderStats {
  texts: number;
  batches: number;
  tokens: number;
  tokenizeMs: number;
  inferenceMs: number;
  poolMs: number;
}

interface ModelOutput {
  last_hidden_state: Tensor;
}

export class OnnxEmbedder implements Embedder {
  readonly modelId = EMBEDDING_MODEL_ID;
  readonly dimension = EMBEDDING_DIMENSION;
  private closed = false;
  readonly stats: OnnxEmbedderStats = { texts: 0, batches: 0, tokens: 0, tokenizeMs: 0, inferenceMs: 0, poolMs: 0 };

  private constructor(
    private readonly tokenizer: PreTrainedTokenizer,
    private readonly model: PreTrainedModel,
    readonly options: Required<
      Pick<OnnxEmbedderOptions, 'batchSize' | 'maxTokens' | 'quantized' | 'optimized' | 'intraOpThreads'>
    >,
  ) {}

  static async create(options: OnnxEmbedderOptions = {}): Promise<OnnxEmbedder> {
    const { modelId, local, dir } = prepareModelLoad(options);
    const quantized = options.quantized ?? false;
    const optimized = options.optimized ?? (local && existsSync(join(dir, 'onnx', 'model_opt.onnx')));
    const intraOpThreads = options.intraOpThreads ?? availableParallelism();
    const tokenizer = await AutoTokenizer.from_pretrained(modelId);
    const model = await AutoModel.from_pretrained(modelId, {
      device: 'cpu',
      dtype: quantized ? 'q8' : 'fp32',
      model_file_name: optimized ? 'model_opt' : 'model',
      session_options: {
        intraOpNumThreads: intraOpThreads,
        interOpNumThreads: options.interOpThreads ?? 1,
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
      },
    });
    return new OnnxEmbedder(tokenizer, model, {
      batchSize: options.batchSize ?? 32,
      maxTokens: options.maxTokens ?? EMBEDDING_MAX_TOKENS,
      quantized,
      optimized,
      intraOpThreads,
    });
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    if (this.closed) throw new Error('OnnxEmbedder is closed');
    if (texts.length === 0) return [];
    // Longest first, so each batch pads to similar lengths (as sentence-transformers does).
    const order = texts.map((_, i) => i).sort((a, b) => texts[b]!.length - texts[a]!.length || a - b);
    const out = new Array<Float32Array>(texts.length);
    for (let s = 0; s < order.length; s += this.options.batchSize) {
      const idx = order.slice(s, s + this.options.batchSize);
      const vectors = await this.embedBatch(idx.map((i) => texts[i]!));
      idx.forEach((i, k) => (out[i] = vectors[k]!));
    }
    return out;
  }

  private async embedBatch(batch: string[]): Promise<Float32Array[]> {
    const t0 = performance.now();
    const inputs = this.tokenizer(batch, { padding: true, truncation: true, max_length: this.options.maxTokens }) as {
      input_ids: Tensor;
      attention_mask: Tensor;
    };
    const mask = inputs.attention_mask.data as BigInt64Array;
    this.restoreSeparator(inputs.input_ids, mask);
    const t1 = performance.now();
    const output = (await this.model(inputs)) as ModelOutput;
    const t2 = performance.now();
    const hidden = output.last_hidden_state;
    const [b, seq, dim] = hidden.dims as [number, number, number];
    const vectors = meanPoolAndNormalize(hidden.data as Float32Array, mask, b, seq, dim);
    hidden.dispose();
    const st = this.stats;
    st.texts += batch.length;
    st.batches++;
    for (const m of mask) st.tokens += Number(m);
    st.tokenizeMs += t1 - t0;
    st.inferenceMs += t2 - t1;
    st.poolMs += performance.now() - t2;
    return vectors;
  }

  /**
   * transformers.js truncates after adding special tokens, so a text over the limit loses its final [SEP]; Python
   * tokenizers (and so sentence-transformers) keep [CLS] + first 254 tokens + [SEP]. Put [SEP] back so long
   * inputs embed exactly as in Python. (Chunks never reach the limit; queries and other callers might.)
   */
  private restoreSeparator(inputIds: Tensor, mask: BigInt64Array): void {
    const ids = inputIds.data as BigInt64Array;
    const [rows, seq] = inputIds.dims as [number, number];
    if (seq < this.options.maxTokens) return;
    const sep = BigInt(this.tokenizer.sep_token_id);
    for (let r = 0; r < rows; r++) {
      const last = r * seq + seq - 1;
      if (mask[last] === 1n && ids[last] !== sep) ids[last] = sep;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.model.dispose();
  }
}
