// Export from one backend, import into the next: state moves between any two backends
// losslessly. Each hop imports the previous store's export into a new, empty store, and every
// store's exportAll snapshot must equal the first one's. Backends on servers (PostgreSQL, Redis)
// join by adding a hop.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MemoryStore } from '../../src/store/memory.ts';
import { PostgresStore } from '../../src/store/postgres.ts';
import { RedisStore } from '../../src/store/redis.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { ConversationStore } from '../../src/store/types.ts';
import {
  assistantMessage,
  completed,
  exportAll,
  newConversation,
  newTurn,
  seedVariedStore,
  userMessage,
  VARIED_STORE_COUNTS,
} from './suite.ts';
import { type PostgresServer, startPostgres } from '../helpers/postgres-server.ts';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.ts';

let dir: string;
let counter = 0;
let postgres: PostgresServer;
let redis: RedisServer;

type Hop = [name: string, make: () => ConversationStore | Promise<ConversationStore>];
const hops: Hop[] = [
  ['memory', () => new MemoryStore({ maxEntries: 100_000, ttlSeconds: null })],
  ['sqlite (file)', () => new SqliteStore({ path: join(dir, `hop-${++counter}.db`), ttlSeconds: null })],
  [
    'postgres',
    async () => {
      const { connectionString } = await postgres.createSchema('hop');
      return new PostgresStore({ connectionString, poolSize: 4, ttlSeconds: null });
    },
  ],
  ['redis', () => new RedisStore({ url: redis.url, ttlSeconds: null, keyPrefix: `hop-${++counter}:` })],
  ['memory', () => new MemoryStore({ maxEntries: 100_000, ttlSeconds: null })],
  ['sqlite (:memory:)', () => new SqliteStore({ path: ':memory:', ttlSeconds: null })],
];

describe('export and import across backends', () => {
  const opened: ConversationStore[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'parley-cross-'));
    [postgres, redis] = await Promise.all([startPostgres(), startRedisServer()]);
  });
  after(async () => {
    for (const store of opened) await store.close();
    await postgres?.stop();
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function open(make: Hop[1]): Promise<ConversationStore> {
    const store = await make();
    await store.open();
    opened.push(store);
    return store;
  }

  it(`carries everything through ${hops.map(([name]) => name).join(' -> ')}`, async () => {
    const first = await open(hops[0][1]);
    await seedVariedStore(first);
    // A long conversation whose turns also form one chain.
    const conversation = newConversation({ tenant: 'acme', user: 'long', itemCount: 1 });
    await first.createConversation(conversation, [userMessage('start')]);
    let previous: string | null = null;
    for (let i = 0; i < 300; i++) {
      const turn = newTurn({
        tenant: 'acme',
        previousResponseId: previous,
        conversationId: conversation.id,
        input: [userMessage(`q${i}`)],
      });
      await first.beginTurn(turn);
      await first.finishTurn(turn.id, completed([assistantMessage(`a${i}`)], { costUsd: 0.25 }));
      previous = turn.id;
    }
    const expected = await exportAll(first);
    assert.equal(expected.responses.length, VARIED_STORE_COUNTS.responses + 300);
    assert.equal(expected.conversations.length, VARIED_STORE_COUNTS.conversations + 1);
    const chain = await first.loadChain(previous!);

    let from = first;
    for (const [name, make] of hops.slice(1)) {
      const to = await open(make);
      assert.deepEqual(
        await to.importRecords(from.exportRecords({})),
        { responses: expected.responses.length, conversations: expected.conversations.length, skipped: 0 },
        name,
      );
      assert.deepEqual(await exportAll(to), expected, `${name} holds what the first store held`);
      assert.deepEqual(await to.loadChain(previous!), chain, name);
      from = to;
    }
  });
});
