// State moves between backends through the command line, losslessly:
//
//   memory --(writeExport, in-process)--> file0 --(parley import)--> SQLite --(parley export)--> file1
//   --(parley import)--> PostgreSQL --(parley export)--> file2 --(parley import)--> Redis
//   --(parley export)--> file3 --(parley import)--> SQLite
//
// A memory store lives inside one process, so the first hop is exported in-process with the same
// writer `parley export` uses; every other hop is a real `parley import` / `parley export` process on
// a real server. After each import, the store's exportAll snapshot must deep-equal the memory
// store's, and the longest chain must load identically. Also `parley prune` on PostgreSQL and Redis.

import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeExport } from '../../src/cli/export-format.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { PostgresStore } from '../../src/store/postgres.ts';
import { RedisStore } from '../../src/store/redis.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { ConversationStore } from '../../src/store/types.ts';
import { type PostgresServer, startPostgres } from '../helpers/postgres-server.ts';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.ts';
import {
  assistantMessage,
  completed,
  exportAll,
  newConversation,
  newTurn,
  seedVariedStore,
  userMessage,
  VARIED_STORE_COUNTS,
} from '../store-contract/suite.ts';
import { runCli, writeStorageConfig } from './run-cli.ts';

let dir: string;
let pg: PostgresServer;
let redis: RedisServer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'parley-roundtrip-'));
  [pg, redis] = await Promise.all([startPostgres(), startRedisServer()]);
});
after(async () => {
  await Promise.all([pg?.stop(), redis?.stop()]);
  await rm(dir, { recursive: true, force: true });
});

interface Backend {
  name: string;
  storage: Record<string, unknown>;
  /** The same store, opened in this process to compare (not yet opened). */
  open(): ConversationStore;
}

async function postgresBackend(name: string): Promise<Backend> {
  const database = await pg.createDatabase(name);
  const connectionString = pg.url({ database });
  return {
    name: 'postgres',
    storage: { type: 'postgres', connection_string: connectionString, pool_size: 4 },
    open: () => new PostgresStore({ connectionString, poolSize: 2, ttlSeconds: null }),
  };
}

function redisBackend(keyPrefix: string): Backend {
  return {
    name: 'redis',
    storage: { type: 'redis', connection_string: redis.url, key_prefix: keyPrefix },
    open: () => new RedisStore({ url: redis.url, ttlSeconds: null, keyPrefix }),
  };
}

function sqliteBackend(file: string): Backend {
  const path = join(dir, file);
  return { name: 'sqlite', storage: { type: 'sqlite', path }, open: () => new SqliteStore({ path, ttlSeconds: null }) };
}

async function inspect<T>(backend: Backend, body: (store: ConversationStore) => Promise<T>): Promise<T> {
  const store = backend.open();
  await store.open();
  try {
    return await body(store);
  } finally {
    await store.close();
  }
}

describe('export/import round trip through the CLI', () => {
  it('memory -> sqlite -> postgres -> redis -> sqlite keeps every record exactly', async () => {
    const memory = new MemoryStore({ maxEntries: 100_000, ttlSeconds: null });
    await memory.open();
    await seedVariedStore(memory);
    // A conversation whose turns also form one chain, with a large unicode item in the middle.
    const conversation = newConversation({ tenant: 'acme', user: 'long', itemCount: 1 });
    await memory.createConversation(conversation, [userMessage('start')]);
    let last: string | null = null;
    for (let i = 0; i < 60; i++) {
      const text = i === 30 ? `ünïcödé 🌍 ${'x'.repeat(300_000)}` : `q${i}`;
      const turn = newTurn({ tenant: 'acme', previousResponseId: last, conversationId: conversation.id, input: [userMessage(text)] });
      await memory.beginTurn(turn);
      await memory.finishTurn(turn.id, completed([assistantMessage(`a${i}`)], { costUsd: 0.1 }));
      last = turn.id;
    }
    const expected = await exportAll(memory);
    const chain = await memory.loadChain(last!);
    assert.equal(expected.responses.length, VARIED_STORE_COUNTS.responses + 60);

    let file = join(dir, 'hop-0.jsonl');
    const out = createWriteStream(file);
    await writeExport(memory, {}, out);
    out.end();
    await once(out, 'finish');
    await memory.close();

    const hops = [sqliteBackend('first.db'), await postgresBackend('roundtrip'), redisBackend('roundtrip:'), sqliteBackend('last.db')];
    for (const [i, backend] of hops.entries()) {
      const config = await writeStorageConfig(dir, `hop-${i + 1}`, backend.storage);
      const imported = await runCli(['import', '--config', config, file]);
      assert.equal(imported.code, 0, `${backend.name}: ${imported.stderr}`);
      assert.match(
        imported.stdout,
        new RegExp(`Imported ${expected.responses.length} responses and ${expected.conversations.length} conversations .*skipped 0 records`),
        backend.name,
      );
      await inspect(backend, async (store) => {
        assert.deepEqual(await exportAll(store), expected, `${backend.name} (hop ${i + 1}) holds what memory held`);
        assert.deepEqual(await store.loadChain(last!), chain, `${backend.name}: the chain loads identically`);
      });
      file = join(dir, `hop-${i + 1}.jsonl`);
      const exported = await runCli(['export', '--config', config], { stdoutFile: file });
      assert.equal(exported.code, 0, `${backend.name}: ${exported.stderr}`);
      const end = JSON.parse((await readFile(file, 'utf8')).trimEnd().split('\n').at(-1)!);
      assert.deepEqual(end, { type: 'end', responses: expected.responses.length, conversations: expected.conversations.length });
    }
  });
});

