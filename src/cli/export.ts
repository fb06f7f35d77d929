// `parley export [--conversation ID] [--since DATE] [--tenant T] > file.jsonl`: every record of the
// configured store (or those the filters keep) as JSON Lines on stdout (format: export-format.ts),
// streamed. Records written while the export runs may or may not be in it; gateways can keep
// serving. A summary goes to stderr, so stdout holds only the file.

import { parseDuration } from '../config/duration.ts';
import { nowSeconds } from '../store/codec.ts';
import type { ExportFilter } from '../store/types.ts';
import { type LineSink, writeExport } from './export-format.ts';
import {
  CommandError,
  loadStorageConfig,
  plural,
  runCommand,
  type StoreCommandOptions,
  UsageError,
  withStore,
} from './store-command.ts';

export interface ExportOptions extends StoreCommandOptions {
  conversation?: string;
  /** A date (`2026-01-31`, `2026-01-31T12:00:00Z`), unix seconds, or a duration ago (`7d`). */
  since?: string;
  tenant?: string;
  /** Where the file goes; default process.stdout. */
  sink?: LineSink;
}

export function exportCommand(options: ExportOptions = {}): Promise<number> {
  return runCommand('export', options, async (_stdout, stderr) => {
    const filter: ExportFilter = {};
    if (options.conversation !== undefined) {
      if (options.conversation === '') throw new UsageError('--conversation needs a conversation id (conv_…).');
      filter.conversationId = options.conversation;
    }
    if (options.tenant !== undefined) {
      if (options.tenant === '') throw new UsageError('--tenant needs a tenant name.');
      filter.tenant = options.tenant;
    }
    if (options.since !== undefined) filter.since = parseSince(options.since);
    const { storage, source } = await loadStorageConfig('export', options);
    if (storage.type === 'memory') {
      throw new CommandError(
        `${source}: state_storage.type is memory, which lives inside one process: a new process has nothing to export. ` +
          'Export from a persistent store (sqlite, postgres, redis), or from the library with writeExport().',
      );
    }
    const sink = options.sink ?? process.stdout;
    return withStore(storage, source, async ({ store }) => {
      const end = await writeExport(store, filter, sink);
      stderr.write(
        `Exported ${plural(end.responses, 'response')} and ${plural(end.conversations, 'conversation')} from ${store.description}.\n`,
      );
      return 0;
    });
  });
}

/** `--since` in unix seconds: an ISO 8601 date or date-time, unix seconds, or a duration ago. */
export function parseSince(value: string, now: number = nowSeconds()): number {
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/i.test(text)) {
    const ms = Date.parse(text);
    if (!Number.isNaN(ms)) return Math.floor(ms / 1000);
  }
  const ago = /^\d/.test(text) ? parseDuration(text) : null;
  if (ago !== null) return now - ago;
  throw new UsageError(
    `--since must be a date (2026-01-31, 2026-01-31T12:00:00Z), unix seconds, or a duration ago (7d, 12h), got '${value}'.`,
  );
}
