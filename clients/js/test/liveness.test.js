// A half-open connection against the real sample host: a TCP proxy black-holes the client's connection (nothing
// passes either way, nothing is closed), as a sleeping laptop or a dropped NAT mapping does. The client must notice
// within its heartbeat timeout, reconnect, and then either get every change made meanwhile (lossless delivery) or be
// told to reload (live delivery).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { PgNotifyClient } from '../src/index.js';
import { Inbox, marker, startHost } from './harness.js';
import { CuttingProxy } from './proxy.js';

for (const lossless of [true, false]) {
  describe(`a black-holed connection (lossless delivery ${lossless ? 'on' : 'off'})`, { timeout: 120_000 }, () => {
    let host;
    let proxy;
    before(async () => {
      host = await startHost({ PgNotify__LosslessDelivery: String(lossless) });
      proxy = new CuttingProxy(host.port);
      await proxy.start();
    });
    after(async () => {
      await proxy?.stop();
      await host?.dispose();
    });

    test('is noticed within the heartbeat timeout; the client reconnects and gets the changes back or a resync', async (t) => {
      const errors = new Inbox();
      const states = new Inbox();
      const resyncs = new Inbox();
      const changes = new Inbox();
      const client = new PgNotifyClient(`ws://127.0.0.1:${proxy.port}/ws/changes/`, {
        WebSocket,
        minDelay: 50,
        maxDelay: 200,
        heartbeatMs: 1_000,
        heartbeatTimeoutMs: 1_000,
        onError: (error) => errors.push(error),
        onState: (state) => states.push(state),
        onResync: (resync) => resyncs.push(resync),
      });
      t.after(() => client.close());
      const name = marker('live');
      const sub = client.subscribe('roles', (c) => c.data.name.startsWith(name) && changes.push(c.data.name), { operations: ['INSERT'] });
      client.connect();
      await sub.ready;
      await host.sql(`INSERT INTO roles (name) VALUES ('${name}_before')`);
      assert.equal(await changes.take(), `${name}_before`);

      proxy.blackHoleAll();
      const cutAt = Date.now();
      await host.sql(`INSERT INTO roles (name) VALUES ('${name}_during')`);
      const error = await errors.take((e) => e.code === 'heartbeat_timeout', { timeout: 10_000, what: 'heartbeat_timeout' });
      const noticedAfter = Date.now() - cutAt;
      assert.ok(noticedAfter <= 2_000 + 500, `noticed after ${noticedAfter} ms (heartbeat 1 s + timeout 1 s)`);
      assert.equal(error.code, 'heartbeat_timeout');
      await states.take((s) => s === 'open', { what: 'open again' });

      if (lossless) {
        assert.equal(await changes.take(undefined, { what: 'the change made while black-holed' }), `${name}_during`);
        assert.deepEqual(resyncs.pending, []);
      } else {
        assert.deepEqual(await resyncs.take(undefined, { what: 'a resync' }), { type: 'resync', reason: 'reconnected' });
      }
      await host.sql(`INSERT INTO roles (name) VALUES ('${name}_after')`);
      assert.equal(await changes.take((c) => c.endsWith('_after')), `${name}_after`);
      assert.ok(changes.pending.every((c) => c !== `${name}_before`), 'nothing delivered twice');
    });
  });
}
