// The shared production store on PostgreSQL (node-postgres pool). Same layout as sqlite: one row
// per response, one row per item (each stored once, a turn writes only its own items); every hot
// operation is one statement, so one round trip: data-modifying CTEs instead of transactions.
// Many gateway instances may share one database: schema migrations take an advisory lock,
// conversation appends serialise on the conversation row, leases use the database clock.

import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { Item } from '../protocol/types.ts';
import {
  assembleChain,
  CHAIN_COLUMNS,
  type ChainRow,
  decodeItemData,
  decodeParams,
  decodeUsageOrNull,
  defineLazyParams,
  effectiveExpiry,
  encodeItemData,
  encodeParams,
  encodeUsageOrNull,
  INTERRUPTED_ERROR,
  jsonOrNull,
  MAX_CHAIN_DEPTH,
  nowSeconds,
  parseOrNull,
} from './codec.ts';
import {
  MIGRATION_LOCK_CLASS,
  MIGRATIONS,
  MIGRATIONS_TABLE_SQL,
  recordMigrationSql,
  SCHEMA_VERSION,
} from './postgres-migrations.ts';
import type {
  ConversationQuery,
  ConversationStore,
  ExportFilter,
  ExportRecord,
  ImportSummary,
  ItemPage,
  ListOptions,
  StoredConversation,
  StoredResponse,
  TurnProgress,
  TurnResult,
} from './types.ts';
import { PipelinedConnections, terminatedByServer } from './postgres-pipeline.ts';
import { ChainBrokenError, StoreConflictError } from './types.ts';

export interface PostgresStoreOptions {
  /**
   * A PostgreSQL URL: `postgresql://user:password@host:5432/database?sslmode=require`. The password
   * must be URL-encoded. `sslmode` has libpq's meaning; `options=-c search_path=...` picks a schema;
   * `connect_timeout` (seconds, default 10) bounds connecting; `pgbouncer=true` turns named
   * prepared statements and pipelining off for transaction-mode poolers; `pipeline=false` turns
   * pipelining off alone (see postgres-pipeline.ts).
   */
  connectionString: string;
  /** Most connections this instance holds open. */
  poolSize: number;
  /** Default retention applied to responses and conversations stored without an expiry; null keeps them. */
  ttlSeconds: number | null;
  /** The node-postgres Client class the pool uses (tests wrap it to count round trips). */
  Client?: typeof pg.Client;
}

/** A startup or connection problem, explained; `code` is the SQLSTATE or the socket error code. */
export class PostgresStoreError extends Error {
  readonly code: string | undefined;
  constructor(message: string, code?: string) {
    super(message);
    this.name = 'PostgresStoreError';
    this.code = code;
  }
}

export interface MigrationResult {
  /** Schema version found before migrating (0 for an empty schema). */
  from: number;
  to: number;
  /** Versions applied by this call; empty when another instance did it or nothing was due. */
  applied: number[];
  /** The schema the tables live in. */
  schema: string;
}

// ---------------------------------------------------------------------------------------------
// Connection strings.

type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
const SSL_MODES: readonly SslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

interface Target {
  /** What node-postgres parses: the URL without the parameters Parley interprets itself. */
  connectionString: string;
  ssl: pg.ClientConfig['ssl'] | undefined;
  sslmode: SslMode | null;
  user: string;
  host: string;
  port: number;
  database: string;
  connectTimeoutMs: number;
  namedStatements: boolean;
  /** Statements that stand alone are pipelined on a few connections (postgres-pipeline.ts). */
  pipelined: boolean;
  /** The password in every spelling that could end up in a message, for scrubbing. */
  secrets: string[];
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Parses and checks a PostgreSQL URL. Errors never repeat the string (it holds the password). */
export function parseConnectionString(connectionString: string): Target {
  let text = connectionString.trim();
  // node-postgres encodes a string with stray spaces or percent signs before parsing; do the same
  // so both read the same URL.
  if (/ |%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i.test(text)) text = encodeURI(text).replace(/%25(\d\d)/g, '%$1');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new PostgresStoreError(
      'state_storage.connection_string is not a valid PostgreSQL URL. Expected ' +
        'postgresql://USER:PASSWORD@HOST:PORT/DATABASE, with special characters in the password ' +
        'URL-encoded (@ as %40, : as %3A, / as %2F, % as %25, # as %23, ? as %3F).',
      'invalid_connection_string',
    );
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new PostgresStoreError(
      `state_storage.connection_string must start with postgresql:// or postgres:// (got ${url.protocol}//).`,
      'invalid_connection_string',
    );
  }
  const params = url.searchParams;
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  const rawPassword = url.password;
  // Without a password in the URL, node-postgres falls back to PGPASSWORD (no URL-encoding needed).
  const password = params.get('password') ?? (decode(rawPassword) || process.env.PGPASSWORD || '');
  const secrets = [password, rawPassword, encodeURIComponent(password)].filter((s) => s.length >= 3);
  const user = params.get('user') ?? (decode(url.username) || process.env.PGUSER || process.env.USER || '');
  const host = params.get('host') ?? (decode(url.hostname).replace(/^\[(.*)\]$/, '$1') || 'localhost');
  const port = Number(params.get('port') ?? (url.port || 5432));
  const database = decode(url.pathname.slice(1)) || user;

  const timeout = params.get('connect_timeout');
  const connectTimeoutMs =
    timeout !== null && Number(timeout) > 0 ? Number(timeout) * 1000 : DEFAULT_CONNECT_TIMEOUT_MS;
  const pgbouncer = params.get('pgbouncer');
  params.delete('pgbouncer');
  const pipeline = params.get('pipeline');
  params.delete('pipeline');
  if (pipeline !== null && !['true', 'false', '1', '0'].includes(pipeline)) {
    throw new PostgresStoreError(
      `state_storage.connection_string: pipeline=${pipeline} is not true or false.`,
      'invalid_connection_string',
    );
  }
  const behindPooler = pgbouncer === 'true' || pgbouncer === '1';

  // sslmode with libpq's meaning (node-postgres 8 treats require as verify-full): a URL copied
  // from a provider's console connects the way psql would.
  const sslmodeRaw = params.get('sslmode');
  let sslmode: SslMode | null = null;
  let ssl: Target['ssl'];
  if (sslmodeRaw !== null) {
    if (!SSL_MODES.includes(sslmodeRaw as SslMode)) {
      throw new PostgresStoreError(
        `state_storage.connection_string: sslmode=${sslmodeRaw} is not one of ${SSL_MODES.join(', ')}.`,
        'invalid_connection_string',
      );
    }
    sslmode = sslmodeRaw as SslMode;
    const files: { ca?: string; cert?: string; key?: string } = {};
    const read = (name: string, what: 'ca' | 'cert' | 'key') => {
      const path = params.get(name);
      if (path === null || path === '' || (name === 'sslrootcert' && path === 'system')) return;
      try {
        files[what] = readFileSync(path, 'utf8');
      } catch (error) {
        throw new PostgresStoreError(
          `state_storage.connection_string: cannot read ${name} ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`,
          'invalid_connection_string',
        );
      }
    };
    read('sslrootcert', 'ca');
    read('sslcert', 'cert');
    read('sslkey', 'key');
    switch (sslmode) {
      case 'disable':
      case 'allow': // libpq tries without TLS first
        ssl = false;
        break;
      case 'prefer':
      case 'require':
        // Encrypted; verified only against an explicit root certificate (as in libpq).
        ssl = files.ca
          ? { ...files, checkServerIdentity: () => undefined }
          : { ...files, rejectUnauthorized: false };
        break;
      case 'verify-ca':
        if (!files.ca) {
          throw new PostgresStoreError(
            'state_storage.connection_string: sslmode=verify-ca needs sslrootcert=/path/to/root.crt.',
            'invalid_connection_string',
          );
        }
        ssl = { ...files, checkServerIdentity: () => undefined };
        break;
      case 'verify-full':
        ssl = { ...files };
        break;
    }
    for (const name of ['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'uselibpqcompat', 'ssl'])
      params.delete(name);
  }
  return {
    connectionString: url.toString(),
    ssl,
    sslmode,
    user,
    host,
    port,
    database,
    connectTimeoutMs,
    namedStatements: !behindPooler,
    pipelined: !behindPooler && pipeline !== 'false' && pipeline !== '0',
    secrets,
  };
}

// ---------------------------------------------------------------------------------------------
// Encoding.

// Text columns cannot hold NUL. Strings Parley keys on (ids, users, metadata) are stored with NUL
// and backslash escaped, so every string round-trips and equality still works in SQL. Payloads
// are JSON text, where JSON.stringify has already escaped NUL as \u0000.
function esc(value: string): string;
function esc(value: string | null): string | null;
function esc(value: string | null): string | null {
  if (value === null || !(value.includes('\\') || value.includes('\u0000'))) return value;
  return value.replaceAll('\\', '\\\\').replaceAll('\u0000', '\\0');
}
function unesc(value: string): string;
function unesc(value: string | null): string | null;
function unesc(value: string | null): string | null {
  if (value === null || !value.includes('\\')) return value;
  return value.replace(/\\([\s\S])/g, (_, c: string) => (c === '0' ? '\u0000' : c));
}

// Object.fromEntries keeps a key such as `__proto__` as plain own data.
function escMetadata(metadata: Record<string, string>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(metadata).map(([k, v]) => [esc(k), esc(v)])));
}
function unescMetadata(metadata: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata).map(([k, v]) => [unesc(k), unesc(v)]));
}

/** An item from its item_id column (escaped) and its data (without the id, or whole if older). */
function decodeItem(itemId: string, data: string): Item {
  return decodeItemData(unesc(itemId), data);
}

/**
 * Item ids and JSON for the unnest() arrays of an insert. The JSON leaves the id out (it is in
 * item_id already): every reader puts it back with decodeItem.
 */
