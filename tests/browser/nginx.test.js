// The sample behind Debian's nginx, configured from samples/nginx/pgnotify.conf: the page, its API and its WebSocket
// all go through the proxy, and changes arrive through it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  LIVE_TIMEOUT, createDatabase, freePort, launchBrowser, openPage, startHost, startNginx, waitFor, waitForState,
} from './harness.js';

let db;
let host;
let nginx;
let browser;

before(async () => {
  db = await createDatabase();
  host = await startHost({ port: await freePort(), connectionString: db.connectionString });
  nginx = await startNginx({ port: await freePort(), upstreamPort: host.port });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await nginx?.stop();
  await host?.stop();
  await db?.drop();
});

test('the page loaded through nginx receives changes through it', async () => {
  const { page, seen, close } = await openPage(browser);
  try {
    await page.goto(`${nginx.url}/`);
    await waitForState(page, 'connected');
    await page.waitForSelector('#profiles-table .empty:text("No rows yet.")');

    const id = await db.psql("INSERT INTO profiles (name) VALUES ('via nginx') RETURNING id");
    await page.waitForSelector(`#profiles-row-${id}:has-text("via nginx")`, { timeout: LIVE_TIMEOUT });
    await db.psql(`UPDATE profiles SET name = 'still via nginx' WHERE id = ${id}`);
    await page.waitForSelector(`#profiles-row-${id}:has-text("still via nginx")`, { timeout: LIVE_TIMEOUT });

    assert.deepEqual(seen.sockets, [`${nginx.url.replace('http:', 'ws:')}/ws/changes/`]);
    assert.deepEqual(seen.errors, []);
  } finally {
    await close();
  }

  // nginx logs an upgraded request when its connection ends: the socket went through it, answered 101.
  await waitFor('the WebSocket in nginx\'s access log', async () => /"GET \/ws\/changes\/ HTTP\/1\.1" 101 /.test(await nginx.accessLog()));
});
