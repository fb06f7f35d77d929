// `openai/<id>`: OpenAI itself and every server speaking its protocol (vLLM, Ollama, DeepSeek,
// Groq…). With a base_url the protocol is Chat Completions, which is what those servers serve;
// against OpenAI itself it is the Responses API with `store: false`, because Parley owns the
// state. `api: chat | responses` overrides the choice.

import { createOpenAI } from '@ai-sdk/openai';
import type { SharedV4ProviderOptions } from '@ai-sdk/provider';
import type { ProviderConfig } from '../config/types.ts';
import type { RequestParams } from '../protocol/types.ts';
import type { ProviderFactory } from './types.ts';
import { upstreamFetch } from './upstream-fetch.ts';

export const openaiProvider: ProviderFactory = {
  endpoint: (config) => config.base_url ?? 'OpenAI API (default endpoint)',
  namespace: () => 'openai',
  create(config: ProviderConfig) {
    const client = createOpenAI({
      // A local server needs no key; an explicit empty string stops the SDK demanding one.
      apiKey: config.access_key ?? (config.base_url ? (process.env.OPENAI_API_KEY ?? '') : undefined),
      ...(config.base_url ? { baseURL: config.base_url } : {}),
      headers: config.headers,
      fetch: upstreamFetch,
      name: 'openai',
    });
    const api = config.api ?? (config.base_url ? 'chat' : 'responses');
    return (modelId: string) => ({
      provider: 'openai',
      modelId,
      model: api === 'chat' ? client.chat(modelId) : client.responses(modelId),
      providerOptions: (params: RequestParams) => ({ openai: openaiOptions(params, api) }),
    });
  },
};

/** OpenAI-protocol options (also Azure's, under its own key). */
export function openaiOptions(params: RequestParams, api: 'chat' | 'responses'): NonNullable<SharedV4ProviderOptions[string]> {
  const options: Record<string, string | boolean> = {};
  if (params.tools.length > 0) options.parallelToolCalls = params.parallel_tool_calls;
  if (params.user !== null) options.user = params.user;
  if (params.text.format.type === 'json_schema') options.strictJsonSchema = params.text.format.strict;
  if (params.safety_identifier !== null) options.safetyIdentifier = params.safety_identifier;
  if (params.prompt_cache_key !== null) options.promptCacheKey = params.prompt_cache_key;
  if (params.text.verbosity) options.textVerbosity = params.text.verbosity;
  // The AI SDK knows every OpenAI tier but `scale` (an enterprise contract, set on the account).
  if (params.service_tier !== null && params.service_tier !== 'scale') options.serviceTier = params.service_tier;
  if (api === 'responses') {
    // Parley owns the state; with store:false the SDK asks for encrypted reasoning to replay.
    options.store = false;
    if (params.reasoning?.summary) options.reasoningSummary = params.reasoning.summary;
    // A client asking for reasoning knows the model reasons, whatever its id (Azure deployments
    // have names of their own): the SDK then asks for encrypted reasoning to replay next turn.
    if (params.reasoning?.effort || params.reasoning?.summary) options.forceReasoning = true;
  }
  return options;
}