function itemArrays(items: readonly Item[]): [ids: (string | null)[], data: string[]] {
  const ids = new Array<string | null>(items.length);
  const data = new Array<string>(items.length);
  for (let i = 0; i < items.length; i++) {
    const id = items[i].id;
    ids[i] = typeof id === 'string' ? esc(id) : null; // NULL trips NOT NULL: an item needs an id
    data[i] = encodeItemData(items[i]);
  }
  return [ids, data];
}

// int8 (bigint) as a JS number: Parley's counts and unix times stay far below 2^53.
const INT8_OID = 20;
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

// ---------------------------------------------------------------------------------------------
// SQL. `live` means not expired: ($N is now, unix seconds).

const live = (alias: string, now: string) => `(${alias}.expires_at IS NULL OR ${alias}.expires_at > ${now})`;

// A parent id in Parley's format (resp_ + 48 lowercase hex digits) is stored as its 24 bytes, any
// other as text (migration 6); this rebuilds the string, the same one either way.
const PARLEY_RESPONSE_ID = `'^resp_[0-9a-f]{48}$'`;
const previousId = (alias: string) =>
  `coalesce(${alias}.previous_response_text, 'resp_' || encode(${alias}.previous_response_bytes, 'hex'))`;

// The chain walk carries whole response rows (params is a TOAST pointer when large), then emits
// one row per response and one per item (its item_id in the id column, its direction 0 or 1). No
// ORDER BY: rows carry depth, direction and position and decodeChain places them. $1 id, $2 now,
// $3 max depth (0 for a single response).
const CHAIN_SQL = `
WITH RECURSIVE chain AS (
  SELECT 0 AS depth, r.id, ${previousId('r')} AS previous_response_id, r.conversation_id, r.model, r.status,
         r.created_at, r.completed_at, r.expires_at, r.params, r.usage, r.error, r.incomplete_details, r.tenant,
         r.end_user, r.seq
    FROM responses r
   WHERE r.id = $1 AND ${live('r', '$2')}
  UNION ALL
  SELECT chain.depth + 1, r.id, ${previousId('r')}, r.conversation_id, r.model, r.status, r.created_at,
         r.completed_at, r.expires_at, r.params, r.usage, r.error, r.incomplete_details, r.tenant, r.end_user, r.seq
    FROM chain JOIN responses r ON r.id = chain.previous_response_id
   WHERE chain.depth < $3 AND ${live('r', '$2')}
)
SELECT depth, 0 AS kind, id, previous_response_id, conversation_id, model, status, created_at, completed_at,
       expires_at, params, usage, error, incomplete_details, tenant, end_user,
       NULL::smallint AS direction, NULL::integer AS position, NULL::text AS data
  FROM chain
UNION ALL
SELECT chain.depth, 1, i.item_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       i.direction, i.position, i.data
  FROM chain JOIN items i ON i.response_seq = chain.seq`;

const C = CHAIN_COLUMNS;
type Row = ChainRow;

// One statement: the response row and all its items; a second beginTurn with the same id inserts
// nothing (ON CONFLICT waits for the first to commit, then does nothing). $19 true commits without
// waiting for the WAL flush (see beginTurn). An unfinished turn (every turn but an imported
// finished one) takes a free slot of unfinished_turn_slots, passing over slots other turns are
// taking at that moment, or adds a slot when none is free (migration 5).
const BEGIN_TURN_SQL = `
WITH r AS (
  INSERT INTO responses (id, previous_response_bytes, previous_response_text, conversation_id, model, status,
                         created_at, completed_at, expires_at, params, usage, error, incomplete_details, tenant, end_user)
  VALUES ($1, CASE WHEN $2 ~ ${PARLEY_RESPONSE_ID} THEN decode(substr($2, 6), 'hex') END,
          CASE WHEN $2 !~ ${PARLEY_RESPONSE_ID} THEN $2 END, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $17, $18)
  ON CONFLICT ON CONSTRAINT responses_id DO NOTHING
  RETURNING seq
), taken AS (
  UPDATE unfinished_turn_slots s SET response_seq = r.seq, created_at = $6
    FROM r, (SELECT slot FROM unfinished_turn_slots
              WHERE response_seq IS NULL AND $5 IN ('queued', 'in_progress') AND EXISTS (SELECT FROM r)
              LIMIT 1 FOR UPDATE SKIP LOCKED) f
   WHERE s.slot = f.slot
  RETURNING 1
), added AS (
  INSERT INTO unfinished_turn_slots (response_seq, created_at)
  SELECT r.seq, $6 FROM r WHERE $5 IN ('queued', 'in_progress') AND NOT EXISTS (SELECT FROM taken)
), i AS (
  INSERT INTO items (response_seq, direction, position, item_id, data)
  SELECT r.seq, x.direction, x.position, x.item_id, x.data
    FROM r, (
      SELECT 0 AS direction, (t.n - 1)::integer AS position, t.item_id, t.data
        FROM unnest($13::text[], $14::text[]) WITH ORDINALITY AS t (item_id, data, n)
      UNION ALL
      SELECT 1, (t.n - 1)::integer, t.item_id, t.data
        FROM unnest($15::text[], $16::text[]) WITH ORDINALITY AS t (item_id, data, n)
    ) x
)
SELECT count(*)::integer AS inserted,
       CASE WHEN $19::boolean THEN set_config('synchronous_commit', 'off', true) END AS commit_mode
  FROM r`;

// One statement: the terminal status, the output (replacing any beginTurn wrote), and for a
// completed or incomplete turn in a conversation, the turn's input then output appended to it
// and its usage and cost added to the conversation's totals. The conversation row lock serialises
// concurrent appends; appended entries point at the items rows rather than copying them, and the
// response records where they start (conversation_position: the item count read under that lock,
// FOR UPDATE, so it is the count the append below starts from; see migration 7). The
// turn's unfinished slot is given back. No index of responses covers a column this changes, so
// the row's new version is a HOT update: on the same page, under the same index entries.
// The status is looked up again only when nothing was finished, for finishTurn's error.
// $1 id, $2 status, $3 completed_at, $4 usage, $5 error, $6 incomplete_details, $7 output ids,
// $8 output data, $9 now, $10-$12 input/output/total tokens, $13 cost.
const FINISH_TURN_SQL = `
WITH u AS (
  UPDATE responses r
     SET status = $2, completed_at = $3, usage = $4, error = $5, incomplete_details = $6,
         conversation_position = CASE WHEN $2 IN ('completed', 'incomplete') THEN (
           SELECT cv.item_count FROM conversations cv WHERE cv.id = r.conversation_id AND ${live('cv', '$9')} FOR UPDATE)
         END
   WHERE r.id = $1 AND r.status IN ('queued', 'in_progress')
  RETURNING r.seq, r.conversation_id
), freed AS (
  UPDATE unfinished_turn_slots SET response_seq = NULL, created_at = NULL WHERE response_seq = (SELECT seq FROM u)
), o AS (
  INSERT INTO items (response_seq, direction, position, item_id, data)
  SELECT u.seq, 1, (t.n - 1)::integer, t.item_id, t.data
    FROM u, unnest($7::text[], $8::text[]) WITH ORDINALITY AS t (item_id, data, n)
  ON CONFLICT (response_seq, direction, position) DO UPDATE SET item_id = EXCLUDED.item_id, data = EXCLUDED.data
), stale AS (
  DELETE FROM items
   WHERE response_seq = (SELECT seq FROM u) AND direction = 1 AND position >= cardinality($8::text[])
), inp AS (
  SELECT position FROM items WHERE response_seq = (SELECT seq FROM u) AND direction = 0
), appended AS (
  SELECT x.ord, x.direction, x.position
    FROM (
      SELECT position::bigint AS ord, 0 AS direction, position FROM inp
      UNION ALL
      SELECT (SELECT count(*) FROM inp) + t.n - 1, 1, (t.n - 1)::integer
        FROM unnest($7::text[]) WITH ORDINALITY AS t (item_id, n)
    ) x
), c AS (
  UPDATE conversations cv
     SET item_count = cv.item_count + (SELECT count(*) FROM appended),
         input_tokens = cv.input_tokens + $10, output_tokens = cv.output_tokens + $11,
         total_tokens = cv.total_tokens + $12, cost_usd = cv.cost_usd + $13, turns = cv.turns + 1,
         updated_at = $9
   WHERE cv.id = (SELECT conversation_id FROM u)
     AND $2 IN ('completed', 'incomplete')
     AND ${live('cv', '$9')}
  RETURNING cv.seq, cv.item_count
), ci AS (
  INSERT INTO conversation_items (conversation_seq, position, response_seq, direction, item_position)
  SELECT c.seq, c.item_count - (SELECT count(*) FROM appended) + a.ord, (SELECT seq FROM u), a.direction, a.position
    FROM c, appended a
)
SELECT (SELECT count(*) FROM u)::integer AS finished,
       CASE WHEN NOT EXISTS (SELECT FROM u) THEN (SELECT status FROM responses WHERE id = $1) END AS status`;

// Deleting a response: its trigger first copies the items its conversation still points at into
// those entries (a conversation keeps its history; migration 7), then items go by ON DELETE CASCADE.
const DELETE_RESPONSE_SQL =
  'WITH d AS (DELETE FROM responses WHERE id = $1 RETURNING 1) SELECT count(*)::integer AS deleted FROM d';

// Progress of an unfinished turn (background mode): status and output replaced in one statement,
// only while the turn is still unfinished. $1 id, $2 status, $3 output ids, $4 output data.
const SAVE_PROGRESS_SQL = `
WITH u AS (
  UPDATE responses SET status = $2 WHERE id = $1 AND status IN ('queued', 'in_progress') RETURNING seq
), o AS (
  INSERT INTO items (response_seq, direction, position, item_id, data)
  SELECT u.seq, 1, (t.n - 1)::integer, t.item_id, t.data
    FROM u, unnest($3::text[], $4::text[]) WITH ORDINALITY AS t (item_id, data, n)
  ON CONFLICT (response_seq, direction, position) DO UPDATE SET item_id = EXCLUDED.item_id, data = EXCLUDED.data
), stale AS (
  DELETE FROM items
   WHERE response_seq = (SELECT seq FROM u) AND direction = 1 AND position >= cardinality($4::text[])
)
SELECT count(*)::integer AS saved FROM u`;

