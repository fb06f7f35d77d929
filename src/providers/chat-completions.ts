// OpenAI Chat Completions as a second client protocol over the same routing: a request becomes
// Responses items and parameters (validated by the same parser as /v1/responses, so tools, ranges
// and content parts obey the same rules), then the AI SDK prompt every provider package renders
// natively; the model's stream parts become a `chat.completion` or `chat.completion.chunk`s.
// Stateless: nothing is stored and no previous_response_id exists here.

import { randomUUID } from 'node:crypto';
import type { LanguageModelV4CallOptions, LanguageModelV4FinishReason, LanguageModelV4StreamPart } from '@ai-sdk/provider';
import { ApiError, invalidRequest, shown } from '../protocol/errors.ts';
import { parseCreateResponse } from '../protocol/request.ts';
import { toCallOptions, toModelPrompt } from './prompt.ts';
import type { ModelCallRequest } from './resilient-call.ts';

type Body = Record<string, unknown>;

export interface ChatRequest {
  model: string;
  stream: boolean;
  includeUsage: boolean;
  /** What startResilientCall needs, minus the client's signal. */
  call: Omit<ModelCallRequest, 'signal'>;
}

/** Chat Completions fields, and what the gateway does with the ones it cannot serve. */
const KNOWN = new Set([
  'model',
  'messages',
  'stream',
  'stream_options',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'response_format',
  'temperature',
  'top_p',
  'max_tokens',
  'max_completion_tokens',
  'presence_penalty',
  'frequency_penalty',
  'stop',
  'seed',
  'user',
  'n',
  'reasoning_effort',
  'verbosity',
  'safety_identifier',
  'prompt_cache_key',
  'store',
  'metadata',
  'logprobs',
  'top_logprobs',
  'modalities',
  'audio',
  'prediction',
  'service_tier',
  'web_search_options',
  'logit_bias',
  'functions',
  'function_call',
]);

const UNSUPPORTED: Record<string, (value: unknown) => string | null> = {
  n: (v) => (v === 1 ? null : 'Only `n: 1` is supported by this gateway.'),
  store: (v) => (v === true ? 'This endpoint is stateless: `store: true` is not supported. Use /v1/responses for stored, stateful conversations.' : null),
  logprobs: (v) => (v === true ? 'Log probabilities are not supported on /v1/chat/completions by this gateway.' : null),
  top_logprobs: () => 'Log probabilities are not supported on /v1/chat/completions by this gateway.',
  modalities: (v) => (Array.isArray(v) && v.some((m) => m !== 'text') ? 'Only text output is supported by this gateway.' : null),
  audio: () => 'Audio output is not supported by this gateway.',
  prediction: () => 'Predicted outputs are not supported by this gateway.',
  web_search_options: () => 'Built-in web search is not supported by this gateway; declare a function tool.',
  logit_bias: () => '`logit_bias` is not supported by this gateway.',
  functions: () => 'The deprecated `functions` parameter is not supported; use `tools`.',
  function_call: () => 'The deprecated `function_call` parameter is not supported; use `tool_choice`.',
};

/**
 * Validates a Chat Completions body and turns it into a model call. Throws a 400 ApiError.
 * `native`: the body goes to an upstream that speaks Chat Completions itself (chat-passthrough.ts),
 * so what only the conversion cannot express (unknown or vendor fields, logprobs, n, audio, tools
 * other than functions…) is left for that upstream to accept or refuse; the rest is validated as
 * for any model, and the returned call covers what was understood.
 */
