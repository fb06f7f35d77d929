// RedisStore specifics beyond the shared contract, against real throwaway redis-servers: round
// trips per operation (counted with MONITOR), expiry done by Redis itself, no keys left behind,
// the key layout, ids full of glob and hash-tag characters, large items stored once, startup
// errors that never show the password, recovery after an outage, TLS, Sentinel and Cluster.

import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { ContextCache } from '../../src/engine/context-cache.ts';
import type { Item, MessageItem } from '../../src/protocol/types.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { parseRedisUrl, RedisStore, type RedisStoreOptions } from '../../src/store/redis.ts';
import type {
  ConversationQuery,
  ConversationStore,
  ExportRecord,
  StoredConversation,
  StoredResponse,
} from '../../src/store/types.ts';
import { DEFAULT_TENANT, StoreConflictError } from '../../src/store/types.ts';
import {
  type RedisServer,
  startRedisCluster,
  startRedisSentinel,
  startRedisServer,
} from '../helpers/redis-server.ts';
import {
  assistantMessage,
  completed,
  finished,
  newConversation,
  newId,
  newTurn,
  userMessage,
} from '../store-contract/suite.ts';

const NOW = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
// URL-special characters on purpose: the URL carries it encoded, Redis gets it decoded.
const PASSWORD = 'p@ss:w/rd?#%&= ö';

let server: RedisServer;
let admin: Redis;
let counter = 0;
const stores: RedisStore[] = [];

before(async () => {
  server = await startRedisServer({ password: PASSWORD });
  admin = new Redis(server.url);
  await admin.ping(); // ready: its own ready check (INFO) is behind it, not in a monitored step
});

after(async () => {
  for (const store of stores) await store.close();
  admin.disconnect();
  await server.stop();
});

function freshPrefix(): string {
  return `t${++counter}:`;
}

/** Closed after all tests, whatever happens (an open client would keep the process alive). */
function track(store: RedisStore): RedisStore {
  stores.push(store);
  return store;
}

async function opened(options: Partial<RedisStoreOptions> = {}): Promise<RedisStore> {
  const store = track(
    new RedisStore({ url: server.url, ttlSeconds: null, keyPrefix: freshPrefix(), ...options }),
  );
  await store.open();
  return store;
}

/** Every key under `prefix` (the prefix's glob characters escaped). */
async function keysOf(prefix: string, client: Redis = admin): Promise<string[]> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys.sort();
}

/** Polls `store.ping()` until it answers (the client has reconnected); its last error after 15 s. */
async function untilPingAnswers(store: RedisStore): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await store.ping();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(50);
    }
  }
}

async function storeTurn(store: RedisStore, turn: StoredResponse, output: Item[] = [assistantMessage('ok')]) {
  await store.beginTurn(turn);
  const result = completed(output);
  await store.finishTurn(turn.id, result);
  return finished(turn, result);
}

async function storeChain(store: RedisStore, length: number): Promise<StoredResponse[]> {
  const chain: StoredResponse[] = [];
  let previous: string | null = null;
  for (let i = 0; i < length; i++) {
    const turn = newTurn({ previousResponseId: previous, input: [userMessage(`q${i}`)] });
    chain.push(await storeTurn(store, turn, [assistantMessage(`a${i}`)]));
    previous = turn.id;
  }
  return chain;
}

/**
 * The change token seen by `reader` moves on every kind of change another process (`writer`, its
 * own connection and counter) makes to stored responses and to conversations' item lists (an item
 * or a conversation deleted), and on none of the ordinary turn writes.
 */
async function assertChangeToken(
  reader: RedisStore,
  writer: RedisStore,
  keys: { del(key: string): Promise<number> } = admin,
): Promise<void> {
  const seen = new Set<string>();
  let token = await reader.changeToken();
  seen.add(token);
  const moves = async (what: string, change: () => Promise<unknown>) => {
    await change();
    const next = await reader.changeToken();
    assert.ok(!seen.has(next), `${what}: the token moved to a value never seen before (${token} -> ${next})`);
    seen.add(next);
    token = next;
    assert.equal(await writer.changeToken(), next, `${what}: the writer sees the same token`);
  };
  const stays = async (what: string, change: () => Promise<unknown>) => {
    await change();
    assert.equal(await reader.changeToken(), token, `${what}: the token stayed`);
  };

  // Ordinary turns, from either store, leave it alone: a cache survives every turn.
  const chain = await storeChain(writer, 3);
  await stays('turns of the other store', () => storeTurn(writer, newTurn({ previousResponseId: chain[2].id })));
  await stays('turns of the reader', () => storeTurn(reader, newTurn({ previousResponseId: chain[2].id })));
  const background = newTurn({ status: 'queued' });
  await stays('beginTurn', () => writer.beginTurn(background));
  await stays('saveProgress', () => writer.saveProgress(background.id, { status: 'in_progress', output: [assistantMessage('so far')] }));
  await stays('finishTurn (cancelled)', () => writer.finishTurn(background.id, completed([], { status: 'cancelled' })));
  const conversation = newConversation({ user: 'token-user' });
  await stays('conversation writes that remove nothing', async () => {
    await writer.createConversation(conversation, [userMessage('c')]);
    await storeTurn(writer, newTurn({ conversationId: conversation.id }));
    await writer.appendConversationItems(conversation.id, [userMessage('more')]);
    await writer.updateConversation(conversation.id, { metadata: { a: 'b' } });
  });
  await stays('import of records that exist already (skipped, never overwritten)', async () => {
    const summary = await writer.importRecords([{ type: 'response', response: chain[0] }]);
    assert.equal(summary.skipped, 1);
  });
  await stays('deleting an unknown response', () => writer.deleteResponse(newId('resp')));
  await stays('a prune with nothing due', () => writer.pruneExpired(NOW()));
  await stays('failStaleTurns with nothing stale', () => writer.failStaleTurns(NOW() - 3600));

  // Every way a stored response goes or changes status, or an item leaves a conversation, moves it.
  const [first] = (await writer.loadConversationItems(conversation.id))!;
  await moves('deleteConversationItem', () => writer.deleteConversationItem(conversation.id, first.id));
  await moves('deleteConversation', () => writer.deleteConversation(conversation.id));
  await moves('deleteResponse', () => writer.deleteResponse(chain[1].id));
  await storeTurn(writer, newTurn({ user: 'token-user' }));
  await moves('deleteUserData', () => writer.deleteUserData('default', 'token-user'));
  const stale = newTurn({ createdAt: NOW() - 7200 });
  await writer.beginTurn(stale);
  await moves('failStaleTurns', () => writer.failStaleTurns(NOW() - 3600));
  await storeTurn(writer, newTurn({ expiresAt: NOW() + 3600 }));
  await moves('pruneExpired deleting a response', () => writer.pruneExpired(NOW() + 7200));
  // The token key itself lost (a flush, an operator's cleanup): it comes back as a new value.
  await moves('the token key lost', () => keys.del(`${reader.keyPrefix}v`));
}

/**
 * The commands a client sent while `run` ran, as MONITOR saw them (commands a script issues
 * server-side are left out: they are not round trips).
 */
async function commandsSent(run: () => Promise<unknown>): Promise<string[]> {
  // From `admin`, which is connected already: a client opened here sent its ready check (INFO)
  // whenever it got to it, now and then after MONITOR had started, and the step was charged for it.
  const monitor = await admin.monitor();
  const seen: string[][] = [];
  const marker = `end-${newId('m')}`;
  const done = new Promise<void>((resolve) => {
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (args[0]?.toLowerCase() === 'echo' && args[1] === marker) resolve();
      else if (source !== 'lua') seen.push(args);
    });
  });
  try {
    await run();
    await admin.echo(marker);
    await done;
  } finally {
    monitor.disconnect();
  }
  return seen.map((args) => args[0].toLowerCase());
}

