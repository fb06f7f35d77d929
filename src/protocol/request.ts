// Turns an untrusted POST /v1/responses body into a CreateResponseRequest, or throws an
// ApiError naming the offending `param` exactly as OpenAI does (`input[2].content[0].text`).
// Hand-written rather than a schema library: the error messages are the product here.

import { openCompaction } from './compaction-content.ts';
import { parseConversationParam } from './conversations.ts';
import { invalidRequest, shown } from './errors.ts';
import { newId } from './ids.ts';
import type {
  ContentPart,
  ContextManagement,
  CreateResponseRequest,
  FunctionTool,
  Item,
  JsonObject,
  MessageRole,
  RequestParams,
  TextConfig,
  ToolChoice,
} from './types.ts';

type Body = Record<string, unknown>;

/** Fields this gateway understands. Anything else is rejected so typos never pass silently. */
const KNOWN_FIELDS = new Set([
  'model',
  'input',
  'instructions',
  'previous_response_id',
  'store',
  'stream',
  'stream_options',
  'background',
  'include',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'temperature',
  'top_p',
  'presence_penalty',
  'frequency_penalty',
  'top_logprobs',
  'max_output_tokens',
  'max_tool_calls',
  'metadata',
  'text',
  'reasoning',
  'truncation',
  'user',
  'safety_identifier',
  'prompt_cache_key',
  'service_tier',
  'conversation',
  'prompt',
  'context_management',
]);

/** Accepted by OpenAI but not served by this build: a clear 400 beats silently ignoring them. */
const NOT_YET_SUPPORTED: Record<string, string> = {
  prompt: 'Prompt templates (`prompt`) are not supported by this gateway; send `input` and `instructions`.',
};

export const METADATA_MAX_PAIRS = 16;
const METADATA_MAX_KEY = 64;
const METADATA_MAX_VALUE = 512;

export function parseCreateResponse(raw: unknown): CreateResponseRequest {
  if (!isObject(raw)) throw invalidRequest('The request body must be a JSON object.', null, 'invalid_type');
  const body = raw as Body;
  for (const key of Object.keys(body)) {
    if (!KNOWN_FIELDS.has(key)) {
      throw invalidRequest(`Unrecognized request argument supplied: ${key}`, key, 'unknown_parameter');
    }
    if (key in NOT_YET_SUPPORTED && body[key] !== undefined && body[key] !== null) {
      throw invalidRequest(NOT_YET_SUPPORTED[key], key, 'unsupported_parameter');
    }
  }

  const model = body.model;
  if (model === undefined || model === null || model === '') {
    throw invalidRequest('Missing required parameter: `model`.', 'model', 'missing_required_parameter');
  }
  if (typeof model !== 'string') throw typeError('model', 'a string', model);

  const background = optionalBoolean(body, 'background') ?? false;
  if (background && body.store === false) {
    throw invalidRequest('Background mode requires `store: true`: a background response is retrieved by polling.', 'background', 'invalid_value');
  }
  const include = parseInclude(body.include);

  const params: RequestParams = {
    instructions: optionalString(body, 'instructions'),
    tools: parseTools(body.tools),
    tool_choice: parseToolChoice(body.tool_choice),
    parallel_tool_calls: optionalBoolean(body, 'parallel_tool_calls') ?? true,
    temperature: optionalNumber(body, 'temperature', 0, 2),
    top_p: optionalNumber(body, 'top_p', 0, 1),
    presence_penalty: optionalNumber(body, 'presence_penalty', -2, 2),
    frequency_penalty: optionalNumber(body, 'frequency_penalty', -2, 2),
    top_logprobs: optionalInteger(body, 'top_logprobs', 0, 20),
    max_output_tokens: optionalInteger(body, 'max_output_tokens', 1, Number.MAX_SAFE_INTEGER),
    max_tool_calls: optionalInteger(body, 'max_tool_calls', 1, Number.MAX_SAFE_INTEGER),
    text: parseText(body.text),
    reasoning: parseReasoning(body.reasoning),
    truncation: parseTruncation(body.truncation),
    metadata: parseMetadata(body.metadata),
    user: optionalString(body, 'user'),
    safety_identifier: optionalString(body, 'safety_identifier'),
    prompt_cache_key: optionalString(body, 'prompt_cache_key'),
    service_tier: parseServiceTier(body.service_tier),
    // Stored with the parameters so a retrieved response still says it ran in the background.
    ...(background ? { background: true } : {}),
  };
  if (params.tool_choice !== 'auto' && params.tool_choice !== 'none' && params.tools.length === 0) {
    throw invalidRequest('`tool_choice` requires `tools` to be provided.', 'tool_choice', 'invalid_value');
  }
  if (typeof params.tool_choice === 'object') {
    const name = params.tool_choice.name;
    if (!params.tools.some((t) => t.name === name)) {
      throw invalidRequest(`Tool choice '${name}' not found in 'tools' parameter.`, 'tool_choice', 'invalid_value');
    }
  }
  if (body.stream_options !== undefined && body.stream_options !== null && !isObject(body.stream_options)) {
    throw typeError('stream_options', 'an object', body.stream_options);
  }

  const previous = optionalString(body, 'previous_response_id');
  if (previous !== null && previous.length === 0) {
    throw invalidRequest('`previous_response_id` must not be empty.', 'previous_response_id', 'invalid_value');
  }
  const conversation = parseConversationParam(body.conversation);
  if (conversation !== null && previous !== null) {
    throw invalidRequest(
      "Mutually exclusive parameters: 'previous_response_id' and 'conversation'. Ensure you are only providing one of these parameters.",
      'conversation',
      'mutually_exclusive_parameters',
    );
  }

  const contextManagement = parseContextManagement(body.context_management);
  return {
    model,
    input: parseInput(body.input),
    previous_response_id: previous,
    conversation,
    store: optionalBoolean(body, 'store') ?? true,
    stream: optionalBoolean(body, 'stream') ?? false,
    background,
    include,
    params,
    ...(contextManagement.length > 0 ? { context_management: contextManagement } : {}),
  };
}

