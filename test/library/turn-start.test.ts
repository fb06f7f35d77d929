// A foreground turn writes its in-progress row while the provider is being called (engine.ts,
// runTurn). What must still hold: no client sees a response id before the store has it, and a
// failed write is the client's error with nothing stored, the provider call abandoned.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { MemoryStore } from '../../src/index.ts';
import type { StoredResponse } from '../../src/store/types.ts';
import { apiErrorOf, type LibraryHarness, startLibrary } from './helpers.ts';

const MODEL = 'openai/gpt-4o-mini';

/** A memory store whose beginTurn can be held back or made to fail, recording when it finished. */
class GatedStore extends MemoryStore {
  failNext = false;
  gate: Promise<void> | null = null;
  finishedAt: number[] = [];

  override async beginTurn(response: StoredResponse): Promise<void> {
    if (this.gate) await this.gate;
    if (this.failNext) {
      this.failNext = false;
      throw new Error('connection refused');
    }
    await super.beginTurn(response);
    this.finishedAt.push(performance.now());
  }
}

describe('the in-progress row and the provider call overlap', () => {
  let h: LibraryHarness;
  let store: GatedStore;
  before(async () => {
    store = new GatedStore({ maxEntries: 100, ttlSeconds: null });
    h = await startLibrary({ store });
  });
  after(() => h.close());
  beforeEach(() => {
    h.upstream.reset();
    store.failNext = false;
    store.gate = null;
  });

  it('calls the provider while the row is written, and emits response.created only once it is', async () => {
    let open!: () => void;
    store.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    h.upstream.enqueue({ kind: 'text', text: 'Hello.' });
    const stream = h.parley.responses.create({ model: MODEL, input: 'Hi', stream: true });
    // The provider is reached while beginTurn is still held.
    for (let i = 0; i < 200 && h.upstream.requests.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(h.upstream.requests.length, 1, 'the upstream was called before the row was written');
    setTimeout(open, 20);
    const events: { type: string; at: number }[] = [];
    for await (const event of await stream) events.push({ type: event.type, at: performance.now() });
    assert.equal(events[0].type, 'response.created');
    assert.ok(events[0].at >= store.finishedAt.at(-1)!, 'response.created came after the row was written');
    assert.equal(events.at(-1)?.type, 'response.completed');
  });

  it('a failed write is a 503 that stores nothing, streaming or not', async () => {
    for (const stream of [false, true]) {
      const before = store.size;
      store.failNext = true;
      h.upstream.enqueue({ kind: 'text', text: 'never seen' });
      const error = await apiErrorOf(
        (async () => {
          const result = await h.parley.responses.create({ model: MODEL, input: 'Hi', stream });
          if (stream) for await (const _ of result as unknown as AsyncIterable<unknown>) assert.fail('no event may be emitted');
        })(),
      );
      assert.equal(error.status, 503);
      assert.equal(error.code, 'state_storage_unavailable');
      assert.doesNotMatch(error.message, /undefined/);
      assert.equal(store.size, before, 'nothing stored');
    }
  });

  it('a write that fails after the provider answered still fails the turn, and the next turn works', async () => {
    let fail!: () => void;
    store.gate = new Promise<void>((resolve) => {
      fail = resolve;
    });
    store.failNext = true;
    h.upstream.enqueue({ kind: 'text', text: 'answered early' });
    const pending = apiErrorOf(h.parley.responses.create({ model: MODEL, input: 'Hi' }));
    for (let i = 0; i < 200 && h.upstream.requests.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    setTimeout(fail, 20);
    const error = await pending;
    assert.equal(error.code, 'state_storage_unavailable');
    store.gate = null;
    h.upstream.enqueue({ kind: 'text', text: 'fine' });
    const ok = await h.parley.responses.create({ model: MODEL, input: 'Again' });
    assert.equal(ok.status, 'completed');
    assert.equal((await h.parley.responses.retrieve(ok.id)).status, 'completed');
  });
});
