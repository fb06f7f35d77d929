// Creating a response, start to finish: resolve the model, load the context, call the
// provider, assemble output (streaming events as it goes), persist, report. The HTTP layer and
// the library face both drive this; neither knows about stores or providers directly.

import type { LanguageModelV4StreamPart } from '@ai-sdk/provider';
import { ApiError, invalidRequest, notFound, storeUnavailable } from '../protocol/errors.ts';
import { newId } from '../protocol/ids.ts';
import { nowSeconds, type ResponseState, toResponseObject } from '../protocol/response.ts';
import type { CreateResponseRequest, Item, ResponseObject, StreamEvent } from '../protocol/types.ts';
import { toUpstreamError } from '../providers/call.ts';
import { toCallOptions, toModelPrompt } from '../providers/prompt.ts';
import { startResilientCall } from '../providers/resilient-call.ts';
import type { ModelRegistry, ResolvedModel } from '../providers/types.ts';
import type { CompactRequest, CompactResource } from '../protocol/compact.ts';
import type { ConversationStore, ItemPage, ListOptions, StoredResponse, TurnResult } from '../store/types.ts';
import { ChainBrokenError, DEFAULT_TENANT, StoreConflictError } from '../store/types.ts';
import { effectiveExpiry, nowSeconds as storeNow } from '../store/codec.ts';
import { addUsage, sumCosts, usageCost } from './bookkeeping.ts';
import { ContextCache } from './context-cache.ts';
import { ConversationCache } from './conversation-cache.ts';
import { ContextManager, type ContextOptions } from './context.ts';
import { type ConversationTurn, Conversations } from './conversations.ts';
import { TenantScopedStore } from './tenant-scope.ts';
import { type EventSink, OutputAssembler } from './output.ts';
import { applyStop } from './stop.ts';
import { ENCRYPTED_REASONING, renderIncludes, TurnSurface } from './surface.ts';

export interface EngineOptions {
  store: ConversationStore | null;
  models: ModelRegistry;
  /** Retention applied to every stored response; null keeps them until deleted. */
  ttlSeconds: number | null;
  /** Reports failures the client cannot see (e.g. a store write after the client left). */
  onBackgroundError?: (error: unknown, context: string) => void;
  /** Compaction settings and the library's context policy hook (engine/context.ts). */
  context?: ContextOptions;
  /** The tenant this engine acts for (default `DEFAULT_TENANT`); see forTenant. */
  tenant?: string;
}

export interface CreateOptions {
  /** Aborted when the client goes away: the upstream request is aborted with it. */
  signal?: AbortSignal;
  /** Receives every stream event, already stamped with its sequence number. */
  onEvent?: (event: StreamEvent) => void;
  /**
   * Background mode (`request.background`): called once the turn is stored as `queued`, before
   * the model is called. `state` then changes as the turn runs (see BackgroundRuns).
   */
  onQueued?: (state: ResponseState) => void;
  /**
   * Asked after each upstream part's events went to `onEvent`: a promise (the client is not
   * reading: its buffer is full) holds the next read from the upstream until it resolves, so a slow
   * client slows the upstream down instead of filling the gateway's memory.
   */
  backpressure?: () => Promise<void> | null;
}

export class Engine {
  /** Whose records this engine reads and writes: another tenant's id is an unknown id here. */
  readonly tenant: string;
  /** The store as this tenant sees it (engine/tenant-scope.ts). */
  readonly store: ConversationStore | null;
  readonly models: ModelRegistry;
  /** The Conversations API, and the serialisation of turns on one conversation. */
  readonly conversations: Conversations;
  /** Compaction, the context policy and the window: what of the history each turn sends. */
  readonly context: ContextManager;
  private readonly ttlSeconds: number | null;
  private onBackgroundError: (error: unknown, context: string) => void;

