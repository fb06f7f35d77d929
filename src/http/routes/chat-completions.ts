// POST /v1/chat/completions: a stateless OpenAI Chat Completions endpoint over the same model
// routing, timeouts, retries and fallbacks as /v1/responses, for every provider (an Anthropic or
// Gemini model answers Chat Completions too). JSON or SSE (`data: {chunk}` lines, `data: [DONE]`).

import type { FastifyInstance } from 'fastify';
import { toUpstreamError } from '../../providers/call.ts';
import { ChatAssembler, parseChatRequest } from '../../providers/chat-completions.ts';
import { startResilientCall } from '../../providers/resilient-call.ts';
import type { ModelRegistry } from '../../providers/types.ts';

const HEARTBEAT_MS = 15_000;

export function chatCompletionsRoutes(models: ModelRegistry) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.post('/v1/chat/completions', async (request, reply) => {
      const chat = parseChatRequest(request.body);
      const resolved = models.resolve(chat.model);
      const abort = new AbortController();
      reply.raw.on('close', () => {
        if (!reply.raw.writableFinished) abort.abort();
      });
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
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.socket?.setNoDelay(true);
      const open = () => !res.writableEnded && !res.destroyed;
      const send = (data: unknown) => {
        if (open()) res.write(`data: ${JSON.stringify(data)}\n\n`);
      };
      const heartbeat = setInterval(() => {
        if (open()) res.write(': keep-alive\n\n');
      }, HEARTBEAT_MS);
      heartbeat.unref();
      try {
        send(out.chunk({ role: 'assistant', content: '', refusal: null }));
        for await (const part of parts) {
          for (const delta of out.push(part)) send(out.chunk(delta));
        }
        send(out.chunk({}, out.finishReason ?? 'stop'));
        if (chat.includeUsage) send(out.usageChunk());
      } catch (error) {
        // After the 200, an error can only be a frame, as OpenAI sends it.
        const apiError = toUpstreamError(error, abort.signal);
        send(apiError.toBody());
        request.log.error({ err: error }, 'chat completion stream failed after it started');
      } finally {
        clearInterval(heartbeat);
        if (open()) res.end('data: [DONE]\n\n');
      }
      return reply;
    });
  };
}
