// An in-process cache of decoded conversations, so that a turn on a long Conversations API
// conversation loads only what the conversation gained since its last turn instead of every item.
// The chain cache (context-cache.ts) does the same for `previous_response_id`.
//
// - An entry is a conversation's items (deep-frozen: shared by every context built from them) up
//   to its `itemCount` (positions ever appended: the items' positions are below it), and the
//   createdAt and expiresAt of the conversation it was read from.
// - A conversation is append-only until an item leaves it (deleteConversationItem, or the whole
//   conversation deleted or pruned). Every such removal moves the store's change token, so while
//   the token stands still the cached items are a true prefix, and the rest are the items at
//   positions `itemCount` and later (ConversationStore.loadConversationItemsFrom).
// - The entry must be of the same conversation: its createdAt and expiresAt are compared with the
//   record the turn read. A conversation re-created under the same id went through a removal
//   (the token moved) or an expiry (a live record then has another expiry).
// - Any doubt is a full load.

import type { Item } from '../protocol/types.ts';
import { deepFreeze } from './context-cache.ts';

interface Entry {
  readonly items: readonly Item[];
  readonly itemCount: number;
  readonly createdAt: number;
  readonly expiresAt: number | null;
}

/** What identifies one conversation (of those that ever had an id) and how far it reaches. */
export interface ConversationIdentity {
  createdAt: number;
  expiresAt: number | null;
}

/** Items kept across all conversations; least recently used conversations go first. */
export const DEFAULT_CACHE_CONVERSATION_ITEMS = 50_000;

export class ConversationCache {
  readonly #maxItems: number;
  // Map iteration order is recency: the first key is evicted first.
  #entries = new Map<string, Entry>();
  #items = 0;
  /** The store's change token the entries were filled under; undefined: nothing filled yet. */
  #token: string | number | undefined = undefined;
  /** Bumped on every local invalidation, so a fill that started before one is dropped. */
  #generation = 0;

  constructor(maxItems = DEFAULT_CACHE_CONVERSATION_ITEMS) {
    this.#maxItems = Math.max(1, maxItems);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Aligns with the store's change token (drops everything when it moved); returns a ticket for `fill`. */
  sync(token: string | number): number {
    if (token !== this.#token) {
      this.clear();
      this.#token = token;
    }
    return this.#generation;
  }

  clear(): void {
    this.#entries = new Map();
    this.#items = 0;
    this.#token = undefined;
    this.#generation++;
  }

  /**
   * The position to load from for conversation `id` as `record` describes it: the cached items and
   * their itemCount, or null (load everything) when nothing usable is cached.
   */
  prefix(id: string, record: ConversationIdentity): { items: readonly Item[]; itemCount: number } | null {
    const entry = this.#entries.get(id);
    if (entry === undefined || entry.createdAt !== record.createdAt || entry.expiresAt !== record.expiresAt) return null;
    return entry;
  }

  /**
   * Records the conversation's items up to `itemCount` (`prefix`, as `prefix()` gave it, then
   * `tail`, just loaded and frozen here), read under the ticket `sync` returned before the read.
   * Returns the items as an array of the caller's own.
   */
  fill(
    ticket: number,
    id: string,
    record: ConversationIdentity,
    prefix: readonly Item[],
    tail: Item[],
    itemCount: number,
  ): Item[] {
    const items = prefix.length === 0 ? tail : prefix.concat(tail);
    if (ticket !== this.#generation) return items;
    deepFreeze(tail);
    this.#remove(id);
    if (items.length <= this.#maxItems) {
      this.#entries.set(id, { items, itemCount, createdAt: record.createdAt, expiresAt: record.expiresAt });
      this.#items += items.length;
      while (this.#items > this.#maxItems) this.#remove(this.#entries.keys().next().value as string);
    }
    return items.slice();
  }

  /** A conversation changed through this engine in a way the token may not show yet. */
  invalidate(id: string): void {
    this.#remove(id);
    this.#generation++;
  }

  #remove(id: string): void {
    const entry = this.#entries.get(id);
    if (entry === undefined) return;
    this.#entries.delete(id);
    this.#items -= entry.items.length;
  }
}
