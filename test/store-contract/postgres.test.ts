// The shared contract against a real PostgreSQL: one throwaway server for this file, a fresh
// schema per test (selected through the URL's `options=-c search_path=...`, which also proves
// that the store creates its tables wherever the connection string points).

import { after, before } from 'node:test';
import { PostgresStore } from '../../src/store/postgres.ts';
import { type PostgresServer, startPostgres } from '../helpers/postgres-server.ts';
import { runStoreContract } from './suite.ts';

let server: PostgresServer;

before(async () => {
  server = await startPostgres();
});

after(async () => {
  await server?.stop();
});

runStoreContract('postgres', async () => {
  const { schema, connectionString } = await server.createSchema('contract');
  return {
    store: new PostgresStore({ connectionString, poolSize: 10, ttlSeconds: null }),
    cleanup: async () => {
      await server.query(`DROP SCHEMA ${schema} CASCADE`);
    },
  };
});
