// The parley.yaml schema: parsed YAML (after $VAR substitution) in, ParleyConfig or a list of
// problems out. Zod owns the structure (strict objects, the storage union, lists); each scalar
// field has its own small parser so every message is written for a person and never repeats the
// offending value (it may be a secret, or come from an environment variable).

import { z } from 'zod';
import { parseByteSize, parseDuration } from './duration.ts';
import { parseAuth } from './auth-schema.ts';
import type { AuthConfig, AwsCredentials, ParleyConfig, ProviderConfig, StateStorageConfig, TelemetryConfig } from './types.ts';

export type PathSegment = string | number;

/** A problem located by path segments; the loader adds line numbers and formats the path. */
export interface PathProblem {
  path: PathSegment[];
  message: string;
}

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 12000;
export const DEFAULT_SQLITE_PATH = './data/parley.db';
export const DEFAULT_POOL_SIZE = 10;
export const DEFAULT_MAX_ENTRIES = 10_000;
export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;
export const STORAGE_TYPES = ['memory', 'sqlite', 'postgres', 'redis'] as const;

// ---------------------------------------------------------------------------------------------
// Scalar fields. `undefined` means the key is absent; YAML `key:` with no value arrives as null.

type Parsed<T> = { value: T } | { error: string };

function field<T>(parse: (input: unknown) => Parsed<T>) {
  // `.optional()` first so an absent key still reaches `parse` (which applies the default).
  return z
    .unknown()
    .optional()
    .transform((input, ctx): T => {
      const result = parse(input);
      if ('error' in result) {
        ctx.addIssue({ code: 'custom', message: result.error });
        return z.NEVER;
      }
      return result.value;
    });
}

function kindOf(input: unknown): string {
  if (input === null) return 'nothing';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'object') return 'a mapping';
  if (typeof input === 'number') return Number.isInteger(input) ? 'a whole number' : 'a number';
  if (typeof input === 'boolean') return 'true/false';
  return `a ${typeof input}`;
}

function isAbsent(input: unknown): input is null | undefined {
  return input === undefined || input === null;
}

/** Strings; numbers and booleans are taken as their text (`name: 4` is the alias "4"). */
function text(options: { required?: boolean; fallback?: string | null; emptyIsNull?: boolean } = {}) {
  return field<string | null>((input) => {
    if (isAbsent(input) || (options.emptyIsNull && input === '')) {
      if (options.required) return { error: input === undefined ? 'is required' : 'must not be empty' };
      return { value: options.fallback ?? null };
    }
    if (typeof input === 'number' || typeof input === 'boolean') return { value: String(input) };
    if (typeof input !== 'string') return { error: `must be a string, not ${kindOf(input)}` };
    if (input.trim() === '') {
      if (options.required) return { error: 'must not be empty' };
      return { value: options.fallback ?? null };
    }
    return { value: input };
  });
}

/** Whole numbers; a string of digits counts (values substituted from the environment are strings). */
function integer(min: number, max: number, fallback: number | null) {
  return field<number | null>((input) => {
    if (isAbsent(input)) return { value: fallback };
    const n = typeof input === 'string' && /^\s*[+-]?\d+\s*$/.test(input) ? Number(input) : input;
    if (typeof n !== 'number' || !Number.isInteger(n)) {
      return { error: `must be a whole number, not ${kindOf(input)}` };
    }
    if (n < min || n > max) {
      return {
        error:
          max === Number.MAX_SAFE_INTEGER ? `must be at least ${min}` : `must be between ${min} and ${max}`,
      };
    }
    return { value: n };
  });
}

function boolean(fallback: boolean) {
  return field<boolean>((input) => {
    if (isAbsent(input)) return { value: fallback };
    if (input === true || input === 'true') return { value: true };
    if (input === false || input === 'false') return { value: false };
    return { error: 'must be true or false' };
  });
}

