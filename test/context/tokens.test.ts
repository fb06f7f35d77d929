// Token counts: exact against gpt-tokenizer for OpenAI models, an estimate for the rest.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeChat as encodeChatCl } from 'gpt-tokenizer/encoding/cl100k_base';
import { encode, encodeChat } from 'gpt-tokenizer/encoding/o200k_base';
import { countRequestTokens, encodingFor, itemTokenUpperBound, tokenCounterFor } from '../../src/context/tokens.ts';
import type { Item } from '../../src/protocol/types.ts';

const user = (text: string): Item => ({ type: 'message', id: 'm', role: 'user', status: 'completed', content: [{ type: 'input_text', text }] });
const assistant = (text: string): Item => ({
  type: 'message',
  id: 'a',
  role: 'assistant',
  status: 'completed',
  content: [{ type: 'output_text', text, annotations: [] }],
});

describe('encodingFor', () => {
  it('picks o200k for current OpenAI models, cl100k for older ones, nothing for others', () => {
    for (const id of ['gpt-4o', 'gpt-4o-mini', 'gpt-4.1-nano', 'gpt-5', 'o3-mini', 'o4-mini', 'chatgpt-4o-latest', 'ft:gpt-4o-mini:org::x', 'gpt-oss-20b']) {
      assert.equal(encodingFor(id), 'o200k_base', id);
    }
    for (const id of ['gpt-4', 'gpt-4-turbo', 'gpt-3.5-turbo']) assert.equal(encodingFor(id), 'cl100k_base', id);
    for (const id of ['claude-sonnet-4-5', 'gemini-2.5-flash', 'llama3.1']) assert.equal(encodingFor(id), null, id);
  });
});

describe('countRequestTokens', () => {
  it('equals encodeChat for plain messages (o200k and cl100k)', async () => {
    const chat = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Héllo wörld, 1234?' },
      { role: 'assistant', content: 'Hi.' },
      { role: 'user', content: 'And now?' },
    ] as const;
    const items = [user(chat[1].content), assistant(chat[2].content), user(chat[3].content)];
    const o200k = await tokenCounterFor('gpt-4o');
    assert.equal(countRequestTokens(o200k, { instructions: chat[0].content, tools: [], items }), encodeChat([...chat], 'gpt-4o').length);
    const cl100k = await tokenCounterFor('gpt-4');
    assert.equal(countRequestTokens(cl100k, { instructions: chat[0].content, tools: [], items }), encodeChatCl([...chat], 'gpt-4').length);
  });

  it('counts tool calls, results, images and tools, and estimates for unknown models', async () => {
    const counter = await tokenCounterFor('gpt-4o-mini');
    assert.equal(counter.text('a <|endoftext|> b'), encode('a <|endoftext|> b', { disallowedSpecial: new Set() }).length, 'special tokens are plain text');
    const call: Item = { type: 'function_call', id: 'f', call_id: 'c', name: 'get_weather', arguments: '{"city":"Paris"}', status: 'completed' };
    assert.equal(counter.item(call), 3 + encode('assistant').length + encode('get_weather').length + encode('{"city":"Paris"}').length);
    const image: Item = {
      type: 'message',
      id: 'i',
      role: 'user',
      status: 'completed',
      content: [{ type: 'input_image', image_url: 'https://x/y.png', detail: 'low' }],
    };
    assert.equal(counter.item(image), 3 + 1 + 85);
    assert.ok(counter.tools([{ type: 'function', name: 'f', description: 'd', parameters: { type: 'object' }, strict: true }]) > 9);
    const estimate = await tokenCounterFor('claude-sonnet-4-5');
    assert.equal(estimate.encoding, 'estimate');
    assert.equal(estimate.text('abcdefgh'), 2);
  });

  it('never counts more than the cheap upper bound', async () => {
    const counter = await tokenCounterFor('gpt-4o');
    for (const text of ['', 'a', 'hello world', '日本語のテキスト', '🙂🙃'.repeat(20), 'x'.repeat(1000)]) {
      const item = user(text);
      assert.ok(counter.item(item) <= itemTokenUpperBound(item), text);
    }
  });
});
