// The HTTP client under every provider package: `fetch` over node:http(s) keep-alive agents.
// Node's built-in fetch (undici) was the largest single cost of a turn in profiles (~18% of the
// gateway's CPU on a non-streaming turn, with its web streams and WASM HTTP parser), and every
// turn makes one upstream call. This covers what the AI SDK sends (string or byte bodies, a
// URL) and keeps fetch's contract where callers depend on it: network failures reject with
// TypeError('fetch failed', {cause}) (the AI SDK marks those retryable), an abort rejects with
// the signal's reason and errors a body being read, redirects are followed, gzip/deflate/br
// bodies are decoded; a body that is not an event stream is read whole before the Response is
// handed over (the packages read those whole anyway; a web stream adapter cost ~15% of a
// non-streaming turn's CPU). Anything else (a Request object, stream or form bodies) goes to the
// built-in fetch.

import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';

/** Shared with the Chat Completions passthrough, which calls the same upstreams over the same sockets. */
export const agents = {
  'http:': new http.Agent({ keepAlive: true }),
  'https:': new https.Agent({ keepAlive: true }),
};

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 20;

type Body = string | Uint8Array | null;

export const upstreamFetch: typeof fetch = (input, init = {}) => {
  const body = init.body ?? null;
  const simpleBody = body === null || typeof body === 'string' || body instanceof Uint8Array;
  if ((typeof input !== 'string' && !(input instanceof URL)) || !simpleBody) return fetch(input, init);
  return send(
    new URL(input),
    (init.method ?? 'GET').toUpperCase(),
    requestHeaders(init.headers),
    body as Body,
    init.signal ?? null,
    0,
  );
};

function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: Body,
  signal: AbortSignal | null,
  redirects: number,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const agent = agents[url.protocol as keyof typeof agents];
    if (!agent) {
      reject(new TypeError('fetch failed', { cause: new Error(`unsupported protocol ${url.protocol}`) }));
      return;
    }
    const request = (url.protocol === 'https:' ? https : http).request(url, { method, headers, agent });
    let settled = false;
    const onAbort = () => request.destroy(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const detach = () => signal?.removeEventListener('abort', onAbort);

    request.on('error', (error) => {
      if (settled) return;
      settled = true;
      detach();
      reject(signal?.aborted ? signal.reason : new TypeError('fetch failed', { cause: error }));
    });
    request.on('response', (response) => {
      settled = true;
      const status = response.statusCode ?? 0;
      const location = response.headers.location;
      if (REDIRECT_STATUS.has(status) && location !== undefined && redirects < MAX_REDIRECTS) {
        response.resume();
        detach();
        // As fetch does: 303, and 301/302 after a POST, continue as a GET without a body.
        const toGet = status === 303 || ((status === 301 || status === 302) && method === 'POST');
        const next = { ...headers };
        if (toGet) {
          delete next['content-type'];
          delete next['content-length'];
        }
        send(
          new URL(location, url),
          toGet ? 'GET' : method,
          next,
          toGet ? null : body,
          signal,
          redirects + 1,
        ).then(resolve, reject);
        return;
      }
      // Header pairs, as Response takes them: a Headers built here was copied (sorted, and every
      // value validated again) by the Response constructor, ~25 µs a response for nothing.
      const raw = response.rawHeaders;
      const responseHeaders: [string, string][] = [];
      for (let i = 0; i < raw.length; i += 2) responseHeaders.push([raw[i], raw[i + 1]]);
      if (method === 'HEAD' || NULL_BODY_STATUS.has(status)) {
        response.resume();
        detach();
        resolve(new Response(null, { status, statusText: response.statusMessage, headers: responseHeaders }));
        return;
      }
      // An abort while the body is read errors the body with the signal's reason, as in fetch.
      signal?.removeEventListener('abort', onAbort);
      const onBodyAbort = () => response.destroy(signal?.reason);
      signal?.addEventListener('abort', onBodyAbort, { once: true });
      response.once('close', () => signal?.removeEventListener('abort', onBodyAbort));
      const stream = decode(response, response.headers['content-encoding'] ?? null);
      const init = { status, statusText: response.statusMessage, headers: responseHeaders };
      if (isEventStream(response.headers['content-type'] ?? null)) {
        resolve(new Response(eventStreamBody(stream), init));
        return;
      }
      // Anything but an event stream is read whole by the provider packages (a JSON answer or an
      // error body): read it here and hand over a buffered Response, which costs a fraction of a
      // web stream adapter read through to the end. Failures while reading reject as fetch's
      // network errors do (an abort: with the signal's reason).
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.once('error', (error) =>
        reject(signal?.aborted ? signal.reason : new TypeError('fetch failed', { cause: error })),
      );
      let ended = false;
      stream.once('end', () => {
        ended = true;
        const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
        resolve(new Response(body as Uint8Array<ArrayBuffer>, init));
      });
      // 'close' follows 'end' on every answer: the two errors (with their stacks) are built only
      // when the body did not end, not for every answer (2% of a non-streaming turn's CPU).
      stream.once('close', () => {
        if (ended) return;
        reject(
          new TypeError('fetch failed', {
            cause: new Error('the upstream closed the connection before the body ended'),
          }),
        );
      });
    });
    request.end(typeof body === 'string' && body.length > ENCODE_ABOVE_CHARS ? Buffer.from(body, 'utf8') : (body ?? undefined));
  });
}

