// The library's responses API, end to end in-process: the scenarios of test/e2e/responses.test.ts,
// background.test.ts and surface.test.ts, through createParley instead of HTTP. Same upstream
// assertions, same response objects (validated against the Open Responses schema), same errors.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createOpenAI } from '@ai-sdk/openai';
import { ApiError, createParley, outputText, type ResponseObject, type StreamEvent } from '../../src/index.ts';
import { startFakeUpstream } from '../fake-upstream/server.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';
import { assertValidResponse, assertValidStreamEvent } from '../helpers/spec.ts';
import { apiErrorOf, type LibraryHarness, messagesOf, startLibrary } from './helpers.ts';

const MODEL = 'gpt-4o-mini';
let h: LibraryHarness;

before(async () => {
  h = await startLibrary({ store: { type: 'sqlite', path: ':memory:' } });
});
after(() => h.close());
beforeEach(() => h.upstream.reset());

describe('multi-turn state', () => {
  it('rebuilds the whole context on turn 3 and sends exactly that upstream', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'Hi Ada.' }, { kind: 'text', text: 'You like tea.' }, { kind: 'text', text: 'Ada, who likes tea.' });
    const r1 = await h.parley.responses.create({ model: MODEL, input: 'My name is Ada.', instructions: 'Be brief.' });
    assertValidResponse(r1);
    assert.equal(outputText(r1), 'Hi Ada.');
    assert.equal(r1.instructions, 'Be brief.');
    const r2 = await h.parley.responses.create({ model: MODEL, input: 'I like tea.', previous_response_id: r1.id });
    assert.equal(r2.instructions, null, 'instructions are per request');
    const r3 = await h.parley.responses.create({
      model: MODEL,
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'Who am I?' }] }],
      previous_response_id: r2.id,
      instructions: 'Answer in one line.',
      temperature: 0.3,
      max_output_tokens: 50,
    });
    assertValidResponse(r3);
    assert.equal(outputText(r3), 'Ada, who likes tea.');
    assert.deepEqual(messagesOf(h.upstream), [
      { role: 'system', content: 'Answer in one line.' },
      { role: 'user', content: 'My name is Ada.' },
      { role: 'assistant', content: 'Hi Ada.' },
      { role: 'user', content: 'I like tea.' },
      { role: 'assistant', content: 'You like tea.' },
      { role: 'user', content: 'Who am I?' },
    ]);
    assert.equal(h.upstream.lastRequest()?.body.temperature, 0.3);
    assert.equal(h.upstream.lastRequest()?.body.max_tokens, 50);
  });

  it('streams: the same events as SSE, in order, then finalResponse()', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'One.', chunks: ['On', 'e.'] }, { kind: 'text', text: 'Two.', chunks: ['T', 'w', 'o.'] });
    const s1 = h.parley.responses.stream({ model: MODEL, input: 'Count.' });
    const seen: StreamEvent[] = [];
    for await (const event of s1) {
      assertValidStreamEvent(event);
      seen.push(event);
    }
    const r1 = await s1.finalResponse();
    assertValidResponse(r1);
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
    assert.deepEqual(seen.at(-1)?.response, r1);

    // create({stream: true}) is the same stream.
    const s2 = await h.parley.responses.create({ model: MODEL, input: 'Again.', previous_response_id: r1.id, stream: true });
    const deltas: string[] = [];
    for await (const event of s2) if (event.type === 'response.output_text.delta') deltas.push(String(event.delta));
    assert.deepEqual(deltas, ['T', 'w', 'o.']);
    assert.equal(outputText(await s2.finalResponse()), 'Two.');
    assert.equal(h.upstream.lastRequest()?.body.stream, true);
    assert.deepEqual(messagesOf(h.upstream), [
      { role: 'user', content: 'Count.' },
      { role: 'assistant', content: 'One.' },
      { role: 'user', content: 'Again.' },
    ]);
  });

  it('keeps branches apart: two continuations of one response see only their own history', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'root' }, { kind: 'text', text: 'a' }, { kind: 'text', text: 'b' }, { kind: 'text', text: 'end' });
    const root = await h.parley.responses.create({ model: MODEL, input: 'start' });
    const a = await h.parley.responses.create({ model: MODEL, input: 'branch A', previous_response_id: root.id });
    await h.parley.responses.create({ model: MODEL, input: 'branch B', previous_response_id: root.id });
    await h.parley.responses.create({ model: MODEL, input: 'more', previous_response_id: a.id });
    assert.deepEqual(
      messagesOf(h.upstream).map((m) => m.content),
      ['start', 'root', 'branch A', 'a', 'more'],
    );
  });
});

