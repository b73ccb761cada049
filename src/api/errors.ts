import { RagError, type RagErrorCode } from '../rag/types';

/**
 * The one error shape of the RAG API, on every route and status:
 * `{ "error": { "code": "rate_limited", "message": "…", …details } }`. OpenAI clients read `error.message` from it
 * too. Never a stack trace.
 */
export type ApiErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'not_found'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'rate_limited'
  | 'dependency_unavailable'
  | 'model_error'
  | 'internal';

export interface ApiErrorBody {
  error: { code: ApiErrorCode; message: string; [detail: string]: unknown };
}

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: ApiErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toBody(): ApiErrorBody {
    return { error: { ...this.details, code: this.code, message: this.message } };
  }
}

const RAG_STATUS: Record<RagErrorCode, { status: number; code: ApiErrorCode }> = {
  bad_request: { status: 400, code: 'bad_request' },
  dependency_unavailable: { status: 503, code: 'dependency_unavailable' },
  model_error: { status: 502, code: 'model_error' },
  internal: { status: 500, code: 'internal' },
};

const CLIENT_ERROR_CODES: Record<number, ApiErrorCode> = {
  400: 'bad_request',
  401: 'unauthorized',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
};

/** An ApiError for a RagError of the engine (503 names the dependency that is down). */
export function fromRagError(error: RagError): ApiError {
  const mapped = RAG_STATUS[error.code] ?? RAG_STATUS.internal;
  const message = mapped.status === 500 ? 'internal error' : error.message;
  return new ApiError(mapped.status, mapped.code, message, error.dependency ? { dependency: error.dependency } : {});
}

/**
 * Any thrown value → ApiError. Fastify's own 4xx errors (body too large, bad JSON, wrong content type) keep their
 * status and message; everything unknown becomes a 500 with a generic message (the cause goes to the log only).
 */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof RagError) return fromRagError(error);
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code = CLIENT_ERROR_CODES[status] ?? 'bad_request';
    return new ApiError(status, code, (error as Error).message || code);
  }
  if (status === 503) return new ApiError(503, 'dependency_unavailable', (error as Error).message);
  return new ApiError(500, 'internal', 'internal error');
}
