// state_storage for Redis: the optional settings (key_prefix, cluster, redis_options), their
// validation, and createStore turning them into a RedisStore that never shows the password.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config text with ${VAR} references

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/types.ts';
import { createStore } from '../../src/store/index.ts';
import { RedisStore } from '../../src/store/redis.ts';

const yaml = (lines: string[]) => `${lines.join('\n')}\n`;

describe('state_storage: redis', () => {
  it('leaves the optional settings out when they are not set', () => {
    assert.deepEqual(
      parseConfig('state_storage: { type: redis, connection_string: "redis://h:6379" }', {}).state_storage,
      {
        type: 'redis',
        ttl_seconds: null,
        connection_string: 'redis://h:6379',
      },
    );
  });

  it('reads key_prefix, cluster and redis_options (passed to ioredis as they are)', () => {
    const config = parseConfig(
      yaml([
        'state_storage:',
        '  type: redis',
        '  connection_string: "redis://:${REDIS_PASSWORD}@mymaster/2"',
        '  ttl: 30d',
        '  key_prefix: "app1:parley:"',
        '  redis_options:',
        '    name: mymaster',
        '    sentinels: [{ host: s1, port: 26379 }, { host: s2, port: 26379 }]',
        '    commandTimeout: 5000',
      ]),
      { REDIS_PASSWORD: 'p@ss/w:rd' },
    );
    assert.deepEqual(config.state_storage, {
      type: 'redis',
      ttl_seconds: 30 * 86400,
      connection_string: 'redis://:p@ss/w:rd@mymaster/2',
      key_prefix: 'app1:parley:',
      redis_options: {
        name: 'mymaster',
        sentinels: [
          { host: 's1', port: 26379 },
          { host: 's2', port: 26379 },
        ],
        commandTimeout: 5000,
      },
    });
    const cluster = parseConfig(
      'state_storage: { type: redis, connection_string: "redis://a:7000,redis://b:7000", cluster: true }',
      {},
    );
    assert.equal(cluster.state_storage?.type === 'redis' && cluster.state_storage.cluster, true);
  });

  it('names the path of a wrong setting and suggests key_prefix for prefix', () => {
    const problems = (text: string) => {
      try {
        parseConfig(text, {});
      } catch (error) {
        assert.ok(error instanceof ConfigError);
        return error.problems;
      }
      return assert.fail('expected a ConfigError');
    };
    const base = 'state_storage: { type: redis, connection_string: "redis://h", ';
    assert.match(
      JSON.stringify(problems(`${base}redis_options: [1] }`)),
      /state_storage\.redis_options.*mapping/,
    );
    assert.match(JSON.stringify(problems(`${base}prefix: x }`)), /key_prefix/);
  });

  it('createStore makes a RedisStore that describes itself without the password', async () => {
    const config = parseConfig(
      'state_storage: { type: redis, connection_string: "rediss://u:s3cr%40t@redis.example:6380/1", key_prefix: "p:" }',
      {},
    );
    const store = await createStore(config.state_storage!);
    assert.ok(store instanceof RedisStore);
    assert.equal(store.description, 'redis (rediss://u:***@redis.example:6380/1, prefix "p:")');
    assert.equal(store.keyPrefix, 'p:');
    await assert.rejects(
      createStore({
        type: 'redis',
        ttl_seconds: null,
        connection_string: 'redis://h',
        cluster: true,
        key_prefix: 'x:',
      }),
      /hash tag/,
    );
  });
});
