// The durable embedded store on node:sqlite. One row per response, one row per item (each item
// stored once, a turn writes only its own items); a chain loads in one recursive query.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { Item } from '../protocol/types.ts';
import {
  assembleChain,
  CHAIN_COLUMNS,
  type ChainRow,
  decodeItemData,
  decodeParams,
  decodeUsageOrNull,
  defineLazyParams,
  effectiveExpiry,
  emptyConversationUsage,
  encodeItemData,
  encodeParams,
  encodeUsageOrNull,
  INTERRUPTED_ERROR,
  jsonOrNull,
  MAX_CHAIN_DEPTH,
  mergeMetadata,
  nowSeconds,
  parseOrNull,
} from './codec.ts';
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

export interface SqliteStoreOptions {
  /** Database file; parent directories are created. `:memory:` for a private in-memory database. */
  path: string;
  /** Default retention applied to responses stored without an expiry; null keeps them. */
  ttlSeconds: number | null;
}

/**
 * Schema steps, applied in order inside one transaction at open(); `PRAGMA user_version` records
 * how many have run. Never edit a step that has shipped: append a new one.
 */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE responses (
     id TEXT PRIMARY KEY,
     previous_response_id TEXT,
     conversation_id TEXT,
     model TEXT NOT NULL,
     status TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     completed_at INTEGER,
     expires_at INTEGER,
     params TEXT NOT NULL,
     usage TEXT,
     error TEXT,
     incomplete_details TEXT
   );
   CREATE INDEX responses_expires_at ON responses (expires_at) WHERE expires_at IS NOT NULL;
   CREATE TABLE items (
     response_id TEXT NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
     direction TEXT NOT NULL CHECK (direction IN ('input', 'output')),
     position INTEGER NOT NULL,
     item_id TEXT NOT NULL,
     type TEXT NOT NULL,
     data TEXT NOT NULL,
     PRIMARY KEY (response_id, direction, position)
   );
   CREATE INDEX items_item_id ON items (item_id);`,
  // Conversations. A turn's items already live in `items`; its conversation rows only point at
  // them (response_id, direction, item_position), so a turn's bytes are stored once. Items added
  // directly (POST /v1/conversations/{id}/items) carry their own `data`. When a referenced item
  // row goes (its response was deleted or pruned), the trigger moves the bytes into the
  // conversation row first: deleting a response never takes anything out of a conversation.
  // Conversations are ordered by (created_at, rowid): rowid breaks ties within one second.
  `CREATE TABLE conversations (
     id TEXT PRIMARY KEY,
     created_at INTEGER NOT NULL,
     user TEXT,
     metadata TEXT NOT NULL,
     item_count INTEGER NOT NULL,
     expires_at INTEGER
   );
   CREATE INDEX conversations_created_at ON conversations (created_at);
   CREATE INDEX conversations_user ON conversations (user, created_at) WHERE user IS NOT NULL;
   CREATE INDEX conversations_expires_at ON conversations (expires_at) WHERE expires_at IS NOT NULL;
   CREATE TABLE conversation_items (
     conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
     position INTEGER NOT NULL,
     item_id TEXT NOT NULL,
     response_id TEXT,
     direction TEXT,
     item_position INTEGER,
     data TEXT,
     PRIMARY KEY (conversation_id, position),
     CHECK ((response_id IS NULL) = (data IS NOT NULL))
   );
   CREATE INDEX conversation_items_item_id ON conversation_items (conversation_id, item_id);
   CREATE INDEX conversation_items_source ON conversation_items (response_id, direction, item_position)
     WHERE response_id IS NOT NULL;
   CREATE TRIGGER items_keep_conversation_copies BEFORE DELETE ON items
   BEGIN
     UPDATE conversation_items
        SET data = OLD.data, response_id = NULL, direction = NULL, item_position = NULL
      WHERE response_id = OLD.response_id AND direction = OLD.direction AND item_position = OLD.position;
   END;
   CREATE TABLE conversation_leases (
     conversation_id TEXT PRIMARY KEY,
     holder TEXT NOT NULL,
     expires_at_ms INTEGER NOT NULL
   ) WITHOUT ROWID;`,
  // Contract v2: tenants, a response's `user` as its own column (taken from the stored request
  // for existing rows), conversation running totals (rebuilt from the turns still stored) and
  // updated_at. Existing rows belong to the 'default' tenant. Listing is always within one
  // tenant, so the user index gains the tenant in front; unfinished turns get a small partial
  // index for failStaleTurns, and a conversation's responses one for export --conversation.
  `ALTER TABLE responses ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
   ALTER TABLE responses ADD COLUMN user TEXT;
   UPDATE responses SET user = json_extract(params, '$.user') WHERE json_type(params, '$.user') = 'text';
   CREATE INDEX responses_tenant_user ON responses (tenant, user) WHERE user IS NOT NULL;
   CREATE INDEX responses_unfinished ON responses (created_at) WHERE status IN ('queued', 'in_progress');
   CREATE INDEX responses_conversation ON responses (conversation_id) WHERE conversation_id IS NOT NULL;
   ALTER TABLE conversations ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
   ALTER TABLE conversations ADD COLUMN input_tokens INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE conversations ADD COLUMN output_tokens INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE conversations ADD COLUMN total_tokens INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE conversations ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0;
   ALTER TABLE conversations ADD COLUMN turns INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE conversations ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
   UPDATE conversations SET updated_at = created_at;
   UPDATE conversations
      SET (input_tokens, output_tokens, total_tokens, turns) = (
        SELECT coalesce(sum(json_extract(r.usage, '$.input_tokens')), 0),
               coalesce(sum(json_extract(r.usage, '$.output_tokens')), 0),
               coalesce(sum(json_extract(r.usage, '$.total_tokens')), 0),
               count(*)
          FROM responses r
         WHERE r.conversation_id = conversations.id AND r.status IN ('completed', 'incomplete'));
   DROP INDEX conversations_user;
   CREATE INDEX conversations_tenant_user ON conversations (tenant, user, created_at);
   CREATE INDEX conversations_tenant ON conversations (tenant, created_at);`,
  // Compact layout. A response gets an explicit integer key (`ref`: its rowid until now, kept, so
  // export order is unchanged; explicit so that VACUUM cannot renumber it), and items and
  // conversation rows refer to it instead of repeating the 53-character response id; direction
  // is 0 (input) or 1 (output), stored in no bytes at all. Items lose the `type` column (read by
  // nothing) and the item_id index (only import used it: it now reads a conversation's turn items
  // once). Items stay a rowid table: appended in rowid order its pages fill completely, while a
  // WITHOUT ROWID table clustered on (response_ref, direction, position) measured 110 bytes a
  // turn more in half-empty pages than the small integer primary-key index costs here.
  // Rows are copied as they are: usage and item data in the older forms still decode (codec.ts).
  // Usage may now be a JSON array ([input, output, total, cached, reasoning]) or the older object:
  // SQL that reads it must handle both.
  `CREATE TABLE responses_v4 (
     ref INTEGER PRIMARY KEY,
     id TEXT NOT NULL UNIQUE,
     previous_response_id TEXT,
     conversation_id TEXT,
     model TEXT NOT NULL,
     status TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     completed_at INTEGER,
     expires_at INTEGER,
     params TEXT NOT NULL,
     usage TEXT,
     error TEXT,
     incomplete_details TEXT,
     tenant TEXT NOT NULL,
     user TEXT
   );
   INSERT INTO responses_v4 (ref, id, previous_response_id, conversation_id, model, status, created_at,
       completed_at, expires_at, params, usage, error, incomplete_details, tenant, user)
     SELECT rowid, id, previous_response_id, conversation_id, model, status, created_at,
            completed_at, expires_at, params, usage, error, incomplete_details, tenant, user
       FROM responses ORDER BY rowid;
   CREATE TABLE items_v4 (
     response_ref INTEGER NOT NULL REFERENCES responses_v4 (ref) ON DELETE CASCADE,
     direction INTEGER NOT NULL CHECK (direction IN (0, 1)),
     position INTEGER NOT NULL,
     item_id TEXT NOT NULL,
     data TEXT NOT NULL,
     PRIMARY KEY (response_ref, direction, position)
   );
   INSERT INTO items_v4 (response_ref, direction, position, item_id, data)
     SELECT r.ref, i.direction = 'output', i.position, i.item_id, i.data
       FROM responses_v4 r JOIN items i ON i.response_id = r.id
      ORDER BY r.ref, i.direction, i.position;
   CREATE TABLE conversation_items_v4 (
     conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
     position INTEGER NOT NULL,
     item_id TEXT NOT NULL,
     response_ref INTEGER,
     direction INTEGER,
     item_position INTEGER,
     data TEXT,
     PRIMARY KEY (conversation_id, position),
     CHECK ((response_ref IS NULL) = (data IS NOT NULL))
   );
   INSERT INTO conversation_items_v4 (conversation_id, position, item_id, response_ref, direction, item_position, data)
     SELECT ci.conversation_id, ci.position, ci.item_id, r.ref, ci.direction = 'output', ci.item_position, ci.data
       FROM conversation_items ci LEFT JOIN responses_v4 r ON r.id = ci.response_id
      ORDER BY ci.rowid;
   DROP TABLE conversation_items;
   DROP TABLE items;
   DROP TABLE responses;
   ALTER TABLE responses_v4 RENAME TO responses;
   ALTER TABLE items_v4 RENAME TO items;
   ALTER TABLE conversation_items_v4 RENAME TO conversation_items;
   CREATE INDEX responses_expires_at ON responses (expires_at) WHERE expires_at IS NOT NULL;
   CREATE INDEX responses_tenant_user ON responses (tenant, user) WHERE user IS NOT NULL;
   CREATE INDEX responses_unfinished ON responses (created_at) WHERE status IN ('queued', 'in_progress');
   CREATE INDEX responses_conversation ON responses (conversation_id) WHERE conversation_id IS NOT NULL;
   CREATE INDEX conversation_items_item_id ON conversation_items (conversation_id, item_id);
   CREATE INDEX conversation_items_source ON conversation_items (response_ref, direction, item_position)
     WHERE response_ref IS NOT NULL;
   CREATE TRIGGER items_keep_conversation_copies BEFORE DELETE ON items
   BEGIN
     UPDATE conversation_items
        SET data = OLD.data, response_ref = NULL, direction = NULL, item_position = NULL
      WHERE response_ref = OLD.response_ref AND direction = OLD.direction AND item_position = OLD.position;
   END;`,
  // One integer key per item: response_ref * 2^25 + direction * 2^24 + position, as the items
  // table's rowid. A response's items are one rowid range, so items need no index at all (each
  // turn wrote that index's pages to the WAL twice: 10.1 -> 8.0 pages a turn, 29 bytes a turn
  // less stored), and a conversation row points at an item with one integer. Without a foreign
  // key, a trigger deletes a response's items (still through the trigger that first copies them
  // into conversation rows). Positions stop at 2^24 - 1 per direction (insertItems says so).
  `CREATE TABLE items_v5 (
     key INTEGER PRIMARY KEY,
     item_id TEXT NOT NULL,
     data TEXT NOT NULL
   );
   INSERT INTO items_v5 (key, item_id, data)
     SELECT response_ref * 33554432 + direction * 16777216 + position, item_id, data
       FROM items ORDER BY response_ref, direction, position;
   CREATE TABLE conversation_items_v5 (
     conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
     position INTEGER NOT NULL,
     item_id TEXT NOT NULL,
     item_key INTEGER,
     data TEXT,
     PRIMARY KEY (conversation_id, position),
     CHECK ((item_key IS NULL) = (data IS NOT NULL))
   );
   INSERT INTO conversation_items_v5 (conversation_id, position, item_id, item_key, data)
     SELECT conversation_id, position, item_id,
            response_ref * 33554432 + direction * 16777216 + item_position, data
       FROM conversation_items ORDER BY rowid;
   DROP TABLE conversation_items;
   DROP TABLE items;
   ALTER TABLE items_v5 RENAME TO items;
   ALTER TABLE conversation_items_v5 RENAME TO conversation_items;
   CREATE INDEX conversation_items_item_id ON conversation_items (conversation_id, item_id);
   CREATE INDEX conversation_items_source ON conversation_items (item_key) WHERE item_key IS NOT NULL;
   CREATE TRIGGER items_keep_conversation_copies BEFORE DELETE ON items
   BEGIN
     UPDATE conversation_items SET data = OLD.data, item_key = NULL WHERE item_key = OLD.key;
   END;
   CREATE TRIGGER responses_delete_items AFTER DELETE ON responses
   BEGIN
     DELETE FROM items WHERE key BETWEEN OLD.ref * 33554432 AND OLD.ref * 33554432 + 33554431;
   END;`,
  // Lean conversation rows. A conversation gets an explicit integer key (`ref`: its rowid until now,
  // kept, so listing order is unchanged), and conversation_items becomes a WITHOUT ROWID table keyed
  // (conversation_ref, position): a turn item's row is that key and the item's key, 20 bytes, where
  // it was 300 (the conversation's text id twice, the item id twice, three indexes). A turn item's
  // id is read from the item it points at; only copies (items added directly, forked, imported or
  // kept from a deleted response) hold their own id and bytes.
  // The index that found the rows pointing at an item goes too: a row may now point only at an
  // item of a response of the same conversation, within the run of positions that response's
  // items were appended at, which the response records (conversation_position). Deleting a
  // response copies exactly that run's pointed-at items into their rows (responses_delete_items).
  // Existing rows that break the rule (forks, which used to point; imports out of turn order)
  // become copies here.
  // Looking an item up by id (get, delete, a page's `after`, a fork's end) now reads the
  // conversation's rows in order until it finds it, without an index: 0.25 ms per 1,000 items
  // before it (bench/README.md).
  `DROP TRIGGER items_keep_conversation_copies;
   DROP TRIGGER responses_delete_items;
   ALTER TABLE responses ADD COLUMN conversation_position INTEGER;
   UPDATE responses
      SET conversation_position = (
        SELECT min(ci.position) FROM conversation_items ci
         WHERE ci.item_key BETWEEN responses.ref * 33554432 AND responses.ref * 33554432 + 33554431
           AND ci.conversation_id = responses.conversation_id)
    WHERE conversation_id IS NOT NULL;
   CREATE TABLE conversations_v6 (
     ref INTEGER PRIMARY KEY,
     id TEXT NOT NULL UNIQUE,
     created_at INTEGER NOT NULL,
     user TEXT,
     metadata TEXT NOT NULL,
     item_count INTEGER NOT NULL,
     expires_at INTEGER,
     tenant TEXT NOT NULL,
     input_tokens INTEGER NOT NULL,
     output_tokens INTEGER NOT NULL,
     total_tokens INTEGER NOT NULL,
     cost_usd REAL NOT NULL,
     turns INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   INSERT INTO conversations_v6 (ref, id, created_at, user, metadata, item_count, expires_at, tenant,
       input_tokens, output_tokens, total_tokens, cost_usd, turns, updated_at)
     SELECT rowid, id, created_at, user, metadata, item_count, expires_at, tenant,
            input_tokens, output_tokens, total_tokens, cost_usd, turns, updated_at
       FROM conversations ORDER BY rowid;
   CREATE TABLE conversation_items_v6 (
     conversation_ref INTEGER NOT NULL REFERENCES conversations_v6 (ref) ON DELETE CASCADE,
     position INTEGER NOT NULL,
     item_key INTEGER,
     item_id TEXT,
     data TEXT,
     PRIMARY KEY (conversation_ref, position),
     CHECK ((item_key IS NULL) = (data IS NOT NULL) AND (item_id IS NULL) = (data IS NULL))
   ) WITHOUT ROWID;
   INSERT INTO conversation_items_v6 (conversation_ref, position, item_key, item_id, data)
     SELECT c.ref, ci.position, CASE WHEN kept THEN ci.item_key END,
            CASE WHEN NOT kept THEN ci.item_id END, CASE WHEN NOT kept THEN coalesce(ci.data, i.data) END
       FROM (SELECT ci.*, coalesce(ci.item_key IS NOT NULL AND r.conversation_id = ci.conversation_id
                      AND ci.position >= r.conversation_position
                      AND ci.position < r.conversation_position + (
                        SELECT count(*) FROM items n
                         WHERE n.key BETWEEN r.ref * 33554432 AND r.ref * 33554432 + 33554431), 0) AS kept
               FROM conversation_items ci LEFT JOIN responses r ON r.ref = ci.item_key / 33554432) ci
       JOIN conversations_v6 c ON c.id = ci.conversation_id
       LEFT JOIN items i ON i.key = ci.item_key;
   DROP TABLE conversation_items;
   DROP TABLE conversations;
   ALTER TABLE conversations_v6 RENAME TO conversations;
   ALTER TABLE conversation_items_v6 RENAME TO conversation_items;
   CREATE INDEX conversations_created_at ON conversations (created_at);
   CREATE INDEX conversations_expires_at ON conversations (expires_at) WHERE expires_at IS NOT NULL;
   CREATE INDEX conversations_tenant_user ON conversations (tenant, user, created_at);
   CREATE INDEX conversations_tenant ON conversations (tenant, created_at);
   CREATE TRIGGER responses_delete_items AFTER DELETE ON responses
   BEGIN
     UPDATE conversation_items
        SET (item_id, data, item_key) = (SELECT i.item_id, i.data, NULL FROM items i WHERE i.key = conversation_items.item_key)
      WHERE OLD.conversation_position IS NOT NULL
        AND conversation_ref = (SELECT ref FROM conversations WHERE id = OLD.conversation_id)
        AND position >= OLD.conversation_position
        AND position < OLD.conversation_position + (
          SELECT count(*) FROM items WHERE key BETWEEN OLD.ref * 33554432 AND OLD.ref * 33554432 + 33554431)
        AND item_key BETWEEN OLD.ref * 33554432 AND OLD.ref * 33554432 + 33554431;
     DELETE FROM items WHERE key BETWEEN OLD.ref * 33554432 AND OLD.ref * 33554432 + 33554431;
   END;`,
  // A conversation's responses are found (by import, to point at their items) through the last 12
  // characters of the conversation id, not all of it: the index entry of every response in a
  // conversation shrinks from ~60 to ~20 bytes (57 of a conversation turn's ~100 bytes besides its
  // items were this index). The query repeats the expression, then compares the whole id.
  `DROP INDEX responses_conversation;
   CREATE INDEX responses_conversation_tail ON responses (substr(conversation_id, -12))
     WHERE conversation_id IS NOT NULL;`,
];

// An item's key (see migration step 5): its response's ref, its direction (0 input, 1 output) and
// its position, in one integer. The arithmetic stays in SQL (keys pass 2^53 past 2^28 responses).
const INPUT = 0;
const OUTPUT = 1;
type Direction = typeof INPUT | typeof OUTPUT;
const RESPONSE_SPAN = 2 ** 25;
const DIRECTION_SPAN = 2 ** 24;
/** Positions per direction are 0..MAX_POSITION. */
const MAX_POSITION = DIRECTION_SPAN - 1;
/** SQL: the key of item `position` of `direction` of response `ref` (SQL expressions). */
const itemKey = (ref: string, direction: number | string, position: number | string) =>
  `(${ref} * ${RESPONSE_SPAN} + ${direction} * ${DIRECTION_SPAN} + ${position})`;
/** SQL: `column` is the key of one of response `ref`'s items (a rowid range). */
const ofResponse = (column: string, ref: string) =>
  `${column} BETWEEN ${itemKey(ref, 0, 0)} AND ${itemKey(ref, 1, MAX_POSITION)}`;

// Every column of a conversation row, in decodeConversation's shape.
const CONVERSATION_COLUMNS = `id, tenant, created_at, user, metadata, item_count, expires_at,
  input_tokens, output_tokens, total_tokens, cost_usd, turns, updated_at`;

// A conversation item's id and bytes: its own, or those of the turn item it points at.
const CONVERSATION_ITEM_DATA = `
SELECT coalesce(ci.item_id, i.item_id) AS item_id, coalesce(ci.data, i.data) AS data
  FROM conversation_items ci
  LEFT JOIN items i
    ON ci.data IS NULL AND i.key = ci.item_key`;

// The position of the first item of conversation ?1 (a ref) whose id is ?2. Rows are read in
// order until one matches (see migration step 6: there is no index by item id).
const ITEM_POSITION = `
SELECT ci.position FROM conversation_items ci
 WHERE ci.conversation_ref = ?1
   AND coalesce(ci.item_id, (SELECT i.item_id FROM items i WHERE i.key = ci.item_key)) = ?2
 ORDER BY ci.position LIMIT 1`;

// An item row's direction (0 input, 1 output) and position, taken from its key (codec.ts assembleChain's layout).
const ITEM_PLACE = `(i.key & ${DIRECTION_SPAN}) != 0, i.key & ${MAX_POSITION}`;

// The chain walk carries only ids and depth; response and item rows are then emitted once each
// (a UNION ALL rather than a join, so a response's params are not repeated on every item row).
// No ORDER BY: every row carries its depth, direction and position, and decodeChain places it by
// those in O(rows). Sorting in SQL dragged every params and item payload through a temp b-tree,
// which doubled the cost of a 1,000-turn chain with a few tools per request.
// CROSS JOIN pins the join order (chain outer, index lookups inner); left to itself the planner
// may scan all of items instead.
// ?1 = id, ?2 = now (expired rows are invisible), ?3 = max depth (0 for a single response).
const CHAIN_SQL = `
WITH RECURSIVE chain (ref, parent, depth) AS (
  SELECT ref, previous_response_id, 0 FROM responses
   WHERE id = ?1 AND (expires_at IS NULL OR expires_at > ?2)
  UNION ALL
  SELECT r.ref, r.previous_response_id, chain.depth + 1
    FROM chain JOIN responses r ON r.id = chain.parent
   WHERE chain.depth < ?3 AND (r.expires_at IS NULL OR r.expires_at > ?2)
)
SELECT chain.depth AS depth, 0 AS kind, r.id AS id, r.previous_response_id AS previous_response_id,
       r.conversation_id AS conversation_id, r.model AS model, r.status AS status,
       r.created_at AS created_at, r.completed_at AS completed_at, r.expires_at AS expires_at,
       r.params AS params, r.usage AS usage, r.error AS error, r.incomplete_details AS incomplete_details,
       r.tenant AS tenant, r.user AS user, NULL AS direction, NULL AS position, NULL AS data
  FROM chain CROSS JOIN responses r ON r.ref = chain.ref
UNION ALL
SELECT chain.depth, 1, i.item_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       ${ITEM_PLACE}, i.data
  FROM chain CROSS JOIN items i ON ${ofResponse('i.key', 'chain.ref')}`;

// exportRecords reads responses in batches of rows shaped like the chain's (so decodeChain builds
// them), in insertion order (ref): a parent is normally written before its children. `depth`
// numbers the batch's responses; `seq` is the ref to continue after; `parent_later` flags a
// response whose parent is exported too but was written after it (re-imported), which the
// exporter holds back until the parent is out.
// ?1 = after ref, ?2 = now, ?3 = tenant or NULL, ?4 = conversation id or NULL, ?5 = since or NULL,
// ?6 = batch size.
const EXPORT_MATCH = (r: string) => `(${r}.expires_at IS NULL OR ${r}.expires_at > ?2)
   AND (?3 IS NULL OR ${r}.tenant = ?3) AND (?4 IS NULL OR ${r}.conversation_id = ?4)
   AND (?5 IS NULL OR ${r}.created_at >= ?5)`;
const EXPORT_RESPONSES_SQL = `
WITH batch (ref, depth) AS (
  SELECT ref, row_number() OVER (ORDER BY ref) FROM (
    SELECT ref FROM responses r WHERE ref > ?1 AND ${EXPORT_MATCH('r')}
     ORDER BY ref LIMIT ?6)
)
SELECT batch.depth AS depth, 0 AS kind, r.id AS id, r.previous_response_id AS previous_response_id,
       r.conversation_id AS conversation_id, r.model AS model, r.status AS status,
       r.created_at AS created_at, r.completed_at AS completed_at, r.expires_at AS expires_at,
       r.params AS params, r.usage AS usage, r.error AS error, r.incomplete_details AS incomplete_details,
       r.tenant AS tenant, r.user AS user, NULL AS direction, NULL AS position, NULL AS data,
       r.ref AS seq,
       EXISTS (SELECT 1 FROM responses p WHERE p.id = r.previous_response_id AND p.ref > r.ref
                 AND ${EXPORT_MATCH('p')}) AS parent_later
  FROM batch CROSS JOIN responses r ON r.ref = batch.ref
UNION ALL
SELECT batch.depth, 1, i.item_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       ${ITEM_PLACE}, i.data, NULL, NULL
  FROM batch CROSS JOIN items i ON ${ofResponse('i.key', 'batch.ref')}`;
const EXPORT_BATCH = 200;
/** Records written per import transaction. */
const IMPORT_BATCH = 100;

// The chain statement returns arrays (no per-row object with 17 keys): these are its columns.
const COL = CHAIN_COLUMNS;

interface Statements {
  dataVersion: StatementSync;
  begin: StatementSync;
  commit: StatementSync;
  rollback: StatementSync;
  savepoint: StatementSync;
  releaseSavepoint: StatementSync;
  rollbackToSavepoint: StatementSync;
  ping: StatementSync;
  insertResponse: StatementSync;
  insertItem: StatementSync;
  finishResponse: StatementSync;
  responseStatus: StatementSync;
  progressResponse: StatementSync;
  deleteOutput: StatementSync;
  chain: StatementSync;
  deleteResponse: StatementSync;
  isLive: StatementSync;
  inputPosition: StatementSync;
  inputPageAsc: StatementSync;
  inputPageDesc: StatementSync;
  prune: StatementSync;
  readBegin: StatementSync;
  appendTurnItems: StatementSync;
  insertConversation: StatementSync;
  conversation: StatementSync;
  liveConversation: StatementSync;
  addItemCount: StatementSync;
  updateConversationMetadata: StatementSync;
  deleteConversation: StatementSync;
  insertConversationItem: StatementSync;
  conversationItemsAll: StatementSync;
  conversationItemPosition: StatementSync;
  conversationItemsAsc: StatementSync;
  conversationItemsDesc: StatementSync;
  conversationItem: StatementSync;
  deleteConversationItem: StatementSync;
  conversationAnchor: StatementSync;
  pruneConversations: StatementSync;
  pruneLeases: StatementSync;
  countExpired: StatementSync;
  acquireLease: StatementSync;
  renewLease: StatementSync;
  releaseLease: StatementSync;
  appendTurnTotals: StatementSync;
  conversationMetadata: StatementSync;
  setConversationMetadata: StatementSync;
  forkItems: StatementSync;
  setItemCount: StatementSync;
  deleteUserConversations: StatementSync;
  deleteUserResponses: StatementSync;
  failStaleTurns: StatementSync;
  exportResponses: StatementSync;
  exportConversations: StatementSync;
  importItemSources: StatementSync;
  insertConversationItemRef: StatementSync;
  setConversationPosition: StatementSync;
}

/** A live conversation's key and how many items were ever appended to it (the next position). */
interface LiveConversation {
  ref: number;
  item_count: number;
}

interface ConversationRow {
  id: string;
  tenant: string;
  created_at: number;
  user: string | null;
  metadata: string;
  item_count: number;
  expires_at: number | null;
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  cost_usd: number;
  turns: number;
  updated_at: number;
}

export class SqliteStore implements ConversationStore {
  readonly description: string;
  readonly #path: string;
  readonly #ttlSeconds: number | null;
  #db: DatabaseSync | null = null;
  #statements: Statements | null = null;
  /** listConversations statements, one per filter shape (user?, metadata pairs, after?, order). */
  #listStatements = new Map<string, StatementSync>();
  /**
   * Deletions and status changes of responses through this connection (PRAGMA data_version only
   * moves on other connections' commits); with it, changeToken covers every writer.
   */
  #ownChanges = 0;
  /** Turn writes waiting for their group commit (see #groupCommit). */
  #queued: QueuedWrite[] = [];

  constructor(options: SqliteStoreOptions) {
    this.#path = options.path;
    this.#ttlSeconds = options.ttlSeconds;
    this.description = `sqlite (${options.path})`;
  }

  async open(): Promise<void> {
    if (this.#db !== null) return;
    if (this.#path !== ':memory:' && !this.#path.startsWith('file:')) {
      mkdirSync(dirname(this.#path), { recursive: true });
    }
    const db = new DatabaseSync(this.#path, { enableForeignKeyConstraints: true, timeout: 5000 });
    try {
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = NORMAL');
      db.exec('PRAGMA busy_timeout = 5000');
      db.exec('PRAGMA foreign_keys = ON');
      migrate(db);
      this.#statements = prepareStatements(db);
    } catch (error) {
      db.close();
      throw error;
    }
    this.#db = db;
  }

  /** The TTL applied to responses stored without an expiry (see ConversationStore.changeToken). */
  get defaultTtlSeconds(): number | null {
    return this.#ttlSeconds;
  }

  /**
   * Moves whenever a stored response may have been deleted or changed: by this connection (its
   * own counter) or by any other connection or process on the file (`PRAGMA data_version`, which
   * changes on their commits — inserts included, so another writer costs a cache its contents).
   */
  async changeToken(): Promise<string> {
    const row = this.#stmts().dataVersion.get() as { data_version: number | bigint };
    return `${row.data_version}:${this.#ownChanges}`;
  }

  async close(): Promise<void> {
    this.#commitQueued(); // writes already accepted are committed, not dropped
    this.#ownChanges++;
    const db = this.#db;
    this.#db = null;
    this.#statements = null;
    this.#listStatements.clear();
    db?.close();
  }

  async ping(): Promise<void> {
    this.#stmts().ping.get();
  }

  async beginTurn(response: StoredResponse): Promise<void> {
    const s = this.#stmts();
    // Everything is encoded now: what the caller passed is what is written, whenever it commits.
    const values = [
      response.id,
      response.previousResponseId,
      response.conversationId,
      response.model,
      response.status,
      response.createdAt,
      response.completedAt,
      effectiveExpiry(response.expiresAt, response.createdAt, this.#ttlSeconds),
      encodeParams(response.params),
      encodeUsageOrNull(response.usage),
      jsonOrNull(response.error),
      jsonOrNull(response.incompleteDetails),
      response.tenant,
      response.user,
    ] as const;
    const input = encodeItems(response.input);
    const output = encodeItems(response.output);
    return this.#groupCommit(() => {
      const inserted = s.insertResponse.run(...values);
      if (Number(inserted.changes) === 0)
        throw new StoreConflictError(`Response ${response.id} already exists.`);
      const ref = inserted.lastInsertRowid;
      insertEncodedItems(s.insertItem, ref, INPUT, input);
      insertEncodedItems(s.insertItem, ref, OUTPUT, output);
    });
  }

  async finishTurn(id: string, result: TurnResult): Promise<void> {
    const s = this.#stmts();
    const usage = encodeUsageOrNull(result.usage);
    const error = jsonOrNull(result.error);
    const incompleteDetails = jsonOrNull(result.incompleteDetails);
    const output = encodeItems(result.output);
    return this.#groupCommit(() => {
      const updated = s.finishResponse.get(result.status, result.completedAt, usage, error, incompleteDetails, id) as
        | { ref: number; conversation_id: string | null }
        | undefined;
      if (updated === undefined) {
        const row = s.responseStatus.get(id) as { status: string } | undefined;
        throw new StoreConflictError(
          row === undefined
            ? `Cannot finish response ${id}: it does not exist.`
            : `Cannot finish response ${id}: it is already ${row.status}.`,
        );
      }
      // The output replaces whatever beginTurn may have written, like in every other backend.
      s.deleteOutput.run(updated.ref);
      insertEncodedItems(s.insertItem, updated.ref, OUTPUT, output);
      if (
        updated.conversation_id !== null &&
        (result.status === 'completed' || result.status === 'incomplete')
      ) {
        this.#appendTurn(updated.conversation_id, updated.ref, result);
      }
    });
  }

  async saveProgress(id: string, progress: TurnProgress): Promise<boolean> {
    const s = this.#stmts();
    const output = encodeItems(progress.output);
    let saved = false;
    await this.#groupCommit(() => {
      const row = s.progressResponse.get(progress.status, id) as { ref: number } | undefined;
      if (row === undefined) return;
      s.deleteOutput.run(row.ref);
      insertEncodedItems(s.insertItem, row.ref, OUTPUT, output);
      saved = true;
    });
    return saved;
  }

  async getResponse(id: string): Promise<StoredResponse | null> {
    const rows = this.#stmts().chain.all(id, nowSeconds(), 0) as unknown as ChainRow[];
    const chain = decodeChain(rows);
    return chain.length === 0 ? null : chain[0];
  }

  async loadChain(id: string): Promise<StoredResponse[] | null> {
    const rows = this.#stmts().chain.all(id, nowSeconds(), MAX_CHAIN_DEPTH) as unknown as ChainRow[];
    const chain = decodeChain(rows);
    if (chain.length === 0) return null;
    // The walk stops early when an ancestor is missing or expired: then the root still has a parent.
    const root = chain[0];
    if (root.previousResponseId !== null) throw new ChainBrokenError(id, root.previousResponseId);
    return chain;
  }

  async deleteResponse(id: string): Promise<boolean> {
    this.#ownChanges++;
    // Items go with it through ON DELETE CASCADE.
    return Number(this.#stmts().deleteResponse.run(id).changes) > 0;
  }

  async listInputItems(id: string, options: ListOptions): Promise<ItemPage | null> {
    const s = this.#stmts();
    const live = s.isLive.get(id, nowSeconds()) as { ref: number } | undefined;
    if (live === undefined) return null;
    const limit = Math.max(0, options.limit);
    let from: number;
    if (options.after === undefined) {
      // Just outside the response's input positions (they are part of the item key).
      from = options.order === 'asc' ? -1 : MAX_POSITION + 1;
    } else {
      const row = s.inputPosition.get(live.ref, options.after) as { position: number } | undefined;
      if (row === undefined) return { items: [], hasMore: false };
      from = row.position;
    }
    const page = options.order === 'asc' ? s.inputPageAsc : s.inputPageDesc;
    // One extra row tells whether another page exists.
    const rows = page.all(live.ref, from, limit + 1) as unknown as { item_id: string; data: string }[];
    const hasMore = rows.length > limit;
    if (hasMore) rows.length = limit;
    return { items: rows.map((row) => decodeItemData(row.item_id, row.data)), hasMore };
  }

  async pruneExpired(now: number): Promise<number> {
    const s = this.#stmts();
    this.#ownChanges++;
    let removed = 0;
    this.#transaction(() => {
      removed = Number(s.prune.run(now).changes) + Number(s.pruneConversations.run(now).changes);
      s.pruneLeases.run(now * 1000);
    });
    return removed;
  }

  async countExpired(now: number): Promise<number> {
    return Number((this.#stmts().countExpired.get(now) as { n: number | bigint }).n);
  }

  // ---------- conversations ----------

  async createConversation(conversation: StoredConversation, items: Item[]): Promise<void> {
    const s = this.#stmts();
    const expiresAt = effectiveExpiry(conversation.expiresAt, conversation.createdAt, this.#ttlSeconds);
    this.#transaction(() => {
      const inserted = s.insertConversation.run(...conversationValues(conversation, items.length, expiresAt));
      if (Number(inserted.changes) === 0) {
        throw new StoreConflictError(`Conversation ${conversation.id} already exists.`);
      }
      insertConversationItems(s.insertConversationItem, inserted.lastInsertRowid, 0, items);
    });
  }

  async getConversation(id: string): Promise<StoredConversation | null> {
    const row = this.#stmts().conversation.get(id, nowSeconds()) as ConversationRow | undefined;
    return row === undefined ? null : decodeConversation(row);
  }

  async updateConversation(
    id: string,
    patch: { metadata: Record<string, string> },
  ): Promise<StoredConversation | null> {
    const row = this.#stmts().updateConversationMetadata.get(
      JSON.stringify(patch.metadata),
      id,
      nowSeconds(),
    ) as ConversationRow | undefined;
    return row === undefined ? null : decodeConversation(row);
  }

  async deleteConversation(id: string): Promise<boolean> {
    this.#ownChanges++; // items leave a conversation (changeToken)
    // Its items go with it through ON DELETE CASCADE; the turns' own items stay with the responses.
    return Number(this.#stmts().deleteConversation.run(id, nowSeconds()).changes) > 0;
  }

  async appendConversationItems(id: string, items: Item[]): Promise<StoredConversation | null> {
    const s = this.#stmts();
    let row: ConversationRow | undefined;
    this.#transaction(() => {
      const live = s.liveConversation.get(id, nowSeconds()) as LiveConversation | undefined;
      if (live === undefined) return;
      insertConversationItems(s.insertConversationItem, live.ref, live.item_count, items);
      row = s.addItemCount.get(items.length, nowSeconds(), id) as ConversationRow | undefined;
    });
    return row === undefined ? null : decodeConversation(row);
  }

  async loadConversationItems(id: string): Promise<Item[] | null> {
    const s = this.#stmts();
    return this.#read(() => {
      const live = s.liveConversation.get(id, nowSeconds()) as LiveConversation | undefined;
      if (live === undefined) return null;
      const rows = s.conversationItemsAll.all(live.ref) as unknown as [string, string | null][];
      return rows.map((row) => conversationItem(row, id));
    });
  }

  async loadConversationItemsFrom(id: string, position: number): Promise<{ items: Item[]; itemCount: number } | null> {
    const s = this.#stmts();
    return this.#read(() => {
      const live = s.liveConversation.get(id, nowSeconds()) as LiveConversation | undefined;
      if (live === undefined) return null;
      // LIMIT -1: no limit.
      const rows = s.conversationItemsAsc.all(live.ref, position - 1, -1) as unknown as [string, string | null][];
      return { items: rows.map((row) => conversationItem(row, id)), itemCount: live.item_count };
    });
  }

  async listConversationItems(id: string, options: ListOptions): Promise<ItemPage | null> {
    const s = this.#stmts();
    return this.#read(() => {
      const live = s.liveConversation.get(id, nowSeconds()) as LiveConversation | undefined;
      if (live === undefined) return null;
      const limit = Math.max(0, options.limit);
      let from: number;
      if (options.after === undefined) {
        from = options.order === 'asc' ? -1 : Number.MAX_SAFE_INTEGER;
      } else {
        const row = s.conversationItemPosition.get(live.ref, options.after) as { position: number } | undefined;
        if (row === undefined) return { items: [], hasMore: false };
        from = row.position;
      }
      const page = options.order === 'asc' ? s.conversationItemsAsc : s.conversationItemsDesc;
      const rows = page.all(live.ref, from, limit + 1) as unknown as [string, string | null][];
      const hasMore = rows.length > limit;
      if (hasMore) rows.length = limit;
      return { items: rows.map((row) => conversationItem(row, id)), hasMore };
    });
  }

  async getConversationItem(conversationId: string, itemId: string): Promise<Item | null> {
    const s = this.#stmts();
    return this.#read(() => {
      const found = this.#itemPosition(conversationId, itemId);
      if (found === undefined) return null;
      const row = s.conversationItem.get(found.ref, found.position) as { item_id: string; data: string | null };
      return conversationItem([row.item_id, row.data], conversationId);
    });
  }

  async deleteConversationItem(conversationId: string, itemId: string): Promise<boolean> {
    const s = this.#stmts();
    this.#ownChanges++; // an item leaves a conversation (changeToken)
    let deleted = false;
    this.#transaction(() => {
      const found = this.#itemPosition(conversationId, itemId);
      if (found === undefined) return;
      deleted = Number(s.deleteConversationItem.run(found.ref, found.position).changes) > 0;
    });
    return deleted;
  }

  /** The live conversation's ref and the position of its first item with this id, if both exist. */
  #itemPosition(conversationId: string, itemId: string): { ref: number; position: number } | undefined {
    const s = this.#stmts();
    const live = s.liveConversation.get(conversationId, nowSeconds()) as LiveConversation | undefined;
    if (live === undefined) return undefined;
    const row = s.conversationItemPosition.get(live.ref, itemId) as { position: number } | undefined;
    return row === undefined ? undefined : { ref: live.ref, position: row.position };
  }

  async listConversations(
    query: ConversationQuery,
  ): Promise<{ conversations: StoredConversation[]; hasMore: boolean }> {
    const s = this.#stmts();
    const pairs = Object.entries(query.metadata ?? {});
    const limit = Math.max(0, query.limit);
    return this.#read(() => {
      const now = nowSeconds();
      const args: (string | number | null)[] = [now, query.tenant];
      if (query.user !== undefined) args.push(query.user);
      if (query.createdAfter !== undefined) args.push(query.createdAfter);
      if (query.createdBefore !== undefined) args.push(query.createdBefore);
      for (const [key, value] of pairs) args.push(key, value);
      if (query.after !== undefined) {
        const anchor = s.conversationAnchor.get(query.after, now, query.tenant) as
          | { created_at: number; seq: number }
          | undefined;
        if (anchor === undefined) return { conversations: [], hasMore: false };
        args.push(anchor.created_at, anchor.seq);
      }
      args.push(limit + 1);
      const statement = this.#listStatement(query, pairs.length);
      const rows = statement.all(...args) as unknown as ConversationRow[];
      const hasMore = rows.length > limit;
      if (hasMore) rows.length = limit;
      return { conversations: rows.map(decodeConversation), hasMore };
    });
  }

  async acquireConversationLease(conversationId: string, holder: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    return Number(this.#stmts().acquireLease.run(conversationId, holder, now + ttlMs, now).changes) > 0;
  }

  async renewConversationLease(conversationId: string, holder: string, ttlMs: number): Promise<boolean> {
    return Number(this.#stmts().renewLease.run(Date.now() + ttlMs, conversationId, holder).changes) > 0;
  }

  async releaseConversationLease(conversationId: string, holder: string): Promise<void> {
    this.#stmts().releaseLease.run(conversationId, holder);
  }

  async mergeConversationMetadata(
    id: string,
    patch: Record<string, string | null>,
  ): Promise<StoredConversation | null> {
    const s = this.#stmts();
    let row: ConversationRow | undefined;
    // Read, merge and write under the write lock: concurrent merges (from any process) serialise.
    this.#transaction(() => {
      const now = nowSeconds();
      const current = s.conversationMetadata.get(id, now) as { metadata: string } | undefined;
      if (current === undefined) return;
      const merged = mergeMetadata(JSON.parse(current.metadata) as Record<string, string>, patch);
      row = s.setConversationMetadata.get(JSON.stringify(merged), now, id) as ConversationRow | undefined;
    });
    return row === undefined ? null : decodeConversation(row);
  }

  async forkConversation(
    sourceId: string,
    upToItemId: string,
    target: StoredConversation,
  ): Promise<StoredConversation | null> {
    const s = this.#stmts();
    const expiresAt = effectiveExpiry(target.expiresAt, target.createdAt, this.#ttlSeconds);
    let row: ConversationRow | undefined;
    this.#transaction(() => {
      const upTo = this.#itemPosition(sourceId, upToItemId);
      if (upTo === undefined) return;
      const fresh = { ...target, usage: emptyConversationUsage() };
      const inserted = s.insertConversation.run(...conversationValues(fresh, 0, expiresAt));
      if (Number(inserted.changes) === 0) {
        throw new StoreConflictError(`Conversation ${target.id} already exists.`);
      }
      const copied = s.forkItems.run(inserted.lastInsertRowid, upTo.ref, upTo.position);
      row = s.setItemCount.get(Number(copied.changes), target.id) as ConversationRow | undefined;
    });
    return row === undefined ? null : decodeConversation(row);
  }

  async deleteUserData(tenant: string, user: string): Promise<{ responses: number; conversations: number }> {
    const s = this.#stmts();
    this.#ownChanges++;
    let counts = { responses: 0, conversations: 0 };
    this.#transaction(() => {
      // Conversations first, so the trigger does not copy the user's turn items into rows about to go.
      const conversations = Number(s.deleteUserConversations.run(tenant, user).changes);
      const responses = Number(s.deleteUserResponses.run(tenant, user).changes);
      counts = { responses, conversations };
    });
    return counts;
  }

  async failStaleTurns(before: number): Promise<number> {
    this.#ownChanges++;
    return Number(this.#stmts().failStaleTurns.run(JSON.stringify(INTERRUPTED_ERROR), before).changes);
  }

  async *exportRecords(filter: ExportFilter): AsyncIterable<ExportRecord> {
    const s = this.#stmts();
    const tenant = filter.tenant ?? null;
    const conversationId = filter.conversationId ?? null;
    const since = filter.since ?? null;
    // Batches, each one query: no transaction stays open while the consumer awaits (other calls on
    // this connection would land inside it). Records written meanwhile may or may not be exported.
    const waiting = new Map<string, StoredResponse[]>(); // parent id -> children held back for it
    function* emit(response: StoredResponse): Generator<ExportRecord> {
      yield { type: 'response', response };
      const children = waiting.get(response.id);
      if (children === undefined) return;
      waiting.delete(response.id);
      for (const child of children) yield* emit(child);
    }
    let after = 0;
    for (;;) {
      const rows = s.exportResponses.all(
        after,
        nowSeconds(),
        tenant,
        conversationId,
        since,
        EXPORT_BATCH,
      ) as unknown as ChainRow[];
      if (rows.length === 0) break;
      const held = new Set<string>();
      for (const row of rows) {
        if (row[COL.kind] !== 0) continue;
        after = Math.max(after, row[COL.seq] as number);
        if (row[COL.parentLater] === 1) held.add(row[COL.id] as string);
      }
      // decodeChain orders by descending depth; depth numbers the batch in rowid order.
      const batch = decodeChain(rows).reverse();
      for (const response of batch) {
        if (held.has(response.id)) {
          const parent = response.previousResponseId as string;
          const siblings = waiting.get(parent);
          if (siblings === undefined) waiting.set(parent, [response]);
          else siblings.push(response);
          continue;
        }
        yield* emit(response);
      }
    }
    // Parents deleted or expired meanwhile: their children still go out.
    while (waiting.size > 0) {
      const [parent, children] = waiting.entries().next().value as [string, StoredResponse[]];
      waiting.delete(parent);
      for (const child of children) yield* emit(child);
    }

    let anchor: [number, number] = [Number.MIN_SAFE_INTEGER, 0];
    for (;;) {
      const rows = s.exportConversations.all(
        anchor[0],
        anchor[1],
        nowSeconds(),
        tenant,
        conversationId,
        since,
        EXPORT_BATCH,
      ) as unknown as (ConversationRow & { seq: number })[];
      if (rows.length === 0) break;
      for (const row of rows) {
        anchor = [row.created_at, row.seq];
        const items = (s.conversationItemsAll.all(row.seq) as unknown as [string, string | null][]).map((item) =>
          conversationItem(item, row.id),
        );
        yield { type: 'conversation', conversation: decodeConversation(row), items };
      }
    }
  }

  async importRecords(records: AsyncIterable<ExportRecord> | Iterable<ExportRecord>): Promise<ImportSummary> {
    this.#stmts();
    this.#ownChanges++;
    const summary: ImportSummary = { responses: 0, conversations: 0, skipped: 0 };
    let batch: ExportRecord[] = [];
    for await (const record of records) {
      batch.push(record);
      if (batch.length >= IMPORT_BATCH) {
        this.#importBatch(batch, summary);
        batch = [];
      }
    }
    this.#importBatch(batch, summary);
    return summary;
  }

  /** One transaction: a batch lands whole or (on error) not at all. */
  #importBatch(batch: ExportRecord[], summary: ImportSummary): void {
    if (batch.length === 0) return;
    const s = this.#stmts();
    const counted = { ...summary };
    this.#transaction(() => {
      for (const record of batch) {
        if (record.type === 'response') {
          const r = record.response;
          const inserted = s.insertResponse.run(
            r.id,
            r.previousResponseId,
            r.conversationId,
            r.model,
            r.status,
            r.createdAt,
            r.completedAt,
            effectiveExpiry(r.expiresAt, r.createdAt, this.#ttlSeconds),
            encodeParams(r.params),
            encodeUsageOrNull(r.usage),
            jsonOrNull(r.error),
            jsonOrNull(r.incompleteDetails),
            r.tenant,
            r.user,
          );
          if (Number(inserted.changes) === 0) {
            counted.skipped++;
            continue;
          }
          const ref = inserted.lastInsertRowid;
          insertItems(s.insertItem, ref, INPUT, r.input);
          insertItems(s.insertItem, ref, OUTPUT, r.output);
          counted.responses++;
        } else {
          const c = record.conversation;
          const expiresAt = effectiveExpiry(c.expiresAt, c.createdAt, this.#ttlSeconds);
          const inserted = s.insertConversation.run(...conversationValues(c, c.itemCount, expiresAt));
          if (Number(inserted.changes) === 0) {
            counted.skipped++;
            continue;
          }
          // An item that is byte-for-byte a turn item of this conversation's own responses becomes
          // a pointer to it (stored once, as a live turn would have left it); others get a copy.
          // Pointers at one response must lie within the run of positions its items span from the
          // first one (migration step 6): an item out of that run is copied.
          const ref = inserted.lastInsertRowid;
          const rows = s.importItemSources.all(c.id) as unknown as ItemSource[];
          const sources = turnItemsById(rows);
          const itemsOf = new Map<bigint, number>();
          for (const row of rows) itemsOf.set(responseOf(row.key), (itemsOf.get(responseOf(row.key)) ?? 0) + 1);
          const runs = new Map<bigint, number>();
          for (let position = 0; position < record.items.length; position++) {
            const item = record.items[position];
            const data = encodeItemData(item);
            // Turn items are stored without their id; those written before still hold it.
            const full = JSON.stringify(item);
            const source = sources.get(item.id)?.find((row) => row.data === data || row.data === full);
            const response = source === undefined ? undefined : responseOf(source.key);
            if (source !== undefined && response !== undefined) {
              const start = runs.get(response) ?? position;
              runs.set(response, start);
              if (position < start + itemsOf.get(response)!) {
                s.insertConversationItemRef.run(ref, position, source.key);
                continue;
              }
            }
            s.insertConversationItem.run(ref, position, item.id, data);
          }
          for (const [response, start] of runs) s.setConversationPosition.run(start, response);
          counted.conversations++;
        }
      }
    });
    Object.assign(summary, counted);
  }

  /**
   * Appends a finishing turn's input then output rows (by reference) to its conversation, if it is
   * live, and adds the turn's usage and cost to the conversation's totals.
   */
  #appendTurn(conversationId: string, responseRef: number, result: TurnResult): void {
    const s = this.#stmts();
    const now = nowSeconds();
    const live = s.liveConversation.get(conversationId, now) as LiveConversation | undefined;
    if (live === undefined) return;
    const appended = s.appendTurnItems.run(live.ref, live.item_count, responseRef);
    s.setConversationPosition.run(live.item_count, responseRef);
    s.appendTurnTotals.run(
      Number(appended.changes),
      result.usage?.input_tokens ?? 0,
      result.usage?.output_tokens ?? 0,
      result.usage?.total_tokens ?? 0,
      result.costUsd ?? 0,
      now,
      conversationId,
    );
  }

  #listStatement(query: ConversationQuery, pairs: number): StatementSync {
    const byUser = query.user !== undefined;
    const after = query.after !== undefined;
    const createdAfter = query.createdAfter !== undefined;
    const createdBefore = query.createdBefore !== undefined;
    const order = query.order;
    const key = `${byUser ? 'u' : ''}${createdAfter ? 'f' : ''}${createdBefore ? 't' : ''}${pairs}${after ? 'a' : ''}${order}`;
    let statement = this.#listStatements.get(key);
    if (statement === undefined) {
      const where = ['(expires_at IS NULL OR expires_at > ?)', 'tenant = ?'];
      if (byUser) where.push('user = ?');
      if (createdAfter) where.push('created_at >= ?');
      if (createdBefore) where.push('created_at < ?');
      for (let i = 0; i < pairs; i++) {
        where.push('EXISTS (SELECT 1 FROM json_each(c.metadata) m WHERE m.key = ? AND m.value = ?)');
      }
      if (after) where.push(`(created_at, rowid) ${order === 'asc' ? '>' : '<'} (?, ?)`);
      const direction = order === 'asc' ? 'ASC' : 'DESC';
      statement = this.#db!.prepare(
        `SELECT ${CONVERSATION_COLUMNS} FROM conversations c
          WHERE ${where.join(' AND ')}
          ORDER BY created_at ${direction}, rowid ${direction} LIMIT ?`,
      );
      this.#listStatements.set(key, statement);
    }
    return statement;
  }

  /** Several reads that must see one snapshot (another process may write in between). */
  #read<T>(work: () => T): T {
    const s = this.#stmts();
    s.readBegin.run();
    try {
      const result = work();
      s.commit.run();
      return result;
    } catch (error) {
      if (this.#db?.isTransaction) s.rollback.run();
      throw error;
    }
  }

  /**
   * Group commit for the writes every turn makes (beginTurn, finishTurn, saveProgress). A commit
   * is most of what such a write costs (the WAL frames of every page it touched, the WAL index,
   * file locks, and now and then a checkpoint), and under load many turns write within one turn
   * of the event loop. Each write is queued and all of them run at setImmediate in one
   * transaction, each inside its own savepoint: a write that throws (a conflict) is rolled back
   * alone and its caller gets its error; the others commit together, and only then does any
   * caller's promise settle (nobody hears of a write before it is committed). A write alone in
   * its batch is a plain transaction. The delay is the rest of the event-loop turn; a write made
   * during the poll phase (a finished upstream answer) commits in the same turn's check phase.
   */
  #groupCommit(work: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queued.push({ work, resolve, reject });
      if (this.#queued.length === 1) setImmediate(() => this.#commitQueued());
    });
  }

  #commitQueued(): void {
    const batch = this.#queued;
    if (batch.length === 0) return;
    this.#queued = [];
    let s: Statements;
    try {
      s = this.#stmts();
    } catch (error) {
      for (const write of batch) write.reject(error);
      return;
    }
    if (batch.length === 1) {
      const [write] = batch;
      try {
        this.#transaction(write.work);
      } catch (error) {
        write.reject(error);
        return;
      }
      write.resolve();
      return;
    }
    const failures = new Map<QueuedWrite, unknown>();
    try {
      s.begin.run();
      for (const write of batch) {
        s.savepoint.run();
        try {
          write.work();
        } catch (error) {
          s.rollbackToSavepoint.run();
          failures.set(write, error);
        }
        s.releaseSavepoint.run();
      }
      s.commit.run();
    } catch (error) {
      // The commit itself (or SQLite undoing the whole transaction) failed: nothing was written.
      if (this.#db?.isTransaction) s.rollback.run();
      for (const write of batch) write.reject(error);
      return;
    }
    for (const write of batch) {
      if (failures.has(write)) write.reject(failures.get(write));
      else write.resolve();
    }
  }

  #stmts(): Statements {
    if (this.#statements === null) throw new Error('SqliteStore is not open: call open() first.');
    return this.#statements;
  }

  #transaction(work: () => void): void {
    const s = this.#stmts();
    s.begin.run();
    try {
      work();
      s.commit.run();
    } catch (error) {
      if (this.#db?.isTransaction) s.rollback.run();
      throw error;
    }
  }
}