function oneOf<const T extends string>(values: readonly T[]) {
  return field<T | null>((input) => {
    if (isAbsent(input)) return { value: null };
    if (typeof input === 'string' && (values as readonly string[]).includes(input)) {
      return { value: input as T };
    }
    return { error: `must be one of: ${values.join(', ')}${hint(input, values)}` };
  });
}

/** A price in USD (per million tokens): a number >= 0; a numeric string counts. */
function price(options: { required?: boolean } = {}) {
  return field<number | null>((input) => {
    if (isAbsent(input)) return options.required ? { error: 'is required: USD per million tokens, e.g. 2.5' } : { value: null };
    const n = typeof input === 'string' && input.trim() !== '' ? Number(input) : input;
    if (typeof n !== 'number' || !Number.isFinite(n)) {
      return { error: `must be a price in USD per million tokens (e.g. 2.5), not ${kindOf(input)}` };
    }
    if (n < 0) return { error: 'must be 0 or more (USD per million tokens)' };
    return { value: n };
  });
}

const duration = field<number | null>((input) => {
  if (isAbsent(input)) return { value: null };
  if (typeof input !== 'string' && typeof input !== 'number') {
    return {
      error: `must be a duration such as 30d, 12h, 90m, 45s or a number of seconds, not ${kindOf(input)}`,
    };
  }
  const seconds = parseDuration(input);
  if (seconds === null) {
    return { error: 'must be a positive duration such as 30d, 12h, 90m, 45s, 1h30m or a number of seconds' };
  }
  return { value: seconds };
});

const byteSize = field<number>((input) => {
  if (isAbsent(input)) return { value: DEFAULT_MAX_BODY_BYTES };
  const bytes = typeof input === 'string' || typeof input === 'number' ? parseByteSize(input) : null;
  if (bytes === null) {
    return {
      error: 'must be a positive number of bytes or a size such as 512kb, 10mb, 1gb (multiples of 1024)',
    };
  }
  return { value: bytes };
});

const optionalByteSize = field<number | null>((input) => {
  if (isAbsent(input)) return { value: null };
  const bytes = typeof input === 'string' || typeof input === 'number' ? parseByteSize(input) : null;
  if (bytes === null) return { error: 'must be a positive number of bytes or a size such as 512kb, 10mb (multiples of 1024)' };
  return { value: bytes };
});

const modelRef = field<{ model: string; provider: string; model_id: string }>((input) => {
  const shape =
    'must be "<provider>/<model id>", e.g. "openai/gpt-4o" (or "openai/*" to pass any model id through)';
  if (input === undefined) return { error: `is required: ${shape.slice('must be '.length)}` };
  if (typeof input !== 'string') return { error: `${shape}, not ${kindOf(input)}` };
  const slash = input.indexOf('/');
  const provider = input.slice(0, slash).trim();
  const modelId = input.slice(slash + 1).trim();
  if (slash === -1 || provider === '' || modelId === '') return { error: shape };
  if (/\s/.test(input)) return { error: `must not contain spaces; ${shape}` };
  return { value: { model: input, provider, model_id: modelId } };
});

const httpUrl = field<string | null>((input) => {
  if (isAbsent(input) || input === '') return { value: null };
  const example = 'e.g. "http://127.0.0.1:11434/v1"';
  if (typeof input !== 'string') return { error: `must be an http(s) URL, ${example}, not ${kindOf(input)}` };
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return { error: `is not a valid URL; expected an http(s) URL, ${example}` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { error: `must use http:// or https://, ${example}` };
  }
  return { value: input };
});

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const headers = field<Record<string, string>>((input) => {
  if (isAbsent(input)) return { value: {} };
  if (typeof input !== 'object' || Array.isArray(input)) {
    return { error: `must be a mapping of header name to value, not ${kindOf(input)}` };
  }
  const out: Record<string, string> = {};
  const bad: string[] = [];
  for (const [name, value] of Object.entries(input)) {
    if (!HEADER_NAME.test(name)) return { error: `"${name}" is not a valid HTTP header name` };
    if (typeof value === 'number' || typeof value === 'boolean') out[name] = String(value);
    else if (typeof value === 'string' && !/[\r\n]/.test(value)) out[name] = value;
    else bad.push(name);
  }
  if (bad.length > 0) {
    return { error: `values must be single-line strings; check ${bad.map((b) => `"${b}"`).join(', ')}` };
  }
  return { value: out };
});

