// Test harness: runs the real sample host (samples/PgNotify.Sample) against a fresh database of the local PostgreSQL
// (scripts/pg.sh), and gives the tests small tools to wait on events with timeouts instead of sleeping.
//
// Environment:
//   PGNOTIFY_SAMPLE_DLL   the host to run (default: the sample's Release build)
//   PGNOTIFY_TEST_VERBOSE print the host's output as it runs

import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { WebSocket } from 'ws';
import { PgNotifyClient } from '../src/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const PG = path.join(ROOT, 'scripts/pg.sh');
export const SAMPLE_DLL = process.env.PGNOTIFY_SAMPLE_DLL
  ?? path.join(ROOT, 'samples/PgNotify.Sample/bin/Release/net10.0/PgNotify.Sample.dll');
const STARTUP_TIMEOUT_MS = 60_000;

const run = promisify(execFile);

/** Runs scripts/pg.sh with arguments; returns its stdout, or throws with its stderr. */
async function pg(...args) {
  try {
    const { stdout } = await run('bash', [PG, ...args], { maxBuffer: 16 * 1024 * 1024 });
    return stdout.trim();
  } catch (error) {
    throw new Error(`pg.sh ${args.join(' ')} failed: ${error.stderr || error.message}`);
  }
}

/**
 * A TCP port nobody listens on right now, below Linux's ephemeral range (32768 and up): a host restarts on its port,
 * and while it is down no outgoing connection may take the port as its local one.
 */
async function freePort() {
  for (let attempt = 0; ; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    try {
      await new Promise((resolve, reject) => {
        const server = createServer();
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
      });
      return port;
    } catch (error) {
      if (attempt >= 100) throw error;
    }
  }
}

/**
 * Starts the sample host on a free port with a new, empty database; `env` adds configuration (e.g.
 * `PgNotify__LosslessDelivery`), `sql` runs in the database before the host starts. Dispose of it with `dispose()`.
 */
export async function startHost(env = {}, { sql } = {}) {
  if (!existsSync(SAMPLE_DLL)) {
    throw new Error(`The sample host is not built: ${SAMPLE_DLL} is missing. Run 'dotnet build samples/PgNotify.Sample -c Release'.`);
  }

  const connectionString = await pg('start');
  const database = `pgnotify_js_${randomBytes(6).toString('hex')}`;
  await pg('psql', '-v', 'ON_ERROR_STOP=1', '-qc', `CREATE DATABASE ${database}`);
  if (sql) await pg('psql', '-d', database, '-v', 'ON_ERROR_STOP=1', '-qc', sql); // tables of the test's own, before the host enables them
  const host = new SampleHost(database, connectionString.replace(/Database=[^;]*/i, `Database=${database}`), await freePort(), env);
  try {
    await host.start();
  } catch (error) {
    await host.dispose();
    throw error;
  }
  return host;
}

export class SampleHost {
  #process = null;
  #exited = null;
  #output = '';

  constructor(database, connectionString, port, env = {}) {
    this.database = database;
    this.env = env;
    this.connectionString = connectionString;
    this.port = port;
  }

  get httpUrl() {
    return `http://127.0.0.1:${this.port}/`;
  }

  /** The socket's URL, as an app would write it (http; the client turns it into ws). */
  get wsUrl() {
    return `http://127.0.0.1:${this.port}/ws/changes/`;
  }

  get running() {
    return this.#process !== null;
  }

