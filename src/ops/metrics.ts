// Prometheus metrics, one registry per gateway (tests run several in one process). Labels are
// bounded on purpose: routes are route patterns, models are configured models (at most
// MAX_MODEL_LABELS distinct values, then `other`: a wildcard provider would otherwise let clients
// mint series), tenants come from the config. No label ever holds a key or a URL.

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

const MAX_MODEL_LABELS = 100;

/**
 * Process metrics (CPU, memory, event loop lag, GC) describe the process, not a gateway: one
 * registry per process, merged into every gateway's scrape.
 */
let processRegistry: Registry | null = null;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, prefix: 'parley_' });
  }
  return processRegistry;
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const STORE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<'route' | 'method' | 'status' | 'model' | 'provider'>;
  readonly requestDuration: Histogram<'route' | 'method' | 'status'>;
  readonly timeToFirstToken: Histogram<'model' | 'provider'>;
  readonly upstreamDuration: Histogram<'model' | 'provider' | 'outcome'>;
  readonly upstreamRequests: Counter<'model' | 'provider' | 'outcome'>;
  readonly storeDuration: Histogram<'operation' | 'backend'>;
  readonly storeErrors: Counter<'operation' | 'backend'>;
  readonly tokens: Counter<'direction' | 'model' | 'provider' | 'tenant'>;
  readonly activeStreams: Gauge;
  readonly streamBufferedBytes: Gauge;
  readonly rateLimited: Counter<'tenant' | 'limit'>;
  readonly authFailures: Counter<'reason'>;
  readonly #models = new Set<string>();
  readonly #withProcess: boolean;

  constructor(options: { defaultMetrics?: boolean; bufferedBytes?: () => number } = {}) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'parley_http_requests_total',
      help: 'HTTP requests by route pattern, method, status and requested model/provider.',
      labelNames: ['route', 'method', 'status', 'model', 'provider'],
      registers,
    });
    this.requestDuration = new Histogram({
      name: 'parley_http_request_duration_seconds',
      help: 'Time from request arrival to the last byte of the response (whole stream for SSE).',
      labelNames: ['route', 'method', 'status'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.timeToFirstToken = new Histogram({
      name: 'parley_time_to_first_token_seconds',
      help: 'Time from request arrival to the first output part from the upstream model.',
      labelNames: ['model', 'provider'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.upstreamDuration = new Histogram({
      name: 'parley_upstream_duration_seconds',
      help: 'Duration of each upstream model call, to the end of its answer.',
      labelNames: ['model', 'provider', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.upstreamRequests = new Counter({
      name: 'parley_upstream_requests_total',
      help: 'Upstream model calls by outcome (ok, error, aborted).',
      labelNames: ['model', 'provider', 'outcome'],
      registers,
    });
    this.storeDuration = new Histogram({
      name: 'parley_store_duration_seconds',
      help: 'State storage operation latency.',
      labelNames: ['operation', 'backend'],
      buckets: STORE_BUCKETS,
      registers,
    });
    this.storeErrors = new Counter({
      name: 'parley_store_errors_total',
      help: 'State storage operations that failed.',
      labelNames: ['operation', 'backend'],
      registers,
    });
    this.tokens = new Counter({
      name: 'parley_tokens_total',
      help: 'Tokens reported by upstream models, by direction (input, output).',
      labelNames: ['direction', 'model', 'provider', 'tenant'],
      registers,
    });
    this.activeStreams = new Gauge({
      name: 'parley_active_streams',
      help: 'Server-sent event streams open right now.',
      registers,
    });
    const bufferedBytes = options.bufferedBytes;
    this.streamBufferedBytes = new Gauge({
      name: 'parley_stream_buffered_bytes',
      help: 'Bytes written to open streams that their clients have not read yet (held by the gateway).',
      registers,
      collect() {
        if (bufferedBytes) this.set(bufferedBytes());
      },
    });
    this.rateLimited = new Counter({
      name: 'parley_rate_limited_total',
      help: 'Requests refused by a per-key rate limit (requests or tokens per minute).',
      labelNames: ['tenant', 'limit'],
      registers,
    });
    this.authFailures = new Counter({
      name: 'parley_auth_failures_total',
      help: 'Requests refused for a missing or unknown API key, or a model the key may not use.',
      labelNames: ['reason'],
      registers,
    });
    this.#withProcess = options.defaultMetrics !== false;
    if (this.#withProcess) processMetrics();
  }

  /** A model label value: the configured model, or `other` once MAX_MODEL_LABELS are in use. */
  modelLabel(model: string | null): string {
    if (model === null) return '';
    if (this.#models.has(model)) return model;
    if (this.#models.size >= MAX_MODEL_LABELS) return 'other';
    this.#models.add(model);
    return model;
  }

  async render(): Promise<{ contentType: string; body: string }> {
    const registry = this.#withProcess ? Registry.merge([this.registry, processMetrics()]) : this.registry;
    return { contentType: this.registry.contentType, body: await registry.metrics() };
  }
}
