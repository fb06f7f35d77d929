// Keeping secrets out of everything the gateway writes: logs, error bodies, stored errors. The
// scrubber knows every secret the config holds (provider keys, AWS credentials, database and
// Redis passwords, secret-looking provider headers, OTLP headers) and also masks what looks like
// one anywhere: credentials in URLs, `Bearer …`/`Basic …` values, `?api_key=…` parameters.
// Gateway API keys never reach it: the config keeps only their SHA-256, and request headers are
// redacted by path before anything else sees them.

import type { ParleyConfig } from '../config/types.ts';

export const REDACTED = '[REDACTED]';

/** Shorter strings are not treated as secrets (they would mask ordinary words). */
const MIN_SECRET_LENGTH = 6;

const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/:@]*):([^\s/@]*)@/gi;
const AUTH_SCHEMES = /\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=:-]{6,}/g;
const SECRET_PARAMS = /([?&;](?:api[_-]?key|apikey|key|token|access[_-]?token|password|passwd|secret|sig|signature|x-api-key)=)[^&\s"'#]+/gi;

/** Error properties that carry prompts, headers or whole request configs: never logged. */
const DROPPED_KEYS = new Set(['requestBodyValues', 'requestHeaders', 'responseHeaders', 'headers', 'config', 'request', 'socket', 'agent']);
const SECRET_KEY_NAME = /pass|secret|token|api[_-]?key|authorization|credential|private/i;

export class SecretScrubber {
  readonly #pattern: RegExp | null;

  constructor(secrets: Iterable<string>) {
    const unique = new Set<string>();
    for (const s of secrets) {
      if (typeof s !== 'string' || s.length < MIN_SECRET_LENGTH) continue;
      unique.add(s);
      // The forms a secret takes inside URLs and JSON too.
      const encoded = encodeURIComponent(s);
      if (encoded !== s) unique.add(encoded);
      const json = JSON.stringify(s).slice(1, -1);
      if (json !== s) unique.add(json);
    }
    // Longest first, so a secret containing another is masked whole.
    const sorted = [...unique].sort((a, b) => b.length - a.length);
    this.#pattern = sorted.length === 0 ? null : new RegExp(sorted.map(escapeRegExp).join('|'), 'g');
  }

  scrub(text: string): string {
    let out = this.#pattern ? text.replace(this.#pattern, REDACTED) : text;
    if (out.includes('://')) {
      // Already masked (`:***@`, as the stores write it) stays as it is.
      out = out.replace(URL_CREDENTIALS, (match, scheme: string, user: string, password: string) =>
        password === '' || /^\*+$/.test(password) || password === REDACTED ? match : `${scheme}${user}:${REDACTED}@`,
      );
    }
    if (out.includes(' ')) out = out.replace(AUTH_SCHEMES, `$1 ${REDACTED}`);
    if (out.includes('=')) out = out.replace(SECRET_PARAMS, `$1${REDACTED}`);
    return out;
  }

  /**
   * A copy of `value` with every string scrubbed, errors turned into plain objects (type,
   * message, stack, code, status, cause) and keys that hold headers, prompts or secrets dropped.
   */
  scrubDeep(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
    if (typeof value === 'string') return this.scrub(value);
    if (value === null || typeof value !== 'object') return value;
    if (seen.has(value)) return '[Circular]';
    if (depth > 8) return '[Object]';
    seen.add(value);
    if (value instanceof Error) return this.#error(value, depth, seen);
    if (Array.isArray(value)) return value.slice(0, 100).map((v) => this.scrubDeep(v, depth + 1, seen));
    if (Buffer.isBuffer(value)) return `[Buffer ${value.length} bytes]`;
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      if (DROPPED_KEYS.has(key)) continue;
      out[key] = typeof v === 'string' && SECRET_KEY_NAME.test(key) ? REDACTED : this.scrubDeep(v, depth + 1, seen);
    }
    return out;
  }

  #error(error: Error, depth: number, seen: WeakSet<object>): Record<string, unknown> {
    const out: Record<string, unknown> = { type: error.name, message: this.scrub(error.message) };
    if (error.stack) out.stack = this.scrub(error.stack);
    for (const [key, v] of Object.entries(error)) {
      if (DROPPED_KEYS.has(key) || key in out) continue;
      if (key === 'responseBody' && typeof v === 'string') out[key] = this.scrub(v.length > 2000 ? `${v.slice(0, 2000)}…` : v);
      else out[key] = typeof v === 'string' && SECRET_KEY_NAME.test(key) ? REDACTED : this.scrubDeep(v, depth + 1, seen);
    }
    if (error.cause !== undefined) out.cause = this.scrubDeep(error.cause, depth + 1, seen);
    return out;
  }

  /**
   * Scrubs an error in place (message, stack, response body, provider data), for errors that go
   * on to become a client's error message or a stored response's error.
   */
  scrubError(error: unknown): void {
    if (error === null || typeof error !== 'object') return;
    const e = error as Record<string, unknown>;
    for (const key of ['message', 'stack', 'responseBody', 'url']) {
      if (typeof e[key] === 'string') {
        try {
          e[key] = this.scrub(e[key] as string);
        } catch {
          // a read-only property: leave it
        }
      }
    }
    if (e.data !== undefined && typeof e.data === 'object') {
      try {
        e.data = this.scrubDeep(e.data);
      } catch {
        // read-only
      }
    }
    if (e.error !== undefined && typeof e.error === 'object') this.scrubError(e.error);
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Every secret the config holds. */
export function secretsOf(config: ParleyConfig): string[] {
  const secrets: string[] = [];
  for (const p of config.model_providers) {
    if (p.access_key) secrets.push(p.access_key);
    if (p.aws) {
      secrets.push(p.aws.secret_access_key);
      if (p.aws.session_token) secrets.push(p.aws.session_token);
    }
    for (const [name, value] of Object.entries(p.headers)) {
      if (SECRET_KEY_NAME.test(name) || /^(x-)?(api|auth)/i.test(name)) secrets.push(value.replace(/^(Bearer|Basic)\s+/i, ''));
    }
  }
  const storage = config.state_storage;
  if (storage && (storage.type === 'postgres' || storage.type === 'redis')) {
    for (const part of storage.connection_string.split(',')) {
      const password = passwordOf(part);
      if (password) secrets.push(password);
    }
    if (storage.type === 'redis' && storage.redis_options) collectSecretValues(storage.redis_options, secrets, 0);
  }
  for (const value of Object.values(config.telemetry?.otlp_headers ?? {})) secrets.push(value.replace(/^(Bearer|Basic)\s+/i, ''));
  return secrets;
}

function passwordOf(connection: string): string | null {
  try {
    const url = new URL(connection.trim());
    if (!url.password) return null;
    try {
      return decodeURIComponent(url.password);
    } catch {
      return url.password;
    }
  } catch {
    const match = /:\/\/[^:/@\s]*:([^@\s]*)@/.exec(connection);
    return match ? match[1] : null;
  }
}

function collectSecretValues(value: unknown, out: string[], depth: number): void {
  if (depth > 6 || value === null || typeof value !== 'object') return;
  for (const [key, v] of Object.entries(value)) {
    if (typeof v === 'string' && SECRET_KEY_NAME.test(key)) out.push(v);
    else collectSecretValues(v, out, depth + 1);
  }
}

/** Header paths pino removes from logged requests before anything else sees them. */
export const REDACTED_LOG_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
];

/**
 * Pino options that keep secrets out of every log line: header paths redacted, every object
 * (errors included) scrubbed and stripped of prompt/header-carrying properties, messages scrubbed.
 */
export function loggerOptions(scrubber: SecretScrubber, base: Record<string, unknown>): Record<string, unknown> {
  return {
    ...base,
    redact: { paths: REDACTED_LOG_PATHS, censor: REDACTED },
    serializers: {
      err: (error: unknown) => scrubber.scrubDeep(error),
      error: (error: unknown) => scrubber.scrubDeep(error),
    },
    formatters: {
      log: (object: Record<string, unknown>) => scrubber.scrubDeep(object) as Record<string, unknown>,
    },
    hooks: {
      logMethod(this: unknown, args: unknown[], method: (...a: unknown[]) => void) {
        method.apply(this, args.map((a) => (typeof a === 'string' ? scrubber.scrub(a) : a)));
      },
    },
  };
}
