// Reasoning items between the assembler and the prompt: one item per provider reasoning item (its
// summary parts grouped), stored with the provider's replay data, replayed per summary part and
// only to the provider whose key that data carries.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LanguageModelV4StreamPart } from '@ai-sdk/provider';
import { OutputAssembler } from '../../src/engine/output.ts';
import type { Item, ReasoningItem } from '../../src/protocol/types.ts';
import { promptForProvider, toModelPrompt } from '../../src/providers/prompt.ts';

const finish: LanguageModelV4StreamPart = {
  type: 'finish',
  finishReason: { unified: 'stop', raw: 'stop' },
  usage: { inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 1, text: 1, reasoning: 0 } },
};

function assemble(parts: LanguageModelV4StreamPart[]) {
  const events: { type: string }[] = [];
  const assembler = new OutputAssembler((e) => events.push(e));
  for (const part of [...parts, finish]) assembler.push(part);
  assembler.closeAll('completed');
  return { output: assembler.output, events: events.map((e) => e.type) };
}

describe('reasoning in the output assembler', () => {
  it('groups summary parts of one provider item, keeping the last encrypted content', () => {
    const openai = (extra: Record<string, unknown> = {}) => ({ openai: { itemId: 'rs_1', ...extra } });
    const { output, events } = assemble([
      { type: 'reasoning-start', id: 'rs_1:0', providerMetadata: openai({ reasoningEncryptedContent: null }) },
      { type: 'reasoning-delta', id: 'rs_1:0', delta: 'First.' },
      { type: 'reasoning-end', id: 'rs_1:0', providerMetadata: openai() },
      { type: 'reasoning-start', id: 'rs_1:1', providerMetadata: openai({ reasoningEncryptedContent: null }) },
      { type: 'reasoning-delta', id: 'rs_1:1', delta: 'Second.' },
      { type: 'reasoning-end', id: 'rs_1:1', providerMetadata: openai({ reasoningEncryptedContent: 'enc' }) },
      { type: 'text-start', id: 't' },
      { type: 'text-delta', id: 't', delta: 'Answer' },
      { type: 'text-end', id: 't' },
    ]);
    assert.equal(output.length, 2);
    const reasoning = output[0] as ReasoningItem;
    assert.deepEqual(reasoning.summary, [
      { type: 'summary_text', text: 'First.' },
      { type: 'summary_text', text: 'Second.' },
    ]);
    assert.deepEqual(reasoning.provider_metadata, { openai: { itemId: 'rs_1', reasoningEncryptedContent: 'enc' } });
    assert.deepEqual(events.slice(0, 10), [
      'response.output_item.added',
      'response.reasoning_summary_part.added',
      'response.reasoning_summary_text.delta',
      'response.reasoning_summary_text.done',
      'response.reasoning_summary_part.done',
      'response.reasoning_summary_part.added',
      'response.reasoning_summary_text.delta',
      'response.reasoning_summary_text.done',
      'response.reasoning_summary_part.done',
      'response.output_item.done',
    ]);
  });

  it('makes one item per Anthropic thinking block, signature included; redacted thinking has no summary', () => {
    const { output } = assemble([
      { type: 'reasoning-start', id: '0' },
      { type: 'reasoning-delta', id: '0', delta: 'Hmm.' },
      { type: 'reasoning-delta', id: '0', delta: '', providerMetadata: { anthropic: { signature: 'sig' } } },
      { type: 'reasoning-end', id: '0' },
      { type: 'reasoning-start', id: '1', providerMetadata: { anthropic: { redactedData: 'opaque' } } },
      { type: 'reasoning-end', id: '1' },
    ]);
    assert.deepEqual(
      output.map((o) => [(o as ReasoningItem).summary.length, (o as ReasoningItem).provider_metadata]),
      [
        [1, { anthropic: { signature: 'sig' } }],
        [0, { anthropic: { redactedData: 'opaque' } }],
      ],
    );
  });
});

describe('reasoning in the prompt', () => {
  const user: Item = { type: 'message', id: 'm1', role: 'user', status: 'completed', content: [{ type: 'input_text', text: 'Hi' }] };
  const anthropic: Item = { type: 'reasoning', id: 'rs_a', summary: [{ type: 'summary_text', text: 'Signed.' }], provider_metadata: { anthropic: { signature: 'sig' } } };
  const openai: Item = {
    type: 'reasoning',
    id: 'rs_o',
    summary: [
      { type: 'summary_text', text: 'One.' },
      { type: 'summary_text', text: 'Two.' },
    ],
    provider_metadata: { openai: { itemId: 'rs_up', reasoningEncryptedContent: 'enc' } },
  };
  const answer: Item = { type: 'message', id: 'm2', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Hello', annotations: [] }] };
  const prompt = toModelPrompt([user, anthropic, openai, answer], null);

  it('replays each summary part with the item provider data', () => {
    assert.deepEqual(prompt[1], {
      role: 'assistant',
      content: [
        { type: 'reasoning', text: 'Signed.', providerOptions: { anthropic: { signature: 'sig' } } },
        { type: 'reasoning', text: 'One.', providerOptions: { openai: { itemId: 'rs_up', reasoningEncryptedContent: 'enc' } } },
        { type: 'reasoning', text: 'Two.', providerOptions: { openai: { itemId: 'rs_up', reasoningEncryptedContent: 'enc' } } },
        { type: 'text', text: 'Hello' },
      ],
    });
  });

  it('keeps only the reasoning the target provider produced', () => {
    const kinds = (namespace: string) => {
      const message = promptForProvider(prompt, namespace)[1];
      assert.equal(message.role, 'assistant');
      return message.content.map((p) => (p.type === 'reasoning' ? Object.keys(p.providerOptions ?? {})[0] : p.type));
    };
    assert.deepEqual(kinds('anthropic'), ['anthropic', 'text']);
    assert.deepEqual(kinds('openai'), ['openai', 'openai', 'text']);
    assert.deepEqual(kinds('google'), ['text']);
    assert.equal(promptForProvider(toModelPrompt([user, answer], null), 'google').length, 2, 'unchanged when there is no reasoning');
  });

  it("replays a client's OpenAI reasoning item by its encrypted content", () => {
    const sent: Item = { type: 'reasoning', id: 'rs_client', summary: [], encrypted_content: 'gAAAA' };
    const p = toModelPrompt([user, sent, answer], null);
    assert.deepEqual(p[1].content[0], {
      type: 'reasoning',
      text: '',
      providerOptions: {
        openai: { itemId: 'rs_client', reasoningEncryptedContent: 'gAAAA' },
        azure: { itemId: 'rs_client', reasoningEncryptedContent: 'gAAAA' },
      },
    });
  });
});
