// The ConversationStore contract. Backends (memory, sqlite, postgres, redis) implement exactly
// this and know nothing of HTTP or providers. Every backend passes test/store-contract/.

import type { Item, RequestParams, ResponseError, ResponseStatus, Usage } from '../protocol/types.ts';

/**
 * The tenant of every record while the gateway runs without API keys (and of rows written before
 * tenants existed). Code refers to it only through this constant.
 */
export const DEFAULT_TENANT = 'default';

/** The request parameters a response echoes back; stored once with the response. */
export type StoredRequestParams = RequestParams;

/**
 * One turn. Immutable once its status is terminal. `input` and `output` hold only this turn's
 * items: history is the chain of ancestors, never copied.
 */
export interface StoredResponse {
  id: string;
  /** Who owns it (an API key's tenant; `default` without auth). Another tenant's id behaves as unknown. */
  tenant: string;
  /** The request's `user`, kept as its own field so all of a user's data can be found and deleted. */
  user: string | null;
  previousResponseId: string | null;
  conversationId: string | null;
  model: string;
  status: ResponseStatus;
  createdAt: number; // unix seconds
  completedAt: number | null;
  /** Absolute expiry (unix seconds); null keeps it until deleted. */
  expiresAt: number | null;
  params: StoredRequestParams;
  input: Item[];
  output: Item[];
  usage: Usage | null;
  error: ResponseError | null;
  incompleteDetails: { reason: string } | null;
}

/**
 * What finishing a turn changes; everything else was written by beginTurn. When the response
 * has a conversationId and the status is `completed` or `incomplete`, finishTurn also appends
 * the turn's input then output to that conversation, in the same transaction: a turn is either
 * wholly in the conversation or not at all. Failed and cancelled turns are never appended. If the
 * conversation is gone by then (deleted or expired), the turn still finishes and nothing is appended.
 */
export interface TurnResult {
  status: Exclude<ResponseStatus, 'queued' | 'in_progress'>;
  completedAt: number | null;
  output: Item[];
  usage: Usage | null;
  error: ResponseError | null;
  incompleteDetails: { reason: string } | null;
  /**
   * What the turn cost in USD by the configured price table, null when unpriced. When the turn is
   * appended to a conversation, its usage and cost are added to the conversation's running
   * totals in the same transaction.
   */
  costUsd: number | null;
}

/** An unfinished turn's state, as saveProgress records it. */
export interface TurnProgress {
  status: Extract<ResponseStatus, 'queued' | 'in_progress'>;
  /** Everything produced so far; items still being generated have status `in_progress`. */
  output: Item[];
}

export interface ListOptions {
  /** Item id to start after (exclusive), in the chosen order. */
  after?: string;
  limit: number;
  order: 'asc' | 'desc';
}

export interface ItemPage {
  items: Item[];
  hasMore: boolean;
}

export interface ConversationStore {
  /** Short name for logs and the startup banner, e.g. `sqlite (./data/parley.db)`. Never holds secrets. */
  readonly description: string;

  /** Opens connections and applies schema migrations. Must be called before anything else. */
  open(): Promise<void>;
  close(): Promise<void>;
  /** Cheap liveness probe for /readyz; throws when the store cannot serve. */
  ping(): Promise<void>;

  /**
   * Records a new turn with its input items and status `in_progress` (or `queued`), before the
   * provider is called. Output is empty. Fails if the id exists.
   */
  beginTurn(response: StoredResponse): Promise<void>;

  /** Writes the turn's output and terminal status. Fails if the turn is unknown or already finished. */
  finishTurn(id: string, result: TurnResult): Promise<void>;

  /**
   * Records how far an unfinished turn has got (background mode): its status (`queued` ->
   * `in_progress`) and the output produced so far, replacing any earlier progress output. The
   * status check and the write are one atomic step. Returns false and changes nothing when the
   * turn is unknown or already finished (for instance cancelled through another gateway
   * instance): the caller then stops the turn. getResponse shows the progress; loadChain callers
   * still see an unfinished turn and refuse to continue it.
   */
  saveProgress(id: string, progress: TurnProgress): Promise<boolean>;

  /** One response with its own input and output, or null when unknown or expired. */
  getResponse(id: string): Promise<StoredResponse | null>;

  /**
   * The chain ending at `id`, root first, in one round trip to the backend. Null when `id` is
   * unknown or expired. Throws ChainBrokenError when an ancestor is missing, so partial history
   * can never be sent upstream.
   */
  loadChain(id: string): Promise<StoredResponse[] | null>;

