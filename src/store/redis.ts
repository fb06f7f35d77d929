// The Redis backend, on ioredis: standalone (`redis://`, `rediss://`), Sentinel and Cluster.
//
// Key layout (P = the key prefix, `parley:` by default, `{parley}:` in cluster mode):
//   P r:<response id>      string  one response as a record of fields ("Response records" below);
//                                  written before: a hash (see "responses written before")
//   P c:<conversation id>  hash    m (fixed fields), md (metadata), n (items ever appended), q (list
//                                  member), t (createdAt), u (user), e (expiresAt), ix/xm (its index entries)
//   P ci:<conversation id> zset    the items: score = position, member = "<position>:<item>", or
//                                  a pointer to a turn's item in its record ("Conversation items")
//   P cx:<conversation id> hash    item id -> its positions ("3" or "3,9")
//   P l:<conversation id>  string  the lease holder (SET NX PX)
//   P ca | P cu:<user> | P cm:<len>:<key><value>
//                          zset    conversations for listing: score = createdAt, member = q (a
//                                  16-digit creation sequence + the id, so ties keep creation order)
//   P cn:<tenant>          string  that creation sequence
//   P ru:<tenant><user>    zset    a user's responses, for deleteUserData
//   P u                    zset    unfinished turns, for failStaleTurns
//   P x                    zset    every record with an expiry: score = expiresAt (s), for pruneExpired
//   P v                    string  the change token (see changeToken)
//
// Every key of a record expires natively (PEXPIREAT) at the record's expiresAt, so Redis drops
// expired data by itself; index keys expire once all their members have. A chain loads in one
// EVALSHA that walks parent links server-side. Keys are composed as `<prefix><tag>:<id>` with the
// tag first, so no id (whatever characters it holds) can make one key look like another's.

import { randomBytes } from 'node:crypto';
import { Cluster, type ClusterOptions, Command, Redis, type RedisOptions } from 'ioredis';
import type { Item } from '../protocol/types.ts';
import {
  decodeItemData,
  decodeParams,
  decodeUsageOrNull,
  defineLazyParams,
  effectiveExpiry,
  emptyConversationUsage,
  encodeItemData,
  encodeParams,
  encodeUsage,
  INTERRUPTED_ERROR,
  isExpired,
  MAX_CHAIN_DEPTH,
  nowSeconds,
  pageItems,
  parentsFirst,
  parseOrNull,
} from './codec.ts';
import { type LuaScript, SCRIPTS } from './redis-scripts.ts';
import type {
  ConversationQuery,
  ConversationStore,
  ConversationUsage,
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
import { ChainBrokenError, StoreConflictError } from './types.ts';

export interface RedisStoreOptions {
  /**
   * `redis://[user:password@]host[:port][/db]` or `rediss://…` for TLS; user and password
   * URL-encoded. In cluster mode, one or more seed nodes separated by commas.
   */
  url: string;
  /** Default retention applied to records stored without an expiry; null keeps them. */
  ttlSeconds: number | null;
  /** Prepended to every key. Default `parley:`, or `{parley}:` in cluster mode (a hash tag is required there). */
  keyPrefix?: string;
  /** Connect to a Redis Cluster (the URL names seed nodes). */
  cluster?: boolean;
  /**
   * Passed to ioredis as they are, over Parley's defaults: RedisOptions for standalone and
   * Sentinel (`sentinels`, `name`, `sentinelPassword`, `tls`, `commandTimeout`, …), ClusterOptions
   * in cluster mode (`redisOptions`, `scaleReads`, `natMap`, …).
   */
  redisOptions?: Record<string, unknown>;
}

export const DEFAULT_KEY_PREFIX = 'parley:';
export const DEFAULT_CLUSTER_KEY_PREFIX = '{parley}:';

/** Records one script call handles at most (prune, failStaleTurns, deleteUserData), so none blocks Redis for long. */
const BATCH = 500;
/** Records fetched or written per pipeline by export and import. */
const EXPORT_BATCH = 200;

/** What a conversation read returns (conversation_fields in the scripts), decoded by decodeConversation. */
const CONVERSATION_FIELDS = ['m', 'md', 'n', 'ua', 'gi', 'go', 'gt', 'gc', 'gn'] as const;

/** A response's fixed fields, as stored in its `m` field. */
type ResponseHead = [
  id: string,
  previousResponseId: string | null,
  conversationId: string | null,
  model: string,
  createdAt: number,
  expiresAt: number | null,
  tenant: string,
  user: string | null,
];

interface ParsedUrl {
  tls: boolean;
  host: string;
  port: number;
  username: string | undefined;
  password: string | undefined;
  db: number;
}

/** A connection string problem; the message never repeats the password. */
export class RedisConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedisConfigError';
  }
}

/** Parses one `redis://` / `rediss://` URL. */
export function parseRedisUrl(url: string): ParsedUrl {
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw new RedisConfigError(
      'The Redis connection string is not a valid URL: expected redis://[user:password@]host[:port][/db] or rediss://… (URL-encode special characters in the password).',
    );
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new RedisConfigError(
      `The Redis connection string must start with redis:// or rediss:// (TLS), not ${parsed.protocol}//.`,
    );
  }
  if (parsed.hostname === '') throw new RedisConfigError('The Redis connection string names no host.');
  const path = parsed.pathname.replace(/^\//, '');
  const db = path === '' ? 0 : Number(path);
  if (!Number.isInteger(db) || db < 0) {
    throw new RedisConfigError(
      // The path is not repeated: with an unencoded password in the URL, it may hold part of it.
      "The Redis connection string's path must be a database number (/0, /1, …). If the password contains / ? # or @, URL-encode it.",
    );
  }
  let username: string | undefined;
  let password: string | undefined;
  try {
    username = parsed.username === '' ? undefined : decodeURIComponent(parsed.username);
    password = parsed.password === '' ? undefined : decodeURIComponent(parsed.password);
  } catch {
    throw new RedisConfigError(
      'The user or password in the Redis connection string is not correctly URL-encoded (encode % as %25).',
    );
  }
  return {
    tls: parsed.protocol === 'rediss:',
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port === '' ? 6379 : Number(parsed.port),
    username,
    password,
    db,
  };
}

/** The URL as it may be logged: the password replaced by `***`. */
export function redactRedisUrl(url: ParsedUrl): string {
  const auth =
    url.username === undefined && url.password === undefined
      ? ''
      : `${url.username === undefined ? '' : encodeURIComponent(url.username)}${url.password === undefined ? '' : ':***'}@`;
  const host = url.host.includes(':') ? `[${url.host}]` : url.host;
  return `${url.tls ? 'rediss' : 'redis'}://${auth}${host}:${url.port}/${url.db}`;
}

