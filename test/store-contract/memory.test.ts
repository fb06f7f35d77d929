import { MemoryStore } from '../../src/store/memory.ts';
import { runStoreContract } from './suite.ts';

runStoreContract('memory', async () => ({
  store: new MemoryStore({ maxEntries: 100_000, ttlSeconds: null }),
}));
