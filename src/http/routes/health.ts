// Liveness (/healthz: the process serves and its store was opened) and readiness (/readyz: the
// store answers right now). A load balancer should route on /readyz.

import type { FastifyInstance } from 'fastify';
import type { ConversationStore } from '../../store/types.ts';

export function healthRoutes(store: ConversationStore | null) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/readyz', async (_request, reply) => {
      if (!store) return { status: 'ready', state_storage: 'none' };
      try {
        await store.ping();
        return { status: 'ready', state_storage: store.description };
      } catch (error) {
        reply.status(503);
        return {
          status: 'not_ready',
          error: { message: `state storage is not answering: ${(error as Error).message}`, type: 'server_error', param: null, code: 'state_storage_unavailable' },
        };
      }
    });
  };
}
