// The ConversationStore contract: every backend (memory, sqlite, postgres, redis) runs exactly this
// suite, and so can a backend of your own (`import { runStoreContract } from 'parley/testing'`,
// see docs/custom-store.md). Items and responses must come back deep-equal to what went in.
//
// `makeStore` is called once per test and must return a NEW, EMPTY, NOT YET OPENED store with no
// default TTL (the suite calls open() and close(), then `cleanup`). Shared servers should hand out
// a fresh schema / key prefix per call.

import { defaultRequestParams } from '../protocol/defaults.ts';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type {
  FunctionCallItem,
  FunctionCallOutputItem,
  Item,
  MessageItem,
  ReasoningItem,
  Usage,
} from '../protocol/types.ts';
import { INTERRUPTED_ERROR } from '../store/codec.ts';
import type {
  ConversationQuery,
  ConversationStore,
  ConversationUsage,
  ExportFilter,
  ExportRecord,
  ItemPage,
  StoredConversation,
  StoredRequestParams,
  StoredResponse,
  TurnResult,
} from '../store/types.ts';
import { ChainBrokenError, DEFAULT_TENANT, StoreConflictError } from '../store/types.ts';

export type MakeStore = () => Promise<{ store: ConversationStore; cleanup?: () => Promise<void> }>;

// ---------- fixtures ----------

const NOW = () => Math.floor(Date.now() / 1000);

export function newId(prefix: string): string {
  return `${prefix}_${randomUUID().replaceAll('-', '')}`;
}

/** Follows `after` cursors (pages of 2) to the end; fails if a page is null or paging never ends. */
async function walkPages(list: (after: string | undefined) => Promise<ItemPage | null>): Promise<Item[]> {
  const seen: Item[] = [];
  let after: string | undefined;
  for (let guard = 0; guard < 20; guard++) {
    const page = await list(after);
    assert.ok(page);
    seen.push(...page.items);
    if (!page.hasMore) return seen;
    after = page.items[page.items.length - 1].id;
  }
  assert.fail('paging did not end within 20 pages');
}

export function defaultParams(): StoredRequestParams {
  return defaultRequestParams();
}

export function userMessage(text: string, id = newId('msg')): MessageItem {
  return { type: 'message', id, role: 'user', status: 'completed', content: [{ type: 'input_text', text }] };
}

export function assistantMessage(text: string, id = newId('msg')): MessageItem {
  return {
    type: 'message',
    id,
    role: 'assistant',
    status: 'completed',
    content: [{ type: 'output_text', text, annotations: [] }],
  };
}

/** A new in-progress turn; override any field. */
export function newTurn(overrides: Partial<StoredResponse> = {}): StoredResponse {
  return {
    id: newId('resp'),
    tenant: DEFAULT_TENANT,
    user: null,
    previousResponseId: null,
    conversationId: null,
    model: 'openai/gpt-4o',
    status: 'in_progress',
    createdAt: NOW(),
    completedAt: null,
    expiresAt: null,
    params: defaultParams(),
    input: [userMessage('hello')],
    output: [],
    usage: null,
    error: null,
    incompleteDetails: null,
    ...overrides,
  };
}

export function completed(output: Item[], overrides: Partial<TurnResult> = {}): TurnResult {
  return {
    status: 'completed',
    completedAt: NOW(),
    output,
    usage: {
      input_tokens: 10,
      output_tokens: 5,
      total_tokens: 15,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens_details: { reasoning_tokens: 0 },
    },
    error: null,
    incompleteDetails: null,
    costUsd: null,
    ...overrides,
  };
}

/** What getResponse must return after beginTurn(turn) + finishTurn(turn.id, result). */
export function finished(turn: StoredResponse, result: TurnResult): StoredResponse {
  return {
    ...turn,
    status: result.status,
    completedAt: result.completedAt,
    output: result.output,
    usage: result.usage,
    error: result.error,
    incompleteDetails: result.incompleteDetails,
  };
}

/** A conversation's running totals before its first turn. */
export function zeroUsage(): ConversationUsage {
  return { input_tokens: 0, output_tokens: 0, total_tokens: 0, cost_usd: 0, turns: 0 };
}

/**
 * A new conversation record; `itemCount` should equal the number of initial items passed with it.
 * `updatedAt` defaults to the createdAt given.
 */
