// The validated configuration, as the rest of Parley sees it. `schema.ts` turns YAML (after
// $VAR substitution) into this shape; nothing downstream reads raw YAML.

export type StateStorageConfig =
  | { type: 'memory'; ttl_seconds: number | null; max_entries: number }
  | { type: 'sqlite'; ttl_seconds: number | null; path: string }
  | { type: 'postgres'; ttl_seconds: number | null; connection_string: string; pool_size: number }
  | { type: 'redis'; ttl_seconds: number | null; connection_string: string };

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
