// Responses items -> the AI SDK's LanguageModelV4 prompt and call options. Every item keeps its
// structure: a function_call becomes a tool-call part, its function_call_output a tool-result
// part paired by call_id, so each provider package renders its own native tool protocol.

import type {
  JSONValue,
  LanguageModelV4CallOptions,
  LanguageModelV4FilePart,
  LanguageModelV4Message,
  LanguageModelV4Prompt,
  LanguageModelV4TextPart,
  LanguageModelV4ToolResultOutput,
  SharedV4ProviderOptions,
} from '@ai-sdk/provider';
import { compactionText } from '../protocol/compaction-content.ts';
import { invalidRequest } from '../protocol/errors.ts';
import type { ContentPart, Item, JsonObject, ReasoningItem, RequestParams } from '../protocol/types.ts';

type AssistantPart = Extract<LanguageModelV4Message, { role: 'assistant' }>['content'][number];
type ToolPart = Extract<LanguageModelV4Message, { role: 'tool' }>['content'][number];

/**
 * Builds the prompt from the full context (history first, new input last). Throws a 400 when
 * the items cannot form a valid conversation (a tool result without its call, a call left
 * unanswered before the conversation moves on).
 */
export function toModelPrompt(items: readonly Item[], instructions: string | null): LanguageModelV4Prompt {
  const prompt: LanguageModelV4Prompt = [];
  if (instructions) prompt.push({ role: 'system', content: instructions });

  const toolNames = new Map<string, string>(); // call_id -> function name
  const unanswered = new Set<string>();
  let assistant: AssistantPart[] | null = null;
  let tool: ToolPart[] | null = null;

  const flush = () => {
    if (assistant) prompt.push({ role: 'assistant', content: assistant });
    if (tool) prompt.push({ role: 'tool', content: tool });
    assistant = null;
    tool = null;
  };
  const requireAnswered = () => {
    if (unanswered.size > 0) {
      const [callId] = unanswered;
      throw invalidRequest(
        `No tool output found for function call ${callId}. Send a function_call_output item with call_id '${callId}' before continuing the conversation.`,
        'input',
        'missing_tool_output',
      );
    }
  };

  for (const item of items) {
    switch (item.type) {
      case 'message': {
        if (item.role === 'assistant') {
          if (tool) flush();
          requireAnswered();
          assistant ??= [];
          for (const part of item.content) assistant.push(...assistantParts(part, item.provider_metadata));
          break;
        }
        flush();
        requireAnswered();
        if (item.role === 'system' || item.role === 'developer') {
          prompt.push({ role: 'system', content: textOf(item.content) });
        } else {
          prompt.push({ role: 'user', content: item.content.map(userPart) });
        }
        break;
      }
      case 'function_call': {
        if (tool) flush();
        assistant ??= [];
        toolNames.set(item.call_id, item.name);
        unanswered.add(item.call_id);
        const call: AssistantPart = { type: 'tool-call', toolCallId: item.call_id, toolName: item.name, input: parseArguments(item.arguments) };
        if (item.provider_metadata) call.providerOptions = item.provider_metadata as SharedV4ProviderOptions;
        assistant.push(call);
        break;
      }
      case 'function_call_output': {
        const toolName = toolNames.get(item.call_id);
        if (toolName === undefined) {
          throw invalidRequest(
            `No tool call found for function call output with call_id ${item.call_id}.`,
            'input',
            'missing_tool_call',
          );
        }
        if (assistant) {
          prompt.push({ role: 'assistant', content: assistant });
          assistant = null;
        }
        unanswered.delete(item.call_id);
        tool ??= [];
        tool.push({ type: 'tool-result', toolCallId: item.call_id, toolName, output: toolOutput(item.output) });
        break;
      }
      case 'reasoning': {
        if (tool) flush();
        assistant ??= [];
        assistant.push(...reasoningParts(item));
        break;
      }
      case 'compaction': {
        // A summary of earlier turns reaches every provider as a user message.
        flush();
        requireAnswered();
        prompt.push({ role: 'user', content: [{ type: 'text', text: compactionText(item) }] });
        break;
      }
    }
  }
  flush();
  return prompt;
}

