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

describe('SseWriter', () => {
  it('gives a producer a drain promise while the client is not reading, and tracks the bytes held', async () => {
    const policy: SsePolicy = { idleTimeoutMs: 60_000, maxBufferedBytes: 1 << 30, open: new OpenStreams() };
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
    const policy: SsePolicy = { idleTimeoutMs: 60_000, maxBufferedBytes: 256 * 1024, open: new OpenStreams() };
    await withStream(async (res) => {
      const sse = new SseWriter(res, {}, policy, { dropWhenBehind: true });
      for (let n = 0; n < 2000 && sse.open; n++) sse.send(event(n));
      assert.equal(sse.open, false, 'dropped');
      assert.ok(res.destroyed);
      await sleep(10);
      assert.equal(policy.open.size, 0);
    });
  });

  it('closes a stream that makes no progress for the idle timeout', async () => {
    const policy: SsePolicy = { idleTimeoutMs: 200, maxBufferedBytes: 1 << 30, open: new OpenStreams() };
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
