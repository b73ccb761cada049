import { z } from 'zod';
import { sha256, stableStringify } from '../domain/artifacts';
import { readJobFile } from './job-files';

export const TRAINING_MODES = ['sft', 'dpo'] as const;
export type TrainingMode = (typeof TRAINING_MODES)[number];
export const TRAINING_BACKENDS = ['local', 'sagemaker'] as const;
export type TrainingBackendName = (typeof TRAINING_BACKENDS)[number];

export type HyperparameterValue = string | number | boolean;
export type Hyperparameters = Record<string, HyperparameterValue>;

const positiveInt = z.number().int().positive();
const fraction = z.number().min(0).max(1);

/**
 * Hyperparameters of jobs/finetune/train.py. Names are train.py's (`--name value`, as SageMaker script mode passes
 * them); defaults live in jobs/finetune/defaults.json, read by both sides. Unknown names are rejected here, before
 * any job starts.
 */
export const hyperparametersSchema = z
  .object({
    num_train_epochs: z.number().positive(),
    max_steps: z.number().int().min(-1),
    learning_rate: z.number().positive().max(1),
    per_device_train_batch_size: positiveInt,
    gradient_accumulation_steps: positiveInt,
    max_length: positiveInt,
    lora_r: positiveInt,
    lora_alpha: z.number().positive(),
    lora_dropout: fraction,
    lora_target_modules: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    warmup_steps: z.number().int().min(0),
    lr_scheduler_type: z.string().min(1),
    weight_decay: z.number().min(0),
    optim: z.string().min(1),
    seed: z.number().int().min(0),
    logging_steps: positiveInt,
    bf16: z.union([z.boolean(), z.literal('auto')]),
    gradient_checkpointing: z.boolean(),
    merge: z.boolean(),
    save_model: z.boolean(),
    general_dataset: z.string(),
    general_dataset_ratio: z.number().min(0).max(100),
    max_train_samples: z.number().int().min(0),
    random_init_from_config: z.string(),
    beta: z.number().positive(),
  })
  .partial()
  .strict();
export type HyperparameterOverrides = z.input<typeof hyperparametersSchema>;

/** A 1-epoch LoRA run on a 2-layer model: seconds on a CPU (the offline demo and the tests' tiny model). */
export const TINY_MODEL_HYPERPARAMETERS = {
  num_train_epochs: 1,
  per_device_train_batch_size: 4,
  gradient_accumulation_steps: 1,
  max_length: 256,
  gradient_checkpointing: false,
  warmup_steps: 0,
  learning_rate: 0.001,
} as const satisfies HyperparameterOverrides;

interface DefaultsFile {
  common: Hyperparameters;
  sft: Hyperparameters;
  dpo: Hyperparameters;
}

export function hyperparameterDefaults(mode: TrainingMode): Hyperparameters {
  const file = JSON.parse(readJobFile('defaults.json')) as DefaultsFile;
  return { ...file.common, ...file[mode] };
}

export class InvalidTrainingInput extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidTrainingInput';
  }
}

/** defaults.json (common + mode) with the validated overrides on top: what the job will actually run with. */
export function effectiveHyperparameters(mode: TrainingMode, overrides: unknown = {}): Hyperparameters {
  const parsed = hyperparametersSchema.safeParse(overrides ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown hyperparameter ${issue.keys.map((k) => `"${k}"`).join(', ')}`
        : `${issue.path.join('.')}: ${issue.message}`,
    );
    throw new InvalidTrainingInput(`invalid hyperparameters: ${problems.join('; ')}`);
  }
  if (mode === 'sft' && parsed.data.beta !== undefined) throw new InvalidTrainingInput('beta applies to dpo only');
  if (mode === 'dpo' && (parsed.data.general_dataset_ratio ?? 0) > 0) {
    throw new InvalidTrainingInput('general_dataset mixing applies to sft only');
  }
  const merged: Hyperparameters = { ...hyperparameterDefaults(mode) };
  for (const [name, value] of Object.entries(parsed.data)) {
    if (value === undefined) continue;
    merged[name] = Array.isArray(value) ? value.join(',') : value;
  }
  return merged;
}

/** The hyperparameters a job is given: sorted by name, empty strings (= "not used", train.py's default) left out. */
export function hyperparameterEntries(hyperparameters: Hyperparameters): [string, HyperparameterValue][] {
  return Object.entries(hyperparameters)
    .filter(([, value]) => value !== '')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** `--name value` arguments, the form SageMaker's training toolkit passes hyperparameters to the script. */
export function hyperparameterArgs(hyperparameters: Hyperparameters): string[] {
  return hyperparameterEntries(hyperparameters).flatMap(([name, value]) => [`--${name}`, String(value)]);
}

/** What a backend needs to run one training job; small and JSON-able (it travels through workflow history). */
export interface TrainingJobSpec {
  jobName: string;
  mode: TrainingMode;
  /** Hugging Face id, `file://` folder or `s3://…/model.tar.gz` of the model to start from. */
  baseModel: string;
  hyperparameters: Hyperparameters;
  /** `file://` or `s3://` URIs of the JSONL splits (train required). */
  data: { train: string; test?: string };
  /** The job code packaged for SageMaker (`s3://…/sourcedir.tar.gz`) and its sha256. */
  sourceDir?: { uri: string; checksum: string };
  /** Tags for the cloud job (workflow id, dataset version, …). */
  tags?: Record<string, string>;
}

/**
 * Training job names: derived from the workflow id and the job's inputs, so a retried or replayed start finds the
 * same job and different inputs never collide. SageMaker allows 63 characters of [a-zA-Z0-9-]; the hash suffix keeps
 * names unique when the readable part is cut.
 */
export function trainingJobName(workflowId: string, mode: TrainingMode, inputs: unknown): string {
  const hash = sha256(`${workflowId}\n${stableStringify(inputs)}`).slice(0, 10);
  const prefix = `twin-${mode}-`;
  const room = 63 - prefix.length - 1 - hash.length;
  const slug = workflowId
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, room)
    .replace(/-+$/, '');
  return slug ? `${prefix}${slug}-${hash}` : `${prefix}${hash}`;
}

export const JOB_NAME_PATTERN = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;
