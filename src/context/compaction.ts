// Compaction as pure functions over items: where a compaction item stands in a context, which
// turns a new one summarises, and the transcript the compaction model reads. The engine
// (engine/context.ts) decides when to compact and calls the model.
//
// A compaction item is stored where it was produced (first in a turn's output, or wherever a client
// puts it) and records the id of the newest item it summarises (`through`). Rendering a context
// puts the latest compaction item in place of everything up to that item, so the history stays
// stored and listable while the model sees the summary plus the turns after it, verbatim.

import { openCompaction, SUMMARY_PREFIX } from '../protocol/compaction-content.ts';
import type { ContentPart, Item } from '../protocol/types.ts';
import { turnGroups } from './truncation.ts';

/** System and developer messages are never summarised or dropped. */
export function isPinned(item: Item): boolean {
  return item.type === 'message' && (item.role === 'system' || item.role === 'developer');
}

/**
 * The context as a model sees it: the latest compaction item replaces the items it covers (the
 * unpinned items up to and including its `through` item), taking the place of the first of them;
 * earlier compaction items are superseded and left out. Without a `through` found before it, the
 * compaction item stays where it is and nothing is dropped. Pinned items always stay in place.
 */
export function renderCompactions(items: readonly Item[]): Item[] {
  let last = -1;
  for (let i = items.length - 1; i >= 0; i--) {
    if (items[i].type === 'compaction') {
      last = i;
      break;
    }
  }
  if (last === -1) return [...items];
  const compaction = items[last];
  const through = compaction.type === 'compaction' ? (openCompaction(compaction)?.through ?? null) : null;
  let covered = -1;
  if (through !== null) {
    for (let i = last - 1; i >= 0; i--) {
      if (items[i].id === through) {
        covered = i;
        break;
      }
    }
  }
  const out: Item[] = [];
  let placed = false;
  for (let i = 0; i < last; i++) {
    const item = items[i];
    if (isPinned(item)) out.push(item);
    else if (item.type === 'compaction') continue;
    else if (i <= covered) {
      if (!placed) out.push(compaction);
      placed = true;
    } else out.push(item);
  }
  if (!placed) out.push(compaction);
  for (let i = last + 1; i < items.length; i++) out.push(items[i]);
  return out;
}

export interface CompactionPlan {
  /** The items to summarise, oldest first (unpinned, whole turns, tool calls with their results). */
  summarise: Item[];
  /** The newest of them that is not itself a compaction item: the new item's `through`. */
  through: string;
}

/**
 * Splits a rendered context into older turns to summarise and recent turns to keep verbatim: the
 * newest whole turns whose items cost at most `keepBudget` stay (the newest turn always does), the
 * rest is summarised. Null when there is nothing older to summarise (or only an earlier summary).
 */
export function planCompaction(
  items: readonly Item[],
  keepBudget: number,
  count: (item: Item) => number,
): CompactionPlan | null {
  const groups = turnGroups(items);
  if (groups.length < 2) return null;
  let kept = 1;
  let cost = 0;
  for (const index of groups[groups.length - 1]) cost += count(items[index]);
  while (kept < groups.length) {
    let next = 0;
    for (const index of groups[groups.length - 1 - kept]) next += count(items[index]);
    if (cost + next > keepBudget) break;
    cost += next;
    kept++;
  }
  const older = groups.slice(0, groups.length - kept).flat();
  if (older.length === 0) return null;
  const summarise = older.map((index) => items[index]);
  const newest = summarise.findLast((item) => item.type !== 'compaction');
  if (!newest) return null;
  return { summarise, through: newest.id };
}

/** What the compaction model is told, unless the config or the library gives instructions of its own. */
export const DEFAULT_COMPACTION_INSTRUCTIONS = [
  'You compact a conversation between a user and an AI assistant so that it can continue within a limited context window.',
  'Write a summary of the transcript you are given that keeps everything needed to continue the conversation:',
  "the user's goals and preferences, facts, names, numbers, decisions, tool calls and their results, open questions and commitments.",
  'If the transcript starts with an earlier summary, fold it in. Write concise notes in the language of the conversation,',
  'and nothing that is not in the transcript.',
].join(' ');

/**
 * The items as a plain-text transcript, one entry per item, blank lines between:
 * `user: …`, `assistant: …`, `assistant called get_weather({"city":"Paris"}) [call_1]`,
 * `get_weather [call_1] returned: …`, and an earlier summary as `earlier summary: …`. Reasoning is
 * left out (it is the model's own scratch work).
 */
export function transcript(items: readonly Item[]): string {
  const names = new Map<string, string>();
  const entries: string[] = [];
  for (const item of items) {
    switch (item.type) {
      case 'message':
        entries.push(`${item.role}: ${partsText(item.content)}`);
        break;
      case 'function_call':
        names.set(item.call_id, item.name);
        entries.push(`assistant called ${item.name}(${item.arguments}) [${item.call_id}]`);
        break;
      case 'function_call_output': {
        const output = typeof item.output === 'string' ? item.output : partsText(item.output);
        entries.push(`${names.get(item.call_id) ?? 'tool'} [${item.call_id}] returned: ${output}`);
        break;
      }
      case 'compaction':
        entries.push(`earlier summary: ${openCompaction(item)?.summary ?? ''}`);
        break;
      case 'reasoning':
        break;
    }
  }
  return entries.join('\n\n');
}

function partsText(parts: readonly ContentPart[]): string {
  return parts
    .map((part) => {
      switch (part.type) {
        case 'input_text':
        case 'output_text':
          return part.text;
        case 'refusal':
          return `(refused) ${part.refusal}`;
        case 'input_image':
          return '[image]';
        default:
          return `[file${part.filename ? ` ${part.filename}` : ''}]`;
      }
    })
    .join(' ');
}

/** The summary text a rendered compaction item shows the model (for tests and the CLI). */
export function summaryMessageText(summary: string): string {
  return SUMMARY_PREFIX + summary;
}