/**
 * The script commands as #run calls them. ioredis makes a `…Buffer` form of every command,
 * EVALSHA's and EVAL's included, but its typings leave these two out. (`callBuffer('evalsha', …)`
 * does the same, but breaks under auto-pipelining: ioredis hands the pipeline the arguments
 * without the command name.)
 */
interface EvalCommands {
  evalsha(...args: (string | number)[]): Promise<unknown>;
  eval(...args: (string | number)[]): Promise<unknown>;
  evalshaBuffer(...args: (string | number)[]): Promise<unknown>;
  evalBuffer(...args: (string | number)[]): Promise<unknown>;
}

type Client = Redis | Cluster;

export class RedisStore implements ConversationStore {
  readonly description: string;
  readonly #options: RedisStoreOptions;
  readonly #urls: ParsedUrl[];
  readonly #prefix: string;
  readonly #ttlSeconds: number | null;
  #client: Client | null = null;
  /** The last connection error ioredis reported, for messages about why Redis is unavailable. */
  #lastError: Error | null = null;
  /** Fresh change tokens are this random text and a counter: unique across processes and calls. */
  readonly #tokenBase = randomBytes(9).toString('base64url');
  #tokensMade = 0;
  /**
   * Bumped whenever the connection is (re)established or the cluster's nodes change: the server
   * may then be another one (a failover) or have lost recent writes (a restart), so no cache
   * filled before may be trusted.
   */
  #connection = 0;

  constructor(options: RedisStoreOptions) {
    this.#options = options;
    this.#ttlSeconds = options.ttlSeconds;
    const urls = options.cluster ? options.url.split(',').filter((u) => u.trim() !== '') : [options.url];
    if (urls.length === 0) throw new RedisConfigError('The Redis connection string is empty.');
    this.#urls = urls.map(parseRedisUrl);
    this.#prefix = options.keyPrefix ?? (options.cluster ? DEFAULT_CLUSTER_KEY_PREFIX : DEFAULT_KEY_PREFIX);
    if (options.cluster && !hasHashTag(this.#prefix)) {
      throw new RedisConfigError(
        `In cluster mode the Redis key prefix must contain a hash tag such as {parley}, so that every Parley key lives in one slot and a chain loads in one script; got ${JSON.stringify(this.#prefix)}.`,
      );
    }
    if (options.cluster && this.#urls.some((u) => u.db !== 0)) {
      throw new RedisConfigError(
        'Redis Cluster has only database 0: remove the /db path from the connection string.',
      );
    }
    this.description = `redis (${describeTarget(this.#urls, options)}, prefix ${JSON.stringify(this.#prefix)})`;
  }

  /** The key prefix in use. */
  get keyPrefix(): string {
    return this.#prefix;
  }

  /** The TTL applied to responses stored without an expiry (see ConversationStore.changeToken). */
  get defaultTtlSeconds(): number | null {
    return this.#ttlSeconds;
  }

  /**
   * Moves whenever a stored response may have been deleted or changed status, by any process on
   * this Redis and prefix: the scripts that delete responses (deleteResponse, deleteUserData,
   * pruneExpired) or change a status outside a caller's own turn (failStaleTurns) set `P v` to a
   * fresh value in the same script, atomically with the change. A value is never reused: each is
   * random text plus a counter, so a token key lost to a flush comes back as a new value, and so
   * does one rolled back by a failover or restart. The connection count is part of the token, so a
   * reconnection (possibly to another server, or to one that lost writes) also moves it. Read by
   * a script, not a GET, so that it always comes from the master (never a replica with
   * `scaleReads`). Native expiry needs no change: the cache checks every turn's expiry itself.
   * Keys Redis evicts are not seen: Parley requires `maxmemory-policy noeviction` (docs/redis.md).
   */
  async changeToken(): Promise<string> {
    const value = await this.#run(SCRIPTS.changeToken, [this.#key('v')], [this.#freshToken()], { now: true });
    return `${String(value)}/${this.#connection}`;
  }

  #freshToken(): string {
    return `${this.#tokenBase}${(++this.#tokensMade).toString(36)}`;
  }