export function parseChatRequest(raw: unknown, mode: { native?: boolean } = {}): ChatRequest {
  if (!isObject(raw)) throw invalidRequest('The request body must be a JSON object.', null, 'invalid_type');
  const body = raw as Body;
  const native = mode.native === true;
  for (const [key, value] of Object.entries(body)) {
    if (native && key !== 'store') continue;
    if (!KNOWN.has(key)) throw invalidRequest(`Unrecognized request argument supplied: ${key}`, key, 'unknown_parameter');
    const problem = value === undefined || value === null ? null : UNSUPPORTED[key]?.(value);
    if (problem) throw invalidRequest(problem, key, 'unsupported_parameter');
  }
  const messages = body.messages;
  if (messages === undefined || messages === null) throw invalidRequest("Missing required parameter: 'messages'.", 'messages', 'missing_required_parameter');
  if (!Array.isArray(messages)) throw invalidRequest("Invalid type for 'messages': expected an array.", 'messages', 'invalid_type');
  if (messages.length === 0) {
    throw invalidRequest("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.", 'messages', 'empty_array');
  }
  const stream = body.stream === true;
  if (body.stream_options !== undefined && body.stream_options !== null && !stream) {
    throw invalidRequest("The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'stream_options', 'invalid_value');
  }

  // The Responses parser validates and defaults everything the two APIs share.
  const responses: Body = {
    model: body.model,
    input: messages.flatMap((m, i) => toInputItems(m, i, native)),
    store: false,
    ...pick(body, ['temperature', 'top_p', 'presence_penalty', 'frequency_penalty', 'parallel_tool_calls', 'user', 'safety_identifier', 'prompt_cache_key', 'metadata']),
  };
  // Where each converted tool was in the client's list: a native upstream's own tools are left
  // out, and the Responses parser's errors name the converted list.
  let toolIndex: number[] = [];
  if (body.tools !== undefined && body.tools !== null) [responses.tools, toolIndex] = toTools(body.tools, native);
  const choice = body.tool_choice;
  const foreignChoice = native && isObject(choice) && (choice as Body).type !== 'function';
  if (choice !== undefined && choice !== null && !foreignChoice) responses.tool_choice = toToolChoice(choice);
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  if (maxTokens !== undefined && maxTokens !== null) responses.max_output_tokens = maxTokens;
  const text: Body = {};
  if (body.response_format !== undefined && body.response_format !== null) text.format = toFormat(body.response_format);
  if (body.verbosity !== undefined && body.verbosity !== null) text.verbosity = body.verbosity;
  if (Object.keys(text).length > 0) responses.text = text;
  if (body.reasoning_effort !== undefined && body.reasoning_effort !== null) responses.reasoning = { effort: body.reasoning_effort };

  const request = renamed(() => parseCreateResponse(responses), toolIndex);
  const options: Omit<LanguageModelV4CallOptions, 'prompt'> = toCallOptions(request.params);
  const stop = body.stop;
  if (stop !== undefined && stop !== null) {
    const list = typeof stop === 'string' ? [stop] : stop;
    if (!Array.isArray(list) || list.length > 4 || !list.every((s) => typeof s === 'string')) {
      throw invalidRequest("Invalid 'stop': expected a string or an array of up to 4 strings.", 'stop', 'invalid_value');
    }
    options.stopSequences = list as string[];
  }
  if (body.seed !== undefined && body.seed !== null) {
    if (!Number.isInteger(body.seed)) throw invalidRequest("Invalid type for 'seed': expected an integer.", 'seed', 'invalid_type');
    options.seed = body.seed as number;
  }
  const includeUsage = stream && isObject(body.stream_options) && (body.stream_options as Body).include_usage === true;
  return {
    model: request.model,
    stream,
    includeUsage,
    call: { prompt: toModelPrompt(request.input, null), options, params: request.params, stream },
  };
}

/**
 * Responses-API parameter names in a validation error, renamed to what a Chat client sent;
 * `toolIndex[i]` is where the converted tools[i] was in the client's list.
 */
function renamed<T>(run: () => T, toolIndex: readonly number[]): T {
  try {
    return run();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    const map = (s: string) =>
      s
        .replace(/\bmax_output_tokens\b/g, 'max_tokens')
        .replace(/\btext\.format\b/g, 'response_format')
        .replace(/\breasoning\.effort\b/g, 'reasoning_effort')
        .replace(/\btools\[(\d+)\]/g, (_, i: string) => `tools[${toolIndex[Number(i)] ?? i}]`)
        .replace(/\btools\[(\d+)\]\.(name|parameters|description|strict)\b/g, 'tools[$1].function.$2');
    throw new ApiError(error.status, error.type, map(error.message), { param: error.param === null ? null : map(error.param), code: error.code });
  }
}

// ---------- messages -> Responses items ----------

// Items of a stateless request are never stored or referenced: a fixed id spares the parser a
// random one per message.
const MESSAGE_ID = 'msg_chat';
const CALL_ID = 'fc_chat';

/** `native`: content only the upstream understands (audio, files by id, the deprecated function role) is not validated here. */
function toInputItems(raw: unknown, i: number, native: boolean): Body[] {
  const path = `messages[${i}]`;
  if (!isObject(raw)) throw invalidRequest(`Invalid type for '${path}': expected an object.`, path, 'invalid_type');
  const m = raw as Body;
  switch (m.role) {
    case 'system':
    case 'developer':
      return [{ type: 'message', id: MESSAGE_ID, role: m.role, content: textParts(m.content, path, 'input_text') }];
    case 'user': {
      const content = userParts(m.content, path, native);
      return content.length > 0 || !native ? [{ type: 'message', id: MESSAGE_ID, role: 'user', content }] : [];
    }
    case 'assistant': {
      const items: Body[] = [];
      const content = m.content === undefined || m.content === null ? [] : textParts(m.content, path, 'output_text', true);
      if (typeof m.refusal === 'string' && m.refusal.length > 0) content.push({ type: 'refusal', refusal: m.refusal });
      if (content.length > 0) items.push({ type: 'message', id: MESSAGE_ID, role: 'assistant', content });
      const calls = m.tool_calls;
      if (calls !== undefined && calls !== null) {
        if (!Array.isArray(calls)) throw invalidRequest(`Invalid type for '${path}.tool_calls': expected an array.`, `${path}.tool_calls`, 'invalid_type');
        calls.forEach((c, j) => {
          const call = isObject(c) ? (c as Body) : {};
          const fn = isObject(call.function) ? (call.function as Body) : {};
          const where = `${path}.tool_calls[${j}]`;
          if (typeof call.id !== 'string' || typeof fn.name !== 'string' || typeof fn.arguments !== 'string') {
            throw invalidRequest(`'${where}' needs an id, function.name and function.arguments.`, where, 'invalid_value');
          }
          items.push({ type: 'function_call', id: CALL_ID, call_id: call.id, name: fn.name, arguments: fn.arguments });
        });
      }
      if (items.length === 0 && native && (m.function_call != null || m.audio != null)) return [];
      if (items.length === 0) throw invalidRequest(`'${path}' needs content or tool_calls.`, `${path}.content`, 'missing_required_parameter');
      return items;
    }
    case 'tool': {
      if (typeof m.tool_call_id !== 'string') {
        throw invalidRequest(`Missing required parameter: '${path}.tool_call_id'.`, `${path}.tool_call_id`, 'missing_required_parameter');
      }
      const output = typeof m.content === 'string' ? m.content : textParts(m.content, path, 'input_text');
      return [{ type: 'function_call_output', call_id: m.tool_call_id, output }];
    }
    case 'function':
      if (native) return [];
      throw invalidRequest(`'${path}': the deprecated 'function' role is not supported; use 'tool'.`, `${path}.role`, 'unsupported_parameter');
    default:
      throw invalidRequest(
        `Invalid value: '${shown(m.role)}'. Supported values are: 'system', 'assistant', 'user', 'tool', and 'developer'.`,
        `${path}.role`,
        'invalid_value',
      );
  }
}

function textParts(content: unknown, path: string, type: 'input_text' | 'output_text', allowRefusal = false): Body[] {
  const text = (t: string): Body => (type === 'output_text' ? { type, text: t, annotations: [] } : { type, text: t });
  if (typeof content === 'string') return [text(content)];
  if (!Array.isArray(content)) throw invalidRequest(`Invalid type for '${path}.content': expected a string or an array of content parts.`, `${path}.content`, 'invalid_type');
  return content.map((p, j) => {
    const part = isObject(p) ? (p as Body) : {};
    if (part.type === 'text' && typeof part.text === 'string') return text(part.text);
    if (allowRefusal && part.type === 'refusal' && typeof part.refusal === 'string') return { type: 'refusal', refusal: part.refusal };
    throw invalidRequest(`Invalid content part at '${path}.content[${j}]': only text parts are allowed here.`, `${path}.content[${j}]`, 'invalid_value');
  });
}

function userParts(content: unknown, path: string, native: boolean): Body[] {
  if (typeof content === 'string') return [{ type: 'input_text', text: content }];
  if (!Array.isArray(content)) throw invalidRequest(`Invalid type for '${path}.content': expected a string or an array of content parts.`, `${path}.content`, 'invalid_type');
  // A part only a native upstream understands is skipped, not filtered out first: errors then
  // still name the index the client sent.
  return content.flatMap((p, j): Body[] => {
    const where = `${path}.content[${j}]`;
    const part = isObject(p) ? (p as Body) : {};
    switch (part.type) {
      case 'text':
        return [{ type: 'input_text', text: part.text }];
      case 'image_url': {
        const image = isObject(part.image_url) ? (part.image_url as Body) : {};
        return [{ type: 'input_image', image_url: image.url, detail: image.detail ?? 'auto' }];
      }
      case 'file': {
        const file = isObject(part.file) ? (part.file as Body) : {};
        if (typeof file.file_id === 'string') {
          if (native) return [];
          throw invalidRequest(`'${where}.file.file_id': files by id are not supported by this gateway; send file_data.`, `${where}.file.file_id`, 'unsupported_parameter');
        }
        return [{ type: 'input_file', ...pick(file, ['filename', 'file_data']) }];
      }
      case 'input_audio':
        if (native) return [];
        throw invalidRequest(`'${where}': audio input is not supported by this gateway.`, where, 'unsupported_parameter');
      default:
        throw invalidRequest(`Invalid value: '${shown(part.type)}'. Supported values for '${where}.type' are: 'text', 'image_url' and 'file'.`, `${where}.type`, 'invalid_value');
    }
  });
}

// ---------- tools and formats ----------

/** The tools as the Responses parser takes them, and where each was in the client's list. */
function toTools(raw: unknown, native: boolean): [unknown, number[]] {
  if (!Array.isArray(raw)) return [raw, []]; // the Responses parser reports the type error
  const sentAt: number[] = [];
  const tools = raw.flatMap((t, i) => {
    const tool = isObject(t) ? (t as Body) : {};
    // Other tool types (custom tools…) are the native upstream's to validate (skipped, not
    // filtered out first, so an error names the index the client sent).
    if (native && isObject(t) && tool.type !== 'function') return [];
    if (tool.type !== 'function' || !isObject(tool.function)) {
      throw invalidRequest(`Invalid 'tools[${i}]': only {"type": "function", "function": {...}} tools are supported.`, `tools[${i}]`, 'invalid_value');
    }
    const fn = tool.function as Body;
    sentAt.push(i);
    // Chat Completions tools are not strict unless they say so (the Responses API's default differs).
    return { type: 'function', ...pick(fn, ['name', 'description', 'parameters']), strict: fn.strict === true };
  });
  return [tools, sentAt];
}

function toToolChoice(raw: unknown): unknown {
  if (isObject(raw) && (raw as Body).type === 'function' && isObject((raw as Body).function)) {
    return { type: 'function', name: ((raw as Body).function as Body).name };
  }
  return raw;
}

function toFormat(raw: unknown): unknown {
  if (!isObject(raw)) return raw;
  const f = raw as Body;
  if (f.type !== 'json_schema') return f;
  const schema = isObject(f.json_schema) ? (f.json_schema as Body) : {};
  return { type: 'json_schema', ...pick(schema, ['name', 'description', 'schema', 'strict']) };
}

// ---------- stream parts -> chat.completion / chunks ----------

export interface ChatUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { reasoning_tokens: number };
}

