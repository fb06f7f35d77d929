// The request surface beyond the basics, end to end through the official `openai` SDK:
// `truncation` against a configured context window (what reaches the upstream, exactly),
// `POST /v1/responses/input_tokens` (checked against gpt-tokenizer directly), `include`
// (`reasoning.encrypted_content` round-tripped by a stateless client to a provider that checks its
// signatures; logprobs requested upstream), `max_tool_calls`, `service_tier` and the other
// pass-through fields.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { encodeChat } from 'gpt-tokenizer/encoding/o200k_base';
import type OpenAI from 'openai';
import { signatureFor } from '../fake-upstream/wire.ts';
import { type Harness, provider, readSse, startHarness } from '../helpers/harness.ts';
import { assertValidError, assertValidResponse, assertValidStreamEvent } from '../helpers/spec.ts';

let h: Harness;

before(async () => {
  h = await startHarness({
    store: 'sqlite',
    providers: (url) => {
      const origin = new URL(url).origin;
      return [
        provider('openai/gpt-4o-mini', { base_url: url, default: true }),
        provider('openai/gpt-4o-mini', { name: 'w300', base_url: url, context_window: 300 }),
        provider('openai/gpt-4o-mini', { name: 'w100', base_url: url, context_window: 100 }),
        provider('anthropic/claude-sonnet-4-5', { name: 'claude', base_url: `${origin}/anthropic/v1` }),
        provider('vllm/qwen3-8b', { name: 'local', base_url: `${origin}/compat/v1` }),
      ];
    },
  });
});
after(async () => {
  await h.close();
});
beforeEach(() => {
  h.upstream.reset();
});

const weather: OpenAI.Responses.FunctionTool = {
  type: 'function',
  name: 'get_weather',
  description: null,
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  strict: true,
};

/** Four turns: a long first one, then a tool call answered in the next response, then a short reply. */
async function conversationWithToolPair(): Promise<string> {
  h.upstream.enqueue(
    { kind: 'text', text: 'ok1' },
    { kind: 'tool_calls', calls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] },
    { kind: 'text', text: 'It is sunny.' },
  );
  const r1 = await h.client.responses.create({
    model: 'gpt-4o-mini',
    input: [
      { role: 'developer', content: 'Be terse.' },
      { role: 'user', content: 'alpha '.repeat(200) },
    ],
  });
  const r2 = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'weather?', previous_response_id: r1.id, tools: [weather] });
  const r3 = await h.client.responses.create({
    model: 'gpt-4o-mini',
    previous_response_id: r2.id,
    input: [{ type: 'function_call_output', call_id: 'call_1', output: 'sunny '.repeat(100) }],
    tools: [weather],
  });
  h.upstream.reset();
  return r3.id;
}

