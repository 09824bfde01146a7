// Snapshot-then-stream over a scripted socket: subscribe with `snapshot`, LiveRows' rules for applying a snapshot and
// the changes after it, a fresh snapshot after a resync or a reconnect (or an exact resume on a lossless server), and
// hostile frames that never throw out of the client. No server: each test plays the server's part as
// docs/protocol.md describes it.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LiveRows, matchesFilter } from '../../src/index.js';
import { fakeClient, fakeTime, settle } from './fake.js';

/** A connected client (lossless or not) whose socket has said welcome. */
async function connected(t, { lossless = false, ...options } = {}) {
  const c = fakeClient(t, { minDelay: 10, maxDelay: 10, ...options });
  c.client.connect();
  c.server.last.welcome(lossless);
  await settle();
  return c;
}

/** The one unanswered subscribe request of the current socket. */
function request(server) {
  const requests = server.last.requests('subscribe');
  assert.equal(requests.length, 1, `one subscribe request, sent: ${JSON.stringify(server.last.sent)}`);
  return requests[0];
}

const ids = (live) => live.rows.map((row) => row.id);

test('subscribe with snapshot: the request asks for it, ready waits for snapshot_end, onSnapshot gets the rows and key', async (t) => {
  const { client, server } = await connected(t);
  const snapshots = [];
  const changes = [];
  const sub = client.subscribe('profiles', (c) => changes.push(c), { snapshot: true, limit: 50, onSnapshot: (s) => snapshots.push(s) });
  await settle();
  const req = request(server);
  assert.equal(req.snapshot, true);
  assert.equal(req.limit, 50);
  assert.equal(req.since, undefined);

  let ready = false;
  sub.ready.then(() => { ready = true; });
  // Before the answer: the snapshot (read once the subscription is live) will hold this change.
  server.last.op('profiles', 'INSERT', { data: { id: 9, name: 'before' } });
  server.last.answer(req);
  await settle();
  assert.equal(ready, false, 'not ready before the snapshot');
  assert.equal(sub.state, 'pending');
  assert.equal(sub.awaitingSnapshot, true);
  // After the answer and before snapshot_end: held, applied after the snapshot.
  server.last.op('profiles', 'UPDATE', { data: { id: 1, name: 'after' }, old: { id: 1, name: 'a' } });
  server.last.snapshot(req, 'profiles', [{ id: 1, name: 'a' }, { id: 2, name: 'b' }, { id: 9, name: 'before' }]);
  await settle();
  assert.equal(ready, true);
  assert.equal(sub.state, 'live');
  assert.equal(sub.awaitingSnapshot, false);
  assert.equal(snapshots.length, 1);
  assert.deepEqual(snapshots[0].rows.map((r) => r.id), [1, 2, 9]);
  assert.deepEqual(snapshots[0].key, ['id']);
  assert.equal(snapshots[0].truncated, false);
  assert.equal(snapshots[0].table, 'profiles');
  assert.deepEqual(changes.map((c) => [c.operation, c.data.name]), [['UPDATE', 'after']], 'the held change, not the earlier one');

  server.last.op('profiles', 'DELETE', { old: { id: 2 } });
  assert.equal(changes.length, 2, 'later changes are delivered as they come');
});

