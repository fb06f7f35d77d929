// Why a turn was stopped on purpose, carried as the abort reason of its signal, and what that
// makes of the turn: a cancelled background response ends `cancelled`; one still running when the
// gateway shuts down ends `failed`, never left `in_progress` in the store. A foreground turn still
// running at the shutdown deadline (`interrupted`) ends `incomplete` with what it produced: its
// client is still connected and gets that as its terminal event.

import type { ResponseState } from '../protocol/response.ts';

export class TurnStop extends Error {
  readonly kind: 'cancelled' | 'shutdown' | 'interrupted';
  constructor(kind: 'cancelled' | 'shutdown' | 'interrupted') {
    super(kind === 'cancelled' ? 'The response was cancelled.' : 'The gateway is shutting down.');
    this.name = 'TurnStop';
    this.kind = kind;
  }
}

/** Sets the outcome of a deliberately stopped turn on `state`; false when `signal` was not stopped that way. */
export function applyStop(state: ResponseState, signal: AbortSignal | undefined): boolean {
  const reason: unknown = signal?.aborted ? signal.reason : undefined;
  if (!(reason instanceof TurnStop)) return false;
  state.completedAt = null;
  state.incompleteDetails = null;
  if (reason.kind === 'cancelled') {
    state.status = 'cancelled';
    state.error = null;
  } else if (reason.kind === 'interrupted') {
    state.status = 'incomplete';
    state.error = null;
    state.incompleteDetails = { reason: 'gateway_shutdown' };
    state.completedAt = Math.floor(Date.now() / 1000);
  } else {
    state.status = 'failed';
    state.error = {
      code: 'gateway_shutdown',
      message: 'The gateway shut down while this background response was running. Create the response again.',
    };
  }
  return true;
}
