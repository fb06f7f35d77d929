// Turn serialisation on one conversation: the in-process FIFO, the store lease between
// instances (two Conversations on one store stand for two gateway processes), renewal,
// expiry of a dead holder's lease, the wait limit, and clients that leave while waiting.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { type ConversationLeaseOptions, Conversations } from '../../src/engine/conversations.ts';
import { ApiError } from '../../src/protocol/errors.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { newConversation, userMessage } from '../store-contract/suite.ts';

let store: MemoryStore;
const reported: string[] = [];

function instance(lease: Partial<ConversationLeaseOptions> = {}): Conversations {
  return new Conversations({
    store,
    ttlSeconds: null,
    reportError: (_error, context) => reported.push(context),
    lease: { pollMs: 5, maxPollMs: 20, ...lease },
  });
}

async function conversation(): Promise<string> {
  const record = newConversation({ itemCount: 1 });
  await store.createConversation(record, [userMessage('hello')]);
  return record.id;
}

describe('Conversations.beginTurn', () => {
  beforeEach(async () => {
    store = new MemoryStore({ maxEntries: 1000, ttlSeconds: null });
    await store.open();
    reported.length = 0;
  });
  afterEach(async () => {
    await store.close();
  });

  it('admits local waiters one at a time, in arrival order', async () => {
    const conversations = instance();
    const id = await conversation();
    const order: string[] = [];
    const first = await conversations.beginTurn(id);
    const waiters = ['b', 'c', 'd'].map(async (name) => {
      const turn = await conversations.beginTurn(id);
      order.push(`${name} in`);
      await sleep(5);
      order.push(`${name} out`);
      await turn.release();
    });
    await sleep(20);
    assert.deepEqual(order, [], 'nobody enters while the first turn holds it');
    await first.release();
    await Promise.all(waiters);
    assert.deepEqual(order, ['b in', 'b out', 'c in', 'c out', 'd in', 'd out']);
    await first.release(); // idempotent
  });

  it('loads the items appended by the previous turn', async () => {
    const conversations = instance();
    const id = await conversation();
    const first = await conversations.beginTurn(id);
    const second = conversations.beginTurn(id);
    await store.appendConversationItems(id, [userMessage('from the first turn')]);
    await first.release();
    const turn = await second;
    assert.equal(turn.items.length, 2);
    await turn.release();
  });

  it('serialises two instances through the store lease', async () => {
    const a = instance();
    const b = instance();
    const id = await conversation();
    const held = await a.beginTurn(id);
    let bIn = false;
    const waiting = b.beginTurn(id).then((turn) => {
      bIn = true;
      return turn;
    });
    await sleep(60);
    assert.equal(bIn, false);
    await held.release();
    const turn = await waiting;
    assert.equal(bIn, true);
    await turn.release();
  });

  it('renews the lease during a long turn, so another instance keeps waiting', async () => {
    const a = instance({ ttlMs: 60 });
    const b = instance({ ttlMs: 60 });
    const id = await conversation();
    const held = await a.beginTurn(id);
    let bIn = false;
    const waiting = b.beginTurn(id).then((turn) => {
      bIn = true;
      return turn;
    });
    await sleep(250); // four lease lifetimes
    assert.equal(bIn, false, 'the renewed lease still holds');
    await held.release();
    await (await waiting).release();
    assert.deepEqual(reported, []);
  });

  it('takes over the lease of a holder that died, after its ttl', async () => {
    const id = await conversation();
    assert.equal(await store.acquireConversationLease(id, 'dead-instance', 80), true);
    const started = Date.now();
    const turn = await instance().beginTurn(id);
    assert.ok(Date.now() - started >= 60, 'waited for the lease to expire');
    await turn.release();
  });

  it('answers 409 conversation_locked after waiting maxWaitMs', async () => {
    const id = await conversation();
    assert.equal(await store.acquireConversationLease(id, 'other-instance', 60_000), true);
    const error = await instance({ maxWaitMs: 80 })
      .beginTurn(id)
      .then(
        () => null,
        (e: unknown) => e,
      );
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 409);
    assert.equal(error.code, 'conversation_locked');
    assert.equal(error.param, 'conversation');
  });

  it('a client that leaves while queued gives up its place without blocking the others', async () => {
    const conversations = instance();
    const id = await conversation();
    const first = await conversations.beginTurn(id);
    const leaving = new AbortController();
    const gone = conversations.beginTurn(id, leaving.signal).then(
      () => 'entered',
      (e: unknown) => (e instanceof ApiError ? e.code : String(e)),
    );
    const next = conversations.beginTurn(id);
    leaving.abort();
    assert.equal(await gone, 'client_closed_request');
    await first.release();
    await (await next).release();
  });

  it('a client that leaves while polling the store lease stops waiting', async () => {
    const id = await conversation();
    assert.equal(await store.acquireConversationLease(id, 'other-instance', 60_000), true);
    const leaving = new AbortController();
    const waiting = instance().beginTurn(id, leaving.signal);
    setTimeout(() => leaving.abort(), 30);
    await assert.rejects(
      waiting,
      (e: unknown) => e instanceof ApiError && e.code === 'client_closed_request',
    );
  });

  it('fails fast with 404 for an unknown conversation, and releases when it vanishes while waiting', async () => {
    const conversations = instance();
    await assert.rejects(
      conversations.beginTurn('conv_missing'),
      (e: unknown) => e instanceof ApiError && e.status === 404 && e.param === 'conversation',
    );
    const id = await conversation();
    const first = await conversations.beginTurn(id);
    const second = conversations.beginTurn(id);
    await store.deleteConversation(id);
    await first.release();
    await assert.rejects(second, (e: unknown) => e instanceof ApiError && e.status === 404);
    // Nothing is left holding it.
    assert.equal(await store.acquireConversationLease(id, 'someone', 1000), true);
  });

  it('a store that fails is a 503, and the conversation is not left locked', async () => {
    const conversations = instance();
    const id = await conversation();
    const original = store.loadConversationItems.bind(store);
    store.loadConversationItems = async () => {
      throw new Error('disk on fire');
    };
    await assert.rejects(
      conversations.beginTurn(id),
      (e: unknown) => e instanceof ApiError && e.status === 503,
    );
    store.loadConversationItems = original;
    const turn = await conversations.beginTurn(id);
    await turn.release();
  });
});
