// Provider-specific settings in parley.yaml: api_version, resource_name, region, aws, options,
// timeout, retries, fallbacks. Each appears in the validated config only when set.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/types.ts';
import type { ConfigProblem } from '../../src/config/types.ts';

const yaml = (lines: string[]) => `${lines.join('\n')}\n`;

function problemsOf(text: string, env: Record<string, string> = {}): ConfigProblem[] {
  try {
    parseConfig(text, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    return error.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('provider settings', () => {
  it('reads every provider-specific setting', () => {
    const config = parseConfig(
      yaml([
        'model_providers:',
        '  - model: azure/gpt4o-prod',
        '    resource_name: my-openai',
        '    api_version: 2024-10-21',
        '    timeout: { connect_ms: 5000, idle_ms: "30000", total_ms: 120000 }',
        '    retries: { max: 2, backoff_ms: 250 }',
        '    fallbacks: [anthropic/claude-sonnet-4-5, local]',
        '    options: { reasoningSummary: auto }',
        '  - model: bedrock/anthropic.claude-3-5-sonnet-20241022-v2:0',
        '    region: eu-west-1',
        '    aws: { access_key_id: $AK, secret_access_key: $SK, session_token: "" }',
        '  - model: anthropic/claude-sonnet-4-5',
        '    options:',
        '      thinking: { type: enabled, budgetTokens: 2048 }',
        '  - model: vllm/qwen',
        '    base_url: http://127.0.0.1:8000/v1',
        '    name: local',
      ]),
      { AK: 'AKIAEXAMPLE', SK: 'secret' },
    );
    const [azure, bedrock, anthropic, local] = config.model_providers;
    assert.equal(azure.resource_name, 'my-openai');
    assert.equal(azure.api_version, '2024-10-21');
    assert.deepEqual(azure.timeout, { connect_ms: 5000, idle_ms: 30000, total_ms: 120000 });
    assert.deepEqual(azure.retries, { max: 2, backoff_ms: 250 });
    assert.deepEqual(azure.fallbacks, ['anthropic/claude-sonnet-4-5', 'local']);
    assert.deepEqual(azure.options, { reasoningSummary: 'auto' });
    assert.equal(bedrock.model_id, 'anthropic.claude-3-5-sonnet-20241022-v2:0');
    assert.equal(bedrock.region, 'eu-west-1');
    assert.deepEqual(bedrock.aws, { access_key_id: 'AKIAEXAMPLE', secret_access_key: 'secret', session_token: null });
    assert.deepEqual(anthropic.options, { thinking: { type: 'enabled', budgetTokens: 2048 } });
    assert.equal('timeout' in local, false, 'unset settings are absent, not null');
    assert.equal('fallbacks' in local, false);
  });

  it('fills defaults inside a partly written timeout or retries block', () => {
    const [p] = parseConfig('model_providers: [{ model: openai/a, timeout: { idle_ms: 10 }, retries: { max: 1 } }]', {}).model_providers;
    assert.deepEqual(p.timeout, { connect_ms: null, idle_ms: 10, total_ms: null });
    assert.deepEqual(p.retries, { max: 1, backoff_ms: 500 });
  });

  it('takes a single fallback written as a string', () => {
    const [p] = parseConfig('model_providers: [{ model: openai/a, fallbacks: openai/b }]', {}).model_providers;
    assert.deepEqual(p.fallbacks, ['openai/b']);
  });

  it('names the path of every bad setting', () => {
    const problems = problemsOf(
      yaml([
        'model_providers:',
        '  - model: azure/x',
        '    resource_name: https://x.openai.azure.com',
        '    timeout: { connect_ms: 0, idle: 5 }',
        '    retries: { max: 50 }',
        '    fallbacks: [1, ""]',
        '    options: [a]',
        '    aws: { access_key_id: a }',
      ]),
    );
    const byPath = Object.fromEntries(problems.map((p) => [p.path, p.message]));
    assert.match(byPath['model_providers[0].resource_name'], /resource name alone/);
    assert.match(byPath['model_providers[0].timeout.connect_ms'], /between 1 and/);
    assert.match(byPath['model_providers[0].timeout.idle'], /did you mean "idle_ms"/);
    assert.match(byPath['model_providers[0].retries.max'], /between 0 and 10/);
    assert.match(byPath['model_providers[0].fallbacks'], /model name/);
    assert.match(byPath['model_providers[0].options'], /must be a mapping/);
    assert.match(byPath['model_providers[0].aws.secret_access_key'], /is required/);
  });

  it('suggests the right key for common misspellings', () => {
    const problems = problemsOf('model_providers: [{ model: azure/x, apiVersion: v1, retry: {}, fallback: [a] }]');
    const byPath = Object.fromEntries(problems.map((p) => [p.path, p.message]));
    assert.match(byPath['model_providers[0].apiVersion'], /did you mean "api_version"/);
    assert.match(byPath['model_providers[0].retry'], /did you mean "retries"/);
    assert.match(byPath['model_providers[0].fallback'], /did you mean "fallbacks"/);
  });

  it('never repeats an AWS secret in an error', () => {
    const problems = problemsOf('model_providers: [{ model: bedrock/x, aws: { access_key_id: AKIA, secret_access_key: [TOPSECRET] } }]');
    assert.ok(!JSON.stringify(problems).includes('TOPSECRET'));
  });
});
