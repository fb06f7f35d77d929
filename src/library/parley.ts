// createParley: the gateway's engine in-process, without HTTP. Every method takes the body the
// HTTP endpoint takes, validates it with the same code (so a mistake is the same 400 ApiError) and
// answers with the same objects: `parley.responses.create(body)` is POST /v1/responses.

import type { LanguageModelV4 } from '@ai-sdk/provider';
import { loadConfigFile } from '../config/load.ts';
import { formatPath, validateConfig } from '../config/schema.ts';
import { type CompactionConfig, ConfigError, type ParleyConfig, type StateStorageConfig } from '../config/types.ts';
import type { ContextPolicy } from '../context/policy.ts';
import { BackgroundRuns } from '../engine/background.ts';
import type { ConversationDetails, UserDataDeleted } from '../engine/bookkeeping.ts';
import { Engine } from '../engine/engine.ts';
import type { CompactResource } from '../protocol/compact.ts';
import { parseCompactRequest } from '../protocol/compact.ts';
import {
  type ConversationDeleted,
  type ConversationObject,
  type ListObject,
  parseAddItems,
  parseCreateConversation,
  parseForkConversation,
  parseIncludeQuery,
  parseListConversations,
  parseMergeMetadata,
  parsePaging,
  parseUpdateConversation,
  toListObject,
} from '../protocol/conversations.ts';
import { invalidRequest } from '../protocol/errors.ts';
import { parseInputTokensRequest } from '../protocol/input-tokens.ts';
import type {
  ConversationCreateParams,
  ConversationForkParams,
  ConversationListParams,
  InputItemParam,
  InputTokensCountParams,
  ListParams,
  ResponseCompactParams,
  ResponseCreateParams,
} from '../protocol/params.ts';
import { parseCreateResponse, parseInclude } from '../protocol/request.ts';
import { toClientItem } from '../protocol/response.ts';
import type { CreateResponseRequest, Item, ResponseObject, StreamEvent } from '../protocol/types.ts';
import { type CodeModel, isLanguageModel, withCodeModels } from '../providers/code-models.ts';
import { createModelRegistry } from '../providers/registry.ts';
import type { ModelInfo, ModelRegistry } from '../providers/types.ts';
import { createStore } from '../store/index.ts';
import type { ConversationStore } from '../store/types.ts';
import { ResponseStream } from './stream.ts';

/** parley.yaml as an object: the same keys, validated the same way (no `$VAR` substitution). */
export interface ParleyConfigInput {
  state_storage?: StateStorageInput | null;
  model_providers?: Record<string, unknown>[] | null;
  compaction?: { model?: string | null; instructions?: string | null } | null;
  [key: string]: unknown;
}

/** `state_storage` as in parley.yaml, e.g. `{ type: 'sqlite', path: './parley.db', ttl: '30d' }`. */
export type StateStorageInput = { type: 'memory' | 'sqlite' | 'postgres' | 'redis' } & Record<string, unknown>;

/** A model given in code: the AI SDK model itself, or it with settings. */
export type ModelInput = LanguageModelV4 | Omit<CodeModel, 'name'>;

export interface ParleyOptions {
  /** A parley.yaml path (with `$VAR` substitution from process.env), or the same as an object. */
  config?: string | ParleyConfigInput;
  /**
   * Where state lives: a ConversationStore (not yet opened: Parley opens it, and closes it on
   * close()), or a `state_storage` config. Overrides the config's. null: stateless. Default: the
   * config's `state_storage`, else an in-memory store.
   */
  store?: ConversationStore | StateStorageInput | null;
  /** Models given in code, by the name requests send as `model`; they win over configured names. */
  models?: Record<string, ModelInput>;
  /** Your own strategy for what of a long history reaches the model (context/policy.ts). */
  contextPolicy?: ContextPolicy;
  /** Which model writes compaction summaries, and with what instructions (default: the request's model). */
  compaction?: { model?: string | null; instructions?: string | null };
  /** Retention of stored responses and conversations, in seconds; default: the config's `ttl`, else none. */
  ttlSeconds?: number | null;
  /** Failures no caller awaits (a background turn's store write, a lease renewal). Default: ignored. */
  onError?: (error: unknown, context: string) => void;
}

export interface RequestOptions {
  /** Aborting it aborts the turn and its upstream request, as a client disconnecting would. */
  signal?: AbortSignal;
}

/** Parameters to resume the event stream of a background response. */
export interface ResumeStreamParams {
  response_id: string;
  starting_after?: number | null;
  include?: string[] | null;
}

