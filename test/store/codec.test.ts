// The shared backend rules: expiry, paging, and lazily decoded params.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  addTurnUsage,
  decodeItemData,
  decodeParams,
  decodeUsage,
  defineLazyParams,
  encodeItemData,
  encodeParams,
  encodeUsage,
  effectiveExpiry,
  emptyConversationUsage,
  isExpired,
  mergeMetadata,
  pageItems,
  parentsFirst,
} from '../../src/store/codec.ts';
import type { StoredResponse } from '../../src/store/types.ts';
import { completed, defaultParams, newTurn, userMessage } from '../store-contract/suite.ts';

describe('store codec', () => {
  it('stores default params in a few bytes and restores them exactly; reads the old full JSON', () => {
    const params = defaultParams();
    const compact = encodeParams(params);
    assert.ok(compact.length < 20, compact);
    assert.deepEqual(decodeParams(compact), params);
    assert.deepEqual(decodeParams(JSON.stringify(params)), params);
    const custom = { ...defaultParams(), instructions: 'Be brief.', metadata: { a: 'b' }, background: true };
    assert.deepEqual(decodeParams(encodeParams(custom)), custom);
    const decoded = decodeParams(compact);
    decoded.tools.push({ type: 'function', name: 'x', description: null, parameters: null, strict: null });
    assert.deepEqual(decodeParams(compact).tools, [], 'defaults are fresh objects every time');
  });

  it('expires at the expiry second, and applies the default TTL only when none is set', () => {
    assert.equal(isExpired(null, 10), false);
    assert.equal(isExpired(11, 10), false);
    assert.equal(isExpired(10, 10), true);
    assert.equal(effectiveExpiry(null, 100, null), null);
    assert.equal(effectiveExpiry(null, 100, 50), 150);
    assert.equal(effectiveExpiry(120, 100, 50), 120);
  });

  it('pages items like the SQL backends', () => {
    const items = ['a', 'b', 'c'].map((id) => userMessage(id, id));
    assert.deepEqual(pageItems(items, { limit: 2, order: 'asc' }), {
      items: items.slice(0, 2),
      hasMore: true,
    });
    assert.deepEqual(pageItems(items, { limit: 2, order: 'desc', after: 'b' }), {
      items: [items[0]],
      hasMore: false,
    });
    assert.deepEqual(pageItems(items, { limit: 2, order: 'asc', after: 'zz' }), {
      items: [],
      hasMore: false,
    });
  });

  it('decodes params once, on first read, and behaves like a plain property', () => {
    const { params, ...rest } = newTurn({ input: [userMessage('x')] });
    let decodes = 0;
    const make = () =>
      defineLazyParams(structuredClone(rest), () => {
        decodes++;
        return structuredClone(params);
      });

    const untouched = make();
    assert.equal(decodes, 0, 'not decoded until read');

    const read = make();
    assert.deepEqual(read.params, params);
    assert.equal(read.params, read.params, 'the same object on every read');
    assert.equal(decodes, 1);
    read.params.metadata.k = 'v';
    assert.equal(read.params.metadata.k, 'v', 'mutations stick');

    const spread: StoredResponse = { ...make() };
    assert.deepEqual(Object.getOwnPropertyDescriptor(spread, 'params')?.value, params);
    assert.deepEqual(JSON.parse(JSON.stringify(make())).params, params);
    assert.deepEqual(structuredClone(make()).params, params);

    const assigned = make();
    const other = { ...defaultParams(), instructions: 'other' };
    assigned.params = other;
    assert.equal(assigned.params, other);
    assert.deepEqual(Object.keys(untouched).sort(), [...Object.keys(rest), 'params'].sort());
  });

  it('merges metadata: strings set, null removes, `__proto__` is a key like any other', () => {
    const base = { a: '1', b: '2' };
    assert.deepEqual(mergeMetadata(base, { b: null, c: '3', missing: null }), { a: '1', c: '3' });
    assert.deepEqual(base, { a: '1', b: '2' }, 'the input is not changed');
    const merged = mergeMetadata({}, JSON.parse('{"__proto__": "x"}'));
    assert.equal(Object.getPrototypeOf(merged), Object.prototype);
    assert.deepEqual(Object.keys(merged), ['__proto__']);
    assert.equal(JSON.stringify(merged), '{"__proto__":"x"}');
  });

  it('adds a turn to the running totals, unknown usage and cost as zero', () => {
    const usage = { ...completed([]).usage!, input_tokens: 3, output_tokens: 4, total_tokens: 7 };
    const once = addTurnUsage(emptyConversationUsage(), usage, 0.5);
    assert.deepEqual(once, { input_tokens: 3, output_tokens: 4, total_tokens: 7, cost_usd: 0.5, turns: 1 });
    assert.deepEqual(addTurnUsage(once, null, null), { ...once, turns: 2 });
  });

  it('orders responses parents first, keeping the given order otherwise', () => {
    const a = newTurn();
    const b = newTurn({ previousResponseId: a.id });
    const c = newTurn({ previousResponseId: b.id });
    const orphan = newTurn({ previousResponseId: 'resp_gone' });
    const ids = (list: StoredResponse[]) => list.map((r) => r.id);
    assert.deepEqual(ids(parentsFirst([c, orphan, b, a])), ids([a, b, c, orphan]));
    assert.deepEqual(ids(parentsFirst([orphan, a, b, c])), ids([orphan, a, b, c]));
    // A cycle (only possible through a deliberate import) still yields each response once.
    const x = newTurn({ id: 'resp_x', previousResponseId: 'resp_y' });
    const y = newTurn({ id: 'resp_y', previousResponseId: 'resp_x' });
    assert.deepEqual(ids(parentsFirst([x, y])).sort(), ['resp_x', 'resp_y']);
  });
});

describe('compact usage and item data', () => {
  const usage = {
    input_tokens: 1643,
    output_tokens: 111,
    total_tokens: 1754,
    input_tokens_details: { cached_tokens: 7 },
    output_tokens_details: { reasoning_tokens: 3 },
  };

  it('round-trips usage through the short array form and still reads the object form', () => {
    const text = encodeUsage(usage);
    assert.equal(text, '[1643,111,1754,7,3]');
    assert.deepEqual(decodeUsage(text), usage);
    assert.deepEqual(decodeUsage(JSON.stringify(usage)), usage);
  });

  it('stores an item without its id and gives it back with the id after its type', () => {
    const item = {
      type: 'message',
      id: 'msg_1',
      role: 'user',
      status: 'completed',
      content: [{ type: 'input_text', text: 'hi' }],
    } as const;
    const text = encodeItemData(item as never);
    assert.equal(text.includes('msg_1'), false);
    const back = decodeItemData('msg_1', text);
    assert.equal(JSON.stringify(back), JSON.stringify(item));
    // Rows written before hold their id in the text.
    assert.equal(JSON.stringify(decodeItemData('msg_1', JSON.stringify(item))), JSON.stringify(item));
  });

  it('keeps a "__proto__" member as data', () => {
    const text = '{"type":"function_call_output","__proto__":{"x":1},"output":"o"}';
    const back = decodeItemData('fc_1', text) as unknown as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(back), Object.prototype);
    assert.deepEqual(Object.getOwnPropertyDescriptor(back, '__proto__')?.value, { x: 1 });
  });
});