describe('tools', () => {
  const tools = [{ type: 'function' as const, name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: false }];

  it('round-trips a function call with its structure, paired by call_id', async () => {
    h.upstream.enqueue(
      { kind: 'tool_calls', calls: [{ id: 'call_abc', name: 'get_weather', arguments: '{"city":"Paris"}' }] },
      { kind: 'text', text: 'It is sunny in Paris.' },
    );
    const r1 = await h.parley.responses.create({ model: MODEL, input: 'Weather in Paris?', tools });
    const call = r1.output[0];
    assert.ok(call.type === 'function_call');
    assert.equal(call.call_id, 'call_abc');
    const r2 = await h.parley.responses.create({
      model: MODEL,
      previous_response_id: r1.id,
      input: [{ type: 'function_call_output', call_id: 'call_abc', output: '{"sky":"sunny"}' }],
      tools,
    });
    assert.equal(outputText(r2), 'It is sunny in Paris.');
    assert.deepEqual(messagesOf(h.upstream), [
      { role: 'user', content: 'Weather in Paris?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'call_abc', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
      },
      { role: 'tool', tool_call_id: 'call_abc', content: '{"sky":"sunny"}' },
    ]);
  });

  it('is a 400, not a crash, when the conversation moves on without the tool output', async () => {
    h.upstream.enqueue({ kind: 'tool_calls', calls: [{ id: 'call_z', name: 'get_weather', arguments: '{}' }] });
    const r1 = await h.parley.responses.create({ model: MODEL, input: 'call it', tools });
    const before = h.upstream.requests.length;
    const error = await apiErrorOf(h.parley.responses.create({ model: MODEL, input: 'never mind', previous_response_id: r1.id }));
    assert.equal(error.status, 400);
    assert.match(error.message, /call_z/);
    assert.equal(h.upstream.requests.length, before);
  });
});

describe('stored state', () => {
  it('retrieves, lists input items with paging, deletes; store:false is not continuable', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'ok' }, { kind: 'text', text: 'unsaved' });
    const r = await h.parley.responses.create({
      model: MODEL,
      input: [
        { role: 'user', content: 'one' },
        { role: 'user', content: 'two' },
        { role: 'user', content: 'three' },
      ],
    });
    assert.deepEqual(await h.parley.responses.retrieve(r.id), r);
    const page1 = await h.parley.responses.inputItems.list(r.id, { limit: 2, order: 'asc' });
    assert.deepEqual(
      page1.data.map((i) => (i.type === 'message' && i.content[0].type === 'input_text' ? i.content[0].text : '')),
      ['one', 'two'],
    );
    assert.equal(page1.has_more, true);
    const page2 = await h.parley.responses.inputItems.list(r.id, { order: 'asc', after: page1.last_id! });
    assert.equal(page2.data.length, 1);
    assert.deepEqual(await h.parley.responses.delete(r.id), { id: r.id, object: 'response', deleted: true });
    const gone = await apiErrorOf(h.parley.responses.retrieve(r.id));
    assert.equal(gone.status, 404);

    const unsaved = await h.parley.responses.create({ model: MODEL, input: 'x', store: false });
    const error = await apiErrorOf(h.parley.responses.create({ model: MODEL, input: 'y', previous_response_id: unsaved.id }));
    assert.equal(error.code, 'previous_response_not_found');
    assert.equal(error.param, 'previous_response_id');
  });

  it('counts input tokens as POST /v1/responses/input_tokens does', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'Hi.' });
    const r = await h.parley.responses.create({ model: MODEL, input: 'Hello there.' });
    const counted = await h.parley.responses.inputTokens.count({ model: MODEL, input: 'And now?', previous_response_id: r.id });
    assert.equal(counted.object, 'response.input_tokens');
    assert.ok(counted.input_tokens > 10);
  });
});

