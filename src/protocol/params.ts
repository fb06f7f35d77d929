// What a caller may send, typed: the bodies the HTTP API accepts, as the library takes them. The
// library validates them with the same code as the HTTP layer (request.ts, conversations.ts), so
// a bad value is the same 400 ApiError either way; these types only describe the accepted shapes.

import type {
  Item,
  ItemStatus,
  MessageRole,
  TextConfig,
  ToolChoice,
} from './types.ts';

export type InputContentParam =
  | { type: 'input_text'; text: string }
  | { type: 'output_text'; text: string; annotations?: unknown[] }
  | { type: 'refusal'; refusal: string }
  | { type: 'input_image'; image_url?: string | null; file_id?: string | null; detail?: 'auto' | 'low' | 'high' }
  | { type: 'input_file'; filename?: string; file_data?: string; file_url?: string; file_id?: string };

/** An input item as sent; items as returned (output items, listed items) can be sent back as they are. */
export type InputItemParam =
  | { type?: 'message'; id?: string; role: MessageRole; content: string | InputContentParam[]; status?: ItemStatus }
  | { type: 'function_call'; id?: string; call_id: string; name: string; arguments: string; status?: ItemStatus }
  | { type: 'function_call_output'; id?: string; call_id: string; output: string | InputContentParam[]; status?: ItemStatus }
  | { type: 'reasoning'; id?: string; summary: { type: 'summary_text'; text: string }[]; encrypted_content?: string | null }
  | { type: 'compaction'; id?: string | null; encrypted_content: string }
  | Item;

export interface FunctionToolParam {
  type: 'function';
  name: string;
  description?: string | null;
  parameters?: Record<string, unknown> | null;
  strict?: boolean | null;
}

/** The body of POST /v1/responses. */
export interface ResponseCreateParams {
  model: string;
  input: string | InputItemParam[];
  instructions?: string | null;
  previous_response_id?: string | null;
  conversation?: string | { id: string } | null;
  store?: boolean | null;
  stream?: boolean | null;
  background?: boolean | null;
  include?: string[] | null;
  tools?: FunctionToolParam[] | null;
  tool_choice?: ToolChoice | null;
  parallel_tool_calls?: boolean | null;
  temperature?: number | null;
  top_p?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  top_logprobs?: number | null;
  max_output_tokens?: number | null;
  max_tool_calls?: number | null;
  metadata?: Record<string, string> | null;
  text?: Partial<TextConfig> | null;
  reasoning?: { effort?: string | null; summary?: string | null } | null;
  truncation?: 'auto' | 'disabled' | null;
  context_management?: { type: 'compaction'; compact_threshold?: number | null }[] | null;
  user?: string | null;
  safety_identifier?: string | null;
  prompt_cache_key?: string | null;
  service_tier?: string | null;
  stream_options?: Record<string, unknown> | null;
}

/** The body of POST /v1/responses/input_tokens. */
export type InputTokensCountParams = Pick<
  ResponseCreateParams,
  | 'model'
  | 'instructions'
  | 'previous_response_id'
  | 'conversation'
  | 'tools'
  | 'tool_choice'
  | 'parallel_tool_calls'
  | 'reasoning'
  | 'text'
  | 'truncation'
> & { input?: string | InputItemParam[] };

/** The body of POST /v1/responses/compact. */
export interface ResponseCompactParams {
  model: string;
  input?: string | InputItemParam[] | null;
  previous_response_id?: string | null;
  instructions?: string | null;
  prompt_cache_key?: string | null;
}

export interface ConversationCreateParams {
  items?: InputItemParam[] | null;
  metadata?: Record<string, string> | null;
  /** Parley extension: who the conversation belongs to. */
  user?: string | null;
}

export interface ListParams {
  after?: string;
  limit?: number;
  order?: 'asc' | 'desc';
}

/** Parley extension: find conversations. */
export interface ConversationListParams extends ListParams {
  user?: string;
  /** Every pair must match. */
  metadata?: Record<string, string>;
  /** Unix seconds: created at or after / before. */
  created_after?: number;
  created_before?: number;
}

export interface ConversationForkParams {
  /** The last item the fork keeps (default: the newest). */
  item_id?: string | null;
  /** The fork's metadata (default: the source's). */
  metadata?: Record<string, string> | null;
}
