// Limits end to end: body size (413), items per request and JSON nesting (400), per-key requests
// and tokens per minute (429 rate_limit_exceeded with retry-after; a token estimate corrected by
// the usage the upstream reports), concurrent streams (503 too_many_streams), and slow clients:
// a client that stops reading holds the upstream back (SSE backpressure) instead of filling the
// gateway's memory, and is cut off after the idle stream timeout.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { ParleyConfig } from '../../src/config/types.ts';
import { type Harness, provider, readSse, startHarness } from '../helpers/harness.ts';
import { assertValidError } from '../helpers/spec.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const RPM_KEY = 'limits-rpm-key-0123456789';
const TPM_KEY = 'limits-tpm-key-0123456789';
const FREE_KEY = 'limits-free-key-0123456789';

function keys(): ParleyConfig['auth'] {
  return {
    mode: 'api_keys',
    api_keys: [
      { sha256: sha(RPM_KEY), tenant: 'rpm', name: 'rpm', models: null, requests_per_minute: 3, tokens_per_minute: null },
      { sha256: sha(TPM_KEY), tenant: 'tpm', name: 'tpm', models: null, requests_per_minute: null, tokens_per_minute: 1000 },
      { sha256: sha(FREE_KEY), tenant: 'free', name: 'free', models: null, requests_per_minute: null, tokens_per_minute: null },
    ],
  };
}

describe('request limits', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ store: 'memory', maxBodyBytes: 64 * 1024, config: { limits: { max_body_bytes: 64 * 1024, max_input_items: 3, max_json_depth: 32 } } });
  });
  after(() => h.close());

  it('answers an oversized body 413 request_too_large', async () => {
    const res = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'x'.repeat(100 * 1024) });
    assert.equal(res.status, 413);
    const body = (await res.json()) as { error: { code: string } };
    assertValidError(body);
    assert.equal(body.error.code, 'request_too_large');
  });

  it('answers too many items 400 too_many_items, on every endpoint that takes items', async () => {
    const four = Array.from({ length: 4 }, (_, i) => ({ type: 'message', role: 'user', content: `m${i}` }));
    const conv = (await (await h.post('/v1/conversations', {})).json()) as { id: string };
    const cases: [string, unknown, string][] = [
      ['/v1/responses', { model: 'gpt-4o-mini', input: four }, 'input'],
      ['/v1/responses/input_tokens', { model: 'gpt-4o-mini', input: four }, 'input'],
      ['/v1/conversations', { items: four }, 'items'],
      [`/v1/conversations/${conv.id}/items`, { items: four }, 'items'],
      ['/v1/chat/completions', { model: 'gpt-4o-mini', messages: four.map((m) => ({ role: 'user', content: m.content })) }, 'messages'],
    ];
    for (const [path, body, param] of cases) {
      const res = await h.post(path, body);
      assert.equal(res.status, 400, path);
      const json = (await res.json()) as { error: { code: string; param: string } };
      assertValidError(json);
      assert.equal(json.error.code, 'too_many_items', path);
      assert.equal(json.error.param, param, path);
    }
    assert.equal((await h.post('/v1/responses', { model: 'gpt-4o-mini', input: four.slice(0, 3) })).status, 200);
    assert.equal(h.upstream.requests.length, 1, 'only the request within the limit went upstream');
  });

  it('answers JSON nested deeper than the limit 400 nesting_too_deep', async () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 40; i++) deep = { a: deep };
    const res = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'x', metadata: deep });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'nesting_too_deep');
  });
});

