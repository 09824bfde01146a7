// LiveRows against the real sample host and PostgreSQL: the rows of a table (under a filter) from a snapshot and the
// changes after it equal a SELECT of the table, while psql writes run; after the listener's backend is killed (live:
// a resync and a fresh snapshot); after the host restarts (live: a fresh snapshot; lossless: a resume with `since`);
// and a table without a primary key is refused with snapshot_unavailable.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LiveRows } from '../src/index.js';
import { marker, startHost, testClient } from './harness.js';

const NOPK = 'CREATE TABLE nopk (line text)';

/** Resolves once `predicate(live)` holds (checked now and after every change of it), or fails after `timeout` ms. */
function until(live, predicate, what, timeout = 20_000) {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!predicate(live)) return false;
      live.off('change', check);
      clearTimeout(timer);
      resolve();
      return true;
    };
    const timer = setTimeout(() => {
      live.off('change', check);
      reject(new Error(`Timed out waiting for ${what}: status ${live.status}, ${live.rows.length} rows, error ${live.error?.message}`));
    }, timeout);
    live.on('change', check);
    check();
  });
}

/** The profiles rows under `where`, as change frames carry them (password_hash is excluded by the sample). */
async function select(host, where = 'true') {
  return JSON.parse(await host.sql(
    `SELECT coalesce(json_agg(to_jsonb(p) - 'password_hash' ORDER BY id), '[]') FROM profiles p WHERE ${where}`));
}

/** psql writes: `count` inserts, updates (moving rows between user ids 0..2) and deletes, each its own transaction. */
function writes(host, count, tag) {
  return host.sql(`DO $$
    DECLARE r float;
    BEGIN
      FOR i IN 1..${count} LOOP
        r := random();
        IF r < 0.45 THEN
          INSERT INTO profiles (name, user_id) VALUES ('${tag}_' || i, i % 3);
        ELSIF r < 0.8 THEN
          UPDATE profiles SET name = '${tag}_u' || i, user_id = floor(random() * 3)::int
            WHERE id = (SELECT id FROM profiles ORDER BY random() LIMIT 1);
        ELSE
          DELETE FROM profiles WHERE id = (SELECT id FROM profiles ORDER BY random() LIMIT 1);
        END IF;
        COMMIT;
        PERFORM pg_sleep(0.002);
      END LOOP;
    END $$`);
}

/** After the writes: one transaction with a row for each user id; once a LiveRows holds its one, it holds all before. */
async function sentinel(host, lives) {
  const name = marker('sentinel');
  await host.sql(`INSERT INTO profiles (name, user_id) VALUES ('${name}', 0), ('${name}', 1), ('${name}', 2)`);
  await Promise.all(lives.map(({ live }) => until(live, (l) => l.rows.some((row) => row.name === name), `the sentinel in ${live.table}`)));
}

const FILTERS = [
  [null, 'true'],
  [{ user_id: 1 }, 'user_id = 1'],
  [{ user_id: { in: [0, 2] } }, 'user_id IN (0, 2)'],
  [{ user_id: { gte: 1 } }, 'user_id >= 1'],
];

