import { readFileSync } from 'node:fs';
import path from 'node:path';
import { aws_logs as logs } from 'aws-cdk-lib';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { QUEUE_NAMES, type QueueName } from '../../src/config';

/**
 * Typed deployment configuration of the CDK app. Defaults live in {@link DEFAULT_DEPLOY_CONFIG}; a user
 * overrides any part of it with a JSON/YAML file (`-c twin:config=cdk/config/prod.yaml`) and a few common
 * values with single context keys (`-c twin:certificateArn=...`). Everything is validated before synthesis,
 * with messages that name the offending key.
 */

/** Application secrets: one Secrets Manager secret each, whose JSON keys are the environment variable names. */
export const SECRET_KEYS = {
  temporal: ['TEMPORAL_API_KEY', 'TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY'],
  mongodb: ['MONGODB_URI'],
  qdrant: ['QDRANT_API_KEY'],
  openai: ['OPENAI_API_KEY'],
  huggingface: ['HF_TOKEN'],
  opik: ['OPIK_API_KEY'],
  api: ['API_KEYS'],
} as const satisfies Record<string, readonly string[]>;
export type SecretName = keyof typeof SECRET_KEYS;
const SECRET_NAMES = Object.keys(SECRET_KEYS) as [SecretName, ...SecretName[]];

/** Valid Fargate task sizes: CPU units → allowed memory (MiB). */
const FARGATE_MEMORY: Record<number, (memory: number) => boolean> = {
  256: (m) => [512, 1024, 2048].includes(m),
  512: (m) => m >= 1024 && m <= 4096 && m % 1024 === 0,
  1024: (m) => m >= 2048 && m <= 8192 && m % 1024 === 0,
  2048: (m) => m >= 4096 && m <= 16384 && m % 1024 === 0,
  4096: (m) => m >= 8192 && m <= 30720 && m % 1024 === 0,
  8192: (m) => m >= 16384 && m <= 61440 && m % 4096 === 0,
  16384: (m) => m >= 32768 && m <= 122880 && m % 8192 === 0,
};

const count = z.number().int().min(0);

const serviceSize = z.object({
  cpu: z.number().int(),
  memoryMiB: z.number().int(),
  desiredCount: count,
  minCount: count,
  maxCount: count.min(1),
});

function checkServiceSize(value: z.infer<typeof serviceSize>, ctx: z.RefinementCtx): void {
  const memoryOk = FARGATE_MEMORY[value.cpu];
  if (!memoryOk) {
    ctx.addIssue({
      code: 'custom',
      path: ['cpu'],
      message: `not a Fargate CPU size; use one of ${Object.keys(FARGATE_MEMORY).join(', ')}`,
    });
  } else if (!memoryOk(value.memoryMiB)) {
    ctx.addIssue({
      code: 'custom',
      path: ['memoryMiB'],
      message: `${value.memoryMiB} MiB is not a valid Fargate memory size for ${value.cpu} CPU units`,
    });
  }
  if (!(value.minCount <= value.desiredCount && value.desiredCount <= value.maxCount)) {
    ctx.addIssue({ code: 'custom', path: ['desiredCount'], message: 'expected minCount <= desiredCount <= maxCount' });
  }
}

const workerQueueSchema = serviceSize
  .extend({
    /** Backlog (approximate tasks waiting on the queue) at which one task is added; 5× this adds three. */
    scaleOutBacklog: z.number().int().min(1),
    /** Run on Fargate Spot (interruptible; Temporal retries the activity elsewhere). */
    spot: z.boolean(),
    /** Extra plain environment values for this queue's containers (never secrets). */
    environment: z.record(z.string(), z.string()),
    /** Which application secrets this queue's containers receive. */
    secrets: z.array(z.enum(SECRET_NAMES)),
  })
  .strict()
  .superRefine(checkServiceSize);
export type WorkerQueueConfig = z.infer<typeof workerQueueSchema>;

const workerVersionSchema = z
  .object({
    /** Worker Versioning build id (env TWIN_WORKER_BUILD_ID). */
    buildId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'letters, digits, ".", "_" or "-", at most 63'),
    /** Image of this version; unset = the image built from this checkout (current version only). */
    imageUri: z.string().min(1).optional(),
  })
  .strict();

