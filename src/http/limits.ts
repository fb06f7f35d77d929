// Limits on what one request, one key and one instance may take: JSON nesting and item counts
// per request, requests and tokens per minute per API key (token buckets), streams open at once.
// The HTTP hooks in guard.ts apply them; this file holds the arithmetic, so it can be tested
// with a fake clock.

import { performance } from 'node:perf_hooks';
import type { ApiKeyConfig, ParleyConfig } from '../config/types.ts';
import { ApiError } from '../protocol/errors.ts';

export const DEFAULT_LIMITS = {
  max_input_items: 10_000,
  max_json_depth: 100,
  max_concurrent_streams: 1000,
  stream_idle_timeout_ms: 300_000,
  stream_heartbeat_ms: 15_000,
  max_stream_buffer_bytes: 4 * 1024 * 1024,
  shutdown_timeout_ms: 30_000,
} as const;

export type Limits = Required<ParleyConfig['limits']>;

export function resolveLimits(limits: ParleyConfig['limits']): Limits {
  return { ...DEFAULT_LIMITS, ...limits };
}

// ---------------------------------------------------------------------------------------------
// Per request.

/** True when `value` nests arrays/objects deeper than `limit` (walked iteratively: no stack to overflow). */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (depth > limit) return true;
    if (Array.isArray(node)) {
      for (const child of node) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    } else {
      for (const key in node as Record<string, unknown>) {
        const child = (node as Record<string, unknown>)[key];
        if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
      }
    }
  }
  return false;
}

/** The list fields that carry items, by the endpoints that take them. */
const ITEM_FIELDS = ['input', 'items', 'messages'] as const;

