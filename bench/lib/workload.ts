// What the benchmark sends: fixed texts (so runs are comparable) and the request builders for
// each path. Sizes are those of an ordinary chat turn: a ~200-byte question, a 40-word answer.

import {
  buildRequest,
  chatTokenMarker,
  type HttpResult,
  type HttpTarget,
  responsesTokenMarker,
} from './http-client.ts';
import type { LoadTarget, PreparedRequest } from './load.ts';

export const MODEL = 'gpt-4o-mini';

export const FIRST_QUESTION =
  'I am planning a three-day trip to Lisbon in early spring. Which neighbourhoods should I stay in, and what should I not miss if I like food markets, tiles and viewpoints?';

export const QUESTION =
  'Thanks. Could you turn that into a day-by-day plan, keeping the walking under ten kilometres a day and leaving the evenings free for dinner near the river?';

/** 40 words: the upstream streams it as 40 deltas. */
export const REPLY = Array.from(
  { length: 40 },
  (_, i) =>
    ['Start', 'in', 'Alfama', 'early', 'then', 'walk', 'to', 'the', 'miradouro', 'before', 'lunch'][i % 11],
).join(' ');

/** For the scaling run: a longer answer, so history grows as it would in a real conversation. */
export const SCALING_REPLY = `${REPLY}. ${REPLY}.`;

export function scalingQuestion(turn: number): string {
  return `Turn ${turn}: ${QUESTION}`;
}

const RESP_ID = /"id":"(resp_[^"]+)"/;

export function responseIdOf(result: HttpResult): string {
  const m = RESP_ID.exec(result.body.toString('latin1', 0, Math.min(result.body.length, 4096)));
  if (!m) throw new Error(`no response id in: ${result.body.toString('utf8').slice(0, 200)}`);
  return m[1];
}

export function responsesBody(input: string, previous: string | null, stream: boolean): string {
  return JSON.stringify({
    model: MODEL,
    input,
    ...(previous === null ? {} : { previous_response_id: previous }),
    stream,
  });
}

/** A turn of a Conversations API conversation (the history is the conversation's items). */
export function conversationBody(input: string, conversation: string): string {
  return JSON.stringify({ model: MODEL, input, conversation, stream: false });
}

/** A stateful Responses turn: user `vu` continues from its own seeded root response. */
export function responsesTarget(
  name: string,
  target: HttpTarget,
  roots: string[],
  stream: boolean,
): LoadTarget {
  const prepared: PreparedRequest[] = roots.map((root) => ({
    payload: buildRequest(target, 'POST', '/v1/responses', responsesBody(QUESTION, root, stream), {
      Authorization: 'Bearer bench',
    }),
    marker: stream ? responsesTokenMarker : null,
  }));
  return {
    name,
    target,
    make: (vu) => prepared[vu % prepared.length],
    check: stream ? checkResponsesStream : checkResponsesJson,
  };
}

function checkResponsesJson(result: HttpResult): void {
  if (result.body.indexOf('"status":"completed"') === -1) {
    throw new Error(`not completed: ${result.body.toString('utf8').slice(0, 300)}`);
  }
}

function checkResponsesStream(result: HttpResult): void {
  const tail = result.body.toString('latin1', Math.max(0, result.body.length - 64), result.body.length);
  if (!tail.endsWith('data: [DONE]\n\n') || result.body.indexOf('event: response.completed') === -1) {
    throw new Error(`stream did not complete: ...${result.body.toString('utf8').slice(-300)}`);
  }
}

/** Chat Completions, the exact body Parley sent upstream (captured), to any server speaking it. */
export function chatTarget(
  name: string,
  target: HttpTarget,
  path: string,
  body: string,
  stream: boolean,
  headers: Record<string, string> = {},
): LoadTarget {
  const payload = buildRequest(target, 'POST', path, body, { Authorization: 'Bearer bench', ...headers });
  const request: PreparedRequest = { payload, marker: stream ? chatTokenMarker : null };
  return {
    name,
    target,
    make: () => request,
    check: stream ? checkChatStream : checkChatJson,
  };
}

function checkChatJson(result: HttpResult): void {
  if (result.body.indexOf('"finish_reason":"stop"') === -1) {
    throw new Error(`no finish_reason: ${result.body.toString('utf8').slice(0, 300)}`);
  }
}

function checkChatStream(result: HttpResult): void {
  const tail = result.body.toString('latin1', Math.max(0, result.body.length - 32), result.body.length);
  if (!tail.includes('[DONE]'))
    throw new Error(`stream did not end: ...${result.body.toString('utf8').slice(-300)}`);
}

export function portkeyHeaders(upstreamUrl: string): Record<string, string> {
  return { 'x-portkey-provider': 'openai', 'x-portkey-custom-host': upstreamUrl };
}

export function hostPort(url: string): HttpTarget {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}
