// The shared backend rules: expiry, paging, and lazily decoded params.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defineLazyParams, effectiveExpiry, isExpired, pageItems } from '../../src/store/codec.ts';
import type { StoredResponse } from '../../src/store/types.ts';
import { defaultParams, newTurn, userMessage } from '../store-contract/suite.ts';

describe('store codec', () => {
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
});
