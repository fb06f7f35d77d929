// `parley export` and `parley import` on SQLite, as real processes: the file format (header, records
// in export order, end line), lossless import, idempotent re-import, the filters, stdin, and bad files
// reported with their line numbers while the store stays untouched.

import assert from 'node:assert/strict';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EXPORT_FORMAT, EXPORT_FORMAT_VERSION } from '../../src/cli/export-format.ts';
import { parseSince } from '../../src/cli/export.ts';
import { importCommand } from '../../src/cli/import.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { ConversationStore, ExportFilter } from '../../src/store/types.ts';
import { collectExport, exportAll, seedVariedStore, VARIED_STORE_COUNTS } from '../store-contract/suite.ts';
import { runCli, writeStorageConfig } from './run-cli.ts';

let dir: string;
let sourcePath: string;
let sourceConfig: string;
let exportFile: string;
let counter = 0;

async function withSqlite<T>(path: string, body: (store: ConversationStore) => Promise<T>): Promise<T> {
  const store = new SqliteStore({ path, ttlSeconds: null });
  await store.open();
  try {
    return await body(store);
  } finally {
    await store.close();
  }
}

/** A config for a new, empty SQLite file. */
async function emptyStore(): Promise<{ path: string; config: string }> {
  const path = join(dir, `target-${++counter}.db`);
  return { path, config: await writeStorageConfig(dir, `target-${counter}`, { type: 'sqlite', path }) };
}

const lines = async (file: string) =>
  (await readFile(file, 'utf8'))
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

/** Records as they look after a trip through JSON (what the file must hold). */
const asJson = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'parley-export-'));
  sourcePath = join(dir, 'source.db');
  sourceConfig = await writeStorageConfig(dir, 'source', { type: 'sqlite', path: sourcePath });
  await withSqlite(sourcePath, (store) => seedVariedStore(store));
  exportFile = join(dir, 'export.jsonl');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('parley export', () => {
  it('writes JSON Lines: the header, every record in export order, the end line with counts', async () => {
    const { code, stderr } = await runCli(['export', '--config', sourceConfig], { stdoutFile: exportFile });
    assert.equal(code, 0, stderr);
    assert.match(stderr, /Exported 13 responses and 3 conversations from sqlite/);
    const [header, ...rest] = await lines(exportFile);
    const end = rest.pop();
    assert.equal(header.type, EXPORT_FORMAT);
    assert.equal(header.version, EXPORT_FORMAT_VERSION);
    assert.ok(Math.abs(Date.parse(header.exported_at as string) - Date.now()) < 600_000, 'exported_at is an ISO time');
    assert.match(header.source as string, /^sqlite/);
    assert.deepEqual(header.filter, {});
    assert.deepEqual(end, { type: 'end', ...VARIED_STORE_COUNTS });
    assert.deepEqual(rest, asJson(await withSqlite(sourcePath, (store) => collectExport(store))));
  });

  it('applies --conversation, --tenant and --since (a date, unix seconds, a duration ago)', async () => {
    const all = await withSqlite(sourcePath, (store) => collectExport(store));
    const conversationId = all.flatMap((r) => (r.type === 'conversation' && r.items.length > 3 ? [r.conversation.id] : []))[0];
    const cases: [string[], ExportFilter][] = [
      [['--conversation', conversationId], { conversationId }],
      [['--tenant', 'acme'], { tenant: 'acme' }],
      [['--since', '2025-06-16'], { since: Date.parse('2025-06-16T00:00:00Z') / 1000 }],
      [['--since', '1750000050', '--tenant', 'acme'], { since: 1_750_000_050, tenant: 'acme' }],
    ];
    for (const [args, filter] of cases) {
      const file = join(dir, `filtered-${++counter}.jsonl`);
      const { code, stderr } = await runCli(['export', '--config', sourceConfig, ...args], { stdoutFile: file });
      assert.equal(code, 0, stderr);
      const [header, ...rest] = await lines(file);
      rest.pop();
      assert.deepEqual(header.filter, filter, args.join(' '));
      const expected = await withSqlite(sourcePath, (store) => collectExport(store, filter));
      assert.ok(expected.length > 0 && expected.length < all.length, `${args.join(' ')} keeps some records`);
      assert.deepEqual(rest, asJson(expected), args.join(' '));
    }
    const recent = await withSqlite(sourcePath, (store) => collectExport(store, { since: parseSince('1d') }));
    assert.equal(recent.length, all.length - 2, 'the two records created in 2025 are older than a day');
  });

  it('parses --since forms and rejects others', async () => {
    assert.equal(parseSince('1750000000'), 1_750_000_000);
    assert.equal(parseSince('2026-01-31'), Date.parse('2026-01-31T00:00:00Z') / 1000);
    assert.equal(parseSince('2026-01-31T12:00:00Z'), Date.parse('2026-01-31T12:00:00Z') / 1000);
    assert.equal(parseSince('2026-01-31T12:00:00+02:00'), Date.parse('2026-01-31T10:00:00Z') / 1000);
    assert.equal(parseSince('7d', 1_000_000), 1_000_000 - 7 * 86_400);
    assert.equal(parseSince('1h30m', 1_000_000), 1_000_000 - 5400);
    for (const bad of ['yesterday', '', '2026-13-45', 'd7', '-5']) assert.throws(() => parseSince(bad), /--since must be/);
    const { code, stderr } = await runCli(['export', '--config', sourceConfig, '--since', 'last week']);
    assert.equal(code, 2);
    assert.match(stderr, /--since must be a date/);
  });
});

