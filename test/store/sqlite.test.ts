// SqliteStore specifics beyond the shared contract: persistence across restarts, migrations,
// pragmas, and the storage layout (each item stored once).

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import type { Item } from '../../src/protocol/types.ts';
import { MIGRATIONS, SqliteStore } from '../../src/store/sqlite.ts';
import type { StoredResponse } from '../../src/store/types.ts';
import {
  assistantMessage,
  completed,
  finished,
  newConversation,
  newTurn,
  userMessage,
} from '../store-contract/suite.ts';

let dir: string;
let counter = 0;
const freshPath = () => join(dir, `db-${++counter}`, 'parley.db');

async function opened(path: string, ttlSeconds: number | null = null): Promise<SqliteStore> {
  const store = new SqliteStore({ path, ttlSeconds });
  await store.open();
  return store;
}

async function storeChain(store: SqliteStore, length: number): Promise<StoredResponse[]> {
  const chain: StoredResponse[] = [];
  let previous: string | null = null;
  for (let i = 0; i < length; i++) {
    const turn = newTurn({
      previousResponseId: previous,
      input: [userMessage(`q${i}`), userMessage(`q${i}b`)],
    });
    await store.beginTurn(turn);
    const result = completed([assistantMessage(`a${i}`)]);
    await store.finishTurn(turn.id, result);
    chain.push(finished(turn, result));
    previous = turn.id;
  }
  return chain;
}

function inspect<T>(path: string, sql: string): T {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return db.prepare(sql).get() as T;
  } finally {
    db.close();
  }
}

