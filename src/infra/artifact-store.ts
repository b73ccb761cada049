import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  GetObjectCommand,
  HeadObjectCommand,
  NoSuchKey,
  NotFound,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import type { Settings } from '../config';
import { sha256 } from '../domain/artifacts';

/**
 * Where artifact files live. Both backends use the same key layout (`<prefix>/<kind>/<name>/<file>`), so a
 * local run can be synced to S3 unchanged.
 */
export interface ArtifactStore {
  /** Writes bytes under a key and returns its URI (`file://…` or `s3://bucket/key`) and sha256. */
  put(key: string, body: string | Uint8Array, contentType?: string): Promise<{ uri: string; checksum: string }>;
  get(key: string): Promise<Buffer>;
  exists(key: string): Promise<boolean>;
  uriOf(key: string): string;
}

function joinKey(prefix: string, key: string): string {
  const clean = key.replace(/^\/+/, '');
  if (clean.split('/').some((part) => part === '..')) throw new Error(`artifact key must not contain "..": ${key}`);
  return prefix ? `${prefix.replace(/\/+$/, '')}/${clean}` : clean;
}

export class LocalArtifactStore implements ArtifactStore {
  constructor(
    private readonly root: string,
    private readonly prefix = '',
  ) {}

  private fileOf(key: string): string {
    return path.join(this.root, joinKey(this.prefix, key));
  }

  uriOf(key: string): string {
    return `file://${this.fileOf(key)}`;
  }

  async put(key: string, body: string | Uint8Array): Promise<{ uri: string; checksum: string }> {
    const file = this.fileOf(key);
    await mkdir(path.dirname(file), { recursive: true });
    // Write then rename, so a crash never leaves a half-written artifact under its final name.
    const temp = `${file}.${process.pid}.tmp`;
    await writeFile(temp, body);
    await rename(temp, file);
    return { uri: this.uriOf(key), checksum: `sha256:${sha256(typeof body === 'string' ? Buffer.from(body) : body)}` };
  }

  async get(key: string): Promise<Buffer> {
    return readFile(this.fileOf(key));
  }

  async exists(key: string): Promise<boolean> {
    return stat(this.fileOf(key)).then(
      () => true,
      () => false,
    );
  }

  stream(key: string) {
    return createReadStream(this.fileOf(key));
  }
}

export class S3ArtifactStore implements ArtifactStore {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly prefix = '',
  ) {}

  uriOf(key: string): string {
    return `s3://${this.bucket}/${joinKey(this.prefix, key)}`;
  }

  async put(key: string, body: string | Uint8Array, contentType?: string): Promise<{ uri: string; checksum: string }> {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: joinKey(this.prefix, key),
        Body: bytes,
        ContentType: contentType,
      }),
    );
    return { uri: this.uriOf(key), checksum: `sha256:${sha256(bytes)}` };
  }

  async get(key: string): Promise<Buffer> {
    const result = await this.client.send(
      new GetObjectCommand({ Bucket: this.bucket, Key: joinKey(this.prefix, key) }),
    );
    if (!result.Body) throw new Error(`empty S3 object ${this.uriOf(key)}`);
    return Buffer.from(await result.Body.transformToByteArray());
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: joinKey(this.prefix, key) }));
      return true;
    } catch (error) {
      if (error instanceof NotFound || error instanceof NoSuchKey) return false;
      throw error;
    }
  }
}

export function createS3Client(aws: Settings['aws']): S3Client {
  return new S3Client({
    region: aws.region,
    ...(aws.endpoint ? { endpoint: aws.endpoint, forcePathStyle: true } : {}),
  });
}

export function createArtifactStore(config: Settings['artifacts'], aws: Settings['aws']): ArtifactStore {
  if (config.store === 's3') {
    if (!config.bucket) throw new Error('ARTIFACT_BUCKET is required when ARTIFACT_STORE=s3');
    return new S3ArtifactStore(createS3Client(aws), config.bucket, config.prefix);
  }
  return new LocalArtifactStore(config.dir, config.prefix);
}
