// OpenAI's Responses API (POST /v1/responses), also what Azure's v1 API and xAI serve: a
// `response` object, or SSE of `response.*` events with sequence numbers (reasoning summary
// parts, output text, function call arguments, then response.completed / response.incomplete).
// With `store: false` nothing is kept server side, so validation rejects item references and
// reasoning items without their encrypted content, and checks encrypted content it issued itself.

import { splitArguments, splitText } from './chat-wire.ts';
import { type Content, encryptedFor, type Frame, isValidEncrypted, sse, type Wire, type WireContext, type WireError } from './wire.ts';

// biome-ignore lint/suspicious/noExplicitAny: request JSON is arbitrary
type Json = any;

function errorBody(status: number, message?: string, code: string | null = null) {
  const fallback =
    status === 429
      ? 'Rate limit reached for requests. Please try again in 20s.'
      : status >= 500
        ? 'The server had an error while processing your request. Sorry about that!'
        : status === 401
          ? 'Incorrect API key provided.'
          : `Fake upstream error ${status}.`;
  const type = status >= 500 ? 'server_error' : 'invalid_request_error';
  return { error: { message: message ?? fallback, type, param: null, code } };
}

function invalid(message: string, param: string | null = null, status = 400): WireError {
  return { status, body: { error: { message, type: 'invalid_request_error', param, code: null } } };
}

function usage(content: Content) {
  const u = content.usage;
  return {
    input_tokens: u.prompt_tokens,
    input_tokens_details: { cached_tokens: u.cached_tokens ?? 0 },
    output_tokens: u.completion_tokens,
    output_tokens_details: { reasoning_tokens: u.reasoning_tokens ?? 0 },
    total_tokens: u.prompt_tokens + u.completion_tokens,
  };
}

interface Ids {
  reasoning: string;
  message: string;
  calls: string[];
}

function idsFor(ctx: WireContext, content: Content): Ids {
  const suffix = ctx.id.slice('resp_'.length);
  return { reasoning: `rs_${suffix}`, message: `msg_${suffix}`, calls: content.calls.map((_, i) => `fc_${suffix}_${i}`) };
}

function outputItems(ctx: WireContext, content: Content, ids: Ids): Json[] {
  const out: Json[] = [];
  if (content.reasoning.length > 0) out.push(reasoningItem(ctx, content, ids));
  if (content.text !== undefined && content.text !== '') out.push(messageItem(ids, content.text));
  content.calls.forEach((c, i) => {
    out.push({ type: 'function_call', id: ids.calls[i], call_id: c.id, name: c.name, arguments: c.arguments, status: 'completed' });
  });
  return out;
}

function reasoningItem(ctx: WireContext, content: Content, ids: Ids): Json {
  const item: Json = { type: 'reasoning', id: ids.reasoning, status: 'completed', summary: content.reasoning.map((text) => ({ type: 'summary_text', text })) };
  if (wantsEncrypted(ctx)) item.encrypted_content = content.encrypted ?? encryptedFor(content.reasoning);
  return item;
}

function messageItem(ids: Ids, text: string): Json {
  return { type: 'message', id: ids.message, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text, annotations: [], logprobs: [] }] };
}

function wantsEncrypted(ctx: WireContext): boolean {
  return Array.isArray(ctx.body?.include) && ctx.body.include.includes('reasoning.encrypted_content');
}

function responseObject(ctx: WireContext, content: Content | null, output: Json[], status: string): Json {
  const incomplete = content && (content.finish === 'length' || content.finish === 'content_filter');
  return {
    id: ctx.id,
    object: 'response',
    created_at: ctx.created,
    status,
    error: null,
    incomplete_details: incomplete ? { reason: content.finish === 'length' ? 'max_output_tokens' : 'content_filter' } : null,
    instructions: ctx.body?.instructions ?? null,
    max_output_tokens: ctx.body?.max_output_tokens ?? null,
    model: ctx.model,
    output,
    parallel_tool_calls: ctx.body?.parallel_tool_calls ?? true,
    previous_response_id: null,
    reasoning: { effort: ctx.body?.reasoning?.effort ?? null, summary: ctx.body?.reasoning?.summary ?? null },
    store: ctx.body?.store ?? true,
    temperature: ctx.body?.temperature ?? 1,
    text: ctx.body?.text ?? { format: { type: 'text' } },
    tool_choice: ctx.body?.tool_choice ?? 'auto',
    tools: ctx.body?.tools ?? [],
    top_p: ctx.body?.top_p ?? 1,
    truncation: 'disabled',
    usage: content && status !== 'in_progress' ? usage(content) : null,
    metadata: {},
  };
}

