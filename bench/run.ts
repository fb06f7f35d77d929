// `npm run bench`: Parley's overhead, throughput, scaling and footprint, measured in one run
// against the physical limit (a zero-cost fake upstream) and a stateless peer (Portkey). Starts
// everything itself on loopback and writes bench/results/<timestamp>.json, latest.json,
// latest.md and latest.svg. See bench/README.md for the method.
//
//   npm run bench                    full run (~4 minutes)
//   npm run bench -- --quick         shorter windows, scaling to turn 100 (~1.5 minutes)
//   npm run bench -- --only overhead,throughput --stores memory,sqlite
//   npm run bench -- --cpu-prof      gateway processes write .cpuprofile files to bench/results/ (git-ignored)
//   npm run bench -- --no-write      print the summary, keep results/ untouched
//   npm run bench -- --no-pin --no-nice   no taskset pinning, no raised priority

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type Context, FULL, QUICK, type Upstream } from './lib/context.ts';
import { type GatewayProcess, startGateway } from './lib/gateways.ts';
import { closePools } from './lib/load.ts';
import { type Peer, portkeyInfo, startPortkey } from './lib/peers.ts';
import {
  cpuAccounting,
  killAllNow,
  type Placement,
  pinSelf,
  placement as detectPlacement,
  setRunPriority,
  startNodeChild,
  stopAll,
} from './lib/procs.ts';
import { evaluateTargets, renderMarkdown, renderSvg } from './lib/report.ts';
import {
  detectStore,
  STORE_KINDS,
  StoreEnvironment,
  type StoreKind,
  type StoreStatus,
} from './lib/stores.ts';
import { hostPort, REPLY } from './lib/workload.ts';
import { runFootprint } from './phases/footprint.ts';
import { type OverheadResult, runOverhead, type Seeded, seedRoots } from './phases/overhead.ts';
import { runScaling, type ScalingStoreResult } from './phases/scaling.ts';
import { runThroughput, type ThroughputResult } from './phases/throughput.ts';
import type { FootprintResult } from './phases/footprint.ts';

const PHASES = ['overhead', 'throughput', 'scaling', 'footprint'] as const;
type Phase = (typeof PHASES)[number];

const HERE = fileURLToPath(new URL('.', import.meta.url));
const RESULTS = join(HERE, 'results');

export interface BenchResult {
  schema: 1;
  startedAt: string;
  seconds: number;
  quick: boolean;
  machine: Record<string, string | number>;
  placement: Placement;
  /** 1-minute load average at the start and after each phase. */
  loadAverage: Record<string, number>;
  /**
   * Per phase, CPU used by other work on the machine (not this run), as a percentage of all CPUs.
   * Anything above a few percent means the numbers of that phase are perturbed.
   */
  foreignCpuPercent: Record<string, number | null>;
  versions: Record<string, string>;
  stores: StoreStatus[];
  peers: { portkey: string | null };
  workload: Record<string, string | number>;
  overhead: OverheadResult | null;
  throughput: ThroughputResult | null;
  scaling: ScalingStoreResult[] | null;
  footprint: FootprintResult | null;
  errors: string[];
}

