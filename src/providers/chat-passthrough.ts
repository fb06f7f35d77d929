// Chat Completions passed through to upstreams that speak it natively (OpenAI and Azure in chat
// mode, Groq, DeepSeek, any OpenAI-compatible server): the client's body goes upstream with only
// `model` rewritten to the provider's model id, to the URL and with the headers (auth, config
// headers) the AI SDK model would have used, and the upstream's status, content type and bytes
// come back as they are, a stream as it arrives. Converting every request and every chunk
// through the AI SDK (zod validation of each chunk, a chain of web streams) cost a streaming
// request ~21 µs per upstream chunk; this path looks at the bytes only where it must: the first
// chunk (an error frame before any output still falls back), chunks naming an `"error":` (scrubbed
// of secrets), and the tail of the stream or the JSON body for the usage the metrics count.
// Retries, fallbacks and the connect / idle / total clocks are resilient-call.ts's policies.

import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { OpenAICompatibleChatLanguageModel } from '@ai-sdk/openai-compatible';
import { APICallError } from '@ai-sdk/provider';
import type { ApiError } from '../protocol/errors.ts';
import { toUpstreamError } from './call.ts';
import { timeoutError, UpstreamTimeout, withFallbacks, withRetries } from './resilient-call.ts';
import type { ModelRegistry, ResolvedModel, UpstreamCallObserver } from './types.ts';
import { agents, decode, upstreamFetch } from './upstream-fetch.ts';

type Body = Record<string, unknown>;

/** AI SDK model providers whose wire is Chat Completions itself (Mistral's chat API is not: it has fields of its own). */
const NATIVE = new Set(['openai.chat', 'azure.chat', 'groq.chat', 'deepseek.chat']);

/** What the AI SDK's Chat Completions models keep in `config` (the same shape in every package above). */
interface SdkChatConfig {
  url?: unknown;
  headers?: unknown;
  fetch?: unknown;
}

interface Wire {
  url: URL;
  /** `url` as node:http request options, converted once (node converts a URL on every request otherwise). */
  target: { protocol: string; hostname: string; port: string; path: string; agent: http.Agent };
  /** The provider's own headers (auth, organisation, config `headers`, user agent), as the SDK resolves them; a copy per call. */
  headers: () => Promise<Record<string, string>>;
}

const wires = new WeakMap<ResolvedModel, Wire | null>();
const chains = new WeakMap<ResolvedModel, boolean>();

/**
 * The endpoint `resolved`'s AI SDK model calls, when it is a Chat Completions model built by one
 * of Parley's provider factories (their fetch is upstreamFetch: a model given in code with a
 * fetch of its own keeps it); null otherwise. An entry with config `options` keeps the AI SDK
 * path: those are AI SDK provider options, which each package maps into the body its own way.
 */
export function chatWireOf(resolved: ResolvedModel): Wire | null {
  let wire = wires.get(resolved);
  if (wire === undefined) {
    wire = detect(resolved);
    wires.set(resolved, wire);
  }
  return wire;
}

function detect(resolved: ResolvedModel): Wire | null {
  if (resolved.configuredOptions) return null;
  const model = resolved.model as unknown as { provider?: unknown; config?: SdkChatConfig };
  const config = model.config;
  if (!config || typeof config.url !== 'function' || config.fetch !== upstreamFetch) return null;
  if (!NATIVE.has(model.provider as string) && !(model instanceof OpenAICompatibleChatLanguageModel)) return null;
  let url: URL;
  try {
    url = new URL((config.url as (o: { path: string; modelId: string }) => string)({ path: '/chat/completions', modelId: resolved.modelId }));
  } catch {
    return null; // e.g. Azure without a resource name: the AI SDK path reports it
  }
  const source = config.headers;
  // Resolved once (the packages build them from the configured key, or its environment variable,
  // with a fresh Headers object per call: ~4% of a streaming request's CPU); a failure (no key)
  // is not kept, so every call reports it as the AI SDK would.
  let resolvedHeaders: Record<string, string> | null = null;
  const agent = agents[url.protocol as keyof typeof agents];
  if (!agent) return null;
  return {
    url,
    // An IPv6 literal's brackets are the URL's, not the host's.
    target: { protocol: url.protocol, hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port, path: `${url.pathname}${url.search}`, agent },
    async headers() {
      if (!resolvedHeaders) {
        const raw = (typeof source === 'function' ? await source() : source) as Record<string, string | undefined> | undefined;
        const out: Record<string, string> = {};
        for (const [name, value] of Object.entries(raw ?? {})) if (value !== undefined && value !== null) out[name.toLowerCase()] = String(value);
        resolvedHeaders = out;
      }
      return { ...resolvedHeaders };
    },
  };
}

