// The gateway on Redis, end to end through the official `openai` SDK: history kept across turns,
// across two gateway instances on one Redis, and in a conversation; a Redis outage met with a
// clear 503 and a not-ready /readyz, then recovery without restarting the gateway.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import OpenAI from 'openai';
import { type Harness, startHarness, upstreamTexts as upstreamTextsOf } from '../helpers/harness.ts';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.ts';
import { assertValidError } from '../helpers/spec.ts';

const PASSWORD = 's3cret/with:odd@chars';
let server: RedisServer;
let h: Harness;

before(async () => {
  server = await startRedisServer({ password: PASSWORD });
  h = await startHarness({
    store: { type: 'redis', connection_string: server.url, ttl_seconds: 3600, key_prefix: 'e2e:' },
  });
});

after(async () => {
  await h?.close();
  await server?.stop();
});

beforeEach(() => {
  h.upstream.reset();
});

/** The texts of the messages the upstream received in its last request. */
function upstreamTexts(harness: Harness = h): string[] {
  return upstreamTextsOf(harness.upstream);
}

describe('gateway on Redis', () => {
  it('rebuilds the history from Redis, on this instance and on a second one', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'Hi Ada.' }, { kind: 'text', text: 'You like tea.' });
    const r1 = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'My name is Ada.' });
    const r2 = await h.client.responses.create({
      model: 'gpt-4o-mini',
      input: 'I like tea.',
      previous_response_id: r1.id,
    });
    assert.deepEqual(upstreamTexts(), ['My name is Ada.', 'Hi Ada.', 'I like tea.']);

    const other = await startHarness({ store: h.gateway.config.state_storage });
    try {
      other.upstream.enqueue({ kind: 'text', text: 'Ada, who likes tea.' });
      const r3 = await other.client.responses.create({
        model: 'gpt-4o-mini',
        input: 'Who am I?',
        previous_response_id: r2.id,
      });
      assert.equal(r3.output_text, 'Ada, who likes tea.');
      assert.equal(upstreamTexts(other).length, 5, 'the whole history reached the other instance');
      assert.equal((await h.client.responses.retrieve(r3.id)).output_text, 'Ada, who likes tea.');
      // Deleted on one instance, it cannot be continued on the other.
      await h.client.responses.delete(r3.id);
      const err = await other.client.responses
        .create({ model: 'gpt-4o-mini', input: 'again', previous_response_id: r3.id })
        .catch((e: unknown) => e);
      assert.ok(err instanceof OpenAI.BadRequestError);
      assert.equal(err.code, 'previous_response_not_found');
    } finally {
      await other.close();
    }
  });

  it('keeps a conversation across instances', async () => {
    const conversation = await h.client.conversations.create({ metadata: { topic: 'tea' } });
    h.upstream.enqueue({ kind: 'text', text: 'Noted: green tea.' });
    await h.client.responses.create({
      model: 'gpt-4o-mini',
      input: 'I like green tea.',
      conversation: conversation.id,
    });
    const other = await startHarness({ store: h.gateway.config.state_storage });
    try {
      other.upstream.enqueue({ kind: 'text', text: 'Green tea.' });
      const r = await other.client.responses.create({
        model: 'gpt-4o-mini',
        input: 'Which tea?',
        conversation: conversation.id,
      });
      assert.equal(r.output_text, 'Green tea.');
      assert.deepEqual(upstreamTexts(other), ['I like green tea.', 'Noted: green tea.', 'Which tea?']);
      const items = await h.client.conversations.items.list(conversation.id, { order: 'asc' });
      assert.equal(items.data.length, 4);
    } finally {
      await other.close();
    }
  });

  it('answers 503 state_storage_unavailable while Redis is down, and recovers without a restart', async () => {
    const r1 = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'Remember 42.' });
    assert.equal((await fetch(`${h.url}/readyz`)).status, 200);
    const before = h.upstream.requests.length;

    await server.suspend();
    try {
      const ready = await fetch(`${h.url}/readyz`);
      assert.equal(ready.status, 503);
      const readyBody = (await ready.json()) as { status: string; error: { code: string; message: string } };
      assert.equal(readyBody.status, 'not_ready');
      assert.equal(readyBody.error.code, 'state_storage_unavailable');
      assert.match(readyBody.error.message, /Cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0/);
      for (const secret of [PASSWORD, encodeURIComponent(PASSWORD)]) {
        assert.ok(!JSON.stringify(readyBody).includes(secret));
      }

      const res = await h.post('/v1/responses', {
        model: 'gpt-4o-mini',
        input: 'What number?',
        previous_response_id: r1.id,
      });
      assert.equal(res.status, 503);
      const body = (await res.json()) as { error: { type: string; code: string } };
      assertValidError(body);
      assert.equal(body.error.type, 'server_error');
      assert.equal(body.error.code, 'state_storage_unavailable');
      assert.equal(h.upstream.requests.length, before, 'nothing went upstream without its history');
    } finally {
      await server.resume();
    }

    // ioredis reconnects with backoff (at most 5 s between attempts).
    const deadline = Date.now() + 15_000;
    while ((await fetch(`${h.url}/readyz`)).status !== 200) {
      assert.ok(Date.now() < deadline, 'ready again within 15 s');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    h.upstream.enqueue({ kind: 'text', text: '42.' });
    const r2 = await h.client.responses.create({
      model: 'gpt-4o-mini',
      input: 'What number?',
      previous_response_id: r1.id,
    });
    assert.equal(r2.output_text, '42.');
    assert.equal(upstreamTexts()[0], 'Remember 42.');
  });
});
