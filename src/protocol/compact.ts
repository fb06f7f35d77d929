// POST /v1/responses/compact on the wire: the body (Open Responses `CompactResponseMethodPublicBody`)
// and the answer (`CompactResource`).

import { invalidRequest } from './errors.ts';
import { parseInput } from './request.ts';
import type { Item, Usage } from './types.ts';

export interface CompactRequest {
  model: string;
  input: Item[];
  previous_response_id: string | null;
  instructions: string | null;
  prompt_cache_key: string | null;
}

/** The compacted context: its user, system and developer messages, then one compaction item. */
export interface CompactResource {
  id: string;
  object: 'response.compaction';
  created_at: number;
  output: Item[];
  usage: Usage;
}

const FIELDS = new Set(['model', 'input', 'previous_response_id', 'instructions', 'prompt_cache_key']);

export function parseCompactRequest(raw: unknown): CompactRequest {
  if (raw === undefined || raw === null) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw invalidRequest('The request body must be a JSON object.', null, 'invalid_type');
  }
  const body = raw as Record<string, unknown>;
  for (const key of Object.keys(body)) {
    if (!FIELDS.has(key)) throw invalidRequest(`Unrecognized request argument supplied: ${key}`, key, 'unknown_parameter');
  }
  const model = body.model;
  if (model === undefined || model === null || model === '') {
    throw invalidRequest('Missing required parameter: `model`.', 'model', 'missing_required_parameter');
  }
  if (typeof model !== 'string') throw invalidRequest("Invalid type for 'model': expected a string.", 'model', 'invalid_type');
  const text = (key: string): string | null => {
    const value = body[key];
    if (value === undefined || value === null) return null;
    if (typeof value !== 'string') throw invalidRequest(`Invalid type for '${key}': expected a string.`, key, 'invalid_type');
    return value;
  };
  const previous = text('previous_response_id');
  if (previous === '') throw invalidRequest('`previous_response_id` must not be empty.', 'previous_response_id', 'invalid_value');
  return {
    model,
    input: body.input === undefined || body.input === null ? [] : parseInput(body.input),
    previous_response_id: previous,
    instructions: text('instructions'),
    prompt_cache_key: text('prompt_cache_key'),
  };
}
