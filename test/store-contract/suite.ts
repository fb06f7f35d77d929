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
  });
}
