// The client's logic over a scripted socket with fake timers: backoff, liveness, credentials, the outbox, resuming,
// and the state it exposes. No server.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { collect, fakeClient, fakeTime, settle } from './fake.js';

function randomIs(t, value) {
  const random = Math.random;
  Math.random = () => value;
  t.after(() => { Math.random = random; });
}

// Backoff

test('backoff: delays grow from a floor with jitter, and reset only after the connection stayed up minUptimeMs', async (t) => {
  const time = fakeTime(t);
  randomIs(t, 0);
  const { client, server } = fakeClient(t, { minDelay: 1_000, maxDelay: 8_000, minUptimeMs: 5_000 });
  client.connect();
  const openedAt = [];
  let seen = 0;
  for (let ms = 0; ms < 40_000; ms += 10) {
    while (seen < server.sockets.length) {
      openedAt.push(Date.now());
      server.sockets[seen++].welcome().drop(1011);
    }
    await time.tick(10);
  }
  const delays = openedAt.slice(1).map((at, i) => at - openedAt[i]);
  // Half of min(maxDelay, minDelay * 2^attempt) with Math.random() = 0: the floor.
  assert.deepEqual(delays.slice(0, 6), [500, 1_000, 2_000, 4_000, 4_000, 4_000]);

  // A connection that stays up long enough resets the count: the next delay is the first one again.
  client.reconnect();
  server.last.welcome();
  await time.tick(5_000);
  const before = server.sockets.length;
  server.last.drop(1001);
  await time.tick(500);
  assert.equal(server.sockets.length, before + 1);
});

test('backoff: maxRetries failed attempts in a row give up (onGiveUp, state closed); reconnect() starts again', async (t) => {
  const time = fakeTime(t);
  const giveUps = [];
  const { client, server, states } = fakeClient(t, { maxRetries: 3, onGiveUp: (e) => giveUps.push(e) });
  client.connect();
  for (let i = 0; i < 4; i++) {
    server.last.drop(1006);
    await time.tick(10_000, 50);
  }
  assert.equal(server.sockets.length, 4, 'the first attempt and three retries');
  assert.equal(client.state, 'closed');
  assert.equal(states.at(-1), 'closed');
  assert.deepEqual(giveUps.map((e) => [e.code, e.attempt]), [['gave_up', 3]]);

  client.reconnect();
  assert.equal(server.sockets.length, 5);
  server.last.welcome();
  assert.equal(client.state, 'open');
});

test('reconnect() drops an open socket and opens a new one at once, resubscribing', async (t) => {
  fakeTime(t);
  const { client, server } = fakeClient(t);
  collect(client, 'orders');
  client.connect();
  server.last.welcome();
  await settle();
  server.last.answerAll();
  client.reconnect();
  assert.equal(server.sockets[0].closedWith.code, 1000);
  assert.equal(server.sockets.length, 2);
  server.last.welcome();
  await settle();
  assert.deepEqual(server.last.requests('subscribe').map((f) => f.tables), [['orders']]);
});

test('online and a page becoming visible reconnect at once, without waiting for the backoff', async (t) => {
  const time = fakeTime(t);
  const target = new EventTarget();
  const document = Object.assign(new EventTarget(), { visibilityState: 'hidden' });
  const saved = { addEventListener: globalThis.addEventListener, removeEventListener: globalThis.removeEventListener, document: globalThis.document };
  globalThis.addEventListener = target.addEventListener.bind(target);
  globalThis.removeEventListener = target.removeEventListener.bind(target);
  globalThis.document = document;
  t.after(() => Object.assign(globalThis, saved));
  const { client, server } = fakeClient(t, { minDelay: 60_000, maxDelay: 60_000 });
  client.connect();
  server.last.drop(1006);
  await time.tick(100);
  assert.equal(server.sockets.length, 1, 'waiting for its backoff');
  target.dispatchEvent(new Event('online'));
  assert.equal(server.sockets.length, 2);
  server.last.drop(1006);
  document.visibilityState = 'visible';
  document.dispatchEvent(new Event('visibilitychange'));
  assert.equal(server.sockets.length, 3);

  // Open and visible again (a laptop waking up): the connection is checked with a ping at once.
  server.last.welcome();
  document.dispatchEvent(new Event('visibilitychange'));
  assert.equal(server.last.sent.filter((f) => f.type === 'ping').length, 1);
  client.close();
  target.dispatchEvent(new Event('online'));
  assert.equal(server.sockets.length, 3, 'no listener left after close()');
});