function migrate(db: DatabaseSync): void {
  const version = () => (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
  if (version() === MIGRATIONS.length) return;
  // IMMEDIATE takes the write lock first, so two processes opening one file migrate once.
  db.exec('BEGIN IMMEDIATE');
  try {
    const current = version();
    if (current > MIGRATIONS.length) {
      throw new Error(
        `The database schema is version ${current}, newer than this Parley (${MIGRATIONS.length}). Upgrade Parley.`,
      );
    }
    for (let step = current; step < MIGRATIONS.length; step++) db.exec(MIGRATIONS[step]);
    db.exec(`PRAGMA user_version = ${MIGRATIONS.length}`);
    db.exec('COMMIT');
  } catch (error) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  }
}

function prepareStatements(db: DatabaseSync): Statements {
  const live = '(expires_at IS NULL OR expires_at > ?2)';
  return {
    dataVersion: db.prepare('PRAGMA data_version'),
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
    rollback: db.prepare('ROLLBACK'),
    savepoint: db.prepare('SAVEPOINT turn_write'),
    releaseSavepoint: db.prepare('RELEASE turn_write'),
    rollbackToSavepoint: db.prepare('ROLLBACK TO turn_write'),
    ping: db.prepare('SELECT 1'),
    insertResponse: db.prepare(
      `INSERT INTO responses (id, previous_response_id, conversation_id, model, status, created_at,
         completed_at, expires_at, params, usage, error, incomplete_details, tenant, user)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
    ),
    insertItem: db.prepare(
      `INSERT INTO items (key, item_id, data) VALUES (${itemKey('?1', '?2', '?3')}, ?4, ?5)`,
    ),
    finishResponse: db.prepare(
      `UPDATE responses SET status = ?, completed_at = ?, usage = ?, error = ?, incomplete_details = ?
        WHERE id = ? AND status IN ('queued', 'in_progress') RETURNING ref, conversation_id`,
    ),
    responseStatus: db.prepare('SELECT status FROM responses WHERE id = ?'),
    progressResponse: db.prepare(
      `UPDATE responses SET status = ? WHERE id = ? AND status IN ('queued', 'in_progress') RETURNING ref`,
    ),
    deleteOutput: db.prepare(
      `DELETE FROM items WHERE key BETWEEN ${itemKey('?1', OUTPUT, 0)} AND ${itemKey('?1', OUTPUT, MAX_POSITION)}`,
    ),
    chain: prepareArrays(db, CHAIN_SQL),
    deleteResponse: db.prepare('DELETE FROM responses WHERE id = ?'),
    isLive: db.prepare(`SELECT ref FROM responses WHERE id = ?1 AND ${live}`),
    inputPosition: db.prepare(
      `SELECT key & ${MAX_POSITION} AS position FROM items
        WHERE key BETWEEN ${itemKey('?1', INPUT, 0)} AND ${itemKey('?1', INPUT, MAX_POSITION)} AND item_id = ?2
        ORDER BY key LIMIT 1`,
    ),
    inputPageAsc: db.prepare(
      `SELECT item_id, data FROM items
        WHERE key > ${itemKey('?1', INPUT, '?2')} AND key <= ${itemKey('?1', INPUT, MAX_POSITION)}
        ORDER BY key ASC LIMIT ?3`,
    ),
    inputPageDesc: db.prepare(
      `SELECT item_id, data FROM items
        WHERE key < ${itemKey('?1', INPUT, '?2')} AND key >= ${itemKey('?1', INPUT, 0)}
        ORDER BY key DESC LIMIT ?3`,
    ),
    prune: db.prepare('DELETE FROM responses WHERE expires_at IS NOT NULL AND expires_at <= ?'),
    readBegin: db.prepare('BEGIN'),
    // Input before output, each by position: key order.
    appendTurnItems: db.prepare(
      `INSERT INTO conversation_items (conversation_ref, position, item_key)
       SELECT ?1, ?2 + row_number() OVER (ORDER BY key) - 1, key
         FROM items WHERE ${ofResponse('key', '?3')}`,
    ),
    // Where response ?2's items sit in its conversation (migration step 6).
    setConversationPosition: db.prepare('UPDATE responses SET conversation_position = ?1 WHERE ref = ?2'),
    // Values in conversationValues' order.
    insertConversation: db.prepare(
      `INSERT INTO conversations (${CONVERSATION_COLUMNS})
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
    ),
    conversation: db.prepare(`SELECT ${CONVERSATION_COLUMNS} FROM conversations WHERE id = ?1 AND ${live}`),
    liveConversation: db.prepare(`SELECT ref, item_count FROM conversations WHERE id = ?1 AND ${live}`),
    addItemCount: db.prepare(
      `UPDATE conversations SET item_count = item_count + ?, updated_at = ? WHERE id = ?
       RETURNING ${CONVERSATION_COLUMNS}`,
    ),
    updateConversationMetadata: db.prepare(
      `UPDATE conversations SET metadata = ?1, updated_at = ?3
        WHERE id = ?2 AND (expires_at IS NULL OR expires_at > ?3)
       RETURNING ${CONVERSATION_COLUMNS}`,
    ),
    deleteConversation: db.prepare(`DELETE FROM conversations WHERE id = ?1 AND ${live}`),
    insertConversationItem: db.prepare(
      'INSERT INTO conversation_items (conversation_ref, position, item_id, data) VALUES (?, ?, ?, ?)',
    ),
    conversationItemsAll: prepareArrays(
      db,
      `${CONVERSATION_ITEM_DATA} WHERE ci.conversation_ref = ? ORDER BY ci.position`,
    ),
    conversationItemPosition: db.prepare(ITEM_POSITION),
    conversationItemsAsc: prepareArrays(
      db,
      `${CONVERSATION_ITEM_DATA} WHERE ci.conversation_ref = ? AND ci.position > ? ORDER BY ci.position ASC LIMIT ?`,
    ),
    conversationItemsDesc: prepareArrays(
      db,
      `${CONVERSATION_ITEM_DATA} WHERE ci.conversation_ref = ? AND ci.position < ? ORDER BY ci.position DESC LIMIT ?`,
    ),
    conversationItem: db.prepare(`${CONVERSATION_ITEM_DATA} WHERE ci.conversation_ref = ?1 AND ci.position = ?2`),
    deleteConversationItem: db.prepare('DELETE FROM conversation_items WHERE conversation_ref = ? AND position = ?'),
    conversationAnchor: db.prepare(
      `SELECT created_at, rowid AS seq FROM conversations WHERE id = ?1 AND ${live} AND tenant = ?3`,
    ),
    pruneConversations: db.prepare(
      'DELETE FROM conversations WHERE expires_at IS NOT NULL AND expires_at <= ?',
    ),
    pruneLeases: db.prepare('DELETE FROM conversation_leases WHERE expires_at_ms <= ?'),
    countExpired: db.prepare(
      `SELECT (SELECT count(*) FROM responses WHERE expires_at IS NOT NULL AND expires_at <= ?1)
            + (SELECT count(*) FROM conversations WHERE expires_at IS NOT NULL AND expires_at <= ?1) AS n`,
    ),
    // Taken when free, expired, or already this holder's; `changes` says whether it was.
    acquireLease: db.prepare(
      `INSERT INTO conversation_leases (conversation_id, holder, expires_at_ms) VALUES (?1, ?2, ?3)
       ON CONFLICT (conversation_id) DO UPDATE SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms
        WHERE conversation_leases.holder = excluded.holder OR conversation_leases.expires_at_ms <= ?4`,
    ),
    renewLease: db.prepare(
      'UPDATE conversation_leases SET expires_at_ms = ? WHERE conversation_id = ? AND holder = ?',
    ),
    releaseLease: db.prepare('DELETE FROM conversation_leases WHERE conversation_id = ? AND holder = ?'),
    appendTurnTotals: db.prepare(
      `UPDATE conversations
          SET item_count = item_count + ?1, input_tokens = input_tokens + ?2, output_tokens = output_tokens + ?3,
              total_tokens = total_tokens + ?4, cost_usd = cost_usd + ?5, turns = turns + 1, updated_at = ?6
        WHERE id = ?7`,
    ),
    conversationMetadata: db.prepare(`SELECT metadata FROM conversations WHERE id = ?1 AND ${live}`),
    setConversationMetadata: db.prepare(
      `UPDATE conversations SET metadata = ?, updated_at = ? WHERE id = ? RETURNING ${CONVERSATION_COLUMNS}`,
    ),
    // Renumbered from 0 (the source may have gaps where items were deleted). Copies, not pointers:
    // a row may point only at its own conversation's turns (migration step 6).
    forkItems: db.prepare(
      `INSERT INTO conversation_items (conversation_ref, position, item_id, data)
       SELECT ?1, row_number() OVER (ORDER BY ci.position) - 1, coalesce(ci.item_id, i.item_id), coalesce(ci.data, i.data)
         FROM conversation_items ci LEFT JOIN items i ON ci.data IS NULL AND i.key = ci.item_key
        WHERE ci.conversation_ref = ?2 AND ci.position <= ?3`,
    ),
    setItemCount: db.prepare(
      `UPDATE conversations SET item_count = ? WHERE id = ? RETURNING ${CONVERSATION_COLUMNS}`,
    ),
    deleteUserConversations: db.prepare('DELETE FROM conversations WHERE tenant = ? AND user = ?'),
    deleteUserResponses: db.prepare('DELETE FROM responses WHERE tenant = ? AND user = ?'),
    failStaleTurns: db.prepare(
      `UPDATE responses SET status = 'failed', error = ?
        WHERE status IN ('queued', 'in_progress') AND created_at < ?`,
    ),
    exportResponses: prepareArrays(db, EXPORT_RESPONSES_SQL),
    exportConversations: db.prepare(
      `SELECT rowid AS seq, ${CONVERSATION_COLUMNS} FROM conversations
        WHERE (created_at, rowid) > (?1, ?2) AND (expires_at IS NULL OR expires_at > ?3)
          AND (?4 IS NULL OR tenant = ?4) AND (?5 IS NULL OR id = ?5) AND (?6 IS NULL OR created_at >= ?6)
        ORDER BY created_at, rowid LIMIT ?7`,
    ),
    // A conversation's turn items (in key order: the index lists a conversation's responses by ref).
    importItemSources: prepareBigInts(
      db,
      `SELECT i.item_id, i.data, i.key
         FROM responses r CROSS JOIN items i ON ${ofResponse('i.key', 'r.ref')}
        WHERE substr(r.conversation_id, -12) = substr(?1, -12) AND r.conversation_id = ?1`,
    ),
    insertConversationItemRef: db.prepare(
      'INSERT INTO conversation_items (conversation_ref, position, item_key) VALUES (?, ?, ?)',
    ),
  };
}

