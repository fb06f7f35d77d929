// Assembles a turn's output items from the AI SDK's stream parts and, when a client is
// streaming, announces each step as a Responses event in the order DESIGN.md fixes. The same
// assembler serves streaming and non-streaming turns, so both produce identical output items.

import type { LanguageModelV4FinishReason, LanguageModelV4StreamPart, LanguageModelV4Usage } from '@ai-sdk/provider';
import { newId } from '../protocol/ids.ts';
import { toClientItem } from '../protocol/response.ts';
import type { FunctionCallItem, Item, JsonObject, MessageItem, OutputTextPart, ReasoningItem, Usage } from '../protocol/types.ts';

/** Receives events without sequence numbers; the caller stamps and writes them. */
export type EventSink = (event: { type: string } & Record<string, unknown>) => void;

interface OpenText {
  item: MessageItem;
  part: OutputTextPart;
  outputIndex: number;
  contentIndex: number;
}
interface OpenCall {
  item: FunctionCallItem;
  outputIndex: number;
}
/**
 * A reasoning item stays open until something else starts (text, a tool call, the finish), because
 * a provider may add summary parts to it one after another (OpenAI's `rs_…:0`, `rs_…:1`).
 */
interface OpenReasoning {
  item: ReasoningItem;
  outputIndex: number;
  /** The provider's own id for the item, which ties its parts together; null when it has none. */
  group: string | null;
}
/** One reasoning stream part: a summary part of an open reasoning item, announced once it has text. */
interface ReasoningPart {
  open: OpenReasoning;
  summaryIndex: number | null;
}

export class OutputAssembler {
  readonly output: Item[] = [];
  usage: Usage | null = null;
  finishReason: LanguageModelV4FinishReason['unified'] | null = null;
  /** True once the provider produced any content (text, reasoning or a tool call). */
  started = false;

  private readonly emit: EventSink | null;
  private readonly texts = new Map<string, OpenText>();
  private readonly calls = new Map<string, OpenCall>();
  private reasoning: OpenReasoning | null = null;
  private readonly reasoningParts = new Map<string, ReasoningPart>();

  constructor(emit: EventSink | null) {
    this.emit = emit;
  }

  /** Feeds one stream part. Returns an error part's payload so the caller can fail the turn. */
  push(part: LanguageModelV4StreamPart): { error: unknown } | null {
    switch (part.type) {
      case 'text-start':
        this.closeReasoning();
        this.startText(part.id, part.providerMetadata);
        break;
      case 'text-delta': {
        if (part.delta.length === 0) break;
        this.closeReasoning();
        const open = this.texts.get(part.id) ?? this.startText(part.id, part.providerMetadata);
        open.part.text += part.delta;
        if (part.providerMetadata) open.item.provider_metadata = mergeMetadata(open.item.provider_metadata, part.providerMetadata);
        this.emit?.({
          type: 'response.output_text.delta',
          item_id: open.item.id,
          output_index: open.outputIndex,
          content_index: open.contentIndex,
          delta: part.delta,
          logprobs: [],
        });
        break;
      }
      case 'text-end': {
        const open = this.texts.get(part.id);
        if (open && part.providerMetadata) open.item.provider_metadata = mergeMetadata(open.item.provider_metadata, part.providerMetadata);
        this.endText(part.id, 'completed');
        break;
      }
      case 'tool-input-start':
        this.closeReasoning();
        this.startCall(part.id, part.toolName);
        break;
      case 'tool-input-delta': {
        const open = this.calls.get(part.id);
        if (!open || part.delta.length === 0) break;
        open.item.arguments += part.delta;
        this.emit?.({ type: 'response.function_call_arguments.delta', item_id: open.item.id, output_index: open.outputIndex, delta: part.delta });
        break;
      }
      case 'tool-call': {
        this.closeReasoning();
        const open = this.calls.get(part.toolCallId) ?? this.startCall(part.toolCallId, part.toolName);
        if (part.providerMetadata) open.item.provider_metadata = mergeMetadata(open.item.provider_metadata, part.providerMetadata);
        if (open.item.arguments !== part.input) {
          // Providers that send the call whole (or a final canonical form) still produce one delta.
          const missing = part.input.startsWith(open.item.arguments) ? part.input.slice(open.item.arguments.length) : null;
          if (missing === null) open.item.arguments = part.input;
          else if (missing.length > 0) {
            open.item.arguments = part.input;
            this.emit?.({ type: 'response.function_call_arguments.delta', item_id: open.item.id, output_index: open.outputIndex, delta: missing });
          }
        }
        this.endCall(part.toolCallId, 'completed');
        break;
      }
      case 'reasoning-start':
        this.startReasoningPart(part.id, part.providerMetadata);
        break;
      case 'reasoning-delta': {
        const rp = this.reasoningParts.get(part.id) ?? this.startReasoningPart(part.id, part.providerMetadata);
        if (part.providerMetadata) rp.open.item.provider_metadata = mergeMetadata(rp.open.item.provider_metadata, part.providerMetadata);
        if (part.delta.length > 0) this.reasoningDelta(rp, part.delta);
        break;
      }
      case 'reasoning-end': {
        const rp = this.reasoningParts.get(part.id);
        if (!rp) break;
        if (part.providerMetadata) rp.open.item.provider_metadata = mergeMetadata(rp.open.item.provider_metadata, part.providerMetadata);
        this.endReasoningPart(part.id);
        break;
      }
      case 'finish':
        this.closeReasoning();
        this.usage = toUsage(part.usage);
        this.finishReason = part.finishReason.unified;
        break;
      case 'error':
        return { error: part.error };
      default:
        // stream-start, response-metadata, raw, ping, sources and files carry nothing a
        // Responses output item holds in this version.
        break;
    }
    return null;
  }

