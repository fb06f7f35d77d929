// Server-sent events for a hijacked Fastify reply. Each event is serialised once, as
// `event: <type>\ndata: <json>\n\n`; the events of one burst share one write (see queue()), and
// the first token leaves at once with what is queued before it. The stream ends with `data: [DONE]`.
// Heartbeats are SSE comments, which clients ignore (an unknown event type would make the
// official SDK throw).
//
// Slow clients: when the socket's buffer is full (`write` returned false), drained() gives the
// producer a promise to wait on until 'drain', so the upstream is read no faster than the client
// reads. Streams that cannot wait (several clients following one background response) are
// dropped once their client is `maxBufferedBytes` behind; it can resume with `starting_after`.
// A stream that makes no progress for `idleTimeoutMs` (nothing to send, or a client that reads
// nothing) is closed.

import type { ServerResponse } from 'node:http';
import type { StreamEvent } from '../protocol/types.ts';

export interface SsePolicy {
  /** Closes a stream after this long without an event written or drained (heartbeats do not count). */
  idleTimeoutMs: number;
  /** How often a stream gets a heartbeat comment (between events) to keep idle proxies from closing it. */
  heartbeatMs: number;
  /** A stream that does not wait for its client is dropped when this many bytes are pending. */
  maxBufferedBytes: number;
  /** Every open stream, for the buffered-bytes gauge. */
  open: OpenStreams;
}

/** The streams open on this instance. */
export class OpenStreams {
  readonly #streams = new Set<ServerResponse>();

  add(res: ServerResponse): void {
    this.#streams.add(res);
  }

  delete(res: ServerResponse): void {
    this.#streams.delete(res);
  }

  get size(): number {
    return this.#streams.size;
  }

  /** Bytes written to open streams that their clients have not taken yet. */
  bufferedBytes(): number {
    let n = 0;
    for (const res of this.#streams) n += res.writableLength;
    return n;
  }
}

export const DEFAULT_SSE_POLICY: SsePolicy = {
  idleTimeoutMs: 300_000,
  heartbeatMs: 15_000,
  maxBufferedBytes: 4 * 1024 * 1024,
  open: new OpenStreams(),
};

/** See SseWriter.queue. */
const MAX_BURST_CHARS = 16 * 1024;

/** An open event stream's idle timeout and heartbeat, and its end (see openEventStream). */
export interface EventStreamTimer {
  /** Progress (a write, a drain): the idle timeout starts over. */
  refresh(): void;
  /** Clears the timers and stops counting the stream in `policy.open`; also runs on 'close'. */
  stop(): void;
}

/**
 * Opens an event stream on `res`, for SseWriter and for the Chat Completions byte relay alike:
 * the response head (`headers` on top of the SSE defaults), Nagle off so that every write leaves
 * at once, the stream counted in `policy.open`, a client or upstream that makes no progress for
 * `policy.idleTimeoutMs` dropped, and a `: keep-alive` comment every `policy.heartbeatMs` so that
 * idle proxies keep the stream open while the upstream is thinking. `between()` says whether the
 * bytes written so far end an event (a writer of whole events need not say): a heartbeat never
 * goes inside one.
 */
export function openEventStream(
  res: ServerResponse,
  status: number,
  headers: Record<string, string>,
  policy: SsePolicy,
  between: () => boolean = () => true,
): EventStreamTimer {
  res.writeHead(status, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    ...headers,
  });
  res.socket?.setNoDelay(true);
  policy.open.add(res);
  const idle = setTimeout(() => res.destroy(), policy.idleTimeoutMs);
  idle.unref();
  const heartbeat = setInterval(() => {
    // A client that is not reading gets nothing more to hold.
    if (between() && !res.writableNeedDrain && !res.writableEnded && !res.destroyed) res.write(': keep-alive\n\n');
  }, policy.heartbeatMs);
  heartbeat.unref();
  let stopped = false;
  const stop = () => {
    stopped = true;
    clearTimeout(idle);
    clearInterval(heartbeat);
    policy.open.delete(res);
  };
  res.once('close', stop);
  return {
    refresh: () => {
      if (!stopped) idle.refresh();
    },
    stop,
  };
}