  async open(): Promise<void> {
    if (this.#client !== null) return;
    const client = this.#createClient();
    this.#lastError = null;
    // ioredis reports connection problems as events; without a listener it prints them itself.
    client.on('error', (error: Error) => {
      this.#lastError = error;
    });
    client.on('ready', () => {
      this.#lastError = null;
      this.#connection++;
    });
    const reconnected = () => {
      this.#connection++;
    };
    client.on('+node', reconnected);
    client.on('-node', reconnected);
    try {
      await client.connect();
      await this.#loadScripts(client);
    } catch (error) {
      client.disconnect();
      throw this.#startupError(error);
    }
    this.#client = client;
  }

  async close(): Promise<void> {
    const client = this.#client;
    this.#client = null;
    if (client === null) return;
    try {
      await client.quit();
    } catch {
      client.disconnect();
    }
  }

  async ping(): Promise<void> {
    try {
      await this.#redis().ping();
    } catch (error) {
      throw this.#unavailable(error);
    }
  }

  // ---------- responses ----------

  async beginTurn(response: StoredResponse): Promise<void> {
    if ((await this.#writeResponse(response)) !== 1) {
      throw new StoreConflictError(`Response ${response.id} already exists.`);
    }
  }

  /** Writes a response under a free id (a new turn, or an imported record); 0 when the id exists. */
  async #writeResponse(response: StoredResponse): Promise<unknown> {
    const expiresAt = effectiveExpiry(response.expiresAt, response.createdAt, this.#ttlSeconds);
    const userIndex = response.user === null ? '' : `ru:${lengthPrefixed([response.tenant])}${response.user}`;
    return this.#run(
      SCRIPTS.beginTurn,
      [this.#key('r:', response.id), this.#key('x'), this.#key('u')],
      [
        expiresAt === null ? '' : String(expiresAt),
        response.id,
        response.status,
        response.createdAt,
        userIndex,
        encodeRecord(response, expiresAt),
      ],
    );
  }

  async finishTurn(id: string, result: TurnResult): Promise<void> {
    const usage = [
      result.usage?.input_tokens ?? 0,
      result.usage?.output_tokens ?? 0,
      result.usage?.total_tokens ?? 0,
      String(result.costUsd ?? 0),
    ];
    const key = this.#key('r:', id);
    let outcome = await this.#run(SCRIPTS.finishTurn, [key], [nowSeconds(), id, result.status, ...usage, encodeResult(result)]);
    if (outcome === 'v1') {
      outcome = await this.#run(SCRIPTS.finishTurnV1, [key], [nowSeconds(), id, result.status, ...usage, ...legacyResultFields(result)]);
    }
    if (outcome === 'missing')
      throw new StoreConflictError(`Cannot finish response ${id}: it does not exist.`);
    if (outcome !== 'ok')
      throw new StoreConflictError(`Cannot finish response ${id}: it is already ${outcome}.`);
  }

  async saveProgress(id: string, progress: TurnProgress): Promise<boolean> {
    const key = this.#key('r:', id);
    let saved = await this.#run(SCRIPTS.saveProgress, [key], [progress.status, encodeItems(progress.output)]);
    if (saved === 'v1') saved = await this.#run(SCRIPTS.saveProgressV1, [key], legacyProgressFields(progress));
    return saved === 1;
  }

  async failStaleTurns(before: number): Promise<number> {
    let failed = 0;
    for (;;) {
      const [count, examined] = (await this.#run(
        SCRIPTS.failStaleTurns,
        [this.#key('u')],
        [before, JSON.stringify(INTERRUPTED_ERROR), BATCH, this.#freshToken()],
      )) as [number, number];
      failed += count;
      if (examined < BATCH) return failed;
    }
  }

  /** One response, live, whatever its layout: one GET (a hash written before costs one HGETALL more). */
  async getResponse(id: string): Promise<StoredResponse | null> {
    const key = this.#key('r:', id);
    const client = this.#redis();
    let record: Buffer | null;
    try {
      record = await client.getBuffer(key);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('WRONGTYPE')) throw this.#unavailable(error);
      const hash = await this.#command((c) => c.hgetall(key));
      return hash.m === undefined || !isLive(hash.e, nowSeconds()) ? null : decodeLegacyResponse(hash);
    }
    if (record === null) return null;
    const response = decodeRecord(id, record);
    return isExpired(response.expiresAt, nowSeconds()) ? null : response;
  }

  async loadChain(id: string): Promise<StoredResponse[] | null> {
    const [stoppedAt, records] = (await this.#run(
      SCRIPTS.loadChain,
      [this.#key('r:', id)],
      [nowSeconds(), MAX_CHAIN_DEPTH],
      { buffers: true },
    )) as [Buffer | null, (Buffer | Buffer[])[]];
    if (records.length === 0) return null;
    if (stoppedAt !== null) throw new ChainBrokenError(id, stoppedAt.toString());
    const chain = new Array<StoredResponse>(records.length);
    // Tip first: each record's id is its child's parent id (a record keeps only the key's id).
    let at = id;
    for (let i = 0; i < records.length; i++) {
      const response = decodeAny(at, records[i]);
      chain[records.length - 1 - i] = response;
      at = response.previousResponseId ?? '';
    }
    return chain;
  }

  async deleteResponse(id: string): Promise<boolean> {
    return (await this.#run(SCRIPTS.deleteResponse, [this.#key('r:', id)], [id, this.#freshToken()])) === 1;
  }

  async listInputItems(id: string, options: ListOptions): Promise<ItemPage | null> {
    const response = await this.getResponse(id);
    return response === null ? null : pageItems(response.input, options);
  }

  async pruneExpired(now: number): Promise<number> {
    let removed = 0;
    for (;;) {
      const count = (await this.#run(SCRIPTS.prune, [this.#key('x')], [now, BATCH, this.#freshToken()])) as number;
      removed += count;
      if (count < BATCH) return removed;
    }
  }

  /** What a prune at `now` would remove: the expiry index's members that are due (for `parley prune --dry-run`). */
  async countExpired(now: number): Promise<number> {
    return this.#command((client) => client.zcount(this.#key('x'), '-inf', now));
  }

  // ---------- conversations ----------

  async createConversation(conversation: StoredConversation, items: Item[]): Promise<void> {
    if ((await this.#writeConversation(conversation, items, null)) !== 1) {
      throw new StoreConflictError(`Conversation ${conversation.id} already exists.`);
    }
  }

  /** Writes a conversation under a free id; `itemCount` null counts `items`. 0 when the id exists. */
  async #writeConversation(conversation: StoredConversation, items: Item[], itemCount: number | null) {
    return this.#run(
      SCRIPTS.createConversation,
      [this.#key('c:', conversation.id), this.#key('x')],
      [...this.#conversationArgs(conversation, conversation.usage, itemCount), ...itemArgs(items)],
    );
  }

  /** The fields conversation_args in the scripts reads, in its order. */
  #conversationArgs(
    conversation: StoredConversation,
    usage: ConversationUsage,
    itemCount: number | null,
  ): (string | number)[] {
    const expiresAt = effectiveExpiry(conversation.expiresAt, conversation.createdAt, this.#ttlSeconds);
    return [
      conversation.id,
      conversation.tenant,
      JSON.stringify([
        conversation.id,
        conversation.tenant,
        conversation.createdAt,
        conversation.user,
        expiresAt,
      ]),
      JSON.stringify(conversation.metadata),
      conversation.createdAt,
      conversation.user === null ? '0' : '1',
      conversation.user ?? '',
      expiresAt === null ? '' : String(expiresAt),
      conversation.updatedAt,
      usage.input_tokens,
      usage.output_tokens,
      usage.total_tokens,
      String(usage.cost_usd),
      usage.turns,
      itemCount === null ? '' : itemCount,
    ];
  }

  async getConversation(id: string): Promise<StoredConversation | null> {
    const fields = await this.#command((c) => c.hmget(this.#key('c:', id), ...CONVERSATION_FIELDS, 'e'));
    const e = fields.pop();
    if (fields[0] === null || !isLive(e ?? undefined, nowSeconds())) return null;
    return decodeConversation(fields as string[], 0);
  }

  async updateConversation(
    id: string,
    patch: { metadata: Record<string, string> },
  ): Promise<StoredConversation | null> {
    const fields = (await this.#run(
      SCRIPTS.updateMetadata,
      [this.#key('c:', id), this.#key('x')],
      [nowSeconds(), 'replace', JSON.stringify(patch.metadata)],
    )) as string[] | null;
    return fields === null ? null : decodeConversation(fields, 0);
  }

  async mergeConversationMetadata(
    id: string,
    patch: Record<string, string | null>,
  ): Promise<StoredConversation | null> {
    const triples: string[] = [];
    for (const [key, value] of Object.entries(patch)) {
      triples.push(
        JSON.stringify(key),
        value === null ? '0' : '1',
        value === null ? '' : JSON.stringify(value),
      );
    }
    const fields = (await this.#run(
      SCRIPTS.updateMetadata,
      [this.#key('c:', id), this.#key('x')],
      [nowSeconds(), 'merge', ...triples],
    )) as string[] | null;
    return fields === null ? null : decodeConversation(fields, 0);
  }

  async deleteConversation(id: string): Promise<boolean> {
    return (
      (await this.#run(SCRIPTS.deleteConversation, [this.#key('c:', id)], [nowSeconds(), id, this.#freshToken()])) === 1
    );
  }

  async appendConversationItems(id: string, items: Item[]): Promise<StoredConversation | null> {
    const fields = (await this.#run(
      SCRIPTS.appendItems,
      [this.#key('c:', id)],
      [nowSeconds(), id, ...itemArgs(items)],
    )) as string[] | null;
    return fields === null ? null : decodeConversation(fields, 0);
  }

  async loadConversationItems(id: string): Promise<Item[] | null> {
    const reply = (await this.#run(
      SCRIPTS.listItems,
      [this.#key('c:', id)],
      [nowSeconds(), id, 'asc', -1, '0', ''],
      { buffers: true },
    )) as [number, ...Buffer[]];
    return reply[0] === 0 ? null : decodeMembers(reply);
  }

  async loadConversationItemsFrom(id: string, position: number): Promise<{ items: Item[]; itemCount: number } | null> {
    const reply = (await this.#run(
      SCRIPTS.loadItemsFrom,
      [this.#key('c:', id)],
      [nowSeconds(), id, position],
      { buffers: true },
    )) as [number, Buffer, ...Buffer[]];
    if (reply[0] === 0) return null;
    const [, count, ...members] = reply;
    return { items: decodeMembers([1, ...members]), itemCount: Number(count.toString()) };
  }

  async listConversationItems(id: string, options: ListOptions): Promise<ItemPage | null> {
    const limit = Math.max(0, options.limit);
    const reply = (await this.#run(
      SCRIPTS.listItems,
      [this.#key('c:', id)],
      [nowSeconds(), id, options.order, limit, options.after === undefined ? '0' : '1', options.after ?? ''],
      { buffers: true },
    )) as [number, ...Buffer[]];
    if (reply[0] === 0) return null;
    const items = decodeMembers(reply);
    const hasMore = items.length > limit;
    if (hasMore) items.length = limit;
    return { items, hasMore };
  }

  async getConversationItem(conversationId: string, itemId: string): Promise<Item | null> {
    const member = (await this.#run(
      SCRIPTS.getItem,
      [this.#key('c:', conversationId)],
      [nowSeconds(), conversationId, itemId],
      { buffers: true },
    )) as Buffer | null;
    return member === null ? null : decodeMember(member);
  }

  async deleteConversationItem(conversationId: string, itemId: string): Promise<boolean> {
    const deleted = await this.#run(
      SCRIPTS.deleteItem,
      [this.#key('c:', conversationId)],
      [nowSeconds(), conversationId, itemId, this.#freshToken()],
    );
    return deleted === 1;
  }

  async forkConversation(
    sourceId: string,
    upToItemId: string,
    target: StoredConversation,
  ): Promise<StoredConversation | null> {
    const reply = (await this.#run(
      SCRIPTS.forkConversation,
      [this.#key('c:', sourceId), this.#key('c:', target.id), this.#key('x')],
      [nowSeconds(), sourceId, upToItemId, ...this.#conversationArgs(target, emptyConversationUsage(), null)],
    )) as string[];
    if (reply[0] === 'conflict') throw new StoreConflictError(`Conversation ${target.id} already exists.`);
    return reply[0] === 'ok' ? decodeConversation(reply, 1) : null;
  }

  async listConversations(
    query: ConversationQuery,
  ): Promise<{ conversations: StoredConversation[]; hasMore: boolean }> {
    const limit = Math.max(0, query.limit);
    const pairs = Object.entries(query.metadata ?? {}).flatMap(([key, value]) => [
      JSON.stringify(key),
      JSON.stringify(value),
    ]);
    const flat = (await this.#run(
      SCRIPTS.listConversations,
      [this.#key('ca:', query.tenant)],
      [
        nowSeconds(),
        query.order,
        limit,
        query.after === undefined ? '0' : '1',
        query.after ?? '',
        query.tenant,
        query.user === undefined ? '0' : '1',
        query.user ?? '',
        query.createdAfter === undefined ? '0' : '1',
        query.createdAfter ?? '',
        query.createdBefore === undefined ? '0' : '1',
        query.createdBefore ?? '',
        pairs.length / 2,
        ...pairs,
      ],
    )) as string[];
    const conversations: StoredConversation[] = [];
    for (let i = 0; i < flat.length; i += CONVERSATION_FIELDS.length)
      conversations.push(decodeConversation(flat, i));
    const hasMore = conversations.length > limit;
    if (hasMore) conversations.length = limit;
    return { conversations, hasMore };
  }

  async deleteUserData(tenant: string, user: string): Promise<{ responses: number; conversations: number }> {
    const scope = `${lengthPrefixed([tenant])}${user}`;
    const total = { responses: 0, conversations: 0 };
    for (;;) {
      const [responses, conversations, more] = (await this.#run(
        SCRIPTS.deleteUserData,
        [this.#key('ru:', scope), this.#key('cu:', scope)],
        [BATCH, this.#freshToken()],
      )) as [number, number, number];
      total.responses += responses;
      total.conversations += conversations;
      if (more === 0) return total;
    }
  }

  // ---------- export / import ----------

  async *exportRecords(filter: ExportFilter): AsyncIterable<ExportRecord> {
    const now = nowSeconds();
    // Responses: first their fixed fields only, to filter and order; then whole, a batch at a time.
    const heads: { id: string; previousResponseId: string | null; createdAt: number }[] = [];
    for await (const ids of this.#scanIds('r:')) {
      for (let i = 0; i < ids.length; i += EXPORT_BATCH) {
        const batch = ids.slice(i, i + EXPORT_BATCH);
        const rows = await this.#readResponses(batch, 'head');
        rows.forEach((row, k) => {
          if (row === null) return;
          const head = Buffer.isBuffer(row) ? decodeRecordHead(batch[k], row) : legacyHead(row);
          if (head === null || isExpired(head.expiresAt, now)) return;
          if (filter.tenant !== undefined && head.tenant !== filter.tenant) return;
          if (filter.conversationId !== undefined && head.conversationId !== filter.conversationId) return;
          if (filter.since !== undefined && head.createdAt < filter.since) return;
          heads.push({ id: batch[k], previousResponseId: head.previousResponseId, createdAt: head.createdAt });
        });
      }
    }
    heads.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const ordered = parentsFirst(heads);
    for (let i = 0; i < ordered.length; i += EXPORT_BATCH) {
      const ids = ordered.slice(i, i + EXPORT_BATCH).map((head) => head.id);
      const rows = await this.#readResponses(ids, 'full');
      for (let k = 0; k < rows.length; k++) {
        const row = rows[k];
        // Deleted since the scan: nothing to export.
        if (row !== null && (Buffer.isBuffer(row) || row.length > 0))
          yield { type: 'response', response: decodeAny(ids[k], row) };
      }
    }

    const conversations: { id: string; createdAt: number; q: string }[] = [];
    for await (const ids of this.#scanIds('c:')) {
      const rows = await this.#batch(ids.map((id) => ['hmget', this.#key('c:', id), 'm', 'e', 'q']));
      rows.forEach((row, i) => {
        const [m, e, q] = row as [string | null, string | null, string | null];
        if (m === null || q === null || !isLive(e ?? undefined, now)) return;
        const [, tenant, createdAt] = JSON.parse(m) as [string, string, number];
        if (filter.tenant !== undefined && tenant !== filter.tenant) return;
        if (filter.conversationId !== undefined && ids[i] !== filter.conversationId) return;
        if (filter.since !== undefined && createdAt < filter.since) return;
        conversations.push({ id: ids[i], createdAt, q });
      });
    }
    conversations.sort((a, b) => a.createdAt - b.createdAt || (a.q < b.q ? -1 : a.q > b.q ? 1 : 0));
    for (const { id } of conversations) {
      const [fields, items] = await Promise.all([
        this.#command((c) => c.hmget(this.#key('c:', id), ...CONVERSATION_FIELDS)),
        this.loadConversationItems(id),
      ]);
      if (fields[0] === null || items === null) continue;
      yield { type: 'conversation', conversation: decodeConversation(fields as string[], 0), items };
    }
  }

  async importRecords(records: AsyncIterable<ExportRecord> | Iterable<ExportRecord>): Promise<ImportSummary> {
    const summary: ImportSummary = { responses: 0, conversations: 0, skipped: 0 };
    let pending: Promise<void>[] = [];
    const flush = async () => {
      await Promise.all(pending);
      pending = [];
    };
    for await (const record of records) {
      // Sent without waiting for each reply (ioredis pipelines them); a write never depends on another.
      pending.push(
        (async () => {
          const written =
            record.type === 'response'
              ? await this.#writeResponse(record.response)
              : await this.#writeConversation(
                  record.conversation,
                  record.items,
                  // Positions continue after every item ever appended, never below those present.
                  Math.max(record.conversation.itemCount, record.items.length),
                );
          if (written !== 1) summary.skipped++;
          else if (record.type === 'response') summary.responses++;
          else summary.conversations++;
        })(),
      );
      if (pending.length >= EXPORT_BATCH) await flush();
    }
    await flush();
    return summary;
  }

  /** Responses by id, a batch in one script (see READ_RESPONSES): records, or hashes written before as flat lists. */
  async #readResponses(ids: string[], mode: 'head' | 'full'): Promise<(Buffer | Buffer[] | null)[]> {
    if (ids.length === 0) return [];
    return (await this.#run(
      SCRIPTS.readResponses,
      ids.map((id) => this.#key('r:', id)),
      [mode],
      { buffers: true },
    )) as (Buffer | Buffer[] | null)[];
  }

  /** Ids of every `<tag><id>` key under the prefix, a SCAN page at a time (every master in a cluster). */
  async *#scanIds(tag: string): AsyncIterable<string[]> {
    const client = this.#redis();
    const nodes = client instanceof Cluster ? client.nodes('master') : [client];
    const start = this.#key(tag);
    const pattern = `${start.replace(/[*?[\]\\]/g, '\\$&')}*`;
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await this.#command(() => node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000));
        cursor = next;
        if (keys.length > 0) yield keys.map((key) => key.slice(start.length));
      } while (cursor !== '0');
    }
  }

  /** Runs read commands in one pipeline; replies in order. */
  async #batch(commands: string[][]): Promise<unknown[]> {
    if (commands.length === 0) return [];
    const results = await this.#command((c) => c.pipeline(commands).exec());
    return (results ?? []).map(([error, value]) => {
      if (error) throw this.#unavailable(error);
      return value;
    });
  }

  // ---------- leases ----------

  async acquireConversationLease(conversationId: string, holder: string, ttlMs: number): Promise<boolean> {
    const key = this.#key('l:', conversationId);
    const ttl = leaseTtl(ttlMs);
    const taken = await this.#command((c) => c.set(key, holder, 'PX', ttl, 'NX'));
    if (taken === 'OK') return true;
    // Held already: by this holder (take it again, extended) or by another (refused).
    return (await this.#run(SCRIPTS.renewLease, [key], [holder, ttl])) === 1;
  }

  async renewConversationLease(conversationId: string, holder: string, ttlMs: number): Promise<boolean> {
    const renewed = await this.#run(
      SCRIPTS.renewLease,
      [this.#key('l:', conversationId)],
      [holder, leaseTtl(ttlMs)],
    );
    return renewed === 1;
  }

  async releaseConversationLease(conversationId: string, holder: string): Promise<void> {
    await this.#run(SCRIPTS.releaseLease, [this.#key('l:', conversationId)], [holder]);
  }

  // ---------- plumbing ----------

  #key(tag: string, id = ''): string {
    return this.#prefix + tag + id;
  }

  #redis(): Client {
    if (this.#client === null) throw new Error('RedisStore is not open: call open() first.');
    return this.#client;
  }

  /** Runs one command; connection failures come back as a clear "Cannot reach Redis at …" error. */
  async #command<T>(run: (client: Client) => Promise<T>): Promise<T> {
    const client = this.#redis();
    try {
      return await run(client);
    } catch (error) {
      throw this.#unavailable(error);
    }
  }

  /**
   * EVALSHA, or EVAL when the server does not have the script (restarted, failed over, flushed).
   * `buffers`: bulk replies as Buffers (response records and conversation items hold byte lengths).
   * Commands are auto-pipelined (see #createClient); `now` sends this one at once instead, for a
   * read a turn waits on before it can call the upstream. A command sent at once may pass
   * pipelined ones issued before it, whose callers have not been answered yet.
   */
  async #run(
    script: LuaScript,
    keys: string[],
    args: (string | number)[],
    { buffers = false, now = false }: { buffers?: boolean; now?: boolean } = {},
  ): Promise<unknown> {
    const client = this.#redis();
    const send = (command: 'evalsha' | 'eval', head: string): Promise<unknown> => {
      const argv = [head, keys.length, ...keys, this.#prefix, ...args];
      if (now) {
        const sent = new Command(command, argv, { replyEncoding: buffers ? null : 'utf8' });
        client.sendCommand(sent);
        return sent.promise;
      }
      const name: keyof EvalCommands = buffers ? `${command}Buffer` : command;
      return (client as unknown as EvalCommands)[name](...argv);
    };
    try {
      return await send('evalsha', script.sha);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw this.#unavailable(error);
    }
    try {
      return await send('eval', script.lua);
    } catch (error) {
      throw this.#unavailable(error);
    }
  }

  async #loadScripts(client: Client): Promise<void> {
    const nodes = client instanceof Cluster ? client.nodes('master') : [client];
    await Promise.all(nodes.flatMap((node) => Object.values(SCRIPTS).map((s) => node.script('LOAD', s.lua))));
  }

  #createClient(): Client {
    const [first] = this.#urls;
    const credentials = {
      username: first.username,
      password: first.password,
      ...(first.tls ? { tls: {} } : {}),
    };
    // Fail fast instead of queueing while Redis is down (the gateway answers 503 and recovers when
    // it is back), and never resend a command after a dropped connection: an append could land twice.
    // RESP2: Parley uses nothing of RESP3, and ioredis parses a 1,000-turn chain's reply 2-4x faster.
    // Auto-pipelining: the commands of every turn issued in one turn of the event loop leave in one
    // write (at setImmediate) and Redis reads them in one go; under load that is most of the cost
    // of a round trip, for both processes. See #run for the read that does not wait for it.
    const safety = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      protocol: 2 as const,
      enableAutoPipelining: true,
    };
    if (this.#options.cluster) {
      const extra = (this.#options.redisOptions ?? {}) as ClusterOptions;
      const options: ClusterOptions = {
        lazyConnect: true,
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        ...extra,
        redisOptions: {
          ...credentials,
          maxRetriesPerRequest: 0,
          autoResendUnfulfilledCommands: false,
          protocol: 2,
          ...(extra.redisOptions ?? {}),
        },
      };
      return new Cluster(
        this.#urls.map((u) => ({ host: u.host, port: u.port })),
        options,
      );
    }
    const options: RedisOptions = {
      host: first.host,
      port: first.port,
      db: first.db,
      ...credentials,
      ...safety,
      ...((this.#options.redisOptions ?? {}) as RedisOptions),
    };
    return new Redis(options);
  }

  /** Why open() failed, in words an operator can act on, never with the password. */
  #startupError(error: unknown): Error {
    const cause = this.#lastError ?? (error instanceof Error ? error : new Error(String(error)));
    const where = describeTarget(this.#urls, this.#options);
    const text = cause.message;
    let message: string;
    if (/WRONGPASS|invalid password|invalid username-password/i.test(text)) {
      message = `Redis rejected the user name or password in state_storage.connection_string (${where}): ${text} Check the credentials, URL-encoded (@ as %40, : as %3A, / as %2F, % as %25).`;
    } else if (/NOPERM/.test(text)) {
      message = `The Redis user in state_storage.connection_string lacks a permission Parley needs (${where}): ${text} Grant it the key pattern of the prefix and these categories: ACL SETUSER <user> ~${this.#prefix.replace(/[*?[\]\\]/g, '\\$&')}* +@read +@write +@scripting +@connection +info +time (see docs/redis.md).`;
    } else if (/NOAUTH/i.test(text)) {
      message = `Redis requires a password and the connection string has none (${where}): put it in state_storage.connection_string as redis://:PASSWORD@host:port (URL-encoded).`;
    } else if (/ECONNREFUSED/.test(text)) {
      message = `Cannot connect to Redis at ${where}: connection refused. Is redis-server running there, and is state_storage.connection_string right? (${text})`;
    } else if (/ENOTFOUND|EAI_AGAIN/.test(text)) {
      message = `Cannot connect to Redis at ${where}: the host name does not resolve (${text}).`;
    } else if (/ETIMEDOUT|timed? ?out/i.test(text)) {
      message = `Cannot connect to Redis at ${where}: the connection timed out (${text}). Check the host, port and firewall, and that the scheme matches the server: rediss:// for TLS, redis:// without.`;
    } else if (/ECONNRESET|Connection is closed/i.test(text)) {
      message = `Cannot connect to Redis at ${where}: the server closed the connection (${text}). If it expects TLS, use rediss://.`;
    } else {
      message = `Cannot connect to Redis at ${where}: ${text}`;
    }
    const wrapped = new Error(this.#redact(message));
    wrapped.name = 'RedisConnectionError';
    return wrapped;
  }

  #unavailable(error: unknown): Error {
    if (error instanceof StoreConflictError || error instanceof ChainBrokenError) return error;
    const text = error instanceof Error ? error.message : String(error);
    // A script error is a bug or a server problem, not a connection problem: keep it as it is.
    if (/^(ERR|WRONGTYPE|NOSCRIPT|NOPERM|BUSY|OOM|READONLY|MOVED|ASK|CROSSSLOT)/.test(text)) {
      const server = new Error(this.#redact(`Redis error: ${text}`));
      server.name = 'RedisError';
      return server;
    }
    const where = describeTarget(this.#urls, this.#options);
    // While ioredis reconnects, its last connection error says why; the command's own error
    // ("Stream isn't writeable …") says nothing useful.
    const status = this.#client?.status ?? 'closed';
    let cause = text;
    if (status !== 'ready') {
      cause =
        this.#lastError === null
          ? `not connected (${status}); the connection was lost and is being re-established`
          : this.#lastError.message;
    }
    const wrapped = new Error(
      this.#redact(
        /ECONNREFUSED/.test(cause)
          ? `Cannot reach Redis at ${where}: connection refused (${cause}).`
          : `Cannot reach Redis at ${where}: ${cause}`,
      ),
    );
    wrapped.name = 'StoreUnavailableError';
    return wrapped;
  }

  #redact(text: string): string {
    const secrets = this.#urls.map((url) => url.password);
    const extra = this.#options.redisOptions;
    for (const key of ['password', 'sentinelPassword']) {
      for (const source of [extra, extra?.redisOptions as Record<string, unknown> | undefined]) {
        if (typeof source?.[key] === 'string') secrets.push(source[key] as string);
      }
    }
    let out = text;
    for (const secret of secrets) {
      if (secret === undefined || secret === '') continue;
      for (const form of [secret, encodeURIComponent(secret)]) out = out.split(form).join('***');
    }
    return out;
  }
}

// ---------- encoding ----------

function hasHashTag(prefix: string): boolean {
  const open = prefix.indexOf('{');
  return open !== -1 && prefix.indexOf('}', open + 2) !== -1;
}

/** Where the store connects, for logs: never the password. */
function describeTarget(urls: ParsedUrl[], options: RedisStoreOptions): string {
  const sentinels = options.redisOptions?.sentinels;
  if (!options.cluster && Array.isArray(sentinels) && sentinels.length > 0) {
    const name = typeof options.redisOptions?.name === 'string' ? options.redisOptions.name : '(no name)';
    const via = sentinels
      .map(
        (s: { host?: unknown; port?: unknown }) =>
          `${String(s.host ?? 'localhost')}:${String(s.port ?? 26379)}`,
      )
      .join(',');
    const auth = urls[0].password === undefined ? '' : ', password ***';
    return `sentinel master ${JSON.stringify(name)} via ${via}, db ${urls[0].db}${auth}${urls[0].tls ? ', tls' : ''}`;
  }
  return `${options.cluster ? 'cluster ' : ''}${urls.map(redactRedisUrl).join(',')}`;
}

function leaseTtl(ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs));
}