function assistantParts(part: ContentPart, metadata: JsonObject | undefined): AssistantPart[] {
  const providerOptions = metadata ? { providerOptions: metadata as SharedV4ProviderOptions } : {};
  if (part.type === 'output_text' || part.type === 'input_text') return [{ type: 'text', text: part.text, ...providerOptions }];
  if (part.type === 'refusal') return [{ type: 'text', text: part.refusal, ...providerOptions }];
  return [];
}

/**
 * A reasoning item is one reasoning part per summary part, each carrying the item's provider data
 * (the provider package merges parts with the same item id back into one item). A client-sent
 * item with `encrypted_content` (from OpenAI directly) is replayed to OpenAI-protocol providers.
 */
function reasoningParts(item: ReasoningItem): AssistantPart[] {
  let metadata = item.provider_metadata as SharedV4ProviderOptions | undefined;
  if (!metadata && item.encrypted_content) {
    const replay = { itemId: item.id, reasoningEncryptedContent: item.encrypted_content };
    metadata = { openai: replay, azure: replay };
  }
  const providerOptions = metadata ? { providerOptions: metadata } : {};
  const texts = item.summary.length > 0 ? item.summary.map((s) => s.text) : [(item.content ?? []).map((c) => c.text).join('')];
  return texts.map((text) => ({ type: 'reasoning' as const, text, ...providerOptions }));
}

/**
 * The prompt as one provider may receive it. Reasoning belongs to the provider that produced it:
 * its signatures and encrypted content mean nothing elsewhere (Anthropic rejects unsigned
 * thinking, Gemini would take another model's thoughts as its own), so a reasoning part is kept
 * only when its provider data carries this provider's key. Everything else passes unchanged.
 */
export function promptForProvider(prompt: LanguageModelV4Prompt, namespace: string): LanguageModelV4Prompt {
  let changed = false;
  const out: LanguageModelV4Prompt = [];
  for (const message of prompt) {
    if (message.role !== 'assistant' || !message.content.some((p) => p.type === 'reasoning')) {
      out.push(message);
      continue;
    }
    const content = message.content.filter((p) => p.type !== 'reasoning' || (p.providerOptions !== undefined && namespace in p.providerOptions));
    if (content.length === message.content.length) {
      out.push(message);
      continue;
    }
    changed = true;
    if (content.length > 0) out.push({ ...message, content });
  }
  return changed ? out : prompt;
}

function textOf(parts: ContentPart[]): string {
  return parts.map((p) => (p.type === 'input_text' || p.type === 'output_text' ? p.text : '')).join('\n');
}

function userPart(part: ContentPart): LanguageModelV4TextPart | LanguageModelV4FilePart {
  switch (part.type) {
    case 'input_text':
    case 'output_text':
      return { type: 'text', text: part.text };
    case 'refusal':
      return { type: 'text', text: part.refusal };
    case 'input_image':
      if (part.image_url === null) {
        throw invalidRequest('Images by `file_id` are not supported by this gateway; send `image_url`.', 'input', 'unsupported_parameter');
      }
      // `detail` is OpenAI's (and Azure's) to read; other providers have no such setting.
      return part.detail === 'auto'
        ? { type: 'file', ...fileData(part.image_url, 'image/*') }
        : { type: 'file', ...fileData(part.image_url, 'image/*'), providerOptions: { openai: { imageDetail: part.detail }, azure: { imageDetail: part.detail } } };
    case 'input_file': {
      const source = part.file_data ?? part.file_url;
      if (source === undefined) {
        throw invalidRequest('Files by `file_id` are not supported by this gateway; send `file_data` or `file_url`.', 'input', 'unsupported_parameter');
      }
      const file = fileData(source, guessMediaType(part.filename));
      return part.filename ? { type: 'file', filename: part.filename, ...file } : { type: 'file', ...file };
    }
  }
}

