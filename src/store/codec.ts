// Small rules every backend must apply identically (expiry, paging) and the lazy decoding of
// params, kept in one place so the backends cannot drift apart.

import type { Item, ResponseError, Usage } from '../protocol/types.ts';
import type {
  ConversationUsage,
  ItemPage,
  ListOptions,
  StoredRequestParams,
  StoredResponse,
} from './types.ts';

/** Guards a chain walk against a cycle (only possible if a deleted id were reused). */
export const MAX_CHAIN_DEPTH = 1_000_000;

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** A response is invisible once `now` has reached its expiry. */
export function isExpired(expiresAt: number | null, now: number): boolean {
  return expiresAt !== null && expiresAt <= now;
}

/** The expiry to store: the response's own, else createdAt + the store's default TTL. */
export function effectiveExpiry(
  expiresAt: number | null,
  createdAt: number,
  ttlSeconds: number | null,
): number | null {
  if (expiresAt !== null) return expiresAt;
  return ttlSeconds === null ? null : createdAt + ttlSeconds;
}

/**
 * One page of an in-memory item list. `after` names an item id (exclusive) in the chosen order;
 * an `after` that is not in the list yields an empty page, as in the SQL backends.
 */
export function pageItems(items: readonly Item[], options: ListOptions): ItemPage {
  return pageOf(items, options, (list, id) => list.findIndex((item) => item.id === id), (page) => page);
}

/**
 * pageItems over any form a backend holds items in (the memory store: their JSON): `indexOf`
 * finds the `after` item, and only the page's entries are decoded.
 */
export function pageOf<T>(
  entries: readonly T[],
  options: ListOptions,
  indexOf: (entries: readonly T[], id: string) => number,
  decode: (page: T[]) => Item[],
): ItemPage {
  const ordered = options.order === 'asc' ? entries : [...entries].reverse();
  let start = 0;
  if (options.after !== undefined) {
    const index = indexOf(ordered, options.after);
    if (index === -1) return { items: [], hasMore: false };
    start = index + 1;
  }
  const limit = Math.max(0, options.limit);
  return { items: decode(ordered.slice(start, start + limit)), hasMore: ordered.length > start + limit };
}

/**
 * Gives `response` a `params` property that is decoded on first read. A chain's ancestors are
 * loaded for their items; their params (tools with JSON schemas, instructions) are per request and
 * almost never read, and decoding them made every turn pay for the whole history. The property is
 * enumerable, so spreading, JSON.stringify, structuredClone and deep equality all see the value.
 */
export function defineLazyParams(
  response: Omit<StoredResponse, 'params'>,
  decode: () => StoredRequestParams,
): StoredResponse {
  return Object.defineProperty(response, 'params', {
    enumerable: true,
    configurable: true,
    get(this: StoredResponse) {
      const value = decode();
      Object.defineProperty(this, 'params', { value, writable: true, enumerable: true, configurable: true });
      return value;
    },
    set(this: StoredResponse, value: StoredRequestParams) {
      Object.defineProperty(this, 'params', { value, writable: true, enumerable: true, configurable: true });
    },
  }) as StoredResponse;
}

/**
 * What a request leaves every parameter at when it does not set it (protocol/defaults.ts), as JSON.
 * A stored response's params hold mostly these; encodeParams leaves them out. Part of the stored
 * format, so deliberately a copy: if a default changes there, rows written with this table must
 * still decode to what they were (a new table needs a new mark).
 */
const DEFAULT_PARAMS_JSON: ReadonlyMap<string, string> = new Map(
  Object.entries({
    instructions: null,
    tools: [],
    tool_choice: 'auto',
    parallel_tool_calls: true,
    temperature: null,
    top_p: null,
    presence_penalty: null,
    frequency_penalty: null,
    top_logprobs: null,
    max_output_tokens: null,
    max_tool_calls: null,
    text: { format: { type: 'text' } },
    reasoning: null,
    truncation: 'disabled',
    metadata: {},
    user: null,
    safety_identifier: null,
    prompt_cache_key: null,
    service_tier: null,
  }).map(([key, value]) => [key, JSON.stringify(value)]),
);

/** Marks compact params: 1, or the default keys the params did not have at all. */
const COMPACT_MARK = '~';

/**
 * Request params as stored by every backend: JSON without the members equal to their defaults
 * (~400 bytes a response less for a typical request). decodeParams restores exactly what was
 * encoded (JSON semantics: undefined members go, as they always did); text without the mark
 * (written before) decodes as plain JSON.
 */