function itemId(item: Item): string {
  return typeof item.id === 'string' ? item.id : '';
}

/** "<byte length>:<text>" per entry, the form the scripts split (lengths in UTF-8 bytes, as Lua sees them). */
function lengthPrefixed(values: string[]): string {
  let out = '';
  for (const value of values) out += `${Buffer.byteLength(value)}:${value}`;
  return out;
}

// ---------- response records ----------
//
// A response is one string value (`P r:<id>`), a sequence of fields: one allocation instead of a
// hash of ~15 fields (each with its own entry and allocations, and the hash a real hash table
// since items exceed hash-max-listpack-value), so a turn costs its items plus ~450 bytes instead
// of ~1.4 KiB. A field is `-` (null), `<n>:<n bytes>`, or, for a string that is not well-formed
// UTF-16 (a lone surrogate, which UTF-8 cannot carry), `!<n>:<its UTF-8 form><m>:<its JSON>`: the
// scripts use the first (keys are made of it), decoding uses the exact second. In order:
//
//   status, expiresAt, previousResponseId, conversationId, tenant, user,
//   id (`-`: the key's; written only when not well-formed), model, createdAt, params,
//   input count, then per item its id and data; then the result, which finishTurn replaces:
//   completedAt, usage (codec encodeUsage), error, incompleteDetails, output count, items.
//
// An item's data is codec's encodeItemData (its JSON without the id, which is the field before);
// an item without a string id has a null id field and its whole JSON. The scripts read the head
// fields they need (status, expiry, parent, conversation, tenant and user for the user index).
// A record starts with a digit (the status' length); a later layout can start otherwise.
// Responses written before are hashes (decodeLegacyResponse); scripts and reads handle both.

