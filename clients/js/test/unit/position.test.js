// Positions above 2^53 - 1 (issue 14; docs/protocol.md, "Positions"): the server sends them as strings of digits, the
// client orders them exactly with comparePositions and sends them back as they came. No server: a scripted socket.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { comparePositions, LiveRows } from '../../src/index.js';
import { collect, fakeClient, fakeTime, settle } from './fake.js';

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MAX_LONG = 2n ** 63n - 1n;

/** A position as the server writes it: a number up to 2^53 - 1, a string of its digits above. */
const wire = (value) => (value <= MAX_SAFE ? Number(value) : value.toString());
const sign = (n) => (n < 0 ? -1 : n > 0 ? 1 : 0);

test('comparePositions: exact at the 2^53 boundary, where numbers would round', () => {
  assert.equal(comparePositions(9007199254740991, '9007199254740992'), -1);
  assert.equal(comparePositions('9007199254740992', '9007199254740993'), -1);
  assert.equal(comparePositions('9007199254740993', '9007199254740992'), 1);
  assert.equal(comparePositions('9007199254740993', '9007199254740993'), 0);
  assert.equal(comparePositions('9007199254740991', 9007199254740991), 0, 'the same position in either form');
  assert.equal(comparePositions('10', 9), 1, 'not compared as text');
  assert.equal(comparePositions('9223372036854775807', '9223372036854775806'), 1);
  assert.equal(Number('9007199254740993') === Number('9007199254740992'), true, 'what the strings protect against');
});

test('comparePositions: agrees with BigInt for random 64-bit pairs in both forms (property)', () => {
  const random64 = () => {
    const kind = Math.floor(Math.random() * 3);
    if (kind === 0) return MAX_SAFE - 50n + BigInt(Math.floor(Math.random() * 100)); // around the boundary
    if (kind === 1) return BigInt(Math.floor(Math.random() * 1000));
    const high = BigInt(Math.floor(Math.random() * 2 ** 31));
    const low = BigInt(Math.floor(Math.random() * 2 ** 32));
    return (high << 32n) | low; // anywhere up to 2^63 - 1
  };
  for (let i = 0; i < 20_000; i++) {
    const a = random64();
    const b = Math.random() < 0.1 ? a : random64();
    const expected = a < b ? -1 : a > b ? 1 : 0;
    const forms = [[wire(a), wire(b)], [a.toString(), b.toString()], [wire(a), b.toString()], [a.toString(), wire(b)]];
    for (const [x, y] of forms) {
      assert.equal(sign(comparePositions(x, y)), expected, `${typeof x} ${x} vs ${typeof y} ${y}`);
    }
  }
  assert.equal(comparePositions(MAX_LONG.toString(), 0), 1);
});

test('comparePositions: anything that is not a position throws a TypeError', () => {
  const bad = [-1, 1.5, 9007199254740992, NaN, Infinity, '-1', '+1', '1e3', ' 1', '', '0x10', '１', '١', '\ud800',
    '9'.repeat(20), '9223372036854775808', null, undefined, {}, [], true, 1n];
  for (const value of bad) {
    assert.throws(() => comparePositions(value, 0), TypeError, `${typeof value} ${String(value)}`);
    assert.throws(() => comparePositions(0, value), TypeError, `${typeof value} ${String(value)}`);
  }
});

test('resume above 2^53: since goes back as the string it came as, and the replay is deduplicated exactly', async (t) => {
  const time = fakeTime(t);
  const { client, server, resyncs } = fakeClient(t);
  const orders = collect(client, 'orders');
  client.connect();
  server.last.welcome(true);
  await settle();
  server.last.answerAll({ position: 9007199254740990 })
    .change('orders', 9007199254740991)
    .change('orders', '9007199254740992')
    .change('orders', '9007199254740993');
  server.last.drop();
  await time.tick(1_000);
  server.last.welcome(true);
  await settle();
  const [resume] = server.last.requests('subscribe');
  assert.equal(resume.since, '9007199254740993', 'the string, not a rounded number');
  server.last.answerAll({ position: '9007199254740995' })
    .change('orders', '9007199254740992') // repeats a replay may hold
    .change('orders', '9007199254740993')
    .change('orders', '9007199254740994')
    .change('orders', '9007199254740995');
  assert.deepEqual(orders.changes.map((c) => c.position),
    [9007199254740991, '9007199254740992', '9007199254740993', '9007199254740994', '9007199254740995']);
  assert.deepEqual(resyncs, []);
});

test('resume of tables at different positions above 2^53: since is the lowest, compared exactly', async (t) => {
  const time = fakeTime(t);
  const { client, server } = fakeClient(t);
  collect(client, ['orders', 'items']);
  client.connect();
  server.last.welcome(true);
  await settle();
  server.last.answerAll().change('orders', '9007199254740993').change('items', '9007199254740992');
  server.last.drop();
  await time.tick(1_000);
  server.last.welcome(true);
  await settle();
  assert.deepEqual(server.last.requests('subscribe').map((r) => r.since), ['9007199254740992']);
});

test('positionStore keeps a string position and resumes from it after a reload', async (t) => {
  const storage = new Map();
  const positionStore = { getItem: (k) => storage.get(k) ?? null, setItem: (k, v) => storage.set(k, v) };
  const first = fakeClient(t, { positionStore });
  collect(first.client, 'orders');
  first.client.connect();
  first.server.last.welcome(true);
  await settle();
  first.server.last.answerAll().change('orders', '9007199254740993');
  first.client.close();

  const second = fakeClient(t, { positionStore });
  collect(second.client, 'orders');
  second.client.connect();
  second.server.last.welcome(true);
  await settle();
  assert.equal(second.server.last.requests('subscribe')[0].since, '9007199254740993');
});

test('LiveRows above 2^53: the snapshot position (a string) skips the changes it holds, and a reconnect resumes from it', async (t) => {
  const time = fakeTime(t);
  const { client, server, resyncs } = fakeClient(t, { minDelay: 10, maxDelay: 10 });
  client.connect();
  server.last.welcome(true);
  await settle();
  const live = new LiveRows(client, 'roles');
  t.after(() => live.close());
  await settle();
  let [req] = server.last.requests('subscribe');
  server.last.answer(req, { position: 9007199254740990 });
  server.last.op('roles', 'INSERT', { data: { id: 3 }, position: 9007199254740991 }); // in the snapshot
  server.last.op('roles', 'INSERT', { data: { id: 30 }, position: '9007199254740992' }); // in the snapshot
  server.last.op('roles', 'INSERT', { data: { id: 4 }, position: '9007199254740993' }); // after it
  server.last.snapshot(req, 'roles', [{ id: 1 }, { id: 3 }, { id: 30, name: 'snap' }], { end: { position: '9007199254740992' } });
  await settle();
  assert.deepEqual(live.rows.map((r) => r.id), [1, 3, 4, 30]);
  assert.equal(live.rows[3].name, 'snap', 'the change at the snapshot position was not applied again');
  server.last.drop();
  await time.tick(50);
  server.last.welcome(true);
  await settle();
  [req] = server.last.requests('subscribe');
  assert.equal(req.since, '9007199254740993');
  assert.equal(req.snapshot, undefined, 'resumed exactly, not snapshotted');
  server.last.answer(req, { position: '9007199254740994' });
  server.last.op('roles', 'DELETE', { old: { id: 1 }, position: '9007199254740994' });
  await settle();
  assert.deepEqual(live.rows.map((r) => r.id), [3, 4, 30]);
  assert.deepEqual(resyncs, []);
});