function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, {
      cwd: HERE,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return '?';
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      stores: { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      'no-pin': { type: 'boolean', default: false },
      'no-nice': { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
    },
  });
  const profile = values.quick ? QUICK : FULL;
  const phases = new Set<Phase>(
    values.only ? (values.only.split(',').map((s) => s.trim()) as Phase[]) : [...PHASES],
  );
  for (const p of phases)
    if (!PHASES.includes(p)) throw new Error(`unknown phase '${p}' (${PHASES.join(', ')})`);
  const kinds = (
    values.stores ? values.stores.split(',').map((s) => s.trim()) : [...STORE_KINDS]
  ) as StoreKind[];
  for (const k of kinds)
    if (!STORE_KINDS.includes(k)) throw new Error(`unknown store '${k}' (${STORE_KINDS.join(', ')})`);

  const startedAt = new Date();
  const loadAverage: Record<string, number> = { start: Math.round(loadavg()[0] * 100) / 100 };
  const foreignCpuPercent: Record<string, number | null> = {};
  let mark = { at: performance.now(), cpu: cpuAccounting() };
  const noteLoad = (phase: string) => {
    loadAverage[phase] = Math.round(loadavg()[0] * 100) / 100;
    const now = { at: performance.now(), cpu: cpuAccounting() };
    if (mark.cpu && now.cpu) {
      const foreign = now.cpu.machineBusyMs - mark.cpu.machineBusyMs - (now.cpu.oursMs - mark.cpu.oursMs);
      foreignCpuPercent[phase] = Math.max(
        0,
        Math.round((1000 * foreign) / ((now.at - mark.at) * cpus().length)) / 10,
      );
    } else {
      foreignCpuPercent[phase] = null;
    }
    mark = now;
  };
  // Two idle seconds first: how busy is the machine before we add anything?
  await new Promise((r) => setTimeout(r, 2000));
  noteLoad('idle before');
  const started = performance.now();
  const placement: Placement = values['no-pin']
    ? { pinned: false, sut: null, env: null, note: 'not pinned (--no-pin)' }
    : detectPlacement();
  pinSelf(placement.env);
  const priority = setRunPriority(values['no-nice'] ? null : -10);
  placement.note += `; ${priority}`;
  log(`placement: ${placement.note}`);

  const tmp = mkdtempSync(join(tmpdir(), 'parley-bench-'));
  const env = new StoreEnvironment(tmp, placement.sut);
  const errors: string[] = [];
  const gateways: GatewayProcess[] = [];
  let portkey: Peer | null = null;
  let portkeyNote: string | null = null;
  const profileDir = RESULTS;
  if (values['cpu-prof']) mkdirSync(profileDir, { recursive: true });

  try {
    const upstreamChild = await startNodeChild<{ url: string }>(join(HERE, 'procs/upstream.ts'), {
      cpu: placement.env,
    });
    await upstreamChild.call('setReply', { text: REPLY });
    const upstream: Upstream = {
      url: upstreamChild.ready.url,
      target: hostPort(upstreamChild.ready.url),
      pid: upstreamChild.child.pid ?? 0,
      call: upstreamChild.call,
    };

    const stores: StoreStatus[] = [];
    for (const kind of kinds) {
      const status = await detectStore(kind);
      if (status.measured) {
        // Start the server now, so a broken install is a note, not a failed run.
        try {
          if (kind === 'postgres' || kind === 'redis') await env.instance(kind, 'probe');
        } catch (error) {
          status.measured = false;
          status.note = `skipped: could not start the ${kind} server: ${(error as Error).message}`;
        }
      }
      if (status.note) log(`${kind}: ${status.note}`);
      stores.push(status);
    }
    const measured = stores.filter((s) => s.measured).map((s) => s.kind);

    if (phases.has('overhead') || phases.has('throughput')) {
      try {
        portkey = await startPortkey(placement.sut);
        portkeyNote = portkey.note;
      } catch (error) {
        portkeyNote = `Portkey not measured: ${(error as Error).message}`;
        log(portkeyNote);
      }
    }

    const ctx: Context = {
      profile,
      placement,
      upstream,
      env,
      stores,
      portkey,
      portkeyNote,
      gatewayExecArgv: values['cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [],
      log,
    };

    let overhead: OverheadResult | null = null;
    let throughput: ThroughputResult | null = null;
    if (phases.has('overhead') || phases.has('throughput')) {
      const seeded: Seeded[] = [];
      for (const kind of [...measured]) {
        // A store that cannot even serve the seeding turns is reported, not allowed to sink the run.
        try {
          const gateway = await startGateway(ctx, kind, { label: 'load' });
          gateways.push(gateway);
          seeded.push({ gateway, roots: await seedRoots(gateway, profile.roots) });
        } catch (error) {
          const message = `${kind}: ${(error as Error).message}`;
          errors.push(message);
          log(message);
          const status = stores.find((s) => s.kind === kind)!;
          status.measured = false;
          status.note = `failed: ${(error as Error).message.slice(0, 300)}`;
          measured.splice(measured.indexOf(kind), 1);
        }
      }
      if (seeded.length === 0) throw new Error('no store could serve requests');
      log(
        `gateways: ${seeded.map((s) => s.gateway.kind).join(', ')}; /v1/chat/completions ${seeded[0]?.gateway.chatCompletions ? 'present' : 'absent'}`,
      );
      if (phases.has('overhead')) {
        overhead = await runOverhead(ctx, seeded);
        noteLoad('overhead');
      }
      if (phases.has('throughput')) {
        const dbPid = (kind: StoreKind | null) => env.servers().find((s) => s.kind === kind)?.pid;
        throughput = await runThroughput(
          ctx,
          seeded,
          (info) => {
            if (info.via === 'portkey') return [portkey!.pid];
            const host =
              info.path === 'chat'
                ? seeded.find((s) => s.gateway.chatCompletions)
                : seeded.find((s) => s.gateway.kind === info.store);
            const pids = [host!.gateway.pid];
            const db = info.path === 'responses' ? dbPid(info.store) : undefined;
            if (db) pids.push(db);
            return pids;
          },
          REPLY,
        );
        noteLoad('throughput');
      }
      closePools();
      for (const g of gateways.splice(0)) await g.stop();
    }

    let scaling: ScalingStoreResult[] | null = null;
    if (phases.has('scaling')) {
      scaling = [];
      for (const kind of measured) {
        try {
          scaling.push(await runScaling(ctx, kind));
        } catch (error) {
          const message = `scaling ${kind}: ${(error as Error).stack ?? error}`;
          errors.push(message);
          log(message);
        }
      }
      await upstream.call('setReply', { text: REPLY });
      noteLoad('scaling');
    }

    let footprint: FootprintResult | null = null;
    if (phases.has('footprint')) {
      try {
        footprint = await runFootprint(ctx);
        noteLoad('footprint');
      } catch (error) {
        const message = `footprint: ${(error as Error).stack ?? error}`;
        errors.push(message);
        log(message);
      }
    }
    closePools();

    const pk = portkeyInfo();
    const result: BenchResult = {
      schema: 1,
      startedAt: startedAt.toISOString(),
      seconds: Math.round((performance.now() - started) / 100) / 10,
      quick: profile.quick,
      machine: {
        cpu: cpus()[0]?.model ?? '?',
        cpus: cpus().length,
        memoryGiB: Math.round(totalmem() / 2 ** 30),
        os: `${process.platform} ${release()}`,
        node: process.version,
      },
      placement,
      loadAverage,
      foreignCpuPercent,
      versions: {
        parley: `${git(['rev-parse', '--short', 'HEAD'])}${git(['status', '--porcelain', '--', '../src']) ? ' (src modified)' : ''}`,
        portkey: pk
          ? `@portkey-ai/gateway ${pk.version} (@hono/node-server ${pk.honoNodeServer})`
          : 'not installed',
        ...Object.fromEntries(env.servers().map((s) => [s.kind, `${s.version}; ${s.settings}`])),
      },
      stores,
      peers: { portkey: portkeyNote },
      workload: {
        question: 'second turn of a conversation (one-turn chain loaded, turn stored)',
        replyWords: REPLY.split(' ').length,
        throughputConcurrency: profile.throughputConcurrency,
      },
      overhead,
      throughput,
      scaling,
      footprint,
      errors,
    };
    const targets = evaluateTargets(result);
    const markdown = renderMarkdown(result, targets);
    process.stdout.write(`${markdown}\n`);
    if (!values['no-write']) {
      mkdirSync(RESULTS, { recursive: true });
      const json = `${JSON.stringify({ ...result, targets }, null, 2)}\n`;
      const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
      writeFileSync(join(RESULTS, `${stamp}${profile.quick ? '-quick' : ''}.json`), json);
      writeFileSync(join(RESULTS, 'latest.json'), json);
      writeFileSync(join(RESULTS, 'latest.md'), markdown);
      writeFileSync(join(RESULTS, 'latest.svg'), renderSvg(result));
      log(`wrote bench/results/latest.{json,md,svg} and ${stamp}${profile.quick ? '-quick' : ''}.json`);
    }
    return errors.length > 0 ? 1 : 0;
  } finally {
    closePools();
    for (const g of gateways) await g.stop().catch(() => {});
    await portkey?.stop().catch(() => {});
    await env.close();
    await stopAll();
    rmSync(tmp, { recursive: true, force: true });
  }
}

process.on('SIGINT', () => {
  killAllNow();
  process.exit(130);
});

try {
  process.exitCode = await main();
} catch (error) {
  log(`failed: ${(error as Error).stack ?? error}`);
  killAllNow();
  process.exitCode = 1;
}
