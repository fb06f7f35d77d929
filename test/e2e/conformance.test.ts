// Conformance: every endpoint, driven through the official `openai` SDK (and raw HTTP where the
// SDK would refuse to send the mistake), with every response object, item and stream event
// validated against the Open Responses schema (../shared/spec/openresponses.openapi.json), the
// shapes the spec does not define checked against what the SDK's types declare, and every error
// checked for OpenAI's body and the status the README's error table gives.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { type Harness, provider, readSse, startHarness } from '../helpers/harness.ts';
import { assertValidError, assertValidItem, assertValidResponse, assertValidStreamEvent } from '../helpers/spec.ts';

let h: Harness;

before(async () => {
  h = await startHarness({
    store: 'sqlite',
    providers: (url) => [
      provider('openai/gpt-4o-mini', { base_url: url, default: true }),
      provider('openai/gpt-4o-mini', { name: 'tiny', base_url: url, context_window: 50 }),
      provider('anthropic/claude-sonnet-4-5', { name: 'claude', base_url: `${new URL(url).origin}/anthropic/v1` }),
    ],
  });
});
after(async () => {
  await h.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Fetches JSON, asserting the status; validates error bodies on the way. */
async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${h.url}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (res.status >= 400) assertValidError(json);
  return { status: res.status, json };
}

async function events(path: string, body?: unknown): Promise<Record<string, unknown>[]> {
  const res = await fetch(`${h.url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const { events, done } = await readSse(res);
  assert.ok(done, 'ends with data: [DONE]');
  for (const e of events) assertValidStreamEvent(e);
  const first = (events[0]?.sequence_number as number | undefined) ?? 0;
  assert.deepEqual(
    events.map((e) => e.sequence_number),
    events.map((_, i) => first + i),
    'consecutive sequence numbers',
  );
  for (const e of events) if (e.response) assertValidResponse(e.response);
  return events;
}

function assertList(list: Record<string, unknown>): void {
  assert.deepEqual(Object.keys(list).sort(), ['data', 'first_id', 'has_more', 'last_id', 'object']);
  assert.equal(list.object, 'list');
  const data = list.data as { id: string }[];
  assert.equal(list.first_id, data[0]?.id ?? null);
  assert.equal(list.last_id, data.at(-1)?.id ?? null);
  assert.equal(typeof list.has_more, 'boolean');
}

const tool: OpenAI.Responses.FunctionTool = {
  type: 'function',
  name: 'lookup',
  description: 'Look a thing up',
  parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'], additionalProperties: false },
  strict: true,
};

describe('every endpoint conforms', () => {
  it('POST /v1/responses: JSON and SSE, text, tool calls and reasoning', async () => {
    h.upstream.enqueue(
      { kind: 'text', text: 'plain' },
      { kind: 'tool_calls', calls: [{ id: 'call_1', name: 'lookup', arguments: '{"q":"x"}' }] },
      { kind: 'reasoning', reasoning: 'Thinking.', text: 'Reasoned.' },
      { kind: 'text', text: 'streamed', chunks: ['str', 'eamed'] },
      { kind: 'tool_calls', calls: [{ id: 'call_2', name: 'lookup', arguments: '{"q":"y"}' }] },
      { kind: 'reasoning', reasoning: 'Streamed thinking.', text: 'Done.' },
    );
    const plain = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'hi', metadata: { k: 'v' } });
    const called = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'look', tools: [tool] });
    const reasoned = await h.client.responses.create({ model: 'claude', input: 'think', include: ['reasoning.encrypted_content'] });
    for (const r of [plain, called, reasoned]) {
      assertValidResponse(r);
      for (const item of r.output) assertValidItem(item);
    }
    assert.deepEqual(
      [plain, called, reasoned].map((r) => r.output.map((o) => o.type)),
      [['message'], ['function_call'], ['reasoning', 'message']],
    );

    const text = await events('/v1/responses', { model: 'gpt-4o-mini', input: 'stream', stream: true });
    const calls = await events('/v1/responses', { model: 'gpt-4o-mini', input: 'stream a call', tools: [tool], stream: true });
    const thinking = await events('/v1/responses', { model: 'claude', input: 'stream thinking', stream: true });
    for (const stream of [text, calls, thinking]) {
      assert.equal(stream[0].type, 'response.created');
      assert.equal(stream[1].type, 'response.in_progress');
      assert.equal(stream.at(-1)?.type, 'response.completed');
    }
    assert.ok(calls.some((e) => e.type === 'response.function_call_arguments.done'));
    assert.ok(thinking.some((e) => e.type === 'response.reasoning_summary_text.delta'));
  });

  it('background: POST (JSON and SSE), GET polling and streaming, cancel', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'in the background' });
    const queued = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'bg', background: true });
    assertValidResponse(queued);
    let done = queued;
    while (done.status !== 'completed') {
      await sleep(20);
      done = await h.client.responses.retrieve(queued.id);
      assertValidResponse(done);
    }
    const replay = await events(`/v1/responses/${queued.id}?stream=true`);
    assert.deepEqual(
      replay.slice(0, 3).map((e) => e.type),
      ['response.created', 'response.queued', 'response.in_progress'],
    );
    const resumed = await events(`/v1/responses/${queued.id}?stream=true&starting_after=2`);
    assert.equal(resumed[0].type, 'response.output_item.added');

    h.upstream.enqueue({ kind: 'text', text: 'streamed in the background' });
    const live = await events('/v1/responses', { model: 'gpt-4o-mini', input: 'bg stream', background: true, stream: true });
    assert.equal(live.at(-1)?.type, 'response.completed');

    h.upstream.enqueue({ kind: 'hang' });
    const running = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'bg hang', background: true });
    const cancelled = await h.client.responses.cancel(running.id);
    assertValidResponse(cancelled);
    assert.equal(cancelled.status, 'cancelled');
  });

  it('GET, DELETE, input items, input token counts', async () => {
    const r = await h.client.responses.create({
      model: 'gpt-4o-mini',
      input: [
        { role: 'developer', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'input_text', text: 'one' }] },
        { role: 'assistant', content: 'two' },
        { role: 'user', content: 'three' },
      ],
    });
    assertValidResponse(await h.client.responses.retrieve(r.id));
    assertValidResponse(await h.client.responses.retrieve(r.id, { include: ['reasoning.encrypted_content'] }));

    const page = await call('GET', `/v1/responses/${r.id}/input_items?limit=3&order=asc`);
    assertList(page.json);
    for (const item of page.json.data as unknown[]) assertValidItem(item);
    const sdkPage = await h.client.responses.inputItems.list(r.id);
    for (const item of sdkPage.data) assertValidItem(item);

    const count = await h.client.responses.inputTokens.count({ model: 'gpt-4o-mini', input: 'count me', previous_response_id: r.id });
    assert.deepEqual(Object.keys(count).sort(), ['input_tokens', 'object']);
    assert.equal(count.object, 'response.input_tokens');
    assert.ok(Number.isInteger(count.input_tokens) && count.input_tokens > 0);

    const deleted = await call('DELETE', `/v1/responses/${r.id}`);
    assert.deepEqual(deleted.json, { id: r.id, object: 'response', deleted: true });
  });

  it('conversations: create, retrieve, update, items, responses on them, list, delete', async () => {
    const conv = await h.client.conversations.create({ metadata: { topic: 't' }, items: [{ role: 'user', content: 'hello' }] });
    const checkConversation = (c: Record<string, unknown>) => {
      assert.deepEqual(Object.keys(c).sort(), ['created_at', 'id', 'metadata', 'object']);
      assert.equal(c.object, 'conversation');
    };
    checkConversation(conv as unknown as Record<string, unknown>);
    checkConversation((await h.client.conversations.retrieve(conv.id)) as unknown as Record<string, unknown>);
    checkConversation((await h.client.conversations.update(conv.id, { metadata: { topic: 'u' } })) as unknown as Record<string, unknown>);

    const added = await call('POST', `/v1/conversations/${conv.id}/items`, { items: [{ role: 'user', content: 'more' }] });
    assertList(added.json);
    h.upstream.enqueue({ kind: 'text', text: 'in a conversation' });
    const r = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'go', conversation: conv.id });
    assertValidResponse(r);

    const items = await call('GET', `/v1/conversations/${conv.id}/items?order=asc`);
    assertList(items.json);
    const data = items.json.data as { id: string }[];
    assert.equal(data.length, 4);
    for (const item of data) assertValidItem(item);
    assertValidItem(await h.client.conversations.items.retrieve(data[0].id, { conversation_id: conv.id }));
    checkConversation((await call('DELETE', `/v1/conversations/${conv.id}/items/${data[0].id}`)).json);

    const listed = await call('GET', '/v1/conversations?limit=5');
    assertList(listed.json);
    const gone = await call('DELETE', `/v1/conversations/${conv.id}`);
    assert.deepEqual(gone.json, { id: conv.id, object: 'conversation.deleted', deleted: true });
  });

  it('models and health', async () => {
    const models = await call('GET', '/v1/models');
    assert.equal(models.json.object, 'list');
    for (const m of models.json.data as Record<string, unknown>[]) {
      assert.equal(m.object, 'model');
      assert.equal(typeof m.id, 'string');
      assert.equal(typeof m.created, 'number');
      assert.equal(typeof m.owned_by, 'string');
    }
    assert.equal((await fetch(`${h.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${h.url}/readyz`)).status, 200);
  });
});

describe('every error conforms', () => {
  // [what, method, path, body, status, code (null: any), param (undefined: any)]
  const cases: [string, string, string, unknown, number, string | null, string | null | undefined][] = [
    ['unknown route', 'GET', '/v1/nothing', undefined, 404, 'unknown_url', null],
    ['malformed JSON', 'POST', '/v1/responses', '{"model":', 400, 'invalid_json', null],
    ['unknown field', 'POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'x', temprature: 1 }, 400, 'unknown_parameter', 'temprature'],
    ['unknown model', 'POST', '/v1/responses', { model: 'gpt-9', input: 'x' }, 400, 'model_not_found', 'model'],
    ['unknown previous response', 'POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'x', previous_response_id: 'resp_x' }, 400, 'previous_response_not_found', 'previous_response_id'],
    ['unknown include', 'POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'x', include: ['x'] }, 400, 'invalid_value', 'include[0]'],
    ['logprobs from a provider without them', 'POST', '/v1/responses', { model: 'claude', input: 'x', include: ['message.output_text.logprobs'] }, 400, 'unsupported_parameter', 'include'],
    ['bad truncation', 'POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'x', truncation: 'some' }, 400, 'invalid_value', 'truncation'],
    ['over the context window', 'POST', '/v1/responses', { model: 'tiny', input: 'word '.repeat(100) }, 400, 'context_length_exceeded', 'input'],
    ['background without store', 'POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'x', background: true, store: false }, 400, 'invalid_value', 'background'],
    ['bad service_tier', 'POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'x', service_tier: 'gold' }, 400, 'invalid_value', 'service_tier'],
    ['conversation and previous_response_id', 'POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'x', conversation: 'conv_1', previous_response_id: 'resp_1' }, 400, 'mutually_exclusive_parameters', 'conversation'],
    ['GET unknown response', 'GET', '/v1/responses/resp_unknown', undefined, 404, 'not_found', 'response_id'],
    ['GET stream of unknown response', 'GET', '/v1/responses/resp_unknown?stream=true', undefined, 404, 'not_found', 'response_id'],
    ['bad starting_after', 'GET', '/v1/responses/resp_unknown?stream=true&starting_after=x', undefined, 400, 'invalid_value', 'starting_after'],
    ['DELETE unknown response', 'DELETE', '/v1/responses/resp_unknown', undefined, 404, 'not_found', 'response_id'],
    ['cancel unknown response', 'POST', '/v1/responses/resp_unknown/cancel', {}, 404, 'not_found', 'response_id'],
    ['input items of unknown response', 'GET', '/v1/responses/resp_unknown/input_items', undefined, 404, 'not_found', 'response_id'],
    ['bad input items limit', 'GET', '/v1/responses/resp_unknown/input_items?limit=1000', undefined, 400, 'invalid_value', 'limit'],
    ['input tokens, unknown field', 'POST', '/v1/responses/input_tokens', { model: 'gpt-4o-mini', input: 'x', stream: true }, 400, 'unknown_parameter', 'stream'],
    ['input tokens, over the window', 'POST', '/v1/responses/input_tokens', { model: 'tiny', input: 'word '.repeat(100) }, 400, 'context_length_exceeded', 'input'],
    ['unknown conversation', 'GET', '/v1/conversations/conv_unknown', undefined, 404, null, undefined],
    ['items of unknown conversation', 'GET', '/v1/conversations/conv_unknown/items', undefined, 404, null, undefined],
    ['too many conversation items', 'POST', '/v1/conversations', { items: Array.from({ length: 21 }, () => ({ role: 'user', content: 'x' })) }, 400, null, undefined],
  ];
  for (const [what, method, path, body, status, code, param] of cases) {
    it(`${what}: ${status}${code ? ` ${code}` : ''}`, async () => {
      const init: RequestInit = { method };
      if (body !== undefined) {
        init.headers = { 'content-type': 'application/json' };
        init.body = typeof body === 'string' ? body : JSON.stringify(body);
      }
      const res = await fetch(`${h.url}${path}`, init);
      assert.equal(res.status, status);
      const json = (await res.json()) as { error: { type: string; code: string | null; param: string | null } };
      assertValidError(json);
      assert.equal(json.error.type, status >= 500 ? 'server_error' : 'invalid_request_error');
      if (code) assert.equal(json.error.code, code);
      if (param !== undefined) assert.equal(json.error.param, param);
    });
  }

  it('cancelling a response that was not created in the background is a 400 the SDK raises', async () => {
    const r = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'fg' });
    await assert.rejects(h.client.responses.cancel(r.id), (e: unknown) => e instanceof OpenAI.BadRequestError);
  });

  it('an upstream failure after a stream started is response.failed, valid like every event', async () => {
    h.upstream.enqueue({ kind: 'stream_error', text: 'partial' });
    const stream = await events('/v1/responses', { model: 'gpt-4o-mini', input: 'x', stream: true });
    assert.equal(stream.at(-1)?.type, 'response.failed');
  });
});
