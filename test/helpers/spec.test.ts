import assert, { AssertionError } from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assertValidError, assertValidResponse, assertValidStreamEvent, streamEventTypes } from './spec.ts';

function completeResponse(): Record<string, unknown> {
  return {
    id: 'resp_123',
    object: 'response',
    created_at: 1741476542,
    completed_at: 1741476543,
    status: 'completed',
    incomplete_details: null,
    model: 'gpt-4o-mini',
    previous_response_id: null,
    instructions: 'Be brief.',
    output: [
      {
        type: 'message',
        id: 'msg_1',
        status: 'completed',
        role: 'assistant',
        content: [{ type: 'output_text', text: 'Hello!', annotations: [] }],
      },
      {
        type: 'function_call',
        id: 'fc_1',
        call_id: 'call_1',
        name: 'get_weather',
        arguments: '{"city":"Paris"}',
        status: 'completed',
      },
    ],
    error: null,
    tools: [
      {
        type: 'function',
        name: 'get_weather',
        description: 'Weather for a city',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        strict: true,
      },
    ],
    tool_choice: 'auto',
    truncation: 'disabled',
    parallel_tool_calls: true,
    text: { format: { type: 'text' } },
    top_p: 1,
    presence_penalty: 0,
    frequency_penalty: 0,
    top_logprobs: 0,
    temperature: 1,
    reasoning: null,
    usage: {
      input_tokens: 12,
      output_tokens: 5,
      total_tokens: 17,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens_details: { reasoning_tokens: 0 },
    },
    max_output_tokens: null,
    max_tool_calls: null,
    store: true,
    background: false,
    service_tier: 'default',
    metadata: {},
    safety_identifier: null,
    prompt_cache_key: null,
  };
}

function throwsMatching(fn: () => void, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AssertionError, 'throws an AssertionError');
    assert.match(err.message, pattern);
    return true;
  });
}

describe('assertValidResponse', () => {
  test('a complete response passes', () => {
    assertValidResponse(completeResponse());
  });

  test('a missing required field fails with a readable message', () => {
    const r = completeResponse();
    delete r.tools;
    throwsMatching(() => assertValidResponse(r), /\(root\): must have required property 'tools'/);
  });

  test('errors inside output items name the path and show the offending JSON', () => {
    const r = completeResponse();
    (r.output as Record<string, unknown>[])[0].content = [{ type: 'output_text', text: 'Hello!' }];
    throwsMatching(
      () => assertValidResponse(r),
      /\/output\/0\/content\/0: must have required property 'annotations'[\s\S]*at \/output\/0\/content\/0: \{"type":"output_text","text":"Hello!"\}/,
    );
  });

  test('an output item of unknown type fails', () => {
    const r = completeResponse();
    (r.output as unknown[]).push({ type: 'bogus', id: 'x' });
    throwsMatching(() => assertValidResponse(r), /\/output\/2: .*"bogus"/);
  });

  test('text.format json_schema may echo the schema object (patched spec quirk), nothing looser', () => {
    const r = completeResponse();
    r.text = {
      format: {
        type: 'json_schema',
        name: 'weather',
        description: null,
        schema: { type: 'object', properties: { temp: { type: 'number' } } },
        strict: true,
      },
    };
    assertValidResponse(r);
    (r.text as { format: { schema: unknown } }).format.schema = null;
    assertValidResponse(r);
    (r.text as { format: { schema: unknown } }).format.schema = 'not a schema';
    assert.throws(() => assertValidResponse(r), AssertionError);
  });
});

describe('assertValidStreamEvent', () => {
  const delta = {
    type: 'response.output_text.delta',
    sequence_number: 4,
    item_id: 'msg_1',
    output_index: 0,
    content_index: 0,
    delta: 'Hel',
    logprobs: [],
  };

  test('a valid response.output_text.delta passes', () => {
    assertValidStreamEvent(delta);
  });

  test('a delta missing content_index fails', () => {
    const { content_index: _, ...missing } = delta;
    throwsMatching(() => assertValidStreamEvent(missing), /must have required property 'content_index'/);
  });

  test('an unknown event type fails', () => {
    throwsMatching(
      () => assertValidStreamEvent({ type: 'response.heartbeat', sequence_number: 1 }),
      /Unknown Open Responses stream event type "response.heartbeat"/,
    );
    assert.throws(() => assertValidStreamEvent({ sequence_number: 1 }), AssertionError);
    assert.throws(() => assertValidStreamEvent(null), AssertionError);
  });

  test('response.created carries a full response, validated too', () => {
    assertValidStreamEvent({ type: 'response.created', sequence_number: 0, response: completeResponse() });
    const partial = completeResponse();
    delete partial.usage;
    throwsMatching(
      () => assertValidStreamEvent({ type: 'response.created', sequence_number: 0, response: partial }),
      /\/response: must have required property 'usage'/,
    );
  });

  test('every event type of the spec is known', () => {
    const types = streamEventTypes();
    for (const t of [
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.completed',
      'response.incomplete',
      'response.failed',
      'error',
    ]) {
      assert.ok(types.includes(t), t);
    }
  });
});

describe('assertValidError', () => {
  test('an OpenAI-shaped error passes', () => {
    assertValidError({
      error: {
        message: 'Previous response not found',
        type: 'invalid_request_error',
        param: 'previous_response_id',
        code: 'previous_response_not_found',
      },
    });
    assertValidError({ error: { message: 'boom', type: 'server_error', param: null, code: null } });
  });

  test('missing or mistyped fields fail', () => {
    throwsMatching(
      () => assertValidError({ error: { message: 'boom', type: 'server_error', code: null } }),
      /\/error: must have required property 'param'/,
    );
    assert.throws(() => assertValidError({ message: 'boom' }), AssertionError);
    assert.throws(
      () => assertValidError({ error: { message: 'x', type: 'y', param: null, code: 404 } }),
      AssertionError,
    );
  });
});
