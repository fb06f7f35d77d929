// Everything operational a gateway is assembled with, from its config: the secret scrubber,
// metrics and tracing (Telemetry, needed before the store and models are wrapped), then API keys,
// limits, stream slots, the SSE policy and the shutdown drain. gateway.ts wires them in.

import { readFileSync } from 'node:fs';
import type { AuthConfig, ParleyConfig } from '../config/types.ts';
import { ConfigError } from '../config/types.ts';
import { ApiKeys, isLoopback } from '../http/auth.ts';
import type { GuardOptions } from '../http/guard.ts';
import { type Limits, RateLimiter, resolveLimits, StreamSlots } from '../http/limits.ts';
import { OpenStreams, type SsePolicy } from '../http/sse.ts';
import type { ModelRegistry } from '../providers/types.ts';
import type { Telemetry } from './instrument.ts';
import { Metrics } from './metrics.ts';
import { loggerOptions, SecretScrubber, secretsOf } from './redact.ts';
import { Drain } from './shutdown.ts';
import { createTracing } from './tracing.ts';

export interface Operations {
  telemetry: Telemetry;
  apiKeys: ApiKeys;
  limits: Limits;
  drain: Drain;
  sse: SsePolicy;
  guard: GuardOptions;
  /** Pino options with redaction and scrubbing, from the level (or options) the caller asked for. */
  logger(base: boolean | Record<string, unknown>): false | Record<string, unknown>;
  /** Flushes and stops the trace exporter. */
  close(): Promise<void>;
}

let version = '0.0.0';
try {
  version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
} catch {
  // not fatal: spans just carry 0.0.0
}

export function createTelemetry(config: ParleyConfig, options: { defaultMetrics?: boolean } = {}): Telemetry & { open: OpenStreams } {
  const open = new OpenStreams();
  return {
    metrics: new Metrics({ bufferedBytes: () => open.bufferedBytes(), ...options }),
    tracing: createTracing(config.telemetry, version),
    scrubber: new SecretScrubber(secretsOf(config)),
    open,
  };
}

/** `models` is the registry the engine uses (API keys' model lists are checked against it). */
export function createOperations(config: ParleyConfig, models: ModelRegistry, telemetry: Telemetry & { open: OpenStreams }): Operations {
  const apiKeys = new ApiKeys(config.auth, models);
  const limits = resolveLimits(config.limits);
  const drain = new Drain();
  const sse: SsePolicy = {
    idleTimeoutMs: limits.stream_idle_timeout_ms,
    heartbeatMs: limits.stream_heartbeat_ms,
    maxBufferedBytes: limits.max_stream_buffer_bytes,
    open: telemetry.open,
  };
  const guard: GuardOptions = {
    apiKeys,
    limiter: new RateLimiter(apiKeys.keys),
    limits,
    slots: new StreamSlots(limits.max_concurrent_streams),
    metrics: telemetry.metrics,
    tracing: telemetry.tracing,
    models,
    drain,
    metricsAccess: config.telemetry?.metrics ?? 'public',
    accessLog: config.telemetry?.access_log ?? true,
  };
  return {
    telemetry,
    apiKeys,
    limits,
    drain,
    sse,
    guard,
    logger(base) {
      if (base === false) return false;
      return loggerOptions(telemetry.scrubber, base === true ? {} : base);
    },
    close: async () => {
      await telemetry.tracing?.shutdown();
    },
  };
}

/**
 * Without an `auth` section the gateway serves loopback only; any other address needs API keys
 * or an explicit `auth: none`.
 */
export function assertListenAllowed(auth: AuthConfig | undefined, host: string): void {
  if (auth !== undefined || isLoopback(host)) return;
  throw new ConfigError([
    {
      path: 'auth',
      message: `refusing to listen on ${host} without authentication: anyone who can reach it could read every stored conversation. Add auth.api_keys, or set \`auth: none\` to serve ${host} unauthenticated on purpose.`,
    },
  ]);
}

/** One line for the startup banner. */
export function describeAuth(auth: AuthConfig | undefined, host: string): string {
  if (auth === undefined) return `none — unauthenticated, loopback only (${host}); add auth.api_keys to serve other addresses`;
  if (auth.mode === 'none') return `none (auth: none) — UNAUTHENTICATED on ${host}: anyone who can reach it can read every conversation`;
  const tenants = new Set(auth.api_keys.map((k) => k.tenant));
  return `${auth.api_keys.length} API key(s), ${tenants.size} tenant(s)`;
}
