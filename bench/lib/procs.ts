// Child processes of a benchmark run: started pinned to a CPU (when taskset exists and the
// machine has two or more), tracked so every one is stopped on exit, even after a failure.

import { type ChildProcess, execFileSync, spawn, type StdioOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, setPriority } from 'node:os';
import { createRpcClient } from './rpc.ts';

const children = new Set<ChildProcess>();

let tasksetPath: string | null | undefined;
function taskset(): string | null {
  if (tasksetPath === undefined) {
    try {
      tasksetPath = execFileSync('sh', ['-c', 'command -v taskset'], { encoding: 'utf8' }).trim() || null;
    } catch {
      tasksetPath = null;
    }
  }
  return tasksetPath;
}

/** CPU placement: the system under test on CPU 0, load generator and fake upstream on CPU 1. */
export interface Placement {
  pinned: boolean;
  sut: string | null;
  env: string | null;
  note: string;
}

/**
 * Scheduling priority for every process of the run (nice value; lower is more CPU). -10 when the
 * user may raise priority (root): other work on a shared machine then perturbs the measurements
 * less. Null leaves priorities alone.
 */
let niceness: number | null = null;

export function setRunPriority(value: number | null): string {
  if (value === null) return 'default priority';
  try {
    setPriority(0, value);
    niceness = value;
    return `nice ${value}`;
  } catch {
    return 'default priority (not permitted to raise it)';
  }
}

export function placement(): Placement {
  const cpus = availableParallelism();
  if (cpus < 2 || !taskset()) {
    return {
      pinned: false,
      sut: null,
      env: null,
      note: `not pinned (${cpus} CPU(s)${taskset() ? '' : ', no taskset'}): all processes share every CPU`,
    };
  }
  return {
    pinned: true,
    sut: '0',
    env: '1',
    note: 'system under test (gateway or peer, and its database) pinned to CPU 0; load generator and fake upstream pinned to CPU 1',
  };
}

/** Pins the current process (all its threads) to `cpu`. */
export function pinSelf(cpu: string | null): void {
  if (cpu === null || !taskset()) return;
  execFileSync(taskset()!, ['-a', '-p', '-c', cpu, String(process.pid)], { stdio: 'ignore' });
}

export interface SpawnOptions {
  cpu: string | null;
  args?: string[];
  env?: Record<string, string>;
  ipc?: boolean;
  cwd?: string;
  /** Where child output goes; default: inherited stderr for stderr, ignored stdout. */
  stdio?: StdioOptions;
  uid?: number;
  gid?: number;
}

/** Starts `command` (wrapped in taskset when pinning), tracked for cleanup. */
export function spawnTracked(command: string, args: string[], options: SpawnOptions): ChildProcess {
  const ts = options.cpu !== null ? taskset() : null;
  const [file, argv] = ts ? [ts, ['-c', options.cpu!, command, ...args]] : [command, args];
  const child = spawn(file, argv, {
    cwd: options.cwd,
    ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.gid }),
    env: { ...process.env, ...options.env },
    stdio:
      options.stdio ??
      (options.ipc ? ['ignore', 'ignore', 'inherit', 'ipc'] : ['ignore', 'ignore', 'inherit']),
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (niceness !== null && child.pid !== undefined) {
    try {
      setPriority(child.pid, niceness);
    } catch {
      // exited already, or not permitted: measured as is
    }
  }
  return child;
}

export interface NodeChild<Ready> {
  child: ChildProcess;
  ready: Ready;
  call: ReturnType<typeof createRpcClient>;
  stop(): Promise<void>;
}

/** Starts a Node script that reports `{ready: ...}` over IPC, and gives an RPC client to it. */
export async function startNodeChild<Ready>(
  script: string,
  options: { cpu: string | null; env?: Record<string, string>; execArgv?: string[]; timeoutMs?: number },
): Promise<NodeChild<Ready>> {
  const child = spawnTracked(process.execPath, [...(options.execArgv ?? []), script], {
    cpu: options.cpu,
    env: options.env,
    ipc: true,
  });
  const call = createRpcClient(child);
  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${script} did not start in time`)),
      options.timeoutMs ?? 30_000,
    );
    const onMessage = (message: { ready?: Ready; failed?: string }) => {
      if (message && typeof message === 'object' && ('ready' in message || 'failed' in message)) {
        clearTimeout(timer);
        child.off('message', onMessage);
        if (message.failed) reject(new Error(message.failed));
        else resolve(message.ready as Ready);
      }
    };
    child.on('message', onMessage);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited during startup (${code ?? signal})`));
    });
  });
  return { child, ready, call, stop: () => stopChild(child) };
}

export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c)));
}

/** Kills what is left without waiting (process exit path). */
export function killAllNow(): void {
  for (const c of children) c.kill('SIGKILL');
}

/** Resident set size now and at its peak, in bytes, from /proc (Linux). */
export function memoryOf(pid: number): { rss: number; peakRss: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) =>
      Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
    return { rss: kb('VmRSS'), peakRss: kb('VmHWM') };
  } catch {
    return null;
  }
}

/** CPU time (user + system) a process has used, in milliseconds, from /proc (Linux). */
export function cpuTimeOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

/** Polls `url` until it answers 200; returns the elapsed milliseconds. */
export async function waitForHttp(url: string, timeoutMs: number, intervalMs = 5): Promise<number> {
  const started = performance.now();
  for (;;) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return performance.now() - started;
    } catch {
      // not listening yet
    }
    if (performance.now() - started > timeoutMs)
      throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * CPU used on the whole machine and by this run (this process, its live descendants, and the
 * children it has reaped), in milliseconds. The difference is other work sharing the machine.
 */
export function cpuAccounting(): { machineBusyMs: number; oursMs: number } | null {
  try {
    const stat = readFileSync('/proc/stat', 'utf8');
    const cpu = stat.slice(0, stat.indexOf('\n')).trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait.
    const busyTicks = cpu.reduce((a, b) => a + b, 0) - cpu[3] - (cpu[4] ?? 0);
    const parents = new Map<number, number>();
    const times = new Map<number, number>();
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const text = readFileSync(`/proc/${name}/stat`, 'utf8');
        const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
        parents.set(Number(name), Number(f[1]));
        // utime stime cutime cstime
        times.set(Number(name), Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]));
      } catch {
        // exited meanwhile
      }
    }
    let ours = 0;
    for (const [pid, ticks] of times) {
      for (let p: number | undefined = pid; p !== undefined && p > 1; p = parents.get(p)) {
        if (p === process.pid) {
          ours += ticks;
          break;
        }
      }
    }
    return { machineBusyMs: busyTicks * 10, oursMs: ours * 10 };
  } catch {
    return null;
  }
}
