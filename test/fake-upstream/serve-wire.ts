// Plays one scripted FakeReply on a provider wire (Anthropic, Gemini, Responses, Bedrock): the
// same reply kinds as the Chat Completions route, each rendered in that provider's own format.

import type { ServerResponse } from 'node:http';
import { estimateCompletionTokens } from './chat-wire.ts';
import type { FakeReply } from './server.ts';
import type { Content, Frame, Wire, WireContext } from './wire.ts';

/** A content reply (text, tool calls, reasoning) normalised; null for the other kinds. */
export function contentOf(reply: FakeReply, body: unknown): Content | null {
  // A plausible prompt size from the request body (these wires do not share Chat's `messages`).
  const prompt = Math.max(1, Math.ceil(JSON.stringify(body ?? '').length / 8));
  switch (reply.kind) {
    case 'text':
      return {
        reasoning: [],
        text: reply.text,
        ...(reply.chunks ? { chunks: reply.chunks } : {}),
        calls: [],
        finish: reply.finishReason ?? 'stop',
        usage: reply.usage ?? { prompt_tokens: prompt, completion_tokens: estimateCompletionTokens(reply.text) },
      };
    case 'tool_calls':
      return {
        reasoning: [],
        ...(reply.text === undefined ? {} : { text: reply.text }),
        calls: reply.calls,
        finish: 'tool_calls',
        usage: reply.usage ?? { prompt_tokens: prompt, completion_tokens: estimateCompletionTokens(reply.text, reply.calls) },
      };
    case 'reasoning': {
      const reasoning = typeof reply.reasoning === 'string' ? [reply.reasoning] : reply.reasoning;
      const calls = reply.calls ?? [];
      return {
        reasoning,
        ...(reply.signature ? { signature: reply.signature } : {}),
        ...(reply.encrypted ? { encrypted: reply.encrypted } : {}),
        ...(reply.text === undefined ? {} : { text: reply.text }),
        calls,
        finish: reply.finishReason ?? (calls.length > 0 ? 'tool_calls' : 'stop'),
        usage: reply.usage ?? {
          prompt_tokens: prompt,
          completion_tokens: estimateCompletionTokens(reasoning.join(' ') + (reply.text ?? ''), calls),
          reasoning_tokens: estimateCompletionTokens(reasoning.join(' ')),
        },
      };
    }
    case 'slow':
      return {
        reasoning: [],
        text: reply.text,
        ...(reply.chunks ? { chunks: reply.chunks } : {}),
        calls: [],
        finish: 'stop',
        usage: { prompt_tokens: prompt, completion_tokens: estimateCompletionTokens(reply.text) },
      };
    default:
      return null;
  }
}

export function serveWire(wire: Wire, ctx: WireContext, reply: FakeReply, res: ServerResponse, cut: WeakSet<ServerResponse>): void {
  const headers = wire.headers(ctx);
  switch (reply.kind) {
    case 'text':
    case 'tool_calls':
    case 'reasoning': {
      const content = contentOf(reply, ctx.body) as Content;
      if (ctx.stream) writeFrames(res, wire, headers, wire.frames(ctx, content));
      else sendJson(res, 200, wire.json(ctx, content), headers);
      return;
    }
    case 'slow': {
      const content = contentOf(reply, ctx.body) as Content;
      playSlow(res, wire, ctx, content, reply.chunkDelayMs, headers);
      return;
    }
    case 'error': {
      const body = reply.body === undefined ? wire.errorBody(reply.status, ctx) : reply.body;
      const extra = { ...headers, ...wire.errorHeaders?.(reply.status), ...reply.headers };
      if (typeof body === 'string') {
        res.writeHead(reply.status, { 'content-type': 'text/plain', ...extra });
        res.end(body);
      } else {
        sendJson(res, reply.status, body, extra);
      }
      return;
    }
    case 'hang':
      return;
    case 'stream_error': {
      const message = reply.error?.error.message ?? 'The server had an error while processing your request.';
      if (!ctx.stream) {
        sendJson(res, 500, wire.errorBody(500, ctx, message), headers);
        return;
      }
      const content: Content = {
        reasoning: [],
        text: reply.text ?? '',
        calls: [],
        finish: 'stop',
        usage: { prompt_tokens: 1, completion_tokens: 1 },
      };
      const frames = wire.frames(ctx, content, true);
      res.writeHead(200, { 'content-type': wire.contentType, ...headers });
      const payload = concat(frames);
      if (reply.disconnect) {
        cut.add(res);
        res.write(payload, () => res.destroy());
      } else {
        res.end(Buffer.concat([payload, toBuffer(wire.errorFrame(ctx, message).data)]));
      }
      return;
    }
  }
}

function playSlow(res: ServerResponse, wire: Wire, ctx: WireContext, content: Content, delayMs: number, headers: Record<string, string>): void {
  let timer: NodeJS.Timeout | undefined;
  res.on('close', () => clearTimeout(timer));
  if (!ctx.stream) {
    const pieces = content.chunks?.length ?? Math.max(1, (content.text ?? '').split(/\s+/).length);
    timer = setTimeout(() => sendJson(res, 200, wire.json(ctx, content), headers), delayMs * pieces);
    return;
  }
  const frames = wire.frames(ctx, content);
  res.writeHead(200, { 'content-type': wire.contentType, ...headers });
  let i = 0;
  const next = (): void => {
    if (res.destroyed) return;
    // Everything up to the next delta frame goes out at once; each delta waits its turn.
    let batch: Buffer[] = [];
    while (i < frames.length) {
      const frame = frames[i];
      if (frame.delta && batch.length > 0) break;
      batch.push(toBuffer(frame.data));
      i++;
      if (frame.delta) break;
    }
    if (i >= frames.length) {
      res.end(Buffer.concat(batch));
      return;
    }
    res.write(Buffer.concat(batch));
    batch = [];
    timer = setTimeout(next, delayMs);
  };
  // The preamble (up to the first delta) is immediate; the first delta waits too.
  let first: Buffer[] = [];
  while (i < frames.length && !frames[i].delta) first.push(toBuffer(frames[i++].data));
  if (first.length > 0) res.write(Buffer.concat(first));
  first = [];
  timer = setTimeout(next, delayMs);
}

function writeFrames(res: ServerResponse, wire: Wire, headers: Record<string, string>, frames: Frame[]): void {
  res.writeHead(200, { 'content-type': wire.contentType, ...headers });
  res.end(concat(frames));
}

function concat(frames: Frame[]): Buffer {
  return Buffer.concat(frames.map((f) => toBuffer(f.data)));
}

function toBuffer(data: string | Buffer): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string>): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}
