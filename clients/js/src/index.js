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

/** Close codes that mean something went wrong, reported through onError (the client reconnects after all of them). */
const CLOSE_ERRORS = {
  1007: 'invalid_data',
  1008: 'policy_violation',
  1009: 'message_too_big',
  1011: 'server_error',
  4001: 'authentication_expired', // the credentials ran out: the next attempt runs beforeConnect and the URL function again
};

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
   * @param {{ operations?: string[], filter?: object }} [options]
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
    const { operations, filter } = options ?? {};

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
    };
    sub.filterKey = stableJson(sub.filter);
    sub.ready = new Promise((resolve, reject) => Object.assign(sub, { resolve, reject }));
    sub.ready.catch(() => {}); // failures also reach onError: an unobserved `ready` must not crash Node

    const handle = {
      tables: names,
      ready: sub.ready,
      get state() { return sub.state; },
      get recovered() { return sub.recovered; },
      get error() { return sub.error; },
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
    return expected === null || !covers(expected, desired);
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
    const firstSince = this.#sinceFor(first, desired);
    const tables = [first];
    const sinces = firstSince === null ? [] : [firstSince];
    if (!this.#solo.has(first)) {
      for (const table of this.#dirty) {
        if (tables.length >= MAX_TABLES_PER_REQUEST) break;
        if (table === first || this.#solo.has(table) || (this.#retryAt.get(table) ?? 0) > now) continue;
        if (!this.#needsRequest(table)) continue;
        const other = this.#desired(table);
        if ((desired === null) !== (other === null) || (desired !== null && desired.key !== other.key)) continue;
        const since = this.#sinceFor(table, other);
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
    if (sinces.length > 0) message.since = request.since = Math.min(...sinces); // a table ahead skips the repeats
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

  /** Resolves and revives subscriptions the server now serves in full; reports a resync once resumes are done. */
  #settleSubscriptions() {
    for (const sub of this.#subscriptions) {
      if (sub.state === 'live' || !this.#isServed(sub)) continue;
      if (sub.state === 'resuming') sub.recovered = sub.tables.every((table) => this.#resumed.has(table));
      this.#setSubState(sub, 'live');
      sub.resolve();
    }
    const waiting = this.#awaitingResume;
    if (waiting && [...waiting].every((sub) => sub.state !== 'resuming')) {
      this.#awaitingResume = null;
      // Without a change log to resume from, the app must reload, which it should do once the subscriptions are live
      // again (listen, then read).
      if ([...waiting].some((sub) => sub.state === 'live' && !sub.recovered)) {
        this.#emit('resync', this.#options.onResync, { type: 'resync', reason: 'reconnected' });
      }
    }
  }

  /** Whether the server sends everything `sub` needs, and no request in flight is about to change that. */
  #isServed(sub) {
    return sub.tables.every((table) => {
      const served = this.#served.get(table);
      const expected = this.#expected(table);
      return served !== undefined && covers(served, sub) && expected !== null && covers(expected, sub);
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

    switch (frame?.type) {
      case 'welcome':
        this.#onWelcome(frame);
        break;
      case 'change':
        this.#onChange(frame);
        break;
      case 'resync':
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
    for (const sub of this.#subscriptions) for (const table of sub.tables) this.#dirty.add(table);
    this.#setState('open');
    if (ws !== this.#ws) return; // the app closed or reconnected from onState
    this.#flush();
  }

  /** An answer (subscribed, unsubscribed) to a request: the server now serves what it asked for. */
  #onAnswer(frame) {
    const request = this.#take(frame.id);
    if (!request) return;
    const head = typeof frame.position === 'number' ? frame.position : null;
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
      const early = this.#early.get(table) ?? -Infinity;
      this.#early.delete(table);
      if (!this.#lossless) continue;
      const entry = this.#positions.get(table);
      // Changes above the head may come before the answer (they are routed once the subscription is live): the
      // table's position is the highest of the head and those.
      if (head !== null) this.#setPosition(table, Math.max(head, early, entry?.filterKey === request.shape.filterKey ? entry.position : -Infinity), request.shape.filterKey);
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
    const reason = String(frame.reason);
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
    const error = new PgNotifyError(frame.code, frame.message, { id: frame.id });
    const request = frame.id == null ? null : this.#take(frame.id);
    if (!request) {
      this.#report(error);
      return;
    }
    for (const table of request.tables) this.#dirty.add(table);

    if (error.code === 'unavailable') {
      // The server could not make it live in time, and dropped those tables: ask again after a while.
      const at = Date.now() + this.#backoff(this.#unavailable++);
      for (const table of request.tables) {
        this.#served.delete(table);
        this.#retryAt.set(table, at);
      }
      this.#report(error);
    } else if (request.type === 'subscribe' && error.code === 'invalid_position' && request.since !== null) {
      for (const table of request.tables) this.#forgetPosition(table); // cannot resume here: subscribe afresh, and the app reloads
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
      for (const table of request.tables) {
        if (this.#lastSent.get(table) === request) this.#lastSent.delete(table);
        this.#dirty.add(table);
      }
    }
    this.#pausedUntil = Date.now() + 1000 + this.#backoff(this.#rateLimited++);
    this.#flush();
  }

  #onChange(frame) {
    const table = tableName(frame.schema, frame.table);
    const position = typeof frame.position === 'number' ? frame.position : null;
    if (position !== null) {
      const entry = this.#positions.get(table);
      if (entry && position <= entry.position) return; // a repeat from a replay of this table
      const served = this.#served.get(table);
      const asked = this.#lastSent.get(table);
      if (asked?.type === 'subscribe' && asked.since === null) this.#early.set(table, Math.max(position, this.#early.get(table) ?? -Infinity));
      else if (served) this.#setPosition(table, position, served.filterKey);
    }

    for (const sub of [...this.#subscriptions]) {
      if (!this.#subscriptions.has(sub) || !sub.tables.includes(table)) continue;
      if (sub.operations && !sub.operations.includes(frame.operation)) continue;
      if (position !== null && position <= sub.skipThrough.get(table)) continue;
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
    for (const sub of this.#subscriptions) {
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
        if (typeof entry?.position === 'number' && typeof entry.filterKey === 'string') this.#positions.set(table, entry);
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
