import { readFile } from 'node:fs/promises';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { TLSConfig } from '@temporalio/client';
import type { Settings } from '../config';
import { SEARCH_ATTRIBUTE_DEFINITIONS } from '../domain/search-attributes';
import { ServiceUnavailableError } from './errors';
import type { Logger } from './logger';

export type TemporalSettings = Settings['temporal'];

/** The address to use: the configured one, or the local dev server that `twin dev` starts. */
export function temporalAddress(config: TemporalSettings): string {
  return config.address ?? `127.0.0.1:${config.devServerPort}`;
}

/** Connection options shared by clients and workers: TLS / mTLS / API key for Temporal Cloud. */
export interface TemporalConnectionOptions {
  address: string;
  tls: TLSConfig | boolean;
  apiKey?: string;
}

export async function connectionOptions(config: TemporalSettings): Promise<TemporalConnectionOptions> {
  const cert =
    config.clientCert?.reveal() ?? (config.clientCertPath ? await readFile(config.clientCertPath, 'utf8') : undefined);
  const key =
    config.clientKey?.reveal() ?? (config.clientKeyPath ? await readFile(config.clientKeyPath, 'utf8') : undefined);
  return {
    address: temporalAddress(config),
    tls: cert && key ? { clientCertPair: { crt: Buffer.from(cert), key: Buffer.from(key) } } : config.tls,
    ...(config.apiKey ? { apiKey: config.apiKey.reveal() } : {}),
  };
}

export async function connectClient(config: TemporalSettings): Promise<Client> {
  const options = await connectionOptions(config);
  try {
    const connection = await Connection.connect({ ...options, connectTimeout: '10s' });
    return new Client({ connection, namespace: config.namespace });
  } catch (error) {
    throw new ServiceUnavailableError(
      'Temporal',
      `cannot reach ${options.address} (namespace ${config.namespace}): ${(error as Error).message}. ` +
        (config.address ? 'Check TEMPORAL_ADDRESS and TLS settings.' : 'Start the local platform with `twin dev`.'),
    );
  }
}

/**
 * Registers the platform's custom search attributes on a server that lacks them (a self-hosted cluster).
 * The dev server started by `twin dev` gets them as start flags. Temporal Cloud manages them in its UI.
 */
export async function ensureSearchAttributes(client: Client, namespace: string, log?: Logger): Promise<string[]> {
  const { IndexedValueType } = temporal.api.enums.v1;
  const existing = await client.connection.operatorService.listSearchAttributes({ namespace });
  const known = new Set(Object.keys(existing.customAttributes ?? {}));
  const missing = Object.entries(SEARCH_ATTRIBUTE_DEFINITIONS).filter(([name]) => !known.has(name));
  if (missing.length === 0) return [];
  const typeOf = {
    Keyword: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    KeywordList: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
  };
  await client.connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map(([name, type]) => [name, typeOf[type]])),
  });
  log?.info({ added: missing.map(([name]) => name) }, 'registered search attributes');
  return missing.map(([name]) => name);
}