test('liveness: any frame counts as an answer, so a busy connection is never pinged', async (t) => {
  const time = fakeTime(t);
  const { client, server, errors } = fakeClient(t, { heartbeatMs: 1_000, heartbeatTimeoutMs: 500 });
  collect(client, 'orders');
  client.connect();
  server.last.welcome();
  await settle();
  server.last.answerAll();
  for (let i = 0; i < 50; i++) {
    server.last.change('orders', null);
    await time.tick(100);
  }
  assert.equal(server.last.sent.filter((f) => f.type === 'ping').length, 0);
  await time.tick(1_000);
  const ping = server.last.sent.find((f) => f.type === 'ping');
  assert.ok(ping);
  server.last.frame({ type: 'pong', id: ping.id });
  await time.tick(1_400);
  assert.deepEqual(errors, []);
  assert.equal(server.sockets.length, 1);
});

// Credentials

test('credentials: an async URL function and beforeConnect run before every attempt; a factory makes the socket', async (t) => {
  const time = fakeTime(t);
  const calls = [];
  let token = 0;
  const fake = fakeClient(t, {
    beforeConnect: async () => { calls.push('beforeConnect'); },
    createWebSocket: (url) => { calls.push(`create ${url}`); return new fake.server.WebSocket(url); },
  }, async () => { calls.push('url'); return `ws://server.test/ws/?ticket=${++token}`; });
  fake.client.connect();
  await settle();
  assert.deepEqual(calls, ['beforeConnect', 'url', 'create ws://server.test/ws/?ticket=1']);
  assert.equal(fake.client.url, 'ws://server.test/ws/?ticket=1');
  fake.server.last.drop(1006);
  await time.tick(1_000);
  assert.equal(fake.server.last.url, 'ws://server.test/ws/?ticket=2');
});

test('credentials: a failing beforeConnect is reported as connect_failed and retried with backoff', async (t) => {
  const time = fakeTime(t);
  let fail = true;
  const { client, server, errors } = fakeClient(t, { beforeConnect: () => { if (fail) throw new Error('token endpoint down'); } });
  client.connect();
  await settle();
  assert.equal(server.sockets.length, 0);
  assert.equal(errors[0].code, 'connect_failed');
  assert.equal(errors[0].attempt, 1);
  assert.match(errors[0].message, /token endpoint down/);
  fail = false;
  await time.tick(1_000);
  assert.equal(server.sockets.length, 1);
});

test('close() during an async URL function: no socket is opened afterwards', async (t) => {
  fakeTime(t);
  let release;
  const { client, server } = fakeClient(t, {}, () => new Promise((resolve) => { release = resolve; }));
  client.connect();
  await settle();
  client.close();
  release('ws://server.test/ws/');
  await settle();
  assert.equal(server.sockets.length, 0);
});

// The outbox

test('outbox: a refused table fails only its subscriptions; a request for several tables is split to find it', async (t) => {
  fakeTime(t);
  const { client, server, errors } = fakeClient(t);
  const good = collect(client, 'orders');
  const bad = collect(client, 'secrets');
  client.connect();
  server.last.welcome();
  await settle();
  const [both] = server.last.requests('subscribe');
  assert.deepEqual(both.tables, ['orders', 'secrets'], 'one request for both (same filter and operations)');
  server.last.answer(both, { code: 'unknown_table' });
  await settle();
  const alone = server.last.requests('subscribe');
  assert.deepEqual(alone.map((f) => f.tables), [['orders'], ['secrets']]);
  server.last.answer(alone[0]).answer(alone[1], { code: 'unknown_table' });
  await settle();
  await good.subscription.ready;
  await assert.rejects(bad.subscription.ready, { code: 'unknown_table', tables: ['secrets'] });
  assert.equal(bad.subscription.state, 'failed');
  assert.deepEqual(errors.map((e) => e.code), ['unknown_table']);
});

