// `deepseek/<id>`: DeepSeek's API through @ai-sdk/deepseek, which knows its reasoning_content
// (returned as reasoning items, sent back during tool use as DeepSeek requires) and cache usage.
// Strict function schemas exist only on DeepSeek's beta endpoint (a base_url ending in /beta);
// elsewhere tools go without `strict` (the Responses API's default is strict: true).

import { createDeepSeek } from '@ai-sdk/deepseek';
import type { LanguageModelV4CallOptions } from '@ai-sdk/provider';
import type { RequestParams } from '../protocol/types.ts';
import type { ProviderFactory } from './types.ts';
import { upstreamFetch } from './upstream-fetch.ts';

export const deepseekProvider: ProviderFactory = {
  endpoint: (config) => config.base_url ?? 'DeepSeek API (default endpoint)',
  namespace: () => 'deepseek',
  create(config) {
    const strictTools = (config.base_url ?? '').replace(/\/+$/, '').endsWith('/beta');
    const client = createDeepSeek({
      ...(config.access_key ? { apiKey: config.access_key } : {}),
      ...(config.base_url ? { baseURL: config.base_url } : {}),
      headers: config.headers,
      fetch: upstreamFetch,
    });
    return (modelId: string) => ({
      provider: 'deepseek',
      modelId,
      model: client.chat(modelId),
      providerOptions: (_params: RequestParams) => ({ deepseek: {} }),
      adaptCallOptions: (options: LanguageModelV4CallOptions) =>
        strictTools || !options.tools
          ? options
          : { ...options, tools: options.tools.map((t) => (t.type === 'function' ? { ...t, strict: undefined } : t)) },
    });
  },
};
