// The text of a response's output messages, joined: what the official SDK offers as
// `response.output_text` (a client-side convenience, not a field of the response object).

import type { ResponseObject } from '../protocol/types.ts';

export function outputText(response: Pick<ResponseObject, 'output'>): string {
  let text = '';
  for (const item of response.output) {
    if (item.type !== 'message') continue;
    for (const part of item.content) if (part.type === 'output_text') text += part.text;
  }
  return text;
}