export class SseWriter {
  private readonly res: ServerResponse;
  private readonly policy: SsePolicy;
  /** True when this stream drops a client that falls behind instead of waiting for it. */
  private readonly dropWhenBehind: boolean;
  private readonly idle: EventStreamTimer;
  private waiting: Promise<void> | null = null;
  /** Set once the first token is written (it alone skips the wait for the end of its burst). */
  private batching = false;
  /** Events of the current burst not yet written. */
  private pending: string | null = null;

  constructor(res: ServerResponse, headers: Record<string, string> = {}, policy: SsePolicy = DEFAULT_SSE_POLICY, options: { dropWhenBehind?: boolean } = {}) {
    this.res = res;
    this.policy = policy;
    this.dropWhenBehind = options.dropWhenBehind ?? false;
    this.idle = openEventStream(res, 200, headers, policy);
    res.on('drain', this.idle.refresh);
  }

  get open(): boolean {
    return !this.res.writableEnded && !this.res.destroyed;
  }

  /** Bytes written that the client has not taken yet. */
  get buffered(): number {
    return this.res.writableLength;
  }

  send(event: StreamEvent): void {
    const chunk = `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
    if (!this.batching && event.type.endsWith('.delta')) {
      // The first token leaves at once, with whatever came before it still queued in the same
      // write: one write instead of one per event (`response.created`, `…in_progress`, the item
      // and part added), each of which cost a writev syscall. Events before it are not held for
      // it: they leave at the end of their own burst, as every later event does (queue()).
      this.batching = true;
      const pending = this.pending;
      this.pending = null;
      this.write(pending === null ? chunk : pending + chunk);
      return;
    }
    this.queue(chunk);
  }

  /** A `data:`-only event (Chat Completions chunks). */
  sendData(data: unknown): void {
    this.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /**
   * Events produced in one burst (the parts of one upstream read, handled in one run of the
   * microtask queue) leave in one write, flushed by process.nextTick, which runs once that
   * microtask queue is empty. An upstream that sends tokens one by one sees no delay (each read is
   * its own burst); one that sends many at once costs one write instead of one per event. The
   * first token is never held back (send()).
   */
  private queue(chunk: string): void {
    if (this.pending === null) {
      this.pending = chunk;
      process.nextTick(this.flush);
    } else {
      this.pending += chunk;
    }
    // A burst is written at the latest once it holds this much, so a producer that never yields
    // still meets the socket's backpressure (drained()) and the drop rule.
    if (this.pending.length >= MAX_BURST_CHARS) this.flush();
  }

  private readonly flush = (): void => {
    const chunk = this.pending;
    this.pending = null;
    if (chunk !== null) this.write(chunk);
  };

  /**
   * Null while the client keeps up; else a promise that resolves once the socket has drained (or
   * the stream closed): what a producer awaits before producing more.
   */
  drained(): Promise<void> | null {
    if (!this.open || !this.res.writableNeedDrain) return null;
    this.waiting ??= new Promise<void>((resolve) => {
      const done = () => {
        this.res.off('drain', done);
        this.res.off('close', done);
        this.waiting = null;
        resolve();
      };
      this.res.on('drain', done);
      this.res.on('close', done);
    });
    return this.waiting;
  }

  end(): void {
    this.idle.stop();
    const pending = this.pending ?? '';
    this.pending = null;
    if (this.open) this.res.end(`${pending}data: [DONE]\n\n`);
  }

  private write(chunk: string): void {
    if (!this.open) return;
    if (this.dropWhenBehind && this.res.writableLength > this.policy.maxBufferedBytes) {
      this.res.destroy();
      return;
    }
    this.res.write(chunk);
    this.idle.refresh();
  }

}
