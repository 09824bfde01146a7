// The client against the real sample host and PostgreSQL: subscriptions, filters, errors, unsubscribe, close.
// Changes are made with psql, as any other writer of the database would.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PgNotifyError } from '../src/index.js';
import { Inbox, marker, randomId, startHost, testClient } from './harness.js';

describe('PgNotifyClient against the sample host', { timeout: 180_000 }, () => {
  let host;
  before(async () => {
    host = await startHost();
  });
  after(async () => {
    await host?.dispose();
  });

  /** A connected test client; what connecting put in its inboxes is taken, so they hold only what comes next. */
  async function openClient(t, options) {
    const c = testClient(t, host.wsUrl, options);
    c.client.connect();
    assert.equal(await c.states.take(), 'connecting');
    assert.equal(await c.states.take(), 'open');
    assert.equal((await c.wire.take()).event, 'open');
    const welcome = (await c.wire.take()).frame;
    assert.equal(welcome.type, 'welcome');
    assert.equal(welcome.protocol, 1);
    return c;
  }

  function subscribeInto(client, inbox, tables, options) {
    const sub = client.subscribe(tables, (change) => inbox.push(change), options);
    return sub;
  }

  test('delivers INSERT, UPDATE and DELETE made with psql, in order', async (t) => {
    const { client, wire, errors } = await openClient(t);
    const changes = new Inbox();
    const sub = subscribeInto(client, changes, 'profiles');
    await sub.ready;
    assert.deepEqual(sub.tables, ['profiles']);
    const request = (await wire.take((e) => e.event === 'sent' && e.frame.type === 'subscribe')).frame;
    assert.deepEqual(request.tables, ['profiles']);
    assert.ok(request.id, 'the subscribe request carries an id');

    const name = marker();
    const id = Number(await host.sql(`INSERT INTO profiles (name, email) VALUES ('${name}', '${name}@example.com') RETURNING id`));
    await host.sql(`UPDATE profiles SET name = '${name}_2' WHERE id = ${id}`);
    await host.sql(`DELETE FROM profiles WHERE id = ${id}`);

    const mine = (c) => (c.data ?? c.old).id === id;
    const inserted = await changes.take(mine, { what: 'the INSERT' });
    assert.equal(inserted.type, 'change');
    assert.equal(inserted.schema, 'public');
    assert.equal(inserted.table, 'profiles');
    assert.equal(inserted.operation, 'INSERT');
    assert.deepEqual(inserted.data, { id, name, email: `${name}@example.com`, user_id: null });
    assert.equal(typeof inserted.xid, 'number');
    assert.equal(typeof inserted.seq, 'number');

    const updated = await changes.take(mine, { what: 'the UPDATE' });
    assert.equal(updated.operation, 'UPDATE');
    assert.equal(updated.old.name, name);
    assert.equal(updated.data.name, `${name}_2`);

    const deleted = await changes.take(mine, { what: 'the DELETE' });
    assert.equal(deleted.operation, 'DELETE');
    assert.equal(deleted.old.id, id);
    assert.equal(deleted.data, undefined);
    assert.equal(errors.pending.length, 0, `no errors: ${errors.pending.map(String)}`);
  });

  test('an operations filter delivers only those operations', async (t) => {
    const { client, wire } = await openClient(t);
    const changes = new Inbox();
    await subscribeInto(client, changes, ['public.profiles'], { operations: ['DELETE'] }).ready;
    const request = (await wire.take((e) => e.event === 'sent' && e.frame.type === 'subscribe')).frame;
    assert.deepEqual(request.operations, ['DELETE']);
    assert.deepEqual(request.tables, ['profiles'], "'public.profiles' is sent as the server names it");

    const name = marker();
    const id = Number(await host.sql(`INSERT INTO profiles (name) VALUES ('${name}') RETURNING id`));
    await host.sql(`UPDATE profiles SET email = 'x@example.com' WHERE id = ${id}`);
    await host.sql(`DELETE FROM profiles WHERE id = ${id}`);

    // Frames of one socket arrive in commit order: had the INSERT or UPDATE been sent, it would come first.
    const first = await changes.take((c) => (c.data ?? c.old).id === id, { what: 'the DELETE' });
    assert.equal(first.operation, 'DELETE');
    assert.equal(first.old.name, name);
    const received = (await wire.take((e) => e.event === 'received' && e.frame.type === 'change'
      && (e.frame.data ?? e.frame.old).id === id)).frame;
    assert.equal(received.operation, 'DELETE', 'the server itself sent nothing but the DELETE');
  });

  test('a row filter delivers only matching rows, filtered by the server', async (t) => {
    const { client, wire } = await openClient(t);
    const changes = new Inbox();
    const userId = randomId();
    await subscribeInto(client, changes, 'profiles', { filter: { user_id: userId } }).ready;
    const request = (await wire.take((e) => e.event === 'sent' && e.frame.type === 'subscribe')).frame;
    assert.deepEqual(request.filter, { user_id: userId });

    const name = marker();
    const rows = [userId + 1, userId, userId + 2, userId];
    for (const [i, user] of rows.entries()) {
      await host.sql(`INSERT INTO profiles (name, user_id) VALUES ('${name}_${i}', ${user})`);
    }

    const ofThisTest = (frame) => frame.data?.name?.startsWith(name);
    const first = await changes.take(ofThisTest, { what: 'the first matching row' });
    const second = await changes.take(ofThisTest, { what: 'the second matching row' });
    assert.deepEqual([first.data.name, second.data.name], [`${name}_1`, `${name}_3`]);
    const onTheWire = wire.pending.filter((e) => e.event === 'received' && e.frame.type === 'change' && ofThisTest(e.frame));
    assert.deepEqual(onTheWire.map((e) => e.frame.data.user_id), [userId, userId], 'non-matching rows never left the server');
  });

  test('a subscription to an unknown table rejects ready with the error frame, and the socket stays usable', async (t) => {
    const { client, wire, errors, states } = await openClient(t);
    const sub = client.subscribe(['secrets'], () => assert.fail('no change expected'));
    const error = await sub.ready.then(() => assert.fail('ready resolved'), (e) => e);
    assert.ok(error instanceof PgNotifyError);
    assert.equal(error.code, 'unknown_table');
    assert.deepEqual(error.tables, ['secrets']);

    const request = (await wire.take((e) => e.event === 'sent' && e.frame.type === 'subscribe')).frame;
    const answer = (await wire.take((e) => e.event === 'received' && e.frame.type === 'error')).frame;
    assert.equal(answer.id, request.id, 'the error answered that request');
    assert.equal(error.id, request.id);
    assert.equal((await errors.take()).code, 'unknown_table', 'onError heard of it too');

    assert.equal(client.state, 'open');
    await client.subscribe('profiles', () => {}).ready;
    assert.deepEqual(states.pending, [], 'no reconnect happened');
  });

  test('a second filter on the same table of one client is refused without reaching the server', async (t) => {
    const { client, wire, errors } = await openClient(t);
    await client.subscribe('profiles', () => {}, { filter: { user_id: 1 } }).ready;
    const conflicting = client.subscribe('profiles', () => {}, { filter: { user_id: 2 } });
    await assert.rejects(conflicting.ready, { code: 'conflicting_subscription' });
    assert.equal((await errors.take()).code, 'conflicting_subscription');
    assert.equal(wire.pending.filter((e) => e.event === 'sent').length, 1, 'only the first subscribe was sent');
  });

  test('subscriptions on one table with different operations share it and are routed by operation', async (t) => {
    const { client, wire } = await openClient(t);
    const inserts = new Inbox();
    const deletes = new Inbox();
    await subscribeInto(client, inserts, 'profiles', { operations: ['INSERT'] }).ready;
    await subscribeInto(client, deletes, 'profiles', { operations: ['DELETE'] }).ready;
    const sent = wire.pending.filter((e) => e.event === 'sent').map((e) => e.frame.operations);
    assert.deepEqual(sent, [['INSERT'], ['INSERT', 'DELETE']], 'the second request asks for both');

    const name = marker();
    const id = Number(await host.sql(`INSERT INTO profiles (name) VALUES ('${name}') RETURNING id`));
    await host.sql(`DELETE FROM profiles WHERE id = ${id}`);
    assert.equal((await deletes.take((c) => c.old?.id === id)).operation, 'DELETE');
    assert.equal((await inserts.take((c) => c.data?.id === id)).operation, 'INSERT');
    assert.deepEqual(inserts.pending.filter((c) => c.old?.id === id), [], 'the INSERT subscription saw no DELETE');
  });

  test('a subscription the server already serves needs no request of its own', async (t) => {
    const { client, wire } = await openClient(t);
    const all = new Inbox();
    const inserts = new Inbox();
    await subscribeInto(client, all, 'profiles').ready;
    await subscribeInto(client, inserts, 'public.profiles', { operations: ['INSERT'] }).ready;
    assert.equal(wire.pending.filter((e) => e.event === 'sent').length, 1, 'one request for both');

    const name = marker();
    const id = Number(await host.sql(`INSERT INTO profiles (name) VALUES ('${name}') RETURNING id`));
    await host.sql(`DELETE FROM profiles WHERE id = ${id}`);
    await all.take((c) => c.old?.id === id, { what: 'the DELETE' });
    assert.deepEqual(inserts.pending.filter((c) => (c.data ?? c.old).id === id).map((c) => c.operation), ['INSERT']);
  });

  test('a request over the size limit (1009) fails its subscription; the client reconnects and keeps the others', async (t) => {
    const { client, wire, states, errors } = await openClient(t);
    const changes = new Inbox();
    await subscribeInto(client, changes, 'roles').ready;
    const huge = { name: { in: Array.from({ length: 100 }, (_, i) => `${i}`.padEnd(200, 'x')) } };
    const tooBig = client.subscribe('profiles', () => assert.fail('no change expected'), { filter: huge });

    const error = await tooBig.ready.then(() => assert.fail('ready resolved'), (e) => e);
    assert.equal(error.code, 'message_too_big');
    assert.equal(error.closeCode, 1009);
    assert.equal((await errors.take()).code, 'message_too_big');
    assert.deepEqual([await states.take(), await states.take()], ['reconnecting', 'open']);

    // The other subscription was sent again (as soon as the new socket was welcomed), the oversized one was not.
    const events = wire.drain();
    const close = events.findIndex((e) => e.event === 'close');
    assert.equal(events[close].code, 1009);
    const sentAfter = events.slice(close).filter((e) => e.event === 'sent').map((e) => e.frame.tables);
    assert.deepEqual(sentAfter, [['roles']]);
    await wire.take((e) => e.event === 'received' && e.frame.type === 'subscribed', { what: 'roles resubscribed' });
    const name = marker();
    await host.sql(`INSERT INTO roles (name) VALUES ('${name}')`);
    await changes.take((c) => c.data?.name === name);
  });

  test('the client paces its requests below the server\'s rate limit, and coalesces those about one table', async (t) => {
    const { client, wire, errors } = await openClient(t); // 10 requests per second at most, by default
    const nextTask = () => new Promise((resolve) => setImmediate(resolve));
    for (let i = 0; i < 15; i++) {
      const sub = client.subscribe('roles', () => {}); // subscribe and unsubscribe in separate tasks: 30 changes
      await nextTask();
      sub.unsubscribe();
      await nextTask();
    }
    for (let i = 0; i < 15; i++) client.subscribe('profiles', () => {}).unsubscribe(); // one task: nothing to send
    const changes = new Inbox();
    await subscribeInto(client, changes, 'roles').ready;
    const sent = wire.pending.filter((e) => e.event === 'sent').map((e) => e.frame);
    // The bucket lets 10 go at once; what comes while it refills is coalesced into what is wanted by then.
    assert.ok(sent.length <= 12, `${sent.length} requests`);
    assert.ok(!sent.some((f) => f.tables.includes('profiles')), 'a subscription unsubscribed in the same task costs nothing');
    assert.equal(sent.at(-1).type, 'subscribe');
    assert.ok(!wire.pending.some((e) => e.event === 'received' && e.frame.type === 'error'), 'nothing was refused');
    const name = marker();
    await host.sql(`INSERT INTO roles (name) VALUES ('${name}')`);
    await changes.take((c) => c.data?.name === name);
    assert.deepEqual(errors.pending, []);
  });

  test('requests the server ignores as rate-limited are sent again, in order', async (t) => {
    const { client, wire, errors } = await openClient(t, { maxRequestsPerSecond: 1_000 }); // no pacing to speak of
    // 200 requests at once (each change in its own task, so none is coalesced): far past the server's 20 per second
    // even when a loaded machine spreads them over a few seconds.
    for (let i = 0; i < 100; i++) {
      const sub = client.subscribe('roles', () => {});
      await new Promise((resolve) => setImmediate(resolve));
      sub.unsubscribe();
      await new Promise((resolve) => setImmediate(resolve));
    }
    const changes = new Inbox();
    const last = subscribeInto(client, changes, 'roles');
    await wire.take((e) => e.event === 'received' && e.frame.type === 'error' && e.frame.code === 'rate_limited',
      { what: 'a rate_limited answer' });
    await last.ready;
    const name = marker();
    await host.sql(`INSERT INTO roles (name) VALUES ('${name}')`);
    await changes.take((c) => c.data?.name === name);
    assert.equal(client.state, 'open');
    assert.deepEqual(errors.pending, [], 'handled quietly');
  });

  test('unsubscribe stops delivery, on the server when no other subscription needs the table', async (t) => {
    const { client, wire } = await openClient(t);
    const leaving = new Inbox();
    const staying = new Inbox();
    const sentinel = new Inbox();
    const a = subscribeInto(client, leaving, 'profiles');
    const b = subscribeInto(client, staying, 'profiles');
    const roles = subscribeInto(client, sentinel, 'roles');
    await Promise.all([a.ready, b.ready, roles.ready]);

    const name = marker();
    await host.sql(`INSERT INTO profiles (name) VALUES ('${name}_1')`);
    await leaving.take((c) => c.data?.name === `${name}_1`);
    await staying.take((c) => c.data?.name === `${name}_1`);

    // Unsubscribing one of two subscriptions of a table: the other still receives, the first no longer does.
    a.unsubscribe();
    await host.sql(`INSERT INTO profiles (name) VALUES ('${name}_2')`);
    await staying.take((c) => c.data?.name === `${name}_2`);
    assert.deepEqual(leaving.pending, []);
    assert.equal(wire.pending.filter((e) => e.event === 'sent' && e.frame.type === 'unsubscribe').length, 0,
      'the table is still needed: nothing is sent');

    // The last subscription of the table: the server is told, and sends nothing more for it.
    b.unsubscribe();
    const request = (await wire.take((e) => e.event === 'sent' && e.frame.type === 'unsubscribe')).frame;
    assert.deepEqual(request.tables, ['profiles']);
    await wire.take((e) => e.event === 'received' && e.frame.type === 'unsubscribed' && e.frame.id === request.id);
    await host.sql(`INSERT INTO profiles (name) VALUES ('${name}_3')`);
    await host.sql(`INSERT INTO roles (name) VALUES ('${name}')`);
    // Same socket, commit order: the roles change arriving proves the later profiles change was not sent.
    await sentinel.take((c) => c.data?.name === name);
    const leaked = wire.pending.filter((e) => e.event === 'received' && e.frame.type === 'change' && e.frame.table === 'profiles'
      && e.frame.data?.name === `${name}_3`);
    assert.deepEqual(leaked, []);
    assert.deepEqual([...leaving.pending, ...staying.pending], []);
  });

  test('close() closes normally and does not reconnect', async (t) => {
    const { client, wire, states } = await openClient(t, { minDelay: 1, maxDelay: 1 });
    const changes = new Inbox();
    await subscribeInto(client, changes, 'profiles').ready;

    client.close();
    assert.equal(client.state, 'closed');
    assert.equal(await states.take(), 'closed');
    const closed = await wire.take((e) => e.event === 'close');
    assert.equal(closed.code, 1000);

    // A change made now reaches another client, and by then a reconnect (its delay is at most 1 ms) would have
    // opened a new socket.
    const probe = await openClient(t);
    const seen = new Inbox();
    await subscribeInto(probe.client, seen, 'profiles').ready;
    const name = marker();
    await host.sql(`INSERT INTO profiles (name) VALUES ('${name}')`);
    await seen.take((c) => c.data?.name === name);
    assert.equal(wire.pending.filter((e) => e.event === 'open').length, 0, 'no socket was opened after close()');
    assert.deepEqual(states.pending, [], 'the state stayed closed');
    assert.deepEqual(changes.pending, []);
  });
});
