// Statements that stand alone (one statement, its own implicit transaction: every statement on a
// turn's path) are written on a few connections in pipeline mode: a statement goes out without
// waiting for the answer to the one before it on that connection, and the server runs what has
// arrived back to back. With one statement per pooled connection at a time, the gateway and a
// server backend each woke up once per statement; pipelined, once per burst. On one core shared by
// the gateway and the server (bench/ab.ts, 64 users) that is +18 to +34% turns a second. Spreading
// the same statements over ten pipelined connections gained nothing, so a connection takes up to
// `depth` statements before the next one is used (opened on demand, up to `max`).
//
// One statement failing leaves the rest alone: each carries its own Sync, and the server skips
// only to the end of the failed one. A connection the server terminates (57P01-57P03: shutdown,
// pg_terminate_backend, recovery) runs nothing after the error it sends, so the statements still
// waiting on it fail with that code, which the store treats as "nothing was written, run it once
// more". A connection lost any other way fails its waiting statements as they are: they may have
// run.

import pg from 'pg';

/** Codes with which a server terminates a connection; the statements behind them did not run. */
const TERMINATED = new Set(['57P01', '57P02', '57P03']);

/** The server terminated the connection before running the statement that failed with `error`. */
export function terminatedByServer(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && TERMINATED.has(code);
}

interface Connection {
  readonly client: pg.Client;
  readonly ready: Promise<unknown>;
  /** Statements sent or waiting on this connection and not yet answered. */
  inFlight: number;
  /** Set when the server said it is terminating this connection. */
  terminatedBy: string | undefined;
  idleTimer: NodeJS.Timeout | undefined;
}

export interface PipelinedConnectionsOptions {
  /** What each connection is opened with (`pipeline` is set here). */
  config: pg.ClientConfig;
  Client?: typeof pg.Client;
  /** The most connections open at once. */
  max: number;
  /** Statements a connection takes before the next connection is used. */
  depth?: number;
  /** A connection with nothing to do for this long is closed. */
  idleMs?: number;
}

export class PipelinedConnections {
  readonly #config: pg.ClientConfig;
  readonly #Client: typeof pg.Client;
  readonly #max: number;
  readonly #depth: number;
  readonly #idleMs: number;
  /** In the order they were opened: the first ones fill first, so the later ones go idle. */
  readonly #open: Connection[] = [];
  #ended = false;

  constructor(options: PipelinedConnectionsOptions) {
    this.#config = { ...options.config, pipeline: true };
    this.#Client = options.Client ?? pg.Client;
    this.#max = options.max;
    this.#depth = options.depth ?? 16;
    this.#idleMs = options.idleMs ?? 30_000;
  }

  /** How many connections are open (or opening). */
  get size(): number {
    return this.#open.length;
  }

  async query<R extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    if (this.#ended) throw new Error('The PostgreSQL connections were closed.');
    const connection = this.#pick();
    connection.inFlight++;
    if (connection.idleTimer !== undefined) {
      clearTimeout(connection.idleTimer);
      connection.idleTimer = undefined;
    }
    try {
      await connection.ready;
      return await connection.client.query<R>(config);
    } catch (error) {
      const code = connection.terminatedBy;
      // The server's own error for the statement it stopped carries the code already; the ones
      // behind it fail with whatever the socket said as it closed (a reset, an end).
      if (code === undefined || (error as { code?: string }).code === code) throw error;
      throw Object.assign(
        new Error(`PostgreSQL terminated the connection (${code}) before running this statement`, {
          cause: error,
        }),
        { code },
      );
    } finally {
      if (--connection.inFlight === 0 && this.#open.includes(connection)) {
        connection.idleTimer = setTimeout(() => this.#close(connection), this.#idleMs);
        connection.idleTimer.unref();
      }
    }
  }

  async end(): Promise<void> {
    this.#ended = true;
    const all = this.#open.splice(0);
    await Promise.all(
      all.map(async (connection) => {
        clearTimeout(connection.idleTimer);
        // end() waits for the statements already on the wire.
        await connection.ready.then(() => connection.client.end()).catch(() => {});
      }),
    );
  }

  #pick(): Connection {
    let least: Connection | undefined;
    for (const connection of this.#open) {
      if (connection.inFlight < this.#depth) return connection;
      if (least === undefined || connection.inFlight < least.inFlight) least = connection;
    }
    if (least === undefined || this.#open.length < this.#max) return this.#connect();
    return least;
  }

  #connect(): Connection {
    const client = new this.#Client(this.#config);
    const connection: Connection = {
      client,
      ready: client.connect(),
      inFlight: 0,
      terminatedBy: undefined,
      idleTimer: undefined,
    };
    // Heard before the client fails the statements behind it (those failures come a tick later),
    // so that their retries already go to another connection.
    client.connection.on('errorMessage', (message: { code?: string }) => {
      if (message.code === undefined || !TERMINATED.has(message.code)) return;
      connection.terminatedBy = message.code;
      this.#drop(connection);
    });
    // A broken connection takes no new statements; the ones it held see their own errors.
    const drop = () => this.#drop(connection);
    client.on('error', drop);
    client.on('end', drop);
    connection.ready.catch(drop);
    this.#open.push(connection);
    return connection;
  }

  #drop(connection: Connection): void {
    const at = this.#open.indexOf(connection);
    if (at >= 0) this.#open.splice(at, 1);
    clearTimeout(connection.idleTimer);
  }

  #close(connection: Connection): void {
    if (connection.inFlight > 0) return;
    this.#drop(connection);
    connection.client.end().catch(() => {});
  }
}
