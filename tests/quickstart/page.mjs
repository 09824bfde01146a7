// Drives the quickstart's page in headless Chromium (puppeteer-core from clients/js): opens it, waits until the client
// is open and the page has loaded /api/profiles, inserts rows with psql, and checks that they appear on the page.
// Usage: node page.mjs <app url> <root of the repository> <database>. Exits non-zero, saying why, on failure.
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';

const [url, root, database] = process.argv.slice(2);
const run = promisify(execFile);
const psql = (sql) => run('bash', [path.join(root, 'scripts/pg.sh'), 'psql', '-d', database, '-v', 'ON_ERROR_STOP=1', '-Atqc', sql]);
const require = createRequire(path.join(root, 'clients/js/package.json'));
const puppeteer = require('puppeteer-core');

const browser = await puppeteer.launch({
  executablePath: process.env.PGNOTIFY_CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error}`));
  // Failed loads are judged by their responses below (a missing favicon is no problem).
  page.on('console', (message) => message.type() === 'error' && !message.text().startsWith('Failed to load resource')
    && problems.push(`console: ${message.text()}`));
  page.on('response', (response) => response.status() >= 400 && !response.url().endsWith('/favicon.ico') && problems.push(`${response.status()} ${response.url()}`));

  const response = await page.goto(url, { waitUntil: 'load' });
  if (response?.status() !== 200) throw new Error(`${url} answered ${response?.status()}`);
  // A row that exists before the page opens comes from /api/profiles.
  await page.waitForFunction(() => document.getElementById('state')?.textContent === 'open'
    && document.querySelectorAll('#profiles li').length === 1, { timeout: 30_000 })
    .catch((error) => { throw new Error(`the page never showed the existing row with state open: ${error.message}; ${problems.join('; ')}`); });

  const stamp = `qs_${Date.now()}`;
  await psql(`INSERT INTO profiles (name, password_hash) VALUES ('${stamp}_1', 'secret'), ('${stamp}_2', 'secret')`);
  await psql(`UPDATE profiles SET name = '${stamp}_renamed' WHERE name = '${stamp}_1'`);
  await page.waitForFunction((s) => {
    const names = [...document.querySelectorAll('#profiles li')].map((li) => li.textContent);
    return names.includes(`${s}_renamed`) && names.includes(`${s}_2`) && !names.includes(`${s}_1`);
  }, { timeout: 15_000 }, stamp).catch(async (error) => {
    const shown = await page.$$eval('#profiles li', (items) => items.map((i) => i.textContent));
    throw new Error(`the rows did not appear: ${error.message}; the page shows ${JSON.stringify(shown)}; ${problems.join('; ')}`);
  });
  const shown = await page.$$eval('#profiles li', (items) => items.map((i) => i.textContent));
  if (shown.length !== 3) throw new Error(`expected 3 rows on the page, got ${JSON.stringify(shown)}`);
  if (problems.length > 0) throw new Error(problems.join('; '));
  console.error(`page.mjs: the quickstart page showed ${JSON.stringify(shown)}`);
} finally {
  await browser.close();
}
