import os from 'node:os';
import path from 'node:path';
import { config as loadDotenv } from 'dotenv';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';

/**
 * A secret value: its string form is always "[redacted]", so it can never leak through logs, JSON or
 * workflow payloads by accident. Call `reveal()` at the one place that needs the real value.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[redacted]';
  }
  toJSON(): string {
    return '[redacted]';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'Secret([redacted])';
  }
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

const secret = z
  .string()
  .min(1, 'must not be empty when set')
  .transform((value) => new Secret(value));

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'expected true or false' })
  .transform((value) => value === 'true' || value === '1' || value === 'yes');

const positiveInt = z.coerce.number({ message: 'expected a whole number' }).int('expected a whole number').positive();

const ipList = z.string().refine(
  (value) =>
    value
      .split(',')
      .map((entry) => entry.trim())
      .filter(Boolean)
      .every((entry) => (entry.includes('/') ? ipaddr.isValidCIDR(entry) : ipaddr.isValid(entry))),
  { message: 'expected a comma list of IP addresses or CIDRs, e.g. 127.0.0.1,10.0.0.0/8' },
);

const url = (protocols: string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    { message: `expected a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` },
  );

const hostPort = z
  .string()
  .regex(/^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/, 'expected host:port, for example 127.0.0.1:7233 or my-ns.tmprl.cloud:7233');

export const TASK_QUEUES = {
  pipelines: 'twin-pipelines',
  etl: 'twin-etl',
  features: 'twin-features',
  llm: 'twin-llm',
  ml: 'twin-ml',
} as const;
export type QueueName = keyof typeof TASK_QUEUES;
export const QUEUE_NAMES = Object.keys(TASK_QUEUES) as QueueName[];

const defaultHome = path.join(os.homedir(), '.cache', 'llm-twin');

/** Every environment variable the platform reads, with its meaning. The README's table is generated from it. */
const envSchema = z.object({
  TWIN_HOME: z.string().default(defaultHome).describe('Where installed services, models and local data live'),
  TWIN_DATA_DIR: z
    .string()
    .optional()
    .describe('Local platform data (dev server DB, FerretDB, Qdrant, artifacts); default $TWIN_HOME/data'),
  LOG_FORMAT: z.enum(['json', 'pretty']).default('json').describe('Log lines as JSON (default) or pretty for people'),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .describe('Log level'),

  TEMPORAL_ADDRESS: hostPort
    .optional()
    .describe('Temporal frontend host:port; unset = `twin dev` starts a local dev server'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default').describe('Temporal namespace'),
  TEMPORAL_TLS: bool
    .default(false)
    .describe('Use TLS to reach Temporal (on automatically with a client cert or API key)'),
  TEMPORAL_TLS_CERT: secret.optional().describe('mTLS client certificate (PEM contents) for Temporal Cloud'),
  TEMPORAL_TLS_KEY: secret.optional().describe('mTLS client key (PEM contents) for Temporal Cloud'),
  TEMPORAL_TLS_CERT_PATH: z.string().optional().describe('mTLS client certificate file, instead of TEMPORAL_TLS_CERT'),
  TEMPORAL_TLS_KEY_PATH: z.string().optional().describe('mTLS client key file, instead of TEMPORAL_TLS_KEY'),
  TEMPORAL_API_KEY: secret.optional().describe('Temporal Cloud API key (instead of mTLS)'),
  TEMPORAL_UI_PORT: positiveInt.default(8233).describe('Port of the local Web UI started by `twin dev`'),
  TEMPORAL_PORT: positiveInt.default(7233).describe('Port of the local dev server started by `twin dev`'),

  MONGODB_URI: secret.optional().describe('MongoDB connection string; unset = `twin dev` starts a local FerretDB'),
  MONGODB_DATABASE: z.string().min(1).default('twin').describe('Warehouse database name'),

  QDRANT_URL: url(['http:', 'https:'])
    .optional()
    .describe('Qdrant REST URL; unset = `twin dev` starts the local stand-in'),
  QDRANT_API_KEY: secret.optional().describe('Qdrant API key'),
  QDRANT_COLLECTION_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]*$/, 'expected letters, digits, _ and -')
    .default('')
    .describe(
      'Prefix of the Qdrant collection names (cleaned_*, embedded_*); several platforms or test runs on one Qdrant',
    ),

  ARTIFACT_STORE: z
    .enum(['local', 's3'])
    .default('local')
    .describe('Where artifacts (datasets, models, reports) are written'),
  ARTIFACT_DIR: z.string().optional().describe('Folder of the local artifact store; default $TWIN_DATA_DIR/artifacts'),
  ARTIFACT_BUCKET: z.string().optional().describe('S3 bucket of the artifact store (ARTIFACT_STORE=s3)'),
  ARTIFACT_PREFIX: z.string().default('').describe('Key prefix inside the artifact bucket or folder'),

  AWS_REGION: z.string().default('us-east-1').describe('AWS region'),
  AWS_ENDPOINT_URL: url(['http:', 'https:']).optional().describe('AWS endpoint override (moto, LocalStack)'),

  OPENAI_API_KEY: secret.optional().describe('API key of the OpenAI-compatible LLM server'),
  OPENAI_BASE_URL: url(['http:', 'https:']).optional().describe('Base URL of the OpenAI-compatible LLM server'),
  LLM_MODEL: z.string().default('gpt-4o-mini').describe('Model name for dataset generation, judging and RAG helpers'),

  EMBEDDING_BACKEND: z
    .enum(['local', 'openai'])
    .default('local')
    .describe('local ONNX all-MiniLM-L6-v2 or an OpenAI-compatible API'),
  EMBEDDING_MODEL_DIR: z
    .string()
    .optional()
    .describe('Local embedding model folder; default $TWIN_HOME/models/all-MiniLM-L6-v2'),
  EMBEDDING_API_MODEL: z
    .string()
    .min(1)
    .default('sentence-transformers/all-MiniLM-L6-v2')
    .describe('Model of the OpenAI-compatible embeddings API (EMBEDDING_BACKEND=openai); must return 384-d vectors'),
  EMBEDDING_API_BASE_URL: url(['http:', 'https:'])
    .optional()
    .describe('Base URL of the OpenAI-compatible embeddings API; default OPENAI_BASE_URL'),
  FEATURES_BATCH_SIZE: positiveInt
    .default(16)
    .describe('Documents per clean/embed activity of featureEngineering (a run can override it)'),

  HF_TOKEN: secret.optional().describe('Hugging Face token (private models, dataset push)'),
  OPIK_API_KEY: secret.optional().describe('Opik API key for prompt monitoring'),
  OPIK_WORKSPACE: z.string().optional().describe('Opik workspace'),
  OPIK_URL_OVERRIDE: url(['http:', 'https:']).optional().describe('Opik URL (self-hosted)'),

  SAGEMAKER_EXECUTION_ROLE_ARN: z.string().optional().describe('IAM role SageMaker jobs and endpoints run as'),
  SAGEMAKER_TRAINING_IMAGE_URI: z
    .string()
    .optional()
    .describe('Training image; default the Hugging Face PyTorch training DLC of AWS_REGION (docs/training.md)'),
  SAGEMAKER_TRAINING_INSTANCE_TYPE: z
    .string()
    .default('ml.g6e.2xlarge')
    .describe('Instance type of SageMaker training jobs'),
  SAGEMAKER_TRAINING_VOLUME_GB: positiveInt.default(100).describe('EBS volume of a training instance (GB)'),
  SAGEMAKER_TRAINING_MAX_RUNTIME_S: positiveInt
    .default(86_400)
    .describe('Stop a SageMaker training job after this many seconds'),
  SAGEMAKER_TRAINING_SPOT: bool
    .default(false)
    .describe('Managed spot training (checkpoints in S3, resumed after interruptions)'),
  SAGEMAKER_TRAINING_MAX_WAIT_S: positiveInt
    .optional()
    .describe('Spot: max seconds to wait for capacity and run; default 2 x max runtime'),
  SAGEMAKER_TRAINING_BUCKET: z
    .string()
    .optional()
    .describe('S3 bucket for training code, data copies, checkpoints and models; default ARTIFACT_BUCKET'),
  SAGEMAKER_MODEL_PACKAGE_GROUP: z
    .string()
    .regex(/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/, 'expected 1-63 letters, digits and hyphens')
    .default('llm-twin')
    .describe('Model Package Group trained models are registered in'),
  SAGEMAKER_INFERENCE_IMAGE_URI: z
    .string()
    .optional()
    .describe('Serving image recorded in model packages; default the Hugging Face TGI DLC of AWS_REGION'),
  TRAINING_BACKEND: z
    .enum(['local', 'sagemaker'])
    .default('local')
    .describe('Where trainModel runs jobs/finetune when the run does not say: local process or SageMaker'),
  TRAINING_PYTHON: z
    .string()
    .optional()
    .describe('Python of the local training backend; default $TWIN_HOME/venv-train/bin/python'),
  TRAINING_DIR: z
    .string()
    .optional()
    .describe('Local training jobs (logs, checkpoints, merged models); default $TWIN_DATA_DIR/training'),
  TRAINING_BASE_MODEL: z
    .string()
    .default('meta-llama/Llama-3.1-8B')
    .describe('Model SFT starts from when the run does not say (Hugging Face id or local folder)'),
  TRAINING_POLL_INTERVAL_S: positiveInt
    .default(30)
    .describe('Seconds between status polls of a SageMaker training job (local jobs: 2 s)'),

  // @settings-schema:rag (issue 8: retrieval, generation, API, traces)
  RAG_TOP_K: positiveInt.default(5).describe('RAG: chunks kept after rerank (a request may ask for another k)'),
  RAG_EXPANSIONS: positiveInt
    .default(3)
    .describe('RAG: queries searched per question: the original plus N-1 LLM rewrites (1 = no expansion)'),
  RAG_SEARCH_LIMIT: positiveInt.default(8).describe('RAG: nearest chunks fetched per query and collection'),
  RAG_CONTEXT_TOKENS: positiveInt.default(2000).describe('RAG: token budget of the context passed to the model'),
  RAG_SELF_QUERY: bool
    .default(true)
    .describe('RAG: extract the author a question is about with the LLM (looked up, never created)'),
  RAG_RERANKER: z
    .enum(['auto', 'cross-encoder', 'none'])
    .default('auto')
    .describe(
      'RAG: rerank with the in-process cross-encoder (auto = when its model is installed) or keep search order',
    ),
  RAG_RERANKER_MODEL_DIR: z
    .string()
    .optional()
    .describe('RAG: cross-encoder ONNX model folder; default $TWIN_HOME/models/ms-marco-MiniLM-L-4-v2'),
  RAG_GENERATOR: z
    .enum(['openai', 'sagemaker', 'endpoint'])
    .default('openai')
    .describe(
      'RAG: answer with an OpenAI-compatible server, a SageMaker endpoint, or what the endpoints collection says',
    ),
  RAG_GENERATOR_BASE_URL: url(['http:', 'https:'])
    .optional()
    .describe('RAG: OpenAI-compatible base URL (incl. /v1) of the generator; default OPENAI_BASE_URL'),
  RAG_GENERATOR_MODEL: z.string().min(1).optional().describe('RAG: model id of the generator; default LLM_MODEL'),
  RAG_SAGEMAKER_ENDPOINT: z.string().optional().describe('RAG: SageMaker endpoint name (RAG_GENERATOR=sagemaker)'),
  RAG_SAGEMAKER_PAYLOAD: z
    .enum(['tgi', 'lmi'])
    .default('tgi')
    .describe('RAG: request/response shape of the SageMaker endpoint container (TGI or LMI/DJL)'),
  RAG_ENDPOINT_NAME: z
    .string()
    .min(1)
    .optional()
    .describe(
      'RAG: _id of the endpoints document to serve from (RAG_GENERATOR=endpoint); default SERVING_ENDPOINT_NAME or llm-twin',
    ),
  RAG_MAX_TOKENS: positiveInt.default(512).describe('RAG: most tokens generated per answer (a request may ask fewer)'),
  RAG_TEMPERATURE: z.coerce.number().min(0).max(2).default(0.3).describe('RAG: sampling temperature of answers'),
  RAG_LLM_TIMEOUT_MS: positiveInt
    .default(60_000)
    .describe('RAG: timeout of one LLM call (self-query, expansion, generation)'),
  RAG_TRACES: bool.default(true).describe('RAG: store a trace of every request in the MongoDB traces collection'),
  RAG_EVAL_SAMPLE_RATE: z.coerce
    .number()
    .min(0)
    .max(1)
    .default(0)
    .describe('RAG: fraction of answered requests copied into rag_eval_samples for evaluation (0..1)'),
  // @settings-schema:evaluation (issue 7: evaluateModel)
  EVAL_MIN_ACCURACY: z.coerce
    .number()
    .min(1)
    .max(3)
    .default(2)
    .describe('evaluateModel gate: lowest mean judge accuracy (1-3) a model must reach (a run can override it)'),
  EVAL_MIN_STYLE: z.coerce
    .number()
    .min(1)
    .max(3)
    .default(2)
    .describe('evaluateModel gate: lowest mean judge style score (1-3) a model must reach (a run can override it)'),
  EVAL_MIN_FAITHFULNESS: z.coerce
    .number()
    .min(1)
    .max(3)
    .optional()
    .describe('evaluateModel gate: lowest mean RAG faithfulness (1-3); unset = reported, not gated'),
  EVAL_MIN_CONTEXT_RELEVANCE: z.coerce
    .number()
    .min(1)
    .max(3)
    .optional()
    .describe('evaluateModel gate: lowest mean RAG context relevance (1-3); unset = reported, not gated'),
  EVAL_MAX_JUDGE_FAILURE_RATE: z.coerce
    .number()
    .min(0)
    .max(1)
    .default(0.1)
    .describe('evaluateModel gate: fail when more than this share of judge calls failed (invalid JSON, out of range)'),
  EVAL_MAX_SAMPLES: positiveInt
    .default(200)
    .describe('evaluateModel: test-split rows evaluated (a run can set its own maxSamples)'),
  EVAL_MAX_NEW_TOKENS: positiveInt
    .default(512)
    .describe('evaluateModel: most tokens the candidate generates per answer'),
  EVAL_TEMPERATURE: z.coerce
    .number()
    .min(0)
    .max(2)
    .default(0)
    .describe('evaluateModel: sampling temperature of the candidate (0 = greedy, reproducible)'),
  EVAL_GENERATION_BATCH_SIZE: positiveInt
    .default(8)
    .describe('evaluateModel: prompts per batch of the local generator (jobs/evaluate/generate.py)'),
  EVAL_GENERATION_CONCURRENCY: positiveInt
    .default(4)
    .describe('evaluateModel: answers requested at once from an OpenAI-compatible server or SageMaker endpoint'),
  EVAL_GENERATOR_BASE_URL: url(['http:', 'https:'])
    .optional()
    .describe('evaluateModel: OpenAI-compatible base URL (incl. /v1) serving the candidate (generator backend openai)'),
  EVAL_SAGEMAKER_ENDPOINT: z
    .string()
    .optional()
    .describe(
      'evaluateModel: SageMaker endpoint serving the candidate (generator backend sagemaker); default SERVING_ENDPOINT_NAME',
    ),
  EVAL_JUDGE_MODEL: z.string().min(1).optional().describe('evaluateModel: judge model; default LLM_MODEL'),
  EVAL_JUDGE_BASE_URL: url(['http:', 'https:'])
    .optional()
    .describe('evaluateModel: OpenAI-compatible base URL of the judge; default OPENAI_BASE_URL'),
  EVAL_JUDGE_CONCURRENCY: positiveInt.default(4).describe('evaluateModel: judge requests in flight at once'),
  EVAL_JUDGE_REQUESTS_PER_MINUTE: positiveInt
    .optional()
    .describe('evaluateModel: judge requests per minute (every HTTP attempt counted); unset = no limit'),
  EVAL_JUDGE_ATTEMPTS: positiveInt
    .default(2)
    .describe('evaluateModel: judge completions per sample before an invalid answer counts as a judge failure'),
  EVAL_RAG_QUESTIONS: z
    .string()
    .optional()
    .describe('evaluateModel: RAG question set (YAML/JSON); default configs/evaluation/rag-questions.yaml'),
  EVAL_RAG_MAX_QUESTIONS: positiveInt
    .default(50)
    .describe('evaluateModel: RAG questions/samples judged per run (file questions first, then rag_eval_samples)'),
  EVAL_DIR: z
    .string()
    .optional()
    .describe(
      'evaluateModel: local scratch for the local generator (inputs, answers); default $TWIN_DATA_DIR/evaluation',
    ),
  // @settings-schema:serving (issue 7: deployModel, endpoints)
  SERVING_BACKEND: z
    .enum(['local', 'sagemaker'])
    .default('local')
    .describe('deployModel: where a model version is served when the input names no backend'),
  SERVING_ENDPOINT_NAME: z
    .string()
    .regex(/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/, 'letters, digits and hyphens, at most 63')
    .default('llm-twin')
    .describe('deployModel: endpoint name (the endpoints document _id, and the SageMaker endpoint name)'),
  SERVING_DIR: z
    .string()
    .optional()
    .describe('Local model servers (pid, port, log per server); default $TWIN_DATA_DIR/serving'),
  SERVING_PYTHON: z
    .string()
    .optional()
    .describe('Python of the local model server (jobs/serve/server.py); default TRAINING_PYTHON'),
  SERVING_HOST: z.string().default('127.0.0.1').describe('Address the local model server listens on'),
  SERVING_DEVICE: z
    .enum(['auto', 'cpu', 'cuda'])
    .default('auto')
    .describe('Device of the local model server (auto = CUDA when available)'),
  SERVING_STARTUP_TIMEOUT_S: positiveInt
    .default(600)
    .describe('deployModel: how long a local server may take to load the model and answer /health'),
  SERVING_SMOKE_PROMPT: z
    .string()
    .min(1)
    .default('Write one sentence about what an LLM twin is.')
    .describe('deployModel: the instruction of the smoke invocation (rendered with the chat template)'),
  SERVING_SMOKE_MAX_TOKENS: positiveInt.default(16).describe('deployModel: tokens generated by the smoke invocation'),
  SERVING_SMOKE_TIMEOUT_S: positiveInt.default(120).describe('deployModel: timeout of the smoke invocation'),
  SAGEMAKER_ENDPOINT_CONTAINER: z
    .enum(['tgi', 'lmi'])
    .default('tgi')
    .describe('Serving container of SageMaker endpoints: Hugging Face TGI or LMI (DJL, vLLM rolling batch)'),
  SAGEMAKER_ENDPOINT_IMAGE_URI: z
    .string()
    .optional()
    .describe('Serving image of SageMaker endpoints; default the TGI (or LMI) Deep Learning Container of the region'),
  SAGEMAKER_ENDPOINT_INSTANCE_TYPE: z
    .string()
    .default('ml.g5.2xlarge')
    .describe('Instance type of SageMaker endpoints (1x A10G 24 GB: an 8B model in bf16)'),
  SAGEMAKER_ENDPOINT_INSTANCE_COUNT: positiveInt.default(1).describe('Initial instance count of a SageMaker endpoint'),
  SAGEMAKER_ENDPOINT_NUM_GPUS: positiveInt
    .default(1)
    .describe('SM_NUM_GPUS of the serving container (tensor parallel)'),
  SAGEMAKER_ENDPOINT_MAX_INPUT_TOKENS: positiveInt.default(2048).describe('Serving container: most prompt tokens'),
  SAGEMAKER_ENDPOINT_MAX_TOTAL_TOKENS: positiveInt
    .default(4096)
    .describe('Serving container: most prompt + generated tokens per request'),
  SAGEMAKER_ENDPOINT_MAX_BATCH_TOTAL_TOKENS: positiveInt
    .default(8192)
    .describe('Serving container: most tokens in one batch (TGI MAX_BATCH_TOTAL_TOKENS)'),
  SAGEMAKER_ENDPOINT_STARTUP_TIMEOUT_S: positiveInt
    .default(900)
    .describe('ContainerStartupHealthCheckTimeoutInSeconds (download + load of the model)'),
  SAGEMAKER_ENDPOINT_ROLLBACK_ALARMS: z
    .string()
    .default('')
    .describe('Comma-separated CloudWatch alarm names whose ALARM state rolls a blue/green update back'),
  SAGEMAKER_ENDPOINT_TRAFFIC_ROUTING: z
    .enum(['ALL_AT_ONCE', 'CANARY', 'LINEAR'])
    .default('ALL_AT_ONCE')
    .describe('Blue/green traffic shifting of an endpoint update'),
  SAGEMAKER_ENDPOINT_CANARY_PERCENT: positiveInt
    .max(100)
    .default(10)
    .describe('CANARY/LINEAR: percent of capacity shifted per step'),
  SAGEMAKER_ENDPOINT_WAIT_INTERVAL_S: positiveInt
    .default(300)
    .describe('CANARY/LINEAR: seconds between traffic shifting steps'),
  SAGEMAKER_ENDPOINT_BAKE_S: z.coerce
    .number()
    .int()
    .min(0)
    .max(3600)
    .default(300)
    .describe('Blue/green: seconds the old fleet is kept after all traffic moved (TerminationWaitInSeconds)'),
  SAGEMAKER_ENDPOINT_POLL_INTERVAL_S: positiveInt
    .default(30)
    .describe('deployModel: seconds between DescribeEndpoint polls while waiting for InService'),
  SAGEMAKER_ENDPOINT_KEEP_FAILED: bool
    .default(false)
    .describe(
      'deployModel: keep a new endpoint whose first smoke test failed (it bills until deleted) and an endpoint SageMaker left Failed; default: delete them (config, model and CloudWatch logs stay)',
    ),
  SAGEMAKER_ENDPOINT_AUTOSCALING: bool
    .default(true)
    .describe('Register the endpoint variant with Application Auto Scaling'),
  SAGEMAKER_ENDPOINT_MIN_INSTANCES: positiveInt.default(1).describe('Autoscaling: minimum instances'),
  SAGEMAKER_ENDPOINT_MAX_INSTANCES: positiveInt.default(2).describe('Autoscaling: maximum instances'),
  SAGEMAKER_ENDPOINT_TARGET_INVOCATIONS: z.coerce
    .number()
    .positive()
    .default(10)
    .describe('Autoscaling: target of SageMakerVariantInvocationsPerInstance (per instance per minute)'),
  SAGEMAKER_ENDPOINT_SCALE_IN_COOLDOWN_S: z.coerce
    .number()
    .int()
    .min(0)
    .default(300)
    .describe('Autoscaling: scale-in cooldown (s)'),
  SAGEMAKER_ENDPOINT_SCALE_OUT_COOLDOWN_S: z.coerce
    .number()
    .int()
    .min(0)
    .default(60)
    .describe('Autoscaling: scale-out cooldown (s)'),
  // @settings-schema:schedules (issue 7: continuousTraining, schedules)
  TRAIN_ON_NEW_DATASET: bool
    .default(false)
    .describe('generateDatasets starts continuousTraining when it registers a new dataset version'),
  CONTINUOUS_TRAINING_SCHEDULE: z
    .string()
    .default('configs/schedules/continuous-training.yaml')
    .describe(
      'Schedule spec whose continuousTraining input the new-dataset trigger uses (relative to the working dir)',
    ),
  API_KEYS: secret.optional().describe('Comma-separated bearer keys accepted by the RAG API'),
  API_PORT: positiveInt.default(8000).describe('Port of the RAG API'),
  API_HOST: z
    .string()
    .min(1)
    .default('0.0.0.0')
    .describe('Interface the RAG API listens on (`twin serve` uses 127.0.0.1)'),
  API_ALLOW_NO_KEYS: bool
    .default(false)
    .describe('Local development only: start the RAG API without API_KEYS and accept every request unauthenticated'),
  API_RATE_LIMIT: positiveInt
    .default(120)
    .describe('Requests per API key (per client IP without keys) per API_RATE_LIMIT_WINDOW_S on /rag and /v1/*'),
  API_RATE_LIMIT_WINDOW_S: positiveInt.default(60).describe('Window of API_RATE_LIMIT, in seconds'),
  API_BODY_LIMIT_BYTES: positiveInt.default(65_536).describe('Largest request body the RAG API accepts (413 above)'),

  ETL_SSRF_ALLOW: ipList
    .default('')
    .describe(
      'Comma list of IPs/CIDRs the crawler may fetch although not public (tests, internal mirrors); default none',
    ),
  ETL_RESPECT_ROBOTS: bool.default(true).describe('Crawler respects robots.txt (turn off only for sites you own)'),
  ETL_POLITENESS: bool
    .default(true)
    .describe('Per-host crawl politeness: 2 requests in flight and 500 ms between starts per host'),
  ETL_GITHUB_CLONE_URL: z
    .string()
    .regex(/\{owner\}.*\{repo\}/, 'expected a URL with {owner} and {repo}')
    .optional()
    .describe('Clone URL template for GitHub repositories (a mirror), e.g. https://git.example.com/{owner}/{repo}.git'),

  TWIN_WORKER_QUEUES: z
    .string()
    .default('all')
    .describe('Queues this worker process serves: all, or a comma list of pipelines,etl,features,llm,ml'),
  TWIN_WORKFLOW_BUNDLE: z
    .string()
    .optional()
    .describe('Prebuilt workflow bundle file (production); unset = bundle at start'),
  TWIN_WORKER_DEPLOYMENT: z.string().min(1).default('llm-twin').describe('Worker Deployment name (Worker Versioning)'),
  TWIN_WORKER_BUILD_ID: z
    .string()
    .min(1)
    .optional()
    .describe('Build id of this worker version; set = Worker Versioning on (pinned workflows)'),
  WORKER_HEARTBEAT_FLUSH_SECONDS: positiveInt
    .default(10)
    .describe(
      'Longest delay before an activity heartbeat (training phase, progress) reaches the server and the Web UI',
    ),
  WORKER_ETL_CONCURRENCY: positiveInt.default(16).describe('Max concurrent activities on twin-etl'),
  WORKER_FEATURES_CONCURRENCY: positiveInt.default(2).describe('Max concurrent activities on twin-features'),
  WORKER_LLM_CONCURRENCY: positiveInt.default(8).describe('Max concurrent activities on twin-llm'),
  WORKER_LLM_RATE_PER_SECOND: z.coerce
    .number()
    .positive()
    .default(5)
    .describe('Task-queue-wide activity starts per second on twin-llm'),
  WORKER_ML_CONCURRENCY: positiveInt.default(2).describe('Max concurrent activities on twin-ml'),
  WORKER_PIPELINES_CONCURRENCY: positiveInt.default(50).describe('Max concurrent workflow tasks on twin-pipelines'),
});

