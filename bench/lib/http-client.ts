// A small keep-alive HTTP/1.1 client on raw sockets, for load generation. node:http's client
// costs several times what the fake upstream does per request; this one pre-serialises the
// request, parses only the status line, Content-Length and chunked framing, and timestamps the
// first byte, the first token (a marker in the body) and the end of every response.

import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface HttpTarget {
  host: string;
  port: number;
}

export interface HttpResult {
  status: number;
  body: Buffer;
  /** performance.now() timestamps, in milliseconds. */
  start: number;
  firstByte: number;
  /** When the token marker was first seen in the body; equals `end` when no marker was given or found. */
  firstToken: number;
  end: number;
}

/** Finds the first token in a piece of body text (latin1). */
export type TokenMarker = (text: string) => boolean;

/** Chat Completions SSE: the first delta with non-empty `content`. */
export const chatTokenMarker: TokenMarker = (text) => {
  let at = text.indexOf('"content":"');
  while (at !== -1) {
    const next = text.charCodeAt(at + 11);
    if (!Number.isNaN(next) && next !== 34 /* " */) return true;
    at = text.indexOf('"content":"', at + 11);
  }
  return false;
};

/** Responses SSE: the first `response.output_text.delta` event. */
export const responsesTokenMarker: TokenMarker = (text) => text.includes('response.output_text.delta');

export function buildRequest(
  target: HttpTarget,
  method: string,
  path: string,
  body: string | null,
  headers: Record<string, string> = {},
): Buffer {
  const payload = body === null ? null : Buffer.from(body, 'utf8');
  let head = `${method} ${path} HTTP/1.1\r\nHost: ${target.host}:${target.port}\r\nConnection: keep-alive\r\n`;
  if (payload) head += `Content-Type: application/json\r\nContent-Length: ${payload.length}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  head += '\r\n';
  return payload ? Buffer.concat([Buffer.from(head, 'latin1'), payload]) : Buffer.from(head, 'latin1');
}

// Parser states.
const HEAD = 0;
const LENGTH = 1;
const CHUNKED = 2;

interface Pending {
  resolve: (result: HttpResult) => void;
  reject: (error: Error) => void;
  marker: TokenMarker | null;
  result: HttpResult;
  parts: Buffer[];
  tail: string;
  received: boolean;
}

export class HttpConnection {
  readonly target: HttpTarget;
  #socket: Socket | null = null;
  #connecting: Promise<Socket> | null = null;
  #pending: Pending | null = null;
  #buffer: Buffer = Buffer.alloc(0);
  #state: number = HEAD;
  #remaining = 0;

  constructor(target: HttpTarget) {
    this.target = target;
  }

  async send(request: Buffer, marker: TokenMarker | null = null): Promise<HttpResult> {
    try {
      return await this.#send(request, marker);
    } catch (error) {
      // A keep-alive socket the server closed while idle: retry once on a fresh one.
      if ((error as { retryable?: boolean }).retryable) return this.#send(request, marker);
      throw error;
    }
  }

  close(): void {
    this.#socket?.destroy();
    this.#socket = null;
  }

  async #send(request: Buffer, marker: TokenMarker | null): Promise<HttpResult> {
    if (this.#pending) throw new Error('HttpConnection: one request at a time');
    const socket = this.#socket ?? (await this.#connect());
    return new Promise<HttpResult>((resolve, reject) => {
      const start = performance.now();
      this.#pending = {
        resolve,
        reject,
        marker,
        result: { status: 0, body: Buffer.alloc(0), start, firstByte: 0, firstToken: 0, end: 0 },
        parts: [],
        tail: '',
        received: false,
      };
      this.#state = HEAD;
      this.#buffer = Buffer.alloc(0);
      socket.write(request);
    });
  }

  #connect(): Promise<Socket> {
    if (this.#connecting) return this.#connecting;
    this.#connecting = new Promise<Socket>((resolve, reject) => {
      const socket = connect({ host: this.target.host, port: this.target.port, noDelay: true });
      socket.once('connect', () => {
        this.#socket = socket;
        this.#connecting = null;
        resolve(socket);
      });
      socket.on('data', (chunk: Buffer) => this.#onData(chunk));
      socket.on('error', (error) => {
        if (this.#connecting) {
          this.#connecting = null;
          reject(error);
        }
        this.#fail(error);
      });
      socket.on('close', () => {
        if (this.#socket === socket) this.#socket = null;
        this.#fail(new Error('connection closed'));
      });
    });
    return this.#connecting;
  }

  #fail(error: Error): void {
    const pending = this.#pending;
    if (!pending) return;
    this.#pending = null;
    if (!pending.received) Object.assign(error, { retryable: true });
    pending.reject(error);
  }

  #onData(chunk: Buffer): void {
    const pending = this.#pending;
    if (!pending) return;
    if (!pending.received) {
      pending.received = true;
      pending.result.firstByte = performance.now();
    }
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      if (this.#state === HEAD) {
        const end = this.#buffer.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = this.#buffer.toString('latin1', 0, end).toLowerCase();
        pending.result.status = Number(head.slice(9, 12));
        this.#buffer = this.#buffer.subarray(end + 4);
        const length = /\r\ncontent-length: *(\d+)/.exec(head);
        if (length) {
          this.#state = LENGTH;
          this.#remaining = Number(length[1]);
        } else if (/\r\ntransfer-encoding: *chunked/.test(head)) {
          this.#state = CHUNKED;
        } else {
          this.#state = LENGTH;
          this.#remaining = 0;
        }
      }
      if (this.#state === LENGTH) {
        if (this.#buffer.length < this.#remaining) {
          this.#take(pending, this.#buffer);
          this.#remaining -= this.#buffer.length;
          this.#buffer = Buffer.alloc(0);
          return;
        }
        this.#take(pending, this.#buffer.subarray(0, this.#remaining));
        this.#buffer = this.#buffer.subarray(this.#remaining);
        this.#finish(pending);
        return;
      }
      // Chunked: <hex size>\r\n<data>\r\n ... 0\r\n\r\n
      const lineEnd = this.#buffer.indexOf('\r\n');
      if (lineEnd === -1) return;
      const size = Number.parseInt(this.#buffer.toString('latin1', 0, lineEnd), 16);
      if (size === 0) {
        if (this.#buffer.length < lineEnd + 4) return;
        this.#buffer = this.#buffer.subarray(lineEnd + 4);
        this.#finish(pending);
        return;
      }
      if (this.#buffer.length < lineEnd + 2 + size + 2) return;
      this.#take(pending, this.#buffer.subarray(lineEnd + 2, lineEnd + 2 + size));
      this.#buffer = this.#buffer.subarray(lineEnd + 2 + size + 2);
    }
  }

  #take(pending: Pending, data: Buffer): void {
    if (data.length === 0) return;
    pending.parts.push(data);
    if (pending.marker && pending.result.firstToken === 0) {
      const text = data.toString('latin1', 0, data.length);
      if (pending.marker(pending.tail + text)) pending.result.firstToken = performance.now();
      else pending.tail = text.slice(-64);
    }
  }

  #finish(pending: Pending): void {
    this.#pending = null;
    const result = pending.result;
    result.end = performance.now();
    if (result.firstToken === 0) result.firstToken = result.end;
    result.body = pending.parts.length === 1 ? pending.parts[0] : Buffer.concat(pending.parts);
    pending.resolve(result);
  }
}
