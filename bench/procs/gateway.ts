// A Parley gateway in its own process, started through createGateway like the CLI does. With
// `instrument` on it also wraps the store in a counting proxy (calls, time, bytes handed to the
// store), times the provider call, and logs one entry per HTTP request, for the scaling run.

import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { LanguageModelV4 } from '@ai-sdk/provider';
import { parseConfig } from '../../src/config/load.ts';
import { createGateway } from '../../src/gateway.ts';
import type { ConversationStore } from '../../src/store/types.ts';
import { serveRpc } from '../lib/rpc.ts';

export interface GatewayChildConfig {
  /** A parley.yaml, read by the same loader as `parley serve`. */
  yaml: string;
  instrument: boolean;
  /** Port of the database server, to count writes on its sockets (round trips). */
  dbPort: number | null;
}

export interface TurnEntry {
  /** Request arrival to response finished, inside the gateway. */
  serverMs: number;
  /** Time inside the provider call (building and sending the upstream request, reading its answer). */
  providerMs: number;
  storeMs: number;
  /** Store method calls during this request, by method. */
  storeCalls: Record<string, number>;
  /** JSON bytes of what was handed to the store to write (beginTurn + finishTurn arguments). */
  bytesWritten: number;
  /** JSON bytes of the items written (input + output of the turn). */
  itemBytes: number;
  /** Round trips to the database server (a write after a read starts one). */
  dbRoundTrips: number;
}

export interface GatewayReady {
  url: string;
  pid: number;
  chatCompletions: boolean;
  storeDescription: string | null;
}

const config = JSON.parse(process.env.PARLEY_BENCH_GATEWAY ?? '{}') as GatewayChildConfig;

const parleyConfig = parseConfig(config.yaml, process.env, 'bench.yaml');

let current: TurnEntry | null = null;
const turns: TurnEntry[] = [];
const totals = { storeCalls: {} as Record<string, number>, bytesWritten: 0, itemBytes: 0, dbRoundTrips: 0 };

function newEntry(): TurnEntry {
  return {
    serverMs: 0,
    providerMs: 0,
    storeMs: 0,
    storeCalls: {},
    bytesWritten: 0,
    itemBytes: 0,
    dbRoundTrips: 0,
  };
}

function itemsBytes(items: unknown[]): number {
  let n = 0;
  for (const item of items) n += Buffer.byteLength(JSON.stringify(item));
  return n;
}

/** Wraps every method of the store instance in place: the engine holds this same object. */
function instrumentStore(store: ConversationStore): void {
  const skip = new Set(['constructor', 'open', 'close']);
  const names = new Set<string>();
  for (
    let proto = Object.getPrototypeOf(store);
    proto && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      const d = Object.getOwnPropertyDescriptor(proto, name);
      if (!skip.has(name) && d && typeof d.value === 'function') names.add(name);
    }
  }
  const target = store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const name of names) {
    const original = target[name].bind(store);
    target[name] = async (...args: unknown[]) => {
      const entry = current ?? newEntry();
      entry.storeCalls[name] = (entry.storeCalls[name] ?? 0) + 1;
      totals.storeCalls[name] = (totals.storeCalls[name] ?? 0) + 1;
      let written = 0;
      let items = 0;
      if (name === 'beginTurn') {
        const response = args[0] as { input: unknown[]; output: unknown[] };
        written = Buffer.byteLength(JSON.stringify(response));
        items = itemsBytes(response.input) + itemsBytes(response.output);
      } else if (name === 'finishTurn') {
        const result = args[1] as { output: unknown[] };
        written = Buffer.byteLength(JSON.stringify(args[0])) + Buffer.byteLength(JSON.stringify(result));
        items = itemsBytes(result.output);
      }
      entry.bytesWritten += written;
      entry.itemBytes += items;
      totals.bytesWritten += written;
      totals.itemBytes += items;
      const started = performance.now();
      try {
        return await original(...args);
      } finally {
        entry.storeMs += performance.now() - started;
      }
    };
  }
}

/**
 * Round trips to the database: a write on a database socket that follows a read (or is the first)
 * starts one. Pipelined protocol messages (pg's Parse/Bind/Execute/Sync) count once, as they should.
 */
