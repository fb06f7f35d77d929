// End to end through the official `openai` SDK: gateway on a loopback port, SQLite store, the
// real AI SDK OpenAI provider talking Chat Completions to the fake upstream. Assertions are on
// what the upstream received and on what the client got, validated against the Open Responses schema.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { DatabaseSync } from 'node:sqlite';
import OpenAI from 'openai';
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

function storedRowCount(): number {
  const storage = h.gateway.config.state_storage;
  assert.ok(storage && storage.type === 'sqlite');
  const db = new DatabaseSync(storage.path, { readOnly: true });
  try {
    const row = db.prepare('SELECT count(*) AS n FROM responses').get() as { n: number };
    return Number(row.n);
  } finally {
    db.close();
  }
}

describe('multi-turn state', () => {
  it('rebuilds the whole context on turn 3 and sends exactly that upstream', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'Hi Ada.' }, { kind: 'text', text: 'You like tea.' }, { kind: 'text', text: 'Ada, who likes tea.' });
    const r1 = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'My name is Ada.', instructions: 'Be brief.' });
    assertValidResponse(r1);
    assert.equal(r1.status, 'completed');
    assert.equal(r1.output_text, 'Hi Ada.');
    assert.equal(r1.instructions, 'Be brief.');

    const r2 = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'I like tea.', previous_response_id: r1.id });
    assertValidResponse(r2);
    assert.equal(r2.previous_response_id, r1.id);
    assert.equal(r2.instructions, null, 'instructions are per request');

    const r3 = await h.client.responses.create({
      model: 'gpt-4o-mini',
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'Who am I?' }] }],
      previous_response_id: r2.id,
      instructions: 'Answer in one line.',
      temperature: 0.3,
      max_output_tokens: 50,
    });
    assertValidResponse(r3);
    assert.equal(r3.output_text, 'Ada, who likes tea.');
    assert.equal(r3.temperature, 0.3);
    assert.equal(r3.max_output_tokens, 50);

    const sent = h.upstream.requests.map((r) => r.body);
    assert.equal(sent.length, 3);
    assert.deepEqual(sent[0].messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'My name is Ada.' },
    ]);
    assert.deepEqual(sent[2].messages, [
      { role: 'system', content: 'Answer in one line.' },
      { role: 'user', content: 'My name is Ada.' },
      { role: 'assistant', content: 'Hi Ada.' },
      { role: 'user', content: 'I like tea.' },
      { role: 'assistant', content: 'You like tea.' },
      { role: 'user', content: 'Who am I?' },
    ]);
    assert.equal(sent[2].temperature, 0.3);
    assert.equal(sent[2].max_tokens, 50);
    assert.equal(sent[2].model, 'gpt-4o-mini');
  });

  it('streams the same conversation through responses.stream().finalResponse()', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'One.', chunks: ['On', 'e.'] }, { kind: 'text', text: 'Two.', chunks: ['T', 'w', 'o.'] });
    const seen: { type: string; sequence_number: number }[] = [];
    const s1 = h.client.responses.stream({ model: 'gpt-4o-mini', input: 'Count.' });
    s1.on('event', (e) => {
      assertValidStreamEvent(e);
      seen.push(e);
    });
    const r1 = await s1.finalResponse();
    assertValidResponse(r1);
    assert.equal(r1.output_text, 'One.');

    const deltas: string[] = [];
    const s2 = h.client.responses.stream({ model: 'gpt-4o-mini', input: 'Again.', previous_response_id: r1.id });
    s2.on('response.output_text.delta', (e) => deltas.push(e.delta));
    const r2 = await s2.finalResponse();
    assert.equal(r2.output_text, 'Two.');
    assert.deepEqual(deltas, ['T', 'w', 'o.'], 'deltas arrive as the upstream produced them');
    assert.deepEqual(h.upstream.lastRequest()?.body.messages, [
      { role: 'user', content: 'Count.' },
      { role: 'assistant', content: 'One.' },
      { role: 'user', content: 'Again.' },
    ]);
    assert.equal(h.upstream.lastRequest()?.body.stream, true);

    assert.deepEqual(
      seen.map((e) => e.type),
      [
        'response.created',
        'response.in_progress',
        'response.output_item.added',
        'response.content_part.added',
        'response.output_text.delta',
        'response.output_text.delta',
        'response.output_text.done',
        'response.content_part.done',
        'response.output_item.done',
        'response.completed',
      ],
    );
    assert.deepEqual(
      seen.map((e) => e.sequence_number),
      seen.map((_, i) => i),
    );
    // Persisted before completion was reported: retrievable the moment the stream ends.
    const stored = await h.client.responses.retrieve(r1.id);
    assert.equal(stored.output_text, 'One.');
  });

  it('writes one SSE event per write with event names, and ends with [DONE]', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'abc', chunks: ['a', 'b', 'c'] });
    const res = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'x', stream: true });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const { events, done, raw } = await readSse(res);
    assert.ok(done, 'stream ends with data: [DONE]');
    assert.ok(raw.trimEnd().endsWith('data: [DONE]'));
    for (const block of raw.split('\n\n').filter((b) => b.startsWith('event: '))) {
      const [eventLine, dataLine] = block.split('\n');
      assert.equal(eventLine.slice(7), JSON.parse(dataLine.slice(6)).type);
    }
    for (const e of events) assertValidStreamEvent(e);
    const completed = events.at(-1) as { type: string; response: { output: unknown[]; status: string } };
    assert.equal(completed.type, 'response.completed');
    assert.equal(completed.response.status, 'completed');
    assert.equal(completed.response.output.length, 1);
  });

  it('keeps branches apart: two continuations of one response see only their own history', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'root answer' }, { kind: 'text', text: 'left answer' }, { kind: 'text', text: 'right answer' }, { kind: 'text', text: 'x' });
    const root = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'root' });
    const left = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'go left', previous_response_id: root.id });
    await h.client.responses.create({ model: 'gpt-4o-mini', input: 'go right', previous_response_id: root.id });
    await h.client.responses.create({ model: 'gpt-4o-mini', input: 'and on', previous_response_id: left.id });
    const last = h.upstream.lastRequest()?.body.messages;
    assert.deepEqual(last, [
      { role: 'user', content: 'root' },
      { role: 'assistant', content: 'root answer' },
      { role: 'user', content: 'go left' },
      { role: 'assistant', content: 'left answer' },
      { role: 'user', content: 'and on' },
    ]);
  });
});

