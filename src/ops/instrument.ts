// Measuring the store and the upstream models without either knowing: the engine is handed a
// store and a model registry that wrap the real ones. Each store operation gets a latency sample,
// an error count and a child span of the request; each upstream call gets its duration, time to
// first token, token counts and a span. Upstream errors are scrubbed of secrets right here, at
// the boundary, before they can become a client's error message or a stored response's error.

import { performance } from 'node:perf_hooks';
import type { LanguageModelV4, LanguageModelV4StreamPart } from '@ai-sdk/provider';
import { SpanKind } from '@opentelemetry/api';
import type { ModelRegistry, ResolvedModel } from '../providers/types.ts';
import type { ConversationStore } from '../store/types.ts';
import { currentRequest } from './context.ts';
import type { Metrics } from './metrics.ts';
import type { SecretScrubber } from './redact.ts';
import { endSpan, type Tracing } from './tracing.ts';

export interface Telemetry {
  metrics: Metrics;
  tracing: Tracing | null;
  scrubber: SecretScrubber;
}

const NOT_INSTRUMENTED = new Set<PropertyKey>(['constructor', 'open', 'close']);

/**
 * The store as the engine should use it. Methods are looked up on the real store at each call,
 * so code that patches the store instance (benchmarks) still sees every call.
 */
export function instrumentStore(store: ConversationStore, telemetry: Telemetry, backend: string): ConversationStore {
  const { metrics, tracing } = telemetry;
  const wrappers = new Map<PropertyKey, (...args: unknown[]) => unknown>();
  return new Proxy(store, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== 'function' || NOT_INSTRUMENTED.has(property) || typeof property !== 'string') {
        return typeof value === 'function' ? value.bind(target) : value;
      }
      let wrapper = wrappers.get(property);
      if (!wrapper) {
        const operation = property;
        const labels = { operation, backend };
        wrapper = (...args: unknown[]) => {
          const method = Reflect.get(target, operation, target) as (...a: unknown[]) => unknown;
          const span = tracing ? tracing.startChild(currentRequest()?.span ?? null, `store.${operation}`, { 'db.system': backend, 'parley.store.operation': operation }, SpanKind.CLIENT) : null;
          const started = performance.now();
          const done = (error?: unknown) => {
            metrics.storeDuration.observe(labels, (performance.now() - started) / 1000);
            if (error !== undefined) metrics.storeErrors.inc(labels);
            endSpan(span, error);
          };
          let result: unknown;
          try {
            result = method.apply(target, args);
          } catch (error) {
            done(error);
            throw error;
          }
          if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
            return (result as Promise<unknown>).then(
              (value) => {
                done();
                return value;
              },
              (error: unknown) => {
                done(error ?? new Error('store operation failed'));
                throw error;
              },
            );
          }
          done();
          return result;
        };
        wrappers.set(property, wrapper);
      }
      return wrapper;
    },
  });
}

/** The registry with every resolved model's calls measured (fallbacks resolve through it too). */
export function instrumentModels(registry: ModelRegistry, telemetry: Telemetry): ModelRegistry {
  const wrapped = new WeakMap<ResolvedModel, ResolvedModel>();
  // Everything else the registry offers is inherited unchanged.
  const out = Object.create(registry) as ModelRegistry;
  out.resolve = (name: string) => {
    const resolved = registry.resolve(name);
    let model = wrapped.get(resolved);
    if (!model) {
      const begin = callObserver(resolved, telemetry);
      model = { ...resolved, model: instrumentModel(resolved, begin), observeCall: begin };
      wrapped.set(resolved, model);
    }
    return model;
  };
  return out;
}

type Part = LanguageModelV4StreamPart;
/** Parts that carry no output (as in resilient-call.ts): they do not count as the first token. */
const PREAMBLE = new Set<Part['type']>(['stream-start', 'response-metadata', 'raw', 'custom']);

interface UsageLike {
  inputTokens?: { total?: number | undefined } | number | undefined;
  outputTokens?: { total?: number | undefined } | number | undefined;
}

function tokenCount(value: UsageLike['inputTokens']): number {
  if (typeof value === 'number') return value;
  return value?.total ?? 0;
}

