// Operations end to end: a /metrics scrape after traffic shows every counter and histogram moved
// (requests by route/status/model/provider, latency, time to first token, upstream calls, store
// latency and errors, tokens, active streams); OTLP traces reach a collector with one span per
// request and child spans for the store and the upstream call; JSON logs carry request ids;
// /readyz turns not-ready while the gateway drains.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type Harness, readSse, startHarness } from '../helpers/harness.ts';

/** `name{labels} value` lines of a Prometheus scrape, by series. */
function parseMetrics(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    series.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return series;
}

/** Sum of every series of `name` whose labels include all of `labels`. */
function total(series: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const [key, value] of series) {
    const brace = key.indexOf('{');
    const metric = brace === -1 ? key : key.slice(0, brace);
    if (metric !== name) continue;
    if (Object.entries(labels).every(([k, v]) => key.includes(`${k}="${v}"`))) sum += value;
  }
  return sum;
}

describe('/metrics after traffic', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ store: 'sqlite' });
  });
  after(() => h.close());

  const scrape = async () => {
    const res = await fetch(`${h.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    return parseMetrics(await res.text());
  };

  it('moves every counter the traffic touched', async () => {
    const before = await scrape();
    h.upstream.enqueue(
      { kind: 'text', text: 'one', usage: { prompt_tokens: 11, completion_tokens: 3 } },
      { kind: 'text', text: 'two three', usage: { prompt_tokens: 20, completion_tokens: 4 } },
      { kind: 'error', status: 500 },
    );
    const r1 = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'first' });
    const stream = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'second', previous_response_id: r1.id, stream: true });
    assert.ok((await readSse(stream)).done);
    assert.equal((await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'fails' })).status, 502);
    assert.equal((await h.post('/v1/responses', { model: 'no-such-model', input: 'x' })).status, 400);
    assert.equal((await fetch(`${h.url}/v1/responses/resp_unknown`)).status, 404);
    await h.client.responses.retrieve(r1.id);
    // A store that fails: counted as a store error, answered 503.
    const store = h.gateway.store as unknown as { getResponse: (id: string) => Promise<unknown> };
    const getResponse = store.getResponse;
    store.getResponse = async () => {
      throw new Error('disk on fire');
    };
    try {
      assert.equal((await fetch(`${h.url}/v1/responses/${r1.id}`)).status, 503);
    } finally {
      store.getResponse = getResponse;
    }

    const after = await scrape();
    const moved = (name: string, labels: Record<string, string> = {}) => total(after, name, labels) - total(before, name, labels);
    const model = { model: 'openai/gpt-4o-mini', provider: 'openai' };
    assert.equal(moved('parley_http_requests_total', { route: '/v1/responses', method: 'POST', status: '200', ...model }), 2);
    assert.equal(moved('parley_http_requests_total', { route: '/v1/responses', method: 'POST', status: '502', ...model }), 1);
    assert.equal(moved('parley_http_requests_total', { route: '/v1/responses', method: 'POST', status: '400' }), 1);
    assert.equal(moved('parley_http_requests_total', { route: '/v1/responses/:id', method: 'GET', status: '404' }), 1);
    assert.equal(moved('parley_http_requests_total', { route: '/v1/responses/:id', method: 'GET', status: '503' }), 1);
    assert.equal(moved('parley_http_request_duration_seconds_count', { route: '/v1/responses', method: 'POST', status: '200' }), 2);
    // Time to first token is a streaming measure: the streamed turn.
    assert.equal(moved('parley_time_to_first_token_seconds_count', model), 1);
    assert.equal(moved('parley_upstream_requests_total', { ...model, outcome: 'ok' }), 2);
    assert.equal(moved('parley_upstream_requests_total', { ...model, outcome: 'error' }), 1);
    assert.equal(moved('parley_upstream_duration_seconds_count', { ...model, outcome: 'ok' }), 2);
    assert.equal(moved('parley_tokens_total', { direction: 'input', ...model }), 31);
    assert.equal(moved('parley_tokens_total', { direction: 'output', ...model }), 7);
    assert.equal(moved('parley_store_duration_seconds_count', { operation: 'beginTurn', backend: 'sqlite' }), 3);
    assert.equal(moved('parley_store_duration_seconds_count', { operation: 'finishTurn', backend: 'sqlite' }), 3);
    assert.equal(moved('parley_store_duration_seconds_count', { operation: 'loadChain', backend: 'sqlite' }), 1);
    assert.equal(moved('parley_store_errors_total', { operation: 'getResponse', backend: 'sqlite' }), 1);
    assert.equal(total(after, 'parley_active_streams'), 0);
    assert.ok(total(after, 'parley_process_resident_memory_bytes') > 0, 'process metrics are there too');
    // Labels never hold what a client made up.
    assert.ok(![...after.keys()].some((k) => k.includes('no-such-model') || k.includes('resp_')));
  });
});

describe('OTLP traces', () => {
  it('exports one span per request with child spans for store load, upstream call and store write', async () => {
    const received: { url: string; contentType: string; body: string }[] = [];
    const collector = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        received.push({ url: req.url ?? '', contentType: req.headers['content-type'] ?? '', body });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces`;
    const h = await startHarness({ store: 'memory', config: { telemetry: { otlp_endpoint: endpoint, service_name: 'parley-test' } } });
    let r2 = '';
    try {
      h.upstream.enqueue({ kind: 'text', text: 'a' }, { kind: 'text', text: 'b' });
      const r1 = await h.client.responses.create({ model: 'gpt-4o-mini', input: 'one' });
      r2 = (await h.client.responses.create({ model: 'gpt-4o-mini', input: 'two', previous_response_id: r1.id })).id;
    } finally {
      await h.close(); // flushes the exporter
      await new Promise<void>((resolve) => collector.close(() => resolve()));
    }
    assert.ok(received.length > 0, 'the collector received an export');
    assert.ok(received.every((r) => r.url === '/v1/traces' && r.contentType.startsWith('application/json')));
    interface OtlpSpan {
      traceId: string;
      spanId: string;
      parentSpanId?: string;
      name: string;
      kind: number;
      attributes: { key: string; value: Record<string, unknown> }[];
    }
    const spans: OtlpSpan[] = [];
    let serviceName = '';
    for (const { body } of received) {
      const json = JSON.parse(body) as {
        resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
      };
      for (const rs of json.resourceSpans) {
        serviceName = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? serviceName;
        for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      }
    }
    assert.equal(serviceName, 'parley-test');
    const requests = spans.filter((s) => s.name === 'POST /v1/responses');
    assert.equal(requests.length, 2);
    assert.ok(requests.every((s) => s.kind === 2), 'request spans are SERVER spans');
    // The second request continued the first: its trace has the chain load, the upstream call and both writes.
    const second = requests.find((s) => spans.some((c) => c.parentSpanId === s.spanId && c.name === 'store.loadChain'));
    assert.ok(second, 'a request span with a store.loadChain child');
    const children = spans.filter((s) => s.parentSpanId === second.spanId);
    const names = children.map((s) => s.name).sort();
    for (const name of ['store.loadChain', 'store.beginTurn', 'upstream openai/gpt-4o-mini', 'store.finishTurn']) {
      assert.ok(names.includes(name), `${name} in ${names.join(', ')}`);
    }
    assert.ok(children.every((s) => s.traceId === second.traceId));
    const upstream = children.find((s) => s.name.startsWith('upstream'));
    assert.ok(upstream?.attributes.some((a) => a.key === 'gen_ai.usage.output_tokens'));
    assert.ok(!JSON.stringify(spans).includes('test-key'), 'no provider key in any span');
    assert.ok(r2.startsWith('resp_'));
  });
});