/** String.prototype.isWellFormed (ES2024; Node has it, the project's lib setting does not). */
function isWellFormed(text: string): boolean {
  return (text as string & { isWellFormed(): boolean }).isWellFormed();
}

function field(value: string | null): string {
  if (value === null) return '-';
  if (isWellFormed(value)) return `${Buffer.byteLength(value)}:${value}`;
  const exact = JSON.stringify(value);
  return `!${Buffer.byteLength(value)}:${value}${Buffer.byteLength(exact)}:${exact}`;
}

function numberField(value: number | null): string {
  return value === null ? '-' : field(String(value));
}

function jsonField(value: unknown): string {
  return value === null || value === undefined ? '-' : field(JSON.stringify(value));
}

/** An item as stored in a record: its id field, then its data as a field. */
function itemField(item: Item): string {
  return typeof item.id === 'string'
    ? field(item.id) + field(encodeItemData(item))
    : `-${field(JSON.stringify(item))}`;
}

/** A count, then the items. */
function encodeItems(items: readonly Item[]): string {
  let out = field(String(items.length));
  for (const item of items) out += itemField(item);
  return out;
}

/** The result part of a record (what finishTurn writes). */
function encodeResult(
  r: Pick<TurnResult, 'completedAt' | 'usage' | 'error' | 'incompleteDetails' | 'output'>,
): string {
  return (
    numberField(r.completedAt ?? null) +
    (r.usage ? field(encodeUsage(r.usage)) : '-') +
    jsonField(r.error) +
    jsonField(r.incompleteDetails) +
    encodeItems(r.output)
  );
}

