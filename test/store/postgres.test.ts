// PostgresStore specifics beyond the shared contract: migrations (once under concurrency, the
// hand-applied SQL file, least-privilege roles), connection strings (encoded passwords, sslmode,
// search_path, poolers), startup errors that say what to fix and never show the password, round
// trips per operation, payload encoding (NUL, unicode, 1 MB), races, and recovery from an outage.
// One throwaway server (with TLS) for the whole file; a fresh database per test where it matters.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inspect } from 'node:util';
import pg from 'pg';
import { migrateCommand } from '../../src/cli/migrate.ts';
import type { Item } from '../../src/protocol/types.ts';
import { createParley } from '../../src/index.ts';
import { newId as parleyId } from '../../src/protocol/ids.ts';
import { encodeItemData, encodeParams, encodeUsage } from '../../src/store/codec.ts';
import { createStore } from '../../src/store/index.ts';
import { PostgresStore, PostgresStoreError } from '../../src/store/postgres.ts';
import { PipelinedConnections } from '../../src/store/postgres-pipeline.ts';
import {
  MIGRATIONS,
  MIGRATIONS_TABLE_SQL,
  recordMigrationSql,
  SCHEMA_VERSION,
  schemaSql,
} from '../../src/store/postgres-migrations.ts';
import {
  ChainBrokenError,
  DEFAULT_TENANT,
  type StoredResponse,
  type TurnResult,
} from '../../src/store/types.ts';
import { startFakeUpstream } from '../fake-upstream/server.ts';
import { findPostgresBin, type PostgresServer, startPostgres } from '../helpers/postgres-server.ts';
import { apiErrorOf, messagesOf } from '../library/helpers.ts';
import {
  assistantMessage,
  collectExport,
  completed,
  defaultParams,
  finished,
  newConversation,
  newId,
  newTurn,
  userMessage,
} from '../store-contract/suite.ts';

let server: PostgresServer;
let scratch: string;
const open: PostgresStore[] = [];

before(async () => {
  server = await startPostgres({ ssl: true });
  scratch = await mkdtemp(join(tmpdir(), 'parley-pg-test-'));
});

