// Context-window policy: what `truncation: auto` drops when a conversation outgrows the model.
// A pure function over items, so later policies (compaction, a user hook) can wrap or replace it.

import type { Item } from '../protocol/types.ts';

/**
 * Drops the oldest whole turns until `items` cost at most `budget` tokens, and returns what is
 * kept, in the original order.
 *
 * - A turn starts at a user message and runs until the next one, so an assistant's reply, its
 *   reasoning, a `function_call` and the `function_call_output` answering it leave together.
 *   Turns are also merged whenever an output answers a call made in an earlier turn, so a
 *   call/result pair is never split whatever the order of the items.
 * - System and developer messages are always kept, in place.
 * - The newest turn is never dropped. When it alone is over budget the result is still over
 *   budget: the caller decides what that means (an error, or compaction).
 *
 * `count` is the cost of one item; it is called once per item.
 */
export function truncateToFit(items: readonly Item[], budget: number, count: (item: Item) => number): Item[] {
  const costs = items.map(count);
  let total = 0;
  for (const cost of costs) total += cost;
  if (total <= budget) return [...items];

  const groups = turnGroups(items);
  const dropped = new Uint8Array(items.length);
  // Every group but the newest may go, oldest first.
  for (let g = 0; g < groups.length - 1 && total > budget; g++) {
    for (const index of groups[g]) {
      dropped[index] = 1;
      total -= costs[index];
    }
  }
  return items.filter((_, i) => dropped[i] === 0);
}

/**
 * Indexes of the droppable items, grouped by turn, oldest first; pinned items belong to no group.
 * Each group is a contiguous run of the unpinned items. Compaction splits on the same groups.
 */
export function turnGroups(items: readonly Item[]): number[][] {
  // group[i] is the turn of item i, or -1 when it is pinned.
  const group = new Int32Array(items.length);
  const callTurn = new Map<string, number>();
  let turn = 0;
  let sawUser = false;
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (item.type === 'message' && (item.role === 'system' || item.role === 'developer')) {
      group[i] = -1;
      continue;
    }
    if (item.type === 'message' && item.role === 'user') {
      if (sawUser) turn++;
      sawUser = true;
    }
    group[i] = turn;
    if (item.type === 'function_call') callTurn.set(item.call_id, turn);
    else if (item.type === 'function_call_output') {
      const from = callTurn.get(item.call_id);
      // An answer to a call from an earlier turn: everything from that turn on becomes one turn.
      if (from !== undefined && from < turn) {
        for (let j = 0; j < i; j++) if (group[j] >= from) group[j] = from;
        for (const [id, t] of callTurn) if (t > from) callTurn.set(id, from);
        group[i] = from;
        turn = from;
      }
    }
  }
  const groups: number[][] = [];
  const byTurn = new Map<number, number[]>();
  for (let i = 0; i < items.length; i++) {
    if (group[i] < 0) continue;
    let list = byTurn.get(group[i]);
    if (!list) {
      list = [];
      byTurn.set(group[i], list);
      groups.push(list);
    }
    list.push(i);
  }
  return groups;
}