describe('tools', () => {
  it('round-trips a function call with its structure, paired by call_id', async () => {
    const tools: OpenAI.Responses.Tool[] = [
      {
        type: 'function',
        name: 'get_weather',
        description: 'Weather for a city',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
        strict: true,
      },
    ];
    h.upstream.enqueue(
      { kind: 'tool_calls', calls: [{ id: 'call_abc', name: 'get_weather', arguments: '{"city":"Paris"}' }] },
      { kind: 'text', text: 'It is sunny in Paris.' },
    );
    const r1 = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'Weather in Paris?', tools, tool_choice: 'auto' });
    assertValidResponse(r1);
    assert.equal(r1.output.length, 1);
    const call = r1.output[0];
    assert.equal(call.type, 'function_call');
    assert.ok(call.type === 'function_call');
    assert.equal(call.call_id, 'call_abc');
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
    assert.deepEqual(r1.tools, tools);
    assert.equal(h.upstream.lastRequest()?.body.tools[0].function.name, 'get_weather');

    const r2 = await h.client.responses.create({
      model: 'gpt-4o-mini',
      previous_response_id: r1.id,
      input: [{ type: 'function_call_output', call_id: 'call_abc', output: '{"sky":"sunny"}' }],
      tools,
    });
    assertValidResponse(r2);
    assert.equal(r2.output_text, 'It is sunny in Paris.');
    assert.deepEqual(h.upstream.lastRequest()?.body.messages, [
      { role: 'user', content: 'Weather in Paris?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'call_abc', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
      },
      { role: 'tool', tool_call_id: 'call_abc', content: '{"sky":"sunny"}' },
    ]);
  });

  it('streams parallel tool calls as function_call items with argument deltas', async () => {
    h.upstream.enqueue({
      kind: 'tool_calls',
      calls: [
        { id: 'call_1', name: 'a', arguments: '{"x":1}' },
        { id: 'call_2', name: 'b', arguments: '{"y":2}' },
      ],
    });
    const tools: OpenAI.Responses.Tool[] = ['a', 'b'].map((name) => ({
      type: 'function' as const,
      name,
      parameters: { type: 'object', properties: {} },
      strict: false,
    }));
    const stream = h.client.responses.stream({ model: 'gpt-4o-mini', input: 'both', tools, parallel_tool_calls: true });
    const types: string[] = [];
    stream.on('event', (e) => {
      assertValidStreamEvent(e);
      types.push(e.type);
    });
    const final = await stream.finalResponse();
    assert.deepEqual(
      final.output.map((o) => (o.type === 'function_call' ? [o.call_id, o.name, o.arguments] : o.type)),
      [
        ['call_1', 'a', '{"x":1}'],
        ['call_2', 'b', '{"y":2}'],
      ],
    );
    assert.ok(types.includes('response.function_call_arguments.delta'));
    assert.equal(types.filter((t) => t === 'response.function_call_arguments.done').length, 2);
    assert.equal(h.upstream.lastRequest()?.body.parallel_tool_calls, true);
  });

  it('answers 400, not 500, when the conversation moves on without the tool output', async () => {
    h.upstream.enqueue({ kind: 'tool_calls', calls: [{ id: 'call_z', name: 'f', arguments: '{}' }] });
    const r1 = await h.client.responses.create({
      model: 'gpt-4o-mini',
      input: 'call f',
      tools: [{ type: 'function', name: 'f', parameters: { type: 'object', properties: {} }, strict: false }],
    });
    const before = h.upstream.requests.length;
    const res = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'never mind', previous_response_id: r1.id });
    assert.equal(res.status, 400);
    const body = await res.json();
    assertValidError(body);
    assert.match(body.error.message, /call_z/);
    assert.equal(h.upstream.requests.length, before, 'nothing was sent upstream');
  });
});

