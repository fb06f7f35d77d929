// A ConversationStore written the way a user would write one for their own database, using only
// what the package exports, verified by the exported contract suite (`parley/testing`). The
// "database" is a key-value table of JSON strings, standing for DynamoDB, Firestore, a KV
// service…: records go in and come out serialised, so nothing is shared by reference.
// docs/custom-store.md walks through this file.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ChainBrokenError,
  type ConversationQuery,
  type ConversationStore,
  type ConversationUsage,
  createParley,
  type ExportFilter,
  type ExportRecord,
  type ImportSummary,
  INTERRUPTED_ERROR,
  type Item,
  type ItemPage,
  type ListOptions,
  outputText,
  StoreConflictError,
  type StoredConversation,
  type StoredResponse,
  type TurnProgress,
  type TurnResult,
} from '../../src/index.ts';
import { runStoreContract } from '../../src/testing/index.ts';
import { startFakeUpstream } from '../fake-upstream/server.ts';

/** The conversation document: its record, its items, and its place in creation order. */
interface ConversationDoc {
  record: StoredConversation;
  items: Item[];
  seq: number;
}

/**
 * Keys: `response#<id>`, `conversation#<id>`, `lease#<conversation id>`. A real backend would use
 * its own transactions where this one relies on JavaScript running each method without interleaving
 * (nothing below awaits between a read and its write).
 */
class KeyValueStore implements ConversationStore {
  readonly description = 'key-value (example)';
  readonly #table = new Map<string, string>();
  #seq = 0;

  // ---------- the "database" ----------

