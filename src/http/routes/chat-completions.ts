// POST /v1/chat/completions: a stateless OpenAI Chat Completions endpoint over the same model
// routing, timeouts, retries and fallbacks as /v1/responses, for every provider (an Anthropic or
// Gemini model answers Chat Completions too). JSON or SSE (`data: {chunk}` lines, `data: [DONE]`).
// A model whose upstream speaks Chat Completions itself (and whose fallbacks all do) gets the
// request passed through and its answer relayed byte for byte (providers/chat-passthrough.ts);
// any other goes through the AI SDK and is assembled into Chat Completions here.

import type { ServerResponse } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Drain } from '../../ops/shutdown.ts';
import type { ApiError } from '../../protocol/errors.ts';
import { toUpstreamError } from '../../providers/call.ts';
import { ChatAssembler, parseChatRequest } from '../../providers/chat-completions.ts';
import { type PassthroughStream, passthroughChain, passthroughJson, passthroughStream } from '../../providers/chat-passthrough.ts';
import { startResilientCall } from '../../providers/resilient-call.ts';
import type { ModelRegistry, ResolvedModel } from '../../providers/types.ts';
import { DEFAULT_SSE_POLICY, openEventStream, type SsePolicy, SseWriter } from '../sse.ts';

export function chatCompletionsRoutes(models: ModelRegistry, http: { sse?: SsePolicy; drain?: Drain } = {}) {
  const policy = http.sse ?? DEFAULT_SSE_POLICY;
  return async function register(app: FastifyInstance): Promise<void> {
    app.post('/v1/chat/completions', async (request, reply) => {
      // The model decides how much of the body is validated here (see parseChatRequest).
      const named = modelOf(models, request.body);
      const native = named !== null && passthroughChain(models, named);
      const chat = parseChatRequest(request.body, { native });
      const resolved = named ?? models.resolve(chat.model);
      const abort = new AbortController();
      reply.raw.on('close', () => {
        if (!reply.raw.writableFinished) abort.abort();
      });
      // Stateless: at the shutdown deadline the call is simply cut (an error frame ends the stream).
      const unregister = http.drain?.registerTurn(abort);
      reply.raw.once('close', () => unregister?.());

      if (native) {
        const body = request.body as Record<string, unknown>;
        // Failures before the first byte are plain HTTP errors (the error handler shapes them).
        if (!chat.stream) {
          const answer = await passthroughJson(models, resolved, body, abort.signal);
          return reply.code(answer.status).header('content-type', answer.contentType).send(answer.body);
        }
        const upstream = await passthroughStream(models, resolved, body, abort.signal);
        reply.hijack();
        relay(upstream, reply.raw, policy, request.log, abort.signal);
        return reply;
      }

      // Failures before the first chunk are plain HTTP errors (the error handler shapes them).
      const { parts } = await startResilientCall(models, resolved, { ...chat.call, signal: abort.signal });
      const out = new ChatAssembler(chat.model);

      if (!chat.stream) {
        try {
          for await (const part of parts) out.push(part);
        } catch (error) {
          throw toUpstreamError(error, abort.signal);
        }
        return out.completion();
      }

      reply.hijack();
      const sse = new SseWriter(reply.raw, {}, policy);
      const send = (data: unknown) => sse.sendData(data);
      try {
        send(out.chunk({ role: 'assistant', content: '', refusal: null }));
        for await (const part of parts) {
          for (const delta of out.push(part)) send(out.chunk(delta));
          // A client that is not reading holds the upstream back instead of filling memory.
          const slowClient = sse.drained();
          if (slowClient) await slowClient;
        }
        send(out.chunk({}, out.finishReason ?? 'stop'));
        if (chat.includeUsage) send(out.usageChunk());
      } catch (error) {
        // After the 200, an error can only be a frame, as OpenAI sends it.
        const apiError = toUpstreamError(error, abort.signal);
        send(apiError.toBody());
        request.log.error({ err: error }, 'chat completion stream failed after it started');
      } finally {
        sse.end();
      }
      return reply;
    });
  };
}

/** The configured model the body names, or null (the parser then reports what is wrong with `model`). */
function modelOf(models: ModelRegistry, body: unknown): ResolvedModel | null {
  const name = body !== null && typeof body === 'object' ? (body as { model?: unknown }).model : undefined;
  if (typeof name !== 'string') return null;
  try {
    return models.resolve(name);
  } catch {
    return null;
  }
}

const LF = 0x0a;
const CR = 0x0d;

/** True when `chunk` ends an SSE event (a blank line: `\n\n` or `\r\n\r\n`). */
function endsEvent(chunk: Buffer): boolean {
  const n = chunk.length;
  if (n < 2 || chunk[n - 1] !== LF) return false;
  return chunk[n - 2] === LF || (n >= 4 && chunk[n - 2] === CR && chunk[n - 3] === LF);
}

/**
 * Relays an upstream SSE stream to the client as it arrives: the upstream is read no faster than
 * the client reads; the stream policy's idle timeout and heartbeats apply as to any stream
 * (heartbeats only between events); after the 200 a failure is an error frame, then `[DONE]`.
 */
function relay(upstream: PassthroughStream, res: ServerResponse, policy: SsePolicy, log: FastifyBaseLogger, signal: AbortSignal): void {
  // Between events (the last bytes written end a blank line), a heartbeat can be slipped in.
  let between = true;
  const stream = openEventStream(res, upstream.status, { 'content-type': upstream.contentType }, policy, () => between);
  let waiting = false;
  const resume = () => {
    waiting = false;
    stream.refresh();
    upstream.resume();
  };
  // (openEventStream stops the stream's timers on 'close' itself.)
  res.once('close', () => res.off('drain', resume));

  const write = (chunk: Buffer) => {
    if (chunk.length === 0 || res.writableEnded || res.destroyed) return;
    between = endsEvent(chunk);
    stream.refresh();
    if (!res.write(chunk) && !waiting) {
      // A client that is not reading holds the upstream back instead of filling memory.
      waiting = true;
      upstream.pause();
      res.once('drain', resume);
    }
  };
  write(upstream.first);
  upstream.start(write, (error: ApiError | null) => {
    stream.stop();
    if (res.writableEnded || res.destroyed) return;
    if (error === null) {
      res.end();
      return;
    }
    // After the 200, an error can only be a frame, as OpenAI sends it.
    if (!signal.aborted) log.error({ err: error }, 'chat completion stream failed after it started');
    res.end(`${between ? '' : '\n\n'}data: ${JSON.stringify(error.toBody())}\n\ndata: [DONE]\n\n`);
  });
}
