// In-process store: nothing survives a restart. Bounded, so a long-running gateway without a
// database cannot grow without limit: past `maxEntries` the least recently used response goes.

import {
  addTurnUsage,
  decodeParams,
  defineLazyParams,
  encodeParams,
  effectiveExpiry,
  emptyConversationUsage,
  INTERRUPTED_ERROR,
  isExpired,
  MAX_CHAIN_DEPTH,
  mergeMetadata,
  nowSeconds,
  pageItems,
  parentsFirst,
} from './codec.ts';
import type { Item } from '../protocol/types.ts';
import type {
  ConversationQuery,
  ConversationStore,
  ExportFilter,
  ExportRecord,
  ImportSummary,
  ItemPage,
  ListOptions,
  StoredConversation,
  StoredResponse,
  TurnProgress,
  TurnResult,
} from './types.ts';
import { ChainBrokenError, StoreConflictError } from './types.ts';

export interface MemoryStoreOptions {
  /**
   * Upper bound on stored responses, and separately on stored conversations; the least recently
   * used are evicted beyond it.
   */
  maxEntries: number;
  /** Default retention applied to responses stored without an expiry; null keeps them. */
  ttlSeconds: number | null;
}

/** A response as held here: params as compact JSON (store/codec.ts), decoded when read. */
type MemoryResponse = Omit<StoredResponse, 'params'> & { params: string };

function toMemory(response: StoredResponse): MemoryResponse {
  const { params, ...rest } = response;
  return { ...structuredClone(rest), params: encodeParams(params) };
}

function fromMemory(stored: MemoryResponse): StoredResponse {
  const { params, ...rest } = stored;
  return defineLazyParams(structuredClone(rest), () => decodeParams(params));
}

interface MemoryConversation {
  record: StoredConversation;
  items: Item[];
  sequence: number;
}

export class MemoryStore implements ConversationStore {
  readonly description: string;
  readonly #maxEntries: number;
  readonly #ttlSeconds: number | null;
  // Map iteration order is the recency order: the first key is evicted first.
  #responses = new Map<string, MemoryResponse>();
  // Same recency order. A conversation's items are the very objects its turns hold (no copies).
  #conversations = new Map<string, MemoryConversation>();
  #leases = new Map<string, { holder: string; expiresAtMs: number }>();
  /** Creation order, the tie-breaker for conversations created in the same second. */
  #sequence = 0;
  #open = false;
  /** Bumped whenever a stored response may have gone or changed (see changeToken). */
  #changes = 0;

