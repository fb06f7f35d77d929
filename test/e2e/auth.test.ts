// Gateway API keys end to end: 401 (OpenAI-shaped, `invalid_api_key`) without a key or with a
// wrong one, `Authorization: Bearer` and `x-api-key` both accepted, a key restricted to models
// gets 403 `model_not_allowed` for others and sees only its models in /v1/models, /healthz and
// /readyz stay open, /metrics as configured; no auth section means loopback only.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { ParleyConfig } from '../../src/config/types.ts';
import { createGateway } from '../../src/gateway.ts';
import { type Harness, provider, startHarness } from '../helpers/harness.ts';
import { assertValidError } from '../helpers/spec.ts';

const KEY_A = 'pk-team-a-0123456789abcdef';
const KEY_B = 'pk-team-b-0123456789abcdef';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

const auth: ParleyConfig['auth'] = {
  mode: 'api_keys',
  api_keys: [
    { sha256: sha(KEY_A), tenant: 'team-a', name: 'a', models: null, requests_per_minute: null, tokens_per_minute: null },
    { sha256: sha(KEY_B), tenant: 'team-b', name: 'b', models: ['gpt-4o-mini'], requests_per_minute: null, tokens_per_minute: null },
  ],
};

let h: Harness;

before(async () => {
  h = await startHarness({
    store: 'memory',
    providers: (url) => [provider('openai/gpt-4o-mini', { base_url: url, default: true }), provider('openai/gpt-4o', { base_url: url, name: 'big' })],
    config: { auth, telemetry: { metrics: 'authenticated' } },
  });
});
after(() => h.close());

const client = (apiKey: string) => new OpenAI({ baseURL: `${h.url}/v1`, apiKey, maxRetries: 0 });

