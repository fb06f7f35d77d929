// The engine's in-process context cache (engine/context-cache.ts): a hit sends upstream exactly
// what a load from the store sends; a response deleted through the engine, by another connection
// to the same SQLite file (another process), or expired is never continued; the cache is bounded.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createParley, type Parley } from '../../src/index.ts';
import { ContextCache } from '../../src/engine/context-cache.ts';
import { parseCreateResponse } from '../../src/protocol/request.ts';
import type { Item } from '../../src/protocol/types.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { ConversationStore, StoredResponse } from '../../src/store/types.ts';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/server.ts';
import { apiErrorOf, messagesOf } from '../library/helpers.ts';

const MODEL = 'gpt-4o-mini';

/** The store with its loadChain calls counted (methods bound to the store: private fields). */
function counting(store: ConversationStore): { store: ConversationStore; loads: () => number } {
  let loads = 0;
  const proxy = new Proxy(store, {
    get(target, key) {
      const value = Reflect.get(target, key, target);
      if (typeof value !== 'function') return value;
      if (key === 'loadChain') {
        return (...args: unknown[]) => {
          loads++;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
  return { store: proxy, loads: () => loads };
}

async function parleyOn(upstream: FakeUpstream, store: ConversationStore, ttlSeconds: number | null = null): Promise<Parley> {
  return createParley({
    config: { model_providers: [{ model: 'openai/gpt-4o-mini', base_url: upstream.url, access_key: 'test-key' }] },
    store,
    ttlSeconds,
  });
}

let upstream: FakeUpstream;
let dir: string;
before(async () => {
  upstream = await startFakeUpstream();
  dir = mkdtempSync(join(tmpdir(), 'parley-cache-'));
});
after(async () => {
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => upstream.reset());

async function chain(parley: Parley, turns: number): Promise<string[]> {
  const ids: string[] = [];
  let previous: string | null = null;
  for (let i = 0; i < turns; i++) {
    upstream.enqueue(
      i === 1
        ? { kind: 'tool_calls', calls: [{ id: 'call_0', name: 'lookup', arguments: '{"q":"tea"}' }] }
        : { kind: 'text', text: `Answer ${i}.` },
    );
    const input: string | Item[] =
      i === 2
        ? [{ type: 'function_call_output', call_id: 'call_0', output: '{"found":true}' } as Item]
        : `Question ${i}.`;
    const response: { id: string } = await parley.responses.create({
      model: MODEL,
      input,
      previous_response_id: previous,
      tools: [{ type: 'function', name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } }],
    });
    ids.push(response.id);
    previous = response.id;
  }
  return ids;
}

describe('context cache', () => {
  it('a hit sends upstream exactly what a load from the store sends, without loading the chain', async () => {
    const path = join(dir, 'same.db');
    const counted = counting(new SqliteStore({ path, ttlSeconds: null }));
    const a = await parleyOn(upstream, counted.store);
    const ids = await chain(a, 5);
    const loadsBefore = counted.loads();
    upstream.enqueue({ kind: 'text', text: 'Cached.' });
    await a.responses.create({ model: MODEL, input: 'Again?', previous_response_id: ids[4] });
    const cached = messagesOf(upstream);
    assert.equal(counted.loads(), loadsBefore, 'the chain came from the cache');
    // A cold engine on the same file loads it from the store.
    const b = await parleyOn(upstream, new SqliteStore({ path, ttlSeconds: null }));
    upstream.enqueue({ kind: 'text', text: 'Loaded.' });
    await b.responses.create({ model: MODEL, input: 'Again?', previous_response_id: ids[4] });
    assert.deepEqual(cached, messagesOf(upstream));
    assert.equal(cached.length, 11);
    // And from the middle of the chain (a branch), too.
    upstream.enqueue({ kind: 'text', text: 'Branch.' });
    await a.responses.create({ model: MODEL, input: 'Branch?', previous_response_id: ids[2] });
    const branchCached = messagesOf(upstream);
    upstream.enqueue({ kind: 'text', text: 'Branch.' });
    await b.responses.create({ model: MODEL, input: 'Branch?', previous_response_id: ids[2] });
    assert.deepEqual(branchCached, messagesOf(upstream));
    await a.close();
    await b.close();
  });

  it('the memory store: a hit equals a load', async () => {
    const counted = counting(new MemoryStore({ maxEntries: 100, ttlSeconds: null }));
    const a = await parleyOn(upstream, counted.store);
    const ids = await chain(a, 4);
    const loads = counted.loads();
    upstream.enqueue({ kind: 'text', text: 'Hit.' });
    await a.responses.create({ model: MODEL, input: 'Next?', previous_response_id: ids[3] });
    assert.equal(counted.loads(), loads);
    const hit = messagesOf(upstream);
    // Drop the cache (a deletion elsewhere moves the token): the next turn loads.
    await a.store!.pruneExpired(0);
    upstream.enqueue({ kind: 'text', text: 'Load.' });
    await a.responses.create({ model: MODEL, input: 'Next?', previous_response_id: ids[3] });
    assert.equal(counted.loads(), loads + 1);
    assert.deepEqual(hit, messagesOf(upstream));
    await a.close();
  });

  it('never continues an ancestor deleted through the engine', async () => {
    const a = await parleyOn(upstream, new SqliteStore({ path: join(dir, 'engine-delete.db'), ttlSeconds: null }));
    const ids = await chain(a, 4);
    await a.responses.delete(ids[1]);
    const error = await apiErrorOf(a.responses.create({ model: MODEL, input: 'More?', previous_response_id: ids[3] }));
    assert.equal(error.status, 400);
    assert.equal(error.code, 'previous_response_not_found');
    const gone = await apiErrorOf(a.responses.create({ model: MODEL, input: 'More?', previous_response_id: ids[1] }));
    assert.equal(gone.code, 'previous_response_not_found');
    // The part before the deleted one still continues.
    upstream.enqueue({ kind: 'text', text: 'Fine.' });
    await a.responses.create({ model: MODEL, input: 'More?', previous_response_id: ids[0] });
    assert.equal(messagesOf(upstream).length, 3);
    await a.close();
  });

  it('never continues an ancestor deleted by another connection to the same SQLite file (another process)', async () => {
    const path = join(dir, 'other-process.db');
    const a = await parleyOn(upstream, new SqliteStore({ path, ttlSeconds: null }));
    const ids = await chain(a, 4);
    // Warm: the tip continues from the cache.
    upstream.enqueue({ kind: 'text', text: 'Warm.' });
    const warm = await a.responses.create({ model: MODEL, input: 'Warm?', previous_response_id: ids[3] });
    const other = new SqliteStore({ path, ttlSeconds: null });
    await other.open();
    assert.equal(await other.deleteResponse(ids[2]), true);
    await other.close();
    for (const id of [ids[3], warm.id, ids[2]]) {
      const error = await apiErrorOf(a.responses.create({ model: MODEL, input: 'More?', previous_response_id: id }));
      assert.equal(error.code, 'previous_response_not_found', id);
    }
    await a.close();
  });

  it("never continues another tenant's response from the cache all tenants share", async () => {
    const a = await parleyOn(upstream, new SqliteStore({ path: join(dir, 'tenants.db'), ttlSeconds: null }));
    const ids = await chain(a, 3); // the default tenant's, now in the cache
    const other = a.engine.forTenant('another');
    const error = await apiErrorOf(
      other.createResponse(parseCreateResponse({ model: MODEL, input: 'Mine?', previous_response_id: ids[2] })),
    );
    assert.equal(error.status, 400);
    assert.equal(error.code, 'previous_response_not_found');
    // The owner still continues it from the cache.
    upstream.enqueue({ kind: 'text', text: 'Yours.' });
    await a.responses.create({ model: MODEL, input: 'Mine?', previous_response_id: ids[2] });
    assert.equal(messagesOf(upstream).length, 7);
    await a.close();
  });

  it('never continues a response deleted by the sweeper or deleteUserData of the same store', async () => {
    const store = new MemoryStore({ maxEntries: 100, ttlSeconds: null });
    const a = await parleyOn(upstream, store);
    upstream.enqueue({ kind: 'text', text: 'One.' });
    const r1 = await a.responses.create({ model: MODEL, input: 'One?', user: 'u1' });
    upstream.enqueue({ kind: 'text', text: 'Two.' });
    const r2 = await a.responses.create({ model: MODEL, input: 'Two?', previous_response_id: r1.id });
    await store.deleteUserData('default', 'u1');
    const error = await apiErrorOf(a.responses.create({ model: MODEL, input: 'Three?', previous_response_id: r2.id }));
    assert.equal(error.code, 'previous_response_not_found');
    await a.close();
  });

  it('honours expiry on every turn of the chain', async () => {
    const a = await parleyOn(upstream, new SqliteStore({ path: join(dir, 'expiry.db'), ttlSeconds: null }), 2);
    const ids = await chain(a, 3);
    upstream.enqueue({ kind: 'text', text: 'Still here.' });
    await a.responses.create({ model: MODEL, input: 'Now?', previous_response_id: ids[2] });
    await new Promise((resolve) => setTimeout(resolve, 3100));
    const error = await apiErrorOf(a.responses.create({ model: MODEL, input: 'Later?', previous_response_id: ids[2] }));
    assert.equal(error.code, 'previous_response_not_found');
    await a.close();
  });

  it("applies the store's own TTL to the turns it caches", async () => {
    const a = await parleyOn(upstream, new MemoryStore({ maxEntries: 100, ttlSeconds: 2 }), null);
    upstream.enqueue({ kind: 'text', text: 'One.' });
    const r1 = await a.responses.create({ model: MODEL, input: 'One?' });
    await new Promise((resolve) => setTimeout(resolve, 3100));
    const error = await apiErrorOf(a.responses.create({ model: MODEL, input: 'Two?', previous_response_id: r1.id }));
    assert.equal(error.code, 'previous_response_not_found');
    await a.close();
  });
});

describe('ContextCache', () => {
  const turn = (id: string, parent: string | null, expiresAt: number | null = null, tenant = 't'): StoredResponse =>
    ({
      id,
      tenant,
      previousResponseId: parent,
      status: 'completed',
      expiresAt,
      input: [{ type: 'message', role: 'user', content: id }],
      output: [],
    }) as unknown as StoredResponse;

  it('is bounded, and a walk through an evicted turn is a miss', () => {
    const cache = new ContextCache({ maxTurns: 3 });
    const ticket = cache.sync(1);
    cache.fillChain(ticket, [turn('a', null), turn('b', 'a'), turn('c', 'b'), turn('d', 'c')]);
    assert.equal(cache.size, 3);
    assert.equal(cache.context('d', 0, 't'), null, 'a was evicted: d has no whole history here');
    cache.fillChain(ticket, [turn('x', null), turn('y', 'x')]);
    assert.equal(cache.size, 3);
    assert.deepEqual(
      cache.context('y', 0, 't')?.map((item) => (item as unknown as { content: string }).content),
      ['x', 'y'],
    );
  });

  it('drops everything when the change token moves, and ignores fills begun before', () => {
    const cache = new ContextCache();
    const ticket = cache.sync('t1');
    cache.fillChain(ticket, [turn('a', null)]);
    assert.ok(cache.context('a', 0, 't'));
    cache.sync('t2');
    assert.equal(cache.context('a', 0, 't'), null);
    cache.fillChain(ticket, [turn('b', null)]);
    assert.equal(cache.context('b', 0, 't'), null, 'a fill under the old token is not kept');
  });

  it('checks expiry and deletion on every node', () => {
    const cache = new ContextCache();
    const ticket = cache.sync(0);
    cache.fillChain(ticket, [turn('a', null, 100), turn('b', 'a'), turn('c', 'b')]);
    assert.ok(cache.context('c', 99, 't'));
    assert.equal(cache.context('c', 100, 't'), null);
    cache.invalidate('b');
    assert.equal(cache.context('c', 0, 't'), null);
    assert.ok(cache.context('a', 0, 't'));
  });

  it("hands a turn only to its own tenant (one cache serves every tenant's engine)", () => {
    const cache = new ContextCache();
    const ticket = cache.sync(0);
    cache.fillChain(ticket, [turn('a', null, null, 'one'), turn('b', 'a', null, 'one')]);
    assert.equal(cache.context('b', 0, 'two'), null);
    assert.equal(cache.context('b', 0, 'one')?.length, 2);
    // A turn of another tenant on top of one's chain (which the store would never let continue)
    // is not walked into either.
    cache.fillTurn(ticket, { id: 'c', tenant: 'two', previousResponseId: 'b', status: 'completed', expiresAt: null }, [], []);
    assert.equal(cache.context('c', 0, 'two'), null);
  });
});