describe('stored state', () => {
  it('honours store: false: nothing is persisted, continuing from it is previous_response_not_found', async () => {
    const r = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'secret', store: false });
    assertValidResponse(r);
    assert.equal((r as unknown as { store: boolean }).store, false);
    await assert.rejects(h.client.responses.retrieve(r.id), (e: unknown) => e instanceof OpenAI.NotFoundError);
    const res = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'next', previous_response_id: r.id });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.error.code, 'previous_response_not_found');
  });

  it('rejects an unknown previous_response_id with the OpenAI error shape, sending nothing upstream', async () => {
    const err = await h.client.responses
      .create({ model: 'gpt-4o-mini', input: 'hi', previous_response_id: 'resp_doesnotexist' })
      .then(() => null, (e: unknown) => e);
    assert.ok(err instanceof OpenAI.BadRequestError);
    assert.equal(err.status, 400);
    assert.equal(err.code, 'previous_response_not_found');
    assert.equal(err.param, 'previous_response_id');
    assert.equal(err.type, 'invalid_request_error');
    assert.equal(h.upstream.requests.length, 0);
  });

  it('retrieves, lists input items with paging, and deletes', async () => {
    const r = await h.client.responses.create({
      model: 'gpt-4o-mini',
      metadata: { topic: 'paging' },
      input: [
        { role: 'developer', content: 'dev note' },
        { role: 'user', content: 'one' },
        { role: 'assistant', content: 'two' },
        { role: 'user', content: 'three' },
      ],
    });
    const got = await h.client.responses.retrieve(r.id);
    assertValidResponse(got);
    assert.deepEqual(got.output, r.output);
    assert.deepEqual(got.metadata, { topic: 'paging' });

    const all = await h.client.responses.inputItems.list(r.id, { order: 'asc' });
    assert.equal(all.data.length, 4);
    const texts = all.data.map((i) => (i.type === 'message' ? (i.content[0] as { text: string }).text : i.type));
    assert.deepEqual(texts, ['dev note', 'one', 'two', 'three']);

    const desc = await (await fetch(`${h.url}/v1/responses/${r.id}/input_items?limit=2`)).json();
    assert.equal(desc.object, 'list');
    assert.equal(desc.data.length, 2);
    assert.equal(desc.has_more, true);
    assert.equal(desc.data[0].content[0].text, 'three', 'default order is desc');
    assert.equal(desc.first_id, desc.data[0].id);
    assert.equal(desc.last_id, desc.data[1].id);
    const rest = await (await fetch(`${h.url}/v1/responses/${r.id}/input_items?limit=2&after=${desc.last_id}`)).json();
    assert.deepEqual(
      rest.data.map((i: { content: { text: string }[] }) => i.content[0].text),
      ['one', 'dev note'],
    );
    assert.equal(rest.has_more, false);

    const deleted: unknown = await h.client.responses.delete(r.id);
    assert.deepEqual(deleted, { id: r.id, object: 'response', deleted: true });
    const deletedBody = await (await fetch(`${h.url}/v1/responses/${r.id}`)).json();
    assert.equal(deletedBody.error.code, 'not_found');
    await assert.rejects(h.client.responses.retrieve(r.id), (e: unknown) => e instanceof OpenAI.NotFoundError);
    const again = await fetch(`${h.url}/v1/responses/${r.id}`, { method: 'DELETE' });
    assert.equal(again.status, 404);
    assertValidError(await again.json());
    const items = await fetch(`${h.url}/v1/responses/${r.id}/input_items`);
    assert.equal(items.status, 404);
  });

  it('rejects continuing a response that is still in progress', async () => {
    h.upstream.enqueue({ kind: 'slow', text: 'a b c d', chunkDelayMs: 150 });
    const res = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'slow', stream: true });
    const reader = res.body!.getReader();
    let buffered = '';
    while (!buffered.includes('response.created')) {
      const { value } = await reader.read();
      buffered += new TextDecoder().decode(value);
    }
    const created = JSON.parse(buffered.split('\n').find((l) => l.startsWith('data: '))!.slice(6));
    const id = created.response.id as string;
    const cont = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'too soon', previous_response_id: id });
    assert.equal(cont.status, 400);
    assert.equal((await cont.json()).error.code, 'previous_response_in_progress');
    while (!(await reader.read()).done) {
      // drain
    }
    const ok = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'now', previous_response_id: id });
    assert.equal(ok.status, 'completed');
  });

  it('survives a restart: a conversation stored on SQLite continues on a new gateway process state', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'before restart' }, { kind: 'text', text: 'after restart' });
    const r1 = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'remember me' });
    await h.stopGateway();
    await h.restartGateway();
    const r2 = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'still there?', previous_response_id: r1.id });
    assert.equal(r2.output_text, 'after restart');
    assert.deepEqual(h.upstream.lastRequest()?.body.messages, [
      { role: 'user', content: 'remember me' },
      { role: 'assistant', content: 'before restart' },
      { role: 'user', content: 'still there?' },
    ]);
  });
});

