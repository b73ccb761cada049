/**
 * Exports RAG traces to Opik (Comet's open-source LLM observability platform, the reference project's prompt
 * monitoring tool) with the `opik` SDK: one Opik trace per request, one span per step, timestamps and usage kept.
 * Enabled when OPIK_API_KEY or OPIK_URL_OVERRIDE (self-hosted) is set. The SDK batches in the background;
 * failures are the recorder's to log, never the request's.
 */
import type { Opik } from 'opik';
import type { Settings } from '../config';
import type { TraceRecord, TraceSink } from './tracing';

export const OPIK_PROJECT = 'llm-twin';

export function opikConfigured(settings: Pick<Settings, 'opik'>): boolean {
  return Boolean(settings.opik.apiKey ?? settings.opik.url);
}

const SPAN_TYPE: Record<string, 'llm' | 'tool' | 'general'> = {
  self_query: 'llm',
  expansion: 'llm',
  generation: 'llm',
  embed: 'tool',
  search: 'tool',
  rerank: 'tool',
};

export class OpikTraceSink implements TraceSink {
  readonly name = 'opik';
  private client: Promise<Opik> | undefined;

  constructor(
    private readonly settings: Pick<Settings, 'opik'>,
    private readonly options: { projectName?: string; batchDelayMs?: number } = {},
  ) {}

  private opik(): Promise<Opik> {
    // The SDK logs an INFO banner per project to stdout; keep it to warnings unless the user asked otherwise.
    process.env.OPIK_LOG_LEVEL ??= 'WARN';
    this.client ??= import('opik').then(
      ({ Opik }) =>
        new Opik({
          apiKey: this.settings.opik.apiKey?.reveal() ?? '',
          ...(this.settings.opik.url ? { apiUrl: this.settings.opik.url } : {}),
          projectName: this.options.projectName ?? OPIK_PROJECT,
          workspaceName: this.settings.opik.workspace ?? 'default',
          batchDelayMs: this.options.batchDelayMs ?? 300,
        }),
    );
    return this.client;
  }

  async write(record: TraceRecord): Promise<void> {
    const opik = await this.opik();
    const trace = opik.trace({
      id: record._id.length === 36 ? uuidV7Like(record._id, record.createdAt) : undefined,
      name: 'rag',
      startTime: record.createdAt,
      endTime: record.endedAt,
      input: { query: record.request.query, author: record.request.author, k: record.request.k },
      output: { answer: record.answer ?? '', sources: record.sources.map((s) => s.title ?? s.documentId) },
      metadata: {
        traceId: record._id,
        status: record.status,
        promptTemplateVersion: record.promptTemplateVersion,
        models: record.models,
        ...(record.error ? { error: record.error } : {}),
        ...(record.apiKeyId ? { apiKeyId: record.apiKeyId } : {}),
      },
      tags: ['rag', record.status, ...(record.stream ? ['stream'] : [])],
      usage: {
        prompt_tokens: record.usage.inputTokens,
        completion_tokens: record.usage.outputTokens,
        total_tokens: record.usage.inputTokens + record.usage.outputTokens,
      },
    });
    for (const span of record.spans) {
      const usage =
        span.inputTokens !== undefined || span.outputTokens !== undefined
          ? {
              prompt_tokens: span.inputTokens ?? 0,
              completion_tokens: span.outputTokens ?? 0,
              total_tokens: (span.inputTokens ?? 0) + (span.outputTokens ?? 0),
            }
          : undefined;
      // created with its end time: `.end()` would overwrite it with the export time
      trace.span({
        name: span.name,
        type: SPAN_TYPE[span.name] ?? 'general',
        startTime: span.startedAt,
        endTime: new Date(span.startedAt.getTime() + span.latencyMs),
        metadata: { status: span.status, latencyMs: span.latencyMs, ...span.attributes },
        ...(span.model ? { model: span.model } : {}),
        ...(usage ? { usage } : {}),
        ...(span.error ? { errorInfo: { exceptionType: 'error', message: span.error, traceback: '' } } : {}),
      });
    }
    await opik.flush({ silent: true });
  }

  async close(): Promise<void> {
    const opik = await this.client?.catch(() => undefined);
    await opik?.flush({ silent: true }).catch(() => undefined);
  }
}

/**
 * Opik wants UUIDv7 ids (time-ordered). Ours are v4; the trace id is kept in metadata and the Opik id is made
 * from it with the v7 layout (48-bit ms timestamp, version 7, variant 10) so one request maps to one Opik trace.
 */
function uuidV7Like(id: string, createdAt: Date): string {
  const hex = id.replace(/-/g, '');
  const ts = createdAt.getTime().toString(16).padStart(12, '0').slice(-12);
  const rest = `7${hex.slice(13, 16)}${((Number.parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16)}${hex.slice(17, 32)}`;
  const full = ts + rest;
  return `${full.slice(0, 8)}-${full.slice(8, 12)}-${full.slice(12, 16)}-${full.slice(16, 20)}-${full.slice(20, 32)}`;
}