/** A free-form mapping (provider options); its values go to the provider package as they are. */
const mapping = field<Record<string, unknown> | null>((input) => {
  if (isAbsent(input)) return { value: null };
  if (typeof input !== 'object' || Array.isArray(input)) return { error: `must be a mapping, not ${kindOf(input)}` };
  return { value: input as Record<string, unknown> };
});

const AZURE_RESOURCE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

const resourceName = field<string | null>((input) => {
  if (isAbsent(input) || input === '') return { value: null };
  if (typeof input !== 'string') return { error: `must be a string, not ${kindOf(input)}` };
  if (!AZURE_RESOURCE.test(input)) {
    return { error: 'must be the Azure resource name alone (letters, digits, hyphens), e.g. "my-openai"; use base_url for a full endpoint' };
  }
  return { value: input };
});

const modelList = field<string[] | null>((input) => {
  if (isAbsent(input)) return { value: null };
  const list = typeof input === 'string' ? [input] : input;
  if (!Array.isArray(list)) return { error: `must be a list of model names, not ${kindOf(input)}` };
  const out: string[] = [];
  for (const entry of list) {
    if (typeof entry !== 'string' || entry.trim() === '') return { error: 'every entry must be a model name (an alias, "<provider>/<model id>" or a bare model id)' };
    out.push(entry.trim());
  }
  return { value: out };
});

// ---------------------------------------------------------------------------------------------
// Structure.

const listenSchema = z.strictObject({
  host: text({ fallback: DEFAULT_HOST }),
  port: integer(0, 65535, DEFAULT_PORT),
});

const limitsSchema = z.strictObject({
  max_body_bytes: byteSize,
  max_input_items: integer(1, Number.MAX_SAFE_INTEGER, null),
  max_json_depth: integer(2, 10_000, null),
  max_concurrent_streams: integer(1, Number.MAX_SAFE_INTEGER, null),
  stream_idle_timeout: duration,
  stream_heartbeat: duration,
  max_stream_buffer: optionalByteSize,
  shutdown_timeout: duration,
});

const telemetrySchema = z.strictObject({
  metrics: oneOf(['public', 'authenticated', 'off'] as const),
  otlp_endpoint: httpUrl,
  otlp_headers: headers,
  service_name: text({ emptyIsNull: true }),
  access_log: field<boolean | null>((input) => (isAbsent(input) ? { value: null } : input === true || input === 'true' ? { value: true } : input === false || input === 'false' ? { value: false } : { error: 'must be true or false' })),
});

/** `auth`: parsed by auth-schema.ts, its problems reported at their own paths. */
const authField = z
  .unknown()
  .optional()
  .transform((input, ctx): AuthConfig | undefined => {
    const result = parseAuth(input);
    if ('problems' in result) {
      for (const p of result.problems) ctx.addIssue({ code: 'custom', message: p.message, path: p.path });
      return z.NEVER;
    }
    return result.value;
  });

const memoryStorage = z.strictObject({
  type: z.literal('memory'),
  ttl: duration,
  prune_interval: duration,
  stale_turn_after: duration,
  max_entries: integer(1, Number.MAX_SAFE_INTEGER, DEFAULT_MAX_ENTRIES),
});
const sqliteStorage = z.strictObject({
  type: z.literal('sqlite'),
  ttl: duration,
  prune_interval: duration,
  stale_turn_after: duration,
  path: text({ fallback: DEFAULT_SQLITE_PATH }),
});
const postgresStorage = z.strictObject({
  type: z.literal('postgres'),
  ttl: duration,
  prune_interval: duration,
  stale_turn_after: duration,
  connection_string: text({ required: true }),
  pool_size: integer(1, 10_000, DEFAULT_POOL_SIZE),
});
const redisStorage = z.strictObject({
  type: z.literal('redis'),
  ttl: duration,
  prune_interval: duration,
  stale_turn_after: duration,
  connection_string: text({ required: true }),
  key_prefix: text({ emptyIsNull: true }),
  cluster: boolean(false),
  redis_options: mapping,
});

