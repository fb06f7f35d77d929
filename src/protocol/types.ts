// The Responses API wire types Parley speaks, as stored and as returned. Request validation
// (request.ts) turns an untrusted body into these; everything past the HTTP edge trusts them.

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

// ---------- content parts ----------

export interface InputTextPart {
  type: 'input_text';
  text: string;
}
export interface OutputTextPart {
  type: 'output_text';
  text: string;
  annotations: JsonValue[];
  logprobs?: JsonValue[];
}
export interface RefusalPart {
  type: 'refusal';
  refusal: string;
}
export interface InputImagePart {
  type: 'input_image';
  image_url: string | null;
  file_id?: string | null;
  detail: 'auto' | 'low' | 'high';
}
export interface InputFilePart {
  type: 'input_file';
  filename?: string;
  file_data?: string;
  file_url?: string;
  file_id?: string | null;
}
export type ContentPart = InputTextPart | OutputTextPart | RefusalPart | InputImagePart | InputFilePart;

// ---------- items ----------

export type ItemStatus = 'in_progress' | 'completed' | 'incomplete';
export type MessageRole = 'user' | 'assistant' | 'system' | 'developer';

export interface MessageItem {
  type: 'message';
  id: string;
  role: MessageRole;
  status: ItemStatus;
  content: ContentPart[];
  /** Provider data to replay with this message (e.g. Gemini thought signatures). Never sent to clients. */
  provider_metadata?: JsonObject;
}
export interface FunctionCallItem {
  type: 'function_call';
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  status: ItemStatus;
  /** Provider data to replay with this call (e.g. Gemini thought signatures). Never sent to clients. */
  provider_metadata?: JsonObject;
}
export interface FunctionCallOutputItem {
  type: 'function_call_output';
  id: string;
  call_id: string;
  output: string | ContentPart[];
  status: ItemStatus;
}
export interface ReasoningItem {
  type: 'reasoning';
  id: string;
  summary: { type: 'summary_text'; text: string }[];
  content?: { type: 'reasoning_text'; text: string }[];
  encrypted_content?: string | null;
  /** Provider data needed to replay this item to the same provider (signatures etc.). Never sent to clients. */
  provider_metadata?: JsonObject;
}
/**
 * A summary of earlier turns (`context_management` compaction or POST /v1/responses/compact). In the
 * context it stands in for the items it summarises; the items themselves stay stored. Parley's
 * `encrypted_content` is an opaque envelope (see context/compaction.ts).
 */
export interface CompactionItem {
  type: 'compaction';
  id: string;
  encrypted_content: string;
  created_by?: string;
}
export type Item = MessageItem | FunctionCallItem | FunctionCallOutputItem | ReasoningItem | CompactionItem;

// ---------- tools and formats ----------

export interface FunctionTool {
  type: 'function';
  name: string;
  description: string | null;
  parameters: JsonObject | null;
  strict: boolean | null;
}
export type ToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; name: string };

export type TextFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; name: string; description: string | null; schema: JsonObject; strict: boolean };

export interface TextConfig {
  format: TextFormat;
  verbosity?: 'low' | 'medium' | 'high';
}

// ---------- the validated request ----------

/** A POST /v1/responses body after validation: every field typed, defaults applied. */
export interface CreateResponseRequest {
  model: string;
  input: Item[];
  previous_response_id: string | null;
  /** The conversation whose items are the context and to which the turn is appended. */
  conversation: string | null;
  store: boolean;
  stream: boolean;
  background: boolean;
  include: string[];
  params: RequestParams;
  /** `context_management`: present only when the request has entries (see context/compaction.ts). */
  context_management?: ContextManagement[];
}

/** One `context_management` entry; `compaction` is the only type (as in OpenAI's API). */
export interface ContextManagement {
  type: 'compaction';
  /** Compact once the context's input tokens exceed this; null: once it would not fit the model's window. */
  compact_threshold: number | null;
}

/** The generation parameters of a request: echoed on the response object and stored with it. */
export interface RequestParams {
  instructions: string | null;
  tools: FunctionTool[];
  tool_choice: ToolChoice;
  parallel_tool_calls: boolean;
  temperature: number | null;
  top_p: number | null;
  presence_penalty: number | null;
  frequency_penalty: number | null;
  top_logprobs: number | null;
  max_output_tokens: number | null;
  max_tool_calls: number | null;
  text: TextConfig;
  reasoning: { effort: string | null; summary: string | null } | null;
  truncation: 'auto' | 'disabled';
  metadata: Record<string, string>;
  user: string | null;
  safety_identifier: string | null;
  prompt_cache_key: string | null;
  service_tier: string | null;
  /** Present (true) only for background responses; stored with the parameters, so retrieval knows it. */
  background?: boolean;
}

// ---------- the response object ----------

export type ResponseStatus = 'queued' | 'in_progress' | 'completed' | 'incomplete' | 'failed' | 'cancelled';

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens_details: { reasoning_tokens: number };
}

export interface ResponseError {
  code: string;
  message: string;
}

/** The response object exactly as the API returns it (Open Responses `ResponseResource`). */
export interface ResponseObject {
  id: string;
  object: 'response';
  created_at: number;
  completed_at: number | null;
  status: ResponseStatus;
  incomplete_details: { reason: string } | null;
  model: string;
  previous_response_id: string | null;
  instructions: string | null;
  output: Item[];
  error: ResponseError | null;
  tools: FunctionTool[];
  tool_choice: ToolChoice;
  truncation: 'auto' | 'disabled';
  parallel_tool_calls: boolean;
  text: TextConfig;
  top_p: number;
  presence_penalty: number;
  frequency_penalty: number;
  top_logprobs: number;
  temperature: number;
  reasoning: { effort: string | null; summary: string | null } | null;
  usage: Usage | null;
  max_output_tokens: number | null;
  max_tool_calls: number | null;
  store: boolean;
  background: boolean;
  service_tier: string;
  metadata: Record<string, string>;
  safety_identifier: string | null;
  prompt_cache_key: string | null;
  user: string | null;
  /** Present when the response belongs to a conversation. */
  conversation?: { id: string };
}

// ---------- stream events ----------

/** One Responses stream event; `sequence_number` is stamped by the event writer. */
export type StreamEvent = { type: string; sequence_number: number } & Record<string, unknown>;
