// Phase 3, scaling with conversation length. Per store, one conversation grows to 1,000 turns
// (each turn continues the previous one). At turns 1, 10, 100 and 1,000 we also send K sibling
// turns (branches of the same parent, so they cost exactly what turn N costs) and measure:
//   - added latency: through Parley minus the fake upstream receiving the same upstream body;
//   - in-gateway time excluding the upstream call: request-in to response-out inside the gateway,
//     minus the time inside the provider call (building and sending the upstream request and
//     reading its answer), i.e. what the gateway costs apart from the upstream payload;
//   - store calls and database round trips per turn (a counting proxy around the store);
//   - bytes handed to the store per turn, and the store's total size against the items' size.

import type { TurnEntry } from '../procs/gateway.ts';
import type { Context } from '../lib/context.ts';
import { startGateway } from '../lib/gateways.ts';
import { buildRequest, HttpConnection, type HttpResult } from '../lib/http-client.ts';
import { median, round } from '../lib/stats.ts';
import type { StoreKind } from '../lib/stores.ts';
import { conversationBody, responseIdOf, responsesBody, SCALING_REPLY, scalingQuestion } from '../lib/workload.ts';

export interface Checkpoint {
  turn: number;
  samples: number;
  gatewayMs: number;
  directMs: number;
  addedMs: number;
  /** JSON.parse + JSON.stringify of the upstream body inside the gateway process: the payload floor. */
  payloadFloorMs: number;
  /** Added latency minus the payload floor: the gateway's overhead excluding the upstream payload. */
  addedExclPayloadMs: number;
  inGatewayMs: number;
  providerMs: number;
  storeMs: number;
  storeCalls: Record<string, number>;
  storeCallsTotal: number;
  dbRoundTrips: number;
  bytesWritten: number;
  itemBytes: number;
  upstreamBytes: number;
  storeBytes: number | null;
  sumItemBytes: number;
  sizeRatio: number | null;
  /** Responses written since the baseline (chain and sibling turns). */
  responses: number;
  /** (store size - item bytes) / responses: what the store spends per turn besides the items. */
  overheadBytesPerTurn: number | null;
}

export interface ScalingStoreResult {
  store: StoreKind;
  turns: number;
  checkpoints: Checkpoint[];
  /** Distinct store-call totals seen across turns 2.. of the chain (one value = constant). */
  storeCallsPerTurn: number[];
  /** Turn 1 has no history to load. */
  storeCallsFirstTurn: number;
  dbRoundTripsPerTurn: { min: number; max: number } | null;
  /** Overhead excluding the upstream payload, at the last checkpoint / at turn 10. */
  growth: number | null;
  /** In-gateway time excluding the upstream call, at the last checkpoint / at turn 10. */
  inGatewayGrowth: number | null;
  /** Bytes a copy-the-history-per-turn store (Plano's design) would have written for the chain. */
  copyPerTurnBytes: number;
  chainBytesWritten: number;
  /**
   * The same number of turns in one Conversations API conversation (`conversation` instead of
   * `previous_response_id`): what the store holds for it against the items' JSON. Its entries
   * may point at the turns' items or copy them, so the ratio can differ from the chain's.
   */
  conversation: ConversationPass | null;
  seconds: number;
  sizeMethod: string;
  error?: string;
}

interface Totals {
  itemBytes: number;
}

/**
 * What the gateway adds to one Conversations API turn at a point of the conversation, measured as
 * for the chain: medians over the turns of the window ending at `turn` (CONVERSATION_WINDOW), and
 * as many direct requests with that turn's upstream body.
 */
export interface ConversationCheckpoint {
  turn: number;
  /** Through the gateway minus straight to the upstream. */
  addedMs: number;
  /** JSON.parse + JSON.stringify of that turn's upstream body. */
  payloadFloorMs: number;
  addedExclPayloadMs: number;
  /** Request in to response out inside the gateway, less the upstream call. */
  inGatewayMs: number;
  storeMs: number;
  upstreamBytes: number;
}

