// Profiles one gateway under one workload with `node --cpu-prof` and prints where the time goes.
//
//   node bench/profile.ts --store memory --mode stream --concurrency 16 --seconds 5
//   node bench/profile.ts --store sqlite --mode json --history 1000 --concurrency 1
//
// --history N: every request continues a conversation already N turns long (default 1).
// The .cpuprofile is left in bench/results/ (git-ignored) for Chrome DevTools or speedscope.

import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type Context, FULL } from './lib/context.ts';
import { startGateway } from './lib/gateways.ts';
import { buildRequest, HttpConnection } from './lib/http-client.ts';
import { closePools, runBlock } from './lib/load.ts';
import {
  killAllNow,
  pinSelf,
  placement as detectPlacement,
  setRunPriority,
  startNodeChild,
  stopAll,
} from './lib/procs.ts';
import { StoreEnvironment, type StoreKind } from './lib/stores.ts';
import {
  hostPort,
  REPLY,
  responseIdOf,
  responsesBody,
  responsesTarget,
  SCALING_REPLY,
  scalingQuestion,
} from './lib/workload.ts';
import { seedRoots } from './phases/overhead.ts';
import { inclusive, summarizeProfile } from './tools/cpuprofile-top.ts';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const RESULTS = join(HERE, 'results');

const { values } = parseArgs({
  options: {
    store: { type: 'string', default: 'memory' },
    mode: { type: 'string', default: 'json' },
    concurrency: { type: 'string', default: '16' },
    seconds: { type: 'string', default: '5' },
    history: { type: 'string', default: '1' },
    top: { type: 'string', default: '30' },
    focus: { type: 'string', multiple: true },
  },
});

const placement = detectPlacement();
pinSelf(placement.env);
setRunPriority(-10);
const env = new StoreEnvironment(join(RESULTS, '.profile-tmp'), placement.sut);
rmSync(env.dir, { recursive: true, force: true });
mkdirSync(env.dir, { recursive: true });

try {
  const history = Number(values.history);
  const upstreamChild = await startNodeChild<{ url: string }>(join(HERE, 'procs/upstream.ts'), {
    cpu: placement.env,
  });
  await upstreamChild.call('setReply', { text: history > 1 ? SCALING_REPLY : REPLY });
  const ctx: Context = {
    profile: FULL,
    placement,
    upstream: {
      url: upstreamChild.ready.url,
      target: hostPort(upstreamChild.ready.url),
      pid: upstreamChild.child.pid ?? 0,
      call: upstreamChild.call,
    },
    env,
    stores: [],
    portkey: null,
    portkeyNote: null,
    gatewayExecArgv: ['--cpu-prof', '--cpu-prof-dir', RESULTS],
    log: (m) => process.stderr.write(`${m}\n`),
  };
  const gateway = await startGateway(ctx, values.store as StoreKind, { label: 'profile' });
  const concurrency = Number(values.concurrency);
  let roots: string[];
  if (history <= 1) {
    roots = await seedRoots(gateway, concurrency);
  } else {
    // One conversation `history` turns long; every user branches from its last turn.
    const conn = new HttpConnection(gateway.target);
    let previous: string | null = null;
    for (let turn = 1; turn <= history; turn++) {
      const result = await conn.send(
        buildRequest(
          gateway.target,
          'POST',
          '/v1/responses',
          responsesBody(scalingQuestion(turn), previous, false),
          {
            Authorization: 'Bearer bench',
          },
        ),
      );
      previous = responseIdOf(result);
    }
    conn.close();
    roots = [previous!];
  }
  const startedAt = Date.now();
  const samples = await runBlock(
    responsesTarget('profiled', gateway.target, roots, values.mode === 'stream'),
    concurrency,
    Number(values.seconds) * 1000,
    500,
  );
  closePools();
  await gateway.stop();
  process.stdout.write(
    `${samples.completed} requests in ${samples.seconds}s (${Math.round(samples.completed / samples.seconds)} req/s), ${samples.errors} errors${samples.firstError ? `: ${samples.firstError}` : ''}\n`,
  );
  const newest = readdirSync(RESULTS)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(RESULTS, f))
    .filter((f) => statSync(f).mtimeMs >= startedAt)
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (!newest) throw new Error('no profile written');
  const profile = JSON.parse(await readFile(newest, 'utf8'));
  const s = summarizeProfile(profile, Number(values.top));
  const busy = s.totalMs - s.idleMs;
  process.stdout.write(
    `profile ${newest}\ntotal ${s.totalMs} ms, busy ${busy.toFixed(0)} ms\n\nself time by package:\n`,
  );
  for (const p of s.byPackage)
    process.stdout.write(
      `  ${p.selfMs.toFixed(1).padStart(8)} ms  ${((100 * p.selfMs) / busy).toFixed(1).padStart(5)}%  ${p.name}\n`,
    );
  process.stdout.write('\nself / inclusive time by function:\n');
  for (const f of s.byFunction) {
    process.stdout.write(
      `  ${f.selfMs.toFixed(1).padStart(8)} / ${f.totalMs.toFixed(1).padStart(8)} ms  ${f.name}\n`,
    );
  }
  for (const needle of values.focus ?? []) {
    process.stdout.write(`\ninclusive, matching '${needle}':\n`);
    for (const f of inclusive(profile, needle).slice(0, 20))
      process.stdout.write(`  ${f.totalMs.toFixed(1).padStart(8)} ms  ${f.name}\n`);
  }
} finally {
  await env.close();
  await stopAll();
  killAllNow();
}