describe('the same validation and errors as the HTTP API', () => {
  let http: Harness;
  before(async () => {
    http = await startHarness({ store: 'memory' });
  });
  after(() => http.close());

  const BAD: unknown[] = [
    {},
    { model: MODEL },
    { model: MODEL, input: 'x', temperature: 7 },
    { model: MODEL, input: [{ role: 'wizard', content: 'x' }] },
    { model: MODEL, input: 'x', bogus: true },
    { model: MODEL, input: 'x', previous_response_id: 'resp_missing' },
    { model: 'no-such-model', input: 'x' },
    { model: MODEL, input: 'x', conversation: 'not-a-conversation' },
    { model: MODEL, input: 'x', tool_choice: 'required' },
    { model: MODEL, input: 'x', metadata: { k: 1 } },
  ];
  for (const body of BAD) {
    it(`${JSON.stringify(body)} -> the same error body`, async () => {
      const res = await http.post('/v1/responses', body);
      const error = await apiErrorOf(h.parley.responses.create(body as never));
      assert.equal(error.status, res.status);
      const expected = await res.json();
      // The model list in a model_not_found message names each side's configuration.
      if (expected.error.code === 'model_not_found') expected.error.message = error.message;
      assert.deepEqual(error.toBody(), expected);
    });
  }

  it('stream() reports a bad body through the stream, before any event', async () => {
    const stream = h.parley.responses.stream({ model: MODEL, input: 'x', temperature: 9 });
    await assert.rejects(
      (async () => {
        for await (const _ of stream) assert.fail('no event expected');
      })(),
      (error: unknown) => error instanceof ApiError && error.param === 'temperature',
    );
    await assert.rejects(stream.finalResponse(), ApiError);
  });
});

describe('upstream failures', () => {
  it('keeps a 429 a 429 and maps a 500 to 502', async () => {
    h.upstream.enqueue({ kind: 'error', status: 429, headers: { 'retry-after': '7' } }, { kind: 'error', status: 500 });
    const limited = await apiErrorOf(h.parley.responses.create({ model: MODEL, input: 'x' }));
    assert.equal(limited.status, 429);
    assert.equal(limited.headers['retry-after'], '7');
    const failed = await apiErrorOf(h.parley.responses.create({ model: MODEL, input: 'x' }));
    assert.equal(failed.status, 502);
  });

  it('reports a failure mid-stream as response.failed, stored failed and not continuable', async () => {
    h.upstream.enqueue({ kind: 'stream_error', text: 'partial ' });
    const stream = h.parley.responses.stream({ model: MODEL, input: 'x' });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    assert.equal(types.at(-1), 'response.failed');
    const final = await stream.finalResponse();
    assert.equal(final.status, 'failed');
    assert.equal((await h.parley.responses.retrieve(final.id)).status, 'failed');
    const error = await apiErrorOf(h.parley.responses.create({ model: MODEL, input: 'y', previous_response_id: final.id }));
    assert.equal(error.code, 'previous_response_not_usable');
  });

  it('leaving the loop early aborts the upstream request, like a client disconnecting', async () => {
    h.upstream.enqueue({ kind: 'slow', text: 'a b c d e f', chunkDelayMs: 50 });
    const stream = h.parley.responses.stream({ model: MODEL, input: 'x' });
    for await (const event of stream) if (event.type === 'response.output_text.delta') break;
    const final = await stream.finalResponse();
    assert.equal(final.status, 'failed');
    await waitFor(() => h.upstream.requests.at(-1)?.aborted === true);
  });

  it('an AbortSignal aborts a non-streaming create', async () => {
    h.upstream.enqueue({ kind: 'hang' });
    const abort = new AbortController();
    const pending = h.parley.responses.create({ model: MODEL, input: 'x' }, { signal: abort.signal });
    await waitFor(() => h.upstream.requests.length > 0);
    abort.abort();
    const error = await apiErrorOf(pending);
    assert.equal(error.code, 'client_closed_request');
  });
});