const storageSchemas = {
  memory: memoryStorage,
  sqlite: sqliteStorage,
  postgres: postgresStorage,
  redis: redisStorage,
} as const;

const stateStorageSchema = z.discriminatedUnion('type', [
  memoryStorage,
  sqliteStorage,
  postgresStorage,
  redisStorage,
]);

const DAY_MS = 24 * 60 * 60 * 1000;

const timeoutSchema = z.strictObject({
  connect_ms: integer(1, DAY_MS, null),
  idle_ms: integer(1, DAY_MS, null),
  total_ms: integer(1, DAY_MS, null),
});

export const DEFAULT_RETRY_BACKOFF_MS = 500;

const retriesSchema = z.strictObject({
  max: integer(0, 10, 0),
  backoff_ms: integer(0, 10 * 60 * 1000, DEFAULT_RETRY_BACKOFF_MS),
});

const pricingSchema = z.strictObject({
  input_per_million: price({ required: true }),
  output_per_million: price({ required: true }),
  cached_input_per_million: price(),
});

const compactionSchema = z.strictObject({
  model: text({ emptyIsNull: true }),
  instructions: text({ emptyIsNull: true }),
});

const awsSchema = z.strictObject({
  access_key_id: text({ required: true }),
  secret_access_key: text({ required: true }),
  session_token: text({ emptyIsNull: true }),
});

export const providerSchema = z.strictObject({
  model: modelRef,
  access_key: text({ emptyIsNull: true }),
  base_url: httpUrl,
  name: text(),
  default: boolean(false),
  api: oneOf(['chat', 'responses'] as const),
  headers,
  context_window: integer(1, Number.MAX_SAFE_INTEGER, null),
  max_output_tokens: integer(1, Number.MAX_SAFE_INTEGER, null),
  pricing: pricingSchema.nullish(),
  api_version: text({ emptyIsNull: true }),
  resource_name: resourceName,
  region: text({ emptyIsNull: true }),
  aws: awsSchema.nullish(),
  options: mapping,
  timeout: timeoutSchema.nullish(),
  retries: retriesSchema.nullish(),
  fallbacks: modelList,
});

/** Keys of the mappings nested in a provider entry, for did-you-mean hints. */
const PROVIDER_NESTED_KEYS: Record<string, readonly string[]> = {
  timeout: Object.keys(timeoutSchema.shape),
  retries: Object.keys(retriesSchema.shape),
  aws: Object.keys(awsSchema.shape),
  pricing: Object.keys(pricingSchema.shape),
};

/** Absent or `key:` (null) both mean "use the defaults". */
function section<T extends z.ZodType>(schema: T) {
  return z.preprocess((input) => (isAbsent(input) ? {} : input), schema);
}

export const configSchema = z.strictObject({
  listen: section(listenSchema),
  state_storage: stateStorageSchema.nullish(),
  model_providers: z.preprocess((input) => (isAbsent(input) ? [] : input), z.array(providerSchema)),
  limits: section(limitsSchema),
  compaction: compactionSchema.nullish(),
  auth: authField,
  telemetry: telemetrySchema.nullish(),
});

type RawConfig = z.output<typeof configSchema>;

const TOP_LEVEL_KEYS = Object.keys(configSchema.shape);
const LISTEN_KEYS = Object.keys(listenSchema.shape);
const LIMITS_KEYS = Object.keys(limitsSchema.shape);
const COMPACTION_KEYS = Object.keys(compactionSchema.shape);
const TELEMETRY_KEYS = Object.keys(telemetrySchema.shape);
const PROVIDER_KEYS = Object.keys(providerSchema.shape);