  readonly #options: EngineOptions;
  /** The engine forTenant was first called on; it keeps one engine per tenant. */
  #root: Engine = this;
  readonly #tenants = new Map<string, Engine>();
  /**
   * Decoded turns kept in process, when the store can tell that nothing else changed them
   * (ConversationStore.changeToken); null otherwise, and every turn loads its chain.
   */
  readonly #cache: ContextCache | null;

  /**
   * @param shared the root engine's caches, for a tenant's engine (forTenant): one of each for all
   * tenants, bounded once. Safe to share: a cached turn is handed only to its own tenant (the
   * chain cache checks every turn's tenant), and a turn reads its conversation through the
   * tenant's scope before the conversation cache is consulted.
   */
  constructor(options: EngineOptions, shared?: { chains: ContextCache | null; conversations: ConversationCache | null }) {
    this.#options = options;
    const raw = options.store;
    this.#cache =
      raw !== null && typeof raw.changeToken === 'function' && raw.defaultTtlSeconds !== undefined
        ? (shared?.chains ?? new ContextCache())
        : null;
    this.tenant = options.tenant ?? DEFAULT_TENANT;
    this.store = options.store ? new TenantScopedStore(options.store, this.tenant) : null;
    this.models = options.models;
    this.ttlSeconds = options.ttlSeconds;
    this.onBackgroundError = options.onBackgroundError ?? (() => {});
    this.context = new ContextManager(options.models, options.context);
    this.conversations = new Conversations({
      store: this.store,
      ttlSeconds: options.ttlSeconds,
      reportError: (error, context) => this.onBackgroundError(error, context),
      cache:
        raw !== null && typeof raw.changeToken === 'function' && typeof raw.loadConversationItemsFrom === 'function'
          ? { items: shared?.conversations ?? new ConversationCache(), changeToken: () => raw.changeToken!() }
          : null,
    });
  }

  /**
   * Forgets the decoded chains and conversations kept in process, for every tenant; each loads
   * from the store on its next turn. (What they hold is bounded; this frees it at once.)
   */
  dropCaches(): void {
    this.#cache?.clear(); // each one for all tenants
    this.conversations.cache?.clear();
  }

  setBackgroundErrorReporter(report: (error: unknown, context: string) => void): void {
    this.onBackgroundError = report;
  }

