// TurnSurface: max_tool_calls drops the extra calls' parts; logprobs reported by the upstream land
// on the output text in the Responses shape; the encrypted_content envelope round-trips.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LanguageModelV4StreamPart } from '@ai-sdk/provider';
import { TurnSurface } from '../../src/engine/surface.ts';
import { openReasoning, sealReasoning } from '../../src/protocol/encrypted-content.ts';
import { parseCreateResponse } from '../../src/protocol/request.ts';
import type { Item, OutputTextPart, RequestParams } from '../../src/protocol/types.ts';

const openai = { provider: 'openai', namespace: 'openai', route: 'openai/gpt-4o' };

async function collect(parts: AsyncIterable<LanguageModelV4StreamPart>): Promise<LanguageModelV4StreamPart[]> {
  const out: LanguageModelV4StreamPart[] = [];
  for await (const p of parts) out.push(p);
  return out;
}

async function* from(parts: LanguageModelV4StreamPart[]): AsyncGenerator<LanguageModelV4StreamPart> {
  yield* parts;
}

const finish = (providerMetadata?: Record<string, Record<string, unknown>>) =>
  ({
    type: 'finish',
    usage: { inputTokens: { total: 1 }, outputTokens: { total: 1 } },
    finishReason: { unified: 'stop', raw: 'stop' },
    ...(providerMetadata ? { providerMetadata } : {}),
  }) as unknown as LanguageModelV4StreamPart;

describe('TurnSurface', () => {
  it('passes parts through untouched when nothing is asked', () => {
    const surface = new TurnSurface(parseCreateResponse({ model: 'm', input: 'x' }), openai);
    const parts = from([]);
    assert.equal(surface.observe(parts, () => []), parts);
  });

  it('max_tool_calls keeps the first calls and drops every part of the others', async () => {
    const surface = new TurnSurface(parseCreateResponse({ model: 'm', input: 'x', max_tool_calls: 1 }), openai);
    const parts = [
      { type: 'tool-input-start', id: 'a', toolName: 'f' },
      { type: 'tool-input-start', id: 'b', toolName: 'f' },
      { type: 'tool-input-delta', id: 'b', delta: '{}' },
      { type: 'tool-input-delta', id: 'a', delta: '{}' },
      { type: 'tool-input-end', id: 'b' },
      { type: 'tool-call', toolCallId: 'a', toolName: 'f', input: '{}' },
      { type: 'tool-call', toolCallId: 'b', toolName: 'f', input: '{}' },
      { type: 'tool-call', toolCallId: 'c', toolName: 'f', input: '{}' },
      finish(),
    ] as LanguageModelV4StreamPart[];
    const kept = await collect(surface.observe(from(parts), () => []));
    assert.deepEqual(
      kept.map((p) => [p.type, 'id' in p ? p.id : 'toolCallId' in p ? p.toolCallId : '']),
      [
        ['tool-input-start', 'a'],
        ['tool-input-delta', 'a'],
        ['tool-call', 'a'],
        ['finish', ''],
      ],
    );
  });

  it('asks for logprobs in the provider options and attaches them with bytes', async () => {
    const request = parseCreateResponse({ model: 'm', input: 'x', include: ['message.output_text.logprobs'], top_logprobs: 2 });
    const surface = new TurnSurface(request, openai);
    const model = surface.model({ providerOptions: (_params: RequestParams) => ({ openai: { user: 'u' } }) });
    assert.deepEqual(model.providerOptions(request.params), { openai: { user: 'u', logprobs: 2 } });

    const part: OutputTextPart = { type: 'output_text', text: 'hé', annotations: [] };
    const output: Item[] = [{ type: 'message', id: 'm', role: 'assistant', status: 'completed', content: [part] }];
    const logprobs = [{ token: 'hé', logprob: -0.5, top_logprobs: [{ token: 'he', logprob: -1 }] }];
    await collect(surface.observe(from([finish({ openai: { logprobs } })]), () => output));
    assert.deepEqual(part.logprobs, [
      { token: 'hé', logprob: -0.5, bytes: [104, 195, 169], top_logprobs: [{ token: 'he', logprob: -1, bytes: [104, 101] }] },
    ]);
  });

  it('ends the parts with the stop reason when a stoppable turn is aborted', async () => {
    const surface = new TurnSurface(parseCreateResponse({ model: 'm', input: 'x' }), openai);
    const stop = new AbortController();
    stop.abort(new Error('stopped'));
    await assert.rejects(collect(surface.observe(from([finish()]), () => [], stop.signal)), /stopped/);
  });

  it('opens Parley envelopes in the input into provider data', () => {
    const metadata = { anthropic: { signature: 'sig' } };
    const sealed = sealReasoning(metadata);
    assert.deepEqual(openReasoning(sealed), metadata);
    assert.equal(openReasoning('gAAAA-openai-blob'), null);
    assert.equal(openReasoning('parley.v1.@@'), undefined);
    const request = parseCreateResponse({
      model: 'm',
      input: [
        { role: 'user', content: 'q' },
        { type: 'reasoning', summary: [{ type: 'summary_text', text: 't' }], encrypted_content: sealed },
      ],
    });
    new TurnSurface(request, openai);
    assert.deepEqual((request.input[1] as { provider_metadata?: unknown }).provider_metadata, metadata);
  });
});
