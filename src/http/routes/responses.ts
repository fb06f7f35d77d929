// /v1/responses: create (JSON or SSE), retrieve, delete, list input items.

import type { FastifyInstance } from 'fastify';
import type { Engine } from '../../engine/engine.ts';
import { invalidRequest } from '../../protocol/errors.ts';
import { parseCreateResponse } from '../../protocol/request.ts';
import { toClientItem } from '../../protocol/response.ts';
import { SseWriter } from '../sse.ts';

interface IdParams {
  id: string;
}
interface ListQuery {
  after?: string;
  limit?: string;
  order?: string;
}

const HEARTBEAT_MS = 15_000;

export function responsesRoutes(engine: Engine) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.post('/v1/responses', async (request, reply) => {
      const body = parseCreateResponse(request.body);
      // A client that goes away aborts the upstream request with it.
      const abort = new AbortController();
      reply.raw.on('close', () => {
        if (!reply.raw.writableFinished) abort.abort();
      });
      if (!body.stream) return engine.createResponse(body, { signal: abort.signal });

      // Headers go out with the first event, so failures before it are still plain HTTP errors.
      let sse: SseWriter | null = null;
      try {
        await engine.createResponse(body, {
          signal: abort.signal,
          onEvent: (event) => {
            if (!sse) {
              reply.hijack();
              sse = new SseWriter(reply.raw);
              sse.startHeartbeat(HEARTBEAT_MS);
            }
            sse.send(event);
          },
        });
      } catch (error) {
        if (!sse) throw error;
        request.log.error({ err: error }, 'stream failed after it started');
      }
      (sse as SseWriter | null)?.end();
      return reply;
    });

    app.get<{ Params: IdParams }>('/v1/responses/:id', async (request) => engine.getResponse(request.params.id));

    app.delete<{ Params: IdParams }>('/v1/responses/:id', async (request) => engine.deleteResponse(request.params.id));

    app.get<{ Params: IdParams; Querystring: ListQuery }>('/v1/responses/:id/input_items', async (request) => {
      const { limit, order, after } = parseListQuery(request.query);
      const page = await engine.listInputItems(request.params.id, { limit, order, ...(after ? { after } : {}) });
      const data = page.items.map(toClientItem);
      return {
        object: 'list',
        data,
        first_id: data.length > 0 ? data[0].id : null,
        last_id: data.length > 0 ? data[data.length - 1].id : null,
        has_more: page.hasMore,
      };
    });
  };
}

export function parseListQuery(query: ListQuery): { limit: number; order: 'asc' | 'desc'; after: string | null } {
  let limit = 20;
  if (query.limit !== undefined) {
    limit = Number(query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      throw invalidRequest(`Invalid 'limit': expected an integer between 1 and 100, got '${query.limit}'.`, 'limit', 'invalid_value');
    }
  }
  const order = query.order ?? 'desc';
  if (order !== 'asc' && order !== 'desc') {
    throw invalidRequest(`Invalid 'order': expected 'asc' or 'desc', got '${order}'.`, 'order', 'invalid_value');
  }
  return { limit, order, after: query.after || null };
}