describe('request surface', () => {
  it('maps text.format json_schema to the upstream response_format and echoes it', async () => {
    h.upstream.enqueue({ kind: 'text', text: '{"n":1}' });
    const format = {
      type: 'json_schema' as const,
      name: 'num',
      schema: { type: 'object', properties: { n: { type: 'number' } }, required: ['n'], additionalProperties: false },
      strict: true,
    };
    const r = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'json', text: { format } });
    assertValidResponse(r);
    assert.equal(r.text?.format?.type, 'json_schema');
    const sent = h.upstream.lastRequest()?.body.response_format;
    assert.equal(sent.type, 'json_schema');
    assert.equal(sent.json_schema.name, 'num');
    assert.deepEqual(sent.json_schema.schema, format.schema);
    assert.equal(sent.json_schema.strict, true);

    h.upstream.enqueue({ kind: 'text', text: '{}' });
    await h.client.responses.create({ model: 'gpt-4o-mini', input: 'json', text: { format: { type: 'json_object' } } });
    assert.deepEqual(h.upstream.lastRequest()?.body.response_format, { type: 'json_object' });
  });

  it('echoes every request field with non-null defaults and reports usage', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'fine', usage: { prompt_tokens: 11, completion_tokens: 3, cached_tokens: 4 } });
    const r = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'hi', top_p: 0.5, metadata: { a: 'b' }, tool_choice: 'none' });
    assertValidResponse(r);
    assert.equal(r.top_p, 0.5);
    assert.equal(r.temperature, 1);
    assert.equal(r.tool_choice, 'none');
    assert.equal(r.parallel_tool_calls, true);
    assert.equal(r.truncation, 'disabled');
    assert.deepEqual(r.metadata, { a: 'b' });
    assert.deepEqual(r.usage, {
      input_tokens: 11,
      output_tokens: 3,
      total_tokens: 14,
      input_tokens_details: { cached_tokens: 4 },
      output_tokens_details: { reasoning_tokens: 0 },
    });
  });

  it('lists models and answers health checks', async () => {
    const models = await h.client.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      ['openai/gpt-4o-mini'],
    );
    assert.ok(!JSON.stringify(models.data).includes('test-key'), 'no provider key in /v1/models');
    assert.equal((await fetch(`${h.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${h.url}/readyz`)).status, 200);
  });
});