/** True when `primary` and every fallback it may fall back to speak Chat Completions natively. */
export function passthroughChain(models: ModelRegistry, primary: ResolvedModel): boolean {
  let ok = chains.get(primary);
  if (ok === undefined) {
    ok = chatWireOf(primary) !== null && primary.policy.fallbacks.every((name) => chatWireOf(models.resolve(name)) !== null);
    chains.set(primary, ok);
  }
  return ok;
}

export interface PassthroughAnswer {
  status: number;
  contentType: string;
  body: Buffer;
}

/** A non-streaming call: the upstream's whole answer (any 2xx). Throws an ApiError. */
export function passthroughJson(models: ModelRegistry, primary: ResolvedModel, body: Body, signal: AbortSignal): Promise<PassthroughAnswer> {
  return resilient(models, primary, body, false, signal) as Promise<PassthroughAnswer>;
}

/** A streaming call, once the upstream has sent its first bytes (until then it can still be retried). Throws an ApiError. */
export function passthroughStream(models: ModelRegistry, primary: ResolvedModel, body: Body, signal: AbortSignal): Promise<PassthroughStream> {
  return resilient(models, primary, body, true, signal) as Promise<PassthroughStream>;
}

/** attempt() under resilient-call.ts's retry and fallback policies. */
async function resilient(models: ModelRegistry, primary: ResolvedModel, body: Body, stream: boolean, signal: AbortSignal): Promise<PassthroughAnswer | PassthroughStream> {
  const { result } = await withFallbacks(models, primary, signal, (candidate) => withRetries(candidate, signal, () => attempt(candidate, body, stream, signal)));
  return result;
}

/** Largest error or non-streaming body read from an upstream. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

/**
 * One HTTP call. Non-streaming: resolves with the whole body, under the total clock. Streaming:
 * resolves with the first body bytes under the connect clock, then the idle clock runs per chunk.
 */
