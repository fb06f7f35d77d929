// OpenAI Chat Completions wire format: request validation, `chat.completion` objects,
// `chat.completion.chunk` SSE streams and error bodies, shaped the way api.openai.com sends them.

export interface FakeUsage {
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens?: number;
  reasoning_tokens?: number;
}

export interface FakeToolCall {
  id: string;
  name: string;
  arguments: string;
}

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export interface ChunkContext {
  id: string;
  created: number;
  model: string;
  /** `stream_options.include_usage`: every chunk carries `usage: null`, a last chunk carries the usage. */
  includeUsage: boolean;
  /**
   * Provider variations of the protocol: `groq` puts the stream's usage in `x_groq` on the finish
   * chunk, `mistral` puts it on the finish chunk itself, `deepseek` reports cache hits as
   * `prompt_cache_hit_tokens`. Absent means api.openai.com.
   */
  dialect?: string | null;
}

const FINGERPRINT = 'fp_fakeupstream';

export function openAIError(
  message: string,
  type: string,
  param: string | null = null,
  code: string | null = null,
): OpenAIErrorBody {
  return { error: { message, type, param, code } };
}

/** The body api.openai.com sends for a status when a scripted error has no explicit body. */
export function defaultErrorBody(status: number, model: string): OpenAIErrorBody {
  switch (status) {
    case 400:
      return openAIError('Invalid request (scripted by fake upstream).', 'invalid_request_error');
    case 401:
      return openAIError(
        'Incorrect API key provided: sk-fake. You can find your API key at https://platform.openai.com/account/api-keys.',
        'invalid_request_error',
        null,
        'invalid_api_key',
      );
    case 403:
      return openAIError('You are not allowed to sample from this model.', 'invalid_request_error');
    case 404:
      return openAIError(
        `The model \`${model}\` does not exist or you do not have access to it.`,
        'invalid_request_error',
        null,
        'model_not_found',
      );
    case 429:
      return openAIError(
        `Rate limit reached for ${model} on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.`,
        'requests',
        null,
        'rate_limit_exceeded',
      );
    case 500:
      return openAIError(
        'The server had an error while processing your request. Sorry about that!',
        'server_error',
      );
    case 503:
      return openAIError('The engine is currently overloaded, please try again later.', 'server_error');
    default:
      return openAIError(
        `Fake upstream error ${status}.`,
        status >= 500 ? 'server_error' : 'invalid_request_error',
      );
  }
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);

/**
 * The request checks api.openai.com makes that a gateway can get wrong. Returns the 400 body, or
 * undefined when the request is acceptable.
 */
// biome-ignore lint/suspicious/noExplicitAny: request JSON is arbitrary
export function validateChatRequest(body: any): OpenAIErrorBody | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return openAIError(
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
      'invalid_request_error',
    );
  }
  if (typeof body.model !== 'string' || body.model === '') {
    return openAIError('you must provide a model parameter', 'invalid_request_error');
  }
  const messages = body.messages;
  if (messages === undefined) {
    return openAIError(
      "Missing required parameter: 'messages'.",
      'invalid_request_error',
      'messages',
      'missing_required_parameter',
    );
  }
  if (!Array.isArray(messages)) {
    return openAIError(
      "Invalid type for 'messages': expected an array, but got " + typeof messages + ' instead.',
      'invalid_request_error',
      'messages',
      'invalid_type',
    );
  }
  if (messages.length === 0) {
    return openAIError(
      "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
      'invalid_request_error',
      'messages',
      'empty_array',
    );
  }
  if (body.stream_options != null && body.stream !== true) {
    return openAIError(
      "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
      'invalid_request_error',
      'stream_options',
      null,
    );
  }
  // Tool results must answer the tool calls of the assistant message right before them, and every
  // tool call must be answered before the conversation moves on.
  let pending: Set<string> | undefined;
  let pendingIndex = -1;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    const role = m?.role;
    if (!ROLES.has(role)) {
      return openAIError(
        `Invalid value: '${String(role)}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.`,
        'invalid_request_error',
        `messages[${i}].role`,
        'invalid_value',
      );
    }
    if (role === 'tool') {
      if (pending === undefined || !pending.has(m.tool_call_id)) {
        return openAIError(
          "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
          'invalid_request_error',
          `messages.[${i}].role`,
        );
      }
      pending.delete(m.tool_call_id);
      continue;
    }
    if (pending !== undefined && pending.size > 0) return unansweredToolCalls(pending, pendingIndex);
    pending = undefined;
    if (role === 'assistant' && Array.isArray(m.tool_calls) && m.tool_calls.length > 0) {
      pending = new Set(m.tool_calls.map((c: { id: string }) => c.id));
      pendingIndex = i;
    }
  }
  if (pending !== undefined && pending.size > 0) return unansweredToolCalls(pending, pendingIndex);
  return undefined;
}