export interface ConversationPass {
  turns: number;
  storeBytes: number | null;
  sumItemBytes: number;
  sizeRatio: number | null;
  checkpoints: ConversationCheckpoint[];
  /** addedExclPayloadMs at the last checkpoint / at turn 10. */
  growth: number | null;
}

/** Turns whose in-gateway times give a conversation checkpoint its median (a single turn is noisy). */
const CONVERSATION_WINDOW = 9;

const WARMUP_CONVERSATIONS = 10;
const WARMUP_TURNS = 10;

export async function runScaling(ctx: Context, kind: StoreKind): Promise<ScalingStoreResult> {
  const p = ctx.profile;
  const started = performance.now();
  const maxTurn = Math.max(...p.scalingTurns);
  await ctx.upstream.call('setReply', { text: SCALING_REPLY });
  const gw = await startGateway(ctx, kind, { label: 'scaling', instrument: true, execArgv: ['--expose-gc'] });
  const conn = new HttpConnection(gw.target);
  const direct = new HttpConnection(ctx.upstream.target);
  const upstreamPath = `${new URL(ctx.upstream.url).pathname.replace(/\/$/, '')}/chat/completions`;
  const sizeMethod =
    kind === 'memory'
      ? 'V8 heap freed (after GC) by deleting the responses, measured once at the end'
      : kind === 'sqlite'
        ? 'pages in use x page size (WAL included)'
        : kind === 'postgres'
          ? 'pg_total_relation_size over the tables (indexes and TOAST included)'
          : 'sum of MEMORY USAGE over the keys';
  // Every response written after the baseline: the memory store is sized by deleting them.
  const created: string[] = [];
  const sizeNow = async (final: boolean): Promise<number | null> => {
    if (kind !== 'memory') return gw.store!.sizeOf!();
    return final ? gw.call<number | null>('heapFreedByDeleting', { ids: created }) : null;
  };
  const send = async (body: string): Promise<HttpResult> => {
    const result = await conn.send(
      buildRequest(gw.target, 'POST', '/v1/responses', body, { Authorization: 'Bearer bench' }),
    );
    if (result.status !== 200)
      throw new Error(`HTTP ${result.status}: ${result.body.toString().slice(0, 300)}`);
    return result;
  };

  const checkpoints: Checkpoint[] = [];
  let conversation: ScalingStoreResult['conversation'] = null;
  const chain: TurnEntry[] = [];
  let chainBytesWritten = 0;
  let copyPerTurnBytes = 0;
  let cumulativeItems = 0;
  try {
    // Warm the JIT on the same code paths (and the store's caches), then take the baseline.
    for (let c = 0; c < WARMUP_CONVERSATIONS; c++) {
      let previous: string | null = null;
      for (let turn = 1; turn <= WARMUP_TURNS; turn++) {
        previous = responseIdOf(
          await send(responsesBody(`warm-up ${c}: ${scalingQuestion(turn)}`, previous, false)),
        );
      }
    }
    const baseline = (await sizeNow(false)) ?? 0;
    const baselineItems = (await gw.call<Totals>('totals')).itemBytes;
    await gw.call('takeTurns');
    let previous: string | null = null;
    for (let turn = 1; turn <= maxTurn; turn++) {
      const body = responsesBody(scalingQuestion(turn), previous, false);
      let sample: Omit<
        Checkpoint,
        | 'storeBytes'
        | 'sumItemBytes'
        | 'sizeRatio'
        | 'bytesWritten'
        | 'itemBytes'
        | 'storeCalls'
        | 'storeCallsTotal'
        | 'dbRoundTrips'
        | 'responses'
        | 'overheadBytesPerTurn'
      > | null = null;
      if (p.scalingTurns.includes(turn)) {
        ctx.log(`scaling: ${kind}, turn ${turn}`);
        // Capture what Parley sends upstream for this turn, then alternate gateway and direct.
        await ctx.upstream.call('capture');
        created.push(responseIdOf(await send(body)));
        const upstreamBody = JSON.stringify(await ctx.upstream.call('captured'));
        const directRequest = buildRequest(ctx.upstream.target, 'POST', upstreamPath, upstreamBody, {
          Authorization: 'Bearer bench',
        });
        await gw.call('takeTurns');
        const gatewayMs: number[] = [];
        const directMs: number[] = [];
        // Short histories are cheap and noisier: more samples there.
        const samples = turn >= 1000 ? p.scalingSamples : 2 * p.scalingSamples + 1;
        for (let k = 0; k < samples; k++) {
          const d = await direct.send(directRequest);
          if (d.status !== 200) throw new Error(`direct: HTTP ${d.status}`);
          directMs.push(d.end - d.start);
          const g = await send(body);
          created.push(responseIdOf(g));
          gatewayMs.push(g.end - g.start);
        }
        const entries = await gw.call<TurnEntry[]>('takeTurns');
        const payloadFloorMs = await gw.call<number>('payloadFloor', { body: upstreamBody, reps: 9 });
        const addedMs = median(gatewayMs) - median(directMs);
        sample = {
          turn,
          samples,
          gatewayMs: round(median(gatewayMs)),
          directMs: round(median(directMs)),
          addedMs: round(addedMs),
          payloadFloorMs: round(payloadFloorMs),
          addedExclPayloadMs: round(addedMs - payloadFloorMs),
          inGatewayMs: round(median(entries.map((e) => e.serverMs - e.providerMs))),
          providerMs: round(median(entries.map((e) => e.providerMs))),
          storeMs: round(median(entries.map((e) => e.storeMs))),
          upstreamBytes: Buffer.byteLength(upstreamBody),
        };
      }
      // The turn that extends the chain.
      const result = await send(body);
      previous = responseIdOf(result);
      created.push(previous);
      const [entry] = await gw.call<TurnEntry[]>('takeTurns');
      chain.push(entry);
      chainBytesWritten += entry.bytesWritten;
      cumulativeItems += entry.itemBytes;
      copyPerTurnBytes += cumulativeItems;
      if (sample) {
        const measured = await sizeNow(turn === maxTurn);
        const size = measured === null ? null : kind === 'memory' ? measured : measured - baseline;
        const items = (await gw.call<Totals>('totals')).itemBytes - baselineItems;
        const storeCallsTotal = Object.values(entry.storeCalls).reduce((a, b) => a + b, 0);
        checkpoints.push({
          ...sample,
          storeCalls: entry.storeCalls,
          storeCallsTotal,
          dbRoundTrips: entry.dbRoundTrips,
          bytesWritten: entry.bytesWritten,
          itemBytes: entry.itemBytes,
          storeBytes: size,
          sumItemBytes: items,
          sizeRatio: items > 0 && size !== null ? round(size / items, 3) : null,
          responses: created.length,
          overheadBytesPerTurn: size === null ? null : Math.round((size - items) / created.length),
        });
      }
    }
    conversation = await conversationPass(maxTurn);
  } finally {
    conn.close();
    direct.close();
    await gw.stop();
  }
  // Last, after the chain's own measurements (for memory, destructive): one conversation through
  // the Conversations API, the same questions and answers, sized the same way.
  async function conversationPass(turns: number): Promise<ConversationPass> {
    ctx.log(`scaling: ${kind}, a conversation of ${turns} turns`);
    const baseline = kind === 'memory' ? 0 : ((await sizeNow(false)) ?? 0);
    const baselineItems = (await gw.call<Totals>('totals')).itemBytes;
    const made = await conn.send(
      buildRequest(gw.target, 'POST', '/v1/conversations', '{}', { Authorization: 'Bearer bench' }),
    );
    if (made.status !== 200) throw new Error(`POST /v1/conversations: HTTP ${made.status}`);
    const id = (JSON.parse(made.body.toString()) as { id: string }).id;
    const ids: string[] = [];
    const measured: ConversationCheckpoint[] = [];
    const gatewayMs: number[] = [];
    await gw.call('takeTurns');
    for (let turn = 1; turn <= turns; turn++) {
      const checkpoint = p.scalingTurns.includes(turn) && turn >= CONVERSATION_WINDOW;
      if (checkpoint) await ctx.upstream.call('capture');
      const result = await send(conversationBody(scalingQuestion(turn), id));
      ids.push(responseIdOf(result));
      gatewayMs.push(result.end - result.start);
      if (!checkpoint) continue;
      // As for the chain: the turns against the upstream answering the same body directly, less
      // the payload floor. Every turn since the last checkpoint is in order: the window is the last few.
      const last = (await gw.call<TurnEntry[]>('takeTurns')).slice(-CONVERSATION_WINDOW);
      const body = JSON.stringify(await ctx.upstream.call('captured'));
      const request = buildRequest(ctx.upstream.target, 'POST', upstreamPath, body, { Authorization: 'Bearer bench' });
      const directMs: number[] = [];
      for (let k = 0; k < CONVERSATION_WINDOW; k++) {
        const d = await direct.send(request);
        if (d.status !== 200) throw new Error(`direct: HTTP ${d.status}`);
        directMs.push(d.end - d.start);
      }
      const payloadFloorMs = await gw.call<number>('payloadFloor', { body, reps: 9 });
      const addedMs = median(gatewayMs.slice(-CONVERSATION_WINDOW)) - median(directMs);
      measured.push({
        turn,
        addedMs: round(addedMs),
        payloadFloorMs: round(payloadFloorMs),
        addedExclPayloadMs: round(addedMs - payloadFloorMs),
        inGatewayMs: round(median(last.map((e) => e.serverMs - e.providerMs))),
        storeMs: round(median(last.map((e) => e.storeMs))),
        upstreamBytes: Buffer.byteLength(body),
      });
    }
    await gw.call('takeTurns');
    const items = (await gw.call<Totals>('totals')).itemBytes - baselineItems;
    const size =
      kind === 'memory'
        ? await gw.call<number | null>('heapFreedByDeleting', { ids, conversations: [id] })
        : await sizeNow(false);
    const storeBytes = size === null ? null : size - baseline;
    const ten = measured.find((c) => c.turn === 10);
    const last = measured[measured.length - 1];
    return {
      turns,
      storeBytes,
      sumItemBytes: items,
      sizeRatio: storeBytes !== null && items > 0 ? round(storeBytes / items, 3) : null,
      checkpoints: measured,
      growth:
        ten && last && last.turn > 10 && ten.addedExclPayloadMs > 0
          ? round(last.addedExclPayloadMs / ten.addedExclPayloadMs, 2)
          : null,
    };
  }

  const callsOf = (e: TurnEntry) => Object.values(e.storeCalls).reduce((a, b) => a + b, 0);
  const totalsPerTurn = [...new Set(chain.slice(1).map(callsOf))];
  const writes = chain.slice(1).map((e) => e.dbRoundTrips);
  const ten = checkpoints.find((c) => c.turn === 10);
  const last = checkpoints[checkpoints.length - 1];
  const ratio = (a: number, b: number) => (b > 0 ? round(a / b, 2) : null);
  return {
    store: kind,
    turns: maxTurn,
    checkpoints,
    storeCallsPerTurn: totalsPerTurn.sort((a, b) => a - b),
    storeCallsFirstTurn: chain.length > 0 ? callsOf(chain[0]) : 0,
    dbRoundTripsPerTurn:
      gw.store?.dbPort && writes.length ? { min: Math.min(...writes), max: Math.max(...writes) } : null,
    growth: ten && last && last.turn > 10 ? ratio(last.addedExclPayloadMs, ten.addedExclPayloadMs) : null,
    inGatewayGrowth: ten && last && last.turn > 10 ? ratio(last.inGatewayMs, ten.inGatewayMs) : null,
    copyPerTurnBytes,
    chainBytesWritten,
    conversation,
    seconds: round((performance.now() - started) / 1000, 1),
    sizeMethod,
  };
}
