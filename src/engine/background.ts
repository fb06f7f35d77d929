// Background mode: `background: true` answers `queued` at once and runs the turn detached from
// the request that created it, under its own AbortController.
//
// - Persisted as it goes: `queued` at creation, `in_progress` when the model is called, the
//   output so far every `progressIntervalMs` (store.saveProgress), the final state before the
//   terminal event. A GET poll, on any instance sharing the store, sees the turn advance.
// - Streams: every event of a turn running on this instance goes into a bounded in-memory log,
//   so `GET /v1/responses/{id}?stream=true&starting_after=N` resumes exactly where a dropped
//   connection left off, live or for `retainMs` after the end. A response running on another
//   instance, or finished longer ago, is streamed from the store by SnapshotReplayer.
// - Cancel: on this instance, the turn's signal is aborted (the upstream request with it) and the
//   turn ends `cancelled`. On another instance, the store is marked `cancelled`; the instance
//   running the turn notices at its next progress write and aborts.
// - Shutdown: turns still running are aborted and stored `failed` (`gateway_shutdown`), never
//   left `in_progress`. A process killed outright cannot do that; its rows stay `in_progress`
//   (never context) until a gateway's retention pass marks them `failed` (`interrupted`) once
//   they are older than `state_storage.stale_turn_after`.

import { ApiError, invalidRequest, notFound, storeUnavailable } from '../protocol/errors.ts';
import { type ResponseState, toResponseObject } from '../protocol/response.ts';
import type { CreateResponseRequest, Item, ResponseObject, StreamEvent } from '../protocol/types.ts';
import { StoreConflictError } from '../store/types.ts';
import type { Engine } from './engine.ts';
import { SnapshotReplayer } from './replay.ts';
import { TurnStop } from './stop.ts';

export interface BackgroundOptions {
  /** How often a running turn's output is written to the store (default 1000 ms). */
  progressIntervalMs?: number;
  /** How long a finished turn's exact event log stays available for resuming (default 5 min). */
  retainMs?: number;
  /** Finished turns whose logs are retained at most (default 1000); the oldest go first. */
  maxRetained?: number;
  /** Events kept per turn (default 100,000); resuming before the oldest kept one is a 400. */
  maxEvents?: number;
  /** How often a stream of a response running elsewhere re-reads the store (default 500 ms). */
  pollMs?: number;
  /** How long shutdown waits for aborted turns to record their end (default 5 s). */
  shutdownGraceMs?: number;
  onError?: (error: unknown, context: string) => void;
}

/** Where a stream's events go; the HTTP layer adapts it to SSE. */
export interface StreamSubscriber {
  /** Called once, before any event, when the stream is accepted. */
  open(): void;
  send(event: StreamEvent): void;
  /** The stream is over (the terminal event was sent, or the turn went away). */
  end(): void;
}

const TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed']);

export class BackgroundRuns {
  readonly #engine: Engine;
  readonly #options: Required<Omit<BackgroundOptions, 'onError'>>;
  readonly #onError: (error: unknown, context: string) => void;
  readonly #runs = new Map<string, Run>();
  #closing = false;

