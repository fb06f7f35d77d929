// Gateway API keys: who is calling (`Authorization: Bearer <key>` or `x-api-key: <key>`), which
// tenant that makes them, and which models they may call. Keys are compared as SHA-256 digests
// with timingSafeEqual against every configured key (no early exit), so neither the key nor its
// position in the list can be timed.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiKeyConfig, AuthConfig } from '../config/types.ts';
import { ConfigError } from '../config/types.ts';
import { ApiError } from '../protocol/errors.ts';
import type { ModelInfo, ModelRegistry, ResolvedModel } from '../providers/types.ts';
import { DEFAULT_TENANT } from '../store/types.ts';

/** `open`: no auth section (loopback only); `none`: unauthenticated on purpose; `api_keys`: keys required. */
export type AuthMode = 'open' | 'none' | 'api_keys';

interface AllowedModels {
  routes: Set<string>;
  /** Providers whose every model is allowed (`openai/*`). */
  providers: Set<string>;
  /** What GET /v1/models shows this key. */
  listed: { id: string; provider: string }[];
}

const LOOPBACK_V4 = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || LOOPBACK_V4.test(h) || h === '::ffff:127.0.0.1';
}

export class ApiKeys {
  readonly mode: AuthMode;
  readonly keys: readonly ApiKeyConfig[];
  readonly #digests: Buffer[];
  readonly #allowed = new Map<string, AllowedModels>();

  constructor(auth: AuthConfig | undefined, models: ModelRegistry) {
    this.mode = auth === undefined ? 'open' : auth.mode;
    this.keys = auth?.mode === 'api_keys' ? auth.api_keys : [];
    this.#digests = this.keys.map((k) => Buffer.from(k.sha256, 'hex'));
    const problems: { path: string; message: string }[] = [];
    this.keys.forEach((key, i) => {
      if (key.models === null) return;
      const allowed: AllowedModels = { routes: new Set(), providers: new Set(), listed: [] };
      const infos = models.list();
      key.models.forEach((name, j) => {
        let resolved: ResolvedModel;
        try {
          resolved = models.resolve(name);
        } catch {
          problems.push({ path: `auth.api_keys[${i}].models[${j}]`, message: `names no configured model; configured: ${infos.map((m) => m.id).join(', ')}` });
          return;
        }
        if (resolved.modelId === '*') allowed.providers.add(resolved.provider);
        else allowed.routes.add(resolved.route);
        const info = infos.find((m) => m.id === name) ?? infos.find((m) => !m.wildcard && m.route === resolved.route);
        const id = info?.id ?? name;
        if (!allowed.listed.some((l) => l.id === id)) allowed.listed.push({ id, provider: resolved.provider });
      });
      this.#allowed.set(key.sha256, allowed);
    });
    if (problems.length > 0) throw new ConfigError(problems);
  }

  get required(): boolean {
    return this.mode === 'api_keys';
  }

  /** The key presented with the request, or the 401 to answer. Only called when keys are required. */
  authenticate(headers: Record<string, string | string[] | undefined>): ApiKeyConfig | ApiError {
    const presented = presentedKey(headers);
    if (presented === null) return missingKey();
    const digest = createHash('sha256').update(presented, 'utf8').digest();
    let found = -1;
    for (let i = 0; i < this.#digests.length; i++) {
      // Every key is compared, matched or not.
      if (timingSafeEqual(digest, this.#digests[i]) && found === -1) found = i;
    }
    return found === -1 ? wrongKey() : this.keys[found];
  }

  /** The tenant a request acts for. */
  tenantOf(key: ApiKeyConfig | null): string {
    return key?.tenant ?? DEFAULT_TENANT;
  }

  /** Null when `key` may call `model`; else the 403 to answer. */
  checkModel(key: ApiKeyConfig | null, requested: string, model: ResolvedModel): ApiError | null {
    if (key === null) return null;
    const allowed = this.#allowed.get(key.sha256);
    if (!allowed || allowed.routes.has(model.route) || allowed.providers.has(model.provider)) return null;
    return new ApiError(
      403,
      'invalid_request_error',
      `This API key is not allowed to use the model '${requested}'. Models it may use: ${allowed.listed.map((l) => l.id).join(', ')}.`,
      { param: 'model', code: 'model_not_allowed' },
    );
  }

  /** What GET /v1/models lists for this key. */
  visibleModels(key: ApiKeyConfig | null, all: ModelInfo[]): { id: string; provider: string }[] {
    const allowed = key === null ? undefined : this.#allowed.get(key.sha256);
    if (!allowed) return all.map((m) => ({ id: m.id, provider: m.provider }));
    return allowed.listed;
  }
}

/** `Authorization: Bearer <key>` first, else `x-api-key`. */
function presentedKey(headers: Record<string, string | string[] | undefined>): string | null {
  const authorization = headers.authorization;
  if (typeof authorization === 'string' && authorization !== '') {
    const match = /^Bearer\s+(\S.*)$/i.exec(authorization.trim());
    return match ? match[1].trim() : '';
  }
  const apiKey = headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey.trim() !== '') return apiKey.trim();
  return null;
}

function missingKey(): ApiError {
  return new ApiError(
    401,
    'invalid_request_error',
    "You didn't provide an API key. Send it as 'Authorization: Bearer <your key>' or in an x-api-key header.",
    { code: 'invalid_api_key', headers: { 'www-authenticate': 'Bearer realm="parley"' } },
  );
}

function wrongKey(): ApiError {
  return new ApiError(401, 'invalid_request_error', 'Incorrect API key provided. Check the key this gateway gave you.', {
    code: 'invalid_api_key',
    headers: { 'www-authenticate': 'Bearer realm="parley", error="invalid_token"' },
  });
}
