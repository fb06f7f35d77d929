// Conversations in-process (the scenarios of test/e2e/conversations.test.ts through the library)
// and the bookkeeping extensions, in the library and over HTTP: running token and cost totals
// checked against the price table, metadata merge, user scoping, listing by user / metadata /
// time, fork at any item, and deleting everything of a user.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { ConversationDetails, Item } from '../../src/index.ts';
import { type Harness, provider, startHarness } from '../helpers/harness.ts';
import { assertValidError, assertValidResponse } from '../helpers/spec.ts';
import { apiErrorOf, type LibraryHarness, messagesOf, startLibrary } from './helpers.ts';

const MODEL = 'gpt-4o-mini';
// USD per million tokens.
const PRICES = { input_per_million: 2.5, output_per_million: 10, cached_input_per_million: 1.25 };
const usage = (prompt: number, completion: number, cached = 0) => ({ prompt_tokens: prompt, completion_tokens: completion, cached_tokens: cached });
/** What the price table says a turn costs. */
const costOf = (prompt: number, completion: number, cached = 0) =>
  ((prompt - cached) * PRICES.input_per_million + cached * PRICES.cached_input_per_million + completion * PRICES.output_per_million) / 1e6;

const textOf = (item: Item) => (item.type === 'message' && 'text' in item.content[0] ? item.content[0].text : item.type);

let h: LibraryHarness;
before(async () => {
  h = await startLibrary({ provider: { pricing: PRICES } });
});
after(() => h.close());
beforeEach(() => h.upstream.reset());

describe('conversations (library)', () => {
  it('round-trips the conversations resource with the HTTP API’s objects', async () => {
    const created = await h.parley.conversations.create({
      metadata: { topic: 'demo' },
      items: [
        { type: 'message', role: 'user', content: 'Hello!' },
        { type: 'message', role: 'assistant', content: 'Hi, how can I help?' },
      ],
    });
    assert.deepEqual(Object.keys(created).sort(), ['created_at', 'id', 'metadata', 'object']);
    assert.deepEqual(await h.parley.conversations.retrieve(created.id), created);
    const updated = await h.parley.conversations.update(created.id, { metadata: { topic: 'renamed' } });
    assert.deepEqual(updated, { ...created, metadata: { topic: 'renamed' } });
    const added = await h.parley.conversations.items.create(created.id, { items: [{ role: 'user', content: 'and this' }] });
    assert.equal(added.object, 'list');
    assert.deepEqual(
      (await h.parley.conversations.items.list(created.id)).data.map(textOf),
      ['and this', 'Hi, how can I help?', 'Hello!'],
      'desc by default',
    );
    const page = await h.parley.conversations.items.list(created.id, { order: 'asc', limit: 2 });
    assert.equal(page.has_more, true);
    const target = page.data[1];
    assert.deepEqual(await h.parley.conversations.items.retrieve(target.id, { conversation_id: created.id }), target);
    await h.parley.conversations.items.delete(target.id, { conversation_id: created.id });
    assert.equal((await apiErrorOf(h.parley.conversations.items.retrieve(target.id, { conversation_id: created.id }))).code, 'item_not_found');
    assert.deepEqual(await h.parley.conversations.delete(created.id), { id: created.id, object: 'conversation.deleted', deleted: true });
    assert.equal((await apiErrorOf(h.parley.conversations.retrieve(created.id))).code, 'conversation_not_found');
    const tooMany = await apiErrorOf(h.parley.conversations.create({ items: Array.from({ length: 21 }, () => ({ role: 'user' as const, content: 'x' })) }));
    assert.equal(tooMany.code, 'array_above_max_length');
  });

  it('uses the conversation as context and appends each turn; concurrent turns serialise', async () => {
    const conversation = await h.parley.conversations.create({ items: [{ role: 'user', content: 'My name is Ada.' }, { role: 'assistant', content: 'Hi Ada.' }] });
    h.upstream.setDefault((request) => ({ kind: 'slow', text: `re: ${request.body.messages.at(-1).content}`, chunkDelayMs: 5 }));
    const turns = await Promise.all(['one', 'two', 'three'].map((input) => h.parley.responses.create({ model: MODEL, input, conversation: conversation.id })));
    for (const turn of turns) {
      assertValidResponse(turn);
      assert.deepEqual(turn.conversation, { id: conversation.id });
    }
    const items = (await h.parley.conversations.items.list(conversation.id, { order: 'asc', limit: 100 })).data.map(textOf);
    assert.equal(items.length, 8);
    for (let i = 2; i < 8; i += 2) assert.equal(items[i + 1], `re: ${items[i]}`, 'each answer follows its own question');
    assert.deepEqual(
      messagesOf(h.upstream).map((m) => m.content),
      items.slice(0, 7),
      'the last turn saw every earlier one',
    );
  });
});