  /** Adds an item that is complete as it is (a compaction item), announcing it added and done. */
  addComplete(item: Item): void {
    const outputIndex = this.output.push(item) - 1;
    this.emit?.({ type: 'response.output_item.added', output_index: outputIndex, item: toClientItem(item) });
    this.emit?.({ type: 'response.output_item.done', output_index: outputIndex, item: toClientItem(item) });
  }

  /** Closes every item still open, marking it `incomplete` when the turn did not finish cleanly. */
  closeAll(status: 'completed' | 'incomplete'): void {
    for (const id of [...this.texts.keys()]) this.endText(id, status);
    for (const id of [...this.calls.keys()]) this.endCall(id, status);
    this.closeReasoning();
  }

  private startText(id: string, metadata: Record<string, unknown> | undefined): OpenText {
    this.started = true;
    const item: MessageItem = { type: 'message', id: newId('msg'), status: 'in_progress', role: 'assistant', content: [] };
    if (metadata) item.provider_metadata = metadata as JsonObject;
    const outputIndex = this.output.push(item) - 1;
    this.emit?.({ type: 'response.output_item.added', output_index: outputIndex, item: { ...item, content: [] } });
    const part: OutputTextPart = { type: 'output_text', text: '', annotations: [] };
    item.content.push(part);
    const open: OpenText = { item, part, outputIndex, contentIndex: 0 };
    this.texts.set(id, open);
    this.emit?.({
      type: 'response.content_part.added',
      item_id: item.id,
      output_index: outputIndex,
      content_index: 0,
      part: { type: 'output_text', text: '', annotations: [] },
    });
    return open;
  }

  private endText(id: string, status: 'completed' | 'incomplete'): void {
    const open = this.texts.get(id);
    if (!open) return;
    this.texts.delete(id);
    open.item.status = status;
    if (this.emit) {
      const base = { item_id: open.item.id, output_index: open.outputIndex, content_index: open.contentIndex };
      this.emit({ type: 'response.output_text.done', ...base, text: open.part.text, logprobs: [] });
      this.emit({ type: 'response.content_part.done', ...base, part: open.part });
      this.emit({ type: 'response.output_item.done', output_index: open.outputIndex, item: toClientItem(open.item) });
    }
  }

  private startCall(callId: string, name: string): OpenCall {
    this.started = true;
    const item: FunctionCallItem = { type: 'function_call', id: newId('fc'), call_id: callId, name, arguments: '', status: 'in_progress' };
    const outputIndex = this.output.push(item) - 1;
    const open = { item, outputIndex };
    this.calls.set(callId, open);
    this.emit?.({ type: 'response.output_item.added', output_index: outputIndex, item: { ...item } });
    return open;
  }

  private endCall(callId: string, status: 'completed' | 'incomplete'): void {
    const open = this.calls.get(callId);
    if (!open) return;
    this.calls.delete(callId);
    open.item.status = status;
    if (this.emit) {
      this.emit({
        type: 'response.function_call_arguments.done',
        item_id: open.item.id,
        output_index: open.outputIndex,
        name: open.item.name,
        arguments: open.item.arguments,
      });
      this.emit({ type: 'response.output_item.done', output_index: open.outputIndex, item: toClientItem(open.item) });
    }
  }

