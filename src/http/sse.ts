// Server-sent events for a hijacked Fastify reply. Each event is serialised once and written in
// one write, as `event: <type>\ndata: <json>\n\n`; the stream ends with `data: [DONE]`.
// Heartbeats are SSE comments, which clients ignore (an unknown event type would make the
// official SDK throw).

import type { ServerResponse } from 'node:http';
import type { StreamEvent } from '../protocol/types.ts';

export class SseWriter {
  private readonly res: ServerResponse;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(res: ServerResponse, headers: Record<string, string> = {}) {
    this.res = res;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      ...headers,
    });
    // Disable Nagle: every event should leave as soon as it is written.
    res.socket?.setNoDelay(true);
  }

  get open(): boolean {
    return !this.res.writableEnded && !this.res.destroyed;
  }

  send(event: StreamEvent): void {
    if (!this.open) return;
    this.res.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
  }

  /** Keeps idle proxies from closing a stream while the upstream is thinking. */
  startHeartbeat(intervalMs: number): void {
    this.heartbeat = setInterval(() => {
      if (this.open) this.res.write(': keep-alive\n\n');
    }, intervalMs);
    this.heartbeat.unref();
  }

  end(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.open) this.res.end('data: [DONE]\n\n');
  }
}
