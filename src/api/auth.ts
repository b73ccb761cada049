import { createHash, timingSafeEqual } from 'node:crypto';
import type { Secret } from '../config';
import { ApiError } from './errors';

const digest = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/** The id a key is known by in logs, traces and rate limits: a short prefix of its SHA-256, never the key. */
export function apiKeyId(key: string): string {
  return `key_${digest(key).toString('hex').slice(0, 12)}`;
}

/**
 * Bearer API keys. The presented token and every configured key are compared as SHA-256 digests with
 * `timingSafeEqual` (equal lengths, so no length leak), and every configured key is compared on every request,
 * so the time taken does not say which key, or how much of one, matched.
 */
export class ApiKeys {
  private readonly keys: { digest: Buffer; id: string }[];

  constructor(keys: readonly Secret[]) {
    this.keys = keys.map((key) => ({ digest: digest(key.reveal()), id: apiKeyId(key.reveal()) }));
  }

  get enabled(): boolean {
    return this.keys.length > 0;
  }

  /** The key id of a valid `Authorization: Bearer <key>` header; throws a 401 ApiError otherwise. */
  verify(authorization: string | undefined): string {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
    if (!match) {
      throw new ApiError(401, 'unauthorized', 'missing API key: send "Authorization: Bearer <key>"');
    }
    const presented = digest(match[1]!);
    let found: string | undefined;
    for (const key of this.keys) {
      if (timingSafeEqual(presented, key.digest) && found === undefined) found = key.id;
    }
    if (found === undefined) throw new ApiError(401, 'unauthorized', 'invalid API key');
    return found;
  }
}
