// The store as one tenant sees it. Every engine works through one of these (Engine.forTenant):
// records it writes belong to its tenant, whatever the caller filled in; a record of another
// tenant reads exactly as an unknown id (null, false) — the same single store read either way,
// then nothing more, so the answer, its wording and the work done do not differ; listing, export
// and data deletion are confined to the tenant. Ids no record can have (control characters,
// absurd lengths) are unknown without asking the store.
//
// Operations on an id first check its owner, except where the id was verified before (created
// or read through this scope): a tenant never changes, so a conversation turn's context load
// stays one round trip.

import type { Item } from '../protocol/types.ts';
import {
  ChainBrokenError,
  type ConversationQuery,
  type ConversationStore,
  type ExportFilter,
  type ExportRecord,
  type ImportSummary,
  type ItemPage,
  type ListOptions,
  type StoredConversation,
  type StoredResponse,
  type TurnProgress,
  type TurnResult,
} from '../store/types.ts';

const MAX_ID_LENGTH = 256;
const VERIFIED_IDS = 10_000;

/** False for strings no stored id can be: empty, too long, or holding control characters. */
export function plausibleId(id: unknown): id is string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  return typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_LENGTH && !/[\u0000-\u001f\u007f]/.test(id);
}

/** Insertion-ordered set that forgets its oldest entries past `max`. */
class RecentIds {
  readonly #ids = new Set<string>();
  readonly #max: number;
  constructor(max: number) {
    this.#max = max;
  }
  has(id: string): boolean {
    return this.#ids.has(id);
  }
  add(id: string): void {
    if (this.#ids.has(id)) return;
    this.#ids.add(id);
    if (this.#ids.size > this.#max) this.#ids.delete(this.#ids.values().next().value as string);
  }
  delete(id: string): void {
    this.#ids.delete(id);
  }
}

export class TenantScopedStore implements ConversationStore {
  readonly tenant: string;
  readonly #store: ConversationStore;
  readonly #responses = new RecentIds(VERIFIED_IDS);
  readonly #conversations = new RecentIds(VERIFIED_IDS);

  /** Present when the store has it (ConversationStore.loadConversationItemsFrom is optional). */
  readonly loadConversationItemsFrom?: (
    id: string,
    position: number,
  ) => Promise<{ items: Item[]; itemCount: number } | null>;

  constructor(store: ConversationStore, tenant: string) {
    this.#store = store;
    this.tenant = tenant;
    const from = store.loadConversationItemsFrom?.bind(store);
    if (from !== undefined) {
      this.loadConversationItemsFrom = async (id, position) => ((await this.#ownsConversation(id)) ? from(id, position) : null);
    }
  }

  get description(): string {
    return this.#store.description;
  }

  open(): Promise<void> {
    return this.#store.open();
  }

  close(): Promise<void> {
    return this.#store.close();
  }

  ping(): Promise<void> {
    return this.#store.ping();
  }

  // ---------- responses ----------

  beginTurn(response: StoredResponse): Promise<void> {
    this.#responses.add(response.id);
    return this.#store.beginTurn(response.tenant === this.tenant ? response : { ...response, tenant: this.tenant });
  }

  /** The engine finishes only turns it began (or has just read through this scope). */
  finishTurn(id: string, result: TurnResult): Promise<void> {
    return this.#store.finishTurn(id, result);
  }

  saveProgress(id: string, progress: TurnProgress): Promise<boolean> {
    return this.#store.saveProgress(id, progress);
  }

  async getResponse(id: string): Promise<StoredResponse | null> {
    if (!plausibleId(id)) return null;
    const response = await this.#store.getResponse(id);
    if (response === null || response.tenant !== this.tenant) return null;
    this.#responses.add(id);
    return response;
  }

  async loadChain(id: string): Promise<StoredResponse[] | null> {
    if (!plausibleId(id)) return null;
    let chain: StoredResponse[] | null;
    try {
      chain = await this.#store.loadChain(id);
    } catch (error) {
      // A broken chain is news only to its owner.
      if (error instanceof ChainBrokenError && (await this.getResponse(id)) === null) return null;
      throw error;
    }
    if (chain === null) return null;
    for (const turn of chain) if (turn.tenant !== this.tenant) return null;
    this.#responses.add(id);
    return chain;
  }

  async deleteResponse(id: string): Promise<boolean> {
    if (!(await this.#ownsResponse(id))) return false;
    this.#responses.delete(id);
    return this.#store.deleteResponse(id);
  }

  async listInputItems(id: string, options: ListOptions): Promise<ItemPage | null> {
    if (!(await this.#ownsResponse(id))) return null;
    if (options.after !== undefined && !plausibleId(options.after)) return { items: [], hasMore: false };
    return this.#store.listInputItems(id, options);
  }

  pruneExpired(now: number): Promise<number> {
    return this.#store.pruneExpired(now);
  }

  failStaleTurns(before: number): Promise<number> {
    return this.#store.failStaleTurns(before);
  }

  // ---------- conversations ----------

  createConversation(conversation: StoredConversation, items: Item[]): Promise<void> {
    this.#conversations.add(conversation.id);
    return this.#store.createConversation(this.#own(conversation), items);
  }

  async getConversation(id: string): Promise<StoredConversation | null> {
    if (!plausibleId(id)) return null;
    const conversation = await this.#store.getConversation(id);
    if (conversation === null || conversation.tenant !== this.tenant) return null;
    this.#conversations.add(id);
    return conversation;
  }

  async updateConversation(id: string, patch: { metadata: Record<string, string> }): Promise<StoredConversation | null> {
    if (!(await this.#ownsConversation(id))) return null;
    return this.#store.updateConversation(id, patch);
  }

  async deleteConversation(id: string): Promise<boolean> {
    if (!(await this.#ownsConversation(id))) return false;
    this.#conversations.delete(id);
    return this.#store.deleteConversation(id);
  }

  async appendConversationItems(id: string, items: Item[]): Promise<StoredConversation | null> {
    if (!(await this.#ownsConversation(id))) return null;
    return this.#store.appendConversationItems(id, items);
  }

  async loadConversationItems(id: string): Promise<Item[] | null> {
    if (!(await this.#ownsConversation(id))) return null;
    return this.#store.loadConversationItems(id);
  }

  async listConversationItems(id: string, options: ListOptions): Promise<ItemPage | null> {
    if (!(await this.#ownsConversation(id))) return null;
    if (options.after !== undefined && !plausibleId(options.after)) return { items: [], hasMore: false };
    return this.#store.listConversationItems(id, options);
  }

  async getConversationItem(conversationId: string, itemId: string): Promise<Item | null> {
    if (!plausibleId(itemId) || !(await this.#ownsConversation(conversationId))) return null;
    return this.#store.getConversationItem(conversationId, itemId);
  }

  async deleteConversationItem(conversationId: string, itemId: string): Promise<boolean> {
    if (!plausibleId(itemId) || !(await this.#ownsConversation(conversationId))) return false;
    return this.#store.deleteConversationItem(conversationId, itemId);
  }

  listConversations(query: ConversationQuery): Promise<{ conversations: StoredConversation[]; hasMore: boolean }> {
    const unmatchable =
      (query.after !== undefined && !plausibleId(query.after)) ||
      (query.user !== undefined && hasControl(query.user)) ||
      Object.entries(query.metadata ?? {}).some(([k, v]) => hasControl(k) || hasControl(v));
    if (unmatchable) return Promise.resolve({ conversations: [], hasMore: false });
    return this.#store.listConversations({ ...query, tenant: this.tenant });
  }

  // Leases are taken only on conversations the engine has just read through this scope.
  acquireConversationLease(conversationId: string, holder: string, ttlMs: number): Promise<boolean> {
    return this.#store.acquireConversationLease(conversationId, holder, ttlMs);
  }

  renewConversationLease(conversationId: string, holder: string, ttlMs: number): Promise<boolean> {
    return this.#store.renewConversationLease(conversationId, holder, ttlMs);
  }

  releaseConversationLease(conversationId: string, holder: string): Promise<void> {
    return this.#store.releaseConversationLease(conversationId, holder);
  }

  async mergeConversationMetadata(id: string, patch: Record<string, string | null>): Promise<StoredConversation | null> {
    if (!(await this.#ownsConversation(id))) return null;
    return this.#store.mergeConversationMetadata(id, patch);
  }

  async forkConversation(sourceId: string, upToItemId: string, target: StoredConversation): Promise<StoredConversation | null> {
    if (!plausibleId(upToItemId) || !(await this.#ownsConversation(sourceId))) return null;
    const fork = await this.#store.forkConversation(sourceId, upToItemId, this.#own(target));
    if (fork !== null) this.#conversations.add(fork.id);
    return fork;
  }

  deleteUserData(_tenant: string, user: string): Promise<{ responses: number; conversations: number }> {
    return this.#store.deleteUserData(this.tenant, user);
  }

  exportRecords(filter: ExportFilter): AsyncIterable<ExportRecord> {
    return this.#store.exportRecords({ ...filter, tenant: this.tenant });
  }

  importRecords(records: AsyncIterable<ExportRecord> | Iterable<ExportRecord>): Promise<ImportSummary> {
    const tenant = this.tenant;
    const own = this.#own.bind(this);
    async function* owned(): AsyncGenerator<ExportRecord> {
      for await (const record of records) {
        if (record.type === 'response') yield { type: 'response', response: record.response.tenant === tenant ? record.response : { ...record.response, tenant } };
        else yield { ...record, conversation: own(record.conversation) };
      }
    }
    return this.#store.importRecords(owned());
  }

  // ---------- ownership ----------

  #own(conversation: StoredConversation): StoredConversation {
    return conversation.tenant === this.tenant ? conversation : { ...conversation, tenant: this.tenant };
  }

  async #ownsResponse(id: string): Promise<boolean> {
    if (!plausibleId(id)) return false;
    return this.#responses.has(id) || (await this.getResponse(id)) !== null;
  }

  async #ownsConversation(id: string): Promise<boolean> {
    if (!plausibleId(id)) return false;
    return this.#conversations.has(id) || (await this.getConversation(id)) !== null;
  }
}

function hasControl(value: string): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  return /[\u0000-\u001f\u007f]/.test(value);
}
