// The sample host's pages in Debian's Chromium, against real PostgreSQL: rows typed in psql show up live, the page
// reconnects by itself when the host restarts, the page's own form works without ever receiving a password hash, and
// the React page keeps one socket across re-renders.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  LIVE_TIMEOUT, createDatabase, freePort, launchBrowser, openPage, startHost, waitFor, waitForState,
} from './harness.js';

let db;
let host;
let browser;
const closers = [];

before(async () => {
  db = await createDatabase();
  // A table of the app's own, exposed by configuration alone (no code in the sample knows it).
  await db.psql('CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL, amount numeric)');
  host = await startHost({
    port: await freePort(),
    connectionString: db.connectionString,
    env: { PgNotify__Tables__3: 'orders' },
  });
  browser = await launchBrowser();
});

after(async () => {
  for (const close of closers.reverse()) await close().catch(() => {});
  await browser?.close();
  await host?.stop();
  await db?.drop();
});

/** A page of the host, closed after the file's tests. */
async function open(url) {
  const opened = await openPage(browser);
  closers.push(opened.close);
  await opened.page.goto(url);
  return opened;
}

test('rows inserted, updated and deleted in psql show up in the page within a second', async () => {
  const { page, seen } = await open(`${host.url}/`);
  await waitForState(page, 'connected');
  await page.waitForSelector('#profiles-table .empty:text("No rows yet.")');

  const id = await db.psql(
    "INSERT INTO profiles (name, email, password_hash) VALUES ('Ada', 'ada@example.com', 'hash-from-psql') RETURNING id");
  const row = await page.waitForSelector(`#profiles-row-${id}`, { timeout: LIVE_TIMEOUT });
  assert.match(await row.textContent(), /Ada.*ada@example\.com/);

  await db.psql(`UPDATE profiles SET name = 'Ada Lovelace' WHERE id = ${id}`);
  await page.waitForSelector(`#profiles-row-${id}:has-text("Ada Lovelace")`, { timeout: LIVE_TIMEOUT });

  await db.psql(`DELETE FROM profiles WHERE id = ${id}`);
  await page.waitForSelector(`#profiles-row-${id}`, { state: 'detached', timeout: LIVE_TIMEOUT });

  assert.equal(seen.sockets.length, 1);
  assert.ok(!seen.received.some((frame) => frame.includes('password_hash') || frame.includes('hash-from-psql')),
    'the excluded column reached the browser');
  assert.deepEqual(seen.errors, []);
});

test('when the host restarts, the page shows reconnecting, then connected, takes a fresh snapshot and shows later changes', async () => {
  const { page, seen } = await open(`${host.url}/`);
  await waitForState(page, 'connected');
  await page.waitForSelector('#roles-table .empty');

  await host.stop();
  await waitForState(page, 'reconnecting', 10_000);

  // Committed while nobody listens: no change frame will ever carry it, the snapshot after the reconnect must.
  const missed = await db.psql("INSERT INTO roles (name) VALUES ('added-while-down') RETURNING id");

  host = await startHost({ port: host.port, connectionString: db.connectionString, env: host.env });
  await waitForState(page, 'connected', 60_000);
  await page.waitForSelector(`#roles-row-${missed}:has-text("added-while-down")`, { timeout: 10_000 });

  const later = await db.psql("INSERT INTO roles (name) VALUES ('added-after-restart') RETURNING id");
  await page.waitForSelector(`#roles-row-${later}:has-text("added-after-restart")`, { timeout: LIVE_TIMEOUT });
  assert.ok(seen.sockets.length >= 2, `expected a new socket after the restart, saw ${seen.sockets.length}`);
});