describe('logs and readiness', () => {
  it('writes JSON logs with request ids, honours x-request-id, and turns /readyz not-ready while draining', async () => {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const h = await startHarness({ store: 'memory', logger: { level: 'info', stream } });
    try {
      h.upstream.enqueue({ kind: 'text', text: 'hi' });
      const res = await h.post('/v1/responses', { model: 'gpt-4o-mini', input: 'x' }, { 'x-request-id': 'trace-me-42' });
      assert.equal(res.headers.get('x-request-id'), 'trace-me-42');
      await res.json();
      await new Promise((resolve) => setTimeout(resolve, 20));
      const access = lines.find((l) => l.msg === 'request completed' && l.reqId === 'trace-me-42');
      assert.ok(access, JSON.stringify(lines));
      assert.equal(access.route, '/v1/responses');
      assert.equal(access.status, 200);
      assert.equal(access.model, 'openai/gpt-4o-mini');
      assert.equal(typeof access.duration_ms, 'number');
      assert.equal(access.tenant, 'default');

      assert.equal((await fetch(`${h.url}/readyz`)).status, 200);
      const draining = h.gateway.shutdown(1000);
      const ready = await fetch(`${h.url}/readyz`).catch(() => null);
      // Either the listener is already closed, or it answers not-ready.
      if (ready) assert.equal(ready.status, 503);
      await draining;
    } finally {
      await h.close();
    }
  });
});
