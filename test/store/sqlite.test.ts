// SqliteStore specifics beyond the shared contract: persistence across restarts, migrations,
// pragmas, and the storage layout (each item stored once).

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import type { Item } from '../../src/protocol/types.ts';
import { MIGRATIONS, SqliteStore } from '../../src/store/sqlite.ts';
import type { ExportRecord, StoredConversation, StoredResponse } from '../../src/store/types.ts';
import { ChainBrokenError, DEFAULT_TENANT } from '../../src/store/types.ts';
import {
  assistantMessage,
  completed,
  defaultParams,
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

/** A database at schema version `version`, as an older Parley left it; the caller closes it. */
function legacyDatabase(path: string, version: number): DatabaseSync {
  mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path, { enableForeignKeyConstraints: true });
  for (let step = 0; step < version; step++) db.exec(MIGRATIONS[step]);
  db.exec(`PRAGMA user_version = ${version}`);
  return db;
}

/**
 * Conversation rows pointing at `turn`'s items, as the schema before migration step 4 kept them,
 * from `position` on; returns the next free position.
 */
function insertLegacyConversationRefs(db: DatabaseSync, conversationId: string, turn: StoredResponse, position: number): number {
  const insert = db.prepare(
    `INSERT INTO conversation_items (conversation_id, position, item_id, response_id, direction, item_position)
     VALUES (?, ?, ?, ?, ?, ?)`,
  );
  for (const [direction, items] of [
    ['input', turn.input],
    ['output', turn.output],
  ] as const) {
    items.forEach((item: Item, i: number) => {
      insert.run(conversationId, position++, item.id, turn.id, direction, i);
    });
  }
  return position;
}

