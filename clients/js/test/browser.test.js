// The package in a real browser: packed with `npm pack`, installed into a fresh project outside the repository,
// bundled with its React hooks by esbuild into a page, served by the sample host and driven in headless Chromium.
// Rows inserted with psql must appear on the page, and a page that keeps its positions in sessionStorage sees every
// row exactly once across reloads made while rows are written (lossless delivery). Skipped when no Chromium is found
// (PGNOTIFY_CHROMIUM, or /usr/bin/chromium).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { marker, startHost } from './harness.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const packageDir = path.resolve(here, '..');
const chromium = process.env.PGNOTIFY_CHROMIUM ?? '/usr/bin/chromium';

const page = `
import { createElement as h, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { PgNotifyProvider, usePgNotify, useTableChanges } from '@pgnotify/client/react';

function Roles() {
  const { state } = usePgNotify();
  const [names, setNames] = useState([]);
  const { ready } = useTableChanges('roles', (change) => setNames((current) => [...current, change.data.name]),
    { operations: ['INSERT'] });
  return h('main', null,
    h('p', { id: 'status', 'data-ready': String(ready) }, state),
    h('ul', null, names.map((name) => h('li', { key: name }, name))));
}

createRoot(document.getElementById('root')).render(h(PgNotifyProvider, { url: '/ws/changes/' }, h(Roles)));
`;

// Keeps what it saw in sessionStorage too, in the same task as the client saves the position: a reload cannot fall
// between the two.
const reloadingPage = `
import { PgNotifyClient } from '@pgnotify/client';

const prefix = new URLSearchParams(location.search).get('prefix');
const seen = JSON.parse(sessionStorage.getItem('seen') ?? '[]');
const client = new PgNotifyClient('/ws/changes/', { positionStore: sessionStorage });
const roles = client.subscribe('roles', (change) => {
  if (!change.data.name.startsWith(prefix)) return;
  seen.push(change.data.id);
  sessionStorage.setItem('seen', JSON.stringify(seen));
}, { operations: ['INSERT'] });
client.connect();
roles.ready.then(() => { document.title = 'ready'; });
`;

describe('the packed client and React hooks, bundled, in headless Chromium', { timeout: 180_000, skip: !existsSync(chromium) && `no Chromium at ${chromium}` }, () => {
  let work;
  let host;
  let browser;
  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'pgnotify-browser-'));
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: packageDir });
    const [packed] = JSON.parse(stdout);
    const app = path.join(work, 'app');
    await mkdir(app);
    await writeFile(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    await run('npm', ['install', '--offline', '--no-audit', '--no-fund', path.join(work, packed.filename)], { cwd: app });
    await writeFile(path.join(app, 'page.js'), page);
    await writeFile(path.join(app, 'reloading.js'), reloadingPage);

    // React and react-dom come from this package's devDependencies (nodePaths); the client from the fresh install.
    const webroot = path.join(work, 'wwwroot');
    await mkdir(webroot);
    const esbuild = await import('esbuild');
    // Names of their own: the sample's wwwroot (static web assets) is served too.
    for (const [entry, name] of [['page.js', 'pgnotify-browser-test'], ['reloading.js', 'pgnotify-reload-test']]) {
      await esbuild.build({
        entryPoints: [path.join(app, entry)],
        bundle: true,
        format: 'esm',
        minify: true,
        outfile: path.join(webroot, `${name}.js`),
        nodePaths: [path.join(packageDir, 'node_modules')],
        define: { 'process.env.NODE_ENV': '"production"' },
        logLevel: 'error',
      });
      await writeFile(path.join(webroot, `${name}.html`),
        `<!doctype html><meta charset="utf-8"><title>PgNotify</title><div id="root"></div><script type="module" src="/${name}.js"></script>`);
    }

    host = await startHost({ ASPNETCORE_WEBROOT: webroot, PgNotify__LosslessDelivery: 'true' });
    const puppeteer = await import('puppeteer-core');
    browser = await puppeteer.default.launch({
      executablePath: chromium,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
  });
  after(async () => {
    await browser?.close();
    await host?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('rows inserted with psql appear on the page', async () => {
    const tab = await browser.newPage();
    const failures = [];
    tab.on('pageerror', (error) => failures.push(String(error)));
    await tab.goto(`${host.httpUrl}pgnotify-browser-test.html`, { waitUntil: 'load' });
    await tab.waitForSelector('#status[data-ready="true"]', { timeout: 30_000 });
    assert.equal(await tab.$eval('#status', (e) => e.textContent), 'open');

    const name = marker('chromium');
    await host.sql(`INSERT INTO roles (name) VALUES ('${name}_1'), ('${name}_2')`);
    await tab.waitForFunction((n) => document.querySelectorAll('li').length >= 2 && document.body.textContent.includes(`${n}_2`),
      { timeout: 15_000 }, name);
    assert.deepEqual(await tab.$$eval('li', (items) => items.map((i) => i.textContent)), [`${name}_1`, `${name}_2`]);
    assert.deepEqual(failures, []);
  });

  test('a page keeping positions in sessionStorage sees every row exactly once across reloads during writes', async () => {
    const tab = await browser.newPage();
    const name = marker('reload');
    await tab.goto(`${host.httpUrl}pgnotify-reload-test.html?prefix=${name}`, { waitUntil: 'load' });
    await tab.waitForFunction(() => document.title === 'ready', { timeout: 30_000 });

    const rows = 600;
    const writer = host.sql(`DO $$ BEGIN FOR i IN 1..${rows} LOOP
        INSERT INTO roles (name) VALUES ('${name}_' || i);
        COMMIT;
        PERFORM pg_sleep(0.01);
      END LOOP; END $$`);
    for (let i = 0; i < 4; i++) {
      await new Promise((resolve) => setTimeout(resolve, 700));
      await tab.reload({ waitUntil: 'load' });
      await tab.waitForFunction(() => document.title === 'ready', { timeout: 30_000 });
    }
    await writer;

    const expected = (await host.sql(`SELECT id FROM roles WHERE name LIKE '${name}%' ORDER BY id`)).split('\n').map(Number);
    assert.equal(expected.length, rows);
    const seen = () => tab.evaluate(() => JSON.parse(sessionStorage.getItem('seen') ?? '[]'));
    const deadline = Date.now() + 30_000;
    while ((await seen()).length < rows && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    const got = await seen();
    assert.equal(got.length - new Set(got).size, 0, 'no row twice');
    assert.deepEqual([...got].sort((a, b) => a - b), expected, 'every row');
  });
});
