// @pgnotify/client: a dependency-free client for PgNotify's WebSocket protocol, version 1 (docs/protocol.md).
//
// One client is one socket. It reconnects by itself (exponential backoff with full jitter), sends every live
// subscription again on each new connection, and tells the app when it may have missed changes (onResync), or, when
// the server keeps a change log ("lossless"), resumes from the last position it saw so that nothing is missed.

/** Errors the server may clear up by itself: the request is sent again after a backoff delay. */
const TRANSIENT_CODES = new Set(['rate_limited', 'unavailable']);

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
  #lossless = false;
  #lastPosition = null; // the highest change-log position seen (lossless servers only)
  #tablePositions = new Map(); // table -> last position delivered on the current socket, to drop replayed duplicates
  #subscriptions = new Set();
  #requests = new Map(); // request id -> { resolve, reject }, for the current socket
  #waits = new Set(); // retry delays of the current socket
  #nextId = 0;

  /**
   * @param {string | URL} url `ws(s)://…`, `http(s)://…`, or relative to the page (`/ws/changes/`) in a browser.
   * @param {import('./index.js').PgNotifyClientOptions} [options]
   */
  constructor(url, options = {}) {
    this.#url = url;
    this.#options = { minDelay: 500, maxDelay: 30_000, ...options };
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
    void this.url; // throws now, not in a reconnect loop, when the URL cannot be resolved
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
    const names = (Array.isArray(tables) ? tables : [tables]).map(canonicalTableName);
    if (names.length === 0) throw new TypeError('subscribe() needs at least one table.');
    if (typeof onChange !== 'function') throw new TypeError('subscribe() needs an onChange function.');

    const sub = { tables: names, operations: operations ?? null, filter: filter ?? null, onChange };
    sub.filterKey = stableJson(sub.filter);
    sub.ready = new Promise((resolve, reject) => Object.assign(sub, { resolve, reject }));
    sub.ready.catch(() => {}); // every failure also reaches onError: an unobserved `ready` must not crash Node

    // The server keeps one subscription per table and socket: a second filter on the same table would replace the
    // first one's. Operations are merged instead (the client routes by operation).
    const conflict = [...this.#subscriptions].find(
      (other) => other.filterKey !== sub.filterKey && other.tables.some((table) => names.includes(table)),
    );
    if (conflict) {
      const table = conflict.tables.find((t) => names.includes(t));
      this.#fail(sub, new PgNotifyError('conflicting_subscription',
        `This client already subscribes to '${table}' with another filter, and the server keeps one filter per table ` +
        'and socket. Use a second PgNotifyClient, or filter in your callback.', { tables: names }));
    } else {
      this.#subscriptions.add(sub);
      if (this.#state === 'open') this.#sendSubscribe(sub, null);
    }

    return { tables: names, ready: sub.ready, unsubscribe: () => this.#unsubscribe(sub) };
  }

  #unsubscribe(sub) {
    if (!this.#subscriptions.delete(sub)) return;
    sub.reject(new PgNotifyError('unsubscribed', 'Unsubscribed before the server acknowledged the subscription.'));
    // Tables still used by another subscription stay subscribed on the server (with operations possibly wider than
    // needed until the next reconnect: the client routes by operation, so nobody sees more than they asked for).
    const unused = sub.tables.filter((table) => !this.#isWanted(table));
    if (unused.length === 0 || this.#state !== 'open') return;
    this.#request({ type: 'unsubscribe', tables: unused }, () => !unused.some((t) => this.#isWanted(t)))
      .catch((error) => this.#reportUnlessDisconnected(error));
  }

  #isWanted(table) {
    return [...this.#subscriptions].some((sub) => sub.tables.includes(table));
  }

  async #sendSubscribe(sub, since) {
    // Operations are per table on the server: ask for those of every subscription sharing one of these tables.
    const sharing = [...this.#subscriptions].filter((other) => other.tables.some((t) => sub.tables.includes(t)));
    const operations = sharing.some((s) => !s.operations) ? null : [...new Set(sharing.flatMap((s) => s.operations))];
    const message = { type: 'subscribe', tables: sub.tables };
    if (operations) message.operations = operations;
    if (sub.filter) message.filter = sub.filter;
    if (since != null) message.since = since;
    try {
      await this.#request(message, () => this.#subscriptions.has(sub));
      sub.resolve();
      return true;
    } catch (error) {
      if (error.code === 'disconnected' || error.code === 'cancelled') return true; // sent again after reconnecting
      if (error.code === 'invalid_position' && since != null) {
        await this.#sendSubscribe(sub, null); // cannot resume here: subscribe afresh, and the app must reload
        return false;
      }
      this.#subscriptions.delete(sub);
      this.#fail(sub, error);
      return true;
    }
  }

  #fail(sub, error) {
    error.tables ??= sub.tables;
    sub.reject(error);
    this.#report(error);
  }

  /** Sends a request and waits for its answer; transient errors (rate_limited, unavailable) are retried. */
  async #request(message, stillWanted) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#send(message);
      } catch (error) {
        if (!TRANSIENT_CODES.has(error.code)) throw error;
        this.#report(error);
        await this.#wait(this.#backoff(attempt));
        if (!stillWanted()) throw new PgNotifyError('cancelled', 'The request is no longer needed.');
      }
    }
  }

  #send(message) {
    if (this.#state !== 'open') return Promise.reject(disconnected());
    const id = `r${++this.#nextId}`;
    const answer = new Promise((resolve, reject) => this.#requests.set(id, { resolve, reject }));
    this.#ws.send(JSON.stringify({ type: message.type, id, ...message }));
    return answer;
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
        this.#takeRequest(frame.id)?.resolve(frame);
        break;
      case 'error': {
        const error = new PgNotifyError(frame.code, frame.message, { id: frame.id });
        const request = this.#takeRequest(frame.id);
        if (request) request.reject(error);
        else this.#report(error);
        break;
      }
      default:
        break; // a frame type from a later protocol version
    }
  }

  #takeRequest(id) {
    const request = this.#requests.get(id);
    this.#requests.delete(id);
    return request;
  }

  #onWelcome(frame) {
    const reconnected = this.#connectedOnce;
    this.#connectedOnce = true;
    this.#attempt = 0;
    this.#lossless = frame.lossless === true;
    this.#tablePositions.clear();
    this.#setState('open');

    // After a reconnect, resume from the last position when the server keeps a change log; otherwise the app must
    // reload, which it should do once the subscriptions are live again (listen first, then read).
    const since = reconnected && this.#lossless ? this.#lastPosition : null;
    const ws = this.#ws;
    const resumed = [...this.#subscriptions].map((sub) => this.#sendSubscribe(sub, since));
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
      // Two subscriptions resuming the same table may replay it twice; positions grow per socket, so skip repeats.
      if (frame.position <= this.#tablePositions.get(table)) return;
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
    this.#dropSocket();
    const code = CLOSE_ERRORS[event.code];
    if (code) {
      const reason = event.reason ? `: ${event.reason}` : '';
      this.#report(new PgNotifyError(code, `The server closed the connection with ${event.code}${reason}.`,
        { closeCode: event.code }));
    }

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
    for (const { reject } of this.#requests.values()) reject(error);
    this.#requests.clear();
    for (const { timer, reject } of this.#waits) {
      clearTimeout(timer);
      reject(error);
    }
    this.#waits.clear();
  }

  #setState(state) {
    if (this.#state === state) return;
    this.#state = state;
    this.#call(this.#options.onState, state);
  }

  #reportUnlessDisconnected(error) {
    if (error.code !== 'disconnected' && error.code !== 'cancelled') this.#report(error);
  }

  #report(error) {
    if (this.#options.onError) this.#call(this.#options.onError, error);
    else console.error('PgNotify:', error);
  }

  /** Calls an app callback; what it throws is reported, never allowed to break the socket's handling. */
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
