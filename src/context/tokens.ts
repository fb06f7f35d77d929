// Token counting for context-window decisions: `truncation`, the over-window error and
// `POST /v1/responses/input_tokens`. Exact for OpenAI's models through gpt-tokenizer (o200k_base
// for gpt-4o, gpt-4.1, gpt-4.5, gpt-5, the o-series and gpt-oss; cl100k_base for gpt-4 and
// gpt-3.5); every other model gets an estimate of one token per four characters.
//
// A request is counted the way OpenAI frames chat input: each item costs 3 tokens of framing plus
// its role and its content, and 3 more prime the reply. For plain text messages that is exactly
// gpt-tokenizer's `encodeChat(messages).length`. Tool definitions, tool calls, images and files
// are estimates (see the constants below): providers frame them in ways no public tokenizer shows.

import type { ContentPart, FunctionTool, Item } from '../protocol/types.ts';
import { compactionText } from '../protocol/compaction-content.ts';

export type EncodingName = 'o200k_base' | 'cl100k_base';

/** Framing of one chat message (`<|im_start|>`, `<|im_sep|>`, `<|im_end|>`). */
export const MESSAGE_OVERHEAD = 3;
/** `<|im_start|>assistant<|im_sep|>`, which every request ends with. */
export const REPLY_PRIMING = 3;
/** Per function definition, on top of its name, description and JSON schema. */
export const TOOL_OVERHEAD = 9;
/** An image at `detail: low`; any other detail is counted as one 1024x1024 image (85 + 4 x 170). */
export const IMAGE_LOW_TOKENS = 85;
export const IMAGE_TOKENS = 765;
/** Characters per token for models without a public tokenizer, and for file contents. */
export const CHARS_PER_TOKEN = 4;

/** Counts one request's parts for one model. Synchronous once created (the encoder is loaded). */
export interface TokenCounter {
  /** The tokenizer used, or `estimate` (characters / 4). */
  readonly encoding: EncodingName | 'estimate';
  text(text: string): number;
  /** One item with its framing. */
  item(item: Item): number;
  /** `instructions`, framed as the system message it becomes (0 when absent). */
  instructions(instructions: string | null): number;
  /** Function tool definitions (0 when none). */
  tools(tools: readonly FunctionTool[]): number;
}

/** The tokenizer of an OpenAI model id (`gpt-4o-mini`, `ft:gpt-4.1:org::id`, `o3-mini`), or null. */
export function encodingFor(modelId: string): EncodingName | null {
  const id = modelId.toLowerCase().replace(/^ft:/, '');
  if (/^(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|gpt-oss|o1|o3|o4|codex)/.test(id)) return 'o200k_base';
  if (/^(gpt-4|gpt-3\.5|text-embedding-3|text-embedding-ada)/.test(id)) return 'cl100k_base';
  return null;
}

type Encode = (text: string) => number;
const encoders = new Map<EncodingName, Promise<Encode>>();
// User text may contain `<|endoftext|>` and the like: counted as the plain text it is, never refused.
const NO_SPECIAL_TOKENS = { disallowedSpecial: new Set<string>() };

// Loaded on first use: the o200k tables take ~130 ms to load and most gateways never need them.
function loadEncoder(name: EncodingName): Promise<Encode> {
  let encoder = encoders.get(name);
  if (!encoder) {
    encoder = (
      name === 'o200k_base' ? import('gpt-tokenizer/encoding/o200k_base') : import('gpt-tokenizer/encoding/cl100k_base')
    ).then((m) => (text: string) => m.encode(text, NO_SPECIAL_TOKENS).length);
    encoders.set(name, encoder);
  }
  return encoder;
}

export function estimateTokens(text: string): number {
  return Math.ceil(text.length / CHARS_PER_TOKEN);
}

export async function tokenCounterFor(modelId: string): Promise<TokenCounter> {
  const encoding = encodingFor(modelId);
  const encode = encoding ? await loadEncoder(encoding) : estimateTokens;
  return createCounter(encoding ?? 'estimate', encode);
}

