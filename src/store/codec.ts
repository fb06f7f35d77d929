// Small rules every backend must apply identically (expiry, paging) and the lazy decoding of
// params, kept in one place so the backends cannot drift apart.

import type { Item } from '../protocol/types.ts';
import type { ItemPage, ListOptions, StoredRequestParams, StoredResponse } from './types.ts';

/** Guards a chain walk against a cycle (only possible if a deleted id were reused). */
export const MAX_CHAIN_DEPTH = 1_000_000;

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** A response is invisible once `now` has reached its expiry. */
export function isExpired(expiresAt: number | null, now: number): boolean {
  return expiresAt !== null && expiresAt <= now;
}

/** The expiry to store: the response's own, else createdAt + the store's default TTL. */
export function effectiveExpiry(
  expiresAt: number | null,
  createdAt: number,
  ttlSeconds: number | null,
): number | null {
  if (expiresAt !== null) return expiresAt;
  return ttlSeconds === null ? null : createdAt + ttlSeconds;
}

/**
 * One page of an in-memory item list. `after` names an item id (exclusive) in the chosen order;
 * an `after` that is not in the list yields an empty page, as in the SQL backends.
 */
export function pageItems(items: readonly Item[], options: ListOptions): ItemPage {
  const ordered = options.order === 'asc' ? items : [...items].reverse();
  let start = 0;
  if (options.after !== undefined) {
    const index = ordered.findIndex((item) => item.id === options.after);
    if (index === -1) return { items: [], hasMore: false };
    start = index + 1;
  }
  const limit = Math.max(0, options.limit);
  return { items: ordered.slice(start, start + limit), hasMore: ordered.length > start + limit };
}

/**
 * Gives `response` a `params` property that is decoded on first read. A chain's ancestors are
 * loaded for their items; their params (tools with JSON schemas, instructions) are per request and
 * almost never read, and decoding them made every turn pay for the whole history. The property is
 * enumerable, so spreading, JSON.stringify, structuredClone and deep equality all see the value.
 */
export function defineLazyParams(
  response: Omit<StoredResponse, 'params'>,
  decode: () => StoredRequestParams,
): StoredResponse {
  return Object.defineProperty(response, 'params', {
    enumerable: true,
    configurable: true,
    get(this: StoredResponse) {
      const value = decode();
      Object.defineProperty(this, 'params', { value, writable: true, enumerable: true, configurable: true });
      return value;
    },
    set(this: StoredResponse, value: StoredRequestParams) {
      Object.defineProperty(this, 'params', { value, writable: true, enumerable: true, configurable: true });
    },
  }) as StoredResponse;
}
