// `groq/<id>`: Groq's OpenAI-style API through @ai-sdk/groq (reasoning models return their
// reasoning as `reasoning`, which becomes a reasoning item).

import { createGroq } from '@ai-sdk/groq';
import type { RequestParams } from '../protocol/types.ts';
import type { ProviderFactory } from './types.ts';
import { upstreamFetch } from './upstream-fetch.ts';

export const groqProvider: ProviderFactory = {
  endpoint: (config) => config.base_url ?? 'Groq API (default endpoint)',
  namespace: () => 'groq',
  create(config) {
    const client = createGroq({
      ...(config.access_key ? { apiKey: config.access_key } : {}),
      ...(config.base_url ? { baseURL: config.base_url } : {}),
      headers: config.headers,
      fetch: upstreamFetch,
    });
    return (modelId: string) => ({
      provider: 'groq',
      modelId,
      model: client.languageModel(modelId),
      providerOptions: (params: RequestParams) => {
        const options: Record<string, string | boolean> = {};
        if (params.tools.length > 0) options.parallelToolCalls = params.parallel_tool_calls;
        if (params.user !== null) options.user = params.user;
        if (params.text.format.type === 'json_schema') options.strictJsonSchema = params.text.format.strict;
        return { groq: options };
      },
    });
  },
};