function encodeRecord(response: StoredResponse, expiresAt: number | null): string {
  return (
    field(response.status) +
    numberField(expiresAt) +
    field(response.previousResponseId) +
    field(response.conversationId) +
    field(response.tenant) +
    field(response.user) +
    (isWellFormed(response.id) ? '-' : field(response.id)) +
    field(response.model) +
    numberField(response.createdAt) +
    field(encodeParams(response.params)) +
    encodeItems(response.input) +
    encodeResult(response)
  );
}

/** Reads record fields from a Buffer (lengths are in bytes). */
class FieldReader {
  readonly #buf: Buffer;
  pos: number;

  constructor(buf: Buffer, pos = 0) {
    this.#buf = buf;
    this.pos = pos;
  }

  /** The next field: null, or its text (the exact form of an escaped string). */
  text(): string | null {
    const buf = this.#buf;
    const first = buf[this.pos];
    if (first === DASH) {
      this.pos++;
      return null;
    }
    if (first === BANG) {
      this.pos++;
      this.#span();
      const [start, end] = this.#span();
      return JSON.parse(buf.toString('utf8', start, end)) as string;
    }
    const [start, end] = this.#span();
    return buf.toString('utf8', start, end);
  }

  number(): number | null {
    const text = this.text();
    return text === null ? null : Number(text);
  }