test('LiveRows applies the rules: upsert by key, an UPDATE leaving the filter removes, DELETE removes, TRUNCATE empties', async (t) => {
  const { client, server } = await connected(t);
  const live = new LiveRows(client, 'orders', { filter: { shop: 1, status: { in: ['open', 'paid'] } } });
  t.after(() => live.close());
  assert.equal(live.status, 'loading');
  await settle();
  const req = request(server);
  assert.deepEqual(req.filter, { shop: 1, status: { in: ['open', 'paid'] } });
  server.last.answer(req);
  server.last.snapshot(req, 'orders', [
    { id: 30, shop: 1, status: 'open' }, { id: 10, shop: 1, status: 'paid' }, { id: 20, shop: 1, status: 'open' }]);
  await settle();
  assert.equal(live.status, 'live');
  assert.deepEqual(ids(live), [10, 20, 30], 'ordered by key');
  assert.deepEqual(live.key, ['id']);
  const before = live.rows;
  assert.equal(live.rows, before, 'the same array until something changes');

  const op = (operation, data, old) => server.last.op('orders', operation, { data, old });
  op('INSERT', { id: 15, shop: 1, status: 'open' });
  assert.deepEqual(ids(live), [10, 15, 20, 30]);
  assert.notEqual(live.rows, before);
  op('UPDATE', { id: 20, shop: 1, status: 'paid' }, { id: 20, shop: 1, status: 'open' });
  assert.equal(live.rows.find((r) => r.id === 20).status, 'paid', 'upserted in place');
  op('UPDATE', { id: 30, shop: 1, status: 'void' }, { id: 30, shop: 1, status: 'open' });
  assert.deepEqual(ids(live), [10, 15, 20], 'left the filter: removed');
  op('UPDATE', { id: 5, shop: 1, status: 'open' }, { id: 5, shop: 2, status: 'open' });
  assert.deepEqual(ids(live), [5, 10, 15, 20], 'entered the filter: added');
  op('UPDATE', { id: 16, shop: 1, status: 'open' }, { id: 15, shop: 1, status: 'open' });
  assert.deepEqual(ids(live), [5, 10, 16, 20], 'its key changed: the old key is gone');
  op('UPDATE', { id: 10, shop: 1, status: 'open' }); // no `old` (authorization removed it)
  assert.equal(live.rows.find((r) => r.id === 10).status, 'open');
  op('DELETE', undefined, { id: 5, shop: 1, status: 'open' });
  assert.deepEqual(ids(live), [10, 16, 20]);
  op('DELETE', undefined, { id: 999 }); // not there: nothing to do
  assert.deepEqual(ids(live), [10, 16, 20]);
  op('TRUNCATE');
  assert.deepEqual(live.rows, []);
  op('INSERT', { id: 1, shop: 1, status: 'open' });
  assert.deepEqual(ids(live), [1]);
  assert.equal(live.error, null);
});

test('LiveRows orders composite and mixed keys: component by component, numbers by value, strings by code unit', async (t) => {
  const { client, server } = await connected(t);
  const live = new LiveRows(client, 'grid');
  t.after(() => live.close());
  await settle();
  const req = request(server);
  server.last.answer(req);
  server.last.snapshot(req, 'grid', [
    { a: 'b', n: 2 }, { a: 'a', n: 10 }, { a: 'a', n: 9 }, { a: 'B', n: 1 }, { a: 'a', n: -1.5 }], { key: ['a', 'n'] });
  await settle();
  assert.deepEqual(live.rows.map((r) => `${r.a}${r.n}`), ['B1', 'a-1.5', 'a9', 'a10', 'b2']);
  server.last.op('grid', 'INSERT', { data: { a: 'a', n: 9.5 } });
  server.last.op('grid', 'DELETE', { old: { a: 'b', n: 2 } });
  assert.deepEqual(live.rows.map((r) => `${r.a}${r.n}`), ['B1', 'a-1.5', 'a9', 'a9.5', 'a10']);
});