const PRUNE_BATCH = 1000;

const PRUNE_RESPONSES_SQL = `
WITH doomed AS (
  SELECT id, seq FROM responses WHERE expires_at IS NOT NULL AND expires_at <= $1 LIMIT ${PRUNE_BATCH}
), d AS (
  DELETE FROM responses WHERE id IN (SELECT id FROM doomed) RETURNING id
)
SELECT count(*)::integer AS deleted FROM d`;

const PRUNE_CONVERSATIONS_SQL = `
WITH doomed AS (
  SELECT id FROM conversations WHERE expires_at IS NOT NULL AND expires_at <= $1 LIMIT ${PRUNE_BATCH}
), l AS (
  DELETE FROM conversation_leases WHERE conversation_id IN (SELECT id FROM doomed)
), d AS (
  DELETE FROM conversations WHERE id IN (SELECT id FROM doomed) RETURNING id
)
SELECT count(*)::integer AS deleted FROM d`;

/** A page of `rows` after the item with id $3 (exclusive); the header row says the owner is live. */
function pageSql(header: string, rows: string, order: 'asc' | 'desc', limit: string): string {
  const cmp = order === 'asc' ? '>' : '<';
  const start = order === 'asc' ? '-1' : '9223372036854775807';
  // The lookup of $3 runs only when there is one (CASE evaluates its subquery lazily).
  return `
SELECT 0 AS kind, NULL::bigint AS position, NULL::text AS item_id, NULL::text AS data FROM ${header}
UNION ALL
(SELECT 1, x.position, x.item_id, x.data FROM (${rows}) x
  WHERE x.position ${cmp} CASE WHEN $3::text IS NULL THEN ${start}
                          ELSE (SELECT y.position FROM (${rows}) y WHERE y.item_id = $3 ORDER BY y.position LIMIT 1) END
  ORDER BY x.position ${order.toUpperCase()}
  LIMIT ${limit})`;
}

const INPUT_ROWS = `SELECT position::bigint AS position, item_id, data FROM items
  WHERE response_seq = (SELECT seq FROM responses WHERE id = $1) AND direction = 0`;
const RESPONSE_HEADER = `responses r WHERE r.id = $1 AND ${live('r', '$2')}`;

// A conversation entry's item: its own id and JSON, or those of the turn item it points at. $1 is
// the conversation's id (entries name it by seq). The item is joined LATERAL, one primary-key
// lookup per entry as entries are read in position order, so a page or a lookup by item id stops
// at the entries it needs (there is no index by item id: migration 7).
const ENTRY_ITEMS = `SELECT ci.position, COALESCE(ci.item_id, i.item_id) AS item_id, COALESCE(ci.data, i.data) AS data
  FROM conversation_items ci
  LEFT JOIN LATERAL (SELECT i.item_id, i.data FROM items i
                      WHERE ci.data IS NULL AND i.response_seq = ci.response_seq AND i.direction = ci.direction
                        AND i.position = ci.item_position) i ON true`;
const CONVERSATION_ROWS = `${ENTRY_ITEMS}
 WHERE ci.conversation_seq = (SELECT seq FROM conversations WHERE id = $1)`;
const CONVERSATION_HEADER = `conversations cv WHERE cv.id = $1 AND ${live('cv', '$2')}`;

const CONVERSATION_COLUMNS = `id, tenant, created_at, metadata, end_user, item_count, expires_at, input_tokens,
  output_tokens, total_tokens, cost_usd, turns, updated_at`;

function listConversationsSql(order: 'asc' | 'desc'): string {
  const cmp = order === 'asc' ? '>' : '<';
  const dir = order.toUpperCase();
  return `
SELECT ${CONVERSATION_COLUMNS} FROM conversations cv
 WHERE cv.tenant = $2 AND ${live('cv', '$1')}
   AND ($3::text IS NULL OR cv.end_user = $3)
   AND ($4::jsonb IS NULL OR cv.metadata @> $4::jsonb)
   AND ($7::bigint IS NULL OR cv.created_at >= $7)
   AND ($8::bigint IS NULL OR cv.created_at < $8)
   AND ($5::text IS NULL OR (cv.created_at, cv.seq) ${cmp} (
         SELECT a.created_at, a.seq FROM conversations a WHERE a.id = $5 AND a.tenant = $2 AND ${live('a', '$1')}))
 ORDER BY cv.created_at ${dir}, cv.seq ${dir}
 LIMIT $6`;
}

// Creates a conversation with its items (createConversation, importRecords). An item that is
// byte for byte a turn item of one of this conversation's own responses (an import of what a turn
// appended) becomes a pointer to it, as the turn itself would have left it: stored once. Pointers
// at one response stay within the run of positions its items span from the first of them, which
// the response records (migration 7); an item past that run is copied. So is every item of a
// response deleted meanwhile: only a response row this statement updated (and so holds locked
// until it commits, which a delete's trigger waits for) is pointed at.
// $1 id, $2 tenant, $3 created_at, $4 expires_at, $5 end_user, $6 metadata, $7 item_count,
// $8-$12 input/output/total tokens, cost, turns, $13 updated_at, $14 item ids, $15 item data.
const INSERT_CONVERSATION_SQL = `
WITH c AS (
  INSERT INTO conversations (id, tenant, created_at, expires_at, end_user, metadata, item_count, input_tokens,
                             output_tokens, total_tokens, cost_usd, turns, updated_at)
  VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12, $13)
  ON CONFLICT (id) DO NOTHING
  RETURNING seq
), t AS (
  SELECT t.item_id, t.data, t.n FROM unnest($14::text[], $15::text[]) WITH ORDINALITY AS t (item_id, data, n)
), candidates AS (
  SELECT i.response_seq, i.direction, i.position, i.item_id, i.data, count(*) OVER (PARTITION BY i.response_seq) AS items
    FROM responses r JOIN items i ON i.response_seq = r.seq
   WHERE r.conversation_id = $1
), matched AS (
  SELECT DISTINCT ON (t.n) t.n, k.response_seq, k.direction, k.position, k.items
    FROM t JOIN candidates k ON k.item_id = t.item_id AND k.data = t.data
   ORDER BY t.n, k.response_seq, k.direction, k.position
), source AS (
  SELECT m.*, min(m.n) OVER (PARTITION BY m.response_seq) - 1 AS run FROM matched m
), pointed AS (
  SELECT * FROM source WHERE n - 1 < run + items
), runs AS (
  UPDATE responses r SET conversation_position = p.run
    FROM (SELECT DISTINCT response_seq, run FROM pointed) p
   WHERE r.seq = p.response_seq AND EXISTS (SELECT FROM c)
  RETURNING r.seq
), i AS (
  INSERT INTO conversation_items (conversation_seq, position, item_id, data, response_seq, direction, item_position)
  SELECT c.seq, t.n - 1, CASE WHEN s.n IS NULL THEN t.item_id END, CASE WHEN s.n IS NULL THEN t.data END,
         s.response_seq, s.direction, s.position
    FROM c, t LEFT JOIN pointed s ON s.n = t.n AND s.response_seq IN (SELECT seq FROM runs)
)
SELECT count(*)::integer AS inserted FROM c`;

// Metadata merge in one statement (the row lock serialises concurrent merges): $3 the keys to set
// (an object), $4 the keys to remove.
const MERGE_METADATA_SQL = `
UPDATE conversations cv SET metadata = (cv.metadata - $4::text[]) || $3::jsonb, updated_at = $2
 WHERE cv.id = $1 AND ${live('cv', '$2')}
RETURNING ${CONVERSATION_COLUMNS}`;

// A new conversation holding the source's items up to the first with item id $3, renumbered from
// 0. Copies, not pointers: an entry may point only at its own conversation's turns (migration 7).
// $1 source, $2 now, $3 item id, $4 target id, $5 tenant, $6 created_at, $7 expires_at,
// $8 end_user, $9 metadata, $10 updated_at.
const FORK_CONVERSATION_SQL = `
WITH src AS (
  SELECT seq FROM conversations cv WHERE cv.id = $1 AND ${live('cv', '$2')}
), upto AS (
  SELECT x.position FROM (${ENTRY_ITEMS} WHERE ci.conversation_seq = (SELECT seq FROM src)) x
   WHERE x.item_id = $3
   ORDER BY x.position LIMIT 1
), c AS (
  INSERT INTO conversations (id, tenant, created_at, expires_at, end_user, metadata, item_count, updated_at)
  SELECT $4, $5, $6, $7, $8, $9::jsonb,
         (SELECT count(*) FROM conversation_items WHERE conversation_seq = (SELECT seq FROM src)
                                                     AND position <= upto.position), $10
    FROM upto
  ON CONFLICT (id) DO NOTHING
  RETURNING seq, ${CONVERSATION_COLUMNS}
), copied AS (
  INSERT INTO conversation_items (conversation_seq, position, item_id, data)
  SELECT c.seq, row_number() OVER (ORDER BY x.position) - 1, x.item_id, x.data
    FROM c, upto, (${ENTRY_ITEMS} WHERE ci.conversation_seq = (SELECT seq FROM src)) x
   WHERE x.position <= upto.position
)
SELECT (SELECT count(*) FROM upto)::integer AS found, c.* FROM (SELECT 1) one LEFT JOIN c ON true`;

// A user's data, in one statement: their conversations (with their entries and leases) and their
// responses (with their items). A response's trigger copies its items into its conversation's
// entries, as on any response delete, so a conversation that stays (another user's) keeps them;
// entries of the user's own conversations go with those conversations either way.
const DELETE_USER_DATA_SQL = `
WITH dc AS (
  DELETE FROM conversations WHERE tenant = $1 AND end_user = $2 RETURNING id
), dl AS (
  DELETE FROM conversation_leases WHERE conversation_id IN (SELECT id FROM dc)
), dr AS (
  DELETE FROM responses WHERE tenant = $1 AND end_user = $2 RETURNING id
)
SELECT (SELECT count(*) FROM dr)::integer AS responses, (SELECT count(*) FROM dc)::integer AS conversations`;

