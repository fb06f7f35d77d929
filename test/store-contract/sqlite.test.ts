import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { runStoreContract } from './suite.ts';

// A real file exercises WAL and the on-disk path; `:memory:` is what tests elsewhere may use.
runStoreContract('sqlite (file)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'parley-sqlite-contract-'));
  return {
    store: new SqliteStore({ path: join(dir, 'nested', 'parley.db'), ttlSeconds: null }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

runStoreContract('sqlite (:memory:)', async () => ({
  store: new SqliteStore({ path: ':memory:', ttlSeconds: null }),
}));
