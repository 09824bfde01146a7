// The package in a real browser: packed with `npm pack`, installed into a fresh project outside the repository,
// bundled with its React hooks by esbuild into a page, served by the sample host and driven in headless Chromium.
// Rows inserted with psql must appear on the page. Skipped when no Chromium is found (PGNOTIFY_CHROMIUM, or
// /usr/bin/chromium).

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

    // React and react-dom come from this package's devDependencies (nodePaths); the client from the fresh install.
    const webroot = path.join(work, 'wwwroot');
    await mkdir(webroot);
    const esbuild = await import('esbuild');
    await esbuild.build({
      entryPoints: [path.join(app, 'page.js')],
      bundle: true,
      format: 'esm',
      minify: true,
      outfile: path.join(webroot, 'pgnotify-browser-test.js'),
      nodePaths: [path.join(packageDir, 'node_modules')],
      define: { 'process.env.NODE_ENV': '"production"' },
      logLevel: 'error',
    });
    // Names of their own: the sample's wwwroot (static web assets) is served too.
    await writeFile(path.join(webroot, 'pgnotify-browser-test.html'),
      '<!doctype html><meta charset="utf-8"><title>PgNotify</title><div id="root"></div><script type="module" src="/pgnotify-browser-test.js"></script>');

    host = await startHost({ ASPNETCORE_WEBROOT: webroot });
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
});
