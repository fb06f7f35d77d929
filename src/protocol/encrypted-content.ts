// `encrypted_content` of reasoning items (`include: ['reasoning.encrypted_content']`). Parley's
// value is an opaque envelope around the provider data a reasoning item needs to be replayed to
// its provider (OpenAI's encrypted reasoning, Anthropic's signatures and redacted thinking,
// Gemini's thought signatures…), so a client running with `store: false` can send the item
// back and the provider gets exactly what it produced. The provider data inside is already
// signed or encrypted by the provider; the envelope adds no secrecy of its own and clients must
// treat it as opaque.

import type { JsonObject } from './types.ts';

const PREFIX = 'parley.v1.';

export function sealReasoning(metadata: JsonObject): string {
  return PREFIX + Buffer.from(JSON.stringify(metadata), 'utf8').toString('base64url');
}

/**
 * The provider data inside a Parley envelope; null for any other string (e.g. a blob from
 * OpenAI itself, which is passed on as it is); `undefined` when it has Parley's prefix but is damaged.
 */
export function openReasoning(value: string): JsonObject | null | undefined {
  if (!value.startsWith(PREFIX)) return null;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(value.slice(PREFIX.length), 'base64url').toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
    return parsed as JsonObject;
  } catch {
    return undefined;
  }
}
