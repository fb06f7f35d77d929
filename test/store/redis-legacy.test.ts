// RedisStore on data written before the record layout: responses as hashes of ~15 fields and
// conversation items as `<position>:<item JSON>` members. A store keeps reading, continuing,
// finishing, failing, deleting, pruning, exporting and forking them, mixed with what it writes now.
// writeLegacyResponse / appendLegacyItems write exactly what that layout wrote (its field list is
// in redis.ts, "responses written before the record layout").

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { Item } from '../../src/protocol/types.ts';
import { encodeParams } from '../../src/store/codec.ts';
import { RedisStore } from '../../src/store/redis.ts';
import type { ExportRecord, StoredResponse } from '../../src/store/types.ts';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.ts';
import {
  assistantMessage,
  completed,
  finished,
  newConversation,
  newTurn,
  userMessage,
} from '../store-contract/suite.ts';

const NOW = () => Math.floor(Date.now() / 1000);

let server: RedisServer;
let admin: Redis;
let counter = 0;
const stores: RedisStore[] = [];

before(async () => {
  server = await startRedisServer();
  admin = new Redis(server.url);
});

after(async () => {
  for (const store of stores) await store.close();
  admin.disconnect();
  await server.stop();
});

async function opened(prefix: string): Promise<RedisStore> {
  const store = new RedisStore({ url: server.url, ttlSeconds: null, keyPrefix: prefix });
  stores.push(store);
  await store.open();
  return store;
}

const lp = (text: string) => `${Buffer.byteLength(text)}:${text}`;

/** A response as the hash layout stored it, with its index entries. */
async function writeLegacyResponse(prefix: string, r: StoredResponse): Promise<void> {
  const key = `${prefix}r:${r.id}`;
  const ru = r.user === null ? '' : `ru:${lp(r.tenant)}${r.user}`;
  const fields: (string | number)[] = [
    'm',
    JSON.stringify([r.id, r.previousResponseId, r.conversationId, r.model, r.createdAt, r.expiresAt, r.tenant, r.user]),
    'p',
    encodeParams(r.params),
    's',
    r.status,
    'fc',
    JSON.stringify(r.completedAt),
    'fu',
    JSON.stringify(r.usage),
    'fe',
    JSON.stringify(r.error),
    'fi',
    JSON.stringify(r.incompleteDetails),
    'ni',
    r.input.length,
    'no',
    r.output.length,
    'ki',
    r.input.map((item) => lp(item.id ?? '')).join(''),
    'ko',
    r.output.map((item) => lp(item.id ?? '')).join(''),
  ];
  if (r.previousResponseId !== null) fields.push('up', r.previousResponseId);
  if (r.conversationId !== null) fields.push('uc', r.conversationId);
  if (r.expiresAt !== null) fields.push('e', String(r.expiresAt));
  if (ru !== '') fields.push('ru', ru);
  for (const [k, item] of r.input.entries()) fields.push(`i${k}`, JSON.stringify(item));
  for (const [k, item] of r.output.entries()) fields.push(`o${k}`, JSON.stringify(item));
  await admin.hset(key, ...fields);
  const unfinished = r.status === 'in_progress' || r.status === 'queued';
  if (r.expiresAt !== null) {
    await admin.pexpireat(key, Math.max(r.expiresAt * 1000, unfinished ? Date.now() + 3_600_000 : 0));
    await admin.zadd(`${prefix}x`, r.expiresAt, `r${lp(r.id)}${lp(ru)}`);
  }
  if (ru !== '') await admin.zadd(prefix + ru, r.createdAt, r.id);
  if (unfinished) await admin.zadd(`${prefix}u`, r.createdAt, r.id);
}

/** Appends items to an existing conversation as `<position>:<item JSON>` members. */
async function appendLegacyItems(prefix: string, conversationId: string, items: Item[]): Promise<void> {
  const ckey = `${prefix}c:${conversationId}`;
  let n = Number(await admin.hget(ckey, 'n'));
  for (const item of items) {
    await admin.zadd(`${prefix}ci:${conversationId}`, n, `${n}:${JSON.stringify(item)}`);
    const at = await admin.hget(`${prefix}cx:${conversationId}`, item.id!);
    await admin.hset(`${prefix}cx:${conversationId}`, item.id!, at === null ? String(n) : `${at},${n}`);
    n++;
  }
  await admin.hset(ckey, 'n', n);
}

function legacyChain(length: number, overrides: Partial<StoredResponse> = {}): StoredResponse[] {
  const chain: StoredResponse[] = [];
  let previous: string | null = null;
  for (let i = 0; i < length; i++) {
    const turn = newTurn({ previousResponseId: previous, input: [userMessage(`old q${i}`)], ...overrides });
    chain.push(finished(turn, completed([assistantMessage(`old a${i}`)])));
    previous = turn.id;
  }
  return chain;
}