async function attempt(model: ResolvedModel, body: Body, stream: boolean, clientSignal: AbortSignal): Promise<PassthroughAnswer | PassthroughStream> {
  const wire = chatWireOf(model) as Wire;
  const controller = new AbortController();
  const observer = model.observeCall?.(stream, controller.signal) ?? null;
  let timeout: UpstreamTimeout | null = null;
  const onClientAbort = () => controller.abort(clientSignal.reason);
  if (clientSignal.aborted) onClientAbort();
  clientSignal.addEventListener('abort', onClientAbort, { once: true });
  const detach = () => clientSignal.removeEventListener('abort', onClientAbort);

  let headers: Record<string, string>;
  try {
    headers = await wire.headers();
  } catch (error) {
    detach();
    observer?.end(error);
    throw error;
  }
  // Same key order as the client's body; only the model differs.
  const payload = Buffer.from(JSON.stringify({ ...body, model: model.modelId }));
  headers['content-type'] = 'application/json';
  headers['content-length'] = String(payload.length);

  const { policy, route } = model;
  return new Promise((resolve, reject) => {
    let settled = false;
    let response: Readable | null = null;
    // The error is built only when the clock runs out: an Error's stack trace costs ~5% of a request.
    const timer = setTimeout(
      () => {
        timeout = stream ? new UpstreamTimeout('connect', policy.connectMs, route) : new UpstreamTimeout('total', policy.totalMs, route);
        controller.abort(timeout);
      },
      stream ? policy.connectMs : policy.totalMs,
    );
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      detach();
      request.destroy();
      response?.destroy();
      observer?.end(error);
      reject(error);
    };
    const succeed = (value: PassthroughAnswer | PassthroughStream) => {
      settled = true;
      clearTimeout(timer);
      resolve(value);
    };
    const request = (wire.url.protocol === 'https:' ? https : http).request({ ...wire.target, method: 'POST', headers });
    const onAbort = () => fail(timeout ?? controller.signal.reason);
    controller.signal.addEventListener('abort', onAbort, { once: true });
    if (controller.signal.aborted) return onAbort();
    request.on('error', (error) => {
      if (controller.signal.aborted) return onAbort();
      // As the AI SDK reports a network failure: retryable.
      fail(new APICallError({ message: `Cannot connect to API: ${error.message}`, cause: error, url: wire.url.href, requestBodyValues: {}, isRetryable: true }));
    });
    request.on('response', (res) => {
      const status = res.statusCode ?? 0;
      const contentType = res.headers['content-type'] ?? 'application/json';
      const decoded = decode(res, res.headers['content-encoding'] ?? null);
      response = decoded;
      decoded.on('error', (error) => fail(controller.signal.aborted ? (timeout ?? controller.signal.reason) : error));
      if (status < 200 || status >= 300) {
        readAll(decoded, (text) => fail(httpError(wire.url, status, res.headers, text.toString('utf8'))));
        return;
      }
      if (!stream) {
        readAll(decoded, (whole) => {
          controller.signal.removeEventListener('abort', onAbort);
          detach();
          const usage = usageIn(whole);
          if (usage) observer?.usage(usage);
          observer?.end();
          succeed({ status, contentType, body: whole });
        });
        return;
      }
      decoded.once('data', (first: Buffer) => {
        decoded.pause();
        const early = errorFrameAt(first);
        if (early) return fail(early);
        controller.signal.removeEventListener('abort', onAbort);
        observer?.firstOutput();
        succeed(new PassthroughStream(status, contentType, first, decoded, { controller, detach, observer, idleMs: policy.idleMs, route }));
      });
      decoded.once('end', () => {
        if (settled) return;
        // A 2xx with an empty body: nothing to stream, and nothing to retry.
        controller.signal.removeEventListener('abort', onAbort);
        succeed(new PassthroughStream(status, contentType, Buffer.alloc(0), null, { controller, detach, observer, idleMs: policy.idleMs, route }));
      });
    });
    request.end(payload);
  });
}

function readAll(body: Readable, done: (whole: Buffer) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  body.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) body.destroy(new Error(`the upstream's answer is larger than ${MAX_BODY_BYTES} bytes`));
    else chunks.push(chunk);
  });
  body.once('end', () => done(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
}

/** An upstream HTTP error as the AI SDK reports it, so retries and the status a client sees are the same on both paths. */
function httpError(url: URL, status: number, headers: http.IncomingHttpHeaders, text: string): APICallError {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    data = undefined;
  }
  const message = (data as { error?: { message?: unknown } } | undefined)?.error?.message;
  const responseHeaders: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (typeof value === 'string') responseHeaders[name] = value;
  return new APICallError({
    message: typeof message === 'string' ? message : text.length > 0 ? text : `HTTP ${status}`,
    url: url.href,
    requestBodyValues: {},
    statusCode: status,
    responseHeaders,
    responseBody: text,
    data,
  });
}

const ERROR_FRAME = Buffer.from('data: {"error"');

/** An error frame as the stream's first event: the upstream failed before any output (as the AI SDK treats it). */
function errorFrameAt(first: Buffer): APICallError | null {
  if (!first.subarray(0, ERROR_FRAME.length).equals(ERROR_FRAME)) return null;
  const end = first.indexOf('\n');
  const text = first.toString('utf8', 6, end < 0 ? first.length : end);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    data = undefined;
  }
  const error = (data as { error?: { message?: unknown; type?: unknown; code?: unknown } } | undefined)?.error ?? {};
  const statusCode = frameStatus(error.type, error.code);
  const quota = error.type === 'insufficient_quota' || error.code === 'insufficient_quota';
  return new APICallError({
    message: typeof error.message === 'string' ? error.message : 'The upstream stream failed before any output was generated',
    url: '',
    requestBodyValues: {},
    statusCode,
    responseBody: text,
    data,
    // Otherwise APICallError's own default for the status (408, 409, 429, 5xx), as for an HTTP error.
    isRetryable: quota ? false : undefined,
  });
}