describe('parley import', () => {
  it('imports an export losslessly and prints the summary; importing again skips every record', async () => {
    const target = await emptyStore();
    const first = await runCli(['import', '--config', target.config, exportFile]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /Imported 13 responses and 3 conversations into sqlite .*; skipped 0 records whose id already existed/);
    const expected = await withSqlite(sourcePath, (store) => exportAll(store));
    assert.deepEqual(await withSqlite(target.path, (store) => exportAll(store)), expected);
    const again = await runCli(['import', '--config', target.config, exportFile]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /Imported 0 responses and 0 conversations .*; skipped 16 records/);
    assert.deepEqual(await withSqlite(target.path, (store) => exportAll(store)), expected);
  });

  it('reads stdin with -', async () => {
    const target = await emptyStore();
    const { code, stdout, stderr } = await runCli(['import', '--config', target.config, '-'], { stdinFile: exportFile });
    assert.equal(code, 0, stderr);
    assert.match(stdout, /Imported 13 responses and 3 conversations/);
    assert.deepEqual(
      await withSqlite(target.path, (store) => exportAll(store)),
      await withSqlite(sourcePath, (store) => exportAll(store)),
    );
  });

  it('reports a bad file with its line number and imports nothing from it', async () => {
    const text = await readFile(exportFile, 'utf8');
    const good = text.split('\n').filter((line) => line !== '');
    const n = good.length; // header + 16 records + end
    const edit = (index: number, change: (record: Record<string, unknown>) => unknown) =>
      good.map((line, i) => (i === index ? JSON.stringify(change(JSON.parse(line) as Record<string, unknown>)) : line));
    const response = (record: Record<string, unknown>) => record.response as Record<string, unknown>;
    const cases: [string, string[], RegExp][] = [
      ['bad JSON', good.map((line, i) => (i === 3 ? line.slice(0, 40) : line)), /line 4: not valid JSON/],
      ['unknown field', edit(2, (r) => ({ ...r, response: { ...response(r), surprise: 1 } })), /line 3: response\.surprise: unknown field/],
      ['missing field', edit(1, (r) => { delete response(r).model; return r; }), /line 2: response\.model is missing/],
      ['bad status', edit(5, (r) => ({ ...r, response: { ...response(r), status: 'done' } })), /line 6: response\.status must be one of/],
      ['bad item', edit(4, (r) => ({ ...r, response: { ...response(r), input: [{ text: 'no type' }] } })), /line 5: response\.input\[0\] must be an item/],
      ['bad conversation', edit(n - 2, (r) => ({ ...r, items: 'none' })), new RegExp(`line ${n - 1}: items must be a list of items`)],
      ['unknown record', edit(3, () => ({ type: 'user', id: 'u' })), /line 4: unknown record type the string "user"/],
      ['no header', good.slice(1), /line 1: not a Parley export/],
      ['newer version', edit(0, (h) => ({ ...h, version: 2 })), /line 1: format version 2 was written by a newer Parley/],
      ['cut short', good.slice(0, 6), /line 6: the file ends without its end line/],
      ['end line counts', edit(n - 1, (e) => ({ ...e, responses: 12 })), /the end line counts 12 response\(s\) and 3 conversation\(s\), but the file holds 13 and 3/],
      ['after the end', [...good, good[1]], new RegExp(`line ${n + 1}: a line after the end line`)],
      ['response after a conversation', [...good.slice(0, n - 1), good[1], good[n - 1]], new RegExp(`line ${n}: a response after a conversation`)],
      ['empty', [], /the file is empty/],
    ];
    const target = await emptyStore();
    for (const [name, content, expected] of cases) {
      const file = join(dir, `bad-${++counter}.jsonl`);
      await writeFile(file, content.map((line) => `${line}\n`).join(''));
      let stdout = '';
      let stderr = '';
      const code = await importCommand({
        configPath: target.config,
        file,
        stdout: { write: (t: string) => (stdout += t) },
        stderr: { write: (t: string) => (stderr += t) },
      });
      assert.equal(code, 1, name);
      assert.equal(stdout, '', name);
      assert.ok(stderr.startsWith(`${file}: line `), `${name}: names the file and line: ${stderr}`);
      assert.match(stderr, expected, name);
    }
    // The check pass runs before the store is opened: the target file was never even created.
    await assert.rejects(readFile(target.path));
    // And as a process: exit code 1, the message on stderr.
    const file = join(dir, `bad-${++counter}.jsonl`);
    await writeFile(file, `${good.slice(0, 7).join('\n')}\n{"type":"response",\n${good.slice(7).join('\n')}\n`);
    const { code, stdout, stderr } = await runCli(['import', '--config', target.config, file]);
    assert.equal(code, 1);
    assert.equal(stdout, '');
    assert.match(stderr, /line 8: not valid JSON/);
  });

  it('from stdin, a bad line stops the import and says the records before it may be in; a fixed file completes it', async () => {
    const good = (await readFile(exportFile, 'utf8')).split('\n').filter((line) => line !== '');
    const file = join(dir, 'bad-stdin.jsonl');
    await writeFile(file, `${[...good.slice(0, 5), 'not json', ...good.slice(5)].join('\n')}\n`);
    const target = await emptyStore();
    const bad = await runCli(['import', '--config', target.config, '-'], { stdinFile: file });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /stdin: line 6: not valid JSON.*may have been imported/);
    const fixed = await runCli(['import', '--config', target.config, exportFile]);
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.deepEqual(
      await withSqlite(target.path, (store) => exportAll(store)),
      await withSqlite(sourcePath, (store) => exportAll(store)),
    );
  });

  it('refuses memory stores, a missing file and a missing argument', async () => {
    const memory = await writeStorageConfig(dir, 'memory', { type: 'memory' });
    const exported = await runCli(['export', '--config', memory]);
    assert.equal(exported.code, 1);
    assert.equal(exported.stdout, '');
    assert.match(exported.stderr, /memory, which lives inside one process: a new process has nothing to export/);
    const imported = await runCli(['import', '--config', memory, exportFile]);
    assert.equal(imported.code, 1);
    assert.match(imported.stderr, /memory, which lives inside one process/);
    const missing = await runCli(['import', '--config', sourceConfig, join(dir, 'nope.jsonl')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope\.jsonl: cannot be read \(ENOENT\)/);
    const none = await runCli(['import', '--config', sourceConfig]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /name the file to import/);
  });
});