describe('truncation', () => {
  it("auto drops the oldest whole turn to fit the window, keeping developer messages and the tool call with its result", async () => {
    const last = await conversationWithToolPair();
    const r = await h.client.responses.create({ model: 'w300', input: 'thanks', previous_response_id: last, truncation: 'auto', tools: [weather] });
    assertValidResponse(r);
    assert.equal(r.truncation, 'auto');
    assert.deepEqual(h.upstream.lastRequest()?.body.messages, [
      { role: 'system', content: 'Be terse.' },
      { role: 'user', content: 'weather?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
      },
      { role: 'tool', tool_call_id: 'call_1', content: 'sunny '.repeat(100) },
      { role: 'assistant', content: 'It is sunny.' },
      { role: 'user', content: 'thanks' },
    ]);
  });

  it('auto drops the tool call and its result together when their turn must go too', async () => {
    const last = await conversationWithToolPair();
    await h.client.responses.create({ model: 'w100', input: 'thanks', previous_response_id: last, truncation: 'auto' });
    assert.deepEqual(h.upstream.lastRequest()?.body.messages, [
      { role: 'system', content: 'Be terse.' },
      { role: 'user', content: 'thanks' },
    ]);
  });

  it('disabled (the default) answers 400 context_length_exceeded, sending and storing nothing', async () => {
    const last = await conversationWithToolPair();
    const res = await h.post('/v1/responses', { model: 'w300', input: 'thanks', previous_response_id: last, tools: [weather] });
    assert.equal(res.status, 400);
    const body = await res.json();
    assertValidError(body);
    assert.equal(body.error.code, 'context_length_exceeded');
    assert.equal(body.error.param, 'input');
    assert.match(body.error.message, /context window/);
    assert.match(body.error.message, /truncation/);
    assert.equal(h.upstream.requests.length, 0);
  });

  it("auto still answers 400 when the newest turn alone does not fit; unknown windows never truncate", async () => {
    const res = await h.post('/v1/responses', { model: 'w100', input: 'word '.repeat(300), truncation: 'auto' });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error.code, 'context_length_exceeded');
    // No context_window configured: everything goes upstream and the provider decides.
    const last = await conversationWithToolPair();
    await h.client.responses.create({ model: 'gpt-4o-mini', input: 'thanks', previous_response_id: last, truncation: 'auto' });
    assert.equal(h.upstream.lastRequest()?.body.messages.length, 8);
  });

  it('max_output_tokens is reserved out of the window', async () => {
    const ok = await h.post('/v1/responses', { model: 'w100', input: 'short question' });
    assert.equal(ok.status, 200);
    const res = await h.post('/v1/responses', { model: 'w100', input: 'short question', max_output_tokens: 95 });
    assert.equal(res.status, 400);
    assert.match((await res.json()).error.message, /max_output_tokens 95/);
  });
});

describe('POST /v1/responses/input_tokens', () => {
  it('counts exactly what gpt-tokenizer counts for the same chat, history included', async () => {
    const count = await h.client.responses.inputTokens.count({ model: 'gpt-4o-mini', input: 'Hello world', instructions: 'Be brief.' });
    assert.deepEqual(count, {
      object: 'response.input_tokens',
      input_tokens: encodeChat(
        [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Hello world' },
        ],
        'gpt-4o',
      ).length,
    });

    h.upstream.enqueue({ kind: 'text', text: 'Nice to meet you, Ada.' });
    const r1 = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'My name is Ada.' });
    const withHistory = await h.client.responses.inputTokens.count({ model: 'gpt-4o-mini', input: 'Who am I?', previous_response_id: r1.id });
    assert.equal(
      withHistory.input_tokens,
      encodeChat(
        [
          { role: 'user', content: 'My name is Ada.' },
          { role: 'assistant', content: 'Nice to meet you, Ada.' },
          { role: 'user', content: 'Who am I?' },
        ],
        'gpt-4o',
      ).length,
    );
    assert.equal(h.upstream.requests.length, 1, 'counting calls no model');
  });

  it('counts after truncation, and reports the same errors a create would', async () => {
    const last = await conversationWithToolPair();
    const full = await h.client.responses.inputTokens.count({ model: 'gpt-4o-mini', input: 'thanks', previous_response_id: last });
    const truncated = await h.client.responses.inputTokens.count({ model: 'w300', input: 'thanks', previous_response_id: last, truncation: 'auto' });
    assert.ok(full.input_tokens > 300, `full history is over the window (${full.input_tokens})`);
    assert.ok(truncated.input_tokens <= 300 && truncated.input_tokens > 100, `truncated fits (${truncated.input_tokens})`);

    const over = await h.post('/v1/responses/input_tokens', { model: 'w300', input: 'thanks', previous_response_id: last });
    assert.equal(over.status, 400);
    assert.equal((await over.json()).error.code, 'context_length_exceeded');
    const missing = await h.post('/v1/responses/input_tokens', { model: 'gpt-4o-mini', input: 'x', previous_response_id: 'resp_nope' });
    assert.equal(missing.status, 400);
    assert.equal((await missing.json()).error.code, 'previous_response_not_found');
    const unknown = await h.post('/v1/responses/input_tokens', { model: 'gpt-4o-mini', input: 'x', temperature: 1 });
    assert.equal(unknown.status, 400);
    assert.equal((await unknown.json()).error.param, 'temperature');
    // A model without a public tokenizer gets an estimate.
    const estimate = await h.client.responses.inputTokens.count({ model: 'claude', input: 'abcd'.repeat(25) });
    assert.ok(estimate.input_tokens >= 25 && estimate.input_tokens < 40, String(estimate.input_tokens));
  });
});

