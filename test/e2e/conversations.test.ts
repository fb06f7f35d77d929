// The Conversations API and `conversation` on POST /v1/responses, end to end through the official
// `openai` SDK: gateway on a loopback port, SQLite store, fake Chat Completions upstream.
// Assertions are on what the client got (validated against the Open Responses schema where it
// defines the shape) and on what the upstream received.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { ResponseStreamEvent } from 'openai/resources/responses/responses';
import { createGateway } from '../../src/gateway.ts';
import type { RecordedRequest } from '../fake-upstream/server.ts';
import { type Harness, readSse, startHarness } from '../helpers/harness.ts';
import { assertValidError, assertValidResponse, assertValidStreamEvent } from '../helpers/spec.ts';

let h: Harness;

before(async () => {
  h = await startHarness({ store: 'sqlite' });
});
after(async () => {
  await h.close();
});
beforeEach(() => {
  h.upstream.reset();
});

const MODEL = 'gpt-4o-mini';

type ChatMessage = { role: string; content: unknown };

function messagesOf(request: RecordedRequest | undefined): ChatMessage[] {
  return (request?.body.messages ?? []) as ChatMessage[];
}

function lastUserText(request: RecordedRequest): string {
  const users = messagesOf(request).filter((m) => m.role === 'user');
  return String(users[users.length - 1]?.content);
}

/** Every upstream request answers "re: <last user text>", streamed slowly enough to overlap. */
function echoSlowly(chunkDelayMs: number): void {
  h.upstream.setDefault((request) => ({
    kind: 'slow',
    text: `re: ${lastUserText(request)}`,
    chunkDelayMs,
    chunks: ['re: ', lastUserText(request)],
  }));
}

function assertConversationObject(value: unknown): asserts value is OpenAI.Conversations.Conversation {
  const c = value as Record<string, unknown>;
  assert.deepEqual(Object.keys(c).sort(), ['created_at', 'id', 'metadata', 'object']);
  assert.equal(c.object, 'conversation');
  assert.match(String(c.id), /^conv_[0-9a-f]{48}$/);
  assert.equal(typeof c.created_at, 'number');
  assert.equal(typeof c.metadata, 'object');
}

function assertListObject(value: unknown): void {
  const list = value as {
    object: string;
    data: { id: string }[];
    first_id: unknown;
    last_id: unknown;
    has_more: unknown;
  };
  assert.equal(list.object, 'list');
  assert.ok(Array.isArray(list.data));
  assert.equal(typeof list.has_more, 'boolean');
  assert.equal(list.first_id, list.data.length > 0 ? list.data[0].id : null);
  assert.equal(list.last_id, list.data.length > 0 ? list.data[list.data.length - 1].id : null);
}

function textOf(item: unknown): string {
  const i = item as { type: string; content?: { text?: string }[] };
  return i.type === 'message' ? String(i.content?.[0]?.text) : i.type;
}

async function allItems(conversationId: string): Promise<OpenAI.Conversations.ConversationItem[]> {
  const items: OpenAI.Conversations.ConversationItem[] = [];
  for await (const item of h.client.conversations.items.list(conversationId, { order: 'asc', limit: 3 })) {
    items.push(item);
  }
  return items;
}

async function errorOf(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(error instanceof OpenAI.APIError, `expected an API error, got ${String(error)}`);
  assertValidError({ error: error.error });
  return error;
}