describe('bookkeeping (library)', () => {
  it('keeps running token and cost totals by the price table, per turn and per conversation', async () => {
    const conversation = await h.parley.conversations.create({ user: 'ada', metadata: { topic: 'tea' } });
    h.upstream.enqueue(
      { kind: 'text', text: 'a', usage: usage(1000, 200) },
      { kind: 'text', text: 'b', usage: usage(3000, 500, 2000) },
      { kind: 'error', status: 500 },
    );
    await h.parley.responses.create({ model: MODEL, input: 'one', conversation: conversation.id });
    const second = await h.parley.responses.create({ model: MODEL, input: 'two', conversation: conversation.id });
    assert.deepEqual(second.usage, {
      input_tokens: 3000,
      output_tokens: 500,
      total_tokens: 3500,
      input_tokens_details: { cached_tokens: 2000 },
      output_tokens_details: { reasoning_tokens: 0 },
    });
    await apiErrorOf(h.parley.responses.create({ model: MODEL, input: 'three', conversation: conversation.id }));

    const details: ConversationDetails = await h.parley.conversations.details(conversation.id);
    assert.equal(details.object, 'conversation.details');
    assert.equal(details.user, 'ada');
    assert.deepEqual(details.metadata, { topic: 'tea' });
    assert.equal(details.item_count, 4);
    assert.ok(details.updated_at >= details.created_at);
    const { cost_usd, ...tokens } = details.usage;
    assert.deepEqual(tokens, { turns: 2, input_tokens: 4000, output_tokens: 700, total_tokens: 4700 }, 'the failed turn counts nothing');
    // 1000 in + 200 out, then 1000 uncached + 2000 cached in + 500 out.
    assert.ok(Math.abs(cost_usd - (costOf(1000, 200) + costOf(3000, 500, 2000))) < 1e-12, String(cost_usd));
    assert.ok(Math.abs(cost_usd - 0.0145) < 1e-12);
  });

  it('merges metadata (null removes), keeping the 16-pair limit', async () => {
    const conversation = await h.parley.conversations.create({ metadata: { a: '1', b: '2' } });
    const merged = await h.parley.conversations.mergeMetadata(conversation.id, { b: null, c: '3' });
    assert.deepEqual(merged.metadata, { a: '1', c: '3' });
    const many = Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`k${i}`, 'v']));
    const error = await apiErrorOf(h.parley.conversations.mergeMetadata(conversation.id, many));
    assert.equal(error.param, 'metadata');
    assert.equal((await apiErrorOf(h.parley.conversations.mergeMetadata(conversation.id, { x: 5 as never }))).code, 'invalid_type');
    assert.equal((await apiErrorOf(h.parley.conversations.mergeMetadata('conv_missing', { a: 'b' }))).status, 404);
  });

  it('lists by user, metadata and creation time', async () => {
    const user = `u-${Date.now()}`;
    const a = await h.parley.conversations.create({ user, metadata: { team: 'red' } });
    const b = await h.parley.conversations.create({ user, metadata: { team: 'blue' } });
    await h.parley.conversations.create({ user: `${user}-other`, metadata: { team: 'red' } });
    const ids = async (query: Parameters<typeof h.parley.conversations.list>[0]) => (await h.parley.conversations.list(query)).data.map((c) => c.id);
    assert.deepEqual(await ids({ user }), [b.id, a.id]);
    assert.deepEqual(await ids({ user, metadata: { team: 'red' } }), [a.id]);
    assert.deepEqual(await ids({ user, created_after: a.created_at }), [b.id, a.id]);
    assert.deepEqual(await ids({ user, created_after: a.created_at + 3600 }), []);
    assert.deepEqual(await ids({ user, created_before: a.created_at }), []);
    assert.deepEqual(await ids({ user, order: 'asc', limit: 1 }), [a.id]);
    assert.equal((await apiErrorOf(h.parley.conversations.list({ limit: 0 }))).param, 'limit');
  });

  it('forks a conversation at any item; the fork and the source then grow apart', async () => {
    const source = await h.parley.conversations.create({
      user: 'ada',
      metadata: { topic: 'trip' },
      items: [
        { role: 'user', content: 'Japan or Italy?' },
        { role: 'assistant', content: 'Both are lovely.' },
        { role: 'user', content: 'Japan then.' },
      ],
    });
    const items = (await h.parley.conversations.items.list(source.id, { order: 'asc' })).data;
    const fork = await h.parley.conversations.fork(source.id, { item_id: items[1].id, metadata: { topic: 'italy' } });
    assert.notEqual(fork.id, source.id);
    assert.deepEqual(fork.metadata, { topic: 'italy' });
    assert.deepEqual(
      (await h.parley.conversations.items.list(fork.id, { order: 'asc' })).data.map((i) => i.id),
      [items[0].id, items[1].id],
      'the same items, with the same ids',
    );
    h.upstream.enqueue({ kind: 'text', text: 'Italy it is.' });
    await h.parley.responses.create({ model: MODEL, input: 'Italy then.', conversation: fork.id });
    assert.deepEqual(
      messagesOf(h.upstream).map((m) => m.content),
      ['Japan or Italy?', 'Both are lovely.', 'Italy then.'],
    );
    assert.equal((await h.parley.conversations.items.list(source.id)).data.length, 3, 'the source is unchanged');
    const whole = await h.parley.conversations.fork(source.id);
    assert.deepEqual(whole.metadata, { topic: 'trip' });
    assert.equal((await h.parley.conversations.details(whole.id)).user, 'ada');
    assert.equal((await h.parley.conversations.items.list(whole.id)).data.length, 3);
    assert.equal((await apiErrorOf(h.parley.conversations.fork(source.id, { item_id: 'msg_nope' }))).code, 'item_not_found');
  });

  it('deletes everything of a user in one call, responses of their conversations included', async () => {
    const user = `gdpr-${Date.now()}`;
    h.upstream.enqueue({ kind: 'text', text: 'a' }, { kind: 'text', text: 'b' }, { kind: 'text', text: 'c' });
    const conversation = await h.parley.conversations.create({ user });
    const inConversation = await h.parley.responses.create({ model: MODEL, input: 'x', conversation: conversation.id });
    const direct = await h.parley.responses.create({ model: MODEL, input: 'y', user });
    const someoneElse = await h.parley.responses.create({ model: MODEL, input: 'z', user: `${user}-not` });
    assert.deepEqual(await h.parley.users.delete(user), { object: 'user.data.deleted', user, deleted: true, responses: 2, conversations: 1 });
    for (const id of [inConversation.id, direct.id]) assert.equal((await apiErrorOf(h.parley.responses.retrieve(id))).status, 404);
    assert.equal((await apiErrorOf(h.parley.conversations.retrieve(conversation.id))).status, 404);
    assert.equal((await h.parley.responses.retrieve(someoneElse.id)).id, someoneElse.id);
    assert.deepEqual(await h.parley.conversations.deleteUserData(user), { object: 'user.data.deleted', user, deleted: true, responses: 0, conversations: 0 });
  });
});

