// The gateway on PostgreSQL, end to end through the official `openai` SDK: history kept across
// turns and across two gateway instances on one database, and a database outage met with a clear
// 503 and a not-ready /readyz, then recovery without restarting the gateway.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import OpenAI from 'openai';
import { type Harness, startHarness, upstreamTexts as upstreamTextsOf } from '../helpers/harness.ts';
import { type PostgresServer, startPostgres } from '../helpers/postgres-server.ts';
import { assertValidError } from '../helpers/spec.ts';

let server: PostgresServer;
let h: Harness;

before(async () => {
  server = await startPostgres();
  const db = await server.createDatabase('e2e');
  h = await startHarness({
    store: {
      type: 'postgres',
      connection_string: server.url({ database: db }),
      pool_size: 4,
      ttl_seconds: null,
    },
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

describe('gateway on PostgreSQL', () => {
  it('rebuilds the history from the database, on this instance and on a second one', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'Hi Ada.' }, { kind: 'text', text: 'You like tea.' });
    const r1 = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'My name is Ada.' });
    const r2 = await h.client.responses.create({
      model: 'gpt-4o-mini',
      input: 'I like tea.',
      previous_response_id: r1.id,
    });
    assert.deepEqual(upstreamTexts(), ['My name is Ada.', 'Hi Ada.', 'I like tea.']);

    // Another gateway process would do the same: a second instance on the same database.
    const other = await startHarness({ store: h.gateway.config.state_storage });
    try {
      other.upstream.enqueue({ kind: 'text', text: 'Ada, who likes tea.' });
      const r3 = await other.client.responses.create({
        model: 'gpt-4o-mini',
        input: 'Who am I?',
        previous_response_id: r2.id,
      });
      assert.equal(r3.output_text, 'Ada, who likes tea.');
      const sent = other.upstream.lastRequest()?.body as { messages: { content: unknown }[] };
      assert.equal(sent.messages.length, 5, 'the whole history reached the other instance');
      assert.equal((await h.client.responses.retrieve(r3.id)).output_text, 'Ada, who likes tea.');
    } finally {
      await other.close();
    }
  });

  it('answers 503 state_storage_unavailable while the database is down, and recovers without a restart', async () => {
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
      assert.match(
        readyBody.error.message,
        /Cannot connect to PostgreSQL at 127\.0\.0\.1:\d+: connection refused/,
      );
      assert.ok(!JSON.stringify(readyBody).includes(encodeURIComponent(server.password)));

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

    assert.equal((await fetch(`${h.url}/readyz`)).status, 200);
    h.upstream.enqueue({ kind: 'text', text: '42.' });
    const r2 = await h.client.responses.create({
      model: 'gpt-4o-mini',
      input: 'What number?',
      previous_response_id: r1.id,
    });
    assert.equal(r2.output_text, '42.');
    assert.equal(upstreamTexts()[0], 'Remember 42.');
  });

  it('reports an unknown previous_response_id as 400, as on every store', async () => {
    const err = await h.client.responses
      .create({ model: 'gpt-4o-mini', input: 'hi', previous_response_id: 'resp_doesnotexist' })
      .catch((e: unknown) => e);
    assert.ok(err instanceof OpenAI.BadRequestError);
    assert.equal(err.code, 'previous_response_not_found');
  });
});
