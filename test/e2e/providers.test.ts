// Every provider type end to end through the official `openai` SDK: a reasoning model answers an
// image question with two parallel tool calls; on the follow-up turn (previous_response_id + two
// function_call_output items) each upstream must receive the whole history in its own format,
// with its reasoning replayed intact (signatures, encrypted content) and each result paired with
// its call. The fake upstreams reject replays real providers reject (forged or missing signatures,
// unpaired tool results, reasoning without encrypted content under store:false).

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type OpenAI from 'openai';
import type { FakeToolCall } from '../fake-upstream/server.ts';
import { encryptedFor, signatureFor } from '../fake-upstream/wire.ts';
import type { Harness } from '../helpers/harness.ts';
import { assertValidError, assertValidResponse } from '../helpers/spec.ts';
import { PDF, PNG, startProviderHarness, streamed, timeTool, weatherTool } from '../providers/gateway.ts';

let h: Harness;
before(async () => {
  h = await startProviderHarness();
});
after(() => h.close());
beforeEach(() => h.upstream.reset());

const THINKING = 'Two tools at once.';
const IMAGE_URL = `data:image/png;base64,${PNG}`;
const QUESTION = 'Weather and time in Paris?';
const calls: FakeToolCall[] = [
  { id: 'call_w', name: 'get_weather', arguments: '{"city":"Paris"}' },
  { id: 'call_t', name: 'get_time', arguments: '{"city":"Paris"}' },
];

// biome-ignore lint/suspicious/noExplicitAny: upstream request JSON
type Body = any;

interface Case {
  model: string;
  /** Where the upstream request goes. */
  path: RegExp;
  /** The provider returns reasoning (the fake renders it in this provider's format). */
  reasoning: boolean;
  /** The follow-up request's history, in the provider's own format. `ids` are the call ids the client saw. */
  history(body: Body, ids: string[]): void;
}

