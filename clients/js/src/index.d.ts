// Types of @pgnotify/client (PgNotify WebSocket protocol, version 1: docs/protocol.md).

/** A row operation, as PostgreSQL's triggers name it. */
export type Operation = 'INSERT' | 'UPDATE' | 'DELETE' | 'TRUNCATE';

/** The client's connection state. */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** A row: column name to JSON value (json/jsonb columns arrive as objects or arrays). */
export type Row = Record<string, unknown>;

/** A value a filter compares with. */
export type FilterValue = number | string | boolean | null;

/** One column's condition: a bare value means equality; several operators must all hold. */
export type FilterCondition =
  | FilterValue
  | {
      eq?: FilterValue;
      neq?: FilterValue;
      lt?: number | string;
      lte?: number | string;
      gt?: number | string;
      gte?: number | string;
      in?: FilterValue[];
    };

/**
 * Conditions on the row's columns, all of which must hold, applied by the server. INSERT is tested on the new row,
 * DELETE on the old one, UPDATE on either (so a row leaving the filter is seen); TRUNCATE always passes.
 */
export type RowFilter<R = Row> = { [Column in keyof R & string]?: FilterCondition };

/**
 * A change's place in the server's change log (lossless servers; docs/protocol.md, "Positions"): a number up to
 * 2^53 - 1 (`Number.MAX_SAFE_INTEGER`), above it a string of its decimal digits, so that it stays exact. Compare
 * positions with `comparePositions`, never with `<` or `-`; send one back as it came.
 */
export type Position = number | string;

interface ChangeBase {
  type: 'change';
  /** The table's schema, e.g. `public`. */
  schema: string;
  /** The table's name, without its schema. */
  table: string;
  /** The change's place in the server's change log (lossless servers only); grows in commit order. */
  position?: Position;
  /** The PostgreSQL transaction id. */
  xid: number;
  /** The change's number within its transaction. */
  seq: number;
  /** When the trigger ran (ISO 8601). */
  ts?: string;
}

/**
 * A `change` frame. Narrow on `operation`: INSERT has `data`, UPDATE `data` and `old`, DELETE `old`, TRUNCATE
 * neither. Columns the server excludes are never present.
 */
export type Change<R = Row> =
  | (ChangeBase & { operation: 'INSERT'; data: R; old?: undefined })
  | (ChangeBase & { operation: 'UPDATE'; data: R; old: R })
  | (ChangeBase & { operation: 'DELETE'; data?: undefined; old: R })
  | (ChangeBase & { operation: 'TRUNCATE'; data?: undefined; old?: undefined });

/**
 * Why the app should reload its data, then carry on (its subscriptions stay). `reconnected` comes from the client:
 * the socket was re-established and, without a change log to resume from, changes may have been missed meanwhile.
 * It is reported once the subscriptions are live again, so data read then is not missing anything later.
 */
export type ResyncReason =
  | 'slow_consumer'
  | 'listener_reconnected'
  | 'listener_overflow'
  | 'position_expired'
  | 'server_error'
  | 'reconnected';

export interface Resync {
  type: 'resync';
  reason: ResyncReason;
  /** How many changes the server dropped (slow_consumer). */
  missed?: number;
}

/** Codes of the server's `error` frames. */
export type ServerErrorCode =
  | 'invalid_json'
  | 'invalid_message'
  | 'unknown_type'
  | 'unknown_table'
  | 'forbidden'
  | 'too_many_subscriptions'
  | 'rate_limited'
  | 'unsupported_data'
  | 'unavailable'
  | 'invalid_position'
  | 'snapshot_unavailable'; // a snapshot of a table without a primary key

/** Codes the client adds: close codes it reports, and its own refusals. */
export type ClientErrorCode =
  | 'invalid_data' // closed with 1007
  | 'policy_violation' // closed with 1008 (flooding, or a slow consumer with the Close policy)
  | 'message_too_big' // closed with 1009
  | 'server_error' // closed with 1011
  | 'authentication_expired' // closed with 4001: the client reconnects, running beforeConnect and the URL function again
  | 'invalid_frame' // the server sent something that is not JSON, or a frame the client cannot use (a snapshot_end without its key...)
  | 'missing_key' // LiveRows met a row without its key columns (left out)
  | 'conflicting_subscription' // the same table with another filter on the same client
  | 'unsubscribed' // `ready` of a subscription unsubscribed before its acknowledgment
  | 'connect_failed' // an attempt failed before `welcome`: a refused handshake (401, 403, 503 reach a browser as 1006), the network, beforeConnect or the URL function
  | 'connect_timeout' // no open socket within connectTimeoutMs, or no `welcome` within welcomeTimeoutMs
  | 'heartbeat_timeout' // nothing came back within heartbeatTimeoutMs of a ping: the connection was half open
  | 'gave_up' // maxRetries failed attempts in a row (onGiveUp)
  | 'disconnected' // the socket refused a frame
  | 'position_store_failed'; // the positionStore threw