test('outbox: unavailable is retried after a backoff delay; the subscription stays pending meanwhile', async (t) => {
  const time = fakeTime(t);
  const { client, server, errors } = fakeClient(t);
  const { subscription } = collect(client, 'orders');
  client.connect();
  server.last.welcome();
  await settle();
  server.last.answer(server.last.requests('subscribe')[0], { code: 'unavailable' });
  assert.equal(errors[0].code, 'unavailable');
  assert.equal(subscription.state, 'pending');
  await time.tick(1_000);
  const [again] = server.last.requests('subscribe');
  assert.ok(again);
  server.last.answer(again);
  await subscription.ready;
  assert.equal(subscription.state, 'live');
});

test('outbox: after rate_limited, what is still wanted is sent again after a pause', async (t) => {
  const time = fakeTime(t);
  randomIs(t, 0);
  const { client, server, errors } = fakeClient(t, { maxRequestsPerSecond: 1_000 });
  client.connect();
  server.last.welcome();
  const subs = [];
  for (let i = 0; i < 5; i++) {
    subs.push(collect(client, `t${i}`, { operations: i % 2 ? ['INSERT'] : ['DELETE'] }).subscription);
    await settle();
  }
  const sent = server.last.requests('subscribe');
  assert.equal(sent.length, 5);
  // The server took the first two and ignored the other three, answering the first of them with rate_limited.
  server.last.answer(sent[0]).answer(sent[1]).frame({ type: 'error', id: null, code: 'rate_limited', message: 'slow down' });
  await time.tick(1_000);
  assert.equal(server.last.sent.length, 5, 'nothing during the pause');
  await time.tick(500);
  const again = server.last.sent.slice(5);
  assert.deepEqual(again.map((f) => f.tables), [['t2', 't4'], ['t3']], 'only what is still needed, grouped by what it asks');
  again.forEach((request) => server.last.answer(request));
  await settle();
  assert.deepEqual(subs.map((s) => s.state), ['live', 'live', 'live', 'live', 'live']);
  assert.deepEqual(errors, [], 'handled quietly');
});

test('outbox: a request over the size limit (1009) fails its subscriptions; the others are sent again', async (t) => {
  const time = fakeTime(t);
  const { client, server, errors } = fakeClient(t);
  const small = collect(client, 'orders');
  const huge = collect(client, 'items', { filter: { name: { in: Array.from({ length: 50 }, (_, i) => `name ${i}`) } } });
  client.connect();
  server.last.welcome();
  await settle();
  server.last.drop(1009);
  await assert.rejects(huge.subscription.ready, { code: 'message_too_big', closeCode: 1009 });
  assert.deepEqual(errors.map((e) => e.code), ['message_too_big']);
  await time.tick(1_000);
  server.last.welcome();
  await settle();
  assert.deepEqual(server.last.requests('subscribe').map((f) => f.tables), [['orders']]);
  server.last.answerAll();
  await small.subscription.ready;
});

test('outbox: unsubscribing the last subscription of a table unsubscribes it; nobody else is affected', async (t) => {
  fakeTime(t);
  const { client, server } = fakeClient(t);
  const a = collect(client, 'orders');
  const b = collect(client, 'orders', { operations: ['INSERT'] });
  client.connect();
  server.last.welcome();
  await settle();
  server.last.answerAll();
  assert.deepEqual(server.last.sent.map((f) => [f.type, f.operations]), [['subscribe', undefined]], 'one request, all operations');
  a.subscription.unsubscribe();
  await settle();
  assert.equal(server.last.sent.length, 1, 'the table is still wanted, and served more widely than needed: nothing sent');
  server.last.change('orders', null, { id: 1 }, 'DELETE').change('orders', null, { id: 2 });
  assert.deepEqual(b.changes.map((c) => c.data?.id ?? c.operation), [2], 'routed by operation');
  b.subscription.unsubscribe();
  await settle();
  assert.deepEqual(server.last.sent.at(-1), { type: 'unsubscribe', id: server.last.sent.at(-1).id, tables: ['orders'] });
  assert.equal(b.subscription.state, 'closed');
});

// Resuming and the state the client exposes