/**
 * Request bodies longer than this are encoded to bytes before they are written. Written as a
 * string, a long conversation's body (650 KB at 1,000 turns) took ~1 ms in the socket's string
 * write path per request; Buffer.from takes ~0.17 ms (TextEncoder.encode: ~0.26 ms). Short bodies
 * gain nothing.
 */
const ENCODE_ABOVE_CHARS = 16 * 1024;

/** See eventStreamBody. */
const FIRST_EVENTS = 4;
/** Bytes a body stream holds before the socket is paused (what Readable.toWeb allowed too). */
const BODY_BUFFER_BYTES = 64 * 1024;

/**
 * An event-stream body for the provider packages. The packages pipe it through four or five
 * web TransformStreams, all driven by promise jobs: when one socket read holds many events (an
 * upstream that answers a burst at once), every event's jobs interleave with the rest, and the
 * first token reaches the engine only once most of the burst has been parsed. So the first read
 * is handed over in two pieces: its first FIRST_EVENTS events at once (enough to hold the first
 * token in the Chat Completions, Responses and Anthropic streams), the rest on the next turn of
 * the event loop. Measured in-process, the first token was written 0.15 ms sooner for a 42-event
 * burst; an upstream sending events one by one is unaffected. Later reads pass straight through.
 */
function eventStreamBody(stream: Readable): ReadableStream<Uint8Array> {
  let first = true;
  let held: Buffer | null = null;
  let ended = false;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        stream.on('data', (chunk: Buffer) => {
          if (first) {
            first = false;
            let cut = -2;
            for (let i = 0; i < FIRST_EVENTS && cut !== -1; i++) cut = chunk.indexOf('\n\n', cut + 2);
            if (cut !== -1 && cut + 2 < chunk.length) {
              controller.enqueue(chunk.subarray(0, cut + 2));
              held = chunk.subarray(cut + 2);
              stream.pause();
              setImmediate(() => {
                const rest = held;
                held = null;
                if (rest !== null) controller.enqueue(rest);
                if (ended) controller.close();
                else stream.resume();
              });
              return;
            }
          }
          controller.enqueue(chunk);
          if ((controller.desiredSize ?? 1) <= 0) stream.pause();
        });
        stream.once('end', () => {
          ended = true;
          if (held === null) controller.close();
        });
        stream.once('error', (error) => {
          held = null;
          controller.error(error);
        });
      },
      pull() {
        if (held === null) stream.resume();
      },
      cancel(reason) {
        held = null;
        stream.destroy(reason instanceof Error ? reason : undefined);
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: BODY_BUFFER_BYTES }),
  );
}

/**
 * The request's headers as node:http takes them. The provider packages hand over a plain object
 * with lower-case names (they build it through a Headers already); anything else goes through
 * Headers, which lower-cases and joins repeated names as fetch does.
 */
function requestHeaders(init: HeadersInit | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  if (init === undefined) return headers;
  if (Object.getPrototypeOf(init) === Object.prototype) {
    const names = Object.keys(init);
    if (names.every((name) => name === name.toLowerCase())) {
      for (const name of names) headers[name] = String((init as Record<string, string>)[name]);
      return headers;
    }
  }
  new Headers(init).forEach((value, name) => {
    headers[name] = value;
  });
  return headers;
}

function isEventStream(contentType: string | null): boolean {
  return contentType?.toLowerCase().includes('text/event-stream') ?? false;
}

/** The body of `response` decoded from its content-encoding (gzip, deflate, br), else `response` itself. */
export function decode(response: http.IncomingMessage, encoding: string | null): Readable {
  const coding = encoding?.trim().toLowerCase();
  const decoder =
    coding === 'gzip' || coding === 'x-gzip'
      ? zlib.createGunzip()
      : coding === 'deflate'
        ? zlib.createInflate()
        : coding === 'br'
          ? zlib.createBrotliDecompress()
          : null;
  if (!decoder) return response;
  response.on('error', (error) => decoder.destroy(error));
  return response.pipe(decoder);
}
