// Context-window management in-process: truncation, compaction and the policy hook. Every test
// asserts exactly what the fake upstream received once the context outgrows a small window or
// threshold: the oldest turns gone (or replaced by the summary), tool calls with their results,
// recent turns verbatim. The same through HTTP: context_management and POST /v1/responses/compact.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { DEFAULT_COMPACTION_INSTRUCTIONS, renderCompactions, transcript } from '../../src/context/compaction.ts';
import { lastTurns } from '../../src/context/policy.ts';
import { tokenCounterFor } from '../../src/context/tokens.ts';
import { openCompaction, sealCompaction, SUMMARY_PREFIX } from '../../src/protocol/compaction-content.ts';
import type { Item, ResponseObject } from '../../src/protocol/types.ts';
import type { FakeUpstream } from '../fake-upstream/server.ts';
import { type Harness, provider, startHarness } from '../helpers/harness.ts';
import { assertValidCompactResource, assertValidResponse, assertValidStreamEvent } from '../helpers/spec.ts';
import { apiErrorOf, type LibraryHarness, messagesOf, startLibrary } from './helpers.ts';

const MODEL = 'gpt-4o-mini';
// About 150 tokens each (" alpha" is one o200k token): the turns that must go first.
const LONG1 = `Remember: ${'alpha '.repeat(150).trim()}`;
const LONG2 = `Also remember: ${'beta '.repeat(150).trim()}`;
const TOOLS = [
  {
    type: 'function' as const,
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    strict: false,
  },
];
const usage = (prompt: number, completion: number) => ({ prompt_tokens: prompt, completion_tokens: completion });

/** Stores two long turns, then a tool turn (call, result, answer); returns the last response. */
async function longHistory(
  h: LibraryHarness,
  link: { conversation: string } | null,
  extra: { truncation?: 'auto' } = {},
): Promise<ResponseObject> {
  const { parley, upstream } = h;
  upstream.enqueue(
    { kind: 'text', text: 'a1' },
    { kind: 'text', text: 'a2' },
    { kind: 'tool_calls', calls: [{ id: 'call_paris', name: 'get_weather', arguments: '{"city":"Paris"}' }] },
    { kind: 'text', text: 'It is 18°C in Paris.' },
  );
  let previous: string | null = null;
  const turn = async (input: Parameters<typeof parley.responses.create>[0]['input']) => {
    const response = await parley.responses.create({
      model: MODEL,
      input,
      tools: TOOLS,
      ...extra,
      ...(link ?? { previous_response_id: previous }),
    });
    previous = response.id;
    return response;
  };
  await turn([
    { role: 'developer', content: 'Be terse.' },
    { role: 'user', content: LONG1 },
  ]);
  await turn(LONG2);
  await turn('What is the weather in Paris?');
  return turn([{ type: 'function_call_output', call_id: 'call_paris', output: '18°C' }]);
}

