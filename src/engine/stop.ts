// Why a turn was stopped on purpose, carried as the abort reason of its signal, and what that
// makes of the turn: a cancelled background response ends `cancelled`; one still running when the
// gateway shuts down ends `failed`, never left `in_progress` in the store.

import type { ResponseState } from '../protocol/response.ts';

export class TurnStop extends Error {
  readonly kind: 'cancelled' | 'shutdown';
  constructor(kind: 'cancelled' | 'shutdown') {
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
  } else {
    state.status = 'failed';
    state.error = {
      code: 'gateway_shutdown',
      message: 'The gateway shut down while this background response was running. Create the response again.',
    };
  }
  return true;
}