export const responsesWire: Wire = {
  name: 'responses',
  contentType: 'text/event-stream; charset=utf-8',

  headers: (ctx) => ({ 'x-request-id': `req_${ctx.id.slice(5)}` }),

  validate(ctx) {
    const body = ctx.body;
    if (typeof body?.model !== 'string') return invalid('Missing required parameter: \'model\'.', 'model');
    const input = typeof body.input === 'string' ? [{ role: 'user', content: body.input }] : body.input;
    if (!Array.isArray(input)) return invalid("Missing required parameter: 'input'.", 'input');
    const stored = body.store !== false;
    const calls = new Set<string>();
    for (let i = 0; i < input.length; i++) {
      const item = input[i];
      if (item.type === 'item_reference' && !stored) {
        return invalid(`Item with id '${item.id}' not found. Items are not persisted when \`store\` is set to false. Try again with \`store\` set to true, or remove this item from your input.`, `input[${i}]`, 404);
      }
      if (item.type === 'reasoning') {
        if (!stored && !item.encrypted_content) {
          return invalid(`Item with id '${item.id}' not found. Items are not persisted when \`store\` is set to false. Try again with \`store\` set to true, or remove this item from your input.`, `input[${i}]`, 404);
        }
        if (item.encrypted_content && !isValidEncrypted(item.encrypted_content)) {
          return invalid('The encrypted content for item could not be verified.', `input[${i}].encrypted_content`);
        }
      }
      if (item.type === 'function_call') calls.add(item.call_id);
      if (item.type === 'function_call_output' && !calls.has(item.call_id)) {
        return invalid(`No tool call found for function call output with call_id ${item.call_id}.`, 'input');
      }
      if ((item.role === 'system' || item.role === 'developer') && item.type === 'message' && !Array.isArray(item.content) && typeof item.content !== 'string') {
        return invalid(`Invalid 'input[${i}].content'.`, `input[${i}].content`);
      }
    }
    return undefined;
  },

  json(ctx, content) {
    const incomplete = content.finish === 'length' || content.finish === 'content_filter';
    return responseObject(ctx, content, outputItems(ctx, content, idsFor(ctx, content)), incomplete ? 'incomplete' : 'completed');
  },

  frames(ctx, content, open = false) {
    const ids = idsFor(ctx, content);
    const frames: Frame[] = [];
    let seq = 0;
    const push = (type: string, data: Json, delta = false) => frames.push({ data: sse(type, { type, sequence_number: seq++, ...data }), delta });
    push('response.created', { response: responseObject(ctx, content, [], 'in_progress') });
    push('response.in_progress', { response: responseObject(ctx, content, [], 'in_progress') });
    let index = 0;
    const done: Json[] = [];
    if (content.reasoning.length > 0) {
      const full = reasoningItem(ctx, content, ids);
      const output_index = index++;
      push('response.output_item.added', { output_index, item: { type: 'reasoning', id: ids.reasoning, status: 'in_progress', summary: [], ...(full.encrypted_content ? { encrypted_content: null } : {}) } });
      content.reasoning.forEach((text, summary_index) => {
        const base = { item_id: ids.reasoning, output_index, summary_index };
        push('response.reasoning_summary_part.added', { ...base, part: { type: 'summary_text', text: '' } });
        for (const piece of splitText(text)) push('response.reasoning_summary_text.delta', { ...base, delta: piece, obfuscation: 'x' }, true);
        push('response.reasoning_summary_text.done', { ...base, text });
        push('response.reasoning_summary_part.done', { ...base, part: { type: 'summary_text', text } });
      });
      push('response.output_item.done', { output_index, item: full });
      done.push(full);
    }
    if (content.text !== undefined && content.text !== '') {
      const output_index = index++;
      const base = { item_id: ids.message, output_index, content_index: 0 };
      push('response.output_item.added', { output_index, item: { type: 'message', id: ids.message, status: 'in_progress', role: 'assistant', content: [] } });
      push('response.content_part.added', { ...base, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } });
      for (const piece of content.chunks ?? splitText(content.text)) push('response.output_text.delta', { ...base, delta: piece, logprobs: [], obfuscation: 'x' }, true);
      if (open) return frames;
      push('response.output_text.done', { ...base, text: content.text, logprobs: [] });
      push('response.content_part.done', { ...base, part: { type: 'output_text', text: content.text, annotations: [], logprobs: [] } });
      const item = messageItem(ids, content.text);
      push('response.output_item.done', { output_index, item });
      done.push(item);
    }
    if (open) return frames;
    content.calls.forEach((c, i) => {
      const output_index = index++;
      push('response.output_item.added', { output_index, item: { type: 'function_call', id: ids.calls[i], call_id: c.id, name: c.name, arguments: '', status: 'in_progress' } });
      for (const piece of splitArguments(c.arguments)) push('response.function_call_arguments.delta', { item_id: ids.calls[i], output_index, delta: piece }, true);
      push('response.function_call_arguments.done', { item_id: ids.calls[i], output_index, arguments: c.arguments });
      const item = { type: 'function_call', id: ids.calls[i], call_id: c.id, name: c.name, arguments: c.arguments, status: 'completed' };
      push('response.output_item.done', { output_index, item });
      done.push(item);
    });
    const incomplete = content.finish === 'length' || content.finish === 'content_filter';
    push(incomplete ? 'response.incomplete' : 'response.completed', { response: responseObject(ctx, content, done, incomplete ? 'incomplete' : 'completed') });
    return frames;
  },

  errorBody: (status, _ctx, message) => errorBody(status, message),

  errorFrame: (_ctx, message) => ({ data: sse('error', { type: 'error', code: 'server_error', message, param: null, sequence_number: 99 }) }),
};
