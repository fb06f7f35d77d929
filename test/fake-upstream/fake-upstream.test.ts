import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { APICallError } from '@ai-sdk/provider';
import type { LanguageModelV4Prompt, LanguageModelV4StreamPart } from '@ai-sdk/provider';
import OpenAI from 'openai';
import { startFakeUpstream } from './server.ts';
import type { FakeUpstream, RecordedRequest } from './server.ts';

const prompt: LanguageModelV4Prompt = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: [{ type: 'text', text: 'Say hello to the world.' }] },
];

async function collect(
  stream: ReadableStream<LanguageModelV4StreamPart>,
): Promise<LanguageModelV4StreamPart[]> {
  const parts: LanguageModelV4StreamPart[] = [];
  for await (const part of stream) parts.push(part);
  return parts;
}

function ofType<T extends LanguageModelV4StreamPart['type']>(parts: LanguageModelV4StreamPart[], type: T) {
  return parts.filter((p): p is Extract<LanguageModelV4StreamPart, { type: T }> => p.type === type);
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('fake upstream through @ai-sdk/openai (chat)', () => {
  let up: FakeUpstream;
  let model: ReturnType<ReturnType<typeof createOpenAI>['chat']>;

  before(async () => {
    up = await startFakeUpstream();
    model = createOpenAI({ baseURL: up.url, apiKey: 'test' }).chat('gpt-4o-mini');
  });
  after(() => up.close());
  beforeEach(() => up.reset());

  test('doGenerate: text, finish reason, scripted usage, recorded request', async () => {
    up.enqueue({
      kind: 'text',
      text: 'Hello, world!',
      usage: { prompt_tokens: 11, completion_tokens: 4, cached_tokens: 5 },
    });
    const result = await model.doGenerate({ prompt, temperature: 0.2 });
    assert.deepEqual(result.content, [{ type: 'text', text: 'Hello, world!' }]);
    assert.equal(result.finishReason.unified, 'stop');
    assert.equal(result.usage.inputTokens.total, 11);
    assert.equal(result.usage.inputTokens.cacheRead, 5);
    assert.equal(result.usage.inputTokens.noCache, 6);
    assert.equal(result.usage.outputTokens.total, 4);
    assert.equal(result.usage.outputTokens.reasoning, 0);

    assert.equal(up.requests.length, 1);
    const req = up.lastRequest()!;
    assert.equal(req.method, 'POST');
    assert.equal(req.path, '/v1/chat/completions');
    assert.equal(req.headers.authorization, 'Bearer test');
    assert.match(req.headers['content-type'], /application\/json/);
    assert.equal(req.aborted, false);
    assert.equal(req.body.model, 'gpt-4o-mini');
    assert.equal(req.body.stream, undefined);
    assert.equal(req.body.temperature, 0.2);
    assert.deepEqual(req.body.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Say hello to the world.' },
    ]);
  });

  test('doGenerate: default reply is "ok" with usage derived from the request', async () => {
    const result = await model.doGenerate({ prompt });
    assert.deepEqual(result.content, [{ type: 'text', text: 'ok' }]);
    assert.ok((result.usage.inputTokens.total ?? 0) > 0);
    assert.ok((result.usage.outputTokens.total ?? 0) > 0);
    const longer = await model.doGenerate({
      prompt: [...prompt, { role: 'user', content: [{ type: 'text', text: 'x'.repeat(4000) }] }],
    });
    assert.ok((longer.usage.inputTokens.total ?? 0) > (result.usage.inputTokens.total ?? 0) + 900);
  });

  test('doStream: explicit deltas arrive as text-delta parts, usage in finish', async () => {
    up.enqueue({
      kind: 'text',
      text: 'Hello world',
      chunks: ['Hel', 'lo', ' world'],
      finishReason: 'length',
      usage: { prompt_tokens: 20, completion_tokens: 3, cached_tokens: 8 },
    });
    const { stream } = await model.doStream({ prompt });
    const parts = await collect(stream);
    // OpenAI's role chunk carries `content: ""`, and the AI SDK turns it into an empty text-delta.
    assert.deepEqual(
      ofType(parts, 'text-delta').map((p) => p.delta),
      ['', 'Hel', 'lo', ' world'],
    );
    const metadata = ofType(parts, 'response-metadata')[0];
    assert.match(metadata.id ?? '', /^chatcmpl-/);
    assert.equal(metadata.modelId, 'gpt-4o-mini');
    const finish = ofType(parts, 'finish')[0];
    assert.equal(finish.finishReason.unified, 'length');
    assert.equal(finish.usage.inputTokens.total, 20);
    assert.equal(finish.usage.inputTokens.cacheRead, 8);
    assert.equal(finish.usage.outputTokens.total, 3);

    const body = up.lastRequest()!.body;
    assert.equal(body.stream, true);
    assert.deepEqual(body.stream_options, { include_usage: true });
  });

  test('doStream: text without explicit chunks is streamed word by word', async () => {
    up.enqueue({ kind: 'text', text: 'one two  three ' });
    const { stream } = await model.doStream({ prompt });
    const deltas = ofType(await collect(stream), 'text-delta').map((p) => p.delta);
    assert.deepEqual(deltas, ['', 'one', ' two', '  three ']);
  });

  test('doStream: tool calls keep ids, names and arguments split over several deltas', async () => {
    up.enqueue({
      kind: 'tool_calls',
      calls: [
        { id: 'call_abc', name: 'get_weather', arguments: '{"city":"Paris","unit":"celsius"}' },
        { id: 'call_def', name: 'get_time', arguments: '{"tz":"Europe/Paris"}' },
      ],
    });
    const { stream } = await model.doStream({
      prompt,
      tools: [
        {
          type: 'function',
          name: 'get_weather',
          inputSchema: { type: 'object', properties: { city: { type: 'string' } } },
        },
        { type: 'function', name: 'get_time', inputSchema: { type: 'object', properties: {} } },
      ],
    });
    const parts = await collect(stream);
    const starts = ofType(parts, 'tool-input-start');
    assert.deepEqual(
      starts.map((p) => [p.id, p.toolName]),
      [
        ['call_abc', 'get_weather'],
        ['call_def', 'get_time'],
      ],
    );
    const weatherDeltas = ofType(parts, 'tool-input-delta').filter((p) => p.id === 'call_abc');
    assert.ok(weatherDeltas.length > 2, 'arguments arrive in several deltas');
    assert.equal(weatherDeltas.map((p) => p.delta).join(''), '{"city":"Paris","unit":"celsius"}');
    const calls = ofType(parts, 'tool-call');
    assert.deepEqual(
      calls.map((c) => [c.toolCallId, c.toolName, c.input]),
      [
        ['call_abc', 'get_weather', '{"city":"Paris","unit":"celsius"}'],
        ['call_def', 'get_time', '{"tz":"Europe/Paris"}'],
      ],
    );
    assert.equal(ofType(parts, 'finish')[0].finishReason.unified, 'tool-calls');

    const body = up.lastRequest()!.body;
    assert.equal(body.tools.length, 2);
    assert.equal(body.tools[0].type, 'function');
    assert.equal(body.tools[0].function.name, 'get_weather');
  });

  test('doGenerate: tool calls with text', async () => {
    up.enqueue({
      kind: 'tool_calls',
      text: 'Let me check.',
      calls: [{ id: 'call_1', name: 'lookup', arguments: '{"q":"x"}' }],
    });
    const result = await model.doGenerate({ prompt });
    assert.deepEqual(result.content, [
      { type: 'text', text: 'Let me check.' },
      { type: 'tool-call', toolCallId: 'call_1', toolName: 'lookup', input: '{"q":"x"}' },
    ]);
    assert.equal(result.finishReason.unified, 'tool-calls');
  });

  test('a tool result goes upstream as a tool message paired by tool_call_id', async () => {
    await model.doGenerate({
      prompt: [
        ...prompt,
        {
          role: 'assistant',
          content: [{ type: 'tool-call', toolCallId: 'call_1', toolName: 'lookup', input: { q: 'x' } }],
        },
        {
          role: 'tool',
          content: [
            {
              type: 'tool-result',
              toolCallId: 'call_1',
              toolName: 'lookup',
              output: { type: 'text', value: '42' },
            },
          ],
        },
      ],
    });
    const messages = up.lastRequest()!.body.messages;
    assert.deepEqual(messages.slice(2), [
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"q":"x"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: '42' },
    ]);
  });

  test('an error status surfaces as APICallError with statusCode and the OpenAI message', async () => {
    up.enqueue({ kind: 'error', status: 429, headers: { 'retry-after': '1' } });
    await assert.rejects(
      async () => model.doGenerate({ prompt }),
      (err: unknown) => {
        assert.ok(APICallError.isInstance(err));
        assert.equal(err.statusCode, 429);
        assert.equal(err.isRetryable, true);
        assert.match(err.message, /Rate limit reached/);
        assert.equal(err.responseHeaders?.['retry-after'], '1');
        return true;
      },
    );
    up.enqueue({ kind: 'error', status: 401 });
    await assert.rejects(
      async () => model.doStream({ prompt }),
      (err: unknown) => {
        assert.ok(APICallError.isInstance(err));
        assert.equal(err.statusCode, 401);
        assert.match(err.message, /Incorrect API key/);
        return true;
      },
    );
    up.enqueue({
      kind: 'error',
      status: 400,
      body: { error: { message: 'bad thing', type: 'x', param: null, code: null } },
    });
    await assert.rejects(async () => model.doGenerate({ prompt }), /bad thing/);
  });

  test('a request OpenAI would reject gets a 400 and leaves the queue alone', async () => {
    up.enqueue({ kind: 'text', text: 'queued' });
    await assert.rejects(
      async () =>
        model.doGenerate({
          prompt: [
            ...prompt,
            {
              role: 'assistant',
              content: [{ type: 'tool-call', toolCallId: 'call_9', toolName: 'lookup', input: {} }],
            },
            { role: 'user', content: [{ type: 'text', text: 'never mind' }] },
          ],
        }),
      (err: unknown) => {
        assert.ok(APICallError.isInstance(err));
        assert.equal(err.statusCode, 400);
        assert.match(err.message, /did not have response messages: call_9/);
        return true;
      },
    );
    assert.equal(up.requests.length, 1);
    const ok = await model.doGenerate({ prompt });
    assert.deepEqual(ok.content, [{ type: 'text', text: 'queued' }]);
  });

  test('aborting the signal mid slow stream marks the recorded request aborted', async () => {
    up.enqueue({ kind: 'slow', text: 'a b c d e f', chunkDelayMs: 40 });
    const controller = new AbortController();
    const { stream } = await model.doStream({ prompt, abortSignal: controller.signal });
    const reader = stream.getReader();
    const seen: string[] = [];
    for (;;) {
      const { value } = await reader.read();
      if (value?.type === 'text-delta' && value.delta !== '') seen.push(value.delta);
      if (seen.length === 2) break;
    }
    controller.abort();
    await reader.read().catch(() => undefined);
    const req = up.lastRequest()!;
    await until(() => req.aborted, 'the upstream to see the abort');
    assert.deepEqual(seen, ['a', ' b']);
  });

  test('a slow stream that is read to the end is not aborted', async () => {
    up.enqueue({ kind: 'slow', text: 'x y', chunkDelayMs: 5 });
    const { stream } = await model.doStream({ prompt });
    const deltas = ofType(await collect(stream), 'text-delta').map((p) => p.delta);
    assert.deepEqual(deltas, ['', 'x', ' y']);
    assert.equal(up.lastRequest()!.aborted, false);
  });

  test('hang: the request is recorded, never answered, and aborted when the client gives up', async () => {
    up.enqueue({ kind: 'hang' });
    await assert.rejects(async () => model.doGenerate({ prompt, abortSignal: AbortSignal.timeout(100) }));
    const req = up.lastRequest()!;
    assert.equal(req.body.model, 'gpt-4o-mini');
    await until(() => req.aborted, 'the upstream to see the abort');
  });

  test('stream_error: text then an OpenAI error frame becomes an error part', async () => {
    up.enqueue({ kind: 'stream_error', text: 'partial answer' });
    const { stream } = await model.doStream({ prompt });
    const parts = await collect(stream);
    assert.equal(
      ofType(parts, 'text-delta')
        .map((p) => p.delta)
        .join(''),
      'partial answer',
    );
    assert.equal(ofType(parts, 'error').length, 1);
    assert.equal(ofType(parts, 'finish')[0].finishReason.unified, 'error');
  });

  test('stream_error before any output: doStream itself rejects with APICallError', async () => {
    up.enqueue({ kind: 'stream_error' });
    await assert.rejects(
      async () => model.doStream({ prompt }),
      (err: unknown) => {
        assert.ok(APICallError.isInstance(err));
        assert.match(err.message, /server had an error/);
        return true;
      },
    );
  });

  test('stream_error with disconnect: the stream fails after the partial text', async () => {
    up.enqueue({ kind: 'stream_error', text: 'cut here', disconnect: true });
    const { stream } = await model.doStream({ prompt });
    const parts: LanguageModelV4StreamPart[] = [];
    let failed = false;
    try {
      for await (const part of stream) parts.push(part);
    } catch {
      failed = true;
    }
    assert.ok(failed || ofType(parts, 'error').length > 0, 'the cut is visible to the client');
    assert.equal(up.lastRequest()!.aborted, false);
  });

  test('setDefault with a function sees the request; reset restores "ok"', async () => {
    up.setDefault((req: RecordedRequest) => ({
      kind: 'text',
      text: `echo:${req.body.messages.at(-1).content}`,
    }));
    const r1 = await model.doGenerate({ prompt });
    assert.deepEqual(r1.content, [{ type: 'text', text: 'echo:Say hello to the world.' }]);
    up.reset();
    assert.equal(up.requests.length, 0);
    const r2 = await model.doGenerate({ prompt });
    assert.deepEqual(r2.content, [{ type: 'text', text: 'ok' }]);
  });
});

