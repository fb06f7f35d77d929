// From stored history to what the model is sent, for one turn:
//
//   history + input -> compaction items rendered (context/compaction.ts)
//     -> compaction, when the request's `context_management` asks and the context exceeds its
//        threshold: the older turns are summarised by the compaction model into a new compaction
//        item (the turn's first output item), which then stands in for them
//     -> the library's context policy hook, if any (context/policy.ts)
//     -> the model's window: `truncation` auto or the over-window 400 (context/window.ts)
//
// Also POST /v1/responses/compact: the whole context summarised on demand.

import { defaultRequestParams } from '../protocol/defaults.ts';
import type { LanguageModelV4Prompt } from '@ai-sdk/provider';
import type { CompactionConfig } from '../config/types.ts';
import { ConfigError } from '../config/types.ts';
import {
  DEFAULT_COMPACTION_INSTRUCTIONS,
  isPinned,
  planCompaction,
  renderCompactions,
  transcript,
} from '../context/compaction.ts';
import type { ContextPolicy } from '../context/policy.ts';
import { REPLY_PRIMING, tokenCounterFor } from '../context/tokens.ts';
import { countInputTokens, fitContextWindow } from '../context/window.ts';
import { sealCompaction } from '../protocol/compaction-content.ts';
import { ApiError, invalidRequest } from '../protocol/errors.ts';
import { newId } from '../protocol/ids.ts';
import { emptyUsage, nowSeconds, toClientItem } from '../protocol/response.ts';
import type { CompactionItem, CreateResponseRequest, Item, RequestParams, Usage } from '../protocol/types.ts';
import type { CompactResource } from '../protocol/compact.ts';
import { toUpstreamError } from '../providers/call.ts';
import { startResilientCall } from '../providers/resilient-call.ts';
import type { ModelRegistry, ResolvedModel } from '../providers/types.ts';
import { OutputAssembler } from './output.ts';

export interface ContextOptions {
  /** The library's hook for a strategy of its own (e.g. the last N turns plus pinned items). */
  policy?: ContextPolicy | null;
  /** Which model writes summaries and what it is told (config `compaction`). */
  compaction?: CompactionConfig | null;
}

export interface PreparedContext {
  /** What the model is sent, in order. */
  items: Item[];
  /** The compaction item made for this turn (its first output item), or null. */
  compaction: CompactionItem | null;
  /** What the compaction pass used, and the model that served it (for its price). */
  compactionUsage: Usage | null;
  compactionModel: ResolvedModel | null;
}

interface Summary {
  text: string;
  usage: Usage | null;
  served: ResolvedModel;
}

/** The defaults of a request with nothing set: what a compaction call is made with. */
const SUMMARY_PARAMS: RequestParams = defaultRequestParams();

export class ContextManager {
  readonly #models: ModelRegistry;
  readonly #policy: ContextPolicy | null;
  readonly #compaction: CompactionConfig | null;

  /** Throws a ConfigError when `compaction.model` names no configured model. */
  constructor(models: ModelRegistry, options: ContextOptions = {}) {
    this.#models = models;
    this.#policy = options.policy ?? null;
    this.#compaction = options.compaction ?? null;
    const name = this.#compaction?.model;
    if (name) {
      try {
        models.resolve(name);
      } catch {
        const known = models.list().map((m) => m.id);
        throw new ConfigError([{ path: 'compaction.model', message: `names no configured model; configured: ${known.join(', ') || 'none'}` }]);
      }
    }
  }

