// Any other provider name with a `base_url` (`vllm/…`, `together/…`, `lmstudio/…`): an
// OpenAI-compatible Chat Completions server, through @ai-sdk/openai-compatible.

import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import type { RequestParams } from '../protocol/types.ts';
import type { ProviderFactory } from './types.ts';

export const openaiCompatibleProvider: ProviderFactory = {
  endpoint: (config) => config.base_url ?? '(no base_url)',
  create(config) {
    const client = createOpenAICompatible({
      name: config.provider,
      baseURL: config.base_url ?? '',
      ...(config.access_key ? { apiKey: config.access_key } : {}),
      headers: config.headers,
      includeUsage: true,
    });
    return (modelId: string) => ({
      provider: config.provider,
      modelId,
      model: client.chatModel(modelId),
      providerOptions: (params: RequestParams) =>
        params.user === null ? undefined : { [config.provider]: { user: params.user } },
    });
  },
};
