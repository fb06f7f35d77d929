// truncateToFit: whole turns go oldest first; system/developer messages and call/result pairs stay.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { truncateToFit } from '../../src/context/truncation.ts';
import type { Item } from '../../src/protocol/types.ts';

const msg = (id: string, role: 'user' | 'assistant' | 'system' | 'developer', text = id): Item => ({
  type: 'message',
  id,
  role,
  status: 'completed',
  content: [role === 'assistant' ? { type: 'output_text', text, annotations: [] } : { type: 'input_text', text }],
});
const call = (id: string, callId: string): Item => ({ type: 'function_call', id, call_id: callId, name: 'f', arguments: '{}', status: 'completed' });
const result = (id: string, callId: string): Item => ({ type: 'function_call_output', id, call_id: callId, output: 'r', status: 'completed' });

/** Every item costs 10. */
const ten = () => 10;
const ids = (items: Item[]) => items.map((i) => i.id);

describe('truncateToFit', () => {
  const history: Item[] = [
    msg('sys', 'system'),
    msg('u1', 'user'),
    msg('a1', 'assistant'),
    msg('u2', 'user'),
    call('fc2', 'c2'),
    result('fo2', 'c2'),
    msg('a2', 'assistant'),
    msg('dev', 'developer'),
    msg('u3', 'user'),
    msg('a3', 'assistant'),
    msg('u4', 'user'),
  ];

  it('returns everything when it fits', () => {
    assert.deepEqual(ids(truncateToFit(history, 110, ten)), ids(history));
  });

  it('drops the oldest turns first, whole, keeping system and developer messages in place', () => {
    assert.deepEqual(ids(truncateToFit(history, 90, ten)), ['sys', 'u2', 'fc2', 'fo2', 'a2', 'dev', 'u3', 'a3', 'u4']);
    assert.deepEqual(ids(truncateToFit(history, 80, ten)), ['sys', 'dev', 'u3', 'a3', 'u4']);
    assert.deepEqual(ids(truncateToFit(history, 40, ten)), ['sys', 'dev', 'u4']);
  });

  it('never drops the newest turn: over budget, the caller decides', () => {
    assert.deepEqual(ids(truncateToFit(history, 5, ten)), ['sys', 'dev', 'u4']);
  });

  it('keeps a call and a result together even when a user message sits between them', () => {
    const odd: Item[] = [msg('u1', 'user'), call('fc', 'c'), msg('u2', 'user'), result('fo', 'c'), msg('u3', 'user')];
    // u1..fo form one turn: dropping any of it drops all of it.
    assert.deepEqual(ids(truncateToFit(odd, 20, ten)), ['u3']);
    assert.deepEqual(ids(truncateToFit(odd, 50, ten)), ids(odd));
  });

  it('weighs items by their cost', () => {
    const cost = (item: Item) => (item.id === 'u1' ? 1000 : 1);
    assert.deepEqual(ids(truncateToFit(history, 20, cost)), ['sys', 'u2', 'fc2', 'fo2', 'a2', 'dev', 'u3', 'a3', 'u4']);
  });
});
