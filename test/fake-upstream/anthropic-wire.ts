// Anthropic Messages API (POST /v1/messages), as api.anthropic.com speaks it: a `message` object,
// or SSE with message_start, content_block_start/delta/stop (text_delta, thinking_delta,
// signature_delta, input_json_delta), message_delta (stop_reason, usage) and message_stop.
// Validation covers what a gateway can get wrong: role alternation, tool_use answered by
// tool_result in the very next user turn, thinking blocks replayed with their signature, and a
// thinking-enabled tool turn that must start with its thinking block.

import { splitArguments, splitText } from './chat-wire.ts';
import type { FakeUsage } from './chat-wire.ts';
import { type Content, type Frame, signatureFor, sse, type Wire, type WireError } from './wire.ts';

const STOP: Record<Content['finish'], string> = {
  stop: 'end_turn',
  length: 'max_tokens',
  content_filter: 'refusal',
  tool_calls: 'tool_use',
};

const ERROR_TYPES: Record<number, [string, string]> = {
  400: ['invalid_request_error', 'Invalid request (scripted by fake upstream).'],
  401: ['authentication_error', 'invalid x-api-key'],
  403: ['permission_error', 'Your API key does not have permission to use the specified resource.'],
  404: ['not_found_error', 'The requested resource could not be found.'],
  413: ['request_too_large', 'Request exceeds the maximum allowed number of bytes.'],
  429: ['rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit.'],
  500: ['api_error', 'Internal server error'],
  529: ['overloaded_error', 'Overloaded'],
};

function error(type: string, message: string) {
  return { type: 'error', error: { type, message } };
}

function invalid(message: string): WireError {
  return { status: 400, body: error('invalid_request_error', message) };
}

// biome-ignore lint/suspicious/noExplicitAny: request JSON is arbitrary
type Block = any;

function usage(u: FakeUsage) {
  const cached = u.cached_tokens ?? 0;
  return {
    input_tokens: u.prompt_tokens - cached,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: cached,
    output_tokens: u.completion_tokens,
    ...(u.reasoning_tokens ? { output_tokens_details: { thinking_tokens: u.reasoning_tokens } } : {}),
    service_tier: 'standard',
  };
}

function blocks(content: Content): Block[] {
  const out: Block[] = [];
  for (const thinking of content.reasoning) {
    out.push({ type: 'thinking', thinking, signature: content.signature ?? signatureFor(thinking) });
  }
  if (content.text !== undefined && content.text !== '') out.push({ type: 'text', text: content.text });
  for (const c of content.calls) out.push({ type: 'tool_use', id: c.id, name: c.name, input: JSON.parse(c.arguments || '{}') });
  return out;
}

