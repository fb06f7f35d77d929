// Starts a real gateway on a free loopback port in front of a real fake upstream, and hands the
// test an official `openai` SDK client pointed at it. Nothing of Parley's own API is mocked.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import type { ParleyConfig, ProviderConfig, StateStorageConfig } from '../../src/config/types.ts';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway.ts';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream/server.ts';

export interface Harness {
  gateway: Gateway;
  upstream: FakeUpstream;
  client: OpenAI;
  /** Base URL of the gateway, e.g. http://127.0.0.1:43121 */
  url: string;
  /** Raw HTTP to the gateway, for what the SDK would not send. */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  /** Stops the gateway only (the upstream and temp dir stay), e.g. to restart on the same SQLite file. */
  stopGateway(): Promise<void>;
  /** Starts a new gateway on the same store config and upstream. */
  restartGateway(): Promise<void>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** `memory`, `sqlite` (a fresh temp file), a full config, or null for stateless. Default sqlite. */
  store?: 'memory' | 'sqlite' | StateStorageConfig | null;
  providers?: (upstreamUrl: string) => ProviderConfig[];
  maxBodyBytes?: number;
  /** More config (auth, telemetry, limits beyond max_body_bytes), merged over the defaults. */
  config?: Partial<ParleyConfig>;
  /** Gateway logger (default silent), e.g. `{ level: 'info', stream }` to capture log lines. */
  logger?: GatewayOptions['logger'];
}

export function provider(model: string, extra: Partial<ProviderConfig> = {}): ProviderConfig {
  const slash = model.indexOf('/');
  return {
    model,
    provider: model.slice(0, slash),
    model_id: model.slice(slash + 1),
    name: null,
    access_key: 'test-key',
    base_url: null,
    default: false,
    api: null,
    headers: {},
    context_window: null,
    ...extra,
  };
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const upstream = await startFakeUpstream();
  let tempDir: string | null = null;
  let storage: StateStorageConfig | null;
  const store = options.store === undefined ? 'sqlite' : options.store;
  if (store === 'sqlite') {
    tempDir = await mkdtemp(join(tmpdir(), 'parley-test-'));
    storage = { type: 'sqlite', path: join(tempDir, 'parley.db'), ttl_seconds: null };
  } else if (store === 'memory') {
    storage = { type: 'memory', max_entries: 10_000, ttl_seconds: null };
  } else {
    storage = store;
  }
  const config: ParleyConfig = {
    listen: { host: '127.0.0.1', port: 0 },
    state_storage: storage,
    model_providers: options.providers
      ? options.providers(upstream.url)
      : [provider('openai/gpt-4o-mini', { base_url: upstream.url, default: true })],
    limits: { max_body_bytes: options.maxBodyBytes ?? 1024 * 1024 },
    ...options.config,
  };
  const gatewayOptions: GatewayOptions = options.logger === undefined ? {} : { logger: options.logger };

  let gateway = await createGateway(config, gatewayOptions);
  let url = await gateway.listen({ port: 0 });
  const makeClient = () => new OpenAI({ baseURL: `${url}/v1`, apiKey: 'client-key', maxRetries: 0 });

  const harness: Harness = {
    gateway,
    upstream,
    client: makeClient(),
    url,
    post: (path, body, headers = {}) =>
      fetch(`${harness.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      }),
    async stopGateway() {
      await harness.gateway.close();
    },
    async restartGateway() {
      gateway = await createGateway(config, gatewayOptions);
      url = await gateway.listen({ port: 0 });
      harness.gateway = gateway;
      harness.url = url;
      harness.client = makeClient();
    },
    async close() {
      await harness.gateway.close();
      await upstream.close();
      if (tempDir) await rm(tempDir, { recursive: true, force: true });
    },
  };
  return harness;
}

/** Reads an SSE body into its events (the `data:` JSON of each), asserting the `[DONE]` terminator. */
export async function readSse(
  response: Response,
): Promise<{ events: Record<string, unknown>[]; done: boolean; raw: string }> {
  const raw = await response.text();
  const events: Record<string, unknown>[] = [];
  let done = false;
  for (const block of raw.split('\n\n')) {
    const data = block
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => l.slice(6))
      .join('\n');
    if (!data) continue;
    if (data === '[DONE]') done = true;
    else events.push(JSON.parse(data) as Record<string, unknown>);
  }
  return { events, done, raw };
}

/** The texts of the messages the upstream received in its last Chat Completions request, in order. */
export function upstreamTexts(upstream: FakeUpstream): string[] {
  const body = upstream.lastRequest()?.body as { messages: { content: string | { text: string }[] | null }[] };
  return body.messages.map((m) =>
    typeof m.content === 'string' ? m.content : (m.content ?? []).map((c) => c.text).join(''),
  );
}
