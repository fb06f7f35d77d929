// SIGTERM during streams, on a real `node bin/parley.js serve` process (the command `npm start`
// and the Dockerfile run): the gateway stops accepting connections at once, a stream that ends
// within limits.shutdown_timeout completes normally, a stream still running at the deadline ends
// with `response.incomplete` (reason `gateway_shutdown`) and is stored so, a background turn still
// running is stored `failed` (`gateway_shutdown`), and the process exits 0.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { createGateway } from '../../src/gateway.ts';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/server.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

let upstream: FakeUpstream;
let dir: string;

before(async () => {
  upstream = await startFakeUpstream();
  dir = await mkdtemp(join(tmpdir(), 'parley-shutdown-'));
});
after(async () => {
  await upstream.close();
  await rm(dir, { recursive: true, force: true });
});

/** Starts `parley serve` and resolves with its URL once the banner is printed. */
async function serve(configFile: string): Promise<{ child: ChildProcess; url: string; output: () => string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, ['bin/parley.js', 'serve', '--config', configFile], {
    cwd: ROOT,
    env: { ...process.env, PARLEY_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Parley listening on (http:\/\/\S+)/.exec(output);
      if (match) resolve(match[1]);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    exited.then((code) => reject(new Error(`parley serve exited (${code}) before listening:\n${output}`)));
    setTimeout(() => reject(new Error(`parley serve did not start:\n${output}`)), 20_000).unref();
  });
  return { child, url, output: () => output, exited };
}

interface StreamRead {
  events: Record<string, unknown>[];
  done: boolean;
  /** Resolves once the first output_text delta arrived. */
  started: Promise<void>;
  finished: Promise<void>;
}

/** Streams a response, collecting events as they arrive. */
function openStream(url: string, body: unknown): StreamRead {
  const read: StreamRead = { events: [], done: false, started: Promise.resolve(), finished: Promise.resolve() };
  let markStarted: () => void = () => {};
  read.started = new Promise((resolve) => {
    markStarted = resolve;
  });
  read.finished = (async () => {
    const res = await fetch(`${url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(res.status, 200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split('\n').find((l) => l.startsWith('data: '))?.slice(6);
        if (data === '[DONE]') read.done = true;
        else if (data) {
          const event = JSON.parse(data) as Record<string, unknown>;
          read.events.push(event);
          if (event.type === 'response.output_text.delta') markStarted();
        }
        end = buffer.indexOf('\n\n');
      }
    }
    markStarted();
  })();
  return read;
}

describe('SIGTERM', () => {
  it('lets short streams finish, records the rest incomplete at the deadline, and exits 0', async () => {
    const configFile = join(dir, 'parley.yaml');
    const yaml = [
      'listen: { host: 127.0.0.1, port: 0 }',
      `state_storage: { type: sqlite, path: ${join(dir, 'parley.db')} }`,
      'model_providers:',
      `  - { model: openai/gpt-4o-mini, base_url: "${upstream.url}", access_key: test-key, default: true }`,
      'limits: { shutdown_timeout: 2s }',
    ].join('\n');
    await writeFile(configFile, yaml);
    const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i} `);
    // In request order: a short stream (about 1 s), a long one (about 20 s), a long background turn.
    upstream.enqueue(
      { kind: 'slow', text: words(10).join(''), chunks: words(10), chunkDelayMs: 100 },
      { kind: 'slow', text: words(200).join(''), chunks: words(200), chunkDelayMs: 100 },
      { kind: 'slow', text: words(200).join(''), chunks: words(200), chunkDelayMs: 100 },
    );
    const { child, url, output, exited } = await serve(configFile);

    const short = openStream(url, { model: 'gpt-4o-mini', input: 'short', stream: true });
    await short.started;
    const long = openStream(url, { model: 'gpt-4o-mini', input: 'long', stream: true });
    await long.started;
    const queued = (await (await fetch(`${url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', input: 'background', background: true }),
    })).json()) as { id: string; status: string };
    assert.equal(queued.status, 'queued');
    await new Promise((resolve) => setTimeout(resolve, 300));

    const signalled = Date.now();
    child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 200));
    // No new connections once the signal is in.
    await assert.rejects(fetch(`${url}/healthz`), 'the listener is closed');

    await short.finished;
    assert.equal(short.events.at(-1)?.type, 'response.completed', 'the short stream finished normally');
    assert.ok(short.done);

    await long.finished;
    const elapsed = Date.now() - signalled;
    const terminal = long.events.at(-1) as { type: string; response: { id: string; status: string; incomplete_details: { reason: string }; output: unknown[] } };
    assert.equal(terminal.type, 'response.incomplete', JSON.stringify(terminal).slice(0, 300));
    assert.equal(terminal.response.status, 'incomplete');
    assert.deepEqual(terminal.response.incomplete_details, { reason: 'gateway_shutdown' });
    assert.ok(terminal.response.output.length > 0, 'with what it produced');
    assert.ok(long.done);
    assert.ok(elapsed >= 1500 && elapsed < 8000, `ended at the deadline (${elapsed} ms)`);

    assert.equal(await exited, 0, output());
    assert.match(output(), /SIGTERM received: accepting no new connections/);

    // What the store holds after the process is gone.
    const gateway = await createGateway(parseConfig(yaml, {}));
    try {
      const shortId = (short.events.at(-1) as { response: { id: string } }).response.id;
      assert.equal((await gateway.engine.getResponse(shortId)).status, 'completed');
      const stored = await gateway.engine.getResponse(terminal.response.id);
      assert.equal(stored.status, 'incomplete');
      assert.deepEqual(stored.incomplete_details, { reason: 'gateway_shutdown' });
      const text = JSON.stringify(stored.output);
      assert.match(text, /w0 w1 /, 'the partial output is stored');
      const background = await gateway.engine.getResponse(queued.id);
      assert.equal(background.status, 'failed');
      assert.equal(background.error?.code, 'gateway_shutdown');
    } finally {
      await gateway.close();
    }
  });
});
