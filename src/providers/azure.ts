// `azure/<deployment>`: Azure OpenAI through @ai-sdk/azure. The endpoint is `resource_name`
// (https://<name>.openai.azure.com/openai) or a `base_url`. `api_version` picks the API: `v1`
// (the default) is Azure's OpenAI-style v1 API, where the deployment is the body's `model`; a
// dated version (`2024-10-21`) uses the classic deployment URLs
// (`/deployments/<deployment>/chat/completions?api-version=…`). The protocol is the Responses API
// with `store: false` on v1 and Chat Completions on dated versions, unless `api` says otherwise.

import { createAzure } from '@ai-sdk/azure';
import type { RequestParams } from '../protocol/types.ts';
import { openaiOptions } from './openai.ts';
import type { ProviderFactory } from './types.ts';
import { upstreamFetch } from './upstream-fetch.ts';

export const azureProvider: ProviderFactory = {
  endpoint: (config) => config.base_url ?? (config.resource_name ? `https://${config.resource_name}.openai.azure.com/openai` : '(no endpoint)'),
  namespace: () => 'azure',
  check(config) {
    const problems: { key: string; message: string }[] = [];
    if (!config.base_url && !config.resource_name && !process.env.AZURE_RESOURCE_NAME) {
      problems.push({ key: 'resource_name', message: 'azure needs resource_name (or base_url, or the AZURE_RESOURCE_NAME variable)' });
    }
    if (config.base_url && config.resource_name) {
      problems.push({ key: 'resource_name', message: 'set either resource_name or base_url, not both' });
    }
    return problems;
  },
  create(config) {
    const apiVersion = config.api_version ?? 'v1';
    const dated = apiVersion !== 'v1';
    const client = createAzure({
      ...(config.access_key ? { apiKey: config.access_key } : {}),
      ...(config.base_url ? { baseURL: config.base_url } : {}),
      ...(config.resource_name ? { resourceName: config.resource_name } : {}),
      apiVersion,
      useDeploymentBasedUrls: dated,
      headers: config.headers,
      fetch: upstreamFetch,
    });
    const api = config.api ?? (dated ? 'chat' : 'responses');
    return (modelId: string) => ({
      provider: 'azure',
      modelId,
      model: api === 'chat' ? client.chat(modelId) : client.responses(modelId),
      providerOptions: (params: RequestParams) => ({ azure: openaiOptions(params, api) }),
    });
  },
};
