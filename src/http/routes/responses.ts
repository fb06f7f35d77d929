// /v1/responses: create (JSON or SSE, foreground or background), retrieve (JSON, or its event
// stream resumed from a sequence number), cancel, delete, list input items, count input tokens,
// compact.

import type { FastifyInstance, FastifyReply } from 'fastify';
import { type BackgroundOptions, BackgroundRuns, type StreamSubscriber } from '../../engine/background.ts';
import type { Engine } from '../../engine/engine.ts';
import { parseCompactRequest } from '../../protocol/compact.ts';
import { invalidRequest } from '../../protocol/errors.ts';
import { parseInputTokensRequest } from '../../protocol/input-tokens.ts';
import { parseCreateResponse, parseInclude } from '../../protocol/request.ts';
import { toClientItem } from '../../protocol/response.ts';
import type { Drain } from '../../ops/shutdown.ts';
import { DEFAULT_SSE_POLICY, type SsePolicy, SseWriter } from '../sse.ts';

interface IdParams {
  id: string;
}
interface RetrieveQuery {
  stream?: string;
  starting_after?: string;
  include?: string | string[];
  'include[]'?: string | string[];
  include_obfuscation?: string;
}
interface ListQuery {
  after?: string;
  limit?: string;
  order?: string;
}

export interface ResponsesHttpOptions {
  sse?: SsePolicy;
  /** Graceful shutdown: foreground turns it may stop at its deadline, background turns it waits for. */
  drain?: Drain;
}

export function responsesRoutes(engine: Engine, backgroundOptions: BackgroundOptions = {}, http: ResponsesHttpOptions = {}) {
  return async function register(app: FastifyInstance): Promise<void> {
    const policy = http.sse ?? DEFAULT_SSE_POLICY;
    // One set of background runs per tenant: a run is found (and cancelled) only by its own tenant.
    const runs = new Map<string, BackgroundRuns>();
    const backgroundFor = (tenant: string): BackgroundRuns => {
      let background = runs.get(tenant);
      if (!background) {
        background = new BackgroundRuns(engine.forTenant(tenant), {
          ...backgroundOptions,
          onError: (error, context) => app.log.error({ err: error }, context),
        });
        runs.set(tenant, background);
      }
      return background;
    };
    http.drain?.watchBackground(() => {
      let running = 0;
      for (const background of runs.values()) running += background.running;
      return running;
    });
    // Before the server stops listening: running background turns are stored as failed, and
    // clients following them get their terminal event instead of a cut connection.
    app.addHook('preClose', async () => {
      await Promise.all([...runs.values()].map((background) => background.shutdown()));
    });
    const subscriber = (reply: FastifyReply) => sseSubscriber(reply, policy);

    app.post('/v1/responses', async (request, reply) => {
      const body = parseCreateResponse(request.body);
      const scoped = engine.forTenant(request.tenant);
      const background = backgroundFor(request.tenant);
      if (body.background) {
        // Detached from this request: a client that goes away stops listening, the turn runs on.
        const queued = await background.start(body);
        if (!body.stream) return queued;
        await background.stream(queued.id, { startingAfter: null, include: body.include }, subscriber(reply), closedSignal(reply));
        return reply;
      }
      // A client that goes away aborts the upstream request with it.
      const abort = new AbortController();
      reply.raw.on('close', () => {
        if (!reply.raw.writableFinished) abort.abort();
      });
      // The shutdown deadline may stop the turn (it then ends `incomplete`).
      const unregister = http.drain?.registerTurn(abort);
      try {
        if (!body.stream) return await scoped.createResponse(body, { signal: abort.signal });

        // Headers go out with the first event, so failures before it are still plain HTTP errors.
        let sse: SseWriter | null = null;
        try {
          await scoped.createResponse(body, {
            signal: abort.signal,
            onEvent: (event) => {
              if (!sse) {
                reply.hijack();
                sse = new SseWriter(reply.raw, {}, policy);
              }
              sse.send(event);
            },
            backpressure: () => (sse as SseWriter | null)?.drained() ?? null,
          });
        } catch (error) {
          if (!sse) throw error;
          request.log.error({ err: error }, 'stream failed after it started');
        }
        (sse as SseWriter | null)?.end();
        return reply;
      } finally {
        unregister?.();
      }
    });

    app.get<{ Params: IdParams; Querystring: RetrieveQuery }>('/v1/responses/:id', async (request, reply) => {
      const query = request.query;
      const include = parseInclude(query['include[]'] ?? query.include);
      if (!parseBooleanQuery(query.stream, 'stream')) return engine.forTenant(request.tenant).getResponse(request.params.id, include);
      const startingAfter = parseStartingAfter(query.starting_after);
      await backgroundFor(request.tenant).stream(request.params.id, { startingAfter, include }, subscriber(reply), closedSignal(reply));
      return reply;
    });

    app.post<{ Params: IdParams }>('/v1/responses/:id/cancel', async (request) => backgroundFor(request.tenant).cancel(request.params.id));

    app.post('/v1/responses/input_tokens', async (request) => {
      const body = parseInputTokensRequest(request.body);
      return { object: 'response.input_tokens', input_tokens: await engine.forTenant(request.tenant).countInputTokens(body) };
    });

    app.post('/v1/responses/compact', async (request, reply) => {
      const abort = new AbortController();
      reply.raw.on('close', () => {
        if (!reply.raw.writableFinished) abort.abort();
      });
      return engine.forTenant(request.tenant).compact(parseCompactRequest(request.body), abort.signal);
    });

    app.delete<{ Params: IdParams }>('/v1/responses/:id', async (request) => engine.forTenant(request.tenant).deleteResponse(request.params.id));

    app.get<{ Params: IdParams; Querystring: ListQuery }>('/v1/responses/:id/input_items', async (request) => {
      const { limit, order, after } = parseListQuery(request.query);
      const page = await engine.forTenant(request.tenant).listInputItems(request.params.id, { limit, order, ...(after ? { after } : {}) });
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

/**
 * Writes a stream as SSE on a hijacked reply, opened once the stream is accepted. The turn does
 * not wait for this client (others may follow it too): a client that falls too far behind is
 * dropped, and can resume with `starting_after`.
 */
function sseSubscriber(reply: FastifyReply, policy: SsePolicy): StreamSubscriber {
  let sse: SseWriter | null = null;
  return {
    open() {
      reply.hijack();
      sse = new SseWriter(reply.raw, {}, policy, { dropWhenBehind: true });
    },
    send: (event) => sse?.send(event),
    end: () => sse?.end(),
  };
}

/** Aborted when the client's connection goes away. */
function closedSignal(reply: FastifyReply): AbortSignal {
  const closed = new AbortController();
  reply.raw.on('close', () => closed.abort());
  return closed.signal;
}

function parseBooleanQuery(value: string | undefined, param: string): boolean {
  if (value === undefined || value === '' || value === 'false') return false;
  if (value === 'true') return true;
  throw invalidRequest(`Invalid '${param}': expected 'true' or 'false', got '${value}'.`, param, 'invalid_value');
}

function parseStartingAfter(value: string | undefined): number | null {
  if (value === undefined || value === '') return null;
  const n = Number(value);
  if (!Number.isInteger(n) || n < -1) {
    throw invalidRequest(`Invalid 'starting_after': expected a sequence number (an integer >= 0), got '${value}'.`, 'starting_after', 'invalid_value');
  }
  return n;
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