  items(): Item[] {
    const items = new Array<Item>(Number(this.text()));
    for (let k = 0; k < items.length; k++) {
      const id = this.text();
      const data = this.text() as string;
      items[k] = id === null ? (JSON.parse(data) as Item) : decodeItemData(id, data);
    }
    return items;
  }

  #span(): [number, number] {
    const buf = this.#buf;
    let at = this.pos;
    let length = 0;
    for (let c = buf[at++]; c !== COLON; c = buf[at++]) {
      // A digit, or the record is not one this code wrote: fail rather than read past its end.
      if (!(c >= ZERO && c <= ZERO + 9)) throw new Error('Redis store: a response record is malformed.');
      length = length * 10 + c - ZERO;
    }
    this.pos = at + length;
    return [at, at + length];
  }
}

const DASH = 0x2d;
const BANG = 0x21;
const COLON = 0x3a;
const ZERO = 0x30;
const OPEN_BRACE = 0x7b;

interface RecordHead {
  status: StoredResponse['status'];
  expiresAt: number | null;
  previousResponseId: string | null;
  conversationId: string | null;
  tenant: string;
  user: string | null;
  id: string;
  model: string;
  createdAt: number;
}

function readHead(reader: FieldReader, keyId: string): RecordHead {
  return {
    status: reader.text() as StoredResponse['status'],
    expiresAt: reader.number(),
    previousResponseId: reader.text(),
    conversationId: reader.text(),
    tenant: reader.text() as string,
    user: reader.text(),
    id: reader.text() ?? keyId,
    model: reader.text() as string,
    createdAt: reader.number() as number,
  };
}

/** The head of a record (what READ_RESPONSES returns with 'head'). */
function decodeRecordHead(keyId: string, record: Buffer): RecordHead {
  return readHead(new FieldReader(record), keyId);
}

/** A response from its record; `keyId` is the id its key was made from. */
function decodeRecord(keyId: string, record: Buffer): StoredResponse {
  const reader = new FieldReader(record);
  const head = readHead(reader, keyId);
  const params = reader.text() as string;
  const input = reader.items();
  const completedAt = reader.number();
  const usage = reader.text();
  const error = reader.text();
  const incomplete = reader.text();
  return defineLazyParams(
    {
      id: head.id,
      tenant: head.tenant,
      user: head.user,
      previousResponseId: head.previousResponseId,
      conversationId: head.conversationId,
      model: head.model,
      status: head.status,
      createdAt: head.createdAt,
      completedAt,
      expiresAt: head.expiresAt,
      input,
      output: reader.items(),
      usage: decodeUsageOrNull(usage),
      error: parseOrNull<StoredResponse['error']>(error),
      incompleteDetails: parseOrNull<StoredResponse['incompleteDetails']>(incomplete),
    },
    () => decodeParams(params),
  );
}

