import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseByteSize, parseDuration } from '../../src/config/duration.ts';

describe('parseDuration', () => {
  it('reads single units', () => {
    assert.equal(parseDuration('30d'), 30 * 86_400);
    assert.equal(parseDuration('12h'), 12 * 3600);
    assert.equal(parseDuration('90m'), 90 * 60);
    assert.equal(parseDuration('45s'), 45);
    assert.equal(parseDuration('2w'), 14 * 86_400);
    assert.equal(parseDuration('7 days'), 7 * 86_400);
    assert.equal(parseDuration('1.5h'), 5400);
  });

  it('reads compound durations and plain seconds', () => {
    assert.equal(parseDuration('1h30m'), 5400);
    assert.equal(parseDuration('1d 12h'), 36 * 3600);
    assert.equal(parseDuration(3600), 3600);
    assert.equal(parseDuration('3600'), 3600);
    assert.equal(parseDuration(' 10M '), 600);
  });

  it('rejects garbage, zero and negatives', () => {
    for (const bad of ['', 'soon', '10x', 'd', '-5s', '0', '0s', '1h-', '5 constructor', 'h1']) {
      assert.equal(parseDuration(bad), null, bad);
    }
    assert.equal(parseDuration(0), null);
    assert.equal(parseDuration(-3), null);
    assert.equal(parseDuration(Number.NaN), null);
  });
});

describe('parseByteSize', () => {
  it('reads numbers and sizes in multiples of 1024', () => {
    assert.equal(parseByteSize(1000), 1000);
    assert.equal(parseByteSize('1000'), 1000);
    assert.equal(parseByteSize('512kb'), 512 * 1024);
    assert.equal(parseByteSize('10mb'), 10 * 1024 * 1024);
    assert.equal(parseByteSize('10 MiB'), 10 * 1024 * 1024);
    assert.equal(parseByteSize('1GB'), 1024 ** 3);
    assert.equal(parseByteSize('1.5k'), 1536);
  });

  it('rejects garbage and non-positive sizes', () => {
    for (const bad of ['', 'big', '10 tb', '-1mb', '0', 'mb', '1e6'])
      assert.equal(parseByteSize(bad), null, bad);
    assert.equal(parseByteSize(0), null);
    assert.equal(parseByteSize(1.5), null);
  });
});
