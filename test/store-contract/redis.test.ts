// The shared contract against real, throwaway Redis: a standalone redis-server, and a three-node
// Redis Cluster (proving every script stays within one hash slot). Each store gets its own key
// prefix, so stores never see each other's keys, and its keys are removed afterwards.

import { after, before } from 'node:test';
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/store/redis.ts';
import {
  type RedisCluster,
  type RedisServer,
  startRedisCluster,
  startRedisServer,
} from '../helpers/redis-server.ts';
import { runStoreContract } from './suite.ts';

let server: RedisServer;
let cluster: RedisCluster;
let admins: Redis[] = [];
let counter = 0;

before(async () => {
  [server, cluster] = await Promise.all([startRedisServer(), startRedisCluster(3)]);
  admins = [server, ...cluster.nodes].map((node) => new Redis(node.url));
});

after(async () => {
  for (const admin of admins) admin.disconnect();
  await Promise.all([server.stop(), cluster.stop()]);
});

async function removeKeys(prefix: string): Promise<void> {
  for (const admin of admins) {
    const keys = await admin.keys(`${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`);
    // One by one: in the cluster, keys of different stores live in different slots.
    for (const key of keys) await admin.del(key);
  }
}

runStoreContract('redis', async () => {
  const keyPrefix = `contract-${++counter}:`;
  return {
    store: new RedisStore({ url: server.url, ttlSeconds: null, keyPrefix }),
    cleanup: () => removeKeys(keyPrefix),
  };
});

runStoreContract('redis cluster', async () => {
  const keyPrefix = `{contract-${++counter}}:`;
  return {
    store: new RedisStore({ url: cluster.url, ttlSeconds: null, keyPrefix, cluster: true }),
    cleanup: () => removeKeys(keyPrefix),
  };
});