describe('background responses', () => {
  it('answers queued at once, runs detached, resumes its stream, and cancels', async () => {
    h.upstream.enqueue({ kind: 'slow', text: 'one two three', chunkDelayMs: 20 });
    const queued = await h.parley.responses.create({ model: MODEL, input: 'x', background: true });
    assert.equal(queued.status, 'queued');
    assert.equal(queued.background, true);
    let done: ResponseObject = queued;
    await waitFor(async () => {
      done = await h.parley.responses.retrieve(queued.id);
      return done.status === 'completed';
    });
    assert.equal(outputText(done), 'one two three');
    const replay = h.parley.responses.stream({ response_id: queued.id, starting_after: 2 });
    const numbers: number[] = [];
    for await (const event of replay) numbers.push(event.sequence_number);
    assert.ok(numbers[0] === 3 && numbers.length > 3);
    assert.equal((await replay.finalResponse()).status, 'completed');

    h.upstream.enqueue({ kind: 'hang' });
    const running = await h.parley.responses.create({ model: MODEL, input: 'y', background: true });
    await waitFor(() => h.upstream.requests.at(-1)?.body.messages?.[0]?.content === 'y');
    const cancelled = await h.parley.responses.cancel(running.id);
    assert.equal(cancelled.status, 'cancelled');
    assert.equal((await h.parley.responses.cancel(queued.id)).status, 'completed', 'a finished one is returned unchanged');
    h.upstream.enqueue({ kind: 'text', text: 'fg' });
    const foreground = await h.parley.responses.create({ model: MODEL, input: 'z' });
    const notBackground = await apiErrorOf(h.parley.responses.cancel(foreground.id));
    assert.equal(notBackground.status, 400);
  });
});

describe('models given in code', () => {
  it('takes an AI SDK LanguageModel by name, with its price table and window', async () => {
    const upstream = await startFakeUpstream();
    const openai = createOpenAI({ baseURL: upstream.url, apiKey: 'k' });
    const parley = await createParley({
      models: {
        fast: openai.chat('gpt-4o-mini'),
        priced: { model: openai.chat('gpt-4o'), pricing: { input_per_million: 3, output_per_million: 10 }, contextWindow: 50 },
      },
    });
    try {
      upstream.enqueue({ kind: 'text', text: 'hi', usage: { prompt_tokens: 10, completion_tokens: 2 } });
      const r = await parley.responses.create({ model: 'fast', input: 'hello', user: 'u1' });
      assert.equal(r.model, 'fast');
      assert.equal(outputText(r), 'hi');
      assert.equal(upstream.lastRequest()?.body.model, 'gpt-4o-mini');
      assert.equal(upstream.lastRequest()?.body.user, 'u1', 'OpenAI options are derived from the request');
      assert.deepEqual(
        parley.models.list().map((m) => [m.id, m.route]),
        [
          ['fast', 'openai/gpt-4o-mini'],
          ['priced', 'openai/gpt-4o'],
        ],
      );
      const tooLong = await apiErrorOf(parley.responses.create({ model: 'priced', input: 'word '.repeat(100) }));
      assert.equal(tooLong.code, 'context_length_exceeded');
      const unknown = await apiErrorOf(parley.responses.create({ model: 'slow', input: 'x' }));
      assert.equal(unknown.code, 'model_not_found');
      assert.match(unknown.message, /fast, priced/);
    } finally {
      await parley.close();
      await upstream.close();
    }
  });

  it('rejects what is not a LanguageModelV4 with a ConfigError naming the entry', async () => {
    await assert.rejects(
      createParley({ models: { broken: { model: {} as never } } }),
      (error: Error) => error.name === 'ConfigError' && /models\.broken/.test(error.message),
    );
    await assert.rejects(createParley({ config: { model_providers: [{ model: 'openai/x', base_url: 'ftp://x' }] } }), /model_providers\[0\]\.base_url/);
  });
});

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}
