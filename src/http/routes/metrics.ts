// GET /metrics: Prometheus text format (see src/ops/metrics.ts for what is measured). Whether it
// needs an API key is `telemetry.metrics` (guard.ts applies it).

import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../../ops/metrics.ts';

export function metricsRoutes(metrics: Metrics) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.get('/metrics', async (_request, reply) => {
      const { contentType, body } = await metrics.render();
      reply.header('content-type', contentType);
      reply.header('cache-control', 'no-store');
      return body;
    });
  };
}