/** `context_management`: a list of `{type: 'compaction', compact_threshold}` (at most one). */
export function parseContextManagement(raw: unknown): ContextManagement[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw typeError('context_management', 'an array', raw);
  const out = raw.map((entry, i): ContextManagement => {
    const path = `context_management[${i}]`;
    if (!isObject(entry)) throw typeError(path, 'an object', entry);
    const e = entry as Body;
    for (const key of Object.keys(e)) {
      if (key !== 'type' && key !== 'compact_threshold') {
        throw invalidRequest(`Unrecognized parameter: '${path}.${key}'.`, `${path}.${key}`, 'unknown_parameter');
      }
    }
    if (e.type !== 'compaction') {
      throw invalidRequest(`Invalid value for '${path}.type': expected 'compaction'.`, `${path}.type`, 'invalid_value');
    }
    const threshold = e.compact_threshold ?? null;
    if (threshold !== null && (typeof threshold !== 'number' || !Number.isInteger(threshold) || threshold < 1)) {
      throw invalidRequest(`Invalid '${path}.compact_threshold': expected a positive integer (tokens).`, `${path}.compact_threshold`, 'invalid_value');
    }
    return { type: 'compaction', compact_threshold: threshold };
  });
  if (out.length > 1) {
    throw invalidRequest("Invalid 'context_management': at most one 'compaction' entry.", 'context_management', 'invalid_value');
  }
  return out;
}

// ---------- input ----------

export function parseInput(input: unknown, param = 'input'): Item[] {
  if (input === undefined || input === null) {
    throw invalidRequest(`Missing required parameter: \`${param}\`.`, param, 'missing_required_parameter');
  }
  if (typeof input === 'string') {
    return [{ type: 'message', id: newId('msg'), role: 'user', status: 'completed', content: [{ type: 'input_text', text: input }] }];
  }
  if (!Array.isArray(input)) throw typeError('input', 'a string or an array of items', input);
  return input.map((item, i) => parseInputItem(item, `${param}[${i}]`));
}

