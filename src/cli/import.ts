// `parley import FILE` (or `-` for stdin): writes an export file's records into the configured store,
// losslessly (ids, timestamps, statuses, usage, tenants and users kept). Records whose id exists
// already are skipped and counted, never overwritten, so importing the same file twice is harmless
// and an interrupted import can simply be run again.
//
// A file is read twice, streaming both times: first every line is checked (JSON, record shapes,
// header, end line and its counts), and only a file without a problem is imported: a bad line 90,000
// of a file leaves the store untouched. Stdin can be read once only, so there the lines are checked as
// they are imported, and a bad line stops the import after the records before it.

import { access } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { ExportFileError, readExport } from './export-format.ts';
import {
  CommandError,
  loadStorageConfig,
  plural,
  runCommand,
  type StoreCommandOptions,
  UsageError,
  withStore,
} from './store-command.ts';

export interface ImportOptions extends StoreCommandOptions {
  /** A path, or `-` for `stdin`. */
  file?: string;
  /** What `-` reads; default process.stdin. */
  stdin?: Readable;
}

export function importCommand(options: ImportOptions = {}): Promise<number> {
  return runCommand('import', options, async (stdout) => {
    const file = options.file;
    if (file === undefined || file === '') {
      throw new UsageError('name the file to import (a `parley export` file), or - to read stdin.');
    }
    const fromStdin = file === '-';
    const name = fromStdin ? 'stdin' : file;
    if (!fromStdin) {
      try {
        await access(file);
      } catch (error) {
        throw new CommandError(`${file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`);
      }
    }
    const { storage, source } = await loadStorageConfig('import', options);
    if (storage.type === 'memory') {
      throw new CommandError(
        `${source}: state_storage.type is memory, which lives inside one process: whatever is imported is gone when \`parley import\` exits. ` +
          'Import into a persistent store (sqlite, postgres, redis), or from the library with importRecords().',
      );
    }
    const located = (error: unknown): never => {
      if (error instanceof ExportFileError) throw new CommandError(`${name}: ${error.message}`);
      throw error;
    };
    if (!fromStdin) {
      // The check pass: nothing is opened or written until the whole file is known to be good.
      try {
        for await (const _record of readExport(file));
      } catch (error) {
        located(error);
      }
    }
    return withStore(storage, source, async ({ store }) => {
      const records = readExport(fromStdin ? (options.stdin ?? process.stdin) : file);
      let summary: Awaited<ReturnType<typeof store.importRecords>>;
      try {
        summary = await store.importRecords(records);
      } catch (error) {
        if (fromStdin && error instanceof ExportFileError) {
          throw new CommandError(
            `${name}: ${error.message}. The records before it may have been imported; fix the file and import it again (records already there are skipped).`,
          );
        }
        return located(error);
      }
      stdout.write(
        `Imported ${plural(summary.responses, 'response')} and ${plural(summary.conversations, 'conversation')} into ${store.description}` +
          `; skipped ${plural(summary.skipped, 'record')} whose id already existed.\n`,
      );
      return 0;
    });
  });
}
