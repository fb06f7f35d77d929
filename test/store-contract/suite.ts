// The contract suite lives in src/testing/store-contract.ts so users can run it against their own
// backend (`import { runStoreContract } from 'parley/testing'`); the backend tests import it from here.
export * from '../../src/testing/store-contract.ts';
