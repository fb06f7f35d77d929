// Model routing: a client's `model` is matched as an alias (`name`), as `<provider>/<model id>`,
// then as a bare model id; `<provider>/*` entries pass any id through. Models are built lazily
// and cached, so an unused provider costs nothing at startup.

import type { SharedV4ProviderOptions } from '@ai-sdk/provider';
import type { ProviderConfig } from '../config/types.ts';
import { ConfigError } from '../config/types.ts';
import { invalidRequest } from '../protocol/errors.ts';
import type { RequestParams } from '../protocol/types.ts';
import { anthropicProvider } from './anthropic.ts';
import { azureProvider } from './azure.ts';
import { bedrockProvider } from './bedrock.ts';
import { deepseekProvider } from './deepseek.ts';
import { googleProvider } from './google.ts';
import { groqProvider } from './groq.ts';
import { mistralProvider } from './mistral.ts';
import { openaiProvider } from './openai.ts';
import { openaiCompatibleProvider } from './openai-compatible.ts';
import type { BuiltModel, CallPolicy, ModelInfo, ModelRegistry, ProviderFactory, ResolvedModel } from './types.ts';
import { xaiProvider } from './xai.ts';

/** Provider types with a dedicated package. Others need a base_url (OpenAI-compatible). */
const FACTORIES: Record<string, ProviderFactory> = {
  openai: openaiProvider,
  anthropic: anthropicProvider,
  google: googleProvider,
  azure: azureProvider,
  bedrock: bedrockProvider,
  mistral: mistralProvider,
  deepseek: deepseekProvider,
  groq: groqProvider,
  xai: xaiProvider,
};

/** Used when a provider entry sets no `timeout` / `retries`. */
export const DEFAULT_POLICY: Omit<CallPolicy, 'fallbacks'> = {
  // Generous: a reasoning model on Chat Completions sends nothing until it has finished thinking.
  // These catch dead upstreams; tighten them per entry for fast models.
  connectMs: 300_000,
  idleMs: 300_000,
  // The official SDKs' own default request timeout.
  totalMs: 600_000,
  // Off by default: clients' SDKs retry on their own, and a gateway that also retries multiplies calls.
  maxRetries: 0,
  backoffMs: 500,
};

interface Entry {
  config: ProviderConfig;
  build: (modelId: string) => BuiltModel;
  info: ModelInfo;
  namespace: string;
  policy: CallPolicy;
}

export function factoryFor(config: ProviderConfig): ProviderFactory | null {
  return FACTORIES[config.provider] ?? (config.base_url ? openaiCompatibleProvider : null);
}

export function policyFor(config: ProviderConfig): CallPolicy {
  return {
    connectMs: config.timeout?.connect_ms ?? DEFAULT_POLICY.connectMs,
    idleMs: config.timeout?.idle_ms ?? DEFAULT_POLICY.idleMs,
    totalMs: config.timeout?.total_ms ?? DEFAULT_POLICY.totalMs,
    maxRetries: config.retries?.max ?? DEFAULT_POLICY.maxRetries,
    backoffMs: config.retries?.backoff_ms ?? DEFAULT_POLICY.backoffMs,
    fallbacks: config.fallbacks ?? [],
  };
}