export type Env = z.input<typeof envSchema>;
export const ENV_VARIABLES = Object.entries(envSchema.shape).map(([name, schema]) => ({
  name,
  description: schema.description ?? '',
}));

function parseQueues(value: string): QueueName[] {
  if (value.trim() === 'all') return [...QUEUE_NAMES];
  const names = value
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  const unknown = names.filter((name) => !(QUEUE_NAMES as string[]).includes(name));
  if (unknown.length > 0 || names.length === 0) {
    throw new ConfigError([
      `TWIN_WORKER_QUEUES: unknown queue ${unknown.map((n) => `"${n}"`).join(', ') || '(empty)'}; expected "all" or a comma list of ${QUEUE_NAMES.join(', ')}`,
    ]);
  }
  return names as QueueName[];
}

function buildSettings(env: z.output<typeof envSchema>) {
  const dataDir = env.TWIN_DATA_DIR ?? path.join(env.TWIN_HOME, 'data');
  const problems: string[] = [];
  if (env.ARTIFACT_STORE === 's3' && !env.ARTIFACT_BUCKET) {
    problems.push(
      'ARTIFACT_BUCKET: required when ARTIFACT_STORE=s3 (the bucket that holds datasets, models and reports)',
    );
  }
  if (
    Boolean(env.TEMPORAL_TLS_CERT ?? env.TEMPORAL_TLS_CERT_PATH) !==
    Boolean(env.TEMPORAL_TLS_KEY ?? env.TEMPORAL_TLS_KEY_PATH)
  ) {
    problems.push(
      'TEMPORAL_TLS_CERT / TEMPORAL_TLS_KEY: set both the client certificate and its key for mTLS, or neither',
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return {
    home: env.TWIN_HOME,
    dataDir,
    logLevel: env.LOG_LEVEL,
    temporal: {
      address: env.TEMPORAL_ADDRESS,
      namespace: env.TEMPORAL_NAMESPACE,
      tls: env.TEMPORAL_TLS || Boolean(env.TEMPORAL_TLS_CERT ?? env.TEMPORAL_TLS_CERT_PATH ?? env.TEMPORAL_API_KEY),
      clientCert: env.TEMPORAL_TLS_CERT,
      clientKey: env.TEMPORAL_TLS_KEY,
      clientCertPath: env.TEMPORAL_TLS_CERT_PATH,
      clientKeyPath: env.TEMPORAL_TLS_KEY_PATH,
      apiKey: env.TEMPORAL_API_KEY,
      devServerPort: env.TEMPORAL_PORT,
      uiPort: env.TEMPORAL_UI_PORT,
    },
    mongo: { uri: env.MONGODB_URI, database: env.MONGODB_DATABASE },
    qdrant: { url: env.QDRANT_URL, apiKey: env.QDRANT_API_KEY, collectionPrefix: env.QDRANT_COLLECTION_PREFIX },
    artifacts: {
      store: env.ARTIFACT_STORE,
      dir: env.ARTIFACT_DIR ?? path.join(dataDir, 'artifacts'),
      bucket: env.ARTIFACT_BUCKET,
      prefix: env.ARTIFACT_PREFIX,
    },
    aws: { region: env.AWS_REGION, endpoint: env.AWS_ENDPOINT_URL },
    llm: { apiKey: env.OPENAI_API_KEY, baseUrl: env.OPENAI_BASE_URL, model: env.LLM_MODEL },
    embedding: {
      backend: env.EMBEDDING_BACKEND,
      modelDir: env.EMBEDDING_MODEL_DIR ?? path.join(env.TWIN_HOME, 'models', 'all-MiniLM-L6-v2'),
      apiModel: env.EMBEDDING_API_MODEL,
      apiBaseUrl: env.EMBEDDING_API_BASE_URL ?? env.OPENAI_BASE_URL,
      apiKey: env.OPENAI_API_KEY,
    },
    features: { batchSize: env.FEATURES_BATCH_SIZE },
    huggingFace: { token: env.HF_TOKEN },
    opik: { apiKey: env.OPIK_API_KEY, workspace: env.OPIK_WORKSPACE, url: env.OPIK_URL_OVERRIDE },
    sagemaker: { executionRoleArn: env.SAGEMAKER_EXECUTION_ROLE_ARN },
    training: {
      backend: env.TRAINING_BACKEND,
      python: env.TRAINING_PYTHON ?? path.join(env.TWIN_HOME, 'venv-train', 'bin', 'python'),
      dir: env.TRAINING_DIR ?? path.join(dataDir, 'training'),
      baseModel: env.TRAINING_BASE_MODEL,
      pollIntervalSeconds: env.TRAINING_POLL_INTERVAL_S,
      sagemaker: {
        imageUri: env.SAGEMAKER_TRAINING_IMAGE_URI,
        instanceType: env.SAGEMAKER_TRAINING_INSTANCE_TYPE,
        volumeSizeGb: env.SAGEMAKER_TRAINING_VOLUME_GB,
        maxRuntimeSeconds: env.SAGEMAKER_TRAINING_MAX_RUNTIME_S,
        spot: env.SAGEMAKER_TRAINING_SPOT,
        maxWaitSeconds: env.SAGEMAKER_TRAINING_MAX_WAIT_S,
        bucket: env.SAGEMAKER_TRAINING_BUCKET,
        modelPackageGroup: env.SAGEMAKER_MODEL_PACKAGE_GROUP,
        inferenceImageUri: env.SAGEMAKER_INFERENCE_IMAGE_URI,
      },
    },
    // @settings-build:rag
    rag: {
      topK: env.RAG_TOP_K,
      expansions: env.RAG_EXPANSIONS,
      searchLimit: env.RAG_SEARCH_LIMIT,
      contextTokens: env.RAG_CONTEXT_TOKENS,
      selfQuery: env.RAG_SELF_QUERY,
      reranker: env.RAG_RERANKER,
      rerankerModelDir: env.RAG_RERANKER_MODEL_DIR ?? path.join(env.TWIN_HOME, 'models', 'ms-marco-MiniLM-L-4-v2'),
      generator: env.RAG_GENERATOR,
      generatorBaseUrl: env.RAG_GENERATOR_BASE_URL ?? env.OPENAI_BASE_URL,
      generatorModel: env.RAG_GENERATOR_MODEL ?? env.LLM_MODEL,
      sagemakerEndpoint: env.RAG_SAGEMAKER_ENDPOINT,
      sagemakerPayload: env.RAG_SAGEMAKER_PAYLOAD,
      endpointName:
        env.RAG_ENDPOINT_NAME ?? (env as { SERVING_ENDPOINT_NAME?: string }).SERVING_ENDPOINT_NAME ?? 'llm-twin',
      maxTokens: env.RAG_MAX_TOKENS,
      temperature: env.RAG_TEMPERATURE,
      llmTimeoutMs: env.RAG_LLM_TIMEOUT_MS,
      traces: env.RAG_TRACES,
      evalSampleRate: env.RAG_EVAL_SAMPLE_RATE,
    },
    // @settings-build:evaluation
    evaluation: {
      thresholds: {
        accuracy: env.EVAL_MIN_ACCURACY,
        style: env.EVAL_MIN_STYLE,
        faithfulness: env.EVAL_MIN_FAITHFULNESS,
        contextRelevance: env.EVAL_MIN_CONTEXT_RELEVANCE,
      },
      maxJudgeFailureRate: env.EVAL_MAX_JUDGE_FAILURE_RATE,
      maxSamples: env.EVAL_MAX_SAMPLES,
      maxNewTokens: env.EVAL_MAX_NEW_TOKENS,
      temperature: env.EVAL_TEMPERATURE,
      generationBatchSize: env.EVAL_GENERATION_BATCH_SIZE,
      generationConcurrency: env.EVAL_GENERATION_CONCURRENCY,
      generatorBaseUrl: env.EVAL_GENERATOR_BASE_URL,
      sagemakerEndpoint: env.EVAL_SAGEMAKER_ENDPOINT,
      judge: {
        model: env.EVAL_JUDGE_MODEL ?? env.LLM_MODEL,
        baseUrl: env.EVAL_JUDGE_BASE_URL ?? env.OPENAI_BASE_URL,
        apiKey: env.OPENAI_API_KEY,
        concurrency: env.EVAL_JUDGE_CONCURRENCY,
        requestsPerMinute: env.EVAL_JUDGE_REQUESTS_PER_MINUTE,
        attempts: env.EVAL_JUDGE_ATTEMPTS,
      },
      ragQuestions: env.EVAL_RAG_QUESTIONS,
      ragMaxQuestions: env.EVAL_RAG_MAX_QUESTIONS,
      dir: env.EVAL_DIR ?? path.join(dataDir, 'evaluation'),
    },
    // @settings-build:serving
    serving: {
      backend: env.SERVING_BACKEND,
      endpointName: env.SERVING_ENDPOINT_NAME,
      dir: env.SERVING_DIR ?? path.join(dataDir, 'serving'),
      python: env.SERVING_PYTHON ?? env.TRAINING_PYTHON ?? path.join(env.TWIN_HOME, 'venv-train', 'bin', 'python'),
      host: env.SERVING_HOST,
      device: env.SERVING_DEVICE,
      startupTimeoutSeconds: env.SERVING_STARTUP_TIMEOUT_S,
      smoke: {
        prompt: env.SERVING_SMOKE_PROMPT,
        maxTokens: env.SERVING_SMOKE_MAX_TOKENS,
        timeoutSeconds: env.SERVING_SMOKE_TIMEOUT_S,
      },
      sagemaker: {
        container: env.SAGEMAKER_ENDPOINT_CONTAINER,
        imageUri: env.SAGEMAKER_ENDPOINT_IMAGE_URI,
        instanceType: env.SAGEMAKER_ENDPOINT_INSTANCE_TYPE,
        instanceCount: env.SAGEMAKER_ENDPOINT_INSTANCE_COUNT,
        numGpus: env.SAGEMAKER_ENDPOINT_NUM_GPUS,
        maxInputTokens: env.SAGEMAKER_ENDPOINT_MAX_INPUT_TOKENS,
        maxTotalTokens: env.SAGEMAKER_ENDPOINT_MAX_TOTAL_TOKENS,
        maxBatchTotalTokens: env.SAGEMAKER_ENDPOINT_MAX_BATCH_TOTAL_TOKENS,
        startupTimeoutSeconds: env.SAGEMAKER_ENDPOINT_STARTUP_TIMEOUT_S,
        rollbackAlarms: env.SAGEMAKER_ENDPOINT_ROLLBACK_ALARMS.split(',')
          .map((name) => name.trim())
          .filter(Boolean),
        trafficRouting: env.SAGEMAKER_ENDPOINT_TRAFFIC_ROUTING,
        canaryPercent: env.SAGEMAKER_ENDPOINT_CANARY_PERCENT,
        waitIntervalSeconds: env.SAGEMAKER_ENDPOINT_WAIT_INTERVAL_S,
        bakeSeconds: env.SAGEMAKER_ENDPOINT_BAKE_S,
        pollIntervalSeconds: env.SAGEMAKER_ENDPOINT_POLL_INTERVAL_S,
        keepFailedEndpoint: env.SAGEMAKER_ENDPOINT_KEEP_FAILED,
        autoscaling: {
          enabled: env.SAGEMAKER_ENDPOINT_AUTOSCALING,
          minInstances: env.SAGEMAKER_ENDPOINT_MIN_INSTANCES,
          maxInstances: env.SAGEMAKER_ENDPOINT_MAX_INSTANCES,
          targetInvocationsPerInstance: env.SAGEMAKER_ENDPOINT_TARGET_INVOCATIONS,
          scaleInCooldownSeconds: env.SAGEMAKER_ENDPOINT_SCALE_IN_COOLDOWN_S,
          scaleOutCooldownSeconds: env.SAGEMAKER_ENDPOINT_SCALE_OUT_COOLDOWN_S,
        },
      },
    },
    // @settings-build:schedules
    schedules: {
      trainOnNewDataset: env.TRAIN_ON_NEW_DATASET,
      continuousTrainingSpec: env.CONTINUOUS_TRAINING_SCHEDULE,
    },
    api: {
      keys: env.API_KEYS
        ? env.API_KEYS.reveal()
            .split(',')
            .map((key) => key.trim())
            .filter(Boolean)
            .map((key) => new Secret(key))
        : [],
      port: env.API_PORT,
      host: env.API_HOST,
      allowNoKeys: env.API_ALLOW_NO_KEYS,
      rateLimit: { max: env.API_RATE_LIMIT, windowSeconds: env.API_RATE_LIMIT_WINDOW_S },
      bodyLimitBytes: env.API_BODY_LIMIT_BYTES,
    },
    etl: {
      ssrfAllow: env.ETL_SSRF_ALLOW.split(',')
        .map((entry) => entry.trim())
        .filter(Boolean),
      respectRobots: env.ETL_RESPECT_ROBOTS,
      politeness: env.ETL_POLITENESS,
      githubCloneUrl: env.ETL_GITHUB_CLONE_URL,
    },
    workers: {
      queues: parseQueues(env.TWIN_WORKER_QUEUES),
      workflowBundle: env.TWIN_WORKFLOW_BUNDLE,
      deployment: env.TWIN_WORKER_BUILD_ID
        ? { deploymentName: env.TWIN_WORKER_DEPLOYMENT, buildId: env.TWIN_WORKER_BUILD_ID }
        : undefined,
      concurrency: {
        pipelines: env.WORKER_PIPELINES_CONCURRENCY,
        etl: env.WORKER_ETL_CONCURRENCY,
        features: env.WORKER_FEATURES_CONCURRENCY,
        llm: env.WORKER_LLM_CONCURRENCY,
        ml: env.WORKER_ML_CONCURRENCY,
      } satisfies Record<QueueName, number>,
      llmActivitiesPerSecond: env.WORKER_LLM_RATE_PER_SECOND,
      heartbeatFlushSeconds: env.WORKER_HEARTBEAT_FLUSH_SECONDS,
    },
  };
}

export type Settings = ReturnType<typeof buildSettings>;

/** One line per problem: `NAME: what is wrong (got "value")`, never echoing a secret's value. */
function describeIssues(error: z.ZodError, source: Record<string, string | undefined>): string[] {
  return error.issues.map((issue) => {
    const name = String(issue.path[0] ?? '?');
    const raw = source[name];
    const isSecret = /KEY|TOKEN|SECRET|PASSWORD|URI|CERT/.test(name);
    const shown = raw === undefined || isSecret ? '' : ` (got "${raw}")`;
    return `${name}: ${issue.message}${shown}`;
  });
}

/** Parses settings from an environment map. Empty strings count as unset. */
export function parseSettings(source: Record<string, string | undefined> = process.env): Settings {
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, value]) => value !== undefined && value !== ''));
  const result = envSchema.safeParse(cleaned);
  if (!result.success) throw new ConfigError(describeIssues(result.error, cleaned));
  return buildSettings(result.data);
}

let cached: Settings | undefined;

/** Settings of this process: `.env` (if present) under the real environment, parsed once. */
export function settings(): Settings {
  if (!cached) {
    loadDotenv({ quiet: true });
    cached = parseSettings(process.env);
  }
  return cached;
}

export function resetSettingsForTests(): void {
  cached = undefined;
}
