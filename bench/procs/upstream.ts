// The fake upstream in its own process: the zero-cost Chat Completions server every benchmark
// path ends at. The orchestrator sets its reply and can capture the next request body, so the
// direct baseline sends byte for byte what the gateway sent upstream.

import type { FakeReply } from '../../test/fake-upstream/server.ts';
import { startFakeUpstream } from '../../test/fake-upstream/server.ts';
import { serveRpc } from '../lib/rpc.ts';

const upstream = await startFakeUpstream({ record: false, validate: false, port: 0 });

let reply: FakeReply = { kind: 'text', text: 'ok' };
let capturing = false;
let captured: unknown = null;
let served = 0;

upstream.setDefault((request) => {
  served++;
  if (capturing) {
    capturing = false;
    captured = request.body;
  }
  return reply;
});

serveRpc({
  setReply(args: { text: string }) {
    reply = { kind: 'text', text: args.text };
    return null;
  },
  capture() {
    capturing = true;
    captured = null;
    return null;
  },
  captured() {
    return captured;
  },
  served() {
    return served;
  },
});

process.send?.({ ready: { url: upstream.url } });
process.on('SIGTERM', () => {
  upstream.close().finally(() => process.exit(0));
});