test('matchesFilter decides as the server does', () => {
  const row = { id: 7, name: 'Ada', score: 10.5, vip: true, note: null, tags: ['x'], big: 1e20 };
  const cases = [
    [{ id: 7 }, true], [{ id: 7.0 }, true], [{ id: '7' }, false], [{ id: 8 }, false],
    [{ name: 'Ada' }, true], [{ name: 'ada' }, false],
    [{ vip: true }, true], [{ vip: 1 }, false], [{ note: null }, true], [{ name: null }, false],
    [{ missing: null }, false], [{ missing: { neq: 1 } }, false], // a row without the column passes nothing
    [{ id: { neq: 8 } }, true], [{ id: { neq: '7' } }, true], [{ id: { neq: 7 } }, false],
    [{ id: { in: [1, 7] } }, true], [{ id: { in: ['7'] } }, false], [{ note: { in: [null] } }, true],
    [{ score: { gt: 10 } }, true], [{ score: { gte: 10.5 } }, true], [{ score: { lt: 10.5 } }, false],
    [{ score: { lte: 10.5, gt: 10 } }, true], [{ score: { gt: '1' } }, false],
    [{ name: { gte: 'A' } }, true], [{ name: { lt: 'B' } }, true], [{ name: { gt: 'a' } }, false],
    [{ tags: ['x'] }, false], [{ tags: { eq: 'x' } }, false], [{ tags: { neq: 'x' } }, true],
    [{ big: 1e20 }, true], [{ big: { gt: 1e19 } }, true],
    [{ id: 7, name: 'Ada' }, true], [{ id: 7, name: 'Bob' }, false],
    [{ id: { unknown: 1 } }, false], [{}, true], [null, true],
  ];
  for (const [filter, expected] of cases) assert.equal(matchesFilter(filter, row), expected, JSON.stringify(filter));
  assert.equal(matchesFilter({ id: 1 }, null), false);
  assert.equal(matchesFilter({ id: 1 }, [1]), false);
  // Strings compare by UTF-16 code units, as the server's ordinal comparison does.
  assert.equal(matchesFilter({ s: { lt: '\uff5e' } }, { s: '\u{1f600}' }), true);
});

test('live mode: after a resync LiveRows takes a fresh snapshot; changes before the new request are superseded', async (t) => {
  const { client, server, resyncs } = await connected(t);
  const live = new LiveRows(client, 'roles');
  t.after(() => live.close());
  await settle();
  let req = request(server);
  server.last.answer(req);
  server.last.snapshot(req, 'roles', [{ id: 1 }, { id: 2 }]);
  await settle();
  assert.equal(live.status, 'live');
  const statuses = [];
  live.on('change', (view) => statuses.push(view.status));

  server.last.frame({ type: 'resync', reason: 'listener_reconnected' });
  assert.equal(resyncs.length, 1, 'the app hears of it too');
  assert.equal(live.status, 'resyncing');
  assert.deepEqual(ids(live), [1, 2], 'the rows stay until the new snapshot');
  server.last.op('roles', 'INSERT', { data: { id: 3 } }); // in the snapshot to come
  await settle();
  req = request(server);
  assert.equal(req.snapshot, true);
  server.last.answer(req);
  server.last.op('roles', 'INSERT', { data: { id: 5 } }); // after it: held, then applied
  server.last.snapshot(req, 'roles', [{ id: 2 }, { id: 3 }, { id: 4 }]);
  await settle();
  assert.deepEqual(ids(live), [2, 3, 4, 5]);
  assert.equal(live.status, 'live');
  assert.deepEqual(statuses.filter((s, i) => s !== statuses[i - 1]), ['resyncing', 'live']);
});

test('live mode: after a reconnect LiveRows takes a fresh snapshot on the new socket (no since), reconnecting meanwhile', async (t) => {
  const time = fakeTime(t);
  const { client, server } = await connected(t);
  const live = new LiveRows(client, 'roles');
  t.after(() => live.close());
  await settle();
  let req = request(server);
  server.last.answer(req);
  server.last.snapshot(req, 'roles', [{ id: 1 }, { id: 2 }]);
  await settle();
  server.last.drop();
  assert.equal(live.status, 'reconnecting');
  await time.tick(50);
  server.last.welcome();
  await settle();
  req = request(server);
  assert.equal(req.snapshot, true);
  assert.equal(req.since, undefined);
  assert.equal(live.status, 'reconnecting', 'not live again before its snapshot');
  server.last.answer(req);
  server.last.snapshot(req, 'roles', [{ id: 2 }, { id: 7 }]); // 1 was deleted and 7 added while down
  await settle();
  assert.deepEqual(ids(live), [2, 7]);
  assert.equal(live.status, 'live');
});