  constructor(options: MemoryStoreOptions) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1) {
      throw new RangeError(`MemoryStore maxEntries must be a positive integer, got ${options.maxEntries}`);
    }
    this.#maxEntries = options.maxEntries;
    this.#ttlSeconds = options.ttlSeconds;
    this.description = `memory (max ${options.maxEntries} responses)`;
  }

  /** The TTL applied to responses stored without an expiry (see ConversationStore.changeToken). */
  get defaultTtlSeconds(): number | null {
    return this.#ttlSeconds;
  }

  /** Changes on every deletion, eviction or status change of a stored response. */
  async changeToken(): Promise<number> {
    return this.#changes;
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
    this.#changes++;
    this.#responses.clear();
    this.#conversations.clear();
    this.#leases.clear();
  }

  async ping(): Promise<void> {
    this.#assertOpen();
  }

  async beginTurn(response: StoredResponse): Promise<void> {
    this.#assertOpen();
    if (this.#responses.has(response.id)) {
      throw new StoreConflictError(`Response ${response.id} already exists.`);
    }
    const stored = toMemory(response);
    stored.expiresAt = effectiveExpiry(stored.expiresAt, stored.createdAt, this.#ttlSeconds);
    // Continuing a chain makes its ancestors recently used, as loading it does (a context cache
    // in front of this store may not load it).
    let parent = stored.previousResponseId;
    for (let depth = 0; parent !== null && depth < MAX_CHAIN_DEPTH; depth++) {
      const ancestor = this.#responses.get(parent);
      if (ancestor === undefined) break;
      this.#touch(ancestor);
      parent = ancestor.previousResponseId;
    }
    this.#insertResponse(stored);
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
    // Synchronous from here on: nothing can run between finishing the turn and appending it.
    if (stored.conversationId !== null && (copy.status === 'completed' || copy.status === 'incomplete')) {
      const now = nowSeconds();
      const conversation = this.#liveConversation(stored.conversationId, now);
      if (conversation !== null) {
        conversation.items.push(...stored.input, ...stored.output);
        const record = conversation.record;
        record.itemCount += stored.input.length + stored.output.length;
        record.usage = addTurnUsage(record.usage, copy.usage, copy.costUsd);
        record.updatedAt = now;
        this.#touchConversation(conversation);
      }
    }
  }

  async saveProgress(id: string, progress: TurnProgress): Promise<boolean> {
    this.#assertOpen();
    const stored = this.#responses.get(id);
    if (stored === undefined || (stored.status !== 'in_progress' && stored.status !== 'queued')) return false;
    stored.status = progress.status;
    stored.output = structuredClone(progress.output);
    return true;
  }

  async getResponse(id: string): Promise<StoredResponse | null> {
    this.#assertOpen();
    const stored = this.#live(id, nowSeconds());
    if (stored === null) return null;
    this.#touch(stored);
    return fromMemory(stored);
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
          tenant: stored.tenant,
          user: stored.user,
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
        () => decodeParams(stored.params),
      );
    });
  }

  async deleteResponse(id: string): Promise<boolean> {
    this.#assertOpen();
    this.#changes++;
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
    this.#changes++;
    let removed = 0;
    for (const [id, stored] of this.#responses) {
      if (isExpired(stored.expiresAt, now)) {
        this.#responses.delete(id);
        removed++;
      }
    }
    for (const [id, conversation] of this.#conversations) {
      if (isExpired(conversation.record.expiresAt, now)) {
        this.#conversations.delete(id);
        removed++;
      }
    }
    return removed;
  }

  async countExpired(now: number): Promise<number> {
    this.#assertOpen();
    let count = 0;
    for (const stored of this.#responses.values()) if (isExpired(stored.expiresAt, now)) count++;
    for (const conversation of this.#conversations.values()) {
      if (isExpired(conversation.record.expiresAt, now)) count++;
    }
    return count;
  }

  // ---------- conversations ----------

  async createConversation(conversation: StoredConversation, items: Item[]): Promise<void> {
    this.#assertOpen();
    if (this.#conversations.has(conversation.id)) {
      throw new StoreConflictError(`Conversation ${conversation.id} already exists.`);
    }
    const record = structuredClone(conversation);
    record.expiresAt = effectiveExpiry(record.expiresAt, record.createdAt, this.#ttlSeconds);
    record.itemCount = items.length;
    this.#insertConversation(record, structuredClone(items));
  }

  async getConversation(id: string): Promise<StoredConversation | null> {
    this.#assertOpen();
    const conversation = this.#liveConversation(id, nowSeconds());
    return conversation === null ? null : structuredClone(conversation.record);
  }

  async updateConversation(
    id: string,
    patch: { metadata: Record<string, string> },
  ): Promise<StoredConversation | null> {
    this.#assertOpen();
    const now = nowSeconds();
    const conversation = this.#liveConversation(id, now);
    if (conversation === null) return null;
    conversation.record.metadata = structuredClone(patch.metadata);
    conversation.record.updatedAt = now;
    this.#touchConversation(conversation);
    return structuredClone(conversation.record);
  }

  async deleteConversation(id: string): Promise<boolean> {
    this.#assertOpen();
    if (this.#liveConversation(id, nowSeconds()) === null) return false;
    return this.#conversations.delete(id);
  }

  async appendConversationItems(id: string, items: Item[]): Promise<StoredConversation | null> {
    this.#assertOpen();
    const now = nowSeconds();
    const conversation = this.#liveConversation(id, now);
    if (conversation === null) return null;
    conversation.items.push(...structuredClone(items));
    conversation.record.itemCount += items.length;
    conversation.record.updatedAt = now;
    this.#touchConversation(conversation);
    return structuredClone(conversation.record);
  }

  async loadConversationItems(id: string): Promise<Item[] | null> {
    this.#assertOpen();
    const conversation = this.#liveConversation(id, nowSeconds());
    if (conversation === null) return null;
    this.#touchConversation(conversation);
    return structuredClone(conversation.items);
  }

  async listConversationItems(id: string, options: ListOptions): Promise<ItemPage | null> {
    this.#assertOpen();
    const conversation = this.#liveConversation(id, nowSeconds());
    if (conversation === null) return null;
    return structuredClone(pageItems(conversation.items, options));
  }

  async getConversationItem(conversationId: string, itemId: string): Promise<Item | null> {
    this.#assertOpen();
    const conversation = this.#liveConversation(conversationId, nowSeconds());
    const item = conversation?.items.find((candidate) => candidate.id === itemId);
    return item === undefined ? null : structuredClone(item);
  }

  async deleteConversationItem(conversationId: string, itemId: string): Promise<boolean> {
    this.#assertOpen();
    const conversation = this.#liveConversation(conversationId, nowSeconds());
    const index = conversation?.items.findIndex((candidate) => candidate.id === itemId) ?? -1;
    if (index === -1) return false;
    conversation!.items.splice(index, 1);
    return true;
  }

  async listConversations(
    query: ConversationQuery,
  ): Promise<{ conversations: StoredConversation[]; hasMore: boolean }> {
    this.#assertOpen();
    const now = nowSeconds();
    const wanted = Object.entries(query.metadata ?? {});
    const matches = [...this.#conversations.values()].filter(
      ({ record }) =>
        !isExpired(record.expiresAt, now) &&
        record.tenant === query.tenant &&
        (query.user === undefined || record.user === query.user) &&
        (query.createdAfter === undefined || record.createdAt >= query.createdAfter) &&
        (query.createdBefore === undefined || record.createdAt < query.createdBefore) &&
        wanted.every(([key, value]) => Object.hasOwn(record.metadata, key) && record.metadata[key] === value),
    );
    const direction = query.order === 'asc' ? 1 : -1;
    matches.sort((a, b) => direction * (a.record.createdAt - b.record.createdAt || a.sequence - b.sequence));
    let start = 0;
    if (query.after !== undefined) {
      const index = matches.findIndex(({ record }) => record.id === query.after);
      if (index === -1) return { conversations: [], hasMore: false };
      start = index + 1;
    }
    const limit = Math.max(0, query.limit);
    return {
      conversations: structuredClone(matches.slice(start, start + limit).map(({ record }) => record)),
      hasMore: matches.length > start + limit,
    };
  }

  async acquireConversationLease(conversationId: string, holder: string, ttlMs: number): Promise<boolean> {
    this.#assertOpen();
    const now = Date.now();
    const lease = this.#leases.get(conversationId);
    if (lease !== undefined && lease.holder !== holder && lease.expiresAtMs > now) return false;
    this.#leases.set(conversationId, { holder, expiresAtMs: now + ttlMs });
    return true;
  }

  async renewConversationLease(conversationId: string, holder: string, ttlMs: number): Promise<boolean> {
    this.#assertOpen();
    const lease = this.#leases.get(conversationId);
    if (lease === undefined || lease.holder !== holder) return false;
    lease.expiresAtMs = Date.now() + ttlMs;
    return true;
  }

  async releaseConversationLease(conversationId: string, holder: string): Promise<void> {
    this.#assertOpen();
    if (this.#leases.get(conversationId)?.holder === holder) this.#leases.delete(conversationId);
  }

  async mergeConversationMetadata(
    id: string,
    patch: Record<string, string | null>,
  ): Promise<StoredConversation | null> {
    this.#assertOpen();
    const now = nowSeconds();
    const conversation = this.#liveConversation(id, now);
    if (conversation === null) return null;
    conversation.record.metadata = mergeMetadata(conversation.record.metadata, patch);
    conversation.record.updatedAt = now;
    this.#touchConversation(conversation);
    return structuredClone(conversation.record);
  }

  async forkConversation(
    sourceId: string,
    upToItemId: string,
    target: StoredConversation,
  ): Promise<StoredConversation | null> {
    this.#assertOpen();
    const source = this.#liveConversation(sourceId, nowSeconds());
    const index = source?.items.findIndex((item) => item.id === upToItemId) ?? -1;
    if (index === -1) return null;
    if (this.#conversations.has(target.id)) {
      throw new StoreConflictError(`Conversation ${target.id} already exists.`);
    }
    const record = structuredClone(target);
    record.expiresAt = effectiveExpiry(record.expiresAt, record.createdAt, this.#ttlSeconds);
    record.itemCount = index + 1;
    record.usage = emptyConversationUsage();
    // The same item objects: items are never changed in place, only added to or removed from lists.
    this.#insertConversation(record, source!.items.slice(0, index + 1));
    return structuredClone(record);
  }

  async deleteUserData(tenant: string, user: string): Promise<{ responses: number; conversations: number }> {
    this.#assertOpen();
    this.#changes++;
    let responses = 0;
    let conversations = 0;
    for (const [id, stored] of this.#responses) {
      if (stored.tenant === tenant && stored.user === user) {
        this.#responses.delete(id);
        responses++;
      }
    }
    for (const [id, { record }] of this.#conversations) {
      if (record.tenant === tenant && record.user === user) {
        this.#conversations.delete(id);
        conversations++;
      }
    }
    return { responses, conversations };
  }

  async failStaleTurns(before: number): Promise<number> {
    this.#assertOpen();
    let failed = 0;
    for (const stored of this.#responses.values()) {
      if ((stored.status === 'queued' || stored.status === 'in_progress') && stored.createdAt < before) {
        stored.status = 'failed';
        stored.error = { ...INTERRUPTED_ERROR };
        this.#changes++;
        failed++;
      }
    }
    return failed;
  }

  async *exportRecords(filter: ExportFilter): AsyncIterable<ExportRecord> {
    this.#assertOpen();
    const now = nowSeconds();
    const since = filter.since;
    // A snapshot first: the maps may change while the consumer awaits between records.
    const responses = [...this.#responses.values()].filter(
      (r) =>
        !isExpired(r.expiresAt, now) &&
        (filter.tenant === undefined || r.tenant === filter.tenant) &&
        (filter.conversationId === undefined || r.conversationId === filter.conversationId) &&
        (since === undefined || r.createdAt >= since),
    );
    responses.sort((a, b) => a.createdAt - b.createdAt);
    const conversations = [...this.#conversations.values()].filter(
      ({ record }) =>
        !isExpired(record.expiresAt, now) &&
        (filter.tenant === undefined || record.tenant === filter.tenant) &&
        (filter.conversationId === undefined || record.id === filter.conversationId) &&
        (since === undefined || record.createdAt >= since),
    );
    conversations.sort((a, b) => a.record.createdAt - b.record.createdAt || a.sequence - b.sequence);
    for (const response of parentsFirst(responses)) {
      yield { type: 'response', response: fromMemory(response) };
    }
    for (const { record, items } of conversations) {
      yield { type: 'conversation', conversation: structuredClone(record), items: structuredClone(items) };
    }
  }

  async importRecords(records: AsyncIterable<ExportRecord> | Iterable<ExportRecord>): Promise<ImportSummary> {
    this.#assertOpen();
    const summary: ImportSummary = { responses: 0, conversations: 0, skipped: 0 };
    for await (const record of records) {
      if (record.type === 'response') {
        if (this.#responses.has(record.response.id)) {
          summary.skipped++;
          continue;
        }
        const stored = toMemory(record.response);
        stored.expiresAt = effectiveExpiry(stored.expiresAt, stored.createdAt, this.#ttlSeconds);
        this.#insertResponse(stored);
        summary.responses++;
      } else {
        if (this.#conversations.has(record.conversation.id)) {
          summary.skipped++;
          continue;
        }
        const stored = structuredClone(record.conversation);
        stored.expiresAt = effectiveExpiry(stored.expiresAt, stored.createdAt, this.#ttlSeconds);
        this.#insertConversation(stored, structuredClone(record.items));
        summary.conversations++;
      }
    }
    return summary;
  }

  #insertResponse(stored: MemoryResponse): void {
    this.#responses.set(stored.id, stored);
    while (this.#responses.size > this.#maxEntries) {
      const oldest = this.#responses.keys().next().value as string;
      this.#responses.delete(oldest);
      this.#changes++;
    }
  }

  #insertConversation(record: StoredConversation, items: Item[]): void {
    this.#conversations.set(record.id, { record, items, sequence: this.#sequence++ });
    while (this.#conversations.size > this.#maxEntries) {
      const oldest = this.#conversations.keys().next().value as string;
      this.#conversations.delete(oldest);
    }
  }

  #liveConversation(id: string, now: number): MemoryConversation | null {
    const conversation = this.#conversations.get(id);
    if (conversation === undefined || isExpired(conversation.record.expiresAt, now)) return null;
    return conversation;
  }

  #touchConversation(conversation: MemoryConversation): void {
    this.#conversations.delete(conversation.record.id);
    this.#conversations.set(conversation.record.id, conversation);
  }

  #live(id: string, now: number): MemoryResponse | null {
    const stored = this.#responses.get(id);
    if (stored === undefined || isExpired(stored.expiresAt, now)) return null;
    return stored;
  }

  /** Moves a response to the most recently used end, so active conversations are evicted last. */
  #touch(stored: MemoryResponse): void {
    this.#responses.delete(stored.id);
    this.#responses.set(stored.id, stored);
  }

  #assertOpen(): void {
    if (!this.#open) throw new Error('MemoryStore is not open: call open() first.');
  }
}