interface CallState {
  index: number;
  id: string;
  name: string;
  arguments: string;
}

/**
 * Turns stream parts into Chat Completions output, as one object (`completion()`) or as chunk
 * deltas (`push` returns the deltas each part produces). Reasoning goes in `reasoning_content`,
 * the field DeepSeek, vLLM and most OpenAI-compatible servers use.
 */
export class ChatAssembler {
  readonly id = `chatcmpl-${randomUUID().replaceAll('-', '')}`;
  readonly created = Math.floor(Date.now() / 1000);
  readonly model: string;
  content = '';
  reasoning = '';
  finishReason: string | null = null;
  usage: ChatUsage | null = null;
  private readonly calls = new Map<string, CallState>();

  constructor(model: string) {
    this.model = model;
  }

  /** The deltas this part adds (none for parts that carry nothing a client sees). Throws on an error part. */
  push(part: LanguageModelV4StreamPart): Body[] {
    switch (part.type) {
      case 'text-delta':
        if (part.delta.length === 0) return [];
        this.content += part.delta;
        return [{ content: part.delta }];
      case 'reasoning-delta':
        if (part.delta.length === 0) return [];
        this.reasoning += part.delta;
        return [{ reasoning_content: part.delta }];
      case 'tool-input-start':
        return [this.startCall(part.id, part.toolName)];
      case 'tool-input-delta': {
        const call = this.calls.get(part.id);
        if (!call || part.delta.length === 0) return [];
        call.arguments += part.delta;
        return [{ tool_calls: [{ index: call.index, function: { arguments: part.delta } }] }];
      }
      case 'tool-call': {
        const deltas: Body[] = [];
        let call = this.calls.get(part.toolCallId);
        if (!call) {
          deltas.push(this.startCall(part.toolCallId, part.toolName));
          call = this.calls.get(part.toolCallId) as CallState;
        }
        if (part.input !== call.arguments) {
          const rest = part.input.startsWith(call.arguments) ? part.input.slice(call.arguments.length) : null;
          call.arguments = part.input;
          // A provider that re-sends the whole call in a different form: clients concatenate deltas,
          // so only a true continuation can be streamed; the final object always has the full form.
          if (rest) deltas.push({ tool_calls: [{ index: call.index, function: { arguments: rest } }] });
        }
        return deltas;
      }
      case 'finish':
        this.finishReason = this.calls.size > 0 && part.finishReason.unified === 'tool-calls' ? 'tool_calls' : chatFinishReason(part.finishReason.unified);
        this.usage = chatUsage(part.usage);
        return [];
      case 'error':
        throw part.error;
      default:
        return [];
    }
  }