describe('RedisStore: round trips', () => {
  it('loads a 1,000-turn chain with one command (EVALSHA), the same as a single turn', async () => {
    const store = await opened();
    const chain = await storeChain(store, 1000);
    let loaded: StoredResponse[] | null = null;
    const sent = await commandsSent(async () => {
      loaded = await store.loadChain(chain[999].id);
    });
    assert.deepEqual(sent, ['evalsha']);
    assert.deepEqual(loaded, chain);
    assert.deepEqual(await commandsSent(() => store.loadChain(chain[0].id)), ['evalsha']);
  });

  it('costs one command per operation', async () => {
    const store = await opened();
    const conversation = newConversation({ user: 'u', metadata: { k: 'v' } });
    const turn = newTurn({ conversationId: conversation.id });
    const steps: [string, () => Promise<unknown>][] = [
      ['createConversation', () => store.createConversation(conversation, [userMessage('hi')])],
      ['beginTurn', () => store.beginTurn(turn)],
      ['saveProgress', () => store.saveProgress(turn.id, { status: 'in_progress', output: [] })],
      [
        'finishTurn (+ conversation append)',
        () => store.finishTurn(turn.id, completed([assistantMessage('a')])),
      ],
      ['getResponse', () => store.getResponse(turn.id)],
      ['listInputItems', () => store.listInputItems(turn.id, { limit: 10, order: 'asc' })],
      ['getConversation', () => store.getConversation(conversation.id)],
      ['loadConversationItems', () => store.loadConversationItems(conversation.id)],
      [
        'listConversationItems',
        () => store.listConversationItems(conversation.id, { limit: 2, order: 'desc' }),
      ],
      [
        'appendConversationItems',
        () => store.appendConversationItems(conversation.id, [userMessage('more')]),
      ],
      ['getConversationItem', () => store.getConversationItem(conversation.id, turn.input[0].id)],
      ['updateConversation', () => store.updateConversation(conversation.id, { metadata: { k: 'w' } })],
      [
        'listConversations',
        () =>
          store.listConversations({
            tenant: 'default',
            user: 'u',
            metadata: { k: 'w' },
            limit: 10,
            order: 'desc',
          }),
      ],
      ['acquireConversationLease', () => store.acquireConversationLease(conversation.id, 'a', 10_000)],
      ['renewConversationLease', () => store.renewConversationLease(conversation.id, 'a', 10_000)],
      ['releaseConversationLease', () => store.releaseConversationLease(conversation.id, 'a')],
      ['deleteConversationItem', () => store.deleteConversationItem(conversation.id, turn.input[0].id)],
      ['deleteConversation', () => store.deleteConversation(conversation.id)],
      ['deleteResponse', () => store.deleteResponse(turn.id)],
      ['pruneExpired', () => store.pruneExpired(NOW())],
      ['ping', () => store.ping()],
    ];
    for (const [name, step] of steps) {
      const sent = await commandsSent(step);
      assert.equal(sent.length, 1, `${name} sent ${sent.join(', ')}`);
    }
  });

  it('sends the writes of turns made together in one socket write; the change-token read goes at once', async () => {
    const store = await opened();
    let writes = 0;
    const write = Socket.prototype.write;
    Socket.prototype.write = function (this: Socket, ...args: unknown[]) {
      if (this.remotePort === server.port) writes++;
      return (write as (...a: unknown[]) => boolean).apply(this, args);
    } as typeof write;
    try {
      const turns = Array.from({ length: 5 }, () => newTurn({ input: [userMessage('q')] }));
      await Promise.all(turns.map((turn) => store.beginTurn(turn)));
      assert.equal(writes, 1, 'five turns begun in one turn of the event loop: one write');
      writes = 0;
      // Not held for the pipeline's setImmediate: this read stands before the upstream call.
      const token = store.changeToken();
      assert.equal(writes, 1, 'the change-token read is written before the call returns');
      await token;
      for (const turn of turns) assert.deepEqual((await store.getResponse(turn.id))?.input, turn.input);
    } finally {
      Socket.prototype.write = write;
    }
  });

  it('falls back to EVAL when the server lost its scripts (restart, failover, SCRIPT FLUSH)', async () => {
    const store = await opened();
    const chain = await storeChain(store, 3);
    await admin.script('FLUSH');
    const sent = await commandsSent(async () => assert.deepEqual(await store.loadChain(chain[2].id), chain));
    assert.deepEqual(sent, ['evalsha', 'eval']);
    assert.deepEqual(await commandsSent(() => store.loadChain(chain[2].id)), ['evalsha']);
  });
});

describe('RedisStore: expiry by Redis itself', () => {
  it('drops a finished turn and a conversation at their expiry without any prune', async () => {
    const prefix = freshPrefix();
    const store = await opened({ keyPrefix: prefix, ttlSeconds: 1 });
    const createdAt = NOW();
    const conversation = newConversation({ createdAt, user: 'ttl-user', metadata: { a: 'b' } });
    await store.createConversation(conversation, [userMessage('x')]);
    const turn = await storeTurn(store, newTurn({ createdAt, conversationId: conversation.id }));
    assert.equal((await store.getResponse(turn.id))?.expiresAt, createdAt + 1);
    // Every key of a record carries the record's expiry (PEXPIREAT createdAt + ttl).
    for (const key of await keysOf(prefix)) {
      const at = Number(await admin.call('PEXPIRETIME', key));
      assert.ok(at > 0, `${key} has no expiry`);
      // The sequence counter copies the index's remaining time, so it may be a millisecond off.
      if (key !== `${prefix}x`)
        assert.ok(Math.abs(at - (createdAt + 1) * 1000) <= 2, `${key} expires at ${at}`);
    }
    await sleep((createdAt + 1) * 1000 - Date.now() + 150);
    // Only the expiry index is left (ids and times, no data); it outlives its members by a day
    // so that pruneExpired can still count them, and pruneExpired empties it.
    assert.deepEqual(await keysOf(prefix), [`${prefix}x`]);
    assert.equal(await store.getResponse(turn.id), null);
    assert.equal(await store.getConversation(conversation.id), null);
    assert.equal(await store.pruneExpired(NOW()), 2);
    assert.deepEqual(await keysOf(prefix), []);
  });

  it('keeps an unfinished turn past its expiry (hidden) so it can still finish, then drops it', async () => {
    const prefix = freshPrefix();
    const store = await opened({ keyPrefix: prefix });
    const turn = newTurn({ expiresAt: NOW() - 5 });
    await store.beginTurn(turn);
    assert.equal(await store.getResponse(turn.id), null, 'expired, so invisible');
    const ttl = await admin.pttl(`${prefix}r:${turn.id}`);
    assert.ok(ttl > 59 * 60 * 1000, `kept for the in-progress grace, pttl ${ttl}`);
    await store.finishTurn(turn.id, completed([assistantMessage('late')]));
    assert.equal(await admin.exists(`${prefix}r:${turn.id}`), 0, 'dropped as soon as it finished');
  });

  it('lists no expired conversation and cleans index entries whose data Redis dropped', async () => {
    const prefix = freshPrefix();
    const store = await opened({ keyPrefix: prefix });
    const keep = newConversation({ user: 'idx', metadata: { t: '1' } });
    await store.createConversation(keep, []);
    const soon = newConversation({ user: 'idx', metadata: { t: '1' }, expiresAt: NOW() + 1 });
    await store.createConversation(soon, [userMessage('bye')]);
    assert.equal(
      (await store.listConversations({ tenant: 'default', user: 'idx', limit: 10, order: 'asc' }))
        .conversations.length,
      2,
    );
    await sleep(soon.expiresAt! * 1000 - Date.now() + 100);
    assert.equal(await admin.exists(`${prefix}c:${soon.id}`), 0, 'Redis dropped it');
    const listed = await store.listConversations({
      tenant: 'default',
      user: 'idx',
      metadata: { t: '1' },
      limit: 10,
      order: 'asc',
    });
    assert.deepEqual(listed.conversations, [keep]);
    assert.equal(await store.pruneExpired(NOW()), 1);
    for (const index of ['ca:default', 'cu:7:defaultidx', 'cm:7:default3:"t""1"']) {
      assert.deepEqual(await admin.zrange(`${prefix}${index}`, '0', '-1'), [
        await admin.hget(`${prefix}c:${keep.id}`, 'q'),
      ]);
    }
  });
});

