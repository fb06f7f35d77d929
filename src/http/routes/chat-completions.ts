// POST /v1/chat/completions: a stateless OpenAI Chat Completions endpoint over the same model
// routing, timeouts, retries and fallbacks as /v1/responses, for every provider (an Anthropic or
// Gemini model answers Chat Completions too). JSON or SSE (`data: {chunk}` lines, `data: [DONE]`).

import type { FastifyInstance } from 'fastify';
import { toUpstreamError } from '../../providers/call.ts';
import { ChatAssembler, parseChatRequest } from '../../providers/chat-completions.ts';
import { startResilientCall } from '../../providers/resilient-call.ts';
import type { ModelRegistry } from '../../providers/types.ts';
import type { Drain } from '../../ops/shutdown.ts';
import { DEFAULT_SSE_POLICY, type SsePolicy, SseWriter } from '../sse.ts';

const HEARTBEAT_MS = 15_000;

export function chatCompletionsRoutes(models: ModelRegistry, http: { sse?: SsePolicy; drain?: Drain } = {}) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.post('/v1/chat/completions', async (request, reply) => {
      const chat = parseChatRequest(request.body);
      const resolved = models.resolve(chat.model);
      const abort = new AbortController();
      reply.raw.on('close', () => {
        if (!reply.raw.writableFinished) abort.abort();
      });
      // Stateless: at the shutdown deadline the call is simply cut (an error frame ends the stream).
      const unregister = http.drain?.registerTurn(abort);
      reply.raw.once('close', () => unregister?.());
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
      const sse = new SseWriter(reply.raw, {}, http.sse ?? DEFAULT_SSE_POLICY);
      const send = (data: unknown) => sse.sendData(data);
      sse.startHeartbeat(HEARTBEAT_MS);
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
