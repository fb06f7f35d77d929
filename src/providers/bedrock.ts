// `bedrock/<model id>`: Amazon Bedrock's Converse API through @ai-sdk/amazon-bedrock. Credentials
// come from `aws` in the config (SigV4), from `access_key` (a Bedrock API key), or from the
// standard AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
// AWS_BEARER_TOKEN_BEDROCK); the region from `region` or AWS_REGION.

import { createAmazonBedrock } from '@ai-sdk/amazon-bedrock';
import type { RequestParams } from '../protocol/types.ts';
import type { ProviderFactory } from './types.ts';
import { upstreamFetch } from './upstream-fetch.ts';

export const bedrockProvider: ProviderFactory = {
  endpoint: (config) => config.base_url ?? `Bedrock runtime (${config.region ?? process.env.AWS_REGION ?? 'AWS_REGION'})`,
  namespace: () => 'bedrock',
  check(config) {
    const problems: { key: string; message: string }[] = [];
    if (!config.region && !process.env.AWS_REGION) {
      problems.push({ key: 'region', message: 'bedrock needs a region (or the AWS_REGION variable)' });
    }
    if (config.aws && config.access_key) {
      problems.push({ key: 'aws', message: 'set either aws credentials (SigV4) or access_key (a Bedrock API key), not both' });
    }
    return problems;
  },
  create(config) {
    const client = createAmazonBedrock({
      ...(config.region ? { region: config.region } : {}),
      ...(config.base_url ? { baseURL: config.base_url } : {}),
      ...(config.access_key ? { apiKey: config.access_key } : {}),
      ...(config.aws
        ? {
            accessKeyId: config.aws.access_key_id,
            secretAccessKey: config.aws.secret_access_key,
            ...(config.aws.session_token ? { sessionToken: config.aws.session_token } : {}),
          }
        : {}),
      headers: config.headers,
      fetch: upstreamFetch,
    });
    return (modelId: string) => ({
      provider: 'bedrock',
      modelId,
      model: client.languageModel(modelId),
      providerOptions: (_params: RequestParams) => ({ bedrock: {} }),
    });
  },
};
