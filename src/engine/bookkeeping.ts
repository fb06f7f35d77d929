// Conversation bookkeeping: what a turn costs by the configured price table, usage sums, and the
// conversation details object (Parley extension) that shows a conversation's running totals.
// The store keeps the totals (TurnResult.costUsd is added in the transaction that appends a turn);
// this module only computes and presents them.

import type { ModelPricing } from '../config/types.ts';
import type { Usage } from '../protocol/types.ts';
import type { StoredConversation } from '../store/types.ts';

/**
 * USD for one call's usage: uncached input, cached input (at `cached_input_per_million`, else the
 * input price) and output (reasoning tokens are output tokens). Null when the model is unpriced or
 * the usage unknown.
 */
export function usageCost(usage: Usage | null, pricing: ModelPricing | null | undefined): number | null {
  if (!usage || !pricing) return null;
  const cached = Math.min(usage.input_tokens_details?.cached_tokens ?? 0, usage.input_tokens);
  const cachedPrice = pricing.cached_input_per_million ?? pricing.input_per_million;
  return (
    ((usage.input_tokens - cached) * pricing.input_per_million +
      cached * cachedPrice +
      usage.output_tokens * pricing.output_per_million) /
    1_000_000
  );
}

/** The sum of the known costs; null when none is known. */
export function sumCosts(...costs: (number | null)[]): number | null {
  let total: number | null = null;
  for (const cost of costs) if (cost !== null) total = (total ?? 0) + cost;
  return total;
}

/** Two calls' usage as one (a turn's answer plus its compaction pass). */
export function addUsage(a: Usage | null, b: Usage | null): Usage | null {
  if (!a) return b;
  if (!b) return a;
  return {
    input_tokens: a.input_tokens + b.input_tokens,
    output_tokens: a.output_tokens + b.output_tokens,
    total_tokens: a.total_tokens + b.total_tokens,
    input_tokens_details: {
      cached_tokens: (a.input_tokens_details?.cached_tokens ?? 0) + (b.input_tokens_details?.cached_tokens ?? 0),
    },
    output_tokens_details: {
      reasoning_tokens: (a.output_tokens_details?.reasoning_tokens ?? 0) + (b.output_tokens_details?.reasoning_tokens ?? 0),
    },
  };
}

/**
 * GET /v1/conversations/{id}/details (Parley extension) and `parley.conversations.details(id)`:
 * who a conversation belongs to and what it has cost so far.
 */
export interface ConversationDetails {
  id: string;
  object: 'conversation.details';
  created_at: number;
  /** Unix seconds of the last append or metadata change. */
  updated_at: number;
  user: string | null;
  metadata: Record<string, string>;
  /** Items ever appended (deleted items included: positions are never reused). */
  item_count: number;
  /** Running totals of the turns appended to it; cost by the price table in force at each turn. */
  usage: {
    turns: number;
    input_tokens: number;
    output_tokens: number;
    total_tokens: number;
    cost_usd: number;
  };
}

export function toConversationDetails(conversation: StoredConversation): ConversationDetails {
  const usage = conversation.usage;
  return {
    id: conversation.id,
    object: 'conversation.details',
    created_at: conversation.createdAt,
    updated_at: conversation.updatedAt,
    user: conversation.user,
    metadata: conversation.metadata,
    item_count: conversation.itemCount,
    usage: {
      turns: usage.turns,
      input_tokens: usage.input_tokens,
      output_tokens: usage.output_tokens,
      total_tokens: usage.total_tokens,
      cost_usd: usage.cost_usd,
    },
  };
}

/** DELETE /v1/users/{user} (Parley extension) and `parley.users.delete(user)`. */
export interface UserDataDeleted {
  object: 'user.data.deleted';
  user: string;
  deleted: true;
  responses: number;
  conversations: number;
}
