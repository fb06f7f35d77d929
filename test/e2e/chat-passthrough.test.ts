// POST /v1/chat/completions to models whose upstream speaks Chat Completions itself: the request
// goes upstream as the client sent it (only `model` rewritten, the provider's own URL and auth),
// and the upstream's status, content type and bytes come back as they are, streamed as they
// arrive. Retries, fallbacks, timeouts, client aborts, metrics and secret scrubbing still apply.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type OpenAI from 'openai';
import type { FakeReply } from '../fake-upstream/server.ts';
import { type Harness, provider, readSse, startHarness } from '../helpers/harness.ts';
import { assertValidError } from '../helpers/spec.ts';

let h: Harness;
before(async () => {
  h = await startHarness({
    store: null,
    providers: (url) => {
      const origin = new URL(url).origin;
      return [
        provider('openai/gpt-4o-mini', { name: 'fast', base_url: url, default: true, access_key: 'sk-passthrough-key', headers: { 'x-config-header': 'from-config' } }),
        provider('vllm/primary-model', { name: 'flaky', base_url: `${origin}/compat/v1`, retries: { max: 1, backoff_ms: 1 }, fallbacks: ['backup'] }),
        provider('deepseek/deepseek-chat', { name: 'backup', base_url: `${origin}/deepseek` }),
        provider('vllm/tight-model', { name: 'tight', base_url: `${origin}/compat/v1`, timeout: { connect_ms: 300, idle_ms: 300, total_ms: 400 } }),
        provider('groq/llama-3.3-70b', { name: 'groq', base_url: `${origin}/groq/openai/v1` }),
        provider('azure/gpt4o-prod', { name: 'azure-dated', base_url: `${origin}/azure/openai`, api_version: '2024-10-21' }),
        provider('anthropic/claude-sonnet-4-5', { name: 'claude', base_url: `${origin}/anthropic/v1` }),
        provider('vllm/mixed-model', { name: 'mixed', base_url: `${origin}/compat/v1`, fallbacks: ['claude'] }),
        provider('vllm/tuned-model', { name: 'tuned', base_url: `${origin}/compat/v1`, options: { top_k: 5 } }),
      ];
    },
  });
});
after(() => h.close());
beforeEach(() => h.upstream.reset());

/** A reply the fake upstream sends verbatim (status 200 unless given). */
function raw(body: string, contentType: string, status = 200): FakeReply {
  return { kind: 'error', status, body, headers: { 'content-type': contentType } };
}

const user = [{ role: 'user', content: 'Hi' }];

