// In-process store: nothing survives a restart. Bounded, so a long-running gateway without a
// database cannot grow without limit: past `maxEntries` the least recently used response goes.

import {
  addTurnUsage,
  decodeParams,
  decodeUsageOrNull,
  defineLazyParams,
  effectiveExpiry,
  emptyConversationUsage,
  encodeParams,
  encodeUsageOrNull,
  INTERRUPTED_ERROR,
  isExpired,
  jsonOrNull,
  MAX_CHAIN_DEPTH,
  mergeMetadata,
  nowSeconds,
  pageOf,
  parentsFirst,
  parseOrNull,
} from './codec.ts';
import type { Item, ResponseError, ResponseStatus } from '../protocol/types.ts';
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

/**
 * A response as held here. What is bulky is text, decoded on every read: the objects of a decoded
 * turn took ~2.5x the size of its JSON on the heap, and a read must hand out the caller's own
 * objects anyway (parsing JSON is also faster than structuredClone). Each item is its own JSON
 * string, so a conversation can hold the very same strings as the turns it was built from.
 */
interface MemoryResponse {
  readonly id: string;
  readonly tenant: string;
  readonly user: string | null;
  readonly previousResponseId: string | null;
  readonly conversationId: string | null;
  readonly model: string;
  status: ResponseStatus;
  readonly createdAt: number;
  completedAt: number | null;
  expiresAt: number | null;
  /** encodeParams text (store/codec.ts), decoded only when read. */
  readonly params: string;
  input: TurnItems;
  output: TurnItems;
  /** encodeUsage text. */
  usage: string | null;
  /** JSON text; null (the usual case) allocates nothing. */
  error: string | null;
  incompleteDetails: string | null;
  /** The store's clock when the chain above this response was last walked (see beginTurn). */
  walkedAt: number;
}

/**
 * A turn's input or output items: the JSON of its only item (most turns have one input and one
 * output item: no array, ~50 bytes each), else an array of item JSON.
 */
type TurnItems = string | readonly string[];

const NO_ITEMS: readonly string[] = Object.freeze([]);

/** Appends item JSON at the conversation's next positions (its itemCount is raised by the caller). */
function appendTexts(conversation: MemoryConversation, texts: readonly string[]): void {
  const next = conversation.record.itemCount;
  for (let i = 0; i < texts.length; i++) {
    conversation.items.push(texts[i]);
    conversation.positions?.push(next + i);
  }
}

/** Each item's position, made explicit (before the first gap). */
function positionsOf(conversation: MemoryConversation): number[] {
  conversation.positions ??= conversation.items.map((_, i) => i);
  return conversation.positions;
}

function encodeItems(items: readonly Item[]): string[] {
  return items.map((item) => JSON.stringify(item));
}

function encodeTurnItems(items: readonly Item[]): TurnItems {
  if (items.length === 1) return JSON.stringify(items[0]);
  return items.length === 0 ? NO_ITEMS : encodeItems(items);
}

function textsOf(items: TurnItems): readonly string[] {
  return typeof items === 'string' ? [items] : items;
}

function decodeItems(texts: readonly string[]): Item[] {
  return texts.map((text) => JSON.parse(text) as Item);
}

function decodeTurnItems(items: TurnItems): Item[] {
  return typeof items === 'string' ? [JSON.parse(items) as Item] : decodeItems(items);
}

/**
 * Where the item with `id` is among `texts`, or -1. An item's JSON holds `"id":<its id as JSON>`,
 * so only texts containing that are parsed, to rule out the same characters elsewhere in it.
 */
function indexOfItem(texts: readonly string[], id: string): number {
  const needle = `"id":${JSON.stringify(id)}`;
  for (let i = 0; i < texts.length; i++) {
    if (texts[i].includes(needle) && (JSON.parse(texts[i]) as Item).id === id) return i;
  }
  return -1;
}


/**
 * `value`, or the parent's equal string: a chain then holds one copy of what its turns repeat
 * (the parent's id, the model, identical params with their tools and instructions).
 */
function shared<T extends string | null>(value: T, parentValue: T | undefined): T {
  return parentValue !== undefined && parentValue === value ? parentValue : value;
}