export interface Parley {
  responses: {
    create(body: ResponseCreateParams & { stream: true }, options?: RequestOptions): Promise<ResponseStream>;
    create(body: ResponseCreateParams, options?: RequestOptions): Promise<ResponseObject>;
    /** Streams a new response, or resumes a background response's events (`response_id`). */
    stream(body: Omit<ResponseCreateParams, 'stream'> | ResumeStreamParams, options?: RequestOptions): ResponseStream;
    retrieve(id: string, query?: { include?: string[] | null }): Promise<ResponseObject>;
    delete(id: string): Promise<{ id: string; object: 'response'; deleted: true }>;
    cancel(id: string): Promise<ResponseObject>;
    compact(body: ResponseCompactParams, options?: RequestOptions): Promise<CompactResource>;
    inputItems: { list(id: string, query?: ListParams): Promise<ListObject<Item>> };
    inputTokens: { count(body: InputTokensCountParams): Promise<{ object: 'response.input_tokens'; input_tokens: number }> };
  };
  conversations: {
    create(body?: ConversationCreateParams): Promise<ConversationObject>;
    retrieve(id: string): Promise<ConversationObject>;
    /** Replaces the metadata (OpenAI's semantics). */
    update(id: string, body: { metadata: Record<string, string> }): Promise<ConversationObject>;
    delete(id: string): Promise<ConversationDeleted>;
    /** Parley extension: by user, metadata pairs and creation time, newest first. */
    list(query?: ConversationListParams): Promise<ListObject<ConversationObject>>;
    /** Parley extension: merges metadata atomically (a string sets a key, null removes it). */
    mergeMetadata(id: string, metadata: Record<string, string | null>): Promise<ConversationObject>;
    /** Parley extension: user, timestamps, item count and running token and cost totals. */
    details(id: string): Promise<ConversationDetails>;
    /** Parley extension: a new conversation with the items up to `item_id` (default: all). */
    fork(id: string, body?: ConversationForkParams): Promise<ConversationObject>;
    /** Parley extension: deletes every response and conversation of `user` (as users.delete). */
    deleteUserData(user: string): Promise<UserDataDeleted>;
    items: {
      create(id: string, body: { items: InputItemParam[] }): Promise<ListObject<Item>>;
      list(id: string, query?: ListParams & { include?: string[] }): Promise<ListObject<Item>>;
      retrieve(itemId: string, params: { conversation_id: string }): Promise<Item>;
      delete(itemId: string, params: { conversation_id: string }): Promise<ConversationObject>;
    };
  };
  users: {
    /** Deletes every response and conversation of `user` (DELETE /v1/users/{user}). */
    delete(user: string): Promise<UserDataDeleted>;
  };
  models: { list(): ModelInfo[] };
  /** The engine and store underneath, for what the facade does not cover. */
  readonly engine: Engine;
  readonly store: ConversationStore | null;
  /** Stops background turns (stored failed), closes the store. */
  close(): Promise<void>;
}

export async function createParley(options: ParleyOptions | string = {}): Promise<Parley> {
  const opts: ParleyOptions = typeof options === 'string' ? { config: options } : options;
  return parleyFromConfig(await loadConfig(opts.config), opts);
}

/** createParley from an already validated config (the CLI's, resolved like `parley serve` does). */
export async function parleyFromConfig(config: ParleyConfig | null, opts: Omit<ParleyOptions, 'config'> = {}): Promise<Parley> {
  const models = withCodeModels(
    createModelRegistry(config?.model_providers ?? []),
    Object.entries(opts.models ?? {}).map(([name, value]) => (isLanguageModel(value) ? { name, model: value } : { ...value, name })),
  );

  let store: ConversationStore | null;
  let ttlSeconds = opts.ttlSeconds ?? null;
  if (opts.store === null) store = null;
  else if (opts.store !== undefined && isStore(opts.store)) store = opts.store;
  else {
    const storage: StateStorageConfig =
      opts.store !== undefined
        ? storageFromInput(opts.store)
        : (config?.state_storage ?? { type: 'memory', ttl_seconds: null, max_entries: 10_000 });
    if (opts.ttlSeconds === undefined) ttlSeconds = storage.ttl_seconds;
    store = await createStore(storage);
  }

  const compaction: CompactionConfig | null =
    opts.compaction !== undefined
      ? { model: opts.compaction.model ?? null, instructions: opts.compaction.instructions ?? null }
      : (config?.compaction ?? null);
  const onError = opts.onError ?? (() => {});
  const engine = new Engine({
    store,
    models,
    ttlSeconds,
    onBackgroundError: onError,
    context: { compaction, policy: opts.contextPolicy ?? null },
  });
  if (store) await store.open();
  const background = new BackgroundRuns(engine, { onError });
  return buildParley(engine, models, store, background);
}