describe('RedisStore: nothing left behind', () => {
  it('leaves no key after every response and conversation is deleted', async () => {
    const prefix = freshPrefix();
    const store = await opened({ keyPrefix: prefix, ttlSeconds: 3600 });
    const chain = await storeChain(store, 5);
    const conversations = [];
    for (let i = 0; i < 3; i++) {
      const conversation = newConversation({
        user: `user-${i % 2}`,
        metadata: { team: 'red', n: String(i) },
      });
      await store.createConversation(conversation, [userMessage('first')]);
      await store.appendConversationItems(conversation.id, [
        userMessage('second'),
        assistantMessage('third'),
      ]);
      await store.updateConversation(conversation.id, { metadata: { team: 'blue' } });
      await storeTurn(store, newTurn({ conversationId: conversation.id, input: [userMessage('in a turn')] }));
      await store.deleteConversationItem(
        conversation.id,
        (await store.loadConversationItems(conversation.id))![0].id,
      );
      assert.ok(await store.acquireConversationLease(conversation.id, 'me', 60_000));
      await store.releaseConversationLease(conversation.id, 'me');
      conversations.push(conversation);
    }
    const inConversations = await keysOf(prefix);
    assert.ok(inConversations.length > 10, inConversations.join(' '));

    for (const turn of chain) assert.equal(await store.deleteResponse(turn.id), true);
    const responses = await admin.keys(`${prefix}r:*`);
    for (const id of responses) await store.deleteResponse(id.slice(`${prefix}r:`.length));
    for (const conversation of conversations)
      assert.equal(await store.deleteConversation(conversation.id), true);
    // Only the change token (one short string) stays: the deletes set it.
    assert.deepEqual(await keysOf(prefix), [`${prefix}v`]);
  });

  it('leaves no key after pruning everything', async () => {
    const prefix = freshPrefix();
    const store = await opened({ keyPrefix: prefix, ttlSeconds: 3600 });
    await storeChain(store, 3);
    const conversation = newConversation({ user: 'u', metadata: { a: '1' } });
    await store.createConversation(conversation, [userMessage('x')]);
    await storeTurn(store, newTurn({ conversationId: conversation.id }));
    assert.equal(await store.countExpired(NOW()), 0, 'nothing is due yet');
    assert.equal(await store.countExpired(NOW() + 7200), 5, 'a dry run counts what the prune removes');
    assert.equal(await store.pruneExpired(NOW() + 7200), 5);
    assert.equal(await store.countExpired(NOW() + 7200), 0);
    assert.deepEqual(await keysOf(prefix), [`${prefix}v`], 'only the change token, which the prune set');
  });
});

describe('RedisStore: key layout and odd ids', () => {
  it('writes exactly the documented keys, a turn only its own items, under the prefix', async () => {
    const prefix = freshPrefix();
    const store = await opened({ keyPrefix: prefix });
    const root = await storeTurn(store, newTurn({ input: [userMessage('a')] }));
    const conversation = newConversation({ user: 'ann', metadata: { k: 'v' } });
    await store.createConversation(conversation, []);
    const child = await storeTurn(
      store,
      newTurn({
        previousResponseId: root.id,
        conversationId: conversation.id,
        input: [userMessage('b')],
        user: 'ann',
      }),
    );
    const unfinished = newTurn({ tenant: 'acme' });
    await store.beginTurn(unfinished);
    await store.acquireConversationLease(conversation.id, 'h', 60_000);
    assert.deepEqual(
      await keysOf(prefix),
      [
        `c:${conversation.id}`,
        `ca:default`,
        `ci:${conversation.id}`,
        `cm:7:default3:"k""v"`,
        `cn:default`,
        `cu:7:defaultann`,
        `cx:${conversation.id}`,
        `l:${conversation.id}`,
        `r:${child.id}`,
        `r:${root.id}`,
        `r:${unfinished.id}`,
        `ru:7:defaultann`,
        `u`,
      ]
        .map((key) => prefix + key)
        .sort(),
    );
    // A response is one string: its head fields, then its own two items (ids beside their data,
    // not inside it), never its parent's.
    assert.equal(await admin.type(`${prefix}r:${child.id}`), 'string');
    const record = (await admin.get(`${prefix}r:${child.id}`))!;
    const lp = (text: string) => `${Buffer.byteLength(text)}:${text}`;
    assert.ok(
      record.startsWith(
        `9:completed-${lp(root.id)}${lp(conversation.id)}7:default3:ann-${lp(child.model)}${lp(String(child.createdAt))}`,
      ),
      record,
    );
    const [input, output] = [child.input[0], child.output[0]];
    assert.ok(record.includes(`1:1${lp(input.id!)}`), 'one input item, its id first');
    assert.ok(record.includes(`1:1${lp(output.id!)}`), 'one output item, its id first');
    assert.equal(record.split(input.id!).length, 2, 'the id once, not in the data as well');
    assert.ok(!record.includes(root.input[0].id!) && !record.includes(root.output[0].id!));
    assert.deepEqual(await admin.zrange(`${prefix}u`, '0', '-1'), [unfinished.id]);
    assert.deepEqual(await admin.zrange(`${prefix}ru:7:defaultann`, '0', '-1'), [child.id]);
    assert.equal(await admin.get(`${prefix}l:${conversation.id}`), 'h');
  });

  it('keeps ids with glob, hash-tag, separator, unicode and NUL characters apart', async () => {
    const store = await opened();
    const odd = ['{a}', 'a:b', 'a*', '?', '[x]', 'r:a', 'a\\', 'ключ 🔑', 'nul\u0000x', 'a:i0', ''];
    for (const id of odd) {
      const turn = newTurn({ id: `resp_${id}`, input: [userMessage(`for ${id}`)] });
      await storeTurn(store, turn, [assistantMessage(`answer ${id}`)]);
      const conversation = newConversation({
        id: `conv_${id}`,
        user: `user ${id}`,
        metadata: { [`k:${id}`]: id },
      });
      await store.createConversation(conversation, [userMessage(`c ${id}`, `msg_${id}`)]);
    }
    for (const id of odd) {
      const got = await store.getResponse(`resp_${id}`);
      assert.deepEqual(got?.input, [userMessage(`for ${id}`, got!.input[0].id)]);
      const listed = await store.listConversations({
        tenant: 'default',
        user: `user ${id}`,
        limit: 10,
        order: 'asc',
      });
      assert.deepEqual(
        listed.conversations.map((c) => c.id),
        [`conv_${id}`],
      );
      const byMetadata = await store.listConversations({
        tenant: 'default',
        metadata: { [`k:${id}`]: id },
        limit: 10,
        order: 'asc',
      });
      assert.deepEqual(
        byMetadata.conversations.map((c) => c.id),
        [`conv_${id}`],
      );
      assert.deepEqual(
        await store.getConversationItem(`conv_${id}`, `msg_${id}`),
        userMessage(`c ${id}`, `msg_${id}`),
      );
    }
    // Metadata pairs that concatenate alike stay apart: ("ab", "c") vs ("a", "bc").
    const left = newConversation({ metadata: { ab: 'c' } });
    const right = newConversation({ metadata: { a: 'bc' } });
    await store.createConversation(left, []);
    await store.createConversation(right, []);
    const found = await store.listConversations({
      tenant: 'default',
      metadata: { ab: 'c' },
      limit: 10,
      order: 'asc',
    });
    assert.deepEqual(found.conversations, [left]);
  });

  it('keeps stores with different prefixes apart on one server', async () => {
    const a = await opened();
    const b = await opened();
    const turn = await storeTurn(a, newTurn());
    assert.equal(await b.getResponse(turn.id), null);
    await b.beginTurn(newTurn({ id: turn.id }));
    assert.deepEqual(await a.getResponse(turn.id), turn);
  });
});

