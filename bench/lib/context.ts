// What every phase of a run shares: the profile (how long to measure), the CPU placement, the
// fake upstream, the store environment, and a logger that writes progress to stderr.

import type { HttpTarget } from './http-client.ts';
import type { Peer } from './peers.ts';
import type { Placement } from './procs.ts';
import type { createRpcClient } from './rpc.ts';
import type { StoreEnvironment, StoreStatus } from './stores.ts';

export interface Profile {
  quick: boolean;
  /** Concurrency-1 interleaved rounds (one request to every target per round). */
  c1Rounds: number;
  c1WarmupRounds: number;
  concurrencies: number[];
  blockMs: number;
  blockWarmupMs: number;
  blockRounds: number;
  throughputConcurrency: number;
  /** Measured time per target, split over `throughputRounds` alternating blocks. */
  throughputMs: number;
  throughputRounds: number;
  throughputWarmupMs: number;
  scalingTurns: number[];
  scalingSamples: number;
  footprintStarts: number;
  footprintLoadMs: number;
  /** Conversations seeded per gateway: one per virtual user at the highest concurrency. */
  roots: number;
}

export const FULL: Profile = {
  quick: false,
  c1Rounds: 400,
  c1WarmupRounds: 40,
  concurrencies: [1, 16, 64],
  blockMs: 1000,
  blockWarmupMs: 250,
  blockRounds: 2,
  throughputConcurrency: 64,
  throughputMs: 4000,
  throughputRounds: 2,
  throughputWarmupMs: 500,
  scalingTurns: [1, 10, 100, 1000],
  scalingSamples: 15,
  footprintStarts: 5,
  footprintLoadMs: 3000,
  roots: 64,
};

export const QUICK: Profile = {
  quick: true,
  c1Rounds: 100,
  c1WarmupRounds: 20,
  concurrencies: [1, 16, 64],
  blockMs: 400,
  blockWarmupMs: 150,
  blockRounds: 1,
  throughputConcurrency: 64,
  throughputMs: 1200,
  throughputRounds: 1,
  throughputWarmupMs: 400,
  scalingTurns: [1, 10, 100],
  scalingSamples: 7,
  footprintStarts: 2,
  footprintLoadMs: 1000,
  roots: 64,
};

export interface Upstream {
  url: string;
  target: HttpTarget;
  pid: number;
  call: ReturnType<typeof createRpcClient>;
}

export interface Context {
  profile: Profile;
  placement: Placement;
  upstream: Upstream;
  env: StoreEnvironment;
  stores: StoreStatus[];
  portkey: Peer | null;
  portkeyNote: string | null;
  /** Extra Node flags for gateway processes (e.g. --cpu-prof). */
  gatewayExecArgv: string[];
  log(message: string): void;
}
