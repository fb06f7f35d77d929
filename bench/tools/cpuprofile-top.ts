// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by function and by package, and
// inclusive time of chosen functions. Usage: node bench/tools/cpuprofile-top.ts <file> [n]

import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  byFunction: { name: string; selfMs: number; totalMs: number }[];
  byPackage: { name: string; selfMs: number }[];
}

function where(url: string): string {
  if (!url) return '(native)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const rest = url.slice(nm + 14).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.startsWith('node:')) return url;
  const src = url.indexOf('/src/');
  if (src !== -1) return `parley:${url.slice(src + 5)}`;
  const bench = url.indexOf('/bench/');
  if (bench !== -1) return `bench:${url.slice(bench + 7)}`;
  return url;
}

export function summarizeProfile(profile: Profile, top = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const fnSelf = new Map<string, number>();
  const fnTotal = new Map<string, number>();
  const pkgSelf = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const f = node.callFrame;
    total += us;
    if (f.functionName === '(idle)' || f.functionName === '(program)') {
      if (f.functionName === '(idle)') idle += us;
    }
    const key = `${f.functionName || '(anonymous)'} ${where(f.url)}:${f.lineNumber + 1}`;
    fnSelf.set(key, (fnSelf.get(key) ?? 0) + us);
    const pkg = f.url ? where(f.url) : f.functionName;
    pkgSelf.set(pkg, (pkgSelf.get(pkg) ?? 0) + us);
    // Inclusive: credit each distinct function on the stack once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur)!.callFrame;
      const k = `${cf.functionName || '(anonymous)'} ${where(cf.url)}:${cf.lineNumber + 1}`;
      if (seen.has(k)) continue;
      seen.add(k);
      fnTotal.set(k, (fnTotal.get(k) ?? 0) + us);
    }
  }
  const ms = (us: number) => Math.round(us / 10) / 100;
  return {
    totalMs: ms(total),
    idleMs: ms(idle),
    byFunction: [...fnSelf.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, selfMs: ms(us), totalMs: ms(fnTotal.get(name) ?? 0) })),
    byPackage: [...pkgSelf.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, selfMs: ms(us) })),
  };
}

/** Inclusive time of every function whose name or location contains `needle`. */
export function inclusive(profile: Profile, needle: string): { name: string; totalMs: number }[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const totals = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur)!.callFrame;
      const k = `${cf.functionName || '(anonymous)'} ${where(cf.url)}:${cf.lineNumber + 1}`;
      if (!k.includes(needle) || seen.has(k)) continue;
      seen.add(k);
      totals.set(k, (totals.get(k) ?? 0) + us);
    }
  }
  return [...totals.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([name, us]) => ({ name, totalMs: Math.round(us / 10) / 100 }));
}

if (import.meta.main) {
  const [file, n, ...needles] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: node bench/tools/cpuprofile-top.ts <file.cpuprofile> [top] [needle...]\n');
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const s = summarizeProfile(profile, Number(n ?? 25));
  process.stdout.write(`total ${s.totalMs} ms, idle ${s.idleMs} ms\n\nself time by package:\n`);
  for (const p of s.byPackage) process.stdout.write(`  ${p.selfMs.toFixed(1).padStart(8)} ms  ${p.name}\n`);
  process.stdout.write('\nself time by function (self / inclusive):\n');
  for (const f of s.byFunction) {
    process.stdout.write(
      `  ${f.selfMs.toFixed(1).padStart(8)} / ${f.totalMs.toFixed(1).padStart(8)} ms  ${f.name}\n`,
    );
  }
  for (const needle of needles) {
    process.stdout.write(`\ninclusive, matching '${needle}':\n`);
    for (const f of inclusive(profile, needle).slice(0, 15)) {
      process.stdout.write(`  ${f.totalMs.toFixed(1).padStart(8)} ms  ${f.name}\n`);
    }
  }
}
