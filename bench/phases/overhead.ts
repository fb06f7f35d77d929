// Phase 1, overhead against the physical limit. Every target receives the same turn: the second
// turn of a conversation (the gateway loads a one-turn chain, calls upstream, stores the turn).
// "direct" sends the fake upstream byte for byte the Chat Completions body Parley sent it for that
// turn, so added latency = through Parley - direct. Concurrency 1 is interleaved request by request
// across targets; higher concurrencies run in alternating blocks.

import type { Context } from '../lib/context.ts';
import type { GatewayProcess } from '../lib/gateways.ts';
import { HttpConnection, type HttpTarget } from '../lib/http-client.ts';
import {
  emptySamples,
  type LoadSamples,
  type LoadTarget,
  mergeSamples,
  runBlock,
  runInterleaved,
  runSteady,
} from '../lib/load.ts';
import { round, type Summary, summarize } from '../lib/stats.ts';
import type { StoreKind } from '../lib/stores.ts';
import {
  chatTarget,
  FIRST_QUESTION,
  portkeyHeaders,
  QUESTION,
  responseIdOf,
  responsesBody,
  responsesTarget,
} from '../lib/workload.ts';
import { buildRequest } from '../lib/http-client.ts';

export type Mode = 'json' | 'stream';

/** Concurrency 1 is measured in this many alternating parts per pattern (see runOverhead). */
const C1_REPEATS = 3;

export interface TargetInfo {
  name: string;
  /** direct: the fake upstream itself; responses: Parley's stateful /v1/responses; chat: /v1/chat/completions. */
  path: 'direct' | 'responses' | 'chat';
  store: StoreKind | null;
  via: 'upstream' | 'parley' | 'portkey';
}

export interface OverheadRow extends TargetInfo {
  mode: Mode;
  concurrency: number;
  /**
   * Concurrency 1 only: `steady` (runs of back-to-back requests per target, what the targets are
   * checked on) or `interleaved` (one request per target in turn; see runSteady for why both).
   */
  pattern?: 'steady' | 'interleaved';
  latency: Summary;
  ttft: Summary | null;
  rps: number;
  errors: number;
  firstError: string | null;
  /** Against direct at the same mode and concurrency; null for direct itself. */
  added: { p50: number; p99: number; ttftP50: number | null } | null;
}

export interface OverheadResult {
  requestBytes: { responses: number; upstreamJson: number; upstreamStream: number };
  rows: OverheadRow[];
}

export interface Seeded {
  gateway: GatewayProcess;
  roots: string[];
}

/** One root response per virtual user, so each user continues its own conversation. */
export async function seedRoots(gateway: GatewayProcess, count: number): Promise<string[]> {
  const conn = new HttpConnection(gateway.target);
  const request = buildRequest(
    gateway.target,
    'POST',
    '/v1/responses',
    responsesBody(FIRST_QUESTION, null, false),
    {
      Authorization: 'Bearer bench',
    },
  );
  const roots: string[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const result = await conn.send(request);
      if (result.status !== 200)
        throw new Error(`seeding failed: HTTP ${result.status} ${result.body.toString()}`);
      roots.push(responseIdOf(result));
    }
  } finally {
    conn.close();
  }
  return roots;
}

/** The Chat Completions body Parley sends upstream for one turn, as the upstream received it. */
export async function captureUpstreamBody(
  ctx: Context,
  gateway: GatewayProcess,
  root: string,
  stream: boolean,
): Promise<string> {
  const conn = new HttpConnection(gateway.target);
  try {
    await ctx.upstream.call('capture');
    const result = await conn.send(
      buildRequest(gateway.target, 'POST', '/v1/responses', responsesBody(QUESTION, root, stream), {
        Authorization: 'Bearer bench',
      }),
    );
    if (result.status !== 200) throw new Error(`capture failed: HTTP ${result.status}`);
    const body = await ctx.upstream.call('captured');
    if (body === null) throw new Error('the upstream saw no request');
    return JSON.stringify(body);
  } finally {
    conn.close();
  }
}

export interface TargetSet {
  info: Map<string, TargetInfo>;
  byMode: Record<Mode, LoadTarget[]>;
  upstreamBodies: Record<Mode, string>;
}

