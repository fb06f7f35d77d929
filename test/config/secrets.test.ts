// ConfigError text and problems must never carry a secret: not an access key, not a password in a
// connection string, not any value substituted from the environment. Only names and paths.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultConfigFromEnv, parseConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/types.ts';

const SECRET = 'sk-TOPSECRET-1234';
const PASSWORD = 'hunter2-PASSWORD';

function errorText(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${error}`);
    return `${error.message}\n${JSON.stringify(error.problems)}`;
  }
  assert.fail('expected a ConfigError');
}

function assertNoSecrets(text: string): void {
  for (const secret of [SECRET, PASSWORD, 'TOPSECRET', 'hunter2']) {
    assert.ok(!text.includes(secret), `error text leaks "${secret}":\n${text}`);
  }
}

describe('no secrets in configuration errors', () => {
  const env = { KEY: SECRET, DB_PASSWORD: PASSWORD, URL: `https://user:${PASSWORD}@[bad` };

  it('when substituted values land in fields of the wrong type', () => {
    const text = errorText(() =>
      parseConfig(
        [
          'listen: { port: "$KEY" }',
          'state_storage: { type: memory, ttl: "$DB_PASSWORD", max_entries: "$KEY" }',
          'model_providers:',
          '  - model: "$KEY"',
          '    base_url: "$URL"',
          '    default: "$KEY"',
          '    api: "$KEY"',
          '    context_window: "$DB_PASSWORD"',
          '    headers: { Authorization: "Bearer $KEY\\n" }',
          'limits: { max_body_bytes: "$KEY" }',
        ].join('\n'),
        env,
      ),
    );
    assert.match(text, /listen\.port/);
    assert.match(text, /model_providers\[0\]\.base_url/);
    assertNoSecrets(text);
  });

  it('when literal secrets sit next to errors', () => {
    const text = errorText(() =>
      parseConfig(
        [
          'state_storage:',
          '  type: sqlite',
          `  connection_string: "postgresql://parley:${PASSWORD}@localhost/parley"`,
          'model_providers:',
          `  - { model: openai/a, access_key: ${SECRET}, name: ${SECRET} }`,
          `  - { model: openai/b, access_key: ${SECRET}, name: ${SECRET}, default: true, bogus: 1 }`,
          `  - { model: openai/c, access_key: ${SECRET}, default: true }`,
        ].join('\n'),
        env,
      ),
    );
    assert.match(text, /connection_string/);
    assert.match(text, /model_providers\[1\]\.name/);
    assertNoSecrets(text);
  });

  it('when a value is unset next to set ones', () => {
    const text = errorText(() =>
      parseConfig(
        'model_providers: [{ model: openai/a, access_key: "$KEY$MISSING", base_url: "$URL" }]',
        env,
      ),
    );
    assert.match(text, /MISSING is not set/);
    assertNoSecrets(text);
  });

  it('when a YAML syntax error is on a line holding a secret', () => {
    const text = errorText(() =>
      parseConfig(`model_providers:\n  - model: openai/a\n    access_key: [${SECRET}\n`, env),
    );
    assertNoSecrets(text);
  });

  it('when environment defaults are invalid', () => {
    const text = errorText(() =>
      defaultConfigFromEnv({ OPENAI_API_KEY: SECRET, OPENAI_BASE_URL: `ftp://${PASSWORD}` }),
    );
    assert.match(text, /OPENAI_BASE_URL/);
    assertNoSecrets(text);
  });
});