  private startCall(id: string, name: string): Body {
    const call: CallState = { index: this.calls.size, id, name, arguments: '' };
    this.calls.set(id, call);
    return { tool_calls: [{ index: call.index, id, type: 'function', function: { name, arguments: '' } }] };
  }

  /** A `chat.completion.chunk` carrying one delta (or the finish reason). */
  chunk(delta: Body, finishReason: string | null = null): Body {
    return {
      id: this.id,
      object: 'chat.completion.chunk',
      created: this.created,
      model: this.model,
      system_fingerprint: null,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    };
  }

  /** The usage chunk `stream_options.include_usage` asks for: no choices, the usage. */
  usageChunk(): Body {
    return { id: this.id, object: 'chat.completion.chunk', created: this.created, model: this.model, system_fingerprint: null, choices: [], usage: this.usage };
  }

  completion(): Body {
    const message: Body = { role: 'assistant', content: this.content.length > 0 || this.calls.size === 0 ? this.content : null, refusal: null };
    if (this.reasoning.length > 0) message.reasoning_content = this.reasoning;
    if (this.calls.size > 0) {
      message.tool_calls = [...this.calls.values()].map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
    }
    message.annotations = [];
    return {
      id: this.id,
      object: 'chat.completion',
      created: this.created,
      model: this.model,
      system_fingerprint: null,
      choices: [{ index: 0, message, logprobs: null, finish_reason: this.finishReason ?? 'stop' }],
      usage: this.usage,
    };
  }
}

function chatFinishReason(reason: LanguageModelV4FinishReason['unified']): string {
  switch (reason) {
    case 'length':
      return 'length';
    case 'content-filter':
      return 'content_filter';
    case 'tool-calls':
      return 'tool_calls';
    default:
      return 'stop';
  }
}

function chatUsage(u: Extract<LanguageModelV4StreamPart, { type: 'finish' }>['usage']): ChatUsage {
  const input = u.inputTokens.total ?? 0;
  const output = u.outputTokens.total ?? 0;
  return {
    prompt_tokens: input,
    completion_tokens: output,
    total_tokens: input + output,
    prompt_tokens_details: { cached_tokens: u.inputTokens.cacheRead ?? 0 },
    completion_tokens_details: { reasoning_tokens: u.outputTokens.reasoning ?? 0 },
  };
}

// ---------- helpers ----------

function isObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function pick(obj: Body, keys: string[]): Body {
  const out: Body = {};
  for (const k of keys) if (obj[k] !== undefined && obj[k] !== null) out[k] = obj[k];
  return out;
}

