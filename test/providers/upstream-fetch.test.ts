// upstreamFetch keeps the parts of fetch's contract the provider packages rely on: bodies and
// headers both ways, streaming bodies, fetch's error shapes, aborts, redirects, compression.

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { upstreamFetch } from '../../src/providers/upstream-fetch.ts';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

describe('upstreamFetch', () => {
  let server: Server;
  let base: string;
  const routes = new Map<string, Handler>();

  before(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const handler = routes.get(req.url ?? '');
        if (handler) handler(req, body, res);
        else res.writeHead(404).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('sends method, headers and a JSON body, and returns status, headers and body', async () => {
    routes.set('/echo', (req, body, res) => {
      res.writeHead(201, { 'content-type': 'application/json', 'x-request-id': 'req_1' });
      res.end(
        JSON.stringify({ method: req.method, auth: req.headers.authorization, body: JSON.parse(body) }),
      );
    });
    const response = await upstreamFetch(`${base}/echo`, {
      method: 'POST',
      headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
      body: JSON.stringify({ a: 1 }),
    });
    assert.equal(response.status, 201);
    assert.equal(response.ok, true);
    assert.equal(response.headers.get('x-request-id'), 'req_1');
    assert.deepEqual(await response.json(), { method: 'POST', auth: 'Bearer k', body: { a: 1 } });
  });

  it('sends a long body with non-ASCII text byte for byte, with its length', async () => {

  it('sends headers given in any form, and returns repeated response headers as fetch does', async () => {
    routes.set('/headers', (req, _body, res) => {
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.setHeader('x-multi', ['one', 'two']);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ auth: req.headers.authorization, beta: req.headers['x-beta'] }));
    });
    const forms: HeadersInit[] = [
      { authorization: 'Bearer k', 'x-beta': 'on' }, // what the provider packages hand over
      { Authorization: 'Bearer k', 'X-Beta': 'on' },
      [
        ['Authorization', 'Bearer k'],
        ['x-beta', 'on'],
      ],
      new Headers({ authorization: 'Bearer k', 'x-beta': 'on' }),
    ];
    for (const headers of forms) {
      const response = await upstreamFetch(`${base}/headers`, { headers });
      assert.deepEqual(await response.json(), { auth: 'Bearer k', beta: 'on' });
      assert.deepEqual(response.headers.getSetCookie(), ['a=1', 'b=2']);
      assert.equal(response.headers.get('x-multi'), 'one, two');
      assert.equal(response.headers.get('Content-Type'), 'application/json');
    }
  });
    routes.set('/long', (req, body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ length: req.headers['content-length'], body }));
    });
    const text = JSON.stringify({ messages: Array.from({ length: 1000 }, (_, i) => `Olá ${i}: café, naïve, 東京, 🙂`) });
    assert.ok(text.length > 16 * 1024);
    const response = await upstreamFetch(`${base}/long`, { method: 'POST', body: text });
    const echoed = (await response.json()) as { length: string; body: string };
    assert.equal(echoed.body, text);
    assert.equal(Number(echoed.length), Buffer.byteLength(text));
  });

  it('streams the body as it arrives', async () => {
    let release: () => void = () => {};
    routes.set('/sse', (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\n\n');
      release = () => res.end('data: two\n\n');
    });
    const response = await upstreamFetch(`${base}/sse`, { method: 'POST', body: '{}' });
    const reader = response.body!.getReader();
    const first = await reader.read();
    assert.equal(new TextDecoder().decode(first.value), 'data: one\n\n');
    release();
    let rest = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    assert.equal(rest, 'data: two\n\n');
  });

  it('hands over a burst of events whole and in order, its first events ahead of the rest', async () => {
    const events = Array.from({ length: 12 }, (_, i) => `data: {"n":${i}}\n\n`).join('');
    routes.set('/burst', (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(events);
    });
    const response = await upstreamFetch(`${base}/burst`, { method: 'POST', body: '{}' });
    const reader = response.body!.getReader();
    const pieces: string[] = [];
    const decoder = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      pieces.push(decoder.decode(value, { stream: true }));
    }
    assert.equal(pieces.join(''), events);
    assert.ok(pieces.length >= 2, 'the first events came on their own');
    assert.equal(pieces[0].split('\n\n').length - 1, 4);
  });

  it('rejects with TypeError("fetch failed") and the cause when the server cannot be reached', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await assert.rejects(
      upstreamFetch(`http://127.0.0.1:${port}/`, { method: 'POST', body: '{}' }),
      (error: unknown) => {
        assert.ok(error instanceof TypeError);
        assert.equal(error.message, 'fetch failed');
        assert.equal((error.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
        return true;
      },
    );
  });

  it('rejects with the signal reason when aborted before the answer', async () => {
    routes.set('/hang', () => {});
    const controller = new AbortController();
    const pending = upstreamFetch(`${base}/hang`, { method: 'POST', body: '{}', signal: controller.signal });
    const reason = new Error('client went away');
    setTimeout(() => controller.abort(reason), 20);
    await assert.rejects(pending, (error) => error === reason);
    await assert.rejects(
      upstreamFetch(`${base}/hang`, { method: 'POST', body: '{}', signal: controller.signal }),
      (error) => error === reason,
    );
  });

  it('errors a body being read when aborted mid-stream', async () => {
    routes.set('/slow', (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\n\n');
    });
    const controller = new AbortController();
    const response = await upstreamFetch(`${base}/slow`, {
      method: 'POST',
      body: '{}',
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    await reader.read();
    const reason = new Error('idle timeout');
    controller.abort(reason);
    await assert.rejects(reader.read(), (error) => error === reason);
  });

  it('reads a JSON body whole before answering; an abort or a cut connection meanwhile rejects', async () => {
    routes.set('/chunked-json', (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"parts":[');
      setTimeout(() => res.end('1,2]}'), 20);
    });
    const whole = await upstreamFetch(`${base}/chunked-json`, { method: 'POST', body: '{}' });
    assert.deepEqual(await whole.json(), { parts: [1, 2] });

    routes.set('/half-json', (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"parts":[');
    });
    const controller = new AbortController();
    const pending = upstreamFetch(`${base}/half-json`, { method: 'POST', body: '{}', signal: controller.signal });
    const reason = new Error('total timeout');
    setTimeout(() => controller.abort(reason), 20);
    await assert.rejects(pending, (error) => error === reason);

    routes.set('/cut-json', (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"parts":[');
      setTimeout(() => res.destroy(), 20);
    });
    await assert.rejects(
      upstreamFetch(`${base}/cut-json`, { method: 'POST', body: '{}' }),
      (error) => error instanceof TypeError && error.message === 'fetch failed',
    );
  });

  it('follows redirects (307 keeps the method and body; 303 continues as GET)', async () => {
    routes.set('/moved', (_req, _body, res) => res.writeHead(307, { location: '/echo' }).end());
    const kept = await upstreamFetch(`${base}/moved`, { method: 'POST', body: JSON.stringify({ b: 2 }) });
    assert.deepEqual(((await kept.json()) as { body: unknown }).body, { b: 2 });
    routes.set('/see-other', (_req, _body, res) => res.writeHead(303, { location: '/method' }).end());
    routes.set('/method', (req, _body, res) => res.end(req.method));
    const get = await upstreamFetch(`${base}/see-other`, { method: 'POST', body: '{}' });
    assert.equal(await get.text(), 'GET');
  });

  it('decodes a gzip body and gives a null body for 204', async () => {
    routes.set('/gzip', (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync(JSON.stringify({ ok: true })));
    });
    assert.deepEqual(await (await upstreamFetch(`${base}/gzip`)).json(), { ok: true });
    routes.set('/empty', (_req, _body, res) => res.writeHead(204).end());
    const empty = await upstreamFetch(`${base}/empty`, { method: 'DELETE' });
    assert.equal(empty.status, 204);
    assert.equal(empty.body, null);
  });

  it('passes an error status through with its body', async () => {
    routes.set('/limited', (_req, _body, res) => {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '2' });
      res.end(JSON.stringify({ error: { message: 'slow down' } }));
    });
    const response = await upstreamFetch(`${base}/limited`, { method: 'POST', body: '{}' });
    assert.equal(response.status, 429);
    assert.equal(response.ok, false);
    assert.equal(response.headers.get('retry-after'), '2');
    assert.deepEqual(await response.json(), { error: { message: 'slow down' } });
  });
});
