// `parley chat`: an interactive terminal chat on a conversation, against a running gateway
// (`--url`) or in-process (the library, from `--config` or the same defaults as `parley serve`).
// Answers stream as they arrive; after each turn it prints the turn's tokens and the
// conversation's running totals. Commands: /history, /fork [ITEM_ID], /new, /quit.

import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { resolveConfig } from '../config/load.ts';
import { ConfigError } from '../config/types.ts';
import type { ConversationDetails } from '../engine/bookkeeping.ts';
import { type Parley, parleyFromConfig } from '../library/parley.ts';
import { ApiError } from '../protocol/errors.ts';
import type { Item, ResponseObject, StreamEvent } from '../protocol/types.ts';

const USAGE = `Usage: parley chat [--model M] [--conversation ID] [--url URL | --config FILE]

  --model M          Model to talk to (default: the gateway's default model)
  --conversation ID  Continue this conversation (default: start a new one)
  --url URL          A running gateway, e.g. http://127.0.0.1:12000 (PARLEY_API_KEY is sent as a bearer token)
  --config FILE      In-process, from this config (default: ./parley.yaml, else the environment)

In the chat: /history, /fork [ITEM_ID], /new, /quit (or Ctrl-D).
`;

/** What the chat needs from a gateway, over HTTP or in-process. */
interface ChatBackend {
  readonly where: string;
  defaultModel(): Promise<string | null>;
  createConversation(): Promise<string>;
  /** Streams one turn; `onDelta` gets the text as it arrives. */
  turn(conversation: string, model: string, input: string, onDelta: (text: string) => void): Promise<ResponseObject>;
  history(conversation: string): Promise<Item[]>;
  fork(conversation: string, itemId: string | null): Promise<string>;
  details(conversation: string): Promise<ConversationDetails | null>;
  close(): Promise<void>;
}

export async function chatCommand(argv: string[]): Promise<number> {
  let values: { model?: string; conversation?: string; url?: string; config?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        model: { type: 'string', short: 'm' },
        conversation: { type: 'string' },
        url: { type: 'string' },
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.url && values.config) {
    process.stderr.write(`--url and --config cannot be used together.\n\n${USAGE}`);
    return 2;
  }

  let backend: ChatBackend;
  try {
    backend = values.url ? httpBackend(values.url, process.env.PARLEY_API_KEY) : await libraryBackend(values.config);
  } catch (error) {
    process.stderr.write(`${describe(error)}\n`);
    return 1;
  }
  try {
    return await runChat(backend, values.model ?? null, values.conversation ?? null);
  } catch (error) {
    process.stderr.write(`${describe(error)}\n`);
    return 1;
  } finally {
    await backend.close().catch(() => {});
  }
}

async function runChat(backend: ChatBackend, modelOption: string | null, conversationOption: string | null): Promise<number> {
  const out = process.stdout;
  const model = modelOption ?? (await backend.defaultModel());
  if (model === null) {
    process.stderr.write('No model configured: pass --model, or configure model_providers.\n');
    return 1;
  }
  let conversation = conversationOption ?? (await backend.createConversation());
  out.write(`parley chat: ${model} via ${backend.where}\n`);
  out.write(`conversation ${conversation}${conversationOption ? '' : ' (new)'}\n`);
  out.write('Type a message; /history, /fork [ITEM_ID], /new, /quit.\n');

  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY === true });
  let closed = false;
  rl.on('close', () => {
    closed = true;
  });
  try {
    for (;;) {
      let line: string;
      try {
        line = (await rl.question('you> ')).trim();
      } catch {
        break; // Ctrl-D / closed input
      }
      if (closed && line === '') break;
      if (line === '') continue;
      if (line.startsWith('/')) {
        const [command, ...args] = line.split(/\s+/);
        if (command === '/quit' || command === '/exit') break;
        try {
          if (command === '/new') {
            conversation = await backend.createConversation();
            out.write(`new conversation ${conversation}\n`);
          } else if (command === '/fork') {
            const fork = await backend.fork(conversation, args[0] ?? null);
            out.write(`forked ${conversation}${args[0] ? ` at ${args[0]}` : ''} -> ${fork} (now on the fork)\n`);
            conversation = fork;
          } else if (command === '/history') {
            const items = await backend.history(conversation);
            if (items.length === 0) out.write('(no items yet)\n');
            for (const item of items) out.write(`${historyLine(item)}\n`);
          } else {
            out.write(`unknown command ${command}: /history, /fork [ITEM_ID], /new, /quit\n`);
          }
        } catch (error) {
          out.write(`error: ${describe(error)}\n`);
        }
        continue;
      }
      out.write('assistant> ');
      try {
        const response = await backend.turn(conversation, model, line, (text) => out.write(text));
        out.write('\n');
        if (response.status !== 'completed') {
          out.write(`(${response.status}${response.error ? `: ${response.error.message}` : ''})\n`);
        }
        out.write(`${usageLine(response, await backend.details(conversation).catch(() => null))}\n`);
      } catch (error) {
        out.write(`\nerror: ${describe(error)}\n`);
      }
      if (closed) break;
    }
  } finally {
    rl.close();
  }
  out.write('bye\n');
  return 0;
}

