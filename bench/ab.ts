// A/B: the same workload on two variants of Parley running side by side, in alternating blocks,
// so machine noise hits both alike. Variant A serves chosen files as they are at a git revision
// (HEAD by default), variant B is the working tree. Reports requests/s and gateway CPU per request
// at saturation, and latency at concurrency 1.
//
//   node bench/ab.ts --file src/http/sse.ts --mode stream --store memory
//   node bench/ab.ts --file src/store/memory.ts --file src/store/codec.ts --rev HEAD~1 --history 100
//   node bench/ab.ts --file src/http/routes/chat-completions.ts --path chat --mode stream
//
// --path chat sends POST /v1/chat/completions the Chat Completions body Parley sends upstream for
// the same turn (as the main benchmark's Parley-chat and Portkey targets do).

import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type Context, FULL } from './lib/context.ts';
import { type GatewayProcess, startGateway } from './lib/gateways.ts';
import { buildRequest, HttpConnection } from './lib/http-client.ts';
import {
  closePools,
  emptySamples,
  type LoadSamples,
  mergeSamples,
  runBlock,
  runInterleaved,
} from './lib/load.ts';
import {
  cpuTimeOf,
  killAllNow,
  pinSelf,
  placement as detectPlacement,
  setRunPriority,
  startNodeChild,
  stopAll,
} from './lib/procs.ts';
import { round, summarize } from './lib/stats.ts';
import { StoreEnvironment, type StoreKind } from './lib/stores.ts';
import {
  chatTarget,
  hostPort,
  REPLY,
  responseIdOf,
  responsesBody,
  responsesTarget,
  SCALING_REPLY,
  scalingQuestion,
} from './lib/workload.ts';
import { captureUpstreamBody, seedRoots } from './phases/overhead.ts';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = join(HERE, '..');

const { values } = parseArgs({
  options: {
    file: { type: 'string', multiple: true },
    rev: { type: 'string', default: 'HEAD' },
    store: { type: 'string', default: 'memory' },
    mode: { type: 'string', default: 'stream' },
    concurrency: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '6' },
    block: { type: 'string', default: '1500' },
    c1: { type: 'string', default: '300' },
    history: { type: 'string', default: '1' },
    path: { type: 'string', default: 'responses' },
    'a-import': { type: 'string' },
    'b-import': { type: 'string' },
    'b-node-args': { type: 'string' },
  },
});
if (!values.file?.length && !values['a-import'] && !values['b-import'] && !values['b-node-args']) {
  throw new Error(
    'give --file src/... (A serves it at --rev), --a-import / --b-import <module>, or --b-node-args',
  );
}

const overrides: Record<string, string> = {};
for (const file of values.file ?? []) {
  overrides[join(ROOT, file)] = execFileSync('git', ['show', `${values.rev}:${file}`], {
    cwd: ROOT,
    encoding: 'utf8',
  });
}

const placement = detectPlacement();
pinSelf(placement.env);
setRunPriority(-10);
const env = new StoreEnvironment(join(HERE, 'results', '.ab-tmp'), placement.sut);
rmSync(env.dir, { recursive: true, force: true });
mkdirSync(env.dir, { recursive: true });