function unansweredToolCalls(pending: Set<string>, index: number): OpenAIErrorBody {
  return openAIError(
    "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: " +
      [...pending].join(', '),
    'invalid_request_error',
    `messages.[${index}].role`,
  );
}

/** Plausible prompt token count from the request's text (about 4 characters a token, 4 per message). */
// biome-ignore lint/suspicious/noExplicitAny: request JSON is arbitrary
export function estimatePromptTokens(body: any): number {
  let chars = 0;
  let messages = 0;
  if (Array.isArray(body?.messages)) {
    for (const m of body.messages) {
      messages++;
      const content = m?.content;
      if (typeof content === 'string') chars += content.length;
      else if (Array.isArray(content)) {
        for (const part of content) {
          if (typeof part?.text === 'string') chars += part.text.length;
          else chars += 340; // an image or file part: a flat guess
        }
      }
      if (Array.isArray(m?.tool_calls)) {
        for (const c of m.tool_calls) {
          chars += (c?.function?.name?.length ?? 0) + (c?.function?.arguments?.length ?? 0);
        }
      }
    }
  }
  if (Array.isArray(body?.tools)) chars += JSON.stringify(body.tools).length;
  return Math.ceil(chars / 4) + messages * 4 + 3;
}

export function estimateCompletionTokens(text: string | undefined, calls?: FakeToolCall[]): number {
  let chars = text?.length ?? 0;
  if (calls) for (const c of calls) chars += c.name.length + c.arguments.length + 8;
  return Math.max(1, Math.ceil(chars / 4));
}