export function createModelRegistry(providers: readonly ProviderConfig[]): ModelRegistry {
  const problems: { path: string; message: string }[] = [];
  const entries: Entry[] = [];
  providers.forEach((config, i) => {
    const factory = factoryFor(config);
    if (!factory) {
      problems.push({
        path: `model_providers[${i}].model`,
        message: `provider '${config.provider}' has no built-in support; supported: ${Object.keys(FACTORIES).join(', ')}, or any OpenAI-compatible server given a base_url`,
      });
      return;
    }
    const local = factory.check?.(config) ?? [];
    for (const p of local) problems.push({ path: `model_providers[${i}].${p.key}`, message: p.message });
    if (local.length > 0) return;
    const wildcard = config.model_id === '*';
    entries.push({
      config,
      build: factory.create(config),
      namespace: factory.namespace(config),
      policy: policyFor(config),
      info: {
        id: config.name ?? config.model,
        route: config.model,
        provider: config.provider,
        isDefault: config.default,
        wildcard,
        endpoint: factory.endpoint(config),
      },
    });
  });

  const cache = new Map<string, ResolvedModel>();
  const byAlias = new Map<string, Entry>();
  const byRoute = new Map<string, Entry>();
  const byBareId = new Map<string, Entry>();
  const wildcards = new Map<string, Entry>();
  for (const e of entries) {
    if (e.config.name) byAlias.set(e.config.name, e);
    if (e.info.wildcard) wildcards.set(e.config.provider, e);
    else {
      byRoute.set(e.config.model, e);
      if (!byBareId.has(e.config.model_id)) byBareId.set(e.config.model_id, e);
    }
  }
  // A bare id nobody lists goes to the default entry when that is a wildcard, else to the only wildcard.
  const defaultEntry = entries.find((e) => e.config.default) ?? entries[0];
  const bareFallback = defaultEntry?.info.wildcard ? defaultEntry : wildcards.size === 1 ? [...wildcards.values()][0] : undefined;

  const lookup = (name: string): { entry: Entry; modelId: string } | null => {
    const alias = byAlias.get(name);
    if (alias) return { entry: alias, modelId: alias.config.model_id === '*' ? name : alias.config.model_id };
    const route = byRoute.get(name);
    if (route) return { entry: route, modelId: route.config.model_id };
    const slash = name.indexOf('/');
    if (slash > 0) {
      const wild = wildcards.get(name.slice(0, slash));
      if (wild) return { entry: wild, modelId: name.slice(slash + 1) };
    }
    const bare = byBareId.get(name);
    if (bare) return { entry: bare, modelId: bare.config.model_id };
    if (bareFallback) return { entry: bareFallback, modelId: name };
    return null;
  };

  // Fallbacks must name configured models, and never the entry itself.
  for (const e of entries) {
    const index = providers.indexOf(e.config);
    (e.config.fallbacks ?? []).forEach((name, j) => {
      const found = lookup(name);
      const path = `model_providers[${index}].fallbacks[${j}]`;
      if (!found) {
        problems.push({ path, message: `names no configured model; configured: ${entries.map((x) => x.info.id).join(', ')}` });
      } else if (found.entry === e && !e.info.wildcard) {
        problems.push({ path, message: 'names this entry itself; a fallback must be another model' });
      }
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const resolveEntry = (found: { entry: Entry; modelId: string }): ResolvedModel => {
    const { entry, modelId } = found;
    const built = entry.build(modelId);
    const configured = entry.config.options;
    const namespace = entry.namespace;
    return {
      ...built,
      route: `${entry.config.provider}/${modelId}`,
      contextWindow: entry.config.context_window,
      maxOutputTokens: entry.config.max_output_tokens ?? null,
      pricing: entry.config.pricing ?? null,
      namespace,
      policy: entry.policy,
      ...(configured ? { configuredOptions: configured } : {}),
      providerOptions: configured
        ? (params: RequestParams) => mergeOptions(built.providerOptions(params), namespace, configured)
        : built.providerOptions,
    };
  };

  return {
    resolve(name: string): ResolvedModel {
      const cached = cache.get(name);
      if (cached) return cached;
      const found = lookup(name);
      if (!found) {
        const known = entries.map((e) => e.info.id);
        throw invalidRequest(
          known.length === 0
            ? `The model '${name}' does not exist: no models are configured on this gateway (add model_providers to parley.yaml or set OPENAI_API_KEY / OPENAI_BASE_URL).`
            : `The model '${name}' does not exist on this gateway. Configured models: ${known.join(', ')}.`,
          'model',
          'model_not_found',
        );
      }
      const resolved = resolveEntry(found);
      // Bounded: wildcard routes could otherwise grow the cache with every id a client invents.
      if (cache.size < 1000) cache.set(name, resolved);
      return resolved;
    },
    list: () => entries.map((e) => e.info),
  };
}

/** The config's `options` under the provider's key; the request's own options win where both set a key. */
function mergeOptions(
  fromRequest: SharedV4ProviderOptions | undefined,
  namespace: string,
  configured: Record<string, unknown>,
): SharedV4ProviderOptions {
  const merged: SharedV4ProviderOptions = { ...fromRequest };
  merged[namespace] = { ...(configured as Record<string, never>), ...(fromRequest?.[namespace] ?? {}) };
  return merged;
}