describe('bad input', () => {
  const cases: { name: string; body: string | object; status: number; param: string | null; code?: string }[] = [
    { name: 'malformed JSON', body: '{"model": "gpt-4o-mini", "input": ', status: 400, param: null, code: 'invalid_json' },
    { name: 'body is an array', body: [1, 2], status: 400, param: null },
    { name: 'missing model', body: { input: 'hi' }, status: 400, param: 'model', code: 'missing_required_parameter' },
    { name: 'unknown model', body: { model: 'nope-9', input: 'hi' }, status: 400, param: 'model', code: 'model_not_found' },
    { name: 'missing input', body: { model: 'gpt-4o-mini' }, status: 400, param: 'input' },
    { name: 'input of wrong type', body: { model: 'gpt-4o-mini', input: 42 }, status: 400, param: 'input', code: 'invalid_type' },
    { name: 'unknown item type', body: { model: 'gpt-4o-mini', input: [{ type: 'telepathy' }] }, status: 400, param: 'input[0].type' },
    { name: 'bad content part', body: { model: 'gpt-4o-mini', input: [{ role: 'user', content: [{ type: 'input_text' }] }] }, status: 400, param: 'input[0].content[0].text' },
    { name: 'temperature out of range', body: { model: 'gpt-4o-mini', input: 'x', temperature: 7 }, status: 400, param: 'temperature' },
    { name: 'temperature wrong type', body: { model: 'gpt-4o-mini', input: 'x', temperature: 'hot' }, status: 400, param: 'temperature' },
    { name: 'stream wrong type', body: { model: 'gpt-4o-mini', input: 'x', stream: 'yes' }, status: 400, param: 'stream' },
    { name: 'unknown parameter', body: { model: 'gpt-4o-mini', input: 'x', temprature: 1 }, status: 400, param: 'temprature', code: 'unknown_parameter' },
    { name: 'tool output without its call', body: { model: 'gpt-4o-mini', input: [{ type: 'function_call_output', call_id: 'c', output: 'x' }] }, status: 400, param: 'input' },
    { name: 'metadata value too long', body: { model: 'gpt-4o-mini', input: 'x', metadata: { k: 'v'.repeat(513) } }, status: 400, param: 'metadata.k' },
    { name: 'oversized body', body: { model: 'gpt-4o-mini', input: 'x'.repeat(2 * 1024 * 1024) }, status: 413, param: null, code: 'request_too_large' },
  ];
  for (const c of cases) {
    it(`${c.name} -> ${c.status} naming ${c.param ?? 'no param'}, storing nothing`, async () => {
      const rowsBefore = storedRowCount();
      const res = await h.post('/v1/responses', c.body);
      assert.equal(res.status, c.status);
      const body = await res.json();
      assertValidError(body);
      assert.equal(body.error.param, c.param);
      assert.equal(body.error.type, 'invalid_request_error');
      if (c.code) assert.equal(body.error.code, c.code);
      assert.ok(body.error.message.length > 10);
      assert.equal(storedRowCount(), rowsBefore, 'nothing stored');
      assert.equal(h.upstream.requests.length, 0, 'nothing sent upstream');
    });
  }

  it('answers unknown routes with an OpenAI-shaped 404', async () => {
    const res = await fetch(`${h.url}/v1/nothing-here`);
    assert.equal(res.status, 404);
    assertValidError(await res.json());
  });
});

