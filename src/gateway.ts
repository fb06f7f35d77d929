// Assembles a running gateway from a validated config: store -> models -> engine -> HTTP app.
// The CLI, the tests and the benchmarks all start Parley through here.

import type { FastifyInstance } from 'fastify';
import type { ParleyConfig } from './config/types.ts';
import { Engine } from './engine/engine.ts';
import { buildApp } from './http/app.ts';
import { createModelRegistry } from './providers/registry.ts';
import { createStore } from './store/index.ts';
import { DEFAULT_STALE_TURN_AFTER_SECONDS, Sweeper } from './store/retention.ts';
import type { ConversationStore } from './store/types.ts';

export interface Gateway {
  app: FastifyInstance;
  engine: Engine;
  store: ConversationStore | null;
  config: ParleyConfig;
  /** Starts listening; resolves to the base URL (`http://127.0.0.1:12000`). */
  listen(overrides?: { host?: string; port?: number }): Promise<string>;
  close(): Promise<void>;
}

export interface GatewayOptions {
  logger?: boolean | { level: string };
}

export async function createGateway(config: ParleyConfig, options: GatewayOptions = {}): Promise<Gateway> {
  // Models first: a config naming an unavailable provider fails before any file is opened.
  const models = createModelRegistry(config.model_providers);
  const store = config.state_storage ? await createStore(config.state_storage) : null;
  if (store) await store.open();
  const engine = new Engine({
    store,
    models,
    ttlSeconds: config.state_storage?.ttl_seconds ?? null,
    context: { compaction: config.compaction ?? null },
  });
  const app = buildApp({ engine, maxBodyBytes: config.limits.max_body_bytes, logger: options.logger ?? false });
  engine.setBackgroundErrorReporter((error, context) => app.log.error({ err: error }, context));
  const sweeper = store && config.state_storage ? await startRetention(store, config.state_storage, app) : null;
  let closed = false;
  return {
    app,
    engine,
    store,
    config,
    async listen(overrides = {}) {
      const host = overrides.host ?? config.listen.host;
      const port = overrides.port ?? config.listen.port;
      await app.listen({ host, port });
      const address = app.server.address();
      const actualPort = typeof address === 'object' && address ? address.port : port;
      return `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
    },
    async close() {
      if (closed) return;
      closed = true;
      await sweeper?.stop();
      await app.close();
      await store?.close();
    },
  };
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
