// The shared contract against a real, throwaway redis-server. Each store gets its own key prefix
// (so stores never see each other's keys) and its keys are removed afterwards.

import { after, before } from 'node:test';
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/store/redis.ts';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.ts';
import { runStoreContract } from './suite.ts';

let server: RedisServer;
let admin: Redis;
let counter = 0;

before(async () => {
  server = await startRedisServer();
  admin = new Redis(server.url);
});

after(async () => {
  await admin.quit();
  await server.stop();
});

runStoreContract('redis', async () => {
  const keyPrefix = `contract-${process.pid}-${++counter}:`;
  return {
    store: new RedisStore({ url: server.url, ttlSeconds: null, keyPrefix }),
    cleanup: async () => {
      const keys = await admin.keys(`${keyPrefix}*`);
      if (keys.length > 0) await admin.del(...keys);
    },
  };
});
