// Fits a turn's context into the model's context window (ProviderConfig.context_window) according
// to the request's `truncation`:
//
// - The budget for the items is the window minus `max_output_tokens` (the request's, else the
//   model's configured reserve), the instructions, the tool definitions and the reply priming.
// - `auto`: the oldest whole turns are dropped (truncateToFit) until the rest fits.
// - `disabled`: a context that does not fit is a 400 `context_length_exceeded`, before anything
//   is stored or sent upstream.
// - Unknown window (`context_window` not configured): nothing is counted or dropped; an
//   over-long context then fails at the provider, whose error is passed on.
//
// Counting is skipped when a cheap upper bound (UTF-8 bytes) already fits, so a conversation well
// inside its window costs no tokenization.

import { invalidRequest } from '../protocol/errors.ts';
import type { FunctionTool, Item } from '../protocol/types.ts';
import { countRequestTokens, itemTokenUpperBound, REPLY_PRIMING, type TokenCounter, tokenCounterFor } from './tokens.ts';
import { truncateToFit } from './truncation.ts';

export interface WindowRequest {
  instructions: string | null;
  tools: readonly FunctionTool[];
  max_output_tokens: number | null;
  truncation: 'auto' | 'disabled';
}

export interface WindowModel {
  /** The provider's model id, which picks the tokenizer. */
  modelId: string;
  contextWindow: number | null;
  /** Reserved for the answer when the request sets no max_output_tokens. */
  maxOutputTokens?: number | null;
}

export async function fitContextWindow(items: Item[], request: WindowRequest, model: WindowModel): Promise<Item[]> {
  const window = model.contextWindow;
  if (window === null) return items;
  const reserved = request.max_output_tokens ?? model.maxOutputTokens ?? 0;

  let bound = REPLY_PRIMING + (request.instructions ? Buffer.byteLength(request.instructions, 'utf8') + 10 : 0);
  for (const tool of request.tools) bound += 9 + Buffer.byteLength(JSON.stringify(tool), 'utf8');
  for (const item of items) bound += itemTokenUpperBound(item);
  if (bound + reserved <= window) return items;

  const counter = await tokenCounterFor(model.modelId);
  const fixed = REPLY_PRIMING + counter.instructions(request.instructions) + counter.tools(request.tools);
  const budget = window - reserved - fixed;
  const costs = new Map<Item, number>();
  const cost = (item: Item) => {
    let c = costs.get(item);
    if (c === undefined) {
      c = counter.item(item);
      costs.set(item, c);
    }
    return c;
  };
  let total = 0;
  for (const item of items) total += cost(item);
  if (total <= budget) return items;

  if (request.truncation === 'disabled') {
    throw contextLengthExceeded(fixed + total, window, reserved, counter, false);
  }
  const kept = truncateToFit(items, budget, cost);
  let keptTotal = 0;
  for (const item of kept) keptTotal += cost(item);
  if (keptTotal > budget) throw contextLengthExceeded(fixed + keptTotal, window, reserved, counter, true);
  return kept;
}

/** How many input tokens a request sends, as `fitContextWindow` counts them. */
export async function countInputTokens(
  items: readonly Item[],
  request: { instructions: string | null; tools: readonly FunctionTool[] },
  modelId: string,
): Promise<number> {
  const counter = await tokenCounterFor(modelId);
  return countRequestTokens(counter, { instructions: request.instructions, tools: request.tools, items });
}

function contextLengthExceeded(tokens: number, window: number, reserved: number, counter: TokenCounter, truncated: boolean) {
  const how = counter.encoding === 'estimate' ? 'about ' : '';
  const room = reserved > 0 ? `${window - reserved} tokens (a context window of ${window} minus max_output_tokens ${reserved})` : `${window} tokens`;
  return invalidRequest(
    truncated
      ? `The input does not fit the model's context window even after dropping every earlier turn: the newest turn, instructions and tools are ${how}${tokens} tokens, and the model accepts ${room}. Shorten the input or the tool definitions.`
      : `The input exceeds the model's context window: ${how}${tokens} tokens, and the model accepts ${room}. Send less, start a new conversation, or set truncation: 'auto' to drop the oldest turns.`,
    'input',
    'context_length_exceeded',
  );
}