function parseInputItem(raw: unknown, path: string): Item {
  if (!isObject(raw)) throw typeError(path, 'an object', raw);
  const item = raw as Body;
  const type = item.type ?? (item.role !== undefined ? 'message' : undefined);
  const id = optionalString(item, 'id', path);
  switch (type) {
    case 'message':
      return parseMessage(item, path, id);
    case 'function_call': {
      const args = requireString(item, 'arguments', path);
      return {
        type: 'function_call',
        id: id ?? newId('fc'),
        call_id: requireCallId(item, path),
        name: requireString(item, 'name', path),
        arguments: args,
        status: 'completed',
      };
    }
    case 'function_call_output': {
      const output = item.output;
      let parsed: string | ContentPart[];
      if (typeof output === 'string') parsed = output;
      else if (Array.isArray(output)) parsed = output.map((p, i) => parsePart(p, `${path}.output[${i}]`, 'user'));
      else throw typeError(`${path}.output`, 'a string or an array of content parts', output);
      return { type: 'function_call_output', id: id ?? newId('fco'), call_id: requireCallId(item, path), output: parsed, status: 'completed' };
    }
    case 'reasoning': {
      const summary = item.summary;
      if (!Array.isArray(summary)) throw typeError(`${path}.summary`, 'an array', summary);
      return {
        type: 'reasoning',
        id: id ?? newId('rs'),
        summary: summary.map((s, i) => {
          const p = `${path}.summary[${i}]`;
          if (!isObject(s) || (s as Body).type !== 'summary_text') throw invalidRequest(`Invalid value for '${p}': expected a summary_text part.`, p, 'invalid_value');
          return { type: 'summary_text' as const, text: requireString(s as Body, 'text', p) };
        }),
        encrypted_content: optionalString(item, 'encrypted_content', path),
      };
    }
    case 'compaction': {
      const content = requireString(item, 'encrypted_content', path);
      if (openCompaction({ encrypted_content: content }) === null) {
        throw invalidRequest(
          `Invalid '${path}.encrypted_content': not a compaction item this gateway produced. Send compaction items exactly as Parley returned them.`,
          `${path}.encrypted_content`,
          'invalid_value',
        );
      }
      return { type: 'compaction', id: id ?? newId('cmp'), encrypted_content: content };
    }
    case 'item_reference':
      throw invalidRequest('Item references (`item_reference`) are not supported by this gateway yet; send the item itself.', `${path}.type`, 'unsupported_parameter');
    case undefined:
      throw invalidRequest(`Missing required parameter: '${path}.type'.`, `${path}.type`, 'missing_required_parameter');
    default:
      throw invalidRequest(
        `Invalid value: '${shown(type)}'. Supported values for '${path}.type' are: 'message', 'function_call', 'function_call_output', 'reasoning' and 'compaction'.`,
        `${path}.type`,
        'invalid_value',
      );
  }
}

const ROLES: readonly MessageRole[] = ['user', 'assistant', 'system', 'developer'];

function parseMessage(item: Body, path: string, id: string | null): Item {
  const role = item.role;
  if (typeof role !== 'string' || !ROLES.includes(role as MessageRole)) {
    throw invalidRequest(
      `Invalid value for '${path}.role': expected one of 'user', 'assistant', 'system' or 'developer'.`,
      `${path}.role`,
      role === undefined ? 'missing_required_parameter' : 'invalid_value',
    );
  }
  const r = role as MessageRole;
  const content = item.content;
  let parts: ContentPart[];
  if (typeof content === 'string') {
    parts = [r === 'assistant' ? { type: 'output_text', text: content, annotations: [] } : { type: 'input_text', text: content }];
  } else if (Array.isArray(content)) {
    parts = content.map((p, i) => parsePart(p, `${path}.content[${i}]`, r));
  } else {
    throw typeError(`${path}.content`, 'a string or an array of content parts', content);
  }
  return { type: 'message', id: id ?? newId('msg'), role: r, status: 'completed', content: parts };
}

