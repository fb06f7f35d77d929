// A real HTTP server that speaks OpenAI Chat Completions (streaming and not) with scripted replies and
// a log of every request it received. The AI SDK providers and the `openai` SDK talk to it over HTTP.
// It is also the zero-cost baseline in benchmarks: no sleeps, no logging, keep-alive on.
// The same server, with the same scripted replies, also speaks Anthropic Messages (…/messages),
// Gemini (…/models/{m}:generateContent, :streamGenerateContent), OpenAI's Responses API
// (…/responses, also Azure v1 and xAI) and Bedrock Converse (…/model/{id}/converse[-stream]).

import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  chunkLine,
  completionObject,
  contentLine,
  defaultErrorBody,
  errorLine,
  estimateCompletionTokens,
  estimatePromptTokens,
  finishLines,
  openAIError,
  roleLine,
  splitText,
  toolCallLines,
  validateChatRequest,
} from './chat-wire.ts';
import type { ChunkContext, FakeToolCall, FakeUsage, OpenAIErrorBody } from './chat-wire.ts';
import { anthropicWire } from './anthropic-wire.ts';
import { bedrockWire } from './bedrock-wire.ts';
import { geminiWire } from './gemini-wire.ts';
import { responsesWire } from './responses-wire.ts';
import { serveWire } from './serve-wire.ts';
import type { Wire, WireContext } from './wire.ts';

export type { FakeToolCall, FakeUsage, OpenAIErrorBody } from './chat-wire.ts';

export type FakeReply =
  | {
      kind: 'text';
      text: string;
      /** Explicit streaming deltas; by default the text is streamed word by word. */
      chunks?: string[];
      finishReason?: 'stop' | 'length' | 'content_filter';
      usage?: FakeUsage;
    }
  | { kind: 'tool_calls'; calls: FakeToolCall[]; text?: string; usage?: FakeUsage }
  /**
   * A reasoning model's answer: reasoning (one string per thinking block / summary part), then
   * optional text and tool calls. Each wire renders it natively: Anthropic thinking blocks with a
   * signature, OpenAI Responses reasoning items with summaries and encrypted_content, Gemini thought
   * parts with a thought signature, Bedrock reasoningContent, Chat Completions `reasoning_content`
   * (`reasoning` on Groq). Signatures and encrypted content are derived from the text unless given.
   */
  | {
      kind: 'reasoning';
      reasoning: string | string[];
      text?: string;
      calls?: FakeToolCall[];
      signature?: string;
      encrypted?: string;
      finishReason?: 'stop' | 'length' | 'content_filter';
      usage?: FakeUsage;
    }
  | { kind: 'error'; status: number; body?: unknown; headers?: Record<string, string> }
  /** Streams the chunks with `chunkDelayMs` before each (a non-stream request gets the whole reply late). */
  | { kind: 'slow'; text: string; chunkDelayMs: number; chunks?: string[] }
  /** Accepts the request and never answers. */
  | { kind: 'hang' }
  /**
   * Answers 200, streams `text`, then fails: an OpenAI `data: {"error": ...}` frame, or with
   * `disconnect` the connection is destroyed without one. A non-stream request gets a 500.
   */
  | { kind: 'stream_error'; text?: string; error?: OpenAIErrorBody; disconnect?: boolean };

export interface RecordedRequest {
  method: string;
  /** Path as requested, query string included. */
  path: string;
  /** Lower-cased header names. */
  headers: Record<string, string>;
  /** Parsed JSON body; the raw string if it was not JSON; undefined if empty. */
  // biome-ignore lint/suspicious/noExplicitAny: tests index freely into the request JSON
  body: any;
  receivedAt: number;
  /** The client closed the connection before the reply was finished. */
  aborted: boolean;
}

export interface FakeUpstream {
  /** e.g. http://127.0.0.1:PORT/v1: the baseURL to give providers. */
  url: string;
  /**
   * e.g. http://127.0.0.1:PORT. A first path segment naming a dialect (`/groq/openai/v1`,
   * `/deepseek`, `/anthropic/v1`, …) is stripped and recorded; Chat Completions honours `groq`
   * (reasoning in `reasoning`, usage in `x_groq`).
   */
  origin: string;
  requests: RecordedRequest[];
  /** FIFO; when the queue is empty the default reply is used (text "ok" unless set). */
  enqueue(...replies: FakeReply[]): void;
  setDefault(reply: FakeReply | ((req: RecordedRequest) => FakeReply)): void;
  /** Clears the queue, the request log and the default. */
  reset(): void;
  lastRequest(): RecordedRequest | undefined;
  close(): Promise<void>;
}