const chatCalls = (ids: string[]) => [
  { id: ids[0], type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
  { id: ids[1], type: 'function', function: { name: 'get_time', arguments: '{"city":"Paris"}' } },
];
const chatUser = [{ role: 'user', content: [{ type: 'text', text: QUESTION }, { type: 'image_url', image_url: { url: IMAGE_URL } }] }];
const chatResults = (ids: string[]) => [
  { role: 'tool', tool_call_id: ids[0], content: 'sunny' },
  { role: 'tool', tool_call_id: ids[1], content: '10:00' },
];
const responsesUser = { role: 'user', content: [{ type: 'input_text', text: QUESTION }, { type: 'input_image', image_url: IMAGE_URL }] };
const responsesTail = (ids: string[]) => [
  { type: 'function_call_output', call_id: ids[0], output: 'sunny' },
  { type: 'function_call_output', call_id: ids[1], output: '10:00' },
];

const CASES: Case[] = [
  {
    model: 'claude',
    path: /^\/anthropic\/v1\/messages$/,
    reasoning: true,
    history: (body, ids) =>
      assert.deepEqual(body.messages, [
        {
          role: 'user',
          content: [
            { type: 'text', text: QUESTION },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
          ],
        },
        {
          role: 'assistant',
          content: [
            { type: 'thinking', thinking: THINKING, signature: signatureFor(THINKING) },
            { type: 'tool_use', id: ids[0], name: 'get_weather', input: { city: 'Paris' } },
            { type: 'tool_use', id: ids[1], name: 'get_time', input: { city: 'Paris' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: ids[0], content: 'sunny' },
            { type: 'tool_result', tool_use_id: ids[1], content: '10:00' },
          ],
        },
      ]),
  },
  {
    model: 'gemini-3',
    path: /^\/google\/v1beta\/models\/gemini-3-pro-preview:(stream)?[gG]enerateContent/,
    reasoning: true,
    // Gemini 3 rejects function calls replayed without their thought signature: it must come back.
    history: (body, ids) =>
      assert.deepEqual(body.contents, [
        { role: 'user', parts: [{ text: QUESTION }, { inlineData: { mimeType: 'image/png', data: PNG } }] },
        {
          role: 'model',
          parts: [
            { text: THINKING, thought: true },
            { functionCall: { id: ids[0], name: 'get_weather', args: { city: 'Paris' } }, thoughtSignature: signatureFor(THINKING) },
            { functionCall: { id: ids[1], name: 'get_time', args: { city: 'Paris' } } },
          ],
        },
        {
          role: 'user',
          parts: [
            { functionResponse: { id: ids[0], name: 'get_weather', response: { name: 'get_weather', content: 'sunny' } } },
            { functionResponse: { id: ids[1], name: 'get_time', response: { name: 'get_time', content: '10:00' } } },
          ],
        },
      ]),
  },
  {
    model: 'gpt-5',
    path: /^\/v1\/responses$/,
    reasoning: true,
    history: (body, ids) => {
      assert.equal(body.store, false, "Parley owns the state: OpenAI's Responses API is called with store:false");
      assert.deepEqual(body.include, ['reasoning.encrypted_content']);
      assert.deepEqual(body.input, [
        responsesUser,
        { type: 'reasoning', id: body.input[1].id, encrypted_content: encryptedFor([THINKING]), summary: [{ type: 'summary_text', text: THINKING }] },
        { type: 'function_call', call_id: ids[0], name: 'get_weather', arguments: '{"city":"Paris"}' },
        { type: 'function_call', call_id: ids[1], name: 'get_time', arguments: '{"city":"Paris"}' },
        ...responsesTail(ids),
      ]);
      assert.match(body.input[1].id, /^rs_/, "the upstream's own reasoning item id is kept");
    },
  },
  {
    model: 'azure-v1',
    path: /^\/azure\/openai\/v1\/responses$/,
    reasoning: true,
    history: (body, ids) => {
      assert.equal(body.model, 'gpt5-prod', 'the deployment is the model on the v1 API');
      assert.deepEqual(body.input.slice(1, 2), [
        { type: 'reasoning', id: body.input[1].id, encrypted_content: encryptedFor([THINKING]), summary: [{ type: 'summary_text', text: THINKING }] },
      ]);
      assert.deepEqual(body.input[0], responsesUser);
      assert.deepEqual(body.input.slice(4), responsesTail(ids));
    },
  },
  {
    model: 'azure-dated',
    path: /^\/azure\/openai\/deployments\/gpt4o-prod\/chat\/completions\?api-version=2024-10-21$/,
    reasoning: false,
    history: (body, ids) =>
      assert.deepEqual(body.messages, [...chatUser, { role: 'assistant', content: null, tool_calls: chatCalls(ids) }, ...chatResults(ids)]),
  },
  {
    model: 'bedrock',
    path: /^\/bedrock\/model\/anthropic\.claude-sonnet-4-5-v1%3A0\/converse(-stream)?$/,
    reasoning: true,
    history: (body, ids) =>
      assert.deepEqual(body.messages, [
        { role: 'user', content: [{ text: QUESTION }, { image: { format: 'png', source: { bytes: PNG } } }] },
        {
          role: 'assistant',
          content: [
            { reasoningContent: { reasoningText: { text: THINKING, signature: signatureFor(THINKING) } } },
            { toolUse: { toolUseId: ids[0], name: 'get_weather', input: { city: 'Paris' } } },
            { toolUse: { toolUseId: ids[1], name: 'get_time', input: { city: 'Paris' } } },
          ],
        },
        {
          role: 'user',
          content: [
            { toolResult: { toolUseId: ids[0], content: [{ text: 'sunny' }] } },
            { toolResult: { toolUseId: ids[1], content: [{ text: '10:00' }] } },
          ],
        },
      ]),
  },
  {
    model: 'mistral',
    path: /^\/mistral\/v1\/chat\/completions$/,
    reasoning: false,
    history: (body, ids) =>
      assert.deepEqual(body.messages, [
        { role: 'user', content: [{ type: 'text', text: QUESTION }, { type: 'image_url', image_url: IMAGE_URL }] },
        { role: 'assistant', content: '', tool_calls: chatCalls(ids) },
        { role: 'tool', name: 'get_weather', tool_call_id: ids[0], content: 'sunny' },
        { role: 'tool', name: 'get_time', tool_call_id: ids[1], content: '10:00' },
      ]),
  },
  {
    model: 'deepseek',
    path: /^\/deepseek\/chat\/completions$/,
    reasoning: true,
    // DeepSeek wants the reasoning_content of a tool-calling turn sent back with it.
    history: (body, ids) => {
      assert.deepEqual(body.messages.slice(1), [
        { role: 'assistant', content: '', reasoning_content: THINKING, tool_calls: chatCalls(ids) },
        ...chatResults(ids),
      ]);
      assert.equal(body.messages[0].role, 'user');
    },
  },
  {
    model: 'groq',
    path: /^\/groq\/openai\/v1\/chat\/completions$/,
    reasoning: true,
    history: (body, ids) =>
      assert.deepEqual(body.messages, [...chatUser, { role: 'assistant', content: '', reasoning: THINKING, tool_calls: chatCalls(ids) }, ...chatResults(ids)]),
  },
  {
    model: 'grok',
    path: /^\/xai\/v1\/responses$/,
    reasoning: true,
    history: (body, ids) => {
      assert.equal(body.store, false);
      assert.deepEqual(body.input[0], responsesUser);
      assert.equal(body.input[1].type, 'reasoning');
      assert.equal(body.input[1].encrypted_content, encryptedFor([THINKING]));
      assert.deepEqual(body.input.slice(-2), responsesTail(ids));
    },
  },
  {
    model: 'local',
    path: /^\/compat\/v1\/chat\/completions$/,
    reasoning: true,
    history: (body, ids) =>
      assert.deepEqual(body.messages, [
        ...chatUser,
        { role: 'assistant', content: null, reasoning_content: THINKING, tool_calls: chatCalls(ids) },
        ...chatResults(ids),
      ]),
  },
];

describe('tool round trip with an image and reasoning, per provider', () => {
  for (const c of CASES) {
    for (const stream of [true, false]) {
      it(`${c.model}${stream ? ' (streaming)' : ''}: history, pairing, image and reasoning reach the upstream natively`, async () => {
        h.upstream.enqueue(
          c.reasoning ? { kind: 'reasoning', reasoning: THINKING, calls } : { kind: 'tool_calls', calls },
          { kind: 'text', text: 'Sunny, and it is 10:00.' },
        );
        const input: OpenAI.Responses.ResponseInput = [
          {
            role: 'user',
            content: [
              { type: 'input_text', text: QUESTION },
              { type: 'input_image', image_url: IMAGE_URL, detail: 'auto' },
            ],
          },
        ];
        const tools = [weatherTool, timeTool];
        const r1 = stream
          ? (await streamed(h, { model: c.model, input, tools, stream: true })).response
          : await h.client.responses.create({ model: c.model, input, tools });
        assertValidResponse(r1);
        const fnCalls = r1.output.filter((o) => o.type === 'function_call');
        assert.deepEqual(
          fnCalls.map((o) => [o.name, o.arguments]),
          [
            ['get_weather', '{"city":"Paris"}'],
            ['get_time', '{"city":"Paris"}'],
          ],
        );
        if (c.reasoning) {
          const reasoning = r1.output.find((o) => o.type === 'reasoning');
          assert.ok(reasoning, 'reasoning comes back as a reasoning item');
          assert.deepEqual(reasoning.summary, [{ type: 'summary_text', text: THINKING }]);
          assert.equal(JSON.stringify(r1).includes('provider_metadata'), false, 'replay data stays in the gateway');
          assert.equal(JSON.stringify(r1).includes('sig_'), false, 'signatures are not shown to clients');
          assert.equal(JSON.stringify(r1).includes('enc_'), false, 'encrypted content is not shown to clients');
        }

        const ids = fnCalls.map((o) => o.call_id);
        const r2 = await h.client.responses.create({
          model: c.model,
          previous_response_id: r1.id,
          input: [
            { type: 'function_call_output', call_id: ids[0], output: 'sunny' },
            { type: 'function_call_output', call_id: ids[1], output: '10:00' },
          ],
          tools,
        });
        assertValidResponse(r2);
        assert.equal(r2.output_text, 'Sunny, and it is 10:00.');

        const [first, second] = h.upstream.requests;
        assert.equal(h.upstream.requests.length, 2);
        assert.match(first.path, c.path);
        assert.match(second.path, c.path);
        c.history(second.body, ids);
      });
    }
  }
});

describe('reasoning stream events', () => {
  for (const model of ['claude', 'gpt-5', 'gemini', 'bedrock', 'deepseek', 'local']) {
    it(`${model}: reasoning streams as response.reasoning_summary_* events the SDK accepts`, async () => {
      const parts = model === 'gpt-5' ? ['First I look.', 'Then I answer.'] : ['I think this through.'];
      h.upstream.enqueue({ kind: 'reasoning', reasoning: parts, text: 'Done.' });
      const { response, types } = await streamed(h, { model, input: 'Think.', stream: true, reasoning: { summary: 'auto' } });
      const reasoning = response.output.filter((o) => o.type === 'reasoning');
      assert.equal(reasoning.length, 1, 'summary parts of one provider item stay one reasoning item');
      const joined = model === 'deepseek' || model === 'local' || model === 'gemini' ? [parts.join('\n\n')] : parts;
      if (model === 'gemini') assert.equal(reasoning[0].summary.map((s) => s.text).join(''), parts.join(''));
      else assert.deepEqual(reasoning[0].summary.map((s) => s.text), joined);
      assert.equal(response.output_text, 'Done.');
      const reasoningEvents = types.filter((t) => t.startsWith('response.reasoning'));
      assert.equal(reasoningEvents[0], 'response.reasoning_summary_part.added');
      assert.ok(reasoningEvents.includes('response.reasoning_summary_text.delta'));
      assert.equal(reasoningEvents.filter((t) => t === 'response.reasoning_summary_part.done').length, reasoning[0].summary.length);
      assert.ok(types.indexOf('response.reasoning_summary_part.done') < types.indexOf('response.content_part.added'), 'reasoning completes before the answer');
    });
  }
});

describe('tool_choice, mapped natively', () => {
  const choices: { choice: OpenAI.Responses.ResponseCreateParams['tool_choice']; expect: Record<string, unknown> }[] = [
    // Gemini's `auto` for strict tools is VALIDATED: calls constrained to the declared schemas.
    { choice: 'auto', expect: { claude: { type: 'auto' }, gemini: 'VALIDATED', 'gpt-5': 'auto', bedrock: { auto: {} }, local: 'auto' } },
    { choice: 'required', expect: { claude: { type: 'any' }, gemini: 'ANY', 'gpt-5': 'required', bedrock: { any: {} }, local: 'required' } },
    {
      choice: { type: 'function', name: 'get_time' },
      expect: {
        claude: { type: 'tool', name: 'get_time' },
        gemini: 'ANY:get_time',
        'gpt-5': { type: 'function', name: 'get_time' },
        bedrock: { tool: { name: 'get_time' } },
        local: { type: 'function', function: { name: 'get_time' } },
      },
    },
    { choice: 'none', expect: { claude: { type: 'none' }, gemini: 'NONE', 'gpt-5': 'none', bedrock: 'no tools', local: 'none' } },
  ];
  const read: Record<string, (body: Body) => unknown> = {
    claude: (b) => b.tool_choice,
    gemini: (b) => {
      const config = b.toolConfig?.functionCallingConfig;
      return config?.allowedFunctionNames ? `${config.mode}:${config.allowedFunctionNames.join(',')}` : config?.mode;
    },
    'gpt-5': (b) => b.tool_choice,
    bedrock: (b) => b.toolConfig?.toolChoice ?? (b.toolConfig ? 'auto' : 'no tools'),
    local: (b) => b.tool_choice,
  };
  for (const { choice, expect } of choices) {
    it(`tool_choice ${JSON.stringify(choice)}`, async () => {
      for (const model of Object.keys(read)) {
        h.upstream.reset();
        h.upstream.enqueue({ kind: 'text', text: 'ok' });
        const r = await h.client.responses.create({ model, input: 'Time in Paris?', tools: [weatherTool, timeTool], tool_choice: choice });
        assert.deepEqual(r.tool_choice, choice, 'echoed as sent');
        assert.deepEqual(read[model](h.upstream.lastRequest()!.body), expect[model], `${model} got ${JSON.stringify(h.upstream.lastRequest()!.body).slice(0, 400)}`);
      }
    });
  }
});

describe('structured output (text.format json_schema), mapped natively', () => {
  const schema = { type: 'object', properties: { city: { type: 'string' }, celsius: { type: 'number' } }, required: ['city', 'celsius'], additionalProperties: false };
  const format: OpenAI.Responses.ResponseFormatTextJSONSchemaConfig = { type: 'json_schema', name: 'weather', schema, strict: true };
  const checks: Record<string, (body: Body) => void> = {
    claude: (b) => assert.deepEqual(b.output_config.format, { type: 'json_schema', schema }),
    gemini: (b) => {
      assert.equal(b.generationConfig.responseMimeType, 'application/json');
      assert.deepEqual(b.generationConfig.responseJsonSchema.properties, schema.properties);
    },
    'gpt-5': (b) => assert.deepEqual(b.text.format, { type: 'json_schema', strict: true, name: 'weather', schema }),
    'azure-dated': (b) => assert.deepEqual(b.response_format, { type: 'json_schema', json_schema: { schema, strict: true, name: 'weather' } }),
    mistral: (b) => assert.deepEqual(b.response_format, { type: 'json_schema', json_schema: { schema, strict: true, name: 'weather' } }),
    local: (b) => assert.deepEqual(b.response_format, { type: 'json_schema', json_schema: { schema, strict: true, name: 'weather' } }),
  };
  for (const [model, check] of Object.entries(checks)) {
    it(`${model}`, async () => {
      h.upstream.enqueue({ kind: 'text', text: '{"city":"Paris","celsius":21}' });
      const r = await h.client.responses.create({ model, input: 'Weather in Paris as JSON', text: { format } });
      assert.equal(r.output_text, '{"city":"Paris","celsius":21}');
      assert.deepEqual(r.text?.format, { ...format, description: null }, 'echoed with the spec default');
      check(h.upstream.lastRequest()!.body);
    });
  }
});

describe('files', () => {
  const pdf = (extra: Record<string, string>): OpenAI.Responses.ResponseInput => [
    { role: 'user', content: [{ type: 'input_text', text: 'Summarize.' }, { type: 'input_file', filename: 'report.pdf', ...extra } as OpenAI.Responses.ResponseInputFile] },
  ];

  it('a PDF by file_data becomes an Anthropic document, a Gemini inline part, a Bedrock document, a Responses input_file', async () => {
    const expected: Record<string, (body: Body) => unknown> = {
      claude: (b) => b.messages[0].content[1],
      gemini: (b) => b.contents[0].parts[1],
      bedrock: (b) => b.messages[0].content[1],
      'gpt-5': (b) => b.input[0].content[1],
    };
    const want: Record<string, unknown> = {
      claude: { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: PDF }, title: 'report.pdf' },
      gemini: { inlineData: { mimeType: 'application/pdf', data: PDF } },
      bedrock: { document: { format: 'pdf', name: 'report', source: { bytes: PDF } } },
      'gpt-5': { type: 'input_file', filename: 'report.pdf', file_data: `data:application/pdf;base64,${PDF}` },
    };
    for (const model of Object.keys(expected)) {
      h.upstream.reset();
      h.upstream.enqueue({ kind: 'text', text: 'A report.' });
      await h.client.responses.create({ model, input: pdf({ file_data: `data:application/pdf;base64,${PDF}` }) });
      assert.deepEqual(expected[model](h.upstream.lastRequest()!.body), want[model], model);
    }
  });

  it('a PDF by file_url goes to Anthropic as a URL document and to Gemini as fileData', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'ok' }, { kind: 'text', text: 'ok' });
    const url = 'https://example.com/report.pdf';
    await h.client.responses.create({ model: 'claude', input: pdf({ file_url: url }) });
    assert.deepEqual(h.upstream.lastRequest()!.body.messages[0].content[1], { type: 'document', source: { type: 'url', url }, title: 'report.pdf' });
    await h.client.responses.create({ model: 'gemini', input: pdf({ file_url: url }) });
    assert.deepEqual(h.upstream.lastRequest()!.body.contents[0].parts[1], { fileData: { mimeType: 'application/pdf', fileUri: url } });
  });

  it('an image by URL goes by reference where the provider takes URLs; Bedrock needs the bytes', async () => {
    const url = 'https://example.com/photos/cat.webp';
    const input: OpenAI.Responses.ResponseInput = [{ role: 'user', content: [{ type: 'input_image', image_url: url, detail: 'auto' }] }];
    h.upstream.enqueue({ kind: 'text', text: 'a cat' }, { kind: 'text', text: 'a cat' });
    await h.client.responses.create({ model: 'claude', input });
    assert.deepEqual(h.upstream.lastRequest()!.body.messages[0].content, [{ type: 'image', source: { type: 'url', url } }]);
    await h.client.responses.create({ model: 'gemini', input });
    assert.deepEqual(h.upstream.lastRequest()!.body.contents[0].parts, [{ fileData: { mimeType: 'image/webp', fileUri: url } }], 'the type from the path');
    const res = await h.post('/v1/responses', { model: 'bedrock', input });
    assert.equal(res.status, 400);
    assert.match((await res.json()).error.message, /File URL data is not supported by the bedrock provider/);
    assert.equal(h.upstream.requests.length, 2, 'the gateway never fetches a client-supplied URL itself');
  });

  it('a provider that cannot take an item answers a 400 naming it, and nothing goes upstream', async () => {
    for (const [model, input, pattern] of [
      ['groq', pdf({ file_data: `data:application/pdf;base64,${PDF}` }), /groq\/qwen\/qwen3-32b cannot take this request: Non-image file content parts/],
      ['local', pdf({ file_url: 'https://example.com/report.pdf' }), /vllm\/qwen3-8b cannot take this request: PDF file parts with URLs/],
      [
        'mistral',
        [{ role: 'user', content: [{ type: 'input_file', filename: 'notes.txt', file_data: 'data:text/plain;base64,aGk=' }] }],
        /mistral\/mistral-large-latest cannot take this request: Only images and PDF file parts are supported/,
      ],
    ] as const) {
      const res = await h.post('/v1/responses', { model, input });
      assert.equal(res.status, 400, model);
      const body = await res.json();
      assertValidError(body);
      assert.equal(body.error.code, 'unsupported_content');
      assert.equal(body.error.param, 'input');
      assert.match(body.error.message, pattern);
    }
    assert.equal(h.upstream.requests.length, 0);
  });

  it('passes input_image detail to OpenAI', async () => {
    h.upstream.enqueue({ kind: 'text', text: 'ok' });
    await h.client.responses.create({ model: 'gpt-5', input: [{ role: 'user', content: [{ type: 'input_image', image_url: IMAGE_URL, detail: 'low' }] }] });
    assert.deepEqual(h.upstream.lastRequest()!.body.input[0].content[0], { type: 'input_image', image_url: IMAGE_URL, detail: 'low' });
  });
});