test('resume: subscribed carrying the head position lets a table that saw no change resume', async (t) => {
  const time = fakeTime(t);
  const { client, server, resyncs } = fakeClient(t);
  const orders = collect(client, 'orders');
  client.connect();
  server.last.welcome(true);
  await settle();
  server.last.answerAll({ position: 500 });
  server.last.drop();
  await time.tick(1_000);
  server.last.welcome(true);
  await settle();
  assert.equal(server.last.requests('subscribe')[0].since, 500);
  server.last.answerAll({ position: 520 }).change('orders', 510);
  assert.equal(orders.subscription.recovered, true);
  assert.deepEqual(resyncs, [], 'nothing to reload');
  assert.deepEqual(orders.changes.map((c) => c.position), [510]);
});

test('resume: without any position for a table (an older server), the app is told to reload once it is live again', async (t) => {
  const time = fakeTime(t);
  const { client, server, resyncs } = fakeClient(t);
  const orders = collect(client, 'orders');
  const items = collect(client, 'items', { filter: { shop: 1 } });
  client.connect();
  server.last.welcome(true);
  await settle();
  server.last.answerAll().change('items', 42);
  server.last.drop();
  await time.tick(1_000);
  server.last.welcome(true);
  await settle();
  const requests = server.last.requests('subscribe');
  assert.deepEqual(requests.map((f) => [f.tables, f.since]), [[['orders'], undefined], [['items'], 42]]);
  server.last.answer(requests[1]);
  assert.deepEqual(resyncs, [], 'not before every subscription is live again');
  server.last.answer(requests[0]);
  assert.deepEqual(resyncs, [{ type: 'resync', reason: 'reconnected' }]);
  assert.deepEqual([orders.subscription.recovered, items.subscription.recovered], [false, true]);
});

test('resume: a new subscription joining a resumed table is not given the replay (with the head position)', async (t) => {
  const time = fakeTime(t);
  const { client, server } = fakeClient(t);
  const old = collect(client, 'orders');
  client.connect();
  server.last.welcome(true);
  await settle();
  server.last.answerAll().change('orders', 100);
  server.last.drop();
  const late = collect(client, 'orders'); // while disconnected
  await time.tick(1_000);
  server.last.welcome(true);
  await settle();
  assert.equal(server.last.requests('subscribe')[0].since, 100);
  server.last.answerAll({ position: 120 }).change('orders', 110).change('orders', 130);
  assert.deepEqual(old.changes.map((c) => c.position), [100, 110, 130]);
  assert.deepEqual(late.changes.map((c) => c.position), [130], 'only what came after it was live');
});

test('resume: invalid_position (the server lost its change log) subscribes afresh and asks for a reload', async (t) => {
  const time = fakeTime(t);
  const { client, server, resyncs, errors } = fakeClient(t);
  collect(client, 'orders');
  client.connect();
  server.last.welcome(true);
  await settle();
  server.last.answerAll().change('orders', 7);
  server.last.drop();
  await time.tick(1_000);
  server.last.welcome(true);
  await settle();
  server.last.answer(server.last.requests('subscribe')[0], { code: 'invalid_position' });
  await settle();
  const [fresh] = server.last.requests('subscribe');
  assert.equal(fresh.since, undefined);
  server.last.answer(fresh);
  assert.deepEqual(resyncs, [{ type: 'resync', reason: 'reconnected' }]);
  assert.deepEqual(errors, []);
});

test('positionStore keeps positions across a new client (a page reload) and resumes from them', async (t) => {
  const time = fakeTime(t);
  const storage = new Map();
  const positionStore = { getItem: (k) => storage.get(k) ?? null, setItem: (k, v) => storage.set(k, v) };
  const first = fakeClient(t, { positionStore });
  collect(first.client, 'orders', { filter: { shop: 1 } });
  first.client.connect();
  first.server.last.welcome(true);
  await settle();
  first.server.last.answerAll().change('orders', 41).change('orders', 42);
  first.client.close();

  const second = fakeClient(t, { positionStore });
  const orders = collect(second.client, 'orders', { filter: { shop: 1 } });
  second.client.connect();
  second.server.last.welcome(true);
  await settle();
  assert.equal(second.server.last.requests('subscribe')[0].since, 42);
  const other = fakeClient(t, { positionStore });
  collect(other.client, 'orders', { filter: { shop: 2 } });
  other.client.connect();
  other.server.last.welcome(true);
  await settle();
  assert.equal(other.server.last.requests('subscribe')[0].since, undefined, 'another filter: no resume');
  second.server.last.answerAll({ position: 45 }).change('orders', 42).change('orders', 43);
  assert.deepEqual(orders.changes.map((c) => c.position), [43], 'the replay is for the new page: it is delivered');
  void time;
});

