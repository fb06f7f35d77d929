// SnapshotReplayer rebuilds the events OutputAssembler emits live: for a turn whose parts each
// arrived whole the two sequences are identical, and a turn seen through progress snapshots
// yields the same items, text and terminal event.

import { defaultRequestParams } from '../../src/protocol/defaults.ts';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LanguageModelV4StreamPart } from '@ai-sdk/provider';
import { OutputAssembler } from '../../src/engine/output.ts';
import { replayEvents, SnapshotReplayer } from '../../src/engine/replay.ts';
import { type ResponseState, toResponseObject } from '../../src/protocol/response.ts';
import type { Item, ResponseObject, StreamEvent } from '../../src/protocol/types.ts';
import { assertValidStreamEvent } from '../helpers/spec.ts';

const usage = {
  inputTokens: { total: 5, noCache: 5, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 7, text: 7, reasoning: 0 },
};

function parts(): LanguageModelV4StreamPart[] {
  return [
    { type: 'reasoning-start', id: 'r' },
    { type: 'reasoning-delta', id: 'r', delta: 'Let me think.' },
    { type: 'reasoning-end', id: 'r' },
    { type: 'text-start', id: 't' },
    { type: 'text-delta', id: 't', delta: 'Calling the tool.' },
    { type: 'text-end', id: 't' },
    { type: 'tool-input-start', id: 'call_1', toolName: 'f' },
    { type: 'tool-input-delta', id: 'call_1', delta: '{"a":1}' },
    { type: 'tool-input-end', id: 'call_1' },
    { type: 'tool-call', toolCallId: 'call_1', toolName: 'f', input: '{"a":1}' },
    { type: 'finish', usage, finishReason: { unified: 'tool-calls', raw: 'tool_calls' } },
  ] as LanguageModelV4StreamPart[];
}

function state(output: Item[], status: ResponseState['status'], background = false): ResponseState {
  return {
    id: 'resp_1',
    model: 'm',
    status,
    createdAt: 1,
    completedAt: status === 'completed' ? 2 : null,
    previousResponseId: null,
    params: defaultRequestParams(),
    output,
    usage: null,
    error: null,
    incompleteDetails: null,
    store: true,
    background,
  };
}

/** What the engine emits for a foreground turn: lifecycle events around the assembler's. */
function live(): { events: StreamEvent[]; final: ResponseObject } {
  const events: StreamEvent[] = [];
  const emit = (e: { type: string } & Record<string, unknown>) => events.push({ ...e, sequence_number: events.length } as StreamEvent);
  const assembler = new OutputAssembler(emit);
  const s = state(assembler.output, 'in_progress');
  emit({ type: 'response.created', response: toResponseObject(s) });
  emit({ type: 'response.in_progress', response: toResponseObject(s) });
  for (const part of parts()) assembler.push(part);
  assembler.closeAll('completed');
  const final = toResponseObject({ ...s, status: 'completed', completedAt: 2 });
  emit({ type: 'response.completed', response: final });
  return { events: JSON.parse(JSON.stringify(events)), final };
}

describe('SnapshotReplayer', () => {
  it('replays a finished response as exactly the events the live turn emitted', () => {
    const { events, final } = live();
    const replayed = replayEvents(final);
    for (const e of replayed) assertValidStreamEvent(e);
    // The opening snapshots differ only in what was not known yet (output, usage).
    const strip = (e: StreamEvent) => (e.response ? { ...e, response: { id: (e.response as ResponseObject).id, status: (e.response as ResponseObject).status } } : e);
    assert.deepEqual(replayed.map(strip), events.map(strip));
    assert.deepEqual(replayed.at(-1), events.at(-1));
  });

  it('streams a running response from growing snapshots, one delta per change', () => {
    const events: StreamEvent[] = [];
    const replayer = new SnapshotReplayer((e) => events.push(e));
    const msg = (text: string, status: 'in_progress' | 'completed'): Item => ({
      type: 'message',
      id: 'msg_1',
      role: 'assistant',
      status,
      content: [{ type: 'output_text', text, annotations: [] }],
    });
    replayer.push(toResponseObject(state([], 'queued', true)));
    replayer.push(toResponseObject(state([msg('Hel', 'in_progress')], 'in_progress', true)));
    replayer.push(toResponseObject(state([msg('Hello', 'in_progress')], 'in_progress', true)));
    replayer.push(toResponseObject(state([msg('Hello', 'in_progress')], 'in_progress', true)));
    replayer.push(toResponseObject(state([msg('Hello!', 'completed')], 'completed', true)));
    replayer.push(toResponseObject(state([msg('Hello!', 'completed')], 'completed', true)));
    for (const e of events) assertValidStreamEvent(e);
    assert.deepEqual(
      events.map((e) => [e.type, e.delta ?? (e.response as ResponseObject | undefined)?.status ?? '']),
      [
        ['response.created', 'queued'],
        ['response.queued', 'queued'],
        ['response.in_progress', 'in_progress'],
        ['response.output_item.added', ''],
        ['response.content_part.added', ''],
        ['response.output_text.delta', 'Hel'],
        ['response.output_text.delta', 'lo'],
        ['response.output_text.delta', '!'],
        ['response.output_text.done', ''],
        ['response.content_part.done', ''],
        ['response.output_item.done', ''],
        ['response.completed', 'completed'],
      ],
    );
    assert.deepEqual(
      events.map((e) => e.sequence_number),
      events.map((_, i) => i),
    );
    assert.equal(replayer.ended, true);
  });

  it('ends a cancelled response with response.failed carrying its status, closing open items', () => {
    const events = replayEvents(
      toResponseObject({
        ...state(
          [{ type: 'function_call', id: 'fc_1', call_id: 'c', name: 'f', arguments: '{"a"', status: 'incomplete' }],
          'cancelled',
          true,
        ),
      }),
    );
    for (const e of events) assertValidStreamEvent(e);
    const last = events.at(-1)!;
    assert.equal(last.type, 'response.failed');
    assert.equal((last.response as ResponseObject).status, 'cancelled');
    assert.ok(events.some((e) => e.type === 'response.function_call_arguments.done'));
  });
});
