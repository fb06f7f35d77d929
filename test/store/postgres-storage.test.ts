// How PostgresStore lays its rows out, beyond what the contract can see: finishing a turn is a
// HOT update (no index of responses covers a column it changes), unfinished turns hold reusable
// slots (taken, given back, trimmed, and found by failStaleTurns), and a parent id in Parley's
// format is stored as its 24 bytes while any other stays text, both coming back as they went in.
// One throwaway server for the file, a fresh database per test: the statistics counted are the
// database's own.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { newId as parleyId } from '../../src/protocol/ids.ts';
import { PostgresStore } from '../../src/store/postgres.ts';
import { ChainBrokenError, type StoredResponse } from '../../src/store/types.ts';
import { type PostgresServer, startPostgres } from '../helpers/postgres-server.ts';
import {
  assistantMessage,
  collectExport,
  completed,
  finished,
  newConversation,
  newTurn,
  userMessage,
} from '../store-contract/suite.ts';

let server: PostgresServer;

before(async () => {
  server = await startPostgres();
});

after(async () => {
  await server?.stop();
});

async function freshStore(): Promise<{ db: string; store: PostgresStore }> {
  const db = await server.createDatabase('s');
  const store = new PostgresStore({
    connectionString: server.url({ database: db }),
    poolSize: 4,
    ttlSeconds: null,
  });
  await store.open();
  return { db, store };
}

interface TableStats {
  updates: number;
  hot: number;
}

/**
 * Update counts of a table. A backend reports its counts when it exits (or at most once a second
 * while busy), so the caller closes its store first; the shared statistics may still lag a moment.
 */
