// The validated configuration, as the rest of Parley sees it. `schema.ts` turns YAML (after
// $VAR substitution) into this shape; nothing downstream reads raw YAML.

export type StateStorageConfig = (
  | { type: 'memory'; ttl_seconds: number | null; max_entries: number }
  | { type: 'sqlite'; ttl_seconds: number | null; path: string }
  | { type: 'postgres'; ttl_seconds: number | null; connection_string: string; pool_size: number }
  | RedisStorageConfig
) &
  RetentionConfig;

/**
 * Retention work every backend accepts (see src/store/retention.ts). Each is present only when the
 * config sets it; absent means the default.
 */
export interface RetentionConfig {
  /** How often the gateway prunes expired records and fails stale turns; absent: no sweeper. */
  prune_interval_seconds?: number;
  /**
   * Age after which a turn still `queued`/`in_progress` is taken to belong to a dead instance
   * and is marked `failed` (code `interrupted`). Must exceed the longest turn. Default 1 hour.
   */
  stale_turn_after_seconds?: number;
}

/** Redis; the optional settings are present only when the config sets them (see docs/redis.md). */
export interface RedisStorageConfig {
  type: 'redis';
  ttl_seconds: number | null;
  /** `redis://` or `rediss://`; in cluster mode, seed nodes separated by commas. */
  connection_string: string;
  /** Prepended to every key; default `parley:` (`{parley}:` in cluster mode). */
  key_prefix?: string;
  /** Connect to a Redis Cluster. */
  cluster?: boolean;
  /** Passed to ioredis as they are: RedisOptions (Sentinel: `sentinels`, `name`; `tls`, …) or ClusterOptions. */
  redis_options?: Record<string, unknown>;
}

export interface ProviderConfig {
  /** As written: `<provider>/<model id>`. */
  model: string;
  /** The part before the first slash, e.g. `openai`. */
  provider: string;
  /** The part after the first slash, sent upstream as the model id. */
  model_id: string;
  /** Alias a client may send as `model`. */
  name: string | null;
  access_key: string | null;
  base_url: string | null;
  default: boolean;
  /** Upstream protocol for `openai`: Chat Completions or OpenAI's Responses API. Null picks by base_url. */
  api: 'chat' | 'responses' | null;
  /** Extra HTTP headers sent upstream with every request. */
  headers: Record<string, string>;
  /** Total tokens the model accepts (input + output); null when unknown. */
  context_window: number | null;
  /**
   * Tokens kept free for the answer when fitting the context into `context_window`, for requests
   * that set no `max_output_tokens` (which is reserved instead). Present only when set.
   */
  max_output_tokens?: number;
  /** USD per million tokens, for the cost of each turn and conversation. Present only when set. */
  pricing?: ModelPricing;

  // Provider-specific settings. Each is present only when the config sets it, so a config that
  // uses none of them reads exactly as before.

  /** Azure: `v1` (the default) or a dated version such as `2024-10-21` (deployment-based URLs). */
  api_version?: string;
  /** Azure: the resource name (`https://<name>.openai.azure.com`), instead of a base_url. */
  resource_name?: string;
  /** Bedrock: the AWS region; falls back to AWS_REGION. Google Vertex is not served by this key. */
  region?: string;
  /** Bedrock: SigV4 credentials; absent means the standard AWS environment variables. */
  aws?: AwsCredentials;
  /** Provider options sent with every call, under the provider's own key (AI SDK providerOptions). */
  options?: Record<string, unknown>;
  timeout?: ProviderTimeouts;
  retries?: ProviderRetries;
  /** Models (alias, `<provider>/<model id>` or bare id) tried in order when this one fails before streaming. */
  fallbacks?: string[];
}

/** A model's prices in USD per million tokens. */
export interface ModelPricing {
  input_per_million: number;
  output_per_million: number;
  /** Input tokens served from the provider's prompt cache; null: priced as other input. */
  cached_input_per_million: number | null;
}

/** How compaction summaries are written (`context_management` and POST /v1/responses/compact). */
export interface CompactionConfig {
  /** The configured model that writes summaries; null: the model the request names. */
  model: string | null;
  /** Instructions for it; null: Parley's own (context/compaction.ts). */
  instructions: string | null;
}

export interface AwsCredentials {
  access_key_id: string;
  secret_access_key: string;
  session_token: string | null;
}

/** Null means "the gateway default" (see providers/resilience.ts). */
export interface ProviderTimeouts {
  /** Until the upstream starts answering (a streaming call's first chunk). */
  connect_ms: number | null;
  /** Longest silence between two chunks of a streaming answer. */
  idle_ms: number | null;
  /** Whole call, which is what bounds a non-streaming call (its answer arrives in one piece). */
  total_ms: number | null;
}

export interface ProviderRetries {
  /** Retries after the first attempt, on 429, 5xx, timeouts and network errors before any output. */
  max: number;
  /** First backoff; doubled on each retry (with jitter), or the upstream's retry-after when longer. */
  backoff_ms: number;
}

export interface ParleyConfig {
  listen: { host: string; port: number };
  /** Null means stateless: previous_response_id is rejected and nothing is stored. */
  state_storage: StateStorageConfig | null;
  model_providers: ProviderConfig[];
  limits: {
    /** Largest request body accepted, in bytes. */
    max_body_bytes: number;
  };
  /** Present only when the config has a `compaction` section. */
  compaction?: CompactionConfig;
}

/** One problem in a config file, with the path to the offending value (`model_providers[2].base_url`). */
export interface ConfigProblem {
  path: string;
  message: string;
}

export class ConfigError extends Error {
  readonly problems: ConfigProblem[];
  readonly file: string | null;
  constructor(problems: ConfigProblem[], file: string | null = null) {
    super(
      `${file ? `${file}: ` : ''}invalid configuration:\n` +
        problems.map((p) => `  ${p.path ? `${p.path}: ` : ''}${p.message}`).join('\n'),
    );
    this.name = 'ConfigError';
    this.problems = problems;
    this.file = file;
  }
}
