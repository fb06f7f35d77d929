// The provider contract: the engine asks the registry for a model by the name a client sent and
// gets back an AI SDK LanguageModelV4 plus what the engine needs to know about it. Each provider
// type (openai, anthropic, …) is one file exporting a ProviderFactory.

import type { LanguageModelV4, LanguageModelV4CallOptions, SharedV4ProviderOptions } from '@ai-sdk/provider';
import type { ModelPricing, ProviderConfig } from '../config/types.ts';
import type { RequestParams } from '../protocol/types.ts';

/** How one model is called: timeouts, retries and what to try when it fails before streaming. */
export interface CallPolicy {
  /** Until the upstream starts answering (doStream resolves on its first chunk). */
  connectMs: number;
  /** Longest silence between two stream parts once streaming. */
  idleMs: number;
  /** Whole call; what bounds a non-streaming call, whose answer arrives in one piece. */
  totalMs: number;
  /** Retries after the first attempt (429, 5xx, timeouts, network errors, before any output). */
  maxRetries: number;
  backoffMs: number;
  /** Model names (as a client would send them) tried in order when this model fails before streaming. */
  fallbacks: string[];
}

export interface ResolvedModel {
  /** `<provider>/<model id>` as routed, e.g. `openai/gpt-4o-mini`. */
  route: string;
  provider: string;
  modelId: string;
  model: LanguageModelV4;
  contextWindow: number | null;
  /** Output tokens reserved out of the window when a request sets no max_output_tokens. */
  maxOutputTokens?: number | null;
  /** Prices per million tokens; absent or null when unpriced (turns then cost null). */
  pricing?: ModelPricing | null;
  /**
   * The key this provider package reads in `providerOptions` and writes in `providerMetadata`
   * (`anthropic`, `google`, `openai`, `azure`, `bedrock`, or an OpenAI-compatible provider's name).
   * Reasoning items are tagged with it and replayed only to models sharing it.
   */
  namespace: string;
  policy: CallPolicy;
  /** The config entry's `options` (AI SDK provider options sent with every call), when it sets any. */
  configuredOptions?: Record<string, unknown>;
  /** Provider-specific call options derived from the request (e.g. OpenAI's parallelToolCalls). */
  providerOptions(params: RequestParams): SharedV4ProviderOptions | undefined;
  /** Last adjustments a provider needs to the call options (e.g. tool settings it cannot take). */
  adaptCallOptions?(options: LanguageModelV4CallOptions): LanguageModelV4CallOptions;
  /**
   * Set by ops/instrument.ts: measures one upstream call made without the AI SDK model (the Chat
   * Completions passthrough) as `model`'s own calls are measured. Absent: nothing to measure.
   */
  observeCall?(streaming: boolean, signal: AbortSignal): UpstreamCallObserver;
}

/** The bookkeeping of one upstream call (metrics, span, rate-limit correction, secret scrubbing). */
export interface UpstreamCallObserver {
  /** The upstream's first output arrived (time to first token). */
  firstOutput(): void;
  usage(usage: { inputTokens: number; outputTokens: number }): void;
  /** Once, when the call is over; an error is scrubbed of secrets in place. */
  end(error?: unknown): void;
  /** Upstream text about to reach a client, with the configured secrets masked. */
  scrub(text: string): string;
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

/** What a factory builds for one model id; the registry adds routing, policy and config options. */
export type BuiltModel = Omit<ResolvedModel, 'route' | 'contextWindow' | 'policy' | 'namespace'>;

/** Builds models for one `model_providers` entry. */
export interface ProviderFactory {
  /** Human description of where this provider's requests go (base URL or the vendor's default). */
  endpoint(config: ProviderConfig): string;
  /** The providerOptions / providerMetadata key of this provider's models. */
  namespace(config: ProviderConfig): string;
  /** Settings this provider cannot use or is missing, as `{key, message}` config problems. */
  check?(config: ProviderConfig): { key: string; message: string }[];
  create(config: ProviderConfig): (modelId: string) => BuiltModel;
}
