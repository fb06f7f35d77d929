// POST /v1/responses/input_tokens: the body is a subset of a create request (what shapes the
// input), validated by the same code so both give the same errors for the same mistakes.

import { invalidRequest } from './errors.ts';
import { parseCreateResponse } from './request.ts';
import type { CreateResponseRequest } from './types.ts';

const FIELDS = new Set([
  'model',
  'input',
  'instructions',
  'previous_response_id',
  'conversation',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'reasoning',
  'text',
  'truncation',
]);

export function parseInputTokensRequest(raw: unknown): CreateResponseRequest {
  if (raw === undefined || raw === null) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw invalidRequest('The request body must be a JSON object.', null, 'invalid_type');
  }
  const body = raw as Record<string, unknown>;
  for (const key of Object.keys(body)) {
    if (key === 'personality') {
      throw invalidRequest('`personality` is not supported by this gateway.', key, 'unsupported_parameter');
    }
    if (!FIELDS.has(key)) throw invalidRequest(`Unrecognized request argument supplied: ${key}`, key, 'unknown_parameter');
  }
  return parseCreateResponse({ ...body, input: body.input ?? [] });
}
