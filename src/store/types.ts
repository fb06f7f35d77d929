// The ConversationStore contract. Backends (memory, sqlite, postgres, redis) implement exactly
// this and know nothing of HTTP or providers. Every backend passes test/store-contract/.

import type { Item, RequestParams, ResponseError, ResponseStatus, Usage } from '../protocol/types.ts';

/** The request parameters a response echoes back; stored once with the response. */
export type StoredRequestParams = RequestParams;

/**
 * One turn. Immutable once its status is terminal. `input` and `output` hold only this turn's
 * items: history is the chain of ancestors, never copied.
 */
export interface StoredResponse {
  id: string;
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

/** What finishing a turn changes; everything else was written by beginTurn. */
export interface TurnResult {
  status: Exclude<ResponseStatus, 'queued' | 'in_progress'>;
  completedAt: number | null;
  output: Item[];
  usage: Usage | null;
  error: ResponseError | null;
  incompleteDetails: { reason: string } | null;
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

  /** One response with its own input and output, or null when unknown or expired. */
  getResponse(id: string): Promise<StoredResponse | null>;

  /**
   * The chain ending at `id`, root first, in one round trip to the backend. Null when `id` is
   * unknown or expired. Throws ChainBrokenError when an ancestor is missing, so partial history
   * can never be sent upstream.
   */
  loadChain(id: string): Promise<StoredResponse[] | null>;

  /** Deletes one response and its items. Its descendants keep their own items but can no longer load a chain. */
  deleteResponse(id: string): Promise<boolean>;

  /** A page of one response's input items (for GET /v1/responses/{id}/input_items). Null when unknown. */
  listInputItems(id: string, options: ListOptions): Promise<ItemPage | null>;

  /** Deletes responses whose expiry has passed; returns how many. */
  pruneExpired(now: number): Promise<number>;
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