describe('usage and incomplete responses, per provider', () => {
  const usage = { prompt_tokens: 120, completion_tokens: 40, cached_tokens: 100, reasoning_tokens: 16 };
  // What each provider reports. Bedrock and Mistral report no reasoning tokens; Mistral has no
  // content-filter stop reason; @ai-sdk/xai reads the incomplete reason only from a stream.
  interface Reports {
    reasoning: boolean;
    filter: 'json' | 'stream' | 'never';
  }
  const MODELS: [string, Reports][] = [
    ['claude', { reasoning: true, filter: 'json' }],
    ['gemini', { reasoning: true, filter: 'json' }],
    ['gpt-5', { reasoning: true, filter: 'json' }],
    ['azure-dated', { reasoning: true, filter: 'json' }],
    ['bedrock', { reasoning: false, filter: 'json' }],
    ['mistral', { reasoning: false, filter: 'never' }],
    ['deepseek', { reasoning: true, filter: 'json' }],
    ['groq', { reasoning: true, filter: 'json' }],
    ['grok', { reasoning: true, filter: 'stream' }],
    ['local', { reasoning: true, filter: 'json' }],
  ];
  for (const [model, reports] of MODELS) {
    it(`${model}: usage with cached and reasoning tokens; max_output_tokens and content filter end incomplete`, async () => {
      h.upstream.enqueue(
        { kind: 'text', text: 'Full answer.', usage },
        { kind: 'text', text: 'Cut o', finishReason: 'length', usage },
        { kind: 'text', text: 'Filtered', finishReason: 'content_filter', usage },
      );
      const ok = await h.client.responses.create({ model, input: 'Hi' });
      assert.equal(ok.status, 'completed');
      assert.deepEqual(ok.usage, {
        input_tokens: 120,
        output_tokens: 40,
        total_tokens: 160,
        input_tokens_details: { cached_tokens: 100 },
        output_tokens_details: { reasoning_tokens: reports.reasoning ? 16 : 0 },
      });

      const { response: cut, types } = await streamed(h, { model, input: 'Hi', max_output_tokens: 5, stream: true });
      assert.equal(cut.status, 'incomplete');
      assert.deepEqual(cut.incomplete_details, { reason: 'max_output_tokens' });
      assert.equal(types.at(-1), 'response.incomplete');

      const filtered = reports.filter === 'stream' ? (await streamed(h, { model, input: 'Hi', stream: true })).response : await h.client.responses.create({ model, input: 'Hi' });
      assertValidResponse(filtered);
      if (reports.filter === 'never') {
        assert.equal(filtered.status, 'completed');
      } else {
        assert.equal(filtered.status, 'incomplete');
        assert.deepEqual(filtered.incomplete_details, { reason: 'content_filter' });
      }
    });
  }
});
