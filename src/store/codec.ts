// Small rules every backend must apply identically (expiry, paging), kept in one place so the
// backends cannot drift apart on edge cases the contract suite pins down.

import type { Item } from '../protocol/types.ts';
import type { ItemPage, ListOptions } from './types.ts';

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