/** Writes a response and its items with the first schema's columns. */
function insertLegacyResponse(db: DatabaseSync, response: StoredResponse): void {
  db.prepare(
    `INSERT INTO responses (id, previous_response_id, conversation_id, model, status, created_at, completed_at,
       expires_at, params, usage, error, incomplete_details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    response.id,
    response.previousResponseId,
    response.conversationId,
    response.model,
    response.status,
    response.createdAt,
    response.completedAt,
    response.expiresAt,
    JSON.stringify(response.params),
    response.usage === null ? null : JSON.stringify(response.usage),
    response.error === null ? null : JSON.stringify(response.error),
    response.incompleteDetails === null ? null : JSON.stringify(response.incompleteDetails),
  );
  for (const [direction, items] of [
    ['input', response.input],
    ['output', response.output],
  ] as const) {
    items.forEach((item: Item, position: number) => {
      db.prepare(
        'INSERT INTO items (response_id, direction, position, item_id, type, data) VALUES (?, ?, ?, ?, ?, ?)',
      ).run(response.id, direction, position, item.id, item.type, JSON.stringify(item));
    });
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

  it('stores usage compactly and items without their id (the id has its own column)', async () => {
    const path = freshPath();
    const store = await opened(path);
    const conversation = newConversation({ itemCount: 1 });
    await store.createConversation(conversation, [userMessage('initial')]);
    const turn = newTurn({ conversationId: conversation.id, input: [userMessage('q')] });
    await store.beginTurn(turn);
    const result = completed([assistantMessage('a')]);
    await store.finishTurn(turn.id, result);
    const usage = inspect<{ usage: string }>(path, 'SELECT usage FROM responses').usage;
    assert.ok(Array.isArray(JSON.parse(usage)), usage);
    const withId = (sql: string) => inspect<{ n: number }>(path, sql).n;
    assert.equal(withId(`SELECT count(*) AS n FROM items WHERE json_type(data, '$.id') IS NOT NULL`), 0);
    assert.equal(
      withId(`SELECT count(*) AS n FROM conversation_items WHERE json_type(data, '$.id') IS NOT NULL`),
      0,
    );
    const items = await store.loadConversationItems(conversation.id);
    assert.deepEqual(items, [userMessage('initial', items![0].id), ...turn.input, ...result.output]);
    // Each item comes back with its id where it was built (right after `type`), as JSON too.
    assert.equal(JSON.stringify((await store.getResponse(turn.id))?.output), JSON.stringify(result.output));
    assert.deepEqual(await store.getResponse(turn.id), finished(turn, result));
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
    const db = legacyDatabase(path, 1);
    const root = newTurn({ params: { ...defaultParams(), user: 'alice' } });
    const child = newTurn({ previousResponseId: root.id, input: [userMessage('q1'), userMessage('q1b')] });
    const chain = [root, child].map((turn) => finished(turn, completed([assistantMessage(`to ${turn.id}`)])));
    for (const turn of chain) insertLegacyResponse(db, turn);
    db.close();

    const store = await opened(path);
    assert.equal(
      inspect<{ user_version: number }>(path, 'PRAGMA user_version').user_version,
      MIGRATIONS.length,
    );
    // Rows from before tenants: the default tenant, and the user the request named.
    assert.deepEqual(await store.loadChain(child.id), [{ ...chain[0], user: 'alice' }, chain[1]]);
    const conversation = newConversation();
    await store.createConversation(conversation, []);
    assert.deepEqual(await store.getConversation(conversation.id), conversation);
    assert.deepEqual(await store.deleteUserData(DEFAULT_TENANT, 'alice'), { responses: 1, conversations: 0 });
    await store.close();
  });

  it('upgrades a version-2 database: default tenant, users from requests, totals from the turns', async () => {
    const path = freshPath();
    const db = legacyDatabase(path, 2);
    const createdAt = 1_750_000_000;
    db.prepare(
      `INSERT INTO conversations (id, created_at, user, metadata, item_count, expires_at)
       VALUES ('conv_old', ?, 'bob', '{"k":"v"}', 5, NULL)`,
    ).run(createdAt);
    db.prepare(
      `INSERT INTO conversation_items (conversation_id, position, item_id, data) VALUES ('conv_old', 0, 'msg_first', ?)`,
    ).run(JSON.stringify(userMessage('first', 'msg_first')));
    const usage = (input: number, output: number) => ({
      ...completed([]).usage!,
      input_tokens: input,
      output_tokens: output,
      total_tokens: input + output,
    });
    const turns = [
      finished(newTurn({ conversationId: 'conv_old', params: { ...defaultParams(), user: 'bob' } }), {
        ...completed([assistantMessage('a1')]),
        usage: usage(10, 5),
      }),
      finished(newTurn({ conversationId: 'conv_old' }), {
        ...completed([assistantMessage('a2')]),
        status: 'incomplete',
        usage: usage(20, 7),
      }),
      finished(newTurn({ conversationId: 'conv_old' }), {
        ...completed([]),
        status: 'failed',
        usage: usage(1000, 1000),
        error: { code: 'x', message: 'y' },
      }),
    ];
    for (const turn of turns) insertLegacyResponse(db, turn);
    let position = 1;
    for (const turn of turns.slice(0, 2)) position = insertLegacyConversationRefs(db, 'conv_old', turn, position);
    db.exec('PRAGMA user_version = 2');
    db.close();

    const store = await opened(path);
    const expected: StoredConversation = {
      id: 'conv_old',
      tenant: DEFAULT_TENANT,
      createdAt,
      metadata: { k: 'v' },
      user: 'bob',
      itemCount: 5,
      expiresAt: null,
      usage: { input_tokens: 30, output_tokens: 12, total_tokens: 42, cost_usd: 0, turns: 2 },
      updatedAt: createdAt,
    };
    assert.deepEqual(await store.getConversation('conv_old'), expected);
    assert.deepEqual(
      await store.listConversations({ tenant: DEFAULT_TENANT, user: 'bob', limit: 10, order: 'asc' }),
      { conversations: [expected], hasMore: false },
    );
    assert.equal((await store.loadConversationItems('conv_old'))?.length, 5);
    assert.equal((await store.getResponse(turns[0].id))?.user, 'bob');
    assert.equal((await store.getResponse(turns[1].id))?.user, null);
    assert.equal((await store.getResponse(turns[1].id))?.tenant, DEFAULT_TENANT);
    assert.deepEqual(await store.deleteUserData(DEFAULT_TENANT, 'bob'), { responses: 1, conversations: 1 });
    await store.close();
  });

  it('upgrades a version-3 database to integer item keys, keeping chains, conversations and export', async () => {
    const path = freshPath();
    const db = legacyDatabase(path, 3);
    const conversationId = 'conv_v3';
    db.prepare(
      `INSERT INTO conversations (id, created_at, user, metadata, item_count, expires_at, tenant, updated_at)
       VALUES (?, 1750000000, NULL, '{}', 0, NULL, 'default', 1750000000)`,
    ).run(conversationId);
    const initial = userMessage('initial');
    db.prepare(
      `INSERT INTO conversation_items (conversation_id, position, item_id, data) VALUES (?, 0, ?, ?)`,
    ).run(conversationId, initial.id, JSON.stringify(initial));
    // Three conversation turns, then a chain off the last one; the usage objects and item data
    // with ids inside are the forms written before.
    const turns: StoredResponse[] = [];
    let previous: string | null = null;
    for (let i = 0; i < 5; i++) {
      const turn = newTurn({
        previousResponseId: previous,
        conversationId: i < 3 ? conversationId : null,
        input: [userMessage(`q${i}`), userMessage(`q${i}b`)],
      });
      turns.push(finished(turn, completed([assistantMessage(`a${i}`)])));
      previous = turn.id;
    }
    const pending = newTurn({ previousResponseId: previous, conversationId, input: [userMessage('later')] });
    let position = 1;
    for (const turn of [...turns, pending]) {
      insertLegacyResponse(db, turn);
      if (turn.conversationId === null || turn.status !== 'completed') continue;
      position = insertLegacyConversationRefs(db, conversationId, turn, position);
    }
    db.prepare('UPDATE conversations SET item_count = ?, turns = 3 WHERE id = ?').run(position, conversationId);
    // A response deleted before the upgrade: its items were copied into the conversation rows.
    db.prepare('DELETE FROM responses WHERE id = ?').run(turns[0].id);
    db.close();
    const conversationItems = [initial, ...turns.slice(0, 3).flatMap((turn) => [...turn.input, ...turn.output])];

    const store = await opened(path);
    assert.equal(inspect<{ user_version: number }>(path, 'PRAGMA user_version').user_version, MIGRATIONS.length);
    assert.equal(inspect<{ integrity_check: string }>(path, 'PRAGMA integrity_check').integrity_check, 'ok');
    assert.equal(inspect<{ n: number }>(path, 'SELECT count(*) AS n FROM pragma_foreign_key_check').n, 0);
    assert.equal(
      inspect<{ n: number }>(path, `SELECT count(*) AS n FROM conversation_items WHERE data IS NULL`).n,
      6,
      'rows pointing at the remaining turns stay pointers',
    );
    const live = turns.slice(1);
    await assert.rejects(store.loadChain(turns[4].id), ChainBrokenError);
    assert.deepEqual(await store.getResponse(turns[4].id), turns[4]);
    assert.deepEqual(await store.getResponse(pending.id), pending);
    assert.deepEqual(await store.listInputItems(turns[2].id, { limit: 1, order: 'asc', after: turns[2].input[0].id }), {
      items: [turns[2].input[1]],
      hasMore: false,
    });
    assert.deepEqual(await store.loadConversationItems(conversationId), conversationItems);
    assert.equal((await store.getConversationItem(conversationId, turns[1].output[0].id))?.id, turns[1].output[0].id);

    // Export keeps the order of the rows written before (their refs are their old rowids).
    const records: ExportRecord[] = [];
    for await (const record of store.exportRecords({})) records.push(record);
    assert.deepEqual(
      records.map((record) => (record.type === 'response' ? record.response.id : record.conversation.id)),
      [...live.map((turn) => turn.id), pending.id, conversationId],
    );
    assert.deepEqual(records.at(-1), {
      type: 'conversation',
      conversation: await store.getConversation(conversationId),
      items: conversationItems,
    });

    // The turn begun before the upgrade finishes after it, and joins its conversation by reference.
    const result = completed([assistantMessage('after upgrade')]);
    await store.finishTurn(pending.id, result);
    assert.deepEqual(await store.loadConversationItems(conversationId), [
      ...conversationItems,
      ...pending.input,
      ...result.output,
    ]);
    // Deleting an old response still copies its items (old form) into the conversation.
    await store.deleteResponse(turns[1].id);
    assert.deepEqual((await store.loadConversationItems(conversationId))?.slice(0, conversationItems.length), conversationItems);
    // New turns continue an old chain.
    const next = newTurn({ previousResponseId: turns[4].id, input: [userMessage('new')] });
    await store.beginTurn(next);
    assert.deepEqual((await store.getResponse(next.id))?.input, next.input);

    // The new layout: an integer key on responses, one integer key per item (no other column
    // besides its id and data), and no index on items.
    const columns = (table: string) =>
      inspect<{ names: string }>(path, `SELECT group_concat(name) AS names FROM pragma_table_info('${table}')`).names;
    assert.match(columns('responses'), /^ref,id,/);
    assert.equal(columns('items'), 'key,item_id,data');
    assert.equal(
      inspect<{ n: number }>(path, `SELECT count(*) AS n FROM sqlite_master WHERE type = 'index' AND tbl_name = 'items'`).n,
      0,
    );
    await store.close();
  });

  it('forks by copy: the fork keeps its items whatever happens to the source', async () => {
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
    const target = newConversation();
    assert.equal((await store.forkConversation(conversation.id, turns[2].input[0].id, target))?.itemCount, 6);
    // Rows point only at their own conversation's turns (see migration step 6): the fork's six
    // rows hold their items, the source's six turn rows still point.
    assert.equal(count('SELECT count(*) AS n FROM conversation_items WHERE data IS NOT NULL'), 1 + 6);
    assert.equal(count('SELECT count(*) AS n FROM conversation_items WHERE item_key IS NOT NULL'), 6);
    const forked = await store.loadConversationItems(target.id);
    for (const turn of turns) await store.deleteResponse(turn.id);
    await store.deleteConversation(conversation.id);
    assert.deepEqual(await store.loadConversationItems(target.id), forked);
    await store.close();
  });

  it('upgrades a version-5 database to lean conversation rows, copying the rows that may not point', async () => {
    const path = freshPath();
    const db = legacyDatabase(path, 3);
    const createdAt = 1_750_000_000;
    for (const id of ['conv_a', 'conv_b']) {
      db.prepare(
        `INSERT INTO conversations (id, created_at, user, metadata, item_count, expires_at, tenant, updated_at)
         VALUES (?, ?, NULL, '{}', 0, NULL, 'default', ?)`,
      ).run(id, createdAt, createdAt);
    }
    const initial = userMessage('initial');
    db.prepare(`INSERT INTO conversation_items (conversation_id, position, item_id, data) VALUES ('conv_a', 0, ?, ?)`).run(
      initial.id,
      JSON.stringify(initial),
    );
    const turns = [0, 1, 2, 3].map((i) =>
      finished(
        newTurn({ conversationId: i < 3 ? 'conv_a' : null, input: [userMessage(`q${i}`)] }),
        completed([assistantMessage(`a${i}`)]),
      ),
    );
    let position = 1;
    for (const turn of turns) {
      insertLegacyResponse(db, turn);
      if (turn.conversationId !== null) position = insertLegacyConversationRefs(db, 'conv_a', turn, position);
    }
    db.exec(MIGRATIONS[3]);
    db.exec(MIGRATIONS[4]);
    db.exec('PRAGMA user_version = 5');
    // What version 5 allowed: a turn item removed from the conversation (position 3), a turn item
    // appended again (position 7), and a fork (conv_b) whose rows point at conv_a's turns.
    db.prepare(`DELETE FROM conversation_items WHERE conversation_id = 'conv_a' AND position = 3`).run();
    db.prepare(
      `INSERT INTO conversation_items (conversation_id, position, item_id, item_key)
       SELECT 'conv_a', 7, item_id, item_key FROM conversation_items WHERE conversation_id = 'conv_a' AND position = 2`,
    ).run();
    db.prepare(
      `INSERT INTO conversation_items (conversation_id, position, item_id, item_key, data)
       SELECT 'conv_b', position, item_id, item_key, data FROM conversation_items
        WHERE conversation_id = 'conv_a' AND position <= 2`,
    ).run();
    db.prepare(`UPDATE conversations SET item_count = CASE id WHEN 'conv_a' THEN 8 ELSE 3 END`).run();
    db.close();
    const [t1, t2, t3] = turns;
    const expectedA = [initial, ...t1.input, ...t1.output, ...t2.output, ...t3.input, ...t3.output, ...t1.output];
    const expectedB = [initial, ...t1.input, ...t1.output];

    const store = await opened(path);
    const count = (sql: string) => inspect<{ n: number }>(path, sql).n;
    assert.equal(inspect<{ user_version: number }>(path, 'PRAGMA user_version').user_version, MIGRATIONS.length);
    assert.equal(inspect<{ integrity_check: string }>(path, 'PRAGMA integrity_check').integrity_check, 'ok');
    assert.equal(count('SELECT count(*) AS n FROM pragma_foreign_key_check'), 0);
    assert.deepEqual(await store.loadConversationItems('conv_a'), expectedA);
    assert.deepEqual(await store.loadConversationItems('conv_b'), expectedB);
    // conv_a's own turn rows (positions 1, 2, 4, 5, 6) still point; the repeat and the fork's rows are copies.
    assert.equal(
      inspect<{ positions: string }>(
        path,
        `SELECT group_concat(position) AS positions FROM (SELECT position FROM conversation_items
          WHERE item_key IS NOT NULL ORDER BY conversation_ref, position)`,
      ).positions,
      '1,2,4,5,6',
    );
    assert.equal(
      inspect<{ positions: string }>(
        path,
        `SELECT group_concat(coalesce(conversation_position, '-')) AS positions FROM (SELECT conversation_position FROM responses ORDER BY ref)`,
      ).positions,
      '1,4,5,-',
    );
    // Conversations keep their order (ties on created_at broken by the old rowid, now ref).
    const listed = await store.listConversations({ tenant: DEFAULT_TENANT, limit: 10, order: 'asc' });
    assert.deepEqual(
      listed.conversations.map((c) => c.id),
      ['conv_a', 'conv_b'],
    );
    // Deleting every response and then the source conversation takes nothing out of the others.
    for (const turn of turns) assert.equal(await store.deleteResponse(turn.id), true);
    assert.equal(count('SELECT count(*) AS n FROM items'), 0);
    assert.deepEqual(await store.loadConversationItems('conv_a'), expectedA);
    await store.deleteConversation('conv_a');
    assert.deepEqual(await store.loadConversationItems('conv_b'), expectedB);

    // The new layout: conversations keyed by ref; conversation rows WITHOUT ROWID, with no index
    // besides their primary key.
    const columns = (table: string) =>
      inspect<{ names: string }>(path, `SELECT group_concat(name) AS names FROM pragma_table_info('${table}')`).names;
    assert.match(columns('conversations'), /^ref,id,/);
    assert.equal(columns('conversation_items'), 'conversation_ref,position,item_key,item_id,data');
    assert.equal(count(`SELECT count(*) AS n FROM pragma_index_list('conversation_items') WHERE origin != 'pk'`), 0);
    await store.close();
  });

  it('imports conversation items as pointers to the imported turn items', async () => {
    const sourcePath = freshPath();
    const source = await opened(sourcePath);
    const conversation = newConversation({ itemCount: 1 });
    await source.createConversation(conversation, [userMessage('initial')]);
    for (let i = 0; i < 3; i++) {
      const turn = newTurn({ conversationId: conversation.id, input: [userMessage(`q${i}`)] });
      await source.beginTurn(turn);
      await source.finishTurn(turn.id, completed([assistantMessage(`a${i}`)]));
    }
    // A turn elsewhere with an item identical to the conversation's own: not a pointer target.
    const [initial, firstQuestion] = (await source.loadConversationItems(conversation.id))!;
    await source.beginTurn(newTurn({ input: [initial] }));
    // A turn item appended again: outside its response's run of positions, so it is copied.
    await source.appendConversationItems(conversation.id, [firstQuestion]);
    const records: ExportRecord[] = [];
    for await (const record of source.exportRecords({})) records.push(record);
    await source.close();

    const path = freshPath();
    const store = await opened(path);
    assert.deepEqual(await store.importRecords(records), { responses: 4, conversations: 1, skipped: 0 });
    const count = (sql: string) => inspect<{ n: number }>(path, sql).n;
    assert.equal(count('SELECT count(*) AS n FROM items'), 7);
    assert.equal(count('SELECT count(*) AS n FROM conversation_items'), 8);
    assert.equal(count('SELECT count(*) AS n FROM conversation_items WHERE data IS NOT NULL'), 2);
    const expected = records.at(-1) as Extract<ExportRecord, { type: 'conversation' }>;
    assert.deepEqual(await store.getConversation(conversation.id), expected.conversation);
    assert.deepEqual(await store.loadConversationItems(conversation.id), expected.items);
    // Every pointer is found when its response goes: the conversation loses nothing.
    for (const record of records) if (record.type === 'response') await store.deleteResponse(record.response.id);
    assert.equal(count('SELECT count(*) AS n FROM items'), 0);
    assert.deepEqual(await store.loadConversationItems(conversation.id), expected.items);
    await store.close();
  });

  it('answers failStaleTurns, deleteUserData and tenant listing through indexes', async () => {
    const path = freshPath();
    await (await opened(path)).close();
    const db = new DatabaseSync(path, { readOnly: true });
    const plan = (sql: string) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((row) => row.detail).join('\n');
    assert.match(
      plan(`UPDATE responses SET status = 'failed' WHERE status IN ('queued', 'in_progress') AND created_at < 5`),
      /USING (COVERING )?INDEX responses_unfinished/,
    );
    assert.match(plan(`DELETE FROM responses WHERE tenant = 't' AND user = 'u'`), /USING (COVERING )?INDEX responses_tenant_user/);
    assert.match(
      plan(`DELETE FROM conversations WHERE tenant = 't' AND user = 'u'`),
      /USING (COVERING )?INDEX conversations_tenant_user/,
    );
    assert.match(
      plan(`SELECT id FROM conversations WHERE tenant = 't' ORDER BY created_at DESC, rowid DESC LIMIT 5`),
      /USING (COVERING )?INDEX conversations_tenant\b/,
    );
    // A conversation's responses (import), through the index on the id's last characters.
    assert.match(
      plan(`SELECT ref FROM responses r WHERE substr(r.conversation_id, -12) = substr('conv_x', -12) AND r.conversation_id = 'conv_x'`),
      /USING INDEX responses_conversation_tail/,
    );
    db.close();
  });

  it("finds the conversation rows of a deleted response's items through the primary key", async () => {
    const path = freshPath();
    const store = await opened(path);
    await store.close();
    const db = new DatabaseSync(path, { readOnly: true });
    // The shape of the trigger's update (responses_delete_items): one conversation, a run of positions.
    const plan = db
      .prepare(
        `EXPLAIN QUERY PLAN UPDATE conversation_items SET data = 'x'
          WHERE conversation_ref = (SELECT ref FROM conversations WHERE id = 'c') AND position >= 3
            AND position < 3 + (SELECT count(*) FROM items WHERE key BETWEEN 0 AND 33554431)
            AND item_key BETWEEN 0 AND 33554431`,
      )
      .all() as { detail: string }[];
    db.close();
    assert.match(
      plan.map((row) => row.detail).join('\n'),
      /SEARCH conversation_items USING PRIMARY KEY \(conversation_ref=\? AND position>\? AND position<\?\)/,
    );
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

  it('commits turn writes made together in one transaction, failing only the write that failed', async () => {
    const path = freshPath();
    const store = await opened(path);
    const walBytes = (file: string) => statSync(`${file}-wal`).size;
    const walAtOpen = walBytes(path);
    const turns = Array.from({ length: 5 }, (_, i) => newTurn({ input: [userMessage(`q${i}`)] }));
    const [first] = turns;
    // Issued in one turn of the event loop, as concurrent requests under load do; one repeats an
    // id, one finishes a response that does not exist.
    const writes = await Promise.allSettled([
      ...turns.map((turn) => store.beginTurn(turn)),
      store.beginTurn({ ...first, input: [userMessage('again')] }),
      store.finishTurn('resp_missing', completed([assistantMessage('x')])),
    ]);
    assert.deepEqual(
      writes.map((w) => w.status),
      ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected'],
    );
    assert.match(String((writes[5] as PromiseRejectedResult).reason), /already exists/);
    assert.match(String((writes[6] as PromiseRejectedResult).reason), /does not exist/);
    // Every write that succeeded is there, as written; the failed ones left nothing behind.
    for (const turn of turns) assert.deepEqual((await store.getResponse(turn.id))?.input, turn.input);
    // One commit for all of them: the WAL holds each page they touched once, where five commits
    // (the same writes awaited one by one, in a second file) write the shared pages five times.
    const oneByOne = freshPath();
    const sequential = await opened(oneByOne);
    const sequentialAtOpen = walBytes(oneByOne);
    for (const turn of turns) await sequential.beginTurn({ ...turn, input: [userMessage('q')] });
    const together = walBytes(path) - walAtOpen;
    const apart = walBytes(oneByOne) - sequentialAtOpen;
    assert.ok(together * 2 < apart, `${together} vs ${apart} WAL bytes`);
    await sequential.close();
    // Finishing them together works the same way.
    await Promise.all(turns.map((turn) => store.finishTurn(turn.id, completed([assistantMessage('a')]))));
    for (const turn of turns) assert.equal((await store.getResponse(turn.id))?.status, 'completed');
    await store.close();
  });

  it('writes what was passed when the write was made, and commits queued writes on close', async () => {
    const path = freshPath();
    const store = await opened(path);
    const turn = newTurn({ input: [userMessage('as sent')] });
    const begun = store.beginTurn(turn);
    // The caller's objects change after the call (the engine keeps building its state): the
    // stored row is what was handed over.
    (turn.input[0] as { content: { text: string }[] }).content[0].text = 'changed later';
    await store.close(); // before the queued write's turn of the event loop came
    await begun;
    const reopened = await opened(path);
    const stored = await reopened.getResponse(turn.id);
    assert.ok(stored);
    assert.equal((stored.input[0] as { content: { text: string }[] }).content[0].text, 'as sent');
    await reopened.close();
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
