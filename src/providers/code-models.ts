// Models given in code (the library's `models` option): an AI SDK LanguageModelV4 the caller
// built (`openai('gpt-4o')`, `anthropic('claude-sonnet-4-5')`, a custom model) under the name
// requests use. They are added in front of the configured registry: a name resolves to a code
// model first, then as the config routes it. Fallbacks may name either kind.

import type { LanguageModelV4, SharedV4ProviderOptions } from '@ai-sdk/provider';
import { ConfigError, type ModelPricing } from '../config/types.ts';
import { ApiError, invalidRequest } from '../protocol/errors.ts';
import type { RequestParams } from '../protocol/types.ts';
import { openaiOptions } from './openai.ts';
import { DEFAULT_POLICY } from './registry.ts';
import type { CallPolicy, ModelInfo, ModelRegistry, ResolvedModel } from './types.ts';

export interface CodeModel {
  /** The name requests send as `model`. */
  name: string;
  model: LanguageModelV4;
  /** Tokens the model accepts (input + output): enables `truncation` and compaction's default threshold. */
  contextWindow?: number | null;
  /** Output tokens reserved out of the window when a request sets no max_output_tokens. */
  maxOutputTokens?: number | null;
  /** USD per million tokens, for turn and conversation costs. */
  pricing?: Partial<ModelPricing> & Pick<ModelPricing, 'input_per_million' | 'output_per_million'>;
  /** Sent with every call; options Parley derives from a request win where both set a key. */
  providerOptions?: SharedV4ProviderOptions;
  /** Timeouts, retries and fallbacks (names of other models), as in a config entry. */
  policy?: Partial<CallPolicy>;
  default?: boolean;
}

/** True for an AI SDK LanguageModelV4 object (as opposed to the wrapping options object). */
export function isLanguageModel(value: unknown): value is LanguageModelV4 {
  const v = value as Partial<LanguageModelV4> | null;
  return typeof v === 'object' && v !== null && typeof v.doStream === 'function' && typeof v.doGenerate === 'function';
}

/** `base` with `models` resolvable by name in front of it. Throws a ConfigError for an unusable entry. */
export function withCodeModels(base: ModelRegistry, models: readonly CodeModel[]): ModelRegistry {
  if (models.length === 0) return base;
  const problems: { path: string; message: string }[] = [];
  const resolved = new Map<string, ResolvedModel>();
  const infos: ModelInfo[] = [];
  for (const entry of models) {
    const path = `models.${entry.name}`;
    if (!isLanguageModel(entry.model)) {
      problems.push({ path, message: 'must be an AI SDK language model (e.g. openai("gpt-4o")) or { model, … } holding one' });
      continue;
    }
    const version = (entry.model as { specificationVersion?: string }).specificationVersion;
    if (version !== 'v4') {
      problems.push({ path, message: `is a LanguageModel ${version ?? '(unknown version)'}; Parley needs LanguageModelV4 (AI SDK 7 provider packages)` });
      continue;
    }
    const model = entry.model;
    const namespace = model.provider.split('.')[0] || model.provider;
    const fromRequest = requestOptions(namespace, model.provider);
    const configured = entry.providerOptions;
    resolved.set(entry.name, {
      route: `${namespace}/${model.modelId}`,
      provider: namespace,
      modelId: model.modelId,
      model,
      contextWindow: entry.contextWindow ?? null,
      maxOutputTokens: entry.maxOutputTokens ?? null,
      pricing: entry.pricing
        ? {
            input_per_million: entry.pricing.input_per_million,
            output_per_million: entry.pricing.output_per_million,
            cached_input_per_million: entry.pricing.cached_input_per_million ?? null,
          }
        : null,
      namespace,
      policy: { ...DEFAULT_POLICY, fallbacks: [], ...entry.policy },
      providerOptions: (params: RequestParams) => merge(configured, fromRequest(params)),
    });
    infos.push({
      id: entry.name,
      route: `${namespace}/${model.modelId}`,
      provider: namespace,
      isDefault: entry.default === true,
      wildcard: false,
      endpoint: `in-process model (${model.provider})`,
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const registry: ModelRegistry = {
    resolve(name: string): ResolvedModel {
      const found = resolved.get(name);
      if (found) return found;
      try {
        return base.resolve(name);
      } catch (error) {
        if (!(error instanceof ApiError) || error.code !== 'model_not_found') throw error;
        const known = registry.list().map((m) => m.id);
        throw invalidRequest(`The model '${name}' does not exist here. Configured models: ${known.join(', ')}.`, 'model', 'model_not_found');
      }
    },
    list: () => [...infos, ...base.list()],
  };
  // Fallbacks must name a model either registry knows.
  for (const entry of models) {
    for (const [j, name] of (entry.policy?.fallbacks ?? []).entries()) {
      try {
        registry.resolve(name);
      } catch {
        problems.push({ path: `models.${entry.name}.policy.fallbacks[${j}]`, message: 'names no model' });
      }
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return registry;
}

/** The options Parley derives from a request for the providers it knows the options of. */
function requestOptions(namespace: string, provider: string): (params: RequestParams) => SharedV4ProviderOptions | undefined {
  if (namespace === 'openai' || namespace === 'azure') {
    const api = provider.endsWith('.responses') ? 'responses' : 'chat';
    return (params) => ({ [namespace]: openaiOptions(params, api) });
  }
  return () => undefined;
}

function merge(a: SharedV4ProviderOptions | undefined, b: SharedV4ProviderOptions | undefined): SharedV4ProviderOptions | undefined {
  if (!a) return b;
  if (!b) return a;
  const out: SharedV4ProviderOptions = { ...a };
  for (const [key, value] of Object.entries(b)) out[key] = { ...(a[key] ?? {}), ...value };
  return out;
}
