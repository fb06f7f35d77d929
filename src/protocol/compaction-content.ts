// `encrypted_content` of compaction items. OpenAI's is an encrypted blob only OpenAI can read;
// Parley's is an opaque envelope around the summary, so the item replays to any provider (as a
// message carrying the summary) and a stateless client can send it back. Like the reasoning
// envelope it adds no secrecy of its own: clients must treat it as opaque, not as a format.

import type { CompactionItem } from './types.ts';

const PREFIX = 'parley.cmp.v1.';

export interface CompactionContent {
  /** The summary the compaction model wrote. */
  summary: string;
  /**
   * The id of the newest item the summary covers. In a context, the items up to and including it
   * (the nearest one with that id before the compaction item) are what the summary replaces; null,
   * or an id no longer in the context, replaces nothing (POST /v1/responses/compact output, whose
   * client sends only what it got back).
   */
  through: string | null;
}

export function sealCompaction(content: CompactionContent): string {
  return PREFIX + Buffer.from(JSON.stringify(content), 'utf8').toString('base64url');
}

/** The content of a Parley compaction item; null when it is not Parley's (or damaged). */
export function openCompaction(item: Pick<CompactionItem, 'encrypted_content'>): CompactionContent | null {
  const value = item.encrypted_content;
  if (typeof value !== 'string' || !value.startsWith(PREFIX)) return null;
  try {
    const parsed = JSON.parse(Buffer.from(value.slice(PREFIX.length), 'base64url').toString('utf8')) as Partial<CompactionContent>;
    if (typeof parsed.summary !== 'string') return null;
    return { summary: parsed.summary, through: typeof parsed.through === 'string' ? parsed.through : null };
  } catch {
    return null;
  }
}

/** Opens the text a compaction item becomes in the prompt: a user message, for every provider. */
export const SUMMARY_PREFIX = 'Summary of the earlier conversation:\n\n';

export function compactionText(item: Pick<CompactionItem, 'encrypted_content'>): string {
  return SUMMARY_PREFIX + (openCompaction(item)?.summary ?? '');
}