test("after a resync frame (the host's listener lost PostgreSQL) the page takes a fresh snapshot of its tables", async () => {
  const { page, seen } = await open(`${host.url}/`);
  await waitForState(page, 'connected');
  await page.waitForSelector('#roles-table :is(.empty, table)');
  const loads = () => seen.sent.map((frame) => JSON.parse(frame))
    .filter((frame) => frame.type === 'subscribe' && frame.snapshot === true && frame.tables.includes('roles')).length;
  assert.equal(loads(), 1);

  // Cut every connection to this database but psql's own, the host's listener among them, and write at once: the
  // listener may or may not be back in time to hear of the insert, and the page must show it either way.
  const id = await db.psql(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid();
    INSERT INTO roles (name) VALUES ('written during the gap') RETURNING id`).then((out) => out.split('\n').pop());

  await waitFor('a resync frame', () => seen.received.some((frame) => JSON.parse(frame).type === 'resync'));
  await waitFor('the roles reloaded', () => loads() >= 2);
  await page.waitForSelector(`#roles-row-${id}:has-text("written during the gap")`, { timeout: 5_000 });
  await waitForState(page, 'connected');
  assert.equal(seen.sockets.length, 1, 'a resync keeps the socket');
});

test("a row added, edited and deleted through the page's own form shows up, and no password hash reaches the page", async () => {
  const { page, seen } = await open(`${host.url}/`);
  await waitForState(page, 'connected');
  await page.waitForSelector('#profiles-table :is(.empty, table)');

  const password = `pw-${Date.now()}`;
  await page.fill('#profile-name', 'Grace Hopper');
  await page.fill('#profile-email', 'grace@example.com');
  await page.fill('#profile-user-id', '42');
  await page.fill('#profile-password', password);
  await page.click('#profile-submit');

  const row = await page.waitForSelector('#profiles-table tr:has-text("Grace Hopper")', { timeout: 5_000 });
  const id = (await row.getAttribute('id')).replace('profiles-row-', '');
  assert.match(await row.textContent(), /grace@example\.com/);

  const stored = await db.psql(`SELECT password_hash FROM profiles WHERE id = ${id}`);
  assert.match(stored, /^pbkdf2-sha256\$/, 'the form stored a password hash');

  await row.$eval('button.edit', (button) => button.click());
  await page.fill('#profile-name', 'Grace Brewster Hopper');
  await page.click('#profile-submit');
  await page.waitForSelector(`#profiles-row-${id}:has-text("Grace Brewster Hopper")`, { timeout: 5_000 });

  await page.click(`#profiles-row-${id} button.delete`);
  await page.waitForSelector(`#profiles-row-${id}`, { state: 'detached', timeout: 5_000 });

  const everything = [...seen.received, ...seen.responses, await page.content()];
  for (const text of everything) {
    assert.ok(!text.includes('password_hash'), `password_hash reached the page: ${text.slice(0, 200)}`);
    assert.ok(!text.includes(stored) && !text.includes(password), 'the password or its hash reached the page');
  }
  assert.ok(seen.received.some((frame) => frame.includes('"operation":"INSERT"') && frame.includes('Grace Hopper')));
  assert.deepEqual(seen.errors, []);
});

test('a table added in configuration only (PgNotify__Tables__3=orders) is shown and live', async () => {
  const { page } = await open(`${host.url}/`);
  await waitForState(page, 'connected');
  await page.waitForSelector('#orders-table .empty:text("No rows yet.")');

  const id = await db.psql("INSERT INTO orders (item, amount) VALUES ('teapot', 12.50) RETURNING id");
  const row = await page.waitForSelector(`#orders-row-${id}`, { timeout: LIVE_TIMEOUT });
  assert.match(await row.textContent(), /teapot.*12\.5/);
});

test('the React page re-renders with new props and callbacks on the same socket, and still receives changes', async () => {
  const { page, seen } = await open(`${host.url}/react.html`);
  await waitForState(page, 'connected');
  await page.waitForSelector('h2:has-text("registrations (render 0)")');
  await page.waitForSelector('#registrations-table, section:has(h2:has-text("registrations")) .empty:text("No rows yet.")');

  const first = await db.psql("INSERT INTO registrations (profile_id, event) VALUES (1, 'before re-render') RETURNING id");
  await page.waitForSelector(`#registrations-row-${first}:has-text("before re-render")`, { timeout: LIVE_TIMEOUT });

  for (let i = 1; i <= 3; i++) {
    await page.click('#rerender');
    await page.waitForSelector(`#render-count:text("${i}")`);
  }
  await page.waitForSelector('h2:has-text("registrations (render 3)")');

  const second = await db.psql("INSERT INTO registrations (profile_id, event) VALUES (1, 'after re-render') RETURNING id");
  await page.waitForSelector(`#registrations-row-${second}:has-text("after re-render")`, { timeout: LIVE_TIMEOUT });
  await page.waitForSelector(`#registrations-row-${first}`); // still there: nothing was reset

  assert.equal(seen.sockets.length, 1, `re-rendering opened sockets: ${seen.sockets.join(', ')}`);
  // Each table subscribed once (in one request or several, as the client likes), never unsubscribed.
  const sent = seen.sent.map((frame) => JSON.parse(frame));
  const subscribed = sent.filter((frame) => frame.type === 'subscribe').flatMap((frame) => frame.tables);
  assert.deepEqual(subscribed.sort(), ['profiles', 'registrations', 'roles'], `frames sent: ${seen.sent.join(' ')}`);
  assert.ok(!sent.some((frame) => frame.type === 'unsubscribe'), `re-rendering unsubscribed: ${seen.sent.join(' ')}`);
  assert.deepEqual(seen.errors, []);
});

test('the React page with useLiveRows, opened during concurrent psql writes, ends equal to the table', async () => {
  await db.psql("INSERT INTO registrations (profile_id, event) SELECT i, 'seed ' || i FROM generate_series(1, 100) i");
  // Inserts, updates and deletes, each its own transaction, while the page opens and takes its snapshot.
  const writing = db.psql(`DO $$
    DECLARE r float;
    BEGIN
      FOR i IN 1..400 LOOP
        r := random();
        IF r < 0.45 THEN
          INSERT INTO registrations (profile_id, event) VALUES (i, 'written ' || i);
        ELSIF r < 0.8 THEN
          UPDATE registrations SET event = 'updated ' || i, profile_id = i
            WHERE id = (SELECT id FROM registrations ORDER BY random() LIMIT 1);
        ELSE
          DELETE FROM registrations WHERE id = (SELECT id FROM registrations ORDER BY random() LIMIT 1);
        END IF;
        COMMIT;
        PERFORM pg_sleep(0.003);
      END LOOP;
    END $$`);
  const { page, seen } = await open(`${host.url}/react.html`);
  await waitForState(page, 'connected');
  await page.waitForSelector('#registrations-section[data-status="live"]', { timeout: 15_000 });
  await writing;
  // Changes reach a socket in commit order: once the page shows this row, it has applied every write before it.
  const last = await db.psql("INSERT INTO registrations (profile_id, event) VALUES (0, 'after the writes') RETURNING id");
  await page.waitForSelector(`#registrations-row-${last}`, { timeout: 10_000 });

  const shown = await page.$$eval('#registrations-table tbody tr',
    (rows) => rows.map((row) => [...row.cells].slice(0, 4).map((cell) => cell.textContent)));
  const table = JSON.parse(await db.psql('SELECT json_agg(to_jsonb(r) ORDER BY id) FROM registrations r'));
  const text = (value) => (value === null || value === undefined ? '' : String(value));
  const expected = table.map((row) => [row.id, row.profile_id, row.event, row.created_at].map(text));
  assert.ok(expected.length > 0);
  assert.deepEqual(shown, expected);
  assert.equal(seen.sockets.length, 1, 'one socket');
  const snapshots = seen.sent.map((frame) => JSON.parse(frame)).filter((frame) => frame.snapshot === true);
  const control = seen.received.map((frame) => JSON.parse(frame)).filter((frame) => frame.type !== 'change' && frame.type !== 'snapshot');
  const story = `frames sent: ${seen.sent.join(' ')}; frames received (changes and snapshot rows left out): `
    + `${control.map((frame) => JSON.stringify(frame)).join(' ')}; the host's warnings: `
    + `${host.log.split('\n').flatMap((line, i, lines) => (/^(warn|fail|crit)/.test(line) ? [line, lines[i + 1]] : [])).slice(-40).join(' | ')}`;
  // One snapshot per table, unless the server asked for another: a resync, or a snapshot it could not give (the page
  // must then take a fresh one, and still end equal to the table, above). Any other repeat is a client bug.
  const askedAgain = control.filter((frame) => frame.type === 'resync'
    || (frame.type === 'error' && ['snapshot_unavailable', 'unavailable', 'rate_limited'].includes(frame.code)));
  const snapshotted = snapshots.flatMap((frame) => frame.tables).sort();
  if (askedAgain.length === 0) {
    assert.deepEqual(snapshotted, ['profiles', 'registrations', 'roles'], story);
  } else {
    assert.deepEqual([...new Set(snapshotted)], ['profiles', 'registrations', 'roles'], story);
    console.log(`# the server asked for fresh snapshots (${askedAgain.map((frame) => JSON.stringify(frame)).join(' ')}): ${story}`);
  }
  assert.deepEqual(seen.errors, [], story);
});