try {
  const history = Number(values.history);
  const up = await startNodeChild<{ url: string }>(join(HERE, 'procs/upstream.ts'), { cpu: placement.env });
  await up.call('setReply', { text: history > 1 ? SCALING_REPLY : REPLY });
  const ctx: Context = {
    profile: FULL,
    placement,
    upstream: { url: up.ready.url, target: hostPort(up.ready.url), pid: up.child.pid ?? 0, call: up.call },
    env,
    stores: [],
    portkey: null,
    portkeyNote: null,
    gatewayExecArgv: [],
    log: (m) => process.stderr.write(`${m}\n`),
  };
  const kind = values.store as StoreKind;
  const hook = join(HERE, 'procs/override-hook.ts');
  const imports = (m: string | undefined) => (m ? ['--import', join(ROOT, m)] : []);
  const a = await startGateway(ctx, kind, {
    label: 'a',
    execArgv: ['--import', hook, ...imports(values['a-import'])],
    env: { PARLEY_BENCH_OVERRIDES: JSON.stringify(overrides) },
  });
  const b = await startGateway(ctx, kind, {
    label: 'b',
    execArgv: [...imports(values['b-import']), ...(values['b-node-args']?.split(' ').filter(Boolean) ?? [])],
  });
  const concurrency = Number(values.concurrency);
  const stream = values.mode === 'stream';
  const rootsOf = async (g: GatewayProcess): Promise<string[]> => {
    if (history <= 1) return seedRoots(g, concurrency);
    const conn = new HttpConnection(g.target);
    let previous: string | null = null;
    for (let turn = 1; turn <= history; turn++) {
      const body = responsesBody(scalingQuestion(turn), previous, false);
      previous = responseIdOf(
        await conn.send(
          buildRequest(g.target, 'POST', '/v1/responses', body, { Authorization: 'Bearer bench' }),
        ),
      );
    }
    conn.close();
    return [previous!];
  };
  const targetOf = async (name: string, g: GatewayProcess) => {
    const roots = await rootsOf(g);
    if (values.path !== 'chat') return responsesTarget(name, g.target, roots, stream);
    const body = await captureUpstreamBody(ctx, g, roots[0], stream);
    return chatTarget(name, g.target, '/v1/chat/completions', body, stream);
  };
  const variants = [
    {
      name: values.file?.length
        ? `A (${values.rev})`
        : `A${values['a-import'] ? ` +${values['a-import']}` : ''}`,
      gw: a,
      target: await targetOf('A', a),
    },
    {
      name: `B (working tree${values['b-import'] ? ` +${values['b-import']}` : ''})`,
      gw: b,
      target: await targetOf('B', b),
    },
  ];
  const sat = new Map<string, { samples: LoadSamples; cpuMs: number }>(
    variants.map((v) => [v.name, { samples: emptySamples(), cpuMs: 0 }]),
  );
  const rounds = Number(values.rounds);
  for (let r = 0; r < rounds; r++) {
    for (const v of r % 2 === 0 ? variants : [...variants].reverse()) {
      let c0 = 0;
      let c1 = 0;
      const s = await runBlock(v.target, concurrency, Number(values.block), 300, {
        start: () => {
          c0 = cpuTimeOf(v.gw.pid) ?? Number.NaN;
        },
        end: () => {
          c1 = cpuTimeOf(v.gw.pid) ?? Number.NaN;
        },
      });
      const acc = sat.get(v.name)!;
      mergeSamples(acc.samples, s);
      acc.cpuMs += c1 - c0;
    }
  }
  const lat = await runInterleaved(
    variants.map((v) => v.target),
    Number(values.c1),
    30,
  );
  process.stdout.write(
    `${values.path === 'chat' ? '/v1/chat/completions' : `store ${kind}`}, ${values.mode}, history ${history}; files: ${(values.file ?? []).join(', ') || '-'}\n`,
  );
  for (const v of variants) {
    const acc = sat.get(v.name)!;
    const l = summarize(lat.get(v.target.name)!.latency);
    const t = summarize(lat.get(v.target.name)!.ttft);
    process.stdout.write(
      `${v.name.padEnd(20)} c=${concurrency}: ${round(acc.samples.completed / acc.samples.seconds, 0)} req/s, ${round(acc.cpuMs / acc.samples.completed, 4)} CPU ms/req, errors ${acc.samples.errors}` +
        ` | c=1: p50 ${l.p50} ms, p99 ${l.p99} ms${stream ? `, ttft p50 ${t.p50} ms` : ''}\n`,
    );
  }
  closePools();
} finally {
  await env.close();
  await stopAll();
  killAllNow();
}