describe('parley prune on servers', () => {
  const now = () => Math.floor(Date.now() / 1000);

  /** 2 expired responses and 1 expired conversation, a turn left unfinished 2 hours ago, a live turn. */
  async function seedRetention(backend: Backend): Promise<{ stale: string; live: string }> {
    return inspect(backend, async (store) => {
      for (let i = 0; i < 2; i++) {
        const turn = newTurn({ createdAt: now() - 7200, expiresAt: now() + 1 });
        await store.beginTurn(turn);
        await store.finishTurn(turn.id, completed([assistantMessage('old')]));
      }
      await store.createConversation(newConversation({ createdAt: now() - 7200, expiresAt: now() + 1, itemCount: 1 }), [userMessage('old')]);
      const stale = newTurn({ createdAt: now() - 7200 });
      await store.beginTurn(stale);
      const live = newTurn();
      await store.beginTurn(live);
      await store.finishTurn(live.id, completed([assistantMessage('live')]));
      // Let the three records expire (expiry is in whole seconds).
      await new Promise((resolve) => setTimeout(resolve, 2100));
      return { stale: stale.id, live: live.id };
    });
  }

  const backends: [string, () => Promise<Backend>][] = [
    ['PostgreSQL', () => postgresBackend('prune')],
    ['Redis', async () => redisBackend('prune:')],
  ];
  for (const [name, make] of backends) {
    it(`on ${name}: prunes expired records and fails the stale turn; the dry run changes nothing`, async () => {
      const backend = await make();
      const { stale, live } = await seedRetention(backend);
      const config = await writeStorageConfig(dir, `prune-${backend.name}`, backend.storage);
      const dry = await runCli(['prune', '--config', config, '--dry-run']);
      assert.equal(dry.code, 0, dry.stderr);
      // countExpired is optional in the contract: a backend without it says so.
      assert.match(dry.stdout, /(3 expired records would be pruned|expired records: not counted)/, backend.name);
      assert.match(dry.stdout, /1 stale turn \(unfinished for more than 1h\) would be marked failed/, backend.name);
      assert.equal(await inspect(backend, async (store) => (await store.getResponse(stale))?.status), 'in_progress');

      const run = await runCli(['prune', '--config', config]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /marked 1 stale turn \(unfinished for more than 1h\) failed/, backend.name);
      assert.match(run.stdout, /pruned \d+ expired records?/, backend.name);
      await inspect(backend, async (store) => {
        const failed = await store.getResponse(stale);
        assert.equal(failed?.status, 'failed');
        assert.equal(failed?.error?.code, 'interrupted');
        assert.equal((await store.getResponse(live))?.status, 'completed');
        const left = await exportAll(store);
        assert.deepEqual(left.responses.map((r) => r.id).sort(), [stale, live].sort());
        assert.equal(left.conversations.length, 0);
      });
      const again = await runCli(['prune', '--config', config]);
      assert.match(again.stdout, /pruned 0 expired records.*marked 0 stale turns/, backend.name);
    });
  }
});