after(async () => {
  await Promise.all(open.map((store) => store.close().catch(() => {})));
  await server?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** A new empty database on the server; returns a superuser URL for it. */
async function freshDatabase(params?: Record<string, string>): Promise<{ db: string; url: string }> {
  const db = await server.createDatabase('t');
  return { db, url: server.url({ database: db, ...(params ? { params } : {}) }) };
}

/** A new database with the schema as Parley left it at `version`, recorded as applied. */
async function databaseAtVersion(version: number): Promise<{ db: string; url: string }> {
  const fresh = await freshDatabase();
  const steps = MIGRATIONS.filter((m) => m.version <= version);
  await server.query(
    [MIGRATIONS_TABLE_SQL, ...steps.flatMap((m) => [m.sql, recordMigrationSql(m)])].join('\n'),
    undefined,
    fresh.db,
  );
  return fresh;
}

function newStore(
  connectionString: string,
  extra: Partial<ConstructorParameters<typeof PostgresStore>[0]> = {},
) {
  const store = new PostgresStore({ connectionString, poolSize: 5, ttlSeconds: null, ...extra });
  open.push(store);
  return store;
}

async function opened(
  connectionString: string,
  extra: Parameters<typeof newStore>[1] = {},
): Promise<PostgresStore> {
  const store = newStore(connectionString, extra);
  await store.open();
  return store;
}

/** A node-postgres Client that records every query it sends: one entry per round trip. */
function recordingClient(log: { name: string | undefined; text: string }[]): typeof pg.Client {
  return class RecordingClient extends pg.Client {
    // biome-ignore lint/suspicious/noExplicitAny: forwards every overload of query()
    override query(...args: any[]): any {
      const first = args[0] as string | { name?: string; text: string };
      log.push(
        typeof first === 'string' ? { name: undefined, text: first } : { name: first.name, text: first.text },
      );
      // biome-ignore lint/suspicious/noExplicitAny: see above
      return (super.query as (...a: any[]) => any)(...args);
    }
  };
}

/** The error must not show the password anywhere a log could pick it up. */
function assertNoSecret(error: unknown, ...secrets: string[]): void {
  const views = [
    String((error as Error).message),
    String((error as Error).stack),
    inspect(error, { depth: 10, showHidden: true }),
    JSON.stringify(error),
  ];
  for (const secret of secrets) {
    for (const candidate of [secret, encodeURIComponent(secret)]) {
      for (const view of views) assert.ok(!view.includes(candidate), `secret leaked into: ${view}`);
    }
  }
}

async function openError(connectionString: string): Promise<PostgresStoreError> {
  const store = newStore(connectionString);
  try {
    await store.open();
  } catch (error) {
    assert.ok(error instanceof PostgresStoreError, `expected a PostgresStoreError, got ${inspect(error)}`);
    return error;
  }
  assert.fail('open() should have failed');
}

let roleCounter = 0;
/** A login role with a URL-special password; returns its name and password. */
async function createRole(
  grants: (role: string) => string[] = () => [],
): Promise<{ role: string; password: string }> {
  const role = `role_${process.pid}_${++roleCounter}`;
  const password = `r0le p@ss:w/rd%${roleCounter}`;
  await server.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
  for (const sql of grants(role)) await server.query(sql);
  return { role, password };
}

async function storeChain(store: PostgresStore, length: number): Promise<StoredResponse[]> {
  const chain: StoredResponse[] = [];
  let previous: string | null = null;
  for (let i = 0; i < length; i++) {
    const turn = newTurn({ previousResponseId: previous, input: [userMessage(`q${i}`)] });
    await store.beginTurn(turn);
    const result = completed([assistantMessage(`a${i}`)]);
    await store.finishTurn(turn.id, result);
    chain.push(finished(turn, result));
    previous = turn.id;
  }
  return chain;
}

/**
 * A response row as schema versions 2 to 5 lay it out (the parent id as text); returns its seq.
 * `compact`: params and usage in codec's encodings, as written from version 4 on; else plain JSON.
 */
async function insertLegacyResponse(
  db: string,
  turn: StoredResponse,
  result: TurnResult | null,
  { compact }: { compact: boolean },
): Promise<string> {
  const usage = result?.usage ?? null;
  const res = await server.query<{ seq: string }>(
    `INSERT INTO responses (id, previous_response_id, conversation_id, model, status, created_at, completed_at,
                            params, usage, tenant)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq`,
    [
      turn.id,
      turn.previousResponseId,
      turn.conversationId,
      turn.model,
      result?.status ?? turn.status,
      turn.createdAt,
      result?.completedAt ?? null,
      compact ? encodeParams(turn.params) : JSON.stringify(turn.params),
      usage === null ? null : compact ? encodeUsage(usage) : JSON.stringify(usage),
      turn.tenant,
    ],
    db,
  );
  return res.rows[0].seq;
}

/** The user triggers of a database, with their definitions. */
async function triggers(db: string): Promise<unknown> {
  const res = await server.query(
    `SELECT tgrelid::regclass::text AS tbl, tgname, pg_get_triggerdef(oid) AS def
       FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2`,
    [],
    db,
  );
  return res.rows;
}

/** A catalog snapshot to compare two schemas: columns, constraints and indexes. */
async function catalog(db: string): Promise<unknown> {
  const columns = await server.query(
    `SELECT table_name, column_name, data_type, is_nullable, column_default, is_identity
       FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`,
    [],
    db,
  );
  const constraints = await server.query(
    `SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def
       FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2`,
    [],
    db,
  );
  const indexes = await server.query(
    `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname`,
    [],
    db,
  );
  return { columns: columns.rows, constraints: constraints.rows, indexes: indexes.rows };
}

describe('the throwaway test server', () => {
  it('fails loudly with the install hint when the server binaries are missing (CI must not skip)', () => {
    assert.throws(
      () => findPostgresBin(['/nonexistent/postgresql'], '/nonexistent/bin', undefined),
      /PostgreSQL server binaries \(initdb, postgres\) were not found.*apt-get install postgresql/,
    );
    assert.match(findPostgresBin(), /bin$/);
  });
});

describe('PostgresStore: migrations', () => {
  it('ten instances opening a fresh database at once migrate it exactly once', async () => {
    const { db, url } = await freshDatabase();
    const stores = Array.from({ length: 10 }, () => newStore(url, { poolSize: 2 }));
    const results = await Promise.all(stores.map((store) => store.migrate()));
    const migrated = results.filter((r) => r.applied.length > 0);
    assert.equal(migrated.length, 1, 'exactly one instance applies the migrations');
    assert.deepEqual(
      migrated[0].applied,
      MIGRATIONS.map((m) => m.version),
    );
    for (const r of results) {
      assert.equal(r.to, SCHEMA_VERSION);
      assert.equal(r.schema, 'public');
    }
    const rows = await server.query('SELECT version FROM parley_schema_migrations ORDER BY version', [], db);
    assert.deepEqual(
      rows.rows.map((r) => r.version),
      MIGRATIONS.map((m) => m.version),
    );
    // Every instance works on the one schema.
    const turn = newTurn();
    await stores[3].beginTurn(turn);
    assert.deepEqual(await stores[8].getResponse(turn.id), turn);
    await Promise.all(stores.map((store) => store.close()));
  });

  it('finds a current schema on reopen and refuses one newer than itself', async () => {
    const { db, url } = await freshDatabase();
    const first = newStore(url);
    assert.equal((await first.migrate()).from, 0);
    await first.close();
    const again = newStore(url);
    assert.deepEqual(await again.migrate(), {
      from: SCHEMA_VERSION,
      to: SCHEMA_VERSION,
      applied: [],
      schema: 'public',
    });
    await again.close();
    await server.query(
      `INSERT INTO parley_schema_migrations (version, description) VALUES (${SCHEMA_VERSION + 1}, 'from the future')`,
      [],
      db,
    );
    const error = await openError(url);
    assert.ok(
      error.message.includes(
        `version ${SCHEMA_VERSION + 1}, newer than this Parley (${SCHEMA_VERSION}). Upgrade Parley`,
      ),
      error.message,
    );
  });

  it('upgrades a version 1 database in place: tenants, users and conversation totals from the rows there', async () => {
    const { db, url } = await databaseAtVersion(1);
    const params = (user: string | null, instructions = 'be brief') =>
      JSON.stringify({ ...defaultParams(), user, instructions });
    const usage = JSON.stringify({ input_tokens: 10, output_tokens: 5, total_tokens: 15 });
    const insert = `INSERT INTO responses (id, previous_response_id, conversation_id, model, status, created_at, params, usage)
                    VALUES ($1, $2, $3, 'openai/gpt-4o', $4, 1000, $5, $6)`;
    await server.query(insert, ['resp_a', null, 'conv_1', 'completed', params('alice'), usage], db);
    await server.query(
      insert,
      ['resp_b', 'resp_a', 'conv_1', 'incomplete', params('back\\slash', 'nul \u0000 here'), usage],
      db,
    );
    await server.query(insert, ['resp_c', null, 'conv_1', 'failed', params('alice'), usage], db);
    await server.query(insert, ['resp_d', null, null, 'completed', params('nul\u0000user'), null], db);
    const question = JSON.stringify(userMessage('q', 'msg_q'));
    await server.query(
      `INSERT INTO items (response_id, direction, position, item_id, data) VALUES ('resp_a', 'input', 0, 'msg_q', $1)`,
      [question],
      db,
    );
    await server.query(
      `INSERT INTO conversations (id, created_at, metadata, item_count) VALUES ('conv_1', 900, '{"k": "v"}', 1)`,
      [],
      db,
    );
    await server.query(
      `INSERT INTO conversation_items (conversation_id, position, item_id, response_id, direction, item_position)
       VALUES ('conv_1', 0, 'msg_q', 'resp_a', 'input', 0)`,
      [],
      db,
    );

    const store = newStore(url);
    assert.deepEqual(
      (await store.migrate()).applied,
      MIGRATIONS.slice(1).map((m) => m.version),
    );
    const a = await store.getResponse('resp_a');
    assert.equal(a?.tenant, DEFAULT_TENANT);
    assert.equal(a?.user, 'alice');
    assert.deepEqual(a?.input, [JSON.parse(question)]);
    assert.equal((await store.getResponse('resp_b'))?.user, 'back\\slash');
    assert.equal((await store.getResponse('resp_b'))?.params.instructions, 'nul \u0000 here');
    assert.equal((await store.getResponse('resp_d'))?.user, null, 'a user holding NUL is not guessed');
    assert.deepEqual(await store.getConversation('conv_1'), {
      id: 'conv_1',
      tenant: DEFAULT_TENANT,
      createdAt: 900,
      metadata: { k: 'v' },
      user: null,
      itemCount: 1,
      expiresAt: null,
      usage: { input_tokens: 20, output_tokens: 10, total_tokens: 30, cost_usd: 0, turns: 2 },
      updatedAt: 900,
    });
    assert.deepEqual(
      (await collectExport(store)).map((r) => (r.type === 'response' ? r.response.id : r.conversation.id)),
      ['resp_a', 'resp_b', 'resp_c', 'resp_d', 'conv_1'],
      'rows written before the upgrade export in their order',
    );
    assert.deepEqual(await store.deleteUserData(DEFAULT_TENANT, 'alice'), { responses: 2, conversations: 0 });
    assert.deepEqual(
      await store.loadConversationItems('conv_1'),
      [JSON.parse(question)],
      'the conversation kept its item',
    );
    await store.close();
  });

  it('upgrades a version 3 database in place: item rows refer to responses by seq; older JSON still reads', async () => {
    const { db, url } = await databaseAtVersion(3);
    // Rows as version 3 wrote them: usage objects, item JSON holding its id, text references.
    const conversation = newConversation({ itemCount: 5, updatedAt: 1000 });
    const root = newTurn({ conversationId: conversation.id, input: [userMessage('q1')] });
    const rootResult = completed([assistantMessage('a1')]);
    const child = newTurn({
      conversationId: conversation.id,
      previousResponseId: root.id,
      input: [userMessage('q2')],
    });
    const childResult = completed([assistantMessage('a2'), assistantMessage('a2b')]);
    const unfinished = newTurn({ conversationId: conversation.id, previousResponseId: child.id });
    const insertItems = async (turn: StoredResponse, direction: string, items: Item[]) => {
      for (const [position, item] of items.entries()) {
        await server.query(
          'INSERT INTO items (response_id, direction, position, item_id, data) VALUES ($1, $2, $3, $4, $5)',
          [turn.id, direction, position, item.id, JSON.stringify(item)],
          db,
        );
      }
    };
    for (const [turn, result] of [
      [root, rootResult],
      [child, childResult],
      [unfinished, null],
    ] as const) {
      await insertLegacyResponse(db, turn, result, { compact: false });
      await insertItems(turn, 'input', turn.input);
      if (result) await insertItems(turn, 'output', result.output);
    }
    const own = userMessage('added directly');
    await server.query(
      `INSERT INTO conversations (id, created_at, metadata, item_count, updated_at) VALUES ($1, $2, '{}', 5, 1000)`,
      [conversation.id, conversation.createdAt],
      db,
    );
    const entries: [string, string | null, string | null, number | null, string | null][] = [
      [own.id, null, null, null, JSON.stringify(own)],
      [root.input[0].id, root.id, 'input', 0, null],
      [rootResult.output[0].id, root.id, 'output', 0, null],
      [child.input[0].id, child.id, 'input', 0, null],
      [childResult.output[1].id, child.id, 'output', 1, null],
    ];
    for (const [position, [itemId, responseId, direction, itemPosition, data]] of entries.entries()) {
      await server.query(
        `INSERT INTO conversation_items (conversation_id, position, item_id, response_id, direction, item_position, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [conversation.id, position, itemId, responseId, direction, itemPosition, data],
        db,
      );
    }

    const store = newStore(url);
    assert.deepEqual(
      (await store.migrate()).applied,
      MIGRATIONS.slice(3).map((m) => m.version),
    );
    const rootDone = finished(root, rootResult);
    const childDone = finished(child, childResult);
    assert.deepEqual(await store.loadChain(unfinished.id), [rootDone, childDone, unfinished]);
    assert.deepEqual(await store.listInputItems(child.id, { limit: 10, order: 'asc' }), {
      items: child.input,
      hasMore: false,
    });
    const conversationItems = [
      own,
      root.input[0],
      rootResult.output[0],
      child.input[0],
      childResult.output[1],
    ];
    assert.deepEqual(await store.loadConversationItems(conversation.id), conversationItems);
    assert.deepEqual(
      await store.getConversationItem(conversation.id, childResult.output[1].id),
      childResult.output[1],
    );
    assert.deepEqual(
      (await collectExport(store)).map((r) => (r.type === 'response' ? r.response : r.items)),
      [rootDone, childDone, unfinished, conversationItems],
    );
    // The unfinished turn finishes into its conversation; a response written before the upgrade
    // still hands its items to the conversation when deleted.
    const lastResult = completed([assistantMessage('a3')]);
    await store.finishTurn(unfinished.id, lastResult);
    assert.equal(await store.deleteResponse(root.id), true);
    assert.deepEqual(await store.loadConversationItems(conversation.id), [
      ...conversationItems,
      ...unfinished.input,
      ...lastResult.output,
    ]);
    assert.equal(await store.deleteResponse(child.id), true);
    assert.equal(await store.deleteResponse(unfinished.id), true);
    assert.equal((await store.loadConversationItems(conversation.id))?.length, 7, 'every item was kept');
    await store.close();
  });

  it('upgrades a version 4 database in place: unfinished turns get slots, parent ids their compact form', async () => {
    const { db, url } = await databaseAtVersion(4);
    // Rows as version 4 wrote them: Parley's own ids (a parent stored as 53 characters of text),
    // ids in other forms, turns finished, stale, still running and queued.
    const now = Math.floor(Date.now() / 1000);
    const conversation = newConversation({ itemCount: 2, updatedAt: now });
    const root = newTurn({
      id: parleyId('resp'),
      conversationId: conversation.id,
      input: [userMessage('q1')],
    });
    const rootResult = completed([assistantMessage('a1')]);
    const child = newTurn({ id: parleyId('resp'), previousResponseId: root.id, input: [userMessage('q2')] });
    const childResult = completed([assistantMessage('a2')]);
    const stale = newTurn({ id: parleyId('resp'), previousResponseId: child.id, createdAt: now - 3600 });
    const queued = newTurn({ id: parleyId('resp'), previousResponseId: child.id, status: 'queued' });
    const upper = `resp_${'AB'.repeat(24)}`;
    const odd = newTurn({ id: 'resp_odd', previousResponseId: upper });
    const oddResult = completed([assistantMessage('a3')]);
    const rows: [StoredResponse, TurnResult | null][] = [
      [root, rootResult],
      [child, childResult],
      [stale, null],
      [queued, null],
      [odd, oddResult],
    ];
    for (const [turn, result] of rows) {
      const seq = await insertLegacyResponse(db, turn, result, { compact: true });
      const items = [
        ...turn.input.map((item) => [0, item] as const),
        ...(result?.output ?? []).map((item) => [1, item] as const),
      ];
      for (const [n, [direction, item]] of items.entries()) {
        await server.query(
          'INSERT INTO items (response_seq, direction, position, item_id, data) VALUES ($1, $2, $3, $4, $5)',
          [seq, direction, direction === 0 ? n : n - turn.input.length, item.id, encodeItemData(item)],
          db,
        );
      }
    }
    await server.query(
      `INSERT INTO conversations (id, created_at, metadata, item_count, updated_at) VALUES ($1, $2, '{}', 2, $2)`,
      [conversation.id, conversation.createdAt],
      db,
    );
    await server.query(
      `INSERT INTO conversation_items (conversation_id, position, item_id, response_seq, direction, item_position)
       SELECT $1, i.direction, i.item_id, i.response_seq, i.direction, i.position
         FROM items i JOIN responses r ON r.seq = i.response_seq WHERE r.id = $2`,
      [conversation.id, root.id],
      db,
    );
    // Inserts rolled back move the identity past the last row: seq must not go back after the copy.
    const { rows: skipped } = await server.query<{ n: string }>(
      `SELECT max(nextval(pg_get_serial_sequence('responses', 'seq'))) AS n FROM generate_series(1, 5)`,
      [],
      db,
    );

    const store = newStore(url);
    assert.deepEqual(
      (await store.migrate()).applied,
      MIGRATIONS.filter((m) => m.version > 4).map((m) => m.version),
    );
    const fresh = await freshDatabase();
    await (await opened(fresh.url)).close();
    assert.deepEqual(
      await catalog(db),
      await catalog(fresh.db),
      'the upgraded schema is the one a fresh install gets',
    );
    assert.deepEqual(await triggers(db), await triggers(fresh.db));

    const rootDone = finished(root, rootResult);
    const childDone = finished(child, childResult);
    assert.deepEqual(await store.loadChain(stale.id), [rootDone, childDone, stale]);
    assert.deepEqual(await store.getResponse(odd.id), finished(odd, oddResult));
    await assert.rejects(store.loadChain(odd.id), (error: unknown) => {
      assert.ok(error instanceof ChainBrokenError);
      assert.match(error.message, new RegExp(upper));
      return true;
    });
    const stored = await server.query<{ id: string; bytes: number | null; text: string | null }>(
      `SELECT id, octet_length(previous_response_bytes) AS bytes, previous_response_text AS text FROM responses
        WHERE previous_response_bytes IS NOT NULL OR previous_response_text IS NOT NULL ORDER BY seq`,
      [],
      db,
    );
    assert.deepEqual(stored.rows, [
      { id: child.id, bytes: 24, text: null },
      { id: stale.id, bytes: 24, text: null },
      { id: queued.id, bytes: 24, text: null },
      { id: odd.id, bytes: null, text: upper },
    ]);
    const busy = async () =>
      (
        await server.query<{ id: string }>(
          'SELECT r.id FROM unfinished_turn_slots s JOIN responses r ON r.seq = s.response_seq ORDER BY r.seq',
          [],
          db,
        )
      ).rows.map((row) => row.id);
    assert.deepEqual(await busy(), [stale.id, queued.id], 'each unfinished turn holds a slot');

    // The stale turn is failed through its slot; the queued one finishes and gives its slot back.
    assert.equal(await store.failStaleTurns(now - 60), 1);
    assert.equal((await store.getResponse(stale.id))?.status, 'failed');
    assert.deepEqual(await busy(), [queued.id]);
    const queuedResult = completed([assistantMessage('a4')]);
    await store.finishTurn(queued.id, queuedResult);
    assert.deepEqual(await busy(), []);

    // New turns continue old chains, with seq past every value handed out before the upgrade.
    const next = newTurn({ id: parleyId('resp'), previousResponseId: queued.id });
    await store.beginTurn(next);
    const nextResult = completed([assistantMessage('a5')]);
    await store.finishTurn(next.id, nextResult);
    const { rows: seqs } = await server.query<{ seq: string }>(
      'SELECT seq FROM responses WHERE id = $1',
      [next.id],
      db,
    );
    assert.ok(Number(seqs[0].seq) > Number(skipped[0].n), `seq ${seqs[0].seq} after ${skipped[0].n}`);
    assert.deepEqual(await store.loadChain(next.id), [
      rootDone,
      childDone,
      finished(queued, queuedResult),
      finished(next, nextResult),
    ]);
    assert.deepEqual(
      (await collectExport(store)).map((r) => (r.type === 'response' ? r.response.id : r.conversation.id)),
      [root.id, child.id, stale.id, queued.id, odd.id, next.id, conversation.id],
    );

    // The change counter's triggers are on the new table; items still go with their response, and
    // the conversation keeps the ones it points at.
    const token = await store.changeToken();
    assert.equal(await store.deleteResponse(root.id), true);
    assert.notEqual(await store.changeToken(), token);
    assert.deepEqual(await store.loadConversationItems(conversation.id), [
      ...root.input,
      ...rootResult.output,
    ]);
    const { rows: left } = await server.query<{ n: number }>(
      'SELECT count(*)::integer AS n FROM items i WHERE NOT EXISTS (SELECT FROM responses r WHERE r.seq = i.response_seq)',
      [],
      db,
    );
    assert.equal(left[0].n, 0);
    await store.close();
  });

  it('src/store/postgres-schema.sql is generated from the migrations', async () => {
    const file = await readFile(new URL('../../src/store/postgres-schema.sql', import.meta.url), 'utf8');
    assert.equal(
      file,
      schemaSql(),
      'postgres-schema.sql is stale: run `node src/store/postgres-migrations.ts > src/store/postgres-schema.sql`',
    );
  });

  it('the SQL file builds the schema the migrations build; a role with only DML grants then runs on it', async () => {
    const migrated = await freshDatabase();
    await (await opened(migrated.url)).close();
    const byHand = await freshDatabase();
    const sql = await readFile(new URL('../../src/store/postgres-schema.sql', import.meta.url), 'utf8');
    await server.query(sql, undefined, byHand.db);
    assert.deepEqual(await catalog(byHand.db), await catalog(migrated.db));

    // The gateway's role: no CREATE anywhere, just what the file's header says to grant.
    const { role, password } = await createRole((r) => [`GRANT CONNECT ON DATABASE ${byHand.db} TO ${r}`]);
    await server.query(`GRANT USAGE ON SCHEMA public TO ${role}`, [], byHand.db);
    await server.query(
      `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`,
      [],
      byHand.db,
    );
    const store = newStore(server.url({ database: byHand.db, user: role, password }));
    assert.deepEqual((await store.migrate()).applied, []);
    // Exercise every table, the identity column and the foreign keys.
    const conversation = newConversation({ user: 'u' });
    await store.createConversation(conversation, [userMessage('hi')]);
    const turn = newTurn({ conversationId: conversation.id, expiresAt: 1 });
    await store.beginTurn(turn);
    await store.finishTurn(turn.id, completed([assistantMessage('a')]));
    assert.equal((await store.loadConversationItems(conversation.id))?.length, 3);
    assert.equal(await store.acquireConversationLease(conversation.id, 'h', 1000), true);
    assert.equal(await store.pruneExpired(Math.floor(Date.now() / 1000)), 1);
    assert.equal((await store.loadConversationItems(conversation.id))?.length, 3, 'pruning kept the items');
    assert.equal(await store.deleteConversation(conversation.id), true);
    await store.close();
  });

  it('`parley migrate --config FILE` migrates, then finds nothing to do', async () => {
    const { db } = await freshDatabase();
    const config = join(scratch, `migrate-${db}.yaml`);
    await writeFile(
      config,
      `state_storage:\n  type: postgres\n  connection_string: "postgresql://parley:$PARLEY_TEST_PG_PASSWORD@${server.host}:${server.port}/${db}"\n`,
    );
    const env = { PARLEY_TEST_PG_PASSWORD: encodeURIComponent(server.password) };
    const run = async () => {
      let out = '';
      let err = '';
      const code = await migrateCommand({
        configPath: config,
        env,
        stdout: { write: (s: string) => (out += s) },
        stderr: { write: (s: string) => (err += s) },
      });
      return { code, out, err };
    };
    const first = await run();
    assert.equal(first.code, 0, first.err);
    const all = MIGRATIONS.map((m) => m.version).join(', ');
    assert.ok(
      first.out.includes(
        `applied migration${MIGRATIONS.length > 1 ? 's' : ''} ${all}; schema is now version ${SCHEMA_VERSION} (was 0)`,
      ),
      first.out,
    );
    assert.ok(!first.out.includes(server.password) && !first.out.includes(env.PARLEY_TEST_PG_PASSWORD));
    const second = await run();
    assert.equal(second.code, 0, second.err);
    assert.ok(
      second.out.includes(`schema is current (version ${SCHEMA_VERSION}); nothing to do`),
      second.out,
    );

    // A failure is one readable line on stderr, without the password.
    await writeFile(
      config,
      `state_storage:\n  type: postgres\n  connection_string: "postgresql://parley:wrong%40secret@${server.host}:${server.port}/${db}"\n`,
    );
    const failed = await run();
    assert.equal(failed.code, 1);
    assert.match(failed.err, /^parley migrate failed: PostgreSQL rejected the password for role "parley"/);
    assert.ok(!failed.err.includes('wrong@secret') && !failed.err.includes('wrong%40secret'), failed.err);
  });

  it('upgrades conversation entries to the lean layout, copying those that may no longer point', async () => {
    const { db, url } = await databaseAtVersion(5);
    const createdAt = 1_750_000_000;
    for (const id of ['conv_a', 'conv_b']) {
      await server.query(
        `INSERT INTO conversations (id, created_at, metadata, item_count, updated_at) VALUES ($1, $2, '{}', 0, $2)`,
        [id, createdAt],
        db,
      );
    }
    const initial = userMessage('initial');
    await server.query(
      `INSERT INTO conversation_items (conversation_id, position, item_id, data) VALUES ('conv_a', 0, $1, $2)`,
      [initial.id, encodeItemData(initial)],
      db,
    );
    // Three turns of conv_a, each pointed at from the next positions, and one outside it.
    const turns = [0, 1, 2, 3].map((i) => {
      const turn = newTurn({ conversationId: i < 3 ? 'conv_a' : null, input: [userMessage(`q${i}`)] });
      return [turn, completed([assistantMessage(`a${i}`)])] as const;
    });
    let position = 1;
    for (const [turn, result] of turns) {
      const seq = await insertLegacyResponse(db, turn, result, { compact: true });
      for (const [direction, item] of [
        [0, turn.input[0]],
        [1, result.output[0]],
      ] as const) {
        await server.query(
          'INSERT INTO items (response_seq, direction, position, item_id, data) VALUES ($1, $2, 0, $3, $4)',
          [seq, direction, item.id, encodeItemData(item)],
          db,
        );
        if (turn.conversationId === null) continue;
        await server.query(
          `INSERT INTO conversation_items (conversation_id, position, item_id, response_seq, direction, item_position)
           VALUES ('conv_a', $1, $2, $3, $4, 0)`,
          [position++, item.id, seq, direction],
          db,
        );
      }
    }
    // What version 6 allowed: a turn item removed from the conversation (position 3), a turn item
    // appended again (position 7), and a fork (conv_b) whose entries point at conv_a's turns.
    await server.query(`DELETE FROM conversation_items WHERE conversation_id = 'conv_a' AND position = 3`, [], db);
    await server.query(
      `INSERT INTO conversation_items (conversation_id, position, item_id, response_seq, direction, item_position)
       SELECT 'conv_a', 7, item_id, response_seq, direction, item_position FROM conversation_items
        WHERE conversation_id = 'conv_a' AND position = 2`,
      [],
      db,
    );
    await server.query(
      `INSERT INTO conversation_items (conversation_id, position, item_id, response_seq, direction, item_position, data)
       SELECT 'conv_b', position, item_id, response_seq, direction, item_position, data FROM conversation_items
        WHERE conversation_id = 'conv_a' AND position <= 2`,
      [],
      db,
    );
    await server.query(`UPDATE conversations SET item_count = CASE id WHEN 'conv_a' THEN 8 ELSE 3 END`, [], db);
    const [[t1, r1], [, r2], [t3, r3]] = turns;
    const expectedA = [initial, ...t1.input, ...r1.output, ...r2.output, ...t3.input, ...r3.output, ...r1.output];
    const expectedB = [initial, ...t1.input, ...r1.output];

    const store = newStore(url);
    assert.deepEqual(
      (await store.migrate()).applied,
      MIGRATIONS.filter((m) => m.version > 5).map((m) => m.version),
    );
    const fresh = await freshDatabase();
    await (await opened(fresh.url)).close();
    assert.deepEqual(await catalog(db), await catalog(fresh.db), 'the upgraded schema is the one a fresh install gets');
    assert.deepEqual(await triggers(db), await triggers(fresh.db));
    assert.deepEqual(await store.loadConversationItems('conv_a'), expectedA);
    assert.deepEqual(await store.loadConversationItems('conv_b'), expectedB);
    const column = async (sql: string) => (await server.query<{ v: string }>(sql, [], db)).rows.map((row) => row.v);
    // conv_a's own turn entries (positions 1, 2, 4, 5, 6) still point; the repeat and the fork's are copies.
    assert.deepEqual(
      await column(
        `SELECT ci.position::text AS v FROM conversation_items ci WHERE ci.response_seq IS NOT NULL
          ORDER BY ci.conversation_seq, ci.position`,
      ),
      ['1', '2', '4', '5', '6'],
    );
    assert.deepEqual(
      await column(`SELECT coalesce(conversation_position::text, '-') AS v FROM responses ORDER BY seq`),
      ['1', '4', '5', '-'],
    );
    // Deleting every response, then the source conversation, takes nothing out of the others.
    for (const [turn] of turns) assert.equal(await store.deleteResponse(turn.id), true);
    assert.deepEqual(await column('SELECT count(*)::text AS v FROM items'), ['0']);
    assert.deepEqual(await store.loadConversationItems('conv_a'), expectedA);
    assert.equal(await store.deleteConversation('conv_a'), true);
    assert.deepEqual(await store.loadConversationItems('conv_b'), expectedB);
    await store.close();
  });
});

describe('PostgresStore: connection strings', () => {
  it('reads a URL-encoded password with every special character; the description holds no secret', async () => {
    const { db, url } = await freshDatabase();
    assert.match(url, /p%40ss%3Aw%2Frd%25/);
    const store = await opened(url);
    assert.equal(store.description, `postgres (parley@${server.host}:${server.port}/${db})`);
    await store.ping();
    await store.close();
  });

  it('takes the password from PGPASSWORD when the URL has none (no encoding needed)', async () => {
    const { db } = await freshDatabase();
    const saved = process.env.PGPASSWORD;
    process.env.PGPASSWORD = server.password;
    try {
      const store = await opened(`postgresql://parley@${server.host}:${server.port}/${db}`);
      await store.ping();
      await store.close();
    } finally {
      if (saved === undefined) delete process.env.PGPASSWORD;
      else process.env.PGPASSWORD = saved;
    }
  });

  it('is what createStore builds for state_storage.type postgres', async () => {
    const { url } = await freshDatabase();
    const store = await createStore({
      type: 'postgres',
      connection_string: url,
      pool_size: 3,
      ttl_seconds: 60,
    });
    assert.ok(store instanceof PostgresStore);
    await store.open();
    const turn = newTurn({ createdAt: 2_000_000_000 });
    await store.beginTurn(turn);
    assert.equal(
      (await store.getResponse(turn.id))?.expiresAt,
      2_000_000_060,
      'ttl_seconds is the default expiry',
    );
    await store.close();
  });

  it('names its connections parley and creates its tables in the schema options=-c search_path picks', async () => {
    const { db } = await freshDatabase();
    await server.query('CREATE SCHEMA gateway', [], db);
    const store = await opened(server.url({ database: db, params: { options: '-c search_path=gateway' } }));
    const found = await server.query(
      `SELECT to_regclass('gateway.responses') IS NOT NULL AS in_schema, to_regclass('public.responses') IS NOT NULL AS in_public`,
      [],
      db,
    );
    assert.deepEqual(found.rows[0], { in_schema: true, in_public: false });
    const names = await server.query(
      // (the test's own admin connection to the database has no name)
      `SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = $1 AND application_name <> ''`,
      [db],
    );
    assert.deepEqual(
      names.rows.map((r) => r.application_name),
      ['parley'],
    );
    await store.close();
  });

  /** Whether the store's connections (tagged by application_name) use TLS. */
  async function usesTls(tag: string): Promise<boolean[]> {
    const rows = await server.query(
      `SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1`,
      [tag],
    );
    return rows.rows.map((r) => r.ssl as boolean);
  }

  async function setServerTls(on: boolean): Promise<void> {
    await server.query(`ALTER SYSTEM SET ssl = ${on ? 'on' : 'off'}`);
    await server.query('SELECT pg_reload_conf()');
    // New connections see the reloaded setting once the postmaster has processed it.
    for (let i = 0; i < 100; i++) {
      const fresh = new pg.Client({ connectionString: server.url() });
      await fresh.connect();
      const shown = (await fresh.query('SHOW ssl')).rows[0].ssl;
      await fresh.end();
      if (shown === (on ? 'on' : 'off')) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.fail('the server did not reload its ssl setting');
  }

  it('gives sslmode its libpq meaning', async () => {
    const { db } = await freshDatabase();
    const url = (sslmode: string, extra: Record<string, string> = {}) =>
      server.url({ database: db, params: { sslmode, application_name: `tls-${sslmode}`, ...extra } });

    // require: encrypted, not verified (the certificate is self-signed).
    const required = await opened(url('require'));
    assert.deepEqual(await usesTls('tls-require'), [true]);
    await required.close();

    const disabled = await opened(url('disable'));
    assert.deepEqual(await usesTls('tls-disable'), [false]);
    await disabled.close();

    // verify-full checks the chain: a self-signed certificate is refused, with the fix named.
    const unverified = await openError(url('verify-full'));
    assert.match(unverified.message, /could not be verified \(DEPTH_ZERO_SELF_SIGNED_CERT\).*sslrootcert=/s);
    assertNoSecret(unverified, server.password);

    // verify-ca with the certificate as root: verified, host name not checked.
    assert.ok(server.certificate);
    const verified = await opened(url('verify-ca', { sslrootcert: server.certificate }));
    assert.deepEqual(await usesTls('tls-verify-ca'), [true]);
    await verified.close();

    assert.throws(() => newStore(url('verify-ca')), /sslmode=verify-ca needs sslrootcert/);

    // prefer: TLS when the server offers it, plain TCP when it does not; require then fails clearly.
    const preferred = await opened(url('prefer'));
    assert.deepEqual(await usesTls('tls-prefer'), [true]);
    await preferred.close();
    await setServerTls(false);
    try {
      const fallback = await opened(url('prefer', { application_name: 'tls-prefer-plain' }));
      assert.deepEqual(await usesTls('tls-prefer-plain'), [false]);
      await fallback.close();
      const refused = await openError(url('require', { application_name: 'tls-require-plain' }));
      assert.match(refused.message, /does not accept TLS connections/);
    } finally {
      await setServerTls(true);
    }
  });

  it('pgbouncer=true sends unnamed statements (transaction-mode poolers); named by default', async () => {
    const { url } = await freshDatabase();
    const named: { name: string | undefined; text: string }[] = [];
    const a = await opened(url, { Client: recordingClient(named) });
    named.length = 0;
    await a.getResponse(newId('resp'));
    assert.equal(named.length, 1);
    assert.equal(named[0].name, 'parley_chain');
    await a.close();

    const unnamed: { name: string | undefined; text: string }[] = [];
    const b = await opened(`${url}?pgbouncer=true`, { Client: recordingClient(unnamed) });
    unnamed.length = 0;
    const turn = newTurn();
    await b.beginTurn(turn);
    assert.deepEqual(await b.getResponse(turn.id), turn);
    assert.equal(unnamed.length, 2);
    assert.ok(unnamed.every((q) => q.name === undefined));
    await b.close();
  });

  it('rejects a URL it cannot read without repeating it', () => {
    for (const bad of [
      'mysql://parley:hunter2secret@localhost/parley',
      'postgresql://parley:hunter2secret@[::1/parley',
      'not a url hunter2secret',
    ]) {
      assert.throws(
        () => new PostgresStore({ connectionString: bad, poolSize: 1, ttlSeconds: null }),
        (error: unknown) => {
          assert.ok(error instanceof PostgresStoreError);
          assert.match(error.message, /connection_string/);
          assertNoSecret(error, 'hunter2secret');
          return true;
        },
      );
    }
  });
});

describe('PostgresStore: startup errors say what to fix and never show the password', () => {
  it('unreachable: connection refused', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const p = (probe.address() as { port: number }).port;
        probe.close(() => resolve(p));
      });
    });
    const error = await openError(`postgresql://parley:s3cret%40pw@127.0.0.1:${port}/parley`);
    assert.match(
      error.message,
      new RegExp(`Cannot connect to PostgreSQL at 127\\.0\\.0\\.1:${port}: connection refused`),
    );
    assert.equal(error.code, 'ECONNREFUSED');
    assertNoSecret(error, 's3cret@pw');
  });

  it('unreachable: unknown host', async () => {
    const error = await openError('postgresql://parley:s3cret%40pw@no-such-host.invalid:5432/parley');
    assert.match(error.message, /host "no-such-host\.invalid" was not found/);
    assertNoSecret(error, 's3cret@pw');
  });

  it('unreachable: no answer within connect_timeout', async () => {
    // Accepts TCP and never speaks: what a black-holed proxy looks like.
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      const started = Date.now();
      const error = await openError(
        `postgresql://parley:s3cret%40pw@127.0.0.1:${port}/parley?connect_timeout=1`,
      );
      assert.match(error.message, /no answer within 1s/);
      assert.ok(Date.now() - started < 5000);
      assertNoSecret(error, 's3cret@pw');
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  it('bad password', async () => {
    const { db } = await freshDatabase();
    const wrong = 'not-the-p@ssword:/%';
    const error = await openError(server.url({ database: db, password: wrong }));
    assert.match(error.message, /PostgreSQL rejected the password for role "parley" at 127\.0\.0\.1:\d+\//);
    assert.match(error.message, /URL-encode/);
    assert.equal(error.code, '28P01');
    assertNoSecret(error, wrong, server.password);
  });

  it('missing database', async () => {
    const error = await openError(server.url({ database: 'no_such_db' }));
    assert.match(error.message, /Database "no_such_db" does not exist/);
    assert.match(error.message, /CREATE DATABASE no_such_db OWNER parley;/);
    assertNoSecret(error, server.password);
  });

  it('no CREATE on the schema: names the GRANT, which then works', async () => {
    const { db } = await freshDatabase();
    // PostgreSQL 15+: only the database owner may create in public.
    const { role, password } = await createRole();
    const url = server.url({ database: db, user: role, password });
    const error = await openError(url);
    assert.match(
      error.message,
      new RegExp(`role "${role}" has no CREATE privilege on schema "public" of database "${db}"`),
    );
    assert.ok(error.message.includes(`GRANT CREATE ON SCHEMA public TO ${role};`), error.message);
    assertNoSecret(error, password, server.password);
    await server.query(`GRANT CREATE ON SCHEMA public TO ${role}`, [], db);
    const store = await opened(url);
    await store.ping();
    await store.close();
  });

  it('no privileges on existing tables: names the GRANTs, which then work', async () => {
    const { db, url: ownerUrl } = await freshDatabase();
    await (await opened(ownerUrl)).close();
    const { role, password } = await createRole();
    const url = server.url({ database: db, user: role, password });
    const error = await openError(url);
    assert.match(error.message, new RegExp(`Role "${role}" may not read and write Parley's tables`));
    assert.ok(
      error.message.includes(
        `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role};`,
      ),
      error.message,
    );
    assertNoSecret(error, password, server.password);
    await server.query(`GRANT USAGE ON SCHEMA public TO ${role}`, [], db);
    await server.query(
      `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`,
      [],
      db,
    );
    const store = await opened(url);
    const turn = newTurn();
    await store.beginTurn(turn);
    assert.deepEqual(await store.getResponse(turn.id), turn);
    await store.close();
  });

  it('a search_path naming no existing schema', async () => {
    const { db } = await freshDatabase();
    const error = await openError(
      server.url({ database: db, params: { options: '-c search_path=nowhere' } }),
    );
    assert.match(error.message, /No usable schema for Parley's tables: search_path is "nowhere"/);
    assert.match(error.message, /GRANT USAGE, CREATE ON SCHEMA nowhere TO parley;/);
  });
});

describe('PostgresStore: round trips', () => {
  it('one per operation; a 1,000-turn chain loads in one', async () => {
    const { url } = await freshDatabase();
    const log: { name: string | undefined; text: string }[] = [];
    const store = await opened(url, { Client: recordingClient(log) });
    const count = async (work: () => Promise<unknown>) => {
      log.length = 0;
      await work();
      return log.length;
    };

    log.length = 0;
    const chain = await storeChain(store, 1000);
    assert.equal(log.length, 2000, 'beginTurn and finishTurn: one round trip each');
    let loaded: StoredResponse[] | null = null;
    assert.equal(
      await count(async () => {
        loaded = await store.loadChain(chain[999].id);
      }),
      1,
    );
    assert.deepEqual(loaded, chain);
    assert.equal(await count(() => store.getResponse(chain[500].id)), 1);
    assert.equal(await count(() => store.listInputItems(chain[10].id, { limit: 5, order: 'desc' })), 1);

    const conversation = newConversation();
    assert.equal(
      await count(() => store.createConversation(conversation, [userMessage('a'), userMessage('b')])),
      1,
    );
    assert.equal(await count(() => store.appendConversationItems(conversation.id, [userMessage('c')])), 1);
    const turn = newTurn({ conversationId: conversation.id });
    assert.equal(await count(() => store.beginTurn(turn)), 1);
    assert.equal(
      await count(() =>
        store.saveProgress(turn.id, { status: 'in_progress', output: [assistantMessage('par')] }),
      ),
      1,
    );
    assert.equal(
      await count(() => store.finishTurn(turn.id, completed([assistantMessage('done')]))),
      1,
      'finish + append',
    );
    assert.equal(await count(() => store.loadConversationItems(conversation.id)), 1);
    assert.equal(
      await count(() => store.listConversationItems(conversation.id, { limit: 2, order: 'asc', after: 'x' })),
      1,
    );
    assert.equal(await count(() => store.getConversationItem(conversation.id, turn.input[0].id)), 1);
    assert.equal(await count(() => store.getConversation(conversation.id)), 1);
    assert.equal(await count(() => store.updateConversation(conversation.id, { metadata: { a: 'b' } })), 1);
    assert.equal(
      await count(() =>
        store.listConversations({ tenant: DEFAULT_TENANT, metadata: { a: 'b' }, limit: 10, order: 'desc' }),
      ),
      1,
    );
    assert.equal(await count(() => store.acquireConversationLease(conversation.id, 'me', 1000)), 1);
    assert.equal(await count(() => store.renewConversationLease(conversation.id, 'me', 1000)), 1);
    assert.equal(await count(() => store.releaseConversationLease(conversation.id, 'me')), 1);
    assert.equal(await count(() => store.deleteConversationItem(conversation.id, turn.input[0].id)), 1);
    assert.equal(await count(() => store.deleteResponse(turn.id)), 1);
    assert.equal(await count(() => store.deleteConversation(conversation.id)), 1);
    assert.equal(await count(() => store.ping()), 1);
    assert.equal(await count(() => store.changeToken()), 1);

    const other = newConversation({ user: 'u' });
    await store.createConversation(other, [userMessage('x'), userMessage('y')]);
    assert.equal(await count(() => store.mergeConversationMetadata(other.id, { a: '1', b: null })), 1);
    const forkTarget = newConversation();
    const firstItem = (await store.loadConversationItems(other.id))![0];
    assert.equal(await count(() => store.forkConversation(other.id, firstItem.id, forkTarget)), 1);
    assert.equal(await count(() => store.failStaleTurns(0)), 1);
    assert.equal(await count(() => store.deleteUserData(DEFAULT_TENANT, 'u')), 1);
    // Export: batches of 200 responses, then batches of 200 conversations with their items, each
    // one round trip (plus one to find each list's end).
    assert.equal(await count(() => collectExport(store)), Math.ceil(1000 / 200) + 1 + 2 + 1);
    await store.close();
  });
});

describe('PostgresStore: change token (in-process chain and conversation caches)', () => {
  it('moves on every deletion or change of a stored response or conversation item by another instance, not on turns', async () => {
    const { db, url } = await freshDatabase();
    const a = await opened(url, { ttlSeconds: 3600 });
    const b = await opened(url); // another gateway process on the same database
    assert.equal(a.defaultTtlSeconds, 3600);
    assert.equal(b.defaultTtlSeconds, null);
    let token = await a.changeToken();
    assert.equal(await b.changeToken(), token, 'every instance reads the same token');
    const moves = async (what: string, work: () => Promise<unknown>, expected: boolean) => {
      await work();
      const next = await a.changeToken();
      assert.equal(next !== token, expected, `${what} ${expected ? 'moves' : 'keeps'} the token`);
      token = next;
    };
    const now = Math.floor(Date.now() / 1000);

    // What every turn does, on either instance, leaves cached chains alone.
    const chain = await storeChain(b, 3);
    const conversation = newConversation({ user: 'carol' });
    const unfinished = newTurn({ conversationId: conversation.id, user: 'carol' });
    await moves(
      'recording, progressing and finishing turns, and conversation writes',
      async () => {
        await b.createConversation(conversation, [userMessage('hi')]);
        await b.beginTurn(unfinished);
        await b.saveProgress(unfinished.id, { status: 'in_progress', output: [assistantMessage('par')] });
        const turn = newTurn({ conversationId: conversation.id, previousResponseId: chain[2].id });
        await b.beginTurn(turn);
        await b.finishTurn(turn.id, completed([assistantMessage('a')]));
        await b.appendConversationItems(conversation.id, [userMessage('more')]);
        await b.importRecords([{ type: 'response', response: chain[0] }]); // skipped: never overwrites
      },
      false,
    );
    await moves(
      'an item leaving a conversation',
      async () => b.deleteConversationItem(conversation.id, (await b.loadConversationItems(conversation.id))![0].id),
      true,
    );
    const other = newConversation();
    await b.createConversation(other, [userMessage('x')]);
    await moves('a conversation deleted with its items', () => b.deleteConversation(other.id), true);
    await moves('pruning that finds nothing', () => b.pruneExpired(now), false);
    await moves('failStaleTurns that finds nothing', () => b.failStaleTurns(0), false);
    await moves('deleteResponse of an unknown id', () => b.deleteResponse('resp_unknown'), false);

    await moves('deleteResponse', () => b.deleteResponse(chain[1].id), true);
    await moves('failStaleTurns', () => b.failStaleTurns(now + 10), true);
    assert.equal((await a.getResponse(unfinished.id))?.status, 'failed');
    await b.beginTurn(newTurn({ expiresAt: now + 1 }));
    await moves('pruning an expired response', () => b.pruneExpired(now + 1), true);
    await moves('deleteUserData', () => b.deleteUserData(DEFAULT_TENANT, 'carol'), true);
    await moves(
      'a finished response changed by hand',
      () => server.query(`UPDATE responses SET status = 'cancelled' WHERE id = $1`, [chain[2].id], db),
      true,
    );
    await moves(
      'responses truncated by hand',
      () => server.query('TRUNCATE responses CASCADE', [], db),
      true,
    );

    // Without its row nothing can be trusted: never the same token twice.
    await server.query('DELETE FROM parley_changes', [], db);
    assert.notEqual(await a.changeToken(), await a.changeToken());
    await Promise.all([a.close(), b.close()]);
  });

  it('moves in the transaction that deletes: a reader sees the old token with the old rows, or the new with the new', async () => {
    const { db, url } = await freshDatabase();
    const store = await opened(url);
    const chain = await storeChain(store, 2);
    const before = await store.changeToken();
    const deleter = new pg.Client({ connectionString: server.url({ database: db }) });
    await deleter.connect();
    await deleter.query('BEGIN');
    await deleter.query('DELETE FROM responses WHERE id = $1', [chain[0].id]);
    assert.equal(await store.changeToken(), before, 'not yet committed');
    assert.deepEqual(await store.loadChain(chain[1].id), chain);
    await deleter.query('COMMIT');
    await deleter.end();
    assert.notEqual(await store.changeToken(), before);
    await assert.rejects(store.loadChain(chain[1].id), ChainBrokenError);
    await store.close();
  });

  it('a gateway continues chains from its cache, and never one deleted through another instance', async () => {
    const { url } = await freshDatabase();
    const upstream = await startFakeUpstream();
    let loads = 0;
    const store = newStore(url);
    const loadChain = store.loadChain.bind(store);
    store.loadChain = (id: string) => {
      loads++;
      return loadChain(id);
    };
    const parley = await createParley({
      config: { model_providers: [{ model: 'openai/gpt-4o-mini', base_url: upstream.url, access_key: 'k' }] },
      store,
    });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) {
        upstream.enqueue({ kind: 'text', text: `Answer ${i}.` });
        const response: { id: string } = await parley.responses.create({
          model: 'gpt-4o-mini',
          input: `Question ${i}.`,
          previous_response_id: ids.at(-1) ?? null,
        });
        ids.push(response.id);
      }
      // The first continuation fills the cache (it starts empty); the later ones continue it.
      assert.equal(loads, 1, 'turns continue what this gateway has just stored');
      const other = await opened(url);
      upstream.enqueue({ kind: 'text', text: 'Branch.' });
      await parley.responses.create({ model: 'gpt-4o-mini', input: 'Branch?', previous_response_id: ids[1] });
      assert.equal(loads, 1, 'a branch from the middle continues from the cache too');
      assert.equal(messagesOf(upstream).length, 5);
      assert.equal(await other.deleteResponse(ids[1]), true);
      for (const id of [ids[3], ids[2], ids[1]]) {
        const error = await apiErrorOf(
          parley.responses.create({ model: 'gpt-4o-mini', input: 'More?', previous_response_id: id }),
        );
        assert.equal(error.code, 'previous_response_not_found', id);
      }
      upstream.enqueue({ kind: 'text', text: 'Root.' });
      await parley.responses.create({ model: 'gpt-4o-mini', input: 'Root?', previous_response_id: ids[0] });
      assert.equal(messagesOf(upstream).length, 3);
      await other.close();
    } finally {
      await parley.close();
      await upstream.close();
    }
  });
});

describe('PostgresStore: commits', () => {
  it("a foreground turn's in-progress row commits without waiting for the disk; everything else waits", async () => {
    // The session default is on (the test server's is off), on one pooled connection, so that a
    // setting left behind by beginTurn would show in the statements after it.
    const { db, url } = await freshDatabase({ options: '-c synchronous_commit=on' });
    const store = await opened(url, { poolSize: 1 });
    // Records the setting each write commits under (a deferred trigger fires at commit).
    await server.query(
      `CREATE TABLE commit_modes (id text, op text, mode text);
       CREATE FUNCTION record_commit_mode() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         INSERT INTO commit_modes VALUES (NEW.id, TG_OP, current_setting('synchronous_commit'));
         RETURN NULL;
       END $$;
       CREATE CONSTRAINT TRIGGER record_commit_mode AFTER INSERT OR UPDATE ON responses
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION record_commit_mode();`,
      [],
      db,
    );
    const foreground = newTurn();
    await store.beginTurn(foreground);
    await store.finishTurn(foreground.id, completed([assistantMessage('a')]));
    const background = newTurn({ status: 'queued' });
    await store.beginTurn(background);
    await store.saveProgress(background.id, { status: 'in_progress', output: [] });
    const imported = newTurn({ status: 'in_progress' });
    await store.importRecords([{ type: 'response', response: imported }]);
    const modes = await server.query<{ id: string; op: string; mode: string }>(
      'SELECT id, op, mode FROM commit_modes',
      [],
      db,
    );
    assert.deepEqual(
      modes.rows.map((row) => [row.id, row.op, row.mode]),
      [
        [foreground.id, 'INSERT', 'off'],
        [foreground.id, 'UPDATE', 'on'],
        [background.id, 'INSERT', 'on'],
        [background.id, 'UPDATE', 'on'],
        [imported.id, 'INSERT', 'on'],
      ],
    );
    await store.close();
  });
});

describe('PostgresStore: payloads', () => {
  it('keeps JSON as text: NUL survives, where jsonb would refuse it', async () => {
    const { db, url } = await freshDatabase();
    const store = await opened(url);
    const turn = newTurn({ input: [userMessage('before\u0000after')] });
    await store.beginTurn(turn);
    assert.deepEqual(await store.getResponse(turn.id), turn);
    const types = await server.query(
      `SELECT table_name || '.' || column_name AS col, data_type FROM information_schema.columns
        WHERE table_schema = 'public' AND column_name IN ('data', 'params', 'usage', 'error', 'incomplete_details')
        ORDER BY 1`,
      [],
      db,
    );
    for (const row of types.rows) assert.equal(row.data_type, 'text', row.col);
    const raw = await server.query<{ data: string }>(
      'SELECT i.data FROM items i JOIN responses r ON r.seq = i.response_seq WHERE r.id = $1',
      [turn.id],
      db,
    );
    assert.ok(raw.rows[0].data.includes('before\\u0000after'), 'stored as the JSON escape');
    await assert.rejects(
      server.query('SELECT $1::jsonb', [raw.rows[0].data], db),
      /unsupported Unicode escape sequence/,
    );
    await store.close();
  });

  it('stores item JSON without its id (item_id holds it) and usage as an array', async () => {
    const { db, url } = await freshDatabase();
    const store = await opened(url);
    const turn = newTurn();
    const result = completed([assistantMessage('a')]);
    await store.beginTurn(turn);
    await store.finishTurn(turn.id, result);
    const conversation = newConversation();
    await store.createConversation(conversation, [userMessage('own')]);
    const items = await server.query<{ item_id: string; data: string }>(
      'SELECT item_id, data FROM items UNION ALL SELECT item_id, data FROM conversation_items',
      [],
      db,
    );
    assert.equal(items.rows.length, 3);
    for (const row of items.rows) assert.ok(!Object.hasOwn(JSON.parse(row.data), 'id'), row.data);
    const usage = await server.query<{ usage: string }>('SELECT usage FROM responses', [], db);
    assert.equal(usage.rows[0].usage, '[10,5,15,0,0]');
    assert.deepEqual(await store.getResponse(turn.id), finished(turn, result));
    await store.close();
  });

  it('round-trips NUL, backslashes and unicode in ids, users, metadata and item ids', async () => {
    const { url } = await freshDatabase();
    const store = await opened(url);
    const odd = ['x\u0000y', 'x\\0y', 'x\\\\0y', 'x\\', '\\', '\u0000', 'é😀\u200f', 'x\\u0000y'];

    // Ids that differ only in how NUL and backslash are spelled stay distinct.
    const parentTurn = newTurn({ id: `resp_${odd[0]}`, model: 'm\u0000\\' });
    const sibling = newTurn({ id: `resp_${odd[1]}` });
    await store.beginTurn(parentTurn);
    await store.beginTurn(sibling);
    const child = newTurn({ id: `resp_${odd[2]}`, previousResponseId: parentTurn.id });
    await store.beginTurn(child);
    assert.deepEqual(await store.loadChain(child.id), [parentTurn, child]);
    assert.deepEqual(await store.getResponse(sibling.id), sibling);

    const items: Item[] = odd.map((s, i) => userMessage(`text ${s} \ud800 lone surrogate ${i}`, `msg_${s}`));
    const metadata = Object.fromEntries(odd.map((s, i) => [`k${s}`, `v${s}${i}`]));
    const conversation = newConversation({
      id: `conv_${odd[0]}`,
      user: `u${odd[0]}`,
      metadata,
      itemCount: items.length,
    });
    const twin = newConversation({
      id: `conv_${odd[1]}`,
      user: `u${odd[1]}`,
      metadata: { [`k${odd[1]}`]: 'other' },
    });
    await store.createConversation(conversation, items);
    await store.createConversation(twin, []);
    assert.deepEqual(await store.getConversation(conversation.id), conversation);
    assert.deepEqual(await store.loadConversationItems(conversation.id), items);
    for (const item of items)
      assert.deepEqual(await store.getConversationItem(conversation.id, item.id), item);
    assert.deepEqual(
      await store.listConversationItems(conversation.id, { limit: 2, order: 'asc', after: items[1].id }),
      {
        items: items.slice(2, 4),
        hasMore: true,
      },
    );
    const byUser = await store.listConversations({
      tenant: DEFAULT_TENANT,
      user: `u${odd[0]}`,
      limit: 10,
      order: 'asc',
    });
    assert.deepEqual(byUser.conversations, [conversation]);
    const byMeta = await store.listConversations({
      tenant: DEFAULT_TENANT,
      metadata: { [`k${odd[1]}`]: `v${odd[1]}1` },
      limit: 10,
      order: 'asc',
    });
    assert.deepEqual(byMeta.conversations, [conversation]);
    assert.equal(await store.acquireConversationLease(conversation.id, `h${odd[0]}`, 5000), true);
    assert.equal(await store.acquireConversationLease(conversation.id, `h${odd[1]}`, 5000), false);
    assert.equal(await store.renewConversationLease(conversation.id, `h${odd[0]}`, 5000), true);
    assert.equal(await store.deleteConversationItem(conversation.id, items[0].id), true);
    assert.equal(await store.getConversationItem(conversation.id, items[0].id), null);
    assert.deepEqual(await store.getConversationItem(conversation.id, items[1].id), items[1]);
    await store.close();
  });

  it('1 MB items: a conversation turn stores each once, and deleting the response keeps them in the conversation', async () => {
    const { db, url } = await freshDatabase();
    const store = await opened(url);
    const mb = (seed: string) =>
      `${seed} `.repeat(Math.ceil(1_048_576 / (seed.length + 1))).slice(0, 1_048_576);
    const first = userMessage(mb('first'));
    const conversation = newConversation({ itemCount: 1 });
    await store.createConversation(conversation, [first]);
    const turn = newTurn({
      conversationId: conversation.id,
      input: [userMessage(mb('question'))],
      params: { ...defaultParams(), instructions: mb('instructions') },
    });
    await store.beginTurn(turn);
    const result = completed([assistantMessage(mb('answer'))]);
    await store.finishTurn(turn.id, result);
    const expected = [first, ...turn.input, ...result.output];
    assert.deepEqual(await store.loadConversationItems(conversation.id), expected);
    assert.deepEqual(await store.getResponse(turn.id), finished(turn, result));

    const bytes = async () =>
      (
        await server.query<{ items: number; conversation: number; pointers: number }>(
          `SELECT (SELECT coalesce(sum(octet_length(data)), 0) FROM items)::integer AS items,
                  (SELECT coalesce(sum(octet_length(data)), 0) FROM conversation_items)::integer AS conversation,
                  (SELECT count(*) FROM conversation_items WHERE data IS NULL)::integer AS pointers`,
          [],
          db,
        )
      ).rows[0];
    const before = await bytes();
    assert.equal(before.pointers, 2, "the turn's two items are pointers, not copies");
    assert.ok(
      before.items > 2_000_000 && before.items < 2_200_000,
      `items hold the turn once: ${before.items}`,
    );
    assert.ok(
      before.conversation < 1_100_000,
      `the conversation holds only its own item: ${before.conversation}`,
    );

    assert.equal(await store.deleteResponse(turn.id), true);
    const afterDelete = await bytes();
    assert.equal(afterDelete.items, 0);
    assert.equal(afterDelete.pointers, 0);
    assert.ok(afterDelete.conversation > 3_000_000, 'the items moved into the conversation');
    assert.deepEqual(await store.loadConversationItems(conversation.id), expected);
    await store.close();
  });
});

describe('PostgresStore: retention', () => {
  it('leaves no rows behind: deletes and pruning take every item, pointer and lease with them', async () => {
    const { db, url } = await freshDatabase();
    const store = await opened(url);
    const rows = async () =>
      (
        await server.query<Record<string, number>>(
          `SELECT (SELECT count(*) FROM responses)::integer AS responses, (SELECT count(*) FROM items)::integer AS items,
                  (SELECT count(*) FROM conversations)::integer AS conversations,
                  (SELECT count(*) FROM conversation_items)::integer AS conversation_items,
                  (SELECT count(*) FROM conversation_leases)::integer AS leases`,
          [],
          db,
        )
      ).rows[0];
    const now = Math.floor(Date.now() / 1000);
    const conversation = newConversation();
    await store.createConversation(conversation, [userMessage('a')]);
    await store.acquireConversationLease(conversation.id, 'me', 60_000);
    const turn = newTurn({ conversationId: conversation.id });
    await store.beginTurn(turn);
    await store.finishTurn(turn.id, completed([assistantMessage('b')]));
    const expiring = newConversation({ expiresAt: now + 1 });
    await store.createConversation(expiring, [userMessage('c')]);
    await store.acquireConversationLease(expiring.id, 'me', 60_000);
    const chain = await storeChain(store, 3);
    await store.beginTurn(newTurn({ expiresAt: now + 1, previousResponseId: chain[2].id }));
    assert.deepEqual(await rows(), {
      responses: 5,
      items: 9,
      conversations: 2,
      conversation_items: 4,
      leases: 2,
    });

    assert.equal(await store.deleteConversation(conversation.id), true);
    assert.deepEqual(await rows(), {
      responses: 5,
      items: 9,
      conversations: 1,
      conversation_items: 1,
      leases: 1,
    });
    assert.equal(await store.deleteResponse(turn.id), true);
    assert.equal(await store.deleteResponse(chain[1].id), true);
    assert.deepEqual(await rows(), {
      responses: 3,
      items: 5,
      conversations: 1,
      conversation_items: 1,
      leases: 1,
    });
    assert.equal(await store.countExpired(now + 1), 2, 'a dry run counts what pruning would take');
    assert.equal(await store.pruneExpired(now + 1), 2);
    assert.equal(await store.countExpired(now + 1), 0);
    assert.deepEqual(await rows(), {
      responses: 2,
      items: 4,
      conversations: 0,
      conversation_items: 0,
      leases: 0,
    });
    await store.close();
  });
});

/** Parley's own connections to database `db`, and what each waits on. */
async function parleyBackends(db: string): Promise<{ pid: number; wait_event_type: string | null }[]> {
  const res = await server.query<{ pid: number; wait_event_type: string | null }>(
    `SELECT pid, wait_event_type FROM pg_stat_activity WHERE datname = $1 AND application_name = 'parley'`,
    [db],
  );
  return res.rows;
}

describe('PostgresStore: pipelined statements', () => {
  /** Connections to `db` opened by Parley (`application_name` parley), and what each waits on. */
  it('the statements of concurrent turns share a few connections instead of taking one each', async () => {
    const { db, url } = await freshDatabase();
    const store = await opened(url, { poolSize: 10 });
    const turns = Array.from({ length: 48 }, () => newTurn());
    await Promise.all(turns.map((turn) => store.beginTurn(turn)));
    await Promise.all(turns.map((turn) => store.finishTurn(turn.id, completed([assistantMessage('ok')]))));
    // 48 statements at once, 16 to a connection: three, beside the one migrate() used. A pool
    // running one statement per connection opens all ten.
    assert.ok((await parleyBackends(db)).length <= 4);
    const got = await Promise.all(turns.map((turn) => store.getResponse(turn.id)));
    assert.deepEqual(
      got.map((r) => r?.status),
      turns.map(() => 'completed'),
    );
    await store.close();
  });

  it('pipeline=false, and pgbouncer=true, keep to one statement per connection', async () => {
    for (const param of ['pipeline=false', 'pgbouncer=true']) {
      const { db, url } = await freshDatabase();
      const store = await opened(`${url}?${param}`, { poolSize: 6 });
      const turn = newTurn();
      await store.beginTurn(turn);
      await Promise.all(Array.from({ length: 24 }, () => store.getResponse(turn.id)));
      assert.equal((await parleyBackends(db)).length, 6, param);
      await store.close();
    }
    assert.throws(
      () => newStore('postgresql://parley@localhost/parley?pipeline=maybe'),
      /pipeline=maybe is not true or false/,
    );
  });

  it('one statement failing leaves those pipelined beside it alone', async () => {
    const connections = new PipelinedConnections({ config: { connectionString: server.url() }, max: 1 });
    const settled = await Promise.allSettled([
      connections.query({ text: 'SELECT 1 AS n' }),
      connections.query({ text: 'SELECT 1 / 0 AS n' }),
      connections.query({ text: 'SELECT 2 AS n' }),
    ]);
    assert.equal(connections.size, 1);
    assert.deepEqual(
      settled.map((s) =>
        s.status === 'fulfilled' ? s.value.rows[0].n : (s.reason as { code: string }).code,
      ),
      [1, '22012', 2],
    );
    await connections.end();
  });

  it('closes a connection that has had nothing to do for a while', async () => {
    const db = await server.createDatabase('idle');
    const connections = new PipelinedConnections({
      config: { connectionString: server.url({ database: db }), application_name: 'parley' },
      max: 2,
      idleMs: 50,
    });
    await connections.query({ text: 'SELECT 1' });
    assert.equal((await parleyBackends(db)).length, 1);
    await new Promise((resolve) => setTimeout(resolve, 250));
    assert.equal(connections.size, 0);
    assert.equal((await parleyBackends(db)).length, 0);
    await connections.end();
  });

  it('statements behind one whose connection the server terminates run again, each once', async () => {
    const { db, url } = await freshDatabase();
    // One connection, so that everything below is pipelined on it.
    const store = await opened(url, { poolSize: 1 });
    const conversation = newConversation();
    await store.createConversation(conversation, []);
    const turn = newTurn({ conversationId: conversation.id });
    await store.beginTurn(turn);
    const holder = new pg.Client({ connectionString: server.url({ database: db }) });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE', [conversation.id]);
      const result = completed([assistantMessage('the answer')]);
      const finishing = store.finishTurn(turn.id, result);
      let waiting: { pid: number } | undefined;
      while (!waiting) {
        waiting = (await parleyBackends(db)).find((b) => b.wait_event_type === 'Lock');
      }
      const followers = Array.from({ length: 5 }, () => newTurn());
      const beginning = followers.map((t) => store.beginTurn(t));
      const reading = store.getResponse(turn.id);
      await new Promise((resolve) => setImmediate(resolve)); // all three are on the wire
      await server.query('SELECT pg_terminate_backend($1)', [waiting.pid]);
      await holder.query('COMMIT');
      await finishing;
      await Promise.all(beginning);
      assert.equal((await reading)?.id, turn.id);
      assert.deepEqual(await Promise.all(followers.map((t) => store.getResponse(t.id))), followers);
      assert.deepEqual(await store.loadConversationItems(conversation.id), [...turn.input, ...result.output]);
    } finally {
      await holder.end();
    }
    await store.close();
  });
});