describe('truncation: auto (library)', () => {
  let h: LibraryHarness;
  before(async () => {
    // A 330-token window with 100 reserved for the answer unless a request sets max_output_tokens.
    h = await startLibrary({ provider: { context_window: 330, max_output_tokens: 100 } });
  });
  after(() => h.close());
  beforeEach(() => h.upstream.reset());

  it('drops the oldest whole turns, keeps the developer message and the tool call with its result', async () => {
    const last = await longHistory(h, null, { truncation: 'auto' });
    const toolTurn = messagesOf(h.upstream).slice(1); // developer message first, then the tool turn
    assert.equal(messagesOf(h.upstream)[0].content, 'Be terse.');
    assert.equal(toolTurn[0].content, 'What is the weather in Paris?', 'already truncated: the long turns were dropped');

    h.upstream.reset();
    h.upstream.enqueue({ kind: 'text', text: 'Rain.' }, { kind: 'text', text: 'Rain again.' });
    await h.parley.responses.create({ model: MODEL, input: 'And tomorrow?', previous_response_id: last.id, tools: TOOLS, truncation: 'auto' });
    assert.deepEqual(messagesOf(h.upstream), [
      { role: 'system', content: 'Be terse.' },
      ...toolTurn,
      { role: 'assistant', content: 'It is 18°C in Paris.' },
      { role: 'user', content: 'And tomorrow?' },
    ]);
    assert.equal(h.upstream.lastRequest()?.body.max_tokens, undefined, 'the reserve is not sent upstream');

    // A request's own max_output_tokens is reserved instead of the model's: more room, one more turn.
    await h.parley.responses.create({
      model: MODEL,
      input: 'And tomorrow?',
      previous_response_id: last.id,
      tools: TOOLS,
      truncation: 'auto',
      max_output_tokens: 10,
    });
    assert.deepEqual(messagesOf(h.upstream), [
      { role: 'system', content: 'Be terse.' },
      { role: 'user', content: LONG2 },
      { role: 'assistant', content: 'a2' },
      ...toolTurn,
      { role: 'assistant', content: 'It is 18°C in Paris.' },
      { role: 'user', content: 'And tomorrow?' },
    ]);
  });

  it('truncation: disabled is the same 400 context_length_exceeded as over HTTP, sending nothing', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'a1' });
    const first = await h.parley.responses.create({ model: MODEL, input: LONG1, max_output_tokens: 10 });
    const sent = h.upstream.requests.length;
    const error = await apiErrorOf(h.parley.responses.create({ model: MODEL, input: LONG2, previous_response_id: first.id }));
    assert.equal(error.status, 400);
    assert.equal(error.code, 'context_length_exceeded');
    assert.equal(error.param, 'input');
    assert.equal(h.upstream.requests.length, sent);
  });
});