describe('RedisStore: sizes', () => {
  it('stores each 1 MB item once: a chain of big turns grows by its own bytes, not its history', async () => {
    const prefix = freshPrefix();
    const store = await opened({ keyPrefix: prefix });
    const big = (n: number) => `${n}`.padEnd(1_048_576, 'x');
    let previous: string | null = null;
    const chain: StoredResponse[] = [];
    for (let i = 0; i < 6; i++) {
      const turn = newTurn({ previousResponseId: previous, input: [userMessage(big(i))] });
      chain.push(await storeTurn(store, turn, [assistantMessage(`short ${i}`)]));
      previous = turn.id;
    }
    for (const turn of chain) {
      const bytes = Number(await admin.memory('USAGE', `${prefix}r:${turn.id}`, 'SAMPLES', 0));
      // One copy plus allocator rounding (jemalloc size classes); a copy of the history would be i MB more.
      assert.ok(bytes > 1_048_576 && bytes < 1_600_000, `${turn.id}: ${bytes} bytes`);
    }
    assert.deepEqual(await store.loadChain(chain[5].id), chain);
    const conversation = newConversation();
    await store.createConversation(conversation, []);
    const item = userMessage(big(7));
    await store.appendConversationItems(conversation.id, [item]);
    assert.deepEqual(await store.loadConversationItems(conversation.id), [item]);
  });

  it('keeps an ordinary turn to its items plus a few hundred bytes (one string per response)', async () => {
    const prefix = freshPrefix();
    const store = await opened({ keyPrefix: prefix });
    const question = 'Could you turn that into a day-by-day plan, keeping the walking under ten kilometres a day?';
    const answer = 'Start in Alfama early, then walk to the miradouro before lunch. '.repeat(6);
    let previous: string | null = null;
    let itemBytes = 0;
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) {
      const turn = newTurn({ previousResponseId: previous, input: [userMessage(`Turn ${i}: ${question}`)] });
      const stored = await storeTurn(store, turn, [assistantMessage(answer)]);
      itemBytes += Buffer.byteLength(JSON.stringify([...stored.input, ...stored.output])) - 3;
      ids.push(turn.id);
      previous = turn.id;
    }
    let bytes = 0;
    for (const id of ids) bytes += Number(await admin.memory('USAGE', `${prefix}r:${id}`, 'SAMPLES', 0));
    // The hash layout this replaced cost ~1.4 KiB a turn besides the items.
    const overhead = (bytes - itemBytes) / ids.length;
    assert.ok(overhead < 600, `${Math.round(overhead)} bytes a turn besides ${Math.round(itemBytes / ids.length)} of items`);
  });

  it('appends a conversation turn as pointers into its record, kept as long as the conversation', async () => {
    const prefix = freshPrefix();
    const store = await opened({ keyPrefix: prefix });
    const now = NOW();
    const big = 'x'.repeat(100_000);
    // A conversation for a day; a turn that expires in an hour; one without a conversation expiry.
    const conversation = newConversation({ expiresAt: now + 86_400, itemCount: 1 });
    await store.createConversation(conversation, [userMessage('hello')]);
    const turn = newTurn({ conversationId: conversation.id, expiresAt: now + 3600, input: [userMessage(big)] });
    const stored = await storeTurn(store, turn, [assistantMessage(`${big} back`)]);
    // Which members of a conversation point into a record.
    const pointers = async (id: string) =>
      (await admin.zrange(`${prefix}ci:${id}`, '0', '-1')).map((m) => m[m.indexOf(':') + 1] === '>');
    assert.deepEqual(
      await pointers(conversation.id),
      [false, true, true],
      'the turn items point into the record; the item added directly is its own copy',
    );
    const usage = Number(await admin.memory('USAGE', `${prefix}ci:${conversation.id}`, 'SAMPLES', 0));
    assert.ok(usage < 2_000, `the conversation holds ${usage} bytes for two 100 KB items`);
    const ttl = await admin.pttl(`${prefix}r:${turn.id}`);
    assert.ok(ttl > 86_000_000, `the record lasts as long as the conversation (${ttl} ms)`);
    const items = [userMessage('hello', (await store.loadConversationItems(conversation.id))![0].id), ...stored.input, ...stored.output];
    assert.deepEqual(await store.loadConversationItems(conversation.id), items);
    assert.deepEqual(await store.listConversationItems(conversation.id, { limit: 1, order: 'desc', after: stored.output[0].id }), {
      items: [stored.input[0]],
      hasMore: true,
    });
    assert.deepEqual(await store.getConversationItem(conversation.id, stored.input[0].id), stored.input[0]);
    assert.deepEqual(await store.loadConversationItemsFrom(conversation.id, 1), { items: items.slice(1), itemCount: 3 });
    // A fork gets copies: the source turn deleted, the fork keeps its items.
    const fork = newConversation();
    await store.forkConversation(conversation.id, stored.output[0].id, fork);
    assert.deepEqual(await pointers(fork.id), [false, false, false]);
    // Deleting the response first copies its items into the members pointing at them.
    assert.equal(await store.deleteResponse(turn.id), true);
    assert.deepEqual(await pointers(conversation.id), [false, false, false]);
    assert.deepEqual(await store.loadConversationItems(conversation.id), items);
    assert.deepEqual(await store.loadConversationItems(fork.id), items);

    // Pruning a response past its expiry does the same; a conversation without expiry keeps the
    // record as long as it lives (hidden from its own expiry on).
    const forever = newConversation();
    await store.createConversation(forever, []);
    const short = newTurn({ conversationId: forever.id, expiresAt: now + 1 });
    const kept = await storeTurn(store, short, [assistantMessage('brief')]);
    assert.equal(await admin.pttl(`${prefix}r:${short.id}`), -1);
    assert.equal(await store.pruneExpired(now + 2), 1);
    assert.equal(await admin.exists(`${prefix}r:${short.id}`), 0);
    assert.deepEqual(await store.loadConversationItems(forever.id), [...kept.input, ...kept.output]);
    // deleteUserData of the turn's user keeps another user's conversation whole.
    const theirs = newTurn({ conversationId: forever.id, user: 'leaving' });
    const theirsStored = await storeTurn(store, theirs, [assistantMessage('bye')]);
    await store.deleteUserData(DEFAULT_TENANT, 'leaving');
    assert.deepEqual(await store.loadConversationItems(forever.id), [
      ...kept.input,
      ...kept.output,
      ...theirsStored.input,
      ...theirsStored.output,
    ]);
  });

  it('round-trips NUL, lone surrogates and every plane in ids, metadata and items', async () => {
    const store = await opened();
    const text = 'a\u0000b \ud800 \udfff 😀 \u{10ffff} \u2028 "\\';
    const conversation = newConversation({ user: text, metadata: { [text]: text } });
    const items = [userMessage(text, `msg_${text}`)];
    await store.createConversation(conversation, items);
    const got = await store.getConversation(conversation.id);
    // JSON keeps lone surrogates as escapes, so records round-trip exactly.
    assert.deepEqual(got, { ...conversation, itemCount: 1 });
    assert.deepEqual(await store.loadConversationItems(conversation.id), items);
    // As index keys and item ids they are UTF-8 (a lone surrogate becomes U+FFFD); still found.
    assert.deepEqual(
      (
        await store.listConversations({
          tenant: 'default',
          user: text,
          metadata: { [text]: text },
          limit: 5,
          order: 'asc',
        })
      ).conversations,
      [got],
    );
    assert.deepEqual(await store.getConversationItem(conversation.id, `msg_${text}`), items[0]);

    // In a response record too: ids (its own, its parent's, its items'), user, model, tenant.
    const root = await storeTurn(store, newTurn({ id: `resp_${text}`, user: text, model: text, tenant: text, input: items }));
    const child = await storeTurn(
      store,
      newTurn({ previousResponseId: root.id, conversationId: conversation.id, input: [userMessage(text, `in_${text}`)] }),
      [assistantMessage(text, `out_${text}`)],
    );
    assert.deepEqual(await store.getResponse(root.id), root);
    assert.deepEqual(await store.loadChain(child.id), [root, child]);
    const exported: ExportRecord[] = [];
    for await (const record of store.exportRecords({ tenant: text })) exported.push(record);
    assert.deepEqual(exported, [{ type: 'response', response: root }]);
    const loaded = await store.loadConversationItems(conversation.id);
    assert.deepEqual(loaded, [...items, ...child.input, ...child.output]);
    assert.deepEqual(await store.getConversationItem(conversation.id, `out_${text}`), child.output[0]);
    assert.equal(await store.deleteUserData(text, text).then((r) => r.responses), 1);
  });

  it('appends a 5,000-item batch (past Lua unpack limits) and lists it in pages', async () => {
    const store = await opened();
    const conversation = newConversation();
    await store.createConversation(conversation, []);
    const items = Array.from({ length: 5000 }, (_, i) => userMessage(`item ${i}`, `msg_${i}`));
    assert.equal((await store.appendConversationItems(conversation.id, items))?.itemCount, 5000);
    const turn = newTurn({ input: items });
    await store.beginTurn(turn);
    assert.deepEqual((await store.getResponse(turn.id))?.input, items);
    const page = await store.listConversationItems(conversation.id, {
      limit: 3,
      order: 'desc',
      after: 'msg_4000',
    });
    assert.deepEqual(page, { items: [items[3999], items[3998], items[3997]], hasMore: true });
  });
});

