// A throwaway PostgreSQL server for tests: initdb into a temp dir, start `postgres` on a free
// loopback port with a password-authenticated superuser, and remove everything on stop().
// One server per test file (start in before(), stop in after()); hand out a fresh schema or
// database per test. When the server binaries are missing this throws with the install hint
// rather than skipping: CI (.ci/run) installs them, so a skip would hide a broken setup.
//
// initdb and postgres refuse to run as root, and CI runs as root: then the server runs as
// `nobody` (spawn's uid/gid; libuv drops supplementary groups) in a temp dir owned by it.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { appendFile, chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import pg from 'pg';

/** Has every URL-special character, so a test using it proves the password is encoded and decoded right. */
export const SUPERUSER_PASSWORD = 'p@ss:w/rd%#?&=+ é';
export const SUPERUSER = 'parley';

export interface PostgresServer {
  /** `postgresql://parley:<encoded password>@127.0.0.1:PORT/postgres` (a superuser). */
  readonly connectionString: string;
  readonly host: string;
  readonly port: number;
  readonly password: string;
  /** The server's self-signed certificate (PEM file) when started with `ssl: true`. */
  readonly certificate: string | null;
  /** A connection string to this server for another database, role or with query parameters. */
  url(options?: {
    database?: string;
    user?: string;
    password?: string;
    params?: Record<string, string>;
  }): string;
  /** Runs SQL as the superuser (in `database`, default `postgres`). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    values?: unknown[],
    database?: string,
  ): Promise<pg.QueryResult<R>>;
  /** A new empty database; returns its name. */
  createDatabase(prefix?: string): Promise<string>;
  /** A new empty schema in `postgres`; returns its name and a connection string whose search_path is it. */
  createSchema(prefix?: string): Promise<{ schema: string; connectionString: string }>;
  /** Shuts the server down, keeping its data and port, until resume(): an outage. */
  suspend(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Serve TLS too, with a self-signed certificate (needs `openssl`). */
  ssl?: boolean;
}

const INSTALL_HINT =
  'PostgreSQL server binaries (initdb, postgres) were not found under /usr/lib/postgresql/*/bin or on PATH. ' +
  'Install them (Debian/Ubuntu: `apt-get install postgresql`; .ci/run does this) or set PARLEY_PG_BIN to the ' +
  'directory holding initdb.';

/**
 * The directory holding initdb and postgres: $PARLEY_PG_BIN, the newest <root>/N/bin, or PATH.
 * Throws with the install hint when there is none.
 */
export function findPostgresBin(
  roots: readonly string[] = ['/usr/lib/postgresql'],
  path: string = process.env.PATH ?? '',
  explicit: string | undefined = process.env.PARLEY_PG_BIN,
): string {
  const candidates: string[] = [];
  if (explicit) candidates.push(explicit);
  for (const root of roots) {
    if (!existsSync(root)) continue;
    const versions = readdirSync(root)
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => join(root, v, 'bin')));
  }
  candidates.push(...path.split(delimiter).filter(Boolean));
  for (const dir of candidates) {
    if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'))) return dir;
  }
  throw new Error(INSTALL_HINT);
}

/** uid/gid to run the server as: ourselves, or `nobody` when we are root. */
function serverIdentity(): { uid: number; gid: number } | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  let uid = 65534;
  let gid = 65534;
  try {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('nobody:'));
    if (line) {
      const fields = line.split(':');
      uid = Number(fields[2]);
      gid = Number(fields[3]);
    }
  } catch {
    // keep the Debian defaults
  }
  return { uid, gid };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

function run(file: string, args: string[], identity: { uid: number; gid: number } | null, cwd: string): void {
  try {
    execFileSync(file, args, {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
      ...(identity ?? {}),
    });
  } catch (error) {
    const e = error as { stderr?: Buffer; stdout?: Buffer; message: string };
    throw new Error(
      `${file} failed: ${e.message}\n${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}`.trim(),
    );
  }
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A crashed test run must not leave postgres processes behind.
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

export async function startPostgres(options: StartOptions = {}): Promise<PostgresServer> {
  const bin = findPostgresBin();
  const identity = serverIdentity();
  const dir = await mkdtemp(join(tmpdir(), 'parley-pg-'));
  try {
    if (identity) chownSync(dir, identity.uid, identity.gid);
    const data = join(dir, 'data');
    const socketDir = dir;
    const pwfile = join(dir, 'pwfile');
    await writeFile(pwfile, `${SUPERUSER_PASSWORD}\n`, { mode: 0o600 });
    if (identity) chownSync(pwfile, identity.uid, identity.gid);
    run(
      join(bin, 'initdb'),
      [
        ...['-D', data, '-U', SUPERUSER, `--pwfile=${pwfile}`, '-E', 'UTF8', '--locale=C'],
        ...['--auth-host=scram-sha-256', '--auth-local=scram-sha-256', '--no-sync', '--no-instructions'],
      ],
      identity,
      dir,
    );
    rmSync(pwfile, { force: true });

    let certificate: string | null = null;
    if (options.ssl) {
      // Outside the data directory, which only the server's user may enter.
      const cert = join(dir, 'server.crt');
      certificate = cert;
      const key = join(data, 'server.key');
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-days',
          '2',
          '-subj',
          '/CN=localhost',
          '-keyout',
          key,
          '-out',
          cert,
        ],
        { stdio: 'ignore' },
      );
      await chmod(key, 0o600);
      if (identity) {
        chownSync(key, identity.uid, identity.gid);
        chownSync(cert, identity.uid, identity.gid);
      }
      // In postgresql.conf rather than on the command line, so that a test may turn TLS off with
      // ALTER SYSTEM and a reload (command-line settings would win over it).
      await appendFile(
        join(data, 'postgresql.conf'),
        `\nssl = on\nssl_cert_file = '${cert}'\nssl_key_file = '${key}'\n`,
      );
    }

    let lastError: Error | null = null;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      try {
        const relaunch = () => launch(join(bin, 'postgres'), data, socketDir, port, identity);
        const child = await relaunch();
        return makeServer(child, port, dir, relaunch, certificate);
      } catch (error) {
        lastError = error as Error;
        if (!/could not bind|Address already in use/i.test(lastError.message)) break;
      }
    }
    throw lastError ?? new Error('postgres did not start');
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

