// In-process store: nothing survives a restart. Bounded, so a long-running gateway without a
// database cannot grow without limit: past `maxEntries` the least recently used response goes.

import {
  defineLazyParams,
  effectiveExpiry,
  isExpired,
  MAX_CHAIN_DEPTH,
  nowSeconds,
  pageItems,
} from './codec.ts';
import type { ConversationStore, ItemPage, ListOptions, StoredResponse, TurnResult } from './types.ts';
import { ChainBrokenError, StoreConflictError } from './types.ts';

export interface MemoryStoreOptions {
  /** Upper bound on stored responses; the least recently used are evicted beyond it. */
  maxEntries: number;
  /** Default retention applied to responses stored without an expiry; null keeps them. */
  ttlSeconds: number | null;
}

export class MemoryStore implements ConversationStore {
  readonly description: string;
  readonly #maxEntries: number;
  readonly #ttlSeconds: number | null;
  // Map iteration order is the recency order: the first key is evicted first.
  #responses = new Map<string, StoredResponse>();
  #open = false;

  constructor(options: MemoryStoreOptions) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1) {
      throw new RangeError(`MemoryStore maxEntries must be a positive integer, got ${options.maxEntries}`);
    }
    this.#maxEntries = options.maxEntries;
    this.#ttlSeconds = options.ttlSeconds;
    this.description = `memory (max ${options.maxEntries} responses)`;
  }

  /** How many responses are held right now (expired ones included until pruned or touched). */
  get size(): number {
    return this.#responses.size;
  }

  async open(): Promise<void> {
    this.#open = true;
  }

  async close(): Promise<void> {
    this.#open = false;
    this.#responses.clear();
  }

  async ping(): Promise<void> {
    this.#assertOpen();
  }

  async beginTurn(response: StoredResponse): Promise<void> {
    this.#assertOpen();
    if (this.#responses.has(response.id)) {
      throw new StoreConflictError(`Response ${response.id} already exists.`);
    }
    const stored = structuredClone(response);
    stored.expiresAt = effectiveExpiry(stored.expiresAt, stored.createdAt, this.#ttlSeconds);
    this.#responses.set(stored.id, stored);
    while (this.#responses.size > this.#maxEntries) {
      const oldest = this.#responses.keys().next().value as string;
      this.#responses.delete(oldest);
    }
  }

  async finishTurn(id: string, result: TurnResult): Promise<void> {
    this.#assertOpen();
    const stored = this.#responses.get(id);
    if (stored === undefined)
      throw new StoreConflictError(`Cannot finish response ${id}: it does not exist.`);
    if (stored.status !== 'in_progress' && stored.status !== 'queued') {
      throw new StoreConflictError(`Cannot finish response ${id}: it is already ${stored.status}.`);
    }
    const copy = structuredClone(result);
    stored.status = copy.status;
    stored.completedAt = copy.completedAt;
    stored.output = copy.output;
    stored.usage = copy.usage;
    stored.error = copy.error;
    stored.incompleteDetails = copy.incompleteDetails;
    this.#touch(stored);
  }

  async getResponse(id: string): Promise<StoredResponse | null> {
    this.#assertOpen();
    const stored = this.#live(id, nowSeconds());
    if (stored === null) return null;
    this.#touch(stored);
    return structuredClone(stored);
  }

  async loadChain(id: string): Promise<StoredResponse[] | null> {
    this.#assertOpen();
    const now = nowSeconds();
    const head = this.#live(id, now);
    if (head === null) return null;
    const chain = [head];
    let parent = head.previousResponseId;
    while (parent !== null) {
      const ancestor = chain.length < MAX_CHAIN_DEPTH ? this.#live(parent, now) : null;
      if (ancestor === null) throw new ChainBrokenError(id, parent);
      chain.push(ancestor);
      parent = ancestor.previousResponseId;
    }
    chain.reverse();
    for (const response of chain) this.#touch(response);
    // One clone call for every turn's items (cheaper than one per response); params lazily.
    const copies = structuredClone(
      chain.map((r) => [r.input, r.output, r.usage, r.error, r.incompleteDetails] as const),
    );
    return chain.map((stored, i) => {
      const [input, output, usage, error, incompleteDetails] = copies[i];
      return defineLazyParams(
        {
          id: stored.id,
          previousResponseId: stored.previousResponseId,
          conversationId: stored.conversationId,
          model: stored.model,
          status: stored.status,
          createdAt: stored.createdAt,
          completedAt: stored.completedAt,
          expiresAt: stored.expiresAt,
          input,
          output,
          usage,
          error,
          incompleteDetails,
        },
        () => structuredClone(stored.params),
      );
    });
  }

  async deleteResponse(id: string): Promise<boolean> {
    this.#assertOpen();
    return this.#responses.delete(id);
  }

  async listInputItems(id: string, options: ListOptions): Promise<ItemPage | null> {
    this.#assertOpen();
    const stored = this.#live(id, nowSeconds());
    if (stored === null) return null;
    return structuredClone(pageItems(stored.input, options));
  }

  async pruneExpired(now: number): Promise<number> {
    this.#assertOpen();
    let removed = 0;
    for (const [id, stored] of this.#responses) {
      if (isExpired(stored.expiresAt, now)) {
        this.#responses.delete(id);
        removed++;
      }
    }
    return removed;
  }

  #live(id: string, now: number): StoredResponse | null {
    const stored = this.#responses.get(id);
    if (stored === undefined || isExpired(stored.expiresAt, now)) return null;
    return stored;
  }

  /** Moves a response to the most recently used end, so active conversations are evicted last. */
  #touch(stored: StoredResponse): void {
    this.#responses.delete(stored.id);
    this.#responses.set(stored.id, stored);
  }

  #assertOpen(): void {
    if (!this.#open) throw new Error('MemoryStore is not open: call open() first.');
  }
}
