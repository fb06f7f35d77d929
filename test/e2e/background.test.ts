// Background mode end to end through the official `openai` SDK: create + poll, resuming a
// dropped stream from a sequence number (live, retained, and replayed from the store after a
// restart), cancel (upstream aborted, never continuable), a stream whose client leaves, two
// gateway instances sharing one store, and graceful shutdown.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import OpenAI from 'openai';
import { createGateway } from '../../src/gateway.ts';
import { type Harness, readSse, startHarness } from '../helpers/harness.ts';
import { assertValidError, assertValidResponse, assertValidStreamEvent } from '../helpers/spec.ts';

let h: Harness;

before(async () => {
  h = await startHarness({ store: 'sqlite' });
});
after(async () => {
  await h.close();
});
beforeEach(() => {
  h.upstream.reset();
});

type Event = { type: string; sequence_number: number } & Record<string, unknown>;
type ResponseLike = { id: string; status: string; output: { type: string; content?: { text: string }[] }[] };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Reads SSE events from a fetch body as they arrive; `stop` returning true drops the connection. */
async function readUntil(res: Response, stop: (e: Event) => boolean, controller: AbortController): Promise<Event[]> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const events: Event[] = [];
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return events;
    buffer += decoder.decode(value, { stream: true });
    let cut = buffer.indexOf('\n\n');
    while (cut >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block.split('\n').find((l) => l.startsWith('data: '))?.slice(6);
      if (data && data !== '[DONE]') {
        const event = JSON.parse(data) as Event;
        events.push(event);
        if (stop(event)) {
          controller.abort();
          await reader.cancel().catch(() => {});
          return events;
        }
      }
      cut = buffer.indexOf('\n\n');
    }
  }
}

function textOf(response: ResponseLike): string {
  return response.output
    .flatMap((o) => (o.type === 'message' ? (o.content ?? []) : []))
    .map((c) => c.text)
    .join('');
}

function deltas(events: Event[]): string {
  return events
    .filter((e) => e.type === 'response.output_text.delta')
    .map((e) => e.delta as string)
    .join('');
}