// Export reads batches in insertion order (seq), rows shaped like the chain's so decodeChain builds
// them: `depth` numbers the batch's responses. `parent_later` flags a response whose parent is
// exported too but was written after it (re-imported); the exporter holds it back until the parent
// is out. $1 after seq, $2 now, $3 tenant, $4 conversation id, $5 since, $6 batch size.
const EXPORT_MATCH = (r: string) => `${live(r, '$2')} AND ($3::text IS NULL OR ${r}.tenant = $3)
   AND ($4::text IS NULL OR ${r}.conversation_id = $4) AND ($5::bigint IS NULL OR ${r}.created_at >= $5)`;
const EXPORT_RESPONSES_SQL = `
WITH batch AS (
  SELECT row_number() OVER (ORDER BY r.seq)::integer AS depth, r.*
    FROM (SELECT * FROM responses r WHERE r.seq > $1 AND ${EXPORT_MATCH('r')} ORDER BY r.seq LIMIT $6) r
)
SELECT b.depth, 0 AS kind, b.id, ${previousId('b')}, b.conversation_id, b.model, b.status, b.created_at,
       b.completed_at, b.expires_at, b.params, b.usage, b.error, b.incomplete_details, b.tenant, b.end_user,
       NULL::smallint AS direction, NULL::integer AS position, NULL::text AS data, b.seq,
       EXISTS (SELECT 1 FROM responses p WHERE p.id = ${previousId('b')} AND p.seq > b.seq
                 AND ${EXPORT_MATCH('p')}) AS parent_later
  FROM batch b
UNION ALL
SELECT b.depth, 1, i.item_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       i.direction, i.position, i.data, NULL, NULL
  FROM batch b JOIN items i ON i.response_seq = b.seq`;

// Conversations in (created_at, seq) order after the anchor ($1, $2); $3 now, $4 tenant,
// $5 conversation id, $6 since, $7 batch size.
const EXPORT_CONVERSATIONS_SQL = `
SELECT cv.seq, ${CONVERSATION_COLUMNS} FROM conversations cv
 WHERE (cv.created_at, cv.seq) > ($1, $2) AND ${live('cv', '$3')}
   AND ($4::text IS NULL OR cv.tenant = $4) AND ($5::text IS NULL OR cv.id = $5)
   AND ($6::bigint IS NULL OR cv.created_at >= $6)
 ORDER BY cv.created_at, cv.seq
 LIMIT $7`;

const EXPORT_BATCH = 200;
/** Records written per import transaction. */
const IMPORT_BATCH = 100;

interface Statement {
  name: string;
  text: string;
  rowMode?: 'array';
  /** Only reads: safe to run again when its connection broke before it was answered. */
  reads?: true;
}

const S = {
  ping: { name: 'parley_ping', reads: true, text: 'SELECT 1' },
  beginTurn: { name: 'parley_begin_turn', text: BEGIN_TURN_SQL },
  finishTurn: { name: 'parley_finish_turn', text: FINISH_TURN_SQL },
  saveProgress: { name: 'parley_save_progress', text: SAVE_PROGRESS_SQL },
  chain: { name: 'parley_chain', reads: true, text: CHAIN_SQL, rowMode: 'array' },
  deleteResponse: { name: 'parley_delete_response', text: DELETE_RESPONSE_SQL },
  inputPageAsc: {
    name: 'parley_input_page_asc',
    reads: true,
    text: pageSql(RESPONSE_HEADER, INPUT_ROWS, 'asc', '$4'),
    rowMode: 'array',
  },
  inputPageDesc: {
    name: 'parley_input_page_desc',
    reads: true,
    text: pageSql(RESPONSE_HEADER, INPUT_ROWS, 'desc', '$4'),
    rowMode: 'array',
  },
  pruneResponses: { name: 'parley_prune_responses', text: PRUNE_RESPONSES_SQL },
  pruneConversations: { name: 'parley_prune_conversations', text: PRUNE_CONVERSATIONS_SQL },
  countExpired: {
    name: 'parley_count_expired',
    reads: true,
    text: `SELECT ((SELECT count(*) FROM responses WHERE expires_at IS NOT NULL AND expires_at <= $1)
                 + (SELECT count(*) FROM conversations WHERE expires_at IS NOT NULL AND expires_at <= $1))::bigint AS n`,
  },
  pruneLeases: {
    name: 'parley_prune_leases',
    text: 'DELETE FROM conversation_leases WHERE expires_at <= clock_timestamp()',
  },
  createConversation: { name: 'parley_create_conversation', text: INSERT_CONVERSATION_SQL },
  getConversation: {
    name: 'parley_get_conversation',
    reads: true,
    text: `SELECT ${CONVERSATION_COLUMNS} FROM conversations cv WHERE cv.id = $1 AND ${live('cv', '$2')}`,
  },
  updateConversation: {
    name: 'parley_update_conversation',
    text: `UPDATE conversations cv SET metadata = $3::jsonb, updated_at = $2 WHERE cv.id = $1 AND ${live('cv', '$2')}
           RETURNING ${CONVERSATION_COLUMNS}`,
  },
  deleteConversation: {
    name: 'parley_delete_conversation',
    text: `
WITH d AS (
  DELETE FROM conversations cv WHERE cv.id = $1 RETURNING ${live('cv', '$2')} AS was_live
), l AS (
  DELETE FROM conversation_leases WHERE conversation_id = $1
)
SELECT count(*) FILTER (WHERE was_live)::integer AS deleted FROM d`,
  },
  appendConversationItems: {
    name: 'parley_append_conversation_items',
    text: `
WITH c AS (
  UPDATE conversations cv SET item_count = cv.item_count + cardinality($4::text[]), updated_at = $2
   WHERE cv.id = $1 AND ${live('cv', '$2')}
  RETURNING seq, ${CONVERSATION_COLUMNS}
), i AS (
  INSERT INTO conversation_items (conversation_seq, position, item_id, data)
  SELECT c.seq, c.item_count - cardinality($4::text[]) + t.n - 1, t.item_id, t.data
    FROM c, unnest($3::text[], $4::text[]) WITH ORDINALITY AS t (item_id, data, n)
)
SELECT ${CONVERSATION_COLUMNS} FROM c`,
  },
  loadConversationItems: {
    name: 'parley_load_conversation_items',
    reads: true,
    text: `SELECT 0 AS kind, NULL::bigint AS position, NULL::text AS item_id, NULL::text AS data FROM ${CONVERSATION_HEADER}
           UNION ALL
           SELECT 1, x.position, x.item_id, x.data FROM (${CONVERSATION_ROWS}) x`,
    rowMode: 'array',
  },
  // The header row carries the item count, read in the same snapshot as the items.
  loadConversationItemsFrom: {
    name: 'parley_load_conversation_items_from',
    reads: true,
    text: `SELECT 0 AS kind, cv.item_count AS position, NULL::text AS item_id, NULL::text AS data FROM ${CONVERSATION_HEADER}
           UNION ALL
           SELECT 1, x.position, x.item_id, x.data FROM (${CONVERSATION_ROWS} AND ci.position >= $3) x`,
    rowMode: 'array',
  },
  conversationPageAsc: {
    name: 'parley_conversation_page_asc',
    reads: true,
    text: pageSql(CONVERSATION_HEADER, CONVERSATION_ROWS, 'asc', '$4'),
    rowMode: 'array',
  },
  conversationPageDesc: {
    name: 'parley_conversation_page_desc',
    reads: true,
    text: pageSql(CONVERSATION_HEADER, CONVERSATION_ROWS, 'desc', '$4'),
    rowMode: 'array',
  },
  getConversationItem: {
    name: 'parley_get_conversation_item',
    reads: true,
    text: `SELECT x.item_id, x.data FROM conversations cv, LATERAL (${CONVERSATION_ROWS}) x
            WHERE cv.id = $1 AND ${live('cv', '$2')} AND x.item_id = $3
            ORDER BY x.position LIMIT 1`,
  },
  deleteConversationItem: {
    name: 'parley_delete_conversation_item',
    text: `
WITH cv AS (
  SELECT seq FROM conversations cv WHERE cv.id = $1 AND ${live('cv', '$2')}
)
DELETE FROM conversation_items
 WHERE conversation_seq = (SELECT seq FROM cv)
   AND position = (SELECT x.position FROM (${ENTRY_ITEMS} WHERE ci.conversation_seq = (SELECT seq FROM cv)) x
                    WHERE x.item_id = $3 ORDER BY x.position LIMIT 1)
RETURNING 1`,
  },
  listConversationsAsc: {
    name: 'parley_list_conversations_asc',
    reads: true,
    text: listConversationsSql('asc'),
  },
  listConversationsDesc: {
    name: 'parley_list_conversations_desc',
    reads: true,
    text: listConversationsSql('desc'),
  },
  acquireLease: {
    name: 'parley_acquire_lease',
    text: `
INSERT INTO conversation_leases AS l (conversation_id, holder, expires_at)
VALUES ($1, $2, clock_timestamp() + $3::double precision * interval '1 millisecond')
ON CONFLICT (conversation_id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
 WHERE l.holder = EXCLUDED.holder OR l.expires_at <= clock_timestamp()
RETURNING 1`,
  },
  renewLease: {
    name: 'parley_renew_lease',
    text: `UPDATE conversation_leases SET expires_at = clock_timestamp() + $3::double precision * interval '1 millisecond'
            WHERE conversation_id = $1 AND holder = $2 RETURNING 1`,
  },
  releaseLease: {
    name: 'parley_release_lease',
    text: 'DELETE FROM conversation_leases WHERE conversation_id = $1 AND holder = $2',
  },
  mergeMetadata: { name: 'parley_merge_metadata', text: MERGE_METADATA_SQL },
  forkConversation: { name: 'parley_fork_conversation', text: FORK_CONVERSATION_SQL },
  deleteUserData: { name: 'parley_delete_user_data', text: DELETE_USER_DATA_SQL },
  // Interrupted turns were never cached (a cache holds finished turns only), so the responses
  // trigger leaves them out; the counter moves anyway, as the changeToken contract asks. Their
  // slots go, with those of responses deleted while unfinished, and every free slot: the table
  // shrinks back after a burst of concurrent turns (VACUUM returns the pages). A turn's slot is
  // locked only after its response row (the IN waits for f), the order finishTurn takes them in.
  failStaleTurns: {
    name: 'parley_fail_stale_turns',
    text: `
WITH f AS (
  UPDATE responses r SET status = 'failed', error = $1
    FROM unfinished_turn_slots s
   WHERE s.created_at < $2 AND r.seq = s.response_seq AND r.status IN ('queued', 'in_progress')
  RETURNING r.seq
), gone AS (
  DELETE FROM unfinished_turn_slots s
   WHERE s.response_seq IS NULL
      OR (s.created_at < $2
          AND (s.response_seq IN (SELECT seq FROM f)
               OR NOT EXISTS (SELECT FROM responses r WHERE r.seq = s.response_seq
                                                        AND r.status IN ('queued', 'in_progress'))))
), bump AS (
  UPDATE parley_changes SET counter = counter + 1 WHERE (SELECT count(*) FROM f) > 0
)
SELECT count(*)::integer AS failed FROM f`,
  },
  // The epoch tells a re-created table apart, the server's start time a restart or failover (a
  // server that came back may have lost what a cache holds).
  changeToken: {
    name: 'parley_change_token',
    reads: true,
    text: `SELECT c.epoch || '.' || c.counter || '.' || extract(epoch FROM pg_postmaster_start_time()) AS token
             FROM parley_changes c`,
  },
  exportResponses: {
    name: 'parley_export_responses',
    reads: true,
    text: EXPORT_RESPONSES_SQL,
    rowMode: 'array',
  },
  exportConversations: { name: 'parley_export_conversations', reads: true, text: EXPORT_CONVERSATIONS_SQL },
  exportConversationItems: {
    name: 'parley_export_conversation_items',
    reads: true,
    text: `SELECT cv.id, x.position, x.item_id, x.data
             FROM conversations cv, LATERAL (${ENTRY_ITEMS} WHERE ci.conversation_seq = cv.seq) x
            WHERE cv.id = ANY($1::text[])
            ORDER BY cv.id, x.position`,
    rowMode: 'array',
  },
} satisfies Record<string, Statement>;

