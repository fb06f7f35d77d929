// A gateway configured with every provider type, each pointed at the fake upstream under its own
// dialect prefix, for the provider end-to-end tests. Clients name models by their aliases.

import type OpenAI from 'openai';
import type { ProviderConfig } from '../../src/config/types.ts';
import type { RecordedRequest } from '../fake-upstream/server.ts';
import { type Harness, type HarnessOptions, provider, startHarness } from '../helpers/harness.ts';
import { assertValidResponse, assertValidStreamEvent } from '../helpers/spec.ts';

export const AWS = { access_key_id: 'AKIDEXAMPLE', secret_access_key: 'wJalrXUtnFEMI/K7MDENG', session_token: null };

/** Every provider type, by alias. */
export function allProviders(upstreamUrl: string): ProviderConfig[] {
  const origin = new URL(upstreamUrl).origin;
  return [
    provider('openai/gpt-4o-mini', { base_url: `${origin}/v1`, default: true }),
    provider('anthropic/claude-sonnet-4-5', { name: 'claude', base_url: `${origin}/anthropic/v1` }),
    provider('google/gemini-2.5-flash', { name: 'gemini', base_url: `${origin}/google/v1beta` }),
    provider('google/gemini-3-pro-preview', { name: 'gemini-3', base_url: `${origin}/google/v1beta` }),
    provider('openai/gpt-5', { name: 'gpt-5', base_url: `${origin}/v1`, api: 'responses' }),
    provider('azure/gpt4o-prod', { name: 'azure-dated', base_url: `${origin}/azure/openai`, api_version: '2024-10-21' }),
    provider('azure/gpt5-prod', { name: 'azure-v1', base_url: `${origin}/azure/openai/v1`, options: { forceReasoning: true } }),
    provider('bedrock/anthropic.claude-sonnet-4-5-v1:0', { name: 'bedrock', base_url: `${origin}/bedrock`, region: 'us-east-1', aws: AWS, access_key: null }),
    provider('mistral/mistral-large-latest', { name: 'mistral', base_url: `${origin}/mistral/v1` }),
    provider('deepseek/deepseek-reasoner', { name: 'deepseek', base_url: `${origin}/deepseek` }),
    provider('groq/qwen/qwen3-32b', { name: 'groq', base_url: `${origin}/groq/openai/v1` }),
    provider('xai/grok-4', { name: 'grok', base_url: `${origin}/xai/v1` }),
    provider('vllm/qwen3-8b', { name: 'local', base_url: `${origin}/compat/v1` }),
  ];
}

export function startProviderHarness(options: HarnessOptions = {}): Promise<Harness> {
  return startHarness({ store: 'memory', providers: allProviders, ...options });
}

/** Streams a response through the official SDK's stream helper, validating every event. */
export async function streamed(h: Harness, body: OpenAI.Responses.ResponseCreateParamsStreaming): Promise<{ response: OpenAI.Responses.Response; types: string[] }> {
  const types: string[] = [];
  const stream = h.client.responses.stream(body);
  stream.on('event', (e) => {
    assertValidStreamEvent(e);
    types.push(e.type);
  });
  const response = await stream.finalResponse();
  assertValidResponse(response);
  return { response, types };
}

export function requestsTo(h: Harness, fragment: string): RecordedRequest[] {
  return h.upstream.requests.filter((r) => r.path.includes(fragment));
}

export const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
export const PDF = Buffer.from('%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n').toString('base64');

export const weatherTool: OpenAI.Responses.FunctionTool = {
  type: 'function',
  name: 'get_weather',
  description: 'Weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  strict: true,
};
export const timeTool: OpenAI.Responses.FunctionTool = {
  type: 'function',
  name: 'get_time',
  description: 'Local time for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  strict: true,
};
