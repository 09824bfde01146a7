// Opens the Blazor WebAssembly page in Debian's headless Chromium (playwright-core from tests/browser), waits until its
// LiveRows are live with the row that existed before, inserts and updates rows with psql, and checks the page shows
// them. Usage: node page.mjs <page url> <repository root> <connection: host port user database>. Exits non-zero, saying
// why, on failure.
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';

const [url, root, host, port, user, database, table] = process.argv.slice(2);
const run = promisify(execFile);
const psql = (sql) => run(process.env.PGNOTIFY_PSQL ?? 'psql', ['-h', host, '-p', port, '-U', user, '-d', database, '-v', 'ON_ERROR_STOP=1', '-Atqc', sql]);
const { chromium } = createRequire(path.join(root, 'tests/browser/package.json'))('playwright-core');

const browser = await chromium.launch({
  executablePath: process.env.PGNOTIFY_CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-dev-shm-usage'],
});
const problems = [];
const rows = async (page) => page.$$eval('#rows li', (items) => items.map((i) => i.textContent));
try {
  const page = await browser.newPage();
  page.on('pageerror', (error) => problems.push(`page error: ${error}`));
  // Failed loads are judged by their responses (a missing favicon is no problem).
  page.on('console', (message) => message.type() === 'error' && !message.text().startsWith('Failed to load resource')
    && problems.push(`console: ${message.text()}`));
  page.on('response', (response) => response.status() >= 400 && !response.url().endsWith('/favicon.ico')
    && problems.push(`${response.status()} ${response.url()}`));
  const response = await page.goto(`${url}?table=${table}`, { waitUntil: 'load' });
  if (response?.status() !== 200) throw new Error(`${url} answered ${response?.status()}`);

  await page.waitForFunction(() => document.getElementById('status')?.textContent === 'Live'
    && document.querySelectorAll('#rows li').length === 1, null, { timeout: 60_000 })
    .catch(async (error) => {
      const status = await page.$eval('#status', (e) => e.textContent).catch(() => '(no #status)');
      throw new Error(`the page never went Live with the existing row: ${error.message}; status ${status}; ${problems.join('; ')}`);
    });

  await psql(`INSERT INTO "${table}" VALUES (2, 'inserted with psql'), (3, 'to be renamed')`);
  await psql(`UPDATE "${table}" SET name = 'renamed with psql' WHERE id = 3`);
  await psql(`DELETE FROM "${table}" WHERE id = 1`);
  const expected = JSON.stringify(['inserted with psql', 'renamed with psql']);
  await page.waitForFunction((want) => JSON.stringify([...document.querySelectorAll('#rows li')].map((li) => li.textContent)) === want,
    expected, { timeout: 30_000 })
    .catch(async (error) => {
      throw new Error(`the rows did not appear: ${error.message}; the page shows ${JSON.stringify(await rows(page))}; ${problems.join('; ')}`);
    });
  if (problems.length > 0) throw new Error(problems.join('; '));
  console.error(`page.mjs: the Blazor WebAssembly page showed ${JSON.stringify(await rows(page))}`);
} finally {
  await browser.close();
}
