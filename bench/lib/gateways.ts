// Starts a Parley gateway process (bench/procs/gateway.ts) on a store, pinned to the CPU of the
// system under test.

import { fileURLToPath } from 'node:url';
import type { GatewayChildConfig, GatewayReady } from '../procs/gateway.ts';
import type { Context } from './context.ts';
import type { HttpTarget } from './http-client.ts';
import { type NodeChild, startNodeChild } from './procs.ts';
import { configYaml, type StoreInstance, type StoreKind } from './stores.ts';
import { hostPort } from './workload.ts';

export interface GatewayProcess {
  kind: StoreKind | null;
  store: StoreInstance | null;
  url: string;
  target: HttpTarget;
  pid: number;
  chatCompletions: boolean;
  call: NodeChild<GatewayReady>['call'];
  stop(): Promise<void>;
}

const SCRIPT = fileURLToPath(new URL('../procs/gateway.ts', import.meta.url));

export async function startGateway(
  ctx: Context,
  kind: StoreKind | null,
  options: { label: string; instrument?: boolean; execArgv?: string[]; env?: Record<string, string> },
): Promise<GatewayProcess> {
  const store = kind === null ? null : await ctx.env.instance(kind, options.label);
  const config: GatewayChildConfig = {
    yaml: configYaml({ storage: store?.yaml ?? null, upstreamUrl: ctx.upstream.url, port: 0 }),
    instrument: options.instrument ?? false,
    dbPort: store?.dbPort ?? null,
  };
  const child = await startNodeChild<GatewayReady>(SCRIPT, {
    cpu: ctx.placement.sut,
    env: { PARLEY_BENCH_GATEWAY: JSON.stringify(config), ...options.env },
    execArgv: [...ctx.gatewayExecArgv, ...(options.execArgv ?? [])],
  });
  return {
    kind,
    store,
    url: child.ready.url,
    target: hostPort(child.ready.url),
    pid: child.ready.pid,
    chatCompletions: child.ready.chatCompletions,
    call: child.call,
    stop: child.stop,
  };
}