function parsePart(raw: unknown, path: string, role: MessageRole): ContentPart {
  if (!isObject(raw)) throw typeError(path, 'an object', raw);
  const part = raw as Body;
  const type = part.type;
  const allowed = role === 'assistant' ? ['output_text', 'refusal', 'input_text'] : role === 'user' ? ['input_text', 'input_image', 'input_file'] : ['input_text'];
  if (typeof type !== 'string' || !allowed.includes(type)) {
    throw invalidRequest(
      `Invalid value: '${shown(type)}'. Supported values for '${path}.type' in a ${role} message are: ${allowed.map((a) => `'${a}'`).join(', ')}.`,
      `${path}.type`,
      'invalid_value',
    );
  }
  switch (type) {
    case 'input_text':
      // An assistant's input_text is what some clients send when replaying history; store it as output_text.
      return role === 'assistant'
        ? { type: 'output_text', text: requireString(part, 'text', path), annotations: [] }
        : { type: 'input_text', text: requireString(part, 'text', path) };
    case 'output_text': {
      const annotations = part.annotations ?? [];
      if (!Array.isArray(annotations)) throw typeError(`${path}.annotations`, 'an array', annotations);
      return { type: 'output_text', text: requireString(part, 'text', path), annotations: annotations as JsonObject[] };
    }
    case 'refusal':
      return { type: 'refusal', refusal: requireString(part, 'refusal', path) };
    case 'input_image': {
      const imageUrl = optionalString(part, 'image_url', path);
      const fileId = optionalString(part, 'file_id', path);
      if (imageUrl === null && fileId === null) {
        throw invalidRequest(`'${path}' needs an 'image_url' (a URL or a data URL).`, `${path}.image_url`, 'missing_required_parameter');
      }
      const detail = part.detail ?? 'auto';
      if (detail !== 'auto' && detail !== 'low' && detail !== 'high') {
        throw invalidRequest(`Invalid value for '${path}.detail': expected 'auto', 'low' or 'high'.`, `${path}.detail`, 'invalid_value');
      }
      return { type: 'input_image', image_url: imageUrl, ...(fileId === null ? {} : { file_id: fileId }), detail };
    }
    default: {
      const file: ContentPart = { type: 'input_file' };
      for (const key of ['filename', 'file_data', 'file_url', 'file_id'] as const) {
        const v = optionalString(part, key, path);
        if (v !== null) file[key] = v;
      }
      if (file.file_data === undefined && file.file_url === undefined && file.file_id === undefined) {
        throw invalidRequest(`'${path}' needs 'file_data' or 'file_url'.`, `${path}.file_data`, 'missing_required_parameter');
      }
      return file;
    }
  }
}

function requireCallId(item: Body, path: string): string {
  const callId = requireString(item, 'call_id', path);
  if (callId.length === 0) throw invalidRequest(`'${path}.call_id' must not be empty.`, `${path}.call_id`, 'invalid_value');
  return callId;
}

// ---------- tools ----------

const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

function parseTools(raw: unknown): FunctionTool[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw typeError('tools', 'an array', raw);
  const names = new Set<string>();
  return raw.map((t, i) => {
    const path = `tools[${i}]`;
    if (!isObject(t)) throw typeError(path, 'an object', t);
    const tool = t as Body;
    if (tool.type !== 'function') {
      throw invalidRequest(
        `Unsupported tool type '${shown(tool.type)}' at '${path}.type': this gateway supports 'function' tools.`,
        `${path}.type`,
        'invalid_value',
      );
    }
    const name = requireString(tool, 'name', path);
    if (!TOOL_NAME.test(name)) {
      throw invalidRequest(`Invalid '${path}.name': must match ^[a-zA-Z0-9_-]{1,64}$.`, `${path}.name`, 'invalid_value');
    }
    if (names.has(name)) throw invalidRequest(`Duplicate tool name '${name}' at '${path}.name'.`, `${path}.name`, 'invalid_value');
    names.add(name);
    const parameters = tool.parameters ?? null;
    if (parameters !== null && !isObject(parameters)) throw typeError(`${path}.parameters`, 'a JSON schema object', parameters);
    return {
      type: 'function',
      name,
      description: optionalString(tool, 'description', path),
      parameters: parameters as JsonObject | null,
      strict: optionalBoolean(tool, 'strict', path) ?? true,
    };
  });
}