/** One upstream call's bookkeeping, for the AI SDK model's calls and for calls made without it; `end` runs once. */
function callObserver(resolved: ResolvedModel, telemetry: Telemetry) {
  const { metrics, tracing, scrubber } = telemetry;
  const route = resolved.route;
  const provider = resolved.provider;
  return (streaming: boolean, signal: AbortSignal | undefined) => {
    const ctx = currentRequest();
    const model = metrics.modelLabel(route);
    const span = tracing
      ? tracing.startChild(ctx?.span ?? null, `upstream ${route}`, { 'gen_ai.system': provider, 'gen_ai.request.model': route, 'parley.stream': streaming }, SpanKind.CLIENT)
      : null;
    const started = performance.now();
    let firstSeen = false;
    let failed = false;
    let ended = false;
    return {
      firstOutput() {
        if (firstSeen) return;
        firstSeen = true;
        const seconds = (performance.now() - (ctx?.startedAt ?? started)) / 1000;
        metrics.timeToFirstToken.observe({ model, provider }, seconds);
        if (ctx && ctx.ttftSeconds === null) ctx.ttftSeconds = seconds;
        span?.addEvent('first_token');
      },
      part(part: Part) {
        if (!PREAMBLE.has(part.type)) this.firstOutput();
        if (part.type === 'finish') this.usage(part.usage as UsageLike);
        else if (part.type === 'error') {
          failed = true;
          scrubber.scrubError(part.error);
        }
      },
      usage(usage: UsageLike | undefined) {
        if (!usage) return;
        const input = tokenCount(usage.inputTokens);
        const output = tokenCount(usage.outputTokens);
        const tenant = ctx?.tenant ?? '';
        if (input > 0) metrics.tokens.inc({ direction: 'input', model, provider, tenant }, input);
        if (output > 0) metrics.tokens.inc({ direction: 'output', model, provider, tenant }, output);
        span?.setAttributes({ 'gen_ai.usage.input_tokens': input, 'gen_ai.usage.output_tokens': output });
        ctx?.onUsage?.(input + output);
      },
      end(error?: unknown) {
        if (ended) return;
        ended = true;
        if (error !== undefined) scrubber.scrubError(error);
        const outcome = signal?.aborted ? 'aborted' : error !== undefined || failed ? 'error' : 'ok';
        metrics.upstreamDuration.observe({ model, provider, outcome }, (performance.now() - started) / 1000);
        metrics.upstreamRequests.inc({ model, provider, outcome });
        endSpan(span, outcome === 'ok' ? undefined : (error ?? outcome));
      },
      scrub: (text: string) => scrubber.scrub(text),
    };
  };
}

function instrumentModel(resolved: ResolvedModel, begin: ReturnType<typeof callObserver>): LanguageModelV4 {
  return new Proxy(resolved.model, {
    get(target, property) {
      if (property === 'doStream') {
        return async (options: Parameters<LanguageModelV4['doStream']>[0]) => {
          const call = begin(true, options.abortSignal);
          let result: Awaited<ReturnType<LanguageModelV4['doStream']>>;
          try {
            result = await target.doStream(options);
          } catch (error) {
            call.end(error);
            throw error;
          }
          observeStream(result.stream, call);
          return result;
        };
      }
      if (property === 'doGenerate') {
        return async (options: Parameters<LanguageModelV4['doGenerate']>[0]) => {
          const call = begin(false, options.abortSignal);
          try {
            const result = await target.doGenerate(options);
            call.usage(result.usage as UsageLike);
            call.end();
            return result;
          } catch (error) {
            call.end(error);
            throw error;
          }
        };
      }
      return Reflect.get(target, property, target);
    },
  });
}

interface StreamObserver {
  part(part: Part): void;
  end(error?: unknown): void;
}

/**
 * Watches the parts as they are read, by giving this one stream its own async iterator: a
 * TransformStream would add a queue and a promise per part to every streamed answer.
 */
function observeStream(stream: ReadableStream<Part>, observer: StreamObserver): void {
  const iterate = stream[Symbol.asyncIterator].bind(stream) as (options?: { preventCancel?: boolean }) => AsyncIterator<Part>;
  Object.defineProperty(stream, Symbol.asyncIterator, {
    configurable: true,
    value(options?: { preventCancel?: boolean }): AsyncIterator<Part> {
      const inner = iterate(options);
      const iterator: AsyncIterator<Part> & { [Symbol.asyncIterator](): AsyncIterator<Part> } = {
        next: () =>
          inner.next().then(
            (result) => {
              if (result.done) observer.end();
              else observer.part(result.value);
              return result;
            },
            (error: unknown) => {
              observer.end(error ?? new Error('upstream stream failed'));
              throw error;
            },
          ),
        return: (value?: unknown) => {
          observer.end();
          return inner.return ? inner.return(value) : Promise.resolve({ done: true as const, value: undefined });
        },
        [Symbol.asyncIterator]() {
          return iterator;
        },
      };
      return iterator;
    },
  });
}
