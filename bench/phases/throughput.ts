// Phase 2, throughput at saturation. Each server under test runs alone on the SUT CPU while the
// load generator (and the fake upstream the gateways call) run on the other: the upstream's own
// rate is a second fake upstream placed on the SUT CPU, so "upstream" and "gateway" rows say what
// one core does as the zero-cost server and as each gateway. CPU time of the SUT process (and its
// database) is read from /proc around the measured window.

import { fileURLToPath } from 'node:url';
import type { Context, Upstream } from '../lib/context.ts';
import { emptySamples, mergeSamples, runBlock } from '../lib/load.ts';
import { cpuTimeOf, memoryOf, startNodeChild } from '../lib/procs.ts';
import { round, type Summary, summarize } from '../lib/stats.ts';
import { hostPort } from '../lib/workload.ts';
import { buildTargets, type Mode, type Seeded, type TargetInfo } from './overhead.ts';

export interface ThroughputRow extends TargetInfo {
  mode: Mode;
  concurrency: number;
  rps: number;
  latency: Summary;
  /** CPU the SUT (and its database server) used during the window, percent of one core. */
  cpuPercent: number | null;
  cpuMsPerRequest: number | null;
  errors: number;
  firstError: string | null;
  peakRss: number | null;
}

export interface ThroughputResult {
  concurrency: number;
  rows: ThroughputRow[];
  ratios: Record<Mode, Record<string, number | null>>;
}

const UPSTREAM_SCRIPT = fileURLToPath(new URL('../procs/upstream.ts', import.meta.url));

export async function runThroughput(
  ctx: Context,
  seeded: Seeded[],
  pidsOf: (target: TargetInfo) => number[],
  reply: string,
): Promise<ThroughputResult> {
  const p = ctx.profile;
  // The upstream's own rate: a fake upstream on the SUT CPU, same reply, same body.
  const own = await startNodeChild<{ url: string }>(UPSTREAM_SCRIPT, { cpu: ctx.placement.sut });
  await own.call('setReply', { text: reply });
  const ownUpstream: Upstream = {
    url: own.ready.url,
    target: hostPort(own.ready.url),
    pid: own.child.pid ?? 0,
    call: own.call,
  };
  const set = await buildTargets(ctx, seeded, ownUpstream.target, {
    includeDirect: true,
    directName: 'upstream',
  });
  set.info.set('upstream', { name: 'upstream', path: 'direct', store: null, via: 'upstream' });
  const rows: ThroughputRow[] = [];
  try {
    for (const mode of ['json', 'stream'] as const) {
      const targets = set.byMode[mode];
      const acc = new Map(targets.map((t) => [t.name, { samples: emptySamples(), cpuMs: 0, wallMs: 0 }]));
      // Rounds in alternating order: a burst of noise from the machine lands on every target.
      for (let r = 0; r < p.throughputRounds; r++) {
        for (const target of r % 2 === 0 ? targets : [...targets].reverse()) {
          const info = set.info.get(target.name)!;
          const pids = info.via === 'upstream' ? [ownUpstream.pid] : pidsOf(info);
          ctx.log(`throughput: ${mode}, ${target.name}, round ${r + 1}/${p.throughputRounds}`);
          let cpuStart = 0;
          let wallStart = 0;
          const a = acc.get(target.name)!;
          const cpu = () => pids.reduce((sum, pid) => sum + (cpuTimeOf(pid) ?? Number.NaN), 0);
          const samples = await runBlock(
            target,
            p.throughputConcurrency,
            p.throughputMs / p.throughputRounds,
            p.throughputWarmupMs,
            {
              start() {
                cpuStart = cpu();
                wallStart = performance.now();
              },
              end() {
                a.cpuMs += cpu() - cpuStart;
                a.wallMs += performance.now() - wallStart;
              },
            },
          );
          mergeSamples(a.samples, samples);
        }
      }
      for (const target of targets) {
        const info = set.info.get(target.name)!;
        const pids = info.via === 'upstream' ? [ownUpstream.pid] : pidsOf(info);
        const { samples, cpuMs, wallMs } = acc.get(target.name)!;
        rows.push({
          ...info,
          mode,
          concurrency: p.throughputConcurrency,
          rps: round(samples.completed / samples.seconds, 1),
          latency: summarize(samples.latency),
          cpuPercent: Number.isFinite(cpuMs) ? round((100 * cpuMs) / wallMs, 1) : null,
          cpuMsPerRequest:
            Number.isFinite(cpuMs) && samples.completed > 0 ? round(cpuMs / samples.completed, 4) : null,
          errors: samples.errors,
          firstError: samples.firstError,
          peakRss: memoryOf(pids[0])?.peakRss ?? null,
        });
      }
    }
  } finally {
    await own.stop();
  }
  const ratios: ThroughputResult['ratios'] = { json: {}, stream: {} };
  for (const mode of ['json', 'stream'] as const) {
    const of = (name: string) => rows.find((r) => r.mode === mode && r.name === name)?.rps ?? null;
    const ratio = (a: number | null, b: number | null) =>
      a === null || b === null || b === 0 ? null : round(a / b, 3);
    const upstream = of('upstream');
    const portkey = of('portkey');
    for (const r of rows.filter((x) => x.mode === mode && x.name !== 'upstream')) {
      ratios[mode][`${r.name} / upstream`] = ratio(r.rps, upstream);
      if (r.name !== 'portkey') ratios[mode][`${r.name} / portkey`] = ratio(r.rps, portkey);
    }
  }
  return { concurrency: p.throughputConcurrency, rows, ratios };
}
