// The arithmetic of the limits, with a fake clock: token buckets per key (requests and tokens per
// minute, corrected by actual usage), JSON nesting and item counts, stream slots.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ApiKeyConfig } from '../../src/config/types.ts';
import { Bucket, checkBody, estimateTokens, nestedDeeperThan, RateLimiter, StreamSlots } from '../../src/http/limits.ts';
import type { ApiError } from '../../src/protocol/errors.ts';

function key(extra: Partial<ApiKeyConfig> = {}): ApiKeyConfig {
  return { sha256: 'a'.repeat(64), tenant: 't', name: 't#0', models: null, requests_per_minute: null, tokens_per_minute: null, ...extra };
}

describe('Bucket', () => {
  it('holds a minute of capacity and refills continuously', () => {
    const bucket = new Bucket(60, 0);
    for (let i = 0; i < 60; i++) assert.equal(bucket.take(1, 0), 0);
    assert.equal(bucket.take(1, 0), 1000, 'one request a second: the next in 1 s');
    assert.equal(bucket.take(1, 999), 1);
    assert.equal(bucket.take(1, 1000), 0);
    assert.equal(bucket.level(10 * 60_000), 60, 'never more than a minute’s worth');
  });

  it('admits a request larger than the whole capacity once the bucket is full, leaving a debt', () => {
    const bucket = new Bucket(100, 0);
    assert.equal(bucket.take(250, 0), 0);
    assert.equal(bucket.level(0), -150);
    assert.equal(bucket.take(1, 0), Math.ceil((151 / 100) * 60_000));
  });
});

describe('RateLimiter', () => {
  it('limits requests per minute per key with a retry-after', () => {
    let now = 0;
    const k = key({ requests_per_minute: 2 });
    const limiter = new RateLimiter([k], () => now);
    assert.equal(limiter.admitRequest(k).ok, true);
    assert.equal(limiter.admitRequest(k).ok, true);
    const refused = limiter.admitRequest(k);
    assert.equal(refused.ok, false);
    const error = (refused as { error: ApiError }).error;
    assert.equal(error.status, 429);
    assert.equal(error.code, 'rate_limit_exceeded');
    assert.equal(error.headers['retry-after'], '30');
    assert.match(error.message, /requests per min \(RPM\): Limit 2/);
    now = 30_000;
    assert.equal(limiter.admitRequest(k).ok, true);
    // Keys without limits are never limited.
    const free = key({ sha256: 'b'.repeat(64) });
    for (let i = 0; i < 100; i++) assert.equal(limiter.admitRequest(free).ok, true);
  });

  it('admits tokens by estimate and corrects by what the upstream reported', () => {
    let now = 0;
    const k = key({ tokens_per_minute: 1000 });
    const limiter = new RateLimiter([k], () => now);
    assert.equal(limiter.admitTokens(k, 100).ok, true);
    // The turn actually used 1,500 tokens (its history was long): 1,400 more than estimated.
    limiter.correctTokens(k, 1400);
    const refused = limiter.admitTokens(k, 10);
    assert.equal(refused.ok, false);
    assert.equal((refused as { error: ApiError }).error.headers['retry-after'], '31'); // 510 tokens short at 1000/min
    now = 31_000;
    assert.equal(limiter.admitTokens(k, 10).ok, true);
    // An estimate that was too high is given back.
    assert.equal(limiter.admitTokens(k, 500).ok, false);
    limiter.correctTokens(k, -500);
    assert.equal(limiter.admitTokens(k, 500).ok, true);
  });

  it('estimates tokens from the body size and max_output_tokens', () => {
    assert.equal(estimateTokens(400, {}), 100);
    assert.equal(estimateTokens(400, { max_output_tokens: 50 }), 150);
    assert.equal(estimateTokens(0, null), 1);
  });
});

describe('request shape limits', () => {
  it('measures nesting iteratively (100,000 levels do not overflow the stack)', () => {
    let deep: unknown = [];
    for (let i = 0; i < 100_000; i++) deep = [deep];
    assert.equal(nestedDeeperThan(deep, 100), true);
    assert.equal(nestedDeeperThan({ a: [{ b: [1] }] }, 4), false);
    assert.equal(nestedDeeperThan({ a: [{ b: [1] }] }, 3), true);
    assert.equal(nestedDeeperThan('text', 0), false);
  });

  it('answers too deep and too many items with OpenAI-shaped 400s', () => {
    const limits = { max_json_depth: 5, max_input_items: 3 };
    assert.throws(() => checkBody({ a: [[[[[1]]]]] }, limits), (e: ApiError) => e.status === 400 && e.code === 'nesting_too_deep');
    assert.throws(
      () => checkBody({ input: [1, 2, 3, 4] }, limits),
      (e: ApiError) => e.status === 400 && e.code === 'too_many_items' && e.param === 'input',
    );
    assert.throws(() => checkBody({ items: [1, 2, 3, 4] }, limits), (e: ApiError) => e.param === 'items');
    assert.throws(() => checkBody({ messages: [1, 2, 3, 4] }, limits), (e: ApiError) => e.param === 'messages');
    checkBody({ input: [1, 2, 3] }, limits);
    checkBody('x', limits);
  });
});

describe('StreamSlots', () => {
  it('hands out at most max slots, each released once', () => {
    const slots = new StreamSlots(2);
    const a = slots.acquire();
    const b = slots.acquire();
    assert.ok(a && b);
    assert.equal(slots.acquire(), null);
    a();
    a();
    assert.equal(slots.active, 1);
    assert.ok(slots.acquire());
    assert.equal(slots.acquire(), null);
  });
});
