// Shared pieces of calling a model at the AI SDK's model-interface level (resilient-call.ts does
// the calling): a non-streaming doGenerate result becomes the same stream parts doStream yields,
// so the engine has one path, and upstream failures become the ApiError a client sees.

import { APICallError } from '@ai-sdk/provider';
import type { LanguageModelV4Content, LanguageModelV4StreamPart } from '@ai-sdk/provider';
import { ApiError } from '../protocol/errors.ts';

/** A doGenerate result as the stream parts doStream would have produced. */
export async function* generatedParts(
  content: LanguageModelV4Content[],
  usage: Extract<LanguageModelV4StreamPart, { type: 'finish' }>['usage'],
  finishReason: Extract<LanguageModelV4StreamPart, { type: 'finish' }>['finishReason'],
  providerMetadata: Extract<LanguageModelV4StreamPart, { type: 'finish' }>['providerMetadata'],
): AsyncGenerator<LanguageModelV4StreamPart> {
  let n = 0;
  for (const c of content) {
    const id = String(n++);
    if (c.type === 'text') {
      const meta = c.providerMetadata ? { providerMetadata: c.providerMetadata } : {};
      yield { type: 'text-start', id, ...meta };
      yield { type: 'text-delta', id, delta: c.text };
      yield { type: 'text-end', id, ...meta };
    } else if (c.type === 'reasoning') {
      const meta = c.providerMetadata ? { providerMetadata: c.providerMetadata } : {};
      yield { type: 'reasoning-start', id, ...meta };
      yield { type: 'reasoning-delta', id, delta: c.text };
      yield { type: 'reasoning-end', id, ...meta };
    } else {
      yield c as LanguageModelV4StreamPart;
    }
  }
  yield { type: 'finish', usage, finishReason, ...(providerMetadata ? { providerMetadata } : {}) };
}

/**
 * Maps an upstream failure to what the client should see. The upstream's own message is kept;
 * the status is chosen on purpose: a 429 stays a 429 (the client should back off), a client
 * error stays a 400, and anything that is the gateway's or the provider's fault is a 502.
 */
export function toUpstreamError(error: unknown, signal?: AbortSignal): ApiError {
  if (error instanceof ApiError) return error;
  if (signal?.aborted) {
    return new ApiError(499, 'invalid_request_error', 'The client closed the request.', { code: 'client_closed_request', cause: error });
  }
  if (APICallError.isInstance(error)) {
    const status = error.statusCode;
    const message = upstreamMessage(error);
    const headers: Record<string, string> = {};
    const retryAfter = error.responseHeaders?.['retry-after'];
    if (retryAfter) headers['retry-after'] = retryAfter;
    if (status === 429) {
      return new ApiError(429, 'rate_limit_error', `Upstream rate limit: ${message}`, { code: 'rate_limit_exceeded', headers, cause: error });
    }
    if (status === 400 || status === 413 || status === 422) {
      return new ApiError(400, 'invalid_request_error', `The upstream provider rejected the request: ${message}`, { code: 'upstream_invalid_request', cause: error });
    }
    if (status === 401 || status === 403) {
      return new ApiError(502, 'server_error', `The upstream provider rejected the gateway's credentials (HTTP ${status}): ${message}`, { code: 'upstream_auth_error', cause: error });
    }
    return new ApiError(502, 'server_error', `The upstream provider failed${status ? ` (HTTP ${status})` : ''}: ${message}`, { code: 'upstream_error', cause: error });
  }
  const stream = streamError(error);
  if (stream) {
    // An error the provider sent inside its stream (Anthropic's `event: error`, OpenAI's error frame).
    if (stream.statusCode === 429) {
      return new ApiError(429, 'rate_limit_error', `Upstream rate limit: ${stream.message}`, { code: 'rate_limit_exceeded', cause: error });
    }
    return new ApiError(502, 'server_error', `The upstream provider failed${stream.statusCode ? ` (HTTP ${stream.statusCode})` : ''}: ${stream.message}`, {
      code: 'upstream_error',
      cause: error,
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ApiError(502, 'server_error', `The upstream provider could not be reached or sent an invalid answer: ${message}`, { code: 'upstream_error', cause: error });
}

/**
 * The AI SDK reports errors a provider sends mid-stream as plain objects (`{message, type,
 * statusCode, isRetryable}`), or passes the provider's own error payload through.
 */
export function streamError(error: unknown): { message: string; statusCode?: number; isRetryable?: boolean } | null {
  if (error === null || typeof error !== 'object' || error instanceof Error) return null;
  const e = error as { message?: unknown; statusCode?: unknown; isRetryable?: unknown; error?: { message?: unknown } };
  const message = typeof e.message === 'string' ? e.message : typeof e.error?.message === 'string' ? e.error.message : null;
  if (message === null) return null;
  return {
    message,
    ...(typeof e.statusCode === 'number' ? { statusCode: e.statusCode } : {}),
    ...(typeof e.isRetryable === 'boolean' ? { isRetryable: e.isRetryable } : {}),
  };
}

/** The provider's own error message when its body is the usual `{error: {message}}`. */
function upstreamMessage(error: APICallError): string {
  const data = error.data as { error?: { message?: unknown } } | undefined;
  if (data && typeof data.error?.message === 'string') return data.error.message;
  if (error.responseBody) {
    try {
      const body = JSON.parse(error.responseBody) as { error?: { message?: unknown } | string; message?: unknown };
      if (typeof body.error === 'string') return body.error;
      if (typeof body.error?.message === 'string') return body.error.message;
      if (typeof body.message === 'string') return body.message;
    } catch {
      // not JSON: fall through to the SDK's message
    }
  }
  return error.message;
}
