// What every request goes through before and after its route, as Fastify hooks on the root app:
//
//   onRequest   request context (id, clock, span), shutdown check (503), API key (401) and its
//               tenant, requests per minute (429)
//   preHandler  JSON nesting and item counts (400), the key's models (403), tokens per minute
//               (429), a stream slot (503)
//   handler     runs inside the request context (AsyncLocalStorage), so the store and model
//               wrappers attribute their work to this request's span and key
//   close       metrics, span end, access log, rate-limit correction done by then
//
// /healthz and /readyz are always open; /metrics is open, behind a key, or absent, by config.

import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';
import type { ApiKeyConfig } from '../config/types.ts';
import { type RequestContext, requestContext } from '../ops/context.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { Drain } from '../ops/shutdown.ts';
import { endSpan, type Tracing } from '../ops/tracing.ts';
import { ApiError } from '../protocol/errors.ts';
import type { ModelRegistry, ResolvedModel } from '../providers/types.ts';
import { DEFAULT_TENANT } from '../store/types.ts';
import type { ApiKeys } from './auth.ts';
import { checkBody, estimateTokens, type Limits, type RateLimiter, type StreamSlots, tooManyStreams } from './limits.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The tenant this request acts for: its API key's, or `default` without keys. */
    tenant: string;
    /** The API key that authenticated this request (null without keys). */
    apiKey: ApiKeyConfig | null;
    /** Operations context: metrics, traces, rate-limit accounting. */
    parley: RequestContext;
  }
}

export interface GuardOptions {
  apiKeys: ApiKeys;
  limiter: RateLimiter;
  limits: Limits;
  slots: StreamSlots;
  metrics: Metrics;
  tracing: Tracing | null;
  models: ModelRegistry;
  drain: Drain;
  metricsAccess: 'public' | 'authenticated' | 'off';
  accessLog: boolean;
}

/** Routes whose body names a model. */
const MODEL_ROUTES = new Set(['/v1/responses', '/v1/responses/input_tokens', '/v1/responses/compact', '/v1/chat/completions']);
/** Routes that call a model, and so count against tokens per minute. */
const MODEL_CALLS = new Set(['/v1/responses', '/v1/responses/compact', '/v1/chat/completions']);