test('lossless: a reconnect resumes LiveRows from its position (exact, no snapshot); changes the snapshot holds are skipped', async (t) => {
  const time = fakeTime(t);
  const { client, server, resyncs } = await connected(t, { lossless: true });
  const live = new LiveRows(client, 'roles');
  t.after(() => live.close());
  await settle();
  let req = request(server);
  server.last.answer(req, { position: 100 });
  server.last.op('roles', 'INSERT', { data: { id: 3 }, position: 101 }); // in the snapshot (at or below its position)
  server.last.op('roles', 'INSERT', { data: { id: 4 }, position: 103 });
  server.last.snapshot(req, 'roles', [{ id: 1 }, { id: 3 }], { end: { position: 102 } });
  await settle();
  assert.deepEqual(ids(live), [1, 3, 4]);
  server.last.op('roles', 'DELETE', { old: { id: 1 }, position: 104 });
  server.last.drop();
  await time.tick(50);
  server.last.welcome(true);
  await settle();
  req = request(server);
  assert.equal(req.since, 104);
  assert.equal(req.snapshot, undefined, 'resumed, not snapshotted');
  server.last.answer(req, { position: 106 });
  server.last.op('roles', 'INSERT', { data: { id: 5 }, position: 105 });
  server.last.op('roles', 'UPDATE', { data: { id: 3, name: 'x' }, old: { id: 3 }, position: 106 });
  await settle();
  assert.deepEqual(ids(live), [3, 4, 5]);
  assert.equal(live.rows[0].name, 'x');
  assert.equal(live.status, 'live');
  assert.deepEqual(resyncs, [], 'nothing for the app to reload');

  // The position expired meanwhile: a fresh snapshot.
  server.last.frame({ type: 'resync', reason: 'position_expired' });
  await settle();
  req = request(server);
  assert.equal(req.snapshot, true);
  server.last.answer(req, { position: 300 });
  server.last.snapshot(req, 'roles', [{ id: 9 }], { end: { position: 300 } });
  await settle();
  assert.deepEqual(ids(live), [9]);
});

test('lossless: a snapshot cut short by a drop is asked for again, without since; invalid_position asks for one too', async (t) => {
  const time = fakeTime(t);
  const { client, server } = await connected(t, { lossless: true });
  const live = new LiveRows(client, 'roles');
  t.after(() => live.close());
  await settle();
  let req = request(server);
  server.last.answer(req, { position: 10 });
  server.last.frame({ type: 'snapshot', id: req.id, schema: 'public', table: 'roles', rows: [{ id: 1 }] });
  server.last.drop();
  await time.tick(50);
  server.last.welcome(true);
  await settle();
  req = request(server);
  assert.equal(req.snapshot, true);
  assert.equal(req.since, undefined);
  server.last.answer(req, { position: 12 });
  server.last.snapshot(req, 'roles', [{ id: 1 }, { id: 2 }], { end: { position: 12 } });
  await settle();
  assert.deepEqual(ids(live), [1, 2]);

  server.last.drop();
  await time.tick(50);
  server.last.welcome(true);
  await settle();
  req = request(server);
  assert.equal(req.since, 12);
  server.last.answer(req, { code: 'invalid_position' });
  await settle();
  req = request(server);
  assert.equal(req.snapshot, true);
  assert.equal(req.since, undefined);
  server.last.answer(req, { position: 1 });
  server.last.snapshot(req, 'roles', [{ id: 4 }], { end: { position: 1 } });
  await settle();
  assert.deepEqual(ids(live), [4]);
  assert.equal(live.status, 'live');
});