describe('RedisStore: data written before the record layout', () => {
  it('loads, continues, lists and exports old responses mixed with new ones', async () => {
    const prefix = `legacy${++counter}:`;
    const store = await opened(prefix);
    const old = legacyChain(3, { user: 'ann', expiresAt: NOW() + 3600 });
    for (const turn of old) await writeLegacyResponse(prefix, turn);
    assert.equal(await admin.type(`${prefix}r:${old[0].id}`), 'hash');

    assert.deepEqual(await store.getResponse(old[2].id), old[2]);
    assert.deepEqual(await store.loadChain(old[2].id), old);
    assert.deepEqual((await store.listInputItems(old[1].id, { limit: 5, order: 'asc' }))?.items, old[1].input);

    // New turns continue the old chain: the walk crosses from records to hashes.
    const next = newTurn({ previousResponseId: old[2].id, input: [userMessage('new q')] });
    await store.beginTurn(next);
    const result = completed([assistantMessage('new a')]);
    await store.finishTurn(next.id, result);
    assert.equal(await admin.type(`${prefix}r:${next.id}`), 'string');
    const mixed = [...old, finished(next, result)];
    assert.deepEqual(await store.loadChain(next.id), mixed);

    const records: ExportRecord[] = [];
    for await (const record of store.exportRecords({})) records.push(record);
    assert.deepEqual(
      records.map((r) => (r.type === 'response' ? r.response : null)),
      mixed,
    );
    const copy = await opened(`legacy${++counter}:`);
    assert.deepEqual(await copy.importRecords(records), { responses: 4, conversations: 0, skipped: 0 });
    assert.deepEqual(await copy.loadChain(next.id), mixed);

    // Deleting and pruning old responses removes their index entries too.
    assert.equal(await store.deleteResponse(old[1].id), true);
    assert.deepEqual(await admin.zrange(`${prefix}ru:7:defaultann`, '0', '-1'), [old[0].id, old[2].id].sort());
    assert.equal(await store.pruneExpired(NOW() + 7200), 2);
    assert.equal(await admin.exists(`${prefix}r:${old[0].id}`, `${prefix}r:${old[2].id}`, `${prefix}x`), 0);
    assert.deepEqual(await store.deleteUserData('default', 'ann'), { responses: 0, conversations: 0 });
  });

  it('finishes, saves the progress of and fails old unfinished turns, appending to a conversation with old items', async () => {
    const prefix = `legacy${++counter}:`;
    const store = await opened(prefix);
    const conversation = newConversation();
    await store.createConversation(conversation, []);
    const oldItems = [userMessage('old item'), assistantMessage('old answer')];
    await appendLegacyItems(prefix, conversation.id, oldItems);

    const running = newTurn({ conversationId: conversation.id, input: [userMessage('still running')] });
    await writeLegacyResponse(prefix, running);
    const progress = [assistantMessage('so far')];
    assert.equal(await store.saveProgress(running.id, { status: 'in_progress', output: progress }), true);
    assert.deepEqual((await store.getResponse(running.id))?.output, progress);
    const result = completed([assistantMessage('done')]);
    await store.finishTurn(running.id, result);
    assert.deepEqual(await store.getResponse(running.id), finished(running, result));
    await assert.rejects(store.finishTurn(running.id, result), /already completed/);

    // A new turn appends its items after the old ones; both kinds of member read back.
    const next = newTurn({ conversationId: conversation.id, previousResponseId: running.id, input: [userMessage('new')] });
    await store.beginTurn(next);
    const nextResult = completed([assistantMessage('newer')]);
    await store.finishTurn(next.id, nextResult);
    const all = [...oldItems, ...running.input, ...result.output, ...next.input, ...nextResult.output];
    assert.deepEqual(await store.loadConversationItems(conversation.id), all);
    assert.deepEqual(await store.getConversationItem(conversation.id, oldItems[1].id!), oldItems[1]);
    assert.deepEqual(await store.getConversationItem(conversation.id, all[4].id!), all[4]);
    const page = await store.listConversationItems(conversation.id, { limit: 2, order: 'desc', after: all[4].id });
    assert.deepEqual(page, { items: [all[3], all[2]], hasMore: true });
    const fork = await store.forkConversation(conversation.id, all[3].id!, newConversation());
    assert.deepEqual(await store.loadConversationItems(fork!.id), all.slice(0, 4));
    assert.equal(await store.deleteConversationItem(conversation.id, oldItems[0].id!), true);
    assert.deepEqual(await store.loadConversationItems(conversation.id), all.slice(1));

    const stale = newTurn({ createdAt: NOW() - 7200 });
    await writeLegacyResponse(prefix, stale);
    assert.equal(await store.failStaleTurns(NOW() - 3600), 1);
    assert.equal((await store.getResponse(stale.id))?.status, 'failed');
    assert.equal((await store.getResponse(stale.id))?.error?.code, 'interrupted');
  });
});