describe('include', () => {
  it('reasoning.encrypted_content lets a store:false client replay reasoning its provider signed', async () => {
    h.upstream.enqueue({ kind: 'reasoning', reasoning: 'Deep thought.', text: 'Forty-two.' }, { kind: 'text', text: 'Still 42.' });
    const r1 = await h.client.responses.create({
      model: 'claude',
      input: 'The answer?',
      store: false,
      include: ['reasoning.encrypted_content'],
    });
    assertValidResponse(r1);
    const reasoning = r1.output.find((o) => o.type === 'reasoning');
    assert.ok(reasoning);
    assert.match(reasoning.encrypted_content ?? '', /^parley\.v1\./);
    assert.equal(JSON.stringify(r1).includes(signatureFor('Deep thought.')), false, 'opaque to the client');

    const r2 = await h.client.responses.create({
      model: 'claude',
      store: false,
      input: [{ role: 'user', content: 'The answer?' }, ...(r1.output as OpenAI.Responses.ResponseInputItem[]), { role: 'user', content: 'Sure?' }],
    });
    assert.equal(r2.output_text, 'Still 42.');
    assert.deepEqual(h.upstream.lastRequest()?.body.messages[1].content[0], {
      type: 'thinking',
      thinking: 'Deep thought.',
      signature: signatureFor('Deep thought.'),
    });
  });

  it('is off unless asked, on GET with ?include[], and on streamed reasoning items', async () => {
    h.upstream.enqueue({ kind: 'reasoning', reasoning: 'Hmm.', text: 'A.' }, { kind: 'reasoning', reasoning: 'Hmm again.', text: 'B.' });
    const plain = await h.client.responses.create({ model: 'claude', input: 'q' });
    const item = plain.output.find((o) => o.type === 'reasoning');
    assert.ok(item && !('encrypted_content' in item), 'not included by default');
    const got = await h.client.responses.retrieve(plain.id, { include: ['reasoning.encrypted_content'] });
    assertValidResponse(got);
    assert.match(got.output.find((o) => o.type === 'reasoning')?.encrypted_content ?? '', /^parley\.v1\./);

    const res = await h.post('/v1/responses', { model: 'claude', input: 'q', stream: true, include: ['reasoning.encrypted_content'] });
    const { events } = await readSse(res);
    for (const e of events) assertValidStreamEvent(e);
    const done = events.find((e) => e.type === 'response.output_item.done' && (e.item as { type: string }).type === 'reasoning');
    assert.ok(done);
    assert.match((done.item as { encrypted_content: string }).encrypted_content, /^parley\.v1\./);
    const completed = events.at(-1) as { response: { output: { type: string; encrypted_content?: string }[] } };
    assert.match(completed.response.output.find((o) => o.type === 'reasoning')?.encrypted_content ?? '', /^parley\.v1\./);
  });

  it('rejects a damaged envelope and unknown include values', async () => {
    const damaged = await h.post('/v1/responses', {
      model: 'claude',
      input: [
        { role: 'user', content: 'q' },
        { type: 'reasoning', summary: [], encrypted_content: 'parley.v1.!!!' },
        { role: 'user', content: 'q2' },
      ],
    });
    assert.equal(damaged.status, 400);
    assert.equal((await damaged.json()).error.param, 'input[1].encrypted_content');
    const unknown = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'x', include: ['everything'] });
    assert.equal(unknown.status, 400);
    const body = await unknown.json();
    assert.equal(body.error.param, 'include[0]');
    assert.match(body.error.message, /reasoning\.encrypted_content/);
    // Built-in tool includes name items this gateway never produces: accepted, nothing added.
    const ok = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'x', include: ['file_search_call.results'] });
    assert.equal(ok.status, 200);
    assert.equal(h.upstream.requests.length, 1);
  });

  it('message.output_text.logprobs asks OpenAI-protocol upstreams for logprobs, and is a 400 elsewhere', async () => {
    await h.client.responses.create({ model: 'gpt-4o-mini', input: 'x', include: ['message.output_text.logprobs'], top_logprobs: 3 });
    assert.equal(h.upstream.lastRequest()?.body.logprobs, true);
    assert.equal(h.upstream.lastRequest()?.body.top_logprobs, 3);
    const res = await h.post('/v1/responses', { model: 'claude', input: 'x', include: ['message.output_text.logprobs'] });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.error.param, 'include');
    assert.equal(body.error.code, 'unsupported_parameter');
  });
});

