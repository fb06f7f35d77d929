// `mistral/<id>`: Mistral's chat API through @ai-sdk/mistral (images and PDFs as document_url).

import { createMistral } from '@ai-sdk/mistral';
import type { RequestParams } from '../protocol/types.ts';
import type { ProviderFactory } from './types.ts';
import { upstreamFetch } from './upstream-fetch.ts';

export const mistralProvider: ProviderFactory = {
  endpoint: (config) => config.base_url ?? 'Mistral API (default endpoint)',
  namespace: () => 'mistral',
  create(config) {
    const client = createMistral({
      ...(config.access_key ? { apiKey: config.access_key } : {}),
      ...(config.base_url ? { baseURL: config.base_url } : {}),
      headers: config.headers,
      fetch: upstreamFetch,
    });
    return (modelId: string) => ({
      provider: 'mistral',
      modelId,
      model: client.chat(modelId),
      providerOptions: (params: RequestParams) => {
        const options: Record<string, string | boolean> = {};
        if (params.tools.length > 0) options.parallelToolCalls = params.parallel_tool_calls;
        if (params.text.format.type === 'json_schema') options.strictJsonSchema = params.text.format.strict;
        if (params.prompt_cache_key !== null) options.promptCacheKey = params.prompt_cache_key;
        return { mistral: options };
      },
    });
  },
};
