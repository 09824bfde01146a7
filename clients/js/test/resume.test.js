// Lossless resume end to end, as issue "The JavaScript client" reproduced its loss: the real sample host with lossless
// delivery, ten clients each holding two tables in two filter groups, rows written at about 150 per second per table,
// and the clients' connections cut through a TCP proxy during outages and again a few milliseconds into the replays
// that follow. Every client must end with every row exactly once, and no resync (nothing was lost, so nothing to
// reload).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { PgNotifyClient } from '../src/index.js';
import { marker, randomId, startHost } from './harness.js';
import { CuttingProxy } from './proxy.js';

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

describe('lossless resume through cuts in the middle of replays', { timeout: 240_000 }, () => {
  let host;
  let proxy;
  before(async () => {
    host = await startHost({ PgNotify__LosslessDelivery: 'true' });
    proxy = new CuttingProxy(host.port);
    await proxy.start();
  });
  after(async () => {
    await proxy?.stop();
    await host?.dispose();
  });

  test('ten clients, two filter groups, repeated cuts: every row arrives exactly once, with no resync', async (t) => {
    const userId = randomId();
    const name = marker('resume');
    const url = `ws://127.0.0.1:${proxy.port}/ws/changes/`;
    const clients = [];
    for (let i = 0; i < 10; i++) {
      const seen = { profiles: [], roles: [], resyncs: [], errors: [] };
      const client = new PgNotifyClient(url, {
        WebSocket,
        minDelay: 50,
        maxDelay: 400,
        onResync: (resync) => seen.resyncs.push(resync),
        onError: (error) => seen.errors.push(error),
      });
      t.after(() => client.close());
      const profiles = client.subscribe('profiles', (c) => seen.profiles.push(c.data.id), { operations: ['INSERT'], filter: { user_id: userId } });
      const roles = client.subscribe('roles', (c) => c.data.name.startsWith(name) && seen.roles.push(c.data.id), { operations: ['INSERT'] });
      client.connect();
      clients.push({ client, seen, ready: Promise.all([profiles.ready, roles.ready]) });
    }
    await Promise.all(clients.map((c) => c.ready));

    // About 150 rows per second into each table, one transaction per row, for the whole test.
    const rows = 2_400;
    const writer = host.sql(`DO $$ BEGIN FOR i IN 1..${rows} LOOP
        INSERT INTO profiles (name, user_id) VALUES ('${name}_' || i, ${userId});
        INSERT INTO roles (name) VALUES ('${name}_' || i);
        COMMIT;
        PERFORM pg_sleep(1.0 / 150);
      END LOOP; END $$`);
    let written = false;
    writer.then(() => { written = true; }, () => { written = true; });

    for (let round = 0; round < 4 && !written; round++) {
      await delay(1_000);
      // An outage: every connection cut, new ones refused, while the writes go on.
      proxy.down = true;
      proxy.cutAll();
      await delay(1_500);
      // Back, but each client's first connection is cut a few milliseconds into its replay, twice in a row.
      proxy.cutAfterSubscribedMs = () => 2 + Math.floor(Math.random() * 15);
      proxy.cutsLeft = 20;
      proxy.down = false;
      const deadline = Date.now() + 20_000;
      while (proxy.cutsLeft > 0 && Date.now() < deadline) await delay(50);
      proxy.cutAfterSubscribedMs = null;
    }
    assert.ok(proxy.cuts >= 20, `connections cut during replays: ${proxy.cuts}`);
    await writer;

    const expected = {
      profiles: (await host.sql(`SELECT id FROM profiles WHERE user_id = ${userId} ORDER BY id`)).split('\n').map(Number),
      roles: (await host.sql(`SELECT id FROM roles WHERE name LIKE '${name}%' ORDER BY id`)).split('\n').map(Number),
    };
    assert.equal(expected.profiles.length, rows);
    assert.equal(expected.roles.length, rows);

    // Wait until every client has caught up (or the deadline passes), then compare.
    const deadline = Date.now() + 60_000;
    const complete = (c) => c.seen.profiles.length >= rows && c.seen.roles.length >= rows;
    while (!clients.every(complete) && Date.now() < deadline) await delay(100);
    for (const [i, { seen }] of clients.entries()) {
      for (const table of ['profiles', 'roles']) {
        const got = seen[table];
        const duplicates = got.length - new Set(got).size;
        const missing = expected[table].filter((id) => !got.includes(id));
        assert.equal(duplicates, 0, `client ${i}: ${duplicates} ${table} rows delivered twice`);
        assert.deepEqual(missing.length, 0, `client ${i}: ${missing.length} ${table} rows never delivered (first: ${missing.slice(0, 5)})`);
        assert.deepEqual([...got].sort((a, b) => a - b), expected[table]);
      }
      assert.deepEqual(seen.resyncs, [], `client ${i}: no resync`);
      assert.deepEqual(seen.errors.filter((e) => e.code !== 'connect_failed'), [], `client ${i}: only failed attempts reported`);
    }
  });
});
