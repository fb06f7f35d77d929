// MemoryStore specifics beyond the shared contract: the bound, recency, default TTL.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStore } from '../../src/store/memory.ts';
import { ChainBrokenError } from '../../src/store/types.ts';
import {
  assistantMessage,
  completed,
  newConversation,
  newTurn,
  userMessage,
} from '../store-contract/suite.ts';

async function opened(maxEntries: number, ttlSeconds: number | null = null): Promise<MemoryStore> {
  const store = new MemoryStore({ maxEntries, ttlSeconds });
  await store.open();
  return store;
}

describe('MemoryStore', () => {
  it('never holds more than maxEntries responses, evicting the oldest first', async () => {
    const store = await opened(5);
    const turns = Array.from({ length: 12 }, () => newTurn());
    for (const turn of turns) {
      await store.beginTurn(turn);
      assert.ok(store.size <= 5);
    }
    assert.equal(store.size, 5);
    for (const turn of turns.slice(0, 7)) assert.equal(await store.getResponse(turn.id), null);
    for (const turn of turns.slice(7)) assert.notEqual(await store.getResponse(turn.id), null);
  });

  it('bounds conversations by maxEntries too, evicting the least recently used', async () => {
    const store = await opened(3);
    const conversations = Array.from({ length: 4 }, () => newConversation({ itemCount: 1 }));
    for (const conversation of conversations.slice(0, 3)) {
      await store.createConversation(conversation, [userMessage('hi')]);
    }
    await store.appendConversationItems(conversations[0].id, [userMessage('still here')]);
    await store.createConversation(conversations[3], [userMessage('hi')]);
    assert.notEqual(await store.getConversation(conversations[0].id), null);
    assert.equal(await store.getConversation(conversations[1].id), null);
    assert.notEqual(await store.getConversation(conversations[3].id), null);
  });

  it('evicts the least recently used, so a conversation in use survives', async () => {
    const store = await opened(3);
    const [a, b, c, d] = [newTurn(), newTurn(), newTurn(), newTurn()];
    await store.beginTurn(a);
    await store.beginTurn(b);
    await store.beginTurn(c);
    await store.loadChain(a.id); // a is now the most recently used
    await store.beginTurn(d);
    assert.notEqual(await store.getResponse(a.id), null);
    assert.equal(await store.getResponse(b.id), null);
  });

  it('reports a chain whose ancestor was evicted as broken, never as partial', async () => {
    const store = await opened(2);
    const root = newTurn();
    const middle = newTurn({ previousResponseId: root.id });
    const tip = newTurn({ previousResponseId: middle.id });
    for (const turn of [root, middle, tip]) {
      await store.beginTurn(turn);
      await store.finishTurn(turn.id, completed([assistantMessage('ok')]));
    }
    await assert.rejects(store.loadChain(tip.id), ChainBrokenError);
  });

  it('applies the default TTL to responses stored without an expiry', async () => {
    const store = await opened(10, 3600);
    const plain = newTurn({ createdAt: 2_000_000_000 });
    const explicit = newTurn({ createdAt: 2_000_000_000, expiresAt: 2_000_000_100 });
    await store.beginTurn(plain);
    await store.beginTurn(explicit);
    assert.equal((await store.getResponse(plain.id))?.expiresAt, 2_000_003_600);
    assert.equal((await store.getResponse(explicit.id))?.expiresAt, 2_000_000_100);
    assert.equal(plain.expiresAt, null, 'the caller’s object is not modified');

    const old = newTurn({ createdAt: Math.floor(Date.now() / 1000) - 7200 });
    await store.beginTurn(old);
    assert.equal(await store.getResponse(old.id), null, 'expired through the default TTL');
  });

  it('rejects a non-positive bound and refuses to work before open()', async () => {
    assert.throws(() => new MemoryStore({ maxEntries: 0, ttlSeconds: null }), RangeError);
    const store = new MemoryStore({ maxEntries: 10, ttlSeconds: null });
    await assert.rejects(store.ping());
    await assert.rejects(store.getResponse('resp_x'));
    await store.open();
    await store.beginTurn(newTurn());
    await store.close();
    assert.equal(store.size, 0);
  });
});
