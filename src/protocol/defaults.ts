// The generation parameters of a request that sets nothing: what the request parser falls back
// to field by field, what internal calls (compaction summaries) run with, and what tests start from.

import type { RequestParams } from './types.ts';

export function defaultRequestParams(): RequestParams {
  return {
    instructions: null,
    tools: [],
    tool_choice: 'auto',
    parallel_tool_calls: true,
    temperature: null,
    top_p: null,
    presence_penalty: null,
    frequency_penalty: null,
    top_logprobs: null,
    max_output_tokens: null,
    max_tool_calls: null,
    text: { format: { type: 'text' } },
    reasoning: null,
    truncation: 'disabled',
    metadata: {},
    user: null,
    safety_identifier: null,
    prompt_cache_key: null,
    service_tier: null,
  };
}
