// @pgnotify/client: a dependency-free client for PgNotify's WebSocket protocol, version 1 (docs/protocol.md).
//
// One client is one socket. It reconnects by itself (exponential backoff with a floor and jitter), sends its
// subscriptions again on each new connection, and tells the app when it may have missed changes (onResync) or, when
// the server keeps a change log ("lossless"), resumes each table from the last position it delivered for it.
//
// The server keeps one subscription per table and socket (operations + filter). So subscriptions of this client that
// share a table must share its filter; their operations are merged, and the client routes each change by operation.
//
// Requests are not queued one per call: the client knows what it wants the server to serve for each table (from its
// subscriptions) and what the server serves (from its answers), and sends, paced, only what brings the second to the
// first. So a burst of calls for one table costs one request, and a filter change is one replacing `subscribe`.

/** How many requests per second the client sends at most: half the server's default limit (20). */
const DEFAULT_REQUESTS_PER_SECOND = 10;

/** The server refuses requests naming more tables. */
const MAX_TABLES_PER_REQUEST = 100;

/** Operations in the order requests list them. */
const OPERATIONS = ['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'];
// The largest position the server writes as a JSON number (2^53 - 1); above it a position is a string of digits, and
// the largest is 2^63 - 1 (docs/protocol.md, "Positions").
const MAX_POSITION = 9223372036854775807n;
const POSITION_DIGITS = /^[0-9]{1,19}$/;

/** Close codes that mean something went wrong, reported through onError (the client reconnects after all of them). */
const CLOSE_ERRORS = {
  1007: 'invalid_data',
  1008: 'policy_violation',
  1009: 'message_too_big',
  1011: 'server_error',
  4001: 'authentication_expired', // the credentials ran out: the next attempt runs beforeConnect and the URL function again
};

/** snapshot_unavailable answers in a row for one table after which its snapshot subscriptions fail. */
const SNAPSHOT_ATTEMPTS = 3;

/** The close code the client uses for a socket it gives up on (4000-4999 is for applications). */
const CLOSE_ABANDONED = 4000;

const DEFAULTS = {
  minDelay: 500,
  maxDelay: 30_000,
  maxRequestsPerSecond: DEFAULT_REQUESTS_PER_SECOND,
  maxRetries: Infinity,
  minUptimeMs: 5_000,
  connectTimeoutMs: 15_000,
  welcomeTimeoutMs: 10_000,
  heartbeatMs: 25_000,
  heartbeatTimeoutMs: 10_000,
  reconnectOnResume: true,
};

/** An error from the server (an `error` frame or a close code) or from the client itself; `code` says which. */
export class PgNotifyError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{ id?: string | number | null, tables?: string[], closeCode?: number, attempt?: number, cause?: unknown }} [details]
   */
  constructor(code, message, details = {}) {
    super(message);
    this.name = 'PgNotifyError';
    this.code = code;
    Object.assign(this, details);
  }
}

export class PgNotifyClient {
  #url;
  #resolvedUrl = null; // the last URL a URL function gave
  #options;
  #state = 'closed';
  #stopped = true; // true until connect(), and again after close() or giving up
  #generation = 0; // bumped by every open and close: async steps of an older one stop
  #listeners = new Map(); // event -> Set of listeners (on/off)
  #storeListeners = new Set(); // subscribe(listener): any change of state
  #unwatch = null; // removes the online / visibilitychange listeners
  #attempt = 0; // failed attempts in a row
  #reconnectTimer = null;
  #subscriptions = new Set();
  #positions = new Map(); // table -> { position, filterKey }: the last position delivered, for tables that were live

  // Per socket:
  #ws = null; // the current socket; events of any older one are ignored
  #welcomed = false;
  #lossless = false;
  #welcomedAt = 0;
  #connectTimer = null;
  #heartbeatTimer = null;
  #lastFrameAt = 0;
  #pingSentAt = 0;
  #served = new Map(); // table -> { operations, filterKey } the server has acknowledged
  #lastSent = new Map(); // table -> the last request about it still unanswered
  #inFlight = new Map(); // request id -> request sent and not answered yet, in the order sent
  #dirty = new Set(); // tables whose server state may differ from what is wanted, in the order they changed
  #solo = new Set(); // tables to request alone (a request naming them with others was refused)
  #retryAt = new Map(); // table -> when to ask again after `unavailable`
  #unavailable = 0; // `unavailable` answers in a row
  #resumed = new Set(); // tables acknowledged with `since` on this socket
  #early = new Map(); // table -> highest position received before the answer to a subscribe without `since`
  #awaitingResume = null; // subscriptions that were live before the drop, until all are live again
  #snapshots = new Map(); // request id -> Map(table -> snapshot record) of snapshots asked for and not ended yet
  #tokens = 0; // requests that may be sent right now
  #tokensAt = 0;
  #pausedUntil = 0; // after a rate_limited answer
  #rateLimited = 0; // rate_limited answers in a row
  #flushTimer = null;
  #flushQueued = false;
  #nextId = 0;

  /**
   * @param {string | URL | (() => string | URL | Promise<string | URL>)} url `ws(s)://…`, `http(s)://…`, or relative
   * to the page (`/ws/changes/`) in a browser; or a function giving one before each connection attempt.
   * @param {import('./index.js').PgNotifyClientOptions} [options]
   */
  constructor(url, options = {}) {
    this.#url = url;
    this.#options = { ...options };
    for (const [name, value] of Object.entries(DEFAULTS)) this.#options[name] = options[name] ?? value;
    this.#loadPositions();
  }

  /** `connecting`, `open`, `reconnecting` or `closed`. */
  get state() {
    return this.#state;
  }

  /** The socket's absolute URL (relative URLs resolve against the page's location, http becomes ws). */
  get url() {
    return typeof this.#url === 'function' ? this.#resolvedUrl ?? '' : absoluteUrl(this.#url);
  }

