// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are config text whose ${VAR} references are under test
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/types.ts';
import type { ConfigProblem } from '../../src/config/types.ts';

const yaml = (lines: string[]) => `${lines.join('\n')}\n`;

function problemsOf(text: string, env: Record<string, string | undefined> = {}): ConfigProblem[] {
  try {
    parseConfig(text, env, 'parley.yaml');
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${error}`);
    assert.equal(error.file, 'parley.yaml');
    return error.problems;
  }
  assert.fail('expected parseConfig to throw');
}

function problemAt(problems: ConfigProblem[], path: string): ConfigProblem {
  const found = problems.find((p) => p.path === path);
  assert.ok(found, `no problem at ${path}; got ${JSON.stringify(problems)}`);
  return found;
}

describe('parseConfig: defaults', () => {
  it('turns an empty file into the defaults, stateless, with no providers', () => {
    assert.deepEqual(parseConfig('', {}), {
      listen: { host: '127.0.0.1', port: 12000 },
      state_storage: null,
      model_providers: [],
      limits: { max_body_bytes: 10 * 1024 * 1024 },
    });
  });

  it('treats an explicit empty state_storage as stateless too', () => {
    assert.equal(parseConfig('state_storage:\n', {}).state_storage, null);
  });

  it('fills in defaults for every storage type', () => {
    assert.deepEqual(parseConfig('state_storage: { type: sqlite }', {}).state_storage, {
      type: 'sqlite',
      ttl_seconds: null,
      path: './data/parley.db',
    });
    assert.deepEqual(parseConfig('state_storage: { type: memory, ttl: 12h }', {}).state_storage, {
      type: 'memory',
      ttl_seconds: 12 * 3600,
      max_entries: 10000,
    });
    assert.deepEqual(
      parseConfig('state_storage: { type: postgres, connection_string: "postgres://u@h/db", ttl: 30d }', {})
        .state_storage,
      { type: 'postgres', ttl_seconds: 30 * 86400, connection_string: 'postgres://u@h/db', pool_size: 10 },
    );
    assert.deepEqual(
      parseConfig('state_storage: { type: redis, connection_string: "redis://localhost:6379", ttl: 90 }', {})
        .state_storage,
      { type: 'redis', ttl_seconds: 90, connection_string: 'redis://localhost:6379' },
    );
  });

  it('reads every provider field and splits provider / model id at the first slash', () => {
    const config = parseConfig(
      yaml([
        'model_providers:',
        '  - model: openrouter/meta-llama/llama-3.1-70b',
        '    access_key: k',
        '    base_url: https://openrouter.ai/api/v1',
        '    name: llama',
        '    api: chat',
        '    headers: { X-Title: parley, X-Version: 2 }',
        '    context_window: 131072',
      ]),
      {},
    );
    assert.deepEqual(config.model_providers, [
      {
        model: 'openrouter/meta-llama/llama-3.1-70b',
        provider: 'openrouter',
        model_id: 'meta-llama/llama-3.1-70b',
        name: 'llama',
        access_key: 'k',
        base_url: 'https://openrouter.ai/api/v1',
        default: true,
        api: 'chat',
        headers: { 'X-Title': 'parley', 'X-Version': '2' },
        context_window: 131072,
      },
    ]);
  });

  it('makes the first provider the default when none is marked', () => {
    const config = parseConfig('model_providers: [{ model: openai/a }, { model: openai/b }]', {});
    assert.deepEqual(
      config.model_providers.map((p) => p.default),
      [true, false],
    );
  });

  it('keeps the marked default', () => {
    const config = parseConfig(
      'model_providers: [{ model: openai/a }, { model: openai/b, default: true }]',
      {},
    );
    assert.deepEqual(
      config.model_providers.map((p) => p.default),
      [false, true],
    );
  });

  it('accepts a wildcard model id', () => {
    const [p] = parseConfig('model_providers: [{ model: "openai/*" }]', {}).model_providers;
    assert.equal(p.provider, 'openai');
    assert.equal(p.model_id, '*');
  });

  it('accepts postgres and redis (availability is decided elsewhere)', () => {
    assert.equal(
      parseConfig('state_storage: { type: redis, connection_string: "redis://x" }', {}).state_storage?.type,
      'redis',
    );
  });

  it('reads limits.max_body_bytes as bytes or a size string', () => {
    assert.equal(parseConfig('limits: { max_body_bytes: 2048 }', {}).limits.max_body_bytes, 2048);
    assert.equal(parseConfig('limits: { max_body_bytes: 1mb }', {}).limits.max_body_bytes, 1024 * 1024);
  });

  it('accepts ttl as a number of seconds or a duration string', () => {
    const ttl = (v: string) =>
      parseConfig(`state_storage: { type: memory, ttl: ${v} }`, {}).state_storage?.ttl_seconds;
    assert.equal(ttl('45s'), 45);
    assert.equal(ttl('90m'), 5400);
    assert.equal(ttl('600'), 600);
    assert.equal(ttl('"1h30m"'), 5400);
  });
});

describe('parseConfig: $VAR substitution', () => {
  it('substitutes all three forms in values', () => {
    const config = parseConfig(
      yaml([
        'listen:',
        '  host: ${HOST:-0.0.0.0}',
        '  port: $PORT',
        'state_storage:',
        '  type: postgres',
        '  connection_string: "postgresql://parley:${DB_PASSWORD}@localhost:5432/parley"',
        'model_providers:',
        '  - model: openai/gpt-4o',
        '    access_key: $OPENAI_API_KEY',
        '    headers:',
        '      Authorization: Bearer ${TOKEN}',
      ]),
      { PORT: '8080', DB_PASSWORD: 'pw', OPENAI_API_KEY: 'sk-1', TOKEN: 't' },
    );
    assert.deepEqual(config.listen, { host: '0.0.0.0', port: 8080 });
    assert.equal(
      config.state_storage?.type === 'postgres' && config.state_storage.connection_string,
      'postgresql://parley:pw@localhost:5432/parley',
    );
    assert.equal(config.model_providers[0].access_key, 'sk-1');
    assert.equal(config.model_providers[0].headers.Authorization, 'Bearer t');
  });

  it('keeps $$ as a literal dollar and leaves comments and keys alone', () => {
    const config = parseConfig(
      yaml([
        '# $NOT_A_VARIABLE in a comment is ignored',
        'model_providers:',
        '  - model: openai/gpt-4o   # $ALSO_IGNORED',
        '    access_key: "pa$$word"',
        '    headers:',
        '      $Header: x',
      ]),
      {},
    );
    assert.equal(config.model_providers[0].access_key, 'pa$word');
    assert.deepEqual(config.model_providers[0].headers, { $Header: 'x' });
  });

  it('does not re-parse substituted text as YAML', () => {
    const config = parseConfig('model_providers: [{ model: openai/a, access_key: "$KEY" }]', {
      KEY: 'x: [y # not yaml',
    });
    assert.equal(config.model_providers[0].access_key, 'x: [y # not yaml');
  });

  it('converts substituted numbers and booleans where the schema wants them', () => {
    const config = parseConfig(
      yaml([
        'model_providers:',
        '  - model: openai/a',
        '    default: $IS_DEFAULT',
        '    context_window: ${CTX:-8192}',
      ]),
      { IS_DEFAULT: 'true' },
    );
    assert.equal(config.model_providers[0].default, true);
    assert.equal(config.model_providers[0].context_window, 8192);
  });

  it('substitutes through YAML anchors once, for every alias', () => {
    const config = parseConfig(
      yaml([
        'model_providers:',
        '  - model: openai/a',
        '    access_key: &key $SHARED',
        '  - model: openai/b',
        '    access_key: *key',
      ]),
      { SHARED: 's' },
    );
    assert.deepEqual(
      config.model_providers.map((p) => p.access_key),
      ['s', 's'],
    );
  });

  it('names the variable, the line and the path of an unset variable', () => {
    const problems = problemsOf(
      yaml([
        'listen: { host: 127.0.0.1, port: 12000 }',
        'state_storage:',
        '  type: sqlite',
        'model_providers:',
        '  - model: anthropic/claude-sonnet-4-5',
        '    default: true',
        '  - model: openai/gpt-4o',
        '    access_key: $OPENAI_API_KEY',
      ]),
    );
    assert.equal(problems.length, 1);
    assert.equal(problems[0].path, 'model_providers[1].access_key');
    assert.match(problems[0].message, /^line 8: environment variable OPENAI_API_KEY is not set/);
  });

  it('reports every unset variable, each on its own line, including inside block scalars', () => {
    const problems = problemsOf(
      yaml([
        'listen:',
        '  host: ${HOST}', // line 2
        'model_providers:',
        '  - model: openai/a',
        '    access_key: ${A_KEY}', // line 5
        '    headers:',
        '      X-Note: >-',
        '        first line',
        '        uses $IN_BLOCK here', // line 9
        '  - model: openai/b',
        '    access_key: "$B_KEY and $C_KEY"', // line 11
      ]),
    );
    assert.deepEqual(
      problems.map((p) => [
        p.path,
        p.message.match(/^line (\d+): environment variable (\w+) is not set/)?.slice(1),
      ]),
      [
        ['listen.host', ['2', 'HOST']],
        ['model_providers[0].access_key', ['5', 'A_KEY']],
        ['model_providers[0].headers.X-Note', ['9', 'IN_BLOCK']],
        ['model_providers[1].access_key', ['11', 'B_KEY']],
        ['model_providers[1].access_key', ['11', 'C_KEY']],
      ],
    );
  });

  it('reports unset variables alongside schema problems elsewhere, without noise for the same value', () => {
    const problems = problemsOf(
      yaml(['model_providers:', '  - model: openai/a', '    base_url: $URL', '    api: chatty']),
    );
    assert.deepEqual(
      problems.map((p) => p.path),
      ['model_providers[0].base_url', 'model_providers[0].api'],
    );
  });

  it('reports a malformed reference with its line', () => {
    const [p] = problemsOf(yaml(['model_providers:', '  - model: openai/a', '    access_key: "${KEY"']));
    assert.equal(p.path, 'model_providers[0].access_key');
    assert.match(p.message, /^line 3: unterminated/);
  });
});

describe('parseConfig: validation problems', () => {
  it('collects every problem with its exact path, in file order', () => {
    const problems = problemsOf(
      yaml([
        'listen:',
        '  host: 127.0.0.1',
        '  port: 99999', // 3
        'state_storage:',
        '  type: postgres', // 5 (connection_string missing)
        '  pool_size: 0', // 6
        '  ttl: forever', // 7
        'model_providers:',
        '  - model: gpt-4o', // 9
        '  - model: openai/b',
        '    base_url: not a url', // 11
        '    context_window: 1.5', // 12
        '    default: yes', // 13
        '  - model: openai/c',
        '    base_url: ftp://example.com', // 15
        '    headers: [a]', // 16
        'limits: { max_body_bytes: lots }', // 17
      ]),
    );
    assert.deepEqual(
      problems.map((p) => p.path),
      [
        'listen.port',
        'state_storage.connection_string',
        'state_storage.pool_size',
        'state_storage.ttl',
        'model_providers[0].model',
        'model_providers[1].base_url',
        'model_providers[1].context_window',
        'model_providers[1].default',
        'model_providers[2].base_url',
        'model_providers[2].headers',
        'limits.max_body_bytes',
      ],
    );
    const at = (path: string) => problemAt(problems, path).message;
    assert.equal(at('listen.port'), 'line 3: must be between 0 and 65535');
    assert.match(at('state_storage.connection_string'), /^line 4: is required/);
    assert.equal(at('state_storage.pool_size'), 'line 6: must be between 1 and 10000');
    assert.match(at('state_storage.ttl'), /^line 7: must be a positive duration such as 30d, 12h, 90m, 45s/);
    assert.match(at('model_providers[0].model'), /^line 9: must be "<provider>\/<model id>"/);
    assert.match(at('model_providers[1].base_url'), /^line 11: is not a valid URL/);
    assert.match(at('model_providers[1].context_window'), /^line 12: must be a whole number/);
    assert.equal(at('model_providers[1].default'), 'line 13: must be true or false');
    assert.match(at('model_providers[2].base_url'), /^line 15: must use http:\/\/ or https:\/\//);
    assert.match(at('model_providers[2].headers'), /^line 16: must be a mapping of header name to value/);
    assert.match(at('limits.max_body_bytes'), /^line 17: must be a positive number of bytes/);
  });

  it('rejects more than one default, pointing at each extra one', () => {
    const problems = problemsOf(
      yaml([
        'model_providers:',
        '  - model: openai/a',
        '    default: true',
        '  - model: openai/b',
        '  - model: openai/c',
        '    default: true',
        '  - model: openai/d',
        '    default: true',
      ]),
    );
    assert.deepEqual(
      problems.map((p) => [p.path, p.message]),
      [
        [
          'model_providers[2].default',
          'line 6: only one provider can be the default, and model_providers[0] already is',
        ],
        [
          'model_providers[3].default',
          'line 8: only one provider can be the default, and model_providers[0] already is',
        ],
      ],
    );
  });

  it('rejects duplicate aliases', () => {
    const problems = problemsOf(
      yaml([
        'model_providers:',
        '  - { model: openai/a, name: fast }',
        '  - { model: openai/b, name: smart }',
        '  - { model: openai/c, name: fast }',
      ]),
    );
    assert.equal(problems.length, 1);
    assert.equal(problems[0].path, 'model_providers[2].name');
    assert.match(problems[0].message, /^line 4: the same alias is already used by model_providers\[0\]/);
  });

  it("rejects aliases that collide with another provider's model or model id", () => {
    const problems = problemsOf(
      yaml([
        'model_providers:',
        '  - { model: anthropic/claude-sonnet-4-5 }',
        '  - { model: openai/gpt-4o, name: claude-sonnet-4-5 }',
        '  - { model: openai/o3, name: openai/gpt-4o }',
        '  - { model: openai/gpt-4.1, name: gpt-4.1 }', // its own model id: harmless
      ]),
    );
    assert.deepEqual(
      problems.map((p) => p.path),
      ['model_providers[1].name', 'model_providers[2].name'],
    );
    assert.match(problems[0].message, /collides with the model id of model_providers\[0\]/);
    assert.match(problems[1].message, /collides with the model of model_providers\[1\]/);
  });

  it('rejects an alias on a wildcard model', () => {
    const [p] = problemsOf('model_providers: [{ model: "openai/*", name: anything }]');
    assert.equal(p.path, 'model_providers[0].name');
    assert.match(p.message, /wildcard/);
  });

  it('rejects unknown keys everywhere, with a did-you-mean hint when one is close', () => {
    const problems = problemsOf(
      yaml([
        'listen: { hots: 127.0.0.1 }',
        'providers: []',
        'state_storage: { type: sqlite, path: x.db, connection_string: "postgres://h/db" }',
        'model_providers:',
        '  - model: openai/a',
        '    api_key: k',
        '    baseURL: http://x',
        '    temperature: 0.2',
        'limts: {}',
      ]),
    );
    assert.deepEqual(
      problems.map((p) => [p.path, p.message]),
      [
        ['listen.hots', 'line 1: unknown key; did you mean "host"?'],
        ['providers', 'line 2: unknown key; did you mean "model_providers"?'],
        [
          'state_storage.connection_string',
          'line 3: is only used when type is postgres or redis (type here is sqlite); remove it',
        ],
        ['model_providers[0].api_key', 'line 6: unknown key; did you mean "access_key"?'],
        ['model_providers[0].baseURL', 'line 7: unknown key; did you mean "base_url"?'],
        [
          'model_providers[0].temperature',
          'line 8: unknown key; expected one of: model, access_key, base_url, name, default, api, headers, context_window, max_output_tokens, pricing, api_version, resource_name, region, aws, options, timeout, retries, fallbacks',
        ],
        ['limts', 'line 9: unknown key; did you mean "limits"?'],
      ],
    );
  });

  it('explains a bad or missing storage type', () => {
    const [bad] = problemsOf('state_storage: { type: sqllite }');
    assert.equal(bad.path, 'state_storage.type');
    assert.equal(
      bad.message,
      'line 1: must be one of: memory, sqlite, postgres, redis; did you mean "sqlite"?',
    );
    const [missing] = problemsOf('state_storage: { path: x.db }');
    assert.equal(missing.path, 'state_storage.type');
    assert.match(missing.message, /is required: one of memory, sqlite, postgres, redis/);
  });

  it('reports a missing model as required, at the provider entry', () => {
    const [p] = problemsOf(yaml(['model_providers:', '  - access_key: k']));
    assert.equal(p.path, 'model_providers[0].model');
    assert.match(p.message, /^line 2: is required/);
  });

  it('reports wrong container types', () => {
    const problems = problemsOf(yaml(['listen: 8080', 'model_providers:', '  model: openai/a']));
    assert.deepEqual(
      problems.map((p) => [p.path, p.message]),
      [
        ['listen', 'line 1: must be a mapping (key: value lines), not a whole number'],
        ['model_providers', 'line 2: must be a list (lines starting with "- "), not a mapping'],
      ],
    );
  });

  it('requires the file to be a mapping', () => {
    const [p] = problemsOf('- just\n- a list\n');
    assert.equal(p.path, '');
    assert.match(p.message, /must be a mapping/);
  });

  it('turns YAML syntax errors into problems with line numbers', () => {
    const problems = problemsOf(
      yaml(['listen:', '  host: 127.0.0.1', '  port: [12000', 'model_providers: []']),
    );
    assert.ok(problems.length >= 1);
    assert.equal(problems[0].path, '');
    assert.match(problems[0].message, /^line \d+, column \d+: /);
    const [dup] = problemsOf(yaml(['listen: {}', 'limits: {}', 'listen: {}']));
    assert.match(dup.message, /^line 3, column 1: Map keys must be unique/);
  });

  it('includes the file, paths and messages in the ConfigError text', () => {
    try {
      parseConfig('model_providers: [{ model: nope }]', {}, 'conf/parley.yaml');
      assert.fail('expected a ConfigError');
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      assert.match(
        error.message,
        /^conf\/parley\.yaml: invalid configuration:\n {2}model_providers\[0\]\.model: line 1: /,
      );
    }
  });
});