export function encodeParams(params: StoredRequestParams): string {
  const compact: Record<string, unknown> = {};
  const present = new Set<string>();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue;
    const fallback = DEFAULT_PARAMS_JSON.get(key);
    if (fallback !== undefined) {
      present.add(key);
      if (JSON.stringify(value) === fallback) continue;
    }
    Object.defineProperty(compact, key, { value, writable: true, enumerable: true, configurable: true });
  }
  const absent = present.size === DEFAULT_PARAMS_JSON.size ? null : [...DEFAULT_PARAMS_JSON.keys()].filter((key) => !present.has(key));
  return JSON.stringify({ [COMPACT_MARK]: absent ?? 1, ...compact });
}

export function decodeParams(text: string): StoredRequestParams {
  const parsed = JSON.parse(text) as Record<string, unknown>;
  if (!Object.hasOwn(parsed, COMPACT_MARK)) return parsed as unknown as StoredRequestParams;
  const mark = parsed[COMPACT_MARK];
  const absent = Array.isArray(mark) ? new Set(mark as string[]) : null;
  const params: Record<string, unknown> = {};
  for (const [key, fallback] of DEFAULT_PARAMS_JSON) {
    if (Object.hasOwn(parsed, key)) params[key] = parsed[key];
    else if (absent === null || !absent.has(key)) params[key] = JSON.parse(fallback);
  }
  for (const key of Object.keys(parsed)) {
    if (key === COMPACT_MARK || DEFAULT_PARAMS_JSON.has(key)) continue;
    Object.defineProperty(params, key, { value: parsed[key], writable: true, enumerable: true, configurable: true });
  }
  return params as unknown as StoredRequestParams;
}

/** A conversation's running totals before its first turn. */
export function emptyConversationUsage(): ConversationUsage {
  return { input_tokens: 0, output_tokens: 0, total_tokens: 0, cost_usd: 0, turns: 0 };
}

/** The totals after one more appended turn (usage and cost count as zero when unknown). */
export function addTurnUsage(
  totals: ConversationUsage,
  usage: Usage | null,
  costUsd: number | null,
): ConversationUsage {
  return {
    input_tokens: totals.input_tokens + (usage?.input_tokens ?? 0),
    output_tokens: totals.output_tokens + (usage?.output_tokens ?? 0),
    total_tokens: totals.total_tokens + (usage?.total_tokens ?? 0),
    cost_usd: totals.cost_usd + (costUsd ?? 0),
    turns: totals.turns + 1,
  };
}

/** The error failStaleTurns records on a turn whose gateway died mid-turn; identical in every backend. */
export const INTERRUPTED_ERROR: Readonly<ResponseError> = Object.freeze({
  code: 'interrupted',
  message: 'The turn was interrupted: the gateway instance running it stopped before it finished.',
});

/**
 * mergeConversationMetadata's rule: string values set, null removes. Keys are written as own
 * data properties, so a key like `__proto__` is metadata like any other (never a prototype).
 */
export function mergeMetadata(
  metadata: Record<string, string>,
  patch: Record<string, string | null>,
): Record<string, string> {
  const merged: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata)) defineOwn(merged, key, value);
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else defineOwn(merged, key, value);
  }
  return merged;
}

function defineOwn(target: Record<string, string>, key: string, value: string): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}

/**
 * Export order for responses: given in creation order, returns them so that every response whose
 * parent is among them comes after that parent (chains import intact). Stable otherwise.
 */
export function parentsFirst<T extends Pick<StoredResponse, 'id' | 'previousResponseId'>>(responses: readonly T[]): T[] {
  const byId = new Map(responses.map((response) => [response.id, response]));
  const emitted = new Set<string>();
  const ordered: T[] = [];
  for (const response of responses) {
    if (emitted.has(response.id)) continue;
    // Walk up to the first ancestor not yet emitted and out of the set, then emit downwards.
    const pending: T[] = [];
    let current: T | undefined = response;
    while (current !== undefined && !emitted.has(current.id) && pending.length <= MAX_CHAIN_DEPTH) {
      pending.push(current);
      emitted.add(current.id);
      current = current.previousResponseId === null ? undefined : byId.get(current.previousResponseId);
    }
    for (let i = pending.length - 1; i >= 0; i--) ordered.push(pending[i]);
  }
  return ordered;
}

/**
 * The columns of the SQL backends' chain (and export) rows, returned as arrays rather than
 * objects: each row is either a response (kind 0, at its depth) or one item (at its depth,
 * direction (0 input, 1 output, as both store it) and position). SQLite and PostgreSQL select
 * exactly this layout.
 */