async function updatesOf(db: string, table: string, expected: number): Promise<TableStats> {
  let stats: TableStats = { updates: -1, hot: -1 };
  for (let attempt = 0; attempt < 100; attempt++) {
    const res = await server.query<{ updates: number; hot: number }>(
      `SELECT n_tup_upd::integer AS updates, n_tup_hot_upd::integer AS hot FROM pg_stat_user_tables WHERE relname = $1`,
      [table],
      db,
    );
    stats = res.rows[0];
    if (stats.updates >= expected) return stats;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return stats;
}

async function slots(db: string): Promise<{ total: number; busy: number }> {
  const res = await server.query<{ total: number; busy: number }>(
    'SELECT count(*)::integer AS total, count(response_seq)::integer AS busy FROM unfinished_turn_slots',
    [],
    db,
  );
  return res.rows[0];
}

describe('PostgresStore: HOT updates', () => {
  it('finishing a turn, and recording its progress, update the response row in place (HOT)', async () => {
    const { db, store } = await freshStore();
    const conversation = newConversation();
    await store.createConversation(conversation, []);
    let previous: string | null = null;
    let updates = 0;
    for (let i = 0; i < 20; i++) {
      const turn = newTurn({ previousResponseId: previous, input: [userMessage(`q${i}`)] });
      await store.beginTurn(turn);
      await store.finishTurn(turn.id, completed([assistantMessage(`a${i}`)]));
      previous = turn.id;
      updates++;
    }
    // A background turn: queued, progress saved twice, then finished; one in a conversation.
    const background = newTurn({ status: 'queued', conversationId: conversation.id });
    await store.beginTurn(background);
    assert.equal(await store.saveProgress(background.id, { status: 'in_progress', output: [] }), true);
    assert.equal(
      await store.saveProgress(background.id, {
        status: 'in_progress',
        output: [assistantMessage('so far')],
      }),
      true,
    );
    await store.finishTurn(background.id, completed([assistantMessage('done')]));
    updates += 3;
    assert.equal((await store.loadChain(previous as string))?.length, 20);
    await store.close();

    const responses = await updatesOf(db, 'responses', updates);
    assert.equal(responses.updates, updates);
    assert.equal(responses.hot, updates, 'every update of a response row was HOT');
    // Slots are taken and given back in place as well: one slot served every turn, one at a time.
    // 21 turns: the first added the slot, the other 20 took it, and all 21 gave it back.
    const taken = await updatesOf(db, 'unfinished_turn_slots', 41);
    assert.deepEqual(taken, { updates: 41, hot: 41 });
    assert.deepEqual(await slots(db), { total: 1, busy: 0 });
  });
});

describe('PostgresStore: unfinished-turn slots', () => {
  it('concurrent turns take distinct slots and give them back; failStaleTurns deletes the free ones', async () => {
    const { db, store } = await freshStore();
    const turns = Array.from({ length: 12 }, () => newTurn());
    await Promise.all(turns.map((turn) => store.beginTurn(turn)));
    const held = await slots(db);
    assert.equal(held.busy, 12);
    assert.ok(held.total >= 12);
    const seqs = await server.query<{ n: number }>(
      'SELECT count(DISTINCT response_seq)::integer AS n FROM unfinished_turn_slots',
      [],
      db,
    );
    assert.equal(seqs.rows[0].n, 12, 'no two turns share a slot');

    await Promise.all(turns.map((turn) => store.finishTurn(turn.id, completed([assistantMessage('a')]))));
    assert.deepEqual(await slots(db), { total: held.total, busy: 0 });
    // Later turns reuse them rather than add more.
    for (let i = 0; i < 5; i++) {
      const turn = newTurn();
      await store.beginTurn(turn);
      await store.finishTurn(turn.id, completed([assistantMessage('b')]));
    }
    assert.equal((await slots(db)).total, held.total);

    const running = newTurn();
    await store.beginTurn(running);
    assert.equal(await store.failStaleTurns(Math.floor(Date.now() / 1000) - 60), 0);
    assert.deepEqual(await slots(db), { total: 1, busy: 1 }, 'only the running turn keeps its slot');
    assert.equal((await store.getResponse(running.id))?.status, 'in_progress');
    await store.close();
  });

  it('a turn deleted while unfinished leaves its slot until failStaleTurns finds it due, marking nothing', async () => {
    const { db, store } = await freshStore();
    const now = Math.floor(Date.now() / 1000);
    const gone = newTurn({ createdAt: now - 3600 });
    const stale = newTurn({ createdAt: now - 3600 });
    await store.beginTurn(gone);
    await store.beginTurn(stale);
    assert.equal(await store.deleteResponse(gone.id), true);
    assert.deepEqual(await slots(db), { total: 2, busy: 2 });
    const token = await store.changeToken();
    assert.equal(await store.failStaleTurns(now - 60), 1, 'only the turn still stored');
    assert.notEqual(await store.changeToken(), token);
    assert.equal((await store.getResponse(stale.id))?.status, 'failed');
    assert.deepEqual(await slots(db), { total: 0, busy: 0 });
    // A stale turn finishing after it was failed is refused, as before slots.
    await assert.rejects(store.finishTurn(stale.id, completed([])), /already failed/);
    await store.close();
  });

  it('imported turns hold a slot only while unfinished', async () => {
    const { db, store } = await freshStore();
    const done = finished(newTurn(), completed([assistantMessage('a')]));
    const running = newTurn();
    const summary = await store.importRecords([
      { type: 'response', response: done },
      { type: 'response', response: running },
    ]);
    assert.equal(summary.responses, 2);
    assert.deepEqual(await slots(db), { total: 1, busy: 1 });
    await store.finishTurn(running.id, completed([assistantMessage('b')]));
    assert.deepEqual(await slots(db), { total: 1, busy: 0 });
    await store.close();
  });
});

describe('PostgresStore: parent ids', () => {
  it('keeps a Parley-format parent id as 24 bytes and any other as text; both read back exactly', async () => {
    const { db, store } = await freshStore();
    const chain: StoredResponse[] = [];
    let previous: string | null = null;
    for (let i = 0; i < 4; i++) {
      const turn = newTurn({ id: parleyId('resp'), previousResponseId: previous });
      await store.beginTurn(turn);
      const result = completed([assistantMessage(`a${i}`)]);
      await store.finishTurn(turn.id, result);
      chain.push(finished(turn, result));
      previous = turn.id;
    }
    assert.deepEqual(await store.loadChain(chain[3].id), chain);

    // Almost Parley's format, or not at all: each stays text.
    const hex = 'ab'.repeat(24);
    const others = [
      `resp_${hex.toUpperCase()}`,
      `resp_${hex.slice(1)}`,
      `resp_${hex}0`,
      `resp_${hex.slice(2)}\u0000\\`,
      `msg_${hex}`,
      `resp_${hex}\n`,
      'resp_a',
    ];
    const orphans = others.map((parent) => newTurn({ previousResponseId: parent }));
    for (const orphan of orphans) await store.beginTurn(orphan);
    for (const [i, orphan] of orphans.entries()) {
      assert.equal((await store.getResponse(orphan.id))?.previousResponseId, others[i]);
    }
    const stored = await server.query<{ bytes: number; text: number }>(
      `SELECT count(previous_response_bytes)::integer AS bytes, count(previous_response_text)::integer AS text
         FROM responses`,
      [],
      db,
    );
    assert.deepEqual(stored.rows[0], { bytes: 3, text: others.length });

    // A deleted parent is named exactly in the error; export and import carry the ids over.
    assert.equal(await store.deleteResponse(chain[1].id), true);
    await assert.rejects(store.loadChain(chain[3].id), (error: unknown) => {
      assert.ok(error instanceof ChainBrokenError);
      assert.ok(error.message.includes(chain[1].id), error.message);
      return true;
    });
    assert.deepEqual(await store.getResponse(chain[2].id), chain[2]);
    const exported = await collectExport(store);
    const copy = await freshStore();
    await copy.store.importRecords(exported);
    assert.deepEqual(await collectExport(copy.store), exported);
    assert.deepEqual(await copy.store.getResponse(chain[3].id), chain[3]);
    await copy.store.close();
    await store.close();
  });
});
