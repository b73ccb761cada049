import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { ConfigError, type Settings } from '../config';
import { logger as rootLogger, type Logger } from '../infra/logger';
import { RagError, type DependencyCheck, type RagEngine, type RagRequest, type RagStreamEvent } from '../rag/types';
import { ApiKeys } from './auth';
import { ApiError, fromRagError, toApiError } from './errors';
import { TWIN_MODEL, toChatCompletion, toChunk, toRagRequest, toUsageChunk } from './openai';
import {
  chatCompletionRequestSchema,
  chatCompletionSchema,
  errorBodySchema,
  healthSchema,
  modelListSchema,
  ragAnswerSchema,
  ragRequestSchema,
  readySchema,
} from './schemas';
import { sendEventStream, sseEvent } from './sse';

declare module 'fastify' {
  interface FastifyRequest {
    /** Id (SHA-256 prefix) of the API key that authenticated the request; '' when keys are off. */
    apiKeyId: string;
  }
  interface FastifyContextConfig {
    /** Route needs a bearer API key (and is rate limited per key). */
    auth?: boolean;
  }
}

/** The API's Fastify instance (Zod type provider, the platform's pino logger). */
export type ApiApp = Awaited<ReturnType<typeof buildApp>>;

export interface BuildAppOptions {
  engine: RagEngine;
  /** Settings of the platform; only `api` is read. */
  settings: Pick<Settings, 'api'>;
  logger?: Logger;
  /** How long /ready waits for the engine's dependency checks (default 8 s). */
  readyTimeoutMs?: number;
}

const API_VERSION = '1.0.0';

/** The error thrown when the API would start open to everyone without saying so. */
export function missingKeysError(): ConfigError {
  return new ConfigError([
    'API_KEYS: no API keys configured, so the RAG API refuses to start. Set API_KEYS=key1,key2 (the bearer keys ' +
      'clients send as "Authorization: Bearer <key>"), or for local development only set API_ALLOW_NO_KEYS=true ' +
      '(every request is then accepted without a key)',
  ]);
}

/**
 * The RAG REST API as a Fastify instance (not listening): `POST /rag`, `POST /v1/chat/completions`,
 * `GET /v1/models`, `GET /health`, `GET /ready`, `GET /openapi.json`, `GET /docs`. Throws a ConfigError when no API
 * keys are configured and `API_ALLOW_NO_KEYS` is not set.
 */