describe('per-key rate limits', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ store: 'memory', config: { auth: keys() } });
  });
  after(() => h.close());

  const client = (apiKey: string) => new OpenAI({ baseURL: `${h.url}/v1`, apiKey, maxRetries: 0 });

  it('refuses requests beyond requests_per_minute with 429 rate_limit_exceeded and retry-after', async () => {
    const rpm = client(RPM_KEY);
    for (let i = 0; i < 3; i++) await rpm.models.list();
    const res = await fetch(`${h.url}/v1/models`, { headers: { authorization: `Bearer ${RPM_KEY}` } });
    assert.equal(res.status, 429);
    const retryAfter = Number(res.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 20, `retry-after ${retryAfter}`);
    assert.ok(Number(res.headers.get('retry-after-ms')) > 0);
    const body = (await res.json()) as { error: { code: string; type: string; message: string } };
    assertValidError(body);
    assert.equal(body.error.code, 'rate_limit_exceeded');
    assert.equal(body.error.type, 'rate_limit_error');
    assert.match(body.error.message, /requests per min \(RPM\): Limit 3/);
    // The official SDK sees a RateLimitError; other keys are not affected.
    await assert.rejects(rpm.responses.create({ model: 'gpt-4o-mini', input: 'x' }), (e: unknown) => e instanceof OpenAI.RateLimitError);
    for (let i = 0; i < 10; i++) await client(FREE_KEY).models.list();
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    assert.match(metrics, /parley_rate_limited_total\{tenant="rpm",limit="requests"\} [2-9]/);
  });

  it('admits tokens by an estimate and charges what the upstream reports, so a long history limits the next turn', async () => {
    const tpm = client(TPM_KEY);
    // The upstream says the turn used 5,000 tokens, far beyond the estimate from the small body.
    h.upstream.enqueue({ kind: 'text', text: 'ok', usage: { prompt_tokens: 4990, completion_tokens: 10 } });
    await tpm.responses.create({ model: 'gpt-4o-mini', input: 'hello' });
    const before = h.upstream.requests.length;
    const res = await fetch(`${h.url}/v1/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TPM_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', input: 'again' }),
    });
    assert.equal(res.status, 429);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'rate_limit_exceeded');
    assert.match(body.error.message, /tokens per min \(TPM\): Limit 1000/);
    // About 4,000 tokens of debt at 1,000 a minute: roughly four minutes.
    const retryAfter = Number(res.headers.get('retry-after'));
    assert.ok(retryAfter > 200 && retryAfter < 260, `retry-after ${retryAfter}`);
    assert.equal(h.upstream.requests.length, before, 'refused before the upstream');
    // Token limits apply to model calls only: reads go on.
    assert.equal((await tpm.models.list()).data.length, 1);
  });
});

describe('concurrent streams', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ store: 'memory', config: { limits: { max_body_bytes: 1024 * 1024, max_concurrent_streams: 1 } } });
  });
  after(() => h.close());

  it('answers a stream beyond max_concurrent_streams 503 too_many_streams, and admits it again once one ends', async () => {
    h.upstream.enqueue({ kind: 'slow', text: 'one two three four', chunkDelayMs: 100 });
    const first = fetch(`${h.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', input: 'x', stream: true }),
    });
    await sleep(150);
    const second = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'y', stream: true });
    assert.equal(second.status, 503);
    assert.equal(second.headers.get('retry-after'), '1');
    const body = (await second.json()) as { error: { code: string; type: string } };
    assertValidError(body);
    assert.equal(body.error.code, 'too_many_streams');
    assert.equal(body.error.type, 'server_error');
    // Non-streaming requests are not streams.
    assert.equal((await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'z' })).status, 200);
    const { done } = await readSse(await first);
    assert.ok(done);
    await sleep(20);
    const third = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'w', stream: true });
    assert.equal(third.status, 200);
    assert.ok((await readSse(third)).done);
  });
});

/**
 * An OpenAI Chat Completions upstream that streams `totalBytes` of text as fast as its client
 * reads it (it waits for 'drain' itself), counting what it managed to write.
 */