function instrumentDbSockets(port: number): void {
  const awaitingWrite = new WeakMap<net.Socket, boolean>();
  const write = net.Socket.prototype.write;
  net.Socket.prototype.write = function (this: net.Socket, ...args: unknown[]) {
    if (this.remotePort === port) {
      if (!awaitingWrite.has(this)) this.on('data', () => awaitingWrite.set(this, true));
      if (awaitingWrite.get(this) !== false) {
        totals.dbRoundTrips++;
        if (current) current.dbRoundTrips++;
      }
      awaitingWrite.set(this, false);
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as typeof write;
}

function timedModel(model: LanguageModelV4): LanguageModelV4 {
  return new Proxy(model, {
    get(target, property, receiver) {
      if (property === 'doGenerate') {
        return async (options: Parameters<LanguageModelV4['doGenerate']>[0]) => {
          const started = performance.now();
          try {
            return await target.doGenerate(options);
          } finally {
            if (current) current.providerMs += performance.now() - started;
          }
        };
      }
      if (property === 'doStream') {
        return async (options: Parameters<LanguageModelV4['doStream']>[0]) => {
          const started = performance.now();
          const result = await target.doStream(options);
          const entry = current;
          const stream = result.stream.pipeThrough(
            new TransformStream({
              flush() {
                if (entry) entry.providerMs += performance.now() - started;
              },
            }),
          );
          return { ...result, stream };
        };
      }
      return Reflect.get(target, property, receiver);
    },
  });
}

try {
  const gateway = await createGateway(parleyConfig, { logger: false });
  if (config.instrument) {
    if (gateway.store) instrumentStore(gateway.store);
    if (config.dbPort !== null) instrumentDbSockets(config.dbPort);
    const models = gateway.engine.models;
    const resolve = models.resolve.bind(models);
    const wrapped = new Map<string, ReturnType<typeof resolve>>();
    models.resolve = (name: string) => {
      let r = wrapped.get(name);
      if (!r) {
        const resolved = resolve(name);
        r = { ...resolved, model: timedModel(resolved.model) };
        wrapped.set(name, r);
      }
      return r;
    };
    gateway.app.server.prependListener('request', (_req, res) => {
      const entry = newEntry();
      current = entry;
      const started = performance.now();
      res.once('finish', () => {
        entry.serverMs = performance.now() - started;
        if (current === entry) current = null;
        if (turns.length < 100_000) turns.push(entry);
      });
    });
  }
  const url = await gateway.listen({ port: 0 });
  await gateway.app.ready();
  const chatCompletions = gateway.app.hasRoute({ method: 'POST', url: '/v1/chat/completions' });

  serveRpc({
    takeTurns() {
      return turns.splice(0, turns.length);
    },
    totals() {
      return totals;
    },
    memory(args: { gc?: boolean } | null) {
      if (args?.gc && typeof globalThis.gc === 'function') {
        globalThis.gc();
        globalThis.gc();
      }
      return process.memoryUsage();
    },
    cpu() {
      return process.cpuUsage();
    },
    /**
     * The floor any gateway pays for a history it must send upstream: parse the stored JSON and
     * serialise the upstream body once. Median of `reps` runs, in this process (same CPU, same JIT).
     */
    /**
     * What the memory store holds for `ids`: heap after GC, minus heap after deleting them and GC
     * again. Destructive; used once, at the end of a scaling run.
     */
    async heapFreedByDeleting(args: { ids: string[]; conversations?: string[] }) {
      const store = gateway.store;
      if (!store || typeof globalThis.gc !== 'function') return null;
      // What the engine keeps decoded in process is not the store's: dropped first, so that it is
      // neither counted nor held while the store's share is measured.
      gateway.engine.dropCaches();
      const gc = globalThis.gc;
      const heapAfterGc = () => {
        gc();
        gc();
        return process.memoryUsage().heapUsed;
      };
      // The same loop deleting nothing, twice: the first lets go of what the RPC call that asked
      // still held at the start (~130 KiB were counted as the store's without it); the second
      // measures what the heap gives back anyway between two readings, which is subtracted.
      const idleLoop = async () => {
        for (const id of args.ids) await Promise.resolve(id);
      };
      await idleLoop();
      const idle = heapAfterGc();
      await idleLoop();
      const drift = idle - heapAfterGc();
      const before = heapAfterGc();
      for (const id of args.ids) await store.deleteResponse(id);
      for (const id of args.conversations ?? []) await store.deleteConversation(id);
      return before - heapAfterGc() - drift;
    },
    payloadFloor(args: { body: string; reps: number }) {
      const times: number[] = [];
      for (let i = 0; i < args.reps; i++) {
        const started = performance.now();
        JSON.stringify(JSON.parse(args.body));
        times.push(performance.now() - started);
      }
      times.sort((a, b) => a - b);
      return times[Math.floor(times.length / 2)];
    },
  });

  process.send?.({
    ready: {
      url,
      pid: process.pid,
      chatCompletions,
      storeDescription: gateway.store?.description ?? null,
    } satisfies GatewayReady,
  });
  process.on('SIGTERM', () => {
    gateway.close().finally(() => process.exit(0));
  });
} catch (error) {
  process.send?.({ failed: (error as Error).stack ?? String(error) });
  process.exitCode = 1;
}