  /**
   * The items to send for one turn. Throws an ApiError (400 context_length_exceeded, or the
   * compaction model's failure) before anything is stored or sent.
   */
  async prepare(
    items: Item[],
    request: Pick<CreateResponseRequest, 'model' | 'params' | 'context_management'>,
    model: ResolvedModel,
    signal?: AbortSignal,
  ): Promise<PreparedContext> {
    let rendered = renderCompactions(items);
    let compaction: CompactionItem | null = null;
    let compactionUsage: Usage | null = null;
    let compactionModel: ResolvedModel | null = null;
    const entry = request.context_management?.find((e) => e.type === 'compaction');
    if (entry || this.#policy) {
      const params = request.params;
      const counter = await tokenCounterFor(model.modelId);
      const costs = new Map<Item, number>();
      const count = (item: Item) => {
        let cost = costs.get(item);
        if (cost === undefined) {
          cost = counter.item(item);
          costs.set(item, cost);
        }
        return cost;
      };
      const fixed = REPLY_PRIMING + counter.instructions(params.instructions) + counter.tools(params.tools);
      const reserved = params.max_output_tokens ?? model.maxOutputTokens ?? 0;
      const window = model.contextWindow;

      if (entry) {
        // Without a threshold: compact once the context would no longer fit the window.
        const threshold = entry.compact_threshold ?? (window === null ? null : window - reserved);
        let total = fixed;
        for (const item of rendered) total += count(item);
        if (threshold !== null && total > threshold) {
          // Recent whole turns up to half the threshold stay verbatim; the older ones are summarised.
          const plan = planCompaction(rendered, Math.floor(threshold / 2) - fixed, count);
          if (plan) {
            const summary = await this.#summarise(plan.summarise, request.model, null, signal);
            compaction = {
              type: 'compaction',
              id: newId('cmp'),
              encrypted_content: sealCompaction({ summary: summary.text, through: plan.through }),
            };
            compactionUsage = summary.usage;
            compactionModel = summary.served;
            // Exactly what the next turn will see: the history with this item appended.
            rendered = renderCompactions([...items, compaction]);
          }
        }
      }

      if (this.#policy) {
        const chosen = await this.#policy([...rendered], {
          budget: window === null ? null : window - reserved - fixed,
          count,
          model: model.route,
          encoding: counter.encoding,
        });
        if (!Array.isArray(chosen)) {
          throw new ApiError(500, 'server_error', 'The context policy did not return an array of items.', { code: 'context_policy_error' });
        }
        rendered = chosen;
      }
    }
    return {
      items: await fitContextWindow(rendered, request.params, model),
      compaction,
      compactionUsage,
      compactionModel,
    };
  }

  /** The input tokens a request sends (POST /v1/responses/input_tokens): as prepared, without compacting. */
  async countInputTokens(
    items: Item[],
    request: Pick<CreateResponseRequest, 'model' | 'params'>,
    model: ResolvedModel,
  ): Promise<{ items: Item[]; tokens: number }> {
    const prepared = await this.prepare(items, { model: request.model, params: request.params }, model);
    return { items: prepared.items, tokens: await countInputTokens(prepared.items, request.params, model.modelId) };
  }

  /**
   * POST /v1/responses/compact: everything but system and developer messages is summarised into
   * one compaction item. The output is the context's system, developer and user messages, in
   * order, then that item (as OpenAI's compact answers its user messages then the item). The
   * item replaces nothing when sent back: the summary is read where it stands, after them.
   */
  async compact(items: Item[], request: { model: string; instructions: string | null }, signal?: AbortSignal): Promise<CompactResource> {
    this.#models.resolve(request.model); // unknown models are a 400 before anything else
    const rendered = renderCompactions(items);
    const summarise = rendered.filter((item) => !isPinned(item));
    if (summarise.length === 0) {
      throw invalidRequest('There is nothing to compact: send `input` or a `previous_response_id`.', 'input', 'missing_required_parameter');
    }
    const summary = await this.#summarise(summarise, request.model, request.instructions, signal);
    const compaction: CompactionItem = {
      type: 'compaction',
      id: newId('cmp'),
      encrypted_content: sealCompaction({ summary: summary.text, through: null }),
    };
    const kept = rendered.filter((item) => isPinned(item) || (item.type === 'message' && item.role === 'user'));
    return {
      id: newId('resp'),
      object: 'response.compaction',
      created_at: nowSeconds(),
      output: [...kept, compaction].map(toClientItem),
      usage: summary.usage ?? emptyUsage(),
    };
  }

  /** One non-streaming call of the compaction model on the transcript of `items`. */
  async #summarise(items: Item[], requestModel: string, instructions: string | null, signal?: AbortSignal): Promise<Summary> {
    const model = this.#models.resolve(this.#compaction?.model ?? requestModel);
    let system = this.#compaction?.instructions ?? DEFAULT_COMPACTION_INSTRUCTIONS;
    if (instructions) system += `\n\nThe conversation ran under these instructions:\n${instructions}`;
    const prompt: LanguageModelV4Prompt = [
      { role: 'system', content: system },
      { role: 'user', content: [{ type: 'text', text: transcript(items) }] },
    ];
    const assembler = new OutputAssembler(null);
    let served: ResolvedModel;
    try {
      const call = await startResilientCall(this.#models, model, {
        prompt,
        options: {},
        params: SUMMARY_PARAMS,
        stream: false,
        ...(signal ? { signal } : {}),
      });
      served = call.served;
      for await (const part of call.parts) {
        const problem = assembler.push(part);
        if (problem) throw problem.error;
      }
    } catch (error) {
      throw compactionFailed(toUpstreamError(error, signal));
    }
    const text = assembler.output
      .flatMap((item) => (item.type === 'message' ? item.content : []))
      .map((part) => (part.type === 'output_text' ? part.text : ''))
      .join('')
      .trim();
    if (text.length === 0) {
      throw new ApiError(502, 'server_error', `Compaction failed: the compaction model ${model.route} returned no summary.`, {
        code: 'compaction_failed',
      });
    }
    return { text, usage: assembler.usage, served };
  }
}

function compactionFailed(error: ApiError): ApiError {
  if (error.status === 499) return error;
  return new ApiError(error.status, error.type, `Compaction failed: ${error.message}`, {
    param: error.param,
    code: error.code,
    headers: error.headers,
    cause: error,
  });
}
