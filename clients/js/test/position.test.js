// The head position of `subscribed`, end to end against the real sample host with lossless delivery: a table that saw
// no change yet still resumes. Subscribe, take the position the server gave, go away, let rows be written, come back
// with `since` from that position, and get exactly those rows, with no resync.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { marker, startHost, testClient } from './harness.js';

describe('resuming a table that saw no change (subscribed carries the head position)', { timeout: 120_000 }, () => {
  let host;
  before(async () => {
    host = await startHost({ PgNotify__LosslessDelivery: 'true' });
  });
  after(async () => {
    await host?.dispose();
  });

  test('subscribe, get the position, disconnect, write rows, reconnect with since: exactly those rows', async (t) => {
    const name = marker('head');
    // Another table moves the log's head first, so the position is not simply zero.
    await host.sql(`INSERT INTO roles (name) VALUES ('${name}_elsewhere')`);
    const saved = new Map();
    const positionStore = { getItem: (key) => saved.get(key) ?? null, setItem: (key, value) => saved.set(key, value) };

    const first = testClient(t, host.wsUrl, { positionStore });
    const seenFirst = [];
    const sub = first.client.subscribe('profiles', (change) => seenFirst.push(change), { operations: ['INSERT'] });
    first.client.connect();
    await sub.ready;
    const ack = first.wire.pending.find((w) => w.event === 'received' && w.frame.type === 'subscribed');
    assert.equal(typeof ack?.frame.position, 'number', `subscribed carries a position: ${JSON.stringify(ack?.frame)}`);
    const [stored] = Object.values(JSON.parse(saved.get('pgnotify.positions')));
    assert.equal(stored.position, ack.frame.position, 'the client keeps the head position for the table');
    const roleHead = Number(await host.sql(`SELECT max(position) FROM pgnotify.change_log`));
    assert.ok(ack.frame.position >= roleHead, `the head (${ack.frame.position}) covers the other table's change (${roleHead})`);
    first.client.close();

    await host.sql(`INSERT INTO profiles (name) SELECT '${name}_' || g FROM generate_series(1, 3) g`);
    const expected = (await host.sql(`SELECT id FROM profiles WHERE name LIKE '${name}%' ORDER BY id`)).split('\n').map(Number);
    assert.equal(expected.length, 3);

    // A new client (a reloaded page) with the same store resumes from the head position.
    const second = testClient(t, host.wsUrl, { positionStore });
    const got = [];
    const resumed = second.client.subscribe('profiles', (change) => got.push(change), { operations: ['INSERT'] });
    second.client.connect();
    await resumed.ready;
    const request = await second.wire.take((w) => w.event === 'sent' && w.frame.type === 'subscribe', { what: 'the subscribe request' });
    assert.equal(request.frame.since, ack.frame.position, 'since is the head position');
    const deadline = Date.now() + 15_000;
    while (got.length < expected.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    // Anything extra would show up with a live row written afterwards, which must come right after the three.
    await host.sql(`INSERT INTO profiles (name) VALUES ('${name}_live')`);
    const liveDeadline = Date.now() + 15_000;
    while (got.length < expected.length + 1 && Date.now() < liveDeadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(got.slice(0, 3).map((c) => c.data.id), expected, 'exactly the rows written while away, in order');
    assert.deepEqual(got.slice(3).map((c) => c.data.name), [`${name}_live`], 'then live rows, with no duplicate');
    assert.deepEqual(seenFirst, [], 'the first client saw nothing');
    assert.deepEqual(second.resyncs.pending, [], 'nothing to reload');
    assert.deepEqual(second.errors.pending, []);
  });
});
