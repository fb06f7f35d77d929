// Two gateway processes on one throwaway redis-server.

import { startRedisServer } from '../helpers/redis-server.ts';
import { runMultiInstanceSuite } from './scenarios.ts';

runMultiInstanceSuite('Redis', async () => {
  const server = await startRedisServer();
  return {
    storage: { type: 'redis', connection_string: server.url, key_prefix: 'multi:' },
    stop: () => server.stop(),
  };
});