async function launch(
  postgres: string,
  data: string,
  socketDir: string,
  port: number,
  identity: { uid: number; gid: number } | null,
): Promise<ChildProcess> {
  // Throwaway data: durability off for speed.
  const settings = [
    'fsync=off',
    'synchronous_commit=off',
    'full_page_writes=off',
    'max_connections=300',
    'shared_buffers=64MB',
    // No parallel workers: tests stay deterministic and no dynamic shared memory is needed (a
    // container's /dev/shm is small).
    'max_parallel_workers_per_gather=0',
    'log_min_messages=warning',
    'logging_collector=off',
  ];
  const args = [
    '-D',
    data,
    '-k',
    socketDir,
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    ...settings.flatMap((s) => ['-c', s]),
  ];
  const child = spawn(postgres, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
    ...(identity ?? {}),
  });
  installExitHook();
  live.add(child);
  child.once('exit', () => live.delete(child));
  let log = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    if (log.length < 20_000) log += chunk;
  });

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`postgres exited during startup (${child.exitCode ?? child.signalCode}):\n${log}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`postgres did not accept connections within 30 s:\n${log}`);
    }
    const client = new pg.Client({
      host: '127.0.0.1',
      port,
      user: SUPERUSER,
      password: SUPERUSER_PASSWORD,
      database: 'postgres',
      connectionTimeoutMillis: 2000,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.end();
      // Keep draining stderr without buffering it any more.
      child.stderr?.removeAllListeners('data');
      child.stderr?.resume();
      return child;
    } catch {
      await client.end().catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

async function terminate(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

function makeServer(
  first: ChildProcess,
  port: number,
  dir: string,
  relaunch: () => Promise<ChildProcess>,
  certificate: string | null,
): PostgresServer {
  let child = first;
  const host = '127.0.0.1';
  const pools = new Map<string, pg.Pool>();
  let counter = 0;
  const unique = (prefix: string) => `${prefix}_${process.pid}_${Date.now().toString(36)}_${++counter}`;

  const url: PostgresServer['url'] = (options = {}) => {
    const user = encodeURIComponent(options.user ?? SUPERUSER);
    const password = options.password ?? (options.user === undefined ? SUPERUSER_PASSWORD : undefined);
    const auth = password === undefined ? user : `${user}:${encodeURIComponent(password)}`;
    const query = options.params ? `?${new URLSearchParams(options.params).toString()}` : '';
    return `postgresql://${auth}@${host}:${port}/${encodeURIComponent(options.database ?? 'postgres')}${query}`;
  };

  const poolFor = (database: string): pg.Pool => {
    let pool = pools.get(database);
    if (!pool) {
      pool = new pg.Pool({ host, port, user: SUPERUSER, password: SUPERUSER_PASSWORD, database, max: 4 });
      pool.on('error', () => {});
      pools.set(database, pool);
    }
    return pool;
  };

  let stopped: Promise<void> | null = null;
  return {
    async suspend() {
      await Promise.all([...pools.values()].map((pool) => pool.end().catch(() => {})));
      pools.clear();
      await terminate(child, 'SIGINT'); // fast shutdown: connections are cut, the data stays
    },
    async resume() {
      child = await relaunch();
    },
    connectionString: url(),
    host,
    port,
    password: SUPERUSER_PASSWORD,
    certificate,
    url,
    query: (sql, values, database = 'postgres') => poolFor(database).query(sql, values),
    async createDatabase(prefix = 'db') {
      const name = unique(prefix);
      // FILE_COPY skips WAL-logging every block of the template: much faster for tests.
      await poolFor('postgres').query(`CREATE DATABASE ${name} STRATEGY = FILE_COPY`);
      return name;
    },
    async createSchema(prefix = 's') {
      const schema = unique(prefix);
      await poolFor('postgres').query(`CREATE SCHEMA ${schema}`);
      return { schema, connectionString: url({ params: { options: `-c search_path=${schema}` } }) };
    },
    stop() {
      stopped ??= (async () => {
        await Promise.all([...pools.values()].map((pool) => pool.end().catch(() => {})));
        pools.clear();
        await terminate(child, 'SIGQUIT'); // immediate shutdown: the data is thrown away anyway
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