// ---------------------------------------------------------------------------------------------
// Messages for the issues zod raises itself (wrong container types, the storage `type`).

const EXPECTED: Record<string, string> = {
  object: 'a mapping (key: value lines)',
  array: 'a list (lines starting with "- ")',
  string: 'a string',
};

const errorMap: z.core.$ZodErrorMap = (issue) => {
  if (issue.code === 'invalid_type') {
    if (issue.input === undefined) return 'is required';
    return `must be ${EXPECTED[issue.expected] ?? issue.expected}, not ${kindOf(issue.input)}`;
  }
  if (issue.code === 'invalid_union' && issue.discriminator === 'type') {
    const value = (issue.input as Record<string, unknown> | undefined)?.type;
    const options = STORAGE_TYPES.join(', ');
    if (value === undefined) return `is required: one of ${options}`;
    return `must be one of: ${options}${hint(value, STORAGE_TYPES)}`;
  }
  return undefined;
};

// ---------------------------------------------------------------------------------------------
// "Did you mean": case, `-`/`_` and common synonyms, then small edit distances.

const SYNONYMS: Record<string, string> = {
  apikey: 'access_key',
  key: 'access_key',
  token: 'access_key',
  apitoken: 'access_key',
  secret: 'access_key',
  url: 'base_url',
  endpoint: 'base_url',
  apibase: 'base_url',
  baseurl: 'base_url',
  alias: 'name',
  isdefault: 'default',
  contextlength: 'context_window',
  maxoutput: 'max_output_tokens',
  maxtokens: 'max_output_tokens',
  outputreserve: 'max_output_tokens',
  price: 'pricing',
  prices: 'pricing',
  cost: 'pricing',
  cachedinput: 'cached_input_per_million',
  input: 'input_per_million',
  output: 'output_per_million',
  summarizer: 'compaction',
  summariser: 'compaction',
  contextsize: 'context_window',
  maxcontext: 'context_window',
  protocol: 'api',
  apiversion: 'api_version',
  version: 'api_version',
  resource: 'resource_name',
  resourcename: 'resource_name',
  awsregion: 'region',
  location: 'region',
  timeouts: 'timeout',
  retry: 'retries',
  maxretries: 'max',
  fallback: 'fallbacks',
  connect: 'connect_ms',
  connecttimeout: 'connect_ms',
  idle: 'idle_ms',
  idletimeout: 'idle_ms',
  total: 'total_ms',
  backoff: 'backoff_ms',
  provideroptions: 'options',
  providers: 'model_providers',
  llmproviders: 'model_providers',
  models: 'model_providers',
  storage: 'state_storage',
  state: 'state_storage',
  store: 'state_storage',
  database: 'state_storage',
  server: 'listen',
  listener: 'listen',
  listeners: 'listen',
  address: 'host',
  bind: 'host',
  dsn: 'connection_string',
  uri: 'connection_string',
  file: 'path',
  filename: 'path',
  retention: 'ttl',
  sweepinterval: 'prune_interval',
  sweepevery: 'prune_interval',
  staleafter: 'stale_turn_after',
  staleturntimeout: 'stale_turn_after',
  expiry: 'ttl',
  expire: 'ttl',
  pool: 'pool_size',
  prefix: 'key_prefix',
  ioredis: 'redis_options',
  bodylimit: 'max_body_bytes',
  maxbody: 'max_body_bytes',
  maxbodysize: 'max_body_bytes',
};

const normalize = (s: string) => s.toLowerCase().replace(/[-_\s]/g, '');