/** Keys may pass Number.MAX_SAFE_INTEGER: read as bigint, handed back to SQLite unchanged. */
function prepareBigInts(db: DatabaseSync, sql: string): StatementSync {
  const statement = db.prepare(sql);
  statement.setReadBigInts(true);
  return statement;
}

function prepareArrays(db: DatabaseSync, sql: string): StatementSync {
  const statement = db.prepare(sql);
  statement.setReturnArrays(true);
  return statement;
}

interface QueuedWrite {
  work: () => void;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Items as the items table holds them: [item id, item JSON without its id]. */
function encodeItems(items: Item[]): [string, string][] {
  if (items.length > MAX_POSITION + 1) {
    throw new Error(`A response holds at most ${MAX_POSITION + 1} items per direction in SQLite, not ${items.length}.`);
  }
  return items.map((item) => [item.id, encodeItemData(item)]);
}

function insertEncodedItems(
  insert: StatementSync,
  responseRef: number | bigint,
  direction: Direction,
  items: [string, string][],
): void {
  for (let position = 0; position < items.length; position++) {
    insert.run(responseRef, direction, position, items[position][0], items[position][1]);
  }
}

function insertItems(insert: StatementSync, responseRef: number | bigint, direction: Direction, items: Item[]): void {
  insertEncodedItems(insert, responseRef, direction, encodeItems(items));
}

/** The ref of the response an item key belongs to (see itemKey). */
const responseOf = (key: bigint): bigint => key / BigInt(RESPONSE_SPAN);

/** A turn item import may point a conversation row at. */
interface ItemSource {
  item_id: string;
  data: string;
  key: bigint;
}

function turnItemsById(rows: ItemSource[]): Map<string, ItemSource[]> {
  const byId = new Map<string, ItemSource[]>();
  for (const row of rows) {
    const list = byId.get(row.item_id);
    if (list === undefined) byId.set(row.item_id, [row]);
    else list.push(row);
  }
  return byId;
}

function insertConversationItems(
  insert: StatementSync,
  conversationRef: number | bigint,
  firstPosition: number,
  items: Item[],
): void {
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    insert.run(conversationRef, firstPosition + i, item.id, encodeItemData(item));
  }
}

