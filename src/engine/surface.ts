// The request fields that shape a turn around the model call rather than inside the prompt:
// `include` (encrypted reasoning, logprobs) and `max_tool_calls`. One TurnSurface per turn gives
// the engine one small hook per stage: the model's options, the stream parts, the events, the
// final response object.

import type { LanguageModelV4StreamPart, SharedV4ProviderOptions } from '@ai-sdk/provider';
import { openReasoning, sealReasoning } from '../protocol/encrypted-content.ts';
import { invalidRequest } from '../protocol/errors.ts';
import { toClientItem } from '../protocol/response.ts';
import type { CreateResponseRequest, Item, JsonObject, JsonValue, OutputTextPart, ResponseObject, StreamEvent } from '../protocol/types.ts';
import type { ResolvedModel } from '../providers/types.ts';

type Part = LanguageModelV4StreamPart;

export const ENCRYPTED_REASONING = 'reasoning.encrypted_content';
export const OUTPUT_LOGPROBS = 'message.output_text.logprobs';

/** Provider namespaces whose models report token logprobs through the AI SDK (OpenAI's protocol). */
const LOGPROB_NAMESPACES = new Set(['openai', 'azure']);

export class TurnSurface {
  readonly encryptedReasoning: boolean;
  readonly logprobs: boolean;
  readonly #maxToolCalls: number | null;
  readonly #namespace: string;
  readonly #topLogprobs: number;

