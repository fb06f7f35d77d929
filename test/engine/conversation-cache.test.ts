// The engine's in-process conversation cache (engine/conversation-cache.ts): a turn on a
// conversation loads only what it gained since the last turn, and sends upstream exactly what a
// full load sends; an item or a conversation removed through the engine, by another process on
// the same SQLite file, or re-created under the same id, is never sent again; the cache is bounded.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ConversationCache } from '../../src/engine/conversation-cache.ts';
import { createParley, type Parley } from '../../src/index.ts';
import type { Item } from '../../src/protocol/types.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { ConversationStore, ExportRecord } from '../../src/store/types.ts';
import { assistantMessage, userMessage } from '../../src/testing/store-contract.ts';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/server.ts';
import { messagesOf } from '../library/helpers.ts';

const MODEL = 'gpt-4o-mini';

/** The store with its conversation loads recorded: how many items each full or partial load returned. */
function recording(store: ConversationStore): { store: ConversationStore; loads: string[] } {
  const loads: string[] = [];
  const proxy = new Proxy(store, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (typeof value !== 'function') return value;
      const method = value as (...a: unknown[]) => Promise<unknown>;
      if (key === 'loadConversationItems') {
        return async (...args: unknown[]) => {
          const items = (await method.apply(target, args)) as Item[] | null;
          loads.push(`all:${items?.length}`);
          return items;
        };
      }
      if (key === 'loadConversationItemsFrom') {
        return async (...args: unknown[]) => {
          const tail = (await method.apply(target, args)) as { items: Item[] } | null;
          loads.push(`from ${args[1]}:${tail?.items.length}`);
          return tail;
        };
      }
      return method.bind(target);
    },
  });
  return { store: proxy, loads };
}

async function parleyOn(upstream: FakeUpstream, store: ConversationStore): Promise<Parley> {
  return createParley({
    config: { model_providers: [{ model: 'openai/gpt-4o-mini', base_url: upstream.url, access_key: 'test-key' }] },
    store,
  });
}

