// Conversations: the Conversations API's operations, and the serialisation of turns on one
// conversation. A turn holds the conversation from before its context is loaded until it is
// persisted, so the next turn's context includes it and nothing interleaves. Two levels:
// an in-process FIFO per conversation (local waiters never poll), then a lease in the store
// (serialises gateway instances sharing it; it expires by itself if an instance dies).

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type ConversationDeleted,
  type ConversationObject,
  type CreateConversationRequest,
  type ForkConversationRequest,
  type ListConversationsRequest,
  type ListObject,
  toListObject,
} from '../protocol/conversations.ts';
import { ApiError, invalidRequest, storeUnavailable } from '../protocol/errors.ts';
import { newId } from '../protocol/ids.ts';
import { METADATA_MAX_PAIRS } from '../protocol/request.ts';
import { nowSeconds, toClientItem } from '../protocol/response.ts';
import type { Item } from '../protocol/types.ts';
import { emptyConversationUsage } from '../store/codec.ts';
import type { ConversationStore, ListOptions, StoredConversation } from '../store/types.ts';
import { DEFAULT_TENANT } from '../store/types.ts';
import { type ConversationDetails, toConversationDetails } from './bookkeeping.ts';
import type { ConversationCache } from './conversation-cache.ts';

export interface ConversationLeaseOptions {
  /** How long a lease lives unless renewed; a dead instance blocks a conversation at most this long. */
  ttlMs: number;
  /** How long a turn waits for a busy conversation before answering 409 `conversation_locked`. */
  maxWaitMs: number;
  /** First retry delay while another instance holds the lease; doubles up to `maxPollMs`. */
  pollMs: number;
  maxPollMs: number;
}

export const DEFAULT_LEASE_OPTIONS: ConversationLeaseOptions = {
  ttlMs: 30_000,
  maxWaitMs: 120_000,
  pollMs: 20,
  maxPollMs: 500,
};

export interface ConversationsOptions {
  store: ConversationStore | null;
  /** Retention applied to every conversation; null keeps them until deleted. */
  ttlSeconds: number | null;
  /** Reports failures no client can see (a lease that could not be renewed or released). */
  reportError: (error: unknown, context: string) => void;
  lease?: Partial<ConversationLeaseOptions>;
  /**
   * Decoded conversations kept in process, and the store's change token that says they still
   * hold (ConversationStore.changeToken): a turn then loads only what was appended since. Without
   * them every turn loads every item.
   */
  cache?: { items: ConversationCache; changeToken: () => Promise<string | number> } | null;
}

/** A conversation held for one turn. */
export interface ConversationTurn {
  readonly id: string;
  /** Every item of the conversation, oldest first: the context of the turn. */
  readonly items: Item[];
  /** The conversation's user: a turn without a `user` of its own is stored as theirs. */
  readonly user: string | null;
  /** Lets the next turn in; call once the turn is persisted (or failed). Idempotent. */
  release(): Promise<void>;
}

export class Conversations {
  readonly #store: ConversationStore | null;
  readonly #ttlSeconds: number | null;
  readonly #reportError: (error: unknown, context: string) => void;
  readonly #lease: ConversationLeaseOptions;
  readonly #cache: { items: ConversationCache; changeToken: () => Promise<string | number> } | null;
  readonly #queue = new LocalQueue();
  /** Distinguishes this process's lease holders from other instances'. */
  readonly #instance = randomUUID();

  constructor(options: ConversationsOptions) {
    this.#store = options.store;
    this.#ttlSeconds = options.ttlSeconds;
    this.#reportError = options.reportError;
    this.#lease = { ...DEFAULT_LEASE_OPTIONS, ...options.lease };
    this.#cache = options.cache ?? null;
  }

  // ---------- the Conversations API ----------

  async create(request: CreateConversationRequest): Promise<ConversationObject> {
    const store = this.#requireStore(400);
    const createdAt = nowSeconds();
    const conversation: StoredConversation = {
      id: newId('conv'),
      tenant: DEFAULT_TENANT,
      createdAt,
      metadata: request.metadata,
      user: request.user,
      itemCount: request.items.length,
      expiresAt: this.#ttlSeconds === null ? null : createdAt + this.#ttlSeconds,
      usage: emptyConversationUsage(),
      updatedAt: createdAt,
    };
    await storeCall(() => store.createConversation(conversation, request.items));
    return toConversationObject(conversation);
  }