export interface FakeUpstreamOptions {
  port?: number;
  host?: string;
  /**
   * Answer 400 to requests api.openai.com would reject (no model, no messages, a tool message that
   * answers no tool call, tool calls left unanswered, stream_options without stream). Default true.
   * A rejected request is recorded but does not consume a queued reply.
   */
  validate?: boolean;
  /** Keep the request log (default true); benchmarks can turn it off to save memory. */
  record?: boolean;
}

export const MODELS = ['gpt-4o-mini', 'gpt-4o', 'gpt-4.1', 'gpt-4.1-mini', 'gpt-5-mini'];

type TextReply = Extract<FakeReply, { kind: 'text' }>;

export function textReply(text: string, extra: Omit<TextReply, 'kind' | 'text'> = {}): TextReply {
  return { kind: 'text', text, ...extra };
}

export function toolCallsReply(calls: FakeToolCall[], text?: string): FakeReply {
  return text === undefined ? { kind: 'tool_calls', calls } : { kind: 'tool_calls', calls, text };
}

export function errorReply(status: number, body?: unknown, headers?: Record<string, string>): FakeReply {
  return { kind: 'error', status, body, headers };
}

export function slowReply(text: string, chunkDelayMs: number, chunks?: string[]): FakeReply {
  return chunks === undefined
    ? { kind: 'slow', text, chunkDelayMs }
    : { kind: 'slow', text, chunkDelayMs, chunks };
}

export function hangReply(): FakeReply {
  return { kind: 'hang' };
}

export function reasoningReply(reasoning: string | string[], extra: Omit<Extract<FakeReply, { kind: 'reasoning' }>, 'kind' | 'reasoning'> = {}): FakeReply {
  return { kind: 'reasoning', reasoning, ...extra };
}

/** Leading path segments that name a provider dialect rather than part of the API path. */
export const DIALECTS = ['groq', 'deepseek', 'mistral', 'xai', 'azure', 'anthropic', 'google', 'bedrock', 'openai', 'compat'];

/** Which wire a path speaks, by its API suffix. */
function wireFor(method: string, path: string): Wire | null {
  if (method !== 'POST') return null;
  if (/\/messages$/.test(path)) return anthropicWire;
  if (/\/models\/[^/]+:(stream)?[gG]enerateContent$/.test(path)) return geminiWire;
  if (/\/responses$/.test(path)) return responsesWire;
  if (/\/model\/[^/]+\/converse(-stream)?$/.test(path)) return bedrockWire;
  return null;
}

const DEFAULT_REPLY: FakeReply = { kind: 'text', text: 'ok' };
const JSON_HEADERS = { 'content-type': 'application/json' };