function createCounter(encoding: EncodingName | 'estimate', encode: Encode): TokenCounter {
  const text = (s: string) => (s.length === 0 ? 0 : encode(s));
  const part = (p: ContentPart): number => {
    switch (p.type) {
      case 'input_text':
      case 'output_text':
        return text(p.text);
      case 'refusal':
        return text(p.refusal);
      case 'input_image':
        return p.detail === 'low' ? IMAGE_LOW_TOKENS : IMAGE_TOKENS;
      case 'input_file': {
        // Base64 carries 3 bytes in 4 characters; a file by URL is unknown until the provider fetches it.
        const data = p.file_data?.replace(/^data:[^,]*,/, '');
        return data ? Math.ceil((data.length * 3) / 4 / CHARS_PER_TOKEN) : 0;
      }
    }
  };
  const framed = (role: string, content: number) => MESSAGE_OVERHEAD + text(role) + content;
  return {
    encoding,
    text,
    item(item) {
      switch (item.type) {
        case 'message': {
          let content = 0;
          for (const p of item.content) content += part(p);
          return framed(item.role, content);
        }
        case 'function_call':
          return framed('assistant', text(item.name) + text(item.arguments));
        case 'function_call_output': {
          if (typeof item.output === 'string') return framed('tool', text(item.output));
          let content = 0;
          for (const p of item.output) content += part(p);
          return framed('tool', content);
        }
        case 'reasoning': {
          // What goes back upstream as text is the summary; encrypted reasoning is the provider's
          // to count (OpenAI drops earlier turns' reasoning from the context anyway).
          let content = 0;
          for (const s of item.summary) content += text(s.text);
          return framed('assistant', content);
        }
        case 'compaction':
          // Sent upstream as a user message carrying the summary.
          return framed('user', text(compactionText(item)));
      }
    },
    instructions(instructions) {
      return instructions ? framed('system', text(instructions)) : 0;
    },
    tools(tools) {
      let total = 0;
      for (const t of tools) {
        total += TOOL_OVERHEAD + text(t.name) + text(t.description ?? '') + text(JSON.stringify(t.parameters ?? {}));
      }
      return total;
    },
  };
}

/** Tokens of a whole request: instructions, tools, every item, and the reply priming. */
export function countRequestTokens(
  counter: TokenCounter,
  request: { instructions: string | null; tools: readonly FunctionTool[]; items: readonly Item[] },
): number {
  let total = REPLY_PRIMING + counter.instructions(request.instructions) + counter.tools(request.tools);
  for (const item of request.items) total += counter.item(item);
  return total;
}

/**
 * A cheap upper bound on an item's tokens, without tokenizing: no tokenizer emits more tokens than
 * UTF-8 bytes (the estimate counts fewer still). When the bound fits the window, nothing needs counting.
 */
export function itemTokenUpperBound(item: Item): number {
  let bytes = 0;
  const add = (s: string) => {
    bytes += Buffer.byteLength(s, 'utf8');
  };
  const parts = (list: ContentPart[]) => {
    for (const p of list) {
      if (p.type === 'input_text' || p.type === 'output_text') add(p.text);
      else if (p.type === 'refusal') add(p.refusal);
      else if (p.type === 'input_image') bytes += IMAGE_TOKENS;
      else if (p.file_data) bytes += p.file_data.length;
    }
  };
  switch (item.type) {
    case 'message':
      add(item.role);
      parts(item.content);
      break;
    case 'function_call':
      bytes += 9;
      add(item.name);
      add(item.arguments);
      break;
    case 'function_call_output':
      bytes += 4;
      if (typeof item.output === 'string') add(item.output);
      else parts(item.output);
      break;
    case 'reasoning':
      bytes += 9;
      for (const s of item.summary) add(s.text);
      break;
    case 'compaction':
      add(compactionText(item));
      break;
  }
  return MESSAGE_OVERHEAD + bytes;
}
