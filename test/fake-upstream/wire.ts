// What every provider wire of the fake upstream shares: a scripted reply normalised to content
// (reasoning, text, tool calls, finish, usage), the frame list a streaming reply is written as,
// and the signatures the fake issues for reasoning so it can check that a client replays them intact.

import { createHash } from 'node:crypto';
import type { FakeToolCall, FakeUsage } from './chat-wire.ts';

export type FinishKind = 'stop' | 'length' | 'content_filter' | 'tool_calls';

/** A content reply (text, tool calls, reasoning) in wire-neutral form. */
export interface Content {
  /** Reasoning parts in order (Anthropic thinking blocks, OpenAI summary parts, Gemini thoughts). */
  reasoning: string[];
  /** Signature for the reasoning (Anthropic thinking, Gemini thought signature); derived when not scripted. */
  signature?: string;
  /** OpenAI/xAI Responses `encrypted_content`; derived when not scripted. */
  encrypted?: string;
  text?: string;
  /** Explicit text deltas. */
  chunks?: string[];
  calls: FakeToolCall[];
  finish: FinishKind;
  usage: FakeUsage;
}

export interface WireContext {
  id: string;
  created: number;
  model: string;
  stream: boolean;
  // biome-ignore lint/suspicious/noExplicitAny: request JSON is arbitrary
  body: any;
  /** Path without query and without a leading dialect segment. */
  path: string;
  /** `/groq/...`, `/deepseek/...`: a leading path segment naming a provider dialect, if any. */
  dialect: string | null;
}

/** One piece of a streaming reply. A `delta` frame is where a slow reply pauses first. */
export interface Frame {
  data: string | Buffer;
  delta?: boolean;
}

export interface WireError {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface Wire {
  name: string;
  contentType: string;
  /** The upstream's 400 (or 404) for a request it would reject, else undefined. */
  validate(ctx: WireContext): WireError | undefined;
  json(ctx: WireContext, content: Content): unknown;
  /** `open`: stop before the finishing frames (a stream that fails midway). */
  frames(ctx: WireContext, content: Content, open?: boolean): Frame[];
  errorBody(status: number, ctx: WireContext, message?: string): unknown;
  /** The frame a provider sends when generation fails after the 200. */
  errorFrame(ctx: WireContext, message: string): Frame;
  /** Response headers for every reply (request ids). */
  headers(ctx: WireContext): Record<string, string>;
  /** Extra headers on an error reply (Bedrock names the exception type in one). */
  errorHeaders?(status: number): Record<string, string>;
}

/** Deterministic reasoning signature: what the fake issues and later insists on getting back. */
export function signatureFor(thinking: string): string {
  return `sig_${createHash('sha256').update(thinking).digest('base64url').slice(0, 32)}`;
}

/** Deterministic `encrypted_content` for a reasoning item's summary. */
export function encryptedFor(summary: string[]): string {
  const payload = Buffer.from(JSON.stringify(summary)).toString('base64url');
  return `enc_${payload}.${createHash('sha256').update(payload).digest('base64url').slice(0, 16)}`;
}

export function isValidEncrypted(value: unknown): boolean {
  if (typeof value !== 'string' || !value.startsWith('enc_')) return false;
  const [payload, mac] = value.slice(4).split('.');
  return mac === createHash('sha256').update(payload).digest('base64url').slice(0, 16);
}

export function sse(event: string | null, data: unknown): string {
  return `${event ? `event: ${event}\n` : ''}data: ${JSON.stringify(data)}\n\n`;
}