export function installGuard(app: FastifyInstance, options: GuardOptions): void {
  const { apiKeys, limiter, limits, slots, metrics, tracing, models, drain } = options;
  const open = new Set(['/healthz', '/readyz']);
  if (options.metricsAccess === 'public') open.add('/metrics');

  app.decorateRequest('tenant', DEFAULT_TENANT);
  app.decorateRequest('apiKey', null);
  // biome-ignore lint/suspicious/noExplicitAny: set in onRequest before anything reads it
  app.decorateRequest('parley', null as any);

  // Handlers run inside their request's context.
  app.addHook('onRoute', (route) => {
    const handler = route.handler as RouteHandlerMethod;
    route.handler = function (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
      return requestContext.run(request.parley, () => handler.call(this, request, reply));
    } as RouteHandlerMethod;
  });

  app.addHook('onRequest', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const ctx: RequestContext = {
      requestId: request.id,
      startedAt: performance.now(),
      span: tracing ? tracing.startRequest(`${request.method} ${route}`, { 'http.request.method': request.method, 'http.route': route, 'parley.request_id': request.id }) : null,
      tenant: DEFAULT_TENANT,
      keyName: null,
      model: null,
      provider: null,
      ttftSeconds: null,
      onUsage: null,
    };
    request.parley = ctx;
    reply.raw.setHeader('x-request-id', request.id);
    const untrack = drain.trackRequest();
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      untrack();
      observe(request, reply, ctx, route, metrics, options.accessLog);
    };
    reply.raw.once('close', finish);
    reply.raw.once('finish', finish);

    if (drain.draining && !open.has(route)) {
      reply.header('connection', 'close');
      return done(new ApiError(503, 'server_error', 'The gateway is shutting down; retry on another instance.', { code: 'gateway_shutting_down', headers: { 'retry-after': '1' } }));
    }
    if (!apiKeys.required || open.has(route)) return done();
    const key = apiKeys.authenticate(request.headers);
    if (key instanceof ApiError) {
      metrics.authFailures.inc({ reason: request.headers.authorization || request.headers['x-api-key'] ? 'invalid' : 'missing' });
      return done(key);
    }
    request.apiKey = key;
    request.tenant = key.tenant;
    ctx.tenant = key.tenant;
    ctx.keyName = key.name;
    ctx.span?.setAttributes({ 'parley.tenant': key.tenant, 'parley.key': key.name });
    const admitted = limiter.admitRequest(key);
    if (!admitted.ok) {
      metrics.rateLimited.inc({ tenant: key.tenant, limit: 'requests' });
      return done(admitted.error);
    }
    done();
  });

  app.addHook('preHandler', (request, reply, done) => {
    try {
      const route = request.routeOptions.url ?? '';
      const body = request.body;
      if (body !== undefined) checkBody(body, limits);
      const ctx = request.parley;
      const fields = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : null;
      if (request.method === 'POST' && MODEL_ROUTES.has(route) && fields) {
        const resolved = typeof fields.model === 'string' ? tryResolve(models, fields.model) : null;
        if (resolved) {
          ctx.model = metrics.modelLabel(resolved.route);
          ctx.provider = resolved.provider;
          const refused = apiKeys.checkModel(request.apiKey, fields.model as string, resolved);
          if (refused) {
            metrics.authFailures.inc({ reason: 'model' });
            throw refused;
          }
        }
        const key = request.apiKey;
        if (key && MODEL_CALLS.has(route) && limiter.limitsTokens(key)) {
          const estimate = estimateTokens(Number(request.headers['content-length'] ?? 0) || 0, fields);
          const admitted = limiter.admitTokens(key, estimate);
          if (!admitted.ok) {
            metrics.rateLimited.inc({ tenant: key.tenant, limit: 'tokens' });
            throw admitted.error;
          }
          // What the upstream reports replaces the estimate (the history sent is known only then).
          let outstanding = estimate;
          ctx.onUsage = (tokens) => {
            limiter.correctTokens(key, tokens - outstanding);
            outstanding = 0;
          };
        }
      }
      if (isStream(request, route, fields)) {
        const release = slots.acquire();
        if (!release) throw tooManyStreams(slots.max);
        metrics.activeStreams.inc();
        reply.raw.once('close', () => {
          release();
          metrics.activeStreams.dec();
        });
      }
      done();
    } catch (error) {
      done(error as Error);
    }
  });
}

function tryResolve(models: ModelRegistry, name: string): ResolvedModel | null {
  try {
    return models.resolve(name);
  } catch {
    return null; // the route answers the unknown model with its own 400
  }
}

function isStream(request: FastifyRequest, route: string, body: Record<string, unknown> | null): boolean {
  if (request.method === 'POST') return (route === '/v1/responses' || route === '/v1/chat/completions') && body?.stream === true;
  if (request.method === 'GET' && route === '/v1/responses/:id') return (request.query as Record<string, unknown>)?.stream === 'true';
  return false;
}

/** Once the response is over: counters, latency, the span, the access log line. */
function observe(request: FastifyRequest, reply: FastifyReply, ctx: RequestContext, route: string, metrics: Metrics, accessLog: boolean): void {
  const res = reply.raw;
  // A client that left before the end gets nginx's 499.
  const status = res.writableFinished ? res.statusCode : 499;
  const seconds = (performance.now() - ctx.startedAt) / 1000;
  const method = request.method;
  metrics.requests.inc({ route, method, status: String(status), model: ctx.model ?? '', provider: ctx.provider ?? '' });
  metrics.requestDuration.observe({ route, method, status: String(status) }, seconds);
  if (ctx.span) {
    ctx.span.setAttribute('http.response.status_code', status);
    endSpan(ctx.span, status >= 500 ? new Error(`HTTP ${status}`) : undefined);
  }
  if (accessLog) {
    request.log.info(
      {
        method,
        route,
        status,
        duration_ms: Math.round(seconds * 1000),
        tenant: ctx.tenant,
        ...(ctx.keyName ? { key: ctx.keyName } : {}),
        ...(ctx.model ? { model: ctx.model } : {}),
        ...(ctx.ttftSeconds !== null ? { ttft_ms: Math.round(ctx.ttftSeconds * 1000) } : {}),
      },
      'request completed',
    );
  }
}