describe('SqliteStore', () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'parley-sqlite-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates missing parent directories', async () => {
    const path = join(dir, 'a', 'b', 'c', 'parley.db');
    const store = await opened(path);
    await store.close();
    assert.ok(existsSync(path));
  });

  it('keeps everything across close and reopen of the same file', async () => {
    const path = freshPath();
    const first = await opened(path);
    const chain = await storeChain(first, 5);
    const pending = newTurn({ previousResponseId: chain[4].id });
    await first.beginTurn(pending);
    await first.close();

    const second = await opened(path);
    assert.deepEqual(await second.loadChain(pending.id), [...chain, pending]);
    assert.deepEqual(await second.listInputItems(chain[2].id, { limit: 10, order: 'desc' }), {
      items: [...chain[2].input].reverse(),
      hasMore: false,
    });
    // A turn begun before the restart can still be finished after it.
    const result = completed([assistantMessage('after restart')]);
    await second.finishTurn(pending.id, result);
    assert.deepEqual(await second.getResponse(pending.id), finished(pending, result));
    await second.close();
  });

  it('applies migrations once: opening twice (even side by side) is idempotent', async () => {
    const path = freshPath();
    const a = await opened(path);
    const b = await opened(path);
    const chain = await storeChain(a, 2);
    assert.deepEqual(await b.loadChain(chain[1].id), chain, 'a second connection sees committed turns');
    await a.close();
    await b.close();
    const c = await opened(path);
    await c.close();
    assert.equal(
      inspect<{ user_version: number }>(path, 'PRAGMA user_version').user_version,
      MIGRATIONS.length,
    );
    const tables = inspect<{ n: number }>(
      path,
      `SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name IN ('responses', 'items')`,
    );
    assert.equal(tables.n, 2);
  });

  it('refuses a database written by a newer schema', async () => {
    const path = freshPath();
    await (await opened(path)).close();
    const db = new DatabaseSync(path);
    db.exec(`PRAGMA user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    await assert.rejects(opened(path), /newer than this Parley/);
  });

  it('runs the file in WAL mode', async () => {
    const path = freshPath();
    const store = await opened(path);
    assert.equal(inspect<{ journal_mode: string }>(path, 'PRAGMA journal_mode').journal_mode, 'wal');
    await store.close();
  });

  it('stores each item once: a turn writes only its own items', async () => {
    const path = freshPath();
    const store = await opened(path);
    const chain = await storeChain(store, 10);
    const expected = chain.reduce((n, r) => n + r.input.length + r.output.length, 0);
    assert.equal(inspect<{ n: number }>(path, 'SELECT count(*) AS n FROM items').n, expected);
    assert.equal(inspect<{ n: number }>(path, 'SELECT count(*) AS n FROM responses').n, 10);
    await store.deleteResponse(chain[3].id);
    assert.equal(
      inspect<{ n: number }>(path, 'SELECT count(*) AS n FROM items').n,
      expected - 3,
      'items cascade',
    );
    await store.close();
  });

  it('stores a conversation turn once: conversation rows point at the turn items', async () => {
    const path = freshPath();
    const store = await opened(path);
    const conversation = newConversation({ itemCount: 1 });
    await store.createConversation(conversation, [userMessage('initial')]);
    const turns: StoredResponse[] = [];
    for (let i = 0; i < 3; i++) {
      const turn = newTurn({ conversationId: conversation.id, input: [userMessage(`q${i}`)] });
      await store.beginTurn(turn);
      const result = completed([assistantMessage(`a${i}`)]);
      await store.finishTurn(turn.id, result);
      turns.push(finished(turn, result));
    }
    const count = (sql: string) => inspect<{ n: number }>(path, sql).n;
    assert.equal(count('SELECT count(*) AS n FROM items'), 6);
    assert.equal(count('SELECT count(*) AS n FROM conversation_items'), 7);
    assert.equal(
      count('SELECT count(*) AS n FROM conversation_items WHERE data IS NOT NULL'),
      1,
      'only the initial item has its own copy',
    );
    const before = await store.loadConversationItems(conversation.id);

    // Deleting a response moves its two items' bytes into the conversation rows.
    await store.deleteResponse(turns[1].id);
    assert.equal(count('SELECT count(*) AS n FROM items'), 4);
    assert.equal(count('SELECT count(*) AS n FROM conversation_items WHERE data IS NOT NULL'), 3);
    assert.deepEqual(await store.loadConversationItems(conversation.id), before);

    // Deleting the conversation leaves the remaining turns' items with their responses.
    await store.deleteConversation(conversation.id);
    assert.equal(count('SELECT count(*) AS n FROM conversation_items'), 0);
    assert.equal(count('SELECT count(*) AS n FROM items'), 4);
    assert.deepEqual(await store.getResponse(turns[2].id), turns[2]);
    await store.close();
  });

  it('upgrades a database written by the first schema version, keeping its responses', async () => {
    const path = freshPath();
    const v1 = await opened(path);
    const chain = await storeChain(v1, 2);
    await v1.close();
    const db = new DatabaseSync(path);
    db.exec('PRAGMA user_version = 1');
    db.exec('DROP TRIGGER items_keep_conversation_copies');
    for (const table of ['conversation_leases', 'conversation_items', 'conversations'])
      db.exec(`DROP TABLE ${table}`);
    db.close();

    const store = await opened(path);
    assert.equal(
      inspect<{ user_version: number }>(path, 'PRAGMA user_version').user_version,
      MIGRATIONS.length,
    );
    assert.deepEqual(await store.loadChain(chain[1].id), chain);
    const conversation = newConversation();
    await store.createConversation(conversation, []);
    assert.deepEqual(await store.getConversation(conversation.id), conversation);
    await store.close();
  });

  it('finds the conversation rows of a deleted item through an index', async () => {
    const path = freshPath();
    const store = await opened(path);
    await store.close();
    const db = new DatabaseSync(path, { readOnly: true });
    const plan = db
      .prepare(
        `EXPLAIN QUERY PLAN UPDATE conversation_items SET data = 'x'
          WHERE response_id = 'r' AND direction = 'input' AND item_position = 0`,
      )
      .all() as { detail: string }[];
    db.close();
    assert.match(plan.map((row) => row.detail).join('\n'), /USING INDEX conversation_items_source/);
  });

  it('writes a turn atomically: a failing item leaves nothing behind', async () => {
    const store = await opened(freshPath());
    const bad = { type: 'message', role: 'user', status: 'completed', content: [] } as unknown as Item; // no id
    const turn = newTurn({ input: [userMessage('fine'), bad] });
    await assert.rejects(store.beginTurn(turn));
    assert.equal(await store.getResponse(turn.id), null);
    // The connection is still usable and the id is free.
    await store.beginTurn({ ...turn, input: [userMessage('fine')] });
    assert.notEqual(await store.getResponse(turn.id), null);
    await store.close();
  });

  it('applies the default TTL to responses stored without an expiry', async () => {
    const store = await opened(':memory:', 60);
    const plain = newTurn({ createdAt: 2_000_000_000 });
    const explicit = newTurn({ createdAt: 2_000_000_000, expiresAt: 2_000_000_005 });
    await store.beginTurn(plain);
    await store.beginTurn(explicit);
    assert.equal((await store.getResponse(plain.id))?.expiresAt, 2_000_000_060);
    assert.equal((await store.getResponse(explicit.id))?.expiresAt, 2_000_000_005);
    assert.equal(await store.pruneExpired(2_000_000_060), 2);
    await store.close();
  });

  it('fails clearly when used before open() or after close()', async () => {
    const store = new SqliteStore({ path: ':memory:', ttlSeconds: null });
    await assert.rejects(store.ping(), /not open/);
    await store.open();
    await store.ping();
    await store.close();
    await assert.rejects(store.getResponse('resp_x'), /not open/);
  });
});
