// The SSE writer on a real socket whose client does not read: drained() hands the producer a
// promise that resolves once the client catches up; a stream that cannot wait is dropped when it
// falls too far behind; a stream that makes no progress is closed after the idle timeout.

import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { OpenStreams, type SsePolicy, SseWriter } from '../../src/http/sse.ts';
import type { StreamEvent } from '../../src/protocol/types.ts';

const event = (n: number): StreamEvent => ({ type: 'response.output_text.delta', sequence_number: n, delta: 'x'.repeat(16 * 1024) }) as unknown as StreamEvent;

/** A server whose one response is handed to `use`, and a client socket that reads nothing. */
async function withStream(use: (res: ServerResponse, client: Socket) => Promise<void>) {
  let handed: (res: ServerResponse) => void = () => {};
  const got = new Promise<ServerResponse>((resolve) => {
    handed = resolve;
  });
  const server = createServer((_req, res) => handed(res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  client.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
  client.pause();
  const res = await got;
  try {
    await use(res, client);
  } finally {
    client.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** The chunks `res.write` is called with, in order (each one a write to the socket). */
function recordWrites(res: ServerResponse): string[] {
  const writes: string[] = [];
  const write = res.write.bind(res) as (chunk: string) => boolean;
  res.write = ((chunk: string) => {
    writes.push(chunk);
    return write(chunk);
  }) as typeof res.write;
  return writes;
}

describe('SseWriter', () => {
  it('gives a producer a drain promise while the client is not reading, and tracks the bytes held', async () => {
    const policy: SsePolicy = { heartbeatMs: 15_000, idleTimeoutMs: 60_000, maxBufferedBytes: 1 << 30, open: new OpenStreams() };
    await withStream(async (res, client) => {
      const sse = new SseWriter(res, {}, policy);
      assert.equal(policy.open.size, 1);
      // Fill the socket's buffer, then the kernel's, until a drain does not come.
      let n = 0;
      let wait: Promise<void> | null = null;
      while (n < 100_000) {
        while (sse.drained() === null) sse.send(event(n++));
        wait = sse.drained();
        const came = await Promise.race([wait?.then(() => true), sleep(100).then(() => false)]);
        if (!came) break;
      }
      assert.ok(wait, 'the socket filled up');
      assert.equal(sse.drained(), wait, 'one promise per wait');
      assert.ok(policy.open.bufferedBytes() > 0);
      let drained = false;
      void wait.then(() => {
        drained = true;
      });
      await sleep(100);
      assert.equal(drained, false, 'still waiting while the client reads nothing');
      client.resume();
      await wait;
      assert.equal(sse.drained(), null);
      sse.end();
      assert.equal(policy.open.size, 0);
    });
  });

  it('drops a stream that cannot wait once its client is too far behind', async () => {
    const policy: SsePolicy = { heartbeatMs: 15_000, idleTimeoutMs: 60_000, maxBufferedBytes: 256 * 1024, open: new OpenStreams() };
    await withStream(async (res) => {
      const sse = new SseWriter(res, {}, policy, { dropWhenBehind: true });
      for (let n = 0; n < 2000 && sse.open; n++) sse.send(event(n));
      assert.equal(sse.open, false, 'dropped');
      assert.ok(res.destroyed);
      await sleep(10);
      assert.equal(policy.open.size, 0);
    });
  });

  it('writes everything up to the first token at once, then one write per burst, in order', async () => {
    const policy: SsePolicy = { heartbeatMs: 15_000, idleTimeoutMs: 60_000, maxBufferedBytes: 1 << 30, open: new OpenStreams() };
    await withStream(async (res, client) => {
      const writes = recordWrites(res);
      const small = (type: string, n: number) => ({ type, sequence_number: n, delta: String(n) }) as unknown as StreamEvent;
      const sse = new SseWriter(res, {}, policy);
      sse.send(small('response.created', 0));
      assert.equal(writes.length, 0, 'an event before the first token waits for the end of its burst');
      sse.send(small('response.output_text.delta', 1));
      assert.equal(writes.length, 1, 'the first token is not held back, and takes what came before it along');
      assert.match(writes[0], /response\.created[\s\S]*output_text\.delta/);
      for (let n = 2; n < 6; n++) sse.send(small('response.output_text.delta', n));
      assert.equal(writes.length, 1, 'the rest of the burst waits for the end of the burst');
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(writes.length, 2, 'one write for the burst');
      sse.send(small('response.output_text.delta', 6));
      sse.end();
      const received: string[] = [];
      client.setEncoding('utf8');
      client.on('data', (text: string) => received.push(text));
      client.resume();
      for (let i = 0; i < 100 && !received.join('').includes('[DONE]'); i++) await sleep(10);
      const numbers = [...received.join('').matchAll(/"sequence_number":(\d+)/g)].map((m) => Number(m[1]));
      assert.deepEqual(numbers, [0, 1, 2, 3, 4, 5, 6]);
      const text = received.join('');
      assert.ok(text.indexOf('data: [DONE]\n\n') > text.lastIndexOf('sequence_number'), 'the stream ends with [DONE]');
    });
  });

  it('does not hold events before the first token past their burst (an upstream slow to answer)', async () => {
    const policy: SsePolicy = { heartbeatMs: 15_000, idleTimeoutMs: 60_000, maxBufferedBytes: 1 << 30, open: new OpenStreams() };
    await withStream(async (res) => {
      const writes = recordWrites(res);
      const sse = new SseWriter(res, {}, policy);
      sse.send({ type: 'response.created', sequence_number: 0 } as unknown as StreamEvent);
      sse.send({ type: 'response.in_progress', sequence_number: 1 } as unknown as StreamEvent);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(writes.length, 1, 'written together once their burst ended, no token needed');
      assert.match(writes[0], /response\.created[\s\S]*response\.in_progress/);
      sse.end();
    });
  });

  it('closes a stream that makes no progress for the idle timeout', async () => {
    const policy: SsePolicy = { heartbeatMs: 15_000, idleTimeoutMs: 200, maxBufferedBytes: 1 << 30, open: new OpenStreams() };
    await withStream(async (res) => {
      const sse = new SseWriter(res, {}, policy);
      sse.send(event(0));
      await sleep(120);
      sse.send(event(1));
      await sleep(120);
      assert.equal(sse.open, true, 'each event restarts the clock');
      await sleep(200);
      assert.equal(sse.open, false);
    });
  });
});
