// The `auth` section: `auth: none`, or a list of API keys. A key is given as `key: $VAR` (hashed
// here, so the plaintext goes no further than this function) or as `sha256: <hex>` (so it never
// sits in the file at all). Messages never repeat a key.

import { createHash } from 'node:crypto';
import type { ApiKeyConfig, AuthConfig } from './types.ts';

export interface AuthProblem {
  /** Relative to `auth`. */
  path: (string | number)[];
  message: string;
}

export const AUTH_KEYS = ['api_keys'] as const;
export const API_KEY_KEYS = ['key', 'sha256', 'tenant', 'name', 'models', 'requests_per_minute', 'tokens_per_minute'] as const;

/** Shortest plaintext key accepted: anything shorter is guessable. */
export const MIN_KEY_LENGTH = 16;
const TENANT = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;
const SHA256 = /^[0-9a-fA-F]{64}$/;

export function sha256Hex(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** `undefined`/`null` is "no auth section"; returns the parsed section or the problems found. */
export function parseAuth(input: unknown): { value: AuthConfig | undefined } | { problems: AuthProblem[] } {
  if (input === undefined || input === null) return { value: undefined };
  if (input === 'none') return { value: { mode: 'none' } };
  const shape = 'must be `none` (no authentication, acknowledged) or a mapping with `api_keys`';
  if (!isObject(input)) return { problems: [{ path: [], message: shape }] };
  const problems: AuthProblem[] = [];
  for (const key of Object.keys(input)) {
    if (!(AUTH_KEYS as readonly string[]).includes(key)) problems.push({ path: [key], message: `unknown key; expected one of: ${AUTH_KEYS.join(', ')}` });
  }
  const list = input.api_keys;
  if (!Array.isArray(list) || list.length === 0) {
    problems.push({ path: ['api_keys'], message: 'must list at least one key (`- key: $PARLEY_KEY_A` with a `tenant`), or write `auth: none`' });
    return { problems };
  }
  const keys: ApiKeyConfig[] = [];
  const seen = new Map<string, number>();
  list.forEach((raw, index) => {
    const at = (...rest: (string | number)[]) => ['api_keys', index, ...rest];
    if (!isObject(raw)) {
      problems.push({ path: at(), message: 'must be a mapping with `key` (or `sha256`) and `tenant`' });
      return;
    }
    const before = problems.length;
    for (const key of Object.keys(raw)) {
      if (!(API_KEY_KEYS as readonly string[]).includes(key)) problems.push({ path: at(key), message: `unknown key; expected one of: ${API_KEY_KEYS.join(', ')}` });
    }
    let digest: string | null = null;
    const hasKey = raw.key !== undefined && raw.key !== null && raw.key !== '';
    const hasHash = raw.sha256 !== undefined && raw.sha256 !== null && raw.sha256 !== '';
    if (hasKey === hasHash) {
      problems.push({ path: at(), message: 'needs exactly one of `key` (e.g. `key: $PARLEY_KEY_A`) or `sha256` (the hex SHA-256 of the key)' });
    } else if (hasKey) {
      const key = typeof raw.key === 'number' ? String(raw.key) : raw.key;
      if (typeof key !== 'string') problems.push({ path: at('key'), message: 'must be a string' });
      else if (key.length < MIN_KEY_LENGTH) problems.push({ path: at('key'), message: `must be at least ${MIN_KEY_LENGTH} characters (use a random secret, e.g. \`openssl rand -hex 32\`)` });
      else if (key.trim() !== key) problems.push({ path: at('key'), message: 'must not start or end with spaces' });
      else digest = sha256Hex(key);
    } else if (typeof raw.sha256 !== 'string' || !SHA256.test(raw.sha256)) {
      problems.push({ path: at('sha256'), message: 'must be 64 hex digits (`printf %s "$KEY" | sha256sum`)' });
    } else {
      digest = raw.sha256.toLowerCase();
    }
    const tenant = typeof raw.tenant === 'number' ? String(raw.tenant) : raw.tenant;
    if (tenant === undefined || tenant === null || tenant === '') problems.push({ path: at('tenant'), message: 'is required: who owns what this key creates' });
    else if (typeof tenant !== 'string' || !TENANT.test(tenant)) {
      problems.push({ path: at('tenant'), message: 'must be 1-128 letters, digits or . _ : @ - (starting with a letter or digit)' });
    }
    const name = raw.name === undefined || raw.name === null ? null : String(raw.name);
    let models: string[] | null = null;
    if (raw.models !== undefined && raw.models !== null) {
      const entries = typeof raw.models === 'string' ? [raw.models] : raw.models;
      if (!Array.isArray(entries) || entries.some((m) => typeof m !== 'string' || m.trim() === '')) {
        problems.push({ path: at('models'), message: 'must be a list of model names (aliases, "<provider>/<model id>" or bare ids)' });
      } else if (entries.length === 0) {
        problems.push({ path: at('models'), message: 'must name at least one model; leave it out to allow every model' });
      } else models = entries.map((m: string) => m.trim());
    }
    const perMinute = (field: 'requests_per_minute' | 'tokens_per_minute'): number | null => {
      const v = raw[field];
      if (v === undefined || v === null) return null;
      const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) {
        problems.push({ path: at(field), message: 'must be a whole number of at least 1' });
        return null;
      }
      return n;
    };
    const requests = perMinute('requests_per_minute');
    const tokens = perMinute('tokens_per_minute');
    if (digest !== null) {
      const first = seen.get(digest);
      if (first !== undefined) problems.push({ path: at(), message: `is the same key as auth.api_keys[${first}]; every key must be different` });
      else seen.set(digest, index);
    }
    if (problems.length > before || digest === null) return;
    keys.push({
      sha256: digest,
      tenant: tenant as string,
      name: name ?? `${tenant as string}#${index}`,
      models,
      requests_per_minute: requests,
      tokens_per_minute: tokens,
    });
  });
  if (problems.length > 0) return { problems };
  return { value: { mode: 'api_keys', api_keys: keys } };
}