  /**
   * Validates what the request asks of this model (logprobs from a provider that has none is a
   * 400) and opens Parley's `encrypted_content` envelopes in the input, so the reasoning items a
   * stateless client sends back replay to their provider.
   */
  constructor(request: CreateResponseRequest, model: Pick<ResolvedModel, 'provider' | 'namespace' | 'route'>) {
    this.encryptedReasoning = request.include.includes(ENCRYPTED_REASONING);
    this.logprobs = request.include.includes(OUTPUT_LOGPROBS);
    this.#maxToolCalls = request.params.max_tool_calls;
    this.#namespace = model.namespace ?? model.provider;
    this.#topLogprobs = request.params.top_logprobs ?? 0;
    if (this.logprobs && !LOGPROB_NAMESPACES.has(this.#namespace)) {
      throw invalidRequest(
        `The model '${model.route}' does not report token log probabilities, so 'message.output_text.logprobs' cannot be included. Remove it from 'include', or use an OpenAI or Azure OpenAI model.`,
        'include',
        'unsupported_parameter',
      );
    }
    openEnvelopes(request.input);
  }

  /** The model to call, with what `include` needs added to its provider options. */
  model<M extends Pick<ResolvedModel, 'providerOptions'>>(model: M): M {
    if (!this.logprobs) return model;
    const namespace = this.#namespace;
    const logprobs = this.#topLogprobs > 0 ? this.#topLogprobs : true;
    return {
      ...model,
      providerOptions: (params) => {
        const base: SharedV4ProviderOptions = model.providerOptions(params) ?? {};
        return { ...base, [namespace]: { ...(base[namespace] ?? {}), logprobs } };
      },
    };
  }

  /**
   * The stream parts with `max_tool_calls` applied (calls beyond it are dropped, like OpenAI
   * ignores further tool calls) and the upstream's logprobs attached to the output text when the
   * turn finishes. `output` is the assembler's live output. When `stoppable` is aborted, the
   * parts end with its reason as an error.
   */
  observe(parts: AsyncIterable<Part>, output: () => Item[], stoppable?: AbortSignal): AsyncIterable<Part> {
    if (this.#maxToolCalls === null && !this.logprobs && !stoppable) return parts;
    return this.#observe(parts, output, stoppable);
  }

  async *#observe(parts: AsyncIterable<Part>, output: () => Item[], stoppable?: AbortSignal): AsyncGenerator<Part> {
    const max = this.#maxToolCalls ?? Number.POSITIVE_INFINITY;
    const kept = new Set<string>();
    const dropped = new Set<string>();
    const keep = (id: string) => {
      if (kept.has(id)) return true;
      if (dropped.has(id) || kept.size >= max) {
        dropped.add(id);
        return false;
      }
      kept.add(id);
      return true;
    };
    for await (const part of parts) {
      switch (part.type) {
        case 'tool-input-start':
        case 'tool-input-delta':
        case 'tool-input-end':
          if (!keep(part.id)) continue;
          break;
        case 'tool-call':
          if (!keep(part.toolCallId)) continue;
          break;
        case 'finish':
          if (this.logprobs) attachLogprobs(output(), part.providerMetadata?.[this.#namespace]?.logprobs as JsonValue | undefined);
          break;
      }
      yield part;
    }
    // A provider may end its stream quietly when aborted: a stopped turn must not pass as complete.
    if (stoppable?.aborted) throw stoppable.reason;
  }

  /** Adds `encrypted_content` to reasoning items in `output_item.done` events when it was asked for. */
  sink(onEvent: ((event: StreamEvent) => void) | undefined, output: () => Item[]): ((event: StreamEvent) => void) | undefined {
    if (!onEvent || !this.encryptedReasoning) return onEvent;
    return (event) => {
      if (event.type === 'response.output_item.done') {
        const item = event.item as Item;
        if (item.type === 'reasoning') {
          const raw = output().find((i) => i.id === item.id);
          if (raw) event.item = renderItem(raw, true);
        }
      }
      onEvent(event);
    };
  }

  /** The response object with `include`d fields filled in from the raw output items. */
  render(response: ResponseObject, output: Item[]): ResponseObject {
    return renderIncludes(response, output, this.encryptedReasoning);
  }
}

/** A response object's output as `include` asks for it; `output` holds the raw (stored) items. */
export function renderIncludes(response: ResponseObject, output: Item[], encryptedReasoning: boolean): ResponseObject {
  if (!encryptedReasoning || !output.some((i) => i.type === 'reasoning')) return response;
  return { ...response, output: output.map((item) => renderItem(item, true)) };
}

function renderItem(item: Item, encryptedReasoning: boolean): Item {
  const visible = toClientItem(item);
  if (!encryptedReasoning || item.type !== 'reasoning' || visible.type !== 'reasoning') return visible;
  return {
    ...visible,
    encrypted_content: item.provider_metadata ? sealReasoning(item.provider_metadata) : (item.encrypted_content ?? null),
  };
}

/** Input reasoning items carrying Parley's envelope get their provider data back. */
function openEnvelopes(input: Item[]): void {
  input.forEach((item, i) => {
    if (item.type !== 'reasoning' || !item.encrypted_content || item.provider_metadata) return;
    const metadata = openReasoning(item.encrypted_content);
    if (metadata === undefined) {
      throw invalidRequest(
        `Invalid 'input[${i}].encrypted_content': it looks like a Parley reasoning envelope but is damaged. Send the value exactly as it was returned.`,
        `input[${i}].encrypted_content`,
        'invalid_value',
      );
    }
    if (metadata !== null) item.provider_metadata = metadata;
  });
}

/**
 * OpenAI's logprobs in the Responses shape (`bytes` added, which the AI SDK drops), on the first
 * output text. Chat Completions reports one flat list; the Responses API one list per text part.
 */
function attachLogprobs(output: Item[], raw: JsonValue | undefined): void {
  if (!Array.isArray(raw) || raw.length === 0) return;
  const flat = (Array.isArray(raw[0]) ? (raw as JsonValue[][]).flat() : raw) as JsonObject[];
  const part = output
    .flatMap((item) => (item.type === 'message' ? item.content : []))
    .find((p): p is OutputTextPart => p.type === 'output_text');
  if (!part) return;
  part.logprobs = flat.map((lp) => ({
    token: String(lp.token),
    logprob: Number(lp.logprob),
    bytes: utf8Bytes(String(lp.token)),
    top_logprobs: (Array.isArray(lp.top_logprobs) ? (lp.top_logprobs as JsonObject[]) : []).map((top) => ({
      token: String(top.token),
      logprob: Number(top.logprob),
      bytes: utf8Bytes(String(top.token)),
    })),
  }));
}

function utf8Bytes(token: string): number[] {
  return [...Buffer.from(token, 'utf8')];
}