test('snapshot_unavailable after the acknowledgment: asked again after a backoff, and the third in a row fails the LiveRows', async (t) => {
  const time = fakeTime(t);
  const { client, server, errors } = await connected(t);
  const plain = [];
  const sub = client.subscribe('logs', (c) => plain.push(c));
  await settle();
  server.last.answerAll();
  await settle();
  const live = new LiveRows(client, 'logs');
  t.after(() => live.close());
  await settle();
  const unavailable = (req) => server.last.frame({ type: 'error', id: req.id, code: 'snapshot_unavailable', schema: 'public',
    table: 'logs', message: "Table 'logs' has no primary key." });
  for (let attempt = 1; attempt <= 3; attempt++) {
    await time.tick(2_000, 50);
    const req = request(server);
    assert.equal(req.snapshot, true, `attempt ${attempt}`);
    server.last.answer(req); // the subscription stands; only the snapshot is refused
    server.last.frame({ type: 'snapshot', id: req.id, schema: 'public', table: 'logs', rows: [{ line: 'sent before the error' }] });
    unavailable(req);
    await settle();
    assert.equal(errors.at(-1).code, 'snapshot_unavailable');
    assert.equal(live.status, attempt < 3 ? 'loading' : 'failed');
  }
  assert.equal(live.error.code, 'snapshot_unavailable');
  assert.match(live.error.message, /no primary key/);
  await time.tick(5_000, 100);
  assert.equal(server.last.requests('subscribe').length, 0, 'not asked again after it failed');
  assert.equal(sub.state, 'live');
  server.last.op('logs', 'INSERT', { data: { line: 'x' } });
  assert.equal(plain.length, 1, 'a plain subscription of the table carries on');
});

test('snapshot_unavailable as the answer to a one-table request (an older server) fails the snapshot subscriptions only', async (t) => {
  const { client, server } = await connected(t);
  const live = new LiveRows(client, 'logs');
  t.after(() => live.close());
  await settle();
  server.last.answer(request(server), { code: 'snapshot_unavailable' });
  await settle();
  assert.equal(live.status, 'failed');
  assert.equal(live.error.code, 'snapshot_unavailable');
});

test('a plain subscription of a table keeps receiving its changes while another takes a snapshot of it', async (t) => {
  const { client, server } = await connected(t);
  const plain = [];
  client.subscribe('roles', (c) => plain.push(c.data.id));
  await settle();
  server.last.answerAll();
  const live = new LiveRows(client, 'roles');
  t.after(() => live.close());
  await settle();
  const req = request(server);
  assert.equal(req.snapshot, true, 'a table already served is asked again, for its snapshot');
  server.last.answer(req);
  server.last.op('roles', 'INSERT', { data: { id: 1 } });
  assert.deepEqual(plain, [1]);
  assert.deepEqual(live.rows, []);
  server.last.snapshot(req, 'roles', []);
  await settle();
  assert.deepEqual(ids(live), [1]);
});

test('after rate_limited, a snapshot request is sent again, and the frames of the ignored one are ignored', async (t) => {
  const time = fakeTime(t);
  const { client, server } = await connected(t);
  const live = new LiveRows(client, 'roles');
  t.after(() => live.close());
  await settle();
  const first = request(server);
  server.last.frame({ type: 'error', id: null, code: 'rate_limited', message: 'slow down' });
  await time.tick(3_000, 100);
  const again = server.last.requests('subscribe').filter((r) => r.id !== first.id);
  assert.equal(again.length, 1);
  assert.equal(again[0].snapshot, true);
  server.last.snapshot(first, 'roles', [{ id: 666 }]); // the first request's, had the server taken it after all
  server.last.answer(again[0]);
  server.last.snapshot(again[0], 'roles', [{ id: 1 }]);
  await settle();
  assert.deepEqual(ids(live), [1]);
  assert.equal(live.status, 'live');
});

