// Throwaway PostgreSQL and Redis servers on loopback, in temp directories, for the stores that
// need one. Found on PATH or under /usr/lib/postgresql/*/bin; when missing, the store is skipped
// with a note rather than failing the run. Under root, PostgreSQL runs as the `postgres` user.

import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnTracked, stopChild } from './procs.ts';

export interface DatabaseServer {
  kind: 'postgres' | 'redis';
  port: number;
  pid: number;
  version: string;
  settings: string;
  /** Connection string for a fresh database/namespace named `name`. */
  create(name: string): Promise<string>;
  /** Bytes the store occupies in database `name` (tables + indexes + TOAST, or Redis memory). */
  sizeOf(name: string): Promise<number>;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function which(name: string): string | null {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

function postgresBin(): string | null {
  const onPath = which('initdb');
  if (onPath && which('postgres')) return onPath.slice(0, onPath.lastIndexOf('/'));
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(root, versions[0], 'bin') : null;
}

export function postgresAvailable(): string | null {
  return postgresBin() ? null : 'PostgreSQL server binaries (initdb, postgres) not found';
}

export function redisAvailable(): string | null {
  return which('redis-server') ? null : 'redis-server not found';
}

function userIds(name: string): { uid: number; gid: number } | null {
  try {
    const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    return null;
  }
}

async function retry<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const started = Date.now();
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() - started > timeoutMs) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export async function startPostgres(cpu: string | null): Promise<DatabaseServer> {
  const bin = postgresBin();
  if (!bin) throw new Error('PostgreSQL binaries not found');
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-pg-'));
  const data = join(dir, 'data');
  // initdb and postgres refuse to run as root.
  const ids = process.getuid?.() === 0 ? userIds('postgres') : null;
  if (process.getuid?.() === 0 && !ids) throw new Error('running as root and there is no postgres user');
  if (ids) chownSync(dir, ids.uid, ids.gid);
  execFileSync(join(bin, 'initdb'), ['-D', data, '-U', 'parley', '--auth=trust', '-E', 'UTF8', '--no-sync'], {
    stdio: 'ignore',
    ...(ids ? { uid: ids.uid, gid: ids.gid } : {}),
  });
  const port = await freePort();
  // Server defaults (fsync and synchronous_commit on): every commit waits for the disk, as in production.
  const server = spawnTracked(
    join(bin, 'postgres'),
    [
      '-D',
      data,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-k',
      dir,
      '-c',
      'max_connections=200',
    ],
    { cpu, stdio: ['ignore', 'ignore', 'ignore'], ...(ids ? { uid: ids.uid, gid: ids.gid } : {}) },
  );
  const pg = (await import('pg')).default;
  // A pg Client cannot reconnect after a failed connect: a fresh one per attempt.
  const admin = await retry(async () => {
    const client = new pg.Client({ connectionString: `postgresql://parley@127.0.0.1:${port}/postgres` });
    client.on('error', () => {});
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    return client;
  }, 20_000);
  const version = ((await admin.query('SHOW server_version')).rows[0] as { server_version: string })
    .server_version;
  return {
    kind: 'postgres',
    port,
    pid: server.pid ?? 0,
    version: `PostgreSQL ${version}`,
    settings: 'server defaults (fsync on, synchronous_commit on), max_connections 200',
    async create(name) {
      await admin.query(`CREATE DATABASE ${name}`);
      return `postgresql://parley@127.0.0.1:${port}/${name}`;
    },
    async sizeOf(name) {
      const client = new pg.Client({ connectionString: `postgresql://parley@127.0.0.1:${port}/${name}` });
      await client.connect();
      try {
        const r = await client.query(
          `SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint AS bytes FROM pg_stat_user_tables`,
        );
        return Number((r.rows[0] as { bytes: string }).bytes);
      } finally {
        await client.end();
      }
    },
    async stop() {
      await admin.end().catch(() => {});
      await stopChild(server, 'SIGINT');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function startRedis(cpu: string | null): Promise<DatabaseServer> {
  const binary = which('redis-server');
  if (!binary) throw new Error('redis-server not found');
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-redis-'));
  const port = await freePort();
  // AOF with fsync every second: the durable setting a Redis-backed gateway would run with.
  const child = spawnTracked(
    binary,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
    ],
    { cpu, stdio: ['ignore', 'ignore', 'ignore'] },
  );
  const { Redis } = await import('ioredis');
  // One fresh client per attempt, no reconnection of its own, errors handled: nothing may outlive stop().
  const admin = await retry(async () => {
    const client = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    client.on('error', () => {});
    try {
      await client.connect();
    } catch (error) {
      client.disconnect();
      throw error;
    }
    return client;
  }, 20_000);
  const info = await admin.info('server');
  const version = /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
  let nextDb = 1;
  const dbs = new Map<string, number>();
  return {
    kind: 'redis',
    port,
    pid: child.pid ?? 0,
    version: `Redis ${version}`,
    settings: 'appendonly yes, appendfsync everysec, no RDB snapshots',
    async create(name) {
      const db = nextDb++;
      if (db > 15) throw new Error('out of Redis databases');
      dbs.set(name, db);
      return `redis://127.0.0.1:${port}/${db}`;
    },
    async sizeOf(name) {
      // Sum of MEMORY USAGE over the database's keys: what the store holds, without server overhead.
      const db = dbs.get(name);
      if (db === undefined) return Number.NaN;
      const client = new Redis({ port, host: '127.0.0.1', db, retryStrategy: () => null });
      client.on('error', () => {});
      try {
        let cursor = '0';
        let bytes = 0;
        do {
          const [next, keys] = await client.scan(cursor, 'COUNT', 1000);
          cursor = next;
          for (const key of keys) bytes += (await client.memory('USAGE', key, 'SAMPLES', '0')) ?? 0;
        } while (cursor !== '0');
        return bytes;
      } finally {
        client.disconnect();
      }
    },
    async stop() {
      admin.disconnect();
      await stopChild(child, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
