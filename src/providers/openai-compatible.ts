// Any other provider name with a `base_url` (`vllm/…`, `together/…`, `lmstudio/…`): an
// OpenAI-compatible Chat Completions server, through @ai-sdk/openai-compatible.

import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import type { RequestParams } from '../protocol/types.ts';
import type { ProviderFactory } from './types.ts';
import { upstreamFetch } from './upstream-fetch.ts';

export const openaiCompatibleProvider: ProviderFactory = {
  endpoint: (config) => config.base_url ?? '(no base_url)',
  namespace: (config) => config.provider,
  create(config) {
    const client = createOpenAICompatible({
      name: config.provider,
      baseURL: config.base_url ?? '',
      ...(config.access_key ? { apiKey: config.access_key } : {}),
      headers: config.headers,
      fetch: upstreamFetch,
      includeUsage: true,
      // vLLM, Ollama, LM Studio, SGLang and the hosted OpenAI-compatible APIs accept json_schema.
      supportsStructuredOutputs: true,
    });
    return (modelId: string) => ({
      provider: config.provider,
      modelId,
      model: client.chatModel(modelId),
      providerOptions: (params: RequestParams) => {
        const options: Record<string, string | boolean> = {};
        if (params.user !== null) options.user = params.user;
        if (params.text.format.type === 'json_schema') options.strictJsonSchema = params.text.format.strict;
        // Keys the package does not know go into the request body as they are.
        if (params.tools.length > 0 && !params.parallel_tool_calls) options.parallel_tool_calls = false;
        return { [config.provider]: options };
      },
    });
  },
};
