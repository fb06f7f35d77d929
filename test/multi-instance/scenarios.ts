// The many-instances story, run against one shared store by each backend's test file: two gateway
// PROCESSES (A and B) on one PostgreSQL or one Redis, talked to over HTTP.
//
// - a chain (previous_response_id) and a conversation started on one continue on the other;
// - 40 concurrent turns from both instances onto 4 conversations: every turn is there, once, each
//   input directly followed by its answer, and every turn saw every earlier turn of its conversation;
// - a response or conversation deleted on one instance is gone for the other;
// - `kill -9` of A in the middle of two streams: the interrupted turns stay unfinished (never
//   completed, no output written, nothing appended to the conversation) and cannot be continued;
//   a new instance with a short `stale_turn_after` marks them `failed` / `interrupted`.
//
// No timing is asserted: waits are generous and poll for the state they need.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type FakeUpstream, type RecordedRequest, slowReply, startFakeUpstream } from '../fake-upstream/server.ts';
import {
  eventually,
  get,
  type Instance,
  post,
  startInstance,
  startStreamingTurn,
  writeConfig,
} from './instances.ts';

export interface SharedStore {
  /** The `state_storage` section every instance gets. */
  storage: Record<string, unknown>;
  stop(): Promise<void>;
}

const MODEL = 'gpt-4o-mini';

/** The text of every message the upstream received in one request. */
function messageTexts(request: RecordedRequest): string[] {
  const messages = request.body.messages as { role: string; content: string | { text?: string }[] }[];
  return messages.map((m) => (typeof m.content === 'string' ? m.content : m.content.map((c) => c.text ?? '').join('')));
}

const lastText = (request: RecordedRequest) => messageTexts(request).at(-1) ?? '';

type Item = { type: string; role?: string; content?: { type: string; text: string }[] };
const itemText = (item: Item) => (item.content ?? []).map((c) => c.text).join('');

