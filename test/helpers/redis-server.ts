// Throwaway redis-server processes on free loopback ports, for one test file: no persistence, no
// shared config, each in its own temp directory. Also a Sentinel watching one of them, a TLS
// server (certificate made with openssl), and a three-node Cluster. The binary is required,
// never skipped silently: CI installs it (apt-get install redis-server); REDIS_SERVER_BIN
// points at another one.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';

export interface RedisServer {
  /** `redis://[:password@]127.0.0.1:<port>/0` (`rediss://` with TLS), password URL-encoded. */
  url: string;
  host: string;
  port: number;
  password: string | null;
  /** The certificate to trust, for a TLS server. */
  ca: string | null;
  /** An outage that keeps the data: SAVE, then the process stops (connections are refused). */
  suspend(): Promise<void>;
  /** Starts the server again on the same port, loading what suspend() saved. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  /** Sets `requirepass`; any characters (the URL gets it URL-encoded). */
  password?: string;
  /** A fixed port, e.g. to restart a server where a client expects it; default a free one. */
  port?: number;
  /** Serve TLS only (a self-signed certificate for 127.0.0.1, returned as `ca`). */
  tls?: boolean;
  /** More redis-server arguments. */
  args?: string[];
}

const BINARY = process.env.REDIS_SERVER_BIN ?? 'redis-server';
const INSTALL_HINT =
  'redis-server is required by the Redis tests and was not found. Install it (Debian/Ubuntu: ' +
  '`apt-get install redis-server`; macOS: `brew install redis`) or set REDIS_SERVER_BIN to its path.';

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  return withFreePort(options.port, async (port) => {
    const dir = await mkdtemp(join(tmpdir(), 'parley-redis-'));
    const args = ['--port', String(port), ...baseArgs(dir), ...(options.args ?? [])];
    let ca: string | null = null;
    if (options.tls) {
      ca = await makeCertificate(dir);
      args.splice(0, 2, '--port', '0', '--tls-port', String(port));
      args.push(
        '--tls-cert-file',
        join(dir, 'cert.pem'),
        '--tls-key-file',
        join(dir, 'key.pem'),
        '--tls-ca-cert-file',
        join(dir, 'cert.pem'),
        '--tls-auth-clients',
        'no',
      );
    }
    if (options.password !== undefined) args.push('--requirepass', options.password);
    const tls = options.tls === true;
    let kill = await spawnRedis(args, port, dir, tls);
    const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`;
    const url = `${tls ? 'rediss' : 'redis'}://${auth}127.0.0.1:${port}/0`;
    let suspended = false;
    return {
      url,
      host: '127.0.0.1',
      port,
      password: options.password ?? null,
      ca,
      async suspend() {
        const client = new Redis(url, ca === null ? {} : { tls: { ca } });
        await client.save();
        client.disconnect();
        await kill({ keepDir: true });
        suspended = true;
      },
      async resume() {
        kill = await spawnRedis(args, port, dir, tls);
        suspended = false;
      },
      async stop() {
        if (suspended) await rm(dir, { recursive: true, force: true });
        else await kill();
      },
    };
  });
}

export interface RedisSentinel extends RedisServer {
  /** The master group name the sentinel watches. */
  name: string;
}

/** A Sentinel (redis-server --sentinel) watching `master` under the group name `mymaster`. */
export async function startRedisSentinel(master: RedisServer): Promise<RedisSentinel> {
  const name = 'mymaster';
  return withFreePort(undefined, async (port) => {
    const dir = await mkdtemp(join(tmpdir(), 'parley-sentinel-'));
    const conf = [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
      master.password === null ? '' : `sentinel auth-pass ${name} ${configString(master.password)}`,
    ].join('\n');
    await writeFile(join(dir, 'sentinel.conf'), `${conf}\n`);
    const stop = await spawnRedis([join(dir, 'sentinel.conf'), '--sentinel'], port, dir, false);
    return {
      url: `redis://127.0.0.1:${port}`,
      host: '127.0.0.1',
      port,
      password: null,
      ca: null,
      name,
      suspend: () => Promise.reject(new Error('a test sentinel cannot be suspended')),
      resume: () => Promise.reject(new Error('a test sentinel cannot be suspended')),
      stop: () => stop(),
    };
  });
}

export interface RedisCluster {
  /** Seed URLs of every node, comma-separated (the form RedisStore takes in cluster mode). */
  url: string;
  nodes: RedisServer[];
  stop(): Promise<void>;
}