describe('background responses', () => {
  it('answers queued at once, runs detached, and polls through in_progress to completed with progress visible', async () => {
    const words = ['one ', 'two ', 'three ', 'four ', 'five ', 'six ', 'seven ', 'eight ', 'nine ', 'ten'];
    h.upstream.enqueue({ kind: 'slow', text: words.join(''), chunks: words, chunkDelayMs: 200 });
    const started = Date.now();
    const queued = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'count slowly', background: true });
    assert.ok(Date.now() - started < 1000, 'answered before the model finished');
    assertValidResponse(queued);
    assert.equal(queued.status, 'queued');
    assert.equal(queued.background, true);
    assert.deepEqual(queued.output, []);

    const seen: { status: string; text: string }[] = [];
    const final = await until('completion', async () => {
      const r = await h.client.responses.retrieve(queued.id);
      assertValidResponse(r);
      seen.push({ status: r.status as string, text: r.output_text });
      return r.status === 'completed' ? r : null;
    });
    assert.equal(final.output_text, words.join(''));
    assert.equal(final.background, true);
    assert.ok(seen.every((s) => ['queued', 'in_progress', 'completed'].includes(s.status)), JSON.stringify(seen));
    assert.ok(seen.some((s) => s.status === 'in_progress'), 'a poll saw it running');
    assert.ok(
      seen.some((s) => s.status === 'in_progress' && s.text.length > 0 && s.text.length < final.output_text.length),
      `a poll saw partial output: ${JSON.stringify(seen.map((s) => [s.status, s.text.length]))}`,
    );
    assert.equal(h.upstream.requests.length, 1);
    assert.equal(h.upstream.lastRequest()?.body.stream, true, 'background turns stream upstream');

    // A completed background response is context like any other.
    h.upstream.enqueue({ kind: 'text', text: 'eleven' });
    const next = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'go on', previous_response_id: queued.id });
    assert.equal(next.output_text, 'eleven');
    assert.deepEqual(h.upstream.lastRequest()?.body.messages.at(-2), { role: 'assistant', content: words.join('') });
  });

  it('streams with background + stream, keeps running when the client leaves, and resumes from starting_after', async () => {
    const words = ['alpha ', 'beta ', 'gamma ', 'delta ', 'epsilon'];
    h.upstream.enqueue({ kind: 'slow', text: words.join(''), chunks: words, chunkDelayMs: 120 });
    const controller = new AbortController();
    const res = await fetch(`${h.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', input: 'greek', background: true, stream: true }),
      signal: controller.signal,
    });
    assert.equal(res.status, 200);
    // Drop the connection after the second text delta.
    let seenDeltas = 0;
    const first = await readUntil(res, (e) => e.type === 'response.output_text.delta' && ++seenDeltas === 2, controller);
    for (const e of first) assertValidStreamEvent(e);
    assert.deepEqual(
      first.slice(0, 3).map((e) => [e.type, (e.response as { status: string }).status]),
      [
        ['response.created', 'queued'],
        ['response.queued', 'queued'],
        ['response.in_progress', 'in_progress'],
      ],
    );
    const id = (first[0].response as { id: string }).id;
    const last = first.at(-1)!.sequence_number;

    // Resume through the SDK while it is still running.
    const resumed: Event[] = [];
    const stream = await h.client.responses.retrieve(id, { stream: true, starting_after: last });
    for await (const event of stream) {
      assertValidStreamEvent(event);
      resumed.push(event as unknown as Event);
    }
    assert.equal(resumed[0].sequence_number, last + 1, 'resumes right after the last event seen');
    assert.deepEqual(
      [...first, ...resumed].map((e) => e.sequence_number),
      [...first, ...resumed].map((_, i) => i),
      'no event lost or repeated',
    );
    const completed = resumed.at(-1)!;
    assert.equal(completed.type, 'response.completed');
    assert.equal(deltas([...first, ...resumed]), words.join(''));
    assert.equal(h.upstream.lastRequest()?.aborted, false, 'the client leaving did not abort the turn');
    assertValidResponse(completed.response);

    // After the end, the SDK's own helper rebuilds the final response from the stream.
    const helper = h.client.responses.stream({ response_id: id, starting_after: 3 });
    const events: string[] = [];
    helper.on('event', (e) => events.push(e.type));
    const final = await helper.finalResponse();
    assert.equal(final.output_text, words.join(''));
    assert.equal(events[0], 'response.content_part.added', 'events after starting_after only (3 is output_item.added)');
  });

  it('replays a finished response from the store after a restart, in the canonical order', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'stored answer', chunks: ['stored ', 'answer'] });
    const queued = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'x', background: true });
    await until('completion', async () => (await h.client.responses.retrieve(queued.id)).status === 'completed');
    await h.stopGateway();
    await h.restartGateway();

    const res = await fetch(`${h.url}/v1/responses/${queued.id}?stream=true`);
    assert.equal(res.status, 200);
    const { events, done } = await readSse(res);
    assert.ok(done);
    for (const e of events) assertValidStreamEvent(e);
    assert.deepEqual(
      events.map((e) => e.type),
      [
        'response.created',
        'response.queued',
        'response.in_progress',
        'response.output_item.added',
        'response.content_part.added',
        'response.output_text.delta',
        'response.output_text.done',
        'response.content_part.done',
        'response.output_item.done',
        'response.completed',
      ],
    );
    assert.deepEqual(
      events.map((e) => e.sequence_number),
      events.map((_, i) => i),
    );
    const completed = events.at(-1) as { response: ResponseLike };
    assert.equal(textOf(completed.response), 'stored answer');

    const tail = await readSse(await fetch(`${h.url}/v1/responses/${queued.id}?stream=true&starting_after=7`));
    assert.deepEqual(
      tail.events.map((e) => e.type),
      ['response.output_item.done', 'response.completed'],
    );
  });

  it('cancels a running turn: upstream aborted, status cancelled, not continuable; cancelling again is harmless', async () => {
    h.upstream.enqueue({ kind: 'slow', text: 'a b c d e f g h i j', chunkDelayMs: 150 });
    const queued = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'long', background: true });
    await until('the upstream call', async () => (await h.client.responses.retrieve(queued.id)).output_text.length > 0 || h.upstream.requests.length > 0);
    await sleep(200);
    const cancelled = await h.client.responses.cancel(queued.id);
    assertValidResponse(cancelled);
    assert.equal(cancelled.status, 'cancelled');
    assert.equal(cancelled.error, null);
    await until('the upstream abort', async () => h.upstream.lastRequest()?.aborted);
    for (const item of cancelled.output) assert.notEqual((item as { status?: string }).status, 'in_progress');

    const again = await h.client.responses.cancel(queued.id);
    assert.equal(again.status, 'cancelled');
    assert.deepEqual(again.output, cancelled.output);
    assert.equal((await h.client.responses.retrieve(queued.id)).status, 'cancelled');

    const cont = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'more', previous_response_id: queued.id });
    assert.equal(cont.status, 400);
    const body = await cont.json();
    assertValidError(body);
    assert.equal(body.error.code, 'previous_response_not_usable');

    // A stream of a cancelled response ends like a failed one, with its status.
    const replay = await readSse(await fetch(`${h.url}/v1/responses/${queued.id}?stream=true`));
    const end = replay.events.at(-1) as { type: string; response: { status: string } };
    assert.equal(end.type, 'response.failed');
    assert.equal(end.response.status, 'cancelled');
  });

  it('cancels a turn that has not reached the model yet', async () => {
    h.upstream.enqueue({ kind: 'hang' });
    const queued = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'hang', background: true });
    const cancelled = await h.client.responses.cancel(queued.id);
    assert.equal(cancelled.status, 'cancelled');
    await until('the upstream abort', async () => h.upstream.requests.length === 0 || h.upstream.lastRequest()?.aborted);
  });

  it('only cancels background responses; unknown ids are 404', async () => {
    const fg = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'quick' });
    const res = await h.post(`/v1/responses/${fg.id}/cancel`, {});
    assert.equal(res.status, 400);
    assertValidError(await res.json());
    await assert.rejects(h.client.responses.cancel('resp_unknown'), (e: unknown) => e instanceof OpenAI.NotFoundError);
  });

  it('rejects background with store: false, and unknown models before queueing anything', async () => {
    const noStore = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'x', background: true, store: false });
    assert.equal(noStore.status, 400);
    assert.equal((await noStore.json()).error.param, 'background');
    const badModel = await h.post('/v1/responses', { model: 'nope', input: 'x', background: true });
    assert.equal(badModel.status, 400);
    assert.equal((await badModel.json()).error.code, 'model_not_found');
    assert.equal(h.upstream.requests.length, 0);
  });

  it('records an upstream failure as a failed background response', async () => {
    h.upstream.enqueue({ kind: 'error', status: 500 });
    const queued = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'x', background: true });
    assert.equal(queued.status, 'queued');
    const failed = await until('failure', async () => {
      const r = await h.client.responses.retrieve(queued.id);
      return r.status === 'failed' ? r : null;
    });
    assertValidResponse(failed);
    assert.equal(failed.error?.code, 'upstream_error');
  });
});

describe('background responses across instances', () => {
  it('streams and cancels, from a second gateway, a turn running on the first', async () => {
    const other = await createGateway(h.gateway.config);
    const otherUrl = await other.listen({ port: 0 });
    try {
      // Streamed from the store by the instance that is not running it.
      h.upstream.enqueue({ kind: 'slow', text: 'far away answer', chunks: ['far ', 'away ', 'answer'], chunkDelayMs: 300 });
      const queued = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'x', background: true });
      const { events, done } = await readSse(await fetch(`${otherUrl}/v1/responses/${queued.id}?stream=true`));
      assert.ok(done);
      for (const e of events) assertValidStreamEvent(e);
      const end = events.at(-1) as { type: string; response: ResponseLike };
      assert.equal(end.type, 'response.completed');
      assert.equal(textOf(end.response), 'far away answer');
      assert.equal(deltas(events as Event[]), 'far away answer');

      // Cancelled through the second instance: the first notices at its next progress write.
      h.upstream.enqueue({ kind: 'slow', text: 'never finishing story with many words in it', chunkDelayMs: 250 });
      const running = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'y', background: true });
      await until('the upstream call', async () => h.upstream.requests.length === 2);
      const otherClient = new OpenAI({ baseURL: `${otherUrl}/v1`, apiKey: 'k', maxRetries: 0 });
      const cancelled = await otherClient.responses.cancel(running.id);
      assert.equal(cancelled.status, 'cancelled');
      await until('the upstream abort on the first instance', async () => h.upstream.lastRequest()?.aborted, 5000);
      assert.equal((await h.client.responses.retrieve(running.id)).status, 'cancelled');
    } finally {
      await other.close();
    }
  });
});

describe('background responses at shutdown', () => {
  it('stores a turn still running when the gateway closes as failed, never in_progress', async () => {
    h.upstream.enqueue({ kind: 'hang' });
    const queued = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'forever', background: true });
    await until('the upstream call', async () => h.upstream.requests.length === 1);
    await h.stopGateway();
    await until('the upstream abort', async () => h.upstream.lastRequest()?.aborted);
    await h.restartGateway();
    const after = await h.client.responses.retrieve(queued.id);
    assertValidResponse(after);
    assert.equal(after.status, 'failed');
    assert.equal(after.error?.code, 'gateway_shutdown');
  });
});
