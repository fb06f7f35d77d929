// The fake upstream's provider wires, checked against the real AI SDK provider packages: what each
// package parses out of the fake's answers (text, reasoning with signatures, tool calls, usage,
// finish reasons, errors), and the requests the fake rejects the way the real API would.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createAmazonBedrock } from '@ai-sdk/amazon-bedrock';
import { createAnthropic } from '@ai-sdk/anthropic';
import { createDeepSeek } from '@ai-sdk/deepseek';
import { createGoogleGenerativeAI } from '@ai-sdk/google';
import { createGroq } from '@ai-sdk/groq';
import { createMistral } from '@ai-sdk/mistral';
import { createOpenAI } from '@ai-sdk/openai';
import { createXai } from '@ai-sdk/xai';
import { APICallError } from '@ai-sdk/provider';
import type { LanguageModelV4, LanguageModelV4CallOptions, LanguageModelV4Prompt, LanguageModelV4StreamPart } from '@ai-sdk/provider';
import { type FakeUpstream, reasoningReply, startFakeUpstream } from './server.ts';
import { encryptedFor, signatureFor } from './wire.ts';

let up: FakeUpstream;
before(async () => {
  up = await startFakeUpstream();
});
after(() => up.close());
beforeEach(() => up.reset());

const prompt: LanguageModelV4Prompt = [{ role: 'user', content: [{ type: 'text', text: 'Weather in Paris?' }] }];
const tools: LanguageModelV4CallOptions['tools'] = [
  { type: 'function', name: 'get_weather', inputSchema: { type: 'object', properties: { city: { type: 'string' } } } },
];
const usage = { prompt_tokens: 20, completion_tokens: 10, cached_tokens: 5, reasoning_tokens: 4 };
const call = { id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' };

async function stream(model: LanguageModelV4, options: Partial<LanguageModelV4CallOptions> = {}): Promise<LanguageModelV4StreamPart[]> {
  const result = await model.doStream({ prompt, tools, ...options });
  const parts: LanguageModelV4StreamPart[] = [];
  for await (const part of result.stream) parts.push(part);
  return parts;
}

function summarize(parts: LanguageModelV4StreamPart[]) {
  const reasoning = parts.filter((p) => p.type === 'reasoning-delta').map((p) => (p as { delta: string }).delta).join('');
  const text = parts.filter((p) => p.type === 'text-delta').map((p) => (p as { delta: string }).delta).join('');
  const calls = parts.filter((p) => p.type === 'tool-call') as Extract<LanguageModelV4StreamPart, { type: 'tool-call' }>[];
  const finish = parts.find((p) => p.type === 'finish') as Extract<LanguageModelV4StreamPart, { type: 'finish' }>;
  const metadata = parts.flatMap((p) => ('providerMetadata' in p && p.providerMetadata ? [p.providerMetadata] : []));
  return { reasoning, text, calls, finish, metadata };
}

async function rejection(run: () => PromiseLike<unknown>): Promise<APICallError> {
  try {
    await run();
  } catch (error) {
    assert.ok(APICallError.isInstance(error), `expected APICallError, got ${error}`);
    return error;
  }
  assert.fail('expected the call to fail');
}

describe('Anthropic Messages wire', () => {
  const model = () => createAnthropic({ apiKey: 'k', baseURL: `${up.origin}/anthropic/v1` }).messages('claude-sonnet-4-5');

  test('streams thinking with its signature, text and a tool_use, with usage', async () => {
    up.enqueue(reasoningReply('Check the tool.', { text: 'Let me look.', calls: [call], usage }));
    const s = summarize(await stream(model()));
    assert.equal(s.reasoning, 'Check the tool.');
    assert.equal(s.text, 'Let me look.');
    assert.deepEqual(s.calls.map((c) => [c.toolCallId, c.toolName, c.input]), [['call_1', 'get_weather', '{"city":"Paris"}']]);
    assert.ok(s.metadata.some((m) => (m.anthropic as { signature?: string })?.signature === signatureFor('Check the tool.')));
    assert.equal(s.finish.finishReason.unified, 'tool-calls');
    assert.equal(s.finish.usage.inputTokens.total, 20);
    assert.equal(s.finish.usage.inputTokens.cacheRead, 5);
    assert.equal(s.finish.usage.outputTokens.reasoning, 4);
    const req = up.lastRequest()!;
    assert.equal(req.path, '/anthropic/v1/messages');
    assert.equal(req.headers['x-api-key'], 'k');
    assert.equal(req.body.stream, true);
  });

  test('maps max_tokens and refusal stop reasons; errors keep their message', async () => {
    up.enqueue({ kind: 'text', text: 'cut', finishReason: 'length' }, { kind: 'text', text: 'no', finishReason: 'content_filter' }, { kind: 'error', status: 529 });
    assert.equal((await model().doGenerate({ prompt })).finishReason.unified, 'length');
    assert.equal((await model().doGenerate({ prompt })).finishReason.unified, 'content-filter');
    const error = await rejection(() => model().doGenerate({ prompt }));
    assert.equal(error.statusCode, 529);
    assert.match(error.message, /Overloaded/);
  });

  test('rejects a tool_use left unanswered and a thinking block with a forged signature', async () => {
    const unanswered = await rejection(() =>
      model().doGenerate({
        prompt: [...prompt, { role: 'assistant', content: [{ type: 'tool-call', toolCallId: 't1', toolName: 'get_weather', input: {} }] }, { role: 'user', content: [{ type: 'text', text: 'and?' }] }],
        tools,
      }),
    );
    assert.match(unanswered.message, /tool_use` ids were found without `tool_result`/);
    const forged = await rejection(() =>
      model().doGenerate({
        prompt: [
          ...prompt,
          { role: 'assistant', content: [{ type: 'reasoning', text: 'real', providerOptions: { anthropic: { signature: 'sig_forged' } } }, { type: 'text', text: 'hi' }] },
          { role: 'user', content: [{ type: 'text', text: 'more' }] },
        ],
      }),
    );
    assert.match(forged.message, /Invalid `signature` in `thinking` block/);
  });
});

describe('Gemini wire', () => {
  const model = (id = 'gemini-2.5-flash') => createGoogleGenerativeAI({ apiKey: 'k', baseURL: `${up.origin}/google/v1beta` }).languageModel(id);

  test('streams thoughts, text and a signed function call over alt=sse, with usage', async () => {
    up.enqueue(reasoningReply('Weather needs the tool.', { text: 'Checking.', calls: [call], usage }));
    const s = summarize(await stream(model('gemini-3-pro-preview')));
    assert.equal(s.reasoning, 'Weather needs the tool.');
    assert.equal(s.text, 'Checking.');
    assert.equal(s.calls[0].toolName, 'get_weather');
    assert.equal((s.calls[0].providerMetadata?.google as { thoughtSignature?: string } | undefined)?.thoughtSignature, signatureFor('Weather needs the tool.'));
    assert.equal(s.finish.usage.outputTokens.reasoning, 4);
    assert.equal(s.finish.usage.inputTokens.cacheRead, 5);
    const req = up.lastRequest()!;
    assert.equal(req.path, '/google/v1beta/models/gemini-3-pro-preview:streamGenerateContent?alt=sse');
    assert.equal(req.headers['x-goog-api-key'], 'k');
  });

  test('maps MAX_TOKENS and SAFETY; a gemini-3 function call replayed without its signature is a 400', async () => {
    up.enqueue({ kind: 'text', text: 'cut', finishReason: 'length' }, { kind: 'text', text: 'x', finishReason: 'content_filter' }, { kind: 'error', status: 429 });
    assert.equal((await model().doGenerate({ prompt })).finishReason.unified, 'length');
    assert.equal((await model().doGenerate({ prompt })).finishReason.unified, 'content-filter');
    const limited = await rejection(() => model().doGenerate({ prompt }));
    assert.equal(limited.statusCode, 429);
    assert.match(limited.message, /Resource has been exhausted/);
    // The SDK injects Google's documented skip sentinel for unsigned calls; the raw wire check still holds.
    const res = await fetch(`${up.origin}/google/v1beta/models/gemini-3-pro-preview:generateContent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        contents: [
          { role: 'user', parts: [{ text: 'hi' }] },
          { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: {} } }] },
          { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { content: 'sunny' } } }] },
        ],
      }),
    });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /missing a thought_signature/);
  });
});

