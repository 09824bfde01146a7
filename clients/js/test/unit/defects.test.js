// The defects of issue "The JavaScript client", each reproduced over a scripted socket with fake timers.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { collect, fakeClient, fakeTime, settle } from './fake.js';

function randomIs(t, value) {
  const random = Math.random;
  Math.random = () => value;
  t.after(() => { Math.random = random; });
}

const sinceOf = (socket, table) => socket.sent.find((f) => f.type === 'subscribe' && f.tables.includes(table))?.since;

test('resume: each filter group resumes from its own tables\' positions, even after a drop in the middle of a replay', async (t) => {
  fakeTime(t);
  const { client, server } = fakeClient(t);
  const orders = collect(client, 'orders', { filter: { shop: 1 } });
  const items = collect(client, 'items', { filter: { shop: 2 } });
  client.connect();
  server.last.welcome(true);
  await settle();
  server.last.answerAll().change('orders', 100).change('items', 101);
  server.last.drop();

  await tickUntil(t, () => server.sockets.length === 2);
  server.last.welcome(true);
  await settle();
  assert.equal(sinceOf(server.last, 'orders'), 100);
  assert.equal(sinceOf(server.last, 'items'), 101);
  // The items group's replay runs first; the socket drops before the orders group's replay began.
  server.last.answerAll();
  for (let p = 102; p <= 199; p++) server.last.change('items', p);
  server.last.drop();

  await tickUntil(t, () => server.sockets.length === 3);
  server.last.welcome(true);
  await settle();
  assert.equal(sinceOf(server.last, 'orders'), 100, 'orders resumes after its own last position, not items\'');
  assert.equal(sinceOf(server.last, 'items'), 199);
  server.last.answerAll();
  for (let p = 102; p <= 198; p += 2) server.last.change('orders', p);
  assert.deepEqual(orders.changes.map((c) => c.position), [100, ...Array.from({ length: 49 }, (_, i) => 102 + 2 * i)]);
  assert.equal(items.changes.length, 99);
  assert.equal(orders.subscription.recovered, true);
});

test('resume: a group resumed from its lowest table position skips what it already delivered, across drops', async (t) => {
  fakeTime(t);
  const { client, server } = fakeClient(t);
  const a = collect(client, 'a');
  const b = collect(client, 'b');
  client.connect();
  server.last.welcome(true);
  await settle();
  server.last.answerAll().change('a', 50).change('b', 60);
  server.last.drop();
  await tickUntil(t, () => server.sockets.length === 2);
  server.last.welcome(true);
  await settle();
  const request = server.last.requests('subscribe')[0];
  assert.deepEqual([request.tables, request.since], [['a', 'b'], 50]);
  server.last.answer(request).change('b', 55).change('b', 60).change('b', 61).change('a', 62);
  assert.deepEqual(b.changes.map((c) => c.position), [60, 61], 'b 55 and 60 were delivered before the drop');
  assert.deepEqual(a.changes.map((c) => c.position), [50, 62]);
});

test('resume: a subscription made while disconnected is sent without since', async (t) => {
  fakeTime(t);
  const { client, server } = fakeClient(t);
  collect(client, 'orders');
  client.connect();
  server.last.welcome(true);
  await settle();
  server.last.answerAll().change('orders', 100);
  server.last.drop();
  collect(client, 'items'); // while disconnected
  await tickUntil(t, () => server.sockets.length === 2);
  server.last.welcome(true);
  await settle();
  assert.equal(sinceOf(server.last, 'orders'), 100);
  assert.equal(sinceOf(server.last, 'items'), undefined, 'items was never live: no replay of what it never had');
});

for (const [where, option] of [['onError', 'onError'], ['onState', 'onState']]) {
  test(`close() called from ${where} sticks: no socket opens afterwards`, async (t) => {
    const time = fakeTime(t);
    let client;
    const closeFrom = where === 'onError' ? { onError: () => client.close() }
      : { onState: (state) => state === 'reconnecting' && client.close() };
    const fake = fakeClient(t, closeFrom);
    client = fake.client;
    client.connect();
    fake.server.last.welcome();
    fake.server.last.drop(1011, 'boom');
    assert.equal(client.state, 'closed');
    await time.tick(60_000, 100);
    assert.equal(fake.server.sockets.length, 1, 'no reconnect');
    assert.equal(client.state, 'closed');
  });
}