/** A cluster of `size` masters (no replicas) with the 16,384 slots split between them. */
export async function startRedisCluster(size = 3): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  const busPorts: number[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
  };
  try {
    for (let i = 0; i < size; i++) {
      const busPort = await freePort();
      busPorts.push(busPort);
      nodes.push(
        await startRedisServer({
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-port',
            String(busPort),
            '--cluster-config-file',
            `nodes-${i}.conf`,
            '--cluster-node-timeout',
            '5000',
          ],
        }),
      );
    }
    const clients = nodes.map((node) => new Redis(node.port, '127.0.0.1'));
    try {
      const per = Math.ceil(16_384 / size);
      await Promise.all(
        clients.map((client, i) =>
          client.call(
            'CLUSTER',
            'ADDSLOTSRANGE',
            String(i * per),
            String(Math.min(16_383, (i + 1) * per - 1)),
          ),
        ),
      );
      for (let i = 1; i < size; i++) {
        await clients[0].call('CLUSTER', 'MEET', '127.0.0.1', String(nodes[i].port), String(busPorts[i]));
      }
      const deadline = Date.now() + 15_000;
      for (;;) {
        const infos = await Promise.all(
          clients.map((client) => client.call('CLUSTER', 'INFO') as Promise<string>),
        );
        if (
          infos.every(
            (info) => info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${size}`),
          )
        )
          break;
        if (Date.now() > deadline) throw new Error(`the Redis cluster did not form:\n${infos.join('\n')}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      for (const client of clients) client.disconnect();
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { url: nodes.map((node) => node.url).join(','), nodes, stop };
}

// ---------- plumbing ----------

/** A value quoted for a redis config file (double quotes, backslash escapes). */
function configString(value: string): string {
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

function baseArgs(dir: string): string[] {
  return [
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--loglevel',
    'warning',
  ];
}

/** Runs `start` on a free port, again on another one if that port was taken meanwhile. */
async function withFreePort<T>(fixed: number | undefined, start: (port: number) => Promise<T>): Promise<T> {
  let lastError: unknown;
  for (let attempt = 0; attempt < (fixed === undefined ? 5 : 1); attempt++) {
    try {
      return await start(fixed ?? (await freePort()));
    } catch (error) {
      if (error instanceof Error && error.message === INSTALL_HINT) throw error;
      lastError = error;
    }
  }
  throw lastError;
}

type Stop = (options?: { keepDir?: boolean }) => Promise<void>;

/** Starts redis-server with `args`; resolves to its stop() once it answers on `port`. */
async function spawnRedis(args: string[], port: number, dir: string, tls: boolean): Promise<Stop> {
  const child = spawn(BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const spawnError = new Promise<never>((_, reject) =>
    child.once('error', (error: NodeJS.ErrnoException) => {
      reject(error.code === 'ENOENT' ? new Error(INSTALL_HINT) : error);
    }),
  );
  const stop: Stop = async (options = {}) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    running.delete(child);
    if (!options.keepDir) await rm(dir, { recursive: true, force: true });
  };
  try {
    await Promise.race([
      waitForPing(port, tls),
      spawnError,
      exited.then((code) => {
        throw new Error(`redis-server exited with code ${code} before answering PING:\n${output}`);
      }),
    ]);
  } catch (error) {
    await stop();
    throw error;
  }
  return stop;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Until the server answers PING (a NOAUTH error is an answer too), for at most 10 s. */
async function waitForPing(port: number, tls: boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (await pingOnce(port, tls)) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`redis-server on port ${port} did not answer PING within 10 s`);
}

function pingOnce(port: number, tls: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const socket: Socket = tls
      ? tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false })
      : createConnection({ host: '127.0.0.1', port });
    const done = (answered: boolean) => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once(tls ? 'secureConnect' : 'connect', () => socket.write('*1\r\n$4\r\nPING\r\n'));
    socket.once('data', (data) => done(/^[+-]/.test(data.toString())));
  });
}

/** A self-signed certificate for 127.0.0.1 in `dir` (cert.pem, key.pem); returns the certificate. */
async function makeCertificate(dir: string): Promise<string> {
  try {
    await promisify(execFile)('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ]);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error('openssl is required to make the TLS test certificate: apt-get install openssl.');
    }
    throw error;
  }
  return readFile(join(dir, 'cert.pem'), 'utf8');
}
