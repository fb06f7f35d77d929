// The `parley export` file: JSON Lines, streamed both ways (never the whole file in memory).
//
//   line 1     {"type":"parley-export","version":1,"exported_at":"2026-…Z","source":"sqlite (…)","filter":{…}}
//   then       {"type":"response","response":{…StoredResponse}}          responses first, parents before children
//              {"type":"conversation","conversation":{…},"items":[…]}    then conversations with their items
//   last line  {"type":"end","responses":N,"conversations":M}
//
// Records are the store contract's ExportRecord exactly (src/store/types.ts), so an import into any
// backend is lossless. The end line tells a finished export from a truncated one.

import { createReadStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type {
  ConversationStore,
  ConversationUsage,
  ExportFilter,
  ExportRecord,
  StoredConversation,
  StoredResponse,
} from '../store/types.ts';

export const EXPORT_FORMAT = 'parley-export';
export const EXPORT_FORMAT_VERSION = 1;

export interface ExportHeader {
  type: typeof EXPORT_FORMAT;
  version: number;
  /** ISO 8601. */
  exported_at: string;
  /** The store's description (never holds secrets). */
  source: string;
  /** The filter as given: `since` in unix seconds. */
  filter: ExportFilter;
}

export interface ExportEnd {
  type: 'end';
  responses: number;
  conversations: number;
}

/** Where export writes: process.stdout or a file stream (anything with write + 'drain'). */
export interface LineSink {
  write(chunk: string): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

const FLUSH_BYTES = 64 * 1024;

/**
 * Streams every record `store.exportRecords(filter)` yields to `sink` as JSON Lines, with the header
 * first and the end line last, honouring backpressure. Returns the counts written.
 */
export async function writeExport(
  store: ConversationStore,
  filter: ExportFilter,
  sink: LineSink,
  now: Date = new Date(),
): Promise<ExportEnd> {
  const header: ExportHeader = {
    type: EXPORT_FORMAT,
    version: EXPORT_FORMAT_VERSION,
    exported_at: now.toISOString(),
    source: store.description,
    filter,
  };
  let buffer = `${JSON.stringify(header)}\n`;
  const flush = async () => {
    if (buffer === '') return;
    const ok = sink.write(buffer);
    buffer = '';
    if (!ok) await once(sink as unknown as NodeJS.EventEmitter, 'drain');
  };
  const end: ExportEnd = { type: 'end', responses: 0, conversations: 0 };
  for await (const record of store.exportRecords(filter)) {
    if (record.type === 'response') end.responses++;
    else end.conversations++;
    buffer += `${JSON.stringify(record)}\n`;
    if (buffer.length >= FLUSH_BYTES) await flush();
  }
  buffer += `${JSON.stringify(end)}\n`;
  await flush();
  return end;
}

/** A problem in an export file, with its 1-based line number. */
export class ExportFileError extends Error {
  readonly line: number;
  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`);
    this.name = 'ExportFileError';
    this.line = line;
  }
}

export interface ReadExportOptions {
  /** Called with the header once line 1 has been checked. */
  onHeader?: (header: ExportHeader) => void;
  /** Called with the end line once the whole file has been checked. */
  onEnd?: (end: ExportEnd) => void;
}

/**
 * Reads an export file (a path, or a stream such as stdin) line by line and yields its records,
 * checked one by one: the header, each record's shape, the end line and its counts. Throws
 * ExportFileError at the first problem. Blank lines are ignored; CRLF is accepted.
 */
export async function* readExport(
  source: string | Readable,
  options: ReadExportOptions = {},
): AsyncGenerator<ExportRecord> {
  const input = typeof source === 'string' ? createReadStream(source) : source;
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let lineNumber = 0;
  let lastLine = 0;
  let header: ExportHeader | null = null;
  let end: ExportEnd | null = null;
  let endLine = 0;
  const counts = { responses: 0, conversations: 0 };
  try {
    for await (const raw of lines) {
      lineNumber++;
      const text = raw.trim();
      if (text === '') continue;
      lastLine = lineNumber;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        throw new ExportFileError(lineNumber, `not valid JSON (${(error as Error).message})`);
      }
      if (header === null) {
        header = checkHeader(value, lineNumber);
        options.onHeader?.(header);
        continue;
      }
      if (end !== null) {
        throw new ExportFileError(lineNumber, `a line after the end line (line ${endLine})`);
      }
      if (isObject(value) && value.type === 'end') {
        end = checkEnd(value, lineNumber, counts);
        endLine = lineNumber;
        continue;
      }
      const problem = checkRecord(value);
      if (problem !== null) throw new ExportFileError(lineNumber, problem);
      const record = value as ExportRecord;
      if (record.type === 'response') {
        if (counts.conversations > 0) {
          throw new ExportFileError(lineNumber, 'a response after a conversation (responses come first)');
        }
        counts.responses++;
      } else counts.conversations++;
      yield record;
    }
  } finally {
    lines.close();
    if (typeof source === 'string') input.destroy();
  }
  if (header === null) throw new ExportFileError(1, `the file is empty: expected the ${EXPORT_FORMAT} header line`);
  if (end === null) {
    throw new ExportFileError(
      lastLine,
      'the file ends without its end line ({"type":"end",…}): the export did not finish, or the file was cut short',
    );
  }
  options.onEnd?.(end);
}

// ---------- checks ----------

type Check = (value: unknown) => string | null;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const describe = (value: unknown): string =>
  value === null ? 'null' : Array.isArray(value) ? 'a list' : typeof value === 'string' ? `the string ${JSON.stringify(value).slice(0, 40)}` : `${typeof value} ${JSON.stringify(value)?.slice(0, 40)}`;

const string: Check = (v) => (typeof v === 'string' ? null : `must be a string, not ${describe(v)}`);
const nonEmptyString: Check = (v) => (typeof v === 'string' && v !== '' ? null : `must be a non-empty string, not ${describe(v)}`);
const number: Check = (v) => (typeof v === 'number' && Number.isFinite(v) ? null : `must be a number, not ${describe(v)}`);
const count: Check = (v) => (Number.isSafeInteger(v) && (v as number) >= 0 ? null : `must be a whole number >= 0, not ${describe(v)}`);
const object: Check = (v) => (isObject(v) ? null : `must be an object, not ${describe(v)}`);
const nullable =
  (check: Check): Check =>
  (v) =>
    v === null ? null : check(v);
const oneOf =
  (values: readonly string[]): Check =>
  (v) =>
    typeof v === 'string' && values.includes(v) ? null : `must be one of ${values.join(', ')}, not ${describe(v)}`;
const items: Check = (v) => {
  if (!Array.isArray(v)) return `must be a list of items, not ${describe(v)}`;
  for (let i = 0; i < v.length; i++) {
    const item = v[i] as unknown;
    if (!isObject(item) || typeof item.type !== 'string') return `[${i}] must be an item (an object with a "type")`;
  }
  return null;
};
const stringMap: Check = (v) => {
  if (!isObject(v)) return `must be an object of strings, not ${describe(v)}`;
  for (const [key, value] of Object.entries(v)) {
    if (typeof value !== 'string') return `.${key} must be a string, not ${describe(value)}`;
  }
  return null;
};

/** Every field of the record type, so a field added to the contract must be added here too. */
type Fields<T> = { [K in keyof T]-?: Check };

const usageFields: Fields<ConversationUsage> = {
  input_tokens: count,
  output_tokens: count,
  total_tokens: count,
  cost_usd: number,
  turns: count,
};

const fields =
  <T>(shape: Fields<T>): Check =>
  (v) => {
    if (!isObject(v)) return `must be an object, not ${describe(v)}`;
    return checkFields(v, shape as Record<string, Check>);
  };

const responseFields: Fields<StoredResponse> = {
  id: nonEmptyString,
  tenant: nonEmptyString,
  user: nullable(string),
  previousResponseId: nullable(nonEmptyString),
  conversationId: nullable(nonEmptyString),
  model: string,
  status: oneOf(['queued', 'in_progress', 'completed', 'incomplete', 'failed', 'cancelled']),
  createdAt: number,
  completedAt: nullable(number),
  expiresAt: nullable(number),
  params: object,
  input: items,
  output: items,
  usage: nullable(object),
  error: nullable(object),
  incompleteDetails: nullable(object),
};

const conversationFields: Fields<StoredConversation> = {
  id: nonEmptyString,
  tenant: nonEmptyString,
  createdAt: number,
  metadata: stringMap,
  user: nullable(string),
  itemCount: count,
  expiresAt: nullable(number),
  usage: fields(usageFields),
  updatedAt: number,
};

/** Checks each field, and that there is no other (a field this version does not know would be lost). */
function checkFields(value: Record<string, unknown>, shape: Record<string, Check>): string | null {
  for (const [key, check] of Object.entries(shape)) {
    if (!Object.hasOwn(value, key)) return `.${key} is missing`;
    const problem = check(value[key]);
    if (problem !== null) return `.${key}${problem.startsWith('.') || problem.startsWith('[') ? '' : ' '}${problem}`;
  }
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(shape, key)) {
      return `.${key}: unknown field (written by a newer Parley? importing it would lose it)`;
    }
  }
  return null;
}

/** Null when `value` is a well-formed ExportRecord, else what is wrong with it. */
export function checkRecord(value: unknown): string | null {
  if (!isObject(value)) return `expected a record object, not ${describe(value)}`;
  const prefix = (problem: string | null, path: string) => (problem === null ? null : `${path}${problem.startsWith('.') || problem.startsWith('[') ? '' : ' '}${problem}`);
  switch (value.type) {
    case 'response':
      return (
        checkFields(value, { type: () => null, response: () => null }) ??
        prefix(fields(responseFields)(value.response), 'response')
      );
    case 'conversation':
      return (
        checkFields(value, { type: () => null, conversation: () => null, items: () => null }) ??
        prefix(fields(conversationFields)(value.conversation), 'conversation') ??
        prefix(items(value.items), 'items')
      );
    case EXPORT_FORMAT:
      return 'a second header line';
    default:
      return `unknown record type ${describe(value.type)} (expected response, conversation or end)`;
  }
}

function checkHeader(value: unknown, line: number): ExportHeader {
  if (!isObject(value) || value.type !== EXPORT_FORMAT) {
    throw new ExportFileError(
      line,
      `not a Parley export: the first line must be the header {"type":"${EXPORT_FORMAT}","version":${EXPORT_FORMAT_VERSION},…}`,
    );
  }
  if (value.version !== EXPORT_FORMAT_VERSION) {
    throw new ExportFileError(
      line,
      typeof value.version === 'number' && value.version > EXPORT_FORMAT_VERSION
        ? `format version ${value.version} was written by a newer Parley; this one reads version ${EXPORT_FORMAT_VERSION}: upgrade Parley to import it`
        : `unsupported format version ${describe(value.version)} (this Parley reads version ${EXPORT_FORMAT_VERSION})`,
    );
  }
  return value as unknown as ExportHeader;
}

function checkEnd(
  value: Record<string, unknown>,
  line: number,
  counts: { responses: number; conversations: number },
): ExportEnd {
  const problem = checkFields(value, { type: () => null, responses: count, conversations: count });
  if (problem !== null) throw new ExportFileError(line, `end line: ${problem}`);
  const end = value as unknown as ExportEnd;
  if (end.responses !== counts.responses || end.conversations !== counts.conversations) {
    throw new ExportFileError(
      line,
      `the end line counts ${end.responses} response(s) and ${end.conversations} conversation(s), ` +
        `but the file holds ${counts.responses} and ${counts.conversations}: lines were lost or added`,
    );
  }
  return end;
}