export function usageObject(u: FakeUsage, dialect?: string | null) {
  if (dialect === 'deepseek') {
    const hit = u.cached_tokens ?? 0;
    return {
      prompt_tokens: u.prompt_tokens,
      completion_tokens: u.completion_tokens,
      total_tokens: u.prompt_tokens + u.completion_tokens,
      prompt_cache_hit_tokens: hit,
      prompt_cache_miss_tokens: u.prompt_tokens - hit,
      completion_tokens_details: { reasoning_tokens: u.reasoning_tokens ?? 0 },
    };
  }
  return {
    prompt_tokens: u.prompt_tokens,
    completion_tokens: u.completion_tokens,
    total_tokens: u.prompt_tokens + u.completion_tokens,
    prompt_tokens_details: { cached_tokens: u.cached_tokens ?? 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: u.reasoning_tokens ?? 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

/** A non-streaming `chat.completion` object. */
export function completionObject(
  ctx: ChunkContext,
  text: string | undefined,
  calls: FakeToolCall[] | undefined,
  finishReason: string,
  usage: FakeUsage,
) {
  const message: Record<string, unknown> = { role: 'assistant', content: text ?? null, refusal: null };
  if (calls && calls.length > 0) {
    message.tool_calls = calls.map((c) => ({
      id: c.id,
      type: 'function',
      function: { name: c.name, arguments: c.arguments },
    }));
  }
  message.annotations = [];
  return {
    id: ctx.id,
    object: 'chat.completion',
    created: ctx.created,
    model: ctx.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason }],
    usage: usageObject(usage, ctx.dialect),
    service_tier: 'default',
    system_fingerprint: FINGERPRINT,
  };
}

/** One `data: {chat.completion.chunk}` SSE line (with its blank line). */
export function chunkLine(
  ctx: ChunkContext,
  delta: Record<string, unknown>,
  finishReason: string | null,
): string {
  const chunk: Record<string, unknown> = {
    id: ctx.id,
    object: 'chat.completion.chunk',
    created: ctx.created,
    model: ctx.model,
    service_tier: 'default',
    system_fingerprint: FINGERPRINT,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  };
  if (ctx.includeUsage) chunk.usage = null;
  return 'data: ' + JSON.stringify(chunk) + '\n\n';
}

/** The opening chunk: the assistant role, as OpenAI sends it before any content. */
export function roleLine(ctx: ChunkContext, withContent: boolean): string {
  return chunkLine(ctx, { role: 'assistant', content: withContent ? '' : null, refusal: null }, null);
}

export function contentLine(ctx: ChunkContext, piece: string): string {
  return chunkLine(ctx, { content: piece }, null);
}

/** Tool call deltas: id, type and name in the first delta of each call, arguments spread over more. */
export function toolCallLines(ctx: ChunkContext, calls: FakeToolCall[]): string {
  let out = '';
  for (let index = 0; index < calls.length; index++) {
    const c = calls[index];
    out += chunkLine(
      ctx,
      { tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] },
      null,
    );
    for (const piece of splitArguments(c.arguments)) {
      out += chunkLine(ctx, { tool_calls: [{ index, function: { arguments: piece } }] }, null);
    }
  }
  return out;
}

/** The closing lines: the finish_reason chunk, the usage chunk if asked for, and `[DONE]`. */
export function finishLines(ctx: ChunkContext, finishReason: string, usage: FakeUsage): string {
  if (ctx.dialect === 'groq' || ctx.dialect === 'mistral') {
    const chunk = JSON.parse(chunkLine({ ...ctx, includeUsage: false }, {}, finishReason).slice('data: '.length));
    if (ctx.dialect === 'groq') chunk.x_groq = { id: `req_${ctx.id}`, usage: usageObject(usage) };
    else chunk.usage = usageObject(usage);
    return 'data: ' + JSON.stringify(chunk) + '\n\ndata: [DONE]\n\n';
  }
  let out = chunkLine(ctx, {}, finishReason);
  if (ctx.includeUsage) {
    out +=
      'data: ' +
      JSON.stringify({
        id: ctx.id,
        object: 'chat.completion.chunk',
        created: ctx.created,
        model: ctx.model,
        service_tier: 'default',
        system_fingerprint: FINGERPRINT,
        choices: [],
        usage: usageObject(usage, ctx.dialect),
      }) +
      '\n\n';
  }
  return out + 'data: [DONE]\n\n';
}

/** A mid-stream error frame, as OpenAI sends it when generation fails after the 200. */
export function errorLine(body: OpenAIErrorBody): string {
  return 'data: ' + JSON.stringify(body) + '\n\n';
}

/** Word-sized deltas that keep their leading whitespace: "Hello world" -> ["Hello", " world"]. */
export function splitText(text: string): string[] {
  if (text === '') return [];
  const parts: string[] = text.match(/\s*\S+/g) ?? [];
  const covered = parts.reduce((n, p) => n + p.length, 0);
  if (covered < text.length) {
    if (parts.length > 0) parts[parts.length - 1] += text.slice(covered);
    else parts.push(text);
  }
  return parts;
}

/** Token-like argument deltas: '{"city":"Paris"}' -> ['{"', 'city', '":"', 'Paris', '"}']. */
export function splitArguments(args: string): string[] {
  if (args === '') return [];
  return args.match(/[A-Za-z0-9_]+|\s+|[^A-Za-z0-9_\s]+/g) ?? [args];
}
