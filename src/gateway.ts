// Assembles a running gateway from a validated config: store -> models -> engine -> HTTP app.
// The CLI, the tests and the benchmarks all start Parley through here.

import type { FastifyInstance } from 'fastify';
import type { ParleyConfig } from './config/types.ts';
import { Engine } from './engine/engine.ts';
import { buildApp } from './http/app.ts';
import { instrumentModels, instrumentStore } from './ops/instrument.ts';
import { assertListenAllowed, createOperations, createTelemetry, type Operations } from './ops/operations.ts';
import { createModelRegistry } from './providers/registry.ts';
import { createStore } from './store/index.ts';
import { DEFAULT_STALE_TURN_AFTER_SECONDS, Sweeper } from './store/retention.ts';
import type { ConversationStore } from './store/types.ts';

export interface Gateway {
  app: FastifyInstance;
  engine: Engine;
  store: ConversationStore | null;
  config: ParleyConfig;
  /** Auth, limits, metrics, tracing and the shutdown drain. */
  ops: Operations;
  /**
   * Starts listening; resolves to the base URL (`http://127.0.0.1:12000`). Without an `auth`
   * section, only loopback addresses are allowed (a ConfigError otherwise).
   */
  listen(overrides?: { host?: string; port?: number }): Promise<string>;
  /**
   * Graceful shutdown (SIGTERM): stops accepting, lets in-flight requests and background turns
   * finish for up to `timeoutMs` (default limits.shutdown_timeout), records foreground turns still
   * running as `incomplete`, then closes (background turns left are stored `failed`).
   */
  shutdown(timeoutMs?: number): Promise<{ stopped: number }>;
  close(): Promise<void>;
}

export interface GatewayOptions {
  /** `false` for silence; a level; or pino options (e.g. `{ level, stream }`). Redaction is always added. */
  logger?: boolean | { level: string } | Record<string, unknown>;
}

export async function createGateway(config: ParleyConfig, options: GatewayOptions = {}): Promise<Gateway> {
  // Models first: a config naming an unavailable provider fails before any file is opened.
  const telemetry = createTelemetry(config);
  const models = instrumentModels(createModelRegistry(config.model_providers), telemetry);
  const ops = createOperations(config, models, telemetry);
  const store = config.state_storage ? await createStore(config.state_storage) : null;
  if (store) await store.open();
  const engine = new Engine({
    // The engine's store is measured (latency, errors, spans); `store` below stays the store itself.
    store: store && config.state_storage ? instrumentStore(store, telemetry, config.state_storage.type) : null,
    models,
    ttlSeconds: config.state_storage?.ttl_seconds ?? null,
    context: { compaction: config.compaction ?? null },
  });
  const app = buildApp({ engine, maxBodyBytes: config.limits.max_body_bytes, logger: options.logger ?? false, ops });
  engine.setBackgroundErrorReporter((error, context) => app.log.error({ err: error }, context));
  const sweeper = store && config.state_storage ? await startRetention(store, config.state_storage, app) : null;
  let closed = false;
  const gateway: Gateway = {
    app,
    engine,
    store,
    config,
    ops,
    async listen(overrides = {}) {
      const host = overrides.host ?? config.listen.host;
      const port = overrides.port ?? config.listen.port;
      assertListenAllowed(config.auth, host);
      await app.listen({ host, port });
      const address = app.server.address();
      const actualPort = typeof address === 'object' && address ? address.port : port;
      return `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
    },
    async shutdown(timeoutMs = ops.limits.shutdown_timeout_ms) {
      // New connections are refused from here on; requests on open ones get a 503.
      if (app.server.listening) app.server.close();
      const { stopped } = await ops.drain.drain({ timeoutMs });
      await gateway.close();
      return { stopped };
    },
    async close() {
      if (closed) return;
      closed = true;
      ops.drain.stopAccepting();
      await sweeper?.stop();
      await app.close();
      await store?.close();
      await ops.close();
    },
  };
  return gateway;
}

/**
 * Turns left `in_progress` by an instance that died (kill -9, OOM, a lost machine) are marked
 * failed once at startup, then by the sweeper when `prune_interval` is set. A failure here is
 * logged, never fatal: the gateway serves correctly without it (such turns are never context).
 */
async function startRetention(
  store: ConversationStore,
  storage: NonNullable<ParleyConfig['state_storage']>,
  app: FastifyInstance,
): Promise<Sweeper | null> {
  const staleTurnAfterSeconds = storage.stale_turn_after_seconds ?? DEFAULT_STALE_TURN_AFTER_SECONDS;
  try {
    const failed = await store.failStaleTurns(Math.floor(Date.now() / 1000) - staleTurnAfterSeconds);
    if (failed > 0) app.log.warn(`retention: marked ${failed} stale turn(s) of stopped instances failed (interrupted)`);
  } catch (error) {
    app.log.error({ err: error }, 'retention: could not mark stale turns failed at startup');
  }
  if (storage.prune_interval_seconds === undefined) return null;
  const sweeper = new Sweeper(store, {
    intervalSeconds: storage.prune_interval_seconds,
    staleTurnAfterSeconds,
    onResult: ({ pruned, failedStaleTurns }) => {
      if (pruned > 0 || failedStaleTurns > 0) {
        app.log.info(`retention: pruned ${pruned} expired record(s), marked ${failedStaleTurns} stale turn(s) failed`);
      }
    },
    onError: (error) => app.log.error({ err: error }, 'retention: sweep failed; retrying at the next interval'),
  });
  sweeper.start();
  return sweeper;
}
