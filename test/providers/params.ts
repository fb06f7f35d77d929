// Request parameters as the gateway validates them, from a partial Responses request body.
import { parseCreateResponse } from '../../src/protocol/request.ts';
import type { RequestParams } from '../../src/protocol/types.ts';

export function parseRequestParams(body: Record<string, unknown>): RequestParams {
  return parseCreateResponse({ model: 'm', input: 'x', ...body }).params;
}