export function newConversation(overrides: Partial<StoredConversation> = {}): StoredConversation {
  const createdAt = overrides.createdAt ?? NOW();
  return {
    id: newId('conv'),
    tenant: DEFAULT_TENANT,
    createdAt,
    metadata: {},
    user: null,
    itemCount: 0,
    expiresAt: null,
    usage: zeroUsage(),
    updatedAt: createdAt,
    ...overrides,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `expected` with the updatedAt the store set on `actual`, once that is checked to lie between
 * `since` and now (a change stamps the time it happened, in unix seconds).
 */
export function withUpdatedAt(
  expected: StoredConversation,
  actual: StoredConversation | null | undefined,
  since: number,
): StoredConversation {
  assert.ok(actual, 'the conversation is missing');
  const now = NOW();
  assert.ok(
    actual.updatedAt >= since && actual.updatedAt <= now,
    `updatedAt ${actual.updatedAt} is not within [${since}, ${now}]`,
  );
  return { ...expected, updatedAt: actual.updatedAt };
}

/** Items of every type and content part the store must keep verbatim. */
function everyKindOfItem(): { input: Item[]; output: Item[] } {
  const callId = newId('call');
  const image: MessageItem = {
    type: 'message',
    id: newId('msg'),
    role: 'user',
    status: 'completed',
    content: [
      { type: 'input_text', text: 'What is in this picture, and what is the weather in Paris?' },
      { type: 'input_image', image_url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'high', file_id: null },
      { type: 'input_image', image_url: null, file_id: 'file_123', detail: 'auto' },
      { type: 'input_file', filename: 'notes.txt', file_data: 'data:text/plain;base64,aGk=' },
    ],
  };
  const developer: MessageItem = {
    type: 'message',
    id: newId('msg'),
    role: 'developer',
    status: 'completed',
    content: [{ type: 'input_text', text: 'Answer briefly.' }],
  };
  const priorOutput: FunctionCallOutputItem = {
    type: 'function_call_output',
    id: newId('fco'),
    call_id: 'call_earlier',
    output: [{ type: 'input_text', text: 'structured tool output' }],
    status: 'completed',
  };
  const reasoning: ReasoningItem = {
    type: 'reasoning',
    id: newId('rs'),
    summary: [{ type: 'summary_text', text: 'The user wants the weather.' }],
    content: [{ type: 'reasoning_text', text: 'I should call get_weather.' }],
    encrypted_content: 'gAAAAB-opaque==',
    provider_metadata: {
      anthropic: { signature: 'sig-abc', redacted: false, blocks: [1, 2.5, null, { nested: ['x'] }] },
    },
  };
  const call: FunctionCallItem = {
    type: 'function_call',
    id: newId('fc'),
    call_id: callId,
    name: 'get_weather',
    arguments: '{"city":"Paris","unit":"celsius"}',
    status: 'completed',
  };
  const callOutput: FunctionCallOutputItem = {
    type: 'function_call_output',
    id: newId('fco'),
    call_id: callId,
    output: '{"temperature":21}',
    status: 'completed',
  };
  const answer: MessageItem = {
    type: 'message',
    id: newId('msg'),
    role: 'assistant',
    status: 'completed',
    content: [
      {
        type: 'output_text',
        text: 'A cat. It is 21 °C in Paris.',
        annotations: [{ type: 'url_citation', url: 'https://example.com', start_index: 0, end_index: 5 }],
        logprobs: [],
      },
      { type: 'refusal', refusal: 'I will not identify the person.' },
    ],
  };
  return { input: [developer, image, priorOutput, callOutput], output: [reasoning, call, answer] };
}

/** How many records seedVariedStore writes (all live, so all exported). */
export const VARIED_STORE_COUNTS = { responses: 13, conversations: 3 } as const;

/**
 * Fills an open store with a bit of everything export and import must carry: chains with branches,
 * every kind of item, several tenants and users, completed, failed, cancelled and unfinished turns
 * (one with progress output), a conversation with initial, appended and turn items, running totals
 * with cost, a deleted item (itemCount above the items held), a fork, an empty conversation, expiries.
 */
export async function seedVariedStore(store: ConversationStore): Promise<void> {
  const finish = async (turn: StoredResponse, result: TurnResult) => {
    await store.beginTurn(turn);
    await store.finishTurn(turn.id, result);
    return turn;
  };
  const chain = async (length: number, parent: string | null) => {
    const turns: StoredResponse[] = [];
    for (let i = 0; i < length; i++) {
      const previousResponseId = turns.at(-1)?.id ?? parent;
      const turn = newTurn({ previousResponseId, input: [userMessage(`question ${i}`)] });
      turns.push(await finish(turn, completed([assistantMessage(`answer ${i}`)])));
    }
    return turns;
  };
  const { input, output } = everyKindOfItem();
  const trunk = await chain(3, null);
  await chain(2, trunk[1].id);
  await chain(1, trunk[2].id);
  await finish(
    newTurn({ tenant: 'acme', user: 'alice', input, expiresAt: NOW() + 86_400, createdAt: 1_750_000_000 }),
    completed(output),
  );
  await finish(newTurn({ tenant: 'acme', user: 'bob', previousResponseId: trunk[0].id }), {
    ...completed([]),
    status: 'failed',
    usage: null,
    error: { code: 'x', message: 'y' },
  });
  const queued = newTurn({ status: 'queued', tenant: 'globex' });
  await store.beginTurn(queued);
  await store.saveProgress(queued.id, {
    status: 'in_progress',
    output: [{ ...assistantMessage('par'), status: 'in_progress' }],
  });

  const conversation = newConversation({
    tenant: 'acme',
    user: 'alice',
    metadata: { topic: 'weather', 'ключ 🔑': 'значение' },
    createdAt: 1_750_000_100,
    itemCount: input.length,
  });
  await store.createConversation(conversation, [...input]);
  await store.appendConversationItems(conversation.id, [userMessage('appended')]);
  for (let i = 0; i < 3; i++) {
    await finish(
      newTurn({
        tenant: 'acme',
        user: 'alice',
        conversationId: conversation.id,
        input: [userMessage(`q${i}`)],
      }),
      completed([assistantMessage(`a${i}`)], { costUsd: 0.125 }),
    );
  }
  await finish(newTurn({ tenant: 'acme', conversationId: conversation.id }), {
    ...completed([assistantMessage('cut')]),
    status: 'cancelled',
    usage: null,
  });
  const second = (await store.loadConversationItems(conversation.id))![1];
  assert.equal(await store.deleteConversationItem(conversation.id, second.id), true);
  const fork = newConversation({ tenant: 'acme', user: 'carol' });
  assert.ok(await store.forkConversation(conversation.id, input[2].id, fork));
  await store.createConversation(
    newConversation({ metadata: { empty: 'yes' }, expiresAt: NOW() + 86_400 }),
    [],
  );
}

// ---------- export helpers (also for tests that move state between backends) ----------

/** Every record `exportRecords(filter)` yields, in its order. */
export async function collectExport(
  store: ConversationStore,
  filter: ExportFilter = {},
): Promise<ExportRecord[]> {
  const records: ExportRecord[] = [];
  for await (const record of store.exportRecords(filter)) records.push(record);
  return records;
}

/**
 * The order exportRecords promises: responses first, each after its parent when the parent is
 * exported too, then conversations; nothing twice.
 */
export function assertExportOrder(records: readonly ExportRecord[]): void {
  const exported = new Set(records.flatMap((r) => (r.type === 'response' ? [r.response.id] : [])));
  const seen = new Set<string>();
  let inConversations = false;
  for (const record of records) {
    const id = record.type === 'response' ? record.response.id : record.conversation.id;
    assert.ok(!seen.has(id), `${id} is exported twice`);
    seen.add(id);
    if (record.type === 'conversation') {
      inConversations = true;
      continue;
    }
    assert.ok(!inConversations, `response ${id} comes after a conversation`);
    const parent = record.response.previousResponseId;
    if (parent !== null && exported.has(parent)) {
      assert.ok(seen.has(parent), `response ${id} comes before its parent ${parent}`);
    }
  }
}

export interface ExportSnapshot {
  /** By id. */
  responses: StoredResponse[];
  /** By conversation id. */
  conversations: { conversation: StoredConversation; items: Item[] }[];
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * Everything a store holds as export sees it, checked for export order, then sorted by id: an
 * order every backend agrees on, so snapshots of stores of any two backends compare with deepEqual
 * (for example after memory -> sqlite -> postgres -> redis -> sqlite).
 */
export async function exportAll(
  store: ConversationStore,
  filter: ExportFilter = {},
): Promise<ExportSnapshot> {
  const records = await collectExport(store, filter);
  assertExportOrder(records);
  const responses: StoredResponse[] = [];
  const conversations: ExportSnapshot['conversations'] = [];
  for (const record of records) {
    if (record.type === 'response') responses.push(record.response);
    else conversations.push({ conversation: record.conversation, items: record.items });
  }
  responses.sort(byId);
  conversations.sort((a, b) => byId(a.conversation, b.conversation));
  return { responses, conversations };
}

// ---------- the suite ----------

export function runStoreContract(name: string, makeStore: MakeStore): void {
  describe(`ConversationStore contract: ${name}`, () => {
    let store: ConversationStore;
    let cleanup: (() => Promise<void>) | undefined;

    beforeEach(async () => {
      const made = await makeStore();
      store = made.store;
      cleanup = made.cleanup;
      await store.open();
    });

    afterEach(async () => {
      await store.close();
      await cleanup?.();
    });

    /** beginTurn + finishTurn; returns what the store must now hold. */
    async function storeTurn(turn: StoredResponse, output: Item[] = [assistantMessage('ok')]) {
      await store.beginTurn(turn);
      const result = completed(output);
      await store.finishTurn(turn.id, result);
      return finished(turn, result);
    }

    /** A linear chain of `length` finished turns, root first. */
    async function storeChain(length: number, parent: string | null = null): Promise<StoredResponse[]> {
      const chain: StoredResponse[] = [];
      let previous = parent;
      for (let i = 0; i < length; i++) {
        const turn = newTurn({ previousResponseId: previous, input: [userMessage(`question ${i}`)] });
        chain.push(await storeTurn(turn, [assistantMessage(`answer ${i}`)]));
        previous = turn.id;
      }
      return chain;
    }

    describe('lifecycle', () => {
      it('opens, answers ping, and describes itself', async () => {
        await store.ping();
        assert.equal(typeof store.description, 'string');
        assert.ok(store.description.length > 0);
      });
    });

    describe('beginTurn / finishTurn / getResponse', () => {
      it('round-trips every field and every item type', async () => {
        const { input, output } = everyKindOfItem();
        const turn = newTurn({
          previousResponseId: null,
          conversationId: newId('conv'),
          model: 'anthropic/claude-sonnet-4-5',
          status: 'queued',
          createdAt: 1_750_000_000,
          expiresAt: NOW() + 86_400,
          params: {
            instructions: 'You are terse.',
            tools: [
              {
                type: 'function',
                name: 'get_weather',
                description: 'Weather for a city',
                parameters: {
                  type: 'object',
                  properties: { city: { type: 'string' }, unit: { enum: ['celsius', 'fahrenheit'] } },
                  required: ['city'],
                  additionalProperties: false,
                },
                strict: true,
              },
              { type: 'function', name: 'noop', description: null, parameters: null, strict: null },
            ],
            tool_choice: { type: 'function', name: 'get_weather' },
            parallel_tool_calls: false,
            temperature: 0.7,
            top_p: 0.95,
            presence_penalty: -0.5,
            frequency_penalty: 1.25,
            top_logprobs: 3,
            max_output_tokens: 1024,
            max_tool_calls: 8,
            reasoning: { effort: 'high', summary: 'auto' },
            truncation: 'auto',
            user: 'user-42',
            safety_identifier: 'safe-1',
            prompt_cache_key: 'cache-key',
            service_tier: 'flex',
            text: {
              format: {
                type: 'json_schema',
                name: 'answer',
                description: null,
                schema: { type: 'object', properties: { a: { type: 'number' } } },
                strict: true,
              },
              verbosity: 'low',
            },
            metadata: { user: 'u-1', trace: 'abc' },
          },
          input,
        });
        await store.beginTurn(turn);
        const result: TurnResult = {
          status: 'incomplete',
          completedAt: 1_750_000_042,
          output,
          usage: {
            input_tokens: 1200,
            output_tokens: 345,
            total_tokens: 1545,
            input_tokens_details: { cached_tokens: 1000 },
            output_tokens_details: { reasoning_tokens: 120 },
          },
          error: { code: 'server_error', message: 'upstream stopped early' },
          incompleteDetails: { reason: 'max_output_tokens' },
          costUsd: null,
        };
        await store.finishTurn(turn.id, result);
        assert.deepEqual(await store.getResponse(turn.id), finished(turn, result));
      });

      it('returns an unfinished turn with its status and no output', async () => {
        const turn = newTurn({ status: 'in_progress' });
        await store.beginTurn(turn);
        assert.deepEqual(await store.getResponse(turn.id), turn);
      });

      it('keeps failed and cancelled turns with their status and error', async () => {
        const failedTurn = newTurn();
        await store.beginTurn(failedTurn);
        const failure: TurnResult = {
          status: 'failed',
          completedAt: null,
          output: [],
          usage: null,
          error: { code: 'rate_limit_exceeded', message: 'Upstream said 429.' },
          incompleteDetails: null,
          costUsd: null,
        };
        await store.finishTurn(failedTurn.id, failure);
        assert.deepEqual(await store.getResponse(failedTurn.id), finished(failedTurn, failure));

        const cancelledTurn = newTurn({ status: 'queued' });
        await store.beginTurn(cancelledTurn);
        const cancel: TurnResult = {
          ...failure,
          status: 'cancelled',
          error: null,
          output: [assistantMessage('par')],
        };
        await store.finishTurn(cancelledTurn.id, cancel);
        assert.deepEqual(await store.getResponse(cancelledTurn.id), finished(cancelledTurn, cancel));
      });

      it('round-trips a turn with no items at all', async () => {
        const turn = newTurn({ input: [] });
        assert.deepEqual(await storeTurn(turn, []), await store.getResponse(turn.id));
        const stored = await store.getResponse(turn.id);
        assert.deepEqual(stored?.input, []);
        assert.deepEqual(stored?.output, []);
      });

      it('returns null for an unknown id', async () => {
        assert.equal(await store.getResponse(newId('resp')), null);
      });

      it('rejects beginTurn with an id that exists, leaving the original untouched', async () => {
        const turn = newTurn();
        const expected = await storeTurn(turn);
        await assert.rejects(
          store.beginTurn({ ...newTurn({ id: turn.id }), input: [userMessage('impostor')] }),
          StoreConflictError,
        );
        assert.deepEqual(await store.getResponse(turn.id), expected);
      });

      it('lets exactly one of several concurrent beginTurn calls with the same id win', async () => {
        const id = newId('resp');
        const attempts = Array.from({ length: 5 }, (_, i) =>
          newTurn({ id, input: [userMessage(`attempt ${i}`)] }),
        );
        const results = await Promise.allSettled(attempts.map((turn) => store.beginTurn(turn)));
        const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
        assert.equal(winners.length, 1);
        for (const r of results) {
          if (r.status === 'rejected') assert.ok(r.reason instanceof StoreConflictError, String(r.reason));
        }
        assert.deepEqual(await store.getResponse(id), attempts[winners[0]]);
      });

      it('rejects finishTurn of an unknown id', async () => {
        await assert.rejects(store.finishTurn(newId('resp'), completed([])), StoreConflictError);
      });

      it('rejects finishTurn of a turn that is already finished, keeping the first result', async () => {
        const turn = newTurn();
        const expected = await storeTurn(turn, [assistantMessage('first')]);
        await assert.rejects(
          store.finishTurn(turn.id, completed([assistantMessage('second')])),
          StoreConflictError,
        );
        await assert.rejects(
          store.finishTurn(turn.id, {
            ...completed([]),
            status: 'failed',
            error: { code: 'x', message: 'y' },
          }),
          StoreConflictError,
        );
        assert.deepEqual(await store.getResponse(turn.id), expected);
      });

      it('restores params exactly: defaults, unset members, extra members', async () => {
        const { user: _dropped, ...withoutUser } = defaultParams();
        const variants: StoredRequestParams[] = [
          defaultParams(),
          { ...defaultParams(), background: true, metadata: { k: 'v' }, temperature: 0 },
          withoutUser as StoredRequestParams,
          { ...defaultParams(), tool_choice: 'none' },
        ];
        for (const params of variants) {
          const turn = newTurn({ params });
          await store.beginTurn(turn);
          assert.deepEqual((await store.getResponse(turn.id))!.params, params);
          assert.deepEqual((await store.loadChain(turn.id))![0].params, params);
        }
      });

      it('is not affected by callers mutating what they passed in or got back', async () => {
        const turn = newTurn({ input: [userMessage('original')] });
        const pristine = structuredClone(turn);
        await store.beginTurn(turn);
        (turn.input[0] as MessageItem).content = [{ type: 'input_text', text: 'mutated' }];
        turn.params.metadata.sneaky = 'yes';
        const output = [assistantMessage('answer')];
        const result = completed(output);
        const pristineResult = structuredClone(result);
        await store.finishTurn(turn.id, result);
        output.push(assistantMessage('late'));
        result.usage!.input_tokens = 999;

        const expected = finished(pristine, pristineResult);
        const got = await store.getResponse(turn.id);
        assert.deepEqual(got, expected);
        got!.input.push(userMessage('injected'));
        got!.params.tools.push({
          type: 'function',
          name: 'x',
          description: null,
          parameters: null,
          strict: null,
        });
        const chain = await store.loadChain(turn.id);
        chain![0].output.length = 0;
        assert.deepEqual(await store.getResponse(turn.id), expected);
        assert.deepEqual(await store.loadChain(turn.id), [expected]);
      });

      it('lands 50 concurrent beginTurn and finishTurn calls', async () => {
        const parent = await storeTurn(newTurn());
        const turns = Array.from({ length: 50 }, (_, i) =>
          newTurn({
            previousResponseId: i % 2 === 0 ? parent.id : null,
            input: [userMessage(`concurrent ${i}`)],
          }),
        );
        await Promise.all(turns.map((turn) => store.beginTurn(turn)));
        const results = turns.map((_, i) => completed([assistantMessage(`reply ${i}`)]));
        await Promise.all(turns.map((turn, i) => store.finishTurn(turn.id, results[i])));
        const got = await Promise.all(turns.map((turn) => store.getResponse(turn.id)));
        assert.deepEqual(
          got,
          turns.map((turn, i) => finished(turn, results[i])),
        );
        const chains = await Promise.all(turns.map((turn) => store.loadChain(turn.id)));
        chains.forEach((chain, i) => {
          assert.deepEqual(chain, i % 2 === 0 ? [parent, got[i]] : [got[i]]);
        });
      });
    });

    describe('items', () => {
      it('keep insertion order and ids across many mixed items', async () => {
        const input: Item[] = [];
        const output: Item[] = [];
        for (let i = 0; i < 40; i++) {
          const { input: ins, output: outs } = everyKindOfItem();
          input.push(ins[i % ins.length]);
          output.push(outs[i % outs.length]);
        }
        // Ids deliberately not in lexical order, so a backend sorting by id is caught.
        input.push(userMessage('z-last', 'msg_000'), userMessage('a', 'msg_zzz'));
        const turn = newTurn({ input });
        const expected = await storeTurn(turn, output);
        const got = await store.getResponse(turn.id);
        assert.deepEqual(got, expected);
        assert.deepEqual(
          got!.input.map((item) => item.id),
          input.map((item) => item.id),
        );
        assert.deepEqual(
          got!.output.map((item) => item.id),
          output.map((item) => item.id),
        );
      });

      it('round-trips a 1 MB text item', async () => {
        const big = 'The quick brown fox jumps over the lazy dog. '.repeat(23_302).slice(0, 1_048_576);
        assert.equal(big.length, 1_048_576);
        const turn = newTurn({ input: [userMessage(big)] });
        const expected = await storeTurn(turn, [assistantMessage(big.toUpperCase())]);
        assert.deepEqual(await store.getResponse(turn.id), expected);
        assert.deepEqual(await store.loadChain(turn.id), [expected]);
      });

      it('round-trips unicode, control characters and NUL', async () => {
        const texts = [
          'emoji 😀👩🏽‍💻🏳️‍🌈 and combining é (e\u0301)',
          '中文 日本語 한국어 — CJK',
          'RTL: עברית العربية \u200f mixed ltr',
          'NUL here -> \u0000 <- and again\u0000',
          'controls \u0001\u001f\t\r\n\b\f "quotes" \\backslash\\ \u2028\u2029',
          '\ud83d\ude00 as explicit surrogate pair, \uffff, \u{10ffff}',
          '',
        ];
        const turn = newTurn({
          input: texts.map((text) => userMessage(text)),
          params: {
            ...defaultParams(),
            instructions: texts.join(' | '),
            metadata: { 'ключ 🔑': 'значение\u0000' },
          },
        });
        const expected = await storeTurn(
          turn,
          texts.map((text) => assistantMessage(text)),
        );
        assert.deepEqual(await store.getResponse(turn.id), expected);
        assert.deepEqual(await store.loadChain(turn.id), [expected]);
        const page = await store.listInputItems(turn.id, { limit: 100, order: 'asc' });
        assert.deepEqual(page?.items, turn.input);
      });
    });

    describe('loadChain', () => {
      it('returns the chain root first, each turn with only its own items', async () => {
        const chain = await storeChain(3);
        assert.deepEqual(await store.loadChain(chain[2].id), chain);
        assert.deepEqual(await store.loadChain(chain[1].id), chain.slice(0, 2));
        assert.deepEqual(await store.loadChain(chain[0].id), chain.slice(0, 1));
      });

      it('returns null for an unknown id', async () => {
        assert.equal(await store.loadChain(newId('resp')), null);
      });

      it('keeps branches apart: each child loads only its own chain', async () => {
        const trunk = await storeChain(2);
        const left = await storeChain(2, trunk[1].id);
        const right = await storeChain(1, trunk[1].id);
        assert.deepEqual(await store.loadChain(left[1].id), [...trunk, ...left]);
        assert.deepEqual(await store.loadChain(right[0].id), [...trunk, ...right]);
        assert.deepEqual(await store.loadChain(trunk[1].id), trunk);
      });

      it('includes unfinished and failed ancestors as stored (the engine decides what is context)', async () => {
        const root = await storeTurn(newTurn());
        const failedTurn = newTurn({ previousResponseId: root.id });
        await store.beginTurn(failedTurn);
        const failure: TurnResult = {
          status: 'failed',
          completedAt: null,
          output: [],
          usage: null,
          error: { code: 'server_error', message: 'boom' },
          incompleteDetails: null,
          costUsd: null,
        };
        await store.finishTurn(failedTurn.id, failure);
        const pending = newTurn({ previousResponseId: failedTurn.id });
        await store.beginTurn(pending);
        assert.deepEqual(await store.loadChain(pending.id), [root, finished(failedTurn, failure), pending]);
      });

      it('loads a chain of 1,000 turns in order', async () => {
        const chain = await storeChain(1000);
        const loaded = await store.loadChain(chain[999].id);
        assert.ok(loaded);
        assert.equal(loaded.length, 1000);
        assert.deepEqual(
          loaded.map((r) => r.id),
          chain.map((r) => r.id),
        );
        assert.deepEqual(loaded, chain);
        const half = await store.loadChain(chain[499].id);
        assert.deepEqual(half, chain.slice(0, 500));
      });

      it('throws ChainBrokenError when an ancestor was deleted', async () => {
        const chain = await storeChain(4);
        assert.equal(await store.deleteResponse(chain[1].id), true);
        for (const tip of [chain[2], chain[3]]) {
          await assert.rejects(store.loadChain(tip.id), (error: unknown) => {
            assert.ok(error instanceof ChainBrokenError, String(error));
            assert.equal(error.responseId, tip.id);
            assert.match(error.message, new RegExp(chain[1].id));
            return true;
          });
          // The descendant itself is intact.
          assert.deepEqual(await store.getResponse(tip.id), tip);
        }
        assert.deepEqual(await store.loadChain(chain[0].id), [chain[0]]);
      });

      it('throws ChainBrokenError when the parent never existed', async () => {
        const orphan = await storeTurn(newTurn({ previousResponseId: newId('resp') }));
        await assert.rejects(store.loadChain(orphan.id), ChainBrokenError);
      });
    });

    describe('deleteResponse', () => {
      it('returns true once, then false; the response and its items are gone', async () => {
        const turn = newTurn({ input: [userMessage('a'), userMessage('b')] });
        await storeTurn(turn);
        assert.equal(await store.deleteResponse(turn.id), true);
        assert.equal(await store.getResponse(turn.id), null);
        assert.equal(await store.loadChain(turn.id), null);
        assert.equal(await store.listInputItems(turn.id, { limit: 20, order: 'asc' }), null);
        assert.equal(await store.deleteResponse(turn.id), false);
        assert.equal(await store.deleteResponse(newId('resp')), false);
      });

      it('leaves the parent, siblings and descendants with their own items', async () => {
        const chain = await storeChain(3);
        const sibling = await storeTurn(newTurn({ previousResponseId: chain[0].id }));
        assert.equal(await store.deleteResponse(chain[1].id), true);
        assert.deepEqual(await store.getResponse(chain[2].id), chain[2]);
        assert.deepEqual(await store.loadChain(chain[0].id), [chain[0]]);
        assert.deepEqual(await store.loadChain(sibling.id), [chain[0], sibling]);
      });
    });

    describe('listInputItems', () => {
      const ids = Array.from({ length: 7 }, (_, i) => `msg_${String.fromCharCode(103 - i)}${i}`); // not sorted
      async function seeded() {
        const input = ids.map((id, i) => userMessage(`item ${i}`, id));
        const turn = newTurn({ input });
        await storeTurn(turn, [assistantMessage('output is not input')]);
        return { turn, input };
      }

      it('lists all input items ascending and descending, never output items', async () => {
        const { turn, input } = await seeded();
        assert.deepEqual(await store.listInputItems(turn.id, { limit: 100, order: 'asc' }), {
          items: input,
          hasMore: false,
        });
        assert.deepEqual(await store.listInputItems(turn.id, { limit: 100, order: 'desc' }), {
          items: [...input].reverse(),
          hasMore: false,
        });
      });

      it('pages with limit, after and hasMore in both orders', async () => {
        const { turn, input } = await seeded();
        assert.deepEqual(await store.listInputItems(turn.id, { limit: 3, order: 'asc' }), {
          items: input.slice(0, 3),
          hasMore: true,
        });
        assert.deepEqual(await store.listInputItems(turn.id, { limit: 3, order: 'asc', after: ids[2] }), {
          items: input.slice(3, 6),
          hasMore: true,
        });
        assert.deepEqual(await store.listInputItems(turn.id, { limit: 3, order: 'asc', after: ids[3] }), {
          items: input.slice(4, 7),
          hasMore: false,
        });
        assert.deepEqual(await store.listInputItems(turn.id, { limit: 3, order: 'asc', after: ids[6] }), {
          items: [],
          hasMore: false,
        });
        const reversed = [...input].reverse();
        assert.deepEqual(await store.listInputItems(turn.id, { limit: 2, order: 'desc' }), {
          items: reversed.slice(0, 2),
          hasMore: true,
        });
        assert.deepEqual(await store.listInputItems(turn.id, { limit: 2, order: 'desc', after: ids[5] }), {
          items: [input[4], input[3]],
          hasMore: true,
        });
        assert.deepEqual(await store.listInputItems(turn.id, { limit: 7, order: 'desc', after: ids[1] }), {
          items: [input[0]],
          hasMore: false,
        });
        // An exact fit has no further page.
        assert.deepEqual(await store.listInputItems(turn.id, { limit: 7, order: 'asc' }), {
          items: input,
          hasMore: false,
        });
      });

      it('walks every page to the full list', async () => {
        const { turn, input } = await seeded();
        for (const order of ['asc', 'desc'] as const) {
          const seen = await walkPages((after) => store.listInputItems(turn.id, { limit: 2, order, after }));
          assert.deepEqual(seen, order === 'asc' ? input : [...input].reverse());
        }
      });

      it('gives an empty page for an unknown `after` and null for an unknown response', async () => {
        const { turn } = await seeded();
        assert.deepEqual(await store.listInputItems(turn.id, { limit: 3, order: 'asc', after: 'msg_nope' }), {
          items: [],
          hasMore: false,
        });
        assert.equal(await store.listInputItems(newId('resp'), { limit: 3, order: 'asc' }), null);
      });
    });

    describe('expiry', () => {
      it('hides an expired response from getResponse, loadChain and listInputItems', async () => {
        const expired = await storeTurn(newTurn({ expiresAt: NOW() - 60 }));
        const live = await storeTurn(newTurn({ expiresAt: NOW() + 3600 }));
        assert.equal(await store.getResponse(expired.id), null);
        assert.equal(await store.loadChain(expired.id), null);
        assert.equal(await store.listInputItems(expired.id, { limit: 10, order: 'asc' }), null);
        assert.deepEqual(await store.getResponse(live.id), live);
        assert.deepEqual(await store.loadChain(live.id), [live]);
      });

      it('throws ChainBrokenError when an ancestor has expired', async () => {
        const root = await storeTurn(newTurn({ expiresAt: NOW() - 60 }));
        const child = await storeTurn(newTurn({ previousResponseId: root.id, expiresAt: NOW() + 3600 }));
        await assert.rejects(store.loadChain(child.id), ChainBrokenError);
      });

      it('pruneExpired removes only responses whose expiry has passed and returns the count', async () => {
        const now = NOW();
        const gone1 = await storeTurn(newTurn({ expiresAt: now - 100 }));
        const gone2 = await storeTurn(
          newTurn({ expiresAt: now - 1, input: [userMessage('a'), userMessage('b')] }),
        );
        const later = await storeTurn(newTurn({ expiresAt: now + 3600 }));
        const forever = await storeTurn(newTurn({ expiresAt: null }));

        assert.equal(await store.pruneExpired(now), 2);
        assert.equal(await store.pruneExpired(now), 0);
        assert.equal(await store.getResponse(gone1.id), null);
        assert.equal(await store.getResponse(gone2.id), null);
        assert.equal(await store.deleteResponse(gone2.id), false, 'pruned responses are really gone');
        assert.deepEqual(await store.getResponse(later.id), later);

        assert.equal(await store.pruneExpired(now + 7200), 1);
        assert.equal(await store.deleteResponse(later.id), false);
        assert.deepEqual(await store.getResponse(forever.id), forever);
        assert.equal(await store.pruneExpired(now + 10 * 365 * 86_400), 0);
      });
    });

    // ---------- conversations ----------

    /** Creates a conversation holding `items`; returns the record the store must now hold. */
    async function storeConversation(
      items: Item[] = [],
      overrides: Partial<StoredConversation> = {},
    ): Promise<StoredConversation> {
      const conversation = newConversation({ itemCount: items.length, ...overrides });
      await store.createConversation(conversation, items);
      return conversation;
    }

    /** A turn on `conversationId`, finished with `result`; returns the finished turn. */
    async function conversationTurn(conversationId: string, input: Item[], result: TurnResult) {
      const turn = newTurn({ conversationId, input });
      await store.beginTurn(turn);
      await store.finishTurn(turn.id, result);
      return finished(turn, result);
    }

    function failedResult(status: 'failed' | 'cancelled'): TurnResult {
      return {
        status,
        completedAt: null,
        output: [assistantMessage('partial')],
        usage: null,
        error: status === 'failed' ? { code: 'server_error', message: 'boom' } : null,
        incompleteDetails: null,
        costUsd: null,
      };
    }

    describe('conversations: create / get / update / delete', () => {
      it('creates with initial items, metadata and user, and reads them back', async () => {
        const { input, output } = everyKindOfItem();
        const items = [...input, ...output];
        const conversation = await storeConversation(items, {
          metadata: { topic: 'weather', 'ключ 🔑': 'значение' },
          user: 'user-42',
          createdAt: 1_750_000_000,
          expiresAt: NOW() + 86_400,
        });
        assert.deepEqual(await store.getConversation(conversation.id), conversation);
        assert.deepEqual(await store.loadConversationItems(conversation.id), items);
        assert.equal(conversation.itemCount, items.length);
      });

      it('creates an empty conversation', async () => {
        const conversation = await storeConversation();
        assert.deepEqual(await store.getConversation(conversation.id), conversation);
        assert.deepEqual(await store.loadConversationItems(conversation.id), []);
        assert.deepEqual(await store.listConversationItems(conversation.id, { limit: 10, order: 'asc' }), {
          items: [],
          hasMore: false,
        });
      });

      it('returns null for an unknown conversation everywhere', async () => {
        const id = newId('conv');
        assert.equal(await store.getConversation(id), null);
        assert.equal(await store.updateConversation(id, { metadata: { a: 'b' } }), null);
        assert.equal(await store.appendConversationItems(id, [userMessage('x')]), null);
        assert.equal(await store.loadConversationItems(id), null);
        assert.equal(await store.listConversationItems(id, { limit: 10, order: 'asc' }), null);
        assert.equal(await store.getConversationItem(id, 'msg_x'), null);
        assert.equal(await store.deleteConversationItem(id, 'msg_x'), false);
        assert.equal(await store.deleteConversation(id), false);
      });

      it('rejects createConversation with an id that exists, leaving the original untouched', async () => {
        const original = await storeConversation([userMessage('first')], { metadata: { v: '1' } });
        await assert.rejects(
          store.createConversation({ ...original, metadata: { v: '2' }, itemCount: 1 }, [
            userMessage('impostor'),
          ]),
          StoreConflictError,
        );
        assert.deepEqual(await store.getConversation(original.id), original);
        const items = await store.loadConversationItems(original.id);
        assert.equal(items?.length, 1);
        assert.equal((items![0] as MessageItem).content[0].type, 'input_text');
        assert.deepEqual((items![0] as MessageItem).content, [{ type: 'input_text', text: 'first' }]);
      });

      it('updateConversation replaces the metadata and leaves the items alone', async () => {
        const items = [userMessage('a'), assistantMessage('b')];
        const conversation = await storeConversation(items, {
          metadata: { a: '1', b: '2' },
          user: 'u',
          createdAt: 1_750_000_000,
        });
        const since = NOW();
        const updated = await store.updateConversation(conversation.id, { metadata: { c: '3' } });
        const expected = withUpdatedAt({ ...conversation, metadata: { c: '3' } }, updated, since);
        assert.deepEqual(updated, expected);
        assert.deepEqual(await store.getConversation(conversation.id), expected);
        assert.deepEqual(await store.loadConversationItems(conversation.id), items);
        const emptied = await store.updateConversation(conversation.id, { metadata: {} });
        assert.deepEqual(emptied, withUpdatedAt({ ...conversation, metadata: {} }, emptied, since));
      });

      it('deleteConversation removes it and its items, once', async () => {
        const items = [userMessage('a'), assistantMessage('b')];
        const conversation = await storeConversation(items, { user: 'u-del' });
        const other = await storeConversation([userMessage('other')], { user: 'u-del' });
        assert.equal(await store.deleteConversation(conversation.id), true);
        assert.equal(await store.deleteConversation(conversation.id), false);
        assert.equal(await store.getConversation(conversation.id), null);
        assert.equal(await store.loadConversationItems(conversation.id), null);
        assert.equal(await store.listConversationItems(conversation.id, { limit: 10, order: 'asc' }), null);
        assert.equal(await store.getConversationItem(conversation.id, items[0].id), null);
        assert.equal(await store.appendConversationItems(conversation.id, [userMessage('late')]), null);
        const listed = await store.listConversations({
          tenant: DEFAULT_TENANT,
          user: 'u-del',
          limit: 10,
          order: 'asc',
        });
        assert.deepEqual(listed, { conversations: [other], hasMore: false });
        assert.equal((await store.loadConversationItems(other.id))?.length, 1);
      });

      it('deleting a conversation leaves the responses that were part of it', async () => {
        const conversation = await storeConversation();
        const turn = await conversationTurn(
          conversation.id,
          [userMessage('q')],
          completed([assistantMessage('a')]),
        );
        assert.equal(await store.deleteConversation(conversation.id), true);
        assert.deepEqual(await store.getResponse(turn.id), turn);
        assert.deepEqual(await store.loadChain(turn.id), [turn]);
      });

      it('is not affected by callers mutating what they passed in or got back', async () => {
        const items = [userMessage('original')];
        const pristine = structuredClone(items);
        const conversation = await storeConversation(items, { metadata: { k: 'v' } });
        (items[0] as MessageItem).content = [{ type: 'input_text', text: 'mutated' }];
        conversation.metadata.sneaky = 'yes';
        const appended = [assistantMessage('reply')];
        const pristineAppended = structuredClone(appended);
        await store.appendConversationItems(conversation.id, appended);
        (appended[0] as MessageItem).status = 'incomplete';
        const got = await store.loadConversationItems(conversation.id);
        assert.deepEqual(got, [...pristine, ...pristineAppended]);
        got!.length = 0;
        const record = (await store.getConversation(conversation.id)) as StoredConversation;
        assert.deepEqual({ ...record.metadata }, { k: 'v' });
        record.metadata.other = 'x';
        assert.deepEqual((await store.getConversation(conversation.id))?.metadata, { k: 'v' });
        assert.deepEqual(await store.loadConversationItems(conversation.id), [
          ...pristine,
          ...pristineAppended,
        ]);
      });
    });

    describe('conversations: appending', () => {
      it('appends items at the end in order and counts every item ever appended', async () => {
        const initial = [userMessage('zero')];
        const conversation = await storeConversation(initial, { createdAt: 1_750_000_000 });
        const first = [userMessage('one', 'msg_zzz'), assistantMessage('two', 'msg_000')];
        const second = [userMessage('three')];
        const since = NOW();
        const afterFirst = await store.appendConversationItems(conversation.id, first);
        assert.deepEqual(afterFirst, withUpdatedAt({ ...conversation, itemCount: 3 }, afterFirst, since));
        const afterSecond = await store.appendConversationItems(conversation.id, second);
        assert.deepEqual(afterSecond, withUpdatedAt({ ...conversation, itemCount: 4 }, afterSecond, since));
        const afterNone = await store.appendConversationItems(conversation.id, []);
        assert.deepEqual(afterNone, withUpdatedAt({ ...conversation, itemCount: 4 }, afterNone, since));
        assert.deepEqual(await store.loadConversationItems(conversation.id), [
          ...initial,
          ...first,
          ...second,
        ]);
        assert.equal((await store.getConversation(conversation.id))?.itemCount, 4);
      });

      it('finishTurn with conversationId appends the input then the output, only once finished', async () => {
        const initial = [userMessage('context')];
        const conversation = await storeConversation(initial);
        const input = [userMessage('q1'), userMessage('q2')];
        const turn = newTurn({ conversationId: conversation.id, input });
        await store.beginTurn(turn);
        assert.deepEqual(
          await store.loadConversationItems(conversation.id),
          initial,
          'an unfinished turn is not context',
        );
        const output = [assistantMessage('a1'), assistantMessage('a2')];
        const result = completed(output);
        await store.finishTurn(turn.id, result);
        assert.deepEqual(await store.loadConversationItems(conversation.id), [
          ...initial,
          ...input,
          ...output,
        ]);
        assert.equal((await store.getConversation(conversation.id))?.itemCount, 5);
        assert.deepEqual(await store.getResponse(turn.id), finished(turn, result));
      });

      it('appends an incomplete turn, and turns in the order they finish', async () => {
        const conversation = await storeConversation();
        const first = newTurn({ conversationId: conversation.id, input: [userMessage('first q')] });
        const second = newTurn({ conversationId: conversation.id, input: [userMessage('second q')] });
        await store.beginTurn(first);
        await store.beginTurn(second);
        const secondResult: TurnResult = {
          ...completed([assistantMessage('second a (cut)')]),
          status: 'incomplete',
          incompleteDetails: { reason: 'max_output_tokens' },
        };
        await store.finishTurn(second.id, secondResult);
        const firstResult = completed([assistantMessage('first a')]);
        await store.finishTurn(first.id, firstResult);
        assert.deepEqual(await store.loadConversationItems(conversation.id), [
          ...second.input,
          ...secondResult.output,
          ...first.input,
          ...firstResult.output,
        ]);
      });

      it('appends nothing for failed and cancelled turns', async () => {
        const initial = [userMessage('context')];
        const conversation = await storeConversation(initial);
        const failedTurn = await conversationTurn(
          conversation.id,
          [userMessage('q')],
          failedResult('failed'),
        );
        const cancelledTurn = await conversationTurn(
          conversation.id,
          [userMessage('q')],
          failedResult('cancelled'),
        );
        assert.deepEqual(await store.loadConversationItems(conversation.id), initial);
        assert.equal((await store.getConversation(conversation.id))?.itemCount, 1);
        assert.equal((await store.getResponse(failedTurn.id))?.status, 'failed');
        assert.equal((await store.getResponse(cancelledTurn.id))?.status, 'cancelled');
      });

      it('appends nothing more when a finished turn is finished again', async () => {
        const conversation = await storeConversation();
        const turn = await conversationTurn(
          conversation.id,
          [userMessage('q')],
          completed([assistantMessage('a')]),
        );
        await assert.rejects(
          store.finishTurn(turn.id, completed([assistantMessage('again')])),
          StoreConflictError,
        );
        assert.deepEqual(await store.loadConversationItems(conversation.id), [...turn.input, ...turn.output]);
      });

      it('finishes a turn whose conversation was deleted meanwhile, appending nothing', async () => {
        const conversation = await storeConversation();
        const turn = newTurn({ conversationId: conversation.id });
        await store.beginTurn(turn);
        assert.equal(await store.deleteConversation(conversation.id), true);
        const result = completed([assistantMessage('a')]);
        await store.finishTurn(turn.id, result);
        assert.deepEqual(await store.getResponse(turn.id), finished(turn, result));
        assert.equal(await store.loadConversationItems(conversation.id), null);
      });

      it('keeps a turn in the conversation after its response is deleted or pruned', async () => {
        const conversation = await storeConversation([userMessage('context')]);
        const kept = await conversationTurn(
          conversation.id,
          [userMessage('q1')],
          completed([assistantMessage('a1')]),
        );
        const pruned = newTurn({
          conversationId: conversation.id,
          input: [userMessage('q2')],
          expiresAt: NOW() + 2,
        });
        await store.beginTurn(pruned);
        const prunedResult = completed([assistantMessage('a2')]);
        await store.finishTurn(pruned.id, prunedResult);
        const before = await store.loadConversationItems(conversation.id);
        assert.equal(before?.length, 5);

        assert.equal(await store.deleteResponse(kept.id), true);
        assert.ok((await store.pruneExpired(NOW() + 3)) >= 1);
        assert.equal(await store.getResponse(pruned.id), null);
        assert.deepEqual(await store.loadConversationItems(conversation.id), before);
        assert.deepEqual(await store.getConversationItem(conversation.id, kept.output[0].id), kept.output[0]);
        assert.deepEqual(await store.listConversationItems(conversation.id, { limit: 2, order: 'desc' }), {
          items: [prunedResult.output[0], pruned.input[0]],
          hasMore: true,
        });
      });

      it('lands 20 concurrent appends whole: every item, none interleaved', async () => {
        const conversation = await storeConversation([userMessage('start')]);
        const batches = Array.from({ length: 20 }, (_, b) =>
          Array.from({ length: 5 }, (_, i) => userMessage(`batch ${b} item ${i}`, `msg_b${b}_i${i}`)),
        );
        await Promise.all(batches.map((batch) => store.appendConversationItems(conversation.id, batch)));
        const items = await store.loadConversationItems(conversation.id);
        assert.ok(items);
        assert.equal(items.length, 101);
        assert.equal((await store.getConversation(conversation.id))?.itemCount, 101);
        const seen = new Set<number>();
        for (let start = 1; start < items.length; start += 5) {
          const block: Item[] = items.slice(start, start + 5);
          const b: number = Number(/^msg_b(\d+)_i0$/.exec(block[0].id)?.[1]);
          assert.ok(Number.isInteger(b), `block at ${start} starts mid-batch: ${block[0].id}`);
          assert.deepEqual(block, batches[b], `batch ${b} is interleaved`);
          seen.add(b);
        }
        assert.equal(seen.size, 20);
      });

      it('lands 10 concurrent turns on one conversation, each input+output contiguous', async () => {
        const conversation = await storeConversation();
        const turns = Array.from({ length: 10 }, (_, t) =>
          newTurn({ conversationId: conversation.id, input: [userMessage(`q${t}`), userMessage(`q${t}b`)] }),
        );
        await Promise.all(turns.map((turn) => store.beginTurn(turn)));
        const results = turns.map((_, t) =>
          completed([assistantMessage(`a${t}`), assistantMessage(`a${t}b`)]),
        );
        await Promise.all(turns.map((turn, t) => store.finishTurn(turn.id, results[t])));
        const items = await store.loadConversationItems(conversation.id);
        assert.equal(items?.length, 40);
        const seen = new Set<number>();
        for (let start = 0; start < 40; start += 4) {
          const t = turns.findIndex((turn) => turn.input[0].id === items![start].id);
          assert.ok(t >= 0, `item ${start} does not start a turn`);
          assert.deepEqual(items!.slice(start, start + 4), [...turns[t].input, ...results[t].output]);
          seen.add(t);
        }
        assert.equal(seen.size, 10);
      });
    });

    describe('conversations: items', () => {
      const ids = Array.from({ length: 7 }, (_, i) => `msg_${String.fromCharCode(103 - i)}${i}`); // not sorted
      async function seeded() {
        // Items from all three sources: initial, appended, and a turn.
        const all = ids.map((id, i) =>
          i % 2 === 0 ? userMessage(`item ${i}`, id) : assistantMessage(`item ${i}`, id),
        );
        const conversation = await storeConversation(all.slice(0, 2));
        await store.appendConversationItems(conversation.id, all.slice(2, 4));
        const turn = newTurn({ conversationId: conversation.id, input: all.slice(4, 5) });
        await store.beginTurn(turn);
        await store.finishTurn(turn.id, completed(all.slice(5, 7)));
        return { conversation, items: all };
      }

      it('lists all items ascending and descending', async () => {
        const { conversation, items } = await seeded();
        assert.deepEqual(await store.listConversationItems(conversation.id, { limit: 100, order: 'asc' }), {
          items,
          hasMore: false,
        });
        assert.deepEqual(await store.listConversationItems(conversation.id, { limit: 100, order: 'desc' }), {
          items: [...items].reverse(),
          hasMore: false,
        });
      });

      it('pages with limit, after and hasMore in both orders', async () => {
        const { conversation, items } = await seeded();
        const list = (options: { limit: number; order: 'asc' | 'desc'; after?: string }) =>
          store.listConversationItems(conversation.id, options);
        assert.deepEqual(await list({ limit: 3, order: 'asc' }), { items: items.slice(0, 3), hasMore: true });
        assert.deepEqual(await list({ limit: 3, order: 'asc', after: ids[2] }), {
          items: items.slice(3, 6),
          hasMore: true,
        });
        assert.deepEqual(await list({ limit: 3, order: 'asc', after: ids[3] }), {
          items: items.slice(4, 7),
          hasMore: false,
        });
        assert.deepEqual(await list({ limit: 3, order: 'asc', after: ids[6] }), {
          items: [],
          hasMore: false,
        });
        assert.deepEqual(await list({ limit: 2, order: 'desc' }), {
          items: [items[6], items[5]],
          hasMore: true,
        });
        assert.deepEqual(await list({ limit: 2, order: 'desc', after: ids[5] }), {
          items: [items[4], items[3]],
          hasMore: true,
        });
        assert.deepEqual(await list({ limit: 7, order: 'desc', after: ids[1] }), {
          items: [items[0]],
          hasMore: false,
        });
        assert.deepEqual(await list({ limit: 7, order: 'asc' }), { items, hasMore: false });
        assert.deepEqual(await list({ limit: 3, order: 'asc', after: 'msg_nope' }), {
          items: [],
          hasMore: false,
        });
      });

      it('walks every page to the full list', async () => {
        const { conversation, items } = await seeded();
        for (const order of ['asc', 'desc'] as const) {
          const seen = await walkPages((after) =>
            store.listConversationItems(conversation.id, { limit: 2, order, after }),
          );
          assert.deepEqual(seen, order === 'asc' ? items : [...items].reverse());
        }
      });

      it('gets and deletes single items; positions are never reused', async () => {
        const { conversation, items } = await seeded();
        for (const item of items) {
          assert.deepEqual(await store.getConversationItem(conversation.id, item.id), item);
        }
        assert.equal(await store.getConversationItem(conversation.id, 'msg_nope'), null);
        const other = await storeConversation([userMessage('elsewhere')]);
        assert.equal(
          await store.getConversationItem(other.id, items[0].id),
          null,
          'items belong to one conversation',
        );
        assert.equal(await store.deleteConversationItem(other.id, items[0].id), false);

        assert.equal(await store.deleteConversationItem(conversation.id, ids[3]), true);
        assert.equal(await store.deleteConversationItem(conversation.id, ids[3]), false);
        assert.equal(await store.deleteConversationItem(conversation.id, ids[5]), true);
        assert.equal(await store.deleteConversationItem(conversation.id, 'msg_nope'), false);
        assert.equal(await store.getConversationItem(conversation.id, ids[3]), null);
        const remaining = items.filter((item) => item.id !== ids[3] && item.id !== ids[5]);
        assert.deepEqual(await store.loadConversationItems(conversation.id), remaining);
        assert.equal((await store.getConversation(conversation.id))?.itemCount, 7);

        const late = userMessage('late');
        assert.equal((await store.appendConversationItems(conversation.id, [late]))?.itemCount, 8);
        assert.deepEqual(await store.loadConversationItems(conversation.id), [...remaining, late]);
        assert.deepEqual(
          await store.listConversationItems(conversation.id, { limit: 2, order: 'asc', after: ids[2] }),
          {
            items: [items[4], items[6]],
            hasMore: true,
          },
        );
      });
    });

    describe('loadConversationItemsFrom and the change token (optional; the conversation cache)', () => {
      it('gives the items from a position on, with the item count of the same moment', async (t) => {
        const from = store.loadConversationItemsFrom?.bind(store);
        if (from === undefined) return t.skip('not implemented by this backend');
        const initial = [userMessage('a'), userMessage('b')];
        const conversation = await storeConversation(initial);
        assert.deepEqual(await from(conversation.id, 0), { items: initial, itemCount: 2 });
        assert.deepEqual(await from(conversation.id, 2), { items: [], itemCount: 2 });
        const turn = await conversationTurn(conversation.id, [userMessage('q')], completed([assistantMessage('r')]));
        const appended = [userMessage('c')];
        await store.appendConversationItems(conversation.id, appended);
        assert.deepEqual(await from(conversation.id, 2), {
          items: [...turn.input, ...turn.output, ...appended],
          itemCount: 5,
        });
        assert.deepEqual(await from(conversation.id, 4), { items: appended, itemCount: 5 });
        // Positions are kept when an item leaves: the item count does not go back.
        assert.equal(await store.deleteConversationItem(conversation.id, turn.output[0].id), true);
        assert.deepEqual(await from(conversation.id, 3), { items: appended, itemCount: 5 });
        assert.deepEqual(await from(conversation.id, 0), {
          items: [...initial, ...turn.input, ...appended],
          itemCount: 5,
        });
        assert.equal(await from('conv_unknown', 0), null);
        const expired = await storeConversation([userMessage('old')], { expiresAt: NOW() - 60 });
        assert.equal(await from(expired.id, 0), null);
        // Imported with fewer items than it counts (some were deleted before the export): the next
        // item appended takes the position after the count.
        const kept = [userMessage('x'), userMessage('y')];
        const imported = newConversation({ itemCount: 5 });
        await store.importRecords([{ type: 'conversation', conversation: imported, items: kept }]);
        const later = [userMessage('z')];
        await store.appendConversationItems(imported.id, later);
        assert.deepEqual(await from(imported.id, 5), { items: later, itemCount: 6 });
        assert.deepEqual(await from(imported.id, 0), { items: [...kept, ...later], itemCount: 6 });
      });

      it('the change token moves when an item leaves a conversation, not when one joins', async (t) => {
        const token = store.changeToken?.bind(store);
        if (token === undefined) return t.skip('no change token');
        const conversation = await storeConversation([userMessage('a'), userMessage('b')]);
        const other = await storeConversation([userMessage('c')]);
        let before = await token();
        const moved = async (what: string, work: () => Promise<unknown>, expected: boolean) => {
          await work();
          const after = await token();
          assert.equal(after !== before, expected, `${what} ${expected ? 'moves' : 'keeps'} the token`);
          before = after;
        };
        await moved(
          'appending items and turns',
          async () => {
            await store.appendConversationItems(conversation.id, [userMessage('more')]);
            await conversationTurn(conversation.id, [userMessage('q')], completed([assistantMessage('r')]));
          },
          false,
        );
        const [first] = (await store.loadConversationItems(conversation.id))!;
        await moved('deleteConversationItem', () => store.deleteConversationItem(conversation.id, first.id), true);
        await moved('deleteConversation', () => store.deleteConversation(other.id), true);
        await storeConversation([userMessage('gone')], { user: 'leaving' });
        before = await token();
        await moved('deleteUserData of a user with a conversation', () => store.deleteUserData(DEFAULT_TENANT, 'leaving'), true);
      });
    });

    describe('listConversations', () => {
      async function seeded() {
        const base = 1_750_000_000;
        const a = await storeConversation([], {
          user: 'u1',
          metadata: { team: 'red', tier: 'gold' },
          createdAt: base + 1,
        });
        const b = await storeConversation([], {
          user: 'u1',
          metadata: { team: 'blue' },
          createdAt: base + 2,
        });
        const c = await storeConversation([], { user: 'u2', metadata: { team: 'red' }, createdAt: base + 3 });
        const d = await storeConversation([], {
          user: null,
          metadata: { team: 'red', tier: 'gold', 'a.b "c"': 'x' },
          createdAt: base + 4,
        });
        return { a, b, c, d };
      }

      it('filters by user', async () => {
        const { a, b, c } = await seeded();
        assert.deepEqual(
          await store.listConversations({ tenant: DEFAULT_TENANT, user: 'u1', limit: 10, order: 'desc' }),
          {
            conversations: [b, a],
            hasMore: false,
          },
        );
        assert.deepEqual(
          await store.listConversations({ tenant: DEFAULT_TENANT, user: 'u2', limit: 10, order: 'asc' }),
          {
            conversations: [c],
            hasMore: false,
          },
        );
        assert.deepEqual(
          await store.listConversations({ tenant: DEFAULT_TENANT, user: 'nobody', limit: 10, order: 'asc' }),
          {
            conversations: [],
            hasMore: false,
          },
        );
      });

      it('filters by metadata: every pair must match', async () => {
        const { a, b, c, d } = await seeded();
        const list = (metadata: Record<string, string>, user?: string) =>
          store.listConversations({
            tenant: DEFAULT_TENANT,
            metadata,
            limit: 10,
            order: 'asc',
            ...(user === undefined ? {} : { user }),
          });
        assert.deepEqual((await list({ team: 'red' })).conversations, [a, c, d]);
        assert.deepEqual((await list({ team: 'red', tier: 'gold' })).conversations, [a, d]);
        assert.deepEqual((await list({ team: 'red', tier: 'silver' })).conversations, []);
        assert.deepEqual((await list({ team: 'red' }, 'u1')).conversations, [a]);
        assert.deepEqual((await list({ team: 'blue' }, 'u2')).conversations, []);
        assert.deepEqual((await list({ 'a.b "c"': 'x' })).conversations, [d]);
        assert.deepEqual((await list({ tier: 'gold', team: 'red', missing: '' })).conversations, []);
        assert.deepEqual((await list({})).conversations, [a, b, c, d]);
        assert.deepEqual((await list({}, 'u1')).conversations, [a, b]);
      });

      it('sees updated metadata', async () => {
        const { a, b } = await seeded();
        const since = NOW();
        const updated = await store.updateConversation(b.id, { metadata: { team: 'red' } });
        assert.deepEqual(
          (
            await store.listConversations({
              tenant: DEFAULT_TENANT,
              user: 'u1',
              metadata: { team: 'red' },
              limit: 10,
              order: 'asc',
            })
          ).conversations,
          [a, withUpdatedAt({ ...b, metadata: { team: 'red' } }, updated, since)],
        );
      });

      it('pages with limit, after and order', async () => {
        const base = 1_750_000_000;
        const all: StoredConversation[] = [];
        for (let i = 0; i < 7; i++)
          all.push(await storeConversation([], { user: 'pager', createdAt: base + i * 10 }));
        await storeConversation([], { user: 'someone else', createdAt: base + 15 });
        const list = (options: { limit: number; order: 'asc' | 'desc'; after?: string }) =>
          store.listConversations({ tenant: DEFAULT_TENANT, user: 'pager', ...options });
        assert.deepEqual(await list({ limit: 3, order: 'asc' }), {
          conversations: all.slice(0, 3),
          hasMore: true,
        });
        assert.deepEqual(await list({ limit: 3, order: 'asc', after: all[2].id }), {
          conversations: all.slice(3, 6),
          hasMore: true,
        });
        assert.deepEqual(await list({ limit: 3, order: 'asc', after: all[3].id }), {
          conversations: all.slice(4, 7),
          hasMore: false,
        });
        assert.deepEqual(await list({ limit: 2, order: 'desc' }), {
          conversations: [all[6], all[5]],
          hasMore: true,
        });
        assert.deepEqual(await list({ limit: 2, order: 'desc', after: all[5].id }), {
          conversations: [all[4], all[3]],
          hasMore: true,
        });
        assert.deepEqual(await list({ limit: 10, order: 'desc', after: all[1].id }), {
          conversations: [all[0]],
          hasMore: false,
        });
        assert.deepEqual(await list({ limit: 7, order: 'asc' }), { conversations: all, hasMore: false });
        assert.deepEqual(await list({ limit: 3, order: 'asc', after: newId('conv') }), {
          conversations: [],
          hasMore: false,
        });
      });

      it('pages exactly through conversations created in the same second', async () => {
        const createdAt = NOW();
        const all: StoredConversation[] = [];
        for (let i = 0; i < 9; i++) all.push(await storeConversation([], { user: 'burst', createdAt }));
        for (const order of ['asc', 'desc'] as const) {
          const seen: string[] = [];
          let after: string | undefined;
          for (let guard = 0; guard < 20; guard++) {
            const page = await store.listConversations({
              tenant: DEFAULT_TENANT,
              user: 'burst',
              limit: 2,
              order,
              after,
            });
            seen.push(...page.conversations.map((c) => c.id));
            if (!page.hasMore) break;
            after = page.conversations[page.conversations.length - 1].id;
          }
          assert.equal(seen.length, 9, `${order}: ${seen.length} seen`);
          assert.deepEqual(new Set(seen), new Set(all.map((c) => c.id)));
        }
        const asc = (
          await store.listConversations({ tenant: DEFAULT_TENANT, user: 'burst', limit: 9, order: 'asc' })
        ).conversations;
        const desc = (
          await store.listConversations({ tenant: DEFAULT_TENANT, user: 'burst', limit: 9, order: 'desc' })
        ).conversations;
        assert.deepEqual(desc, [...asc].reverse());
      });
    });

    describe('conversation leases', () => {
      it('acquire, contend, renew and release', async () => {
        const id = newId('conv');
        assert.equal(await store.acquireConversationLease(id, 'holder-a', 10_000), true);
        assert.equal(await store.acquireConversationLease(id, 'holder-b', 10_000), false);
        assert.equal(await store.renewConversationLease(id, 'holder-a', 10_000), true);
        assert.equal(await store.renewConversationLease(id, 'holder-b', 10_000), false);
        await store.releaseConversationLease(id, 'holder-b'); // not b's to release
        assert.equal(await store.acquireConversationLease(id, 'holder-b', 10_000), false);
        assert.equal(
          await store.acquireConversationLease(newId('conv'), 'holder-b', 10_000),
          true,
          'leases are per conversation',
        );
        await store.releaseConversationLease(id, 'holder-a');
        assert.equal(await store.renewConversationLease(id, 'holder-a', 10_000), false);
        assert.equal(await store.acquireConversationLease(id, 'holder-b', 10_000), true);
        assert.equal(await store.acquireConversationLease(id, 'holder-a', 10_000), false);
        await store.releaseConversationLease(id, 'holder-b');
        await store.releaseConversationLease(id, 'holder-b'); // releasing twice is harmless
        assert.equal(await store.acquireConversationLease(id, 'holder-a', 10_000), true);
      });

      it('a lease expires after its ttl and can then be taken; the old holder cannot renew it', async () => {
        const id = newId('conv');
        assert.equal(await store.acquireConversationLease(id, 'holder-a', 150), true);
        assert.equal(await store.acquireConversationLease(id, 'holder-b', 10_000), false);
        await sleep(300);
        assert.equal(await store.acquireConversationLease(id, 'holder-b', 10_000), true);
        assert.equal(await store.renewConversationLease(id, 'holder-a', 10_000), false);
        await store.releaseConversationLease(id, 'holder-a');
        assert.equal(await store.acquireConversationLease(id, 'holder-c', 10_000), false, 'b still holds it');
      });

      it('renewing keeps a lease past its first ttl', async () => {
        const id = newId('conv');
        assert.equal(await store.acquireConversationLease(id, 'holder-a', 250), true);
        await sleep(150);
        assert.equal(await store.renewConversationLease(id, 'holder-a', 10_000), true);
        await sleep(200);
        assert.equal(await store.acquireConversationLease(id, 'holder-b', 10_000), false);
      });

      it('lets exactly one of many concurrent acquirers win', async () => {
        const id = newId('conv');
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => store.acquireConversationLease(id, `holder-${i}`, 10_000)),
        );
        assert.equal(results.filter(Boolean).length, 1);
      });
    });

    describe('saveProgress (background turns)', () => {
      function partialMessage(text: string, id: string): MessageItem {
        return { ...assistantMessage(text, id), status: 'in_progress' };
      }

      it('moves queued to in_progress and replaces the progress output each time', async () => {
        const turn = newTurn({ status: 'queued' });
        await store.beginTurn(turn);
        assert.equal((await store.getResponse(turn.id))?.status, 'queued');
        const msgId = newId('msg');
        assert.equal(await store.saveProgress(turn.id, { status: 'in_progress', output: [] }), true);
        assert.deepEqual(await store.getResponse(turn.id), { ...turn, status: 'in_progress' });
        assert.equal(await store.saveProgress(turn.id, { status: 'in_progress', output: [partialMessage('Hel', msgId)] }), true);
        const call: FunctionCallItem = { type: 'function_call', id: newId('fc'), call_id: 'c1', name: 'f', arguments: '{"a', status: 'in_progress' };
        const later = [partialMessage('Hello, wor', msgId), call];
        assert.equal(await store.saveProgress(turn.id, { status: 'in_progress', output: later }), true);
        assert.deepEqual(await store.getResponse(turn.id), { ...turn, status: 'in_progress', output: later });
        // Still unfinished: a chain ending at it comes back with its status, for the engine to refuse.
        const chain = await store.loadChain(turn.id);
        assert.equal(chain?.at(-1)?.status, 'in_progress');
      });

      it('lets finishTurn replace the progress output', async () => {
        const turn = newTurn({ status: 'queued' });
        await store.beginTurn(turn);
        await store.saveProgress(turn.id, { status: 'in_progress', output: [partialMessage('par', newId('msg'))] });
        const result = completed([assistantMessage('final')]);
        await store.finishTurn(turn.id, result);
        assert.deepEqual(await store.getResponse(turn.id), finished(turn, result));
      });

      it('returns false and changes nothing once the turn is finished or when it is unknown', async () => {
        const turn = newTurn({ status: 'queued' });
        await store.beginTurn(turn);
        const cancelled = completed([assistantMessage('cut', newId('msg'))], { status: 'cancelled', completedAt: null, usage: null });
        await store.finishTurn(turn.id, cancelled);
        assert.equal(await store.saveProgress(turn.id, { status: 'in_progress', output: [partialMessage('late', newId('msg'))] }), false);
        assert.deepEqual(await store.getResponse(turn.id), finished(turn, cancelled));
        assert.equal(await store.saveProgress(newId('resp'), { status: 'in_progress', output: [] }), false);
      });

      it('keeps a turn finished by finishTurn while progress writes race it', async () => {
        const turn = newTurn({ status: 'in_progress' });
        await store.beginTurn(turn);
        const result = completed([assistantMessage('done')]);
        const writes = Array.from({ length: 5 }, (_, i) =>
          store.saveProgress(turn.id, { status: 'in_progress', output: [partialMessage(`p${i}`, newId('msg'))] }),
        );
        await Promise.all([...writes, store.finishTurn(turn.id, result)]);
        assert.deepEqual(await store.getResponse(turn.id), finished(turn, result));
      });
    });

    describe('conversation expiry', () => {
      it('hides an expired conversation everywhere; pruneExpired removes it and counts it', async () => {
        const now = NOW();
        const expired = await storeConversation([userMessage('old')], { expiresAt: now - 60, user: 'exp' });
        const live = await storeConversation([userMessage('new')], { expiresAt: now + 3600, user: 'exp' });
        assert.equal(await store.getConversation(expired.id), null);
        assert.equal(await store.loadConversationItems(expired.id), null);
        assert.equal(await store.listConversationItems(expired.id, { limit: 10, order: 'asc' }), null);
        assert.equal(await store.appendConversationItems(expired.id, [userMessage('x')]), null);
        assert.equal(await store.updateConversation(expired.id, { metadata: {} }), null);
        assert.deepEqual(
          await store.listConversations({ tenant: DEFAULT_TENANT, user: 'exp', limit: 10, order: 'asc' }),
          {
            conversations: [live],
            hasMore: false,
          },
        );
        assert.deepEqual(await store.getConversation(live.id), live);

        assert.equal(await store.pruneExpired(now), 1);
        assert.equal(await store.pruneExpired(now), 0);
        assert.equal(await store.deleteConversation(expired.id), false);
        assert.equal(await store.pruneExpired(now + 7200), 1);
        assert.equal(await store.getConversation(live.id), null);
      });
    });

    // ---------- contract v2: tenants, users, running totals, merge, fork, data protection,
    // stale turns, export and import ----------

    /** A second new, empty, open store of the same backend; closed and cleaned up afterwards. */
    async function withFreshStore<T>(work: (fresh: ConversationStore) => Promise<T>): Promise<T> {
      const made = await makeStore();
      await made.store.open();
      try {
        return await work(made.store);
      } finally {
        await made.store.close();
        await made.cleanup?.();
      }
    }

    /** A turn finished `completed` with this usage and cost. */
    async function pricedTurn(
      conversationId: string | null,
      usage: Usage | null,
      costUsd: number | null,
      overrides: Partial<StoredResponse> = {},
      status: TurnResult['status'] = 'completed',
    ): Promise<StoredResponse> {
      const turn = newTurn({ conversationId, input: [userMessage('q')], ...overrides });
      await store.beginTurn(turn);
      const result: TurnResult = {
        ...completed([assistantMessage('a')]),
        status,
        usage,
        costUsd,
        ...(status === 'failed' ? { error: { code: 'server_error', message: 'boom' } } : {}),
        ...(status === 'incomplete' ? { incompleteDetails: { reason: 'max_output_tokens' } } : {}),
      };
      await store.finishTurn(turn.id, result);
      return finished(turn, result);
    }

    describe('tenants and users', () => {
      it('round-trips tenant and user on responses, chains and conversations', async () => {
        const root = await storeTurn(newTurn({ tenant: 'acme', user: 'alice' }));
        const child = await storeTurn(newTurn({ tenant: 'acme', user: null, previousResponseId: root.id }));
        assert.deepEqual(await store.getResponse(root.id), root);
        assert.equal((await store.getResponse(root.id))?.tenant, 'acme');
        assert.equal((await store.getResponse(root.id))?.user, 'alice');
        assert.deepEqual(await store.loadChain(child.id), [root, child]);
        const conversation = await storeConversation([userMessage('hi')], { tenant: 'acme', user: 'alice' });
        assert.deepEqual(await store.getConversation(conversation.id), conversation);
        const unicode = await storeTurn(newTurn({ tenant: 'tenant ключ 🔑 "x" *?[', user: 'user\u0000 é' }));
        assert.deepEqual(await store.getResponse(unicode.id), unicode);
      });

      it('reads single records by id alone: the engine compares their tenant', async () => {
        const turn = await storeTurn(newTurn({ tenant: 'globex' }));
        const conversation = await storeConversation([], { tenant: 'globex' });
        assert.equal((await store.getResponse(turn.id))?.tenant, 'globex');
        assert.equal((await store.getConversation(conversation.id))?.tenant, 'globex');
      });

      it('lists only the conversations of the tenant asked for', async () => {
        const base = 1_750_000_000;
        const acme1 = await storeConversation([], {
          tenant: 'acme',
          user: 'shared',
          metadata: { k: 'v' },
          createdAt: base + 1,
        });
        const globex = await storeConversation([], {
          tenant: 'globex',
          user: 'shared',
          metadata: { k: 'v' },
          createdAt: base + 2,
        });
        const acme2 = await storeConversation([], {
          tenant: 'acme',
          user: null,
          metadata: { k: 'v' },
          createdAt: base + 3,
        });
        const plain = await storeConversation([], {
          user: 'shared',
          metadata: { k: 'v' },
          createdAt: base + 4,
        });
        const list = (query: Partial<ConversationQuery> & { tenant: string }) =>
          store.listConversations({ limit: 10, order: 'asc', ...query });
        assert.deepEqual(await list({ tenant: 'acme' }), { conversations: [acme1, acme2], hasMore: false });
        assert.deepEqual(await list({ tenant: 'globex' }), { conversations: [globex], hasMore: false });
        assert.deepEqual(await list({ tenant: DEFAULT_TENANT }), { conversations: [plain], hasMore: false });
        assert.deepEqual(await list({ tenant: 'initech' }), { conversations: [], hasMore: false });
        assert.deepEqual((await list({ tenant: 'acme', user: 'shared' })).conversations, [acme1]);
        assert.deepEqual((await list({ tenant: 'acme', metadata: { k: 'v' } })).conversations, [
          acme1,
          acme2,
        ]);
        assert.deepEqual((await list({ tenant: 'acme', order: 'desc' })).conversations, [acme2, acme1]);
        assert.deepEqual((await list({ tenant: 'acme', limit: 1, after: acme1.id })).conversations, [acme2]);
        assert.deepEqual(
          await list({ tenant: 'acme', after: globex.id }),
          { conversations: [], hasMore: false },
          "another tenant's id is an unknown `after`",
        );
      });

      it('filters listing by createdAfter (inclusive) and createdBefore (exclusive)', async () => {
        const base = 1_750_000_000;
        const all: StoredConversation[] = [];
        for (let i = 0; i < 6; i++)
          all.push(await storeConversation([], { user: 'timed', createdAt: base + i * 10 }));
        await storeConversation([], { tenant: 'other', user: 'timed', createdAt: base + 20 });
        const list = (query: Partial<ConversationQuery>) =>
          store.listConversations({ tenant: DEFAULT_TENANT, limit: 10, order: 'asc', ...query });
        assert.deepEqual((await list({ createdAfter: base + 20 })).conversations, all.slice(2));
        assert.deepEqual((await list({ createdAfter: base + 21 })).conversations, all.slice(3));
        assert.deepEqual((await list({ createdBefore: base + 20 })).conversations, all.slice(0, 2));
        assert.deepEqual((await list({ createdBefore: base + 21 })).conversations, all.slice(0, 3));
        assert.deepEqual(
          (await list({ createdAfter: base + 10, createdBefore: base + 40 })).conversations,
          all.slice(1, 4),
        );
        assert.deepEqual(
          (await list({ createdAfter: base + 40, createdBefore: base + 40 })).conversations,
          [],
        );
        assert.deepEqual(
          (await list({ user: 'timed', createdAfter: base + 10, createdBefore: base + 50, order: 'desc' }))
            .conversations,
          [all[4], all[3], all[2], all[1]],
        );
        assert.deepEqual(
          await list({ createdAfter: base + 10, createdBefore: base + 50, limit: 2, after: all[1].id }),
          {
            conversations: [all[2], all[3]],
            hasMore: true,
          },
        );
        assert.deepEqual(
          await list({ createdAfter: base + 10, createdBefore: base + 50, limit: 2, after: all[3].id }),
          {
            conversations: [all[4]],
            hasMore: false,
          },
        );
      });
    });

    describe('conversation running totals and updatedAt', () => {
      const usage = (input: number, output: number): Usage => ({
        input_tokens: input,
        output_tokens: output,
        total_tokens: input + output,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens_details: { reasoning_tokens: 0 },
      });

      it('adds every appended turn to the totals; failed and cancelled turns add nothing', async () => {
        const conversation = await storeConversation([userMessage('context')]);
        const other = await storeConversation();
        await pricedTurn(conversation.id, usage(10, 5), 0.25);
        await pricedTurn(conversation.id, usage(100, 50), 0.125, {}, 'incomplete');
        await pricedTurn(conversation.id, usage(1000, 500), 0.5, {}, 'failed');
        await pricedTurn(conversation.id, usage(1000, 500), 0.5, {}, 'cancelled');
        await pricedTurn(conversation.id, null, null); // unknown usage and no price: a turn all the same
        await pricedTurn(other.id, usage(7, 7), 1);
        await pricedTurn(null, usage(7, 7), 1);
        await store.appendConversationItems(conversation.id, [userMessage('direct items are not turns')]);
        const expected: ConversationUsage = {
          input_tokens: 110,
          output_tokens: 55,
          total_tokens: 165,
          cost_usd: 0.375,
          turns: 3,
        };
        const got = await store.getConversation(conversation.id);
        assert.deepEqual(got?.usage, expected);
        assert.equal(got?.itemCount, 1 + 3 * 2 + 1);
        assert.deepEqual((await store.getConversation(other.id))?.usage, {
          input_tokens: 7,
          output_tokens: 7,
          total_tokens: 14,
          cost_usd: 1,
          turns: 1,
        });
        const listed = await store.listConversations({ tenant: DEFAULT_TENANT, limit: 10, order: 'asc' });
        assert.deepEqual(listed.conversations.find((c) => c.id === conversation.id)?.usage, expected);
      });

      it('keeps the totals exact under 10 concurrent turns', async () => {
        const conversation = await storeConversation();
        await Promise.all(Array.from({ length: 10 }, () => pricedTurn(conversation.id, usage(10, 5), 0.25)));
        assert.deepEqual((await store.getConversation(conversation.id))?.usage, {
          input_tokens: 100,
          output_tokens: 50,
          total_tokens: 150,
          cost_usd: 2.5,
          turns: 10,
        });
      });

      it('moves updatedAt on appends and metadata changes, not on reads or failed turns', async () => {
        const old = 1_750_000_000;
        const conversation = await storeConversation([userMessage('a')], { createdAt: old });
        assert.equal(conversation.updatedAt, old);
        await store.loadConversationItems(conversation.id);
        await store.listConversationItems(conversation.id, { limit: 10, order: 'asc' });
        await pricedTurn(conversation.id, usage(1, 1), null, {}, 'failed');
        assert.deepEqual(await store.getConversation(conversation.id), conversation);

        const since = NOW();
        const turn = await pricedTurn(conversation.id, usage(1, 1), null);
        const afterTurn = await store.getConversation(conversation.id);
        assert.deepEqual(
          afterTurn,
          withUpdatedAt(
            {
              ...conversation,
              itemCount: 3,
              usage: { input_tokens: 1, output_tokens: 1, total_tokens: 2, cost_usd: 0, turns: 1 },
            },
            afterTurn,
            since,
          ),
        );
        assert.equal(turn.status, 'completed');

        const changes: [string, (id: string) => Promise<StoredConversation | null>][] = [
          ['append', (id) => store.appendConversationItems(id, [userMessage('b')])],
          ['update', (id) => store.updateConversation(id, { metadata: { x: '1' } })],
          ['merge', (id) => store.mergeConversationMetadata(id, { y: '2' })],
        ];
        for (const [name, change] of changes) {
          const other = await storeConversation([], { createdAt: old });
          const changedSince = NOW();
          const changed = await change(other.id);
          assert.ok(changed, name);
          assert.ok(
            changed.updatedAt >= changedSince && changed.updatedAt <= NOW(),
            `${name} moves updatedAt`,
          );
          assert.deepEqual(await store.getConversation(other.id), changed, name);
        }
      });
    });

    describe('mergeConversationMetadata', () => {
      it('sets string values and removes null ones in one step, leaving the rest', async () => {
        const items = [userMessage('a')];
        const conversation = await storeConversation(items, {
          metadata: { a: '1', b: '2', c: '3', 'dots.and "quotes"': 'q' },
          user: 'm',
          createdAt: 1_750_000_000,
        });
        const since = NOW();
        const merged = await store.mergeConversationMetadata(conversation.id, {
          b: null,
          c: '30',
          d: '4',
          missing: null,
          'dots.and "quotes"': 'q2',
          'ключ 🔑': 'значение',
        });
        const expected = withUpdatedAt(
          {
            ...conversation,
            metadata: { a: '1', c: '30', d: '4', 'dots.and "quotes"': 'q2', 'ключ 🔑': 'значение' },
          },
          merged,
          since,
        );
        assert.deepEqual(merged, expected);
        assert.deepEqual(await store.getConversation(conversation.id), expected);
        assert.deepEqual(await store.loadConversationItems(conversation.id), items);
        assert.deepEqual(
          (await store.mergeConversationMetadata(conversation.id, {}))?.metadata,
          expected.metadata,
          'an empty patch changes nothing',
        );
        const listed = await store.listConversations({
          tenant: DEFAULT_TENANT,
          metadata: { c: '30', d: '4' },
          limit: 10,
          order: 'asc',
        });
        assert.deepEqual(
          listed.conversations.map((c) => c.id),
          [conversation.id],
        );
        assert.deepEqual(
          (
            await store.listConversations({
              tenant: DEFAULT_TENANT,
              metadata: { b: '2' },
              limit: 10,
              order: 'asc',
            })
          ).conversations,
          [],
        );
      });

      it('treats a `__proto__` key as metadata like any other', async () => {
        const conversation = await storeConversation([], { metadata: { a: '1' } });
        const patch = JSON.parse('{"__proto__": "x", "constructor": "y"}') as Record<string, string | null>;
        const merged = await store.mergeConversationMetadata(conversation.id, patch);
        assert.deepEqual(merged?.metadata, JSON.parse('{"a": "1", "__proto__": "x", "constructor": "y"}'));
        assert.deepEqual(
          (await store.getConversation(conversation.id))?.metadata,
          JSON.parse('{"a": "1", "__proto__": "x", "constructor": "y"}'),
        );
        const removed = await store.mergeConversationMetadata(
          conversation.id,
          JSON.parse('{"__proto__": null}') as Record<string, string | null>,
        );
        assert.deepEqual(removed?.metadata, { a: '1', constructor: 'y' });
        assert.equal(Object.getPrototypeOf(removed?.metadata), Object.prototype);
      });

      it('returns null for an unknown or expired conversation', async () => {
        assert.equal(await store.mergeConversationMetadata(newId('conv'), { a: '1' }), null);
        const expired = await storeConversation([], { expiresAt: NOW() - 10 });
        assert.equal(await store.mergeConversationMetadata(expired.id, { a: '1' }), null);
      });

      it('lands 20 concurrent merges of distinct keys, and concurrent removals', async () => {
        const initial: Record<string, string> = {};
        for (let i = 0; i < 5; i++) initial[`old_${i}`] = `o${i}`;
        const conversation = await storeConversation([], { metadata: { ...initial, keep: 'k' } });
        await Promise.all([
          ...Array.from({ length: 20 }, (_, i) =>
            store.mergeConversationMetadata(conversation.id, { [`key_${i}`]: `v${i}` }),
          ),
          ...Array.from({ length: 5 }, (_, i) =>
            store.mergeConversationMetadata(conversation.id, { [`old_${i}`]: null }),
          ),
        ]);
        const expected: Record<string, string> = { keep: 'k' };
        for (let i = 0; i < 20; i++) expected[`key_${i}`] = `v${i}`;
        assert.deepEqual((await store.getConversation(conversation.id))?.metadata, expected);
      });
    });

    describe('forkConversation', () => {
      /** A conversation whose items come from all three sources: initial, appended and a turn. */
      async function source() {
        const items = Array.from({ length: 6 }, (_, i) =>
          i % 2 === 0
            ? userMessage(`item ${i}`, `msg_src${String.fromCharCode(120 - i)}${i}`)
            : assistantMessage(`item ${i}`),
        );
        const conversation = await storeConversation(items.slice(0, 2), {
          metadata: { origin: 'yes' },
          user: 'src',
        });
        await store.appendConversationItems(conversation.id, items.slice(2, 3));
        const turn = newTurn({ conversationId: conversation.id, input: items.slice(3, 4) });
        await store.beginTurn(turn);
        const result = completed(items.slice(4, 6), { costUsd: 0.5 });
        await store.finishTurn(turn.id, result);
        return { conversation, items, turn: finished(turn, result) };
      }

      function forkTarget(overrides: Partial<StoredConversation> = {}): StoredConversation {
        return newConversation({
          tenant: 'acme',
          user: 'forker',
          metadata: { forked: 'true' },
          createdAt: 1_760_000_000,
          expiresAt: NOW() + 86_400,
          // Ignored: a fork starts with zero totals.
          usage: { input_tokens: 9, output_tokens: 9, total_tokens: 18, cost_usd: 9, turns: 9 },
          ...overrides,
        });
      }

      it('holds the items up to and including the given one, same ids, in order', async () => {
        const { conversation, items } = await source();
        for (const upTo of [0, 1, 2, 3, 4, 5]) {
          const target = forkTarget();
          const forked = await store.forkConversation(conversation.id, items[upTo].id, target);
          const expected: StoredConversation = { ...target, itemCount: upTo + 1, usage: zeroUsage() };
          assert.deepEqual(forked, expected, `fork at ${upTo}`);
          assert.deepEqual(await store.getConversation(target.id), expected);
          assert.deepEqual(await store.loadConversationItems(target.id), items.slice(0, upTo + 1));
        }
      });

      it('pages, gets and lists the fork like any conversation', async () => {
        const { conversation, items } = await source();
        const target = forkTarget();
        await store.forkConversation(conversation.id, items[4].id, target);
        assert.deepEqual(await store.listConversationItems(target.id, { limit: 2, order: 'desc' }), {
          items: [items[4], items[3]],
          hasMore: true,
        });
        assert.deepEqual(
          await store.listConversationItems(target.id, { limit: 2, order: 'asc', after: items[2].id }),
          {
            items: [items[3], items[4]],
            hasMore: false,
          },
        );
        assert.deepEqual(await store.getConversationItem(target.id, items[3].id), items[3]);
        assert.equal(await store.getConversationItem(target.id, items[5].id), null);
        assert.deepEqual(
          (
            await store.listConversations({ tenant: 'acme', user: 'forker', limit: 10, order: 'asc' })
          ).conversations.map((c) => c.id),
          [target.id],
        );
      });

      it('is independent of its source afterwards, in both directions', async () => {
        const { conversation, items, turn } = await source();
        const target = forkTarget();
        await store.forkConversation(conversation.id, items[5].id, target);
        await store.appendConversationItems(conversation.id, [userMessage('source only')]);
        await store.appendConversationItems(target.id, [userMessage('fork only')]);
        const forkTurn = await pricedTurn(target.id, completed([]).usage, 0.25);
        assert.equal(await store.deleteConversationItem(target.id, items[1].id), true);
        assert.equal(await store.deleteConversationItem(conversation.id, items[2].id), true);

        const sourceItems = await store.loadConversationItems(conversation.id);
        const forkItems = await store.loadConversationItems(target.id);
        assert.deepEqual(
          sourceItems?.map((i) => (i as MessageItem).content[0]),
          [
            ...items.filter((_, i) => i !== 2).map((i) => (i as MessageItem).content[0]),
            { type: 'input_text', text: 'source only' },
          ],
        );
        assert.deepEqual(
          forkItems?.slice(0, 5),
          items.filter((_, i) => i !== 1),
        );
        assert.deepEqual(((forkItems![5] as MessageItem).content[0] as { text: string }).text, 'fork only');
        assert.deepEqual(forkItems?.slice(6), [...forkTurn.input, ...forkTurn.output]);
        assert.equal((await store.getConversation(conversation.id))?.usage.turns, 1);
        assert.equal((await store.getConversation(conversation.id))?.usage.cost_usd, 0.5);
        assert.equal((await store.getConversation(target.id))?.usage.turns, 1);
        assert.equal((await store.getConversation(target.id))?.usage.cost_usd, 0.25);

        // Removing the source's turn and the source itself takes nothing out of the fork.
        assert.equal(await store.deleteResponse(turn.id), true);
        assert.equal(await store.deleteConversation(conversation.id), true);
        assert.deepEqual(await store.loadConversationItems(target.id), forkItems);
        assert.deepEqual(await store.getConversationItem(target.id, items[4].id), items[4]);
      });

      it('forks a fork, and forks past deleted items', async () => {
        const { conversation, items } = await source();
        assert.equal(await store.deleteConversationItem(conversation.id, items[2].id), true);
        const first = forkTarget();
        const forked = await store.forkConversation(conversation.id, items[4].id, first);
        assert.equal(forked?.itemCount, 4);
        assert.deepEqual(await store.loadConversationItems(first.id), [
          items[0],
          items[1],
          items[3],
          items[4],
        ]);
        const second = forkTarget({ tenant: DEFAULT_TENANT });
        assert.equal((await store.forkConversation(first.id, items[1].id, second))?.itemCount, 2);
        assert.deepEqual(await store.loadConversationItems(second.id), items.slice(0, 2));
        const late = userMessage('late');
        assert.equal((await store.appendConversationItems(second.id, [late]))?.itemCount, 3);
        assert.deepEqual(await store.loadConversationItems(second.id), [...items.slice(0, 2), late]);
      });

      it('returns null and creates nothing for an unknown source or item', async () => {
        const { conversation, items } = await source();
        const other = await storeConversation([userMessage('elsewhere')]);
        const expired = await storeConversation([userMessage('gone')], { expiresAt: NOW() - 10 });
        const attempts: [string, string][] = [
          [newId('conv'), items[0].id],
          [conversation.id, 'msg_nope'],
          [conversation.id, (await store.loadConversationItems(other.id))![0].id],
          [expired.id, newId('msg')],
        ];
        for (const [sourceId, itemId] of attempts) {
          const target = forkTarget();
          assert.equal(await store.forkConversation(sourceId, itemId, target), null);
          assert.equal(await store.getConversation(target.id), null);
          assert.equal(await store.loadConversationItems(target.id), null);
        }
        assert.equal(
          (await store.listConversations({ tenant: 'acme', limit: 10, order: 'asc' })).conversations.length,
          0,
        );
      });

      it('rejects a target id that exists, leaving it untouched', async () => {
        const { conversation, items } = await source();
        const existing = await storeConversation([userMessage('mine')]);
        await assert.rejects(
          store.forkConversation(conversation.id, items[3].id, forkTarget({ id: existing.id })),
          StoreConflictError,
        );
        assert.deepEqual(await store.getConversation(existing.id), existing);
        assert.equal((await store.loadConversationItems(existing.id))?.length, 1);
      });
    });

    describe('deleteUserData', () => {
      it("deletes only that tenant's user's responses and conversations, with their items", async () => {
        const alice = { tenant: 'acme', user: 'alice' };
        const root = await storeTurn(newTurn({ ...alice }));
        const child = await storeTurn(newTurn({ ...alice, previousResponseId: root.id }));
        const aliceConversation = await storeConversation([userMessage('secret')], { ...alice });
        const aliceTurn2 = newTurn({ ...alice, conversationId: aliceConversation.id });
        await store.beginTurn(aliceTurn2);
        await store.finishTurn(aliceTurn2.id, completed([assistantMessage('a2')]));
        const aliceEmpty = await storeConversation([], { ...alice });

        const bob = await storeTurn(newTurn({ tenant: 'acme', user: 'bob', previousResponseId: root.id }));
        const bobConversation = await storeConversation([userMessage('bob')], {
          tenant: 'acme',
          user: 'bob',
        });
        const otherTenant = await storeTurn(newTurn({ tenant: 'globex', user: 'alice' }));
        const otherTenantConversation = await storeConversation([userMessage('x')], {
          tenant: 'globex',
          user: 'alice',
        });
        const anonymous = await storeTurn(newTurn({ tenant: 'acme', user: null }));
        const anonymousConversation = await storeConversation([], { tenant: 'acme', user: null });

        assert.deepEqual(await store.deleteUserData('acme', 'alice'), { responses: 3, conversations: 2 });
        for (const id of [root.id, child.id, aliceTurn2.id]) {
          assert.equal(await store.getResponse(id), null);
          assert.equal(await store.listInputItems(id, { limit: 10, order: 'asc' }), null);
        }
        for (const id of [aliceConversation.id, aliceEmpty.id]) {
          assert.equal(await store.getConversation(id), null);
          assert.equal(await store.loadConversationItems(id), null);
        }
        assert.deepEqual(
          (await store.listConversations({ tenant: 'acme', user: 'alice', limit: 10, order: 'asc' }))
            .conversations,
          [],
        );
        assert.deepEqual(await store.getResponse(bob.id), bob);
        assert.deepEqual(await store.getConversation(bobConversation.id), bobConversation);
        assert.deepEqual(await store.getResponse(otherTenant.id), otherTenant);
        assert.deepEqual(await store.getConversation(otherTenantConversation.id), otherTenantConversation);
        assert.equal((await store.loadConversationItems(otherTenantConversation.id))?.length, 1);
        assert.equal((await store.loadConversationItems(bobConversation.id))?.length, 1);
        assert.deepEqual(await store.getResponse(anonymous.id), anonymous);
        assert.deepEqual(await store.getConversation(anonymousConversation.id), anonymousConversation);

        assert.deepEqual(await store.deleteUserData('acme', 'alice'), { responses: 0, conversations: 0 });
        assert.deepEqual(await store.deleteUserData('acme', 'nobody'), { responses: 0, conversations: 0 });
      });
    });

    describe('failStaleTurns', () => {
      it('fails only unfinished turns created before the cutoff, with error code interrupted', async () => {
        const now = NOW();
        const context = userMessage('context');
        const conversation = await storeConversation([context]);
        const oldQueued = newTurn({ status: 'queued', createdAt: now - 600 });
        const oldRunning = newTurn({
          status: 'in_progress',
          createdAt: now - 600,
          conversationId: conversation.id,
        });
        const atCutoff = newTurn({ status: 'in_progress', createdAt: now - 60 });
        const recent = newTurn({ status: 'in_progress', createdAt: now });
        for (const turn of [oldQueued, oldRunning, atCutoff, recent]) await store.beginTurn(turn);
        const progress = [{ ...assistantMessage('half an ans'), status: 'in_progress' as const }];
        assert.equal(
          await store.saveProgress(oldRunning.id, { status: 'in_progress', output: progress }),
          true,
        );
        const oldDone = await storeTurn(newTurn({ createdAt: now - 600 }));
        const oldFailed = newTurn({ createdAt: now - 600 });
        await store.beginTurn(oldFailed);
        const failure: TurnResult = {
          ...completed([]),
          status: 'failed',
          usage: null,
          error: { code: 'server_error', message: 'boom' },
        };
        await store.finishTurn(oldFailed.id, failure);

        assert.equal(await store.failStaleTurns(now - 60), 2);
        assert.deepEqual(await store.getResponse(oldQueued.id), {
          ...oldQueued,
          status: 'failed',
          error: { ...INTERRUPTED_ERROR },
        });
        assert.deepEqual(await store.getResponse(oldRunning.id), {
          ...oldRunning,
          status: 'failed',
          output: progress,
          error: { ...INTERRUPTED_ERROR },
        });
        assert.equal((await store.getResponse(oldRunning.id))?.error?.code, 'interrupted');
        assert.deepEqual(await store.getResponse(atCutoff.id), atCutoff);
        assert.deepEqual(await store.getResponse(recent.id), recent);
        assert.deepEqual(await store.getResponse(oldDone.id), oldDone);
        assert.deepEqual(await store.getResponse(oldFailed.id), finished(oldFailed, failure));
        // Never context, and finished for good.
        assert.deepEqual(await store.loadConversationItems(conversation.id), [context]);
        assert.equal((await store.getConversation(conversation.id))?.itemCount, 1);
        assert.equal((await store.getConversation(conversation.id))?.usage.turns, 0);
        await assert.rejects(
          store.finishTurn(oldRunning.id, completed([assistantMessage('late')])),
          StoreConflictError,
        );
        assert.equal(await store.saveProgress(oldQueued.id, { status: 'in_progress', output: [] }), false);
        assert.equal(await store.failStaleTurns(now - 60), 0);
        assert.equal(await store.failStaleTurns(now + 1), 2, 'the two younger turns');
      });
    });

    describe('exportRecords / importRecords', () => {
      const populate = () => seedVariedStore(store);

      it('exports responses parents first, then conversations with their items; expired records are skipped', async () => {
        await populate();
        const expiredTurn = await storeTurn(newTurn({ expiresAt: NOW() - 1 }));
        const expiredConversation = await storeConversation([userMessage('old')], { expiresAt: NOW() - 1 });
        const records = await collectExport(store);
        assertExportOrder(records);
        const ids = records.map((r) => (r.type === 'response' ? r.response.id : r.conversation.id));
        assert.ok(!ids.includes(expiredTurn.id));
        assert.ok(!ids.includes(expiredConversation.id));
        assert.equal(records.filter((r) => r.type === 'response').length, VARIED_STORE_COUNTS.responses);
        assert.equal(
          records.filter((r) => r.type === 'conversation').length,
          VARIED_STORE_COUNTS.conversations,
        );
        for (const record of records) {
          if (record.type === 'response') {
            assert.deepEqual(record.response, await store.getResponse(record.response.id));
          } else {
            assert.deepEqual(record.conversation, await store.getConversation(record.conversation.id));
            assert.deepEqual(record.items, await store.loadConversationItems(record.conversation.id));
          }
        }
      });

      it('filters by tenant, conversation and since', async () => {
        const base = 1_750_000_000;
        const acmeRoot = await storeTurn(newTurn({ tenant: 'acme', createdAt: base }));
        const acmeChild = await storeTurn(
          newTurn({ tenant: 'acme', createdAt: base + 100, previousResponseId: acmeRoot.id }),
        );
        const globexTurn = await storeTurn(newTurn({ tenant: 'globex', createdAt: base + 100 }));
        const acmeConversation = await storeConversation([userMessage('a')], {
          tenant: 'acme',
          createdAt: base + 50,
        });
        const inConversation = await pricedTurn(acmeConversation.id, null, null, {
          tenant: 'acme',
          createdAt: base + 60,
        });
        const globexConversation = await storeConversation([], { tenant: 'globex', createdAt: base + 200 });
        const ids = async (filter: ExportFilter) =>
          (await collectExport(store, filter)).map((r) =>
            r.type === 'response' ? r.response.id : r.conversation.id,
          );

        assert.deepEqual(
          new Set(await ids({ tenant: 'acme' })),
          new Set([acmeRoot.id, acmeChild.id, inConversation.id, acmeConversation.id]),
        );
        assert.deepEqual(await ids({ tenant: 'globex' }), [globexTurn.id, globexConversation.id]);
        assert.deepEqual(await ids({ tenant: 'initech' }), []);
        assert.deepEqual(await ids({ conversationId: acmeConversation.id }), [
          inConversation.id,
          acmeConversation.id,
        ]);
        assert.deepEqual(await ids({ conversationId: acmeConversation.id, tenant: 'globex' }), []);
        assert.deepEqual(await ids({ conversationId: newId('conv') }), []);
        assert.deepEqual(
          new Set(await ids({ since: base + 60 })),
          new Set([acmeChild.id, globexTurn.id, inConversation.id, globexConversation.id]),
        );
        assert.deepEqual(await ids({ since: base + 100, tenant: 'globex' }), [
          globexTurn.id,
          globexConversation.id,
        ]);
        assert.deepEqual(await ids({ since: base + 201 }), []);
        const all = await collectExport(store, {});
        assert.equal(all.length, 6);
        assertExportOrder(all);
      });

      it('keeps parents first when a parent was re-imported after its children', async () => {
        const chain = await storeChain(3);
        const before = await collectExport(store);
        assert.equal(await store.deleteResponse(chain[0].id), true);
        assert.equal(await store.deleteResponse(chain[1].id), true);
        // Written back parent-last: the store's own insertion order now has children first.
        assert.deepEqual(
          await store.importRecords(
            before.filter((r) => r.type === 'response' && r.response.id === chain[1].id),
          ),
          {
            responses: 1,
            conversations: 0,
            skipped: 0,
          },
        );
        assert.deepEqual(await store.importRecords(before), { responses: 1, conversations: 0, skipped: 2 });
        const after = await collectExport(store);
        assertExportOrder(after);
        assert.deepEqual(
          after.map((r) => (r as { response: StoredResponse }).response.id),
          chain.map((r) => r.id),
        );
        assert.deepEqual(await store.loadChain(chain[2].id), chain);
      });

      it('imports into an empty store of the same backend, reproducing everything', async () => {
        await populate();
        const records = await collectExport(store);
        const snapshot = await exportAll(store);
        await withFreshStore(async (fresh) => {
          assert.deepEqual(await fresh.importRecords(records), {
            responses: snapshot.responses.length,
            conversations: snapshot.conversations.length,
            skipped: 0,
          });
          assert.deepEqual(await exportAll(fresh), snapshot);
          for (const response of snapshot.responses) {
            assert.deepEqual(await fresh.getResponse(response.id), response);
            let chain: StoredResponse[] | null = null;
            try {
              chain = await store.loadChain(response.id);
            } catch (error) {
              assert.ok(error instanceof ChainBrokenError);
            }
            if (chain !== null) assert.deepEqual(await fresh.loadChain(response.id), chain);
            assert.deepEqual(
              await fresh.listInputItems(response.id, { limit: 100, order: 'desc' }),
              await store.listInputItems(response.id, { limit: 100, order: 'desc' }),
            );
          }
          for (const { conversation, items } of snapshot.conversations) {
            assert.deepEqual(await fresh.getConversation(conversation.id), conversation);
            assert.deepEqual(await fresh.loadConversationItems(conversation.id), items);
            assert.deepEqual(
              await fresh.listConversationItems(conversation.id, {
                limit: 3,
                order: 'desc',
                after: items[items.length - 2]?.id,
              }),
              await store.listConversationItems(conversation.id, {
                limit: 3,
                order: 'desc',
                after: items[items.length - 2]?.id,
              }),
            );
          }
          for (const tenant of [DEFAULT_TENANT, 'acme', 'globex']) {
            for (const order of ['asc', 'desc'] as const) {
              assert.deepEqual(
                await fresh.listConversations({ tenant, limit: 100, order }),
                await store.listConversations({ tenant, limit: 100, order }),
              );
            }
          }

          // The imported store works on: a turn on an imported conversation adds to its totals and items.
          const conversation = snapshot.conversations.find((c) => c.conversation.usage.turns === 3)!;
          const turn = newTurn({
            tenant: 'acme',
            conversationId: conversation.conversation.id,
            input: [userMessage('after import')],
          });
          await fresh.beginTurn(turn);
          const result = completed([assistantMessage('still here')], { costUsd: 0.125 });
          await fresh.finishTurn(turn.id, result);
          const continued = await fresh.getConversation(conversation.conversation.id);
          assert.equal(continued?.usage.turns, 4);
          assert.equal(continued?.usage.cost_usd, 0.5);
          assert.equal(continued?.itemCount, conversation.conversation.itemCount + 2);
          assert.deepEqual(await fresh.loadConversationItems(conversation.conversation.id), [
            ...conversation.items,
            ...turn.input,
            ...result.output,
          ]);
        });
      });

      it('skips and counts records whose id exists, never overwriting them', async () => {
        await populate();
        const records = await collectExport(store);
        const snapshot = await exportAll(store);
        assert.deepEqual(await store.importRecords(records), {
          responses: 0,
          conversations: 0,
          skipped: records.length,
        });
        const altered: ExportRecord[] = records.map((record) =>
          record.type === 'response'
            ? {
                type: 'response',
                response: { ...record.response, model: 'impostor', input: [userMessage('impostor')] },
              }
            : {
                ...record,
                conversation: { ...record.conversation, metadata: { impostor: 'yes' } },
                items: [],
              },
        );
        const fresh = newTurn();
        const summary = await store.importRecords(
          (async function* () {
            yield* altered;
            yield { type: 'response', response: fresh } as ExportRecord;
          })(),
        );
        assert.deepEqual(summary, { responses: 1, conversations: 0, skipped: records.length });
        assert.deepEqual(await exportAll(store), {
          ...snapshot,
          responses: [...snapshot.responses, fresh].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
        });
      });

      it('round-trips 1,000 turns: a chain and a conversation', async () => {
        const conversation = await storeConversation([userMessage('start')], {
          tenant: 'acme',
          user: 'long',
        });
        let previous: string | null = null;
        for (let i = 0; i < 1000; i++) {
          // Both links on one set of turns: the store allows it, and it covers both at once.
          const turn = newTurn({
            tenant: 'acme',
            user: 'long',
            previousResponseId: previous,
            conversationId: conversation.id,
            input: [userMessage(`question ${i}`)],
          });
          await store.beginTurn(turn);
          await store.finishTurn(turn.id, completed([assistantMessage(`answer ${i}`)], { costUsd: 0.125 }));
          previous = turn.id;
        }
        const records = await collectExport(store);
        assert.equal(records.length, 1001);
        assertExportOrder(records);
        const chain = await store.loadChain(previous!);
        await withFreshStore(async (fresh) => {
          assert.deepEqual(await fresh.importRecords(records), {
            responses: 1000,
            conversations: 1,
            skipped: 0,
          });
          assert.deepEqual(await fresh.loadChain(previous!), chain);
          const got = await fresh.getConversation(conversation.id);
          assert.equal(got?.itemCount, 2001);
          assert.deepEqual(got?.usage, {
            input_tokens: 10_000,
            output_tokens: 5_000,
            total_tokens: 15_000,
            cost_usd: 125,
            turns: 1000,
          });
          assert.deepEqual(
            await fresh.loadConversationItems(conversation.id),
            await store.loadConversationItems(conversation.id),
          );
          assert.deepEqual(await exportAll(fresh), await exportAll(store));
        });
      });
    });
  });
}