  /**
   * The same engine acting for `tenant`: what it creates belongs to that tenant, and it sees
   * nothing of any other. One per tenant, kept (turns on a conversation queue in its instance).
   */
  forTenant(tenant: string): Engine {
    if (tenant === this.tenant) return this;
    const root = this.#root;
    if (root !== this) return root.forTenant(tenant);
    let engine = this.#tenants.get(tenant);
    if (!engine) {
      engine = new Engine(
        { ...this.#options, tenant, onBackgroundError: (error, context) => this.onBackgroundError(error, context) },
        { chains: this.#cache, conversations: this.conversations.cache },
      );
      engine.#root = this;
      this.#tenants.set(tenant, engine);
    }
    return engine;
  }

  /**
   * Runs one turn. Errors before the first event (bad input, unknown model or history, store
   * down, upstream refused) throw an ApiError and change nothing a client can continue from.
   * Once events flow, failures end the stream with `response.failed` and the turn is stored as failed.
   */
  async createResponse(request: CreateResponseRequest, options: CreateOptions = {}): Promise<ResponseObject> {
    if (request.conversation === null) return this.runTurn(request, options, null);
    return this.runConversationTurn(request, options, request.conversation);
  }

  /**
   * A turn on a conversation holds it from before its context is loaded until the turn is
   * persisted (finishTurn appends input + output atomically), so concurrent turns serialise.
   */
  private async runConversationTurn(
    request: CreateResponseRequest,
    options: CreateOptions,
    conversationId: string,
  ): Promise<ResponseObject> {
    if (!request.store) {
      throw invalidRequest(
        '`store: false` cannot be used with `conversation`: the turn must be stored to be added to the conversation.',
        'store',
        'invalid_value',
      );
    }
    this.models.resolve(request.model); // an unknown model fails before waiting for the conversation
    const conversation = await this.conversations.beginTurn(conversationId, options.signal);
    try {
      return await this.runTurn(request, options, conversation);
    } finally {
      await conversation.release();
    }
  }

  private async runTurn(
    request: CreateResponseRequest,
    options: CreateOptions,
    conversation: ConversationTurn | null,
  ): Promise<ResponseObject> {
    const resolved = this.models.resolve(request.model);
    const surface = new TurnSurface(request, resolved);
    const history =
      conversation !== null
        ? conversation.items
        : request.previous_response_id === null
          ? []
          : await this.loadHistory(request.previous_response_id);
    const context: Item[] = history.length === 0 ? request.input : [...history, ...request.input];
    const prepared = await this.context.prepare(context, request, resolved, options.signal);
    const prompt = toModelPrompt(prepared.items, request.params.instructions);

    const persist = request.store && this.store !== null;
    if (request.background && !persist) {
      throw invalidRequest('Background mode needs state storage: configure `state_storage`.', 'background', 'state_storage_disabled');
    }
    const createdAt = nowSeconds();
    const state: ResponseState = {
      id: newId('resp'),
      model: request.model,
      status: request.background ? 'queued' : 'in_progress',
      createdAt,
      completedAt: null,
      previousResponseId: request.previous_response_id,
      params: request.params,
      output: [],
      usage: null,
      error: null,
      incompleteDetails: null,
      store: request.store,
      background: request.background,
      conversationId: conversation?.id ?? null,
    };

    // A background turn's row must exist before the client is answered `queued`. A foreground
    // turn writes its in-progress row while the provider is being called: `response.created`
    // still waits for both (no client sees an id the store does not have), but the store's write
    // no longer adds to the time to the first token. If the write fails, the call is aborted and
    // the client gets the store's error, as before; nothing was stored.
    let begun: Promise<ApiError | null> | null = null;
    let callSignal = options.signal;
    if (persist) {
      const row = this.toStored(state, request.input, conversation?.user ?? null);
      const begin = () => this.storeCall(() => this.store!.beginTurn(row));
      if (request.background) {
        await begin();
      } else {
        // Started on the next turn of the event loop, once the upstream request below has been
        // sent: a synchronous store (SQLite) then writes while the upstream works, instead of
        // before the request leaves.
        const write = new Promise<void>((resolve) => setImmediate(resolve)).then(begin);
        const abortCall = new AbortController();
        callSignal = options.signal ? AbortSignal.any([options.signal, abortCall.signal]) : abortCall.signal;
        begun = write.then(
          () => null,
          (error: unknown) => {
            abortCall.abort();
            return error instanceof ApiError ? error : storeUnavailable(error);
          },
        );
      }
    }

    let sequence = 0;
    const onEvent = surface.sink(options.onEvent, () => state.output);
    const emit: EventSink | null = onEvent
      ? (event) => {
          (event as StreamEvent).sequence_number = sequence++;
          onEvent(event as StreamEvent);
        }
      : null;

    const assembler = new OutputAssembler(emit);
    state.output = assembler.output;
    if (request.background) {
      // The client has its answer (`queued`) before the model is called; the turn runs on.
      options.onQueued?.(state);
      emit?.({ type: 'response.created', response: toResponseObject(state) });
      emit?.({ type: 'response.queued', response: toResponseObject(state) });
      state.status = 'in_progress';
      emit?.({ type: 'response.in_progress', response: toResponseObject(state) });
    }
    let parts: AsyncIterable<LanguageModelV4StreamPart>;
    let served: ResolvedModel = resolved;
    try {
      // Timeouts, retries and fallbacks happen in there, all before the first chunk.
      ({ parts, served } = await startResilientCall(this.models, surface.model(resolved), {
        prompt,
        options: toCallOptions(request.params),
        params: request.params,
        // Background turns stream upstream whatever the client asked, so polls see progress.
        stream: request.stream || request.background,
        ...(callSignal ? { signal: callSignal } : {}),
      }));
    } catch (error) {
      const storeError = begun === null ? null : await begun;
      if (storeError !== null) throw storeError;
      const apiError = toUpstreamError(error, options.signal);
      if (persist) await this.recordFailure(state, apiError, options.signal);
      if (!request.background) throw apiError;
      // A background client was answered long ago: the failure is the response's status.
      const failed = surface.render(toResponseObject(state), state.output);
      emit?.({ type: 'response.failed', response: failed });
      return failed;
    }

    const storeError = begun === null ? null : await begun;
    if (storeError !== null) throw storeError; // the call was aborted with the write's failure

    if (!request.background) {
      emit?.({ type: 'response.created', response: toResponseObject(state) });
      emit?.({ type: 'response.in_progress', response: toResponseObject(state) });
    }
    // The summary that now stands in for the older turns is the turn's first output item.
    if (prepared.compaction) assembler.addComplete(prepared.compaction);

    let failure: ApiError | null = null;
    try {
      for await (const part of surface.observe(parts, () => state.output, request.background ? options.signal : undefined)) {
        const problem = assembler.push(part);
        if (problem) {
          failure = toUpstreamError(problem.error, options.signal);
          break;
        }
        const slowClient = options.backpressure?.();
        if (slowClient) await slowClient;
      }
    } catch (error) {
      failure = toUpstreamError(error, options.signal);
    }

    if (failure) {
      assembler.closeAll('incomplete');
      state.status = 'failed';
      state.error = { code: failure.code ?? 'upstream_error', message: failure.message };
      applyStop(state, options.signal);
    } else {
      const incomplete = assembler.finishReason === 'length' ? 'max_output_tokens' : assembler.finishReason === 'content-filter' ? 'content_filter' : null;
      assembler.closeAll(incomplete ? 'incomplete' : 'completed');
      state.status = incomplete ? 'incomplete' : 'completed';
      state.incompleteDetails = incomplete ? { reason: incomplete } : null;
      state.completedAt = nowSeconds();
    }
    state.usage = addUsage(assembler.usage, prepared.compactionUsage);
    const costUsd = sumCosts(usageCost(assembler.usage, served.pricing), usageCost(prepared.compactionUsage, prepared.compactionModel?.pricing));

    if (persist) {
      try {
        const ticket = this.#cache?.ticket() ?? 0;
        await this.store!.finishTurn(state.id, this.toResult(state, costUsd));
        this.#cacheTurn(ticket, state, request.input);
      } catch (error) {
        if (request.background && error instanceof StoreConflictError) {
          // Finished elsewhere first (cancelled through another gateway instance, or marked stale):
          // the stored outcome stands, and is what the client is told.
          const stored = await this.store!.getResponse(state.id).catch(() => null);
          state.status = stored?.status ?? 'cancelled';
          state.error = stored?.error ?? null;
          state.completedAt = stored?.completedAt ?? null;
        } else {
          // The turn could not be saved: say so rather than report a completion nobody can continue.
          const storeError = storeUnavailable(error);
          if (!emit) throw storeError;
          state.status = 'failed';
          state.error = { code: 'state_storage_unavailable', message: storeError.message };
          this.onBackgroundError(error, `saving turn ${state.id}`);
        }
      }
    }

    if (!emit) {
      // A turn stopped at the shutdown deadline is answered `incomplete`, like its stream would be.
      if (failure && !request.background && state.status !== 'incomplete') throw failure;
      return surface.render(toResponseObject(state), state.output);
    }
    const terminal = state.status === 'completed' ? 'response.completed' : state.status === 'incomplete' ? 'response.incomplete' : 'response.failed';
    const response = surface.render(toResponseObject(state), state.output);
    emit({ type: terminal, response });
    return response;
  }

  /** `include` as on create: `reasoning.encrypted_content` adds the replay envelope to reasoning items. */
  async getResponse(id: string, include: readonly string[] = []): Promise<ResponseObject> {
    const stored = await this.storeCall(() => this.requireStore('response_id').getResponse(id));
    if (!stored) throw notFound(`No response found with id '${id}'.`, 'response_id');
    return renderIncludes(toResponseObject(fromStored(stored)), stored.output, include.includes(ENCRYPTED_REASONING));
  }

  /**
   * POST /v1/responses/input_tokens: the input tokens this request would send, history included,
   * after `truncation` (see context/window.ts for how they are counted).
   */
  async countInputTokens(request: CreateResponseRequest): Promise<number> {
    // Compaction items in the history count as the summaries they stand for; none is made here.
    const resolved = this.models.resolve(request.model);
    let history: Item[] = [];
    if (request.conversation !== null) {
      const conversationId = request.conversation;
      const items = await this.storeCall(() => this.requireStore('conversation').loadConversationItems(conversationId));
      if (!items) throw notFound(`Conversation with id '${conversationId}' not found.`, 'conversation');
      history = items;
    } else if (request.previous_response_id !== null) {
      history = await this.loadHistory(request.previous_response_id);
    }
    const { items, tokens } = await this.context.countInputTokens([...history, ...request.input], request, resolved);
    toModelPrompt(items, request.params.instructions); // the same 400s as creating the response
    return tokens;
  }

  /** POST /v1/responses/compact: the context (history and input) summarised into a compaction item. */
  async compact(request: CompactRequest, signal?: AbortSignal): Promise<CompactResource> {
    this.models.resolve(request.model);
    const history = request.previous_response_id === null ? [] : await this.loadHistory(request.previous_response_id);
    return this.context.compact([...history, ...request.input], request, signal);
  }

  /** Deletes every response and conversation of `user` (a data-protection request). */
  async deleteUserData(user: string): Promise<{ responses: number; conversations: number }> {
    return this.storeCall(() => this.requireStore('user').deleteUserData(DEFAULT_TENANT, user)).finally(() =>
      this.#cache?.clear(),
    );
  }

  async deleteResponse(id: string): Promise<{ id: string; object: 'response'; deleted: true }> {
    const deleted = await this.storeCall(() => this.requireStore('response_id').deleteResponse(id)).finally(() =>
      this.#cache?.invalidate(id),
    );
    if (!deleted) throw notFound(`No response found with id '${id}'.`, 'response_id');
    return { id, object: 'response', deleted: true };
  }

  async listInputItems(id: string, options: ListOptions): Promise<ItemPage> {
    const page = await this.storeCall(() => this.requireStore('response_id').listInputItems(id, options));
    if (!page) throw notFound(`No response found with id '${id}'.`, 'response_id');
    return page;
  }

  /** Every ancestor's input and output, oldest first. Never partial: a gap is an error. */
  private async loadHistory(previousId: string): Promise<Item[]> {
    if (!this.store) {
      throw invalidRequest(
        'This gateway runs without state storage, so `previous_response_id` cannot be used. Configure `state_storage` or send the whole conversation as `input`.',
        'previous_response_id',
        'state_storage_disabled',
      );
    }
    const cache = this.#cache;
    let ticket = 0;
    if (cache !== null) {
      const raw = this.#options.store!;
      ticket = cache.sync(await this.storeCall(() => raw.changeToken!()));
      const cached = cache.context(previousId, storeNow(), this.tenant);
      if (cached !== null) return cached;
    }
    let chain: StoredResponse[] | null;
    try {
      chain = await this.store.loadChain(previousId);
    } catch (error) {
      if (error instanceof ChainBrokenError) {
        throw invalidRequest(
          `Previous response '${previousId}' cannot be continued: part of its history was deleted.`,
          'previous_response_id',
          'previous_response_not_found',
        );
      }
      throw storeUnavailable(error);
    }
    if (!chain) {
      throw invalidRequest(`Previous response with id '${previousId}' not found.`, 'previous_response_id', 'previous_response_not_found');
    }
    const last = chain[chain.length - 1];
    if (last.status === 'in_progress' || last.status === 'queued') {
      throw invalidRequest(
        `Previous response '${previousId}' is still in progress; wait for it to finish before continuing it.`,
        'previous_response_id',
        'previous_response_in_progress',
      );
    }
    if (last.status === 'failed' || last.status === 'cancelled') {
      throw invalidRequest(
        `Previous response '${previousId}' ${last.status === 'failed' ? 'failed' : 'was cancelled'} and cannot be continued; continue from its parent instead.`,
        'previous_response_id',
        'previous_response_not_usable',
      );
    }
    cache?.fillChain(ticket, chain);
    const items: Item[] = [];
    for (const turn of chain) {
      for (const item of turn.input) items.push(item);
      for (const item of turn.output) items.push(item);
    }
    return items;
  }

  /** Keeps a turn this engine has just stored in the context cache, with the expiry the store gave it. */
  #cacheTurn(ticket: number, state: ResponseState, input: Item[]): void {
    const cache = this.#cache;
    if (cache === null) return;
    const expiresAt = effectiveExpiry(
      this.ttlSeconds === null ? null : state.createdAt + this.ttlSeconds,
      state.createdAt,
      this.#options.store!.defaultTtlSeconds ?? null,
    );
    try {
      cache.fillTurn(
        ticket,
        { id: state.id, tenant: this.tenant, previousResponseId: state.previousResponseId, status: state.status, expiresAt },
        input,
        state.output,
      );
    } catch {
      cache.clear(); // the turn is stored; the next one loads its chain
    }
  }

  private async recordFailure(state: ResponseState, error: ApiError, signal?: AbortSignal): Promise<void> {
    state.status = 'failed';
    state.error = { code: error.code ?? 'upstream_error', message: error.message };
    applyStop(state, signal);
    try {
      await this.store!.finishTurn(state.id, this.toResult(state));
    } catch (storeError) {
      this.onBackgroundError(storeError, `recording failed turn ${state.id}`);
    }
  }

  private requireStore(param: string): ConversationStore {
    if (!this.store) {
      throw new ApiError(404, 'invalid_request_error', 'This gateway runs without state storage: responses are not stored.', {
        param,
        code: 'state_storage_disabled',
      });
    }
    return this.store;
  }

  /** Any store failure is the client's 503, never a silent fallback. */
  private async storeCall<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof ApiError) throw error;
      throw storeUnavailable(error);
    }
  }

  /** `owner`: the conversation's user, for a turn on it without a `user` of its own (deleteUserData finds it). */
  private toStored(state: ResponseState, input: Item[], owner: string | null = null): StoredResponse {
    return {
      id: state.id,
      tenant: DEFAULT_TENANT,
      user: state.params.user ?? owner,
      previousResponseId: state.previousResponseId,
      conversationId: state.conversationId ?? null,
      model: state.model,
      status: state.status,
      createdAt: state.createdAt,
      completedAt: null,
      expiresAt: this.ttlSeconds === null ? null : state.createdAt + this.ttlSeconds,
      params: state.params,
      input,
      output: [],
      usage: null,
      error: null,
      incompleteDetails: null,
    };
  }

  private toResult(state: ResponseState, costUsd: number | null = null): TurnResult {
    return {
      status: state.status as TurnResult['status'],
      completedAt: state.completedAt,
      output: state.output,
      usage: state.usage,
      error: state.error,
      incompleteDetails: state.incompleteDetails,
      costUsd,
    };
  }
}

function fromStored(stored: StoredResponse): ResponseState {
  return {
    id: stored.id,
    model: stored.model,
    status: stored.status,
    createdAt: stored.createdAt,
    completedAt: stored.completedAt,
    previousResponseId: stored.previousResponseId,
    params: stored.params,
    output: stored.output,
    usage: stored.usage,
    error: stored.error,
    incompleteDetails: stored.incompleteDetails,
    store: true,
    background: stored.params.background === true,
    conversationId: stored.conversationId,
  };
}
