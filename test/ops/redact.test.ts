// The secret scrubber: configured secrets in every form (plain, URL-encoded, JSON-escaped),
// credentials in URLs, bearer tokens and key parameters; errors turned into safe objects.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ParleyConfig } from '../../src/config/types.ts';
import { REDACTED, SecretScrubber, secretsOf } from '../../src/ops/redact.ts';
import { provider } from '../helpers/harness.ts';

describe('SecretScrubber', () => {
  const scrubber = new SecretScrubber(['sk-provider-SECRET-1', 'p@ss:w/rd%#?&', 'tiny']);

  it('masks configured secrets, also URL-encoded and JSON-escaped', () => {
    assert.equal(scrubber.scrub('key sk-provider-SECRET-1 leaked'), `key ${REDACTED} leaked`);
    assert.equal(scrubber.scrub(`pw ${encodeURIComponent('p@ss:w/rd%#?&')}`), `pw ${REDACTED}`);
    assert.equal(scrubber.scrub('tiny words stay'), 'tiny words stay', 'strings shorter than 6 are not treated as secrets');
  });

  it('masks URL credentials, bearer tokens and key parameters it was never told about', () => {
    assert.equal(scrubber.scrub('postgres://app:hunter22@db:5432/x'), `postgres://app:${REDACTED}@db:5432/x`);
    assert.equal(scrubber.scrub('Authorization: Bearer abcdef123456'), `Authorization: Bearer ${REDACTED}`);
    assert.equal(scrubber.scrub('GET /v1/models?api_key=zzz999&x=1'), `GET /v1/models?api_key=${REDACTED}&x=1`);
  });

  it('turns errors into plain objects without headers or prompts, scrubbed, causes included', () => {
    const error = Object.assign(new Error('upstream said sk-provider-SECRET-1 is wrong'), {
      requestBodyValues: { messages: [{ content: 'private prompt' }] },
      responseHeaders: { 'set-cookie': 'x' },
      responseBody: '{"error":"bad key sk-provider-SECRET-1"}',
      statusCode: 401,
      apiKey: 'whatever-it-is',
      cause: new Error('at https://u:pw123456@host/'),
    });
    const out = JSON.stringify(scrubber.scrubDeep({ err: error }));
    assert.ok(!out.includes('sk-provider-SECRET-1'));
    assert.ok(!out.includes('private prompt'));
    assert.ok(!out.includes('set-cookie'));
    assert.ok(!out.includes('whatever-it-is'));
    assert.ok(!out.includes('pw123456'));
    assert.match(out, /"statusCode":401/);
    assert.match(out, /"type":"Error"/);
  });

  it('scrubs errors in place (the message a client or the store will see)', () => {
    const error = Object.assign(new Error('bad sk-provider-SECRET-1'), { data: { error: { message: 'key sk-provider-SECRET-1' } } });
    scrubber.scrubError(error);
    assert.equal(error.message, `bad ${REDACTED}`);
    assert.deepEqual(error.data, { error: { message: `key ${REDACTED}` } });
  });
});

describe('secretsOf', () => {
  it('collects provider keys, AWS secrets, secret headers, database and Redis passwords, OTLP headers', () => {
    const config: ParleyConfig = {
      listen: { host: '127.0.0.1', port: 0 },
      state_storage: { type: 'postgres', ttl_seconds: null, pool_size: 1, connection_string: 'postgresql://u:db%40pass-123@h/db' },
      model_providers: [
        provider('openai/gpt-4o', { access_key: 'sk-open-123456', headers: { 'x-api-key': 'hdr-secret-1', 'x-trace': 'plain' } }),
        provider('bedrock/claude', { aws: { access_key_id: 'AKIA', secret_access_key: 'aws-secret-123', session_token: 'aws-session-123' } }),
      ],
      limits: { max_body_bytes: 1 },
      telemetry: { otlp_headers: { authorization: 'Bearer otlp-token-123' } },
    };
    const secrets = secretsOf(config);
    for (const s of ['sk-open-123456', 'hdr-secret-1', 'aws-secret-123', 'aws-session-123', 'db@pass-123', 'otlp-token-123']) {
      assert.ok(secrets.includes(s), `${s} collected`);
    }
    assert.ok(!secrets.includes('plain'));
  });
});
