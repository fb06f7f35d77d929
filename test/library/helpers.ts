// A Parley library instance (createParley, no HTTP) in front of the fake upstream, for the
// library's end-to-end tests. Nothing is mocked: the real AI SDK provider talks HTTP to the fake.

import assert from 'node:assert/strict';
import { createParley, type Parley, type ParleyOptions } from '../../src/index.ts';
import { ApiError } from '../../src/protocol/errors.ts';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/server.ts';

export interface LibraryHarness {
  parley: Parley;
  upstream: FakeUpstream;
  close(): Promise<void>;
}

/** `provider` adds to the one `openai/gpt-4o-mini` entry (Chat Completions at the fake upstream). */
export async function startLibrary(
  options: { provider?: Record<string, unknown>; config?: Record<string, unknown> } & Omit<ParleyOptions, 'config'> = {},
): Promise<LibraryHarness> {
  const upstream = await startFakeUpstream();
  const { provider, config, ...rest } = options;
  const parley = await createParley({
    config: {
      model_providers: [{ model: 'openai/gpt-4o-mini', base_url: upstream.url, access_key: 'test-key', ...provider }],
      ...config,
    },
    ...rest,
  });
  return {
    parley,
    upstream,
    async close() {
      await parley.close();
      await upstream.close();
    },
  };
}

/** The ApiError a promise rejects with (fails when it resolves or rejects with anything else). */
export async function apiErrorOf(promise: Promise<unknown>): Promise<ApiError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(error instanceof ApiError, `expected an ApiError, got ${String(error)}`);
  return error;
}

type ChatMessage = { role: string; content: unknown; tool_calls?: unknown; tool_call_id?: string };

export function messagesOf(upstream: FakeUpstream, index = -1): ChatMessage[] {
  const request = upstream.requests.at(index);
  return (request?.body.messages ?? []) as ChatMessage[];
}