test('hostile frames never throw out of the client, and it carries on', async (t) => {
  const { client, server, errors } = await connected(t);
  const live = new LiveRows(client, 'roles');
  t.after(() => live.close());
  await settle();
  const req = request(server);
  server.last.answer(req);
  const ws = server.last;
  const raw = (text) => ws.onmessage({ data: text });
  const deep = (n, leaf) => '['.repeat(n) + leaf + ']'.repeat(n);
  const hostile = [
    'not json', '', '{', 'null', '42', '"text"', '[]', '{"type":null}', '{"type":{"a":1}}', '{"type":"snapshot"}',
    '{"type":"snapshot_end"}', '{"type":"change"}',
    '{"type":"change","schema":"public","table":["a.b"],"operation":"INSERT","data":{"id":1}}',
    '{"type":"change","schema":{},"table":"roles","operation":"INSERT","data":{"id":1}}',
    '{"type":"change","schema":"public","table":"roles","operation":"INSERT","data":{"id":1},"position":1e400}',
    `{"type":"change","schema":"public","table":"roles","operation":"INSERT","data":${deep(10_000, '1')}}`,
    // Snapshot frames for requests and tables nobody asked about.
    '{"type":"snapshot","id":"r999","schema":"public","table":"roles","rows":[{"id":66}]}',
    `{"type":"snapshot","id":"${req.id}","schema":"public","table":"other","rows":[{"id":66}]}`,
    `{"type":"snapshot","id":{"x":1},"schema":"public","table":"roles","rows":[{"id":66}]}`,
    '{"type":"snapshot_end","id":"r999","schema":"public","table":"roles","count":1,"truncated":false,"key":["id"]}',
    `{"type":"snapshot_end","id":${deep(10_000, '1')},"schema":"public","table":"roles","count":1,"truncated":false,"key":["id"]}`,
    '{"type":"resync","reason":{"deep":' + deep(10_000, '0') + '}}',
    `{"type":"subscribed","id":${deep(5_000, '"r1"')},"tables":"roles"}`,
    '{"type":"error","id":1e400,"code":[],"message":{}}',
    '{"type":"unsubscribed","id":null,"reason":{},"tables":"roles"}',
    '{"type":"welcome","protocol":1e400,"lossless":"yes"}',
  ];
  for (const text of hostile) assert.doesNotThrow(() => raw(text), text.slice(0, 80));
  await settle();
  // The resync frame (whatever its reason) asked for a fresh snapshot: the first request's frames are now ignored.
  const again = request(server);
  assert.equal(again.snapshot, true);
  ws.answer(again);
  raw(`{"type":"snapshot","id":"${req.id}","schema":"public","table":"roles","rows":[{"id":666}]}`);

  // The real snapshot still works: rows with huge numbers and deep values are kept as they are.
  raw(`{"type":"snapshot","id":"${again.id}","schema":"public","table":"roles","rows":[{"id":1,"huge":1e400,"deep":${deep(10_000, '"x"')}}]}`);
  ws.snapshot(again, 'roles', [{ id: 2 }], { end: { count: 2 } });
  await settle();
  assert.equal(live.status, 'live');
  assert.deepEqual(ids(live), [1, 2]);
  assert.equal(live.rows[0].huge, Infinity);
  // A key that cannot be written as JSON (too deep for JSON.stringify).
  raw(`{"type":"change","schema":"public","table":"roles","operation":"INSERT","xid":1,"seq":1,"data":{"id":${deep(10_000, '1')}}}`);
  ws.op('roles', 'INSERT', { data: 'not a row' });
  ws.op('roles', 'UPDATE', { data: [1, 2], old: 5 });
  ws.op('roles', 'DELETE', { old: null });
  ws.op('roles', 'MERGE', { data: { id: 3 } });
  assert.deepEqual(ids(live), [1, 2], 'what cannot be applied is left out');
  assert.equal(live.error?.code, 'missing_key');
  ws.op('roles', 'INSERT', { data: { id: 3 } });
  assert.deepEqual(ids(live), [1, 2, 3]);
  assert.ok(errors.every((e) => typeof e.code === 'string' && typeof e.message === 'string'), errors.map((e) => e.code).join());
  assert.ok(errors.some((e) => e.code === 'invalid_frame'));
});