/** Optimal-string-alignment distance: edits, with a swap of neighbours counting as one. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

export function closest(word: string, candidates: readonly string[]): string | null {
  const n = normalize(word);
  for (const c of candidates) if (normalize(c) === n) return c;
  const synonym = SYNONYMS[n];
  if (Object.hasOwn(SYNONYMS, n) && candidates.includes(synonym)) return synonym;
  let best: string | null = null;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const distance = editDistance(n, normalize(c));
    if (distance < bestDistance) {
      best = c;
      bestDistance = distance;
    }
  }
  const allowed = n.length >= 5 ? 2 : 1;
  return bestDistance <= allowed ? best : null;
}

function hint(input: unknown, candidates: readonly string[]): string {
  if (typeof input !== 'string') return '';
  const match = closest(input, candidates);
  return match ? `; did you mean "${match}"?` : '';
}

function unknownKeyMessage(key: string, path: PathSegment[], data: unknown): string {
  let known: readonly string[] = TOP_LEVEL_KEYS;
  if (path.length === 1 && path[0] === 'listen') known = LISTEN_KEYS;
  else if (path.length === 1 && path[0] === 'limits') known = LIMITS_KEYS;
  else if (path.length === 1 && path[0] === 'compaction') known = COMPACTION_KEYS;
  else if (path.length === 1 && path[0] === 'telemetry') known = TELEMETRY_KEYS;
  else if (path[0] === 'model_providers') {
    known = path.length === 3 && typeof path[2] === 'string' ? (PROVIDER_NESTED_KEYS[path[2]] ?? PROVIDER_KEYS) : PROVIDER_KEYS;
  }
  else if (path.length === 1 && path[0] === 'state_storage') {
    const type = (data as { state_storage?: { type?: unknown } }).state_storage?.type;
    const schema = Object.hasOwn(storageSchemas, String(type))
      ? storageSchemas[type as keyof typeof storageSchemas]
      : null;
    known = schema ? Object.keys(schema.shape) : ['type'];
    const usedBy = STORAGE_TYPES.filter((t) => t !== type && Object.hasOwn(storageSchemas[t].shape, key));
    if (usedBy.length > 0) {
      return `is only used when type is ${usedBy.join(' or ')} (type here is ${String(type)}); remove it`;
    }
  }
  const match = closest(key, known);
  return match
    ? `unknown key; did you mean "${match}"?`
    : `unknown key; expected one of: ${known.join(', ')}`;
}

// ---------------------------------------------------------------------------------------------
// Checks across providers. They run on the raw data, so they report even when other fields of the
// same file are broken.

function crossCheckProviders(data: unknown): PathProblem[] {
  const list = (data as { model_providers?: unknown } | null)?.model_providers;
  if (!Array.isArray(list)) return [];
  const problems: PathProblem[] = [];
  const entries = list.map((raw, index) => {
    const item =
      raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
    const model = typeof item.model === 'string' && item.model.includes('/') ? item.model : null;
    const modelId = model === null ? null : model.slice(model.indexOf('/') + 1).trim();
    const name =
      typeof item.name === 'string' || typeof item.name === 'number'
        ? String(item.name).trim() || null
        : null;
    return { index, model, modelId, name, isDefault: item.default === true || item.default === 'true' };
  });

  const where = (i: number) => `model_providers[${i}]`;

  const defaults = entries.filter((e) => e.isDefault);
  for (const extra of defaults.slice(1)) {
    problems.push({
      path: ['model_providers', extra.index, 'default'],
      message: `only one provider can be the default, and ${where(defaults[0].index)} already is`,
    });
  }

  const aliasOwner = new Map<string, number>();
  for (const e of entries) {
    if (e.name === null) continue;
    const path = ['model_providers', e.index, 'name'];
    const first = aliasOwner.get(e.name);
    if (first !== undefined) {
      problems.push({
        path,
        message: `the same alias is already used by ${where(first)}; aliases must be unique`,
      });
      continue;
    }
    aliasOwner.set(e.name, e.index);
    if (e.modelId === '*') {
      problems.push({
        path,
        message: 'a wildcard model ("<provider>/*") cannot have an alias; name a concrete model',
      });
      continue;
    }
    const clash = entries.find(
      (other) =>
        other.index !== e.index &&
        (other.model === e.name || (other.modelId !== '*' && other.modelId === e.name)),
    );
    if (clash) {
      const what = clash.model === e.name ? 'model' : 'model id';
      problems.push({
        path,
        message: `collides with the ${what} of ${where(clash.index)}, so a client sending it would be ambiguous; pick another alias`,
      });
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------

export type ValidationResult = { ok: true; config: ParleyConfig } | { ok: false; problems: PathProblem[] };

/** Validates parsed (and substituted) YAML. Collects every problem rather than stopping at the first. */
export function validateConfig(data: unknown): ValidationResult {
  const input = isAbsent(data) ? {} : data;
  if (typeof input !== 'object' || Array.isArray(input)) {
    return {
      ok: false,
      problems: [
        {
          path: [],
          message: `the file must be a mapping with keys such as model_providers, not ${kindOf(input)}`,
        },
      ],
    };
  }
  const result = configSchema.safeParse(input, { error: errorMap, reportInput: false });
  const problems: PathProblem[] = [];
  if (!result.success) {
    for (const issue of result.error.issues) {
      const path = issue.path.map((p) => (typeof p === 'number' ? p : String(p)));
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys)
          problems.push({ path: [...path, key], message: unknownKeyMessage(key, path, input) });
      } else {
        problems.push({ path, message: issue.message });
      }
    }
  }
  problems.push(...crossCheckProviders(input));
  if (problems.length > 0 || !result.success) return { ok: false, problems: sortByPath(problems) };
  return { ok: true, config: toParleyConfig(result.data) };
}