async function until(check: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${h.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.split(',').every((p) => l.includes(p)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe('Chat Completions passthrough', { timeout: 20_000 }, () => {
  it('sends the body as the client wrote it (model rewritten, the provider URL, key and config headers) and returns the upstream bytes', async () => {
    const answer =
      '{"id":"chatcmpl-raw1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Hi!","refusal":null},"logprobs":{"content":[{"token":"Hi","logprob":-0.1,"bytes":[72,105],"top_logprobs":[]}]},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9},"x_vendor":{"kept":true}}';
    h.upstream.enqueue(raw(answer, 'application/json'));
    const sent = { model: 'fast', messages: user, logprobs: true, top_logprobs: 1, n: 1, vendor_option: { deep: [1, 2] }, temperature: 0.5 };
    const res = await h.post('/v1/chat/completions', sent, { authorization: 'Bearer client-key' });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(await res.text(), answer, 'the upstream answer, byte for byte');

    const got = h.upstream.lastRequest()!;
    assert.equal(got.path, '/v1/chat/completions');
    assert.deepEqual(got.body, { ...sent, model: 'gpt-4o-mini' });
    assert.deepEqual(Object.keys(got.body), Object.keys(sent), 'key order kept');
    assert.equal(got.headers.authorization, 'Bearer sk-passthrough-key', "the provider's key, never the client's");
    assert.equal(got.headers['x-config-header'], 'from-config');
    assert.equal(got.headers['content-type'], 'application/json');
    assert.match(got.headers['user-agent'] ?? '', /ai-sdk-openai/);
  });

  it('streams the upstream SSE through unchanged, as it arrives', async () => {
    const events = [
      '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}',
      '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hé"},"logprobs":{"content":[{"token":"Hé","logprob":-0.2}]},"finish_reason":null}],"usage":null,"x_vendor":1}',
      '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}',
      '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":3,"total_tokens":14}}',
    ];
    const stream = `${events.map((e) => `data: ${e}\n\n`).join('')}data: [DONE]\n\n`;
    h.upstream.enqueue(raw(stream, 'text/event-stream; charset=utf-8'));
    const before = await metric('parley_tokens_total', 'direction="input",model="openai/gpt-4o-mini"');
    const res = await h.post('/v1/chat/completions', { model: 'fast', messages: user, stream: true, stream_options: { include_usage: true }, logprobs: true });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    assert.equal(await res.text(), stream);
    assert.equal(h.upstream.lastRequest()!.body.stream_options.include_usage, true);
    // The usage chunk is read for the metrics (and the rate limiter's token count).
    assert.equal((await metric('parley_tokens_total', 'direction="input",model="openai/gpt-4o-mini"')) - before, 11);

    // A slow upstream: the first chunk reaches the client long before the last is sent.
    h.upstream.enqueue({ kind: 'slow', text: 'one two three', chunkDelayMs: 150 });
    const started = Date.now();
    const slow = await h.post('/v1/chat/completions', { model: 'fast', messages: user, stream: true });
    const reader = slow.body!.getReader();
    const first = await reader.read();
    const firstAt = Date.now() - started;
    let rest = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += Buffer.from(value).toString();
    }
    const lastAt = Date.now() - started;
    assert.ok(Buffer.from(first.value!).toString().startsWith('data: '));
    assert.ok(lastAt - firstAt >= 300, `streamed as it arrived (first ${firstAt} ms, last ${lastAt} ms)`);
    assert.ok(rest.endsWith('data: [DONE]\n\n'));
  });

  it('works with the official SDK, streaming and not, through OpenAI-compatible servers, Groq, DeepSeek and Azure', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'Hello there.' }, { kind: 'reasoning', reasoning: 'Thinking.', text: 'Yes.' });
    const plain = await h.client.chat.completions.create({ model: 'groq', messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(plain.choices[0].message.content, 'Hello there.');
    assert.equal(plain.model, 'llama-3.3-70b', "the upstream's own answer");
    assert.equal(h.upstream.lastRequest()!.path, '/groq/openai/v1/chat/completions');
    assert.equal(h.upstream.lastRequest()!.headers.authorization, 'Bearer test-key');
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    for await (const c of await h.client.chat.completions.create({ model: 'backup', messages: [{ role: 'user', content: 'Sure?' }], stream: true })) chunks.push(c);
    const deltas = chunks.map((c) => c.choices[0]?.delta as { reasoning_content?: string; content?: string } | undefined);
    assert.equal(deltas.map((d) => d?.reasoning_content ?? '').join(''), 'Thinking.');
    assert.equal(deltas.map((d) => d?.content ?? '').join(''), 'Yes.');
    assert.equal(h.upstream.lastRequest()!.body.model, 'deepseek-chat');

    h.upstream.enqueue({ kind: 'text', text: 'From Azure.' });
    const azure = await h.client.chat.completions.create({ model: 'azure-dated', messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(azure.choices[0].message.content, 'From Azure.');
    const got = h.upstream.lastRequest()!;
    assert.equal(got.path, '/azure/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21');
    assert.equal(got.headers['api-key'], 'test-key');
    assert.equal(got.headers.authorization, undefined);
  });

  it('validates as before: bad input is a 400 that reaches no upstream; only a native upstream gets fields the gateway cannot convert', async () => {
    const bad = async (body: unknown, status: number, param: string | null) => {
      const res = await h.post('/v1/chat/completions', body);
      assert.equal(res.status, status, JSON.stringify(body));
      const json = await res.json();
      assertValidError(json);
      assert.equal(json.error.param, param);
    };
    await bad({ model: 'fast', messages: [] }, 400, 'messages');
    await bad({ model: 'fast', messages: user, store: true }, 400, 'store');
    await bad({ model: 'fast', messages: user, temperature: 9 }, 400, 'temperature');
    await bad({ model: 'fast', messages: user, stream_options: { include_usage: true } }, 400, 'stream_options');
    await bad({ model: 'fast', messages: [{ role: 'tool', tool_call_id: 'nope', content: 'x' }] }, 400, 'input');
    await bad({ model: 'claude', messages: user, logprobs: true }, 400, 'logprobs');
    await bad({ model: 'claude', messages: user, vendor_option: 1 }, 400, 'vendor_option');
    // A fallback that needs the conversion puts the whole chain on the AI SDK path, with its rules.
    await bad({ model: 'mixed', messages: user, vendor_option: 1 }, 400, 'vendor_option');
    // So does an entry with config `options`: AI SDK provider options, mapped into the body by the package.
    await bad({ model: 'tuned', messages: user, vendor_option: 1 }, 400, 'vendor_option');
    // What is left for a native upstream is skipped, so an error still names the index the client sent.
    const audio = { type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } };
    await bad({ model: 'fast', messages: [{ role: 'user', content: [audio, { type: 'bogus' }] }] }, 400, 'messages[0].content[1].type');
    await bad({ model: 'fast', messages: user, tools: [{ type: 'custom', custom: { name: 'grep' } }, { type: 'function', function: 3 }] }, 400, 'tools[1]');
    // Also when the Responses parser, which sees only the function tools, finds the fault.
    const badName = { type: 'function', function: { name: 'no spaces allowed', parameters: { type: 'object' } } };
    await bad({ model: 'fast', messages: user, tools: [{ type: 'custom', custom: { name: 'grep' } }, badName] }, 400, 'tools[1].function.name');
    assert.equal(h.upstream.requests.length, 0);
    h.upstream.enqueue({ kind: 'text', text: 'ok' });
    assert.equal((await h.post('/v1/chat/completions', { model: 'tuned', messages: user })).status, 200);
    assert.equal(h.upstream.lastRequest()!.body.top_k, 5);
    h.upstream.reset();

    // What only the native upstream understands goes to it: audio input, custom tools, n > 1.
    h.upstream.enqueue({ kind: 'text', text: 'ok' });
    const body = {
      model: 'fast',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Listen' }, { type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } }] }],
      tools: [{ type: 'custom', custom: { name: 'grep' } }],
      n: 2,
    };
    assert.equal((await h.post('/v1/chat/completions', body)).status, 200);
    assert.deepEqual(h.upstream.lastRequest()!.body, { ...body, model: 'gpt-4o-mini' });
  });

  it('answers upstream errors OpenAI-shaped, with the status the AI SDK path gives them, secrets masked', async () => {
    const cases: [FakeReply, number, RegExp][] = [
      [{ kind: 'error', status: 429, headers: { 'retry-after': '7' } }, 429, /Upstream rate limit: Rate limit reached/],
      [{ kind: 'error', status: 400, body: { error: { message: 'Bad logprobs.', type: 'invalid_request_error', param: 'logprobs', code: null } } }, 400, /rejected the request: Bad logprobs/],
      [{ kind: 'error', status: 401 }, 502, /rejected the gateway's credentials \(HTTP 401\)/],
      [{ kind: 'error', status: 404 }, 502, /failed \(HTTP 404\): The model `gpt-4o-mini` does not exist/],
      [{ kind: 'error', status: 500, body: { error: { message: 'Bad key sk-passthrough-key here', type: 'server_error', param: null, code: null } } }, 502, /Bad key \[REDACTED\] here/],
    ];
    for (const stream of [false, true]) {
      for (const [reply, status, pattern] of cases) {
        h.upstream.enqueue(reply);
        const res = await h.post('/v1/chat/completions', { model: 'fast', messages: user, stream });
        assert.equal(res.status, status, `${reply.kind} ${(reply as { status: number }).status} stream=${stream}`);
        const json = await res.json();
        assertValidError(json);
        assert.match(json.error.message, pattern);
        assert.ok(!JSON.stringify(json).includes('sk-passthrough-key'));
        if (status === 429) assert.equal(res.headers.get('retry-after'), '7');
      }
    }

    // After the 200 an upstream error frame is relayed, with the key masked.
    h.upstream.enqueue({ kind: 'stream_error', text: 'Partial answer', error: { error: { message: 'Overloaded (key sk-passthrough-key)', type: 'server_error', param: null, code: null } } });
    const res = await h.post('/v1/chat/completions', { model: 'fast', messages: user, stream: true });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.ok(text.includes('"content":" answer"'));
    assert.ok(text.includes('Overloaded (key [REDACTED])'));
    assert.ok(!text.includes('sk-passthrough-key'));
  });

  it('retries and falls back before the first byte, each upstream getting its own model id', async () => {
    h.upstream.enqueue({ kind: 'error', status: 503 }, { kind: 'error', status: 503 }, { kind: 'text', text: 'Rescued.' });
    const completion = await h.client.chat.completions.create({ model: 'flaky', messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(completion.choices[0].message.content, 'Rescued.');
    assert.deepEqual(
      h.upstream.requests.map((r) => [r.path, r.body.model]),
      [
        ['/compat/v1/chat/completions', 'primary-model'],
        ['/compat/v1/chat/completions', 'primary-model'],
        ['/deepseek/chat/completions', 'deepseek-chat'],
      ],
    );

    // Streaming: an error frame as the very first event counts as a failure before output.
    h.upstream.reset();
    h.upstream.enqueue(
      raw('data: {"error":{"message":"Model is loading","type":"server_error","param":null,"code":null}}\n\n', 'text/event-stream'),
      { kind: 'error', status: 502 },
      { kind: 'text', text: 'Streamed rescue.' },
    );
    const res = await h.post('/v1/chat/completions', { model: 'flaky', messages: user, stream: true });
    assert.equal(res.status, 200);
    const { events, done } = await readSse(res);
    assert.ok(done);
    assert.equal(events.map((e) => (e.choices as { delta: { content?: string } }[])[0]?.delta.content ?? '').join(''), 'Streamed rescue.');
    assert.equal(h.upstream.requests.length, 3);

    // A 400 from the model asked for is the client's to fix: no retry, no fallback.
    h.upstream.reset();
    h.upstream.enqueue({ kind: 'error', status: 400 });
    assert.equal((await h.post('/v1/chat/completions', { model: 'flaky', messages: user })).status, 400);
    assert.equal(h.upstream.requests.length, 1);
  });

  it('applies the connect, total and idle timeouts', async () => {
    h.upstream.enqueue({ kind: 'hang' }, { kind: 'hang' });
    for (const stream of [false, true]) {
      const res = await h.post('/v1/chat/completions', { model: 'tight', messages: user, stream });
      assert.equal(res.status, 504);
      const json = await res.json();
      assert.equal(json.error.code, 'upstream_timeout');
      assert.match(json.error.message, stream ? /did not start answering within 300 ms/ : /did not finish within 400 ms/);
    }
    h.upstream.enqueue({ kind: 'slow', text: 'a b', chunkDelayMs: 600, chunks: ['a', ' b'] });
    h.upstream.setDefault({ kind: 'hang' });
    // The role chunk comes at once, the next only after 600 ms: the idle clock (300 ms) cuts it.
    const res = await h.post('/v1/chat/completions', { model: 'tight', messages: user, stream: true });
    const { events, done } = await readSse(res);
    const last = events.at(-1) as { error?: { code: string; message: string } };
    assert.equal(last.error?.code, 'upstream_timeout');
    assert.match(last.error?.message ?? '', /went silent for 300 ms/);
    assert.ok(done);
  });

  it('aborts the upstream call when the client goes away, streaming or not', async () => {
    const aborted = 'model="openai/gpt-4o-mini",outcome="aborted"';
    const abortedBefore = await metric('parley_upstream_requests_total', aborted);
    h.upstream.enqueue({ kind: 'slow', text: 'one two three four five', chunkDelayMs: 200 });
    const controller = new AbortController();
    const res = await fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fast', messages: user, stream: true }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    await until(() => h.upstream.lastRequest()?.aborted === true);

    h.upstream.enqueue({ kind: 'hang' });
    const second = new AbortController();
    const pending = fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fast', messages: user }),
      signal: second.signal,
    }).catch(() => null);
    await until(() => h.upstream.requests.length === 2);
    second.abort();
    await pending;
    await until(() => h.upstream.lastRequest()?.aborted === true);
    assert.equal(await metric('parley_upstream_requests_total', aborted), abortedBefore + 2, 'both calls counted as aborted');
  });

  it('counts tokens and time to first token per request, as for any model call', async () => {
    const labels = 'model="openai/gpt-4o-mini"';
    const before = {
      input: await metric('parley_tokens_total', `direction="input",${labels}`),
      output: await metric('parley_tokens_total', `direction="output",${labels}`),
      ttft: await metric('parley_time_to_first_token_seconds_count', labels),
      ok: await metric('parley_upstream_requests_total', `${labels},outcome="ok"`),
    };
    h.upstream.enqueue({ kind: 'text', text: 'x', usage: { prompt_tokens: 40, completion_tokens: 4 } }, { kind: 'text', text: 'y', usage: { prompt_tokens: 50, completion_tokens: 5 } });
    await h.client.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'Hi' }] });
    const stream = await h.client.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'Hi' }], stream: true, stream_options: { include_usage: true } });
    for await (const _ of stream);
    assert.equal((await metric('parley_tokens_total', `direction="input",${labels}`)) - before.input, 90);
    assert.equal((await metric('parley_tokens_total', `direction="output",${labels}`)) - before.output, 9);
    assert.equal((await metric('parley_time_to_first_token_seconds_count', labels)) - before.ttft, 1, 'streaming only, as with the AI SDK');
    assert.equal((await metric('parley_upstream_requests_total', `${labels},outcome="ok"`)) - before.ok, 2);

    // Groq reports a stream's usage in `x_groq` on its finish chunk.
    const groq = 'model="groq/llama-3.3-70b"';
    const groqBefore = await metric('parley_tokens_total', `direction="output",${groq}`);
    h.upstream.enqueue({ kind: 'text', text: 'z', usage: { prompt_tokens: 8, completion_tokens: 6 } });
    for await (const _ of await h.client.chat.completions.create({ model: 'groq', messages: [{ role: 'user', content: 'Hi' }], stream: true }));
    assert.equal((await metric('parley_tokens_total', `direction="output",${groq}`)) - groqBefore, 6);
  });
});
