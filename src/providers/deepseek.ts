// `deepseek/<id>`: DeepSeek's API through @ai-sdk/deepseek, which knows its reasoning_content
// (returned as reasoning items, sent back during tool use as DeepSeek requires) and cache usage.

import { createDeepSeek } from '@ai-sdk/deepseek';
import type { RequestParams } from '../protocol/types.ts';
import type { ProviderFactory } from './types.ts';

export const deepseekProvider: ProviderFactory = {
  endpoint: (config) => config.base_url ?? 'DeepSeek API (default endpoint)',
  namespace: () => 'deepseek',
  create(config) {
    const client = createDeepSeek({
      ...(config.access_key ? { apiKey: config.access_key } : {}),
      ...(config.base_url ? { baseURL: config.base_url } : {}),
      headers: config.headers,
    });
    return (modelId: string) => ({
      provider: 'deepseek',
      modelId,
      model: client.chat(modelId),
      providerOptions: (_params: RequestParams) => ({ deepseek: {} }),
    });
  },
};
