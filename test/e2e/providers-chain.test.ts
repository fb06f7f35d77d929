// The headline: one conversation, three providers. Turn 1 on Anthropic (thinking + a tool call),
// turn 2 on an OpenAI-compatible server (the tool result), turn 3 on Gemini, all chained with
// previous_response_id. Each upstream must receive the whole history in its own native format,
// tool call and result paired, asserted here payload for payload.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Harness } from '../helpers/harness.ts';
import { assertValidResponse } from '../helpers/spec.ts';
import { requestsTo, startProviderHarness, streamed, weatherTool } from '../providers/gateway.ts';
import { signatureFor } from '../fake-upstream/wire.ts';

let h: Harness;
before(async () => {
  h = await startProviderHarness();
});
after(() => h.close());

describe('a conversation across Anthropic, an OpenAI-compatible server and Gemini', () => {
  it('sends each provider the whole history in its native format', async () => {
    h.upstream.reset();
    h.upstream.enqueue(
      {
        kind: 'reasoning',
        reasoning: 'The user wants the weather; call the tool.',
        text: 'Let me check.',
        calls: [{ id: 'toolu_01A', name: 'get_weather', arguments: '{"city":"Paris"}' }],
      },
      { kind: 'text', text: 'It is sunny and 21°C in Paris.' },
      { kind: 'text', text: 'Bring sunglasses.' },
    );

    // Turn 1: Anthropic, streamed.
    const { response: r1, types } = await streamed(h, {
      model: 'claude',
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'What is the weather in Paris?' }] }],
      instructions: 'You are a travel assistant.',
      tools: [weatherTool],
      stream: true,
    });
    assert.deepEqual(
      r1.output.map((o) => o.type),
      ['reasoning', 'message', 'function_call'],
    );
    assert.ok(types.includes('response.reasoning_summary_text.delta'), 'thinking streams as reasoning events');
    const thinking = r1.output[0];
    assert.ok(thinking.type === 'reasoning');
    assert.deepEqual(thinking.summary, [{ type: 'summary_text', text: 'The user wants the weather; call the tool.' }]);
    const call = r1.output[2];
    assert.ok(call.type === 'function_call');
    assert.equal(call.call_id, 'toolu_01A');

    // Turn 2: an OpenAI-compatible server (vLLM), with the tool result.
    const r2 = await h.client.responses.create({
      model: 'local',
      previous_response_id: r1.id,
      input: [{ type: 'function_call_output', call_id: 'toolu_01A', output: '{"sky":"sunny","celsius":21}' }],
      tools: [weatherTool],
    });
    assertValidResponse(r2);
    assert.equal(r2.output_text, 'It is sunny and 21°C in Paris.');

    // Turn 3: Gemini, streamed.
    const { response: r3 } = await streamed(h, {
      model: 'gemini',
      previous_response_id: r2.id,
      input: 'Anything I should pack?',
      instructions: 'Answer in one line.',
      stream: true,
    });
    assert.equal(r3.output_text, 'Bring sunglasses.');

    const [anthropic] = requestsTo(h, '/anthropic/');
    const [compat] = requestsTo(h, '/compat/');
    const [gemini] = requestsTo(h, '/google/');

    // Anthropic Messages: system apart, the user turn, the tool declared natively.
    assert.equal(anthropic.path, '/anthropic/v1/messages');
    assert.deepEqual(anthropic.body.system, [{ type: 'text', text: 'You are a travel assistant.' }]);
    assert.deepEqual(anthropic.body.messages, [{ role: 'user', content: [{ type: 'text', text: 'What is the weather in Paris?' }] }]);
    assert.equal(anthropic.body.tools[0].name, 'get_weather');
    assert.deepEqual(anthropic.body.tools[0].input_schema.properties, { city: { type: 'string' } });

    // Chat Completions: Anthropic's text and tool_use as an assistant message with tool_calls, the
    // result as a tool message. Anthropic's signed thinking is Anthropic's alone: not sent here.
    assert.equal(compat.path, '/compat/v1/chat/completions');
    assert.deepEqual(compat.body.messages, [
      { role: 'user', content: 'What is the weather in Paris?' },
      {
        role: 'assistant',
        content: 'Let me check.',
        tool_calls: [{ id: 'toolu_01A', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
      },
      { role: 'tool', tool_call_id: 'toolu_01A', content: '{"sky":"sunny","celsius":21}' },
    ]);
    assert.equal(compat.body.tools[0].function.name, 'get_weather');

    // Gemini: functionCall and functionResponse parts paired by id and name, then the new turn.
    assert.equal(gemini.path, '/google/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
    assert.deepEqual(gemini.body.systemInstruction, { parts: [{ text: 'Answer in one line.' }] });
    assert.deepEqual(gemini.body.contents, [
      { role: 'user', parts: [{ text: 'What is the weather in Paris?' }] },
      {
        role: 'model',
        parts: [{ text: 'Let me check.' }, { functionCall: { id: 'toolu_01A', name: 'get_weather', args: { city: 'Paris' } } }],
      },
      {
        role: 'user',
        parts: [
          {
            functionResponse: {
              id: 'toolu_01A',
              name: 'get_weather',
              response: { name: 'get_weather', content: '{"sky":"sunny","celsius":21}' },
            },
          },
        ],
      },
      { role: 'model', parts: [{ text: 'It is sunny and 21°C in Paris.' }] },
      { role: 'user', parts: [{ text: 'Anything I should pack?' }] },
    ]);
  });

  it('hands Anthropic its own signed thinking back when the chain returns to it', async () => {
    h.upstream.reset();
    const thinking = 'Two cities, two calls.';
    h.upstream.enqueue(
      { kind: 'reasoning', reasoning: thinking, calls: [{ id: 'toolu_B1', name: 'get_weather', arguments: '{"city":"Oslo"}' }] },
      { kind: 'text', text: 'Oslo is cold.' },
    );
    const r1 = await h.client.responses.create({ model: 'claude', input: 'Weather in Oslo?', tools: [weatherTool], reasoning: { effort: 'low' } });
    // The tool result goes back to Anthropic with thinking on: its thinking block must lead the turn, signed.
    await h.client.responses.create({
      model: 'claude',
      previous_response_id: r1.id,
      input: [{ type: 'function_call_output', call_id: 'toolu_B1', output: '-3°C' }],
      tools: [weatherTool],
      reasoning: { effort: 'low' },
    });
    const second = requestsTo(h, '/anthropic/')[1];
    assert.equal(second.body.thinking.type, 'enabled');
    assert.deepEqual(second.body.messages[1], {
      role: 'assistant',
      content: [
        { type: 'thinking', thinking, signature: signatureFor(thinking) },
        { type: 'tool_use', id: 'toolu_B1', name: 'get_weather', input: { city: 'Oslo' } },
      ],
    });
    assert.deepEqual(second.body.messages[2], {
      role: 'user',
      content: [{ type: 'tool_result', tool_use_id: 'toolu_B1', content: '-3°C' }],
    });
  });
});
