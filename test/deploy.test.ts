// The Dockerfile and docker-compose.yml cannot be run here (no Docker), so this keeps them
// consistent with what is tested: the image installs with `npm ci` like CI and starts with exactly
// `npm start`'s command; compose runs PostgreSQL 15 with a healthcheck the gateway waits for, and
// mounts a config that parses, uses that database, and may listen beyond loopback (it has keys).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { parseConfig } from '../src/config/load.ts';
import { assertListenAllowed } from '../src/ops/operations.ts';

const root = new URL('../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');
const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };

/** Dockerfile instructions (continuation lines joined, comments dropped). */
function instructions(text: string): { op: string; args: string }[] {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const space = l.indexOf(' ');
      return { op: l.slice(0, space).toUpperCase(), args: l.slice(space + 1).trim() };
    });
}

describe('Dockerfile', () => {
  const steps = instructions(read('Dockerfile'));
  const all = (op: string) => steps.filter((s) => s.op === op).map((s) => s.args);

  it('builds on node:24-slim with npm ci from the lock file', () => {
    assert.deepEqual(all('FROM'), ['node:24-slim']);
    assert.ok(all('COPY').some((a) => a.includes('package.json') && a.includes('package-lock.json')));
    assert.ok(all('RUN').some((a) => /\bnpm ci\b/.test(a)), 'npm ci, as .ci/run installs');
    assert.match(read('.ci/run'), /\bnpm ci\b/);
    // What the image copies is what `parley serve` needs.
    for (const needed of ['bin', 'src']) assert.ok(all('COPY').some((a) => a.split(/\s+/)[0] === needed), needed);
  });

  it('starts exactly like `npm start`, on the port the config serves', () => {
    const [cmd] = all('CMD');
    assert.deepEqual(JSON.parse(cmd), pkg.scripts.start.split(' '));
    assert.equal(pkg.scripts.start, 'node bin/parley.js serve');
    assert.deepEqual(all('WORKDIR'), ['/app']);
    assert.deepEqual(all('EXPOSE'), ['12000']);
  });
});

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml')) as {
    services: Record<string, Record<string, unknown>>;
  };
  const gateway = compose.services.gateway;
  const postgres = compose.services.postgres;

  it('runs PostgreSQL 15 with a healthcheck the gateway waits for', () => {
    assert.equal(postgres.image, 'postgres:15');
    assert.match(JSON.stringify((postgres.healthcheck as { test: unknown }).test), /pg_isready/);
    assert.equal(gateway.build, '.');
    assert.deepEqual(gateway.depends_on, { postgres: { condition: 'service_healthy' } });
    assert.equal(gateway.command, undefined, "the image's command (npm start's) is used as it is");
  });

  it('mounts a config that parses, uses that database, and may listen on every address', () => {
    const volumes = gateway.volumes as string[];
    const mount = volumes.find((v) => v.split(':')[1] === '/app/parley.yaml');
    assert.ok(mount, 'a config at /app/parley.yaml, where `parley serve` looks');
    const file = mount.split(':')[0].replace(/^\.\//, '');
    // The environment compose gives the gateway, with stand-in values.
    const env: Record<string, string> = {};
    for (const name of Object.keys(gateway.environment as Record<string, string>)) env[name] = `${name.toLowerCase()}-value-0123456789`;
    const config = parseConfig(read(file), env, file);
    const storage = config.state_storage;
    assert.equal(storage?.type, 'postgres');
    const url = new URL((storage as { connection_string: string }).connection_string);
    assert.equal(url.hostname, 'postgres', 'the compose service name');
    const pgEnv = postgres.environment as Record<string, string>;
    assert.equal(url.username, pgEnv.POSTGRES_USER);
    assert.equal(url.pathname, `/${pgEnv.POSTGRES_DB}`);
    assert.equal(url.password, env.POSTGRES_PASSWORD);
    assert.equal(config.listen.host, '0.0.0.0');
    assertListenAllowed(config.auth, config.listen.host);
    assert.equal(config.auth?.mode, 'api_keys');
    assert.deepEqual(gateway.ports, [`${config.listen.port}:${config.listen.port}`]);
    // Docker's SIGKILL comes after the gateway's own shutdown deadline.
    const grace = Number(/^(\d+)s$/.exec(String(gateway.stop_grace_period))?.[1]);
    assert.ok(grace * 1000 > (config.limits.shutdown_timeout_ms ?? 30_000), 'stop_grace_period > limits.shutdown_timeout');
  });
});