describe('fake upstream through @ai-sdk/openai-compatible', () => {
  test('streams without stream_options unless includeUsage', async () => {
    const up = await startFakeUpstream();
    try {
      const plain = createOpenAICompatible({ name: 'local', baseURL: up.url, apiKey: 'k' }).chatModel('m1');
      up.enqueue({ kind: 'text', text: 'hi there', usage: { prompt_tokens: 3, completion_tokens: 2 } });
      const parts = await collect((await plain.doStream({ prompt })).stream);
      assert.equal(
        ofType(parts, 'text-delta')
          .map((p) => p.delta)
          .join(''),
        'hi there',
      );
      assert.equal(up.lastRequest()!.body.stream_options, undefined);
      assert.equal(ofType(parts, 'finish')[0].usage.inputTokens.total, undefined);

      const withUsage = createOpenAICompatible({
        name: 'local',
        baseURL: up.url,
        apiKey: 'k',
        includeUsage: true,
      }).chatModel('m1');
      up.enqueue({ kind: 'text', text: 'hi there', usage: { prompt_tokens: 3, completion_tokens: 2 } });
      const parts2 = await collect((await withUsage.doStream({ prompt })).stream);
      assert.equal(ofType(parts2, 'finish')[0].usage.inputTokens.total, 3);
    } finally {
      await up.close();
    }
  });
});

