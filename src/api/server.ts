/**
 * The RAG API process: `node dist/src/api/server.js` (container image) or `twin serve` (in-process). Reads the
 * settings, creates the RAG service, listens on API_HOST:API_PORT and shuts down gracefully on SIGTERM/SIGINT
 * (stops accepting, lets in-flight requests finish, then closes the service's connections).
 */
import { ConfigError, settings as loadSettings, type Settings } from '../config';
import { logger } from '../infra/logger';
import { createRagService } from '../rag/service';
import type { RagEngine } from '../rag/types';
import { buildApp, type ApiApp } from './app';

export interface ApiServer {
  app: ApiApp;
  engine: RagEngine;
  /** Base URL, e.g. http://127.0.0.1:8000 */
  url: string;
  /** Stops listening, waits for in-flight requests, closes the engine. Safe to call twice. */
  close(): Promise<void>;
}

export interface StartApiServerOptions {
  /** Use this engine instead of creating the RAG service from the settings (it is closed with the server). */
  engine?: RagEngine;
  host?: string;
  /** 0 = any free port. */
  port?: number;
}

export async function startApiServer(settings: Settings, options: StartApiServerOptions = {}): Promise<ApiServer> {
  const engine = options.engine ?? createRagService(settings);
  let app: ApiApp;
  try {
    app = await buildApp({ engine, settings });
    await app.listen({ host: options.host ?? settings.api.host, port: options.port ?? settings.api.port });
  } catch (error) {
    await engine.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : (options.port ?? settings.api.port);
  const host = options.host ?? settings.api.host;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    app,
    engine,
    url: `http://${shownHost}:${port}`,
    close: () =>
      (closing ??= (async () => {
        try {
          await app.close();
        } finally {
          await engine.close();
        }
      })()),
  };
}

/** Runs the server until SIGTERM/SIGINT; a second signal exits at once. */
export async function main(): Promise<void> {
  const log = logger().child({ component: 'api' });
  const settings = loadSettings();
  const server = await startApiServer(settings);
  log.info({ url: server.url, keys: settings.api.keys.length }, 'RAG API listening');
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'stopping: draining in-flight requests');
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    if (error instanceof ConfigError) process.stderr.write(`${error.message}\n`);
    else logger().fatal({ err: error }, 'RAG API failed to start');
    process.exit(1);
  });
}