export declare class PgNotifyError extends Error {
  name: 'PgNotifyError';
  code: ServerErrorCode | ClientErrorCode | (string & {});
  /** The request id the server's error answered. */
  id?: string | number | null;
  /** The tables of the subscription concerned. */
  tables?: string[];
  /** The WebSocket close code, for errors reported from a close. */
  closeCode?: number;
  /** Which connection attempt in a row failed (connect_failed, connect_timeout, gave_up). */
  attempt?: number;
  /** What made it fail, when it came from elsewhere (beforeConnect, the URL function, the WebSocket constructor). */
  cause?: unknown;
}

/** A socket as the client uses it: the browser's WebSocket, `ws`'s, or anything with the same members. */
export interface WebSocketLike {
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
  onerror: ((event: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** The `WebSocket` constructor to use: the browser's, or the `ws` package's in Node. */
export interface WebSocketConstructor {
  new (url: string): WebSocketLike;
}

/** The socket's URL, or a function giving it before each connection attempt (e.g. with a fresh one-time ticket). */
export type UrlSource = string | URL | (() => string | URL | Promise<string | URL>);

/** Where positions are kept across page reloads: `sessionStorage` fits. */
export interface PositionStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

export interface PgNotifyClientOptions {
  /** The WebSocket constructor. Default: `globalThis.WebSocket` (pass `ws`'s in Node 20). */
  WebSocket?: WebSocketConstructor;
  /**
   * Makes the socket instead of `new WebSocket(url)`: in Node, to send headers, e.g.
   * `(url) => new WebSocket(url, { headers: { Authorization: 'Bearer ' + token } })` with `ws`.
   */
  createWebSocket?: (url: string) => WebSocketLike;
  /** Awaited before every connection attempt: refresh a cookie or a token here. A throw fails the attempt (connect_failed). */
  beforeConnect?: () => void | Promise<void>;
  /**
   * The reconnect delay after the first failure, in milliseconds. The delay for attempt n is between half and all of
   * min(maxDelay, minDelay * 2^n), at random: never below half of minDelay. Default: 500.
   */
  minDelay?: number;
  /** The largest reconnect delay, in milliseconds. Default: 30000. */
  maxDelay?: number;
  /** Failed attempts in a row after which the client gives up (state `closed`, onGiveUp). Default: Infinity. */
  maxRetries?: number;
  /** How long a connection must stay up, in milliseconds, for the attempt count to start again from 0. Default: 5000. */
  minUptimeMs?: number;
  /** The longest a socket may take to open, in milliseconds. Default: 15000. */
  connectTimeoutMs?: number;
  /** The longest from the socket opening to the server's `welcome`, in milliseconds. Default: 10000. */
  welcomeTimeoutMs?: number;
  /** After this long without any frame from the server, in milliseconds, the client sends a `ping`. Default: 25000. */
  heartbeatMs?: number;
  /** Without any frame this long after a ping, in milliseconds, the socket is dropped and the client reconnects. Default: 10000. */
  heartbeatTimeoutMs?: number;
  /** Reconnect at once on `online` and when a hidden page becomes visible (and then check an open socket). Default: true. */
  reconnectOnResume?: boolean;
  /**
   * Keeps each table's last position (lossless servers) across page reloads, e.g. `sessionStorage`: a new client
   * subscribing to a table with the same filter resumes from it instead of starting afresh. Default: none.
   */
  positionStore?: PositionStore;
  /** The key under which positionStore keeps them. Default: `pgnotify.positions`. */
  positionStoreKey?: string;
  /**
   * The most requests (subscribe, unsubscribe) the client sends per second; more wait their turn. Keep it below the
   * server's limit (`MaxMessagesPerSecond`, 20 by default). Default: 10.
   */
  maxRequestsPerSecond?: number;
  /** Called on every state change. */
  onState?: (state: ConnectionState) => void;
  /** Called when changes may have been missed: reload the data, then carry on. */
  onResync?: (resync: Resync) => void;
  /**
   * Called with every error: refused subscriptions (also rejecting their `ready`), error frames, closes with 1007,
   * 1008, 1009 or 1011 (the client reconnects after each), `unavailable` answers (retried), and what the app's own
   * callbacks throw. After a `rate_limited` answer the client pauses and sends the unanswered requests again, quietly.
   * Also failed connection attempts (connect_failed, connect_timeout, each with its `attempt`) and heartbeat_timeout.
   * Default: `console.error`.
   */
  onError?: (error: PgNotifyError | Error) => void;
  /** Called when the client gave up after maxRetries failed attempts in a row (code `gave_up`). */
  onGiveUp?: (error: PgNotifyError) => void;
}

/**
 * A subscription's state: `pending` until the server first acknowledges it, `live`, `resuming` after the socket
 * dropped until it is live again on the next one, `failed` when refused (see `error`), `closed` once unsubscribed.
 */
export type SubscriptionState = 'pending' | 'live' | 'resuming' | 'failed' | 'closed';

/** The events of `on` and `off`, with what their listeners receive. */
export interface PgNotifyEvents {
  state: ConnectionState;
  error: PgNotifyError | Error;
  resync: Resync;
  giveup: PgNotifyError;
}

export interface SubscribeOptions<R = Row> {
  /** The operations to receive. Default: all. */
  operations?: Operation[];
  /** Which rows to receive, decided by the server. Default: all. */
  filter?: RowFilter<R>;
  /**
   * Ask for the table's current rows (under the filter) first: `onSnapshot` gets them, then `onChange` every change
   * after them, with no gap and no repeat. `ready` resolves once every table's snapshot has come. The client takes a
   * fresh snapshot after a `resync` and after a reconnect, except where it can resume the table exactly (a lossless
   * server and a kept position): then the changes missed meanwhile come instead. Default: false.
   */
  snapshot?: boolean;
  /** The most rows a snapshot may hold (the server also caps it: `MaxSnapshotRows`, 10,000 by default). */
  limit?: number;
  /** Called with each table's snapshot (first, and again after a resync or a reconnect): it replaces what you had. */
  onSnapshot?: (snapshot: Snapshot<R>) => void;
}

/** A table's rows at one point, from which its later changes apply (docs/protocol.md, snapshot). */
export interface Snapshot<R = Row> {
  /** The table's schema, e.g. `public`. */
  schema: string;
  /** The table's name, without its schema. */
  table: string;
  /** The rows, as change frames carry them (excluded columns left out), in the server's order. */
  rows: R[];
  /** How many rows came. */
  count: number;
  /** Whether rows were left out (the limit, or the server's cap). */
  truncated: boolean;
  /** The table's primary key columns: what changes are applied by. */
  key: string[];
  /** Lossless servers: the position the snapshot is at; changes after it follow. */
  position?: Position;
}

export interface Subscription {
  /** The tables, as the server names them (`profiles`, `sales.orders`). */
  readonly tables: string[];
  /**
   * Resolves once the server acknowledged the subscription: every change committed afterwards is delivered. Rejects
   * with a PgNotifyError when the server refuses it (unknown_table, forbidden, invalid_message, ...), when its request
   * was over the server's size limit (message_too_big: the server closed the socket with 1009; the client reconnects
   * without it), or at once with conflicting_subscription. A refused subscription is dropped. Transient refusals
   * (rate_limited, unavailable) are sent again and keep it pending.
   */
  readonly ready: Promise<void>;
  /** Where it stands now. */
  readonly state: SubscriptionState;
  /**
   * Whether its last return to `live` after a reconnect resumed every table from its position, so nothing was
   * missed (lossless servers). False before any reconnect, and after a return that could not resume: reload then.
   */
  readonly recovered: boolean;
  /**
   * Why it failed, when its state is `failed`: a refusal of its request, or the server ending it later (an
   * `unsubscribed` frame with a `reason`, e.g. `forbidden` when re-authorization no longer allows the table; the code
   * is that reason, and onError is called). A failed subscription is not sent again.
   */
  readonly error: PgNotifyError | null;
  /**
   * Snapshot subscriptions: whether a snapshot is wanted or on its way for one of its tables (at first, and after a
   * resync or a reconnect). Its changes are held meanwhile and delivered after the snapshot.
   */
  readonly awaitingSnapshot: boolean;
  /** Stops delivery to this subscription (and unsubscribes on the server unless another one uses the table). */
  unsubscribe(): void;
}

export declare class PgNotifyClient {
  /**
   * @param url `ws(s)://`, `http(s)://`, or, in a browser, relative to the page (`/ws/changes/`).
   */
  constructor(url: UrlSource, options?: PgNotifyClientOptions);

  /** The connection state. */
  readonly state: ConnectionState;

  /** The socket's absolute `ws:` or `wss:` URL (for a URL function: the last one it gave, '' before). */
  readonly url: string;

  /** Opens the socket, and reopens it whenever it drops, until `close()`. */
  connect(): this;

  /** Closes the socket (1000) and stops reconnecting. Subscriptions are kept for a later `connect()`. */
  close(): void;

  /** Drops the socket and connects again at once, the attempt count reset (also after close() or giving up). */
  reconnect(): this;

  /** Adds a listener, called after the option callback of the same name. */
  on<E extends keyof PgNotifyEvents>(event: E, listener: (value: PgNotifyEvents[E]) => void): this;

  /** Removes a listener added with `on`. */
  off<E extends keyof PgNotifyEvents>(event: E, listener: (value: PgNotifyEvents[E]) => void): this;

  /**
   * The store form, for React's `useSyncExternalStore`: `listener` is called after every change of `state` or of a
   * subscription's state. Returns the function that removes it.
   */
  subscribe(listener: () => void): () => void;

  /**
   * Receives the changes of one or more tables (`name` for schema public, or `schema.name`). Subscriptions survive
   * reconnects: the client sends them again (one request per distinct filter).
   *
   * The server keeps one subscription per table and socket, so one client holds one filter per table: subscribing
   * to a table again with another filter is refused (`conflicting_subscription`; use a second client). With the same
   * filter and other operations it is fine: the client asks the server for both and routes each change by operation.
   * A subscription the server already serves (same filter, operations covered) needs no request and is ready at once.
   */
  subscribe<R = Row>(
    tables: string | string[],
    onChange: (change: Change<R>) => void,
    options?: SubscribeOptions<R>,
  ): Subscription;
}

/**
 * `loading` until the first snapshot; `live`; `reconnecting` while the socket is down (the rows stay as they were);
 * `resyncing` while a fresh snapshot is on its way after a resync; `failed` (see `error`); `closed` after close().
 */
export type LiveRowsStatus = 'loading' | 'live' | 'reconnecting' | 'resyncing' | 'failed' | 'closed';

/** What LiveRows shows at one point: the same object until something changes. */
export interface LiveRowsView<R = Row> {
  /** The rows, ordered by primary key. */
  readonly rows: readonly R[];
  readonly status: LiveRowsStatus;
  /** Why it failed (snapshot_unavailable, forbidden, unknown_table, invalid_frame...), or a row it left out (missing_key). */
  readonly error: PgNotifyError | null;
  /** Whether the last snapshot left rows out (its limit, or the server's cap). */
  readonly truncated: boolean;
}

export interface LiveRowsOptions<R = Row> {
  /** Which rows, decided by the server; an UPDATE whose new row no longer passes it removes the row. */
  filter?: RowFilter<R>;
  /** The most rows the snapshot may hold. */
  limit?: number;
}

/**
 * The rows of one table, kept equal to the table (under a filter) from a snapshot and every change after it, keyed
 * and ordered by primary key. INSERT and UPDATE upsert by key, except that an UPDATE whose new row no longer passes
 * the filter removes it; DELETE removes by key; TRUNCATE empties. It takes a fresh snapshot after a `resync` and after
 * a reconnect, except where it resumes exactly (lossless servers). The table needs a primary key
 * (`snapshot_unavailable` otherwise).
 */
export declare class LiveRows<R = Row> {
  /** Subscribes at once on `client` (which its owner connects and closes). */
  constructor(client: PgNotifyClient, table: string, options?: LiveRowsOptions<R>);
  /** The table, as given. */
  readonly table: string;
  /** The rows, ordered by primary key: the same frozen array until something changes. */
  readonly rows: readonly R[];
  readonly status: LiveRowsStatus;
  readonly error: PgNotifyError | null;
  readonly truncated: boolean;
  /** The primary key columns, from the last snapshot (null before it). */
  readonly key: string[] | null;
  /** `{ rows, status, error, truncated }`, the same object until something changes (for useSyncExternalStore). */
  getSnapshot(): LiveRowsView<R>;
  /** Calls `listener` after every change of the rows or the status; returns the function that removes it. */
  subscribe(listener: () => void): () => void;
  /** `change`: called with the new view after every change. */
  on(event: 'change', listener: (view: LiveRowsView<R>) => void): this;
  off(event: 'change', listener: (view: LiveRowsView<R>) => void): this;
  /** Unsubscribes; the rows stay as they were and the status becomes `closed`. */
  close(): void;
}

/**
 * Whether `row` passes `filter` as the server decides it (docs/protocol.md). Numbers are compared as JavaScript
 * numbers: beyond 2^53 or double's range the server, which compares decimals or the number's text, may differ.
 */
/**
 * Orders two positions exactly, in either form (a number, or a string of digits above 2^53 - 1): negative, 0 or
 * positive, like a sort comparator. Throws a TypeError for anything that is not a position.
 */
export declare function comparePositions(a: Position, b: Position): number;

export declare function matchesFilter(filter: RowFilter | null | undefined, row: Row): boolean;
