import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';

/** One Server-Sent Event: optional `event:` name, the payload as one `data:` line of JSON (or a literal). */
export function sseEvent(data: unknown, event?: string): string {
  const payload = typeof data === 'string' ? data : JSON.stringify(data);
  return `${event ? `event: ${event}\n` : ''}data: ${payload}\n\n`;
}

/**
 * Sends `events` (already formatted SSE frames) as a `text/event-stream` response. The response goes through
 * Fastify (so headers set earlier, e.g. rate-limit ones, are kept); when the client goes away the stream is
 * destroyed, which ends the generator (its `finally` runs) and fires `onClientGone`.
 */
export function sendEventStream(reply: FastifyReply, events: AsyncIterable<string>, onClientGone: () => void) {
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) onClientGone();
  });
  return reply
    .header('content-type', 'text/event-stream; charset=utf-8')
    .header('cache-control', 'no-cache, no-transform')
    .header('x-accel-buffering', 'no')
    .send(Readable.from(events, { objectMode: false }));
}
