// `xai/<id>`: xAI's Responses API through @ai-sdk/xai, called with `store: false` (Parley owns
// the state), which makes xAI return encrypted reasoning that Parley stores and replays.

import { createXai } from '@ai-sdk/xai';
import type { RequestParams } from '../protocol/types.ts';
import type { ProviderFactory } from './types.ts';
import { upstreamFetch } from './upstream-fetch.ts';

export const xaiProvider: ProviderFactory = {
  endpoint: (config) => config.base_url ?? 'xAI API (default endpoint)',
  namespace: () => 'xai',
  create(config) {
    const client = createXai({
      ...(config.access_key ? { apiKey: config.access_key } : {}),
      ...(config.base_url ? { baseURL: config.base_url } : {}),
      headers: config.headers,
      fetch: upstreamFetch,
    });
    return (modelId: string) => ({
      provider: 'xai',
      modelId,
      model: client.responses(modelId),
      providerOptions: (params: RequestParams) => {
        const options: Record<string, string | boolean> = { store: false };
        if (params.tools.length > 0) options.parallelToolCalls = params.parallel_tool_calls;
        if (params.user !== null) options.user = params.user;
        return { xai: options };
      },
    });
  },
};
