// The ConversationStore contract: every backend (memory, sqlite, postgres, redis) runs exactly this
// suite. Items and responses must come back deep-equal to what went in.
//
// `makeStore` is called once per test and must return a NEW, EMPTY, NOT YET OPENED store with no
// default TTL (the suite calls open() and close(), then `cleanup`). Shared servers should hand out
// a fresh schema / key prefix per call.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type {
  FunctionCallItem,
  FunctionCallOutputItem,
  Item,
  MessageItem,
  ReasoningItem,
} from '../../src/protocol/types.ts';
import type {
  ConversationStore,
  StoredConversation,
  StoredRequestParams,
  StoredResponse,
  TurnResult,
} from '../../src/store/types.ts';
import { ChainBrokenError, StoreConflictError } from '../../src/store/types.ts';

export type MakeStore = () => Promise<{ store: ConversationStore; cleanup?: () => Promise<void> }>;

// ---------- fixtures ----------

const NOW = () => Math.floor(Date.now() / 1000);

export function newId(prefix: string): string {
  return `${prefix}_${randomUUID().replaceAll('-', '')}`;
}

export function defaultParams(): StoredRequestParams {
  return {
    instructions: null,
    tools: [],
    tool_choice: 'auto',
    parallel_tool_calls: true,
    temperature: null,
    top_p: null,
    presence_penalty: null,
    frequency_penalty: null,
    top_logprobs: null,
    max_output_tokens: null,
    max_tool_calls: null,
    text: { format: { type: 'text' } },
    reasoning: null,
    truncation: 'disabled',
    metadata: {},
    user: null,
    safety_identifier: null,
    prompt_cache_key: null,
    service_tier: null,
  };
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

/** A new conversation record; `itemCount` should equal the number of initial items passed with it. */
export function newConversation(overrides: Partial<StoredConversation> = {}): StoredConversation {
  return {
    id: newId('conv'),
    createdAt: NOW(),
    metadata: {},
    user: null,
    itemCount: 0,
    expiresAt: null,
    ...overrides,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
          const seen: Item[] = [];
          let after: string | undefined;
          for (let guard = 0; guard < 20; guard++) {
            const page = await store.listInputItems(turn.id, { limit: 2, order, after });
            assert.ok(page);
            seen.push(...page.items);
            if (!page.hasMore) break;
            after = page.items[page.items.length - 1].id;
          }
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
        const conversation = await storeConversation(items, { metadata: { a: '1', b: '2' }, user: 'u' });
        const updated = await store.updateConversation(conversation.id, { metadata: { c: '3' } });
        const expected = { ...conversation, metadata: { c: '3' } };
        assert.deepEqual(updated, expected);
        assert.deepEqual(await store.getConversation(conversation.id), expected);
        assert.deepEqual(await store.loadConversationItems(conversation.id), items);
        assert.deepEqual(await store.updateConversation(conversation.id, { metadata: {} }), {
          ...conversation,
          metadata: {},
        });
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
        const listed = await store.listConversations({ user: 'u-del', limit: 10, order: 'asc' });
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
        const conversation = await storeConversation(initial);
        const first = [userMessage('one', 'msg_zzz'), assistantMessage('two', 'msg_000')];
        const second = [userMessage('three')];
        assert.deepEqual(await store.appendConversationItems(conversation.id, first), {
          ...conversation,
          itemCount: 3,
        });
        assert.deepEqual(await store.appendConversationItems(conversation.id, second), {
          ...conversation,
          itemCount: 4,
        });
        assert.deepEqual(await store.appendConversationItems(conversation.id, []), {
          ...conversation,
          itemCount: 4,
        });
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
          const seen: Item[] = [];
          let after: string | undefined;
          for (let guard = 0; guard < 20; guard++) {
            const page = await store.listConversationItems(conversation.id, { limit: 2, order, after });
            assert.ok(page);
            seen.push(...page.items);
            if (!page.hasMore) break;
            after = page.items[page.items.length - 1].id;
          }
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
        assert.deepEqual(await store.listConversations({ user: 'u1', limit: 10, order: 'desc' }), {
          conversations: [b, a],
          hasMore: false,
        });
        assert.deepEqual(await store.listConversations({ user: 'u2', limit: 10, order: 'asc' }), {
          conversations: [c],
          hasMore: false,
        });
        assert.deepEqual(await store.listConversations({ user: 'nobody', limit: 10, order: 'asc' }), {
          conversations: [],
          hasMore: false,
        });
      });

      it('filters by metadata: every pair must match', async () => {
        const { a, b, c, d } = await seeded();
        const list = (metadata: Record<string, string>, user?: string) =>
          store.listConversations({
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
        await store.updateConversation(b.id, { metadata: { team: 'red' } });
        assert.deepEqual(
          (await store.listConversations({ user: 'u1', metadata: { team: 'red' }, limit: 10, order: 'asc' }))
            .conversations,
          [a, { ...b, metadata: { team: 'red' } }],
        );
      });

      it('pages with limit, after and order', async () => {
        const base = 1_750_000_000;
        const all: StoredConversation[] = [];
        for (let i = 0; i < 7; i++)
          all.push(await storeConversation([], { user: 'pager', createdAt: base + i * 10 }));
        await storeConversation([], { user: 'someone else', createdAt: base + 15 });
        const list = (options: { limit: number; order: 'asc' | 'desc'; after?: string }) =>
          store.listConversations({ user: 'pager', ...options });
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
            const page = await store.listConversations({ user: 'burst', limit: 2, order, after });
            seen.push(...page.conversations.map((c) => c.id));
            if (!page.hasMore) break;
            after = page.conversations[page.conversations.length - 1].id;
          }
          assert.equal(seen.length, 9, `${order}: ${seen.length} seen`);
          assert.deepEqual(new Set(seen), new Set(all.map((c) => c.id)));
        }
        const asc = (await store.listConversations({ user: 'burst', limit: 9, order: 'asc' })).conversations;
        const desc = (await store.listConversations({ user: 'burst', limit: 9, order: 'desc' }))
          .conversations;
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
        assert.deepEqual(await store.listConversations({ user: 'exp', limit: 10, order: 'asc' }), {
          conversations: [live],
          hasMore: false,
        });
        assert.deepEqual(await store.getConversation(live.id), live);

        assert.equal(await store.pruneExpired(now), 1);
        assert.equal(await store.pruneExpired(now), 0);
        assert.equal(await store.deleteConversation(expired.id), false);
        assert.equal(await store.pruneExpired(now + 7200), 1);
        assert.equal(await store.getConversation(live.id), null);
      });
    });
  });
}
