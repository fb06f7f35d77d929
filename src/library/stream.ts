// A streamed response in-process: the same events an HTTP client reads as SSE, as an async
// iterable, plus finalResponse(). The turn starts at once; events wait in a queue until read.
// Leaving the loop early (break, return, throw) aborts the turn like a client that disconnects.

import type { ResponseObject, StreamEvent } from '../protocol/types.ts';

const TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed']);

/** Feeds a stream: `run` emits events through `emit` and settles when the stream is over. */
export type StreamRun = (emit: (event: StreamEvent) => void, signal: AbortSignal) => Promise<ResponseObject | null | undefined>;

export class ResponseStream implements AsyncIterable<StreamEvent> {
  readonly #abort = new AbortController();
  readonly #queue: StreamEvent[] = [];
  #wake: (() => void) | null = null;
  #ended = false;
  #error: unknown = null;
  #final: ResponseObject | null = null;
  #iterating = false;
  readonly #done: Promise<ResponseObject>;

  constructor(run: StreamRun) {
    const settled = run((event) => {
      if (TERMINAL.has(event.type)) this.#final = event.response as ResponseObject;
      this.#queue.push(event);
      this.#notify();
    }, this.#abort.signal);
    this.#done = settled.then(
      (response) => {
        this.#ended = true;
        this.#notify();
        const final = this.#final ?? response ?? null;
        if (final === null) throw new Error('The stream ended without a terminal event.');
        return final;
      },
      (error: unknown) => {
        this.#ended = true;
        this.#error = error;
        this.#notify();
        throw error;
      },
    );
    // Errors reach whoever iterates or awaits finalResponse(); never an unhandled rejection.
    this.#done.catch(() => {});
  }

  /** Aborts the turn (as a client disconnecting would): the upstream request is aborted with it. */
  abort(): void {
    this.#abort.abort();
  }

  /** The response as the terminal event carried it (completed, incomplete or failed). */
  finalResponse(): Promise<ResponseObject> {
    return this.#done;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<StreamEvent> {
    if (this.#iterating) throw new Error('A ResponseStream can be iterated once.');
    this.#iterating = true;
    let finished = false;
    try {
      for (;;) {
        const event = this.#queue.shift();
        if (event) {
          yield event;
          continue;
        }
        if (this.#ended) {
          finished = true;
          if (this.#error !== null) throw this.#error;
          return;
        }
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
      }
    } finally {
      if (!finished && !this.#ended && this.#final === null) this.abort();
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}