describe('upstream failures', () => {
  it('keeps a 429 a 429 with retry-after, and the upstream message', async () => {
    h.upstream.enqueue({ kind: 'error', status: 429, headers: { 'retry-after': '7' }, body: { error: { message: 'Slow down there', type: 'requests', param: null, code: 'rate_limit_exceeded' } } });
    const res = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'x' });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), '7');
    const body = await res.json();
    assertValidError(body);
    assert.match(body.error.message, /Slow down there/);
    assert.equal(h.upstream.requests.length, 1, 'the gateway does not multiply upstream calls');
  });

  it('maps an upstream 500 to 502, streaming or not', async () => {
    h.upstream.enqueue({ kind: 'error', status: 500 }, { kind: 'error', status: 503 });
    const res = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'x' });
    assert.equal(res.status, 502);
    assertValidError(await res.json());
    const streamed = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'x', stream: true });
    assert.equal(streamed.status, 502);
    assert.equal((await streamed.json()).error.type, 'server_error');
  });

  it('reports an upstream failure mid-stream as response.failed, stored as failed and not continuable', async () => {
    h.upstream.enqueue({ kind: 'stream_error', text: 'partial answer' });
    const res = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'x', stream: true });
    assert.equal(res.status, 200);
    const { events, done } = await readSse(res);
    for (const e of events) assertValidStreamEvent(e);
    const last = events.at(-1) as { type: string; response: { id: string; status: string; error: { message: string } } };
    assert.equal(last.type, 'response.failed');
    assert.equal(last.response.status, 'failed');
    assert.ok(done);
    const stored = await h.client.responses.retrieve(last.response.id);
    assert.equal(stored.status, 'failed');
    const cont = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'go on', previous_response_id: last.response.id });
    assert.equal(cont.status, 400);
  });

  it('aborts the upstream request when the client disconnects mid-stream', async () => {
    h.upstream.enqueue({ kind: 'slow', text: 'one two three four five six', chunkDelayMs: 100 });
    const controller = new AbortController();
    const res = await fetch(`${h.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', input: 'x', stream: true }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    const deadline = Date.now() + 5000;
    while (!h.upstream.lastRequest()?.aborted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(h.upstream.lastRequest()?.aborted, true, 'upstream request was aborted');
  });
});
