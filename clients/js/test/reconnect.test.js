// Reconnects against the real sample host: killed (the socket just drops) and stopped gracefully (closed with 1001).
// The host comes back on the same port; the client must send its subscriptions again, with the same operations and
// filter, and either resume (lossless server) or tell the app to reload (onResync 'reconnected').

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Inbox, marker, randomId, startHost, testClient } from './harness.js';

for (const lossless of [false, true]) {
  describe(`reconnecting to the sample host (lossless delivery ${lossless ? 'on' : 'off'})`, { timeout: 240_000 }, () => {
    let host;
    before(async () => {
      host = await startHost({ PgNotify__LosslessDelivery: String(lossless) });
    });
    after(async () => {
      await host?.dispose();
    });

    for (const [how, stop, closeCode] of [
      ['killed', () => host.kill(), 1006],
      ['shut down gracefully (1001)', () => host.stop(), 1001],
    ]) {
      test(`after the host is ${how}, the client reconnects, resubscribes and receives later changes`, async (t) => {
        const { client, wire, states, resyncs, errors } = testClient(t, host.wsUrl, { minDelay: 100, maxDelay: 1_000 });
        const changes = new Inbox();
        const userId = randomId();
        const subscription = { operations: ['INSERT', 'UPDATE'], filter: { user_id: userId } };
        client.connect();
        const sub = client.subscribe('profiles', (change) => changes.push(change), subscription);
        await sub.ready;
        assert.deepEqual([await states.take(), await states.take()], ['connecting', 'open']);
        const welcome = (await wire.take((e) => e.event === 'received' && e.frame.type === 'welcome')).frame;
        assert.equal(welcome.lossless, lossless, 'the welcome frame tells whether the server keeps a change log');
        const first = (await wire.take((e) => e.event === 'sent' && e.frame.type === 'subscribe')).frame;

        const name = marker();
        await host.sql(`INSERT INTO profiles (name, user_id) VALUES ('${name}_before', ${userId})`);
        await changes.take((c) => c.data.name === `${name}_before`, { what: 'the change before the outage' });

        // The outage.
        await stop();
        const closed = await wire.take((e) => e.event === 'close', { what: 'the socket to close' });
        assert.equal(closed.code, closeCode);
        assert.equal(await states.take(undefined, { what: 'a state change' }), 'reconnecting');
        await host.sql(`INSERT INTO profiles (name, user_id) VALUES ('${name}_during', ${userId})`);
        // Failed attempts while the host is down are expected: the state stays 'reconnecting' through them.
        await host.start();

        assert.equal(await states.take(undefined, { timeout: 30_000, what: "state 'open' again" }), 'open');
        const again = (await wire.take((e) => e.event === 'sent' && e.frame.type === 'subscribe', { what: 'the resubscription' })).frame;
        assert.notEqual(again.id, first.id, 'a new request id');
        assert.deepEqual(again.tables, ['profiles']);
        assert.deepEqual(again.operations, subscription.operations, 'the same operations');
        assert.deepEqual(again.filter, subscription.filter, 'the same filter');

        if (lossless) {
          // A change log: the change made during the outage is replayed, and there is nothing to reload.
          assert.equal(typeof again.since, 'number');
          await changes.take((c) => c.data.name === `${name}_during`, { what: 'the change made during the outage' });
        } else {
          // No change log: the app is told to reload, once the subscription is live again.
          assert.equal(again.since, undefined);
          const resync = await resyncs.take(undefined, { what: 'onResync' });
          assert.deepEqual(resync, { type: 'resync', reason: 'reconnected' });
          assert.ok(wire.pending.some((e) => e.event === 'received' && e.frame.type === 'subscribed' && e.frame.id === again.id),
            'onResync came after the resubscription was acknowledged');
        }

        // Later changes arrive, still filtered by the server with the same filter and operations.
        const id = Number(await host.sql(`INSERT INTO profiles (name, user_id) VALUES ('${name}_other', ${userId + 1}) RETURNING id`));
        await host.sql(`DELETE FROM profiles WHERE name = '${name}_before'`);
        await host.sql(`INSERT INTO profiles (name, user_id) VALUES ('${name}_after', ${userId})`);
        const next = await changes.take((c) => c.data?.name !== `${name}_during`, { what: 'the change after the outage' });
        assert.equal(next.data.name, `${name}_after`, 'neither the other user\'s row nor the DELETE was delivered');
        assert.ok(!wire.pending.some((e) => e.event === 'received' && e.frame.type === 'change' && e.frame.data?.id === id));
        assert.equal(client.state, 'open');
        // The attempts that failed while the host was down were reported, each with its number in the row; nothing else.
        const failed = errors.pending.filter((e) => e.code === 'connect_failed');
        assert.deepEqual(errors.pending.filter((e) => e.code !== 'connect_failed'), [], `no other errors: ${errors.pending.map(String)}`);
        assert.deepEqual(failed.map((e) => e.attempt), failed.map((_, i) => failed[0].attempt + i));
      });
    }

    test('subscriptions made while disconnected are sent once connected', async (t) => {
      await host.kill();
      const { client, states } = testClient(t, host.wsUrl, { minDelay: 100, maxDelay: 500 });
      const changes = new Inbox();
      client.connect();
      await states.take((s) => s === 'reconnecting', { what: 'a failed first attempt' });
      const sub = client.subscribe('roles', (change) => changes.push(change));
      await host.start();
      await sub.ready;
      const name = marker();
      await host.sql(`INSERT INTO roles (name) VALUES ('${name}')`);
      await changes.take((c) => c.data.name === name);
    });
  });
}
