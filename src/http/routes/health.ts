// Liveness (/healthz: the process serves and its store was opened) and readiness (/readyz: the
// store answers right now, and the gateway is not shutting down). A load balancer should route on
// /readyz.

import type { FastifyInstance } from 'fastify';
import type { ConversationStore } from '../../store/types.ts';

export interface HealthOptions {
  /** True once shutdown began: /readyz answers 503 so load balancers stop sending traffic. */
  draining?: () => boolean;
  /** Masks secrets in the store's error message. */
  scrub?: (text: string) => string;
}

export function healthRoutes(store: ConversationStore | null, options: HealthOptions = {}) {
  const scrub = options.scrub ?? ((text: string) => text);
  return async function register(app: FastifyInstance): Promise<void> {
    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/readyz', async (_request, reply) => {
      if (options.draining?.()) {
        reply.status(503);
        return {
          status: 'draining',
          error: { message: 'The gateway is shutting down.', type: 'server_error', param: null, code: 'gateway_shutting_down' },
        };
      }
      if (!store) return { status: 'ready', state_storage: 'none' };
      try {
        await store.ping();
        return { status: 'ready', state_storage: store.description };
      } catch (error) {
        reply.status(503);
        return {
          status: 'not_ready',
          error: { message: `state storage is not answering: ${scrub((error as Error).message)}`, type: 'server_error', param: null, code: 'state_storage_unavailable' },
        };
      }
    });
  };
}
