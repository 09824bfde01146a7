// @pgnotify/client: a dependency-free client for PgNotify's WebSocket protocol, version 1 (docs/protocol.md).
//
// One client is one socket. It reconnects by itself (exponential backoff with full jitter), sends its subscriptions
// again on each new connection, and tells the app when it may have missed changes (onResync) or, when the server
// keeps a change log ("lossless"), resumes from the last position it saw so that nothing is missed.
//
// The server keeps one subscription per table and socket (operations + filter). So subscriptions of this client that
// share a table must share its filter; their operations are merged, and the client routes each change by operation.

/** How many requests per second the client sends at most: half the server's default limit (20). */
const DEFAULT_REQUESTS_PER_SECOND = 10;

/** Close codes that mean something went wrong, reported through onError (the client reconnects after all of them). */
const CLOSE_ERRORS = { 1007: 'invalid_data', 1008: 'policy_violation', 1009: 'message_too_big', 1011: 'server_error' };

/** An error from the server (an `error` frame or a close code) or from the client itself; `code` says which. */
export class PgNotifyError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{ id?: string | number | null, tables?: string[], closeCode?: number }} [details]
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
  #options;
  #state = 'closed';
  #stopped = true; // true until connect(), and again after close()
  #ws = null; // the current socket; events of any older one are ignored
  #connectedOnce = false;
  #attempt = 0; // reconnect attempts since the last welcome
  #reconnectTimer = null;
  #lastPosition = null; // the highest change-log position seen (lossless servers only)
  #subscriptions = new Set();
  // Per socket:
  #outbox = []; // requests waiting for their turn (see #flush), in order
  #inFlight = new Map(); // request id -> request sent and not answered yet, in the order sent
  #tokens = 0; // requests that may be sent right now
  #tokensAt = 0;
  #pausedUntil = 0; // after a rate_limited answer
  #rateLimited = 0; // rate_limited answers in a row
  #flushTimer = null;
  #waits = new Set(); // retry delays
  #served = new Map(); // table -> operations (null: all) the server has acknowledged
  #lastRequest = new Map(); // table -> the last request about it; only its answer updates #served
  #tablePositions = new Map(); // table -> last position delivered, to skip what a second replay repeats
  #nextId = 0;

  /**
   * @param {string | URL} url `ws(s)://…`, `http(s)://…`, or relative to the page (`/ws/changes/`) in a browser.
   * @param {import('./index.js').PgNotifyClientOptions} [options]
   */
  constructor(url, options = {}) {
    this.#url = url;
    this.#options = {
      ...options,
      minDelay: options.minDelay ?? 500,
      maxDelay: options.maxDelay ?? 30_000,
      maxRequestsPerSecond: options.maxRequestsPerSecond ?? DEFAULT_REQUESTS_PER_SECOND,
    };
  }

  /** `connecting`, `open`, `reconnecting` or `closed`. */
  get state() {
    return this.#state;
  }

  /** The socket's absolute URL (relative URLs resolve against the page's location, http becomes ws). */
  get url() {
    const base = globalThis.location?.href;
    const url = base === undefined ? new URL(this.#url) : new URL(this.#url, base);
    if (url.protocol === 'http:') url.protocol = 'ws:';
    else if (url.protocol === 'https:') url.protocol = 'wss:';
    return url.href;
  }

  /** Opens the socket (and keeps it open, reconnecting as needed) until close(). Calling it again does nothing. */
  connect() {
    if (!this.#stopped) return this;
    if (typeof (this.#options.WebSocket ?? globalThis.WebSocket) !== 'function') {
      throw new TypeError('No WebSocket implementation: pass one as options.WebSocket (in Node 20, the "ws" package).');
    }
    void this.url; // throws now, rather than in a reconnect loop, when the URL cannot be resolved
    this.#stopped = false;
    this.#setState('connecting');
    this.#open();
    return this;
  }

  /** Closes the socket normally (1000) and stops reconnecting. Subscriptions are kept for a later connect(). */
  close() {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    const ws = this.#ws;
    this.#dropSocket();
    ws?.close(1000);
    this.#setState('closed');
  }

  /**
   * Subscribes to changes of one or more tables. `ready` resolves once the server has acknowledged the subscription
   * (from then on every committed change is delivered) and rejects when the server refuses it.
   * @param {string | string[]} tables
   * @param {(change: object) => void} onChange
   * @param {{ operations?: string[], filter?: object }} [options]
   */
  subscribe(tables, onChange, { operations, filter } = {}) {
    const names = [...new Set((Array.isArray(tables) ? tables : [tables]).map(canonicalTableName))];
    if (names.length === 0) throw new TypeError('subscribe() needs at least one table.');
    if (typeof onChange !== 'function') throw new TypeError('subscribe() needs an onChange function.');

    const sub = { tables: names, operations: operations ?? null, filter: filter ?? null, onChange };
    sub.filterKey = stableJson(sub.filter);
    sub.ready = new Promise((resolve, reject) => Object.assign(sub, { resolve, reject }));
    sub.ready.catch(() => {}); // failures also reach onError: an unobserved `ready` must not crash Node

    const conflict = [...this.#subscriptions].find(
      (other) => other.filterKey !== sub.filterKey && other.tables.some((table) => names.includes(table)),
    );
    if (conflict) {
      const table = conflict.tables.find((t) => names.includes(t));
      this.#fail([sub], new PgNotifyError('conflicting_subscription',
        `This client already subscribes to '${table}' with another filter, and the server keeps one filter per table ` +
        'and socket. Use a second PgNotifyClient, or filter in your callback.'));
    } else {
      this.#subscriptions.add(sub);
      if (this.#state === 'open') {
        if (this.#isServed(sub)) sub.resolve();
        else this.#subscribe([sub], null);
      }
    }

    return { tables: names, ready: sub.ready, unsubscribe: () => this.#unsubscribe(sub) };
  }

  #unsubscribe(sub) {
    if (!this.#subscriptions.delete(sub)) return;
    sub.reject(new PgNotifyError('unsubscribed', 'Unsubscribed before the server acknowledged the subscription.'));
    // A table another subscription still uses stays subscribed, its operations possibly wider than needed until the
    // next reconnect: the client routes by operation, so nobody receives more than they asked for.
    const unused = sub.tables.filter((table) => !this.#isWanted(table));
    if (unused.length === 0 || this.#state !== 'open') return;
    this.#request({ type: 'unsubscribe', tables: unused }, [], () => !unused.some((t) => this.#isWanted(t)))
      .catch((error) => isDisconnect(error) || this.#report(error));
  }

  #isWanted(table) {
    return [...this.#subscriptions].some((sub) => sub.tables.includes(table));
  }

  /** Whether the server already sends everything `sub` needs (another subscription asked for it). */
  #isServed(sub) {
    return sub.tables.every((table) => {
      const served = this.#served.get(table);
      if (served === undefined) return false;
      return served === null || (sub.operations !== null && sub.operations.every((op) => served.includes(op)));
    });
  }

  /**
   * Sends one subscribe request for subscriptions that share a filter, asking for the operations of every
   * subscription on those tables. Resolves to false when it could not resume from `since` (the app must reload).
   */
  async #subscribe(subs, since) {
    const tables = [...new Set(subs.flatMap((sub) => sub.tables))];
    const sharing = [...this.#subscriptions].filter((sub) => sub.tables.some((t) => tables.includes(t)));
    const operations = sharing.some((sub) => !sub.operations) ? null : [...new Set(sharing.flatMap((s) => s.operations))];
    const message = { type: 'subscribe', tables };
    if (operations) message.operations = operations;
    if (subs[0].filter) message.filter = subs[0].filter;
    if (since != null) message.since = since;
    try {
      await this.#request(message, subs, () => subs.some((sub) => this.#subscriptions.has(sub)));
      for (const sub of subs) sub.resolve();
      return true;
    } catch (error) {
      if (isDisconnect(error)) return true; // sent again once reconnected
      if (error.code === 'invalid_position' && since != null) {
        await this.#subscribe(subs, null); // cannot resume here: subscribe afresh, and the app reloads
        return false;
      }
      if (subs.length > 1) {
        // A request succeeds or fails as a whole: ask for each subscription alone to find whose table was refused.
        const results = await Promise.all(subs.map((sub) => this.#subscribe([sub], since)));
        return !results.includes(false);
      }
      if (this.#forget(subs).length > 0) this.#fail(subs, error);
      return true;
    }
  }

  /** Drops subscriptions the server refused; returns those that were still live. */
  #forget(subs) {
    const live = subs.filter((sub) => this.#subscriptions.delete(sub));
    // The server may still send their tables (the refused request changed nothing): routed to nobody, and the next
    // subscription to such a table must ask the server again.
    for (const table of live.flatMap((sub) => sub.tables)) {
      if (!this.#isWanted(table)) this.#served.delete(table);
    }
    return live;
  }

  #fail(subs, error) {
    error.tables ??= subs[0].tables;
    for (const sub of subs) sub.reject(error);
    this.#report(error);
  }

  /** Sends a request and waits for its answer; `unavailable` answers are retried after a backoff delay. */
  async #request(message, owners, stillWanted) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#send(message, owners);
      } catch (error) {
        if (error.code !== 'unavailable') throw error;
        this.#report(error); // the server cannot reach its database right now
        await this.#wait(this.#backoff(attempt));
        if (!stillWanted()) throw new PgNotifyError('cancelled', 'The request is no longer needed.');
      }
    }
  }

  #send(message, owners) {
    if (this.#state !== 'open') return Promise.reject(disconnected());
    return new Promise((resolve, reject) => {
      const request = { message, owners, id: null, size: 0 };
      // What the server serves changes with the answer to the last request about a table (answers come in order).
      const settle = (update) => message.tables.forEach((t) => this.#lastRequest.get(t) === request && update(t));
      request.resolve = (frame) => {
        if (message.type === 'subscribe') settle((table) => this.#served.set(table, message.operations ?? null));
        resolve(frame);
      };
      request.reject = (error) => {
        // A refused request changes nothing, except `unavailable`, which drops the tables on the server.
        if (error.code === 'unavailable') settle((table) => this.#served.delete(table));
        reject(error);
      };
      for (const table of message.tables) this.#lastRequest.set(table, request);
      if (message.type === 'unsubscribe') message.tables.forEach((table) => this.#served.delete(table));
      this.#outbox.push(request);
      this.#flush();
    });
  }

  /**
   * Sends what the outbox holds, at most maxRequestsPerSecond (a token bucket), so that the server's rate limit is
   * not reached; after a rate_limited answer, nothing for a while.
   */
  #flush() {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    const rate = this.#options.maxRequestsPerSecond;
    while (this.#outbox.length > 0) {
      const now = Date.now();
      this.#tokens = Math.min(rate, this.#tokens + ((now - this.#tokensAt) / 1000) * rate);
      this.#tokensAt = now;
      const wait = Math.max(this.#pausedUntil - now, this.#tokens >= 1 ? 0 : ((1 - this.#tokens) / rate) * 1000);
      if (wait > 0) {
        this.#flushTimer = setTimeout(() => this.#flush(), wait);
        return;
      }
      this.#tokens -= 1;
      const request = this.#outbox.shift();
      request.id = `r${++this.#nextId}`;
      const text = JSON.stringify({ type: request.message.type, id: request.id, ...request.message });
      request.size = text.length;
      this.#inFlight.set(request.id, request);
      this.#ws.send(text);
    }
  }

  /**
   * The server ignored requests (it answers only the first refusal of a burst, without saying which): after a pause,
   * send every unanswered request again, in the same order, under new ids. One the server did take is merely repeated,
   * which changes nothing.
   */
  #onRateLimited() {
    this.#outbox.unshift(...this.#inFlight.values());
    this.#inFlight.clear();
    this.#pausedUntil = Date.now() + 1000 + this.#backoff(this.#rateLimited++);
    this.#flush();
  }

  #wait(ms) {
    return new Promise((resolve, reject) => {
      const wait = { reject, timer: setTimeout(() => (this.#waits.delete(wait), resolve()), ms) };
      this.#waits.add(wait);
    });
  }

  /** Full jitter: a random delay between 0 and min(maxDelay, minDelay * 2^attempt). */
  #backoff(attempt) {
    const { minDelay, maxDelay } = this.#options;
    return Math.random() * Math.min(maxDelay, minDelay * 2 ** attempt);
  }

  #open() {
    const WebSocketImpl = this.#options.WebSocket ?? globalThis.WebSocket;
    let ws;
    try {
      ws = new WebSocketImpl(this.url);
    } catch (error) {
      this.#report(error);
      this.#scheduleReconnect();
      return;
    }

    this.#ws = ws;
    ws.onmessage = (event) => ws === this.#ws && this.#onMessage(event.data);
    ws.onclose = (event) => ws === this.#ws && this.#onClose(event);
    ws.onerror = () => {}; // a close event always follows, and decides what happens
  }

  #onMessage(text) {
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
        this.#call(this.#options.onResync, frame);
        break;
      case 'subscribed':
      case 'unsubscribed':
      case 'pong':
        this.#rateLimited = 0;
        this.#takeRequest(frame.id)?.resolve(frame);
        break;
      case 'error': {
        if (frame.code === 'rate_limited') {
          this.#onRateLimited();
          break;
        }
        const error = new PgNotifyError(frame.code, frame.message, { id: frame.id });
        const request = this.#takeRequest(frame.id);
        if (request) request.reject(error);
        else this.#report(error);
        break;
      }
      default:
        break; // a frame type of a later protocol version
    }
  }

  #takeRequest(id) {
    const request = this.#inFlight.get(id);
    this.#inFlight.delete(id);
    return request;
  }

  #onWelcome(frame) {
    const reconnected = this.#connectedOnce;
    this.#connectedOnce = true;
    this.#attempt = 0;
    this.#tokens = this.#options.maxRequestsPerSecond;
    this.#tokensAt = Date.now();
    this.#pausedUntil = 0;
    this.#rateLimited = 0;
    this.#setState('open');

    // One request per filter. After a reconnect, resume from the last position when the server keeps a change log;
    // otherwise the app must reload, which it should do once the subscriptions are live again (listen, then read).
    const since = reconnected && frame.lossless === true ? this.#lastPosition : null;
    const byFilter = new Map();
    for (const sub of this.#subscriptions) byFilter.set(sub.filterKey, [...(byFilter.get(sub.filterKey) ?? []), sub]);
    const ws = this.#ws;
    const resumed = [...byFilter.values()].map((subs) => this.#subscribe(subs, since));
    if (reconnected) {
      Promise.all(resumed).then((results) => {
        if (ws !== this.#ws || (since !== null && !results.includes(false))) return;
        this.#call(this.#options.onResync, { type: 'resync', reason: 'reconnected' });
      });
    }
  }

  #onChange(frame) {
    const table = tableName(frame.schema, frame.table);
    if (typeof frame.position === 'number') {
      if (frame.position <= this.#tablePositions.get(table)) return; // a repeat from a second replay of the table
      this.#tablePositions.set(table, frame.position);
      if (!(frame.position <= this.#lastPosition)) this.#lastPosition = frame.position;
    }

    for (const sub of [...this.#subscriptions]) {
      if (!this.#subscriptions.has(sub) || !sub.tables.includes(table)) continue;
      if (sub.operations && !sub.operations.includes(frame.operation)) continue;
      this.#call(sub.onChange, frame);
    }
  }

  #onClose(event) {
    const code = CLOSE_ERRORS[event.code];
    if (code) {
      const reason = event.reason ? `: ${event.reason}` : '';
      const error = new PgNotifyError(code, `The server closed the connection with ${event.code}${reason}.`,
        { closeCode: event.code });
      // 1009: a request was over the server's size limit. Sending it again would only repeat this, so the
      // subscriptions of the largest unanswered request fail instead.
      const culprit = event.code === 1009 && [...this.#inFlight.values()].sort((a, b) => b.size - a.size)[0];
      const owners = culprit ? this.#forget(culprit.owners) : [];
      if (owners.length > 0) this.#fail(owners, error);
      else this.#report(error);
    }

    this.#dropSocket();
    this.#scheduleReconnect();
  }

  #scheduleReconnect() {
    this.#setState('reconnecting');
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      this.#open();
    }, this.#backoff(this.#attempt++));
  }

  /** Forgets the current socket: its unanswered requests and retry delays end with a `disconnected` error. */
  #dropSocket() {
    this.#ws = null;
    const error = disconnected();
    const requests = [...this.#inFlight.values(), ...this.#outbox];
    const waits = [...this.#waits];
    this.#inFlight.clear();
    this.#outbox = [];
    clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    this.#waits.clear();
    this.#served.clear();
    this.#lastRequest.clear();
    this.#tablePositions.clear();
    for (const { reject } of requests) reject(error);
    for (const { timer, reject } of waits) {
      clearTimeout(timer);
      reject(error);
    }
  }

  #setState(state) {
    if (this.#state === state) return;
    this.#state = state;
    this.#call(this.#options.onState, state);
  }

  #report(error) {
    if (this.#options.onError) this.#call(this.#options.onError, error);
    else console.error('PgNotify:', error);
  }

  /** Calls an app callback; what it throws is reported, never allowed to break the client. */
  #call(callback, value) {
    if (!callback) return;
    try {
      callback(value);
    } catch (error) {
      if (callback === this.#options.onError) console.error('PgNotify: onError threw', error);
      else this.#report(error);
    }
  }
}

function disconnected() {
  return new PgNotifyError('disconnected', 'The connection closed before the server answered.');
}

function isDisconnect(error) {
  return error.code === 'disconnected' || error.code === 'cancelled';
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