describe('compaction: context_management (library)', () => {
  let h: LibraryHarness;
  before(async () => {
    h = await startLibrary({
      provider: { pricing: { input_per_million: 1, output_per_million: 2, cached_input_per_million: 0.5 } },
    });
  });
  after(() => h.close());
  beforeEach(() => h.upstream.reset());

  it('summarises the older turns, sends the summary plus the recent turns verbatim, and keeps the full history', async () => {
    const conversation = await h.parley.conversations.create({ user: 'ada' });
    await longHistory(h, { conversation: conversation.id });
    const toolTurn = messagesOf(h.upstream).slice(-3); // user question, assistant call, tool result

    h.upstream.reset();
    h.upstream.enqueue(
      { kind: 'text', text: 'The user asked to remember alpha and beta.', usage: usage(400, 20) },
      { kind: 'text', text: 'Tomorrow: rain.', usage: usage(100, 5) },
    );
    const r4 = await h.parley.responses.create({
      model: MODEL,
      input: 'Thanks! And tomorrow?',
      conversation: conversation.id,
      tools: TOOLS,
      context_management: [{ type: 'compaction', compact_threshold: 300 }],
    });
    assertValidResponse(r4);

    // 1. The compaction model read the older turns (not the developer message) as a transcript.
    assert.equal(h.upstream.requests.length, 2);
    const summariser = h.upstream.requests[0].body;
    assert.deepEqual(summariser.messages, [
      { role: 'system', content: DEFAULT_COMPACTION_INSTRUCTIONS },
      { role: 'user', content: `user: ${LONG1}\n\nassistant: a1\n\nuser: ${LONG2}\n\nassistant: a2` },
    ]);
    assert.equal(summariser.tools, undefined);
    assert.notEqual(summariser.stream, true);

    // 2. The answer was asked with the summary in place of those turns, the rest verbatim.
    const summary = `${SUMMARY_PREFIX}The user asked to remember alpha and beta.`;
    assert.deepEqual(messagesOf(h.upstream), [
      { role: 'system', content: 'Be terse.' },
      { role: 'user', content: summary },
      ...toolTurn,
      { role: 'assistant', content: 'It is 18°C in Paris.' },
      { role: 'user', content: 'Thanks! And tomorrow?' },
    ]);

    // 3. The compaction item is the turn's first output item; usage and cost include the pass.
    assert.deepEqual(
      r4.output.map((i) => i.type),
      ['compaction', 'message'],
    );
    const compaction = r4.output[0];
    assert.ok(compaction.type === 'compaction' && compaction.id.startsWith('cmp_'));
    assert.equal(openCompaction(compaction)?.summary, 'The user asked to remember alpha and beta.');
    assert.equal(r4.usage?.input_tokens, 500);
    assert.equal(r4.usage?.output_tokens, 25);

    // 4. The next turn (no context_management) still sees the summary, not the old turns.
    h.upstream.reset();
    h.upstream.enqueue({ kind: 'text', text: 'You are welcome.' });
    await h.parley.responses.create({ model: MODEL, input: 'Bye.', conversation: conversation.id, tools: TOOLS });
    assert.deepEqual(messagesOf(h.upstream), [
      { role: 'system', content: 'Be terse.' },
      { role: 'user', content: summary },
      ...toolTurn,
      { role: 'assistant', content: 'It is 18°C in Paris.' },
      { role: 'user', content: 'Thanks! And tomorrow?' },
      { role: 'assistant', content: 'Tomorrow: rain.' },
      { role: 'user', content: 'Bye.' },
    ]);

    // 5. The full history stays stored and listable, the compaction item where it was produced.
    const items = (await h.parley.conversations.items.list(conversation.id, { order: 'asc', limit: 100 })).data;
    assert.deepEqual(
      items.map((i) => (i.type === 'message' ? `${i.role}` : i.type)),
      [
        'developer',
        'user',
        'assistant',
        'user',
        'assistant',
        'user',
        'function_call',
        'function_call_output',
        'assistant',
        'user',
        'compaction',
        'assistant',
        'user',
        'assistant',
      ],
    );
    const details = await h.parley.conversations.details(conversation.id);
    assert.equal(details.usage.turns, 6);
  });

  it('compacts again later: the new summary folds in the earlier one; on a previous_response_id chain too', async () => {
    const last = await longHistory(h, null);
    h.upstream.reset();
    h.upstream.enqueue({ kind: 'text', text: 'S1' }, { kind: 'text', text: 'Rain.' });
    const cm = [{ type: 'compaction' as const, compact_threshold: 300 }];
    const r1 = await h.parley.responses.create({ model: MODEL, input: 'And tomorrow?', previous_response_id: last.id, tools: TOOLS, context_management: cm });
    assert.equal(r1.output[0].type, 'compaction');

    // Grow the recent part until it alone crosses the threshold again.
    h.upstream.reset();
    h.upstream.enqueue({ kind: 'text', text: 'ok' }, { kind: 'text', text: 'S2' }, { kind: 'text', text: 'Fine.' });
    const note = `Note: ${'gamma '.repeat(300)}`;
    const r2 = await h.parley.responses.create({ model: MODEL, input: note, previous_response_id: r1.id, tools: TOOLS });
    const r3 = await h.parley.responses.create({ model: MODEL, input: 'Done?', previous_response_id: r2.id, tools: TOOLS, context_management: cm });
    assert.equal(r3.output[0].type, 'compaction');
    const summariser = h.upstream.requests[1].body.messages[1].content as string;
    assert.ok(summariser.startsWith('earlier summary: S1\n\nuser: What is the weather in Paris?'), summariser);
    assert.ok(summariser.endsWith(`user: ${note}\n\nassistant: ok`), 'the long note is too big to keep verbatim');
    assert.deepEqual(messagesOf(h.upstream), [
      { role: 'system', content: 'Be terse.' },
      { role: 'user', content: `${SUMMARY_PREFIX}S2` },
      { role: 'user', content: 'Done?' },
    ]);
  });

  it('does not compact under the threshold, and without a threshold only once the window is full', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'a' }, { kind: 'text', text: 'b' });
    const r1 = await h.parley.responses.create({ model: MODEL, input: LONG1, context_management: [{ type: 'compaction', compact_threshold: 100_000 }] });
    const r2 = await h.parley.responses.create({ model: MODEL, input: LONG2, previous_response_id: r1.id, context_management: [{ type: 'compaction' }] });
    assert.deepEqual([...r1.output, ...r2.output].map((i) => i.type), ['message', 'message']);
    assert.equal(h.upstream.requests.length, 2, 'no compaction call: no window configured');
  });

  it('a store:false client sends the compaction item back and earlier items are replaced by it', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'a1' }, { kind: 'text', text: 'SUM' }, { kind: 'text', text: 'a2' }, { kind: 'text', text: 'a3' });
    const history: Item[] = [{ type: 'message', id: 'msg_1', role: 'user', status: 'completed', content: [{ type: 'input_text', text: LONG1 }] }];
    const r1 = await h.parley.responses.create({ model: MODEL, input: history, store: false });
    history.push(...r1.output);
    history.push({ type: 'message', id: 'msg_2', role: 'user', status: 'completed', content: [{ type: 'input_text', text: LONG2 }] });
    const r2 = await h.parley.responses.create({
      model: MODEL,
      input: history,
      store: false,
      context_management: [{ type: 'compaction', compact_threshold: 200 }],
    });
    assert.equal(r2.output[0].type, 'compaction');
    history.push(...r2.output, { type: 'message', id: 'msg_3', role: 'user', status: 'completed', content: [{ type: 'input_text', text: 'Next.' }] });
    await h.parley.responses.create({ model: MODEL, input: history, store: false });
    assert.deepEqual(messagesOf(h.upstream), [
      { role: 'user', content: `${SUMMARY_PREFIX}SUM` },
      { role: 'user', content: LONG2 },
      { role: 'assistant', content: 'a2' },
      { role: 'user', content: 'Next.' },
    ]);

    const forged = await apiErrorOf(
      h.parley.responses.create({ model: MODEL, input: [{ type: 'compaction', encrypted_content: 'gAAAA-from-elsewhere' }] }),
    );
    assert.equal(forged.status, 400);
    assert.equal(forged.param, 'input[0].encrypted_content');
  });

  it('rejects bad context_management entries like any other field', async () => {
    for (const [value, param] of [
      [{ type: 'summarize' }, 'context_management[0].type'],
      [{ type: 'compaction', compact_threshold: 0 }, 'context_management[0].compact_threshold'],
      [{ type: 'compaction', extra: 1 }, 'context_management[0].extra'],
    ] as const) {
      const error = await apiErrorOf(
        h.parley.responses.create({ model: MODEL, input: 'x', context_management: [value as never] }),
      );
      assert.equal(error.status, 400);
      assert.equal(error.param, param);
    }
  });

  it('a failing compaction model fails the turn before anything is stored', async () => {
    const last = await longHistory(h, null);
    h.upstream.reset();
    h.upstream.enqueue({ kind: 'error', status: 500 });
    const error = await apiErrorOf(
      h.parley.responses.create({
        model: MODEL,
        input: 'x',
        previous_response_id: last.id,
        tools: TOOLS,
        context_management: [{ type: 'compaction', compact_threshold: 300 }],
      }),
    );
    assert.equal(error.status, 502);
    assert.match(error.message, /^Compaction failed: /);
    assert.equal(h.upstream.requests.length, 1, 'only the compaction call was made');
  });
});

