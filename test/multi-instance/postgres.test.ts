// Two gateway processes on one throwaway PostgreSQL (a fresh database they both migrate at startup).

import { startPostgres } from '../helpers/postgres-server.ts';
import { runMultiInstanceSuite } from './scenarios.ts';

runMultiInstanceSuite('PostgreSQL', async () => {
  const server = await startPostgres();
  const database = await server.createDatabase('multi');
  return {
    storage: { type: 'postgres', connection_string: server.url({ database }), pool_size: 8 },
    stop: () => server.stop(),
  };
});
