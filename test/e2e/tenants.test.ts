// Two tenants on one gateway, on every store backend (memory, SQLite, PostgreSQL, Redis — the
// last two as throwaway servers): everything tenant B does with tenant A's ids answers exactly as
// it does for ids that never existed — same status, same headers that matter, byte-for-byte the
// same body once the id itself is substituted — and changes nothing of A's. Listing, export and
// user-data deletion stay within the tenant, and every record carries its creator's tenant.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { ParleyConfig } from '../../src/config/types.ts';
import type { ExportRecord } from '../../src/store/types.ts';
import { type Harness, type HarnessOptions, startHarness } from '../helpers/harness.ts';
import { type PostgresServer, startPostgres } from '../helpers/postgres-server.ts';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.ts';

const KEY_A = 'tenant-a-key-0123456789abcdef';
const KEY_B = 'tenant-b-key-0123456789abcdef';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const auth: ParleyConfig['auth'] = {
  mode: 'api_keys',
  api_keys: [
    { sha256: sha(KEY_A), tenant: 'team-a', name: 'a', models: null, requests_per_minute: null, tokens_per_minute: null },
    { sha256: sha(KEY_B), tenant: 'team-b', name: 'b', models: null, requests_per_minute: null, tokens_per_minute: null },
  ],
};

/** An id of the same shape and length as real ones, that no store holds. */
function unknownLike(id: string): string {
  const prefix = id.slice(0, id.indexOf('_') + 1);
  return prefix + randomBytes(64).toString('hex').slice(0, id.length - prefix.length);
}

interface Answer {
  status: number;
  contentType: string | null;
  body: string;
}