describe('compaction without a threshold: once the context window would overflow', () => {
  it('summarises the older turns when the next turn would not fit a 250-token window', async () => {
    const h = await startLibrary({ provider: { context_window: 250 } });
    try {
      const cm = [{ type: 'compaction' as const }];
      h.upstream.enqueue({ kind: 'text', text: 'a1' }, { kind: 'text', text: 'Alpha noted.' }, { kind: 'text', text: 'a2' });
      const r1 = await h.parley.responses.create({ model: MODEL, input: LONG1, context_management: cm });
      assert.deepEqual(r1.output.map((i) => i.type), ['message'], 'the first turn fits: nothing to compact');
      const r2 = await h.parley.responses.create({ model: MODEL, input: LONG2, previous_response_id: r1.id, context_management: cm });
      assert.deepEqual(r2.output.map((i) => i.type), ['compaction', 'message']);
      assert.equal(h.upstream.requests[1].body.messages[1].content, `user: ${LONG1}\n\nassistant: a1`);
      assert.deepEqual(messagesOf(h.upstream), [
        { role: 'user', content: `${SUMMARY_PREFIX}Alpha noted.` },
        { role: 'user', content: LONG2 },
      ]);
    } finally {
      await h.close();
    }
  });
});

describe('the context policy hook', () => {
  it('lastTurns(1) plus a pinned item: exactly those reach the model; budget and count are given', async () => {
    const seen: { budget: number | null; counted: number }[] = [];
    const keepLast = lastTurns(1, { pin: (item) => item.type === 'message' && item.id === 'msg_pinned' });
    const h = await startLibrary({
      provider: { context_window: 10_000 },
      contextPolicy: (items, info) => {
        seen.push({ budget: info.budget, counted: info.count(items[0]) });
        return keepLast(items, info);
      },
    });
    try {
      h.upstream.enqueue({ kind: 'text', text: 'a1' }, { kind: 'text', text: 'a2' }, { kind: 'text', text: 'a3' });
      const r1 = await h.parley.responses.create({
        model: MODEL,
        input: [{ type: 'message', id: 'msg_pinned', role: 'user', content: 'My name is Ada.' }],
      });
      assert.equal(r1.status, 'completed');
      const r2 = await h.parley.responses.create({ model: MODEL, input: 'I like tea.', previous_response_id: r1.id });
      await h.parley.responses.create({ model: MODEL, input: 'Who am I?', previous_response_id: r2.id, instructions: 'Be brief.' });
      assert.deepEqual(messagesOf(h.upstream), [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'My name is Ada.' },
        { role: 'user', content: 'Who am I?' },
      ]);
      const counter = await tokenCounterFor(MODEL);
      const fixed = 3 + counter.instructions('Be brief.');
      assert.equal(seen[2].budget, 10_000 - fixed);
      const pinned: Item = { type: 'message', id: 'msg_pinned', role: 'user', status: 'completed', content: [{ type: 'input_text', text: 'My name is Ada.' }] };
      assert.ok(seen.every((s) => s.counted === counter.item(pinned)), 'count() is the tokenizer count of an item');
    } finally {
      await h.close();
    }
  });
});