test('backoff: a server that welcomes and then closes is not reconnected to in a storm', async (t) => {
  const time = fakeTime(t);
  randomIs(t, 0.02);
  const { client, server } = fakeClient(t);
  client.connect();
  let opened = 0;
  for (let ms = 0; ms < 60_000; ms += 10) {
    while (opened < server.sockets.length) {
      server.sockets[opened++].welcome().drop(opened % 2 ? 1008 : 1011);
    }
    await time.tick(10);
  }
  assert.ok(server.sockets.length <= 10, `${server.sockets.length} sockets in a minute`);
});

test('a failed handshake (1006 before the socket opened) is reported as connect_failed with the attempt count', async (t) => {
  const time = fakeTime(t);
  const { client, server, errors } = fakeClient(t);
  client.connect();
  server.last.drop(1006);
  await time.tick(2_000);
  server.last.drop(1006);
  assert.deepEqual(errors.map((e) => [e.code, e.attempt]), [['connect_failed', 1], ['connect_failed', 2]]);
});

test('outbox: 50 filter changes in a second send a handful of requests, and the last filter is live at once', async (t) => {
  const time = fakeTime(t);
  const { client, server } = fakeClient(t);
  client.connect();
  server.last.welcome();
  let current = collect(client, 'orders', { filter: { user: 0 } }).subscription;
  for (let i = 1; i < 50; i++) {
    await time.tick(20);
    server.last.answerAll();
    current.unsubscribe();
    current = collect(client, 'orders', { filter: { user: i } }).subscription;
  }
  const changedAt = Date.now();
  while (current.state !== 'live' && Date.now() - changedAt < 20_000) {
    server.last.answerAll();
    await time.tick(10);
  }
  assert.equal(current.state, 'live');
  assert.ok(Date.now() - changedAt <= 200, `live ${Date.now() - changedAt} ms after the last change`);
  // At most what the token bucket allows over the second (10 at once, then 10 per second), never one per call.
  const sent = server.last.sent;
  assert.ok(sent.length <= 21, `${sent.length} requests`);
  assert.deepEqual(sent.filter((f) => f.type === 'unsubscribe'), [], 'a filter change is one replacing subscribe');
  assert.deepEqual(sent.at(-1).filter, { user: 49 });
});

test('liveness: a socket that never opens, or never gets welcome, is given up on, and the client reconnects', async (t) => {
  const time = fakeTime(t);
  const { client, server, errors } = fakeClient(t, { connectTimeoutMs: 5_000, welcomeTimeoutMs: 3_000 });
  client.connect();
  await time.tick(5_000); // the handshake never ends
  assert.ok(server.sockets[0].closedWith, 'the socket that never opened was closed');
  assert.deepEqual(errors.map((e) => [e.code, e.attempt]), [['connect_timeout', 1]]);
  await time.tick(1_000);
  assert.equal(server.sockets.length, 2, 'a new one opened');
  server.last.open(); // accepted, but no welcome
  await time.tick(3_000);
  assert.ok(server.sockets[1].closedWith, 'the silent socket was closed');
  assert.deepEqual(errors.map((e) => [e.code, e.attempt]), [['connect_timeout', 1], ['connect_timeout', 2]]);
  assert.equal(client.state, 'reconnecting');
});

test('liveness: a half-open connection is noticed by the heartbeat within its timeout', async (t) => {
  const time = fakeTime(t);
  const { client, server, errors, states } = fakeClient(t, { heartbeatMs: 25_000, heartbeatTimeoutMs: 10_000 });
  client.connect();
  server.last.welcome();
  await time.tick(25_000, 100);
  const ping = server.sockets[0].sent.find((f) => f.type === 'ping');
  assert.ok(ping, 'a ping after 25 s of silence');
  await time.tick(10_000, 100);
  assert.equal(errors[0]?.code, 'heartbeat_timeout');
  assert.equal(states.at(-1), 'reconnecting');
  await time.tick(1_000);
  assert.equal(server.sockets.length, 2);
});

async function tickUntil(t, condition, limit = 60_000) {
  const { mock } = await import('node:test');
  for (let ms = 0; ms < limit && !condition(); ms += 10) {
    mock.timers.tick(10);
    await settle();
  }
  assert.ok(condition(), 'condition never held');
}