  #get<T>(key: string): T | null {
    const value = this.#table.get(key);
    return value === undefined ? null : (JSON.parse(value) as T);
  }
  #put(key: string, value: unknown): void {
    this.#table.set(key, JSON.stringify(value));
  }
  #scan<T>(prefix: string): T[] {
    const out: T[] = [];
    for (const [key, value] of this.#table) if (key.startsWith(prefix)) out.push(JSON.parse(value) as T);
    return out;
  }

  // ---------- helpers: expiry and live records ----------

  #live(id: string, now = nowSeconds()): StoredResponse | null {
    const response = this.#get<StoredResponse>(`response#${id}`);
    return response && !expired(response.expiresAt, now) ? response : null;
  }
  #liveConversation(id: string, now = nowSeconds()): ConversationDoc | null {
    const doc = this.#get<ConversationDoc>(`conversation#${id}`);
    return doc && !expired(doc.record.expiresAt, now) ? doc : null;
  }

  // ---------- lifecycle ----------

  async open(): Promise<void> {}
  async close(): Promise<void> {}
  async ping(): Promise<void> {}

  // ---------- responses ----------

  async beginTurn(response: StoredResponse): Promise<void> {
    if (this.#table.has(`response#${response.id}`)) throw new StoreConflictError(`Response ${response.id} exists.`);
    this.#put(`response#${response.id}`, response);
  }

  async finishTurn(id: string, result: TurnResult): Promise<void> {
    const response = this.#get<StoredResponse>(`response#${id}`);
    if (!response || (response.status !== 'queued' && response.status !== 'in_progress')) {
      throw new StoreConflictError(`Cannot finish response ${id}.`);
    }
    const finished: StoredResponse = {
      ...response,
      status: result.status,
      completedAt: result.completedAt,
      output: result.output,
      usage: result.usage,
      error: result.error,
      incompleteDetails: result.incompleteDetails,
    };
    this.#put(`response#${id}`, finished);
    if (response.conversationId === null || (result.status !== 'completed' && result.status !== 'incomplete')) return;
    const doc = this.#liveConversation(response.conversationId);
    if (!doc) return; // the conversation is gone: the turn still finishes
    doc.items.push(...finished.input, ...finished.output);
    doc.record.itemCount += finished.input.length + finished.output.length;
    doc.record.usage = addUsage(doc.record.usage, result);
    doc.record.updatedAt = nowSeconds();
    this.#put(`conversation#${doc.record.id}`, doc);
  }

  async saveProgress(id: string, progress: TurnProgress): Promise<boolean> {
    const response = this.#get<StoredResponse>(`response#${id}`);
    if (!response || (response.status !== 'queued' && response.status !== 'in_progress')) return false;
    this.#put(`response#${id}`, { ...response, status: progress.status, output: progress.output });
    return true;
  }

  async getResponse(id: string): Promise<StoredResponse | null> {
    return this.#live(id);
  }

  async loadChain(id: string): Promise<StoredResponse[] | null> {
    const now = nowSeconds();
    const head = this.#live(id, now);
    if (!head) return null;
    const chain = [head];
    for (let parent = head.previousResponseId; parent !== null; ) {
      const ancestor = chain.length < 1_000_000 ? this.#live(parent, now) : null;
      if (!ancestor) throw new ChainBrokenError(id, parent);
      chain.push(ancestor);
      parent = ancestor.previousResponseId;
    }
    return chain.reverse();
  }

  async deleteResponse(id: string): Promise<boolean> {
    return this.#table.delete(`response#${id}`);
  }

  async listInputItems(id: string, options: ListOptions): Promise<ItemPage | null> {
    const response = this.#live(id);
    return response ? page(response.input, options) : null;
  }

  async pruneExpired(now: number): Promise<number> {
    let removed = 0;
    for (const response of this.#scan<StoredResponse>('response#')) {
      if (expired(response.expiresAt, now) && this.#table.delete(`response#${response.id}`)) removed++;
    }
    for (const doc of this.#scan<ConversationDoc>('conversation#')) {
      if (expired(doc.record.expiresAt, now) && this.#table.delete(`conversation#${doc.record.id}`)) removed++;
    }
    return removed;
  }

  async failStaleTurns(before: number): Promise<number> {
    let failed = 0;
    for (const response of this.#scan<StoredResponse>('response#')) {
      if ((response.status === 'queued' || response.status === 'in_progress') && response.createdAt < before) {
        this.#put(`response#${response.id}`, { ...response, status: 'failed', error: { ...INTERRUPTED_ERROR } });
        failed++;
      }
    }
    return failed;
  }

  // ---------- conversations ----------

  async createConversation(conversation: StoredConversation, items: Item[]): Promise<void> {
    if (this.#table.has(`conversation#${conversation.id}`)) throw new StoreConflictError(`Conversation ${conversation.id} exists.`);
    this.#put(`conversation#${conversation.id}`, { record: { ...conversation, itemCount: items.length }, items, seq: this.#seq++ });
  }

  async getConversation(id: string): Promise<StoredConversation | null> {
    return this.#liveConversation(id)?.record ?? null;
  }

  async updateConversation(id: string, patch: { metadata: Record<string, string> }): Promise<StoredConversation | null> {
    return this.#changeRecord(id, (record) => {
      record.metadata = patch.metadata;
    });
  }

  async mergeConversationMetadata(id: string, patch: Record<string, string | null>): Promise<StoredConversation | null> {
    return this.#changeRecord(id, (record) => {
      const merged: Record<string, string> = {};
      for (const [key, value] of [...Object.entries(record.metadata), ...Object.entries(patch)]) {
        if (value === null) delete merged[key];
        else Object.defineProperty(merged, key, { value, enumerable: true, writable: true, configurable: true });
      }
      record.metadata = merged;
    });
  }

  async deleteConversation(id: string): Promise<boolean> {
    return this.#liveConversation(id) !== null && this.#table.delete(`conversation#${id}`);
  }

  async appendConversationItems(id: string, items: Item[]): Promise<StoredConversation | null> {
    const doc = this.#liveConversation(id);
    if (!doc) return null;
    doc.items.push(...items);
    doc.record.itemCount += items.length;
    doc.record.updatedAt = nowSeconds();
    this.#put(`conversation#${id}`, doc);
    return doc.record;
  }

  async loadConversationItems(id: string): Promise<Item[] | null> {
    return this.#liveConversation(id)?.items ?? null;
  }

  async listConversationItems(id: string, options: ListOptions): Promise<ItemPage | null> {
    const doc = this.#liveConversation(id);
    return doc ? page(doc.items, options) : null;
  }

  async getConversationItem(conversationId: string, itemId: string): Promise<Item | null> {
    return this.#liveConversation(conversationId)?.items.find((item) => item.id === itemId) ?? null;
  }

  async deleteConversationItem(conversationId: string, itemId: string): Promise<boolean> {
    const doc = this.#liveConversation(conversationId);
    const index = doc?.items.findIndex((item) => item.id === itemId) ?? -1;
    if (!doc || index === -1) return false;
    doc.items.splice(index, 1); // itemCount stays: positions are never reused
    this.#put(`conversation#${conversationId}`, doc);
    return true;
  }

  async listConversations(query: ConversationQuery): Promise<{ conversations: StoredConversation[]; hasMore: boolean }> {
    const now = nowSeconds();
    const wanted = Object.entries(query.metadata ?? {});
    const matches = this.#scan<ConversationDoc>('conversation#').filter(
      ({ record }) =>
        !expired(record.expiresAt, now) &&
        record.tenant === query.tenant &&
        (query.user === undefined || record.user === query.user) &&
        (query.createdAfter === undefined || record.createdAt >= query.createdAfter) &&
        (query.createdBefore === undefined || record.createdAt < query.createdBefore) &&
        wanted.every(([key, value]) => Object.hasOwn(record.metadata, key) && record.metadata[key] === value),
    );
    const direction = query.order === 'asc' ? 1 : -1;
    matches.sort((a, b) => direction * (a.record.createdAt - b.record.createdAt || a.seq - b.seq));
    let start = 0;
    if (query.after !== undefined) {
      start = matches.findIndex(({ record }) => record.id === query.after) + 1;
      if (start === 0) return { conversations: [], hasMore: false };
    }
    return {
      conversations: matches.slice(start, start + query.limit).map(({ record }) => record),
      hasMore: matches.length > start + query.limit,
    };
  }

  async forkConversation(sourceId: string, upToItemId: string, target: StoredConversation): Promise<StoredConversation | null> {
    const source = this.#liveConversation(sourceId);
    const index = source?.items.findIndex((item) => item.id === upToItemId) ?? -1;
    if (!source || index === -1) return null;
    if (this.#table.has(`conversation#${target.id}`)) throw new StoreConflictError(`Conversation ${target.id} exists.`);
    const record: StoredConversation = {
      ...target,
      itemCount: index + 1,
      usage: { input_tokens: 0, output_tokens: 0, total_tokens: 0, cost_usd: 0, turns: 0 },
    };
    this.#put(`conversation#${target.id}`, { record, items: source.items.slice(0, index + 1), seq: this.#seq++ });
    return record;
  }

  async deleteUserData(tenant: string, user: string): Promise<{ responses: number; conversations: number }> {
    let responses = 0;
    let conversations = 0;
    for (const response of this.#scan<StoredResponse>('response#')) {
      if (response.tenant === tenant && response.user === user && this.#table.delete(`response#${response.id}`)) responses++;
    }
    for (const { record } of this.#scan<ConversationDoc>('conversation#')) {
      if (record.tenant === tenant && record.user === user && this.#table.delete(`conversation#${record.id}`)) conversations++;
    }
    return { responses, conversations };
  }

  // ---------- leases: one turn at a time per conversation ----------

  async acquireConversationLease(conversationId: string, holder: string, ttlMs: number): Promise<boolean> {
    const lease = this.#get<{ holder: string; expiresAtMs: number }>(`lease#${conversationId}`);
    if (lease && lease.holder !== holder && lease.expiresAtMs > Date.now()) return false;
    this.#put(`lease#${conversationId}`, { holder, expiresAtMs: Date.now() + ttlMs });
    return true;
  }

  async renewConversationLease(conversationId: string, holder: string, ttlMs: number): Promise<boolean> {
    const lease = this.#get<{ holder: string }>(`lease#${conversationId}`);
    if (lease?.holder !== holder) return false;
    this.#put(`lease#${conversationId}`, { holder, expiresAtMs: Date.now() + ttlMs });
    return true;
  }

  async releaseConversationLease(conversationId: string, holder: string): Promise<void> {
    if (this.#get<{ holder: string }>(`lease#${conversationId}`)?.holder === holder) this.#table.delete(`lease#${conversationId}`);
  }

  // ---------- export and import ----------

  async *exportRecords(filter: ExportFilter): AsyncIterable<ExportRecord> {
    const now = nowSeconds();
    const keep = (tenant: string, createdAt: number, expiresAt: number | null) =>
      !expired(expiresAt, now) && (filter.tenant === undefined || tenant === filter.tenant) && (filter.since === undefined || createdAt >= filter.since);
    const responses = this.#scan<StoredResponse>('response#')
      .filter((r) => keep(r.tenant, r.createdAt, r.expiresAt) && (filter.conversationId === undefined || r.conversationId === filter.conversationId))
      .sort((a, b) => a.createdAt - b.createdAt);
    const conversations = this.#scan<ConversationDoc>('conversation#')
      .filter(({ record }) => keep(record.tenant, record.createdAt, record.expiresAt) && (filter.conversationId === undefined || record.id === filter.conversationId))
      .sort((a, b) => a.record.createdAt - b.record.createdAt || a.seq - b.seq);
    // Every response after its parent, so an import can link chains.
    const byId = new Map(responses.map((r) => [r.id, r]));
    const emitted = new Set<string>();
    for (const response of responses) {
      const pending: StoredResponse[] = [];
      for (let r: StoredResponse | undefined = response; r && !emitted.has(r.id); r = r.previousResponseId === null ? undefined : byId.get(r.previousResponseId)) {
        pending.push(r);
        emitted.add(r.id);
      }
      for (const r of pending.reverse()) yield { type: 'response', response: r };
    }
    for (const { record, items } of conversations) yield { type: 'conversation', conversation: record, items };
  }

  async importRecords(records: AsyncIterable<ExportRecord> | Iterable<ExportRecord>): Promise<ImportSummary> {
    const summary: ImportSummary = { responses: 0, conversations: 0, skipped: 0 };
    for await (const record of records) {
      const key = record.type === 'response' ? `response#${record.response.id}` : `conversation#${record.conversation.id}`;
      if (this.#table.has(key)) summary.skipped++;
      else if (record.type === 'response') {
        this.#put(key, record.response);
        summary.responses++;
      } else {
        this.#put(key, { record: record.conversation, items: record.items, seq: this.#seq++ });
        summary.conversations++;
      }
    }
    return summary;
  }

  #changeRecord(id: string, change: (record: StoredConversation) => void): StoredConversation | null {
    const doc = this.#liveConversation(id);
    if (!doc) return null;
    change(doc.record);
    doc.record.updatedAt = nowSeconds();
    this.#put(`conversation#${id}`, doc);
    return doc.record;
  }
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function expired(expiresAt: number | null, now: number): boolean {
  return expiresAt !== null && expiresAt <= now;
}

function page(items: Item[], options: ListOptions): ItemPage {
  const ordered = options.order === 'asc' ? items : [...items].reverse();
  let start = 0;
  if (options.after !== undefined) {
    start = ordered.findIndex((item) => item.id === options.after) + 1;
    if (start === 0) return { items: [], hasMore: false };
  }
  return { items: ordered.slice(start, start + options.limit), hasMore: ordered.length > start + options.limit };
}

function addUsage(totals: ConversationUsage, result: TurnResult): ConversationUsage {
  return {
    input_tokens: totals.input_tokens + (result.usage?.input_tokens ?? 0),
    output_tokens: totals.output_tokens + (result.usage?.output_tokens ?? 0),
    total_tokens: totals.total_tokens + (result.usage?.total_tokens ?? 0),
    cost_usd: totals.cost_usd + (result.costUsd ?? 0),
    turns: totals.turns + 1,
  };
}

runStoreContract('a custom key-value store written in the test', async () => ({ store: new KeyValueStore() }));

describe('a custom store under the library', () => {
  it('serves conversations and chains through createParley', async () => {
    const upstream = await startFakeUpstream();
    const parley = await createParley({
      config: { model_providers: [{ model: 'openai/gpt-4o-mini', base_url: upstream.url, access_key: 'k' }] },
      store: new KeyValueStore(),
    });
    try {
      upstream.enqueue({ kind: 'text', text: 'Hi Ada.' }, { kind: 'text', text: 'Ada.' });
      const conversation = await parley.conversations.create();
      await parley.responses.create({ model: 'gpt-4o-mini', input: 'I am Ada.', conversation: conversation.id });
      const second = await parley.responses.create({ model: 'gpt-4o-mini', input: 'Who am I?', conversation: conversation.id });
      assert.equal(outputText(second), 'Ada.');
      assert.equal(upstream.lastRequest()?.body.messages.length, 3);
      assert.equal((await parley.conversations.items.list(conversation.id)).data.length, 4);
    } finally {
      await parley.close();
      await upstream.close();
    }
  });
});
