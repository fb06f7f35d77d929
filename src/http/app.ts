// The Fastify application: routes, OpenAI-shaped errors, body limits. Built around an Engine,
// so tests and benchmarks can start it on any port with any store.

import Fastify, { type FastifyInstance, LogController } from 'fastify';
import type { Engine } from '../engine/engine.ts';
import { registerErrorHandlers } from './errors.ts';
import { chatCompletionsRoutes } from './routes/chat-completions.ts';
import { conversationsRoutes } from './routes/conversations.ts';
import { healthRoutes } from './routes/health.ts';
import { modelsRoutes } from './routes/models.ts';
import { responsesRoutes } from './routes/responses.ts';
import { usersRoutes } from './routes/users.ts';

export interface AppOptions {
  engine: Engine;
  maxBodyBytes: number;
  /** Pino logger options, `false` for silence (tests, benchmarks). */
  logger: boolean | { level: string };
}

export function buildApp(options: AppOptions): FastifyInstance {
  const app = Fastify({
    logger:
      options.logger === false
        ? false
        : { ...(options.logger === true ? {} : options.logger), redact: ['req.headers.authorization', 'req.headers["x-api-key"]'] },
    bodyLimit: options.maxBodyBytes,
    // Request ids are ours to log; the client's x-request-id is honoured when present.
    requestIdHeader: 'x-request-id',
    // Per-request log lines cost more than the gateway's own work on a fast upstream; errors
    // are still logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
  });
  registerErrorHandlers(app);
  const startedAt = Math.floor(Date.now() / 1000);
  app.register(healthRoutes(options.engine.store));
  app.register(modelsRoutes(options.engine.models, startedAt));
  app.register(responsesRoutes(options.engine));
  app.register(chatCompletionsRoutes(options.engine.models));
  app.register(conversationsRoutes(options.engine.conversations));
  app.register(usersRoutes(options.engine));
  return app;
}
