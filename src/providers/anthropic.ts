// `anthropic/<id>`: Anthropic's Messages API through @ai-sdk/anthropic. Thinking blocks come
// back as reasoning parts carrying their signature (or redacted data) in providerMetadata, which
// Parley stores on the reasoning item and hands back unchanged on the next turn.

import { createAnthropic } from '@ai-sdk/anthropic';
import type { RequestParams } from '../protocol/types.ts';
import type { ProviderFactory } from './types.ts';
import { upstreamFetch } from './upstream-fetch.ts';

export const anthropicProvider: ProviderFactory = {
  endpoint: (config) => config.base_url ?? 'Anthropic API (default endpoint)',
  namespace: () => 'anthropic',
  create(config) {
    const client = createAnthropic({
      ...(config.access_key ? { apiKey: config.access_key } : {}),
      ...(config.base_url ? { baseURL: config.base_url } : {}),
      headers: config.headers,
      fetch: upstreamFetch,
    });
    return (modelId: string) => ({
      provider: 'anthropic',
      modelId,
      model: client.messages(modelId),
      providerOptions: (params: RequestParams) => {
        const options: Record<string, unknown> = {};
        if (params.tools.length > 0 && !params.parallel_tool_calls) options.disableParallelToolUse = true;
        if (params.user !== null) options.metadata = { userId: params.user };
        return { anthropic: options as Record<string, never> };
      },
    });
  },
};