/** Throws a 400 when the body nests too deeply or carries too many items. */
export function checkBody(body: unknown, limits: Pick<Limits, 'max_json_depth' | 'max_input_items'>): void {
  if (body === null || typeof body !== 'object') return;
  if (nestedDeeperThan(body, limits.max_json_depth)) {
    throw new ApiError(400, 'invalid_request_error', `The request body nests arrays and objects more than ${limits.max_json_depth} levels deep (limits.max_json_depth).`, {
      code: 'nesting_too_deep',
    });
  }
  if (Array.isArray(body)) return;
  for (const field of ITEM_FIELDS) {
    const list = (body as Record<string, unknown>)[field];
    if (Array.isArray(list) && list.length > limits.max_input_items) {
      throw new ApiError(400, 'invalid_request_error', `Invalid '${field}': at most ${limits.max_input_items} items per request (limits.max_input_items), got ${list.length}.`, {
        param: field,
        code: 'too_many_items',
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Per key: token buckets refilled continuously, holding at most one minute's worth.

export class Bucket {
  readonly capacity: number;
  #level: number;
  #at: number;

  constructor(perMinute: number, now: number) {
    this.capacity = perMinute;
    this.#level = perMinute;
    this.#at = now;
  }

  level(now: number): number {
    const refill = ((now - this.#at) / 60_000) * this.capacity;
    this.#level = Math.min(this.capacity, this.#level + refill);
    this.#at = now;
    return this.#level;
  }

  /** Takes `amount` if at least min(amount, capacity) is there; else the ms until it will be. */
  take(amount: number, now: number): number {
    const level = this.level(now);
    const need = Math.min(amount, this.capacity);
    if (level >= need) {
      this.#level = level - amount;
      return 0;
    }
    return Math.ceil(((need - level) / this.capacity) * 60_000);
  }

  /** Adds (or, negative, takes) tokens; the level may go below zero (a debt paid by waiting). */
  adjust(delta: number, now: number): void {
    this.#level = Math.min(this.capacity, this.level(now) - delta);
  }
}

interface KeyBuckets {
  requests: Bucket | null;
  tokens: Bucket | null;
}

export type Admission = { ok: true } | { ok: false; error: ApiError };

export class RateLimiter {
  readonly #buckets = new Map<string, KeyBuckets>();
  readonly #clock: () => number;

  constructor(keys: readonly ApiKeyConfig[], clock: () => number = () => performance.now()) {
    this.#clock = clock;
    const now = clock();
    for (const key of keys) {
      if (key.requests_per_minute === null && key.tokens_per_minute === null) continue;
      this.#buckets.set(key.sha256, {
        requests: key.requests_per_minute === null ? null : new Bucket(key.requests_per_minute, now),
        tokens: key.tokens_per_minute === null ? null : new Bucket(key.tokens_per_minute, now),
      });
    }
  }

  /** One request against the key's requests-per-minute. */
  admitRequest(key: ApiKeyConfig): Admission {
    const bucket = this.#buckets.get(key.sha256)?.requests;
    if (!bucket) return { ok: true };
    const wait = bucket.take(1, this.#clock());
    if (wait === 0) return { ok: true };
    return { ok: false, error: rateLimited('requests', bucket, 1, wait) };
  }

  /** An estimate of the tokens a model call will use, against the key's tokens-per-minute. */
  admitTokens(key: ApiKeyConfig, estimate: number): Admission {
    const bucket = this.#buckets.get(key.sha256)?.tokens;
    if (!bucket) return { ok: true };
    const wait = bucket.take(estimate, this.#clock());
    if (wait === 0) return { ok: true };
    return { ok: false, error: rateLimited('tokens', bucket, estimate, wait) };
  }

  limitsTokens(key: ApiKeyConfig): boolean {
    return Boolean(this.#buckets.get(key.sha256)?.tokens);
  }

  /** Corrects an admission estimate by what the upstream reported: `delta` = actual - estimated. */
  correctTokens(key: ApiKeyConfig, delta: number): void {
    this.#buckets.get(key.sha256)?.tokens?.adjust(delta, this.#clock());
  }
}

function rateLimited(kind: 'requests' | 'tokens', bucket: Bucket, requested: number, waitMs: number): ApiError {
  const seconds = Math.max(1, Math.ceil(waitMs / 1000));
  const unit = kind === 'requests' ? 'requests per min (RPM)' : 'tokens per min (TPM)';
  return new ApiError(
    429,
    'rate_limit_error',
    `Rate limit reached for this API key on ${unit}: Limit ${bucket.capacity}, Requested ${requested}. Please try again in ${seconds}s.`,
    {
      code: 'rate_limit_exceeded',
      headers: {
        'retry-after': String(seconds),
        'retry-after-ms': String(Math.max(1, Math.ceil(waitMs))),
        [`x-ratelimit-limit-${kind}`]: String(bucket.capacity),
      },
    },
  );
}

/** Tokens a request will use, guessed before the model is called: ~4 bytes per token of body, plus max_output_tokens. */
export function estimateTokens(bodyBytes: number, body: unknown): number {
  let estimate = Math.ceil(bodyBytes / 4);
  if (body !== null && typeof body === 'object') {
    const b = body as Record<string, unknown>;
    const max = b.max_output_tokens ?? b.max_completion_tokens ?? b.max_tokens;
    if (typeof max === 'number' && Number.isFinite(max) && max > 0) estimate += Math.min(max, 1_000_000);
  }
  return Math.max(1, estimate);
}

// ---------------------------------------------------------------------------------------------
// Per instance.

/** Streams open at once; a stream holds its slot until its connection closes. */
export class StreamSlots {
  readonly max: number;
  #active = 0;

  constructor(max: number) {
    this.max = max;
  }

  get active(): number {
    return this.#active;
  }

  /** A release function, or null when every slot is taken. */
  acquire(): (() => void) | null {
    if (this.#active >= this.max) return null;
    this.#active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#active--;
    };
  }
}

export function tooManyStreams(max: number): ApiError {
  return new ApiError(503, 'server_error', `This gateway instance is serving its maximum of ${max} concurrent streams (limits.max_concurrent_streams). Retry shortly.`, {
    code: 'too_many_streams',
    headers: { 'retry-after': '1' },
  });
}