async function startFloodUpstream(totalBytes: number): Promise<{ url: string; written: () => number; closed: Promise<void>; server: Server }> {
  let written = 0;
  let markClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    markClosed = resolve;
  });
  const server = createServer((req, res: ServerResponse) => {
    req.resume();
    req.on('end', async () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.on('close', markClosed);
      const base = { id: 'chatcmpl-flood', object: 'chat.completion.chunk', created: 0, model: 'gpt-4o-mini' };
      const line = (delta: object, finish: string | null = null) => `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      res.write(line({ role: 'assistant', content: '' }));
      const piece = line({ content: 'x'.repeat(16 * 1024) });
      while (written < totalBytes && !res.destroyed) {
        written += piece.length;
        if (!res.write(piece)) {
          // Both listeners go once either fires: one left per wait piles up on a long flood.
          await new Promise<void>((resolve) => {
            const done = () => {
              res.off('drain', done);
              res.off('close', done);
              resolve();
            };
            res.once('drain', done);
            res.once('close', done);
          });
        }
      }
      if (!res.destroyed) res.end(`${line({}, 'stop')}data: [DONE]\n\n`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, written: () => written, closed, server };
}

describe('slow clients', () => {
  // /v1/responses goes through the engine and its SSE writer; /v1/chat/completions to an upstream
  // that speaks Chat Completions relays the upstream's bytes (chat-completions.ts relay()).
  const paths = [
    { path: '/v1/responses', body: { model: 'gpt-4o-mini', input: 'flood me', stream: true } },
    { path: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'flood me' }], stream: true } },
  ];
  for (const { path, body: request } of paths) it(`${path}: holds the upstream back while the client does not read, keeps the gateway’s buffer bounded, and cuts the client off when idle`, async () => {
    const TOTAL = 256 * 1024 * 1024;
    const flood = await startFloodUpstream(TOTAL);
    const h = await startHarness({
      store: 'memory',
      providers: () => [provider('openai/gpt-4o-mini', { base_url: flood.url, default: true })],
      config: { limits: { max_body_bytes: 1024 * 1024, stream_idle_timeout_ms: 3000 } },
    });
    try {
      const { port } = new URL(h.url);
      const socket = connect(Number(port), '127.0.0.1');
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      const body = JSON.stringify(request);
      socket.write(`POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      // Read the first bytes to know the stream started, then stop reading altogether.
      await new Promise<void>((resolve) => socket.once('data', () => resolve()));
      socket.pause();
      let socketClosed = false;
      socket.on('close', () => {
        socketClosed = true;
      });

      const open = h.gateway.ops.sse.open;
      let maxBuffered = 0;
      const samples: number[] = [];
      for (let i = 0; i < 20; i++) {
        await sleep(100);
        maxBuffered = Math.max(maxBuffered, open.bufferedBytes());
        samples.push(flood.written());
      }
      // Everything the gateway holds for this client: one chunk of events beyond the socket's
      // high-water mark, not the upstream's 256 MB.
      assert.ok(maxBuffered < 1024 * 1024, `gateway buffered ${maxBuffered} bytes`);
      assert.ok(flood.written() < TOTAL / 4, `the upstream wrote ${flood.written()} of ${TOTAL} bytes`);
      assert.equal(samples[samples.length - 1], samples[samples.length - 6], 'the upstream is stalled, not just slow');
      const metrics = await (await fetch(`${h.url}/metrics`)).text();
      assert.match(metrics, /parley_active_streams 1/);

      // No progress for stream_idle_timeout (3 s): the gateway closes the connection and the
      // upstream request with it.
      await Promise.race([flood.closed, sleep(5000)]);
      assert.ok(flood.written() < TOTAL / 4);
      await sleep(200);
      socket.destroy();
      await flood.closed;
      assert.equal(open.size, 0, 'no stream left open');
      assert.ok(socketClosed || socket.destroyed);
    } finally {
      await h.close();
      flood.server.closeAllConnections();
      await new Promise<void>((resolve) => flood.server.close(() => resolve()));
    }
  });
});

describe('stream heartbeats', () => {
  /**
   * An upstream that answers a first word, pauses between two events, then halfway through the
   * next one. (Before its first content the gateway has not started the response: failures there
   * are still HTTP errors, and fallbacks still possible.)
   */
  async function startHesitantUpstream(pauseMs: number): Promise<{ url: string; server: Server }> {
    const base = { id: 'chatcmpl-slow', object: 'chat.completion.chunk', created: 0, model: 'gpt-4o-mini' };
    const line = (delta: object, finish: string | null = null) =>
      `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', async () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(line({ role: 'assistant', content: '' }) + line({ content: 'hel' }));
        await sleep(pauseMs); // between events
        const event = line({ content: 'lo' });
        res.write(event.slice(0, 40));
        await sleep(pauseMs); // inside an event
        res.end(`${event.slice(40)}${line({}, 'stop')}data: [DONE]\n\n`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, server };
  }

  it('keep idle streams alive at limits.stream_heartbeat, never inside an event the upstream is still sending', async () => {
    const upstream = await startHesitantUpstream(200);
    const h = await startHarness({
      store: 'memory',
      providers: () => [provider('openai/gpt-4o-mini', { base_url: upstream.url, default: true })],
      config: { limits: { max_body_bytes: 1024 * 1024, stream_heartbeat_ms: 25 } },
    });
    try {
      const cases = [
        // The byte relay to an upstream that speaks Chat Completions: it must not cut into an event.
        { path: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true } },
        // The engine's SSE writer, which writes whole events only.
        { path: '/v1/responses', body: { model: 'gpt-4o-mini', input: 'hi', stream: true } },
      ];
      for (const { path, body } of cases) {
        const res = await h.post(path, body);
        assert.equal(res.status, 200, path);
        const text = await res.text();
        const beats = [...text.matchAll(/: keep-alive\n\n/g)].map((m) => m.index);
        assert.ok(beats.length >= 2, `${path}: ${beats.length} heartbeats in 400 ms at 25 ms`);
        for (const at of beats) assert.ok(at === 0 || text.slice(at - 2, at) === '\n\n', `${path}: a heartbeat inside an event at ${at}`);
        const events = text.replaceAll(': keep-alive\n\n', '').split('\n\n').filter((e) => e !== '');
        for (const event of events) {
          const data = event.split('\n').find((l) => l.startsWith('data: '))?.slice(6);
          if (data !== undefined && data !== '[DONE]') JSON.parse(data); // every event arrived whole
        }
        assert.ok(text.includes('"hel"') && text.includes('"lo"'), path);
      }
    } finally {
      await h.close();
      upstream.server.closeAllConnections();
      await new Promise<void>((resolve) => upstream.server.close(() => resolve()));
    }
  });
});
