// The context policy hook: a library user's own strategy for what of a long history reaches the
// model. It runs on every turn after compaction items are rendered and before the window check
// (`truncation`), so whatever it returns must still fit the model or be truncated.

import type { Item } from '../protocol/types.ts';
import type { EncodingName } from './tokens.ts';
import { isPinned } from './compaction.ts';
import { turnGroups } from './truncation.ts';

export interface ContextPolicyInfo {
  /**
   * Tokens the items may cost: the model's context_window minus the output reserve, the
   * instructions, the tool definitions and the reply priming. Null when the window is unknown.
   */
  budget: number | null;
  /** An item's tokens as Parley counts them for this model (exact for OpenAI models, else an estimate). */
  count(item: Item): number;
  /** The model as routed, e.g. `openai/gpt-4o-mini`. */
  model: string;
  encoding: EncodingName | 'estimate';
}

/**
 * Returns the items to send, in order, built from `items` (the full context: history then the new
 * input, system and developer messages included). Never mutate the items. Removing a
 * `function_call` without its `function_call_output` (or the reverse) makes the turn a 400.
 */
export type ContextPolicy = (items: Item[], info: ContextPolicyInfo) => Item[] | Promise<Item[]>;

/**
 * A ready-made policy: the newest `turns` whole turns (a user message and everything up to the
 * next one, tool calls with their results), plus every system and developer message and every
 * item `pin` selects, all in their original order.
 */
export function lastTurns(turns: number, options: { pin?: (item: Item) => boolean } = {}): ContextPolicy {
  if (!Number.isInteger(turns) || turns < 1) throw new RangeError(`lastTurns: turns must be a positive integer, got ${turns}`);
  const pin = options.pin ?? (() => false);
  return (items) => {
    const groups = turnGroups(items);
    const keep = new Set<number>(groups.slice(-turns).flat());
    return items.filter((item, i) => keep.has(i) || isPinned(item) || pin(item));
  };
}