describe('bookkeeping over HTTP (Parley extensions)', () => {
  let http: Harness;
  before(async () => {
    http = await startHarness({
      store: 'sqlite',
      providers: (url) => [provider('openai/gpt-4o-mini', { base_url: url, default: true, pricing: { ...PRICES } })],
    });
  });
  after(() => http.close());

  const send = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${http.url}${path}`, {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    return { status: res.status, body: await res.json() };
  };

  it('details, PATCH merge, fork, created_after/before and DELETE /v1/users/{user}', async () => {
    const client = http.client;
    const user = `http-${Date.now()}`;
    const created = await send('POST', '/v1/conversations', { user, metadata: { a: '1' } });
    const id = created.body.id as string;
    http.upstream.enqueue({ kind: 'text', text: 'hi', usage: usage(100, 20) });
    await client.responses.create({ model: MODEL, input: 'hello', conversation: id });

    const details = await send('GET', `/v1/conversations/${id}/details`);
    assert.equal(details.status, 200);
    assert.equal(details.body.object, 'conversation.details');
    assert.equal(details.body.user, user);
    assert.deepEqual({ ...details.body.usage, cost_usd: undefined }, { turns: 1, input_tokens: 100, output_tokens: 20, total_tokens: 120, cost_usd: undefined });
    assert.ok(Math.abs(details.body.usage.cost_usd - costOf(100, 20)) < 1e-12);

    const merged = await send('PATCH', `/v1/conversations/${id}`, { metadata: { a: null, b: '2' } });
    assert.deepEqual(merged.body, { ...created.body, metadata: { b: '2' } });
    const badMerge = await send('PATCH', `/v1/conversations/${id}`, { metadata: { b: 3 } });
    assert.equal(badMerge.status, 400);
    assertValidError(badMerge.body);

    const items = await client.conversations.items.list(id, { order: 'asc' });
    const fork = await send('POST', `/v1/conversations/${id}/fork`, { item_id: items.data[0].id });
    assert.equal(fork.status, 200);
    assert.equal(fork.body.object, 'conversation');
    assert.deepEqual(
      (await client.conversations.items.list(fork.body.id)).data.map((i) => i.id),
      [items.data[0].id],
    );
    assert.equal((await send('POST', `/v1/conversations/${id}/fork`, { item_id: 'msg_nope' })).status, 404);
    assert.equal((await send('POST', `/v1/conversations/${id}/fork`, { at: 'x' })).status, 400);

    const listed = await client.get('/conversations', { query: { user, created_after: created.body.created_at } });
    assert.deepEqual(
      (listed as { data: { id: string }[] }).data.map((c) => c.id).sort(),
      [id, fork.body.id].sort(),
    );
    const before = await send('GET', `/v1/conversations?user=${user}&created_before=${created.body.created_at}`);
    assert.deepEqual(before.body.data, []);
    const badTime = await send('GET', '/v1/conversations?created_after=yesterday');
    assert.equal(badTime.status, 400);
    assert.equal(badTime.body.error.param, 'created_after');

    const deleted = await send('DELETE', `/v1/users/${encodeURIComponent(user)}`);
    assert.deepEqual(deleted.body, { object: 'user.data.deleted', user, deleted: true, responses: 1, conversations: 2 });
    const gone = await client.conversations.retrieve(id).catch((e: unknown) => e);
    assert.ok(gone instanceof OpenAI.NotFoundError);
  });

  it('rejects a pricing entry that is not a price table', async () => {
    const { validateConfig } = await import('../../src/config/schema.ts');
    const result = validateConfig({
      model_providers: [{ model: 'openai/x', pricing: { input_per_million: -1, output: 2 } }],
      compaction: { modle: 'x' },
    });
    assert.ok(!result.ok);
    assert.deepEqual(
      result.problems.map((p) => [p.path.join('.'), p.message]),
      [
        ['model_providers.0.pricing.input_per_million', 'must be 0 or more (USD per million tokens)'],
        ['model_providers.0.pricing.output_per_million', 'is required: USD per million tokens, e.g. 2.5'],
        ['model_providers.0.pricing.output', 'unknown key; did you mean "output_per_million"?'],
        ['compaction.modle', 'unknown key; did you mean "model"?'],
      ],
    );
  });
});