/** A data URL becomes inline base64 with its media type; anything else is passed as a URL. */
function fileData(source: string, fallbackType: string): Pick<LanguageModelV4FilePart, 'data' | 'mediaType'> {
  const match = /^data:([^;,]+)?(;base64)?,/.exec(source);
  if (match) {
    return { mediaType: match[1] ?? fallbackType, data: { type: 'data', data: source.slice(match[0].length) } };
  }
  if (/^https?:\/\//.test(source)) {
    // Some providers need a concrete type for a URL (Gemini's fileData): take it from the path.
    const url = new URL(source);
    return { mediaType: mediaTypeOf(url.pathname) ?? fallbackType, data: { type: 'url', url } };
  }
  // Bare base64 (the Responses API allows it for file_data).
  return { mediaType: fallbackType, data: { type: 'data', data: source } };
}

const MEDIA_TYPES: Record<string, string> = {
  pdf: 'application/pdf',
  txt: 'text/plain',
  md: 'text/markdown',
  csv: 'text/csv',
  html: 'text/html',
  json: 'application/json',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  heic: 'image/heic',
  heif: 'image/heif',
};

function mediaTypeOf(name: string | undefined): string | null {
  const ext = name?.includes('.') ? name.split('.').pop()?.toLowerCase() : undefined;
  return (ext && MEDIA_TYPES[ext]) ?? null;
}

function guessMediaType(filename: string | undefined): string {
  return mediaTypeOf(filename) ?? 'application/octet-stream';
}

function toolOutput(output: string | ContentPart[]): LanguageModelV4ToolResultOutput {
  if (typeof output === 'string') return { type: 'text', value: output };
  return {
    type: 'content',
    value: output.map((part) => {
      const p = userPart(part);
      return p.type === 'text' ? { type: 'text' as const, text: p.text } : { type: 'file' as const, data: p.data, mediaType: p.mediaType };
    }),
  };
}

/** Tool arguments are a JSON string on the wire; providers want the parsed value. */
function parseArguments(args: string): JSONValue {
  if (args.trim() === '') return {};
  try {
    return JSON.parse(args) as JSONValue;
  } catch {
    // Models occasionally emit invalid JSON; keep the raw text so nothing is lost.
    return args;
  }
}

/** Request parameters -> the AI SDK call options (without prompt and signal). */
export function toCallOptions(params: RequestParams): Omit<LanguageModelV4CallOptions, 'prompt'> {
  const options: Omit<LanguageModelV4CallOptions, 'prompt'> = {};
  if (params.max_output_tokens !== null) options.maxOutputTokens = params.max_output_tokens;
  if (params.temperature !== null) options.temperature = params.temperature;
  if (params.top_p !== null) options.topP = params.top_p;
  if (params.presence_penalty !== null) options.presencePenalty = params.presence_penalty;
  if (params.frequency_penalty !== null) options.frequencyPenalty = params.frequency_penalty;
  if (params.tools.length > 0) {
    options.tools = params.tools.map((t) => ({
      type: 'function' as const,
      name: t.name,
      ...(t.description === null ? {} : { description: t.description }),
      inputSchema: (t.parameters ?? { type: 'object', properties: {} }) as never,
      ...(t.strict === null ? {} : { strict: t.strict }),
    }));
    const choice = params.tool_choice;
    options.toolChoice = typeof choice === 'object' ? { type: 'tool', toolName: choice.name } : { type: choice };
  } else if (params.tool_choice === 'none') {
    options.toolChoice = { type: 'none' };
  }
  const format = params.text.format;
  if (format.type === 'json_object') options.responseFormat = { type: 'json' };
  else if (format.type === 'json_schema') {
    options.responseFormat = {
      type: 'json',
      schema: format.schema as never,
      name: format.name,
      ...(format.description === null ? {} : { description: format.description }),
    };
  }
  if (params.reasoning?.effort) options.reasoning = params.reasoning.effort as LanguageModelV4CallOptions['reasoning'];
  return options;
}
