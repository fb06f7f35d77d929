// The store as one tenant sees it, below the HTTP layer: records written through it are stamped
// with its tenant, another tenant's records read as unknown (also inside a chain, and when the
// chain is broken), ids no record can have never reach the store, and listing, export, import
// and user-data deletion stay within the tenant.

import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { plausibleId, TenantScopedStore } from '../../src/engine/tenant-scope.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { ChainBrokenError, type ExportRecord } from '../../src/store/types.ts';
import { assistantMessage, completed, newConversation, newTurn, userMessage } from '../../src/testing/store-contract.ts';

let raw: MemoryStore;
let a: TenantScopedStore;
let b: TenantScopedStore;

beforeEach(async () => {
  raw = new MemoryStore({ maxEntries: 1000, ttlSeconds: null });
  await raw.open();
  a = new TenantScopedStore(raw, 'a');
  b = new TenantScopedStore(raw, 'b');
});

async function finishedTurn(store: TenantScopedStore, previousResponseId: string | null = null) {
  const turn = newTurn({ previousResponseId, tenant: 'whatever-the-caller-said' });
  await store.beginTurn(turn);
  await store.finishTurn(turn.id, completed([assistantMessage('ok')]));
  return turn.id;
}

describe('TenantScopedStore', () => {
  it('stamps what it writes with its tenant, and reads another tenant’s records as unknown', async () => {
    const r1 = await finishedTurn(a);
    assert.equal((await raw.getResponse(r1))?.tenant, 'a');
    assert.equal((await a.getResponse(r1))?.id, r1);
    assert.equal(await b.getResponse(r1), null);
    assert.equal(await b.loadChain(r1), null);
    assert.equal(await b.listInputItems(r1, { limit: 10, order: 'asc' }), null);
    assert.equal(await b.deleteResponse(r1), false);
    assert.ok(await raw.getResponse(r1), 'still there');
    assert.equal(await a.deleteResponse(r1), true);
  });

  it('refuses a chain with any turn of another tenant, and keeps a foreign broken chain a plain unknown', async () => {
    const root = await finishedTurn(a);
    // An import could link across tenants; a chain is only ever loaded whole by its own tenant.
    const child = newTurn({ previousResponseId: root, tenant: 'b' });
    await raw.beginTurn(child);
    await raw.finishTurn(child.id, completed([assistantMessage('x')]));
    assert.equal(await b.loadChain(child.id), null);
    assert.equal(await a.loadChain(child.id), null);

    const parent = await finishedTurn(a);
    const leaf = await finishedTurn(a, parent);
    await raw.deleteResponse(parent);
    await assert.rejects(a.loadChain(leaf), ChainBrokenError, 'its owner learns the chain is broken');
    assert.equal(await b.loadChain(leaf), null, 'anyone else sees nothing');
  });

  it('scopes every conversation operation, and stamps forks', async () => {
    const conv = newConversation({ tenant: 'b', itemCount: 1 });
    await a.createConversation(conv, [userMessage('hi', 'msg_1')]);
    assert.equal((await raw.getConversation(conv.id))?.tenant, 'a');
    const patch = { metadata: { k: 'v' } };
    assert.equal(await b.getConversation(conv.id), null);
    assert.equal(await b.updateConversation(conv.id, patch), null);
    assert.equal(await b.mergeConversationMetadata(conv.id, { k: 'v' }), null);
    assert.equal(await b.appendConversationItems(conv.id, [userMessage('intruder')]), null);
    assert.equal(await b.loadConversationItems(conv.id), null);
    assert.equal(await b.listConversationItems(conv.id, { limit: 10, order: 'asc' }), null);
    assert.equal(await b.getConversationItem(conv.id, 'msg_1'), null);
    assert.equal(await b.deleteConversationItem(conv.id, 'msg_1'), false);
    assert.equal(await b.forkConversation(conv.id, 'msg_1', newConversation({ tenant: 'b' })), null);
    assert.equal(await b.deleteConversation(conv.id), false);
    assert.deepEqual((await a.loadConversationItems(conv.id))?.length, 1);
    const fork = await a.forkConversation(conv.id, 'msg_1', newConversation({ tenant: 'b' }));
    assert.equal(fork?.tenant, 'a');
  });

  it('confines listing, export, import and user deletion to the tenant', async () => {
    await a.createConversation(newConversation({ user: 'u' }), []);
    await b.createConversation(newConversation({ user: 'u' }), []);
    const listed = await b.listConversations({ tenant: 'a', limit: 10, order: 'asc' });
    assert.deepEqual(listed.conversations.map((c) => c.tenant), ['b']);
    const exported: ExportRecord[] = [];
    for await (const r of b.exportRecords({ tenant: 'a' })) exported.push(r);
    assert.deepEqual(exported.map((r) => (r.type === 'conversation' ? r.conversation.tenant : r.response.tenant)), ['b']);
    const summary = await b.importRecords([{ type: 'conversation', conversation: newConversation({ tenant: 'a' }), items: [] }]);
    assert.equal(summary.conversations, 1);
    assert.equal((await b.listConversations({ tenant: 'b', limit: 10, order: 'asc' })).conversations.length, 2);
    assert.deepEqual(await b.deleteUserData('a', 'u'), { responses: 0, conversations: 1 });
    assert.equal((await a.listConversations({ tenant: 'a', limit: 10, order: 'asc' })).conversations.length, 1);
  });

  it('answers ids no record can have as unknown, without asking the store', async () => {
    let asked = 0;
    const counting = new Proxy(raw, {
      get(target, key) {
        const value = Reflect.get(target, key, target);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          asked++;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const scoped = new TenantScopedStore(counting, 'a');
    for (const id of ['', 'resp_\u0000', 'x'.repeat(257), 'conv_\n', 'a\u007f']) {
      assert.equal(plausibleId(id), false);
      assert.equal(await scoped.getResponse(id), null);
      assert.equal(await scoped.loadChain(id), null);
      assert.equal(await scoped.deleteResponse(id), false);
      assert.equal(await scoped.getConversation(id), null);
    }
    assert.equal(asked, 0);
    assert.deepEqual(await scoped.listConversations({ tenant: 'a', limit: 5, order: 'asc', after: 'conv_\u0000' }), { conversations: [], hasMore: false });
    assert.equal(plausibleId("resp_' OR 1=1 --"), true, 'metacharacters are the store’s to bind safely, not ours to refuse');
  });
});
