// `parley prune` as a real process on SQLite: the dry run counts and changes nothing, the real run
// deletes expired records and marks stale turns failed, with the threshold from the config or
// --stale-after; memory and stateless configs and bad options get clear messages. Also the
// gateway's own retention: the pass at startup and the sweeper (`prune_interval`).

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import type { ParleyConfig } from '../../src/config/types.ts';
import { createGateway } from '../../src/gateway.ts';
import { INTERRUPTED_ERROR } from '../../src/store/codec.ts';
import { runRetention, Sweeper } from '../../src/store/retention.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { ConversationStore, StoredResponse } from '../../src/store/types.ts';
import { assistantMessage, completed, exportAll, newConversation, newTurn, userMessage } from '../store-contract/suite.ts';
import { runCli, writeStorageConfig } from './run-cli.ts';

const now = () => Math.floor(Date.now() / 1000);

let dir: string;
let counter = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'parley-prune-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Seeded {
  path: string;
  live: StoredResponse;
  /** Created two hours ago, never finished: its instance died. */
  stale: StoredResponse;
  /** Created ten minutes ago, still running somewhere. */
  recent: StoredResponse;
  expired: string[];
}

/** A SQLite file with live, expired (2 responses, 1 conversation) and unfinished turns. */
async function seed(): Promise<Seeded> {
  const path = join(dir, `store-${++counter}.db`);
  const store = new SqliteStore({ path, ttlSeconds: null });
  await store.open();
  try {
    const live = newTurn({ input: [userMessage('keep me')] });
    await store.beginTurn(live);
    await store.finishTurn(live.id, completed([assistantMessage('kept')]));
    const expired: string[] = [];
    for (let i = 0; i < 2; i++) {
      const turn = newTurn({ createdAt: now() - 7200, expiresAt: now() - 60 });
      await store.beginTurn(turn);
      await store.finishTurn(turn.id, completed([assistantMessage('old')]));
      expired.push(turn.id);
    }
    const oldConversation = newConversation({ createdAt: now() - 7200, expiresAt: now() - 60, itemCount: 1 });
    await store.createConversation(oldConversation, [userMessage('old conversation')]);
    expired.push(oldConversation.id);
    await store.createConversation(newConversation({ itemCount: 1 }), [userMessage('live conversation')]);
    const stale = newTurn({ createdAt: now() - 7200 });
    await store.beginTurn(stale);
    const recent = newTurn({ createdAt: now() - 600 });
    await store.beginTurn(recent);
    return { path, live: (await store.getResponse(live.id))!, stale, recent, expired };
  } finally {
    await store.close();
  }
}

async function withSqlite<T>(path: string, body: (store: ConversationStore) => Promise<T>): Promise<T> {
  const store = new SqliteStore({ path, ttlSeconds: null });
  await store.open();
  try {
    return await body(store);
  } finally {
    await store.close();
  }
}

describe('parley prune', () => {
  it('--dry-run counts what a prune would do and changes nothing', async () => {
    const seeded = await seed();
    const config = await writeStorageConfig(dir, `dry-${counter}`, { type: 'sqlite', path: seeded.path });
    const before = await withSqlite(seeded.path, (store) => exportAll(store));
    const { code, stdout, stderr } = await runCli(['prune', '--config', config, '--dry-run']);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /dry run, nothing changed/);
    assert.match(stdout, /3 expired records would be pruned/);
    assert.match(stdout, /1 stale turn \(unfinished for more than 1h\) would be marked failed/);
    await withSqlite(seeded.path, async (store) => {
      assert.deepEqual(await exportAll(store), before);
      assert.equal(await store.countExpired?.(now()), 3);
    });
  });

  it('deletes expired records and marks stale turns failed (interrupted), leaving the rest', async () => {
    const seeded = await seed();
    const config = await writeStorageConfig(dir, `run-${counter}`, { type: 'sqlite', path: seeded.path });
    const { code, stdout, stderr } = await runCli(['prune', '--config', config]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /pruned 3 expired records/);
    assert.match(stdout, /marked 1 stale turn \(unfinished for more than 1h\) failed/);
    await withSqlite(seeded.path, async (store) => {
      assert.equal(await store.countExpired?.(now()), 0);
      for (const id of seeded.expired) {
        assert.equal(id.startsWith('conv') ? await store.getConversation(id) : await store.getResponse(id), null);
      }
      assert.deepEqual(await store.getResponse(seeded.live.id), seeded.live);
      const stale = await store.getResponse(seeded.stale.id);
      assert.equal(stale?.status, 'failed');
      assert.deepEqual(stale?.error, INTERRUPTED_ERROR);
      assert.deepEqual(stale?.output, []);
      assert.equal((await store.getResponse(seeded.recent.id))?.status, 'in_progress');
      assert.equal((await exportAll(store)).conversations.length, 1);
    });
    // Nothing left to do: a second pass reports zeros.
    const again = await runCli(['prune', '--config', config]);
    assert.match(again.stdout, /pruned 0 expired records.*marked 0 stale turns/);
  });

  it('takes the stale threshold from state_storage.stale_turn_after, and --stale-after over it', async () => {
    const seeded = await seed();
    const config = await writeStorageConfig(dir, `stale-${counter}`, {
      type: 'sqlite',
      path: seeded.path,
      stale_turn_after: '5m',
    });
    const dry = await runCli(['prune', '--config', config, '--dry-run']);
    assert.match(dry.stdout, /2 stale turns \(unfinished for more than 5m\) would be marked failed/);
    const run = await runCli(['prune', '--config', config, '--stale-after', '3h']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /marked 0 stale turns \(unfinished for more than 3h\) failed/);
    const rest = await runCli(['prune', '--config', config]);
    assert.match(rest.stdout, /marked 2 stale turns \(unfinished for more than 5m\) failed/);
    await withSqlite(seeded.path, async (store) => {
      assert.equal((await store.getResponse(seeded.recent.id))?.status, 'failed');
    });
  });

  it('explains memory and stateless configs and rejects a bad --stale-after', async () => {
    const memory = await runCli(['prune', '--config', await writeStorageConfig(dir, 'memory', { type: 'memory' })]);
    assert.equal(memory.code, 0);
    assert.match(memory.stdout, /memory: nothing persists between processes/);
    const stateless = await runCli(['prune', '--config', await writeStorageConfig(dir, 'none', null)]);
    assert.equal(stateless.code, 1);
    assert.match(stateless.stderr, /no state_storage is configured/);
    const bad = await runCli(['prune', '--config', await writeStorageConfig(dir, 'bad', { type: 'memory' }), '--stale-after', 'soon']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--stale-after must be a positive duration/);
  });
});

