// `google/<id>`: Gemini through the Generative Language API (@ai-sdk/google): generateContent,
// streamGenerateContent?alt=sse. Thought signatures ride on parts' providerMetadata; Parley keeps
// them on the items they came with (reasoning, function calls, text) and replays them.

import { createGoogleGenerativeAI } from '@ai-sdk/google';
import type { RequestParams } from '../protocol/types.ts';
import type { ProviderFactory } from './types.ts';
import { upstreamFetch } from './upstream-fetch.ts';

export const googleProvider: ProviderFactory = {
  endpoint: (config) => config.base_url ?? 'Gemini API (default endpoint)',
  namespace: () => 'google',
  create(config) {
    const client = createGoogleGenerativeAI({
      ...(config.access_key ? { apiKey: config.access_key } : {}),
      ...(config.base_url ? { baseURL: config.base_url } : {}),
      headers: config.headers,
      fetch: upstreamFetch,
    });
    return (modelId: string) => ({
      provider: 'google',
      modelId,
      model: client.languageModel(modelId),
      providerOptions: (params: RequestParams) => {
        const options: Record<string, unknown> = {};
        // A Responses client asks for reasoning text with `reasoning.summary`; Gemini calls it thoughts.
        if (params.reasoning?.summary) options.thinkingConfig = { includeThoughts: true };
        return { google: options as Record<string, never> };
      },
    });
  },
};
