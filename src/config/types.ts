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
    // The limits below are present only when the config sets them; src/http/limits.ts has the defaults.
    /** Most items a request may carry (`input`, conversation `items`, chat `messages`). */
    max_input_items?: number;
    /** Deepest nesting of arrays and objects accepted in a JSON body. */
    max_json_depth?: number;
    /** Streams open at once on this instance; more are answered 503. */
    max_concurrent_streams?: number;
    /** A stream that sends nothing (or whose client reads nothing) this long is closed. */
    stream_idle_timeout_ms?: number;
    /** A comment line is sent on a stream this often, between events, so idle proxies keep it open. */
    stream_heartbeat_ms?: number;
    /** Bytes a stream following a background response may fall behind before it is dropped. */
    max_stream_buffer_bytes?: number;
    /** How long SIGTERM waits for in-flight requests before recording them `incomplete`. */
    shutdown_timeout_ms?: number;
  };
  /**
   * Absent: no authentication, and the gateway listens on loopback addresses only. `none`: no
   * authentication on any address, acknowledged explicitly.
   */
  auth?: AuthConfig;
  /** Present only when the config has a `telemetry` section; src/ops/telemetry.ts has the defaults. */
  telemetry?: TelemetryConfig;
  /** Present only when the config has a `compaction` section. */
  compaction?: CompactionConfig;
}

export type AuthConfig = { mode: 'none' } | { mode: 'api_keys'; api_keys: ApiKeyConfig[] };

/** One gateway API key. The plaintext is never kept: `key: $VAR` is hashed when the config is read. */
export interface ApiKeyConfig {
  /** SHA-256 of the key, 64 lowercase hex digits. */
  sha256: string;
  /** Who owns what this key creates; keys sharing a tenant share its responses and conversations. */
  tenant: string;
  /** For logs and metrics (never the key): `name`, else `<tenant>#<index>`. */
  name: string;
  /** Models this key may call (as a client would name them); null: every configured model. */
  models: string[] | null;
  requests_per_minute: number | null;
  tokens_per_minute: number | null;
}

export interface TelemetryConfig {
  /** `/metrics`: open like /healthz (`public`, the default), behind any valid API key (`authenticated`), or not served (`off`). */
  metrics?: 'public' | 'authenticated' | 'off';
  /** OTLP/HTTP traces endpoint, e.g. `http://collector:4318/v1/traces`; absent: no tracing. */
  otlp_endpoint?: string;
  /** Headers sent with every OTLP export (e.g. the tracing backend's API key). */
  otlp_headers?: Record<string, string>;
  /** `service.name` of the exported spans (default `parley`). */
  service_name?: string;
  /** One JSON log line per request (default true). */
  access_log?: boolean;
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