const deployConfigSchema = z
  .object({
    stackName: z.string().regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/, 'a CloudFormation stack name'),
    account: z
      .string()
      .regex(/^\d{12}$/, '12 digits')
      .optional(),
    region: z.string().min(1).optional(),
    image: z
      .object({
        /** Prebuilt image (ECR URI or any registry). Unset = built from ./Dockerfile by `cdk deploy` (needs Docker). */
        uri: z.string().min(1).optional(),
        /** Dockerfile build arg: bake the local embedding model into the image, or not. */
        embeddingModel: z.enum(['baked', 'none']),
        cpuArchitecture: z.enum(['X86_64', 'ARM64']),
      })
      .strict(),
    vpc: z
      .object({
        cidr: z.string().regex(/^\d+\.\d+\.\d+\.\d+\/\d+$/, 'a CIDR block such as 10.40.0.0/16'),
        maxAzs: z.number().int().min(2).max(6),
        natGateways: z.number().int().min(1),
      })
      .strict(),
    temporal: z
      .object({
        address: z.string().regex(/^[A-Za-z0-9.\-_]+:\d{1,5}$/, 'host:port, for example my-ns.a1b2c.tmprl.cloud:7233'),
        namespace: z.string().min(1),
        tls: z.boolean(),
      })
      .strict(),
    /** Plain, non-secret application settings given to every container. */
    app: z
      .object({
        mongodbDatabase: z.string().min(1),
        qdrantUrl: z.string().url().optional(),
        llmModel: z.string().min(1),
        openaiBaseUrl: z.string().url().optional(),
        embeddingBackend: z.enum(['local', 'openai']),
        opikWorkspace: z.string().optional(),
        logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']),
      })
      .strict(),
    api: serviceSize
      .extend({
        port: z.number().int().min(1).max(65535),
        targetCpuPercent: z.number().min(10).max(95),
        /** ACM certificate for HTTPS on the load balancer; unset = HTTP only. */
        certificateArn: z
          .string()
          .regex(/^arn:aws[\w-]*:acm:/, 'an ACM certificate ARN')
          .optional(),
        secrets: z.array(z.enum(SECRET_NAMES)),
      })
      .strict()
      .superRefine(checkServiceSize),
    workers: z
      .object({
        /** Worker Versioning deployment name (env TWIN_WORKER_DEPLOYMENT). */
        deploymentName: z.string().min(1),
        /**
         * Versions that run at once. The last is current (autoscaled services); earlier ones are draining:
         * each queue keeps `drainingTaskCount` tasks until the version's pinned workflows have finished.
         */
        versions: z.array(workerVersionSchema).min(1),
        drainingTaskCount: z.number().int().min(1),
        queues: z
          .object(
            Object.fromEntries(QUEUE_NAMES.map((q) => [q, workerQueueSchema])) as Record<
              QueueName,
              typeof workerQueueSchema
            >,
          )
          .strict(),
        /** Graceful-shutdown window after SIGTERM (Fargate allows at most 120 s). */
        stopTimeoutSeconds: z.number().int().min(2).max(120),
      })
      .strict(),
    backlogMetric: z
      .object({
        /** CloudWatch namespace of the task-queue backlog metric. */
        namespace: z.string().min(1),
        scheduleMinutes: z.number().int().min(1).max(60),
      })
      .strict(),
    artifacts: z
      .object({
        /** Key prefixes of job outputs (training job output, checkpoints, packaged code) that expire. */
        jobOutputPrefixes: z.array(z.string().min(1)),
        jobOutputExpirationDays: z.number().int().min(1),
        noncurrentVersionExpirationDays: z.number().int().min(1),
        prefix: z.string(),
      })
      .strict(),
    sagemaker: z
      .object({
        /** ECR repositories SageMaker jobs/endpoints may pull images from (default: AWS Hugging Face DLCs). */
        imageRepositoryArns: z.array(z.string().regex(/^arn:aws[\w-]*:ecr:/, 'an ECR repository ARN')).min(1),
      })
      .strict(),
    /** CloudWatch Logs retention of every log group (one of the values CloudWatch accepts, e.g. 30, 90, 365). */
    logRetentionDays: z
      .number()
      .int()
      .refine(
        (days) => (Object.values(logs.RetentionDays) as unknown[]).includes(days),
        'not a CloudWatch Logs retention period (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)',
      ),
  })
  .strict()
  .superRefine((value, ctx) => {
    value.workers.versions.slice(0, -1).forEach((version, index) => {
      if (!version.imageUri) {
        ctx.addIssue({
          code: 'custom',
          path: ['workers', 'versions', index, 'imageUri'],
          message: `draining version ${version.buildId} needs the imageUri it was deployed with`,
        });
      }
    });
    const ids = value.workers.versions.map((v) => v.buildId);
    if (new Set(ids).size !== ids.length) {
      ctx.addIssue({ code: 'custom', path: ['workers', 'versions'], message: 'build ids must be unique' });
    }
  });

export type DeployConfig = z.infer<typeof deployConfigSchema>;

const APP_SECRETS: SecretName[] = ['temporal', 'mongodb'];

function queue(
  cpu: number,
  memoryMiB: number,
  counts: [desired: number, min: number, max: number],
  scaleOutBacklog: number,
  secrets: SecretName[],
): WorkerQueueConfig {
  const [desiredCount, minCount, maxCount] = counts;
  return { cpu, memoryMiB, desiredCount, minCount, maxCount, scaleOutBacklog, spot: false, environment: {}, secrets };
}

/** The placeholder Temporal address: synthesizes, but `cdk deploy` with it is warned about. */
export const PLACEHOLDER_TEMPORAL_ADDRESS = 'your-namespace.your-account.tmprl.cloud:7233';

