// Phase 4, footprint of the real CLI: `node bin/parley.js serve --config <tmp yaml>` on SQLite
// (the default store). Startup is spawn to the first 200 from /healthz; idle RSS is read a second
// after that; loaded RSS is the peak while 64 users run stateful turns; node_modules is measured
// on disk, in total and for the production dependency closure a `npm install parley` would bring.

import { existsSync, lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context } from '../lib/context.ts';
import { freePort } from '../lib/databases.ts';
import { runBlock } from '../lib/load.ts';
import { memoryOf, spawnTracked, stopChild, waitForHttp } from '../lib/procs.ts';
import { median, round } from '../lib/stats.ts';
import { configYaml } from '../lib/stores.ts';
import { hostPort, responsesTarget } from '../lib/workload.ts';
import { seedRoots } from './overhead.ts';

export interface FootprintResult {
  store: string;
  startupMs: { median: number; runs: number[] };
  idleRss: number;
  loadedPeakRss: number;
  afterLoadRss: number;
  loadedRps: number;
  nodeModules: {
    totalBytes: number;
    productionBytes: number;
    productionPackages: number;
    largest: { name: string; bytes: number }[];
  };
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

async function startCli(ctx: Context, yamlPath: string, port: number) {
  const started = performance.now();
  const child = spawnTracked(process.execPath, [join(ROOT, 'bin/parley.js'), 'serve', '--config', yamlPath], {
    cpu: ctx.placement.sut,
    env: { PARLEY_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  await waitForHttp(`http://127.0.0.1:${port}/healthz`, 30_000, 2);
  return { child, startupMs: performance.now() - started };
}

export async function runFootprint(ctx: Context): Promise<FootprintResult> {
  const p = ctx.profile;
  const runs: number[] = [];
  let last: Awaited<ReturnType<typeof startCli>> | null = null;
  let port = 0;
  for (let i = 0; i < p.footprintStarts; i++) {
    // A fresh database each start: startup includes creating and migrating it.
    const store = await ctx.env.instance('sqlite', 'footprint');
    port = await freePort();
    const yamlPath = join(ctx.env.dir, `footprint-${i}.yaml`);
    writeFileSync(yamlPath, configYaml({ storage: store.yaml, upstreamUrl: ctx.upstream.url, port }));
    const started = await startCli(ctx, yamlPath, port);
    runs.push(round(started.startupMs, 1));
    if (i < p.footprintStarts - 1) await stopChild(started.child);
    else last = started;
  }
  ctx.log(`footprint: startup ${runs.join(', ')} ms`);
  const cli = last!;
  const pid = cli.child.pid!;
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const idle = memoryOf(pid)!;
    const target = hostPort(`http://127.0.0.1:${port}`);
    const roots = await seedRoots({ target } as Parameters<typeof seedRoots>[0], p.roots);
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, memoryOf(pid)?.rss ?? 0);
    }, 50);
    const samples = await runBlock(
      responsesTarget('cli sqlite', target, roots, true),
      64,
      p.footprintLoadMs,
      250,
    );
    clearInterval(sampler);
    const afterLoad = memoryOf(pid)!;
    await new Promise((r) => setTimeout(r, 1000));
    const settled = memoryOf(pid)!;
    return {
      store: 'sqlite',
      startupMs: { median: round(median(runs), 1), runs },
      idleRss: idle.rss,
      loadedPeakRss: Math.max(peak, afterLoad.peakRss),
      afterLoadRss: settled.rss,
      loadedRps: round(samples.completed / samples.seconds, 1),
      nodeModules: nodeModulesSize(),
    };
  } finally {
    await stopChild(cli.child);
  }
}

function dirBytes(dir: string): number {
  let total = 0;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of entries) {
    const path = join(dir, name);
    const st = lstatSync(path);
    if (st.isDirectory()) total += dirBytes(path);
    else total += st.size;
  }
  return total;
}

/** Sizes of node_modules and of the production closure (dependencies, resolved like Node does). */
function nodeModulesSize(): FootprintResult['nodeModules'] {
  const nm = join(ROOT, 'node_modules');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  const seen = new Map<string, number>();
  const root = ROOT.replace(/\/$/, '');
  const visit = (name: string, fromDir: string) => {
    // Node's lookup: nested node_modules first, then each parent's, up to the project root.
    let candidate: string | null = null;
    for (let dir = fromDir; ; dir = dirname(dir)) {
      const c = join(dir, 'node_modules', name);
      if (existsSync(join(c, 'package.json'))) {
        candidate = c;
        break;
      }
      if (dir === root || dir.length < root.length) return;
    }
    if (seen.has(candidate)) return;
    // Own files only: nested node_modules are counted as packages of their own.
    let bytes = 0;
    for (const entry of readdirSync(candidate)) {
      if (entry === 'node_modules') continue;
      const path = join(candidate, entry);
      const st = lstatSync(path);
      bytes += st.isDirectory() ? dirBytes(path) : st.size;
    }
    seen.set(candidate, bytes);
    const child = JSON.parse(readFileSync(join(candidate, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
    };
    // npm installs required peers too; optional ones only when someone else asks for them.
    const peers = Object.keys(child.peerDependencies ?? {}).filter(
      (n) => !child.peerDependenciesMeta?.[n]?.optional,
    );
    for (const dep of [...Object.keys({ ...child.dependencies, ...child.optionalDependencies }), ...peers]) {
      visit(dep, candidate);
    }
  };
  for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep, root);
  const largest = [...seen.entries()]
    .map(([path, bytes]) => ({ name: path.slice(path.lastIndexOf('node_modules/') + 13), bytes }))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, 5);
  return {
    totalBytes: dirBytes(nm),
    productionBytes: [...seen.values()].reduce((a, b) => a + b, 0),
    productionPackages: seen.size,
    largest,
  };
}