/** `[turn: 12 in, 5 out | conversation: 3 turns, 51 tokens, $0.000043]` */
function usageLine(response: ResponseObject, details: ConversationDetails | null): string {
  const u = response.usage;
  const turn = u ? `turn: ${u.input_tokens} in, ${u.output_tokens} out` : 'turn: usage unknown';
  if (!details) return `[${turn}]`;
  const d = details.usage;
  const cost = d.cost_usd > 0 ? `, $${d.cost_usd.toFixed(6)}` : '';
  return `[${turn} | conversation: ${d.turns} turn${d.turns === 1 ? '' : 's'}, ${d.total_tokens} tokens${cost}]`;
}

function historyLine(item: Item): string {
  switch (item.type) {
    case 'message': {
      const text = item.content
        .map((p) => (p.type === 'input_text' || p.type === 'output_text' ? p.text : p.type === 'refusal' ? p.refusal : `[${p.type}]`))
        .join(' ');
      return `${item.id}  ${item.role}: ${text}`;
    }
    case 'function_call':
      return `${item.id}  assistant called ${item.name}(${item.arguments})`;
    case 'function_call_output':
      return `${item.id}  tool result: ${typeof item.output === 'string' ? item.output : '[content]'}`;
    case 'reasoning':
      return `${item.id}  (reasoning)`;
    case 'compaction':
      return `${item.id}  (compaction: earlier turns summarised)`;
  }
}

function describe(error: unknown): string {
  if (error instanceof ApiError) return `${error.message}${error.code ? ` (${error.code})` : ''}`;
  if (error instanceof ConfigError) return error.message;
  return error instanceof Error ? error.message : String(error);
}

// ---------- in-process ----------

async function libraryBackend(configPath: string | undefined): Promise<ChatBackend> {
  const { config, source } = await resolveConfig({ ...(configPath ? { configPath } : {}), cwd: process.cwd(), env: process.env });
  const parley: Parley = await parleyFromConfig(config);
  return {
    where: `in-process (${source})`,
    async defaultModel() {
      const models = parley.models.list();
      const model = models.find((m) => m.isDefault) ?? models[0];
      return model && !model.wildcard ? model.id : null;
    },
    createConversation: async () => (await parley.conversations.create()).id,
    async turn(conversation, model, input, onDelta) {
      const stream = parley.responses.stream({ model, input, conversation });
      for await (const event of stream) {
        if (event.type === 'response.output_text.delta') onDelta(String(event.delta));
      }
      return stream.finalResponse();
    },
    history: (conversation) => allItems((after) => parley.conversations.items.list(conversation, { order: 'asc', limit: 100, ...(after ? { after } : {}) })),
    fork: async (conversation, itemId) => (await parley.conversations.fork(conversation, { item_id: itemId })).id,
    details: (conversation) => parley.conversations.details(conversation),
    close: () => parley.close(),
  };
}

// ---------- over HTTP ----------

function httpBackend(rawUrl: string, apiKey: string | undefined): ChatBackend {
  const base = rawUrl.replace(/\/+$/, '').replace(/\/v1$/, '');
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${base}/v1${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const json = (await res.json().catch(() => null)) as { error?: { message: string; type: string; param: string | null; code: string | null } } | null;
    if (!res.ok) throw toApiError(res.status, json);
    return json as T;
  };
  return {
    where: base,
    async defaultModel() {
      const list = await call<{ data: { id: string }[] }>('GET', '/models');
      return list.data[0]?.id ?? null;
    },
    createConversation: async () => (await call<{ id: string }>('POST', '/conversations', {})).id,
    async turn(conversation, model, input, onDelta) {
      const res = await fetch(`${base}/v1/responses`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ model, input, conversation, stream: true }),
      });
      if (!res.ok || !res.body) throw toApiError(res.status, await res.json().catch(() => null));
      let final: ResponseObject | null = null;
      for await (const event of sseEvents(res.body)) {
        if (event.type === 'response.output_text.delta') onDelta(String(event.delta));
        if (event.type === 'response.completed' || event.type === 'response.incomplete' || event.type === 'response.failed') {
          final = event.response as ResponseObject;
        }
      }
      if (!final) throw new Error('The stream ended without a final response.');
      return final;
    },
    history: (conversation) =>
      allItems((after) =>
        call('GET', `/conversations/${encodeURIComponent(conversation)}/items?order=asc&limit=100${after ? `&after=${encodeURIComponent(after)}` : ''}`),
      ),
    fork: async (conversation, itemId) =>
      (await call<{ id: string }>('POST', `/conversations/${encodeURIComponent(conversation)}/fork`, itemId ? { item_id: itemId } : {})).id,
    details: (conversation) => call<ConversationDetails>('GET', `/conversations/${encodeURIComponent(conversation)}/details`),
    close: async () => {},
  };
}

function toApiError(status: number, body: unknown): ApiError {
  const e = (body as { error?: { message?: string; type?: string; param?: string | null; code?: string | null } } | null)?.error;
  return new ApiError(status, (e?.type as ApiError['type']) ?? 'server_error', e?.message ?? `HTTP ${status}`, {
    param: e?.param ?? null,
    code: e?.code ?? null,
  });
}

/** The `data:` JSON of each SSE event, until `[DONE]`. */
async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<StreamEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n');
      if (data === '[DONE]') return;
      if (data) yield JSON.parse(data) as StreamEvent;
      end = buffer.indexOf('\n\n');
    }
  }
}

async function allItems(page: (after: string | null) => Promise<{ data: Item[]; has_more: boolean }>): Promise<Item[]> {
  const items: Item[] = [];
  let after: string | null = null;
  for (;;) {
    const list = await page(after);
    items.push(...list.data);
    if (!list.has_more || list.data.length === 0) return items;
    after = list.data[list.data.length - 1].id;
  }
}