test('a snapshot_end without its key, or with rows that are not rows, fails the subscription (never wrong rows)', async (t) => {
  const time = fakeTime(t);
  const { client, server, errors } = await connected(t);
  const cases = [
    { end: { key: undefined } }, { end: { key: [] } }, { end: { key: [1] } }, { end: { key: 'id' } },
    { end: { count: 'two' } }, { end: { truncated: 'no' } }, { rows: [1, 2] }, { rows: 'rows' }, { rows: [[{ id: 1 }]] },
  ];
  for (const [index, { end = {}, rows = [{ id: 1 }] }] of cases.entries()) {
    const table = `t${index}`;
    const live = new LiveRows(client, table);
    t.after(() => live.close());
    await time.tick(200, 50); // the client paces its requests
    const req = request(server);
    server.last.answer(req);
    server.last.frame({ type: 'snapshot', id: req.id, schema: 'public', table, rows });
    assert.doesNotThrow(() => server.last.frame({ type: 'snapshot_end', id: req.id, schema: 'public', table, count: 1, truncated: false, key: ['id'], ...end }));
    await settle();
    assert.equal(live.status, 'failed', JSON.stringify(cases[index]));
    assert.equal(live.error.code, 'invalid_frame');
    assert.deepEqual(live.rows, []);
  }
  assert.ok(errors.length >= cases.length);
});

test('a count that does not match the rows is reported; more rows than the limit fails the subscription', async (t) => {
  const { client, server, errors } = await connected(t);
  const live = new LiveRows(client, 'roles', { limit: 2 });
  t.after(() => live.close());
  await settle();
  let req = request(server);
  assert.equal(req.limit, 2);
  server.last.answer(req);
  server.last.snapshot(req, 'roles', [{ id: 1 }, { id: 2 }], { truncated: true, end: { count: 5 } });
  await settle();
  assert.deepEqual(ids(live), [1, 2]);
  assert.equal(live.truncated, true);
  assert.equal(errors.at(-1).code, 'invalid_frame');

  const other = new LiveRows(client, 'profiles', { limit: 1 });
  t.after(() => other.close());
  await settle();
  req = request(server);
  server.last.answer(req);
  server.last.snapshot(req, 'profiles', [{ id: 1 }, { id: 2 }], { perFrame: 1 });
  await settle();
  assert.equal(other.status, 'failed');
});

test('subscribe checks limit and onSnapshot; LiveRows checks its arguments; close() unsubscribes', async (t) => {
  const { client, server } = await connected(t);
  assert.throws(() => client.subscribe('a', () => {}, { snapshot: true, limit: 0 }), TypeError);
  assert.throws(() => client.subscribe('a', () => {}, { snapshot: true, limit: 1.5 }), TypeError);
  assert.throws(() => client.subscribe('a', () => {}, { snapshot: true, onSnapshot: 'x' }), TypeError);
  assert.throws(() => new LiveRows(null, 'a'), TypeError);
  assert.throws(() => new LiveRows(client, ''), TypeError);
  const live = new LiveRows(client, 'roles');
  await settle();
  server.last.answerAll();
  server.last.snapshot({ id: server.last.sent.at(-1).id }, 'roles', [{ id: 1 }]);
  await settle();
  live.close();
  assert.equal(live.status, 'closed');
  await settle();
  assert.deepEqual(server.last.requests('unsubscribe').map((r) => r.tables), [['roles']]);
  server.last.op('roles', 'INSERT', { data: { id: 2 } });
  assert.deepEqual(ids(live), [1], 'closed rows stay as they were');
});