  async retrieve(id: string): Promise<ConversationObject> {
    const store = this.#requireStore(404);
    const conversation = await storeCall(() => store.getConversation(id));
    if (conversation === null) throw conversationNotFound(id);
    return toConversationObject(conversation);
  }

  async update(id: string, metadata: Record<string, string>): Promise<ConversationObject> {
    const store = this.#requireStore(404);
    const conversation = await storeCall(() => store.updateConversation(id, { metadata }));
    if (conversation === null) throw conversationNotFound(id);
    return toConversationObject(conversation);
  }

  async delete(id: string): Promise<ConversationDeleted> {
    const store = this.#requireStore(404);
    const deleted = await storeCall(() => store.deleteConversation(id)).finally(() => this.#cache?.items.invalidate(id));
    if (!deleted) throw conversationNotFound(id);
    return { id, object: 'conversation.deleted', deleted: true };
  }

  async addItems(id: string, items: Item[]): Promise<ListObject<Item>> {
    const store = this.#requireStore(404);
    const conversation = await storeCall(() => store.appendConversationItems(id, items));
    if (conversation === null) throw conversationNotFound(id);
    return toListObject(items.map(toClientItem), false);
  }

  async listItems(id: string, options: ListOptions): Promise<ListObject<Item>> {
    const store = this.#requireStore(404);
    const page = await storeCall(() => store.listConversationItems(id, options));
    if (page === null) throw conversationNotFound(id);
    return toListObject(page.items.map(toClientItem), page.hasMore);
  }

  async retrieveItem(id: string, itemId: string): Promise<Item> {
    const store = this.#requireStore(404);
    const [conversation, item] = await storeCall(() =>
      Promise.all([store.getConversation(id), store.getConversationItem(id, itemId)]),
    );
    if (conversation === null) throw conversationNotFound(id);
    if (item === null) throw itemNotFound(id, itemId);
    return toClientItem(item);
  }

  /** Removes one item; answers with the conversation, as OpenAI does. */
  async deleteItem(id: string, itemId: string): Promise<ConversationObject> {
    const store = this.#requireStore(404);
    const deleted = await storeCall(() => store.deleteConversationItem(id, itemId)).finally(() =>
      this.#cache?.items.invalidate(id),
    );
    const conversation = await storeCall(() => store.getConversation(id));
    if (conversation === null) throw conversationNotFound(id);
    if (!deleted) throw itemNotFound(id, itemId);
    return toConversationObject(conversation);
  }

  /**
   * PATCH /v1/conversations/{id} (Parley extension): merges metadata atomically in the store
   * (a string sets a key, null removes it). The result may hold at most 16 pairs.
   */
  async mergeMetadata(id: string, patch: Record<string, string | null>): Promise<ConversationObject> {
    const store = this.#requireStore(404);
    const current = await storeCall(() => store.getConversation(id));
    if (current === null) throw conversationNotFound(id);
    const keys = new Set(Object.keys(current.metadata));
    for (const [key, value] of Object.entries(patch)) {
      if (value === null) keys.delete(key);
      else keys.add(key);
    }
    if (keys.size > METADATA_MAX_PAIRS) {
      throw invalidRequest(
        `Invalid 'metadata': the merged metadata would have ${keys.size} key-value pairs; at most ${METADATA_MAX_PAIRS} are allowed.`,
        'metadata',
        'invalid_value',
      );
    }
    const conversation = await storeCall(() => store.mergeConversationMetadata(id, patch));
    if (conversation === null) throw conversationNotFound(id);
    return toConversationObject(conversation);
  }

  /** GET /v1/conversations/{id}/details (Parley extension): owner, timestamps and running totals. */
  async details(id: string): Promise<ConversationDetails> {
    const store = this.#requireStore(404);
    const conversation = await storeCall(() => store.getConversation(id));
    if (conversation === null) throw conversationNotFound(id);
    return toConversationDetails(conversation);
  }

  /**
   * POST /v1/conversations/{id}/fork (Parley extension): a new conversation holding the items up
   * to and including `item_id` (default: all of them), with the same item ids, the source's user,
   * and the given metadata (default: the source's). The two then grow independently.
   */
  async fork(id: string, request: ForkConversationRequest): Promise<ConversationObject> {
    const store = this.#requireStore(404);
    const source = await storeCall(() => store.getConversation(id));
    if (source === null) throw conversationNotFound(id);
    let itemId = request.item_id;
    if (itemId === null) {
      const newest = await storeCall(() => store.listConversationItems(id, { limit: 1, order: 'desc' }));
      if (newest === null) throw conversationNotFound(id);
      if (newest.items.length === 0) {
        throw invalidRequest(`Conversation '${id}' has no items to fork from.`, 'item_id', 'invalid_value');
      }
      itemId = newest.items[0].id;
    }
    const createdAt = nowSeconds();
    const target: StoredConversation = {
      id: newId('conv'),
      tenant: source.tenant,
      createdAt,
      metadata: request.metadata ?? source.metadata,
      user: source.user,
      itemCount: 0,
      expiresAt: this.#ttlSeconds === null ? null : createdAt + this.#ttlSeconds,
      usage: emptyConversationUsage(),
      updatedAt: createdAt,
    };
    const upTo = itemId;
    const fork = await storeCall(() => store.forkConversation(id, upTo, target));
    if (fork === null) {
      if ((await storeCall(() => store.getConversation(id))) === null) throw conversationNotFound(id);
      throw itemNotFound(id, upTo);
    }
    return toConversationObject(fork);
  }

  /** GET /v1/conversations: a Parley extension, filtered by `user` and metadata pairs. */
  async list(request: ListConversationsRequest): Promise<ListObject<ConversationObject>> {
    const store = this.#requireStore(404);
    const page = await storeCall(() => store.listConversations({ ...request, tenant: DEFAULT_TENANT }));
    return toListObject(page.conversations.map(toConversationObject), page.hasMore);
  }

  // ---------- turns ----------

  /**
   * Waits until the conversation is free (this process first, then the store lease), then
   * loads its items. The caller must `release()` once the turn is persisted, in a `finally`.
   */
  async beginTurn(id: string, signal?: AbortSignal): Promise<ConversationTurn> {
    const store = this.#store;
    if (store === null) {
      throw invalidRequest(
        'This gateway runs without state storage, so `conversation` cannot be used. Configure `state_storage` or send the whole conversation as `input`.',
        'conversation',
        'state_storage_disabled',
      );
    }
    // An unknown conversation fails at once rather than after queueing behind its turns. The change
    // token is read beside it: what the cached items are checked against. So what the cache holds
    // is taken as of this moment: an item deleted while the turn waits for the conversation may
    // still be in its context, as if the delete had come just after; the next turn sees the token
    // moved and loads everything (the entry this turn fills carries the token read here).
    const cache = this.#cache;
    const [record, token] = await Promise.all([
      storeCall(() => store.getConversation(id)),
      cache === null ? null : storeCall(() => cache.changeToken()),
    ]);
    if (record === null) throw conversationNotFound(id, 'conversation');

    const leave = await this.#queue.enter(id, signal);
    const holder = `${this.#instance}:${randomUUID()}`;
    try {
      await this.#acquireLease(store, id, holder, signal);
    } catch (error) {
      leave();
      throw error;
    }
    const renewal = setInterval(
      () => {
        store.renewConversationLease(id, holder, this.#lease.ttlMs).then(
          (held) => {
            if (!held) this.#reportError(new Error('lease lost'), `renewing the lease on conversation ${id}`);
          },
          (error: unknown) => this.#reportError(error, `renewing the lease on conversation ${id}`),
        );
      },
      Math.max(1, Math.floor(this.#lease.ttlMs / 3)),
    );
    renewal.unref();

    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      clearInterval(renewal);
      try {
        await store.releaseConversationLease(id, holder);
      } catch (error) {
        // The lease expires by itself; other instances wait at most its ttl.
        this.#reportError(error, `releasing the lease on conversation ${id}`);
      } finally {
        leave();
      }
    };

    try {
      const items = await this.#loadItems(store, record, token);
      if (items === null) throw conversationNotFound(id, 'conversation');
      return { id, items, user: record.user, release };
    } catch (error) {
      await release();
      throw error;
    }
  }

  /**
   * Every item of the conversation: what the cache holds and, from the store, what was appended
   * since (everything when nothing usable is cached, or without a cache).
   */
  async #loadItems(store: ConversationStore, record: StoredConversation, token: string | number | null): Promise<Item[] | null> {
    const id = record.id;
    const cache = this.#cache?.items;
    if (cache === undefined || token === null || store.loadConversationItemsFrom === undefined) {
      return storeCall(() => store.loadConversationItems(id));
    }
    const ticket = cache.sync(token);
    const prefix = cache.prefix(id, record);
    const from = prefix?.itemCount ?? 0;
    const tail = await storeCall(() => store.loadConversationItemsFrom!(id, from));
    if (tail === null) return null;
    return cache.fill(ticket, id, record, prefix?.items ?? [], tail.items, tail.itemCount);
  }

  /** The conversations kept in process (null without a cache); shared by every tenant's engine. */
  get cache(): ConversationCache | null {
    return this.#cache?.items ?? null;
  }

  async #acquireLease(
    store: ConversationStore,
    id: string,
    holder: string,
    signal?: AbortSignal,
  ): Promise<void> {
    const { ttlMs, maxWaitMs, pollMs, maxPollMs } = this.#lease;
    const deadline = Date.now() + maxWaitMs;
    let delay = pollMs;
    for (;;) {
      if (await storeCall(() => store.acquireConversationLease(id, holder, ttlMs))) return;
      if (Date.now() + delay > deadline) throw conversationLocked(id);
      // Jitter keeps instances that lost the same race from retrying in lockstep.
      try {
        await sleep(delay * (0.5 + Math.random()), undefined, signal ? { signal } : {});
      } catch {
        throw clientGone();
      }
      delay = Math.min(delay * 2, maxPollMs);
    }
  }