  /**
   * Deletes one response and its items. Its descendants keep their own items but can no longer load a chain.
   * Conversations are not affected: a conversation keeps every item appended to it even after the
   * response that produced it is deleted or pruned (a backend that references turn items from a
   * conversation must keep or copy them).
   */
  deleteResponse(id: string): Promise<boolean>;

  /** A page of one response's input items (for GET /v1/responses/{id}/input_items). Null when unknown. */
  listInputItems(id: string, options: ListOptions): Promise<ItemPage | null>;

  /** Deletes responses and conversations whose expiry has passed; returns how many records went. */
  pruneExpired(now: number): Promise<number>;

  /**
   * Optional: how many records pruneExpired(now) would delete, deleting nothing (for
   * `parley prune --dry-run`). A backend without it has its dry run report "not counted".
   */
  countExpired?(now: number): Promise<number>;

  /**
   * Optional: lets the engine keep decoded chains and conversations in process
   * (engine/context-cache.ts, engine/conversation-cache.ts) instead of loading the whole history
   * every turn. Returns a value that differs from every earlier one whenever a stored response
   * may have been deleted, expired early or changed status, or an item may have left a
   * conversation (deleteConversationItem, or the conversation deleted, pruned or evicted), by
   * anyone — this instance's deleteResponse, deleteConversation, deleteConversationItem,
   * deleteUserData, pruneExpired, failStaleTurns, eviction, and every other process or connection
   * writing to the same backend — other than by the beginTurn, finishTurn and saveProgress calls
   * of the caller itself. Appending to a conversation need not move it. Changing more often (on
   * every foreign write, say) is allowed: it only costs the caches. A backend that cannot prove
   * this cheaply must not implement it.
   */
  changeToken?(): Promise<string | number>;

  /**
   * Required with changeToken: the TTL the store applies to responses written without an expiry
   * (the expiry a cached turn must be checked against).
   */
  readonly defaultTtlSeconds?: number | null;

  // ---------- conversations ----------
  // A conversation is an ordered, append-only item list. A turn created with `conversation`
  // reads all its items as context and, when it finishes `completed` or `incomplete`, its input
  // and output are appended in the same transaction that finishes the turn (see finishTurn).

  /** Creates a conversation with optional initial items. Fails (StoreConflictError) if the id exists. */
  createConversation(conversation: StoredConversation, items: Item[]): Promise<void>;

  /** Null when unknown, deleted or expired. */
  getConversation(id: string): Promise<StoredConversation | null>;

  /** Replaces the metadata; returns the updated conversation or null when unknown. */
  updateConversation(
    id: string,
    patch: { metadata: Record<string, string> },
  ): Promise<StoredConversation | null>;

  /** Deletes the conversation and every item it holds. Responses that were part of it stay retrievable. */
  deleteConversation(id: string): Promise<boolean>;

  /** Appends items at the end, atomically, in the given order. Null when the conversation is unknown. */
  appendConversationItems(id: string, items: Item[]): Promise<StoredConversation | null>;

  /** All items in order, in one round trip (the context of the next turn). Null when unknown. */
  loadConversationItems(id: string): Promise<Item[] | null>;

  /**
   * Optional, used with changeToken: the items appended at positions `position` and later, in
   * order, and the conversation's itemCount, both as of one moment, in one round trip. Every item
   * appended takes the next position (0, 1, 2, … = the itemCount before it) and keeps it; positions
   * are never reused. With it the engine loads only what a conversation gained since its last turn.
   * Null when the conversation is unknown or expired.
   */
  loadConversationItemsFrom?(id: string, position: number): Promise<{ items: Item[]; itemCount: number } | null>;

  /** A page of items; `after` is an item id. Null when the conversation is unknown. */
  listConversationItems(id: string, options: ListOptions): Promise<ItemPage | null>;

  getConversationItem(conversationId: string, itemId: string): Promise<Item | null>;

  /** Removes one item from the conversation's list. False when either is unknown. */
  deleteConversationItem(conversationId: string, itemId: string): Promise<boolean>;

  /**
   * Conversations filtered by user and/or metadata (all pairs must match), ordered by createdAt;
   * ties keep a stable backend-defined order (creation order where possible) so `after` pages exactly.
   * Expired conversations are never listed.
   */
  listConversations(
    query: ConversationQuery,
  ): Promise<{ conversations: StoredConversation[]; hasMore: boolean }>;

  /**
   * Serialises turns on one conversation across every gateway instance sharing the store: takes
   * a lease for `holder` if none is held or the held one expired. Returns false when another
   * holder has it (the engine waits and retries). Leases expire by themselves so that a killed
   * instance cannot block a conversation forever.
   */
  acquireConversationLease(conversationId: string, holder: string, ttlMs: number): Promise<boolean>;

