// Rebuilds a response's stream events from snapshots of the response, for clients that
// (re)attach to a stream the engine is not writing for them: `GET /v1/responses/{id}?stream=true`
// on a finished response, or on one running on another gateway instance (whose progress the
// store holds). Each snapshot is compared with what was already announced and only the
// difference is emitted, in the order and shapes OutputAssembler uses live; a finished response
// is the same thing with one snapshot. Text arrives as one delta per snapshot, so the sequence
// numbers of a replay match a live stream's only up to the first delta (see README, Background mode).

import { toClientItem } from '../protocol/response.ts';
import type { ContentPart, Item, ResponseObject, StreamEvent } from '../protocol/types.ts';

interface Announced {
  id: string;
  /** Characters announced so far of each content part (messages) or summary part (reasoning). */
  parts: number[];
  args: number;
  done: boolean;
}

export class SnapshotReplayer {
  readonly #emit: (event: StreamEvent) => void;
  #sequence = 0;
  #announced: Announced[] = [];
  #begun = false;
  #running = false;
  #ended = false;

  constructor(emit: (event: StreamEvent) => void) {
    this.#emit = emit;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Feeds one snapshot. The first one opens the stream (`response.created`, `response.queued`
   * for background responses, `response.in_progress`); a finished one closes every item and ends
   * it with `response.completed`, `response.incomplete` or `response.failed` (failed and cancelled).
   */
  push(response: ResponseObject): void {
    if (this.#ended) return;
    if (!this.#begun) this.#begin(response);
    if (!this.#running && response.status !== 'queued') {
      this.#running = true;
      this.#send({ type: 'response.in_progress', response: { ...opening(response), status: 'in_progress' } });
    }
    this.#advance(response.output);
    if (response.status !== 'queued' && response.status !== 'in_progress') {
      for (let i = 0; i < this.#announced.length; i++) this.#close(i, response.output[i]);
      this.#send({ type: terminalEventType(response.status), response });
      this.#ended = true;
    }
  }

  #begin(response: ResponseObject): void {
    this.#begun = true;
    if (response.background) {
      this.#send({ type: 'response.created', response: { ...opening(response), status: 'queued' } });
      this.#send({ type: 'response.queued', response: { ...opening(response), status: 'queued' } });
    } else {
      this.#send({ type: 'response.created', response: { ...opening(response), status: 'in_progress' } });
    }
  }

  #advance(output: Item[]): void {
    output.forEach((raw, index) => {
      const item = toClientItem(raw);
      let seen = this.#announced[index];
      if (!seen) {
        seen = { id: item.id, parts: [], args: 0, done: false };
        this.#announced[index] = seen;
        this.#send({ type: 'response.output_item.added', output_index: index, item: openingItem(item) });
      }
      if (seen.done || seen.id !== item.id) return;
      if (item.type === 'message') {
        item.content.forEach((part, c) => {
          if (seen.parts[c] === undefined) {
            seen.parts[c] = 0;
            this.#send({ type: 'response.content_part.added', item_id: item.id, output_index: index, content_index: c, part: emptyPart(part) });
          }
          const text = partText(part);
          if (text.length > seen.parts[c]) {
            const delta = text.slice(seen.parts[c]);
            seen.parts[c] = text.length;
            const base = { item_id: item.id, output_index: index, content_index: c, delta };
            this.#send(part.type === 'refusal' ? { type: 'response.refusal.delta', ...base } : { type: 'response.output_text.delta', ...base, logprobs: [] });
          }
        });
      } else if (item.type === 'reasoning') {
        item.summary.forEach((part, i) => {
          const base = { item_id: item.id, output_index: index, summary_index: i };
          if (seen.parts[i] === undefined) {
            seen.parts[i] = 0;
            this.#send({ type: 'response.reasoning_summary_part.added', ...base, part: { type: 'summary_text', text: '' } });
          }
          if (part.text.length > seen.parts[i]) {
            const delta = part.text.slice(seen.parts[i]);
            seen.parts[i] = part.text.length;
            this.#send({ type: 'response.reasoning_summary_text.delta', ...base, delta });
          }
        });
      } else if (item.type === 'function_call' && item.arguments.length > seen.args) {
        const delta = item.arguments.slice(seen.args);
        seen.args = item.arguments.length;
        this.#send({ type: 'response.function_call_arguments.delta', item_id: item.id, output_index: index, delta });
      }
      // Reasoning items carry no status: one is complete once something follows it.
      const complete = item.type === 'reasoning' ? index < output.length - 1 : item.type === 'compaction' || item.status !== 'in_progress';
      if (complete) this.#close(index, raw);
    });
  }

  /** The done events of one item, once. `raw` is its final state (absent: close it as it stands). */
  #close(index: number, raw: Item | undefined): void {
    const seen = this.#announced[index];
    if (!seen || seen.done) return;
    seen.done = true;
    if (!raw) return;
    const item = toClientItem(raw);
    if (item.type === 'message') {
      item.content.forEach((part, c) => {
        const base = { item_id: item.id, output_index: index, content_index: c };
        if (part.type === 'refusal') this.#send({ type: 'response.refusal.done', ...base, refusal: part.refusal });
        else this.#send({ type: 'response.output_text.done', ...base, text: partText(part), logprobs: [] });
        this.#send({ type: 'response.content_part.done', ...base, part });
      });
    } else if (item.type === 'reasoning') {
      item.summary.forEach((part, i) => {
        if (this.#announced[index].parts[i] === undefined) return;
        const base = { item_id: item.id, output_index: index, summary_index: i };
        this.#send({ type: 'response.reasoning_summary_text.done', ...base, text: part.text });
        this.#send({ type: 'response.reasoning_summary_part.done', ...base, part });
      });
    } else if (item.type === 'function_call') {
      this.#send({ type: 'response.function_call_arguments.done', item_id: item.id, output_index: index, name: item.name, arguments: item.arguments });
    }
    this.#send({ type: 'response.output_item.done', output_index: index, item });
  }

  #send(event: { type: string } & Record<string, unknown>): void {
    this.#emit({ ...event, sequence_number: this.#sequence++ } as StreamEvent);
  }
}

/** Every event of a finished (or paused) response, from the start. */
export function replayEvents(response: ResponseObject): StreamEvent[] {
  const events: StreamEvent[] = [];
  new SnapshotReplayer((e) => events.push(e)).push(response);
  return events;
}

export function terminalEventType(status: ResponseObject['status']): string {
  return status === 'completed' ? 'response.completed' : status === 'incomplete' ? 'response.incomplete' : 'response.failed';
}

/** The response as it stood before any output: what the opening events carry. */
function opening(response: ResponseObject): ResponseObject {
  return { ...response, output: [], usage: null, error: null, incomplete_details: null, completed_at: null };
}

function openingItem(item: Item): Item {
  switch (item.type) {
    case 'message':
      return { ...item, status: 'in_progress', content: [] };
    case 'function_call':
      return { ...item, status: 'in_progress', arguments: '' };
    case 'reasoning':
      return { type: 'reasoning', id: item.id, summary: [] };
    default:
      return item;
  }
}

function emptyPart(part: ContentPart): ContentPart {
  if (part.type === 'refusal') return { type: 'refusal', refusal: '' };
  return { type: 'output_text', text: '', annotations: [] };
}

function partText(part: ContentPart): string {
  if (part.type === 'refusal') return part.refusal;
  return part.type === 'output_text' || part.type === 'input_text' ? part.text : '';
}
