// Builds the Open Responses `ResponseResource` from a turn's state. One function for live turns,
// stored turns and retrieved turns, so the echo of request fields can never drift between them.

import type { Item, RequestParams, ResponseError, ResponseObject, ResponseStatus, Usage } from './types.ts';

export interface ResponseState {
  id: string;
  model: string;
  status: ResponseStatus;
  createdAt: number;
  completedAt: number | null;
  previousResponseId: string | null;
  params: RequestParams;
  output: Item[];
  usage: Usage | null;
  error: ResponseError | null;
  incompleteDetails: { reason: string } | null;
  store: boolean;
  background: boolean;
  /** Set when the turn belongs to a conversation; echoed as `conversation: {id}`. */
  conversationId?: string | null;
}

export function toResponseObject(state: ResponseState): ResponseObject {
  const p = state.params;
  return {
    id: state.id,
    object: 'response',
    created_at: state.createdAt,
    completed_at: state.completedAt,
    status: state.status,
    incomplete_details: state.incompleteDetails,
    model: state.model,
    previous_response_id: state.previousResponseId,
    instructions: p.instructions,
    output: state.output.map(toClientItem),
    error: state.error,
    tools: p.tools,
    tool_choice: p.tool_choice,
    truncation: p.truncation,
    parallel_tool_calls: p.parallel_tool_calls,
    text: p.text,
    top_p: p.top_p ?? 1,
    presence_penalty: p.presence_penalty ?? 0,
    frequency_penalty: p.frequency_penalty ?? 0,
    top_logprobs: p.top_logprobs ?? 0,
    temperature: p.temperature ?? 1,
    reasoning: p.reasoning ?? { effort: null, summary: null },
    usage: state.usage,
    max_output_tokens: p.max_output_tokens,
    max_tool_calls: p.max_tool_calls,
    store: state.store,
    background: state.background,
    service_tier: p.service_tier ?? 'default',
    metadata: p.metadata,
    safety_identifier: p.safety_identifier,
    prompt_cache_key: p.prompt_cache_key,
    user: p.user,
    ...(state.conversationId ? { conversation: { id: state.conversationId } } : {}),
  };
}

/** Items as clients see them: provider replay data stays inside the gateway. */
export function toClientItem(item: Item): Item {
  if (!('provider_metadata' in item) || item.provider_metadata === undefined) return item;
  const { provider_metadata: _hidden, ...visible } = item;
  return visible;
}

export function emptyUsage(): Usage {
  return { input_tokens: 0, output_tokens: 0, total_tokens: 0, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 0 } };
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