/** The HTTP status an error frame stands for, as @ai-sdk/openai infers it from its code and type. */
function frameStatus(type: unknown, code: unknown): number {
  const explicit = typeof code === 'string' && /^\d{3}$/.test(code) ? Number(code) : code;
  if (typeof explicit === 'number' && Number.isInteger(explicit) && explicit >= 400 && explicit <= 599) return explicit;
  const words = [code, type]
    .filter((v) => typeof v === 'string' || typeof v === 'number')
    .join(' ')
    .toLowerCase();
  if (words.includes('insufficient_quota') || words.includes('rate_limit')) return 429;
  if (words.includes('authentication')) return 401;
  if (words.includes('permission')) return 403;
  if (words.includes('not_found')) return 404;
  if (words.includes('invalid') || words.includes('bad_request') || words.includes('context_length')) return 400;
  if (words.includes('overload')) return 503;
  if (words.includes('timeout')) return 504;
  return 500;
}

/** Bytes of the stream's end kept to find the usage in (the usage chunk is the last or next to last event). */
const TAIL_BYTES = 16 * 1024;
const ERROR_KEY = Buffer.from('"error":');
/**
 * How far from a chunk's end an error frame is looked for. An upstream's error frame ends its
 * stream, so it is among the last events of the chunk it arrives in; scanning whole chunks for it
 * was ~3% of a streaming request's CPU when a whole answer arrives in one chunk.
 */
const ERROR_WINDOW = 2048;

interface StreamState {
  controller: AbortController;
  detach: () => void;
  observer: UpstreamCallObserver | null;
  idleMs: number;
  route: string;
}

/**
 * The rest of an upstream stream, read at the pace of its consumer (pause/resume), under the idle
 * clock: only time spent waiting on the upstream counts, not time paused for a slow client.
 */
export class PassthroughStream {
  readonly status: number;
  readonly contentType: string;
  /** The first bytes, already scrubbed: write them first. */
  readonly first: Buffer;
  readonly #body: Readable | null;
  readonly #state: StreamState;
  readonly #tail: Buffer[] = [];
  #tailBytes = 0;
  #paused = true;
  #idle: NodeJS.Timeout | null = null;
  #onChunk: ((chunk: Buffer) => void) | null = null;
  #onEnd: ((error: ApiError | null) => void) | null = null;
  /** How the upstream stream ended (null: completely), once it has: it may end before start(). */
  #outcome: { error: unknown } | null = null;
  #reported = false;

  constructor(status: number, contentType: string, first: Buffer, body: Readable | null, state: StreamState) {
    this.status = status;
    this.contentType = contentType;
    this.#body = body;
    this.#state = state;
    this.first = this.#seen(first);
    const { controller } = state;
    if (!body) {
      this.#settle(null);
      return;
    }
    // Listening now: a body that arrived whole ends while still paused, before start().
    body.on('data', (chunk: Buffer) => {
      this.#idle?.refresh();
      this.#onChunk?.(this.#seen(chunk));
    });
    const onAbort = () => {
      body.destroy();
      this.#settle(controller.signal.reason ?? new Error('aborted'));
    };
    body.once('end', () => {
      controller.signal.removeEventListener('abort', onAbort);
      const usage = usageIn(this.#tail.length === 1 ? this.#tail[0] : Buffer.concat(this.#tail));
      if (usage) state.observer?.usage(usage);
      this.#settle(null);
    });
    body.on('error', (error) => {
      controller.signal.removeEventListener('abort', onAbort);
      this.#settle(controller.signal.aborted ? controller.signal.reason : error);
    });
    if (controller.signal.aborted) onAbort();
    else controller.signal.addEventListener('abort', onAbort, { once: true });
  }

  /** Hands every further chunk to `onChunk`; then `onEnd` once, with the error a client should see or null. */
  start(onChunk: (chunk: Buffer) => void, onEnd: (error: ApiError | null) => void): void {
    this.#onChunk = onChunk;
    this.#onEnd = onEnd;
    if (this.#outcome) {
      this.#report();
      return;
    }
    const { controller, idleMs, route } = this.#state;
    this.#idle = setTimeout(() => {
      if (this.#paused) return; // a slow client is not the upstream going silent
      controller.abort(new UpstreamTimeout('idle', idleMs, route));
    }, idleMs);
    this.resume();
  }

