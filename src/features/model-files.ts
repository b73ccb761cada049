/**
 * Where the local embedding model lives and how @huggingface/transformers is pointed at it.
 *
 * Offline by default: `env.allowRemoteModels = false` and the model is read from a local directory laid out as
 * transformers.js expects (config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx,
 * onnx/model_quantized.onnx) — `scripts/install-embedding-model.sh` makes it. With `allowRemote: true` the same
 * model is fetched once from the Hugging Face Hub and cached under `${TWIN_HOME}/models/hub-cache`.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { env } from '@huggingface/transformers';

export const EMBEDDING_MODEL_ID = 'sentence-transformers/all-MiniLM-L6-v2';
export const EMBEDDING_DIMENSION = 384;
/** Maximum sequence length of all-MiniLM-L6-v2 (sentence-transformers' max_seq_length), including [CLS] and [SEP]. */
export const EMBEDDING_MAX_TOKENS = 256;
/** Special tokens the tokenizer adds around every text ([CLS] ... [SEP]). */
export const SPECIAL_TOKENS = 2;
/** Hub repository with transformers.js-ready ONNX files of the same model, for online use. */
export const HUB_ONNX_MODEL_ID = 'Xenova/all-MiniLM-L6-v2';

export function twinHome(): string {
  return process.env.TWIN_HOME ?? join(homedir(), '.cache', 'llm-twin');
}

/** `${TWIN_HOME:-~/.cache/llm-twin}/models/all-MiniLM-L6-v2` — where the install script puts the model. */
export function defaultModelDir(): string {
  return join(twinHome(), 'models', 'all-MiniLM-L6-v2');
}

export interface ModelLocation {
  /** Local model directory (default {@link defaultModelDir}). */
  modelDir?: string;
  /** Allow downloading from the Hugging Face Hub when the local directory is missing (default false). */
  allowRemote?: boolean;
  /** Hub id used when downloading (default {@link HUB_ONNX_MODEL_ID}). */
  remoteModelId?: string;
}

export class ModelNotInstalledError extends Error {
  constructor(readonly modelDir: string) {
    super(
      `Embedding model not found in ${modelDir} (expected tokenizer.json and onnx/model.onnx). ` +
        'Run scripts/install-embedding-model.sh, or set EMBEDDING_MODEL_DIR, or allow remote downloads.',
    );
    this.name = 'ModelNotInstalledError';
  }
}

/**
 * Configures the transformers.js environment for one load and returns the model id to pass to
 * `from_pretrained`. transformers.js keeps these settings in a process-wide `env`; every load in this project goes
 * through here, so they stay consistent (offline unless asked otherwise).
 */
export function prepareModelLoad(location: ModelLocation = {}): { modelId: string; local: boolean; dir: string } {
  const dir = resolve(location.modelDir ?? defaultModelDir());
  const present = existsSync(join(dir, 'tokenizer.json')) && existsSync(join(dir, 'onnx', 'model.onnx'));
  env.logLevel = 40; // errors only
  if (present) {
    env.allowLocalModels = true;
    env.allowRemoteModels = false;
    env.localModelPath = dirname(dir);
    return { modelId: basename(dir), local: true, dir };
  }
  if (!location.allowRemote) throw new ModelNotInstalledError(dir);
  env.allowLocalModels = false;
  env.allowRemoteModels = true;
  env.cacheDir = join(twinHome(), 'models', 'hub-cache');
  return { modelId: location.remoteModelId ?? HUB_ONNX_MODEL_ID, local: false, dir };
}