export const DEFAULT_DEPLOY_CONFIG: DeployConfig = {
  stackName: 'LlmTwin',
  image: { embeddingModel: 'baked', cpuArchitecture: 'X86_64' },
  vpc: { cidr: '10.40.0.0/16', maxAzs: 2, natGateways: 1 },
  temporal: { address: PLACEHOLDER_TEMPORAL_ADDRESS, namespace: 'default', tls: true },
  app: { mongodbDatabase: 'twin', llmModel: 'gpt-4o-mini', embeddingBackend: 'local', logLevel: 'info' },
  api: {
    cpu: 512,
    memoryMiB: 1024,
    desiredCount: 2,
    minCount: 2,
    maxCount: 6,
    port: 8000,
    targetCpuPercent: 60,
    secrets: ['mongodb', 'qdrant', 'openai', 'opik', 'api'],
  },
  workers: {
    deploymentName: 'llm-twin',
    versions: [{ buildId: 'v1' }],
    drainingTaskCount: 1,
    stopTimeoutSeconds: 120,
    queues: {
      // Workflows only: cheap, always on.
      pipelines: queue(512, 1024, [1, 1, 4], 20, ['temporal']),
      // I/O bound crawling: many concurrent activities per task.
      etl: queue(512, 1024, [1, 1, 8], 50, [...APP_SECRETS]),
      // CPU bound cleaning/chunking/embedding with the in-process ONNX model.
      features: queue(2048, 4096, [1, 1, 4], 10, [...APP_SECRETS, 'qdrant', 'huggingface']),
      // Paid, rate-limited LLM API: scaling out does not raise the task-queue-wide rate limit.
      llm: queue(512, 1024, [1, 1, 3], 20, [...APP_SECRETS, 'qdrant', 'openai', 'opik']),
      // SageMaker jobs: long heartbeating waits, few slots.
      ml: queue(512, 1024, [1, 1, 2], 5, [...APP_SECRETS, 'huggingface', 'openai']),
    },
  },
  backlogMetric: { namespace: 'LlmTwin/Temporal', scheduleMinutes: 1 },
  artifacts: {
    jobOutputPrefixes: ['jobs/', 'tmp/'],
    jobOutputExpirationDays: 30,
    noncurrentVersionExpirationDays: 30,
    prefix: '',
  },
  sagemaker: {
    imageRepositoryArns: [
      'arn:aws:ecr:*:763104351884:repository/huggingface-pytorch-training',
      'arn:aws:ecr:*:763104351884:repository/huggingface-pytorch-inference',
      'arn:aws:ecr:*:763104351884:repository/huggingface-pytorch-tgi-inference',
    ],
  },
  logRetentionDays: 30,
};

type Plain = Record<string, unknown>;
const isPlain = (value: unknown): value is Plain =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Deep merge of plain objects; arrays and scalars in `override` replace those in `base`. */
export function deepMerge<T>(base: T, override: unknown): T {
  if (!isPlain(base) || !isPlain(override)) return (override === undefined ? base : override) as T;
  const out: Plain = { ...base };
  for (const [key, value] of Object.entries(override)) {
    out[key] = key in out ? deepMerge(out[key], value) : value;
  }
  return out as T;
}

export class DeployConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid CDK deploy configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'DeployConfigError';
  }
}

/** Validates a (partial) override against the defaults; throws {@link DeployConfigError} listing every problem. */
export function resolveDeployConfig(override: unknown = {}): DeployConfig {
  const result = deployConfigSchema.safeParse(deepMerge(DEFAULT_DEPLOY_CONFIG, override));
  if (!result.success) {
    throw new DeployConfigError(
      result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`),
    );
  }
  return result.data;
}

/** A context lookup, such as `app.node.tryGetContext`. */
export type ContextReader = (key: string) => unknown;

/**
 * Reads the configuration from CDK context: `twin:config` (path to a JSON or YAML file, relative to the
 * working directory) and the shortcuts `twin:imageUri`, `twin:certificateArn`, `twin:temporalAddress`,
 * `twin:temporalNamespace`, `twin:stackName`.
 */
export function configFromContext(context: ContextReader): DeployConfig {
  let override: unknown = {};
  const file = context('twin:config');
  if (typeof file === 'string' && file !== '') {
    const text = readFileSync(path.resolve(file), 'utf8');
    override = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  }
  const str = (key: string): string | undefined => {
    const value = context(key);
    return typeof value === 'string' && value !== '' ? value : undefined;
  };
  const shortcuts = {
    ...(str('twin:stackName') ? { stackName: str('twin:stackName') } : {}),
    image: { ...(str('twin:imageUri') ? { uri: str('twin:imageUri') } : {}) },
    api: { ...(str('twin:certificateArn') ? { certificateArn: str('twin:certificateArn') } : {}) },
    temporal: {
      ...(str('twin:temporalAddress') ? { address: str('twin:temporalAddress') } : {}),
      ...(str('twin:temporalNamespace') ? { namespace: str('twin:temporalNamespace') } : {}),
    },
  };
  return resolveDeployConfig(deepMerge(override ?? {}, shortcuts));
}