async function get(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${h.url}${path}`, { headers });
}

describe('gateway API keys', () => {
  it('answers a missing or wrong key with an OpenAI-shaped 401 invalid_api_key, before anything else', async () => {
    const attempts: Record<string, string>[] = [{}, { authorization: 'Bearer nope-nope-nope-nope' }, { authorization: `Basic ${KEY_A}` }, { 'x-api-key': 'wrong' }];
    for (const headers of attempts) {
      for (const path of ['/v1/models', '/v1/responses/resp_123', '/v1/no-such-route']) {
        const res = await get(path, headers);
        assert.equal(res.status, 401, `${path} ${JSON.stringify(headers)}`);
        const body = (await res.json()) as { error: { code: string; type: string } };
        assertValidError(body);
        assert.equal(body.error.code, 'invalid_api_key');
        assert.equal(body.error.type, 'invalid_request_error');
        assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
        assert.ok(!JSON.stringify(body).includes('nope-nope'), 'the presented key is never echoed');
      }
    }
    const res = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'hi' }, { authorization: 'Bearer wrong-key-0123456789' });
    assert.equal(res.status, 401);
    assert.equal(h.upstream.requests.length, 0, 'nothing reached the upstream');
    // The official SDK sees an AuthenticationError.
    await assert.rejects(client('wrong-key-0123456789').models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError);
  });

  it('accepts the key as a Bearer token or as x-api-key', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'hello a' });
    const r = await client(KEY_A).responses.create({ model: 'gpt-4o-mini', input: 'hi' });
    assert.equal(r.output_text, 'hello a');
    const viaHeader = await get(`/v1/responses/${r.id}`, { 'x-api-key': KEY_A });
    assert.equal(viaHeader.status, 200);
    const lower = await get(`/v1/responses/${r.id}`, { authorization: `bearer ${KEY_A}` });
    assert.equal(lower.status, 200);
  });

  it('refuses a restricted key the models it may not use (403 model_not_allowed) and lists only its own', async () => {
    const b = client(KEY_B);
    h.upstream.enqueue({ kind: 'text', text: 'fine' });
    assert.equal((await b.responses.create({ model: 'gpt-4o-mini', input: 'x' })).output_text, 'fine');
    const before = h.upstream.requests.length;
    for (const model of ['gpt-4o', 'big', 'openai/gpt-4o']) {
      const res = await h.post('/v1/responses', { model, input: 'x' }, { authorization: `Bearer ${KEY_B}` });
      assert.equal(res.status, 403, model);
      const body = (await res.json()) as { error: { code: string; param: string; message: string } };
      assertValidError(body);
      assert.equal(body.error.code, 'model_not_allowed');
      assert.equal(body.error.param, 'model');
      assert.match(body.error.message, /Models it may use: openai\/gpt-4o-mini\./);
      const chat = await h.post('/v1/chat/completions', { model, messages: [{ role: 'user', content: 'x' }] }, { authorization: `Bearer ${KEY_B}` });
      assert.equal(chat.status, 403);
      const tokens = await h.post('/v1/responses/input_tokens', { model, input: 'x' }, { authorization: `Bearer ${KEY_B}` });
      assert.equal(tokens.status, 403);
    }
    assert.equal(h.upstream.requests.length, before, 'refused before the upstream');
    await assert.rejects(b.responses.create({ model: 'gpt-4o', input: 'x' }), (e: unknown) => e instanceof OpenAI.PermissionDeniedError);
    assert.deepEqual((await b.models.list()).data.map((m) => m.id), ['openai/gpt-4o-mini']);
    assert.deepEqual((await client(KEY_A).models.list()).data.map((m) => m.id).sort(), ['big', 'openai/gpt-4o-mini']);
    // An unknown model is still the usual 400, for restricted keys too.
    const unknown = await h.post('/v1/responses', { model: 'no-such-model', input: 'x' }, { authorization: `Bearer ${KEY_B}` });
    assert.equal(unknown.status, 400);
  });

  it('keeps /healthz and /readyz open, and /metrics behind a key when configured so', async () => {
    assert.equal((await get('/healthz')).status, 200);
    assert.equal((await get('/readyz')).status, 200);
    assert.equal((await get('/metrics')).status, 401);
    const metrics = await get('/metrics', { authorization: `Bearer ${KEY_A}` });
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /parley_auth_failures_total\{reason="invalid"\} \d+/);
  });
});

describe('listening without auth', () => {
  const base = (extra: Partial<ParleyConfig>): ParleyConfig => ({
    listen: { host: '127.0.0.1', port: 0 },
    state_storage: null,
    model_providers: [],
    limits: { max_body_bytes: 1024 },
    ...extra,
  });

  it('refuses a non-loopback address without an auth section, naming the fix', async () => {
    const gateway = await createGateway(base({}));
    try {
      await assert.rejects(gateway.listen({ host: '0.0.0.0', port: 0 }), /refusing to listen on 0\.0\.0\.0 without authentication.*auth: none/s);
      assert.equal(gateway.app.server.listening, false);
      // Loopback is fine, and unauthenticated.
      const url = await gateway.listen({ host: '127.0.0.1', port: 0 });
      assert.equal((await fetch(`${url}/v1/models`)).status, 200);
    } finally {
      await gateway.close();
    }
  });

  it('serves any address with `auth: none`, unauthenticated', async () => {
    const gateway = await createGateway(base({ auth: { mode: 'none' } }));
    try {
      const url = await gateway.listen({ host: '0.0.0.0', port: 0 });
      const port = new URL(url).port;
      assert.equal((await fetch(`http://127.0.0.1:${port}/v1/models`)).status, 200);
    } finally {
      await gateway.close();
    }
  });

  it('refuses keys restricted to models nobody configured', async () => {
    await assert.rejects(
      createGateway(
        base({
          auth: { mode: 'api_keys', api_keys: [{ sha256: sha(KEY_A), tenant: 'a', name: 'a', models: ['gpt-9'], requests_per_minute: null, tokens_per_minute: null }] },
        }),
      ),
      /auth\.api_keys\[0\]\.models\[0\]: names no configured model/,
    );
  });
});
