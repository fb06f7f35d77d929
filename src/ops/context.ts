// What the operations side (metrics, traces, rate-limit accounting) knows about the request a
// piece of work belongs to. Route handlers run inside `requestContext.run(ctx, …)`, so the store
// and model wrappers find it without being handed it. The tenant that scopes data is never read
// from here: the engine gets it as an explicit argument.

import { AsyncLocalStorage } from 'node:async_hooks';
import type { Span } from '@opentelemetry/api';

export interface RequestContext {
  readonly requestId: string;
  /** performance.now() when the request arrived. */
  readonly startedAt: number;
  /** The request's span when tracing is on. */
  span: Span | null;
  /** For logs and labels only. */
  tenant: string;
  keyName: string | null;
  /** The configured model the request asked for (a bounded label), once known. */
  model: string | null;
  provider: string | null;
  /** Time to the first output from the upstream, once seen (seconds). */
  ttftSeconds: number | null;
  /** Told the tokens each upstream call used, to correct the rate limiter's estimate. */
  onUsage: ((tokens: number) => void) | null;
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

export function currentRequest(): RequestContext | undefined {
  return requestContext.getStore();
}