function parseToolChoice(raw: unknown): ToolChoice {
  if (raw === undefined || raw === null) return 'auto';
  if (raw === 'none' || raw === 'auto' || raw === 'required') return raw;
  if (isObject(raw)) {
    const choice = raw as Body;
    if (choice.type === 'function' && typeof choice.name === 'string') return { type: 'function', name: choice.name };
  }
  throw invalidRequest(
    "Invalid value for 'tool_choice': expected 'none', 'auto', 'required' or {\"type\": \"function\", \"name\": \"...\"}.",
    'tool_choice',
    'invalid_value',
  );
}

// ---------- text, reasoning, truncation, include, metadata ----------

function parseText(raw: unknown): TextConfig {
  if (raw === undefined || raw === null) return { format: { type: 'text' } };
  if (!isObject(raw)) throw typeError('text', 'an object', raw);
  const text = raw as Body;
  const config: TextConfig = { format: { type: 'text' } };
  const format = text.format;
  if (format !== undefined && format !== null) {
    if (!isObject(format)) throw typeError('text.format', 'an object', format);
    const f = format as Body;
    if (f.type === 'text' || f.type === 'json_object') config.format = { type: f.type };
    else if (f.type === 'json_schema') {
      const name = requireString(f, 'name', 'text.format');
      if (!TOOL_NAME.test(name)) throw invalidRequest("Invalid 'text.format.name': must match ^[a-zA-Z0-9_-]{1,64}$.", 'text.format.name', 'invalid_value');
      if (!isObject(f.schema)) throw typeError('text.format.schema', 'a JSON schema object', f.schema);
      config.format = {
        type: 'json_schema',
        name,
        description: optionalString(f, 'description', 'text.format'),
        schema: f.schema as JsonObject,
        strict: optionalBoolean(f, 'strict', 'text.format') ?? false,
      };
    } else {
      throw invalidRequest(
        "Invalid value for 'text.format.type': expected 'text', 'json_object' or 'json_schema'.",
        'text.format.type',
        'invalid_value',
      );
    }
  }
  if (text.verbosity !== undefined && text.verbosity !== null) {
    if (text.verbosity !== 'low' && text.verbosity !== 'medium' && text.verbosity !== 'high') {
      throw invalidRequest("Invalid value for 'text.verbosity': expected 'low', 'medium' or 'high'.", 'text.verbosity', 'invalid_value');
    }
    config.verbosity = text.verbosity;
  }
  return config;
}

const EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'];
const SUMMARIES = ['auto', 'concise', 'detailed'];

function parseReasoning(raw: unknown): RequestParams['reasoning'] {
  if (raw === undefined || raw === null) return null;
  if (!isObject(raw)) throw typeError('reasoning', 'an object', raw);
  const r = raw as Body;
  const effort = optionalString(r, 'effort', 'reasoning');
  if (effort !== null && !EFFORTS.includes(effort)) {
    throw invalidRequest(`Invalid value for 'reasoning.effort': expected one of ${EFFORTS.join(', ')}.`, 'reasoning.effort', 'invalid_value');
  }
  const summary = optionalString(r, 'summary', 'reasoning') ?? optionalString(r, 'generate_summary', 'reasoning');
  if (summary !== null && !SUMMARIES.includes(summary)) {
    throw invalidRequest(`Invalid value for 'reasoning.summary': expected one of ${SUMMARIES.join(', ')}.`, 'reasoning.summary', 'invalid_value');
  }
  return { effort, summary };
}

function parseTruncation(raw: unknown): 'auto' | 'disabled' {
  if (raw === undefined || raw === null || raw === 'disabled') return 'disabled';
  if (raw === 'auto') return 'auto';
  throw invalidRequest("Invalid value for 'truncation': expected 'auto' or 'disabled'.", 'truncation', 'invalid_value');
}

/**
 * OpenAI's includable fields. The tool-specific ones name items of built-in tools this gateway
 * does not run (only function tools), so they are accepted and have nothing to add.
 */
export const INCLUDABLE = [
  'reasoning.encrypted_content',
  'message.output_text.logprobs',
  'message.input_image.image_url',
  'file_search_call.results',
  'web_search_call.results',
  'web_search_call.action.sources',
  'computer_call_output.output.image_url',
  'code_interpreter_call.outputs',
] as const;

