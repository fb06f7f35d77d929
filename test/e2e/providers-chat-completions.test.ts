// POST /v1/chat/completions through the official `openai` SDK (chat.completions.create, streaming
// and not, and the .stream() helper): stateless, over the same routing, so an Anthropic, Gemini or
// Responses-API model answers Chat Completions too, each upstream receiving its native format.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { Harness } from '../helpers/harness.ts';
import { assertValidError } from '../helpers/spec.ts';
import { PNG, startProviderHarness } from '../providers/gateway.ts';

let h: Harness;
before(async () => {
  h = await startProviderHarness();
});
after(() => h.close());
beforeEach(() => h.upstream.reset());

const weather: OpenAI.Chat.ChatCompletionTool = {
  type: 'function',
  function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

const history: OpenAI.Chat.ChatCompletionMessageParam[] = [
  { role: 'system', content: 'Be brief.' },
  {
    role: 'user',
    content: [
      { type: 'text', text: 'Weather where this photo was taken?' },
      { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
    ],
  },
  { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
  { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
];

describe('POST /v1/chat/completions', () => {
  it('an Anthropic model answers a Chat Completions request, receiving Messages natively', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'Sunny in Paris.', usage: { prompt_tokens: 50, completion_tokens: 5, cached_tokens: 20 } });
    const completion = await h.client.chat.completions.create({ model: 'claude', messages: history, tools: [weather], temperature: 0.2, max_tokens: 100, stop: ['END'] });
    assert.equal(completion.object, 'chat.completion');
    assert.match(completion.id, /^chatcmpl-/);
    assert.equal(completion.model, 'claude');
    assert.deepEqual(completion.choices[0].message.content, 'Sunny in Paris.');
    assert.equal(completion.choices[0].finish_reason, 'stop');
    assert.deepEqual(completion.usage, {
      prompt_tokens: 50,
      completion_tokens: 5,
      total_tokens: 55,
      prompt_tokens_details: { cached_tokens: 20 },
      completion_tokens_details: { reasoning_tokens: 0 },
    });

    const body = h.upstream.lastRequest()!.body;
    assert.equal(h.upstream.lastRequest()!.path, '/anthropic/v1/messages');
    assert.deepEqual(body.system, [{ type: 'text', text: 'Be brief.' }]);
    assert.deepEqual(body.messages, [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Weather where this photo was taken?' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
        ],
      },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_1', content: 'sunny' }] },
    ]);
    assert.equal(body.temperature, 0.2);
    assert.equal(body.max_tokens, 100);
    assert.deepEqual(body.stop_sequences, ['END']);
    assert.equal(body.tools[0].name, 'get_weather');
  });

  it('streams from Gemini with include_usage; the SDK reads every chunk', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'One two three.', usage: { prompt_tokens: 9, completion_tokens: 3 } });
    const stream = await h.client.chat.completions.create({ model: 'gemini', messages: [{ role: 'user', content: 'Count.' }], stream: true, stream_options: { include_usage: true } });
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), 'One two three.');
    assert.ok(chunks.filter((c) => c.choices[0]?.delta.content).length >= 3, 'deltas as the upstream streamed them');
    const finish = chunks.at(-2)!;
    assert.equal(finish.choices[0].finish_reason, 'stop');
    const usage = chunks.at(-1)!;
    assert.deepEqual(usage.choices, []);
    assert.equal(usage.usage?.total_tokens, 12);
    assert.ok(chunks.every((c) => c.id === chunks[0].id && c.object === 'chat.completion.chunk'));
    assert.equal(h.upstream.lastRequest()!.path, '/google/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
  });

  it('streams parallel tool calls from the Responses API; the .stream() helper assembles them', async () => {
    h.upstream.enqueue({
      kind: 'tool_calls',
      calls: [
        { id: 'call_a', name: 'get_weather', arguments: '{"city":"Oslo"}' },
        { id: 'call_b', name: 'get_weather', arguments: '{"city":"Rome"}' },
      ],
    });
    const stream = h.client.chat.completions.stream({ model: 'gpt-5', messages: [{ role: 'user', content: 'Oslo and Rome?' }], tools: [weather], tool_choice: 'required', parallel_tool_calls: true });
    const final = await stream.finalChatCompletion();
    assert.equal(final.choices[0].finish_reason, 'tool_calls');
    assert.deepEqual(
      final.choices[0].message.tool_calls?.map((c) => (c.type === 'function' ? [c.id, c.function.name, c.function.arguments] : [])),
      [
        ['call_a', 'get_weather', '{"city":"Oslo"}'],
        ['call_b', 'get_weather', '{"city":"Rome"}'],
      ],
    );
    const body = h.upstream.lastRequest()!.body;
    assert.equal(h.upstream.lastRequest()!.path, '/v1/responses');
    assert.equal(body.tool_choice, 'required');
    assert.equal(body.store, false);
    assert.equal(body.tools[0].strict, false, 'Chat Completions tools are not strict unless they say so');
  });

  it('passes an OpenAI-compatible conversation through with the same messages', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'Sunny.' });
    await h.client.chat.completions.create({ model: 'local', messages: history, tools: [weather], response_format: { type: 'json_object' }, seed: 7 });
    const body = h.upstream.lastRequest()!.body;
    assert.deepEqual(body.messages, [
      { role: 'system', content: 'Be brief.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'Weather where this photo was taken?' },
          { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } },
        ],
      },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
    ]);
    assert.deepEqual(body.response_format, { type: 'json_object' });
    assert.equal(body.seed, 7);
  });

  it('returns reasoning as reasoning_content, streaming and not', async () => {
    h.upstream.enqueue({ kind: 'reasoning', reasoning: 'Let me think.', text: 'Forty-two.' }, { kind: 'reasoning', reasoning: 'Hmm.', text: 'Yes.' });
    const plain = await h.client.chat.completions.create({ model: 'deepseek', messages: [{ role: 'user', content: 'Answer?' }] });
    assert.equal((plain.choices[0].message as unknown as { reasoning_content: string }).reasoning_content, 'Let me think.');
    assert.equal(plain.choices[0].message.content, 'Forty-two.');
    assert.ok((plain.usage?.completion_tokens_details?.reasoning_tokens ?? 0) > 0);
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    for await (const c of await h.client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'Sure?' }], stream: true, reasoning_effort: 'low' })) chunks.push(c);
    const deltas = chunks.map((c) => c.choices[0]?.delta as { reasoning_content?: string; content?: string });
    assert.equal(deltas.map((d) => d?.reasoning_content ?? '').join(''), 'Hmm.');
    assert.equal(deltas.map((d) => d?.content ?? '').join(''), 'Yes.');
    assert.equal(h.upstream.lastRequest()!.body.thinking.type, 'enabled', 'reasoning_effort turns on Anthropic thinking');
  });

  it('maps json_schema response_format natively (Anthropic)', async () => {
    h.upstream.enqueue({ kind: 'text', text: '{"city":"Paris"}' });
    const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false };
    await h.client.chat.completions.create({
      model: 'claude',
      messages: [{ role: 'user', content: 'City?' }],
      response_format: { type: 'json_schema', json_schema: { name: 'city', schema, strict: true } },
    });
    const body = h.upstream.lastRequest()!.body;
    assert.deepEqual(body.output_config.format, { type: 'json_schema', schema });
  });

  it('reports finish_reason length and content_filter', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'Cut', finishReason: 'length' }, { kind: 'text', text: 'No', finishReason: 'content_filter' });
    const cut = await h.client.chat.completions.create({ model: 'gemini', messages: [{ role: 'user', content: 'x' }], max_completion_tokens: 1 });
    assert.equal(cut.choices[0].finish_reason, 'length');
    assert.equal(h.upstream.lastRequest()!.body.generationConfig.maxOutputTokens, 1);
    const filtered = await h.client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(filtered.choices[0].finish_reason, 'content_filter');
  });

  it('answers OpenAI-shaped errors: bad requests, unknown models, upstream failures before and after the first chunk', async () => {
    const bad = async (body: unknown, param: string | null, pattern: RegExp) => {
      const res = await h.post('/v1/chat/completions', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      const json = await res.json();
      assertValidError(json);
      assert.equal(json.error.param, param);
      assert.match(json.error.message, pattern);
    };
    await bad({ model: 'claude', messages: [] }, 'messages', /empty array/);
    await bad({ model: 'claude', messages: [{ role: 'user', content: 'x' }], n: 2 }, 'n', /Only `n: 1`/);
    await bad({ model: 'claude', messages: [{ role: 'user', content: 'x' }], store: true }, 'store', /stateless/);
    await bad({ model: 'claude', messages: [{ role: 'user', content: 'x' }], bogus: 1 }, 'bogus', /Unrecognized request argument/);
    await bad({ model: 'claude', messages: [{ role: 'tool', tool_call_id: 'nope', content: 'x' }] }, 'input', /No tool call found/);
    await bad({ model: 'claude', messages: [{ role: 'user', content: 'x' }], max_tokens: 0 }, 'max_tokens', /max_tokens/);
    await bad({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }, 'model', /Configured models: .*claude/);
    assert.equal(h.upstream.requests.length, 0);

    h.upstream.enqueue({ kind: 'error', status: 429 });
    await assert.rejects(h.client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'x' }] }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.APIError);
      assert.equal(error.status, 429);
      assert.match(error.message, /per-minute rate limit/);
      return true;
    });

    h.upstream.enqueue({ kind: 'stream_error', text: 'Partial', error: { error: { message: 'Overloaded', type: 'overloaded_error', param: null, code: null } } });
    const stream = await h.client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'x' }], stream: true });
    const seen: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const c of stream) seen.push(c.choices[0]?.delta.content ?? '');
      })(),
      (error: unknown) => {
        assert.ok(error instanceof OpenAI.APIError);
        assert.match(error.message, /Overloaded/);
        return true;
      },
    );
    assert.equal(seen.join(''), 'Partial', 'what streamed before the failure was delivered');
  });

  it('stores nothing: the endpoint is stateless', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'ok' });
    const completion = await h.client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'x' }] });
    const res = await fetch(`${h.url}/v1/responses/${completion.id}`);
    assert.equal(res.status, 404);
  });
});