let upstream: FakeUpstream;
let dir: string;
before(async () => {
  upstream = await startFakeUpstream();
  dir = mkdtempSync(join(tmpdir(), 'parley-conversation-cache-'));
});
after(async () => {
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => upstream.reset());

async function turn(parley: Parley, conversation: string, question: string): Promise<void> {
  upstream.enqueue({ kind: 'text', text: `Answer to ${question}` });
  await parley.responses.create({ model: MODEL, input: question, conversation });
}

describe('conversation cache', () => {
  it('a turn loads only what the conversation gained since the last, and sends what a full load sends', async () => {
    const path = join(dir, 'tail.db');
    const recorded = recording(new SqliteStore({ path, ttlSeconds: null }));
    const a = await parleyOn(upstream, recorded.store);
    const { id } = await a.conversations.create({ items: [{ type: 'message', role: 'user', content: 'Hello.' }] });
    await turn(a, id, 'One?');
    await turn(a, id, 'Two?');
    await a.conversations.items.create(id, { items: [{ type: 'message', role: 'user', content: 'Aside.' }] });
    await turn(a, id, 'Three?');
    // The first turn loads everything; each later one what the turn before appended (its input
    // and output), plus the item added between them.
    assert.deepEqual(recorded.loads, ['from 0:1', 'from 1:2', 'from 3:3']);
    // What a full load gives now (read by another connection: reading moves no token)...
    const reader = new SqliteStore({ path, ttlSeconds: null });
    await reader.open();
    const full = (await reader.loadConversationItems(id))!;
    await reader.close();
    assert.equal(full.length, 8);
    // ...is what the next turn sends, from the cache and the two items the last turn appended.
    await turn(a, id, 'Four?');
    assert.deepEqual(recorded.loads.at(-1), 'from 6:2');
    assert.deepEqual(
      messagesOf(upstream).map((m) => m.content),
      [...full.map((item) => (item as { content: { text: string }[] }).content[0].text), 'Four?'],
    );
    await a.close();
  });

  it('never sends an item deleted through the engine or by another process on the same file', async () => {
    const path = join(dir, 'deleted.db');
    const recorded = recording(new SqliteStore({ path, ttlSeconds: null }));
    const a = await parleyOn(upstream, recorded.store);
    const { id } = await a.conversations.create({
      items: [
        { type: 'message', role: 'user', content: 'Keep me.' },
        { type: 'message', role: 'user', content: 'Delete me here.' },
        { type: 'message', role: 'user', content: 'Delete me elsewhere.' },
      ],
    });
    await turn(a, id, 'One?');
    const [, here, elsewhere] = (await a.conversations.items.list(id, { order: 'asc' })).data;
    await a.conversations.items.delete(here.id!, { conversation_id: id });
    await turn(a, id, 'Two?');
    const other = new SqliteStore({ path, ttlSeconds: null });
    await other.open();
    assert.equal(await other.deleteConversationItem(id, elsewhere.id!), true);
    await other.close();
    await turn(a, id, 'Three?');
    const texts = messagesOf(upstream).map((m) => m.content);
    assert.ok(texts.includes('Keep me.'));
    assert.ok(!texts.includes('Delete me here.') && !texts.includes('Delete me elsewhere.'));
    // Each removal was a full load.
    assert.deepEqual(recorded.loads, ['from 0:3', 'from 0:4', 'from 0:5']);
    await a.close();
  });

  it('a conversation deleted and re-created under the same id by another process is loaded whole', async () => {
    const path = join(dir, 'recreated.db');
    const a = await parleyOn(upstream, new SqliteStore({ path, ttlSeconds: null }));
    const { id } = await a.conversations.create({ items: [{ type: 'message', role: 'user', content: 'First life.' }] });
    await turn(a, id, 'One?');
    const other = new SqliteStore({ path, ttlSeconds: null });
    await other.open();
    let record: ExportRecord | undefined;
    for await (const exported of other.exportRecords({ conversationId: id })) {
      if (exported.type === 'conversation') record = exported;
    }
    assert.equal(await other.deleteConversation(id), true);
    assert.ok(record?.type === 'conversation');
    const second = [userMessage('Second life.'), assistantMessage('Indeed.'), userMessage('And more.')];
    await other.importRecords([{ type: 'conversation', conversation: { ...record.conversation, itemCount: 3 }, items: second }]);
    await other.close();
    await turn(a, id, 'Two?');
    const texts = messagesOf(upstream).map((m) => m.content);
    assert.deepEqual(texts, ['Second life.', 'Indeed.', 'And more.', 'Two?']);
    await a.close();
  });

  it('the memory store: each turn loads what the last one appended', async () => {
    const recorded = recording(new MemoryStore({ maxEntries: 100, ttlSeconds: null }));
    const a = await parleyOn(upstream, recorded.store);
    const { id } = await a.conversations.create();
    for (const q of ['One?', 'Two?', 'Three?']) await turn(a, id, q);
    assert.deepEqual(recorded.loads, ['from 0:0', 'from 0:2', 'from 2:2']);
    assert.equal(messagesOf(upstream).length, 5);
    // One cache for every tenant's engine (bounded once; a turn reads its conversation through
    // its tenant's scope first: test/e2e/tenants.test.ts has the other tenant's turn refused).
    assert.equal(a.engine.forTenant('another').conversations.cache, a.engine.conversations.cache);
    // Caches dropped: the next turn loads everything.
    a.engine.dropCaches();
    await turn(a, id, 'Four?');
    assert.deepEqual(recorded.loads.at(-1), 'from 0:6');
    await a.close();
  });
});

describe('ConversationCache', () => {
  const record = { createdAt: 100, expiresAt: null };
  const items = (n: number, tag: string) => Array.from({ length: n }, (_, i) => userMessage(`${tag}${i}`));

  it('gives back what it was filled with, for the same conversation only', () => {
    const cache = new ConversationCache();
    const ticket = cache.sync('t1');
    const first = cache.fill(ticket, 'c', record, [], items(2, 'a'), 2);
    assert.equal(first.length, 2);
    const prefix = cache.prefix('c', record);
    assert.equal(prefix?.itemCount, 2);
    assert.ok(Object.isFrozen(prefix!.items[0]), 'cached items are frozen: shared by every context');
    const grown = cache.fill(cache.sync('t1'), 'c', record, prefix!.items, items(1, 'b'), 4);
    assert.deepEqual(
      grown.map((m) => (m as { content: { text: string }[] }).content[0].text),
      ['a0', 'a1', 'b0'],
    );
    grown.push(userMessage('the caller owns its array'));
    assert.equal(cache.prefix('c', record)?.items.length, 3);
    assert.equal(cache.prefix('c', { createdAt: 100, expiresAt: 500 }), null, 'another expiry: another conversation');
    assert.equal(cache.prefix('c', { createdAt: 101, expiresAt: null }), null);
  });

  it('drops everything when the token moves, and ignores a fill begun before an invalidation', () => {
    const cache = new ConversationCache();
    cache.fill(cache.sync('t1'), 'c', record, [], items(2, 'a'), 2);
    cache.sync('t2');
    assert.equal(cache.prefix('c', record), null);
    const ticket = cache.sync('t2');
    cache.invalidate('d');
    cache.fill(ticket, 'c', record, [], items(2, 'a'), 2);
    assert.equal(cache.prefix('c', record), null);
  });

  it('is bounded by items, least recently filled first', () => {
    const cache = new ConversationCache(5);
    const ticket = cache.sync('t');
    cache.fill(ticket, 'a', record, [], items(2, 'a'), 2);
    cache.fill(ticket, 'b', record, [], items(2, 'b'), 2);
    cache.fill(ticket, 'c', record, [], items(2, 'c'), 2);
    assert.equal(cache.prefix('a', record), null);
    assert.notEqual(cache.prefix('b', record), null);
    cache.fill(ticket, 'd', record, [], items(6, 'd'), 6); // larger than the bound: not kept
    assert.equal(cache.prefix('d', record), null);
    assert.equal(cache.size, 2);
  });
});