describe('RedisStore: concurrency across instances', () => {
  it('two stores on one prefix append concurrent turns whole, and one lease holder wins', async () => {
    const prefix = freshPrefix();
    const a = await opened({ keyPrefix: prefix });
    const b = await opened({ keyPrefix: prefix });
    const conversation = newConversation();
    await a.createConversation(conversation, []);
    const turns = Array.from({ length: 30 }, (_, t) =>
      newTurn({ conversationId: conversation.id, input: [userMessage(`q${t}`), userMessage(`q${t}b`)] }),
    );
    await Promise.all(turns.map((turn, t) => (t % 2 ? a : b).beginTurn(turn)));
    await Promise.all(
      turns.map((turn, t) => (t % 2 ? b : a).finishTurn(turn.id, completed([assistantMessage(`a${t}`)]))),
    );
    const items = (await b.loadConversationItems(conversation.id))!;
    assert.equal(items.length, 90);
    for (let start = 0; start < 90; start += 3) {
      const t = turns.findIndex((turn) => turn.input[0].id === items[start].id);
      assert.deepEqual(items.slice(start, start + 2), turns[t].input);
      assert.equal((items[start + 2] as MessageItem).content[0].type, 'output_text');
    }
    const wins = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? a : b).acquireConversationLease(conversation.id, `h${i}`, 5000),
      ),
    );
    assert.equal(wins.filter(Boolean).length, 1);
  });
});

describe('RedisStore: saveProgress', () => {
  it('replaces the progress output of an unfinished turn only', async () => {
    const store = await opened();
    const turn = newTurn({ status: 'queued' });
    await store.beginTurn(turn);
    const partial = [assistantMessage('par')];
    assert.equal(await store.saveProgress(turn.id, { status: 'in_progress', output: partial }), true);
    assert.deepEqual(await store.getResponse(turn.id), { ...turn, status: 'in_progress', output: partial });
    const more = [assistantMessage('partial'), assistantMessage('second')];
    assert.equal(await store.saveProgress(turn.id, { status: 'in_progress', output: more }), true);
    assert.deepEqual((await store.getResponse(turn.id))?.output, more);
    const result = completed([assistantMessage('done')]);
    await store.finishTurn(turn.id, result);
    assert.equal(await store.saveProgress(turn.id, { status: 'in_progress', output: partial }), false);
    assert.equal(await store.saveProgress(newId('resp'), { status: 'in_progress', output: partial }), false);
    assert.deepEqual(await store.getResponse(turn.id), finished(turn, result));
  });
});