export const CHAIN_COLUMNS = {
  depth: 0,
  kind: 1,
  id: 2,
  previousResponseId: 3,
  conversationId: 4,
  model: 5,
  status: 6,
  createdAt: 7,
  completedAt: 8,
  expiresAt: 9,
  params: 10,
  usage: 11,
  error: 12,
  incompleteDetails: 13,
  tenant: 14,
  user: 15,
  direction: 16,
  position: 17,
  data: 18,
  // Export rows only.
  seq: 19,
  parentLater: 20,
} as const;

export type ChainRow = unknown[];

/**
 * Builds the chain, root first, from rows in any order: a response row sits at its depth, an item
 * row at its position (positions are 0..n-1 per direction, as beginTurn and finishTurn write
 * them). Placing rows here instead of sorting them in SQL keeps the chain query a plain read.
 * An item row whose `id` column holds the item's id has its data decoded by decodeItemData (data
 * written by encodeItemData, or older data with the id inside); with NULL there, data is the whole
 * item. `decodeResponse` is the backend's own (it knows how its driver returns values).
 */
export function assembleChain(
  rows: readonly ChainRow[],
  decodeResponse: (row: ChainRow, input: Item[], output: Item[]) => StoredResponse,
): StoredResponse[] {
  const C = CHAIN_COLUMNS;
  const byDepth: StoredResponse[] = [];
  const inputs: Item[][] = [];
  const outputs: Item[][] = [];
  const listAt = (lists: Item[][], depth: number): Item[] => {
    let list = lists[depth];
    if (list === undefined) {
      list = [];
      lists[depth] = list;
    }
    return list;
  };
  for (const row of rows) {
    const depth = row[C.depth] as number;
    if (row[C.kind] === 0) {
      byDepth[depth] = decodeResponse(row, listAt(inputs, depth), listAt(outputs, depth));
    } else {
      const items = listAt(row[C.direction] === 0 ? inputs : outputs, depth);
      const itemId = row[C.id];
      const data = row[C.data] as string;
      items[row[C.position] as number] =
        typeof itemId === 'string' ? decodeItemData(itemId, data) : (JSON.parse(data) as Item);
    }
  }
  const chain: StoredResponse[] = [];
  for (let depth = byDepth.length - 1; depth >= 0; depth--) {
    if (byDepth[depth] !== undefined) chain.push(byDepth[depth]);
  }
  return chain;
}

/**
 * Usage as stored: `[input, output, total, cached, reasoning]` (~25 bytes instead of ~150 for the
 * object; a turn stores one). decodeUsage also reads the object form written before.
 */
export function encodeUsage(usage: Usage): string {
  // JSON.stringify returns one flat string; a template literal returns a rope of its pieces,
  // ~150 bytes more for as long as it is held (the memory store keeps it).
  return JSON.stringify([
    usage.input_tokens,
    usage.output_tokens,
    usage.total_tokens,
    usage.input_tokens_details.cached_tokens,
    usage.output_tokens_details.reasoning_tokens,
  ]);
}

/** JSON text of a nullable column or field (error, incomplete details): null stays null. */
export function jsonOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

export function parseOrNull<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

/** encodeUsage for a turn that may have none. */
export function encodeUsageOrNull(usage: Usage | null | undefined): string | null {
  return usage === null || usage === undefined ? null : encodeUsage(usage);
}

export function decodeUsageOrNull(text: string | null): Usage | null {
  return text === null ? null : decodeUsage(text);
}

export function decodeUsage(text: string): Usage {
  const parsed = JSON.parse(text) as Usage | [number, number, number, number, number];
  if (!Array.isArray(parsed)) return parsed;
  return {
    input_tokens: parsed[0],
    output_tokens: parsed[1],
    total_tokens: parsed[2],
    input_tokens_details: { cached_tokens: parsed[3] },
    output_tokens_details: { reasoning_tokens: parsed[4] },
  };
}

/**
 * An item's JSON as stored next to its id: without the `id` member, which the backend keeps in its
 * own column or key (~60 bytes an item less). decodeItemData puts it back as the second member,
 * after `type`, where every item is built with it; text that still holds its id (written before)
 * decodes as it is.
 */
export function encodeItemData(item: Item): string {
  const { id: _id, ...rest } = item as Item & { id?: string };
  return JSON.stringify(rest);
}

export function decodeItemData(id: string, text: string): Item {
  const parsed = JSON.parse(text) as Record<string, unknown>;
  if (Object.hasOwn(parsed, 'id')) return parsed as unknown as Item;
  const { type, ...rest } = parsed;
  return { type, id, ...rest } as unknown as Item;
}