describe('compaction over HTTP', () => {
  let h: Harness;
  let upstream: FakeUpstream;
  before(async () => {
    h = await startHarness({ store: 'memory', providers: (url) => [provider('openai/gpt-4o-mini', { base_url: url, default: true })] });
    upstream = h.upstream;
  });
  after(() => h.close());
  beforeEach(() => upstream.reset());

  it('POST /v1/responses/compact answers a CompactResource whose output continues the conversation', async () => {
    upstream.enqueue({ kind: 'text', text: 'a1' }, { kind: 'text', text: 'Ada likes tea.', usage: usage(50, 6) }, { kind: 'text', text: 'Tea!' });
    const r1 = await h.client.responses.create({ model: MODEL, input: 'My name is Ada and I like tea.' });
    const compacted = await h.client.responses.compact({ model: MODEL, previous_response_id: r1.id, input: 'What do I like?' });
    assertValidCompactResource(compacted);
    assert.equal(compacted.object, 'response.compaction');
    assert.deepEqual(compacted.usage, {
      input_tokens: 50,
      output_tokens: 6,
      total_tokens: 56,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens_details: { reasoning_tokens: 0 },
    });
    assert.deepEqual(
      compacted.output.map((i) => i.type),
      ['message', 'message', 'compaction'],
      'the user messages, then the compaction item',
    );
    assert.equal(upstream.requests[1].body.messages[1].content, 'user: My name is Ada and I like tea.\n\nassistant: a1\n\nuser: What do I like?');

    await h.client.responses.create({ model: MODEL, input: [...compacted.output, { role: 'user', content: 'Tell me.' }] as never });
    assert.deepEqual(messagesOf(upstream), [
      { role: 'user', content: 'My name is Ada and I like tea.' },
      { role: 'user', content: 'What do I like?' },
      { role: 'user', content: `${SUMMARY_PREFIX}Ada likes tea.` },
      { role: 'user', content: 'Tell me.' },
    ]);

    const bad = await h.post('/v1/responses/compact', { input: 'x' });
    assert.equal(bad.status, 400);
    const empty = await h.post('/v1/responses/compact', { model: MODEL });
    assert.equal(empty.status, 400);
    assert.equal((await empty.json()).error.param, 'input');
  });

  it('context_management streams the compaction item as an output item, every event valid', async () => {
    upstream.enqueue({ kind: 'text', text: 'a1' }, { kind: 'text', text: 'a2' }, { kind: 'text', text: 'SUM' }, { kind: 'text', text: 'a3' });
    const r1 = await h.client.responses.create({ model: MODEL, input: LONG1 });
    const r2 = await h.client.responses.create({ model: MODEL, input: LONG2, previous_response_id: r1.id });
    const stream = h.client.responses.stream({
      model: MODEL,
      input: 'Go on.',
      previous_response_id: r2.id,
      context_management: [{ type: 'compaction', compact_threshold: 200 }],
    });
    const types: string[] = [];
    stream.on('event', (event) => {
      assertValidStreamEvent(event);
      types.push(event.type === 'response.output_item.added' ? `added:${event.item.type}` : event.type);
    });
    const final = await stream.finalResponse();
    assertValidResponse(final);
    assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress', 'added:compaction', 'response.output_item.done']);
    assert.deepEqual(final.output.map((i) => i.type), ['compaction', 'message']);
    const stored = await h.client.responses.retrieve(final.id);
    assert.deepEqual(
      stored.output.map((i) => i.id),
      final.output.map((i) => i.id),
    );
    // Half the threshold is too little for either long turn: both were summarised.
    assert.equal(upstream.requests[2].body.messages[1].content, `user: ${LONG1}\n\nassistant: a1\n\nuser: ${LONG2}\n\nassistant: a2`);
    assert.deepEqual(messagesOf(upstream), [
      { role: 'user', content: `${SUMMARY_PREFIX}SUM` },
      { role: 'user', content: 'Go on.' },
    ]);
  });
});