function toMemory(response: StoredResponse, parent: MemoryResponse | undefined): MemoryResponse {
  return {
    id: response.id,
    tenant: shared(response.tenant, parent?.tenant),
    user: shared(response.user, parent?.user),
    previousResponseId: shared(response.previousResponseId, parent?.id),
    conversationId: shared(response.conversationId, parent?.conversationId),
    model: shared(response.model, parent?.model),
    status: response.status,
    createdAt: response.createdAt,
    completedAt: response.completedAt,
    expiresAt: response.expiresAt,
    params: shared(encodeParams(response.params), parent?.params),
    input: encodeTurnItems(response.input),
    output: encodeTurnItems(response.output),
    usage: encodeUsageOrNull(response.usage),
    error: jsonOrNull(response.error),
    incompleteDetails: jsonOrNull(response.incompleteDetails),
    walkedAt: 0,
  };
}

/** A fresh StoredResponse, the caller's own; params decoded on first read. */
function fromMemory(stored: MemoryResponse): StoredResponse {
  const params = stored.params;
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
      input: decodeTurnItems(stored.input),
      output: decodeTurnItems(stored.output),
      usage: decodeUsageOrNull(stored.usage),
      error: parseOrNull<ResponseError>(stored.error),
      incompleteDetails: parseOrNull<{ reason: string }>(stored.incompleteDetails),
    },
    () => decodeParams(params),
  );
}

interface MemoryConversation {
  record: StoredConversation;
  /** Item JSON, the same strings as the turns' that were appended (one copy of each item). */
  items: string[];
  /**
   * Each item's position (loadConversationItemsFrom), ascending, with gaps where items were
   * deleted; null while there is no gap (item i is at position i), as in most conversations.
   */
  positions: number[] | null;
  sequence: number;
}

