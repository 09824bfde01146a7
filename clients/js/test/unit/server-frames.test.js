// Frames the server sends on its own, over a scripted socket: a `server_error` resync, an `unsubscribed` frame with a
// `reason` (re-authorization ended a subscription), and the 4001 close (authentication expired). No server.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { collect, fakeClient, fakeTime, settle } from './fake.js';

test('resync with reason server_error (the server\'s fan-out restarted) reaches onResync and the resync listeners', async (t) => {
  fakeTime(t);
  const { client, server, resyncs } = fakeClient(t);
  const heard = [];
  client.on('resync', (resync) => heard.push(resync.reason));
  collect(client, 'orders');
  client.connect();
  server.last.welcome();
  await settle();
  server.last.answerAll();
  server.last.frame({ type: 'resync', reason: 'server_error' });
  assert.deepEqual(resyncs.map((r) => r.reason), ['server_error']);
  assert.deepEqual(heard, ['server_error']);
});

test('unsubscribed with a reason: the subscription fails with that code, onError is told, and it is never sent again', async (t) => {
  const time = fakeTime(t);
  const { client, server, errors } = fakeClient(t);
  const invoices = collect(client, 'invoices');
  const orders = collect(client, 'orders');
  const failed = [];
  client.on('error', (error) => failed.push(error.code));
  client.connect();
  server.last.welcome();
  await settle();
  server.last.answerAll();
  await settle();
  assert.equal(invoices.subscription.state, 'live');

  server.last.frame({ type: 'unsubscribed', id: null, reason: 'forbidden', tables: ['public.invoices'] });
  await settle();
  assert.equal(invoices.subscription.state, 'failed');
  assert.equal(invoices.subscription.error?.code, 'forbidden');
  assert.deepEqual(invoices.subscription.error?.tables, ['invoices']);
  assert.deepEqual(errors.map((e) => e.code), ['forbidden']);
  assert.deepEqual(failed, ['forbidden']);
  assert.equal(orders.subscription.state, 'live', 'other tables are not affected');
  assert.deepEqual(server.last.requests(), [], 'nothing to ask: the server already dropped it');

  // Its changes (were any still in flight) go to nobody; after a reconnect only the other table is subscribed again.
  server.last.change('invoices', null).change('orders', null);
  assert.equal(invoices.changes.length, 0);
  assert.equal(orders.changes.length, 1);
  server.last.drop();
  await time.tick(2_000);
  server.last.welcome();
  await settle();
  assert.deepEqual(server.last.requests('subscribe').map((f) => f.tables), [['orders']]);
});

test('unsubscribed without a reason that answers no request is ignored', async (t) => {
  fakeTime(t);
  const { client, server, errors } = fakeClient(t);
  const orders = collect(client, 'orders');
  client.connect();
  server.last.welcome();
  await settle();
  server.last.answerAll();
  await settle();
  server.last.frame({ type: 'unsubscribed', id: null, tables: ['orders'] });
  await settle();
  assert.equal(orders.subscription.state, 'live');
  assert.deepEqual(errors, []);
});

test('close 4001 (authentication expired): reported, then a new attempt runs beforeConnect and the URL function again', async (t) => {
  const time = fakeTime(t);
  const calls = [];
  let ticket = 0;
  const { client, server, errors } = fakeClient(t, {
    beforeConnect: async () => { calls.push('beforeConnect'); },
  }, async () => {
    calls.push('url');
    return `ws://server.test/ws/changes/?ticket=${++ticket}`;
  });
  const orders = collect(client, 'orders');
  client.connect();
  await settle();
  assert.equal(server.sockets.length, 1);
  assert.equal(server.last.url, 'ws://server.test/ws/changes/?ticket=1');
  server.last.welcome();
  await settle();
  server.last.answerAll();
  await settle();
  assert.equal(orders.subscription.state, 'live');

  server.last.drop(4001, 'authentication expired');
  assert.deepEqual(errors.map((e) => [e.code, e.closeCode]), [['authentication_expired', 4001]]);
  assert.equal(orders.subscription.state, 'resuming');
  await time.tick(2_000);
  assert.equal(server.sockets.length, 2);
  assert.deepEqual(calls, ['beforeConnect', 'url', 'beforeConnect', 'url']);
  assert.equal(server.last.url, 'ws://server.test/ws/changes/?ticket=2', 'the new attempt uses fresh credentials');
  server.last.welcome();
  await settle();
  assert.deepEqual(server.last.requests('subscribe').map((f) => f.tables), [['orders']]);
  server.last.answerAll();
  await settle();
  assert.equal(orders.subscription.state, 'live');
});

test('resume: a change that comes before the answer to a fresh subscribe (above its head position) moves the table\'s position', async (t) => {
  const time = fakeTime(t);
  const { client, server } = fakeClient(t);
  const orders = collect(client, 'orders');
  client.connect();
  server.last.welcome(true);
  await settle();
  // The server routes changes above the head as soon as the subscription is live: 510 may come before `subscribed`.
  server.last.change('orders', 510);
  server.last.answerAll({ position: 500 });
  await settle();
  assert.equal(orders.subscription.state, 'live');
  server.last.drop();
  await time.tick(1_000);
  server.last.welcome(true);
  await settle();
  assert.equal(server.last.requests('subscribe')[0].since, 510, 'not 500: 510 was delivered already');
  server.last.answerAll({ position: 520 }).change('orders', 515);
  assert.deepEqual(orders.changes.map((c) => c.position), [510, 515]);
});
