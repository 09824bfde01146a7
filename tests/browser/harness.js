// What the browser tests share: a fresh database on the throwaway PostgreSQL (scripts/pg.sh), the sample host as a
// child process, Debian's Chromium driven by playwright-core, and nginx. Loopback only.
import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = promisify(execFile);

/** How long a committed change may take to show in the page. */
export const LIVE_TIMEOUT = Number(process.env.PGNOTIFY_BROWSER_LIVE_TIMEOUT ?? 1000);

/**
 * A port nothing listens on right now, on 127.0.0.1, below Linux's ephemeral range (32768 and up): hosts restart on
 * their port, and while one is down no outgoing connection may take the port as its local one.
 */
export async function freePort() {
  for (let attempt = 0; ; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const server = createServer();
    try {
      server.listen(port, '127.0.0.1');
      await once(server, 'listening');
      server.close();
      await once(server, 'close');
      return port;
    } catch (error) {
      if (attempt >= 100) throw error;
    }
  }
}

/** Waits until `condition()` is truthy (polled), or fails after `timeout` ms saying what it waited for. */
export async function waitFor(what, condition, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A database of its own for one test file, on the cluster of scripts/pg.sh, dropped by `drop()`. */
export async function createDatabase() {
  const name = `pgnotify_browser_${process.pid}_${Date.now().toString(36)}`;
  await psqlIn('postgres', `CREATE DATABASE ${name}`);
  const { stdout } = await run('bash', [path.join(ROOT, 'scripts/pg.sh'), 'url']);
  return {
    name,
    connectionString: stdout.trim().replace(/Database=[^;]*/, `Database=${name}`),
    /** Runs SQL in this database; returns psql's unaligned, tuples-only output (e.g. a RETURNING id). */
    psql: (sql) => psqlIn(name, sql),
    drop: () => psqlIn('postgres', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

async function psqlIn(database, sql) {
  const { stdout } = await run('bash',
    [path.join(ROOT, 'scripts/pg.sh'), 'psql', '-d', database, '-v', 'ON_ERROR_STOP=1', '-qAtX', '-c', sql]);
  return stdout.trim();
}

/**
 * The sample host (built beforehand by scripts/test.d/browser.sh) on `port`, with its output collected in `log`.
 * `stop()` ends it with SIGTERM, as a service manager would, and waits for it to exit.
 */
export async function startHost({ port, connectionString, env = {} }) {
  const dll = path.join(ROOT, 'samples/PgNotify.Sample/bin/Release/net10.0/PgNotify.Sample.dll');
  const child = spawn('dotnet', [dll, '--urls', `http://127.0.0.1:${port}`], {
    cwd: ROOT,
    env: {
      ...process.env,
      ConnectionStrings__Postgres: connectionString,
      DOTNET_NOLOGO: '1',
      Logging__LogLevel__Default: 'Warning',
      Logging__LogLevel__PgNotify: 'Information',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const host = { child, env, log: '', port, url: `http://127.0.0.1:${port}` };
  child.stdout.on('data', (chunk) => { host.log += chunk; });
  child.stderr.on('data', (chunk) => { host.log += chunk; });
  const exited = once(child, 'exit');
  host.stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };

  const started = await Promise.race([
    waitFor(`the host on port ${port}`, () => host.log.includes(`PgNotify sample: open ${host.url}/`), 60_000),
    exited.then(() => false),
  ]);
  if (!started) throw new Error(`the sample host exited during startup:\n${host.log}`);
  return host;
}

/** Debian's Chromium, headless, with a fresh profile (playwright-core makes a temporary user data dir per launch). */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.PGNOTIFY_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

/**
 * A page that records what it does: every WebSocket it opens, every frame received and sent, its requests, the bodies
 * of the API's responses, and the console's errors (all checked by tests, e.g. that a password hash never arrives).
 */
export async function openPage(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const seen = { sockets: [], received: [], sent: [], requests: [], responses: [], errors: [] };
  page.on('websocket', (ws) => {
    seen.sockets.push(ws.url());
    ws.on('framereceived', ({ payload }) => seen.received.push(String(payload)));
    ws.on('framesent', ({ payload }) => seen.sent.push(String(payload)));
  });
  page.on('request', (request) => seen.requests.push(`${request.method()} ${new URL(request.url()).pathname}`));
  page.on('response', async (response) => {
    if (!new URL(response.url()).pathname.startsWith('/api/')) return;
    try {
      seen.responses.push(await response.text());
    } catch {
      // the page navigated away first
    }
  });
  page.on('pageerror', (error) => seen.errors.push(String(error)));
  page.on('console', (message) => {
    if (message.type() === 'error') seen.errors.push(message.text());
  });
  return { page, seen, close: () => context.close() };
}

/** Text of the connection indicator, once it shows `state`. */
export function waitForState(page, state, timeout = 30_000) {
  return page.waitForSelector(`#connection-state[data-state="${state}"]`, { timeout });
}

/**
 * nginx (Debian's, as root) in front of `upstreamPort` (or every port of `upstreamPorts`, spread round-robin), from
 * samples/nginx/pgnotify.conf with only its upstream addresses and `listen` changed, listening on `port`; its pid,
 * logs and temp files live in a temp folder. `workerConnections` must cover two connections per proxied socket.
 */
export async function startNginx({ port, upstreamPort, upstreamPorts = [upstreamPort], workerConnections = 256 }) {
  const template = await readFile(path.join(ROOT, 'samples/nginx/pgnotify.conf'), 'utf8');
  const servers = upstreamPorts.map((p) => `server 127.0.0.1:${p};`).join('\n    ');
  const site = template
    .replace(/server 127\.0\.0\.1:5080;/, servers)
    .replace(/listen 80;/, `listen 127.0.0.1:${port};`);
  if (!site.includes(`127.0.0.1:${upstreamPorts[0]};`) || !site.includes(`listen 127.0.0.1:${port};`)) {
    throw new Error('samples/nginx/pgnotify.conf no longer has `server 127.0.0.1:5080;` and `listen 80;` to adapt');
  }

  const dir = await mkdtemp(path.join(tmpdir(), 'pgnotify-nginx-'));
  await chmod(dir, 0o755); // nginx's workers (user nobody) write their temp files here
  await writeFile(path.join(dir, 'site.conf'), site);
  await writeFile(path.join(dir, 'nginx.conf'), [
    'worker_processes 1;',
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log info;`,
    `events { worker_connections ${workerConnections}; }`,
    'http {',
    `  access_log ${dir}/access.log;`,
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/${t};`),
    `  include ${dir}/site.conf;`,
    '}',
    '',
  ].join('\n'));

  const nginx = process.env.PGNOTIFY_NGINX ?? '/usr/sbin/nginx';
  const args = ['-p', dir, '-e', `${dir}/error.log`, '-c', `${dir}/nginx.conf`];
  await run(nginx, [...args, '-t']);
  const child = spawn(nginx, [...args, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  child.stderr.on('data', (chunk) => { output += chunk; });
  const exited = once(child, 'exit');
  const url = `http://127.0.0.1:${port}`;
  const ready = await Promise.race([
    waitFor(`nginx on port ${port}`, async () => (await fetch(`${url}/api/tables`)).ok, 15_000),
    exited.then(() => false),
  ]);
  if (!ready) throw new Error(`nginx exited during startup:\n${output}`);

  return {
    url,
    accessLog: () => readFile(path.join(dir, 'access.log'), 'utf8'),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGQUIT'); // graceful shutdown
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