describe('state_storage retention settings', () => {
  it('parses prune_interval and stale_turn_after on every backend; absent stays absent', () => {
    const storage = parseConfig(
      'state_storage: { type: sqlite, path: x.db, prune_interval: 10m, stale_turn_after: 1h30m }',
      {},
    ).state_storage;
    assert.deepEqual(storage, { type: 'sqlite', ttl_seconds: null, path: 'x.db', prune_interval_seconds: 600, stale_turn_after_seconds: 5400 });
    const redis = parseConfig('state_storage: { type: redis, connection_string: "redis://x", prune_interval: 30 }', {});
    assert.equal(redis.state_storage?.prune_interval_seconds, 30);
    assert.deepEqual(parseConfig('state_storage: { type: memory }', {}).state_storage, {
      type: 'memory',
      ttl_seconds: null,
      max_entries: 10_000,
    });
    assert.throws(
      () => parseConfig('state_storage: { type: sqlite, prune_interval: often }', {}),
      /state_storage\.prune_interval: .*must be a positive duration/,
    );
    assert.throws(() => parseConfig('state_storage: { type: sqlite, stale_after: 1h }', {}), /did you mean "stale_turn_after"/);
  });
});

describe('gateway retention', () => {
  const gatewayConfig = (path: string, extra: Record<string, number>): ParleyConfig => ({
    listen: { host: '127.0.0.1', port: 0 },
    state_storage: { type: 'sqlite', path, ttl_seconds: null, ...extra },
    model_providers: [],
    limits: { max_body_bytes: 1024 * 1024 },
  });

  it('marks stale turns failed at startup, without a sweeper', async () => {
    const seeded = await seed();
    const gateway = await createGateway(gatewayConfig(seeded.path, {}));
    try {
      assert.equal((await gateway.store!.getResponse(seeded.stale.id))?.status, 'failed');
      assert.equal((await gateway.store!.getResponse(seeded.recent.id))?.status, 'in_progress');
      assert.equal(await gateway.store!.countExpired?.(now()), 3, 'no sweeper: nothing pruned');
    } finally {
      await gateway.close();
    }
  });

  it('sweeps every prune_interval: expired records go, turns older than stale_turn_after fail', async () => {
    const seeded = await seed();
    const gateway = await createGateway(gatewayConfig(seeded.path, { prune_interval_seconds: 1, stale_turn_after_seconds: 300 }));
    try {
      const store = gateway.store!;
      const deadline = Date.now() + 30_000;
      while ((await store.countExpired?.(now())) !== 0 || (await store.getResponse(seeded.recent.id))?.status !== 'failed') {
        assert.ok(Date.now() < deadline, 'the sweeper pruned and failed within 30 s');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.deepEqual(await store.getResponse(seeded.live.id), seeded.live);
    } finally {
      await gateway.close();
    }
  });

  it('Sweeper: passes never overlap, errors are reported and the next pass still runs, stop() waits', async () => {
    const seeded = await seed();
    await withSqlite(seeded.path, async (store) => {
      let calls = 0;
      let active = 0;
      let overlapped = false;
      const errors: unknown[] = [];
      // runRetention uses these two methods only.
      const flaky = {
        failStaleTurns: async (before: number) => {
          calls++;
          active++;
          if (active > 1) overlapped = true;
          await new Promise((resolve) => setTimeout(resolve, 30));
          active--;
          if (calls === 1) throw new Error('store down');
          return store.failStaleTurns(before);
        },
        pruneExpired: (at: number) => store.pruneExpired(at),
      } as unknown as ConversationStore;
      const results: number[] = [];
      const sweeper = new Sweeper(flaky, {
        intervalSeconds: 0.01,
        staleTurnAfterSeconds: 3600,
        onResult: (result) => results.push(result.pruned),
        onError: (error) => errors.push(error),
      });
      sweeper.start();
      void sweeper.sweep(); // a manual pass alongside the timer shares the running one
      const deadline = Date.now() + 30_000;
      while (results.length < 2) {
        assert.ok(Date.now() < deadline);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await sweeper.stop();
      const callsAtStop = calls;
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(calls, callsAtStop, 'no pass after stop()');
      assert.equal(overlapped, false);
      assert.equal(errors.length, 1);
      assert.equal(results[0], 3, 'the first successful pass pruned the expired records');
    });
  });

  it('runRetention reports both counts; a second pass finds nothing left', async () => {
    const seeded = await seed();
    await withSqlite(seeded.path, async (store) => {
      assert.deepEqual(await runRetention(store, { staleTurnAfterSeconds: 3600 }), { pruned: 3, failedStaleTurns: 1 });
      assert.deepEqual(await runRetention(store, { staleTurnAfterSeconds: 3600 }), { pruned: 0, failedStaleTurns: 0 });
    });
  });
});