  /**
   * A reasoning stream part joins the open reasoning item when both carry the same provider item id
   * (summary parts of one OpenAI reasoning item); otherwise it starts a new item.
   */
  private startReasoningPart(id: string, metadata: Record<string, unknown> | undefined): ReasoningPart {
    const group = providerItemId(metadata);
    if (!this.reasoning || group === null || this.reasoning.group !== group) {
      this.closeReasoning();
      this.started = true;
      const item: ReasoningItem = { type: 'reasoning', id: newId('rs'), summary: [] };
      const outputIndex = this.output.push(item) - 1;
      this.reasoning = { item, outputIndex, group };
      this.emit?.({ type: 'response.output_item.added', output_index: outputIndex, item: { type: 'reasoning', id: item.id, summary: [] } });
    }
    const open = this.reasoning;
    if (metadata) open.item.provider_metadata = mergeMetadata(open.item.provider_metadata, metadata);
    const rp: ReasoningPart = { open, summaryIndex: null };
    this.reasoningParts.set(id, rp);
    return rp;
  }

  /** Reasoning text is streamed as summary text: the events both the Open Responses spec and the SDKs know. */
  private reasoningDelta(rp: ReasoningPart, delta: string): void {
    const { item, outputIndex } = rp.open;
    if (rp.summaryIndex === null) {
      rp.summaryIndex = item.summary.push({ type: 'summary_text', text: '' }) - 1;
      this.emit?.({
        type: 'response.reasoning_summary_part.added',
        item_id: item.id,
        output_index: outputIndex,
        summary_index: rp.summaryIndex,
        part: { type: 'summary_text', text: '' },
      });
    }
    item.summary[rp.summaryIndex].text += delta;
    this.emit?.({ type: 'response.reasoning_summary_text.delta', item_id: item.id, output_index: outputIndex, summary_index: rp.summaryIndex, delta });
  }

  private endReasoningPart(id: string): void {
    const rp = this.reasoningParts.get(id);
    if (!rp) return;
    this.reasoningParts.delete(id);
    if (rp.summaryIndex === null || !this.emit) return;
    const { item, outputIndex } = rp.open;
    const text = item.summary[rp.summaryIndex].text;
    const base = { item_id: item.id, output_index: outputIndex, summary_index: rp.summaryIndex };
    this.emit({ type: 'response.reasoning_summary_text.done', ...base, text });
    this.emit({ type: 'response.reasoning_summary_part.done', ...base, part: { type: 'summary_text', text } });
  }

  private closeReasoning(): void {
    const open = this.reasoning;
    if (!open) return;
    for (const [id, rp] of [...this.reasoningParts]) if (rp.open === open) this.endReasoningPart(id);
    this.reasoning = null;
    this.emit?.({ type: 'response.output_item.done', output_index: open.outputIndex, item: toClientItem(open.item) });
  }
}

/** The provider's id for a reasoning item (OpenAI's and Azure's `itemId`), under any provider key. */
function providerItemId(metadata: Record<string, unknown> | undefined): string | null {
  if (!metadata) return null;
  for (const value of Object.values(metadata)) {
    const itemId = (value as { itemId?: unknown } | null)?.itemId;
    if (typeof itemId === 'string' && itemId.length > 0) return itemId;
  }
  return null;
}

function mergeMetadata(a: JsonObject | undefined, b: Record<string, unknown>): JsonObject {
  if (!a) return b as JsonObject;
  const merged: JsonObject = { ...a };
  for (const [provider, values] of Object.entries(b)) {
    merged[provider] = { ...((a[provider] as JsonObject | undefined) ?? {}), ...(values as JsonObject) };
  }
  return merged;
}

export function toUsage(u: LanguageModelV4Usage): Usage {
  const input = u.inputTokens.total ?? 0;
  const output = u.outputTokens.total ?? 0;
  return {
    input_tokens: input,
    output_tokens: output,
    total_tokens: input + output,
    input_tokens_details: { cached_tokens: u.inputTokens.cacheRead ?? 0 },
    output_tokens_details: { reasoning_tokens: u.outputTokens.reasoning ?? 0 },
  };
}
