// The durable embedded store on node:sqlite. One row per response, one row per item (each item
// stored once, a turn writes only its own items); a chain loads in one recursive query.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { Item } from '../protocol/types.ts';
import { defineLazyParams, effectiveExpiry, MAX_CHAIN_DEPTH, nowSeconds } from './codec.ts';
import type {
  ConversationQuery,
  ConversationStore,
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
];

// A conversation item's bytes: its own, or those of the turn item it points at.
const CONVERSATION_ITEM_DATA = `
SELECT coalesce(ci.data, i.data) AS data
  FROM conversation_items ci
  LEFT JOIN items i
    ON ci.data IS NULL AND i.response_id = ci.response_id AND i.direction = ci.direction
   AND i.position = ci.item_position`;

// The chain walk carries only ids and depth; response and item rows are then emitted once each
// (a UNION ALL rather than a join, so a response's params are not repeated on every item row).
// No ORDER BY: every row carries its depth, direction and position, and decodeChain places it by
// those in O(rows). Sorting in SQL dragged every params and item payload through a temp b-tree,
// which doubled the cost of a 1,000-turn chain with a few tools per request.
// CROSS JOIN pins the join order (chain outer, index lookups inner); left to itself the planner
// may scan all of items instead.
// ?1 = id, ?2 = now (expired rows are invisible), ?3 = max depth (0 for a single response).
const CHAIN_SQL = `
WITH RECURSIVE chain (id, parent, depth) AS (
  SELECT id, previous_response_id, 0 FROM responses
   WHERE id = ?1 AND (expires_at IS NULL OR expires_at > ?2)
  UNION ALL
  SELECT r.id, r.previous_response_id, chain.depth + 1
    FROM chain JOIN responses r ON r.id = chain.parent
   WHERE chain.depth < ?3 AND (r.expires_at IS NULL OR r.expires_at > ?2)
)
SELECT chain.depth AS depth, 0 AS kind, r.id AS id, r.previous_response_id AS previous_response_id,
       r.conversation_id AS conversation_id, r.model AS model, r.status AS status,
       r.created_at AS created_at, r.completed_at AS completed_at, r.expires_at AS expires_at,
       r.params AS params, r.usage AS usage, r.error AS error, r.incomplete_details AS incomplete_details,
       NULL AS direction, NULL AS position, NULL AS data
  FROM chain CROSS JOIN responses r ON r.id = chain.id
UNION ALL
SELECT chain.depth, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       i.direction, i.position, i.data
  FROM chain CROSS JOIN items i ON i.response_id = chain.id`;

// The chain statement returns arrays (no per-row object with 17 keys): these are its columns.
const COL = {
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
  direction: 14,
  position: 15,
  data: 16,
} as const;
type ChainRow = (string | number | null)[];

interface Statements {
  begin: StatementSync;
  commit: StatementSync;
  rollback: StatementSync;
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
  conversationCount: StatementSync;
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
  acquireLease: StatementSync;
  renewLease: StatementSync;
  releaseLease: StatementSync;
}

interface ConversationRow {
  id: string;
  created_at: number;
  user: string | null;
  metadata: string;
  item_count: number;
  expires_at: number | null;
}

export class SqliteStore implements ConversationStore {
  readonly description: string;
  readonly #path: string;
  readonly #ttlSeconds: number | null;
  #db: DatabaseSync | null = null;
  #statements: Statements | null = null;
  /** listConversations statements, one per filter shape (user?, metadata pairs, after?, order). */
  #listStatements = new Map<string, StatementSync>();

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

