// `parley prune`: one retention pass over the configured store, then exit. Deletes responses and
// conversations whose expiry has passed (with their items) and marks turns left unfinished by a
// stopped instance `failed` (code `interrupted`). For cron jobs, or instead of the gateway's
// sweeper (`state_storage.prune_interval`). Safe while gateways run, on any number of them.

import { nowSeconds } from '../store/codec.ts';
import { DEFAULT_STALE_TURN_AFTER_SECONDS, runRetention } from '../store/retention.ts';
import type { ConversationStore } from '../store/types.ts';
import {
  durationOption,
  formatDuration,
  loadStorageConfig,
  plural,
  runCommand,
  type StoreCommandOptions,
  withStore,
} from './store-command.ts';

export interface PruneOptions extends StoreCommandOptions {
  /** Count what a prune would do; change nothing. */
  dryRun?: boolean;
  /** --stale-after: overrides state_storage.stale_turn_after (a duration such as `15m`). */
  staleAfter?: string;
}

/** Returns the exit code: 0 when the pass ran (or, with dryRun, was counted). */
export function pruneCommand(options: PruneOptions = {}): Promise<number> {
  return runCommand('prune', options, async (stdout) => {
    const staleOverride = options.staleAfter === undefined ? undefined : durationOption('stale-after', options.staleAfter);
    const { storage, source } = await loadStorageConfig('prune', options);
    const staleTurnAfterSeconds =
      staleOverride ?? storage.stale_turn_after_seconds ?? DEFAULT_STALE_TURN_AFTER_SECONDS;
    const stale = `unfinished for more than ${formatDuration(staleTurnAfterSeconds)}`;
    if (storage.type === 'memory') {
      stdout.write(
        'state_storage.type is memory: nothing persists between processes, so there is nothing to prune ' +
          '(a gateway on memory prunes its own store when state_storage.prune_interval is set).\n',
      );
      return 0;
    }
    return withStore(storage, source, async ({ store }) => {
      const now = nowSeconds();
      if (options.dryRun) {
        const expired = store.countExpired ? await store.countExpired(now) : null;
        const staleTurns = await countStaleTurns(store, now - staleTurnAfterSeconds);
        stdout.write(
          `${store.description}: dry run, nothing changed: ` +
            (expired === null
              ? 'expired records: not counted (this backend cannot count them without pruning)'
              : `${plural(expired, 'expired record')} would be pruned`) +
            `; ${plural(staleTurns, 'stale turn')} (${stale}) would be marked failed.\n`,
        );
        return 0;
      }
      const result = await runRetention(store, { staleTurnAfterSeconds, now });
      stdout.write(
        `${store.description}: pruned ${plural(result.pruned, 'expired record')} (responses and conversations, with their items); ` +
          `marked ${plural(result.failedStaleTurns, 'stale turn')} (${stale}) failed.\n`,
      );
      return 0;
    });
  });
}

/**
 * What failStaleTurns(before) would mark, through the export (which every backend has): a full
 * read of the store, acceptable for a dry run.
 */
async function countStaleTurns(store: ConversationStore, before: number): Promise<number> {
  let count = 0;
  for await (const record of store.exportRecords({})) {
    if (record.type !== 'response') break; // responses come first
    const { status, createdAt } = record.response;
    if ((status === 'queued' || status === 'in_progress') && createdAt < before) count++;
  }
  return count;
}