export async function startFakeUpstream(opts: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const host = opts.host ?? '127.0.0.1';
  const validate = opts.validate ?? true;
  const record = opts.record ?? true;
  const requests: RecordedRequest[] = [];
  let queue: FakeReply[] = [];
  let fallback: FakeReply | ((req: RecordedRequest) => FakeReply) = DEFAULT_REPLY;
  let counter = 0;
  let closing = false;
  // Replies the server itself cut short (stream_error with disconnect): not client aborts.
  const cut = new WeakSet<ServerResponse>();
  const idPrefix = Math.random().toString(36).slice(2, 8);

  const server = createServer({ keepAlive: true, noDelay: true }, (req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => {
      const raw = parts.length === 1 ? parts[0].toString('utf8') : Buffer.concat(parts).toString('utf8');
      const rec: RecordedRequest = {
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers: flattenHeaders(req),
        body: parseBody(raw),
        receivedAt: Date.now(),
        aborted: false,
      };
      if (record) requests.push(rec);
      res.on('close', () => {
        if (!res.writableFinished && !closing && !cut.has(res)) rec.aborted = true;
      });
      route(rec, res);
    });
  });
  // Outlive the clients' keep-alive pools so a reused socket is never closed under a request.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  function route(rec: RecordedRequest, res: ServerResponse): void {
    const q = rec.path.indexOf('?');
    let path = q === -1 ? rec.path : rec.path.slice(0, q);
    let dialect: string | null = null;
    const first = /^\/([a-z]+)(?=\/)/.exec(path)?.[1];
    if (first && DIALECTS.includes(first)) {
      dialect = first;
      path = path.slice(first.length + 1);
    }
    const wire = wireFor(rec.method, path);
    if (wire) {
      try {
        provider(wire, rec, res, path, dialect);
      } catch (err) {
        if (!res.headersSent) sendJson(res, 500, wire.errorBody(500, emptyContext(), `fake upstream: ${String(err)}`));
        else res.destroy();
      }
      return;
    }
    // Chat Completions lives at /chat/completions under any prefix (/v1, /openai/v1, Azure's
    // /openai/deployments/{name}).
    if (rec.method === 'POST' && path.endsWith('/chat/completions')) path = '/chat/completions';
    if (path.startsWith('/v1/')) path = path.slice(3);
    if (rec.method === 'POST' && path === '/chat/completions') {
      try {
        chatCompletions(rec, res, dialect);
      } catch (err) {
        // A throwing setDefault() function: answer instead of crashing the test process.
        if (!res.headersSent)
          sendJson(res, 500, openAIError(`fake upstream: ${String(err)}`, 'server_error'));
        else res.destroy();
      }
    } else if (rec.method === 'GET' && path === '/models') {
      sendJson(res, 200, { object: 'list', data: MODELS.map(modelObject) });
    } else if (rec.method === 'GET' && path.startsWith('/models/')) {
      sendJson(res, 200, modelObject(decodeURIComponent(path.slice('/models/'.length))));
    } else {
      sendJson(res, 404, openAIError(`Invalid URL (${rec.method} ${rec.path})`, 'invalid_request_error'));
    }
  }

  function nextReply(rec: RecordedRequest): FakeReply {
    return queue.length > 0 ? queue.shift()! : typeof fallback === 'function' ? fallback(rec) : fallback;
  }

  function emptyContext(): WireContext {
    return { id: 'x', created: 0, model: 'unknown', stream: false, body: null, path: '', dialect: null };
  }

  function provider(wire: Wire, rec: RecordedRequest, res: ServerResponse, path: string, dialect: string | null): void {
    const body = rec.body;
    const n = (++counter).toString(36);
    const modelInPath = /\/models?\/([^/:]+)/.exec(path)?.[1];
    const ctx: WireContext = {
      id: wire === anthropicWire ? `msg_${idPrefix}${n}` : wire === responsesWire ? `resp_${idPrefix}${n}` : `${idPrefix}${n}`,
      created: Math.floor(Date.now() / 1000),
      model: modelInPath ? decodeURIComponent(modelInPath) : typeof body?.model === 'string' ? body.model : 'unknown',
      stream: body?.stream === true || path.endsWith(':streamGenerateContent') || path.endsWith('/converse-stream'),
      body,
      path,
      dialect,
    };
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      sendJson(res, 400, wire.errorBody(400, ctx, 'The request body is not valid JSON.'));
      return;
    }
    const invalid = validate ? wire.validate(ctx) : undefined;
    if (invalid) {
      sendJson(res, invalid.status, invalid.body, { ...wire.headers(ctx), ...invalid.headers });
      return;
    }
    serveWire(wire, ctx, nextReply(rec), res, cut);
  }

  function chatCompletions(rec: RecordedRequest, res: ServerResponse, dialect: string | null = null): void {
    const body = rec.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      sendJson(res, 400, validateChatRequest(undefined));
      return;
    }
    const invalid = validate ? validateChatRequest(body) : undefined;
    if (invalid) {
      sendJson(res, 400, invalid);
      return;
    }
    const reply = nextReply(rec);
    const stream = body.stream === true;
    const ctx: ChunkContext = {
      id: `chatcmpl-${idPrefix}${(++counter).toString(36)}`,
      created: Math.floor(Date.now() / 1000),
      model: typeof body.model === 'string' ? body.model : 'gpt-4o-mini',
      includeUsage: stream && body.stream_options?.include_usage === true,
      dialect,
    };
    const headers = { 'x-request-id': `req_${ctx.id.slice(9)}` };

    switch (reply.kind) {
      case 'text': {
        const usage = reply.usage ?? {
          prompt_tokens: estimatePromptTokens(body),
          completion_tokens: estimateCompletionTokens(reply.text),
        };
        const finish = reply.finishReason ?? 'stop';
        if (stream) {
          let out = roleLine(ctx, true);
          for (const piece of reply.chunks ?? splitText(reply.text)) out += contentLine(ctx, piece);
          sendSse(res, out + finishLines(ctx, finish, usage), headers);
        } else {
          sendJson(res, 200, completionObject(ctx, reply.text, undefined, finish, usage), headers);
        }
        break;
      }
      case 'tool_calls': {
        const usage = reply.usage ?? {
          prompt_tokens: estimatePromptTokens(body),
          completion_tokens: estimateCompletionTokens(reply.text, reply.calls),
        };
        if (stream) {
          let out = roleLine(ctx, reply.text !== undefined);
          if (reply.text !== undefined)
            for (const piece of splitText(reply.text)) out += contentLine(ctx, piece);
          out += toolCallLines(ctx, reply.calls);
          sendSse(res, out + finishLines(ctx, 'tool_calls', usage), headers);
        } else {
          sendJson(res, 200, completionObject(ctx, reply.text, reply.calls, 'tool_calls', usage), headers);
        }
        break;
      }
      case 'reasoning': {
        const reasoning = (typeof reply.reasoning === 'string' ? [reply.reasoning] : reply.reasoning).join('\n\n');
        const calls = reply.calls ?? [];
        const usage = reply.usage ?? {
          prompt_tokens: estimatePromptTokens(body),
          completion_tokens: estimateCompletionTokens(reasoning + (reply.text ?? ''), calls),
          reasoning_tokens: estimateCompletionTokens(reasoning),
        };
        const finish = reply.finishReason ?? (calls.length > 0 ? 'tool_calls' : 'stop');
        // Groq names the field `reasoning`; DeepSeek, vLLM and most others `reasoning_content`.
        const field = dialect === 'groq' ? 'reasoning' : 'reasoning_content';
        if (stream) {
          let out = roleLine(ctx, false);
          for (const piece of splitText(reasoning)) out += chunkLine(ctx, { [field]: piece }, null);
          for (const piece of splitText(reply.text ?? '')) out += contentLine(ctx, piece);
          if (calls.length > 0) out += toolCallLines(ctx, calls);
          sendSse(res, out + finishLines(ctx, finish, usage), headers);
        } else {
          const completion = completionObject(ctx, reply.text ?? '', calls.length > 0 ? calls : undefined, finish, usage);
          (completion.choices[0].message as Record<string, unknown>)[field] = reasoning;
          sendJson(res, 200, completion, headers);
        }
        break;
      }
      case 'error': {
        const errBody = reply.body === undefined ? defaultErrorBody(reply.status, ctx.model) : reply.body;
        const extra = { ...headers, ...reply.headers };
        if (typeof errBody === 'string') {
          res.writeHead(reply.status, { 'content-type': 'text/plain', ...extra });
          res.end(errBody);
        } else {
          sendJson(res, reply.status, errBody, extra);
        }
        break;
      }
      case 'slow':
        sendSlow(res, ctx, body, reply, stream, headers);
        break;
      case 'hang':
        break;
      case 'stream_error': {
        const err = reply.error ?? defaultErrorBody(500, ctx.model);
        if (!stream) {
          sendJson(res, 500, err, headers);
          break;
        }
        let out = roleLine(ctx, true);
        for (const piece of splitText(reply.text ?? '')) out += contentLine(ctx, piece);
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', ...headers });
        if (reply.disconnect) {
          // Flush what we have, then cut the connection as a crashed upstream would.
          cut.add(res);
          res.write(out, () => res.destroy());
        } else {
          res.end(out + errorLine(err));
        }
        break;
      }
    }
  }

  function sendSlow(
    res: ServerResponse,
    ctx: ChunkContext,
    // biome-ignore lint/suspicious/noExplicitAny: request JSON is arbitrary
    body: any,
    reply: Extract<FakeReply, { kind: 'slow' }>,
    stream: boolean,
    headers: Record<string, string>,
  ): void {
    const pieces = reply.chunks ?? splitText(reply.text);
    const usage = {
      prompt_tokens: estimatePromptTokens(body),
      completion_tokens: estimateCompletionTokens(reply.text),
    };
    let timer: NodeJS.Timeout | undefined;
    res.on('close', () => clearTimeout(timer));
    if (!stream) {
      timer = setTimeout(
        () => sendJson(res, 200, completionObject(ctx, reply.text, undefined, 'stop', usage), headers),
        reply.chunkDelayMs * Math.max(1, pieces.length),
      );
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', ...headers });
    res.write(roleLine(ctx, true));
    let i = 0;
    const next = (): void => {
      if (res.destroyed) return;
      if (i < pieces.length) {
        res.write(contentLine(ctx, pieces[i++]));
        timer = setTimeout(next, reply.chunkDelayMs);
      } else {
        res.end(finishLines(ctx, 'stop', usage));
      }
    };
    timer = setTimeout(next, reply.chunkDelayMs);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const hostInUrl = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${hostInUrl}:${port}/v1`,
    origin: `http://${hostInUrl}:${port}`,
    requests,
    enqueue(...replies) {
      queue.push(...replies);
    },
    setDefault(reply) {
      fallback = reply;
    },
    reset() {
      queue = [];
      requests.length = 0;
      fallback = DEFAULT_REPLY;
    },
    lastRequest() {
      return requests[requests.length - 1];
    },
    close() {
      closing = true;
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Hanging and slow replies, and idle keep-alive sockets, would hold close() open.
        server.closeAllConnections();
      });
    },
  };
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers?: Record<string, string>,
): void {
  res.writeHead(status, headers ? { ...JSON_HEADERS, ...headers } : JSON_HEADERS);
  res.end(JSON.stringify(body));
}

function sendSse(res: ServerResponse, payload: string, headers: Record<string, string>): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', ...headers });
  res.end(payload);
}

function modelObject(id: string) {
  return { id, object: 'model', created: 1715367049, owned_by: 'system' };
}

function flattenHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    out[name] = Object.hasOwn(out, name) ? out[name] + ', ' + raw[i + 1] : raw[i + 1];
  }
  return out;
}

function parseBody(raw: string): unknown {
  if (raw === '') return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}
