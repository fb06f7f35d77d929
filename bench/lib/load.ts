// Closed-loop load: `concurrency` virtual users, each on its own keep-alive connection, send a
// request, wait for the whole response, send the next. Latency and time to first token are kept
// for responses that end inside the measured window (after the warm-up).

import { performance } from 'node:perf_hooks';
import { HttpConnection, type HttpResult, type HttpTarget, type TokenMarker } from './http-client.ts';

export interface PreparedRequest {
  payload: Buffer;
  marker: TokenMarker | null;
}

export interface LoadTarget {
  name: string;
  target: HttpTarget;
  /** Builds the request a virtual user sends next. */
  make: (vu: number) => PreparedRequest;
  /** Validates a response; throwing counts it as an error. Also where stateful targets read ids. */
  check?: (result: HttpResult, vu: number) => void;
}

export interface LoadSamples {
  latency: number[];
  ttft: number[];
  completed: number;
  errors: number;
  firstError: string | null;
  /** Length of the measured window, seconds. */
  seconds: number;
}

export function emptySamples(): LoadSamples {
  return { latency: [], ttft: [], completed: 0, errors: 0, firstError: null, seconds: 0 };
}

export function mergeSamples(into: LoadSamples, from: LoadSamples): void {
  for (const v of from.latency) into.latency.push(v);
  for (const v of from.ttft) into.ttft.push(v);
  into.completed += from.completed;
  into.errors += from.errors;
  into.firstError ??= from.firstError;
  into.seconds += from.seconds;
}

/** Connections are kept per target and concurrency level across blocks, like a client pool. */
const pools = new Map<string, HttpConnection[]>();

function pool(target: LoadTarget, size: number): HttpConnection[] {
  const key = `${target.name}@${target.target.host}:${target.target.port}`;
  let conns = pools.get(key);
  if (!conns) {
    conns = [];
    pools.set(key, conns);
  }
  while (conns.length < size) conns.push(new HttpConnection(target.target));
  return conns.slice(0, size);
}

export function closePools(): void {
  for (const conns of pools.values()) for (const c of conns) c.close();
  pools.clear();
}

function record(samples: LoadSamples, result: HttpResult, target: LoadTarget, vu: number): void {
  try {
    if (result.status !== 200) {
      throw new Error(`HTTP ${result.status}: ${result.body.toString('utf8').slice(0, 300)}`);
    }
    target.check?.(result, vu);
  } catch (error) {
    samples.errors++;
    samples.firstError ??= `${target.name}: ${(error as Error).message}`;
    return;
  }
  samples.completed++;
  samples.latency.push(result.end - result.start);
  samples.ttft.push(result.firstToken - result.start);
}

/** Runs `concurrency` users against one target for `warmupMs` + `durationMs`. */
export async function runBlock(
  target: LoadTarget,
  concurrency: number,
  durationMs: number,
  warmupMs: number,
  window?: { start(): void; end(): void },
): Promise<LoadSamples> {
  const conns = pool(target, concurrency);
  const samples = emptySamples();
  const begin = performance.now();
  const measureFrom = begin + warmupMs;
  const stopAt = measureFrom + durationMs;
  let ended = false;
  const end = () => {
    if (!ended) window?.end();
    ended = true;
  };
  const timers = window
    ? [setTimeout(() => window.start(), warmupMs), setTimeout(end, warmupMs + durationMs)]
    : [];
  await Promise.all(
    conns.map(async (conn, vu) => {
      while (performance.now() < stopAt) {
        const request = target.make(vu);
        let result: HttpResult;
        try {
          result = await conn.send(request.payload, request.marker);
        } catch (error) {
          if (performance.now() >= measureFrom) {
            samples.errors++;
            samples.firstError ??= `${target.name}: ${(error as Error).message}`;
          }
          await new Promise((r) => setTimeout(r, 10));
          continue;
        }
        if (result.end >= measureFrom && result.end <= stopAt) record(samples, result, target, vu);
        else {
          // Outside the window: not counted, but a broken warm-up must still be visible.
          try {
            target.check?.(result, vu);
          } catch (error) {
            samples.firstError ??= `${target.name} (outside the window): ${(error as Error).message}`;
          }
        }
      }
    }),
  );
  if (window) end();
  for (const t of timers) clearTimeout(t);
  samples.seconds = durationMs / 1000;
  return samples;
}

/**
 * Concurrency 1, interleaved: one request to each target in turn, `rounds` times, so slow drift
 * of the machine (thermal, other tenants) hits every target alike and differences stay honest.
 */
export function runInterleaved(
  targets: LoadTarget[],
  rounds: number,
  warmupRounds: number,
): Promise<Map<string, LoadSamples>> {
  return runRotating(targets, { rounds: warmupRounds + rounds, warmupRounds, runLength: 1, warmupPerRun: 0 });
}

/**
 * Concurrency 1, steady: `runs` rounds in which each target in turn gets `warmup` unrecorded
 * requests, then `runLength` recorded ones, back to back (the order rotates each round). A server
 * is measured while it serves a stream of requests, as the fake upstream (the baseline, which
 * serves every request of the run) always is; interleaving request by request instead puts six
 * other servers' work on the core between two of a gateway's requests, so each of them starts
 * with cold caches that the baseline never has.
 */
export function runSteady(
  targets: LoadTarget[],
  runs: number,
  runLength: number,
  warmup: number,
): Promise<Map<string, LoadSamples>> {
  return runRotating(targets, { rounds: runs, warmupRounds: 0, runLength, warmupPerRun: warmup });
}

/**
 * One connection per target, one request at a time: `rounds` rounds, in each of which every
 * target in turn (the starting target rotating, so none always runs right after another's GC)
 * gets `warmupPerRun` unrecorded then `runLength` recorded requests back to back. Rounds before
 * `warmupRounds` record nothing.
 */
async function runRotating(
  targets: LoadTarget[],
  plan: { rounds: number; warmupRounds: number; runLength: number; warmupPerRun: number },
): Promise<Map<string, LoadSamples>> {
  const out = new Map<string, LoadSamples>();
  const conns = targets.map((t) => pool(t, 1)[0]);
  for (const t of targets) out.set(t.name, emptySamples());
  const started = performance.now();
  for (let round = 0; round < plan.rounds; round++) {
    for (let i = 0; i < targets.length; i++) {
      const k = (i + round) % targets.length;
      const target = targets[k];
      const request = target.make(0);
      const samples = out.get(target.name)!;
      for (let n = 0; n < plan.warmupPerRun + plan.runLength; n++) {
        try {
          const result = await conns[k].send(request.payload, request.marker);
          if (round >= plan.warmupRounds && n >= plan.warmupPerRun) record(samples, result, target, 0);
          else target.check?.(result, 0);
        } catch (error) {
          samples.errors++;
          samples.firstError ??= `${target.name}: ${(error as Error).message}`;
        }
      }
    }
  }
  const seconds = (performance.now() - started) / 1000;
  for (const s of out.values()) s.seconds = seconds;
  return out;
}
