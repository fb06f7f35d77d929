// Opens the configured backend. Backends are imported lazily so a gateway on SQLite never loads
// the PostgreSQL or Redis drivers.

import type { StateStorageConfig } from '../config/types.ts';
import type { ConversationStore } from './types.ts';

export class StoreNotAvailableError extends Error {
  constructor(type: string) {
    super(
      `state_storage.type '${type}' is not available in this version of Parley yet; use 'sqlite' (the default) or 'memory'.`,
    );
    this.name = 'StoreNotAvailableError';
  }
}

export async function createStore(config: StateStorageConfig): Promise<ConversationStore> {
  switch (config.type) {
    case 'memory': {
      const { MemoryStore } = await import('./memory.ts');
      return new MemoryStore({ maxEntries: config.max_entries, ttlSeconds: config.ttl_seconds });
    }
    case 'sqlite': {
      const { SqliteStore } = await import('./sqlite.ts');
      return new SqliteStore({ path: config.path, ttlSeconds: config.ttl_seconds });
    }
    case 'postgres': {
      const { PostgresStore } = await import('./postgres.ts');
      return new PostgresStore({
        connectionString: config.connection_string,
        poolSize: config.pool_size,
        ttlSeconds: config.ttl_seconds,
      });
    }
    case 'redis': {
      const { RedisStore } = await import('./redis.ts');
      return new RedisStore({
        url: config.connection_string,
        ttlSeconds: config.ttl_seconds,
        keyPrefix: config.key_prefix,
        cluster: config.cluster,
        redisOptions: config.redis_options,
      });
    }
    default:
      throw new StoreNotAvailableError((config as { type: string }).type);
  }
}