/** Parley's tables, for the privilege check at startup. */
const TABLES = [
  'parley_schema_migrations',
  'responses',
  'items',
  'conversations',
  'conversation_items',
  'conversation_leases',
  'parley_changes',
  'unfinished_turn_slots',
];

// ---------------------------------------------------------------------------------------------

interface ConversationRow {
  id: string;
  tenant: string;
  created_at: number;
  metadata: Record<string, string>;
  end_user: string | null;
  item_count: number;
  expires_at: number | null;
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  cost_usd: number;
  turns: number;
  updated_at: number;
}

/** A connection with nothing to do for this long is closed. */
const IDLE_MS = 30_000;

/** The connection broke (not an answer from the server), before or after the statement ran. */
function broken(error: unknown): boolean {
  if (error instanceof pg.DatabaseError) return false;
  const { code, message } = error as { code?: string; message?: string };
  return (
    code === 'EPIPE' ||
    code === 'ECONNRESET' ||
    /Connection terminated unexpectedly|not queryable/.test(String(message))
  );
}

/** The one query() signature the store uses, of a pool, a checked-out client or the pipelines. */
interface StatementRunner {
  query(config: pg.QueryConfig): Promise<pg.QueryResult>;
}

interface Connections {
  /** Transactions (migrations, import batches) check a connection out of this pool. */
  pool: pg.Pool;
  /** Where a statement that stands alone runs (see postgres-pipeline.ts). */
  statements: PipelinedConnections | pg.Pool;
}

export class PostgresStore implements ConversationStore {
  readonly description: string;
  readonly #target: Target;
  readonly #poolSize: number;
  readonly #ttlSeconds: number | null;
  readonly #Client: typeof pg.Client | undefined;
  #connections: Connections | null = null;

  constructor(options: PostgresStoreOptions) {
    if (!Number.isInteger(options.poolSize) || options.poolSize < 1) {
      throw new RangeError(`PostgresStore poolSize must be a positive integer, got ${options.poolSize}`);
    }
    this.#target = parseConnectionString(options.connectionString);
    this.#poolSize = options.poolSize;
    this.#ttlSeconds = options.ttlSeconds;
    this.#Client = options.Client;
    const t = this.#target;
    this.description = `postgres (${t.user}@${t.host}:${t.port}/${t.database})`;
  }

  async open(): Promise<void> {
    await this.migrate();
  }

  /**
   * Connects (if not yet connected) and applies the migrations that are due, under an advisory
   * lock. Leaves the store open. What `parley migrate` calls.
   */
  async migrate(): Promise<MigrationResult> {
    if (this.#connections === null) {
      this.#connections = this.#connect(this.#target.ssl);
    }
    try {
      return await this.#migrate();
    } catch (error) {
      // sslmode=prefer: libpq falls back to plain TCP when the server has no TLS; so do we.
      if (
        this.#target.sslmode === 'prefer' &&
        /does not support SSL/i.test(String((error as Error).message))
      ) {
        await this.#disconnect();
        this.#connections = this.#connect(false);
        try {
          return await this.#migrate();
        } catch (retryError) {
          await this.#disconnect();
          throw this.#explain(retryError);
        }
      }
      await this.#disconnect();
      throw this.#explain(error);
    }
  }

  /** The TTL applied to responses stored without an expiry (see ConversationStore.changeToken). */
  get defaultTtlSeconds(): number | null {
    return this.#ttlSeconds;
  }

  /**
   * Moves whenever a stored response may have been deleted or changed, by any process: triggers
   * on `responses` bump parley_changes in the transaction that deletes or changes (migration 3),
   * so a reader that sees the old token before loading a chain either loaded it before the change
   * or sees the new token on its next turn. One single-row read.
   */
  async changeToken(): Promise<string> {
    const res = await this.#query<{ token: string }>(S.changeToken, []);
    // The row was deleted by hand: no token can be trusted, so never the same one twice.
    return res.rows[0]?.token ?? `none.${randomUUID()}`;
  }

  async close(): Promise<void> {
    await this.#disconnect(true);
  }

  async ping(): Promise<void> {
    this.#connected();
    try {
      await this.#query(S.ping, []);
    } catch (error) {
      // /readyz shows this message: say what is wrong in the words of the startup errors.
      throw this.#explain(error);
    }
  }

  // ---------- responses ----------