describe('fake upstream through the official openai SDK', () => {
  let up: FakeUpstream;
  let client: OpenAI;
  before(async () => {
    up = await startFakeUpstream();
    client = new OpenAI({ baseURL: up.url, apiKey: 'sk-test', maxRetries: 0 });
  });
  after(() => up.close());
  beforeEach(() => up.reset());

  test('chat.completions.create without stream', async () => {
    up.enqueue({
      kind: 'text',
      text: 'Hi!',
      usage: { prompt_tokens: 7, completion_tokens: 2, cached_tokens: 3 },
    });
    const completion = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Hello' }],
    });
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.choices[0].message.content, 'Hi!');
    assert.equal(completion.choices[0].finish_reason, 'stop');
    assert.equal(completion.usage?.total_tokens, 9);
    assert.equal(completion.usage?.prompt_tokens_details?.cached_tokens, 3);
    assert.equal(up.lastRequest()!.headers.authorization, 'Bearer sk-test');
  });

  test('chat.completions.create with stream and include_usage', async () => {
    up.enqueue({ kind: 'tool_calls', calls: [{ id: 'call_x', name: 'f', arguments: '{"a":1}' }] });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Hello' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let args = '';
    let finish: string | null = null;
    let sawUsage = false;
    let firstRole: string | undefined;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      if (chunk.usage) sawUsage = true;
      const choice = chunk.choices[0];
      if (!choice) continue;
      firstRole ??= choice.delta.role;
      for (const tc of choice.delta.tool_calls ?? []) {
        assert.equal(tc.index, 0);
        if (tc.id) assert.equal(tc.id, 'call_x');
        args += tc.function?.arguments ?? '';
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    assert.equal(firstRole, 'assistant');
    assert.equal(args, '{"a":1}');
    assert.equal(finish, 'tool_calls');
    assert.ok(sawUsage);
  });

  test('errors become APIError with status; models.list works', async () => {
    up.enqueue({ kind: 'error', status: 500 });
    await assert.rejects(
      client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.APIError);
        assert.equal(err.status, 500);
        assert.equal(err.type, 'server_error');
        return true;
      },
    );
    const models = await client.models.list();
    assert.ok(models.data.some((m) => m.id === 'gpt-4o-mini'));
  });

  test('unknown routes answer an OpenAI-shaped 404', async () => {
    const res = await fetch(up.url + '/nope', { method: 'POST', body: '{}' });
    assert.equal(res.status, 404);
    const body = (await res.json()) as { error: { type: string } };
    assert.equal(body.error.type, 'invalid_request_error');
  });
});