/** A response from a script reply: a record, or a hash written before as a flat field/value list. */
function decodeAny(keyId: string, reply: Buffer | Buffer[]): StoredResponse {
  if (Buffer.isBuffer(reply)) return decodeRecord(keyId, reply);
  const hash: Record<string, string> = Object.create(null);
  for (let i = 0; i < reply.length; i += 2) hash[reply[i].toString()] = reply[i + 1].toString();
  return decodeLegacyResponse(hash);
}

// ---------- responses written before the record layout (hashes) ----------
//
// Fields: m (JSON [id, parent, conversation, model, createdAt, expiresAt, tenant, user]), p, s,
// fc/fu/fe/fi (JSON), up, uc, e, ru, ni/no, ki/ko (length-prefixed item ids), i<k>/o<k> (item
// JSON). Still read everywhere; an unfinished one is finished (or its progress saved) with the
// *_V1 scripts, which need these fields.

/** HMGET m, e of a hash (READ_RESPONSES with 'head'), as a head; null when gone. */
function legacyHead(row: (Buffer | null)[]): RecordHead | null {
  const [m, e] = row;
  if (m === null || m === undefined) return null;
  const [id, previousResponseId, conversationId, model, createdAt, , tenant, user] = JSON.parse(
    m.toString(),
  ) as ResponseHead;
  const expiresAt = e === null || e === undefined ? null : Number(e.toString());
  return { status: 'completed', expiresAt, previousResponseId, conversationId, tenant, user, id, model, createdAt };
}

function legacyResultFields(result: TurnResult): (string | number)[] {
  const fields: (string | number)[] = [
    's',
    result.status,
    'fc',
    JSON.stringify(result.completedAt ?? null),
    'fu',
    JSON.stringify(result.usage ?? null),
    'fe',
    JSON.stringify(result.error ?? null),
    'fi',
    JSON.stringify(result.incompleteDetails ?? null),
  ];
  return [...fields, ...legacyOutputFields(result.output)];
}

function legacyProgressFields(progress: TurnProgress): (string | number)[] {
  return ['s', progress.status, ...legacyOutputFields(progress.output)];
}

function legacyOutputFields(output: readonly Item[]): (string | number)[] {
  const fields: (string | number)[] = ['no', output.length, 'ko', lengthPrefixed(output.map(itemId))];
  for (let k = 0; k < output.length; k++) fields.push(`o${k}`, JSON.stringify(output[k]));
  return fields;
}

function isLive(expiresAt: string | undefined, now: number): boolean {
  return expiresAt === undefined || Number(expiresAt) > now;
}

function itemsOf(hash: Record<string, string>, tag: 'i' | 'o', count: number): Item[] {
  const items = new Array<Item>(count);
  for (let k = 0; k < count; k++) items[k] = JSON.parse(hash[tag + k]) as Item;
  return items;
}

function decodeLegacyResponse(hash: Record<string, string>): StoredResponse {
  const [id, previousResponseId, conversationId, model, createdAt, expiresAt, tenant, user] = JSON.parse(
    hash.m,
  ) as ResponseHead;
  const params = hash.p;
  return defineLazyParams(
    {
      id,
      tenant,
      user,
      previousResponseId,
      conversationId,
      model,
      status: hash.s as StoredResponse['status'],
      createdAt,
      completedAt: JSON.parse(hash.fc) as StoredResponse['completedAt'],
      expiresAt,
      input: itemsOf(hash, 'i', Number(hash.ni)),
      output: itemsOf(hash, 'o', Number(hash.no)),
      usage: JSON.parse(hash.fu) as StoredResponse['usage'],
      error: JSON.parse(hash.fe) as StoredResponse['error'],
      incompleteDetails: JSON.parse(hash.fi) as StoredResponse['incompleteDetails'],
    },
    () => decodeParams(params),
  );
}

/** A conversation from CONVERSATION_FIELDS values starting at `at` in `fields`. */
function decodeConversation(fields: readonly (string | null)[], at: number): StoredConversation {
  const [m, md, n, updatedAt, input, output, total, cost, turns] = fields.slice(
    at,
    at + CONVERSATION_FIELDS.length,
  );
  const [id, tenant, createdAt, user, expiresAt] = JSON.parse(m as string) as [
    string,
    string,
    number,
    string | null,
    number | null,
  ];
  return {
    id,
    tenant,
    createdAt,
    metadata: JSON.parse(md as string) as Record<string, string>,
    user,
    itemCount: Number(n),
    expiresAt,
    usage: {
      input_tokens: Number(input),
      output_tokens: Number(output),
      total_tokens: Number(total),
      cost_usd: Number(cost),
      turns: Number(turns),
    },
    updatedAt: Number(updatedAt),
  };
}

// ---------- conversation items ----------
//
// A member of `P ci:<id>` is `<position>:` then the item: its id field and its data as in a
// record (without a length: the rest of the member), or, written before, the item's JSON (which
// starts with `{`, where an id field never does). A turn's items are members that point into its
// record (`>` + the response id + the item's index; see redis-scripts.ts), which every script
// that returns members resolves.
const POINTER = '>'.charCodeAt(0);

/** (id for the cx index, member body) per item, as the scripts' append takes them. */
function itemArgs(items: Item[]): string[] {
  const args: string[] = [];
  for (const item of items) {
    args.push(
      itemId(item),
      typeof item.id === 'string' ? field(item.id) + encodeItemData(item) : `-${JSON.stringify(item)}`,
    );
  }
  return args;
}

function decodeMember(member: Buffer): Item {
  const start = member.indexOf(COLON) + 1;
  if (member[start] === OPEN_BRACE) return JSON.parse(member.toString('utf8', start)) as Item;
  // The scripts resolve pointers; one left means its record is gone: never hand out a hole.
  if (member[start] === POINTER) throw new Error('A conversation references an item that no longer exists.');
  const reader = new FieldReader(member, start);
  const id = reader.text();
  const data = member.toString('utf8', reader.pos);
  return id === null ? (JSON.parse(data) as Item) : decodeItemData(id, data);
}

/** Items from a script reply whose first element is a flag. */
function decodeMembers(reply: [number, ...Buffer[]]): Item[] {
  const items = new Array<Item>(reply.length - 1);
  for (let i = 1; i < reply.length; i++) items[i - 1] = decodeMember(reply[i] as Buffer);
  return items;
}
