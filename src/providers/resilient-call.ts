// Calling a model the way a gateway must: per-provider timeouts (until the first chunk, between
// chunks, and for a whole non-streaming call), retries with backoff on 429 / 5xx / timeouts /
// network errors, and ordered fallbacks to other models, all strictly before the first chunk of
// output. Once a chunk has been handed to the engine nothing is retried: the client may already
// have seen it. The AI SDK's own retries are not involved (we call doStream/doGenerate directly).

import { APICallError, InvalidPromptError, UnsupportedFunctionalityError } from '@ai-sdk/provider';
import type { LanguageModelV4CallOptions, LanguageModelV4Prompt, LanguageModelV4StreamPart } from '@ai-sdk/provider';
import { ApiError } from '../protocol/errors.ts';
import type { RequestParams } from '../protocol/types.ts';
import { generatedParts, streamError, toUpstreamError } from './call.ts';
import { promptForProvider } from './prompt.ts';
import type { ModelRegistry, ResolvedModel } from './types.ts';

type Part = LanguageModelV4StreamPart;

export interface ModelCallRequest {
  /** The whole context as built by toModelPrompt; adapted per provider here. */
  prompt: LanguageModelV4Prompt;
  /** Call options from the request (toCallOptions), without prompt, providerOptions and signal. */
  options: Omit<LanguageModelV4CallOptions, 'prompt' | 'providerOptions' | 'abortSignal'>;
  params: RequestParams;
  stream: boolean;
  /** The client's signal: aborting it aborts the upstream request and any wait. */
  signal?: AbortSignal;
}

export interface ModelCall {
  /** The answer as stream parts; the first content part has already arrived. */
  parts: AsyncIterable<Part>;
  /** The model that answered: the one asked for, or a fallback. */
  served: ResolvedModel;
}

/** Longest upstream `retry-after` the gateway waits out itself; beyond it the client is told. */
const MAX_RETRY_AFTER_MS = 30_000;

/**
 * Calls `primary`, then its fallbacks in order, until one starts answering. Resolves once the
 * first content part (text, reasoning, a tool call or the finish) has arrived, so every failure
 * before that is still a plain HTTP error for the client. Throws an ApiError.
 */
export async function startResilientCall(models: ModelRegistry, primary: ResolvedModel, request: ModelCallRequest): Promise<ModelCall> {
  const { result, served } = await withFallbacks(models, primary, request.signal, (candidate) => callWithRetries(candidate, request));
  return { parts: result, served };
}

/**
 * The fallback policy of startResilientCall for any way of calling a model (the Chat Completions
 * passthrough calls upstreams without the AI SDK): `attempt` runs for `primary`, then for each
 * fallback, until one resolves. Throws an ApiError.
 */
export async function withFallbacks<T>(
  models: ModelRegistry,
  primary: ResolvedModel,
  signal: AbortSignal | undefined,
  attempt: (candidate: ResolvedModel) => Promise<T>,
): Promise<{ result: T; served: ResolvedModel }> {
  const failures: { route: string; error: ApiError }[] = [];
  const names = [null, ...primary.policy.fallbacks];
  for (let i = 0; i < names.length; i++) {
    const candidate = i === 0 ? primary : models.resolve(names[i] as string);
    try {
      return { result: await attempt(candidate), served: candidate };
    } catch (raw) {
      const error = classify(raw, candidate, signal);
      if (signal?.aborted) throw error;
      // A request the model itself refuses (bad input, unsupported content) is the client's to fix:
      // no fallback for the model they asked for; a fallback that cannot take it is skipped.
      if (i === 0 && error.status === 400) throw error;
      failures.push({ route: candidate.route, error });
    }
  }
  if (failures.length === 1) throw failures[0].error;
  // The status is the last upstream failure's: a fallback that could not take the content (a 400)
  // does not make the whole request the client's fault.
  const last = [...failures].reverse().find((f) => f.error.status !== 400)?.error ?? failures[failures.length - 1].error;
  const summary = failures.map((f) => `${f.route}: ${f.error.message}`).join(' | ');
  throw new ApiError(last.status, last.type, `Every model tried failed before answering (${failures.length} tried). ${summary}`, {
    code: last.code,
    headers: last.headers,
    cause: last,
  });
}