function sortByPath(problems: PathProblem[]): PathProblem[] {
  // Stable order for readers: by section as written in the schema, then list index, then key.
  const rank = (p: PathProblem) => {
    const top = TOP_LEVEL_KEYS.indexOf(String(p.path[0]));
    return top === -1 ? TOP_LEVEL_KEYS.length : top;
  };
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => {
      const r = rank(a.p) - rank(b.p);
      if (r !== 0) return r;
      const ia = typeof a.p.path[1] === 'number' ? a.p.path[1] : -1;
      const ib = typeof b.p.path[1] === 'number' ? b.p.path[1] : -1;
      return ia !== ib ? ia - ib : a.i - b.i;
    })
    .map(({ p }) => p);
}

function toParleyConfig(raw: RawConfig): ParleyConfig {
  const providers: ProviderConfig[] = raw.model_providers.map((p) => {
    const config: ProviderConfig = {
      model: p.model.model,
      provider: p.model.provider,
      model_id: p.model.model_id,
      name: p.name,
      access_key: p.access_key,
      base_url: p.base_url,
      default: p.default,
      api: p.api,
      headers: p.headers,
      context_window: p.context_window,
    };
    // Provider-specific settings appear only when set.
    if (p.api_version !== null) config.api_version = p.api_version;
    if (p.resource_name !== null) config.resource_name = p.resource_name;
    if (p.region !== null) config.region = p.region;
    if (p.aws) {
      const aws: AwsCredentials = {
        access_key_id: p.aws.access_key_id as string,
        secret_access_key: p.aws.secret_access_key as string,
        session_token: p.aws.session_token,
      };
      config.aws = aws;
    }
    if (p.options !== null) config.options = p.options;
    if (p.timeout) config.timeout = { connect_ms: p.timeout.connect_ms, idle_ms: p.timeout.idle_ms, total_ms: p.timeout.total_ms };
    if (p.retries) config.retries = { max: p.retries.max ?? 0, backoff_ms: p.retries.backoff_ms ?? DEFAULT_RETRY_BACKOFF_MS };
    if (p.fallbacks !== null) config.fallbacks = p.fallbacks;
    if (p.max_output_tokens !== null) config.max_output_tokens = p.max_output_tokens;
    if (p.pricing) {
      config.pricing = {
        input_per_million: p.pricing.input_per_million as number,
        output_per_million: p.pricing.output_per_million as number,
        cached_input_per_million: p.pricing.cached_input_per_million,
      };
    }
    return config;
  });
  if (providers.length > 0 && !providers.some((p) => p.default)) providers[0].default = true;
  return {
    listen: { host: raw.listen.host ?? DEFAULT_HOST, port: raw.listen.port ?? DEFAULT_PORT },
    state_storage: withRetention(toStateStorage(raw.state_storage), raw.state_storage),
    model_providers: providers,
    limits: toLimits(raw.limits),
    ...(raw.compaction ? { compaction: { model: raw.compaction.model, instructions: raw.compaction.instructions } } : {}),
    ...(raw.auth ? { auth: raw.auth } : {}),
    ...(raw.telemetry ? { telemetry: toTelemetry(raw.telemetry) } : {}),
  };
}

