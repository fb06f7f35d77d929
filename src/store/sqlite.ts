// The durable embedded store on node:sqlite. One row per response, one row per item (each item
// stored once, a turn writes only its own items); a chain loads in one recursive query.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { Item } from '../protocol/types.ts';
import { defineLazyParams, effectiveExpiry, MAX_CHAIN_DEPTH, nowSeconds } from './codec.ts';
import type { ConversationStore, ItemPage, ListOptions, StoredResponse, TurnResult } from './types.ts';
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
];

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
  deleteOutput: StatementSync;
  chain: StatementSync;
  deleteResponse: StatementSync;
  isLive: StatementSync;
  inputPosition: StatementSync;
  inputPageAsc: StatementSync;
  inputPageDesc: StatementSync;
  prune: StatementSync;
}

export class SqliteStore implements ConversationStore {
  readonly description: string;
  readonly #path: string;
  readonly #ttlSeconds: number | null;
  #db: DatabaseSync | null = null;
  #statements: Statements | null = null;

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
      const updated = s.finishResponse.run(
        result.status,
        result.completedAt,
        jsonOrNull(result.usage),
        jsonOrNull(result.error),
        jsonOrNull(result.incompleteDetails),
        id,
      );
      if (Number(updated.changes) === 0) {
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
    });
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
    return Number(this.#stmts().prune.run(now).changes);
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
        WHERE id = ? AND status IN ('queued', 'in_progress')`,
    ),
    responseStatus: db.prepare('SELECT status FROM responses WHERE id = ?'),
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