  async beginTurn(response: StoredResponse): Promise<void> {
    // A foreground turn's in-progress row commits without waiting for the disk (the statement's
    // own transaction sets synchronous_commit off locally). Its durable record is finishTurn's
    // commit, which is synchronous: WAL is flushed in order, so that flush covers this row too.
    // A database crash can then only lose the row of a turn that had not finished, whose client
    // never got a completed answer (and would have found it failed, `interrupted`, otherwise).
    // A background turn's `queued` row is what its client polls, so it waits for the disk.
    const result = await this.#query<{ inserted: number }>(
      S.beginTurn,
      this.#responseValues(response, response.status === 'in_progress'),
    );
    if (result.rows[0].inserted === 0)
      throw new StoreConflictError(`Response ${response.id} already exists.`);
  }

  async finishTurn(id: string, result: TurnResult): Promise<void> {
    const [outputIds, outputData] = itemArrays(result.output);
    const res = await this.#query<{ finished: number; status: string | null }>(S.finishTurn, [
      esc(id),
      result.status,
      result.completedAt,
      encodeUsageOrNull(result.usage),
      jsonOrNull(result.error),
      jsonOrNull(result.incompleteDetails),
      outputIds,
      outputData,
      nowSeconds(),
      result.usage?.input_tokens ?? 0,
      result.usage?.output_tokens ?? 0,
      result.usage?.total_tokens ?? 0,
      result.costUsd ?? 0,
    ]);
    const row = res.rows[0];
    if (row.finished === 0) {
      throw new StoreConflictError(
        row.status === null
          ? `Cannot finish response ${id}: it does not exist.`
          : row.status === 'queued' || row.status === 'in_progress'
            ? `Cannot finish response ${id}: another caller finished it at the same time.`
            : `Cannot finish response ${id}: it is already ${row.status}.`,
      );
    }
  }

  async saveProgress(id: string, progress: TurnProgress): Promise<boolean> {
    const [outputIds, outputData] = itemArrays(progress.output);
    const res = await this.#query<{ saved: number }>(S.saveProgress, [
      esc(id),
      progress.status,
      outputIds,
      outputData,
    ]);
    return res.rows[0].saved > 0;
  }

  async getResponse(id: string): Promise<StoredResponse | null> {
    const res = await this.#query<Row>(S.chain, [esc(id), nowSeconds(), 0]);
    const chain = decodeChain(res.rows);
    return chain.length === 0 ? null : chain[0];
  }

  async loadChain(id: string): Promise<StoredResponse[] | null> {
    const res = await this.#query<Row>(S.chain, [esc(id), nowSeconds(), MAX_CHAIN_DEPTH]);
    const chain = decodeChain(res.rows);
    if (chain.length === 0) return null;
    // The walk stops early when an ancestor is missing or expired: then the root still has a parent.
    const root = chain[0];
    if (root.previousResponseId !== null) throw new ChainBrokenError(id, root.previousResponseId);
    return chain;
  }

  async deleteResponse(id: string): Promise<boolean> {
    const res = await this.#query<{ deleted: number }>(S.deleteResponse, [esc(id)]);
    return res.rows[0].deleted > 0;
  }

  async listInputItems(id: string, options: ListOptions): Promise<ItemPage | null> {
    const statement = options.order === 'asc' ? S.inputPageAsc : S.inputPageDesc;
    return this.#page(statement, id, options);
  }

  async pruneExpired(now: number): Promise<number> {
    let removed = 0;
    // Conversations first, so items of responses that go with them are not copied for nothing.
    for (const statement of [S.pruneConversations, S.pruneResponses]) {
      for (;;) {
        const res = await this.#query<{ deleted: number }>(statement, [now]);
        removed += res.rows[0].deleted;
        if (res.rows[0].deleted < PRUNE_BATCH) break;
      }
    }
    await this.#query(S.pruneLeases, []);
    return removed;
  }

  /** How many records pruneExpired(now) would delete, deleting nothing (`parley prune --dry-run`). */
  async countExpired(now: number): Promise<number> {
    const res = await this.#query<{ n: number }>(S.countExpired, [now]);
    return res.rows[0].n;
  }

  // ---------- conversations ----------

  async createConversation(conversation: StoredConversation, items: Item[]): Promise<void> {
    const res = await this.#query<{ inserted: number }>(
      S.createConversation,
      this.#conversationValues(conversation, items.length, items),
    );
    if (res.rows[0].inserted === 0)
      throw new StoreConflictError(`Conversation ${conversation.id} already exists.`);
  }

  async getConversation(id: string): Promise<StoredConversation | null> {
    const res = await this.#query<ConversationRow>(S.getConversation, [esc(id), nowSeconds()]);
    return res.rows.length === 0 ? null : decodeConversation(res.rows[0]);
  }

  async updateConversation(
    id: string,
    patch: { metadata: Record<string, string> },
  ): Promise<StoredConversation | null> {
    const res = await this.#query<ConversationRow>(S.updateConversation, [
      esc(id),
      nowSeconds(),
      escMetadata(patch.metadata),
    ]);
    return res.rows.length === 0 ? null : decodeConversation(res.rows[0]);
  }

  async deleteConversation(id: string): Promise<boolean> {
    const res = await this.#query<{ deleted: number }>(S.deleteConversation, [esc(id), nowSeconds()]);
    return res.rows[0].deleted > 0;
  }

  async appendConversationItems(id: string, items: Item[]): Promise<StoredConversation | null> {
    const [ids, data] = itemArrays(items);
    const res = await this.#query<ConversationRow>(S.appendConversationItems, [
      esc(id),
      nowSeconds(),
      ids,
      data,
    ]);
    return res.rows.length === 0 ? null : decodeConversation(res.rows[0]);
  }

  async loadConversationItems(id: string): Promise<Item[] | null> {
    const res = await this.#query<Row>(S.loadConversationItems, [esc(id), nowSeconds()]);
    const page = decodePage(res.rows, 'asc');
    return page === null ? null : page.items;
  }

  async loadConversationItemsFrom(id: string, position: number): Promise<{ items: Item[]; itemCount: number } | null> {
    const res = await this.#query<Row>(S.loadConversationItemsFrom, [esc(id), nowSeconds(), position]);
    const header = res.rows.find((row) => row[0] === 0);
    const page = decodePage(res.rows, 'asc');
    return page === null || header === undefined ? null : { items: page.items, itemCount: Number(header[1]) };
  }

  async listConversationItems(id: string, options: ListOptions): Promise<ItemPage | null> {
    const statement = options.order === 'asc' ? S.conversationPageAsc : S.conversationPageDesc;
    return this.#page(statement, id, options);
  }

  async getConversationItem(conversationId: string, itemId: string): Promise<Item | null> {
    const res = await this.#query<{ item_id: string; data: string }>(S.getConversationItem, [
      esc(conversationId),
      nowSeconds(),
      esc(itemId),
    ]);
    return res.rows.length === 0 ? null : decodeItem(res.rows[0].item_id, res.rows[0].data);
  }

  async deleteConversationItem(conversationId: string, itemId: string): Promise<boolean> {
    const res = await this.#query(S.deleteConversationItem, [esc(conversationId), nowSeconds(), esc(itemId)]);
    return (res.rowCount ?? 0) > 0;
  }

  async listConversations(
    query: ConversationQuery,
  ): Promise<{ conversations: StoredConversation[]; hasMore: boolean }> {
    const limit = Math.max(0, query.limit);
    const metadata =
      query.metadata && Object.keys(query.metadata).length > 0 ? escMetadata(query.metadata) : null;
    const res = await this.#query<ConversationRow>(
      query.order === 'asc' ? S.listConversationsAsc : S.listConversationsDesc,
      [
        nowSeconds(),
        esc(query.tenant),
        esc(query.user ?? null),
        metadata,
        query.after === undefined ? null : esc(query.after),
        limit + 1,
        query.createdAfter ?? null,
        query.createdBefore ?? null,
      ],
    );
    const rows = res.rows;
    const hasMore = rows.length > limit;
    if (hasMore) rows.length = limit;
    return { conversations: rows.map(decodeConversation), hasMore };
  }

  async acquireConversationLease(conversationId: string, holder: string, ttlMs: number): Promise<boolean> {
    const res = await this.#query(S.acquireLease, [esc(conversationId), esc(holder), ttlMs]);
    return (res.rowCount ?? 0) > 0;
  }

  async renewConversationLease(conversationId: string, holder: string, ttlMs: number): Promise<boolean> {
    const res = await this.#query(S.renewLease, [esc(conversationId), esc(holder), ttlMs]);
    return (res.rowCount ?? 0) > 0;
  }

  async releaseConversationLease(conversationId: string, holder: string): Promise<void> {
    await this.#query(S.releaseLease, [esc(conversationId), esc(holder)]);
  }

  async mergeConversationMetadata(
    id: string,
    patch: Record<string, string | null>,
  ): Promise<StoredConversation | null> {
    const set: [string, string][] = [];
    const remove: string[] = [];
    for (const [key, value] of Object.entries(patch)) {
      if (value === null) remove.push(esc(key));
      else set.push([esc(key), esc(value)]);
    }
    const res = await this.#query<ConversationRow>(S.mergeMetadata, [
      esc(id),
      nowSeconds(),
      JSON.stringify(Object.fromEntries(set)),
      remove,
    ]);
    return res.rows.length === 0 ? null : decodeConversation(res.rows[0]);
  }

  async forkConversation(
    sourceId: string,
    upToItemId: string,
    target: StoredConversation,
  ): Promise<StoredConversation | null> {
    const res = await this.#query<ConversationRow & { found: number }>(S.forkConversation, [
      esc(sourceId),
      nowSeconds(),
      esc(upToItemId),
      esc(target.id),
      esc(target.tenant),
      target.createdAt,
      effectiveExpiry(target.expiresAt, target.createdAt, this.#ttlSeconds),
      esc(target.user),
      escMetadata(target.metadata),
      target.updatedAt,
    ]);
    const row = res.rows[0];
    if (row.found === 0) return null;
    if (row.id === null) throw new StoreConflictError(`Conversation ${target.id} already exists.`);
    return decodeConversation(row);
  }

  async deleteUserData(tenant: string, user: string): Promise<{ responses: number; conversations: number }> {
    const res = await this.#query<{ responses: number; conversations: number }>(S.deleteUserData, [
      esc(tenant),
      esc(user),
    ]);
    return { responses: res.rows[0].responses, conversations: res.rows[0].conversations };
  }

  async failStaleTurns(before: number): Promise<number> {
    const res = await this.#query<{ failed: number }>(S.failStaleTurns, [
      JSON.stringify(INTERRUPTED_ERROR),
      before,
    ]);
    return res.rows[0].failed;
  }

  async *exportRecords(filter: ExportFilter): AsyncIterable<ExportRecord> {
    const tenant = filter.tenant === undefined ? null : esc(filter.tenant);
    const conversationId = filter.conversationId === undefined ? null : esc(filter.conversationId);
    const since = filter.since ?? null;
    // Batches, one statement each: no transaction stays open while the consumer awaits.
    // Responses in insertion order, each after its parent (a parent re-imported after its
    // children is waited for); parents deleted or expired meanwhile release their children at the end.
    const waiting = new Map<string, StoredResponse[]>();
    function* emit(response: StoredResponse): Generator<ExportRecord> {
      yield { type: 'response', response };
      const children = waiting.get(response.id);
      if (children === undefined) return;
      waiting.delete(response.id);
      for (const child of children) yield* emit(child);
    }
    let after = 0;
    for (;;) {
      const res = await this.#query<Row>(S.exportResponses, [
        after,
        nowSeconds(),
        tenant,
        conversationId,
        since,
        EXPORT_BATCH,
      ]);
      if (res.rows.length === 0) break;
      const held = new Set<string>();
      for (const row of res.rows) {
        if (row[C.kind] !== 0) continue;
        after = Math.max(after, row[C.seq] as number);
        if (row[C.parentLater] === true) held.add(unesc(row[C.id] as string));
      }
      // decodeChain puts the highest depth first; depth numbers the batch in insertion order.
      for (const response of decodeChain(res.rows).reverse()) {
        if (held.has(response.id)) {
          const parent = response.previousResponseId as string;
          const siblings = waiting.get(parent);
          if (siblings === undefined) waiting.set(parent, [response]);
          else siblings.push(response);
          continue;
        }
        yield* emit(response);
      }
    }
    while (waiting.size > 0) {
      const [parent, children] = waiting.entries().next().value as [string, StoredResponse[]];
      waiting.delete(parent);
      for (const child of children) yield* emit(child);
    }

    let anchor: [number, number] = [Number.MIN_SAFE_INTEGER, 0];
    for (;;) {
      const res = await this.#query<ConversationRow & { seq: number }>(S.exportConversations, [
        anchor[0],
        anchor[1],
        nowSeconds(),
        tenant,
        conversationId,
        since,
        EXPORT_BATCH,
      ]);
      if (res.rows.length === 0) break;
      const items = new Map<string, Item[]>(res.rows.map((row) => [row.id, []]));
      const itemRows = await this.#query<Row>(S.exportConversationItems, [res.rows.map((row) => row.id)]);
      for (const [conversation, , itemId, data] of itemRows.rows) {
        items.get(conversation as string)?.push(decodeItem(itemId as string, data as string));
      }
      for (const row of res.rows) {
        anchor = [row.created_at, row.seq];
        yield { type: 'conversation', conversation: decodeConversation(row), items: items.get(row.id) ?? [] };
      }
    }
  }

  async importRecords(records: AsyncIterable<ExportRecord> | Iterable<ExportRecord>): Promise<ImportSummary> {
    this.#connected();
    const summary: ImportSummary = { responses: 0, conversations: 0, skipped: 0 };
    let batch: ExportRecord[] = [];
    for await (const record of records) {
      batch.push(record);
      if (batch.length >= IMPORT_BATCH) {
        await this.#importBatch(batch, summary);
        batch = [];
      }
    }
    await this.#importBatch(batch, summary);
    return summary;
  }

  /** One transaction: a batch lands whole or (on error) not at all. */
  async #importBatch(batch: ExportRecord[], summary: ImportSummary): Promise<void> {
    if (batch.length === 0) return;
    const counted = { ...summary };
    const client = await this.#connected().pool.connect();
    try {
      await client.query('BEGIN');
      for (const record of batch) {
        const res =
          record.type === 'response'
            ? await this.#query<{ inserted: number }>(
                S.beginTurn,
                this.#responseValues(record.response, false),
                client,
              )
            : await this.#query<{ inserted: number }>(
                S.createConversation,
                this.#conversationValues(record.conversation, record.conversation.itemCount, record.items),
                client,
              );
        if (res.rows[0].inserted === 0) counted.skipped++;
        else if (record.type === 'response') counted.responses++;
        else counted.conversations++;
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw this.#scrub(error);
    } finally {
      client.release();
    }
    Object.assign(summary, counted);
  }

  // ---------- internals ----------

  #connect(ssl: Target['ssl']): Connections {
    const t = this.#target;
    const config: pg.ClientConfig = {
      connectionString: t.connectionString,
      connectionTimeoutMillis: t.connectTimeoutMs,
      keepAlive: true,
      application_name: 'parley',
      types: TYPES,
      ...(ssl === undefined ? {} : { ssl }),
    };
    const pool = new pg.Pool({
      ...config,
      max: this.#poolSize,
      idleTimeoutMillis: IDLE_MS,
      ...(this.#Client ? { Client: this.#Client } : {}),
    });
    // An idle connection that breaks (server restart, failover) must not crash the process: the
    // pool drops it and the next query opens a new one.
    pool.on('error', () => {});
    // Behind a transaction-mode pooler (pgbouncer=true), or with pipeline=false, statements keep
    // to the pool, one per connection at a time: not every pooler follows a pipeline of separate
    // transactions.
    const statements = this.#target.pipelined
      ? new PipelinedConnections({ config, Client: this.#Client, max: this.#poolSize, idleMs: IDLE_MS })
      : pool;
    return { pool, statements };
  }

  /** Closes every connection; `strict` reports a failure to close instead of ignoring it. */
  async #disconnect(strict = false): Promise<void> {
    const connections = this.#connections;
    this.#connections = null;
    if (connections === null) return;
    const ending = [connections.pool.end()];
    if (connections.statements !== connections.pool) ending.push(connections.statements.end());
    if (strict) await Promise.all(ending);
    else await Promise.allSettled(ending);
  }

  #connected(): Connections {
    if (this.#connections === null) throw new Error('PostgresStore is not open: call open() first.');
    return this.#connections;
  }

  /** Runs one statement on the pool (or on `client`, inside a transaction). */
  async #query<R extends pg.QueryResultRow | Row = pg.QueryResultRow>(
    statement: Statement,
    values: unknown[],
    client?: pg.PoolClient,
  ): Promise<pg.QueryResult<R & pg.QueryResultRow>> {
    const target: StatementRunner = client ?? this.#connected().statements;
    const config: pg.QueryConfig & { rowMode?: 'array' } = { text: statement.text, values };
    if (this.#target.namedStatements) config.name = statement.name;
    if (statement.rowMode === 'array') config.rowMode = 'array';
    for (let attempt = 1; ; attempt++) {
      try {
        return (await target.query(config)) as pg.QueryResult<R & pg.QueryResultRow>;
      } catch (error) {
        // A connection the server shut down (restart, failover, pg_terminate_backend) answers
        // 57P01-57P03 instead of running the statement, and runs none pipelined behind it
        // (postgres-pipeline.ts gives them that code too): nothing was written, so once more on a
        // fresh connection is safe (not inside a transaction, whose connection is gone). A
        // connection that broke otherwise may have run the statement; only a read is repeated
        // then. Anything else is the caller's to see.
        if (
          client === undefined &&
          attempt === 1 &&
          (terminatedByServer(error) || (statement.reads && broken(error)))
        )
          continue;
        throw this.#scrub(error);
      }
    }
  }

  /**
   * beginTurn's statement values: a whole response with its items (also what an import writes);
   * `asyncCommit` lets its transaction commit without waiting for the WAL flush.
   */
  #responseValues(response: StoredResponse, asyncCommit: boolean): unknown[] {
    const [inputIds, inputData] = itemArrays(response.input);
    const [outputIds, outputData] = itemArrays(response.output);
    return [
      esc(response.id),
      esc(response.previousResponseId),
      esc(response.conversationId),
      esc(response.model),
      response.status,
      response.createdAt,
      response.completedAt,
      effectiveExpiry(response.expiresAt, response.createdAt, this.#ttlSeconds),
      encodeParams(response.params),
      encodeUsageOrNull(response.usage),
      jsonOrNull(response.error),
      jsonOrNull(response.incompleteDetails),
      inputIds,
      inputData,
      outputIds,
      outputData,
      esc(response.tenant),
      esc(response.user),
      asyncCommit,
    ];
  }

  /** INSERT_CONVERSATION_SQL's values. */
  #conversationValues(conversation: StoredConversation, itemCount: number, items: Item[]): unknown[] {
    const [ids, data] = itemArrays(items);
    const usage = conversation.usage;
    return [
      esc(conversation.id),
      esc(conversation.tenant),
      conversation.createdAt,
      effectiveExpiry(conversation.expiresAt, conversation.createdAt, this.#ttlSeconds),
      esc(conversation.user),
      escMetadata(conversation.metadata),
      itemCount,
      usage.input_tokens,
      usage.output_tokens,
      usage.total_tokens,
      usage.cost_usd,
      usage.turns,
      conversation.updatedAt,
      ids,
      data,
    ];
  }

  async #page(statement: Statement, id: string, options: ListOptions): Promise<ItemPage | null> {
    const limit = Math.max(0, options.limit);
    const after = options.after === undefined ? null : esc(options.after);
    // One extra row tells whether another page exists.
    const res = await this.#query<Row>(statement, [esc(id), nowSeconds(), after, limit + 1]);
    const page = decodePage(res.rows, options.order);
    if (page === null) return null;
    const hasMore = page.items.length > limit;
    if (hasMore) page.items.length = limit;
    return { items: page.items, hasMore };
  }

  async #migrate(): Promise<MigrationResult> {
    const client = await this.#connected().pool.connect();
    try {
      const info = await inspect(client);
      if (info.version > SCHEMA_VERSION) {
        throw new PostgresStoreError(
          `The Parley schema in ${this.#where(info.schema)} is version ${info.version}, newer than this Parley ` +
            `(${SCHEMA_VERSION}). Upgrade Parley (every instance sharing the database).`,
          'schema_too_new',
        );
      }
      if (info.version === SCHEMA_VERSION || info.version < 0) {
        if (info.lacking.length > 0) throw this.#privilegeError(info.role, info.schema, info.lacking);
        return { from: info.version, to: info.version, applied: [], schema: info.schema };
      }
      if (!info.canCreate) throw this.#createPrivilegeError(info.role, info.schema);
      return await this.#applyMigrations(client, info.schema);
    } finally {
      client.release();
    }
  }

  async #applyMigrations(client: pg.PoolClient, schema: string): Promise<MigrationResult> {
    await client.query('BEGIN');
    try {
      // Every instance starting at once queues here; the first migrates, the rest find it done.
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))', [
        MIGRATION_LOCK_CLASS,
      ]);
      const exists = await client.query<{ exists: boolean }>(
        `SELECT to_regclass('parley_schema_migrations') IS NOT NULL AS exists`,
      );
      if (!exists.rows[0].exists) await client.query(MIGRATIONS_TABLE_SQL);
      const current = await client.query<{ version: number }>(
        'SELECT coalesce(max(version), 0)::integer AS version FROM parley_schema_migrations',
      );
      const from = current.rows[0].version;
      const applied: number[] = [];
      for (const migration of MIGRATIONS) {
        if (migration.version <= from) continue;
        await client.query(`${migration.sql}\n${recordMigrationSql(migration)}`);
        applied.push(migration.version);
      }
      await client.query('COMMIT');
      return { from, to: Math.max(from, SCHEMA_VERSION), applied, schema };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    }
  }

  #where(schema: string): string {
    return `schema "${schema}" of database "${this.#target.database}"`;
  }

  #createPrivilegeError(role: string, schema: string): PostgresStoreError {
    return new PostgresStoreError(
      `Cannot create Parley's tables: role "${role}" has no CREATE privilege on ${this.#where(schema)}. ` +
        `As the schema owner or a superuser, run:\n` +
        `  GRANT CREATE ON SCHEMA ${ident(schema)} TO ${ident(role)};\n` +
        `or have an owner create the schema once (parley migrate --config FILE, or src/store/postgres-schema.sql) ` +
        `and grant this role SELECT, INSERT, UPDATE, DELETE on its tables.`,
      '42501',
    );
  }

  #privilegeError(role: string, schema: string, tables: string[]): PostgresStoreError {
    return new PostgresStoreError(
      `Role "${role}" may not read and write Parley's tables in ${this.#where(schema)} ` +
        `(missing on: ${tables.join(', ')}). As their owner or a superuser, run:\n` +
        `  GRANT USAGE ON SCHEMA ${ident(schema)} TO ${ident(role)};\n` +
        `  GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${ident(schema)} TO ${ident(role)};`,
      '42501',
    );
  }

  /** Removes the password from an error's message (and its stack) in every spelling. */
  #scrub(error: unknown): unknown {
    if (!(error instanceof Error)) return error;
    for (const secret of this.#target.secrets) {
      if (error.message.includes(secret)) error.message = error.message.replaceAll(secret, '***');
      if (error.stack?.includes(secret)) error.stack = error.stack.replaceAll(secret, '***');
    }
    return error;
  }

  /** Turns a connection or startup failure into a message that says what to fix. */
  #explain(error: unknown): PostgresStoreError {
    if (error instanceof PostgresStoreError) return this.#scrub(error) as PostgresStoreError;
    const e = (error ?? {}) as { code?: string; message?: string; errors?: unknown[] };
    const t = this.#target;
    const at = `${t.host}:${t.port}`;
    const original = String(e.message ?? error);
    let code = e.code;
    // AggregateError (several addresses for one host): use the first error's code.
    if (code === undefined && Array.isArray(e.errors) && e.errors.length > 0) {
      code = (e.errors[0] as { code?: string }).code;
    }
    let message: string;
    switch (code) {
      case 'ECONNREFUSED':
        message =
          `Cannot connect to PostgreSQL at ${at}: connection refused. Is the server running, and are the host ` +
          `and port in state_storage.connection_string right?`;
        break;
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        message = `Cannot connect to PostgreSQL: host "${t.host}" was not found (DNS). Check the host in state_storage.connection_string.`;
        break;
      case 'ETIMEDOUT':
      case 'EHOSTUNREACH':
      case 'ENETUNREACH':
        message = `Cannot connect to PostgreSQL at ${at}: ${code}. Check the address, firewalls and security groups.`;
        break;
      case '28P01':
        message =
          `PostgreSQL rejected the password for role "${t.user}" at ${at}/${t.database}. Check the password in ` +
          `state_storage.connection_string; URL-encode its special characters (@ as %40, : as %3A, / as %2F, % as %25).`;
        break;
      case '28000':
        message = `PostgreSQL refused role "${t.user}" at ${at}/${t.database}: ${original}. Check the role name and the server's pg_hba.conf.`;
        break;
      case '3D000':
        message =
          `Database "${t.database}" does not exist on ${at}. Create it (as a superuser or a role with CREATEDB):\n` +
          `  CREATE DATABASE ${ident(t.database)} OWNER ${ident(t.user)};`;
        break;
      case '42501':
        message = `PostgreSQL denied role "${t.user}" a privilege Parley needs in database "${t.database}": ${original}.`;
        break;
      case '53300':
        message = `PostgreSQL at ${at} has no free connection slots (${original}). Lower state_storage.pool_size or raise max_connections.`;
        break;
      case '57P03':
        message = `PostgreSQL at ${at} is not accepting connections yet (${original}). Retry when it has started.`;
        break;
      case '3F000':
        message = `The schema named in the search_path does not exist in database "${t.database}": ${original}. Create it or fix options=-c search_path=... .`;
        break;
      case 'SELF_SIGNED_CERT_IN_CHAIN':
      case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
      case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
      case 'CERT_HAS_EXPIRED':
      case 'ERR_TLS_CERT_ALTNAME_INVALID':
        message =
          `The TLS certificate of PostgreSQL at ${at} could not be verified (${code}). Pass the provider's root ` +
          `certificate with sslrootcert=/path/to/root.crt, or use sslmode=require to encrypt without verifying.`;
        break;
      default:
        if (/does not support SSL/i.test(original)) {
          message = `PostgreSQL at ${at} does not accept TLS connections, but the connection string asks for it. Use sslmode=disable or prefer, or enable ssl on the server.`;
        } else if (/timeout/i.test(original)) {
          message =
            `Cannot connect to PostgreSQL at ${at}: no answer within ${t.connectTimeoutMs / 1000}s. Check the address, ` +
            `firewalls and security groups (connect_timeout=N in the URL changes the limit)` +
            (t.pipelined
              ? '.'
              : `; under load, all ${this.#poolSize} pooled connections (state_storage.pool_size) may also have ` +
                'stayed busy that long.');
        } else if (/terminated unexpectedly|ECONNRESET/i.test(original) || code === 'ECONNRESET') {
          message = `PostgreSQL at ${at} closed the connection (${original}). If a pooler is in between, check that it knows database "${t.database}" and role "${t.user}".`;
        } else {
          message = `PostgreSQL at ${at}/${t.database}: ${original}`;
        }
    }
    return this.#scrub(new PostgresStoreError(message, code)) as PostgresStoreError;
  }
}