  /** Opens the socket (and keeps it open, reconnecting as needed) until close(). Calling it again does nothing. */
  connect() {
    if (!this.#stopped) return this;
    if (!this.#options.createWebSocket && typeof (this.#options.WebSocket ?? globalThis.WebSocket) !== 'function') {
      throw new TypeError('No WebSocket implementation: pass one as options.WebSocket (in Node 20, the "ws" package).');
    }
    void this.url; // throws now, rather than in a reconnect loop, when the URL cannot be resolved
    this.#stopped = false;
    this.#attempt = 0;
    this.#watchEnvironment();
    this.#setState('connecting');
    if (!this.#stopped) this.#open();
    return this;
  }

  /** Closes the socket normally (1000) and stops reconnecting. Subscriptions are kept for a later connect(). */
  close() {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#generation++;
    this.#stopReconnecting();
    const ws = this.#ws;
    this.#dropSocket();
    closeQuietly(ws, 1000);
    this.#setState('closed');
  }

  /**
   * Drops the current socket, if any, and connects again at once, with the attempt count reset: after the app
   * refreshed a credential, for example. After close() or giving up, it connects again.
   */
  reconnect() {
    if (this.#stopped) return this.connect();
    this.#attempt = 0;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    const ws = this.#ws;
    this.#dropSocket();
    closeQuietly(ws, 1000, 'reconnecting');
    const generation = ++this.#generation;
    this.#setState('reconnecting');
    if (generation === this.#generation && !this.#stopped) this.#open();
    return this;
  }

  /**
   * Adds a listener for `state`, `error`, `resync` or `giveup` (called after the option callback of the same name).
   * @param {string} event
   * @param {(value: any) => void} listener
   */
  on(event, listener) {
    if (!this.#listeners.has(event)) this.#listeners.set(event, new Set());
    this.#listeners.get(event).add(listener);
    return this;
  }

  /** Removes a listener added with on(). */
  off(event, listener) {
    this.#listeners.get(event)?.delete(listener);
    return this;
  }

  /**
   * `subscribe(tables, onChange, options)` receives the changes of one or more tables. `ready` resolves once the
   * server has acknowledged the subscription (from then on every committed change is delivered) and rejects when the
   * server refuses it.
   *
   * `subscribe(listener)` (a function alone) is the store form for React's useSyncExternalStore: the listener is
   * called after every change of the client's state or of a subscription's state; it returns the function that
   * removes the listener.
   * @param {string | string[] | (() => void)} tables
   * @param {(change: object) => void} [onChange]
   * @param {{ operations?: string[], filter?: object, snapshot?: boolean, limit?: number, onSnapshot?: (snapshot: object) => void }} [options]
   */
  subscribe(tables, onChange, options = {}) {
    if (typeof tables === 'function' && onChange === undefined) {
      const listener = tables;
      this.#storeListeners.add(listener);
      return () => this.#storeListeners.delete(listener);
    }
    const names = [...new Set((Array.isArray(tables) ? tables : [tables]).map(canonicalTableName))];
    if (names.length === 0) throw new TypeError('subscribe() needs at least one table.');
    if (typeof onChange !== 'function') throw new TypeError('subscribe() needs an onChange function.');
    const { operations, filter, snapshot, limit, onSnapshot } = options ?? {};
    if (limit !== undefined && limit !== null && !(Number.isSafeInteger(limit) && limit > 0)) {
      throw new TypeError('subscribe(): limit must be a positive integer.');
    }
    if (onSnapshot !== undefined && typeof onSnapshot !== 'function') throw new TypeError('subscribe(): onSnapshot must be a function.');

    const sub = {
      tables: names,
      operations: operations ? OPERATIONS.filter((op) => operations.includes(op)).concat(
        operations.filter((op) => !OPERATIONS.includes(op))) : null,
      filter: filter ?? null,
      onChange,
      state: 'pending',
      recovered: false,
      error: null,
      skipThrough: new Map(), // table -> position: replayed changes older than the subscription are not for it
      snapshot: snapshot === true,
      limit: snapshot === true ? limit ?? null : null,
      onSnapshot: onSnapshot ?? null,
      // table -> null (a snapshot is wanted, not asked for yet) or the snapshot record of the request that asks for
      // it. While a table is in here, its changes are not delivered to this subscription: see #onChange.
      snap: new Map(),
      snapFailures: new Map(), // table -> snapshot_unavailable answers in a row
    };
    if (sub.snapshot) for (const table of names) sub.snap.set(table, null);
    sub.filterKey = stableJson(sub.filter);
    sub.ready = new Promise((resolve, reject) => Object.assign(sub, { resolve, reject }));
    sub.ready.catch(() => {}); // failures also reach onError: an unobserved `ready` must not crash Node

    const handle = {
      tables: names,
      ready: sub.ready,
      get state() { return sub.state; },
      get recovered() { return sub.recovered; },
      get error() { return sub.error; },
      get awaitingSnapshot() { return sub.snap.size > 0; },
      unsubscribe: () => this.#unsubscribe(sub),
    };

    const conflict = [...this.#subscriptions].find(
      (other) => other.filterKey !== sub.filterKey && other.tables.some((table) => names.includes(table)),
    );
    if (conflict) {
      const table = conflict.tables.find((t) => names.includes(t));
      this.#fail([sub], new PgNotifyError('conflicting_subscription',
        `This client already subscribes to '${table}' with another filter, and the server keeps one filter per table ` +
        'and socket. Use a second PgNotifyClient, or filter in your callback.', { tables: names }));
      return handle;
    }

    this.#subscriptions.add(sub);
    for (const table of names) this.#dirty.add(table);
    if (this.#welcomed) {
      this.#settleSubscriptions();
      this.#queueFlush();
    }
    return handle;
  }

  #unsubscribe(sub) {
    if (!this.#subscriptions.delete(sub)) return;
    const wasPending = sub.state === 'pending';
    this.#setSubState(sub, 'closed');
    if (wasPending) sub.reject(new PgNotifyError('unsubscribed', 'Unsubscribed before the server acknowledged the subscription.'));
    this.#tablesChanged(sub.tables);
  }

  /** After subscriptions of `tables` went away: forget unwanted tables' positions, and bring the server in line. */
  #tablesChanged(tables) {
    for (const table of tables) {
      if (!this.#isWanted(table)) this.#forgetPosition(table);
      this.#dirty.add(table);
    }
    if (this.#welcomed) {
      this.#settleSubscriptions();
      this.#queueFlush();
    }
  }

  #isWanted(table) {
    for (const sub of this.#subscriptions) if (sub.tables.includes(table)) return true;
    return false;
  }

  /** What the server should serve for `table`: the shared filter and the union of the operations; null for nothing. */
  #desired(table) {
    let operations = [];
    let filter;
    for (const sub of this.#subscriptions) {
      if (!sub.tables.includes(table)) continue;
      filter ??= { filter: sub.filter, filterKey: sub.filterKey };
      if (operations === null || sub.operations === null) operations = null;
      else operations.push(...sub.operations);
    }
    if (filter === undefined) return null;
    if (operations !== null) operations = OPERATIONS.filter((op) => operations.includes(op));
    return { operations, ...filter, key: stableJson([operations, filter.filterKey]) };
  }

  /** What the server will serve for `table` once the requests in flight are answered. */
  #expected(table) {
    const request = this.#lastSent.get(table);
    if (request) return request.type === 'subscribe' ? request.shape : null;
    return this.#served.get(table) ?? null;
  }

  #needsRequest(table) {
    const desired = this.#desired(table);
    const expected = this.#expected(table);
    if (desired === null) return expected !== null;
    return expected === null || !covers(expected, desired) || this.#snapshotWanted(table) !== null;
  }