/** The limits the config sets; absent ones stay absent (src/http/limits.ts has the defaults). */
function toLimits(raw: RawConfig['limits']): ParleyConfig['limits'] {
  const limits: ParleyConfig['limits'] = { max_body_bytes: raw.max_body_bytes };
  if (raw.max_input_items !== null) limits.max_input_items = raw.max_input_items;
  if (raw.max_json_depth !== null) limits.max_json_depth = raw.max_json_depth;
  if (raw.max_concurrent_streams !== null) limits.max_concurrent_streams = raw.max_concurrent_streams;
  if (raw.stream_idle_timeout !== null) limits.stream_idle_timeout_ms = raw.stream_idle_timeout * 1000;
  if (raw.stream_heartbeat !== null) limits.stream_heartbeat_ms = raw.stream_heartbeat * 1000;
  if (raw.max_stream_buffer !== null) limits.max_stream_buffer_bytes = raw.max_stream_buffer;
  if (raw.shutdown_timeout !== null) limits.shutdown_timeout_ms = raw.shutdown_timeout * 1000;
  return limits;
}

function toTelemetry(raw: NonNullable<RawConfig['telemetry']>): TelemetryConfig {
  const telemetry: TelemetryConfig = {};
  if (raw.metrics !== null) telemetry.metrics = raw.metrics;
  if (raw.otlp_endpoint !== null) telemetry.otlp_endpoint = raw.otlp_endpoint;
  if (Object.keys(raw.otlp_headers).length > 0) telemetry.otlp_headers = raw.otlp_headers;
  if (raw.service_name !== null) telemetry.service_name = raw.service_name;
  if (raw.access_log !== null) telemetry.access_log = raw.access_log;
  return telemetry;
}

function toStateStorage(raw: RawConfig['state_storage']): StateStorageConfig | null {
  if (raw === undefined || raw === null) return null;
  switch (raw.type) {
    case 'memory':
      return { type: 'memory', ttl_seconds: raw.ttl, max_entries: raw.max_entries ?? DEFAULT_MAX_ENTRIES };
    case 'sqlite':
      return { type: 'sqlite', ttl_seconds: raw.ttl, path: raw.path ?? DEFAULT_SQLITE_PATH };
    case 'postgres':
      return {
        type: 'postgres',
        ttl_seconds: raw.ttl,
        connection_string: raw.connection_string as string,
        pool_size: raw.pool_size ?? DEFAULT_POOL_SIZE,
      };
    case 'redis': {
      const redis: StateStorageConfig = {
        type: 'redis',
        ttl_seconds: raw.ttl,
        connection_string: raw.connection_string as string,
      };
      if (raw.key_prefix !== null) redis.key_prefix = raw.key_prefix;
      if (raw.cluster) redis.cluster = true;
      if (raw.redis_options !== null) redis.redis_options = raw.redis_options;
      return redis;
    }
  }
}

/** Adds the retention settings the config sets (absent ones stay absent: defaults apply). */
function withRetention(
  storage: StateStorageConfig | null,
  raw: RawConfig['state_storage'],
): StateStorageConfig | null {
  if (storage === null || raw === undefined || raw === null) return storage;
  if (raw.prune_interval !== null) storage.prune_interval_seconds = raw.prune_interval;
  if (raw.stale_turn_after !== null) storage.stale_turn_after_seconds = raw.stale_turn_after;
  return storage;
}

/** `['model_providers', 2, 'base_url']` -> `model_providers[2].base_url`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_][\w-]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}