interface SchemaInfo {
  role: string;
  schema: string;
  /** -1 when the role may not read parley_schema_migrations. */
  version: number;
  canCreate: boolean;
  /** Parley tables that exist but lack one of SELECT, INSERT, UPDATE, DELETE for this role. */
  lacking: string[];
}

async function inspect(client: pg.PoolClient): Promise<SchemaInfo> {
  const res = await client.query<{
    role: string;
    schema: string | null;
    search_path: string;
    can_create: boolean | null;
    has_table: boolean;
    lacking: string[];
  }>(
    `SELECT current_user AS role, current_schema() AS schema, current_setting('search_path') AS search_path,
            CASE WHEN current_schema() IS NULL THEN NULL ELSE has_schema_privilege(current_schema(), 'CREATE') END AS can_create,
            to_regclass('parley_schema_migrations') IS NOT NULL AS has_table,
            ARRAY(SELECT t FROM unnest($1::text[]) AS t
                   WHERE to_regclass(t) IS NOT NULL
                     AND NOT (has_table_privilege(t, 'SELECT') AND has_table_privilege(t, 'INSERT')
                              AND has_table_privilege(t, 'UPDATE') AND has_table_privilege(t, 'DELETE'))) AS lacking`,
    [TABLES],
  );
  const row = res.rows[0];
  if (row.schema === null) {
    const first =
      row.search_path
        .split(',')[0]
        ?.trim()
        .replace(/^"\$user"$/, row.role) || 'public';
    throw new PostgresStoreError(
      `No usable schema for Parley's tables: search_path is "${row.search_path}", and none of its schemas exists ` +
        `or grants role "${row.role}" USAGE. Create the schema or grant access, e.g.:\n` +
        `  GRANT USAGE, CREATE ON SCHEMA ${ident(first)} TO ${ident(row.role)};`,
      '3F000',
    );
  }
  let version = 0;
  if (row.has_table) {
    // Unreadable bookkeeping: report the privileges rather than guess the version.
    if (row.lacking.includes('parley_schema_migrations')) {
      return { role: row.role, schema: row.schema, version: -1, canCreate: false, lacking: row.lacking };
    }
    const v = await client.query<{ version: number }>(
      'SELECT coalesce(max(version), 0)::integer AS version FROM parley_schema_migrations',
    );
    version = v.rows[0].version;
  }
  return {
    role: row.role,
    schema: row.schema,
    version,
    canCreate: row.can_create === true,
    lacking: row.lacking,
  };
}

