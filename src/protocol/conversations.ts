// The Conversations API on the wire: the objects it returns and the validation of what clients
// send to it (bodies and query strings), with errors naming the `param` as OpenAI does.

import { invalidRequest, shown } from './errors.ts';
import { INCLUDABLE, parseInput, parseMetadata } from './request.ts';
import type { Item } from './types.ts';

/** Items per POST /v1/conversations or POST /v1/conversations/{id}/items, as OpenAI allows. */
export const MAX_ITEMS_PER_REQUEST = 20;

export interface ConversationObject {
  id: string;
  object: 'conversation';
  created_at: number;
  metadata: Record<string, string>;
}

export interface ConversationDeleted {
  id: string;
  object: 'conversation.deleted';
  deleted: true;
}

export interface ListObject<T> {
  object: 'list';
  data: T[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
}

export function toListObject<T extends { id: string }>(data: T[], hasMore: boolean): ListObject<T> {
  return {
    object: 'list',
    data,
    first_id: data.length > 0 ? data[0].id : null,
    last_id: data.length > 0 ? data[data.length - 1].id : null,
    has_more: hasMore,
  };
}

export interface CreateConversationRequest {
  items: Item[];
  metadata: Record<string, string>;
  /** Parley extension: who the conversation belongs to, for GET /v1/conversations?user=…. */
  user: string | null;
}

export interface ListConversationsRequest {
  user?: string;
  metadata?: Record<string, string>;
  /** Unix seconds: conversations created at or after / before (`created_after`, `created_before`). */
  createdAfter?: number;
  createdBefore?: number;
  limit: number;
  order: 'asc' | 'desc';
  after?: string;
}

type Body = Record<string, unknown>;

const CREATE_FIELDS = new Set(['items', 'metadata', 'user']);

export function parseCreateConversation(raw: unknown): CreateConversationRequest {
  // The SDK sends no body at all for `conversations.create()`.
  const body = raw === undefined || raw === null || raw === '' ? {} : requireObject(raw);
  rejectUnknown(body, CREATE_FIELDS);
  const user = body.user ?? null;
  if (user !== null && typeof user !== 'string') throw typeError('user', 'a string', user);
  return {
    items: body.items === undefined || body.items === null ? [] : parseItems(body.items, false),
    metadata: parseMetadata(body.metadata),
    user,
  };
}

export function parseUpdateConversation(raw: unknown): { metadata: Record<string, string> } {
  const body = requireObject(raw);
  rejectUnknown(body, new Set(['metadata']));
  if (!('metadata' in body)) {
    throw invalidRequest("Missing required parameter: 'metadata'.", 'metadata', 'missing_required_parameter');
  }
  return { metadata: parseMetadata(body.metadata) };
}

export function parseAddItems(raw: unknown): Item[] {
  const body = requireObject(raw);
  rejectUnknown(body, new Set(['items']));
  if (body.items === undefined || body.items === null) {
    throw invalidRequest("Missing required parameter: 'items'.", 'items', 'missing_required_parameter');
  }
  return parseItems(body.items, true);
}

/** `conversation` on POST /v1/responses: an id, or `{id}`. Null when absent. */
export function parseConversationParam(raw: unknown): string | null {
  if (raw === undefined || raw === null) return null;
  let id: unknown = raw;
  let param = 'conversation';
  if (typeof raw === 'object' && !Array.isArray(raw)) {
    id = (raw as Body).id;
    param = 'conversation.id';
    if (id === undefined || id === null) {
      throw invalidRequest(
        "Missing required parameter: 'conversation.id'.",
        param,
        'missing_required_parameter',
      );
    }
  }
  if (typeof id !== 'string') throw typeError(param, 'a string or an object with an `id`', raw);
  if (!id.startsWith('conv_')) {
    throw invalidRequest(
      `Invalid '${param}': '${id.slice(0, 64)}'. Expected an ID that begins with 'conv_'.`,
      param,
      'invalid_value',
    );
  }
  return id;
}

/**
 * `include` from a query string: `include=a`, `include[]=a&include[]=b` (the SDK's form), checked
 * against the same list as a request body's. Items are returned as stored either way.
 */
export function parseIncludeQuery(query: Record<string, unknown>): string[] {
  const values = [query.include, query['include[]']].flatMap((v) =>
    v === undefined ? [] : Array.isArray(v) ? v : [v],
  );
  for (const value of values) {
    if (typeof value !== 'string' || !(INCLUDABLE as readonly string[]).includes(value)) {
      throw invalidRequest(
        `Invalid value for 'include': '${shown(value)}'. Supported values are: ${INCLUDABLE.map((v) => `'${v}'`).join(', ')}.`,
        'include',
        'invalid_value',
      );
    }
  }
  return values as string[];
}

/**
 * GET /v1/conversations (a Parley extension): `user`, `metadata[key]=value` (every pair must
 * match), `created_after` / `created_before` (unix seconds; at or after, before), `limit` (1-100,
 * default 20), `order` (default `desc`, newest first), `after` (an id).
 */
export function parseListConversations(query: Record<string, unknown>): ListConversationsRequest {
  const out: ListConversationsRequest = { ...parsePaging(query) };
  const metadata: Record<string, string> = {};
  let pairs = 0;
  for (const [key, value] of Object.entries(query)) {
    if (key === 'user') {
      out.user = singleString(key, value);
      continue;
    }
    if (key === 'created_after' || key === 'created_before') {
      const raw = singleString(key, value);
      if (!/^\d{1,15}$/.test(raw)) {
        throw invalidRequest(`Invalid '${key}': expected unix seconds (a whole number), got '${raw.slice(0, 32)}'.`, key, 'invalid_value');
      }
      if (key === 'created_after') out.createdAfter = Number(raw);
      else out.createdBefore = Number(raw);
      continue;
    }
    const match = /^metadata\[(.+)\]$/.exec(key);
    if (match) {
      Object.defineProperty(metadata, match[1], {
        value: singleString(key, value),
        enumerable: true,
        writable: true,
        configurable: true,
      });
      pairs++;
      continue;
    }
    if (key !== 'limit' && key !== 'order' && key !== 'after') {
      throw invalidRequest(`Unrecognized query parameter: ${key}`, key, 'unknown_parameter');
    }
  }
  if (pairs > 0) out.metadata = metadata;
  return out;
}

/**
 * PATCH /v1/conversations/{id} (Parley extension): `{"metadata": {key: value | null}}` merges
 * (a string sets the key, null removes it), where POST replaces the whole metadata.
 */
export function parseMergeMetadata(raw: unknown): Record<string, string | null> {
  const body = requireObject(raw);
  rejectUnknown(body, new Set(['metadata']));
  const patch = body.metadata;
  if (patch === undefined || patch === null) {
    throw invalidRequest("Missing required parameter: 'metadata'.", 'metadata', 'missing_required_parameter');
  }
  if (typeof patch !== 'object' || Array.isArray(patch)) throw typeError('metadata', 'an object', patch);
  const removals: string[] = [];
  const sets: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(patch as Body)) {
    if (value === null) removals.push(key);
    else Object.defineProperty(sets, key, { value, enumerable: true, writable: true, configurable: true });
  }
  const out: Record<string, string | null> = parseMetadata(sets);
  for (const key of removals) {
    Object.defineProperty(out, key, { value: null, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

export interface ForkConversationRequest {
  /** The last item the fork keeps; null: the conversation's newest item. */
  item_id: string | null;
  /** The fork's metadata; null: the source's. */
  metadata: Record<string, string> | null;
}

/** POST /v1/conversations/{id}/fork (Parley extension): `{"item_id"?, "metadata"?}`. */
export function parseForkConversation(raw: unknown): ForkConversationRequest {
  const body = raw === undefined || raw === null || raw === '' ? {} : requireObject(raw);
  rejectUnknown(body, new Set(['item_id', 'metadata']));
  const itemId = body.item_id ?? null;
  if (itemId !== null && typeof itemId !== 'string') throw typeError('item_id', 'an item id (a string)', itemId);
  if (itemId === '') throw invalidRequest("'item_id' must not be empty.", 'item_id', 'invalid_value');
  return {
    item_id: itemId,
    metadata: body.metadata === undefined || body.metadata === null ? null : parseMetadata(body.metadata),
  };
}

/** `limit`, `order` and `after` of a list endpoint. */
export function parsePaging(query: Record<string, unknown>): {
  limit: number;
  order: 'asc' | 'desc';
  after?: string;
} {
  let limit = 20;
  if (query.limit !== undefined) {
    const raw = singleString('limit', query.limit);
    limit = Number(raw);
    if (!/^\d+$/.test(raw) || limit < 1 || limit > 100) {
      throw invalidRequest(
        `Invalid 'limit': expected an integer between 1 and 100, got '${raw}'.`,
        'limit',
        'invalid_value',
      );
    }
  }
  const order = query.order === undefined ? 'desc' : singleString('order', query.order);
  if (order !== 'asc' && order !== 'desc') {
    throw invalidRequest(
      `Invalid 'order': expected 'asc' or 'desc', got '${order}'.`,
      'order',
      'invalid_value',
    );
  }
  const after = query.after === undefined ? '' : singleString('after', query.after);
  return after === '' ? { limit, order } : { limit, order, after };
}

function parseItems(raw: unknown, requireOne: boolean): Item[] {
  if (!Array.isArray(raw)) throw typeError('items', 'an array of items', raw);
  if (raw.length > MAX_ITEMS_PER_REQUEST) {
    throw invalidRequest(
      `Invalid 'items': array too long. Expected an array with maximum length ${MAX_ITEMS_PER_REQUEST}, but got an array with length ${raw.length} instead.`,
      'items',
      'array_above_max_length',
    );
  }
  if (requireOne && raw.length === 0) {
    throw invalidRequest(
      "Invalid 'items': empty array. Expected an array with minimum length 1, but got an empty array instead.",
      'items',
      'empty_array',
    );
  }
  const items = parseInput(raw, 'items');
  const ids = new Set<string>();
  for (const [i, item] of items.entries()) {
    if (ids.has(item.id)) {
      throw invalidRequest(
        `Duplicate item id '${item.id}' at 'items[${i}].id'.`,
        `items[${i}].id`,
        'invalid_value',
      );
    }
    ids.add(item.id);
  }
  return items;
}

function requireObject(raw: unknown): Body {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw invalidRequest('The request body must be a JSON object.', null, 'invalid_type');
  }
  return raw as Body;
}

function rejectUnknown(body: Body, known: Set<string>): void {
  for (const key of Object.keys(body)) {
    if (!known.has(key)) {
      throw invalidRequest(`Unrecognized request argument supplied: ${key}`, key, 'unknown_parameter');
    }
  }
}

function singleString(param: string, value: unknown): string {
  if (typeof value !== 'string') {
    throw invalidRequest(`Invalid '${param}': expected a single value.`, param, 'invalid_value');
  }
  return value;
}

function typeError(param: string, expected: string, got: unknown) {
  const kind =
    got === null
      ? 'null'
      : Array.isArray(got)
        ? 'an array'
        : typeof got === 'object'
          ? 'an object'
          : `a ${typeof got}`;
  return invalidRequest(
    `Invalid type for '${param}': expected ${expected}, but got ${kind} instead.`,
    param,
    'invalid_type',
  );
}
