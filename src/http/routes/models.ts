// /v1/models: what a client may send as `model`. Never shows keys or base URLs.

import type { FastifyInstance } from 'fastify';
import type { ModelRegistry } from '../../providers/types.ts';

export function modelsRoutes(models: ModelRegistry, startedAt: number) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.get('/v1/models', async () => ({
      object: 'list',
      data: models.list().map((m) => ({ id: m.id, object: 'model', created: startedAt, owned_by: m.provider })),
    }));
  };
}
