// Timeouts, retries and fallbacks, per provider entry, through the gateway: retries with backoff
// on 429 / 5xx / timeouts before the first byte only, never once output has streamed; ordered
// fallbacks to other providers when a model fails before streaming; OpenAI-shaped errors that keep
// the upstream's own message.

import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Harness } from '../helpers/harness.ts';
import { provider, readSse, startHarness } from '../helpers/harness.ts';
import { assertValidError, assertValidResponse, assertValidStreamEvent } from '../helpers/spec.ts';

let h: Harness;
before(async () => {
  h = await startHarness({
    store: 'memory',
    providers: (url) => {
      const origin = new URL(url).origin;
      const fast = { connect_ms: 300, idle_ms: 200, total_ms: 400 };
      return [
        provider('openai/gpt-4o-mini', { base_url: `${origin}/v1`, default: true }),
        // Retries, no fallback.
        provider('anthropic/claude-sonnet-4-5', { name: 'claude', base_url: `${origin}/anthropic/v1`, retries: { max: 2, backoff_ms: 5 }, timeout: fast }),
        // No retries, two fallbacks in order.
        provider('anthropic/claude-opus-4-1', {
          name: 'claude-fb',
          base_url: `${origin}/anthropic/v1`,
          timeout: fast,
          fallbacks: ['gemini', 'local'],
        }),
        provider('google/gemini-2.5-flash', { name: 'gemini', base_url: `${origin}/google/v1beta`, timeout: fast }),
        provider('vllm/qwen3-8b', { name: 'local', base_url: `${origin}/compat/v1`, timeout: fast }),
        provider('groq/llama-3.3-70b-versatile', { name: 'groq-fb', base_url: `${origin}/groq/openai/v1`, fallbacks: ['gemini'] }),
        provider('google/gemini-2.5-pro', { name: 'gemini-pdf', base_url: `${origin}/google/v1beta`, fallbacks: ['groq-fb', 'local'] }),
        provider('google/gemini-2.0-flash', { name: 'gemini-pdf-2', base_url: `${origin}/google/v1beta`, fallbacks: ['local', 'groq-fb'] }),
        provider('bedrock/amazon.nova-pro-v1:0', {
          name: 'bedrock',
          base_url: `${origin}/bedrock`,
          region: 'eu-west-1',
          access_key: 'bedrock-api-key',
          retries: { max: 1, backoff_ms: 5 },
        }),
      ];
    },
  });
});
after(() => h.close());
beforeEach(() => h.upstream.reset());

const paths = () => h.upstream.requests.map((r) => r.path.split('?')[0]);