describe('compaction, unit', () => {
  const msg = (id: string, role: 'user' | 'assistant' | 'developer', text: string): Item => ({
    type: 'message',
    id,
    role,
    status: 'completed',
    content: [role === 'assistant' ? { type: 'output_text', text, annotations: [] } : { type: 'input_text', text }],
  });
  const cmp = (id: string, through: string | null): Item => ({
    type: 'compaction',
    id,
    encrypted_content: sealCompaction({ summary: `summary ${id}`, through }),
  });

  it('renders the latest compaction in place of what it covers; pinned items stay; earlier ones are superseded', () => {
    const items = [msg('d', 'developer', 'rules'), msg('u1', 'user', '1'), msg('a1', 'assistant', '1'), cmp('c1', 'a1'), msg('u2', 'user', '2'), msg('a2', 'assistant', '2'), cmp('c2', 'u2'), msg('a3', 'assistant', '3')];
    assert.deepEqual(
      renderCompactions(items).map((i) => i.id),
      ['d', 'c2', 'a2', 'a3'],
    );
    assert.deepEqual(renderCompactions(items.slice(0, 6)).map((i) => i.id), ['d', 'c1', 'u2', 'a2']);
    assert.deepEqual(renderCompactions([msg('u9', 'user', 'x'), cmp('c9', null)]).map((i) => i.id), ['u9', 'c9']);
    assert.deepEqual(renderCompactions([msg('u9', 'user', 'x'), cmp('c9', 'gone')]).map((i) => i.id), ['u9', 'c9']);
  });

  it('writes tool calls, results and summaries into the transcript', () => {
    const items: Item[] = [
      { type: 'function_call', id: 'fc', call_id: 'c1', name: 'f', arguments: '{"a":1}', status: 'completed' },
      { type: 'function_call_output', id: 'fo', call_id: 'c1', output: 'done', status: 'completed' },
      cmp('c0', null),
    ];
    assert.equal(transcript(items), 'assistant called f({"a":1}) [c1]\n\nf [c1] returned: done\n\nearlier summary: summary c0');
  });
});
