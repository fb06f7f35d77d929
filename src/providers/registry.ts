// Model routing: a client's `model` is matched as an alias (`name`), as `<provider>/<model id>`,
// then as a bare model id; `<provider>/*` entries pass any id through. Models are built lazily
// and cached, so an unused provider costs nothing at startup.

import type { ProviderConfig } from '../config/types.ts';
import { ConfigError } from '../config/types.ts';
import { invalidRequest } from '../protocol/errors.ts';
import { openaiProvider } from './openai.ts';
import { openaiCompatibleProvider } from './openai-compatible.ts';
import type { ModelInfo, ModelRegistry, ProviderFactory, ResolvedModel } from './types.ts';

/** Provider types with a dedicated package. Others need a base_url (OpenAI-compatible). */
const FACTORIES: Record<string, ProviderFactory> = {
  openai: openaiProvider,
};

interface Entry {
  config: ProviderConfig;
  build: (modelId: string) => Omit<ResolvedModel, 'route' | 'contextWindow'>;
  info: ModelInfo;
}

export function factoryFor(config: ProviderConfig): ProviderFactory | null {
  return FACTORIES[config.provider] ?? (config.base_url ? openaiCompatibleProvider : null);
}

export function createModelRegistry(providers: readonly ProviderConfig[]): ModelRegistry {
  const problems: { path: string; message: string }[] = [];
  const entries: Entry[] = [];
  providers.forEach((config, i) => {
    const factory = factoryFor(config);
    if (!factory) {
      problems.push({
        path: `model_providers[${i}].model`,
        message: `provider '${config.provider}' is not available yet; supported: ${Object.keys(FACTORIES).join(', ')}, or any OpenAI-compatible server given a base_url`,
      });
      return;
    }
    const wildcard = config.model_id === '*';
    entries.push({
      config,
      build: factory.create(config),
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
  if (problems.length > 0) throw new ConfigError(problems);

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
      const built = found.entry.build(found.modelId);
      const resolved: ResolvedModel = {
        ...built,
        route: `${found.entry.config.provider}/${found.modelId}`,
        contextWindow: found.entry.config.context_window,
      };
      // Bounded: wildcard routes could otherwise grow the cache with every id a client invents.
      if (cache.size < 1000) cache.set(name, resolved);
      return resolved;
    },
    list: () => entries.map((e) => e.info),
  };
}
