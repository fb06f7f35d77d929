// OpenTelemetry traces, exported over OTLP/HTTP (JSON) when `telemetry.otlp_endpoint` is set.
// One span per request (kind SERVER), with child spans for the store operations and the upstream
// model calls made on its behalf. The provider is this gateway's own (no global registration),
// and parents are passed explicitly from the request context, so no global context manager is
// needed and several gateways can share a process.

import { type Attributes, context as otelContext, type Span, SpanKind, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { TelemetryConfig } from '../config/types.ts';

export interface Tracing {
  /** The span of one HTTP request. */
  startRequest(name: string, attributes: Attributes): Span;
  /** A child of `parent` (store operation, upstream call). */
  startChild(parent: Span | null, name: string, attributes: Attributes, kind?: SpanKind): Span;
  /** Exports what is pending and stops. */
  shutdown(): Promise<void>;
}

export function createTracing(telemetry: TelemetryConfig | undefined, version: string): Tracing | null {
  if (!telemetry?.otlp_endpoint) return null;
  const exporter = new OTLPTraceExporter({ url: telemetry.otlp_endpoint, headers: telemetry.otlp_headers ?? {} });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': telemetry.service_name ?? 'parley', 'service.version': version }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000 })],
  });
  const tracer: Tracer = provider.getTracer('parley', version);
  return {
    startRequest: (name, attributes) => tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, otelContext.active()),
    startChild(parent, name, attributes, kind = SpanKind.INTERNAL) {
      const parentContext = parent ? trace.setSpan(otelContext.active(), parent) : otelContext.active();
      return tracer.startSpan(name, { kind, attributes }, parentContext);
    },
    async shutdown() {
      await provider.forceFlush().catch(() => {});
      await provider.shutdown().catch(() => {});
    },
  };
}

/** Ends a span with an error status when `error` is set. */
export function endSpan(span: Span | null, error?: unknown): void {
  if (!span) return;
  if (error !== undefined && error !== null) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.name : 'error' });
  }
  span.end();
}
