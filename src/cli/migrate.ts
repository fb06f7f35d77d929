// `parley migrate`: brings the configured store's schema up to date and exits. Gateways migrate by
// themselves at startup; this is for deploy pipelines that migrate first (for instance with an
// owner role, while gateways run with a role that may only read and write).

import { resolveConfig } from '../config/load.ts';
import { ConfigError, type StateStorageConfig } from '../config/types.ts';

export interface MigrateOptions {
  /** --config FILE; else PARLEY_CONFIG, ./parley.yaml, or the environment (as `serve`). */
  configPath?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  stdout?: { write(text: string): unknown };
  stderr?: { write(text: string): unknown };
}

/** Returns the exit code: 0 when the schema is current, 1 when it could not be made so. */
export async function migrateCommand(options: MigrateOptions = {}): Promise<number> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  try {
    const { config, source } = await resolveConfig({
      ...(options.configPath ? { configPath: options.configPath } : {}),
      cwd: options.cwd ?? process.cwd(),
      env: options.env ?? process.env,
    });
    const storage = config.state_storage;
    if (storage === null) {
      stderr.write(`${source}: no state_storage is configured, so there is no schema to migrate.\n`);
      return 1;
    }
    stdout.write(`${await migrateStorage(storage)}\n`);
    return 0;
  } catch (error) {
    // Store errors are written to be read as they are, and never hold the password.
    stderr.write(
      error instanceof ConfigError
        ? `${error.message}\n`
        : `parley migrate failed: ${(error as Error).message ?? String(error)}\n`,
    );
    return 1;
  }
}

async function migrateStorage(storage: StateStorageConfig): Promise<string> {
  switch (storage.type) {
    case 'postgres': {
      const { PostgresStore } = await import('../store/postgres.ts');
      // One connection is all migrating needs.
      const store = new PostgresStore({
        connectionString: storage.connection_string,
        poolSize: 1,
        ttlSeconds: storage.ttl_seconds,
      });
      try {
        const result = await store.migrate();
        const where = `${store.description}, schema "${result.schema}"`;
        return result.applied.length === 0
          ? `${where}: schema is current (version ${result.to}); nothing to do.`
          : `${where}: applied migration${result.applied.length > 1 ? 's' : ''} ${result.applied.join(', ')}; ` +
              `schema is now version ${result.to} (was ${result.from}).`;
      } finally {
        await store.close();
      }
    }
    case 'sqlite': {
      const { SqliteStore } = await import('../store/sqlite.ts');
      const store = new SqliteStore({ path: storage.path, ttlSeconds: storage.ttl_seconds });
      await store.open(); // applies what is due
      await store.close();
      return `${store.description}: schema is current.`;
    }
    case 'memory':
      return 'state_storage.type is memory: nothing is persisted, so there is no schema to migrate.';
    case 'redis':
      return 'state_storage.type is redis: Redis keeps no schema, so there is nothing to migrate.';
  }
}