export class MemoryStore implements ConversationStore {
  readonly description: string;
  readonly #maxEntries: number;
  readonly #ttlSeconds: number | null;
  // Map iteration order is the recency order: the first key is evicted first.
  #responses = new Map<string, MemoryResponse>();
  // Same recency order. A conversation's items are the very strings its turns hold (no copies).
  #conversations = new Map<string, MemoryConversation>();
  #leases = new Map<string, { holder: string; expiresAtMs: number }>();
  /** Creation order, the tie-breaker for conversations created in the same second. */
  #sequence = 0;
  #open = false;
  /** Bumped whenever a stored response may have gone or changed (see changeToken). */
  #changes = 0;
  /** Counts touches and inserts of responses: how far recency has moved since a given moment. */
  #clock = 0;

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
    const parent = response.previousResponseId === null ? undefined : this.#responses.get(response.previousResponseId);
    const stored = toMemory(response, parent);
    stored.expiresAt = effectiveExpiry(stored.expiresAt, stored.createdAt, this.#ttlSeconds);
    // Continuing a chain makes its ancestors recently used, as loading it does (a context cache
    // in front of this store may not load it). Walking the whole chain on every turn made a turn
    // cost O(history) (0.4 ms at 1,000 turns): the walk is repeated only when the last one
    // (inherited from the parent) is more than half the capacity of recency moves old; until
    // then every ancestor still sits behind at least as many entries as can be evicted, and only
    // the parent is touched.
    if (parent !== undefined && parent.walkedAt > this.#clock - this.#maxEntries / 2) {
      this.#touch(parent);
      stored.walkedAt = parent.walkedAt;
    } else {
      stored.walkedAt = this.#clock;
      let ancestor = parent;
      for (let depth = 0; ancestor !== undefined && depth < MAX_CHAIN_DEPTH; depth++) {
        this.#touch(ancestor);
        ancestor = ancestor.previousResponseId === null ? undefined : this.#responses.get(ancestor.previousResponseId);
      }
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
    stored.status = result.status;
    stored.completedAt = result.completedAt;
    stored.output = encodeTurnItems(result.output);
    stored.usage = encodeUsageOrNull(result.usage);
    stored.error = jsonOrNull(result.error);
    stored.incompleteDetails = jsonOrNull(result.incompleteDetails);
    this.#touch(stored);
    // Synchronous from here on: nothing can run between finishing the turn and appending it.
    if (stored.conversationId !== null && (result.status === 'completed' || result.status === 'incomplete')) {
      const now = nowSeconds();
      const conversation = this.#liveConversation(stored.conversationId, now);
      if (conversation !== null) {
        const appended = [...textsOf(stored.input), ...textsOf(stored.output)];
        const record = conversation.record;
        appendTexts(conversation, appended);
        record.itemCount += appended.length;
        record.usage = addTurnUsage(record.usage, result.usage, result.costUsd);
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
    stored.output = encodeTurnItems(progress.output);
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
    return chain.map(fromMemory);
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
    return pageOf(textsOf(stored.input), options, indexOfItem, decodeItems);
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
    this.#insertConversation(record, encodeItems(items));
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
    this.#changes++; // its items leave it (changeToken)
    return this.#conversations.delete(id);
  }

  async appendConversationItems(id: string, items: Item[]): Promise<StoredConversation | null> {
    this.#assertOpen();
    const now = nowSeconds();
    const conversation = this.#liveConversation(id, now);
    if (conversation === null) return null;
    appendTexts(conversation, encodeItems(items));
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
    return decodeItems(conversation.items);
  }

  async loadConversationItemsFrom(id: string, position: number): Promise<{ items: Item[]; itemCount: number } | null> {
    this.#assertOpen();
    const conversation = this.#liveConversation(id, nowSeconds());
    if (conversation === null) return null;
    this.#touchConversation(conversation);
    // Usually a few items at the end: found from there.
    const { items, positions } = conversation;
    let first = items.length;
    if (positions === null) first = Math.min(first, Math.max(0, position));
    else while (first > 0 && positions[first - 1] >= position) first--;
    return { items: decodeItems(items.slice(first)), itemCount: conversation.record.itemCount };
  }

  async listConversationItems(id: string, options: ListOptions): Promise<ItemPage | null> {
    this.#assertOpen();
    const conversation = this.#liveConversation(id, nowSeconds());
    if (conversation === null) return null;
    return pageOf(conversation.items, options, indexOfItem, decodeItems);
  }

  async getConversationItem(conversationId: string, itemId: string): Promise<Item | null> {
    this.#assertOpen();
    const conversation = this.#liveConversation(conversationId, nowSeconds());
    const index = conversation === null ? -1 : indexOfItem(conversation.items, itemId);
    return index === -1 ? null : (JSON.parse(conversation!.items[index]) as Item);
  }

  async deleteConversationItem(conversationId: string, itemId: string): Promise<boolean> {
    this.#assertOpen();
    const conversation = this.#liveConversation(conversationId, nowSeconds());
    const index = conversation === null ? -1 : indexOfItem(conversation.items, itemId);
    if (index === -1) return false;
    positionsOf(conversation!).splice(index, 1);
    conversation!.items.splice(index, 1);
    this.#changes++; // an item leaves a conversation (changeToken)
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
    const index = source === null ? -1 : indexOfItem(source.items, upToItemId);
    if (index === -1) return null;
    if (this.#conversations.has(target.id)) {
      throw new StoreConflictError(`Conversation ${target.id} already exists.`);
    }
    const record = structuredClone(target);
    record.expiresAt = effectiveExpiry(record.expiresAt, record.createdAt, this.#ttlSeconds);
    record.itemCount = index + 1;
    record.usage = emptyConversationUsage();
    // The same item strings (immutable): one copy of each item's bytes.
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
        stored.error = JSON.stringify(INTERRUPTED_ERROR);
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
      yield { type: 'conversation', conversation: structuredClone(record), items: decodeItems(items) };
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
        const previousId = record.response.previousResponseId;
        const stored = toMemory(record.response, previousId === null ? undefined : this.#responses.get(previousId));
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
        this.#insertConversation(stored, encodeItems(record.items));
        summary.conversations++;
      }
    }
    return summary;
  }

  #insertResponse(stored: MemoryResponse): void {
    this.#clock++;
    this.#responses.set(stored.id, stored);
    if (this.#responses.size <= this.#maxEntries) return;
    // Evicted in batches of 1% of the bound (below 100 entries, one at a time). Each eviction
    // moves the change token, which empties the context cache of every engine on this store: one
    // at a time, a full store moved it on every turn, and no turn was ever served from the cache.
    const keep = this.#maxEntries - Math.floor(this.#maxEntries / 100);
    for (const oldest of this.#responses.keys()) {
      if (this.#responses.size <= keep) break;
      this.#responses.delete(oldest);
    }
    this.#changes++;
  }

  /** A new conversation holding `items` at positions 0, 1, …; evicts beyond the bound. */
  #insertConversation(record: StoredConversation, items: string[]): void {
    // An imported conversation may count more appends than it holds items: its next position is
    // past a gap, so positions are explicit from the start.
    const positions = record.itemCount === items.length ? null : items.map((_, i) => i);
    this.#conversations.set(record.id, { record, items, positions, sequence: this.#sequence++ });
    while (this.#conversations.size > this.#maxEntries) {
      const oldest = this.#conversations.keys().next().value as string;
      this.#conversations.delete(oldest);
      this.#changes++; // its items leave it (changeToken)
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
    this.#clock++;
    this.#responses.delete(stored.id);
    this.#responses.set(stored.id, stored);
  }

  #assertOpen(): void {
    if (!this.#open) throw new Error('MemoryStore is not open: call open() first.');
  }
}