  #requireStore(status: 400 | 404): ConversationStore {
    if (this.#store === null) {
      throw new ApiError(
        status,
        'invalid_request_error',
        'This gateway runs without state storage: conversations are not available. Configure `state_storage`.',
        { param: null, code: 'state_storage_disabled' },
      );
    }
    return this.#store;
  }
}

/**
 * One FIFO line per conversation in this process. Whoever is in the map holds the conversation;
 * `leave` hands it to the next waiter directly, so waiters are woken in order and never poll.
 */
class LocalQueue {
  readonly #lines = new Map<string, (() => void)[]>();

  enter(id: string, signal?: AbortSignal): Promise<() => void> {
    const line = this.#lines.get(id);
    if (line === undefined) {
      this.#lines.set(id, []);
      return Promise.resolve(this.#leaver(id));
    }
    if (signal?.aborted) return Promise.reject(clientGone());
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const index = line.indexOf(admit);
        if (index !== -1) line.splice(index, 1);
        reject(clientGone());
      };
      const admit = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(this.#leaver(id));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      line.push(admit);
    });
  }

  #leaver(id: string): () => void {
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const line = this.#lines.get(id);
      const next = line?.shift();
      if (next) next();
      else this.#lines.delete(id);
    };
  }
}

function toConversationObject(conversation: StoredConversation): ConversationObject {
  return {
    id: conversation.id,
    object: 'conversation',
    created_at: conversation.createdAt,
    metadata: conversation.metadata,
  };
}

/** Any store failure is the client's 503, never a silent fallback. */
async function storeCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw storeUnavailable(error);
  }
}

export function conversationNotFound(id: string, param: string | null = null): ApiError {
  return new ApiError(404, 'invalid_request_error', `Conversation with id '${id}' not found.`, {
    param,
    code: 'conversation_not_found',
  });
}

function itemNotFound(conversationId: string, itemId: string): ApiError {
  return new ApiError(
    404,
    'invalid_request_error',
    `Item with id '${itemId}' not found in conversation '${conversationId}'.`,
    { param: 'item_id', code: 'item_not_found' },
  );
}

function conversationLocked(id: string): ApiError {
  return new ApiError(
    409,
    'invalid_request_error',
    `Another response is still being generated in conversation '${id}'. Retry once it has finished.`,
    { param: 'conversation', code: 'conversation_locked' },
  );
}

function clientGone(): ApiError {
  return new ApiError(
    499,
    'invalid_request_error',
    'The client closed the request while it waited for the conversation.',
    {
      code: 'client_closed_request',
    },
  );
}
