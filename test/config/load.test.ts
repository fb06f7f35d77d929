import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { defaultConfigFromEnv, loadConfigFile, resolveConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/types.ts';

const EXAMPLE = fileURLToPath(new URL('../../parley.example.yaml', import.meta.url));

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'parley-config-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function rejectsWithConfigError(promise: Promise<unknown>): Promise<ConfigError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${error}`);
    return error;
  }
  assert.fail('expected a ConfigError');
}

describe('parley.example.yaml', () => {
  it('parses with OPENAI_API_KEY and ANTHROPIC_API_KEY set', async () => {
    const config = await loadConfigFile(EXAMPLE, {
      OPENAI_API_KEY: 'sk-openai',
      ANTHROPIC_API_KEY: 'sk-ant',
    });
    assert.deepEqual(config.listen, { host: '127.0.0.1', port: 12000 });
    assert.deepEqual(config.state_storage, { type: 'sqlite', ttl_seconds: null, path: './data/parley.db' });
    assert.deepEqual(
      config.model_providers.map((p) => [
        p.provider,
        p.model_id,
        p.name,
        p.access_key,
        p.base_url,
        p.default,
      ]),
      [
        ['openai', 'gpt-4o', null, 'sk-openai', null, true],
        ['anthropic', 'claude-sonnet-4-5', null, 'sk-ant', null, false],
        ['openai', 'llama3.1', 'local-llama', null, 'http://127.0.0.1:11434/v1', false],
      ],
    );
  });

  it('names both keys when they are unset', async () => {
    const error = await rejectsWithConfigError(loadConfigFile(EXAMPLE, {}));
    assert.deepEqual(
      error.problems.map((p) => p.path),
      ['model_providers[0].access_key', 'model_providers[1].access_key'],
    );
    assert.match(error.problems[0].message, /^line \d+: environment variable OPENAI_API_KEY is not set/);
    assert.match(error.problems[1].message, /^line \d+: environment variable ANTHROPIC_API_KEY is not set/);
  });
});

describe('loadConfigFile', () => {
  it('reports a missing file clearly', async () => {
    const path = join(dir, 'nope.yaml');
    const error = await rejectsWithConfigError(loadConfigFile(path, {}));
    assert.equal(error.file, path);
    assert.equal(error.problems.length, 1);
    assert.match(error.problems[0].message, /^config file not found: .*nope\.yaml/);
  });

  it('reports a directory given as the config file', async () => {
    const error = await rejectsWithConfigError(loadConfigFile(dir, {}));
    assert.match(error.problems[0].message, /is a directory/);
  });

  it('names the file in the error', async () => {
    const path = join(dir, 'bad.yaml');
    await writeFile(path, 'listen: { port: nope }\n');
    const error = await rejectsWithConfigError(loadConfigFile(path, {}));
    assert.ok(error.message.startsWith(`${path}: invalid configuration:`));
    assert.deepEqual(error.problems, [
      { path: 'listen.port', message: 'line 1: must be a whole number, not a string' },
    ]);
  });
});

describe('defaultConfigFromEnv', () => {
  it('is sqlite on 127.0.0.1:12000 with no providers when no provider env is set', () => {
    assert.deepEqual(defaultConfigFromEnv({}), {
      listen: { host: '127.0.0.1', port: 12000 },
      state_storage: { type: 'sqlite', ttl_seconds: null, path: './data/parley.db' },
      model_providers: [],
      limits: { max_body_bytes: 10 * 1024 * 1024 },
    });
  });

  it('adds a pass-through openai/* provider from OPENAI_API_KEY', () => {
    const config = defaultConfigFromEnv({ OPENAI_API_KEY: 'sk-x' });
    assert.deepEqual(config.model_providers, [
      {
        model: 'openai/*',
        provider: 'openai',
        model_id: '*',
        name: null,
        access_key: 'sk-x',
        base_url: null,
        default: true,
        api: null,
        headers: {},
        context_window: null,
      },
    ]);
  });

  it('adds it from OPENAI_BASE_URL alone (a local OpenAI-compatible server)', () => {
    const [p] = defaultConfigFromEnv({ OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1' }).model_providers;
    assert.equal(p.base_url, 'http://127.0.0.1:11434/v1');
    assert.equal(p.access_key, null);
    assert.equal(p.default, true);
  });

  it('ignores empty provider variables', () => {
    assert.deepEqual(defaultConfigFromEnv({ OPENAI_API_KEY: '', OPENAI_BASE_URL: ' ' }).model_providers, []);
  });

  it('honours PARLEY_HOST and PARLEY_PORT', () => {
    assert.deepEqual(defaultConfigFromEnv({ PARLEY_HOST: '0.0.0.0', PARLEY_PORT: '8080' }).listen, {
      host: '0.0.0.0',
      port: 8080,
    });
  });

  it('names the environment variable behind a bad value', () => {
    try {
      defaultConfigFromEnv({ PARLEY_PORT: 'eighty', OPENAI_BASE_URL: 'localhost:11434' });
      assert.fail('expected a ConfigError');
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      assert.deepEqual(
        error.problems.map((p) => p.path),
        ['PARLEY_PORT', 'OPENAI_BASE_URL'],
      );
    }
  });
});

describe('resolveConfig', () => {
  it('uses an explicit path, relative to cwd', async () => {
    const sub = join(dir, 'explicit');
    await mkdir(sub, { recursive: true });
    await writeFile(join(sub, 'custom.yaml'), 'listen: { port: 9001 }\n');
    const { config, source } = await resolveConfig({ configPath: 'custom.yaml', cwd: sub, env: {} });
    assert.equal(config.listen.port, 9001);
    assert.equal(source, 'custom.yaml');
  });

  it('fails when an explicit path does not exist, rather than falling back', async () => {
    const error = await rejectsWithConfigError(
      resolveConfig({ configPath: 'missing.yaml', cwd: dir, env: {} }),
    );
    assert.match(error.problems[0].message, /config file not found/);
  });

  it('uses PARLEY_CONFIG when no path is given', async () => {
    const sub = join(dir, 'from-env');
    await mkdir(sub, { recursive: true });
    await writeFile(join(sub, 'other.yaml'), 'listen: { port: 9002 }\n');
    const { config, source } = await resolveConfig({ cwd: sub, env: { PARLEY_CONFIG: 'other.yaml' } });
    assert.equal(config.listen.port, 9002);
    assert.equal(source, 'other.yaml');
  });

  it('finds parley.yaml in cwd', async () => {
    const sub = join(dir, 'found');
    await mkdir(sub, { recursive: true });
    await writeFile(
      join(sub, 'parley.yaml'),
      'model_providers: [{ model: openai/gpt-4o, access_key: $K }]\n',
    );
    const { config, source } = await resolveConfig({ cwd: sub, env: { K: 'key' } });
    assert.equal(source, 'parley.yaml');
    assert.equal(config.model_providers[0].access_key, 'key');
    assert.equal(config.state_storage, null);
  });

  it('falls back to the environment when there is no parley.yaml', async () => {
    const sub = join(dir, 'empty');
    await mkdir(sub, { recursive: true });
    const { config, source } = await resolveConfig({ cwd: sub, env: { OPENAI_API_KEY: 'sk' } });
    assert.equal(source, 'environment (no parley.yaml found)');
    assert.equal(config.state_storage?.type, 'sqlite');
    assert.equal(config.model_providers[0].model, 'openai/*');
  });
});
