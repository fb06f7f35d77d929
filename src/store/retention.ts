// Retention work shared by `parley prune` and the gateway's in-process sweeper: delete expired
// records (pruneExpired) and make the status of turns whose gateway died honest (failStaleTurns).
// Only the store contract is used, so it works the same on every backend and on any number of
// instances at once (both operations are idempotent; concurrent sweeps just find less to do).

import { nowSeconds } from './codec.ts';
import type { ConversationStore } from './types.ts';

/**
 * A turn still `queued`/`in_progress` this long after it was created is taken to belong to a
 * dead instance. Must exceed the longest turn any instance runs (background turns included): a
 * live turn older than this would be marked failed under its instance, whose finishTurn then fails.
 */
export const DEFAULT_STALE_TURN_AFTER_SECONDS = 60 * 60;

export interface RetentionResult {
  /** Responses and conversations deleted because their expiry had passed. */
  pruned: number;
  /** Unfinished turns marked `failed` with code `interrupted`. */
  failedStaleTurns: number;
}

export interface RetentionOptions {
  staleTurnAfterSeconds: number;
  /** Unix seconds; default now. */
  now?: number;
}

/** One retention pass: stale turns first (so an expired one is deleted in the same pass), then expiry. */
export async function runRetention(store: ConversationStore, options: RetentionOptions): Promise<RetentionResult> {
  const now = options.now ?? nowSeconds();
  const failedStaleTurns = await store.failStaleTurns(now - options.staleTurnAfterSeconds);
  const pruned = await store.pruneExpired(now);
  return { pruned, failedStaleTurns };
}

export interface SweeperOptions {
  intervalSeconds: number;
  staleTurnAfterSeconds: number;
  /** Called after every pass (also when nothing was done). */
  onResult?: (result: RetentionResult) => void;
  /** A failed pass is reported and the next one runs on schedule (the store may be down for a while). */
  onError?: (error: unknown) => void;
}

/**
 * Runs runRetention every `intervalSeconds` until stopped. Passes never overlap (the next is
 * scheduled when one ends), the timer does not keep the process alive, and stop() waits for a
 * running pass so the store can be closed right after.
 */
export class Sweeper {
  readonly #store: ConversationStore;
  readonly #options: SweeperOptions;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #stopped = false;

  constructor(store: ConversationStore, options: SweeperOptions) {
    this.#store = store;
    this.#options = options;
  }

  start(): void {
    if (this.#stopped || this.#timer !== null) return;
    this.#schedule();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  /** One pass now (also what the timer runs); resolves when it is done, never rejects. */
  sweep(): Promise<void> {
    this.#running ??= runRetention(this.#store, { staleTurnAfterSeconds: this.#options.staleTurnAfterSeconds })
      .then(
        (result) => this.#options.onResult?.(result),
        (error: unknown) => this.#options.onError?.(error),
      )
      .finally(() => {
        this.#running = null;
      });
    return this.#running;
  }

  #schedule(): void {
    // Up to 10% jitter, so instances started together do not all sweep in the same instant.
    const ms = this.#options.intervalSeconds * 1000 * (0.9 + Math.random() * 0.1);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.sweep().then(() => {
        if (!this.#stopped) this.#schedule();
      });
    }, ms);
    this.#timer.unref();
  }
}
