// Amazon Bedrock's Converse API: POST /model/{modelId}/converse (JSON) and /converse-stream, whose
// body is the AWS event stream binary framing (application/vnd.amazon.eventstream): each message
// is prelude (total length, headers length, CRC32), string headers (:message-type, :event-type,
// :content-type), a JSON payload and a trailing CRC32. Events: messageStart,
// contentBlockStart/Delta/Stop (text, toolUse, reasoningContent text + signature), messageStop,
// metadata (usage). Validation: toolResult blocks answer the toolUse blocks right before them.

import { crc32 } from 'node:zlib';
import { splitArguments, splitText } from './chat-wire.ts';
import { type Content, type Frame, signatureFor, type Wire, type WireError } from './wire.ts';

const STOP: Record<Content['finish'], string> = {
  stop: 'end_turn',
  length: 'max_tokens',
  content_filter: 'content_filtered',
  tool_calls: 'tool_use',
};

// biome-ignore lint/suspicious/noExplicitAny: request JSON is arbitrary
type Json = any;

/** One AWS event stream message with string headers. */
export function eventStreamMessage(headers: Record<string, string>, payload: unknown): Buffer {
  const headerParts: Buffer[] = [];
  for (const [name, value] of Object.entries(headers)) {
    const n = Buffer.from(name, 'utf8');
    const v = Buffer.from(value, 'utf8');
    const h = Buffer.alloc(1 + n.length + 1 + 2 + v.length);
    h.writeUInt8(n.length, 0);
    n.copy(h, 1);
    h.writeUInt8(7, 1 + n.length); // type 7: string
    h.writeUInt16BE(v.length, 2 + n.length);
    v.copy(h, 4 + n.length);
    headerParts.push(h);
  }
  const headerBytes = Buffer.concat(headerParts);
  const body = Buffer.from(JSON.stringify(payload), 'utf8');
  const total = 12 + headerBytes.length + body.length + 4;
  const message = Buffer.alloc(total);
  message.writeUInt32BE(total, 0);
  message.writeUInt32BE(headerBytes.length, 4);
  message.writeUInt32BE(crc32(message.subarray(0, 8)), 8);
  headerBytes.copy(message, 12);
  body.copy(message, 12 + headerBytes.length);
  message.writeUInt32BE(crc32(message.subarray(0, total - 4)), total - 4);
  return message;
}

function event(type: string, payload: unknown, delta = false): Frame {
  return { data: eventStreamMessage({ ':event-type': type, ':content-type': 'application/json', ':message-type': 'event' }, payload), delta };
}

function invalid(message: string): WireError {
  return { status: 400, body: { message }, headers: { 'x-amzn-errortype': 'ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/' } };
}

function usage(content: Content) {
  const u = content.usage;
  const cached = u.cached_tokens ?? 0;
  return {
    inputTokens: u.prompt_tokens - cached,
    outputTokens: u.completion_tokens,
    totalTokens: u.prompt_tokens + u.completion_tokens,
    ...(cached ? { cacheReadInputTokens: cached, cacheWriteInputTokens: 0 } : {}),
  };
}

function blocks(content: Content): Json[] {
  const out: Json[] = content.reasoning.map((text) => ({
    reasoningContent: { reasoningText: { text, signature: content.signature ?? signatureFor(text) } },
  }));
  if (content.text !== undefined && content.text !== '') out.push({ text: content.text });
  for (const c of content.calls) out.push({ toolUse: { toolUseId: c.id, name: c.name, input: JSON.parse(c.arguments || '{}') } });
  return out;
}

export const bedrockWire: Wire = {
  name: 'bedrock',
  contentType: 'application/vnd.amazon.eventstream',

  headers: (ctx) => ({ 'x-amzn-requestid': ctx.id }),

  validate(ctx) {
    const messages = ctx.body?.messages;
    if (!Array.isArray(messages) || messages.length === 0) return invalid('A conversation must start with a user message. Try again with a conversation that starts with a user message.');
    if (messages[0].role !== 'user') return invalid('A conversation must start with a user message. Try again with a conversation that starts with a user message.');
    let pending: string[] = [];
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      if (i > 0 && messages[i - 1].role === m.role) {
        return invalid('A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.');
      }
      const content: Json[] = m.content ?? [];
      if (m.role === 'user') {
        const results = content.filter((b) => b.toolResult).map((b) => b.toolResult.toolUseId);
        const missing = pending.filter((id) => !results.includes(id));
        if (missing.length > 0) {
          return invalid(`Expected toolResult blocks at messages.${i}.content for the following Ids: ${missing.join(', ')}`);
        }
        pending = [];
      } else {
        for (const b of content) {
          const r = b.reasoningContent?.reasoningText;
          if (r && r.signature !== signatureFor(r.text)) return invalid(`messages.${i}: The reasoning signature is invalid.`);
        }
        pending = content.filter((b) => b.toolUse).map((b) => b.toolUse.toolUseId);
      }
    }
    return undefined;
  },

  json(_ctx, content) {
    return {
      output: { message: { role: 'assistant', content: blocks(content) } },
      stopReason: STOP[content.finish],
      usage: usage(content),
      metrics: { latencyMs: 42 },
    };
  },

  frames(_ctx, content, open = false) {
    const frames: Frame[] = [event('messageStart', { role: 'assistant' })];
    let index = 0;
    for (const text of content.reasoning) {
      for (const piece of splitText(text)) frames.push(event('contentBlockDelta', { contentBlockIndex: index, delta: { reasoningContent: { text: piece } } }, true));
      frames.push(event('contentBlockDelta', { contentBlockIndex: index, delta: { reasoningContent: { signature: content.signature ?? signatureFor(text) } } }));
      frames.push(event('contentBlockStop', { contentBlockIndex: index++ }));
    }
    if (content.text !== undefined && content.text !== '') {
      for (const piece of content.chunks ?? splitText(content.text)) frames.push(event('contentBlockDelta', { contentBlockIndex: index, delta: { text: piece } }, true));
      if (open) return frames;
      frames.push(event('contentBlockStop', { contentBlockIndex: index++ }));
    }
    if (open) return frames;
    for (const c of content.calls) {
      frames.push(event('contentBlockStart', { contentBlockIndex: index, start: { toolUse: { toolUseId: c.id, name: c.name } } }));
      for (const piece of splitArguments(c.arguments)) frames.push(event('contentBlockDelta', { contentBlockIndex: index, delta: { toolUse: { input: piece } } }, true));
      frames.push(event('contentBlockStop', { contentBlockIndex: index++ }));
    }
    frames.push(event('messageStop', { stopReason: STOP[content.finish] }));
    frames.push(event('metadata', { usage: usage(content), metrics: { latencyMs: 42 } }));
    return frames;
  },

  errorBody(status, _ctx, message) {
    const fallback =
      status === 429 ? 'Too many requests, please wait before trying again.' : status >= 500 ? 'The system encountered an unexpected error during processing. Try your request again.' : `Fake upstream error ${status}.`;
    return { message: message ?? fallback };
  },

  errorHeaders(status) {
    const type = status === 429 ? 'ThrottlingException' : status >= 500 ? 'InternalServerException' : status === 403 ? 'AccessDeniedException' : 'ValidationException';
    return { 'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/` };
  },

  errorFrame(_ctx, message) {
    return { data: eventStreamMessage({ ':exception-type': 'modelStreamErrorException', ':content-type': 'application/json', ':message-type': 'exception' }, { message }) };
  },
};