  /** Stops reading the upstream until resume() (the client's socket is full). */
  pause(): void {
    this.#paused = true;
    this.#body?.pause();
  }

  resume(): void {
    this.#paused = false;
    this.#idle?.refresh();
    this.#body?.resume();
  }

  /** Keeps the tail for the usage, and masks secrets in an error frame (an upstream echoing the key). */
  #seen(chunk: Buffer): Buffer {
    this.#tail.push(chunk);
    this.#tailBytes += chunk.length;
    while (this.#tail.length > 1 && this.#tailBytes - this.#tail[0].length >= TAIL_BYTES) this.#tailBytes -= (this.#tail.shift() as Buffer).length;
    const observer = this.#state.observer;
    if (observer && chunk.indexOf(ERROR_KEY, Math.max(0, chunk.length - ERROR_WINDOW)) !== -1) {
      const text = chunk.toString('utf8');
      const scrubbed = observer.scrub(text);
      if (scrubbed !== text) return Buffer.from(scrubbed);
    }
    return chunk;
  }

  #settle(error: unknown): void {
    if (this.#outcome) return;
    this.#outcome = { error };
    if (this.#idle) clearTimeout(this.#idle);
    this.#state.detach();
    this.#state.observer?.end(error ?? undefined);
    if (this.#onEnd) this.#report();
  }

  #report(): void {
    if (this.#reported || !this.#onEnd || !this.#outcome) return;
    this.#reported = true;
    const error = this.#outcome.error;
    if (error === null || error === undefined) this.#onEnd(null);
    else this.#onEnd(error instanceof UpstreamTimeout ? timeoutError(error) : toUpstreamError(error, this.#state.controller.signal));
  }
}

// ---------- usage, read cheaply ----------

const USAGE_KEY = Buffer.from('"usage"');

/**
 * The last `"usage": {...}` object in `bytes` (a chat.completion, or a stream's tail: OpenAI's
 * usage chunk, Groq's `x_groq.usage`), as the tokens the metrics count; null when there is none.
 * Only the usage object itself is parsed.
 */
export function usageIn(bytes: Buffer): { inputTokens: number; outputTokens: number } | null {
  let from = bytes.length;
  for (let tries = 0; tries < 8; tries++) {
    const at = bytes.lastIndexOf(USAGE_KEY, from);
    if (at < 0) return null;
    from = at - 1;
    let i = at + USAGE_KEY.length;
    while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
    if (bytes[i] !== 0x3a) continue; // ':'
    i++;
    while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
    if (bytes[i] !== 0x7b) continue; // '{' (e.g. `"usage":null` on every chunk but the last)
    const end = objectEnd(bytes, i);
    if (end < 0) continue;
    try {
      const usage = JSON.parse(bytes.toString('utf8', i, end)) as { prompt_tokens?: unknown; completion_tokens?: unknown };
      const input = typeof usage.prompt_tokens === 'number' ? usage.prompt_tokens : 0;
      const output = typeof usage.completion_tokens === 'number' ? usage.completion_tokens : 0;
      return { inputTokens: input, outputTokens: output };
    } catch {}
  }
  return null;
}

/** The index after the `}` closing the object opening at `start`, or -1 when it does not close in `bytes`. */
function objectEnd(bytes: Buffer, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b) depth++;
    else if (c === 0x7d && --depth === 0) return i + 1;
  }
  return -1;
}
