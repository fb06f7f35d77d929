// Secrets planted everywhere a gateway holds them — a provider key, a secret provider header, the
// Redis password, the gateway API key — and traffic that tempts each one out: an upstream that
// echoes the key in its error (before and during a stream), a store failure whose message carries
// the connection URL, the key in a query string. None may appear in the logs, the HTTP bodies,
// the stored responses, /v1/models or the /metrics labels.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type Harness, provider, readSse, startHarness } from '../helpers/harness.ts';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.ts';

const PROVIDER_KEY = 'sk-PLANTED-provider-key-1234';
const HEADER_SECRET = 'PLANTED-header-secret-5678';
const REDIS_PASSWORD = 'PLANTED-redis/pass:9@0';
const GATEWAY_KEY = 'pk-PLANTED-gateway-key-4321';
const SECRETS = [PROVIDER_KEY, HEADER_SECRET, REDIS_PASSWORD, encodeURIComponent(REDIS_PASSWORD), GATEWAY_KEY];

let redis: RedisServer;
let h: Harness;
const logs: string[] = [];
const seen: string[] = [];

before(async () => {
  redis = await startRedisServer({ password: REDIS_PASSWORD });
  const stream = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  h = await startHarness({
    store: { type: 'redis', connection_string: redis.url, ttl_seconds: null },
    providers: (url) => [provider('openai/gpt-4o-mini', { base_url: url, default: true, access_key: PROVIDER_KEY, headers: { 'x-api-key': HEADER_SECRET } })],
    config: {
      auth: {
        mode: 'api_keys',
        api_keys: [{ sha256: createHash('sha256').update(GATEWAY_KEY).digest('hex'), tenant: 't', name: 't', models: null, requests_per_minute: null, tokens_per_minute: null }],
      },
    },
    logger: { level: 'debug', stream },
  });
});

after(async () => {
  await h?.close();
  await redis?.stop();
});

async function call(method: string, path: string, body?: unknown): Promise<Response> {
  const res = await fetch(`${h.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${GATEWAY_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.clone().text();
  seen.push(text, JSON.stringify([...res.headers]));
  return res;
}

describe('secrets', () => {
  it('the upstream really received them (so there was something to leak)', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'fine' });
    const res = await call('POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'hello' });
    assert.equal(res.status, 200);
    const received = h.upstream.lastRequest();
    assert.equal(received?.headers.authorization, `Bearer ${PROVIDER_KEY}`);
    assert.equal(received?.headers['x-api-key'], HEADER_SECRET);
  });

  it('never lets them out, whatever the traffic', async () => {
    const echo = `Incorrect API key provided: ${PROVIDER_KEY} (header ${HEADER_SECRET}) at redis://:${REDIS_PASSWORD}@x`;
    // An upstream that echoes the key in its error, before the stream …
    h.upstream.enqueue({ kind: 'error', status: 401, body: { error: { message: echo, type: 'invalid_request_error', param: null, code: 'invalid_api_key' } } });
    assert.equal((await call('POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'x' })).status, 502);
    h.upstream.enqueue({ kind: 'error', status: 500, body: { error: { message: echo, type: 'server_error', param: null, code: null } } });
    assert.equal((await call('POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'x', stream: true })).status, 502);
    h.upstream.enqueue({ kind: 'error', status: 400, body: echo });
    assert.equal((await call('POST', '/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] })).status, 400);
    // … and in the middle of one (stored as the failed turn's error).
    h.upstream.enqueue({ kind: 'stream_error', text: 'partial answer', error: { error: { message: echo, type: 'server_error', param: null, code: null } } });
    const failed = await call('POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'x', stream: true });
    const { events } = await readSse(failed);
    const failedId = (events.find((e) => e.type === 'response.failed') as { response: { id: string } }).response.id;
    seen.push(await (await call('GET', `/v1/responses/${failedId}`)).text());
    // A store failure whose message carries the connection URL.
    const store = h.gateway.store as unknown as { getResponse: (id: string) => Promise<unknown> };
    const original = store.getResponse;
    store.getResponse = async () => {
      throw new Error(`cannot reach redis://:${REDIS_PASSWORD}@127.0.0.1:1/0 (auth ${PROVIDER_KEY})`);
    };
    try {
      assert.equal((await call('GET', `/v1/responses/${failedId}`)).status, 503);
    } finally {
      store.getResponse = original;
    }
    // The key in a query string, and in a wrong header.
    await call('GET', `/v1/models?api_key=${GATEWAY_KEY}`);
    await fetch(`${h.url}/v1/models`, { headers: { authorization: `Bearer ${GATEWAY_KEY}x` } });
    await fetch(`${h.url}/v1/models`, { headers: { 'x-api-key': `${PROVIDER_KEY}` } });
    // Everything a client or an operator can read.
    await call('GET', '/v1/models');
    await call('GET', '/readyz');
    await call('GET', '/metrics');
    const stored: string[] = [];
    for await (const record of h.gateway.store!.exportRecords({})) stored.push(JSON.stringify(record));
    await new Promise((resolve) => setTimeout(resolve, 50));

    const everything = { logs: logs.join(''), bodies: seen.join('\n'), stored: stored.join('\n') };
    assert.ok(everything.logs.includes('request completed'), 'logs were captured');
    assert.ok(everything.logs.includes('"level":50'), 'errors were logged');
    assert.ok(everything.stored.includes('[REDACTED]'), 'the failed turn stored the scrubbed message');
    assert.ok(everything.bodies.includes('[REDACTED]'), 'clients saw the scrubbed message');
    for (const [where, text] of Object.entries(everything)) {
      for (const secret of SECRETS) assert.ok(!text.includes(secret), `${secret} appears in ${where}`);
    }
  });
});
