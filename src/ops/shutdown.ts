// Graceful shutdown. On SIGTERM the gateway stops accepting (the listener closes; requests that
// still arrive on open connections get a 503 `gateway_shutting_down`), lets in-flight requests and
// background turns run until `limits.shutdown_timeout`, then stops the foreground turns still
// running: each ends `incomplete` (reason `gateway_shutdown`) with what it produced, stored and
// sent to its client as its terminal event. Background turns still running then are stopped by
// BackgroundRuns.shutdown() (stored `failed`, `gateway_shutdown`) when the app closes.

import { setTimeout as sleep } from 'node:timers/promises';
import { TurnStop } from '../engine/stop.ts';

export interface DrainResult {
  /** Requests that finished on their own during the grace period. */
  finished: boolean;
  /** Foreground turns stopped at the deadline. */
  stopped: number;
}

export class Drain {
  #draining = false;
  #requests = 0;
  readonly #turns = new Set<AbortController>();
  readonly #background: (() => number)[] = [];

  get draining(): boolean {
    return this.#draining;
  }

  /** From now on new requests are answered 503 `gateway_shutting_down` and /readyz is not ready. */
  stopAccepting(): void {
    this.#draining = true;
  }

  /** Requests in flight (streams included). */
  get requests(): number {
    return this.#requests;
  }

  /** Counts a request until the returned function is called (once). */
  trackRequest(): () => void {
    this.#requests++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#requests--;
    };
  }

  /** Background turns running, as `running()` counts them; the drain waits for them too. */
  watchBackground(running: () => number): void {
    this.#background.push(running);
  }

  /** Background turns running right now. */
  get background(): number {
    let n = 0;
    for (const running of this.#background) n += running();
    return n;
  }

  /** A foreground turn the deadline may stop through `abort`; call the returned function when it ends. */
  registerTurn(abort: AbortController): () => void {
    this.#turns.add(abort);
    return () => this.#turns.delete(abort);
  }

  /**
   * Waits until no request is in flight and no background turn runs, or until `timeoutMs`; then
   * stops the foreground turns left and gives them `settleMs` to record their end.
   */
  async drain(options: { timeoutMs: number; settleMs?: number; pollMs?: number }): Promise<DrainResult> {
    this.#draining = true;
    const poll = options.pollMs ?? 25;
    const deadline = Date.now() + options.timeoutMs;
    const idle = () => this.#requests === 0 && this.background === 0;
    while (!idle() && Date.now() < deadline) await sleep(Math.min(poll, Math.max(1, deadline - Date.now())));
    if (idle()) return { finished: true, stopped: 0 };
    const stopped = this.#turns.size;
    for (const abort of this.#turns) if (!abort.signal.aborted) abort.abort(new TurnStop('interrupted'));
    const settle = Date.now() + (options.settleMs ?? 5000);
    while (this.#turns.size > 0 && Date.now() < settle) await sleep(poll);
    return { finished: false, stopped };
  }
}