/** An identifier as SQL needs it: bare when it is a plain lower-case name, else double-quoted. */
function ident(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

function decodeConversation(row: ConversationRow): StoredConversation {
  return {
    id: unesc(row.id),
    tenant: unesc(row.tenant),
    createdAt: row.created_at,
    metadata: unescMetadata(row.metadata),
    user: unesc(row.end_user),
    itemCount: row.item_count,
    expiresAt: row.expires_at,
    usage: {
      input_tokens: row.input_tokens,
      output_tokens: row.output_tokens,
      total_tokens: row.total_tokens,
      cost_usd: row.cost_usd,
      turns: row.turns,
    },
    updatedAt: row.updated_at,
  };
}

/**
 * Rows of a page query: a header row (kind 0) when the owner exists and is live, then item rows
 * (kind 1, position, item_id, data). Null without a header. Rows normally arrive in order; they are put in
 * order when not.
 */
function decodePage(rows: Row[], order: 'asc' | 'desc'): { items: Item[] } | null {
  let header = false;
  const entries: Row[] = [];
  for (const row of rows) {
    if (row[0] === 0) header = true;
    else entries.push(row);
  }
  if (!header) return null;
  const sign = order === 'asc' ? 1 : -1;
  for (let i = 1; i < entries.length; i++) {
    if (sign * ((entries[i][1] as number) - (entries[i - 1][1] as number)) < 0) {
      entries.sort((a, b) => sign * ((a[1] as number) - (b[1] as number)));
      break;
    }
  }
  return { items: entries.map((row) => decodeItem(row[2] as string, row[3] as string)) };
}

/** Chain (and export) rows: item rows carry their escaped item_id, unescaped here. */
function decodeChain(rows: Row[]): StoredResponse[] {
  for (const row of rows) {
    if (row[C.kind] !== 0) row[C.id] = unesc(row[C.id] as string);
  }
  return assembleChain(rows, decodeResponse);
}

function decodeResponse(row: Row, input: Item[], output: Item[]): StoredResponse {
  const params = row[C.params] as string;
  return defineLazyParams(
    {
      id: unesc(row[C.id] as string),
      tenant: unesc(row[C.tenant] as string),
      user: unesc(row[C.user] as string | null),
      previousResponseId: unesc(row[C.previousResponseId] as string | null),
      conversationId: unesc(row[C.conversationId] as string | null),
      model: unesc(row[C.model] as string),
      status: row[C.status] as StoredResponse['status'],
      createdAt: row[C.createdAt] as number,
      completedAt: row[C.completedAt] as number | null,
      expiresAt: row[C.expiresAt] as number | null,
      input,
      output,
      usage: decodeUsageOrNull(row[C.usage] as string | null),
      error: parseOrNull(row[C.error] as string | null),
      incompleteDetails: parseOrNull(row[C.incompleteDetails] as string | null),
    },
    () => decodeParams(params),
  );
}