test('state: on/off listeners, subscribe(listener) for useSyncExternalStore, and per-subscription state', async (t) => {
  const time = fakeTime(t);
  const { client, server } = fakeClient(t);
  const seen = [];
  const onState = (state) => seen.push(state);
  client.on('state', onState);
  let notified = 0;
  const stop = client.subscribe(() => notified++);
  const { subscription } = collect(client, 'orders');
  assert.equal(subscription.state, 'pending');
  client.connect();
  server.last.welcome();
  await settle();
  server.last.answerAll();
  assert.equal(subscription.state, 'live');
  assert.equal(subscription.recovered, false);
  server.last.drop(1001);
  assert.equal(subscription.state, 'resuming');
  client.off('state', onState);
  await time.tick(1_000);
  server.last.welcome();
  assert.deepEqual(seen, ['connecting', 'open', 'reconnecting']);
  const count = notified;
  assert.ok(count >= 5, `store listener called ${count} times`);
  stop();
  await settle();
  server.last.answerAll();
  assert.equal(subscription.state, 'live');
  assert.equal(notified, count, 'not after it was removed');
});

test('an error listener throwing does not break the client, and app callbacks that throw are reported', async (t) => {
  fakeTime(t);
  const { client, server, errors } = fakeClient(t);
  collect(client, 'orders');
  client.subscribe('items', () => { throw new Error('app bug'); });
  client.connect();
  server.last.welcome();
  await settle();
  server.last.answerAll().change('items', null).change('orders', null);
  assert.deepEqual(errors.map((e) => e.message), ['app bug']);
  assert.equal(client.state, 'open');
});

test('outbox: a subscription made while its table\'s unsubscribe is in flight is not ready until subscribed again', async (t) => {
  const time = fakeTime(t);
  const { client, server } = fakeClient(t);
  client.connect();
  server.last.welcome();
  const first = collect(client, 'orders').subscription;
  await settle();
  server.last.answerAll();
  first.unsubscribe();
  await settle();
  assert.equal(server.last.requests('unsubscribe').length, 1);
  const second = collect(client, 'orders').subscription;
  await settle();
  assert.equal(second.state, 'pending', 'the server is about to stop sending the table');
  server.last.answerAll();
  await time.tick(200);
  assert.deepEqual(server.last.sent.map((f) => f.type), ['subscribe', 'unsubscribe', 'subscribe']);
  server.last.answerAll();
  assert.equal(second.state, 'live');
});

test('outbox: an answer to an earlier request does not make a subscription ready while a later one for its table may undo it', async (t) => {
  fakeTime(t);
  const { client, server } = fakeClient(t, { maxRequestsPerSecond: 1_000 });
  client.connect();
  server.last.welcome();
  // Subscribe, unsubscribe, subscribe: three requests for the table in flight, each in its own task.
  const first = collect(client, 'orders').subscription;
  await settle();
  first.unsubscribe();
  await settle();
  const last = collect(client, 'orders').subscription;
  await settle();
  const [subscribe1, subscribe2] = server.last.requests('subscribe');
  const [unsubscribe] = server.last.requests('unsubscribe');
  assert.ok(subscribe1 && unsubscribe && subscribe2, 'three requests went out');

  // The server answers in order. After the first answer the table is served, but the unsubscribe behind it will end
  // that: a change committed now would not reach the socket, so the subscription must not claim to be ready yet.
  server.last.answer(subscribe1);
  await settle();
  assert.equal(last.state, 'pending', 'an unsubscribe for the table is still in flight');
  server.last.answer(unsubscribe);
  await settle();
  assert.equal(last.state, 'pending');
  server.last.answer(subscribe2);
  await settle();
  assert.equal(last.state, 'live');
});