  async close(): Promise<void> {
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
    const expiresAt = effectiveExpiry(response.expiresAt, response.createdAt, this.#ttlSeconds);
    this.#transaction(() => {
      const inserted = s.insertResponse.run(
        response.id,
        response.previousResponseId,
        response.conversationId,
        response.model,
        response.status,
        response.createdAt,
        response.completedAt,
        expiresAt,
        JSON.stringify(response.params),
        jsonOrNull(response.usage),
        jsonOrNull(response.error),
        jsonOrNull(response.incompleteDetails),
      );
      if (Number(inserted.changes) === 0)
        throw new StoreConflictError(`Response ${response.id} already exists.`);
      insertItems(s.insertItem, response.id, 'input', response.input);
      insertItems(s.insertItem, response.id, 'output', response.output);
    });
  }

  async finishTurn(id: string, result: TurnResult): Promise<void> {
    const s = this.#stmts();
    this.#transaction(() => {
      const updated = s.finishResponse.get(
        result.status,
        result.completedAt,
        jsonOrNull(result.usage),
        jsonOrNull(result.error),
        jsonOrNull(result.incompleteDetails),
        id,
      ) as { conversation_id: string | null } | undefined;
      if (updated === undefined) {
        const row = s.responseStatus.get(id) as { status: string } | undefined;
        throw new StoreConflictError(
          row === undefined
            ? `Cannot finish response ${id}: it does not exist.`
            : `Cannot finish response ${id}: it is already ${row.status}.`,
        );
      }
      // The output replaces whatever beginTurn may have written, like in every other backend.
      s.deleteOutput.run(id);
      insertItems(s.insertItem, id, 'output', result.output);
      if (
        updated.conversation_id !== null &&
        (result.status === 'completed' || result.status === 'incomplete')
      ) {
        this.#appendTurn(updated.conversation_id, id);
      }
    });
  }

  async saveProgress(id: string, progress: TurnProgress): Promise<boolean> {
    const s = this.#stmts();
    let saved = false;
    this.#transaction(() => {
      if (Number(s.progressResponse.run(progress.status, id).changes) === 0) return;
      s.deleteOutput.run(id);
      insertItems(s.insertItem, id, 'output', progress.output);
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
    // Items go with it through ON DELETE CASCADE.
    return Number(this.#stmts().deleteResponse.run(id).changes) > 0;
  }

  async listInputItems(id: string, options: ListOptions): Promise<ItemPage | null> {
    const s = this.#stmts();
    if (s.isLive.get(id, nowSeconds()) === undefined) return null;
    const limit = Math.max(0, options.limit);
    let from: number;
    if (options.after === undefined) {
      from = options.order === 'asc' ? -1 : Number.MAX_SAFE_INTEGER;
    } else {
      const row = s.inputPosition.get(id, options.after) as { position: number } | undefined;
      if (row === undefined) return { items: [], hasMore: false };
      from = row.position;
    }
    const page = options.order === 'asc' ? s.inputPageAsc : s.inputPageDesc;
    // One extra row tells whether another page exists.
    const rows = page.all(id, from, limit + 1) as unknown as { data: string }[];
    const hasMore = rows.length > limit;
    if (hasMore) rows.length = limit;
    return { items: rows.map((row) => JSON.parse(row.data) as Item), hasMore };
  }

  async pruneExpired(now: number): Promise<number> {
    const s = this.#stmts();
    let removed = 0;
    this.#transaction(() => {
      removed = Number(s.prune.run(now).changes) + Number(s.pruneConversations.run(now).changes);
      s.pruneLeases.run(now * 1000);
    });
    return removed;
  }

  // ---------- conversations ----------

  async createConversation(conversation: StoredConversation, items: Item[]): Promise<void> {
    const s = this.#stmts();
    const expiresAt = effectiveExpiry(conversation.expiresAt, conversation.createdAt, this.#ttlSeconds);
    this.#transaction(() => {
      const inserted = s.insertConversation.run(
        conversation.id,
        conversation.createdAt,
        conversation.user,
        JSON.stringify(conversation.metadata),
        items.length,
        expiresAt,
      );
      if (Number(inserted.changes) === 0) {
        throw new StoreConflictError(`Conversation ${conversation.id} already exists.`);
      }
      insertConversationItems(s.insertConversationItem, conversation.id, 0, items);
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
    // Its items go with it through ON DELETE CASCADE; the turns' own items stay with the responses.
    return Number(this.#stmts().deleteConversation.run(id, nowSeconds()).changes) > 0;
  }

  async appendConversationItems(id: string, items: Item[]): Promise<StoredConversation | null> {
    const s = this.#stmts();
    let row: ConversationRow | undefined;
    this.#transaction(() => {
      const count = s.conversationCount.get(id, nowSeconds()) as { item_count: number } | undefined;
      if (count === undefined) return;
      insertConversationItems(s.insertConversationItem, id, count.item_count, items);
      row = s.addItemCount.get(items.length, id) as ConversationRow | undefined;
    });
    return row === undefined ? null : decodeConversation(row);
  }

  async loadConversationItems(id: string): Promise<Item[] | null> {
    const s = this.#stmts();
    return this.#read(() => {
      if (s.conversationCount.get(id, nowSeconds()) === undefined) return null;
      const rows = s.conversationItemsAll.all(id) as unknown as [string][];
      return rows.map((row) => decodeItemData(row[0], id));
    });
  }

  async listConversationItems(id: string, options: ListOptions): Promise<ItemPage | null> {
    const s = this.#stmts();
    return this.#read(() => {
      if (s.conversationCount.get(id, nowSeconds()) === undefined) return null;
      const limit = Math.max(0, options.limit);
      let from: number;
      if (options.after === undefined) {
        from = options.order === 'asc' ? -1 : Number.MAX_SAFE_INTEGER;
      } else {
        const row = s.conversationItemPosition.get(id, options.after) as { position: number } | undefined;
        if (row === undefined) return { items: [], hasMore: false };
        from = row.position;
      }
      const page = options.order === 'asc' ? s.conversationItemsAsc : s.conversationItemsDesc;
      const rows = page.all(id, from, limit + 1) as unknown as [string][];
      const hasMore = rows.length > limit;
      if (hasMore) rows.length = limit;
      return { items: rows.map((row) => decodeItemData(row[0], id)), hasMore };
    });
  }

  async getConversationItem(conversationId: string, itemId: string): Promise<Item | null> {
    const row = this.#stmts().conversationItem.get(conversationId, itemId, nowSeconds()) as
      | { data: string | null }
      | undefined;
    return row === undefined ? null : decodeItemData(row.data, conversationId);
  }

  async deleteConversationItem(conversationId: string, itemId: string): Promise<boolean> {
    const deleted = this.#stmts().deleteConversationItem.run(conversationId, itemId, nowSeconds());
    return Number(deleted.changes) > 0;
  }

  async listConversations(
    query: ConversationQuery,
  ): Promise<{ conversations: StoredConversation[]; hasMore: boolean }> {
    const s = this.#stmts();
    const pairs = Object.entries(query.metadata ?? {});
    const limit = Math.max(0, query.limit);
    return this.#read(() => {
      const now = nowSeconds();
      const args: (string | number | null)[] = [now];
      if (query.user !== undefined) args.push(query.user);
      for (const [key, value] of pairs) args.push(key, value);
      if (query.after !== undefined) {
        const anchor = s.conversationAnchor.get(query.after, now) as
          | { created_at: number; seq: number }
          | undefined;
        if (anchor === undefined) return { conversations: [], hasMore: false };
        args.push(anchor.created_at, anchor.seq);
      }
      args.push(limit + 1);
      const statement = this.#listStatement(
        query.user !== undefined,
        pairs.length,
        query.after !== undefined,
        query.order,
      );
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

  /** Appends a finishing turn's input then output rows (by reference) to its conversation, if it is live. */
  #appendTurn(conversationId: string, responseId: string): void {
    const s = this.#stmts();
    const count = s.conversationCount.get(conversationId, nowSeconds()) as { item_count: number } | undefined;
    if (count === undefined) return;
    const appended = s.appendTurnItems.run(conversationId, count.item_count, responseId);
    s.addItemCount.get(Number(appended.changes), conversationId);
  }

  #listStatement(byUser: boolean, pairs: number, after: boolean, order: 'asc' | 'desc'): StatementSync {
    const key = `${byUser ? 'u' : ''}${pairs}${after ? 'a' : ''}${order}`;
    let statement = this.#listStatements.get(key);
    if (statement === undefined) {
      const where = ['(expires_at IS NULL OR expires_at > ?)'];
      if (byUser) where.push('user = ?');
      for (let i = 0; i < pairs; i++) {
        where.push('EXISTS (SELECT 1 FROM json_each(c.metadata) m WHERE m.key = ? AND m.value = ?)');
      }
      if (after) where.push(`(created_at, rowid) ${order === 'asc' ? '>' : '<'} (?, ?)`);
      const direction = order === 'asc' ? 'ASC' : 'DESC';
      statement = this.#db!.prepare(
        `SELECT id, created_at, user, metadata, item_count, expires_at FROM conversations c
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
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
    rollback: db.prepare('ROLLBACK'),
    ping: db.prepare('SELECT 1'),
    insertResponse: db.prepare(
      `INSERT INTO responses (id, previous_response_id, conversation_id, model, status, created_at,
         completed_at, expires_at, params, usage, error, incomplete_details)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
    ),
    insertItem: db.prepare(
      'INSERT INTO items (response_id, direction, position, item_id, type, data) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    finishResponse: db.prepare(
      `UPDATE responses SET status = ?, completed_at = ?, usage = ?, error = ?, incomplete_details = ?
        WHERE id = ? AND status IN ('queued', 'in_progress') RETURNING conversation_id`,
    ),
    responseStatus: db.prepare('SELECT status FROM responses WHERE id = ?'),
    progressResponse: db.prepare(
      `UPDATE responses SET status = ? WHERE id = ? AND status IN ('queued', 'in_progress')`,
    ),
    deleteOutput: db.prepare(`DELETE FROM items WHERE response_id = ? AND direction = 'output'`),
    chain: prepareArrays(db, CHAIN_SQL),
    deleteResponse: db.prepare('DELETE FROM responses WHERE id = ?'),
    isLive: db.prepare(`SELECT 1 FROM responses WHERE id = ?1 AND ${live}`),
    inputPosition: db.prepare(
      `SELECT position FROM items WHERE response_id = ? AND direction = 'input' AND item_id = ?
        ORDER BY position LIMIT 1`,
    ),
    inputPageAsc: db.prepare(
      `SELECT data FROM items WHERE response_id = ? AND direction = 'input' AND position > ?
        ORDER BY position ASC LIMIT ?`,
    ),
    inputPageDesc: db.prepare(
      `SELECT data FROM items WHERE response_id = ? AND direction = 'input' AND position < ?
        ORDER BY position DESC LIMIT ?`,
    ),
    prune: db.prepare('DELETE FROM responses WHERE expires_at IS NOT NULL AND expires_at <= ?'),
    readBegin: db.prepare('BEGIN'),
    // Input before output ('input' < 'output'), each by position: the order of the items index.
    appendTurnItems: db.prepare(
      `INSERT INTO conversation_items (conversation_id, position, item_id, response_id, direction, item_position)
       SELECT ?1, ?2 + row_number() OVER (ORDER BY direction, position) - 1, item_id, response_id, direction, position
         FROM items WHERE response_id = ?3`,
    ),
    insertConversation: db.prepare(
      `INSERT INTO conversations (id, created_at, user, metadata, item_count, expires_at)
       VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
    ),
    conversation: db.prepare(
      `SELECT id, created_at, user, metadata, item_count, expires_at FROM conversations WHERE id = ?1 AND ${live}`,
    ),
    conversationCount: db.prepare(`SELECT item_count FROM conversations WHERE id = ?1 AND ${live}`),
    addItemCount: db.prepare(
      `UPDATE conversations SET item_count = item_count + ? WHERE id = ?
       RETURNING id, created_at, user, metadata, item_count, expires_at`,
    ),
    updateConversationMetadata: db.prepare(
      `UPDATE conversations SET metadata = ?1 WHERE id = ?2 AND (expires_at IS NULL OR expires_at > ?3)
       RETURNING id, created_at, user, metadata, item_count, expires_at`,
    ),
    deleteConversation: db.prepare(`DELETE FROM conversations WHERE id = ?1 AND ${live}`),
    insertConversationItem: db.prepare(
      'INSERT INTO conversation_items (conversation_id, position, item_id, data) VALUES (?, ?, ?, ?)',
    ),
    conversationItemsAll: prepareArrays(
      db,
      `${CONVERSATION_ITEM_DATA} WHERE ci.conversation_id = ? ORDER BY ci.position`,
    ),
    conversationItemPosition: db.prepare(
      'SELECT position FROM conversation_items WHERE conversation_id = ? AND item_id = ? ORDER BY position LIMIT 1',
    ),
    conversationItemsAsc: prepareArrays(
      db,
      `${CONVERSATION_ITEM_DATA} WHERE ci.conversation_id = ? AND ci.position > ? ORDER BY ci.position ASC LIMIT ?`,
    ),
    conversationItemsDesc: prepareArrays(
      db,
      `${CONVERSATION_ITEM_DATA} WHERE ci.conversation_id = ? AND ci.position < ? ORDER BY ci.position DESC LIMIT ?`,
    ),
    conversationItem: db.prepare(
      `${CONVERSATION_ITEM_DATA}
        WHERE ci.conversation_id = ?1 AND ci.item_id = ?2
          AND EXISTS (SELECT 1 FROM conversations WHERE id = ?1 AND (expires_at IS NULL OR expires_at > ?3))
        ORDER BY ci.position LIMIT 1`,
    ),
    deleteConversationItem: db.prepare(
      `DELETE FROM conversation_items WHERE conversation_id = ?1 AND position = (
         SELECT position FROM conversation_items WHERE conversation_id = ?1 AND item_id = ?2
          ORDER BY position LIMIT 1)
         AND EXISTS (SELECT 1 FROM conversations WHERE id = ?1 AND (expires_at IS NULL OR expires_at > ?3))`,
    ),
    conversationAnchor: db.prepare(
      `SELECT created_at, rowid AS seq FROM conversations WHERE id = ?1 AND ${live}`,
    ),
    pruneConversations: db.prepare(
      'DELETE FROM conversations WHERE expires_at IS NOT NULL AND expires_at <= ?',
    ),
    pruneLeases: db.prepare('DELETE FROM conversation_leases WHERE expires_at_ms <= ?'),
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
  };
}

function prepareArrays(db: DatabaseSync, sql: string): StatementSync {
  const statement = db.prepare(sql);
  statement.setReturnArrays(true);
  return statement;
}

function insertItems(
  insert: StatementSync,
  responseId: string,
  direction: 'input' | 'output',
  items: Item[],
): void {
  for (let position = 0; position < items.length; position++) {
    const item = items[position];
    insert.run(responseId, direction, position, item.id, item.type, JSON.stringify(item));
  }
}

function insertConversationItems(
  insert: StatementSync,
  conversationId: string,
  firstPosition: number,
  items: Item[],
): void {
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    insert.run(conversationId, firstPosition + i, item.id, JSON.stringify(item));
  }
}

function decodeItemData(data: string | null, conversationId: string): Item {
  // Unreachable while the trigger keeps referenced items; never hand out a hole in the history.
  if (data === null)
    throw new Error(`Conversation ${conversationId} references an item that no longer exists.`);
  return JSON.parse(data) as Item;
}

function decodeConversation(row: ConversationRow): StoredConversation {
  return {
    id: row.id,
    createdAt: row.created_at,
    // JSON.parse keeps keys like `__proto__` as plain own data.
    metadata: JSON.parse(row.metadata) as Record<string, string>,
    user: row.user,
    itemCount: Number(row.item_count),
    expiresAt: row.expires_at,
  };
}

function jsonOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

function parseOrNull<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

/**
 * Builds the chain, root first, from rows in any order: a response row sits at its depth, an item
 * row at its position (positions are 0..n-1 per direction, as insertItems writes them).
 */
function decodeChain(rows: ChainRow[]): StoredResponse[] {
  const byDepth: StoredResponse[] = [];
  const inputs: Item[][] = [];
  const outputs: Item[][] = [];
  for (const row of rows) {
    const depth = row[COL.depth] as number;
    if (row[COL.kind] === 0) {
      byDepth[depth] = decodeResponse(row, listAt(inputs, depth), listAt(outputs, depth));
    } else {
      const items = listAt(row[COL.direction] === 'input' ? inputs : outputs, depth);
      items[row[COL.position] as number] = JSON.parse(row[COL.data] as string) as Item;
    }
  }
  const chain: StoredResponse[] = [];
  for (let depth = byDepth.length - 1; depth >= 0; depth--) {
    if (byDepth[depth] !== undefined) chain.push(byDepth[depth]);
  }
  return chain;
}

function listAt(lists: Item[][], depth: number): Item[] {
  let list = lists[depth];
  if (list === undefined) {
    list = [];
    lists[depth] = list;
  }
  return list;
}

function decodeResponse(row: ChainRow, input: Item[], output: Item[]): StoredResponse {
  const params = row[COL.params] as string;
  return defineLazyParams(
    {
      id: row[COL.id] as string,
      previousResponseId: row[COL.previousResponseId] as string | null,
      conversationId: row[COL.conversationId] as string | null,
      model: row[COL.model] as string,
      status: row[COL.status] as StoredResponse['status'],
      createdAt: row[COL.createdAt] as number,
      completedAt: row[COL.completedAt] as number | null,
      expiresAt: row[COL.expiresAt] as number | null,
      input,
      output,
      usage: parseOrNull(row[COL.usage] as string | null),
      error: parseOrNull(row[COL.error] as string | null),
      incompleteDetails: parseOrNull(row[COL.incompleteDetails] as string | null),
    },
    () => JSON.parse(params),
  );
}