describe('PostgresStore: races and outages', () => {
  it('a response deleted while its turn is appended to a conversation keeps every item', async () => {
    const { url, db } = await freshDatabase();
    const store = await opened(url);
    const conversation = newConversation();
    await store.createConversation(conversation, []);
    const turn = newTurn({ conversationId: conversation.id });
    await store.beginTurn(turn);
    // What finishTurn does, held open: the response row locked and updated, an entry pointing at
    // its item that the delete's snapshot cannot see.
    const racer = new pg.Client({ connectionString: server.url({ database: db }) });
    await racer.connect();
    await racer.query('BEGIN');
    await racer.query(`UPDATE responses SET status = 'completed', conversation_position = 0 WHERE id = $1`, [turn.id]);
    await racer.query(
      `INSERT INTO conversation_items (conversation_seq, position, response_seq, direction, item_position)
       VALUES ((SELECT seq FROM conversations WHERE id = $1), 0, (SELECT seq FROM responses WHERE id = $2), 0, 0)`,
      [conversation.id, turn.id],
    );
    await racer.query('UPDATE conversations SET item_count = 1 WHERE id = $1', [conversation.id]);
    const deleting = store.deleteResponse(turn.id);
    while (!(await parleyBackends(db)).some((b) => b.wait_event_type === 'Lock')) {}
    await racer.query('COMMIT');
    await racer.end();
    // The delete's trigger ran once the row was free, and saw the entry.
    assert.equal(await deleting, true);
    assert.equal(await store.getResponse(turn.id), null);
    assert.deepEqual(await store.loadConversationItems(conversation.id), turn.input);
    await store.close();
  });

  it('an import does not point at the items of a response deleted while it runs', async () => {
    const { url, db } = await freshDatabase();
    const store = await opened(url);
    const conversation = newConversation();
    const turn = newTurn({ conversationId: conversation.id });
    await store.beginTurn(turn);
    const result = completed([assistantMessage('the answer')]);
    await store.finishTurn(turn.id, result);
    const items = [...turn.input, ...result.output];
    const holder = new pg.Client({ connectionString: server.url({ database: db }) });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM responses WHERE id = $1 FOR UPDATE', [turn.id]);
    const importing = store.importRecords([
      { type: 'conversation', conversation: { ...conversation, itemCount: items.length }, items },
    ]);
    while (!(await parleyBackends(db)).some((b) => b.wait_event_type === 'Lock')) {}
    await holder.query('DELETE FROM responses WHERE id = $1', [turn.id]);
    await holder.query('COMMIT');
    await holder.end();
    assert.deepEqual(await importing, { responses: 0, conversations: 1, skipped: 0 });
    assert.deepEqual(await store.loadConversationItems(conversation.id), items);
    await store.close();
  });

  it('instances sharing one database serialise conversation turns and leases', async () => {
    const { url } = await freshDatabase();
    const instances = await Promise.all(Array.from({ length: 4 }, () => opened(url, { poolSize: 3 })));
    const conversation = newConversation();
    await instances[0].createConversation(conversation, []);
    const turns = Array.from({ length: 12 }, (_, t) =>
      newTurn({ conversationId: conversation.id, input: [userMessage(`q${t}`), userMessage(`q${t}b`)] }),
    );
    await Promise.all(turns.map((turn, t) => instances[t % 4].beginTurn(turn)));
    const results = turns.map((_, t) => completed([assistantMessage(`a${t}`)]));
    await Promise.all(turns.map((turn, t) => instances[(t + 1) % 4].finishTurn(turn.id, results[t])));
    const items = await instances[2].loadConversationItems(conversation.id);
    assert.equal(items?.length, 36);
    for (let start = 0; start < 36; start += 3) {
      const t = turns.findIndex((turn) => turn.input[0].id === items![start].id);
      assert.deepEqual(items!.slice(start, start + 3), [...turns[t].input, ...results[t].output]);
    }
    const won = await Promise.all(
      instances.map((store, i) => store.acquireConversationLease(conversation.id, `instance-${i}`, 10_000)),
    );
    assert.equal(won.filter(Boolean).length, 1);
    await Promise.all(instances.map((store) => store.close()));
  });

  it('carries on when the server cuts its idle connections', async () => {
    const { db, url } = await freshDatabase();
    const store = await opened(url, { poolSize: 4 });
    const turns = Array.from({ length: 4 }, () => newTurn());
    await Promise.all(turns.map((turn) => store.beginTurn(turn)));
    await server.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [db],
    );
    const got = await Promise.all(turns.map((turn) => store.getResponse(turn.id)));
    assert.deepEqual(got, turns);
    await store.close();
  });

  // Last: it takes the server down for a moment.
  it('fails clearly while the server is down and recovers without reopening', async () => {
    const { url } = await freshDatabase();
    const store = await opened(url);
    const turn = newTurn();
    await store.beginTurn(turn);
    await server.suspend();
    try {
      await assert.rejects(store.ping(), (error: unknown) => {
        assert.ok(error instanceof PostgresStoreError);
        assert.match(error.message, /Cannot connect to PostgreSQL at 127\.0\.0\.1:\d+: connection refused/);
        assertNoSecret(error, server.password);
        return true;
      });
      await assert.rejects(store.getResponse(turn.id));
    } finally {
      await server.resume();
    }
    await store.ping();
    assert.deepEqual(await store.getResponse(turn.id), turn);
    const next = newTurn({ previousResponseId: turn.id });
    await store.beginTurn(next);
    assert.deepEqual(await store.loadChain(next.id), [turn, next]);
    await store.close();
  });
});