function buildParley(engine: Engine, models: ModelRegistry, store: ConversationStore | null, background: BackgroundRuns): Parley {
  const conversations = engine.conversations;
  let closed = false;

  const streamCreate = (request: CreateResponseRequest, options: RequestOptions) =>
    new ResponseStream(async (emit, signal) => {
      const abort = linked(signal, options.signal);
      if (request.background) {
        const queued = await background.start(request);
        await background.stream(queued.id, { startingAfter: null, include: request.include }, subscriber(emit), abort);
        return null;
      }
      return engine.createResponse(request, { signal: abort, onEvent: emit });
    });

  const deleteUserData = async (user: string): Promise<UserDataDeleted> => {
    if (typeof user !== 'string' || user.length === 0) throw invalidRequest('The user must be a non-empty string.', 'user', 'invalid_value');
    return { object: 'user.data.deleted', user, deleted: true, ...(await engine.deleteUserData(user)) };
  };

  const responses: Parley['responses'] = {
    // biome-ignore lint/suspicious/noExplicitAny: overloads share one implementation
    async create(body: ResponseCreateParams, options: RequestOptions = {}): Promise<any> {
      const request = parseCreateResponse(body);
      if (request.stream) return streamCreate(request, options);
      if (request.background) return background.start(request);
      return engine.createResponse(request, options.signal ? { signal: options.signal } : {});
    },
    stream(body, options = {}) {
      if ('response_id' in body) {
        return new ResponseStream(async (emit, signal) => {
          const include = parseInclude(body.include);
          const after = body.starting_after ?? null;
          if (after !== null && (!Number.isInteger(after) || after < -1)) {
            throw invalidRequest("Invalid 'starting_after': expected a sequence number.", 'starting_after', 'invalid_value');
          }
          await background.stream(body.response_id, { startingAfter: after, include }, subscriber(emit), linked(signal, options.signal));
          return null;
        });
      }
      let request: CreateResponseRequest;
      try {
        request = parseCreateResponse({ ...body, stream: true });
      } catch (error) {
        return new ResponseStream(() => Promise.reject(error));
      }
      return streamCreate(request, options);
    },
    retrieve: async (id, query = {}) => engine.getResponse(id, parseInclude(query.include)),
    delete: async (id) => engine.deleteResponse(id),
    cancel: async (id) => background.cancel(id),
    compact: async (body, options = {}) => engine.compact(parseCompactRequest(body), options.signal),
    inputItems: {
      async list(id, query = {}) {
        const page = await engine.listInputItems(id, parsePaging(pagingQuery(query)));
        return toListObject(page.items.map(toClientItem), page.hasMore);
      },
    },
    inputTokens: {
      async count(body) {
        return { object: 'response.input_tokens', input_tokens: await engine.countInputTokens(parseInputTokensRequest(body)) };
      },
    },
  };

  return {
    responses,
    conversations: {
      // async throughout: a bad argument is a rejected promise, never a synchronous throw.
      create: async (body) => conversations.create(parseCreateConversation(body)),
      retrieve: async (id) => conversations.retrieve(id),
      update: async (id, body) => conversations.update(id, parseUpdateConversation(body).metadata),
      delete: async (id) => conversations.delete(id),
      list: async (query = {}) => conversations.list(parseListConversations(listQuery(query))),
      mergeMetadata: async (id, metadata) => conversations.mergeMetadata(id, parseMergeMetadata({ metadata })),
      details: async (id) => conversations.details(id),
      fork: async (id, body) => conversations.fork(id, parseForkConversation(body)),
      deleteUserData,
      items: {
        create: async (id, body) => conversations.addItems(id, parseAddItems(body)),
        async list(id, query = {}) {
          parseIncludeQuery({ include: query.include });
          return conversations.listItems(id, parsePaging(pagingQuery(query)));
        },
        retrieve: async (itemId, params) => conversations.retrieveItem(params.conversation_id, itemId),
        delete: async (itemId, params) => conversations.deleteItem(params.conversation_id, itemId),
      },
    },
    users: { delete: deleteUserData },
    models: { list: () => models.list() },
    engine,
    store,
    async close() {
      if (closed) return;
      closed = true;
      await background.shutdown();
      await store?.close();
    },
  };
}

async function loadConfig(source: ParleyOptions['config']): Promise<ParleyConfig | null> {
  if (source === undefined) return null;
  if (typeof source === 'string') return loadConfigFile(source);
  return validated(source);
}

function validated(data: unknown): ParleyConfig {
  const result = validateConfig(data);
  if (!result.ok) {
    throw new ConfigError(result.problems.map((p) => ({ path: formatPath(p.path), message: p.message })));
  }
  return result.config;
}

function storageFromInput(input: StateStorageInput): StateStorageConfig {
  try {
    return validated({ state_storage: input }).state_storage!;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError(error.problems.map((p) => ({ ...p, path: p.path.replace(/^state_storage/, 'store') })));
  }
}

function isStore(value: ConversationStore | StateStorageInput): value is ConversationStore {
  return typeof (value as ConversationStore).beginTurn === 'function';
}

function subscriber(emit: (event: StreamEvent) => void) {
  return { open() {}, send: emit, end() {} };
}

/** A signal aborted by either. */
function linked(a: AbortSignal, b: AbortSignal | undefined): AbortSignal {
  return b ? AbortSignal.any([a, b]) : a;
}

/** List parameters as the query string the HTTP layer parses (so both validate alike). */
function pagingQuery(query: ListParams): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (query.limit !== undefined) out.limit = String(query.limit);
  if (query.order !== undefined) out.order = query.order;
  if (query.after !== undefined) out.after = query.after;
  return out;
}

function listQuery(query: ConversationListParams): Record<string, unknown> {
  const out = pagingQuery(query);
  if (query.user !== undefined) out.user = query.user;
  if (query.created_after !== undefined) out.created_after = String(query.created_after);
  if (query.created_before !== undefined) out.created_before = String(query.created_before);
  for (const [key, value] of Object.entries(query.metadata ?? {})) out[`metadata[${key}]`] = value;
  return out;
}