describe('RedisStore: connecting', () => {
  it('accepts a URL-encoded password with URL-special characters and describes itself without it', async () => {
    const store = await opened();
    await store.ping();
    assert.ok(
      !store.description.includes(PASSWORD) && !store.description.includes(encodeURIComponent(PASSWORD)),
    );
    assert.match(store.description, /^redis \(redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0, prefix "t\d+:"\)$/);
    assert.equal(parseRedisUrl(server.url).password, PASSWORD);
  });

  async function startupError(url: string, options: Partial<RedisStoreOptions> = {}): Promise<Error> {
    const store = new RedisStore({ url, ttlSeconds: null, ...options });
    const error = await store.open().then(
      () => assert.fail('open() should have failed'),
      (e: unknown) => e as Error,
    );
    for (const secret of [PASSWORD, encodeURIComponent(PASSWORD), 'wrong-secret-42']) {
      assert.ok(!error.message.includes(secret), `the message shows a password: ${error.message}`);
    }
    return error;
  }

  it('says clearly when the password is wrong, never showing it', async () => {
    const error = await startupError(`redis://:wrong-secret-42@127.0.0.1:${server.port}/0`);
    assert.match(error.message, /rejected the user name or password/);
    assert.match(error.message, /WRONGPASS/);
    assert.match(error.message, /:\*\*\*@127\.0\.0\.1/);
  });

  it('takes a raw (not URL-encoded) password from redis_options.password, never showing it', async () => {
    const store = track(
      new RedisStore({
        url: `redis://127.0.0.1:${server.port}/0`,
        ttlSeconds: null,
        redisOptions: { password: PASSWORD },
      }),
    );
    await store.open();
    await store.ping();
    const error = await startupError(`redis://127.0.0.1:${server.port}/0`, {
      redisOptions: { password: 'wrong-secret-42' },
    });
    assert.match(error.message, /rejected the user name or password/);
  });

  it('says clearly when a password is needed', async () => {
    const error = await startupError(`redis://127.0.0.1:${server.port}/0`);
    assert.match(error.message, /requires a password/);
  });

  it('says clearly when nothing listens there, never showing the password', async () => {
    const closed = await startRedisServer();
    await closed.stop();
    const error = await startupError(`redis://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${closed.port}/0`);
    assert.match(
      error.message,
      new RegExp(`Cannot connect to Redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${closed.port}/0`),
    );
    assert.match(error.message, /connection refused/);
  });

  it('rejects bad connection strings without echoing them', async () => {
    assert.throws(
      () => new RedisStore({ url: 'http://host:6379', ttlSeconds: null }),
      /start with redis:\/\/ or rediss:\/\//,
    );
    for (const url of [`redis://:${PASSWORD}@`, `http://:${PASSWORD}@host`, `redis://u:${PASSWORD}@host:x`]) {
      assert.throws(
        () => new RedisStore({ url, ttlSeconds: null }),
        (error: Error) => {
          assert.ok(!error.message.includes(PASSWORD), error.message);
          assert.ok(!error.message.includes(encodeURIComponent(PASSWORD)), error.message);
          return true;
        },
      );
    }
    assert.throws(() => new RedisStore({ url: 'redis://:%zz@host', ttlSeconds: null }), /URL-encoded/);
    assert.throws(() => new RedisStore({ url: 'redis://host/x', ttlSeconds: null }), /database number/);
    // An unencoded password with a slash: the part after it must not be echoed.
    assert.throws(
      () => new RedisStore({ url: 'redis://:abc/secret-tail@host:6379/0', ttlSeconds: null }),
      (error: Error) => !error.message.includes('secret-tail') && /URL-encode/.test(error.message),
    );
    assert.throws(
      () => new RedisStore({ url: 'redis://host', ttlSeconds: null, cluster: true, keyPrefix: 'parley:' }),
      /hash tag/,
    );
  });

  it('works as an ACL user limited to its key prefix and the documented command categories', async () => {
    const prefix = freshPrefix();
    const user = `parley-${counter}`;
    await admin.call(
      'ACL',
      'SETUSER',
      user,
      'reset',
      'on',
      `>${PASSWORD}`,
      `~${prefix}*`,
      '+@read',
      '+@write',
      '+@scripting',
      '+@connection',
      '+info',
      '+time',
    );
    const url = `redis://${user}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${server.port}/0`;
    const store = track(new RedisStore({ url, ttlSeconds: 60, keyPrefix: prefix }));
    await store.open();
    const conversation = newConversation({ user: 'u', metadata: { a: 'b' } });
    await store.createConversation(conversation, [userMessage('x')]);
    const chain = await storeChain(store, 3);
    assert.deepEqual((await store.loadChain(chain[2].id))?.length, 3);
    await storeTurn(store, newTurn({ conversationId: conversation.id }));
    assert.equal(
      (await store.listConversations({ tenant: 'default', user: 'u', limit: 5, order: 'asc' })).conversations
        .length,
      1,
    );
    assert.ok(await store.acquireConversationLease(conversation.id, 'h', 1000));
    assert.equal(await store.pruneExpired(NOW() + 120), 5);
    // Outside its prefix it may do nothing, and says what to grant.
    const outside = track(new RedisStore({ url, ttlSeconds: null, keyPrefix: 'elsewhere:' }));
    await outside.open();
    await assert.rejects(outside.getResponse('resp_x'), /NOPERM/);
    await admin.call('ACL', 'SETUSER', user, 'reset', 'on', `>${PASSWORD}`, `~${prefix}*`, '+@connection');
    const error = await startupError(url, { keyPrefix: prefix });
    assert.match(
      error.message,
      /lacks a permission.*ACL SETUSER <user> ~t\d+:\* \+@read \+@write \+@scripting/,
    );
    await admin.call('ACL', 'DELUSER', user);
  });

  it('fails fast while Redis is down and recovers by itself when it is back', async () => {
    const own = await startRedisServer();
    const store = track(new RedisStore({ url: own.url, ttlSeconds: null }));
    await store.open();
    try {
      const turn = await storeTurn(store, newTurn());
      await own.stop();
      const started = Date.now();
      const refused = new RegExp(
        `Cannot reach Redis at redis://127\\.0\\.0\\.1:${own.port}/0: (connection refused|not connected)`,
      );
      await assert.rejects(store.ping(), refused);
      await assert.rejects(store.loadChain(turn.id), refused);
      assert.ok(Date.now() - started < 1000, 'no waiting in an offline queue');
      // A new, empty server where the old one was (its scripts are gone too).
      const again = await startRedisServer({ port: own.port });
      try {
        await untilPingAnswers(store);
        const next = await storeTurn(store, newTurn());
        assert.deepEqual(await store.loadChain(next.id), [next]);
      } finally {
        await store.close();
        await again.stop();
      }
    } finally {
      await store.close();
      await own.stop();
    }
  });
});

describe('RedisStore: change token (the engine\'s context cache)', () => {
  it('moves on every deletion or status change by another process, never on ordinary turns', async () => {
    const prefix = freshPrefix();
    const reader = await opened({ keyPrefix: prefix, ttlSeconds: 3600 });
    const writer = await opened({ keyPrefix: prefix, ttlSeconds: 3600 });
    assert.equal(reader.defaultTtlSeconds, 3600);
    assert.equal((await opened()).defaultTtlSeconds, null);
    await assertChangeToken(reader, writer);
    assert.deepEqual(await commandsSent(() => reader.changeToken()), ['evalsha'], 'one round trip');
  });

  it('lets a cache filled before a delete by another process never serve the deleted history', async () => {
    const prefix = freshPrefix();
    const reader = await opened({ keyPrefix: prefix });
    const writer = await opened({ keyPrefix: prefix });
    const chain = await storeChain(writer, 5);
    const tip = chain[4].id;
    const cache = new ContextCache();
    // The engine's order: the token first, then the load, filled under the ticket of that token.
    const ticket = cache.sync(await reader.changeToken());
    cache.fillChain(ticket, (await reader.loadChain(tip))!);
    assert.equal(cache.context(tip, NOW(), DEFAULT_TENANT)?.length, 10);
    await writer.deleteResponse(chain[2].id);
    cache.sync(await reader.changeToken());
    assert.equal(cache.context(tip, NOW(), DEFAULT_TENANT), null, 'the token moved: nothing cached survives');
    await assert.rejects(reader.loadChain(tip), /incomplete/);

    // A delete landing between the load and the fill: the stale chain goes in under the ticket
    // of the old token, and the next sync drops it, since the deleting script itself moved the
    // token (a token read after the load can never be older than the data the load saw).
    const other = await storeChain(writer, 3);
    const otherTicket = cache.sync(await reader.changeToken());
    const loaded = (await reader.loadChain(other[2].id))!;
    await writer.deleteResponse(other[0].id);
    cache.fillChain(otherTicket, loaded);
    assert.equal(cache.context(other[2].id, NOW(), DEFAULT_TENANT)?.length, 6, 'filled under the old token');
    cache.sync(await reader.changeToken());
    assert.equal(cache.context(other[2].id, NOW(), DEFAULT_TENANT), null, 'the next sync drops the stale chain');
    await assert.rejects(reader.loadChain(other[2].id), /incomplete/);
  });

  it('moves when the connection is re-established (a restart or failover may have lost writes)', async () => {
    const prefix = freshPrefix();
    const store = await opened({ keyPrefix: prefix, redisOptions: { connectionName: `${prefix}token` } });
    const before = await store.changeToken();
    assert.equal(await store.changeToken(), before);
    const clients = (await admin.client('LIST')) as string;
    const id = new RegExp(`id=(\\d+) [^\\n]*name=${prefix}token`).exec(clients)?.[1];
    assert.ok(id, clients);
    await admin.client('KILL', 'ID', id);
    await untilPingAnswers(store);
    assert.notEqual(await store.changeToken(), before);
  });
});

