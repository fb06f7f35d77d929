// An in-process cache of decoded turns, so that continuing a long chain does not reload and
// decode the whole history from the store on every turn. Finished responses are immutable, so a
// decoded turn stays right for as long as it exists: what the cache must never do is continue a
// response that was deleted or has expired, or return part of a history.
//
// - Each node is one turn: its id, a pointer to its parent's node, this turn's input and output
//   items (deep-frozen: shared by every context built from them, never copied), its expiry.
//   context(X) walks the parent pointers: no copies, no JSON.
// - Expiry is checked on every node of every walk, against the current time.
// - A delete through this engine marks the node `deleted`; the walk from any descendant passes
//   through it and misses.
// - Writes by anyone else (another process on the same database, the sweeper, the CLI): the
//   cache is only used with a store that implements `changeToken()` (all four built-in backends
//   do), and is dropped whenever the token differs from the one it was filled under. A store
//   without it loads the chain every turn.
// - Any doubt (a node missing, evicted, deleted, expired) is a miss: the store is asked, and its
//   answer (including its errors for broken or unknown chains) is what the client gets.

import type { Item } from '../protocol/types.ts';
import type { StoredResponse } from '../store/types.ts';

interface Node {
  readonly id: string;
  /** Whose it is: one cache serves every tenant's engine, and a walk sees only the asker's turns. */
  readonly tenant: string;
  readonly parentId: string | null;
  parent: Node | null;
  /** This turn's input then output items. */
  items: readonly Item[];
  readonly expiresAt: number | null;
  deleted: boolean;
  evicted: boolean;
}

/** Statuses a turn can be continued from (and so be part of a history). */
function continuable(status: StoredResponse['status']): boolean {
  return status === 'completed' || status === 'incomplete';
}

/** Freezes a decoded item and everything in it: cached items are shared by every context built from them. */
export function deepFreeze(value: unknown): void {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
}

export interface ContextCacheOptions {
  /** Turns kept; least recently used go first. */
  maxTurns?: number;
}

export const DEFAULT_CACHE_TURNS = 20_000;

export class ContextCache {
  readonly #max: number;
  // Map iteration order is recency: the first key is evicted first.
  #nodes = new Map<string, Node>();
  /** The store's change token the nodes were filled under; undefined: nothing filled yet. */
  #token: string | number | undefined = undefined;
  /** Bumped on every local invalidation, so a fill that started before one is dropped. */
  #generation = 0;
  hits = 0;
  misses = 0;

  constructor(options: ContextCacheOptions = {}) {
    this.#max = Math.max(1, options.maxTurns ?? DEFAULT_CACHE_TURNS);
  }

  get size(): number {
    return this.#nodes.size;
  }

  /**
   * Aligns the cache with the store's current change token (drops everything when it moved) and
   * returns a ticket for filling it: `fill` with a stale ticket does nothing.
   */
  sync(token: string | number): number {
    if (token !== this.#token) {
      this.clear();
      this.#token = token;
    }
    return this.#generation;
  }

  /** A ticket for a fill that does not follow a sync (a turn being stored). */
  ticket(): number {
    return this.#generation;
  }

  clear(): void {
    for (const node of this.#nodes.values()) node.evicted = true;
    this.#nodes = new Map();
    this.#token = undefined;
    this.#generation++;
  }

  /**
   * The history ending at `id` (every turn's input then output, root first) when every turn of it
   * is `tenant`'s, or null on any doubt.
   */
  context(id: string, now: number, tenant: string): Item[] | null {
    const head = this.#nodes.get(id);
    if (head === undefined) {
      this.misses++;
      return null;
    }
    const path: Node[] = [];
    let node: Node | null = head;
    while (node !== null) {
      if (node.deleted || node.evicted || node.tenant !== tenant || (node.expiresAt !== null && node.expiresAt <= now)) {
        this.misses++;
        return null;
      }
      path.push(node);
      if (node.parentId === null) break;
      let parent: Node | null | undefined = node.parent;
      if (parent === null || parent.evicted) {
        parent = this.#nodes.get(node.parentId);
        if (parent === undefined) {
          this.misses++;
          return null;
        }
        node.parent = parent;
      }
      node = parent;
    }
    // Recently used: the head (its ancestors are reached through it).
    this.#nodes.delete(head.id);
    this.#nodes.set(head.id, head);
    const items: Item[] = [];
    for (let i = path.length - 1; i >= 0; i--) {
      const turnItems = path[i].items;
      for (let j = 0; j < turnItems.length; j++) items.push(turnItems[j]);
    }
    this.hits++;
    return items;
  }

  /**
   * Records a chain loaded from the store (root first), under the ticket `sync` returned before the
   * load. Turns that cannot be continued are not recorded.
   */
  fillChain(ticket: number, chain: readonly StoredResponse[]): void {
    if (ticket !== this.#generation) return;
    let parent: Node | null = null;
    for (const turn of chain) {
      if (!continuable(turn.status)) return;
      const existing = this.#nodes.get(turn.id);
      if (existing !== undefined && !existing.deleted) {
        parent = existing;
        continue;
      }
      // The store's copies are ours: freeze them in place, as shared from now on.
      const items = [...turn.input, ...turn.output];
      deepFreeze(items);
      parent = this.#insert(turn.id, turn.tenant, turn.previousResponseId, parent, items, turn.expiresAt);
    }
  }

  /**
   * Records a turn this engine has just finished and stored. `input` and `output` are copied
   * (the caller keeps using its own objects). `expiresAt` must be the expiry the store applied.
   * `ticket` is taken before the store write, so a delete that lands meanwhile wins.
   */
  fillTurn(
    ticket: number,
    turn: {
      id: string;
      tenant: string;
      previousResponseId: string | null;
      status: StoredResponse['status'];
      expiresAt: number | null;
    },
    input: readonly Item[],
    output: readonly Item[],
  ): void {
    if (ticket !== this.#generation || !continuable(turn.status)) return;
    // Copied the way the stores keep them (JSON: undefined members go), so a hit sends upstream
    // exactly what a load from the store would.
    const items = JSON.parse(JSON.stringify([...input, ...output])) as Item[];
    deepFreeze(items);
    const parent = turn.previousResponseId === null ? null : (this.#nodes.get(turn.previousResponseId) ?? null);
    this.#insert(turn.id, turn.tenant, turn.previousResponseId, parent, items, turn.expiresAt);
  }

  /** A response deleted through this engine: it and every descendant stop being continued. */
  invalidate(id: string): void {
    const node = this.#nodes.get(id);
    if (node !== undefined) {
      node.deleted = true;
      node.items = [];
      this.#nodes.delete(id);
    }
    this.#generation++;
  }

  #insert(
    id: string,
    tenant: string,
    parentId: string | null,
    parent: Node | null,
    items: readonly Item[],
    expiresAt: number | null,
  ): Node {
    const node: Node = { id, tenant, parentId, parent, items, expiresAt, deleted: false, evicted: false };
    this.#nodes.delete(id);
    this.#nodes.set(id, node);
    while (this.#nodes.size > this.#max) {
      const oldest = this.#nodes.values().next().value as Node;
      oldest.evicted = true;
      oldest.items = [];
      this.#nodes.delete(oldest.id);
    }
    return node;
  }
}