export const anthropicWire: Wire = {
  name: 'anthropic',
  contentType: 'text/event-stream; charset=utf-8',

  headers: (ctx) => ({ 'request-id': `req_${ctx.id.slice(4)}`, 'anthropic-organization-id': 'fake-org' }),

  validate(ctx) {
    const body = ctx.body;
    if (typeof body?.model !== 'string') return invalid('model: Field required');
    if (typeof body.max_tokens !== 'number') return invalid('max_tokens: Field required');
    const messages = body.messages;
    if (!Array.isArray(messages) || messages.length === 0) return invalid('messages: at least one message is required');
    if (messages.some((m: Block) => m?.role === 'system')) {
      return invalid('messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message role.');
    }
    if (messages[0].role !== 'user') return invalid('messages: first message must use the "user" role');
    const thinkingOn = body.thinking?.type === 'enabled' || body.thinking?.type === 'adaptive';
    let pending: string[] = [];
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      if (i > 0 && messages[i - 1].role === m.role) {
        return invalid(`messages: roles must alternate between "user" and "assistant", but found multiple "${m.role}" roles in a row`);
      }
      const content: Block[] = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
      if (!Array.isArray(content) || content.length === 0) return invalid(`messages.${i}: all messages must have non-empty content`);
      if (m.role === 'user') {
        const results = content.filter((b) => b.type === 'tool_result').map((b) => b.tool_use_id);
        for (const id of pending) {
          if (!results.includes(id)) {
            return invalid(
              `messages.${i}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${id}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`,
            );
          }
        }
        for (const id of results) {
          if (!pending.includes(id)) {
            return invalid(`messages.${i}.content: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${id}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`);
          }
        }
        pending = [];
      } else {
        for (let j = 0; j < content.length; j++) {
          const b = content[j];
          if (b.type === 'thinking' && b.signature !== signatureFor(b.thinking ?? '')) {
            return invalid(`messages.${i}.content.${j}: Invalid \`signature\` in \`thinking\` block`);
          }
        }
        pending = content.filter((b) => b.type === 'tool_use').map((b) => b.id);
        const last = i === messages.length - 1 || (i === messages.length - 2 && messages[i + 1].role === 'user');
        if (thinkingOn && last && pending.length > 0 && content[0].type !== 'thinking' && content[0].type !== 'redacted_thinking') {
          return invalid(
            `messages.${i}.content.0.type: Expected \`thinking\` or \`redacted_thinking\`, but found \`${content[0].type}\`. When \`thinking\` is enabled, a final \`assistant\` message must start with a thinking block (preceeding the lastmost set of \`tool_use\` and \`tool_result\` blocks).`,
          );
        }
      }
    }
    if (pending.length > 0) return invalid(`messages: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${pending.join(', ')}`);
    return undefined;
  },

  json(ctx, content) {
    return {
      id: ctx.id,
      type: 'message',
      role: 'assistant',
      model: ctx.model,
      content: blocks(content),
      stop_reason: STOP[content.finish],
      stop_sequence: null,
      usage: usage(content.usage),
    };
  },

  frames(ctx, content, open = false) {
    const u = usage(content.usage);
    const frames: Frame[] = [
      {
        data: sse('message_start', {
          type: 'message_start',
          message: {
            id: ctx.id,
            type: 'message',
            role: 'assistant',
            model: ctx.model,
            content: [],
            stop_reason: null,
            stop_sequence: null,
            usage: { input_tokens: u.input_tokens, cache_creation_input_tokens: 0, cache_read_input_tokens: u.cache_read_input_tokens, output_tokens: 1, service_tier: 'standard' },
          },
        }),
      },
    ];
    let index = 0;
    const start = (block: Block) => frames.push({ data: sse('content_block_start', { type: 'content_block_start', index, content_block: block }) });
    const delta = (d: Block) => frames.push({ data: sse('content_block_delta', { type: 'content_block_delta', index, delta: d }), delta: true });
    const stop = () => frames.push({ data: sse('content_block_stop', { type: 'content_block_stop', index: index++ }) });
    for (const thinking of content.reasoning) {
      start({ type: 'thinking', thinking: '', signature: '' });
      for (const piece of splitText(thinking)) delta({ type: 'thinking_delta', thinking: piece });
      delta({ type: 'signature_delta', signature: content.signature ?? signatureFor(thinking) });
      stop();
    }
    if (content.text !== undefined && content.text !== '') {
      start({ type: 'text', text: '' });
      for (const piece of content.chunks ?? splitText(content.text)) delta({ type: 'text_delta', text: piece });
      if (!open) stop();
    }
    if (open) return frames;
    for (const c of content.calls) {
      start({ type: 'tool_use', id: c.id, name: c.name, input: {} });
      delta({ type: 'input_json_delta', partial_json: '' });
      for (const piece of splitArguments(c.arguments)) delta({ type: 'input_json_delta', partial_json: piece });
      stop();
    }
    frames.push({
      data: sse('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: STOP[content.finish], stop_sequence: null },
        usage: {
          output_tokens: u.output_tokens,
          ...(u.output_tokens_details ? { output_tokens_details: u.output_tokens_details } : {}),
        },
      }),
    });
    frames.push({ data: sse('message_stop', { type: 'message_stop' }) });
    return frames;
  },

  errorBody(status, _ctx, message) {
    const [type, fallback] = ERROR_TYPES[status] ?? [status >= 500 ? 'api_error' : 'invalid_request_error', `Fake upstream error ${status}.`];
    return error(type, message ?? fallback);
  },

  errorFrame(_ctx, message) {
    return { data: sse('error', error('overloaded_error', message)) };
  },
};