describe('RedisStore: TLS, Sentinel and Cluster', () => {
  it('connects over TLS (rediss://) trusting the given certificate', async () => {
    const tls = await startRedisServer({ tls: true, password: PASSWORD });
    try {
      const store = track(
        new RedisStore({ url: tls.url, ttlSeconds: null, redisOptions: { tls: { ca: tls.ca } } }),
      );
      await store.open();
      const chain = await storeChain(store, 3);
      assert.deepEqual(await store.loadChain(chain[2].id), chain);
      assert.match(store.description, /^redis \(rediss:\/\/:\*\*\*@/);
      await store.close();
      // Without trusting it, the handshake fails with a clear message.
      const untrusted = new RedisStore({ url: tls.url, ttlSeconds: null });
      await assert.rejects(
        untrusted.open(),
        /Cannot connect to Redis at rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0: .*(certificate|self.signed)/i,
      );
    } finally {
      await tls.stop();
    }
  });

  it('finds the master through Sentinel', async () => {
    const master = await startRedisServer({ password: PASSWORD });
    const sentinel = await startRedisSentinel(master);
    try {
      const store = track(
        new RedisStore({
          url: `redis://:${encodeURIComponent(PASSWORD)}@${sentinel.name}/0`,
          ttlSeconds: null,
          redisOptions: { sentinels: [{ host: sentinel.host, port: sentinel.port }], name: sentinel.name },
        }),
      );
      assert.equal(
        store.description,
        `redis (sentinel master "mymaster" via 127.0.0.1:${sentinel.port}, db 0, password ***, prefix "parley:")`,
      );
      await store.open();
      const chain = await storeChain(store, 3);
      assert.deepEqual(await store.loadChain(chain[2].id), chain);
      const direct = new Redis(master.url);
      assert.equal(await direct.exists(`parley:r:${chain[0].id}`), 1, 'written to the master');
      direct.disconnect();
      await store.close();
    } finally {
      await sentinel.stop();
      await master.stop();
    }
  });

  it('runs on a three-node Cluster with every key in one slot', async () => {
    const cluster = await startRedisCluster(3);
    try {
      const store = track(new RedisStore({ url: cluster.url, ttlSeconds: 3600, cluster: true }));
      assert.equal(store.keyPrefix, '{parley}:');
      await store.open();
      const chain = await storeChain(store, 20);
      assert.deepEqual(
        (await store.loadChain(chain[19].id))?.map((r) => [r.id, r.input, r.output]),
        chain.map((r) => [r.id, r.input, r.output]),
      );
      // Every key in the hash slot of {parley}.
      const admin0 = new Redis(cluster.nodes[0].port, '127.0.0.1');
      const slot = await admin0.call('CLUSTER', 'KEYSLOT', '{parley}:anything');
      const owners = await Promise.all(
        cluster.nodes.map(async (node) => {
          const client = new Redis(node.port, '127.0.0.1');
          const count = Number(await client.call('CLUSTER', 'COUNTKEYSINSLOT', String(slot)));
          const total = await client.dbsize();
          client.disconnect();
          return [count, total];
        }),
      );
      admin0.disconnect();
      assert.equal(
        owners.filter(([count, total]) => count > 0 && count === total).length,
        1,
        JSON.stringify(owners),
      );
      assert.equal(owners.filter(([, total]) => total > 0).length, 1, JSON.stringify(owners));
      const conversation = newConversation({ user: 'u', metadata: { a: 'b' } });
      await store.createConversation(conversation, [userMessage('x')]);
      await storeTurn(store, newTurn({ conversationId: conversation.id }));
      assert.equal((await store.loadConversationItems(conversation.id))?.length, 3);
      assert.equal(
        (await store.listConversations({ tenant: 'default', user: 'u', limit: 5, order: 'asc' }))
          .conversations.length,
        1,
      );
      assert.equal(await store.deleteResponse(chain[0].id), true);
      assert.equal(await store.pruneExpired(NOW() + 7200), 21, '19 + 1 responses, 1 conversation');
      assert.equal(await store.getConversation(conversation.id), null);
      // The change token, seen by a second process, in the same slot as everything else.
      const clusterAdmin = new Cluster([{ host: '127.0.0.1', port: cluster.nodes[0].port }]);
      const other = track(new RedisStore({ url: cluster.url, ttlSeconds: 3600, cluster: true }));
      await other.open();
      await assertChangeToken(store, other, clusterAdmin);
      assert.equal(
        Number(await clusterAdmin.call('CLUSTER', 'KEYSLOT', '{parley}:v')),
        Number(slot),
      );
      clusterAdmin.disconnect();
      await other.close();
      await store.close();
    } finally {
      await cluster.stop();
    }
  });
});

describe('RedisStore: same answers as MemoryStore (tenants, usage, metadata merge, fork, user data, stale turns, export/import)', () => {
  const TENANT = 'default';

  /** Runs `step` on both stores and asserts equal results (updatedAt may differ by the second boundary). */
  async function same<T>(
    name: string,
    stores: [ConversationStore, ConversationStore],
    step: (s: ConversationStore) => Promise<T>,
  ) {
    const [expected, got] = [await step(stores[0]), await step(stores[1])];
    assert.deepEqual(normalize(got), normalize(expected), name);
    return got;
  }

  function normalize(value: unknown): unknown {
    return JSON.parse(JSON.stringify(value ?? null), (key, v) =>
      key === 'updatedAt' && typeof v === 'number' ? 'recent' : v,
    );
  }

  async function pair(): Promise<[MemoryStore, RedisStore]> {
    const memory = new MemoryStore({ maxEntries: 100_000, ttlSeconds: null });
    await memory.open();
    return [memory, await opened()];
  }

  function turn(overrides: Partial<StoredResponse>): StoredResponse {
    return { ...newTurn(overrides), tenant: overrides.tenant ?? TENANT, user: overrides.user ?? null };
  }

  function conversation(overrides: Partial<StoredConversation>): StoredConversation {
    return {
      ...newConversation(overrides),
      tenant: overrides.tenant ?? TENANT,
      usage: { input_tokens: 0, output_tokens: 0, total_tokens: 0, cost_usd: 0, turns: 0 },
      updatedAt: overrides.createdAt ?? NOW(),
      ...overrides,
    };
  }

  it('keeps tenants apart, totals usage and cost exactly, merges metadata, forks', async () => {
    const stores = await pair();
    const base = 1_750_000_000;
    const a = conversation({ user: 'ann', metadata: { team: 'red', 'quote"d': 'x\\y' }, createdAt: base });
    const b = conversation({ user: 'ann', metadata: { team: 'red' }, createdAt: base + 10, tenant: 'acme' });
    const c = conversation({ user: 'bob', metadata: { team: 'blue' }, createdAt: base + 20 });
    for (const record of [a, b, c]) {
      await same('create', stores, (s) =>
        s.createConversation(record, [userMessage('hello', `msg_${record.id}`)]),
      );
    }
    // Costs whose sum is not exact in binary: the totals must be the same doubles as in JavaScript.
    const costs = [0.1, 0.2, 0.3, 1e-7, 0.000123];
    const turns: StoredResponse[] = [];
    for (const [i, cost] of costs.entries()) {
      const t = turn({ conversationId: a.id, user: 'ann', input: [userMessage(`q${i}`, `msg_q${i}`)] });
      turns.push(t);
      await same('begin', stores, (s) => s.beginTurn(t));
      const result = { ...completed([assistantMessage(`a${i}`, `msg_a${i}`)]), costUsd: cost };
      await same('finish', stores, (s) => s.finishTurn(t.id, result));
    }
    const unpriced = turn({ conversationId: a.id, input: [userMessage('free')] });
    await same('begin', stores, (s) => s.beginTurn(unpriced));
    await same('finish unpriced', stores, (s) =>
      s.finishTurn(unpriced.id, { ...completed([]), usage: null, costUsd: null }),
    );
    const totals = await same('totals', stores, (s) => s.getConversation(a.id));
    assert.equal(
      totals?.usage.cost_usd,
      costs.reduce((sum, x) => sum + x, 0),
    );
    assert.equal(totals?.usage.turns, 6);
    assert.deepEqual(totals && Object.keys(totals).sort(), Object.keys(a).sort());

    await same('merge', stores, (s) =>
      s.mergeConversationMetadata(a.id, {
        team: 'green',
        'quote"d': null,
        new: 'ключ 🔑',
        __proto__: 'p',
        '1': 'one',
      }),
    );
    await same('merge unknown', stores, (s) => s.mergeConversationMetadata(newId('conv'), { a: 'b' }));
    await same('merge nothing', stores, (s) => s.mergeConversationMetadata(a.id, {}));
    const queries: Partial<ConversationQuery>[] = [
      { metadata: { team: 'green' } },
      { metadata: { ['__proto__']: 'p', new: 'ключ 🔑' } },
      { metadata: { 'quote"d': 'x\\y' } },
      { metadata: { team: 'red' } },
      { user: 'ann' },
      {},
    ];
    for (const query of queries) {
      for (const tenant of [TENANT, 'acme']) {
        for (const order of ['asc', 'desc'] as const) {
          await same(`list ${JSON.stringify(query)} ${tenant}`, stores, (s) =>
            s.listConversations({ tenant, limit: 10, order, ...query }),
          );
        }
      }
    }
    for (const [createdAfter, createdBefore] of [
      [base, base + 20],
      [base + 1, undefined],
      [undefined, base + 20],
      [base + 20, base + 21],
      [base + 5, base + 6],
    ]) {
      for (const order of ['asc', 'desc'] as const) {
        await same(`created ${createdAfter}..${createdBefore} ${order}`, stores, (s) =>
          s.listConversations({ tenant: TENANT, limit: 1, order, createdAfter, createdBefore }),
        );
        await same(`created ${createdAfter}..${createdBefore} ${order} after`, stores, (s) =>
          s.listConversations({ tenant: TENANT, limit: 5, order, createdAfter, createdBefore, after: a.id }),
        );
      }
    }

    const fork = conversation({ user: 'ann', metadata: { forked: 'yes' }, createdAt: base + 30 });
    await same('fork', stores, (s) => s.forkConversation(a.id, 'msg_a2', fork));
    await same('fork unknown item', stores, (s) => s.forkConversation(a.id, 'msg_nope', conversation({})));
    await same('fork unknown source', stores, (s) =>
      s.forkConversation(newId('conv'), 'msg_a2', conversation({})),
    );
    for (const s of stores)
      await assert.rejects(s.forkConversation(a.id, 'msg_a2', fork), StoreConflictError);
    const later = userMessage('later');
    await same('append to the source', stores, (s) => s.appendConversationItems(a.id, [later]));
    await same('delete an item of the fork', stores, (s) => s.deleteConversationItem(fork.id, 'msg_q1'));
    await same('fork items', stores, (s) => s.loadConversationItems(fork.id));
    await same('source items', stores, (s) => s.loadConversationItems(a.id));
    await same('fork record', stores, (s) => s.getConversation(fork.id));
    await same('fork item', stores, (s) => s.getConversationItem(fork.id, 'msg_a2'));
  });

  it('fails stale turns, deletes a user’s data, and exports and imports losslessly', async () => {
    const stores = await pair();
    const old = NOW() - 600;
    const stale = turn({ createdAt: old, user: 'ann' });
    const queued = turn({ createdAt: old, status: 'queued' });
    const fresh = turn({});
    const done = turn({ createdAt: old, user: 'ann' });
    for (const t of [stale, queued, fresh, done]) await same('begin', stores, (s) => s.beginTurn(t));
    await same('progress', stores, (s) =>
      s.saveProgress(stale.id, { status: 'in_progress', output: [assistantMessage('par', 'msg_par')] }),
    );
    await same('finish', stores, (s) => s.finishTurn(done.id, completed([assistantMessage('ok', 'msg_ok')])));
    await same('fail stale', stores, (s) => s.failStaleTurns(NOW() - 60));
    await same('fail stale again', stores, (s) => s.failStaleTurns(NOW() - 60));
    for (const t of [stale, queued, fresh, done])
      await same('after failing', stores, (s) => s.getResponse(t.id));
    await assert.rejects(stores[1].finishTurn(stale.id, completed([])), StoreConflictError);

    const child = turn({
      previousResponseId: done.id,
      user: 'ann',
      input: [userMessage('child', 'msg_child')],
    });
    await same('child', stores, (s) => s.beginTurn(child));
    const annConversation = conversation({ user: 'ann', metadata: { k: 'v' } });
    const otherTenant = conversation({ user: 'ann', tenant: 'acme' });
    for (const record of [annConversation, otherTenant]) {
      await same('create', stores, (s) =>
        s.createConversation(record, [userMessage('x', `msg_${record.id}`)]),
      );
    }

    // Export: the same records (the order of equal creation times may differ), parents first.
    const exported = [];
    for await (const record of stores[1].exportRecords({})) exported.push(record);
    const reference = [];
    for await (const record of stores[0].exportRecords({})) reference.push(record);
    const key = (r: ExportRecord) => (r.type === 'response' ? `r${r.response.id}` : `c${r.conversation.id}`);
    const byKey = (records: ExportRecord[]) =>
      normalize([...records].sort((x, y) => (key(x) < key(y) ? -1 : 1)));
    assert.deepEqual(exported.map(key).sort(), reference.map(key).sort());
    assert.deepEqual(byKey(exported), byKey(reference));
    const position = new Map(exported.map((r, i) => [key(r), i]));
    assert.ok(position.get(`r${done.id}`)! < position.get(`r${child.id}`)!, 'a parent before its child');
    assert.ok(
      exported.findIndex((r) => r.type === 'conversation') >
        exported.findLastIndex((r) => r.type === 'response'),
    );
    for (const filter of [
      { tenant: 'acme' },
      { conversationId: annConversation.id },
      { since: NOW() - 60 },
    ]) {
      const got = [];
      for await (const record of stores[1].exportRecords(filter)) got.push(record);
      const want = [];
      for await (const record of stores[0].exportRecords(filter)) want.push(record);
      assert.deepEqual(byKey(got), byKey(want), JSON.stringify(filter));
    }

    // Import into a fresh Redis store and back out: identical; a second import skips everything.
    const copy = await opened();
    assert.deepEqual(await copy.importRecords(exported), { responses: 5, conversations: 2, skipped: 0 });
    const again = [];
    for await (const record of copy.exportRecords({})) again.push(record);
    assert.deepEqual(byKey(again), byKey(exported));
    assert.deepEqual(await copy.importRecords(exported), { responses: 0, conversations: 0, skipped: 7 });
    assert.deepEqual(
      normalize(await copy.loadChain(child.id)),
      normalize(await stores[0].loadChain(child.id)),
    );

    await same('delete user data', stores, (s) => s.deleteUserData(TENANT, 'ann'));
    await same('nothing left of ann', stores, (s) =>
      s.listConversations({ tenant: TENANT, user: 'ann', limit: 10, order: 'asc' }),
    );
    await same('other tenant kept', stores, (s) =>
      s.listConversations({ tenant: 'acme', user: 'ann', limit: 10, order: 'asc' }),
    );
    for (const t of [stale, queued, fresh, done, child])
      await same('after deleting', stores, (s) => s.getResponse(t.id));
  });

  it('deletes a user with more records than one script call handles, leaving no index behind', async () => {
    const prefix = freshPrefix();
    const store = await opened({ keyPrefix: prefix });
    for (let i = 0; i < 1200; i++) await store.beginTurn(turn({ user: 'many', tenant: 't' }));
    for (let i = 0; i < 30; i++)
      await store.createConversation(conversation({ user: 'many', tenant: 't' }), []);
    assert.deepEqual(await store.deleteUserData('t', 'many'), { responses: 1200, conversations: 30 });
    assert.deepEqual(await keysOf(prefix), [`${prefix}v`], 'only the change token');
  });
});