describe('retries before the first byte', () => {
  it('retries 503 and 429 with backoff, then answers', async () => {
    h.upstream.enqueue({ kind: 'error', status: 503 }, { kind: 'error', status: 429, headers: { 'retry-after-ms': '20' } }, { kind: 'text', text: 'Third time lucky.' });
    const started = Date.now();
    const r = await h.client.responses.create({ model: 'claude', input: 'hi' });
    assertValidResponse(r);
    assert.equal(r.output_text, 'Third time lucky.');
    assert.equal(h.upstream.requests.length, 3);
    assert.ok(Date.now() - started >= 20, 'waited at least what retry-after-ms asked');
  });

  it('retries a stream whose first chunk never comes (connect timeout), aborting the stuck request', async () => {
    h.upstream.enqueue({ kind: 'hang' }, { kind: 'text', text: 'Back.' });
    const res = await h.post('/v1/responses', { model: 'claude', input: 'hi', stream: true });
    assert.equal(res.status, 200);
    const { events } = await readSse(res);
    for (const e of events) assertValidStreamEvent(e);
    assert.equal(events.at(-1)?.type, 'response.completed');
    assert.equal(h.upstream.requests.length, 2);
    assert.equal(h.upstream.requests[0].aborted, true, 'the hung upstream request was aborted');
  });

  it('gives up after max retries with the last upstream error, OpenAI-shaped, message kept', async () => {
    h.upstream.enqueue({ kind: 'error', status: 529 }, { kind: 'error', status: 529 }, { kind: 'error', status: 529 });
    const res = await h.post('/v1/responses', { model: 'claude', input: 'hi' });
    assert.equal(res.status, 502);
    const body = await res.json();
    assertValidError(body);
    assert.equal(body.error.type, 'server_error');
    assert.match(body.error.message, /Overloaded/, "Anthropic's own message");
    assert.equal(h.upstream.requests.length, 3, 'first attempt + 2 retries');
  });

  it('never retries a request the upstream rejected as invalid', async () => {
    h.upstream.enqueue({ kind: 'error', status: 400, body: { type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens: too large' } } });
    const res = await h.post('/v1/responses', { model: 'claude', input: 'hi' });
    assert.equal(res.status, 400);
    const body = await res.json();
    assertValidError(body);
    assert.match(body.error.message, /max_tokens: too large/);
    assert.equal(h.upstream.requests.length, 1);
  });

  it('never retries once output has streamed: a mid-stream failure is response.failed after one call', async () => {
    h.upstream.enqueue({ kind: 'stream_error', text: 'Half an ans', error: { error: { message: 'Overloaded', type: 'overloaded_error', param: null, code: null } } }, { kind: 'text', text: 'unused' });
    const res = await h.post('/v1/responses', { model: 'claude', input: 'hi', stream: true });
    const { events } = await readSse(res);
    for (const e of events) assertValidStreamEvent(e);
    const last = events.at(-1) as { type: string; response: { status: string; error: { message: string } } };
    assert.equal(last.type, 'response.failed');
    assert.match(last.response.error.message, /Overloaded/);
    assert.ok(events.some((e) => e.type === 'response.output_text.delta'), 'output had started');
    assert.equal(h.upstream.requests.length, 1);
  });

  it('Bedrock: retries a throttled call with its API key auth, and keeps the AWS message', async () => {
    h.upstream.enqueue({ kind: 'error', status: 429 }, { kind: 'error', status: 429 });
    const res = await h.post('/v1/responses', { model: 'bedrock', input: 'hi' });
    assert.equal(res.status, 429);
    const body = await res.json();
    assertValidError(body);
    assert.match(body.error.message, /Too many requests, please wait before trying again/);
    assert.equal(h.upstream.requests.length, 2);
    assert.equal(h.upstream.requests[0].headers.authorization, 'Bearer bedrock-api-key');
    assert.equal(paths()[0], '/bedrock/model/amazon.nova-pro-v1%3A0/converse');
  });
});

describe('timeouts', () => {
  it('idle: a stream that goes silent mid-answer fails with upstream_timeout and is not retried', async () => {
    // First chunk after 250 ms (within connect_ms 300), the next 250 ms later (beyond idle_ms 200).
    h.upstream.setDefault(() => ({ kind: 'slow', text: 'a b', chunkDelayMs: 250, chunks: ['a', ' b'] }));
    const res = await h.post('/v1/responses', { model: 'local', input: 'hi', stream: true });
    const { events } = await readSse(res);
    for (const e of events) assertValidStreamEvent(e);
    const last = events.at(-1) as { type: string; response: { error: { code: string; message: string } } };
    assert.equal(last.type, 'response.failed');
    assert.equal(last.response.error.code, 'upstream_timeout');
    assert.match(last.response.error.message, /went silent for 200 ms/);
    assert.equal(h.upstream.requests.length, 1);
    const deadline = Date.now() + 2000;
    while (!h.upstream.requests[0].aborted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(h.upstream.requests[0].aborted, true, 'the silent upstream request was aborted');
  });

  it('total: a non-streaming call that takes too long is a 504', async () => {
    h.upstream.setDefault({ kind: 'slow', text: 'late', chunkDelayMs: 600 });
    const res = await h.post('/v1/responses', { model: 'local', input: 'hi' });
    assert.equal(res.status, 504);
    const body = await res.json();
    assertValidError(body);
    assert.equal(body.error.code, 'upstream_timeout');
    assert.match(body.error.message, /vllm\/qwen3-8b did not finish within 400 ms/);
  });
});

describe('fallbacks', () => {
  it('moves to the next model when one fails before streaming, each in its own format', async () => {
    h.upstream.enqueue({ kind: 'error', status: 529 }, { kind: 'error', status: 503 }, { kind: 'text', text: 'From the local model.' });
    const { events } = await readSse(await h.post('/v1/responses', { model: 'claude-fb', input: 'Hello there', stream: true }));
    for (const e of events) assertValidStreamEvent(e);
    const done = events.at(-1) as { type: string; response: { model: string; output: { content: { text: string }[] }[] } };
    assert.equal(done.type, 'response.completed');
    assert.equal(done.response.output[0].content[0].text, 'From the local model.');
    assert.equal(done.response.model, 'claude-fb', 'the response echoes the model the client asked for');
    assert.deepEqual(paths(), ['/anthropic/v1/messages', '/google/v1beta/models/gemini-2.5-flash:streamGenerateContent', '/compat/v1/chat/completions']);
    assert.deepEqual(h.upstream.requests[1].body.contents, [{ role: 'user', parts: [{ text: 'Hello there' }] }]);
    assert.deepEqual(h.upstream.requests[2].body.messages, [{ role: 'user', content: 'Hello there' }]);
  });

  it('falls back on a connect timeout too', async () => {
    h.upstream.enqueue({ kind: 'hang' }, { kind: 'text', text: 'Gemini here.' });
    const r = await h.client.responses.create({ model: 'claude-fb', input: 'hi' });
    assert.equal(r.output_text, 'Gemini here.');
    assert.equal(h.upstream.requests[0].aborted, true);
  });

  it('reports every failure when all models fail', async () => {
    h.upstream.enqueue({ kind: 'error', status: 529 }, { kind: 'error', status: 500 }, { kind: 'error', status: 429 });
    const res = await h.post('/v1/responses', { model: 'claude-fb', input: 'hi' });
    assert.equal(res.status, 429, 'the status of the last failure');
    const body = await res.json();
    assertValidError(body);
    assert.match(body.error.message, /Every model tried failed before answering \(3 tried\)/);
    assert.match(body.error.message, /anthropic\/claude-opus-4-1: .*Overloaded/);
    assert.match(body.error.message, /google\/gemini-2\.5-flash: .*internal error/);
    assert.match(body.error.message, /vllm\/qwen3-8b: .*Rate limit/);
  });

  it('does not fall back when the model asked for rejects the request itself', async () => {
    h.upstream.enqueue({ kind: 'error', status: 400 });
    const res = await h.post('/v1/responses', { model: 'claude-fb', input: 'hi' });
    assert.equal(res.status, 400);
    assert.equal(h.upstream.requests.length, 1);
  });

  it('skips a fallback that cannot take the content', async () => {
    // Gemini fails; groq cannot take a PDF (refused before any request); the local model can.
    h.upstream.enqueue({ kind: 'error', status: 500 }, { kind: 'text', text: 'Read it.' });
    const input = [{ role: 'user', content: [{ type: 'input_file', filename: 'a.pdf', file_data: 'data:application/pdf;base64,JVBERi0=' }] }];
    const r = await h.client.responses.create({ model: 'gemini-pdf', input: input as never });
    assert.equal(r.output_text, 'Read it.');
    assert.deepEqual(paths(), ['/google/v1beta/models/gemini-2.5-pro:generateContent', '/compat/v1/chat/completions']);
    assert.deepEqual(h.upstream.requests[1].body.messages[0].content[0], {
      type: 'file',
      file: { filename: 'a.pdf', file_data: 'data:application/pdf;base64,JVBERi0=' },
    });
  });

  it('keeps an upstream status when the last fallback is one that could not take the content', async () => {
    h.upstream.enqueue({ kind: 'error', status: 500 }, { kind: 'error', status: 429 });
    const input = [{ role: 'user', content: [{ type: 'input_file', filename: 'a.pdf', file_data: 'data:application/pdf;base64,JVBERi0=' }] }];
    const res = await h.post('/v1/responses', { model: 'gemini-pdf-2', input });
    assert.equal(res.status, 429, "the last upstream failure's status, not the skipped fallback's 400");
    const body = await res.json();
    assertValidError(body);
    assert.match(body.error.message, /\(3 tried\).*groq\/llama-3\.3-70b-versatile: .*Non-image file content parts/);
    assert.equal(h.upstream.requests.length, 2);
  });

  it('gives a clear 400 when the model asked for cannot take the content, without trying fallbacks', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'unused' });
    const input = [{ role: 'user', content: [{ type: 'input_file', filename: 'a.pdf', file_data: 'data:application/pdf;base64,JVBERi0=' }] }];
    const res = await h.post('/v1/responses', { model: 'groq-fb', input });
    assert.equal(res.status, 400, 'the model asked for cannot take it: a clear 400, no fallback');
    assert.match((await res.json()).error.message, /Non-image file content parts/);
    assert.equal(h.upstream.requests.length, 0);
  });

  it('a fallback that fails before answering is skipped for the next one', async () => {
    h.upstream.enqueue({ kind: 'error', status: 500 }, { kind: 'text', text: 'Gemini after all.' });
    const r = await h.client.responses.create({ model: 'groq-fb', input: 'hi' });
    assert.equal(r.output_text, 'Gemini after all.');
    assert.deepEqual(paths(), ['/groq/openai/v1/chat/completions', '/google/v1beta/models/gemini-2.5-flash:generateContent']);
  });
});

describe('client disconnects', () => {
  it('stop the retry loop: no further attempts after the client leaves', async () => {
    h.upstream.enqueue({ kind: 'hang' }, { kind: 'hang' }, { kind: 'hang' });
    // A connection of its own (no pooled keep-alive socket shared with the SDK client), cut by the client.
    const req = request(`${h.url}/v1/responses`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } });
    req.on('error', () => {});
    req.end(JSON.stringify({ model: 'claude', input: 'hi', stream: true }));
    while (h.upstream.requests.length < 1) await new Promise((r) => setTimeout(r, 5));
    req.destroy();
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(h.upstream.requests.length, 1, 'no retry after the client went away');
    assert.equal(h.upstream.requests[0].aborted, true);
  });
});
