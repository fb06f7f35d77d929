// `parley`: the library face. The gateway's engine in-process (createParley), the Responses and
// Conversations types it speaks, the ConversationStore contract for backends of your own (verify
// one with `runStoreContract` from `parley/testing`), and the context-window tools.

export { createParley } from './library/parley.ts';
export type {
  ModelInput,
  Parley,
  ParleyConfigInput,
  ParleyOptions,
  RequestOptions,
  ResumeStreamParams,
  StateStorageInput,
} from './library/parley.ts';
export { ResponseStream } from './library/stream.ts';
export { outputText } from './library/output-text.ts';

// The wire: request bodies, objects, items, events, errors.
export type * from './protocol/types.ts';
export type * from './protocol/params.ts';
export type { ConversationDeleted, ConversationObject, ListObject } from './protocol/conversations.ts';
export type { CompactResource } from './protocol/compact.ts';
export type { ConversationDetails, UserDataDeleted } from './engine/bookkeeping.ts';
export { ApiError } from './protocol/errors.ts';
export type { ErrorBody, ErrorType } from './protocol/errors.ts';

// Models given in code, and the configuration.
export type { CodeModel } from './providers/code-models.ts';
export type { ModelInfo } from './providers/types.ts';
export { ConfigError } from './config/types.ts';
export type { CompactionConfig, ModelPricing, ParleyConfig, ProviderConfig, StateStorageConfig } from './config/types.ts';

// Context windows: the policy hook, a ready-made policy, token counting.
export type { ContextPolicy, ContextPolicyInfo } from './context/policy.ts';
export { lastTurns } from './context/policy.ts';
export { tokenCounterFor } from './context/tokens.ts';
export type { EncodingName, TokenCounter } from './context/tokens.ts';

// The store contract, and the in-memory backend (others are chosen by `store: { type, … }`).
export type * from './store/types.ts';
export { ChainBrokenError, DEFAULT_TENANT, StoreConflictError } from './store/types.ts';
/** The error failStaleTurns records, exactly (every backend uses this value). */
export { INTERRUPTED_ERROR } from './store/codec.ts';
export { MemoryStore } from './store/memory.ts';
export type { MemoryStoreOptions } from './store/memory.ts';