export async function buildTargets(
  ctx: Context,
  seeded: Seeded[],
  upstreamTarget: HttpTarget,
  options: { includeDirect: boolean; directName?: string },
): Promise<TargetSet> {
  const info = new Map<string, TargetInfo>();
  const byMode: Record<Mode, LoadTarget[]> = { json: [], stream: [] };
  const first = seeded[0];
  const upstreamBodies = {
    json: await captureUpstreamBody(ctx, first.gateway, first.roots[0], false),
    stream: await captureUpstreamBody(ctx, first.gateway, first.roots[0], true),
  };
  const upstreamPath = `${new URL(ctx.upstream.url).pathname.replace(/\/$/, '')}/chat/completions`;
  for (const mode of ['json', 'stream'] as const) {
    const stream = mode === 'stream';
    const body = upstreamBodies[mode];
    if (options.includeDirect) {
      const name = options.directName ?? 'direct';
      byMode[mode].push(chatTarget(name, upstreamTarget, upstreamPath, body, stream));
      info.set(name, { name, path: 'direct', store: null, via: 'upstream' });
    }
    for (const s of seeded) {
      const name = `parley ${s.gateway.kind}`;
      byMode[mode].push(responsesTarget(name, s.gateway.target, s.roots, stream));
      info.set(name, { name, path: 'responses', store: s.gateway.kind, via: 'parley' });
    }
    const chatHost = seeded.find((s) => s.gateway.chatCompletions);
    if (chatHost) {
      byMode[mode].push(
        chatTarget('parley chat', chatHost.gateway.target, '/v1/chat/completions', body, stream),
      );
      info.set('parley chat', { name: 'parley chat', path: 'chat', store: null, via: 'parley' });
    }
    if (ctx.portkey) {
      const portkey = new URL(ctx.portkey.url);
      const target = { host: portkey.hostname, port: Number(portkey.port) };
      byMode[mode].push(
        chatTarget('portkey', target, '/v1/chat/completions', body, stream, portkeyHeaders(ctx.upstream.url)),
      );
      info.set('portkey', { name: 'portkey', path: 'chat', store: null, via: 'portkey' });
    }
  }
  return { info, byMode, upstreamBodies };
}

export async function runOverhead(ctx: Context, seeded: Seeded[]): Promise<OverheadResult> {
  const p = ctx.profile;
  const set = await buildTargets(ctx, seeded, ctx.upstream.target, { includeDirect: true });
  const rows: OverheadRow[] = [];
  for (const mode of ['json', 'stream'] as const) {
    const targets = set.byMode[mode];
    for (const concurrency of p.concurrencies) {
      ctx.log(`overhead: ${mode}, concurrency ${concurrency}, ${targets.length} targets`);
      const runs: { pattern?: 'steady' | 'interleaved'; results: Map<string, LoadSamples> }[] = [];
      if (concurrency === 1) {
        // Streaming through Portkey takes ~27 ms a request (its 25 ms first-chunk timer): half the
        // rounds keep the run short; the rotation keeps the comparison fair.
        const rounds = mode === 'stream' ? Math.ceil(p.c1Rounds / 2) : p.c1Rounds;
        const runLength = 25;
        // In C1_REPEATS parts, the two patterns alternating, so that a burst of noise from the
        // host (seen as a ~0.4 ms shift of every cell of one pattern in one run) lands on a part
        // of each pattern's samples rather than on all of one of them.
        const steady = new Map(targets.map((t) => [t.name, emptySamples()]));
        const interleaved = new Map(targets.map((t) => [t.name, emptySamples()]));
        for (let part = 0; part < C1_REPEATS; part++) {
          const steadyRuns = Math.max(1, Math.round(rounds / runLength / C1_REPEATS));
          for (const [name, s] of await runSteady(targets, steadyRuns, runLength, 5)) mergeSamples(steady.get(name)!, s);
          const warmup = part === 0 ? p.c1WarmupRounds : 5;
          for (const [name, s] of await runInterleaved(targets, Math.ceil(rounds / C1_REPEATS), warmup))
            mergeSamples(interleaved.get(name)!, s);
        }
        runs.push({ pattern: 'steady', results: steady });
        runs.push({ pattern: 'interleaved', results: interleaved });
      } else {
        const results = new Map(targets.map((t) => [t.name, emptySamples()]));
        for (let r = 0; r < p.blockRounds; r++) {
          // Alternate the order each round so no target always follows the same one.
          const order = r % 2 === 0 ? targets : [...targets].reverse();
          for (const t of order) {
            mergeSamples(results.get(t.name)!, await runBlock(t, concurrency, p.blockMs, p.blockWarmupMs));
          }
        }
        runs.push({ results });
      }
      for (const { pattern, results } of runs) rows.push(...overheadRows(set, targets, results, mode, concurrency, pattern));
    }
  }
  return {
    requestBytes: {
      responses: Buffer.byteLength(responsesBody(QUESTION, seeded[0].roots[0], false)),
      upstreamJson: Buffer.byteLength(set.upstreamBodies.json),
      upstreamStream: Buffer.byteLength(set.upstreamBodies.stream),
    },
    rows,
  };
}

function overheadRows(
  set: TargetSet,
  targets: LoadTarget[],
  results: Map<string, LoadSamples>,
  mode: Mode,
  concurrency: number,
  pattern: 'steady' | 'interleaved' | undefined,
): OverheadRow[] {
  const rows: OverheadRow[] = [];
      const direct = results.get('direct')!;
      const directLatency = summarize(direct.latency);
      const directTtft = summarize(direct.ttft);
      for (const t of targets) {
        const s = results.get(t.name)!;
        const latency = summarize(s.latency);
        const ttft = mode === 'stream' ? summarize(s.ttft) : null;
        const info = set.info.get(t.name)!;
        rows.push({
          ...info,
          mode,
          concurrency,
          ...(pattern ? { pattern } : {}),
          latency,
          ttft,
          rps: round(s.completed / s.seconds, 1),
          errors: s.errors,
          firstError: s.firstError,
          added:
            info.path === 'direct'
              ? null
              : {
                  p50: round(latency.p50 - directLatency.p50),
                  p99: round(latency.p99 - directLatency.p99),
                  ttftP50: ttft ? round(ttft.p50 - directTtft.p50) : null,
                },
        });
      }
  return rows;
}