function callWithRetries(model: ResolvedModel, request: ModelCallRequest): Promise<AsyncIterable<Part>> {
  const prompt = promptForProvider(request.prompt, model.namespace);
  return withRetries(model, request.signal, () => attemptCall(model, prompt, request));
}

/**
 * Runs `attempt` again, per `model`'s retry policy, while it fails with a retryable error (429,
 * 5xx, 408/409, a network error or a connect/total timeout: an APICallError's `isRetryable`, an
 * UpstreamTimeout), waiting out backoff or the upstream's retry-after.
 */
export async function withRetries<T>(model: ResolvedModel, signal: AbortSignal | undefined, attempt: () => Promise<T>): Promise<T> {
  const { maxRetries, backoffMs } = model.policy;
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      if (signal?.aborted || n >= maxRetries || !isRetryable(error)) throw error;
      const delay = retryDelay(error, backoffMs, n);
      if (delay === null) throw error;
      await sleep(delay, signal);
    }
  }
}

/** Why an attempt was cut short by the gateway's own clock (a 504 for the client). */
export class UpstreamTimeout extends Error {
  readonly phase: 'connect' | 'idle' | 'total';
  readonly ms: number;
  constructor(phase: 'connect' | 'idle' | 'total', ms: number, route: string) {
    const what =
      phase === 'connect'
        ? `did not start answering within ${ms} ms`
        : phase === 'idle'
          ? `went silent for ${ms} ms in the middle of its answer`
          : `did not finish within ${ms} ms`;
    super(`The upstream model ${route} ${what}.`);
    this.name = 'UpstreamTimeout';
    this.phase = phase;
    this.ms = ms;
  }
}

/** Parts that carry no output: they do not count as the upstream having started to answer. */
const PREAMBLE = new Set<Part['type']>(['stream-start', 'response-metadata', 'raw', 'custom']);

async function attemptCall(model: ResolvedModel, prompt: LanguageModelV4Prompt, request: ModelCallRequest): Promise<AsyncIterable<Part>> {
  const { policy, route } = model;
  const controller = new AbortController();
  let timeout: UpstreamTimeout | null = null;
  const abortWith = (t: UpstreamTimeout) => {
    timeout ??= t;
    controller.abort(t);
  };
  const onClientAbort = () => controller.abort(request.signal?.reason);
  if (request.signal?.aborted) onClientAbort();
  request.signal?.addEventListener('abort', onClientAbort, { once: true });
  const detach = () => request.signal?.removeEventListener('abort', onClientAbort);

  const base: LanguageModelV4CallOptions = {
    ...request.options,
    prompt,
    providerOptions: model.providerOptions(request.params),
    abortSignal: controller.signal,
  };
  const options = model.adaptCallOptions ? model.adaptCallOptions(base) : base;

  if (!request.stream) {
    const timer = setTimeout(() => abortWith(new UpstreamTimeout('total', policy.totalMs, route)), policy.totalMs);
    try {
      const result = await model.model.doGenerate(options);
      return tagReasoning(generatedParts(result.content, result.usage, result.finishReason, result.providerMetadata), model.namespace);
    } catch (error) {
      throw timeout ?? error;
    } finally {
      clearTimeout(timer);
      detach();
    }
  }

  // Streaming: the connect clock runs until the first content part; then the idle clock, per part.
  const connectTimer = setTimeout(() => abortWith(new UpstreamTimeout('connect', policy.connectMs, route)), policy.connectMs);
  let reader: AsyncIterator<Part> | null = null;
  const preamble: Part[] = [];
  try {
    const result = await model.model.doStream(options);
    reader = result.stream[Symbol.asyncIterator]();
    for (;;) {
      const next = await reader.next();
      if (next.done) break;
      const part = next.value;
      if (part.type === 'error') throw part.error;
      preamble.push(part);
      if (!PREAMBLE.has(part.type)) break;
    }
  } catch (error) {
    clearTimeout(connectTimer);
    detach();
    await reader?.return?.().catch(() => {});
    throw timeout ?? error;
  }
  clearTimeout(connectTimer);
  return guardIdle(preamble, reader, policy.idleMs, () => timeout, (t) => abortWith(t), route, detach, model.namespace);
}

/**
 * Hands out the parts read ahead, then the rest, failing when the upstream goes silent too long;
 * tags reasoning on the way (see tagPart). One timer per stream, re-armed with refresh() at each
 * wait: a timer, a Promise and a Promise.race per part, and a second generator layer for the
 * tagging, were ~4% of a streaming turn's CPU. Only time spent waiting on the upstream counts.
 */
