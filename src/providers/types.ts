// The provider contract: the engine asks the registry for a model by the name a client sent and
// gets back an AI SDK LanguageModelV4 plus what the engine needs to know about it. Each provider
// type (openai, anthropic, …) is one file exporting a ProviderFactory.

import type { LanguageModelV4, SharedV4ProviderOptions } from '@ai-sdk/provider';
import type { ProviderConfig } from '../config/types.ts';
import type { RequestParams } from '../protocol/types.ts';

export interface ResolvedModel {
  /** `<provider>/<model id>` as routed, e.g. `openai/gpt-4o-mini`. */
  route: string;
  provider: string;
  modelId: string;
  model: LanguageModelV4;
  contextWindow: number | null;
  /** Provider-specific call options derived from the request (e.g. OpenAI's parallelToolCalls). */
  providerOptions(params: RequestParams): SharedV4ProviderOptions | undefined;
}

export interface ModelInfo {
  /** What a client sends as `model`: the alias when there is one, else `<provider>/<model id>`. */
  id: string;
  route: string;
  provider: string;
  isDefault: boolean;
  /** True for `<provider>/*` entries that pass any model id through. */
  wildcard: boolean;
  /** Where requests go, for the startup banner; never holds credentials. */
  endpoint: string;
}

export interface ModelRegistry {
  /** Resolves a client's `model` value; throws a 400 ApiError listing what is configured when unknown. */
  resolve(name: string): ResolvedModel;
  list(): ModelInfo[];
}

/** Builds models for one `model_providers` entry. */
export interface ProviderFactory {
  /** Human description of where this provider's requests go (base URL or the vendor's default). */
  endpoint(config: ProviderConfig): string;
  create(config: ProviderConfig): (modelId: string) => Omit<ResolvedModel, 'route' | 'contextWindow'>;
}