  constructor(engine: Engine, options: BackgroundOptions = {}) {
    this.#engine = engine;
    this.#options = {
      progressIntervalMs: options.progressIntervalMs ?? 1000,
      retainMs: options.retainMs ?? 5 * 60_000,
      maxRetained: options.maxRetained ?? 1000,
      maxEvents: options.maxEvents ?? 100_000,
      pollMs: options.pollMs ?? 500,
      shutdownGraceMs: options.shutdownGraceMs ?? 5000,
    };
    this.#onError = options.onError ?? (() => {});
  }

  /** Turns running on this instance right now. */
  get running(): number {
    let n = 0;
    for (const run of this.#runs.values()) if (!run.finished) n++;
    return n;
  }

  /**
   * Starts a background turn. Resolves once it is stored as `queued`, with the `queued` response
   * object; everything that fails before that (bad input, unknown model or history, store down)
   * rejects with the same ApiError a foreground request gets.
   */
  start(request: CreateResponseRequest): Promise<ResponseObject> {
    if (this.#closing) {
      return Promise.reject(new ApiError(503, 'server_error', 'The gateway is shutting down; retry on another instance.', { code: 'gateway_shutting_down' }));
    }
    if (!this.#engine.store) {
      return Promise.reject(
        invalidRequest('Background mode needs state storage: configure `state_storage`.', 'background', 'state_storage_disabled'),
      );
    }
    const abort = new AbortController();
    let run: Run | null = null;
    return new Promise<ResponseObject>((resolve, reject) => {
      const done = this.#engine.createResponse(request, {
        signal: abort.signal,
        onEvent: (event) => run?.record(event),
        onQueued: (state) => {
          run = new Run(state, abort, this.#engine, this.#options, this.#onError);
          this.#runs.set(state.id, run);
          resolve(run.queued);
        },
      });
      done.then(
        () => {
          if (run && !run.finished) run.crash(new Error('the turn ended without a terminal event'));
          this.#settled(run);
        },
        (error: unknown) => {
          if (run === null) reject(error);
          else {
            this.#onError(error, `background response ${run.id}`);
            run.crash(error);
            this.#settled(run);
          }
        },
      );
    });
  }

  /** A turn running on this instance (or finished here within `retainMs`). */
  get(id: string): Run | undefined {
    return this.#runs.get(id);
  }

  /**
   * POST /v1/responses/{id}/cancel. A running background response ends `cancelled` and is
   * returned; a finished one is returned unchanged (cancelling twice is harmless). Only
   * background responses can be cancelled: others are a 400.
   */
  async cancel(id: string): Promise<ResponseObject> {
    const run = this.#runs.get(id);
    if (run && !run.finished) {
      run.stop('cancelled');
      await run.settledWithin(this.#options.shutdownGraceMs);
      return this.#engine.getResponse(id);
    }
    const store = this.#engine.store;
    const stored = store ? await storeCall(() => store.getResponse(id)) : null;
    if (!store || !stored) throw notFound(`No response found with id '${id}'.`, 'response_id');
    if (stored.params.background !== true) {
      throw invalidRequest(
        `Response '${id}' was not created with background=true: only background responses can be cancelled.`,
        'response_id',
        'invalid_request',
      );
    }
    if (stored.status === 'queued' || stored.status === 'in_progress') {
      // Running on another instance (or on one that died): record the end; its owner stops at
      // its next progress write.
      try {
        await store.finishTurn(id, {
          status: 'cancelled',
          completedAt: null,
          output: stored.output.map(closeItem),
          usage: null,
          error: null,
          incompleteDetails: null,
          costUsd: null,
        });
      } catch (error) {
        if (!(error instanceof StoreConflictError)) throw storeUnavailable(error);
        // It finished in the meantime: return it as it is.
      }
    }
    return this.#engine.getResponse(id);
  }

  /**
   * Streams a response's events with `sequence_number > startingAfter` (all when null) to
   * `subscriber`, resolving when the stream ends or `closed` aborts. Throws an ApiError (unknown
   * response, events no longer held) before calling `subscriber.open()`.
   */
  async stream(
    id: string,
    options: { startingAfter: number | null; include: readonly string[] },
    subscriber: StreamSubscriber,
    closed: AbortSignal,
  ): Promise<void> {
    const after = options.startingAfter ?? -1;
    const run = this.#runs.get(id);
    if (run) {
      if (closed.aborted) return;
      await new Promise<void>((resolve) => {
        const unsubscribe = run.subscribe(after, {
          open: () => subscriber.open(),
          send: (event) => subscriber.send(event),
          end: () => {
            subscriber.end();
            resolve();
          },
        });
        closed.addEventListener(
          'abort',
          () => {
            unsubscribe();
            resolve();
          },
          { once: true },
        );
      });
      return;
    }
    // Not running here: the store has it, finished or in progress on another instance.
    let response = await this.#engine.getResponse(id, options.include);
    subscriber.open();
    const replayer = new SnapshotReplayer((event) => {
      if (event.sequence_number > after) subscriber.send(event);
    });
    replayer.push(response);
    while (!replayer.ended && !closed.aborted) {
      await sleep(this.#options.pollMs, closed);
      if (closed.aborted) break;
      try {
        response = await this.#engine.getResponse(id, options.include);
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) break;
        this.#onError(error, `polling background response ${id}`);
        continue;
      }
      replayer.push(response);
    }
    subscriber.end();
  }

  /** Stops every running turn (stored `failed`, `gateway_shutdown`) and waits for them to record it. */
  async shutdown(): Promise<void> {
    this.#closing = true;
    const live = [...this.#runs.values()].filter((run) => !run.finished);
    for (const run of live) run.stop('shutdown');
    await Promise.all(live.map((run) => run.settledWithin(this.#options.shutdownGraceMs)));
    for (const run of this.#runs.values()) run.dispose();
    this.#runs.clear();
  }

  #settled(run: Run | null): void {
    if (!run) return;
    run.dispose();
    if (this.#closing) return;
    const timer = setTimeout(() => {
      if (this.#runs.get(run.id) === run) this.#runs.delete(run.id);
    }, this.#options.retainMs);
    timer.unref();
    // Bound the retained logs: drop the oldest finished runs first (Map order is insertion order).
    let finished = 0;
    for (const r of this.#runs.values()) if (r.finished) finished++;
    for (const [id, r] of this.#runs) {
      if (finished <= this.#options.maxRetained) break;
      if (r.finished) {
        this.#runs.delete(id);
        finished--;
      }
    }
  }
}

/** One background turn on this instance: its event log, its subscribers, its progress writes. */
export class Run {
  readonly id: string;
  /** The response as it was answered to the creating request. */
  readonly queued: ResponseObject;
  finished = false;
  readonly #state: ResponseState;
  readonly #abort: AbortController;
  readonly #engine: Engine;
  readonly #options: Required<Omit<BackgroundOptions, 'onError'>>;
  readonly #onError: (error: unknown, context: string) => void;
  #events: StreamEvent[] = [];
  /** Sequence number of #events[0] (older ones were dropped past maxEvents). */
  #first = 0;
  #subscribers = new Set<StreamSubscriber>();
  #settled: Promise<void>;
  #markSettled!: () => void;
  #timer: NodeJS.Timeout | null;
  #dirty = false;
  #writing = false;
  #lastWrite = Date.now();

  constructor(
    state: ResponseState,
    abort: AbortController,
    engine: Engine,
    options: Required<Omit<BackgroundOptions, 'onError'>>,
    onError: (error: unknown, context: string) => void,
  ) {
    this.id = state.id;
    this.queued = toResponseObject(state);
    this.#state = state;
    this.#abort = abort;
    this.#engine = engine;
    this.#options = options;
    this.#onError = onError;
    this.#settled = new Promise((resolve) => {
      this.#markSettled = resolve;
    });
    this.#timer = setInterval(() => void this.#saveProgress(false), options.progressIntervalMs);
    this.#timer.unref();
  }

  record(event: StreamEvent): void {
    this.#events.push(event);
    if (this.#events.length > this.#options.maxEvents) {
      const drop = this.#events.length - this.#options.maxEvents;
      this.#events.splice(0, drop);
      this.#first += drop;
    }
    for (const subscriber of this.#subscribers) subscriber.send(event);
    if (TERMINAL.has(event.type)) {
      this.finished = true;
      for (const subscriber of this.#subscribers) subscriber.end();
      this.#subscribers.clear();
      this.#markSettled();
    } else {
      this.#dirty = true;
      // The status change is worth writing at once; output waits for the next tick.
      if (event.type === 'response.in_progress') void this.#saveProgress(true);
    }
  }

  /** Replays the held events after `after`, then follows live ones. Returns the unsubscribe. */
  subscribe(after: number, subscriber: StreamSubscriber): () => void {
    if (after + 1 < this.#first) {
      throw invalidRequest(
        `Events up to sequence number ${this.#first - 1} of response '${this.id}' are no longer held; resume from starting_after=${this.#first - 1} or later, or retrieve the response.`,
        'starting_after',
        'invalid_value',
      );
    }
    subscriber.open();
    for (const event of this.#events) if (event.sequence_number > after) subscriber.send(event);
    if (this.finished) {
      subscriber.end();
      return () => {};
    }
    this.#subscribers.add(subscriber);
    return () => this.#subscribers.delete(subscriber);
  }

  stop(kind: 'cancelled' | 'shutdown'): void {
    if (!this.#abort.signal.aborted) this.#abort.abort(new TurnStop(kind));
  }

  /** Resolves when the turn has ended (or `ms` passed). */
  settledWithin(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    });
    return Promise.race([this.#settled, timeout]).finally(() => clearTimeout(timer));
  }

  /** The engine threw after the turn was queued (a bug): end the stream rather than hang it. */
  crash(error: unknown): void {
    if (this.finished) return;
    const state = this.#state;
    state.status = 'failed';
    state.error = { code: 'internal_error', message: error instanceof Error ? error.message : String(error) };
    this.#engine.store?.finishTurn(state.id, {
      status: 'failed',
      completedAt: null,
      output: state.output.map(closeItem),
      usage: state.usage,
      error: state.error,
      incompleteDetails: null,
      costUsd: null,
    }).catch((e: unknown) => this.#onError(e, `recording crashed background response ${state.id}`));
    const last = this.#events.at(-1)?.sequence_number ?? this.#first - 1;
    this.record({ type: 'response.failed', sequence_number: last + 1, response: toResponseObject(state) });
  }

  dispose(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#markSettled();
  }

  async #saveProgress(now: boolean): Promise<void> {
    const state = this.#state;
    const store = this.#engine.store;
    if (!store || this.#writing || (state.status !== 'queued' && state.status !== 'in_progress')) return;
    const due = now || this.#dirty || Date.now() - this.#lastWrite >= 5 * this.#options.progressIntervalMs;
    if (!due) return;
    this.#writing = true;
    this.#dirty = false;
    try {
      const saved = await store.saveProgress(state.id, { status: state.status, output: state.output });
      this.#lastWrite = Date.now();
      // Finished in the store while still running here: cancelled through another instance.
      if (!saved && (state.status === 'queued' || state.status === 'in_progress')) this.stop('cancelled');
    } catch (error) {
      this.#onError(error, `saving progress of background response ${state.id}`);
    } finally {
      this.#writing = false;
    }
  }
}

/** An item as it stands when its turn is cut short: never left `in_progress`. */
function closeItem(item: Item): Item {
  return 'status' in item && item.status === 'in_progress' ? ({ ...item, status: 'incomplete' } as Item) : item;
}

async function storeCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw storeUnavailable(error);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