async function* guardIdle(
  first: Part[],
  reader: AsyncIterator<Part>,
  idleMs: number,
  timedOut: () => UpstreamTimeout | null,
  abort: (t: UpstreamTimeout) => void,
  route: string,
  done: () => void,
  namespace: string,
): AsyncGenerator<Part> {
  // Rejects the wait in progress; null while the consumer holds a part (the timer then lapses).
  let waiting: ((error: unknown) => void) | null = null;
  const timer = setTimeout(() => {
    if (waiting === null) return;
    const t = new UpstreamTimeout('idle', idleMs, route);
    abort(t);
    waiting(t);
  }, idleMs);
  try {
    for (const part of first) yield tagPart(part, namespace);
    for (;;) {
      let next: IteratorResult<Part>;
      try {
        timer.refresh();
        next = await new Promise<IteratorResult<Part>>((resolve, reject) => {
          waiting = reject;
          reader.next().then(resolve, reject);
        });
      } catch (error) {
        const t = timedOut();
        throw t ? timeoutError(t) : error;
      } finally {
        waiting = null;
      }
      if (next.done) return;
      yield tagPart(next.value, namespace);
    }
  } finally {
    clearTimeout(timer);
    done();
    await reader.return?.().catch(() => {});
  }
}

/**
 * Marks reasoning with the provider key of the model that produced it, so it is replayed to that
 * provider only (see promptForProvider). Providers that attach no metadata of their own (DeepSeek,
 * OpenAI-compatible servers) get an empty entry under their key.
 */
function tagPart(part: Part, namespace: string): Part {
  if (part.type === 'reasoning-start' && !part.providerMetadata?.[namespace]) {
    return { ...part, providerMetadata: { ...part.providerMetadata, [namespace]: {} } };
  }
  return part;
}

async function* tagReasoning(parts: AsyncIterable<Part>, namespace: string): AsyncGenerator<Part> {
  for await (const part of parts) yield tagPart(part, namespace);
}

function isRetryable(error: unknown): boolean {
  if (error instanceof UpstreamTimeout) return error.phase !== 'idle';
  if (APICallError.isInstance(error)) return error.isRetryable;
  // An error event before any output (e.g. Anthropic's `overloaded_error`) is retryable when the SDK says so.
  return streamError(error)?.isRetryable === true;
}

/** Exponential backoff with jitter, or the upstream's retry-after when it asks for longer; null: give up. */
function retryDelay(error: unknown, backoffMs: number, attempt: number): number | null {
  const base = backoffMs * 2 ** attempt;
  const jittered = base * (0.75 + Math.random() * 0.5);
  const asked = APICallError.isInstance(error) ? retryAfterMs(error.responseHeaders) : null;
  if (asked !== null && asked > MAX_RETRY_AFTER_MS) return null;
  return Math.max(jittered, asked ?? 0);
}

function retryAfterMs(headers: Record<string, string> | undefined): number | null {
  if (!headers) return null;
  const ms = headers['retry-after-ms'];
  if (ms !== undefined && Number.isFinite(Number(ms))) return Number(ms);
  const value = headers['retry-after'];
  if (value === undefined) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Any failure of one model as the ApiError a client would see, naming the model where it helps. */
function classify(error: unknown, model: ResolvedModel, signal: AbortSignal | undefined): ApiError {
  if (error instanceof UpstreamTimeout) return timeoutError(error);
  if (UnsupportedFunctionalityError.isInstance(error) && !signal?.aborted) {
    return new ApiError(
      400,
      'invalid_request_error',
      `The model ${model.route} cannot take this request: ${error.functionality} is not supported by the ${model.provider} provider. Remove that content or choose a model that accepts it.`,
      { param: 'input', code: 'unsupported_content', cause: error },
    );
  }
  if (InvalidPromptError.isInstance(error) && !signal?.aborted) {
    return new ApiError(400, 'invalid_request_error', `The conversation cannot be sent to ${model.route}: ${error.message}`, {
      param: 'input',
      code: 'invalid_prompt',
      cause: error,
    });
  }
  return toUpstreamError(error, signal);
}

export function timeoutError(error: UpstreamTimeout): ApiError {
  return new ApiError(504, 'server_error', error.message, { code: 'upstream_timeout', cause: error });
}