/** A conversation item from its [item_id, data] row (data with or without the id, see codec.ts). */
function conversationItem(row: readonly [string, string | null], conversationId: string): Item {
  const data = row[1];
  // Unreachable while the trigger keeps referenced items; never hand out a hole in the history.
  if (data === null)
    throw new Error(`Conversation ${conversationId} references an item that no longer exists.`);
  return decodeItemData(row[0], data);
}

function decodeConversation(row: ConversationRow): StoredConversation {
  return {
    id: row.id,
    tenant: row.tenant,
    createdAt: row.created_at,
    // JSON.parse keeps keys like `__proto__` as plain own data.
    metadata: JSON.parse(row.metadata) as Record<string, string>,
    user: row.user,
    itemCount: Number(row.item_count),
    expiresAt: row.expires_at,
    usage: {
      input_tokens: Number(row.input_tokens),
      output_tokens: Number(row.output_tokens),
      total_tokens: Number(row.total_tokens),
      cost_usd: Number(row.cost_usd),
      turns: Number(row.turns),
    },
    updatedAt: row.updated_at,
  };
}

/** A conversation row's values in CONVERSATION_COLUMNS order. */
function conversationValues(
  conversation: StoredConversation,
  itemCount: number,
  expiresAt: number | null,
): (string | number | null)[] {
  const usage = conversation.usage;
  return [
    conversation.id,
    conversation.tenant,
    conversation.createdAt,
    conversation.user,
    JSON.stringify(conversation.metadata),
    itemCount,
    expiresAt,
    usage.input_tokens,
    usage.output_tokens,
    usage.total_tokens,
    usage.cost_usd,
    usage.turns,
    conversation.updatedAt,
  ];
}

function decodeChain(rows: ChainRow[]): StoredResponse[] {
  return assembleChain(rows, decodeResponse);
}

function decodeResponse(row: ChainRow, input: Item[], output: Item[]): StoredResponse {
  const params = row[COL.params] as string;
  return defineLazyParams(
    {
      id: row[COL.id] as string,
      tenant: row[COL.tenant] as string,
      user: row[COL.user] as string | null,
      previousResponseId: row[COL.previousResponseId] as string | null,
      conversationId: row[COL.conversationId] as string | null,
      model: row[COL.model] as string,
      status: row[COL.status] as StoredResponse['status'],
      createdAt: row[COL.createdAt] as number,
      completedAt: row[COL.completedAt] as number | null,
      expiresAt: row[COL.expiresAt] as number | null,
      input,
      output,
      usage: decodeUsageOrNull(row[COL.usage] as string | null),
      error: parseOrNull(row[COL.error] as string | null),
      incompleteDetails: parseOrNull(row[COL.incompleteDetails] as string | null),
    },
    () => decodeParams(params),
  );
}