describe('LiveRows against the sample host (live delivery)', { timeout: 240_000 }, () => {
  let host;
  before(async () => {
    host = await startHost({ PgNotify__Tables__3: 'nopk' }, { sql: NOPK });
  });
  after(async () => {
    await host?.dispose();
  });

  /** A connected client of its own (one filter per table and client) with one LiveRows. */
  function liveRows(t, filter, options = {}) {
    const c = testClient(t, host.wsUrl, options);
    c.client.connect();
    const live = new LiveRows(c.client, 'profiles', filter ? { filter } : {});
    t.after(() => live.close());
    return { ...c, live };
  }

  test('snapshots taken at random moments during psql writes, with filters, end equal to a SELECT of the table', async (t) => {
    await host.sql("INSERT INTO profiles (name, user_id) SELECT 'seed_' || i, i % 3 FROM generate_series(1, 200) i");
    const writing = writes(host, 600, marker('w'));
    const lives = [];
    // Subscribe while the writes run, one filter after another.
    for (const [index, [filter, where]] of FILTERS.entries()) {
      await new Promise((resolve) => setTimeout(resolve, 150 + 100 * index));
      lives.push({ ...liveRows(t, filter), where });
    }
    await writing;
    await sentinel(host, lives);
    for (const { live, where, errors, wire } of lives) {
      assert.equal(live.status, 'live');
      assert.deepEqual(live.rows, await select(host, where), `rows under ${where}`);
      assert.deepEqual(errors.pending, []);
      const sent = wire.pending.filter((e) => e.event === 'sent' && e.frame.type === 'subscribe').map((e) => e.frame);
      assert.equal(sent.length, 1);
      assert.equal(sent[0].snapshot, true);
      const ends = wire.pending.filter((e) => e.event === 'received' && e.frame.type === 'snapshot_end');
      assert.deepEqual(ends.map((e) => e.frame.key), [['id']]);
    }
  });

  test("the listener's backend killed during writes: a resync, a fresh snapshot, and equal at the end", async (t) => {
    const { live, wire, resyncs } = liveRows(t, { user_id: { in: [0, 1] } });
    await until(live, (l) => l.status === 'live', 'live');
    const writing = writes(host, 300, marker('k'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    await host.sql(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
        AND query NOT LIKE 'DO $$%'`); // every connection of the host (its listener among them), not the writer
    // Committed while the listener is down: no change frame carries it, the new snapshot must.
    const gap = marker('gap');
    await host.sql(`INSERT INTO profiles (name, user_id) VALUES ('${gap}', 1)`);
    await writing;
    const resync = await resyncs.take((r) => r.reason === 'listener_reconnected', { what: 'a listener_reconnected resync' });
    assert.equal(resync.type, 'resync');
    await sentinel(host, [{ live }]);
    const expected = await select(host, 'user_id IN (0, 1)');
    // The writer may have changed or deleted it since; while the table holds it, so must the rows.
    if (expected.some((row) => row.name === gap)) assert.ok(live.rows.some((row) => row.name === gap), 'the row written while the listener was down');
    assert.deepEqual(live.rows, expected);
    const snapshots = wire.pending.filter((e) => e.event === 'sent' && e.frame.snapshot === true);
    assert.ok(snapshots.length >= 2, `a fresh snapshot after the resync (sent ${snapshots.length})`);
  });

  test('after the host restarts, LiveRows takes a fresh snapshot on the new socket and shows what changed meanwhile', async (t) => {
    const { live, wire } = liveRows(t, { user_id: 2 });
    await until(live, (l) => l.status === 'live', 'live');
    await host.stop();
    await until(live, (l) => l.status === 'reconnecting', 'reconnecting');
    const missed = marker('down');
    await host.sql(`INSERT INTO profiles (name, user_id) VALUES ('${missed}', 2); DELETE FROM profiles WHERE user_id = 2 AND id = (SELECT min(id) FROM profiles WHERE user_id = 2)`);
    await host.start();
    await until(live, (l) => l.status === 'live' && l.rows.some((row) => row.name === missed), 'the row written while down', 60_000);
    await sentinel(host, [{ live }]);
    assert.deepEqual(live.rows, await select(host, 'user_id = 2'));
    const subscribes = wire.pending.filter((e) => e.event === 'sent' && e.frame.type === 'subscribe').map((e) => e.frame);
    assert.deepEqual(subscribes.map((f) => [f.snapshot, f.since]), [[true, undefined], [true, undefined]]);
  });

  test('a table without a primary key: LiveRows fails with snapshot_unavailable, a plain subscription of it works', async (t) => {
    const c = testClient(t, host.wsUrl);
    c.client.connect();
    const plain = c.client.subscribe('nopk', () => {});
    await plain.ready;
    const live = new LiveRows(c.client, 'nopk');
    t.after(() => live.close());
    await until(live, (l) => l.status === 'failed', 'failed');
    assert.equal(live.error.code, 'snapshot_unavailable');
    assert.equal(plain.state, 'live');
    const codes = c.errors.pending.map((e) => e.code);
    assert.deepEqual(codes, ['snapshot_unavailable', 'snapshot_unavailable', 'snapshot_unavailable'], 'asked three times');
  });
});

describe('LiveRows against the sample host (lossless delivery)', { timeout: 240_000 }, () => {
  let host;
  before(async () => {
    host = await startHost({ PgNotify__LosslessDelivery: 'true' });
  });
  after(async () => {
    await host?.dispose();
  });

  test('a snapshot during writes ends equal; after the host is killed and restarted it resumes with since, exact', async (t) => {
    await host.sql("INSERT INTO profiles (name, user_id) SELECT 'seed_' || i, i % 3 FROM generate_series(1, 100) i");
    const c = testClient(t, host.wsUrl);
    c.client.connect();
    const writing = writes(host, 300, marker('l'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const live = new LiveRows(c.client, 'profiles', { filter: { user_id: { in: [1, 2] } } });
    t.after(() => live.close());
    await writing;
    await sentinel(host, [{ live }]);
    assert.deepEqual(live.rows, await select(host, 'user_id IN (1, 2)'));
    const end = c.wire.pending.find((e) => e.event === 'received' && e.frame.type === 'snapshot_end').frame;
    assert.equal(typeof end.position, 'number');

    await host.kill();
    await until(live, (l) => l.status === 'reconnecting', 'reconnecting');
    await writes(host, 100, marker('d')); // while nobody listens: the change log keeps them
    await host.start();
    await sentinel(host, [{ live }]);
    assert.deepEqual(live.rows, await select(host, 'user_id IN (1, 2)'));
    const subscribes = c.wire.pending.filter((e) => e.event === 'sent' && e.frame.type === 'subscribe').map((e) => e.frame);
    assert.equal(subscribes.length, 2);
    assert.equal(subscribes[0].snapshot, true);
    assert.equal(subscribes[1].snapshot, undefined, 'resumed, not snapshotted');
    assert.equal(typeof subscribes[1].since, 'number');
    assert.deepEqual(c.resyncs.pending, []);
    assert.deepEqual(c.errors.pending.filter((e) => !['connect_failed', 'connect_timeout'].includes(e.code)), []);
  });
});