describe('Conversations API', () => {
  it('round-trips the whole client.conversations resource', async () => {
    const created = await h.client.conversations.create({
      metadata: { topic: 'demo' },
      items: [
        { type: 'message', role: 'user', content: 'Hello!' },
        { type: 'message', role: 'assistant', content: 'Hi, how can I help?' },
      ],
    });
    assertConversationObject(created);
    assert.deepEqual(created.metadata, { topic: 'demo' });
    assert.ok(Math.abs(created.created_at - Date.now() / 1000) < 60);

    const empty = await h.client.conversations.create();
    assertConversationObject(empty);
    assert.deepEqual(empty.metadata, {});
    assert.equal((await h.client.conversations.items.list(empty.id)).data.length, 0);

    assert.deepEqual(await h.client.conversations.retrieve(created.id), created);

    const updated = await h.client.conversations.update(created.id, {
      metadata: { topic: 'renamed', v: '2' },
    });
    assert.deepEqual(updated, { ...created, metadata: { topic: 'renamed', v: '2' } });
    assert.deepEqual((await h.client.conversations.retrieve(created.id)).metadata, {
      topic: 'renamed',
      v: '2',
    });

    const added = await h.client.conversations.items.create(created.id, {
      items: [
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Add this' }] },
        { type: 'message', role: 'user', content: 'and this' },
      ],
    });
    assertListObject(added);
    assert.deepEqual(added.data.map(textOf), ['Add this', 'and this']);
    assert.equal(added.has_more, false);
    for (const item of added.data) assert.match(String(item.id), /^msg_/);

    const desc = await h.client.conversations.items.list(created.id);
    assertListObject((desc as unknown as { body: unknown }).body);
    assert.deepEqual(
      desc.data.map(textOf),
      ['and this', 'Add this', 'Hi, how can I help?', 'Hello!'],
      'default order is desc',
    );
    assert.deepEqual(
      (await h.client.conversations.items.list(created.id, { order: 'asc' })).data.map(textOf),
      ['Hello!', 'Hi, how can I help?', 'Add this', 'and this'],
    );
    const page1 = await h.client.conversations.items.list(created.id, { limit: 3, order: 'asc' });
    assert.equal(page1.has_more, true);
    assert.deepEqual(page1.data.map(textOf), ['Hello!', 'Hi, how can I help?', 'Add this']);
    const page2 = await page1.getNextPage();
    assert.deepEqual(page2.data.map(textOf), ['and this']);
    assert.equal(page2.hasNextPage(), false);
    assert.deepEqual((await allItems(created.id)).map(textOf), [
      'Hello!',
      'Hi, how can I help?',
      'Add this',
      'and this',
    ]);

    const withInclude = await h.client.conversations.items.list(created.id, {
      include: ['message.output_text.logprobs', 'reasoning.encrypted_content'],
    });
    assert.equal(withInclude.data.length, 4);

    const target = desc.data[1];
    const targetId = String(target.id);
    const item = await h.client.conversations.items.retrieve(targetId, { conversation_id: created.id });
    assert.deepEqual(item, target);
    const after = await h.client.conversations.items.delete(targetId, { conversation_id: created.id });
    assertConversationObject(after);
    assert.deepEqual(after, { ...created, metadata: { topic: 'renamed', v: '2' } });
    const missing = await errorOf(
      h.client.conversations.items.retrieve(targetId, { conversation_id: created.id }),
    );
    assert.ok(missing instanceof OpenAI.NotFoundError);
    assert.ok(
      (await errorOf(
        h.client.conversations.items.delete(targetId, { conversation_id: created.id }),
      )) instanceof OpenAI.NotFoundError,
    );
    assert.deepEqual((await allItems(created.id)).map(textOf), ['Hello!', 'Hi, how can I help?', 'and this']);

    const deleted: unknown = await h.client.conversations.delete(created.id);
    assert.deepEqual(deleted, { id: created.id, object: 'conversation.deleted', deleted: true });
    for (const call of [
      () => h.client.conversations.retrieve(created.id),
      () => h.client.conversations.delete(created.id),
      () => h.client.conversations.update(created.id, { metadata: {} }),
      () => h.client.conversations.items.list(created.id),
      () => h.client.conversations.items.create(created.id, { items: [{ role: 'user', content: 'x' }] }),
    ]) {
      const error = await errorOf(call());
      assert.ok(error instanceof OpenAI.NotFoundError);
      assert.equal(error.code, 'conversation_not_found');
    }
  });

  it('keeps function calls, their outputs and reasoning as items', async () => {
    const conversation = await h.client.conversations.create({
      items: [
        { type: 'message', role: 'user', content: 'Weather in Paris?' },
        { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
        { type: 'function_call_output', call_id: 'call_1', output: '{"c":21}' },
      ],
    });
    const items = await allItems(conversation.id);
    assert.deepEqual(
      items.map((i) => i.type),
      ['message', 'function_call', 'function_call_output'],
    );
    const call = items[1] as OpenAI.Responses.ResponseFunctionToolCallItem;
    assert.equal(call.call_id, 'call_1');
    assert.equal(call.arguments, '{"city":"Paris"}');
    assert.equal(call.status, 'completed');
  });

  it('rejects bad bodies with OpenAI-shaped 400s', async () => {
    const tooMany = Array.from({ length: 21 }, (_, i) => ({ role: 'user' as const, content: `m${i}` }));
    let error = await errorOf(h.client.conversations.create({ items: tooMany }));
    assert.ok(error instanceof OpenAI.BadRequestError);
    assert.equal(error.param, 'items');
    assert.equal(error.code, 'array_above_max_length');
    assert.match(error.message, /maximum length 20/);

    const conversation = await h.client.conversations.create({ items: tooMany.slice(0, 20) });
    assert.equal((await allItems(conversation.id)).length, 20, 'exactly 20 is fine');
    error = await errorOf(h.client.conversations.items.create(conversation.id, { items: tooMany }));
    assert.ok(error instanceof OpenAI.BadRequestError);
    assert.equal(error.param, 'items');
    error = await errorOf(h.client.conversations.items.create(conversation.id, { items: [] }));
    assert.equal(error.param, 'items');
    assert.equal((await allItems(conversation.id)).length, 20, 'nothing was added');

    error = await errorOf(
      h.client.conversations.create({ items: [{ role: 'user', content: [{ type: 'bogus' }] }] } as never),
    );
    assert.equal(error.param, 'items[0].content[0].type');
    error = await errorOf(h.client.conversations.create({ metadata: { k: 'v'.repeat(513) } }));
    assert.ok(error instanceof OpenAI.BadRequestError);
    assert.equal(error.param, 'metadata.k');
    error = await errorOf(h.client.conversations.update(conversation.id, {} as never));
    assert.equal(error.param, 'metadata');
    error = await errorOf(h.client.conversations.items.list(conversation.id, { limit: 1000 }));
    assert.equal(error.param, 'limit');
    error = await errorOf(h.client.conversations.items.list(conversation.id, { include: ['nope' as never] }));
    assert.equal(error.param, 'include');

    const res = await h.post('/v1/conversations', { items: [], colour: 'blue' });
    assert.equal(res.status, 400);
    const body = await res.json();
    assertValidError(body);
    assert.equal(body.error.param, 'colour');
  });
});

describe('listing conversations (Parley extension)', () => {
  it('finds a user’s conversations by user and metadata, newest first, with paging', async () => {
    const user = `user-${Date.now()}`;
    const make = async (metadata: Record<string, string>, who = user) => {
      const res = await h.post('/v1/conversations', { metadata, user: who });
      assert.equal(res.status, 200);
      const conversation = await res.json();
      assertConversationObject(conversation);
      return conversation as OpenAI.Conversations.Conversation;
    };
    const a = await make({ team: 'red', tier: 'gold' });
    const b = await make({ team: 'blue' });
    const c = await make({ team: 'red' });
    await make({ team: 'red' }, `${user}-other`);

    const list = async (query: Record<string, unknown>) => {
      const page = (await h.client.get('/conversations', { query })) as {
        data: OpenAI.Conversations.Conversation[];
        has_more: boolean;
      };
      assertListObject(page);
      for (const conversation of page.data) assertConversationObject(conversation);
      return page;
    };
    const ids = (page: { data: { id: string }[] }) => page.data.map((x) => x.id);

    assert.deepEqual(ids(await list({ user })), [c.id, b.id, a.id], 'newest first by default');
    assert.deepEqual(ids(await list({ user, order: 'asc' })), [a.id, b.id, c.id]);
    assert.deepEqual(ids(await list({ user, metadata: { team: 'red' } })), [c.id, a.id]);
    assert.deepEqual(ids(await list({ user, metadata: { team: 'red', tier: 'gold' } })), [a.id]);
    assert.deepEqual(ids(await list({ user, metadata: { team: 'green' } })), []);
    assert.deepEqual(ids(await list({ user: `${user}-nobody` })), []);

    const first = await list({ user, limit: 2 });
    assert.deepEqual(ids(first), [c.id, b.id]);
    assert.equal(first.has_more, true);
    const second = await list({ user, limit: 2, after: b.id });
    assert.deepEqual(ids(second), [a.id]);
    assert.equal(second.has_more, false);

    // The same query as a raw URL: metadata[key]=value.
    const raw = await fetch(
      `${h.url}/v1/conversations?user=${encodeURIComponent(user)}&metadata[tier]=gold&metadata[team]=red`,
    );
    assert.deepEqual(ids(await raw.json()), [a.id]);

    await h.client.conversations.update(b.id, { metadata: { team: 'red' } });
    assert.deepEqual(ids(await list({ user, metadata: { team: 'red' } })), [c.id, b.id, a.id]);
    await h.client.conversations.delete(c.id);
    assert.deepEqual(ids(await list({ user })), [b.id, a.id]);

    const bad = await fetch(`${h.url}/v1/conversations?colour=blue`);
    assert.equal(bad.status, 400);
    assertValidError(await bad.json());
  });
});

describe('responses with conversation', () => {
  it('uses the conversation as context over 3 turns and appends each turn', async () => {
    const conversation = await h.client.conversations.create({
      items: [
        { type: 'message', role: 'user', content: 'My name is Ada.' },
        { type: 'message', role: 'assistant', content: 'Hi Ada.' },
      ],
    });
    h.upstream.enqueue(
      { kind: 'text', text: 'You like tea.' },
      { kind: 'text', text: 'Noted: Paris.' },
      { kind: 'text', text: 'Ada, who likes tea, in Paris.' },
    );
    const r1 = await h.client.responses.create({
      model: MODEL,
      input: 'I like tea.',
      conversation: conversation.id,
    });
    assertValidResponse(r1);
    assert.deepEqual(r1.conversation, { id: conversation.id });
    assert.equal(r1.previous_response_id, null);

    const r2 = await h.client.responses.create({
      model: MODEL,
      input: [{ role: 'user', content: 'I live in Paris.' }],
      conversation: { id: conversation.id },
      instructions: 'Be brief.',
    });
    assertValidResponse(r2);
    assert.deepEqual(r2.conversation, { id: conversation.id });

    const r3 = await h.client.responses.create({
      model: MODEL,
      input: 'Who am I?',
      conversation: conversation.id,
      instructions: 'Answer in one line.',
    });
    assertValidResponse(r3);
    assert.equal(r3.output_text, 'Ada, who likes tea, in Paris.');

    const sent = h.upstream.requests.map((r) => r.body.messages);
    assert.equal(sent.length, 3);
    assert.deepEqual(sent[0], [
      { role: 'user', content: 'My name is Ada.' },
      { role: 'assistant', content: 'Hi Ada.' },
      { role: 'user', content: 'I like tea.' },
    ]);
    assert.deepEqual(sent[2], [
      { role: 'system', content: 'Answer in one line.' },
      { role: 'user', content: 'My name is Ada.' },
      { role: 'assistant', content: 'Hi Ada.' },
      { role: 'user', content: 'I like tea.' },
      { role: 'assistant', content: 'You like tea.' },
      { role: 'user', content: 'I live in Paris.' },
      { role: 'assistant', content: 'Noted: Paris.' },
      { role: 'user', content: 'Who am I?' },
    ]);

    const items = await allItems(conversation.id);
    assert.deepEqual(items.map(textOf), [
      'My name is Ada.',
      'Hi Ada.',
      'I like tea.',
      'You like tea.',
      'I live in Paris.',
      'Noted: Paris.',
      'Who am I?',
      'Ada, who likes tea, in Paris.',
    ]);
    // The conversation's items are the turns' own items: same ids as the response output.
    assert.equal(items[3].id, r1.output[0].id);
    assert.equal(items[7].id, r3.output[0].id);

    const retrieved = await h.client.responses.retrieve(r2.id);
    assertValidResponse(retrieved);
    assert.deepEqual(retrieved.conversation, { id: conversation.id });
    const inputItems = await h.client.responses.inputItems.list(r2.id);
    assert.deepEqual(inputItems.data.map(textOf), ['I live in Paris.'], 'a turn stores only its own input');
  });

  it('streams a conversation turn; every event validates and carries the conversation', async () => {
    const conversation = await h.client.conversations.create({
      items: [{ role: 'user', content: 'Count with me.' }],
    });
    h.upstream.enqueue({ kind: 'text', text: 'One two.', chunks: ['One', ' two.'] });
    const events: ResponseStreamEvent[] = [];
    const stream = h.client.responses.stream({ model: MODEL, input: 'Go.', conversation: conversation.id });
    stream.on('event', (event) => {
      assertValidStreamEvent(event);
      events.push(event);
    });
    const final = await stream.finalResponse();
    assertValidResponse(final);
    assert.equal(final.output_text, 'One two.');
    const created = events.find((e) => e.type === 'response.created');
    assert.ok(created && created.type === 'response.created');
    assert.deepEqual(created.response.conversation, { id: conversation.id });
    const completed = events.find((e) => e.type === 'response.completed');
    assert.ok(completed && completed.type === 'response.completed');
    assertValidResponse(completed.response);
    assert.deepEqual(completed.response.conversation, { id: conversation.id });
    assert.deepEqual((await allItems(conversation.id)).map(textOf), ['Count with me.', 'Go.', 'One two.']);
  });

  it('serialises two concurrent streaming turns on one conversation', async () => {
    const conversation = await h.client.conversations.create({
      items: [{ role: 'user', content: 'Start.' }],
    });
    echoSlowly(40);
    const run = async (text: string) => {
      const stream = h.client.responses.stream({ model: MODEL, input: text, conversation: conversation.id });
      stream.on('event', (event) => assertValidStreamEvent(event));
      const response = await stream.finalResponse();
      assertValidResponse(response);
      return response;
    };
    const [ra, rb] = await Promise.all([run('turn A'), run('turn B')]);
    assert.equal(ra.output_text, 're: turn A');
    assert.equal(rb.output_text, 're: turn B');

    assert.equal(h.upstream.requests.length, 2);
    const [first, second] = h.upstream.requests;
    const firstText = lastUserText(first);
    const secondText = lastUserText(second);
    assert.deepEqual(new Set([firstText, secondText]), new Set(['turn A', 'turn B']));
    assert.ok(second.receivedAt >= first.receivedAt);
    assert.deepEqual(messagesOf(second), [
      { role: 'user', content: 'Start.' },
      { role: 'user', content: firstText },
      { role: 'assistant', content: `re: ${firstText}` },
      { role: 'user', content: secondText },
    ]);
    assert.deepEqual((await allItems(conversation.id)).map(textOf), [
      'Start.',
      firstText,
      `re: ${firstText}`,
      secondText,
      `re: ${secondText}`,
    ]);
  });

  it('serialises many parallel turns: nothing lost, duplicated or interleaved, each sees all before it', async () => {
    const conversation = await h.client.conversations.create();
    echoSlowly(5);
    const turns = Array.from({ length: 8 }, (_, i) => `parallel ${i}`);
    const responses = await Promise.all(
      turns.map((input) => h.client.responses.create({ model: MODEL, input, conversation: conversation.id })),
    );
    for (const r of responses) {
      assertValidResponse(r);
      assert.equal(r.status, 'completed');
    }
    const items = (await allItems(conversation.id)).map(textOf);
    assert.equal(items.length, 16);
    assert.equal(new Set(items).size, 16, 'no duplicates');
    for (let i = 0; i < 16; i += 2) assert.equal(items[i + 1], `re: ${items[i]}`, `turn at ${i} is whole`);
    assert.deepEqual(new Set(items.filter((_, i) => i % 2 === 0)), new Set(turns));
    // The k-th upstream call saw the k turns before it, in the conversation's order.
    h.upstream.requests.forEach((request, k) => {
      const context = messagesOf(request).map((m) => String(m.content));
      assert.deepEqual(context, [...items.slice(0, 2 * k), items[2 * k]]);
    });
  });

  it('serialises turns across two gateway instances sharing one SQLite file', async () => {
    const other = await createGateway(h.gateway.config);
    const otherUrl = await other.listen({ port: 0 });
    try {
      const otherClient = new OpenAI({ baseURL: `${otherUrl}/v1`, apiKey: 'k', maxRetries: 0 });
      const conversation = await h.client.conversations.create();
      echoSlowly(20);
      const clients = [h.client, otherClient, h.client, otherClient];
      await Promise.all(
        clients.map((client, i) =>
          client.responses.create({
            model: MODEL,
            input: `instance turn ${i}`,
            conversation: conversation.id,
          }),
        ),
      );
      const items = (await allItems(conversation.id)).map(textOf);
      assert.equal(items.length, 8);
      for (let i = 0; i < 8; i += 2) assert.equal(items[i + 1], `re: ${items[i]}`);
      h.upstream.requests.forEach((request, k) => {
        assert.equal(messagesOf(request).length, 2 * k + 1, `call ${k} saw every earlier turn`);
      });
    } finally {
      await other.close();
    }
  });

  it('appends nothing for a failed turn and leaves the conversation usable', async () => {
    const conversation = await h.client.conversations.create({
      items: [{ role: 'user', content: 'Before.' }],
    });
    h.upstream.enqueue({ kind: 'error', status: 500 });
    const failed = await h.post('/v1/responses', {
      model: MODEL,
      input: 'Boom?',
      conversation: conversation.id,
    });
    assert.ok(failed.status >= 500, `status ${failed.status}`);
    assertValidError(await failed.json());

    h.upstream.enqueue({ kind: 'stream_error', text: 'partial' });
    const streamed = await h.post('/v1/responses', {
      model: MODEL,
      input: 'Break mid-stream',
      conversation: conversation.id,
      stream: true,
    });
    const { events } = await readSse(streamed);
    for (const event of events) assertValidStreamEvent(event);
    assert.equal(events[events.length - 1].type, 'response.failed');
    assert.deepEqual((await allItems(conversation.id)).map(textOf), ['Before.']);

    h.upstream.reset();
    h.upstream.enqueue({ kind: 'text', text: 'Recovered.' });
    const ok = await h.client.responses.create({
      model: MODEL,
      input: 'Again.',
      conversation: conversation.id,
    });
    assert.equal(ok.output_text, 'Recovered.');
    assert.deepEqual(messagesOf(h.upstream.lastRequest()), [
      { role: 'user', content: 'Before.' },
      { role: 'user', content: 'Again.' },
    ]);
    assert.deepEqual((await allItems(conversation.id)).map(textOf), ['Before.', 'Again.', 'Recovered.']);
  });

  it('keeps a turn in the conversation after its response is deleted', async () => {
    const conversation = await h.client.conversations.create();
    h.upstream.enqueue({ kind: 'text', text: 'Kept.' });
    const r = await h.client.responses.create({
      model: MODEL,
      input: 'Keep me.',
      conversation: conversation.id,
    });
    await h.client.responses.delete(r.id);
    assert.deepEqual((await allItems(conversation.id)).map(textOf), ['Keep me.', 'Kept.']);
  });

  it('rejects an unknown conversation, conversation with previous_response_id, and bad values', async () => {
    let error = await errorOf(
      h.client.responses.create({ model: MODEL, input: 'hi', conversation: 'conv_doesnotexist' }),
    );
    assert.ok(error instanceof OpenAI.NotFoundError);
    assert.equal(error.status, 404);
    assert.equal(error.param, 'conversation');
    assert.equal(error.code, 'conversation_not_found');
    assert.equal(error.type, 'invalid_request_error');

    const conversation = await h.client.conversations.create();
    h.upstream.enqueue({ kind: 'text', text: 'x' });
    const previous = await h.client.responses.create({ model: MODEL, input: 'hi' });
    h.upstream.reset();
    error = await errorOf(
      h.client.responses.create({
        model: MODEL,
        input: 'hi',
        conversation: conversation.id,
        previous_response_id: previous.id,
      }),
    );
    assert.ok(error instanceof OpenAI.BadRequestError);
    assert.equal(error.param, 'conversation');
    assert.match(error.message, /previous_response_id/);
    assert.match(error.message, /conversation/);

    error = await errorOf(
      h.client.responses.create({ model: MODEL, input: 'hi', conversation: 42 as never }),
    );
    assert.ok(error instanceof OpenAI.BadRequestError);
    assert.equal(error.param, 'conversation');
    error = await errorOf(h.client.responses.create({ model: MODEL, input: 'hi', conversation: 'resp_123' }));
    assert.equal(error.param, 'conversation');
    error = await errorOf(
      h.client.responses.create({ model: MODEL, input: 'hi', conversation: {} as never }),
    );
    assert.equal(error.param, 'conversation.id');
    error = await errorOf(
      h.client.responses.create({ model: MODEL, input: 'hi', conversation: conversation.id, store: false }),
    );
    assert.equal(error.param, 'store');
    error = await errorOf(
      h.client.responses.create({ model: 'no-such-model', input: 'hi', conversation: conversation.id }),
    );
    assert.ok(error instanceof OpenAI.BadRequestError);

    assert.equal(h.upstream.requests.length, 0, 'nothing was sent upstream');
    assert.deepEqual(await allItems(conversation.id), []);
  });
});

describe('conversations on a stateless gateway', () => {
  it('explains that conversations need state storage', async () => {
    const stateless = await startHarness({ store: null });
    try {
      let error = await errorOf(stateless.client.conversations.create());
      assert.equal(error.status, 400);
      assert.equal(error.code, 'state_storage_disabled');
      error = await errorOf(stateless.client.conversations.retrieve('conv_123'));
      assert.equal(error.status, 404);
      error = await errorOf(
        stateless.client.responses.create({ model: MODEL, input: 'hi', conversation: 'conv_123' }),
      );
      assert.equal(error.status, 400);
      assert.equal(error.code, 'state_storage_disabled');
      assert.equal(error.param, 'conversation');
    } finally {
      await stateless.close();
    }
  });
});