describe('other request fields', () => {
  it('max_tool_calls drops tool calls beyond the limit', async () => {
    h.upstream.enqueue({
      kind: 'tool_calls',
      calls: [
        { id: 'c1', name: 'get_weather', arguments: '{"city":"Paris"}' },
        { id: 'c2', name: 'get_weather', arguments: '{"city":"Rome"}' },
        { id: 'c3', name: 'get_weather', arguments: '{"city":"Oslo"}' },
      ],
    });
    const r = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'three cities', tools: [weather], max_tool_calls: 2 });
    assertValidResponse(r);
    assert.equal(r.max_tool_calls, 2);
    assert.deepEqual(
      r.output.map((o) => (o.type === 'function_call' ? o.call_id : o.type)),
      ['c1', 'c2'],
    );
    // The dropped call is nowhere in the history either: answering the two kept calls is enough.
    h.upstream.enqueue({ kind: 'text', text: 'done' });
    const next = await h.client.responses.create({
      model: 'gpt-4o-mini',
      previous_response_id: r.id,
      tools: [weather],
      input: [
        { type: 'function_call_output', call_id: 'c1', output: 'sun' },
        { type: 'function_call_output', call_id: 'c2', output: 'rain' },
      ],
    });
    assert.equal(next.status, 'completed');
  });

  it('passes user, safety_identifier, prompt_cache_key, service_tier and text.verbosity to OpenAI, echoing them', async () => {
    const r = await h.client.responses.create({
      model: 'gpt-4o-mini',
      input: 'x',
      user: 'u-1',
      safety_identifier: 'sid-1',
      prompt_cache_key: 'pck-1',
      // `flex` and `priority` the AI SDK passes only for models that offer them (not gpt-4o-mini).
      service_tier: 'auto',
      text: { verbosity: 'low' },
    });
    assertValidResponse(r);
    assert.equal(r.user, 'u-1');
    assert.equal(r.safety_identifier, 'sid-1');
    assert.equal(r.prompt_cache_key, 'pck-1');
    assert.equal(r.service_tier, 'auto');
    const sent = h.upstream.lastRequest()?.body;
    assert.equal(sent.user, 'u-1');
    assert.equal(sent.safety_identifier, 'sid-1');
    assert.equal(sent.prompt_cache_key, 'pck-1');
    assert.equal(sent.service_tier, 'auto');
    assert.equal(sent.verbosity, 'low');

    const bad = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'x', service_tier: 'gold' });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).error.param, 'service_tier');
  });

  it('validates metadata like OpenAI: 16 pairs, 64-character keys, 512-character values', async () => {
    const pairs = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, 'v'.repeat(512)]));
    const ok = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'x', metadata: { ...pairs } });
    assert.equal(ok.status, 200);
    for (const metadata of [{ ...pairs, k16: 'v' }, { ['k'.repeat(65)]: 'v' }, { k: 'v'.repeat(513) }, { k: 1 }]) {
      const res = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'x', metadata });
      assert.equal(res.status, 400, JSON.stringify(metadata).slice(0, 80));
      assert.match((await res.json()).error.param, /^metadata/);
    }
  });
});
