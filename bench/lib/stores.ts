// The store is a parameter of every benchmark: each kind gets a config (a parley.yaml, loaded by
// the same loader as the CLI), its database server when it needs one, and a way to measure how
// many bytes it holds. PostgreSQL and Redis join automatically once src/store/index.ts opens them.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { createStore, StoreNotAvailableError } from '../../src/store/index.ts';
import {
  type DatabaseServer,
  postgresAvailable,
  redisAvailable,
  startPostgres,
  startRedis,
} from './databases.ts';

export const STORE_KINDS = ['memory', 'sqlite', 'postgres', 'redis'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

export interface StoreStatus {
  kind: StoreKind;
  measured: boolean;
  note: string | null;
}

/** Is `kind` implemented in this checkout, and is its server installed? */
export async function detectStore(kind: StoreKind): Promise<StoreStatus> {
  if (kind === 'memory' || kind === 'sqlite') return { kind, measured: true, note: null };
  try {
    const store = await createStore(
      kind === 'postgres'
        ? {
            type: 'postgres',
            connection_string: 'postgresql://bench@127.0.0.1:9/none',
            pool_size: 1,
            ttl_seconds: null,
          }
        : { type: 'redis', connection_string: 'redis://127.0.0.1:9/0', ttl_seconds: null },
    );
    await store.close().catch(() => {});
  } catch (error) {
    if (error instanceof StoreNotAvailableError) {
      return { kind, measured: false, note: `skipped: not implemented in src/store/index.ts yet` };
    }
    // Constructed but complained about the fake address: implemented.
  }
  const missing = kind === 'postgres' ? postgresAvailable() : redisAvailable();
  if (missing) return { kind, measured: false, note: `skipped: ${missing}` };
  return { kind, measured: true, note: null };
}

export interface StoreInstance {
  kind: StoreKind;
  /** parley.yaml `state_storage` section, indented for the file. */
  yaml: string;
  dbPort: number | null;
  /** Bytes the store holds now. Memory is measured as the gateway's heap growth instead. */
  sizeOf: (() => Promise<number>) | null;
}

/** Database servers are shared by all instances of a kind; each instance gets its own database. */
export class StoreEnvironment {
  readonly dir: string;
  readonly #cpu: string | null;
  readonly #servers = new Map<StoreKind, DatabaseServer>();
  #counter = 0;

  constructor(dir: string, cpu: string | null) {
    this.dir = dir;
    this.#cpu = cpu;
  }

  servers(): DatabaseServer[] {
    return [...this.#servers.values()];
  }

  async instance(kind: StoreKind, label: string): Promise<StoreInstance> {
    const name = `bench_${label}_${++this.#counter}`.replace(/[^a-z0-9_]/gi, '_').toLowerCase();
    switch (kind) {
      case 'memory':
        // The default max_entries (10,000), as bench/README.md says: what a user of the memory store gets.
        return { kind, yaml: '  type: memory\n', dbPort: null, sizeOf: null };
      case 'sqlite': {
        const path = join(this.dir, `${name}.db`);
        return {
          kind,
          yaml: `  type: sqlite\n  path: ${path}\n`,
          dbPort: null,
          sizeOf: async () => sqliteBytes(path),
        };
      }
      case 'postgres':
      case 'redis': {
        const server = await this.#server(kind);
        const url = await server.create(name);
        const extra = kind === 'postgres' ? '  pool_size: 10\n' : '';
        return {
          kind,
          yaml: `  type: ${kind}\n  connection_string: "${url}"\n${extra}`,
          dbPort: server.port,
          sizeOf: () => server.sizeOf(name),
        };
      }
    }
  }

  async #server(kind: 'postgres' | 'redis'): Promise<DatabaseServer> {
    let server = this.#servers.get(kind);
    if (!server) {
      server = kind === 'postgres' ? await startPostgres(this.#cpu) : await startRedis(this.#cpu);
      this.#servers.set(kind, server);
    }
    return server;
  }

  async close(): Promise<void> {
    for (const server of this.#servers.values()) await server.stop().catch(() => {});
    this.#servers.clear();
  }
}

/** Pages in use (WAL content included: a reader sees it), times the page size. */
function sqliteBytes(path: string): number {
  if (!existsSync(path)) return 0;
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const get = (pragma: string) => Number(Object.values(db.prepare(`PRAGMA ${pragma}`).get() ?? {})[0]);
    return (get('page_count') - get('freelist_count')) * get('page_size');
  } finally {
    db.close();
  }
}

export function configYaml(options: { storage: string | null; upstreamUrl: string; port: number }): string {
  return [
    `listen: { host: 127.0.0.1, port: ${options.port} }`,
    options.storage === null ? '' : `state_storage:\n${options.storage}`,
    'model_providers:',
    '  - model: openai/gpt-4o-mini',
    `    base_url: ${options.upstreamUrl}`,
    '    access_key: bench-key',
    '    default: true',
    'limits:',
    '  max_body_bytes: 64mb',
    '',
  ].join('\n');
}
