// The `auth`, `telemetry` and extra `limits` sections of parley.yaml: keys given as $VAR are
// hashed on the way in (the plaintext is nowhere in the config), sha256 keys are taken as they
// are, every mistake is named by path without repeating a key.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/types.ts';

const KEY_A = 'parley-test-key-a-0123456789abcdef';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function problems(yaml: string, env: Record<string, string> = {}): string[] {
  try {
    parseConfig(yaml, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems.map((p) => `${p.path}: ${p.message}`);
  }
  assert.fail('expected a ConfigError');
}

describe('config: auth', () => {
  it('is absent by default (loopback only), and `auth: none` is an explicit acknowledgement', () => {
    assert.equal(parseConfig('', {}).auth, undefined);
    assert.equal(parseConfig('auth:\n', {}).auth, undefined);
    assert.deepEqual(parseConfig('auth: none', {}).auth, { mode: 'none' });
  });

  it('hashes `key: $VAR` and keeps only the digest; takes `sha256:` as it is', () => {
    const config = parseConfig(
      [
        'auth:',
        '  api_keys:',
        '    - key: $KEY_A',
        '      tenant: team-a',
        '      models: [gpt-4o-mini]',
        '      requests_per_minute: 60',
        '      tokens_per_minute: "1000"',
        `    - sha256: ${sha('another-key-0123456789').toUpperCase()}`,
        '      tenant: team-b',
        '      name: ci-bot',
      ].join('\n'),
      { KEY_A },
    );
    assert.deepEqual(config.auth, {
      mode: 'api_keys',
      api_keys: [
        { sha256: sha(KEY_A), tenant: 'team-a', name: 'team-a#0', models: ['gpt-4o-mini'], requests_per_minute: 60, tokens_per_minute: 1000 },
        { sha256: sha('another-key-0123456789'), tenant: 'team-b', name: 'ci-bot', models: null, requests_per_minute: null, tokens_per_minute: null },
      ],
    });
    assert.ok(!JSON.stringify(config).includes(KEY_A), 'the plaintext key is nowhere in the config');
  });

  it('names every mistake by path, never repeating a key', () => {
    const found = problems(
      [
        'auth:',
        '  api_keys:',
        '    - key: short-secret', // too short
        '      tenant: "a b"',
        '      colour: red',
        '    - sha256: not-hex',
        '    - key: $KEY_A',
        '      sha256: ' + sha('x'),
        '      tenant: t',
        '    - key: $KEY_A',
        '      tenant: t',
        '    - key: $KEY_A',
        '      tenant: t2',
        '      requests_per_minute: 0',
        '      models: []',
      ].join('\n'),
      { KEY_A },
    );
    const text = found.join('\n');
    assert.match(text, /auth\.api_keys\[0\]\.key: line 3: must be at least 16 characters/);
    assert.match(text, /auth\.api_keys\[0\]\.tenant: line 4: must be 1-128 letters/);
    assert.match(text, /auth\.api_keys\[0\]\.colour: line 5: unknown key/);
    assert.match(text, /auth\.api_keys\[1\]\.sha256: .*must be 64 hex digits/);
    assert.match(text, /auth\.api_keys\[1\]\.tenant: .*is required/);
    assert.match(text, /auth\.api_keys\[2\]: .*exactly one of `key`/);
    assert.match(text, /auth\.api_keys\[4\]: .*same key as auth\.api_keys\[3\]/);
    assert.match(text, /auth\.api_keys\[4\]\.requests_per_minute: .*at least 1/);
    assert.match(text, /auth\.api_keys\[4\]\.models: .*at least one model/);
    assert.ok(!text.includes('short-secret') && !text.includes(KEY_A), 'no key in any message');
  });

  it('rejects other shapes with a hint', () => {
    assert.deepEqual(problems('auth: off'), ['auth: line 1: must be `none` (no authentication, acknowledged) or a mapping with `api_keys`']);
    assert.match(problems('auth: { api_keys: [] }')[0], /auth\.api_keys: .*at least one key/);
    assert.match(problems('auth: { keys: [] }').join('\n'), /auth\.keys: .*unknown key/);
  });
});

describe('config: telemetry and limits', () => {
  it('reads telemetry and the extra limits, keeping absent ones absent', () => {
    const config = parseConfig(
      [
        'telemetry:',
        '  metrics: authenticated',
        '  otlp_endpoint: http://127.0.0.1:4318/v1/traces',
        '  otlp_headers: { x-honeycomb-team: $TEAM }',
        '  access_log: false',
        'limits:',
        '  max_input_items: 50',
        '  max_json_depth: 20',
        '  max_concurrent_streams: 3',
        '  stream_idle_timeout: 2m',
        '  stream_heartbeat: 5s',
        '  max_stream_buffer: 512kb',
        '  shutdown_timeout: 10s',
      ].join('\n'),
      { TEAM: 'team-secret' },
    );
    assert.deepEqual(config.telemetry, {
      metrics: 'authenticated',
      otlp_endpoint: 'http://127.0.0.1:4318/v1/traces',
      otlp_headers: { 'x-honeycomb-team': 'team-secret' },
      access_log: false,
    });
    assert.deepEqual(config.limits, {
      max_body_bytes: 10 * 1024 * 1024,
      max_input_items: 50,
      max_json_depth: 20,
      max_concurrent_streams: 3,
      stream_idle_timeout_ms: 120_000,
      stream_heartbeat_ms: 5000,
      max_stream_buffer_bytes: 512 * 1024,
      shutdown_timeout_ms: 10_000,
    });
    assert.deepEqual(parseConfig('limits: {}', {}).limits, { max_body_bytes: 10 * 1024 * 1024 });
  });

  it('names telemetry mistakes with did-you-mean', () => {
    const text = problems('telemetry: { metric: public, otlp_endpoint: ftp://x }').join('\n');
    assert.match(text, /telemetry\.metric: .*did you mean "metrics"/);
    assert.match(text, /telemetry\.otlp_endpoint: .*http:\/\/ or https:\/\//);
    assert.match(problems('telemetry: { metrics: open }')[0], /telemetry\.metrics: .*must be one of: public, authenticated, off/);
  });
});
