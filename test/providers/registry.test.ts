// The model registry with every provider type: startup checks that name the config path, the
// call policy built from timeout / retries / fallbacks, and config `options` reaching the provider.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../src/config/types.ts';
import { parseRequestParams } from './params.ts';
import { createModelRegistry, DEFAULT_POLICY } from '../../src/providers/registry.ts';
import { provider } from '../helpers/harness.ts';

function problems(run: () => unknown): { path: string; message: string }[] {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('model registry', () => {
  it('builds every provider type with its providerOptions key', () => {
    const registry = createModelRegistry([
      provider('openai/gpt-4o', { default: true }),
      provider('anthropic/claude-sonnet-4-5'),
      provider('google/gemini-2.5-flash'),
      provider('azure/prod', { resource_name: 'my-res' }),
      provider('bedrock/amazon.nova-pro-v1:0', { region: 'us-east-1', access_key: null }),
      provider('mistral/mistral-large-latest'),
      provider('deepseek/deepseek-chat'),
      provider('groq/llama-3.3-70b-versatile'),
      provider('xai/grok-4'),
      provider('together/meta-llama', { base_url: 'http://127.0.0.1:9/v1' }),
    ]);
    const namespaces = registry.list().map((m) => [m.route, registry.resolve(m.route).namespace]);
    assert.deepEqual(namespaces, [
      ['openai/gpt-4o', 'openai'],
      ['anthropic/claude-sonnet-4-5', 'anthropic'],
      ['google/gemini-2.5-flash', 'google'],
      ['azure/prod', 'azure'],
      ['bedrock/amazon.nova-pro-v1:0', 'bedrock'],
      ['mistral/mistral-large-latest', 'mistral'],
      ['deepseek/deepseek-chat', 'deepseek'],
      ['groq/llama-3.3-70b-versatile', 'groq'],
      ['xai/grok-4', 'xai'],
      ['together/meta-llama', 'together'],
    ]);
    assert.equal(registry.list().find((m) => m.provider === 'azure')?.endpoint, 'https://my-res.openai.azure.com/openai');
  });

  it('names the config path of every setting a provider is missing or cannot use', () => {
    const saved = { region: process.env.AWS_REGION, azure: process.env.AZURE_RESOURCE_NAME };
    delete process.env.AWS_REGION;
    delete process.env.AZURE_RESOURCE_NAME;
    try {
      const found = problems(() =>
        createModelRegistry([
          provider('azure/prod'),
          provider('bedrock/nova', { aws: { access_key_id: 'a', secret_access_key: 'b', session_token: null } }),
          provider('cohere/command-r'),
        ]),
      );
      assert.deepEqual(
        found.map((p) => p.path),
        ['model_providers[0].resource_name', 'model_providers[1].region', 'model_providers[1].aws', 'model_providers[2].model'],
      );
      assert.match(found[2].message, /either aws credentials .* or access_key/);
      assert.match(found[3].message, /supported: openai, anthropic, google, azure, bedrock, mistral, deepseek, groq, xai, or any OpenAI-compatible server given a base_url/);
    } finally {
      if (saved.region !== undefined) process.env.AWS_REGION = saved.region;
      if (saved.azure !== undefined) process.env.AZURE_RESOURCE_NAME = saved.azure;
    }
  });

  it('checks that fallbacks name other configured models', () => {
    const found = problems(() =>
      createModelRegistry([
        provider('openai/a', { fallbacks: ['b-alias', 'nope'] }),
        provider('anthropic/b', { name: 'b-alias', fallbacks: ['b-alias'] }),
      ]),
    );
    assert.deepEqual(
      found.map((p) => [p.path, p.message.split(';')[0]]),
      [
        ['model_providers[0].fallbacks[1]', 'names no configured model'],
        ['model_providers[1].fallbacks[0]', 'names this entry itself'],
      ],
    );
  });

  it('turns timeout, retries and fallbacks into the call policy, with defaults', () => {
    const registry = createModelRegistry([
      provider('openai/a', { timeout: { connect_ms: 1000, idle_ms: null, total_ms: 5000 }, retries: { max: 3, backoff_ms: 50 }, fallbacks: ['anthropic/b'] }),
      provider('anthropic/b'),
    ]);
    assert.deepEqual(registry.resolve('openai/a').policy, { connectMs: 1000, idleMs: DEFAULT_POLICY.idleMs, totalMs: 5000, maxRetries: 3, backoffMs: 50, fallbacks: ['anthropic/b'] });
    assert.deepEqual(registry.resolve('b').policy, { ...DEFAULT_POLICY, fallbacks: [] });
  });

  it('sends config options under the provider key, the request winning where both set one', () => {
    const registry = createModelRegistry([
      provider('anthropic/claude', { options: { thinking: { type: 'enabled', budgetTokens: 1024 }, disableParallelToolUse: false } }),
    ]);
    const params = parseRequestParams({ tools: [{ type: 'function', name: 'f', parameters: { type: 'object', properties: {} } }], parallel_tool_calls: false });
    assert.deepEqual(registry.resolve('claude').providerOptions(params), {
      anthropic: { thinking: { type: 'enabled', budgetTokens: 1024 }, disableParallelToolUse: true },
    });
  });
});