export function parseInclude(raw: unknown, param = 'include'): string[] {
  if (raw === undefined || raw === null) return [];
  if (typeof raw === 'string') raw = [raw];
  if (!Array.isArray(raw)) throw typeError(param, 'an array of strings', raw);
  const out: string[] = [];
  raw.forEach((value, i) => {
    if (typeof value !== 'string' || !(INCLUDABLE as readonly string[]).includes(value)) {
      throw invalidRequest(
        `Invalid value for '${param}[${i}]': '${shown(value)}'. Supported values are: ${INCLUDABLE.map((v) => `'${v}'`).join(', ')}.`,
        `${param}[${i}]`,
        'invalid_value',
      );
    }
    if (!out.includes(value)) out.push(value);
  });
  return out;
}

const SERVICE_TIERS = ['auto', 'default', 'flex', 'scale', 'priority'];

function parseServiceTier(raw: unknown): string | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== 'string' || !SERVICE_TIERS.includes(raw)) {
    throw invalidRequest(
      `Invalid value for 'service_tier': expected one of ${SERVICE_TIERS.map((t) => `'${t}'`).join(', ')}.`,
      'service_tier',
      'invalid_value',
    );
  }
  return raw;
}

export function parseMetadata(raw: unknown, param = 'metadata'): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  if (!isObject(raw)) throw typeError(param, 'an object of string values', raw);
  const entries = Object.entries(raw as Body);
  if (entries.length > METADATA_MAX_PAIRS) {
    throw invalidRequest(`Invalid '${param}': at most ${METADATA_MAX_PAIRS} key-value pairs are allowed, got ${entries.length}.`, param, 'invalid_value');
  }
  const out: Record<string, string> = {};
  for (const [key, value] of entries) {
    if (key.length > METADATA_MAX_KEY) {
      throw invalidRequest(`Invalid '${param}': key '${key.slice(0, 20)}…' is longer than ${METADATA_MAX_KEY} characters.`, param, 'invalid_value');
    }
    if (typeof value !== 'string') throw typeError(`${param}.${key}`, 'a string', value);
    if (value.length > METADATA_MAX_VALUE) {
      throw invalidRequest(`Invalid '${param}.${key}': values are at most ${METADATA_MAX_VALUE} characters.`, `${param}.${key}`, 'invalid_value');
    }
    // Defined as an own data property, so keys like __proto__ stay plain data.
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

// ---------- primitives ----------

function isObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function typeError(param: string, expected: string, got: unknown) {
  return invalidRequest(`Invalid type for '${param}': expected ${expected}, but got ${describe(got)} instead.`, param, 'invalid_type');
}

function join(path: string | undefined, key: string): string {
  return path ? `${path}.${key}` : key;
}

function requireString(obj: Body, key: string, path?: string): string {
  const v = obj[key];
  if (v === undefined || v === null) {
    throw invalidRequest(`Missing required parameter: '${join(path, key)}'.`, join(path, key), 'missing_required_parameter');
  }
  if (typeof v !== 'string') throw typeError(join(path, key), 'a string', v);
  return v;
}

function optionalString(obj: Body, key: string, path?: string): string | null {
  const v = obj[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw typeError(join(path, key), 'a string', v);
  return v;
}

function optionalBoolean(obj: Body, key: string, path?: string): boolean | null {
  const v = obj[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'boolean') throw typeError(join(path, key), 'a boolean', v);
  return v;
}

function optionalNumber(obj: Body, key: string, min: number, max: number): number | null {
  const v = obj[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw typeError(key, 'a number', v);
  if (v < min || v > max) {
    throw invalidRequest(`Invalid '${key}': expected a value between ${min} and ${max}, but got ${v} instead.`, key, 'invalid_value');
  }
  return v;
}

function optionalInteger(obj: Body, key: string, min: number, max: number): number | null {
  const v = optionalNumber(obj, key, min, max);
  if (v !== null && !Number.isInteger(v)) throw typeError(key, 'an integer', v);
  return v;
}