  /**
   * Whether subscriptions want a snapshot of `table` that no request asks for yet: null, or `{ limit }`, the largest
   * limit they asked for (null for none). Subscriptions of one client sharing a table share its snapshots.
   */
  #snapshotWanted(table) {
    let wanted = null;
    for (const sub of this.#subscriptions) {
      if (!sub.snap.has(table) || sub.snap.get(table) !== null) continue;
      if (wanted === null) wanted = { limit: sub.limit };
      else if (wanted.limit !== null) wanted.limit = sub.limit === null ? null : Math.max(wanted.limit, sub.limit);
    }
    return wanted;
  }

  /** The position to resume `table` from on this socket, or null: only for a table live before, with its filter. */
  #sinceFor(table, desired) {
    if (!this.#lossless || desired === null || this.#served.has(table)) return null;
    const entry = this.#positions.get(table);
    return entry && entry.filterKey === desired.filterKey ? entry.position : null;
  }

  #queueFlush() {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    // After the current task's calls: an unsubscribe followed by a subscribe becomes one replacing request.
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  /**
   * Sends the requests that bring what the server serves in line with what is wanted, at most maxRequestsPerSecond
   * (a token bucket), so that the server's rate limit is not reached; after a rate_limited answer, nothing for a while.
   */
  #flush() {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    const rate = this.#options.maxRequestsPerSecond;
    while (this.#welcomed) {
      const now = Date.now();
      let first = null;
      let retryIn = Infinity;
      for (const table of this.#dirty) {
        if (!this.#needsRequest(table)) {
          this.#dirty.delete(table);
          continue;
        }
        const at = this.#retryAt.get(table) ?? 0;
        if (at > now) retryIn = Math.min(retryIn, at - now);
        else {
          first = table;
          break;
        }
      }
      if (first === null) {
        if (retryIn < Infinity) this.#flushTimer = setTimeout(() => this.#flush(), retryIn);
        return;
      }
      this.#tokens = Math.min(rate, this.#tokens + ((now - this.#tokensAt) / 1000) * rate);
      this.#tokensAt = now;
      const wait = Math.max(this.#pausedUntil - now, this.#tokens >= 1 ? 0 : ((1 - this.#tokens) / rate) * 1000);
      if (wait > 0) {
        this.#flushTimer = setTimeout(() => this.#flush(), Math.max(1, Math.ceil(wait)));
        return;
      }
      this.#tokens -= 1;
      this.#sendRequest(first, now);
    }
  }

  /** One request for `first` and the other waiting tables that want the same (tables resumed or not kept apart). */
  #sendRequest(first, now) {
    const desired = this.#desired(first);
    const firstSnapshot = desired === null ? null : this.#snapshotWanted(first);
    const firstSince = firstSnapshot === null ? this.#sinceFor(first, desired) : null; // a snapshot starts afresh
    const tables = [first];
    const sinces = firstSince === null ? [] : [firstSince];
    if (!this.#solo.has(first)) {
      for (const table of this.#dirty) {
        if (tables.length >= MAX_TABLES_PER_REQUEST) break;
        if (table === first || this.#solo.has(table) || (this.#retryAt.get(table) ?? 0) > now) continue;
        if (!this.#needsRequest(table)) continue;
        const other = this.#desired(table);
        if ((desired === null) !== (other === null) || (desired !== null && desired.key !== other.key)) continue;
        const snapshot = other === null ? null : this.#snapshotWanted(table);
        if (stableJson(snapshot) !== stableJson(firstSnapshot)) continue;
        const since = snapshot === null ? this.#sinceFor(table, other) : null;
        if ((since === null) !== (firstSince === null)) continue;
        tables.push(table);
        if (since !== null) sinces.push(since);
      }
    }
    for (const table of tables) this.#dirty.delete(table);

    const id = `r${++this.#nextId}`;
    const request = { id, type: desired ? 'subscribe' : 'unsubscribe', tables, shape: desired, since: null, size: 0 };
    const message = { type: request.type, id, tables };
    if (desired?.operations) message.operations = desired.operations;
    if (desired?.filter) message.filter = desired.filter;
    // A table ahead skips the repeats. The position goes back as it came (a number, or a string above 2^53 - 1).
    if (sinces.length > 0) message.since = request.since = sinces.reduce((a, b) => (comparePositions(a, b) <= 0 ? a : b));
    if (firstSnapshot !== null) {
      message.snapshot = true;
      if (firstSnapshot.limit !== null) message.limit = firstSnapshot.limit;
      this.#askSnapshots(id, tables, firstSnapshot.limit);
    }
    const text = JSON.stringify(message);
    request.size = text.length;
    this.#inFlight.set(id, request);
    for (const table of tables) this.#lastSent.set(table, request);
    try {
      this.#ws.send(text);
    } catch (error) {
      this.#lose(new PgNotifyError('disconnected', `The socket refused a frame: ${error.message}`, { cause: error }));
    }
  }

  /** Records the snapshots request `id` asks for, and hands each to the subscriptions that wanted it. */
  #askSnapshots(id, tables, limit) {
    const records = new Map();
    for (const table of tables) {
      const record = { id, table, limit, subs: new Set(), rows: [], answered: false, buffer: [], problem: null };
      for (const sub of this.#subscriptions) {
        if (sub.snap.has(table) && sub.snap.get(table) === null) {
          sub.snap.set(table, record);
          record.subs.add(sub);
        }
      }
      records.set(table, record);
    }
    this.#snapshots.set(id, records);
  }

  /** The snapshots of request `id` will not come (refused, ignored, or the socket dropped): want them again. */
  #retractSnapshots(id) {
    const records = this.#snapshots.get(id);
    if (!records) return;
    this.#snapshots.delete(id);
    for (const record of records.values()) {
      for (const sub of record.subs) if (sub.snap.get(record.table) === record) sub.snap.set(record.table, null);
      this.#dirty.add(record.table);
    }
  }

  /** Snapshot subscriptions of `tables` (all when null) take a fresh snapshot: after a resync, or a resume that failed. */
  #resnapshot(tables = null) {
    for (const sub of this.#subscriptions) {
      if (!sub.snapshot) continue;
      for (const table of sub.tables) {
        if (tables !== null && !tables.includes(table)) continue;
        const record = sub.snap.get(table);
        if (record === null) continue;
        if (record) {
          record.subs.delete(sub);
          if (record.subs.size === 0) this.#forgetRecord(record);
        }
        sub.snap.set(table, null);
        this.#dirty.add(table);
      }
    }
    this.#notifyStore();
    if (this.#welcomed) this.#queueFlush();
  }

  #forgetRecord(record) {
    const records = this.#snapshots.get(record.id);
    if (records?.get(record.table) !== record) return;
    records.delete(record.table);
    if (records.size === 0) this.#snapshots.delete(record.id);
  }

  /**
   * The server could not give a table's snapshot (after acknowledging the subscription, which stands): no primary key,
   * an excluded key column, no right to read it, a database failure or a timeout. The rows sent so far are dropped.
   * The first failures in a row are asked again after a backoff delay (the cause may pass); the third fails the
   * snapshot subscriptions of the table, with the server's error.
   */
  #snapshotFailed(record, error) {
    this.#forgetRecord(record);
    error.tables = [record.table];
    const subs = [...record.subs].filter((sub) => this.#subscriptions.has(sub) && sub.snap.get(record.table) === record);
    const failures = Math.max(0, ...subs.map((sub) => sub.snapFailures.get(record.table) ?? 0)) + 1;
    if (failures >= SNAPSHOT_ATTEMPTS) {
      this.#fail(subs, error);
      return;
    }
    for (const sub of subs) {
      sub.snapFailures.set(record.table, failures);
      sub.snap.set(record.table, null);
    }
    this.#report(error);
    this.#retryAt.set(record.table, Date.now() + this.#backoff(failures));
    this.#dirty.add(record.table);
    this.#queueFlush();
  }

  /** The record a snapshot frame is for, or null: frames of unknown requests or tables are ignored. */
  #recordOf(frame) {
    if (typeof frame.schema !== 'string' || typeof frame.table !== 'string') return null;
    if (typeof frame.id !== 'string' && typeof frame.id !== 'number') return null;
    return this.#snapshots.get(frame.id)?.get(tableName(frame.schema, frame.table)) ?? null;
  }

  #onSnapshotRows(frame) {
    const record = this.#recordOf(frame);
    if (!record || record.problem) return;
    const { rows } = frame;
    if (!Array.isArray(rows) || !rows.every(isRow)) {
      record.problem = 'a snapshot frame whose rows are not an array of objects';
    } else if (record.limit !== null && record.rows.length + rows.length > record.limit) {
      record.problem = `more snapshot rows than the limit (${record.limit}) asked for`;
    } else {
      for (const row of rows) record.rows.push(row);
    }
  }

  /**
   * The snapshot of a table is complete: each subscription that waited for it gets it (onSnapshot), then the changes
   * that came after the acknowledgment, in order; from then on its changes are delivered as they come.
   */
  #onSnapshotEnd(frame) {
    const record = this.#recordOf(frame);
    if (!record) return;
    this.#forgetRecord(record);
    const subs = [...record.subs].filter((sub) => this.#subscriptions.has(sub) && sub.snap.get(record.table) === record);
    const { key, count, truncated } = frame;
    let problem = record.problem;
    if (!problem && !(Array.isArray(key) && key.length > 0 && key.every((column) => typeof column === 'string'))) {
      problem = 'a snapshot_end without its key columns';
    } else if (!problem && (typeof count !== 'number' || typeof truncated !== 'boolean')) {
      problem = 'a snapshot_end without a count or truncated';
    }
    if (problem) {
      // The rows cannot be trusted or keyed: those subscriptions fail, rather than show wrong rows.
      this.#fail(subs, new PgNotifyError('invalid_frame', `The server sent ${problem} for '${record.table}'.`, { tables: [record.table] }));
      return;
    }
    if (count !== record.rows.length) {
      this.#report(new PgNotifyError('invalid_frame',
        `The snapshot of '${record.table}' says ${count} rows, but ${record.rows.length} came.`, { tables: [record.table] }));
    }
    const position = readPosition(frame.position);
    if (position !== null) {
      const served = this.#served.get(record.table);
      const entry = this.#positions.get(record.table);
      if (served && !(entry && entry.filterKey === served.filterKey && comparePositions(entry.position, position) >= 0)) {
        this.#setPosition(record.table, position, served.filterKey);
      }
    }
    const snapshot = { schema: frame.schema, table: frame.table, rows: record.rows, count: record.rows.length, truncated, key: [...key] };
    if (position !== null) snapshot.position = position;
    for (const [index, sub] of subs.entries()) {
      if (!this.#subscriptions.has(sub) || sub.snap.get(record.table) !== record) continue;
      sub.snap.delete(record.table);
      sub.snapFailures.delete(record.table);
      this.#call(sub.onSnapshot, index === subs.length - 1 ? snapshot : { ...snapshot, rows: [...record.rows], key: [...key] });
      for (const change of record.buffer) {
        if (!this.#subscriptions.has(sub) || sub.snap.has(record.table)) break;
        // In the snapshot already (lossless: its position says so).
        const at = readPosition(change.position);
        if (position !== null && at !== null && comparePositions(at, position) <= 0) continue;
        if (sub.operations && !sub.operations.includes(change.operation)) continue;
        this.#call(sub.onChange, change);
      }
    }
    this.#notifyStore();
    this.#settleSubscriptions();
  }

  /** Resolves and revives subscriptions the server now serves in full; reports a resync once resumes are done. */
  #settleSubscriptions() {
    for (const sub of this.#subscriptions) {
      // A snapshot subscription is live once it has its snapshots, too.
      if (sub.state === 'live' || sub.snap.size > 0 || !this.#isServed(sub)) continue;
      if (sub.state === 'resuming') sub.recovered = sub.tables.every((table) => this.#resumed.has(table));
      this.#setSubState(sub, 'live');
      sub.resolve();
    }
    const waiting = this.#awaitingResume;
    if (waiting && [...waiting].every((sub) => sub.state !== 'resuming')) {
      this.#awaitingResume = null;
      // Without a change log to resume from, the app must reload, which it should do once the subscriptions are live
      // again (listen, then read).
      // Snapshot subscriptions took a fresh snapshot instead.
      if ([...waiting].some((sub) => sub.state === 'live' && !sub.recovered && !sub.snapshot)) {
        this.#emit('resync', this.#options.onResync, { type: 'resync', reason: 'reconnected' });
      }
    }
  }

  /**
   * Whether the server sends everything `sub` needs, and no request in flight is about to change that. Any request for
   * the table still in flight may (requests sent before the last one can narrow or end what an earlier answer
   * granted, e.g. subscribe, unsubscribe, subscribe sent in a row), so a table counts as served only once the last
   * request sent for it has been answered.
   */
  #isServed(sub) {
    return sub.tables.every((table) => {
      const served = this.#served.get(table);
      return served !== undefined && covers(served, sub) && !this.#lastSent.has(table);
    });
  }

  /** Drops subscriptions the server refused, rejecting their `ready`, and reports the error once. */
  #fail(subs, error) {
    const live = subs.filter((sub) => sub.state !== 'failed' && sub.state !== 'closed');
    if (live.length === 0) return;
    error.tables ??= live[0].tables;
    for (const sub of live) {
      this.#subscriptions.delete(sub);
      sub.error = error;
      this.#setSubState(sub, 'failed');
      sub.reject(error);
    }
    this.#report(error);
    // The server may still send their tables (the refused request changed nothing): routed to nobody, and tables
    // nobody wants any more are unsubscribed.
    this.#tablesChanged([...new Set(live.flatMap((sub) => sub.tables))]);
  }

  /** Full jitter above a floor: between half and all of min(maxDelay, minDelay * 2^attempt). */
  #backoff(attempt) {
    const { minDelay, maxDelay } = this.#options;
    const cap = Math.min(maxDelay, minDelay * 2 ** Math.min(attempt, 30));
    return cap / 2 + (Math.random() * cap) / 2;
  }

  #open() {
    const generation = ++this.#generation;
    const { beforeConnect } = this.#options;
    if (!beforeConnect && typeof this.#url !== 'function') {
      this.#openSocket(this.url);
      return;
    }
    // A credential to refresh, or a URL to compute: asynchronous, and abandoned if close() or another open() came.
    Promise.resolve()
      .then(() => beforeConnect?.())
      .then(() => (generation === this.#generation ? this.#resolveUrl() : null))
      .then(
        (url) => generation === this.#generation && this.#openSocket(url),
        (error) => generation === this.#generation && this.#connectFailed(error),
      );
  }

  async #resolveUrl() {
    if (typeof this.#url !== 'function') return this.url;
    this.#resolvedUrl = absoluteUrl(await this.#url());
    return this.#resolvedUrl;
  }

  #openSocket(url) {
    let ws;
    try {
      const { createWebSocket } = this.#options;
      ws = createWebSocket ? createWebSocket(url) : new (this.#options.WebSocket ?? globalThis.WebSocket)(url);
    } catch (error) {
      this.#connectFailed(error);
      return;
    }

    this.#ws = ws;
    this.#welcomed = false;
    ws.onopen = () => {
      if (ws !== this.#ws) return;
      this.#armConnectTimer(this.#options.welcomeTimeoutMs, 'welcome');
    };
    ws.onmessage = (event) => ws === this.#ws && this.#onMessage(event.data);
    ws.onclose = (event) => ws === this.#ws && this.#onClose(event);
    ws.onerror = () => {}; // a close event always follows, and decides what happens
    this.#armConnectTimer(this.#options.connectTimeoutMs, 'connection');
  }

  #armConnectTimer(ms, what) {
    clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
    if (!(ms > 0 && ms < Infinity)) return;
    this.#connectTimer = setTimeout(() => {
      this.#connectTimer = null;
      this.#lose(new PgNotifyError('connect_timeout', `No ${what} within ${ms} ms (attempt ${this.#attempt + 1}).`,
        { attempt: this.#attempt + 1 }));
    }, ms);
  }

  #connectFailed(error) {
    this.#report(new PgNotifyError('connect_failed', `Could not connect (attempt ${this.#attempt + 1}): ${error?.message ?? error}`,
      { attempt: this.#attempt + 1, cause: error }));
    this.#scheduleReconnect();
  }

  #onMessage(text) {
    this.#lastFrameAt = Date.now();
    this.#pingSentAt = 0;
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      this.#report(new PgNotifyError('invalid_frame', 'The server sent a frame that is not JSON.'));
      return;
    }

    if (frame === null || typeof frame !== 'object') return;
    try {
      this.#dispatch(frame);
    } catch (error) {
      // A frame of a shape nothing expected: reported, and the client carries on.
      this.#report(new PgNotifyError('invalid_frame', `The client could not handle a '${String(frame.type).slice(0, 40)}' frame: ${error?.message}`,
        { cause: error }));
    }
  }

  #dispatch(frame) {
    switch (frame.type) {
      case 'welcome':
        this.#onWelcome(frame);
        break;
      case 'change':
        this.#onChange(frame);
        break;
      case 'snapshot':
        this.#onSnapshotRows(frame);
        break;
      case 'snapshot_end':
        this.#onSnapshotEnd(frame);
        break;
      case 'resync':
        // Snapshot subscriptions take a fresh snapshot (their rows stay until it comes); the app hears of it too.
        this.#resnapshot();
        this.#emit('resync', this.#options.onResync, frame);
        break;
      case 'unsubscribed':
        if (frame.id == null && frame.reason != null) {
          this.#onEnded(frame);
          break;
        }
      // falls through: an answer to an unsubscribe request
      case 'subscribed':
        this.#rateLimited = 0;
        this.#onAnswer(frame);
        break;
      case 'error':
        if (frame.code === 'rate_limited') this.#onRateLimited();
        else this.#onRefused(frame);
        break;
      default:
        break; // `pong` (liveness is any frame), or a frame type of a later protocol version
    }
  }

  #onWelcome(frame) {
    if (this.#welcomed) return;
    const ws = this.#ws;
    clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
    this.#welcomed = true;
    this.#lossless = frame.lossless === true;
    this.#welcomedAt = Date.now();
    this.#tokens = this.#options.maxRequestsPerSecond;
    this.#tokensAt = this.#welcomedAt;
    this.#pausedUntil = 0;
    this.#rateLimited = 0;
    this.#unavailable = 0;
    this.#armHeartbeat(this.#options.heartbeatMs);
    const resuming = [...this.#subscriptions].filter((sub) => sub.state === 'resuming');
    this.#awaitingResume = resuming.length > 0 ? new Set(resuming) : null;
    // A snapshot subscription that was live resumes from its table's position where that is exact (a lossless server,
    // a position kept with its filter); anywhere else it takes a fresh snapshot.
    for (const sub of resuming) {
      if (!sub.snapshot) continue;
      for (const table of sub.tables) {
        const entry = this.#positions.get(table);
        if (!(this.#lossless && entry && entry.filterKey === sub.filterKey)) sub.snap.set(table, null);
      }
    }
    for (const sub of this.#subscriptions) for (const table of sub.tables) this.#dirty.add(table);
    this.#setState('open');
    if (ws !== this.#ws) return; // the app closed or reconnected from onState
    this.#flush();
  }

  /** An answer (subscribed, unsubscribed) to a request: the server now serves what it asked for. */
  #onAnswer(frame) {
    const request = this.#take(frame.id);
    if (!request) return;
    // The subscription is live: changes from here on are after the snapshot's start, held until it ends.
    for (const record of this.#snapshots.get(request.id)?.values() ?? []) record.answered = true;
    const head = readPosition(frame.position);
    for (const table of request.tables) {
      this.#retryAt.delete(table);
      if (request.type === 'unsubscribe') {
        this.#served.delete(table);
        continue;
      }
      const before = this.#served.get(table);
      this.#served.set(table, request.shape);
      if (request.since !== null) {
        this.#resumed.add(table);
        // The replay is for the subscriptions that were live before; ones new on this table get only what comes
        // after it. (When all are new, the position came from the positionStore: the replay is theirs.)
        if (head !== null) this.#skipReplayForNew(table, head);
        continue;
      }
      this.#resumed.delete(table);
      const early = this.#early.get(table) ?? null;
      this.#early.delete(table);
      if (!this.#lossless) continue;
      const entry = this.#positions.get(table);
      // Changes above the head may come before the answer (they are routed once the subscription is live): the
      // table's position is the highest of the head and those.
      if (head !== null) this.#setPosition(table, maxPosition(head, early, entry?.filterKey === request.shape.filterKey ? entry.position : null), request.shape.filterKey);
      else if (before?.filterKey !== request.shape.filterKey) this.#forgetPosition(table); // a gap we cannot measure
    }
    this.#unavailable = 0;
    this.#settleSubscriptions();
    if (this.#dirty.size > 0) this.#queueFlush();
  }

  /**
   * The server ended subscriptions on its own (`unsubscribed` with a `reason`, e.g. `forbidden` when re-authorization
   * refused a table): the subscriptions on those tables fail with that reason as their error's code, and are not sent
   * again, on this socket or the next.
   */
  #onEnded(frame) {
    const tables = (Array.isArray(frame.tables) ? frame.tables : []).map(canonicalTableName);
    for (const table of tables) this.#served.delete(table);
    const reason = typeof frame.reason === 'string' ? frame.reason : 'unknown';
    const error = new PgNotifyError(reason,
      `The server ended the subscription to ${tables.map((t) => `'${t}'`).join(', ')} (${reason}).`, { id: null, tables });
    const subs = [...this.#subscriptions].filter((sub) => sub.tables.some((table) => tables.includes(table)));
    if (subs.length > 0) this.#fail(subs, error);
    else this.#report(error);
    this.#settleSubscriptions();
  }

  #skipReplayForNew(table, head) {
    const subs = [...this.#subscriptions].filter((sub) => sub.tables.includes(table));
    if (!subs.some((sub) => sub.state !== 'pending')) return;
    for (const sub of subs) if (sub.state === 'pending') sub.skipThrough.set(table, head);
  }

  #onRefused(frame) {
    const code = typeof frame.code === 'string' ? frame.code : 'invalid_frame';
    const error = new PgNotifyError(code, typeof frame.message === 'string' ? frame.message : `The server refused a request (${code}).`,
      { id: frame.id });
    if (code === 'snapshot_unavailable' && frame.id != null) {
      const record = this.#recordOf(frame);
      if (record) {
        this.#snapshotFailed(record, error);
        return;
      }
    }
    const request = frame.id == null ? null : this.#take(frame.id);
    if (!request) {
      this.#report(error);
      return;
    }
    for (const table of request.tables) this.#dirty.add(table);
    const snapshotSubs = [...(this.#snapshots.get(request.id)?.values() ?? [])].flatMap((record) => [...record.subs]);
    this.#retractSnapshots(request.id);

    if (error.code === 'snapshot_unavailable' && request.tables.length === 1) {
      // The table has no primary key: the snapshot subscriptions fail; others of the table carry on.
      const [table] = request.tables;
      const subs = [...this.#subscriptions].filter((sub) => sub.snapshot && sub.tables.includes(table));
      this.#fail(subs.length > 0 ? subs : snapshotSubs, error);
    } else if (error.code === 'unavailable') {
      // The server could not make it live in time, and dropped those tables: ask again after a while.
      const at = Date.now() + this.#backoff(this.#unavailable++);
      for (const table of request.tables) {
        this.#served.delete(table);
        this.#retryAt.set(table, at);
      }
      this.#report(error);
    } else if (request.type === 'subscribe' && error.code === 'invalid_position' && request.since !== null) {
      for (const table of request.tables) this.#forgetPosition(table); // cannot resume here: subscribe afresh, and the app reloads
      this.#resnapshot(request.tables);
    } else if (request.tables.length > 1) {
      for (const table of request.tables) this.#solo.add(table); // a request succeeds or fails as a whole: find whose table
    } else if (request.type === 'subscribe') {
      const [table] = request.tables;
      this.#fail([...this.#subscriptions].filter((sub) => sub.tables.includes(table)), error);
    } else {
      this.#report(error);
    }
    this.#queueFlush();
  }

  #take(id) {
    const request = this.#inFlight.get(id);
    if (!request) return null;
    this.#inFlight.delete(id);
    for (const table of request.tables) if (this.#lastSent.get(table) === request) this.#lastSent.delete(table);
    return request;
  }

  /**
   * The server ignored requests (it answers only the first refusal of a burst, without saying which): after a pause,
   * send again whatever is still needed. Answers to requests the server did take still count when they come.
   */
  #onRateLimited() {
    for (const request of this.#inFlight.values()) {
      this.#retractSnapshots(request.id); // asked again with the request; frames of this one are then ignored
      for (const table of request.tables) {
        if (this.#lastSent.get(table) === request) this.#lastSent.delete(table);
        this.#dirty.add(table);
      }
    }
    this.#pausedUntil = Date.now() + 1000 + this.#backoff(this.#rateLimited++);
    this.#flush();
  }

  #onChange(frame) {
    if (typeof frame.schema !== 'string' || typeof frame.table !== 'string') {
      this.#report(new PgNotifyError('invalid_frame', 'The server sent a change frame without its schema and table.'));
      return;
    }
    const table = tableName(frame.schema, frame.table);
    const position = readPosition(frame.position);
    if (position !== null) {
      const entry = this.#positions.get(table);
      if (entry && comparePositions(position, entry.position) <= 0) return; // a repeat from a replay of this table
      const served = this.#served.get(table);
      const asked = this.#lastSent.get(table);
      if (asked?.type === 'subscribe' && asked.since === null) this.#early.set(table, maxPosition(position, this.#early.get(table) ?? null));
      else if (served) this.#setPosition(table, position, served.filterKey);
    }

    const held = new Set();
    for (const sub of [...this.#subscriptions]) {
      if (!this.#subscriptions.has(sub) || !sub.tables.includes(table)) continue;
      if (sub.snap.has(table)) {
        // Waiting for a snapshot. Before the answer to its request, the change is in the snapshot to come (read
        // once the subscription is live); after it, the change goes on top of the snapshot, so it is held until then.
        const record = sub.snap.get(table);
        if (record?.answered && !held.has(record)) {
          held.add(record);
          record.buffer.push(frame);
        }
        continue;
      }
      if (sub.operations && !sub.operations.includes(frame.operation)) continue;
      const skipThrough = sub.skipThrough.get(table);
      if (position !== null && skipThrough !== undefined && comparePositions(position, skipThrough) <= 0) continue;
      this.#call(sub.onChange, frame);
    }
  }

  #onClose(event) {
    const code = CLOSE_ERRORS[event.code];
    // 1009: a request was over the server's size limit. Sending it again would only repeat this, so the
    // subscriptions of the largest unanswered subscribe fail instead.
    const culprit = event.code === 1009
      ? [...this.#inFlight.values()].filter((r) => r.type === 'subscribe').sort((a, b) => b.size - a.size)[0]
      : null;
    const attempt = this.#attempt + 1;
    const welcomed = this.#welcomed;
    this.#dropSocket();
    if (welcomed && Date.now() - this.#welcomedAt >= this.#options.minUptimeMs) this.#attempt = 0;

    if (code) {
      const reason = event.reason ? `: ${event.reason}` : '';
      const error = new PgNotifyError(code, `The server closed the connection with ${event.code}${reason}.`,
        { closeCode: event.code, ...(welcomed ? {} : { attempt }) });
      const owners = culprit ? [...this.#subscriptions].filter((sub) => sub.tables.some((t) => culprit.tables.includes(t))) : [];
      if (owners.length > 0) this.#fail(owners, error);
      else this.#report(error);
    } else if (!welcomed) {
      // A refused handshake (401, 403, 503...) reaches a browser as 1006, with no status: all it can say.
      this.#report(new PgNotifyError('connect_failed', `Could not connect (attempt ${attempt}): closed with ${event.code}.`,
        { attempt, closeCode: event.code }));
    }
    this.#scheduleReconnect();
  }

  /** Gives up on the current socket (a timeout): it is closed without waiting for it, and the client reconnects. */
  #lose(error) {
    const ws = this.#ws;
    if (!ws) return;
    const welcomed = this.#welcomed;
    this.#dropSocket();
    if (welcomed && Date.now() - this.#welcomedAt >= this.#options.minUptimeMs) this.#attempt = 0;
    closeQuietly(ws, CLOSE_ABANDONED, error.code);
    this.#report(error);
    this.#scheduleReconnect();
  }

  #scheduleReconnect() {
    if (this.#stopped || this.#reconnectTimer) return;
    if (this.#attempt >= this.#options.maxRetries) {
      this.#giveUp();
      return;
    }
    const delay = this.#backoff(this.#attempt++);
    const generation = this.#generation;
    this.#setState('reconnecting');
    if (this.#stopped || generation !== this.#generation || this.#reconnectTimer) return; // close() or reconnect() from onState
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      if (!this.#stopped) this.#open();
    }, delay);
  }

  #giveUp() {
    const attempts = this.#attempt;
    this.#stopped = true;
    this.#generation++;
    this.#stopReconnecting();
    this.#setState('closed');
    this.#emit('giveup', this.#options.onGiveUp, new PgNotifyError('gave_up',
      `Gave up after ${attempts} failed attempts in a row; call reconnect() to try again.`, { attempt: attempts }));
  }

  #stopReconnecting() {
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    this.#unwatch?.();
    this.#unwatch = null;
  }

  // Liveness: any frame proves the connection. After heartbeatMs without one, a ping; without any frame
  // heartbeatTimeoutMs after it, the socket is given up on.
  #armHeartbeat(ms) {
    clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = null;
    if (!(this.#options.heartbeatMs > 0 && this.#options.heartbeatMs < Infinity)) return;
    this.#lastFrameAt = Date.now();
    this.#pingSentAt = 0;
    this.#heartbeatTimer = setTimeout(() => this.#onHeartbeat(), ms);
  }

  #onHeartbeat() {
    this.#heartbeatTimer = null;
    if (!this.#welcomed) return;
    const now = Date.now();
    const { heartbeatMs, heartbeatTimeoutMs } = this.#options;
    if (this.#pingSentAt !== 0) {
      if (now - this.#pingSentAt >= heartbeatTimeoutMs) {
        this.#lose(new PgNotifyError('heartbeat_timeout', `No answer to a ping within ${heartbeatTimeoutMs} ms.`));
        return;
      }
      this.#heartbeatTimer = setTimeout(() => this.#onHeartbeat(), heartbeatTimeoutMs - (now - this.#pingSentAt));
      return;
    }
    const idle = now - this.#lastFrameAt;
    if (idle < heartbeatMs) {
      this.#heartbeatTimer = setTimeout(() => this.#onHeartbeat(), heartbeatMs - idle);
      return;
    }
    this.#ping();
  }

  #ping() {
    this.#pingSentAt = Date.now();
    clearTimeout(this.#heartbeatTimer);
    this.#heartbeatTimer = setTimeout(() => this.#onHeartbeat(), this.#options.heartbeatTimeoutMs);
    try {
      this.#ws.send(JSON.stringify({ type: 'ping', id: `p${++this.#nextId}` }));
    } catch (error) {
      this.#lose(new PgNotifyError('disconnected', `The socket refused a frame: ${error.message}`, { cause: error }));
    }
  }

  /** The network came back, or the page became visible: reconnect now, or check the connection now. */
  #wake() {
    if (this.#stopped) return;
    if (this.#reconnectTimer) {
      clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = null;
      this.#attempt = 0;
      this.#open();
    } else if (this.#welcomed && this.#pingSentAt === 0 && this.#options.heartbeatTimeoutMs < Infinity) {
      this.#ping(); // a laptop that slept: its socket may be half open
    }
  }

  #watchEnvironment() {
    if (!this.#options.reconnectOnResume || typeof globalThis.addEventListener !== 'function') return;
    const onOnline = () => this.#wake();
    const doc = globalThis.document;
    const onVisible = () => doc?.visibilityState === 'visible' && this.#wake();
    globalThis.addEventListener('online', onOnline);
    doc?.addEventListener?.('visibilitychange', onVisible);
    this.#unwatch = () => {
      globalThis.removeEventListener?.('online', onOnline);
      doc?.removeEventListener?.('visibilitychange', onVisible);
    };
  }

  /** Forgets the current socket: what it served, its requests, its timers. Subscriptions live on it are resuming. */
  #dropSocket() {
    this.#ws = null;
    this.#welcomed = false;
    for (const timer of [this.#flushTimer, this.#connectTimer, this.#heartbeatTimer]) clearTimeout(timer);
    this.#flushTimer = this.#connectTimer = this.#heartbeatTimer = null;
    this.#pingSentAt = 0;
    this.#inFlight.clear();
    this.#served.clear();
    this.#lastSent.clear();
    this.#dirty.clear();
    this.#solo.clear();
    this.#retryAt.clear();
    this.#resumed.clear();
    this.#early.clear();
    this.#awaitingResume = null;
    this.#snapshots.clear();
    for (const sub of this.#subscriptions) {
      for (const [table, record] of sub.snap) if (record !== null) sub.snap.set(table, null); // asked again on the next socket
      sub.skipThrough.clear();
      if (sub.state === 'live') this.#setSubState(sub, 'resuming');
    }
  }

  #setPosition(table, position, filterKey) {
    this.#positions.set(table, { position, filterKey });
    this.#savePositions();
  }

  #forgetPosition(table) {
    if (this.#positions.delete(table)) this.#savePositions();
  }

  #storeKey() {
    return this.#options.positionStoreKey ?? 'pgnotify.positions';
  }

  #loadPositions() {
    const store = this.#options.positionStore;
    if (!store) return;
    try {
      const saved = JSON.parse(store.getItem(this.#storeKey()) ?? '{}');
      for (const [table, entry] of Object.entries(saved)) {
        if (readPosition(entry?.position) !== null && typeof entry.filterKey === 'string') this.#positions.set(table, entry);
      }
    } catch (error) {
      this.#report(new PgNotifyError('position_store_failed', `Could not read saved positions: ${error.message}`, { cause: error }));
    }
  }

  #savePositions() {
    const store = this.#options.positionStore;
    if (!store) return;
    try {
      store.setItem(this.#storeKey(), JSON.stringify(Object.fromEntries(this.#positions)));
    } catch (error) {
      this.#report(new PgNotifyError('position_store_failed', `Could not save positions: ${error.message}`, { cause: error }));
    }
  }

  #setState(state) {
    if (this.#state === state) return;
    this.#state = state;
    this.#emit('state', this.#options.onState, state);
    this.#notifyStore();
  }

  #setSubState(sub, state) {
    if (sub.state === state) return;
    sub.state = state;
    this.#notifyStore();
  }

  #notifyStore() {
    for (const listener of [...this.#storeListeners]) this.#call(listener, undefined);
  }

  #emit(event, callback, value) {
    this.#call(callback, value, event === 'error');
    for (const listener of [...(this.#listeners.get(event) ?? [])]) this.#call(listener, value, event === 'error');
  }

  #report(error) {
    if (this.#options.onError || this.#listeners.get('error')?.size) this.#emit('error', this.#options.onError, error);
    else console.error('PgNotify:', error);
  }

  /** Calls an app callback; what it throws is reported, never allowed to break the client. */
  #call(callback, value, isErrorListener = false) {
    if (!callback) return;
    try {
      callback(value);
    } catch (error) {
      if (isErrorListener) console.error('PgNotify: an error listener threw', error);
      else this.#report(error);
    }
  }
}

/**
 * The rows of one table, kept equal to the table (under a filter) from a snapshot and the changes after it: keyed by
 * the table's primary key (the snapshot's `key`), ordered by it. It takes a fresh snapshot after a `resync` and after
 * a reconnect, unless the client could resume the table from its position (lossless servers), which is exact.
 *
 * Applying a change: INSERT and UPDATE upsert by key, except that an UPDATE whose new row no longer passes the filter
 * removes it (the filter is evaluated here as the server does: see matchesFilter); DELETE removes by key; TRUNCATE
 * empties.
 */
export class LiveRows {
  #client;
  #table;
  #filter;
  #limit;
  #subscription = null;
  #unwatch = null;
  #key = null; // the key columns, from the last snapshot
  #entries = new Map(); // key text -> { values, row }
  #sorted = []; // the same entries, ordered by key
  #rows = Object.freeze([]);
  #rowsStale = false;
  #truncated = false;
  #hasSnapshot = false;
  #problem = null; // a PgNotifyError of its own (rows without their key, a change it could not apply)
  #closed = false;
  #status = 'loading';
  #view = null;
  #listeners = new Set();
  #storeListeners = new Set();

  /**
   * @param {PgNotifyClient} client The client to subscribe with (connected by its owner).
   * @param {string} table `name` or `schema.name`.
   * @param {{ filter?: object, limit?: number }} [options]
   */
  constructor(client, table, options = {}) {
    if (!client || typeof client.subscribe !== 'function') throw new TypeError('LiveRows needs a PgNotifyClient.');
    if (typeof table !== 'string' || table.length === 0) throw new TypeError('LiveRows needs a table name.');
    this.#client = client;
    this.#table = table;
    this.#filter = options.filter ?? null;
    this.#limit = options.limit ?? null;
    this.subscribe = this.subscribe.bind(this);
    this.getSnapshot = this.getSnapshot.bind(this);
    this.#unwatch = client.subscribe(() => this.#refresh());
    this.#subscription = client.subscribe(table, (change) => this.#onChange(change), {
      filter: this.#filter ?? undefined,
      snapshot: true,
      limit: this.#limit ?? undefined,
      onSnapshot: (snapshot) => this.#onSnapshot(snapshot),
    });
    this.#subscription.ready.catch(() => this.#refresh());
    this.#refresh();
  }

  /** The table, as given. */
  get table() {
    return this.#table;
  }

  /** The rows, ordered by key: the same (frozen) array until something changes. */
  get rows() {
    if (this.#rowsStale) {
      this.#rows = Object.freeze(this.#sorted.map((entry) => entry.row));
      this.#rowsStale = false;
    }
    return this.#rows;
  }

  /**
   * `loading` until the first snapshot; `live`; `reconnecting` while the socket is down (the rows stay as they were);
   * `resyncing` while a fresh snapshot is on its way after a resync; `failed` (see `error`); `closed`.
   */
  get status() {
    return this.#status;
  }

  /** Why it failed, or the last problem met while applying (rows without their key). Null otherwise. */
  get error() {
    return this.#subscription?.error ?? this.#problem;
  }

  /** Whether the last snapshot left rows out (its limit, or the server's cap). */
  get truncated() {
    return this.#truncated;
  }

  /** The primary key columns, from the last snapshot (null before it). */
  get key() {
    return this.#key;
  }

  /** `{ rows, status, error, truncated }`: the same object until something changes (for useSyncExternalStore). */
  getSnapshot() {
    if (this.#view === null) {
      this.#view = Object.freeze({ rows: this.rows, status: this.#status, error: this.error, truncated: this.#truncated });
    }
    return this.#view;
  }

  /** Calls `listener` after every change of the rows or the status; returns the function that removes it. */
  subscribe(listener) {
    this.#storeListeners.add(listener);
    return () => this.#storeListeners.delete(listener);
  }

  /** Adds a listener for `change`: called with `{ rows, status, error, truncated }` after every change. */
  on(event, listener) {
    if (event === 'change') this.#listeners.add(listener);
    return this;
  }

  /** Removes a listener added with on(). */
  off(event, listener) {
    if (event === 'change') this.#listeners.delete(listener);
    return this;
  }

  /** Unsubscribes; the rows stay as they were, the status becomes `closed`. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#subscription?.unsubscribe();
    this.#unwatch?.();
    this.#changed();
  }

  #onSnapshot(snapshot) {
    if (this.#closed) return;
    this.#key = snapshot.key;
    this.#truncated = snapshot.truncated === true;
    this.#problem = null;
    this.#entries = new Map();
    for (const row of snapshot.rows) {
      const entry = this.#entry(row);
      if (entry) this.#entries.set(entry.text, entry);
    }
    this.#sorted = [...this.#entries.values()].sort((a, b) => compareKeys(a.values, b.values));
    this.#hasSnapshot = true;
    this.#rowsStale = true;
    this.#changed();
  }

  #onChange(change) {
    if (this.#closed || !this.#hasSnapshot) return;
    const { data, old } = change;
    switch (change.operation) {
      case 'INSERT':
        this.#upsert(data);
        break;
      case 'UPDATE': {
        const entry = this.#entry(data);
        const before = old === undefined ? null : this.#entry(old);
        if (before && entry && before.text !== entry.text) this.#remove(before.text); // the key itself changed
        if (!entry) break;
        if (this.#filter === null || matchesFilter(this.#filter, data)) this.#upsert(data, entry);
        else this.#remove(entry.text); // it left the filter
        break;
      }
      case 'DELETE': {
        const entry = this.#entry(old);
        if (entry) this.#remove(entry.text);
        break;
      }
      case 'TRUNCATE':
        this.#entries.clear();
        this.#sorted = [];
        break;
      default:
        return;
    }
    this.#rowsStale = true;
    this.#changed();
  }

  /** A row's key values and their text, or null (with the problem noted) when the row lacks a key column. */
  #entry(row) {
    if (!isRow(row)) {
      this.#problem = new PgNotifyError('missing_key', `A change of '${this.#table}' came without its row.`, { tables: [this.#table] });
      return null;
    }
    const values = [];
    for (const column of this.#key) {
      if (!Object.hasOwn(row, column)) {
        this.#problem = new PgNotifyError('missing_key',
          `A row of '${this.#table}' came without its key column '${column}' (is it excluded?): it is left out.`, { tables: [this.#table] });
        return null;
      }
      values.push(row[column]);
    }
    let text;
    try {
      text = JSON.stringify(values);
    } catch {
      this.#problem = new PgNotifyError('missing_key', `A row of '${this.#table}' has a key that cannot be compared.`, { tables: [this.#table] });
      return null;
    }
    return { text, values, row };
  }

  #upsert(row, entry = this.#entry(row)) {
    if (!entry) return;
    const existing = this.#entries.get(entry.text);
    if (existing) {
      existing.row = row;
      return;
    }
    this.#entries.set(entry.text, entry);
    this.#sorted.splice(this.#indexOf(entry.values), 0, entry);
  }

  #remove(text) {
    const entry = this.#entries.get(text);
    if (!entry) return;
    this.#entries.delete(text);
    const index = this.#indexOf(entry.values);
    if (this.#sorted[index] === entry) this.#sorted.splice(index, 1);
    else this.#sorted = this.#sorted.filter((other) => other !== entry); // keys that do not order (never expected)
  }

  /** The first index whose key is not below `values` (binary search). */
  #indexOf(values) {
    let low = 0;
    let high = this.#sorted.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareKeys(this.#sorted[middle].values, values) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** The subscription's or client's state changed: recompute the status. */
  #refresh() {
    if (this.#statusNow() !== this.#status) this.#changed();
  }

  #statusNow() {
    if (this.#closed) return 'closed';
    const sub = this.#subscription;
    if (!sub) return 'loading';
    if (sub.state === 'failed') return 'failed';
    if (!this.#hasSnapshot) return 'loading';
    if (sub.state === 'resuming' || this.#client.state !== 'open') return 'reconnecting';
    if (sub.awaitingSnapshot) return 'resyncing';
    return 'live';
  }

  #changed() {
    this.#status = this.#statusNow();
    this.#view = null;
    const view = this.getSnapshot();
    for (const listener of [...this.#storeListeners]) callQuietly(listener, undefined);
    for (const listener of [...this.#listeners]) callQuietly(listener, view);
  }
}

/**
 * Whether `row` passes `filter`, as the server decides it (docs/protocol.md): every condition must hold; a bare value
 * means `eq`; `eq`, `neq` and `in` compare values of the same JSON type (numbers by value); `lt`, `lte`, `gt`, `gte`
 * compare two numbers or two strings (by UTF-16 code units); a row without the column passes no condition. Numbers
 * are compared as JavaScript numbers: beyond 2^53, or beyond double's range, the server (which compares decimals, or
 * the number's text) may decide otherwise.
 * @param {object | null | undefined} filter
 * @param {object} row
 */
/**
 * Orders two positions exactly, in either form the server sends (docs/protocol.md, "Positions"): a number up to
 * 2^53 - 1, or a string of decimal digits (above it). Returns a negative number, 0 or a positive number, like a sort
 * comparator. Throws a TypeError for anything that is not a position.
 */
export function comparePositions(a, b) {
  if (typeof a === 'number' && typeof b === 'number' && readPosition(a) !== null && readPosition(b) !== null) return a - b;
  const x = positionBigInt(a);
  const y = positionBigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** A position as the server sends it, or null: a safe whole number, or a string of 1 to 19 digits up to 2^63 - 1. */
function readPosition(value) {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : null;
  if (typeof value === 'string' && POSITION_DIGITS.test(value) && BigInt(value) <= MAX_POSITION) return value;
  return null;
}

function positionBigInt(value) {
  if (readPosition(value) === null) throw new TypeError(`Not a position: ${String(value).slice(0, 40)}`);
  return BigInt(value);
}

/** The highest of the positions given, leaving out nulls; null when none. */
function maxPosition(...positions) {
  let highest = null;
  for (const position of positions) {
    if (position !== null && (highest === null || comparePositions(position, highest) > 0)) highest = position;
  }
  return highest;
}

export function matchesFilter(filter, row) {
  if (filter === null || filter === undefined) return true;
  if (!isRow(row) || !isRow(filter)) return false;
  for (const [column, condition] of Object.entries(filter)) {
    if (!Object.hasOwn(row, column)) return false;
    const cell = row[column];
    if (isRow(condition)) {
      for (const [op, value] of Object.entries(condition)) if (!testCondition(op, value, cell)) return false;
    } else if (!sameValue(condition, cell)) {
      return false;
    }
  }
  return true;
}

function testCondition(op, value, cell) {
  switch (op) {
    case 'eq': return sameValue(value, cell);
    case 'neq': return !sameValue(value, cell);
    case 'in': return Array.isArray(value) && value.some((item) => sameValue(item, cell));
    case 'lt': case 'lte': case 'gt': case 'gte': {
      const bothNumbers = typeof value === 'number' && typeof cell === 'number';
      const bothStrings = typeof value === 'string' && typeof cell === 'string';
      if (!bothNumbers && !bothStrings) return false;
      const order = cell < value ? -1 : cell > value ? 1 : 0;
      return op === 'lt' ? order < 0 : op === 'lte' ? order <= 0 : op === 'gt' ? order > 0 : order >= 0;
    }
    default: return false; // the server refuses unknown operators
  }
}

/** Equality of a filter value and a cell: the same JSON type (scalars only), and the same value. */
function sameValue(value, cell) {
  if (value === null) return cell === null;
  const type = typeof value;
  if (type !== 'number' && type !== 'string' && type !== 'boolean') return false;
  return typeof cell === type && cell === value;
}

/** Key order: component by component; null < booleans < numbers < strings < anything else (by its JSON). */
function compareKeys(a, b) {
  for (let i = 0; i < a.length && i < b.length; i++) {
    const order = compareValues(a[i], b[i]);
    if (order !== 0) return order;
  }
  return a.length - b.length;
}

function compareValues(a, b) {
  const rankA = valueRank(a);
  const rankB = valueRank(b);
  if (rankA !== rankB) return rankA - rankB;
  if (rankA === 4) {
    a = safeJson(a);
    b = safeJson(b);
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

function valueRank(value) {
  if (value === null || value === undefined) return 0;
  switch (typeof value) {
    case 'boolean': return 1;
    case 'number': return 2;
    case 'string': return 3;
    default: return 4;
  }
}

function safeJson(value) {
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return '';
  }
}

function isRow(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function callQuietly(listener, value) {
  try {
    listener(value);
  } catch (error) {
    console.error('PgNotify: a LiveRows listener threw', error);
  }
}

/** Whether a served subscription (operations, filterKey) covers what `wanted` needs. */
function covers(served, wanted) {
  if (served.filterKey !== wanted.filterKey) return false;
  return served.operations === null || (wanted.operations !== null && wanted.operations.every((op) => served.operations.includes(op)));
}

function closeQuietly(ws, code, reason) {
  try {
    ws?.close(code, reason);
  } catch {
    // already closing
  }
}

function absoluteUrl(value) {
  const base = globalThis.location?.href;
  const url = base === undefined ? new URL(value) : new URL(value, base);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  return url.href;
}

/** The text form the server uses: `name` for schema public, else `schema.name`; parts with `.` or `"` quoted. */
function tableName(schema, name) {
  const quote = (part) => (/[."]/.test(part) ? `"${part.replaceAll('"', '""')}"` : part);
  return schema === 'public' ? quote(name) : `${quote(schema)}.${quote(name)}`;
}

/** `public.profiles` → `profiles`, `"Sales".orders` → `Sales.orders`; text it cannot parse is left to the server. */
function canonicalTableName(text) {
  const match = /^(?:("(?:[^"]|"")+"|[^."]+)\.)?("(?:[^"]|"")+"|[^."]+)$/.exec(String(text).trim());
  if (!match) return String(text);
  const unquote = (part) => (part.startsWith('"') ? part.slice(1, -1).replaceAll('""', '"') : part);
  return tableName(match[1] ? unquote(match[1]) : 'public', unquote(match[2]));
}

/** JSON with object keys sorted, so that `{a, b}` and `{b, a}` compare equal. */
function stableJson(value) {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${stableJson(value[key])}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}