export function runMultiInstanceSuite(label: string, setup: () => Promise<SharedStore>): void {
  describe(`two gateway processes on one ${label}`, { timeout: 240_000 }, () => {
    let upstream: FakeUpstream;
    let shared: SharedStore;
    let dir: string;
    let a: Instance;
    let b: Instance;
    const extra: Instance[] = [];

    /** The upstream request whose newest message is `text` (unique per turn in these tests). */
    const requestFor = (text: string) => {
      const found = upstream.requests.filter((r) => r.body?.messages && lastText(r) === text);
      assert.equal(found.length, 1, `exactly one upstream request ends with ${JSON.stringify(text)}`);
      return found[0];
    };

    before(async () => {
      upstream = await startFakeUpstream();
      // Answers `re: <last message>`; a message containing SLOW gets a 40 s answer (it is killed long before).
      upstream.setDefault((request) => {
        const text = request.body?.messages ? lastText(request) : '';
        return text.includes('SLOW') ? slowReply('word '.repeat(400), 100) : { kind: 'text', text: `re: ${text}` };
      });
      dir = await mkdtemp(join(tmpdir(), 'parley-multi-'));
      shared = await setup();
      const config = await writeConfig(dir, 'instance', shared.storage, upstream.url);
      // Started together: on PostgreSQL both race to migrate the fresh database (the advisory lock).
      [a, b] = await Promise.all([startInstance('A', config), startInstance('B', config)]);
    });

    after(async () => {
      await Promise.all([a, b, ...extra].filter(Boolean).map((instance) => instance.stop()));
      await upstream?.close();
      await shared?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('continues a previous_response_id chain on the other instance, with the whole history', async () => {
      const r1 = await a.client.responses.create({ model: MODEL, input: 'My name is Ada.' });
      const r2 = await b.client.responses.create({ model: MODEL, input: 'What is my name?', previous_response_id: r1.id });
      assert.deepEqual(messageTexts(requestFor('What is my name?')), ['My name is Ada.', 're: My name is Ada.', 'What is my name?']);
      const r3 = await a.client.responses.create({ model: MODEL, input: 'And again?', previous_response_id: r2.id });
      assert.equal(messageTexts(requestFor('And again?')).length, 5);
      assert.equal((await b.client.responses.retrieve(r3.id)).output_text, 're: And again?');
      assert.equal((await a.client.responses.retrieve(r2.id)).status, 'completed');
    });

    it('continues a conversation on the other instance', async () => {
      const conversation = await a.client.conversations.create({ metadata: { where: 'A' } });
      await a.client.responses.create({ model: MODEL, input: 'conv: first on A', conversation: conversation.id });
      await b.client.responses.create({ model: MODEL, input: 'conv: then on B', conversation: conversation.id });
      assert.deepEqual(messageTexts(requestFor('conv: then on B')), ['conv: first on A', 're: conv: first on A', 'conv: then on B']);
      const items = await a.client.conversations.items.list(conversation.id, { order: 'asc' });
      assert.deepEqual(
        items.data.map((item) => itemText(item as Item)),
        ['conv: first on A', 're: conv: first on A', 'conv: then on B', 're: conv: then on B'],
      );
    });

    it('loses no turn under concurrent load from both instances (40 turns onto 4 conversations)', async () => {
      const conversations: string[] = [];
      for (let c = 0; c < 4; c++) {
        const { status, body } = await post(c % 2 === 0 ? a : b, '/v1/conversations', {});
        assert.equal(status, 200, JSON.stringify(body));
        conversations.push(body.id as string);
      }
      const turns = Array.from({ length: 40 }, (_, i) => ({
        instance: i % 2 === 0 ? a : b,
        conversation: conversations[i % 4],
        input: `load c${i % 4} t${i}`,
      }));
      const results = await Promise.all(
        turns.map((turn) =>
          post(turn.instance, '/v1/responses', { model: MODEL, input: turn.input, conversation: turn.conversation }),
        ),
      );
      for (const [i, { status, body }] of results.entries()) {
        assert.equal(status, 200, `turn ${i}: ${JSON.stringify(body)}`);
        assert.equal(body.status, 'completed', `turn ${i}`);
      }

      for (const [c, id] of conversations.entries()) {
        const expected = turns.filter((turn) => turn.conversation === id).map((turn) => turn.input);
        // Read through the instance that did not create it.
        const { status, body } = await get(c % 2 === 0 ? b : a, `/v1/conversations/${id}/items?order=asc&limit=100`);
        assert.equal(status, 200);
        const items = body.data as Item[];
        assert.equal(items.length, 2 * expected.length, `conversation ${c} holds every turn's input and answer`);
        const inputs: string[] = [];
        for (let k = 0; k < items.length; k += 2) {
          assert.equal(items[k].role, 'user', `conversation ${c} item ${k}`);
          assert.equal(items[k + 1].role, 'assistant', `conversation ${c} item ${k + 1}`);
          assert.equal(itemText(items[k + 1]), `re: ${itemText(items[k])}`, 'each input is directly followed by its own answer');
          inputs.push(itemText(items[k]));
        }
        assert.deepEqual([...inputs].sort(), [...expected].sort(), `conversation ${c}: every turn once`);
        // Serialised across instances: the k-th turn (in conversation order) saw exactly the k turns before it.
        for (const [k, input] of inputs.entries()) {
          assert.deepEqual(messageTexts(requestFor(input)), [...items.slice(0, 2 * k).map(itemText), input], `context of ${input}`);
        }
      }
      for (const [i, { body }] of results.entries()) {
        const other = turns[i].instance === a ? b : a;
        const { body: stored } = await get(other, `/v1/responses/${body.id as string}`);
        assert.equal(stored.status, 'completed');
        assert.deepEqual(stored.conversation, { id: turns[i].conversation });
      }
    });

    it('never continues what was deleted on the other instance', async () => {
      const gone = await a.client.responses.create({ model: MODEL, input: 'delete me' });
      await a.client.responses.delete(gone.id);
      const continued = await post(b, '/v1/responses', { model: MODEL, input: 'go on', previous_response_id: gone.id });
      assert.equal(continued.status, 400);
      assert.equal((continued.body.error as { code: string }).code, 'previous_response_not_found');
      assert.equal((await get(b, `/v1/responses/${gone.id}`)).status, 404);

      // A deleted ancestor breaks the chain for every instance: no partial history is ever sent.
      const parent = await a.client.responses.create({ model: MODEL, input: 'parent turn' });
      const child = await a.client.responses.create({ model: MODEL, input: 'child turn', previous_response_id: parent.id });
      await b.client.responses.delete(parent.id);
      const sentBefore = upstream.requests.length;
      const broken = await post(a, '/v1/responses', { model: MODEL, input: 'after the child', previous_response_id: child.id });
      assert.equal(broken.status, 400);
      assert.equal((broken.body.error as { code: string }).code, 'previous_response_not_found');
      assert.equal(upstream.requests.length, sentBefore, 'nothing went upstream');

      const conversation = await b.client.conversations.create({});
      await b.client.responses.create({ model: MODEL, input: 'in a doomed conversation', conversation: conversation.id });
      await b.client.conversations.delete(conversation.id);
      const turn = await post(a, '/v1/responses', { model: MODEL, input: 'still there?', conversation: conversation.id });
      assert.equal(turn.status, 404, JSON.stringify(turn.body));
      assert.equal((await get(a, `/v1/conversations/${conversation.id}/items`)).status, 404);
    });

    it('kill -9 mid-stream: the interrupted turns are never completed, never context, and end failed/interrupted', async () => {
      const parent = await a.client.responses.create({ model: MODEL, input: 'Remember: blue.' });
      const conversation = await b.client.conversations.create({});
      await b.client.responses.create({ model: MODEL, input: 'kill: first turn', conversation: conversation.id });
      const itemsBefore = (await get(b, `/v1/conversations/${conversation.id}/items?order=asc&limit=100`)).body.data;

      // Two turns streaming on A, each past its first delta, then A dies without a chance to clean up.
      const chained = await startStreamingTurn(a, { model: MODEL, input: 'SLOW chained', previous_response_id: parent.id });
      const inConversation = await startStreamingTurn(a, { model: MODEL, input: 'SLOW in conversation', conversation: conversation.id });
      await a.kill9();
      for (const stream of [chained, inConversation]) {
        const text = await stream.finished.catch(() => '');
        assert.ok(!text.includes('response.completed'), 'the killed stream never completed');
      }

      const unfinished = async (id: string, via: Instance) => {
        const { status, body } = await get(via, `/v1/responses/${id}`);
        assert.equal(status, 200);
        return body;
      };
      for (const id of [chained.id, inConversation.id]) {
        const stored = await unfinished(id, b);
        assert.equal(stored.status, 'in_progress', 'not completed: the instance died before finishing it');
        assert.deepEqual(stored.output, [], 'no half-written output');
      }
      const tooEarly = await post(b, '/v1/responses', { model: MODEL, input: 'go on', previous_response_id: chained.id });
      assert.equal(tooEarly.status, 400);
      assert.equal((tooEarly.body.error as { code: string }).code, 'previous_response_in_progress');
      assert.deepEqual(
        (await get(b, `/v1/conversations/${conversation.id}/items?order=asc&limit=100`)).body.data,
        itemsBefore,
        'nothing of the interrupted turn reached the conversation',
      );

      // A replacement instance that takes turns older than 1 s for dead ones: its startup pass or its
      // sweeper marks them failed.
      const fast = await writeConfig(dir, 'sweeper', { ...shared.storage, stale_turn_after: '1s', prune_interval: '1s' }, upstream.url);
      const c = await startInstance('C', fast);
      extra.push(c);
      for (const id of [chained.id, inConversation.id]) {
        const stored = await eventually(`${id} to be marked failed`, async () => {
          const body = await unfinished(id, b);
          return body.status === 'failed' ? body : undefined;
        });
        assert.equal((stored.error as { code: string }).code, 'interrupted');
        assert.deepEqual(stored.output, []);
      }
      const failed = await post(c, '/v1/responses', { model: MODEL, input: 'go on', previous_response_id: chained.id });
      assert.equal(failed.status, 400);
      assert.equal((failed.body.error as { code: string }).code, 'previous_response_not_usable');
      assert.deepEqual(
        (await get(c, `/v1/conversations/${conversation.id}/items?order=asc&limit=100`)).body.data,
        itemsBefore,
        'a failed turn is never appended',
      );

      // The parent is intact: continuing it (a new branch) sees only its own history.
      await c.client.responses.create({ model: MODEL, input: 'What colour?', previous_response_id: parent.id });
      assert.deepEqual(messageTexts(requestFor('What colour?')), ['Remember: blue.', 're: Remember: blue.', 'What colour?']);
    });
  });
}