  /** Extends a lease this holder owns; false when it was lost (expired and taken by another). */
  renewConversationLease(conversationId: string, holder: string, ttlMs: number): Promise<boolean>;

  /** Releases the lease if this holder still owns it. */
  releaseConversationLease(conversationId: string, holder: string): Promise<void>;

  /**
   * Merges metadata atomically: keys with a string value are set, keys with null are removed.
   * Null when the conversation is unknown. (Limits are validated by the caller.)
   */
  mergeConversationMetadata(
    id: string,
    patch: Record<string, string | null>,
  ): Promise<StoredConversation | null>;

  /**
   * Creates `target` (its id, tenant, user, metadata, createdAt, expiresAt as given; usage zero)
   * holding the source's items from the first up to and including `upToItemId`, in order, with
   * the same item ids. Later changes to either conversation do not affect the other. Null (and
   * nothing created) when the source or the item is unknown. `upToItemId` names the first item with
   * that id; `itemCount` becomes the number of items copied; the store's default TTL applies as in
   * createConversation; an existing target id fails with StoreConflictError.
   */
  forkConversation(
    sourceId: string,
    upToItemId: string,
    target: StoredConversation,
  ): Promise<StoredConversation | null>;

  /**
   * Deletes every response and conversation of this tenant whose `user` matches (a data-protection
   * request), with their items. Returns how many of each went.
   */
  deleteUserData(tenant: string, user: string): Promise<{ responses: number; conversations: number }>;

  /**
   * Marks turns still `queued`/`in_progress` that were created before `before` (unix seconds) as
   * `failed` with error code `interrupted` — turns whose gateway died mid-stream. Returns how many.
   * Such turns never become context; this only makes their status honest. The error is exactly
   * codec's INTERRUPTED_ERROR; progress output and everything else stay as they were.
   */
  failStaleTurns(before: number): Promise<number>;

  /**
   * Every record matching the filter, for `parley export`: responses first, each after its parent
   * (so an import can link chains), then conversations with their items. Expired records are skipped.
   * `since` keeps records created at or after it (unix seconds); `conversationId` keeps that
   * conversation and the responses that belong to it. Not a snapshot: records written while the
   * export runs may or may not be in it.
   */
  exportRecords(filter: ExportFilter): AsyncIterable<ExportRecord>;

  /**
   * Writes exported records losslessly (ids, timestamps, items, statuses, usage, tenant, user all
   * kept). Records whose id already exists are skipped and counted, never overwritten. Imported
   * turns are not appended to conversations again (a conversation record brings its own items),
   * and the store's default TTL applies to records without an expiry, as when they were first written.
   */
  importRecords(records: AsyncIterable<ExportRecord> | Iterable<ExportRecord>): Promise<ImportSummary>;
}

export interface ExportFilter {
  tenant?: string;
  conversationId?: string;
  since?: number;
}

export type ExportRecord =
  | { type: 'response'; response: StoredResponse }
  | { type: 'conversation'; conversation: StoredConversation; items: Item[] };

export interface ImportSummary {
  responses: number;
  conversations: number;
  skipped: number;
}

export interface ConversationUsage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  cost_usd: number;
  /** Turns appended to the conversation. */
  turns: number;
}

export interface StoredConversation {
  id: string;
  tenant: string;
  createdAt: number; // unix seconds
  metadata: Record<string, string>;
  /** The `user` that created it (listing extension; also the handle for deleting a user's data). */
  user: string | null;
  /** Number of items ever appended; grows monotonically (positions are never reused). */
  itemCount: number;
  expiresAt: number | null;
  /** Running totals of the turns appended to it (see TurnResult.costUsd). */
  usage: ConversationUsage;
  /**
   * Unix seconds of the last append (items or a turn) or metadata change (update or merge);
   * createConversation and importRecords store the value given.
   */
  updatedAt: number;
}

export interface ConversationQuery {
  /** Listing is always within one tenant. */
  tenant: string;
  user?: string;
  /** Keep conversations created at or after / before these unix seconds. */
  createdAfter?: number;
  createdBefore?: number;
  metadata?: Record<string, string>;
  limit: number;
  order: 'asc' | 'desc';
  /** Conversation id to start after (exclusive) in the chosen order. */
  after?: string;
}

export class ChainBrokenError extends Error {
  readonly responseId: string;
  constructor(responseId: string, missingAncestor: string | null) {
    super(
      `The history of ${responseId} is incomplete: ancestor ${missingAncestor ?? '(unknown)'} is missing from the store.`,
    );
    this.name = 'ChainBrokenError';
    this.responseId = responseId;
  }
}

export class StoreConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreConflictError';
  }
}