describe('OpenAI Responses wire (OpenAI, Azure v1, xAI)', () => {
  test('streams reasoning summary parts with encrypted content, text and a function call', async () => {
    up.enqueue(reasoningReply(['First.', 'Second.'], { text: 'Answer.', calls: [call], usage }));
    const model = createOpenAI({ apiKey: 'k', baseURL: up.url }).responses('gpt-5');
    const parts = await stream(model, { providerOptions: { openai: { store: false } } });
    const s = summarize(parts);
    assert.equal(s.reasoning, 'First.Second.');
    assert.equal(s.text, 'Answer.');
    assert.ok(s.metadata.some((m) => (m.openai as { reasoningEncryptedContent?: string })?.reasoningEncryptedContent === encryptedFor(['First.', 'Second.'])));
    const starts = parts.filter((p) => p.type === 'reasoning-start').map((p) => p.id);
    assert.equal(starts.length, 2, 'one reasoning part per summary part');
    assert.match(starts[0], /^rs_\w+:0$/);
    assert.equal(starts[1], starts[0].replace(/:0$/, ':1'), 'both parts belong to one reasoning item');
    assert.equal(s.finish.usage.outputTokens.reasoning, 4);
    const body = up.lastRequest()!.body;
    assert.equal(body.store, false);
    assert.deepEqual(body.include, ['reasoning.encrypted_content']);
  });

  test('store:false rejects item references and unverifiable encrypted content; incomplete maps to length', async () => {
    const post = (input: unknown[]) =>
      fetch(`${up.url}/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-5', store: false, input }) });
    assert.equal((await post([{ type: 'item_reference', id: 'rs_1' }])).status, 404);
    assert.equal((await post([{ type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'enc_bogus.x' }])).status, 400);
    up.enqueue({ kind: 'text', text: 'cut', finishReason: 'length' });
    const model = createOpenAI({ apiKey: 'k', baseURL: up.url }).responses('gpt-5');
    assert.equal((await model.doGenerate({ prompt, providerOptions: { openai: { store: false } } })).finishReason.unified, 'length');
  });

  test('xAI reads the same wire', async () => {
    up.enqueue(reasoningReply('Hmm.', { text: 'Grok says hi.', usage }));
    const s = summarize(await stream(createXai({ apiKey: 'k', baseURL: `${up.origin}/xai/v1` }).responses('grok-4'), { providerOptions: { xai: { store: false } } }));
    assert.equal(s.reasoning, 'Hmm.');
    assert.equal(s.text, 'Grok says hi.');
    assert.ok(s.metadata.some((m) => (m.xai as { reasoningEncryptedContent?: string })?.reasoningEncryptedContent === encryptedFor(['Hmm.'])));
  });
});

describe('Bedrock Converse wire', () => {
  const model = () =>
    createAmazonBedrock({ region: 'us-east-1', accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', baseURL: `${up.origin}/bedrock` }).languageModel(
      'anthropic.claude-sonnet-4-5-v1:0',
    );

  test('streams the binary event stream: reasoning with signature, text, tool use, usage', async () => {
    up.enqueue(reasoningReply('Ponder.', { text: 'Here.', calls: [call], usage }));
    const s = summarize(await stream(model()));
    assert.equal(s.reasoning, 'Ponder.');
    assert.equal(s.text, 'Here.');
    assert.equal(s.calls[0].input, '{"city":"Paris"}');
    assert.ok(s.metadata.some((m) => (m.bedrock as { signature?: string })?.signature === signatureFor('Ponder.')));
    assert.equal(s.finish.usage.inputTokens.cacheRead, 5);
    const req = up.lastRequest()!;
    assert.equal(req.path, '/bedrock/model/anthropic.claude-sonnet-4-5-v1%3A0/converse-stream');
    assert.match(req.headers.authorization, /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\//, 'SigV4-signed');
  });

  test('errors carry the message; unanswered toolUse is a ValidationException', async () => {
    up.enqueue({ kind: 'error', status: 429 });
    const limited = await rejection(() => model().doGenerate({ prompt }));
    assert.equal(limited.statusCode, 429);
    assert.match(limited.message, /Too many requests/);
    const unanswered = await rejection(() =>
      model().doGenerate({
        prompt: [...prompt, { role: 'assistant', content: [{ type: 'tool-call', toolCallId: 't1', toolName: 'get_weather', input: {} }] }, { role: 'user', content: [{ type: 'text', text: '?' }] }],
        tools,
      }),
    );
    assert.match(unanswered.message, /Expected toolResult blocks/);
  });
});

describe('Chat Completions dialects', () => {
  test('Groq: reasoning in `reasoning`, usage in x_groq', async () => {
    up.enqueue(reasoningReply('Quick think.', { text: 'Fast.', usage }));
    const s = summarize(await stream(createGroq({ apiKey: 'k', baseURL: `${up.origin}/groq/openai/v1` }).languageModel('qwen/qwen3-32b')));
    assert.equal(s.reasoning, 'Quick think.');
    assert.equal(s.finish.usage.inputTokens.cacheRead, 5);
    assert.equal(s.finish.usage.outputTokens.reasoning, 4);
  });

  test('DeepSeek: reasoning_content and prompt_cache_hit_tokens', async () => {
    up.enqueue(reasoningReply('Deep think.', { text: 'Sure.', usage }));
    const s = summarize(await stream(createDeepSeek({ apiKey: 'k', baseURL: `${up.origin}/deepseek` }).chat('deepseek-reasoner')));
    assert.equal(s.reasoning, 'Deep think.');
    assert.equal(s.finish.usage.inputTokens.cacheRead, 5);
  });

  test('Mistral: usage on the finish chunk', async () => {
    up.enqueue({ kind: 'text', text: 'Bonjour.', usage });
    const s = summarize(await stream(createMistral({ apiKey: 'k', baseURL: `${up.origin}/mistral/v1` }).chat('mistral-large-latest')));
    assert.equal(s.text, 'Bonjour.');
    assert.equal(s.finish.usage.inputTokens.total, 20);
  });
});
