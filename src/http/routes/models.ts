// /v1/models: what a client may send as `model` (with API keys: what this key may use). Never
// shows keys or base URLs.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ModelRegistry } from '../../providers/types.ts';

export function modelsRoutes(
  models: ModelRegistry,
  startedAt: number,
  visible: (request: FastifyRequest) => { id: string; provider: string }[] = () => models.list(),
) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.get('/v1/models', async (request) => ({
      object: 'list',
      data: visible(request).map((m) => ({ id: m.id, object: 'model', created: startedAt, owned_by: m.provider })),
    }));
  };
}