export async function buildApp(options: BuildAppOptions) {
  const { engine } = options;
  const api = options.settings.api;
  const keys = new ApiKeys(api.keys);
  if (!keys.enabled && !api.allowNoKeys) throw missingKeysError();
  const log = (options.logger ?? rootLogger()).child({ component: 'api' });
  if (!keys.enabled) log.warn('API_ALLOW_NO_KEYS=true and no API_KEYS: the RAG API accepts unauthenticated requests');
  const readyTimeoutMs = options.readyTimeoutMs ?? 8000;
  const startedAt = Math.floor(Date.now() / 1000);

  const app = Fastify({
    loggerInstance: log,
    // one line per request from the onResponse hook below instead of Fastify's two
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: api.bodyLimitBytes,
    return503OnClosing: true,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  app.decorateRequest('apiKeyId', '');

  app.setErrorHandler((error, request, reply) => {
    let apiError: ApiError;
    if (hasZodFastifySchemaValidationErrors(error)) {
      apiError = new ApiError(400, 'bad_request', 'request does not match the schema', {
        issues: error.validation.map((issue) => ({
          path: issue.instancePath || '/',
          message: issue.message ?? 'invalid',
        })),
      });
    } else {
      apiError = toApiError(error);
    }
    if (apiError.statusCode === 503) {
      const { dependency } = apiError.details;
      request.log.warn({ url: request.url, dependency, error: apiError.message }, 'dependency unavailable');
    } else if (apiError.statusCode >= 500) {
      request.log.error({ err: error, url: request.url, apiKeyId: request.apiKeyId }, 'request failed');
    }
    if (apiError.statusCode === 401) void reply.header('www-authenticate', 'Bearer');
    return reply.code(apiError.statusCode).send(apiError.toBody());
  });
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send(new ApiError(404, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`).toBody()),
  );

  app.addHook('onRequest', (request, _reply, done) => {
    if (!request.routeOptions.config.auth || !keys.enabled) return done();
    try {
      request.apiKeyId = keys.verify(request.headers.authorization);
      done();
    } catch (error) {
      done(error as ApiError);
    }
  });
  app.addHook('onResponse', (request, reply, done) => {
    request.log.info(
      {
        method: request.method,
        url: request.url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
        apiKeyId: request.apiKeyId || undefined,
      },
      'request',
    );
    done();
  });

  // One budget per API key (per client address without keys) shared by every authenticated route; /health,
  // /ready and the docs are never limited.
  await app.register(fastifyRateLimit, {
    global: true,
    max: api.rateLimit.max,
    timeWindow: api.rateLimit.windowSeconds * 1000,
    allowList: (request) => !request.routeOptions.config.auth,
    keyGenerator: (request) => request.apiKeyId || request.ip,
    errorResponseBuilder: (_request, context) =>
      new ApiError(
        429,
        'rate_limited',
        `rate limit of ${context.max} requests per ${context.after} exceeded; retry after ${Math.ceil(context.ttl / 1000)} s`,
        { retryAfterSeconds: Math.ceil(context.ttl / 1000) },
      ),
  });
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'LLM Twin RAG API',
        version: API_VERSION,
        description:
          'Answers questions from an author\'s own writing (retrieval-augmented generation). Errors always have the shape {"error": {"code", "message", ...}}.',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  const protectedRoute = { auth: true };
  const security = [{ bearerAuth: [] }];
  const errors = {
    400: errorBodySchema,
    401: errorBodySchema,
    413: errorBodySchema,
    429: errorBodySchema,
    500: errorBodySchema,
    503: errorBodySchema,
  };

  /** Aborts the engine's work when the client goes away before the answer is complete. */
  const abortOnClose = (request: FastifyRequest, reply: FastifyReply) => {
    const controller = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) controller.abort(new Error('client closed the connection'));
    });
    return { signal: controller.signal, apiKeyId: request.apiKeyId || undefined };
  };

  /** Starts the engine's stream and waits for its first event, so failures before any output get a real status. */
  const openStream = async (
    request: FastifyRequest,
    ragRequest: RagRequest,
  ): Promise<{ first: RagStreamEvent; rest: AsyncIterator<RagStreamEvent>; abort: AbortController }> => {
    const abort = new AbortController();
    const events = engine.stream(ragRequest, { signal: abort.signal, apiKeyId: request.apiKeyId || undefined });
    const iterator = events[Symbol.asyncIterator]();
    const first = await iterator.next();
    if (first.done) throw new ApiError(500, 'internal', 'internal error');
    if (first.value.type === 'error') {
      const e = first.value.error;
      throw fromRagError(new RagError(e.code, e.message, e.dependency));
    }
    return { first: first.value, rest: iterator, abort };
  };

  /** The remaining events; a throw mid-stream becomes an `error` event (headers are already sent). */
  async function* eventsAfter(request: FastifyRequest, first: RagStreamEvent, rest: AsyncIterator<RagStreamEvent>) {
    yield first;
    try {
      for (;;) {
        const next = await rest.next();
        if (next.done) return;
        yield next.value;
      }
    } catch (error) {
      const apiError = toApiError(error);
      if (apiError.statusCode >= 500) request.log.error({ err: error }, 'stream failed');
      const shape =
        error instanceof RagError ? error.toJSON() : { code: 'internal' as const, message: apiError.message };
      yield { type: 'error', error: shape } satisfies RagStreamEvent;
    } finally {
      await rest.return?.();
    }
  }

  app.post(
    '/rag',
    {
      config: protectedRoute,
      schema: {
        summary: "Answer a question from the author's writing",
        description:
          "JSON answer, or with `stream: true` Server-Sent Events: `sources` (once), `token` (many), then `done` with the full answer, or `error`. Each event's data is the JSON of a RagStreamEvent.",
        security,
        body: ragRequestSchema,
        response: { 200: ragAnswerSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { stream, ...body } = request.body;
      const ragRequest: RagRequest = body;
      if (!stream) return engine.answer(ragRequest, abortOnClose(request, reply));
      const { first, rest, abort } = await openStream(request, ragRequest);
      async function* frames() {
        for await (const event of eventsAfter(request, first, rest)) yield sseEvent(event, event.type);
      }
      return sendEventStream(reply, frames(), () => abort.abort(new Error('client closed the connection')));
    },
  );

  app.post(
    '/v1/chat/completions',
    {
      config: protectedRoute,
      schema: {
        summary: 'OpenAI-compatible chat completions',
        description:
          'The last user message is the question, earlier user/assistant turns the history. Author: `metadata.author`, or the model name `twin:<author>`. Streaming sends `chat.completion.chunk` events and `data: [DONE]`. Extensions: `sources` and `trace_id`.',
        security,
        body: chatCompletionRequestSchema,
        response: { 200: chatCompletionSchema, ...errors },
      },
    },
    async (request, reply) => {
      const ragRequest = toRagRequest(request.body);
      const model = request.body.model;
      if (!request.body.stream) {
        return toChatCompletion(await engine.answer(ragRequest, abortOnClose(request, reply)), model);
      }
      const includeUsage = request.body.stream_options?.include_usage === true;
      const { first, rest, abort } = await openStream(request, ragRequest);
      async function* frames() {
        let traceId = '';
        for await (const event of eventsAfter(request, first, rest)) {
          if (event.type === 'sources') {
            traceId = event.traceId;
            yield sseEvent(
              toChunk(traceId, model, { role: 'assistant', content: '' }, null, { sources: event.sources }),
            );
          } else if (event.type === 'token') {
            yield sseEvent(toChunk(traceId, model, { content: event.text }, null));
          } else if (event.type === 'done') {
            yield sseEvent(toChunk(event.answer.traceId, model, {}, 'stop'));
            if (includeUsage) yield sseEvent(toUsageChunk(event.answer, model));
            yield sseEvent('[DONE]');
          } else {
            yield sseEvent({ error: event.error });
            return;
          }
        }
      }
      return sendEventStream(reply, frames(), () => abort.abort(new Error('client closed the connection')));
    },
  );

  app.get(
    '/v1/models',
    {
      config: protectedRoute,
      schema: { summary: 'Models of the OpenAI facade', security, response: { 200: modelListSchema } },
    },
    () => ({
      object: 'list' as const,
      data: [{ id: TWIN_MODEL, object: 'model' as const, created: startedAt, owned_by: 'llm-twin' }],
    }),
  );

  app.get(
    '/health',
    {
      schema: { summary: 'Liveness: the process serves HTTP (checks no dependency)', response: { 200: healthSchema } },
    },
    () => ({ status: 'ok' as const }),
  );

  app.get(
    '/ready',
    {
      schema: {
        summary: 'Readiness: Qdrant, MongoDB and the model backend answer (503 with per-dependency detail if not)',
        response: { 200: readySchema, 503: readySchema },
      },
    },
    async (_request, reply) => {
      const checks = await readiness(engine, readyTimeoutMs);
      const down = Object.entries(checks).filter(([, check]) => !check.ok);
      if (down.length === 0) return { status: 'ready' as const, checks };
      return reply.code(503).send({
        status: 'not_ready' as const,
        checks,
        error: {
          code: 'dependency_unavailable',
          message: `not ready: ${down.map(([name, check]) => `${name} (${check.error ?? 'down'})`).join(', ')}`,
          dependency: down[0]![0],
        },
      });
    },
  );

  app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());

  return app;
}

async function readiness(engine: RagEngine, timeoutMs: number): Promise<Record<string, DependencyCheck>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Record<string, DependencyCheck>>((resolve) => {
    timer = setTimeout(
      () => resolve({ engine: { ok: false, error: `dependency checks took longer than ${timeoutMs} ms` } }),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([
      engine.ready().catch((error: unknown) => ({
        engine: { ok: false, error: error instanceof Error ? error.message : String(error) },
      })),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
