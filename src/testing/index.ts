// `parley/testing`: the ConversationStore contract suite (node:test), to verify a store of your own
// the way every built-in backend is verified. See docs/custom-store.md.

export type { MakeStore } from './store-contract.ts';
export {
  assistantMessage,
  completed,
  defaultParams,
  finished,
  newConversation,
  newTurn,
  runStoreContract,
  userMessage,
  zeroUsage,
} from './store-contract.ts';
