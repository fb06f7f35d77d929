// The Fastify application: routes, OpenAI-shaped errors, body limits. Built around an Engine,
// so tests and benchmarks can start it on any port with any store.

import Fastify, { type FastifyInstance, LogController } from 'fastify';
import type { Engine } from '../engine/engine.ts';
import type { Operations } from '../ops/operations.ts';
import { DEFAULT_TENANT } from '../store/types.ts';
import { clientErrorHandler, frameworkErrors, registerErrorHandlers } from './errors.ts';
import { installGuard } from './guard.ts';
import { chatCompletionsRoutes } from './routes/chat-completions.ts';
import { conversationsRoutes } from './routes/conversations.ts';
import { healthRoutes } from './routes/health.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { modelsRoutes } from './routes/models.ts';
import { responsesRoutes } from './routes/responses.ts';
import { usersRoutes } from './routes/users.ts';

export interface AppOptions {
  engine: Engine;
  maxBodyBytes: number;
  /** Pino logger options, `false` for silence (tests, benchmarks). */
  logger: boolean | { level: string } | Record<string, unknown>;
  /** Auth, tenants, limits, metrics, tracing, shutdown (src/ops/operations.ts); gateway.ts passes them. */
  ops?: Operations;
}

export function buildApp(options: AppOptions): FastifyInstance {
  const ops = options.ops;
  const app = Fastify({
    logger: ops
      ? ops.logger(options.logger)
      : options.logger === false
        ? false
        : { ...(options.logger === true ? {} : options.logger), redact: ['req.headers.authorization', 'req.headers["x-api-key"]'] },
    bodyLimit: options.maxBodyBytes,
    // Request ids are ours to log; the client's x-request-id is honoured when present.
    requestIdHeader: 'x-request-id',
    // Per-request log lines cost more than the gateway's own work on a fast upstream; errors
    // are still logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    // With ops, shutdown answers new requests itself (OpenAI-shaped 503 gateway_shutting_down).
    return503OnClosing: !ops,
    // Ids longer than this are answered 414 (frameworkErrors) before any route runs.
    routerOptions: { maxParamLength: 512 },
    frameworkErrors,
    clientErrorHandler,
  });
  registerErrorHandlers(app, ops?.telemetry.scrubber);
  if (ops) installGuard(app, ops.guard);
  else {
    app.decorateRequest('tenant', DEFAULT_TENANT);
    app.decorateRequest('apiKey', null);
  }
  const startedAt = Math.floor(Date.now() / 1000);
  const engine = options.engine;
  const http = ops ? { sse: ops.sse, drain: ops.drain } : {};
  app.register(healthRoutes(engine.store, ops ? { draining: () => ops.drain.draining, scrub: (text) => ops.telemetry.scrubber.scrub(text) } : {}));
  if (ops && ops.guard.metricsAccess !== 'off') app.register(metricsRoutes(ops.telemetry.metrics));
  app.register(modelsRoutes(engine.models, startedAt, ops ? (request) => ops.apiKeys.visibleModels(request.apiKey, engine.models.list()) : undefined));
  app.register(responsesRoutes(engine, {}, http));
  app.register(chatCompletionsRoutes(engine.models, http));
  app.register(conversationsRoutes((tenant) => engine.forTenant(tenant).conversations));
  app.register(usersRoutes(options.engine));
  return app;
}
