// A scripted WebSocket and fake timers, so that the client's logic is tested with no server: each test plays the
// server's part frame by frame, and moves time forward itself (node:test's mock.timers), so nothing sleeps.

import { mock } from 'node:test';
import { PgNotifyClient } from '../../src/index.js';

/** A socket the test drives. `sent` holds the frames the client sent (parsed); `closedWith` the client's close. */
export class FakeSocket {
  onopen = null;
  onmessage = null;
  onclose = null;
  onerror = null;
  sent = [];
  closedWith = null;

  constructor(url, server) {
    this.url = url;
    this.server = server;
  }

  send(text) {
    if (this.closedWith || this.gone) throw new Error('send() on a closed socket');
    this.sent.push(JSON.parse(text));
  }

  close(code, reason) {
    this.closedWith = { code, reason };
  }

  // The server's side:
  open() {
    this.onopen?.({ type: 'open' });
    return this;
  }

  frame(frame) {
    if (this.gone) throw new Error('frame() on a dropped socket');
    this.onmessage?.({ data: JSON.stringify(frame) });
    return this;
  }

  welcome(lossless = false) {
    return this.open().frame({ type: 'welcome', protocol: 1, lossless });
  }

  /** The connection ends (1006 when the network or handshake failed, as a browser reports it). */
  drop(code = 1006, reason = '') {
    this.gone = true;
    this.onclose?.({ code, reason, wasClean: code !== 1006 });
    return this;
  }

  /** Requests sent and not answered by `answer` yet. */
  requests(type) {
    return this.sent.filter((f) => f.type !== 'ping' && (type === undefined || f.type === type) && !this.#answered.has(f.id));
  }

  #answered = new Set();

  /** Answers a request as the server would: `subscribed`/`unsubscribed`, or an error frame with `code`. */
  answer(request, { code, position } = {}) {
    this.#answered.add(request.id);
    if (code) return this.frame({ type: 'error', id: request.id, code, message: `refused: ${code}` });
    const frame = { type: request.type === 'subscribe' ? 'subscribed' : 'unsubscribed', id: request.id, tables: request.tables };
    if (position !== undefined) frame.position = position;
    return this.frame(frame);
  }

  /** Answers every request not answered yet, in order. */
  answerAll(options) {
    for (const request of this.requests()) this.answer(request, options);
    return this;
  }

  /** Snapshot frames for `request` and `table`: `rows` in frames of `perFrame`, then snapshot_end (`end` adds to it). */
  snapshot(request, table, rows, { key = ['id'], truncated = false, perFrame = 2, end = {} } = {}) {
    const [schema, name] = table.includes('.') ? table.split('.') : ['public', table];
    for (let i = 0; i < rows.length; i += perFrame) {
      this.frame({ type: 'snapshot', id: request.id, schema, table: name, rows: rows.slice(i, i + perFrame) });
    }
    return this.frame({ type: 'snapshot_end', id: request.id, schema, table: name, count: rows.length, truncated, key, ...end });
  }

  /** A change frame of any operation: `{ data, old }` as the operation has them. */
  op(table, operation, { data, old, position } = {}) {
    const [schema, name] = table.includes('.') ? table.split('.') : ['public', table];
    const frame = { type: 'change', schema, table: name, operation, xid: 1, seq: 1 };
    if (data !== undefined) frame.data = data;
    if (old !== undefined) frame.old = old;
    if (position !== undefined) frame.position = position;
    return this.frame(frame);
  }

  change(table, position, data = { id: position }, operation = 'INSERT') {
    const [schema, name] = table.includes('.') ? table.split('.') : ['public', table];
    const frame = { type: 'change', schema, table: name, operation, xid: 1, seq: 1, data };
    if (position !== null) frame.position = position;
    return this.frame(frame);
  }
}

/** A fake server: records every socket a client opens (`sockets`, `last`). */
export class FakeServer {
  sockets = [];

  get last() {
    return this.sockets.at(-1);
  }

  /** A WebSocket constructor for the client's `WebSocket` option. */
  get WebSocket() {
    const server = this;
    return class extends FakeSocket {
      constructor(url) {
        super(url, server);
        server.sockets.push(this);
      }
    };
  }
}

/** Fake timers and clock for one test; restored when it ends. */
export function fakeTime(t) {
  mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
  t.after(() => mock.timers.reset());
  return {
    /** Moves time forward by `ms`, running every timer due on the way, with promise callbacks in between. */
    async tick(ms, step = 10) {
      for (let left = ms; left > 0; left -= step) {
        mock.timers.tick(Math.min(step, left));
        await settle();
      }
    },
  };
}

/** Lets pending promise callbacks run (the client settles `ready` and async URL functions with promises). */
export async function settle() {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/**
 * A client over a fake server, with what it reports collected: `states`, `errors`, `resyncs`. Closed when the
 * test ends. `random` fixes Math.random for the backoff (default 0.5).
 */
export function fakeClient(t, options = {}, url = 'ws://server.test/ws/changes/') {
  const server = new FakeServer();
  const log = { states: [], errors: [], resyncs: [] };
  const client = new PgNotifyClient(url, {
    WebSocket: server.WebSocket,
    onState: (state) => log.states.push(state),
    onError: (error) => log.errors.push(error),
    onResync: (resync) => log.resyncs.push(resync),
    ...options,
  });
  t.after(() => client.close());
  return { client, server, ...log };
}

/** Collects the changes a subscription receives. */
export function collect(client, tables, options) {
  const changes = [];
  const subscription = client.subscribe(tables, (change) => changes.push(change), options);
  return { subscription, changes };
}