  /** Starts the host process (on the same port every time) and waits until it answers HTTP. */
  async start() {
    if (this.#process) throw new Error('The host is already running.');
    const child = spawn('dotnet', [SAMPLE_DLL, '--urls', `http://127.0.0.1:${this.port}`], {
      cwd: path.dirname(SAMPLE_DLL),
      env: {
        ...process.env,
        ...this.env,
        ConnectionStrings__Postgres: this.connectionString,
        DOTNET_CLI_TELEMETRY_OPTOUT: '1',
        DOTNET_NOLOGO: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#process = child;
    const onOutput = (chunk) => {
      this.#output = (this.#output + chunk).slice(-20_000);
      if (process.env.PGNOTIFY_TEST_VERBOSE) process.stderr.write(`[host ${this.port}] ${chunk}`);
    };
    child.stdout.setEncoding('utf8').on('data', onOutput);
    child.stderr.setEncoding('utf8').on('data', onOutput);
    this.#exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    this.#exited.then(() => {
      if (this.#process === child) this.#process = null;
    });
    liveHosts.add(this);

    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    for (;;) {
      const answered = await fetch(this.httpUrl, { signal: AbortSignal.timeout(2_000) }).then(() => true, () => false);
      if (answered) return;
      if (!this.#process) throw new Error(`The sample host exited while starting.\n${this.#output}`);
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`The sample host did not answer HTTP within ${STARTUP_TIMEOUT_MS / 1000} s.\n${this.#output}`);
      }
      await Promise.race([this.#exited, new Promise((resolve) => setTimeout(resolve, 100))]);
    }
  }

  /** Kills the host (SIGKILL): its sockets drop without a close frame, as when a machine dies. */
  async kill() {
    return this.#signal('SIGKILL');
  }

  /** Stops the host gracefully (SIGTERM): it closes its sockets with 1001, "going away". */
  async stop() {
    return this.#signal('SIGTERM');
  }

  async #signal(signal) {
    const child = this.#process;
    if (!child) return null;
    child.kill(signal);
    const exit = await this.#exited;
    this.#process = null;
    return exit;
  }

  /** Runs SQL with psql in the host's database and returns the unaligned, tuples-only output. */
  sql(query) {
    return pg('psql', '-d', this.database, '-v', 'ON_ERROR_STOP=1', '-Atqc', query);
  }

  /** The host's recent console output, for failure messages. */
  get output() {
    return this.#output;
  }

  async dispose() {
    await this.kill();
    liveHosts.delete(this);
    await pg('psql', '-qc', `DROP DATABASE IF EXISTS ${this.database} WITH (FORCE)`).catch(() => {});
  }
}

// A test process that ends or is interrupted must not leave hosts behind (their databases are dropped by js.sh).
const liveHosts = new Set();
process.once('exit', () => {
  for (const host of liveHosts) host.kill();
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    for (const host of liveHosts) host.kill();
    process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
  });
}

/**
 * Collects items (frames, states, errors) as they happen; `take` waits for the first one not taken yet that matches,
 * up to a timeout. Items that do not match stay for later takes.
 */
export class Inbox {
  #items = [];
  #waiters = new Set();

  push(item) {
    this.#items.push(item);
    for (const waiter of [...this.#waiters]) waiter();
  }

  /** Everything not taken yet. */
  get pending() {
    return [...this.#items];
  }

  /** Takes everything not taken yet. */
  drain() {
    return this.#items.splice(0);
  }

  take(predicate = () => true, { timeout = 15_000, what = 'an item' } = {}) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const index = this.#items.findIndex(predicate);
        if (index < 0) return;
        this.#waiters.delete(check);
        clearTimeout(timer);
        resolve(this.#items.splice(index, 1)[0]);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`Timed out after ${timeout} ms waiting for ${what}. Not taken: ${JSON.stringify(this.#items).slice(0, 2000)}`));
      }, timeout);
      this.#waiters.add(check);
      check();
    });
  }
}

/** A `ws` WebSocket that records every socket it opens, frame it sends and receives, and close it sees. */
export function recordingWebSocket(wire) {
  return class RecordingWebSocket extends WebSocket {
    constructor(url, ...rest) {
      super(url, ...rest);
      wire.push({ event: 'open', url });
      this.addEventListener('message', (event) => wire.push({ event: 'received', frame: JSON.parse(event.data) }));
      this.addEventListener('close', (event) => wire.push({ event: 'close', code: event.code }));
    }

    send(data, ...rest) {
      wire.push({ event: 'sent', frame: JSON.parse(data) });
      return super.send(data, ...rest);
    }
  };
}

/**
 * A client for a test, closed when the test ends, with everything it reports collected in inboxes: `changes` (all
 * change frames delivered to subscriptions made with `subscribe` below), `states`, `errors`, `resyncs`, and `wire`
 * (see recordingWebSocket).
 */
export function testClient(t, url, options = {}) {
  const inboxes = { wire: new Inbox(), states: new Inbox(), errors: new Inbox(), resyncs: new Inbox() };
  const client = new PgNotifyClient(url, {
    WebSocket: recordingWebSocket(inboxes.wire),
    minDelay: 50,
    maxDelay: 1_000,
    onState: (state) => inboxes.states.push(state),
    onError: (error) => inboxes.errors.push(error),
    onResync: (resync) => inboxes.resyncs.push(resync),
    ...options,
  });
  t.after(() => client.close());
  return { client, ...inboxes };
}

/** A short random marker to tell this test's rows from others'. */
export function marker(prefix = 'js') {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

/** A random integer for filter tests, unlikely to collide with another test's. */
export function randomId() {
  return 100_000 + Math.floor(Math.random() * 1_000_000_000);
}