async function call(h: Harness, key: string, method: string, path: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`${h.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, contentType: res.headers.get('content-type'), body: await res.text() };
}

async function exportAll(h: Harness, tenant?: string): Promise<ExportRecord[]> {
  const out: ExportRecord[] = [];
  for await (const record of h.gateway.store!.exportRecords(tenant ? { tenant } : {})) out.push(record);
  return out;
}

function isolationSuite(name: string, storage: () => Promise<HarnessOptions['store']>, cleanup: () => Promise<void> = async () => {}) {
  describe(`two tenants on ${name}`, () => {
    let h: Harness;
    let a: OpenAI;
    let b: OpenAI;
    // Tenant A's records.
    let r1: string;
    let r2: string;
    let conv: string;
    let item: string;

    before(async () => {
      h = await startHarness({ store: await storage(), config: { auth } });
      a = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: KEY_A, maxRetries: 0 });
      b = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: KEY_B, maxRetries: 0 });
      h.upstream.enqueue({ kind: 'text', text: 'A one' }, { kind: 'text', text: 'A two' }, { kind: 'text', text: 'A in conversation' });
      r1 = (await a.responses.create({ model: 'gpt-4o-mini', input: 'secret of A', user: 'alice', metadata: { who: 'a' } })).id;
      r2 = (await a.responses.create({ model: 'gpt-4o-mini', input: 'more of A', previous_response_id: r1 })).id;
      const c = await a.conversations.create({ items: [{ type: 'message', role: 'user', content: 'A conversation' }], metadata: { owner: 'a' } });
      conv = c.id;
      await a.responses.create({ model: 'gpt-4o-mini', input: 'turn in conversation', conversation: conv });
      item = (await a.conversations.items.list(conv)).data[0].id as string;
    });

    after(async () => {
      await h?.close();
      await cleanup();
    });

    it('answers B for A’s ids exactly as for unknown ids, on every endpoint', async () => {
      const probes: { label: string; run: (id: string) => Promise<Answer>; id: () => string }[] = [
        { label: 'GET response', id: () => r1, run: (id) => call(h, KEY_B, 'GET', `/v1/responses/${id}`) },
        { label: 'GET response stream', id: () => r1, run: (id) => call(h, KEY_B, 'GET', `/v1/responses/${id}?stream=true`) },
        { label: 'GET input_items', id: () => r2, run: (id) => call(h, KEY_B, 'GET', `/v1/responses/${id}/input_items`) },
        { label: 'POST cancel', id: () => r1, run: (id) => call(h, KEY_B, 'POST', `/v1/responses/${id}/cancel`) },
        { label: 'DELETE response', id: () => r1, run: (id) => call(h, KEY_B, 'DELETE', `/v1/responses/${id}`) },
        {
          label: 'continue previous_response_id',
          id: () => r2,
          run: (id) => call(h, KEY_B, 'POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'x', previous_response_id: id }),
        },
        {
          label: 'stream a continuation',
          id: () => r2,
          run: (id) => call(h, KEY_B, 'POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'x', previous_response_id: id, stream: true }),
        },
        {
          label: 'input_tokens of a continuation',
          id: () => r2,
          run: (id) => call(h, KEY_B, 'POST', '/v1/responses/input_tokens', { model: 'gpt-4o-mini', input: 'x', previous_response_id: id }),
        },
        { label: 'turn in conversation', id: () => conv, run: (id) => call(h, KEY_B, 'POST', '/v1/responses', { model: 'gpt-4o-mini', input: 'x', conversation: id }) },
        {
          label: 'input_tokens in conversation',
          id: () => conv,
          run: (id) => call(h, KEY_B, 'POST', '/v1/responses/input_tokens', { model: 'gpt-4o-mini', input: 'x', conversation: id }),
        },
        { label: 'GET conversation', id: () => conv, run: (id) => call(h, KEY_B, 'GET', `/v1/conversations/${id}`) },
        { label: 'update conversation', id: () => conv, run: (id) => call(h, KEY_B, 'POST', `/v1/conversations/${id}`, { metadata: { owner: 'b' } }) },
        { label: 'merge metadata', id: () => conv, run: (id) => call(h, KEY_B, 'PATCH', `/v1/conversations/${id}`, { metadata: { owner: 'b' } }) },
        { label: 'details', id: () => conv, run: (id) => call(h, KEY_B, 'GET', `/v1/conversations/${id}/details`) },
        { label: 'fork', id: () => conv, run: (id) => call(h, KEY_B, 'POST', `/v1/conversations/${id}/fork`, {}) },
        { label: 'list items', id: () => conv, run: (id) => call(h, KEY_B, 'GET', `/v1/conversations/${id}/items`) },
        {
          label: 'add items',
          id: () => conv,
          run: (id) => call(h, KEY_B, 'POST', `/v1/conversations/${id}/items`, { items: [{ type: 'message', role: 'user', content: 'B was here' }] }),
        },
        { label: 'GET item', id: () => conv, run: (id) => call(h, KEY_B, 'GET', `/v1/conversations/${id}/items/${item}`) },
        { label: 'DELETE item', id: () => conv, run: (id) => call(h, KEY_B, 'DELETE', `/v1/conversations/${id}/items/${item}`) },
        { label: 'DELETE conversation', id: () => conv, run: (id) => call(h, KEY_B, 'DELETE', `/v1/conversations/${id}`) },
      ];
      const upstreamBefore = h.upstream.requests.length;
      for (const probe of probes) {
        const foreign = probe.id();
        const unknown = unknownLike(foreign);
        const theirs = await probe.run(foreign);
        const nobodys = await probe.run(unknown);
        assert.ok(theirs.status >= 400 && theirs.status < 500, `${probe.label}: ${theirs.status} ${theirs.body}`);
        assert.equal(theirs.status, nobodys.status, probe.label);
        assert.equal(theirs.contentType, nobodys.contentType, probe.label);
        assert.equal(theirs.body.replaceAll(foreign, '<id>'), nobodys.body.replaceAll(unknown, '<id>'), `${probe.label}: identical bodies`);
        assert.ok(!theirs.body.includes('secret of A') && !theirs.body.includes('A one'), probe.label);
      }
      // An item id of A's, in a conversation B cannot see either way.
      const itemProbe = await call(h, KEY_B, 'GET', `/v1/conversations/${conv}/items/${unknownLike(item)}`);
      assert.equal(itemProbe.status, 404);
      assert.equal(h.upstream.requests.length, upstreamBefore, 'no probe reached the model');
    });

    it('left every record of A as it was', async () => {
      const got = await a.responses.retrieve(r1);
      assert.equal(got.output_text, 'A one');
      assert.deepEqual(got.metadata, { who: 'a' });
      assert.equal((await a.responses.inputItems.list(r2)).data.length, 1);
      const c = await a.conversations.retrieve(conv);
      assert.deepEqual(c.metadata, { owner: 'a' });
      const items = (await a.conversations.items.list(conv, { order: 'asc' })).data;
      assert.equal(items.length, 3);
      assert.ok(!JSON.stringify(items).includes('B was here'));
      // A continues its own chain as before.
      h.upstream.enqueue({ kind: 'text', text: 'A three' });
      await a.responses.create({ model: 'gpt-4o-mini', input: 'again', previous_response_id: r2 });
    });

    it('scopes listing, export and user-data deletion to the tenant, and stamps every record', async () => {
      h.upstream.enqueue({ kind: 'text', text: 'B one' });
      const rb = await b.responses.create({ model: 'gpt-4o-mini', input: 'B input', user: 'alice' });
      const cb = await b.conversations.create({ metadata: { owner: 'b' } });

      const listA = await call(h, KEY_A, 'GET', '/v1/conversations');
      const listB = await call(h, KEY_B, 'GET', '/v1/conversations');
      assert.deepEqual((JSON.parse(listA.body) as { data: { id: string }[] }).data.map((x) => x.id), [conv]);
      assert.deepEqual((JSON.parse(listB.body) as { data: { id: string }[] }).data.map((x) => x.id), [cb.id]);
      // Filters cannot reach across either.
      const byMeta = await call(h, KEY_B, 'GET', '/v1/conversations?metadata[owner]=a');
      assert.deepEqual((JSON.parse(byMeta.body) as { data: unknown[] }).data, []);

      const recordsA = await exportAll(h, 'team-a');
      const recordsB = await exportAll(h, 'team-b');
      const tenantOf = (r: ExportRecord) => (r.type === 'response' ? r.response.tenant : r.conversation.tenant);
      assert.ok(recordsA.length >= 5 && recordsA.every((r) => tenantOf(r) === 'team-a'));
      assert.deepEqual(recordsB.map((r) => (r.type === 'response' ? r.response.id : r.conversation.id)).sort(), [rb.id, cb.id].sort());
      assert.ok(recordsB.every((r) => tenantOf(r) === 'team-b'));
      assert.equal((await exportAll(h)).length, recordsA.length + recordsB.length);

      // B deleting "alice" deletes B's alice only.
      const deleted = await call(h, KEY_B, 'DELETE', '/v1/users/alice');
      assert.equal(deleted.status, 200);
      assert.equal((JSON.parse(deleted.body) as { responses: number }).responses, 1);
      assert.equal((await a.responses.retrieve(r1)).output_text, 'A one');
      await assert.rejects(b.responses.retrieve(rb.id), (e: unknown) => e instanceof OpenAI.NotFoundError);
    });
  });
}

isolationSuite('memory', async () => ({ type: 'memory', max_entries: 10_000, ttl_seconds: null }));
isolationSuite('sqlite', async () => 'sqlite');

let postgres: PostgresServer | null = null;
isolationSuite(
  'postgres',
  async () => {
    postgres = await startPostgres();
    const database = await postgres.createDatabase('tenants');
    return { type: 'postgres', connection_string: postgres.url({ database }), pool_size: 4, ttl_seconds: null };
  },
  async () => {
    await postgres?.stop();
  },
);

let redis: RedisServer | null = null;
isolationSuite(
  'redis',
  async () => {
    redis = await startRedisServer();
    return { type: 'redis', connection_string: redis.url, ttl_seconds: null };
  },
  async () => {
    await redis?.stop();
  },
);
