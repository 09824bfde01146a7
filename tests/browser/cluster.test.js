// Scale-out for real: three sample-host processes on one database behind Debian's nginx, 300 sockets through the proxy
// while pgbench writes about 500 single-row commits a second. Mid-run one instance is killed with SIGKILL and later
// another is stopped with SIGTERM (close 1001); their sockets reconnect through nginx to the others and resume with
// `since`. At the end every socket must hold every change exactly once, each row's changes in commit order, and agree
// with the table. The whole run is made twice: once with the trigger source and lossless delivery (positions from the
// change log), once with the logical-replication source (positions from the WAL, each instance on its own slot).
//
// Each write is an upsert that counts: the first change of a row is an INSERT with v = 1, then UPDATEs with v = 2, 3…
// so a socket's changes of one row must read exactly 1, 2, …, v, where v is the row's final value in the table.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, existsSync } from 'node:fs';
import { test } from 'node:test';
import WebSocket from 'ws';
import { createDatabase, freePort, startHost, startNginx, waitFor } from './harness.js';

const SOCKETS = Number(process.env.PGNOTIFY_CLUSTER_SOCKETS ?? 300);
const RATE = Number(process.env.PGNOTIFY_CLUSTER_RATE ?? 500); // commits per second, all writers together
const SECONDS = Number(process.env.PGNOTIFY_CLUSTER_SECONDS ?? 16);
const ROWS = 1000;

/** The env that makes the sample host watch the test table, per source. */
const sources = {
  trigger: () => ({ PgNotify__LosslessDelivery: 'true' }),
  // A stable instance name per port: an instance that comes back resumes from its own slot.
  replication: (port) => ({ PgNotify__Source: 'Replication', PgNotify__InstanceName: `cluster_${port}` }),
};

/** Three instances of the sample host on a database of their own, behind nginx, into `cluster` (stopCluster ends it, even half started). */
async function startCluster(cluster) {
  const { source } = cluster;
  cluster.db = await createDatabase();
  await cluster.db.psql('CREATE TABLE cluster_items (id int PRIMARY KEY, v int NOT NULL)');
  cluster.start = (port) => startHost({
    port,
    connectionString: cluster.db.connectionString,
    env: { PgNotify__Tables__3: 'cluster_items', Logging__LogLevel__PgNotify: 'Warning', ...sources[source](port) },
  });
  const ports = [await freePort(), await freePort(), await freePort()];
  // One instance first, so that the other two meet an installed setup, then the two together.
  cluster.hosts.push(await cluster.start(ports[0]));
  cluster.hosts.push(...await Promise.all(ports.slice(1).map(cluster.start)));
  cluster.nginx = await startNginx({ port: await freePort(), upstreamPorts: ports, workerConnections: 4096 });
}

async function stopCluster(cluster) {
  await cluster.nginx?.stop();
  await Promise.all(cluster.hosts.map((h) => h.stop()));
  // Logical slots keep a database from being dropped: they go first (their instances are stopped).
  await cluster.db?.psql('SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots WHERE database = current_database()');
  await cluster.db?.drop();
}

/** One client socket that keeps its last position and resumes from it through nginx whenever it is closed. */
class ResumingSocket {
  constructor(url) {
    this.url = url;
    this.position = null;
    this.rows = new Map(); // id -> the v values seen, in order
    this.problems = [];
    this.reconnects = 0;
    this.count = 0; // changes received
    this.closeCodes = new Map();
    this.subscribed = false;
    this.stopped = false;
    this.connect();
  }

  connect() {
    const ws = new WebSocket(this.url, { perMessageDeflate: false });
    this.ws = ws;
    ws.on('message', (text) => this.onFrame(JSON.parse(text.toString())));
    ws.on('error', () => {}); // 'close' follows and reconnects
    ws.on('close', (code) => {
      this.closeCodes.set(code, (this.closeCodes.get(code) ?? 0) + 1);
      if (this.stopped) return;
      this.reconnects++;
      // Full jitter over a short window, as a real client would back off.
      setTimeout(() => this.connect(), 50 + Math.random() * 450);
    });
  }

  onFrame(frame) {
    switch (frame.type) {
      case 'welcome': {
        if (!frame.lossless) this.problems.push('welcome says lossless is off');
        const request = { type: 'subscribe', id: 's', tables: ['cluster_items'] };
        if (this.position !== null) request.since = this.position;
        this.ws.send(JSON.stringify(request));
        break;
      }
      case 'subscribed':
        if (this.position === null) this.position = frame.position; // nothing of this table before it
        this.subscribed = true;
        break;
      case 'change': {
        this.count++;
        if (!(frame.position > this.position)) {
          this.problems.push(`position ${frame.position} after ${this.position} (duplicate or out of order)`);
          return;
        }
        this.position = frame.position;
        const row = frame.data ?? frame.old;
        const seen = this.rows.get(row.id) ?? [];
        seen.push(frame.operation === 'DELETE' ? -1 : row.v);
        this.rows.set(row.id, seen);
        break;
      }
      case 'resync':
        this.problems.push(`resync ${frame.reason}`);
        break;
      case 'error':
        this.problems.push(`error ${frame.code}: ${frame.message}`);
        break;
      default:
        break;
    }
  }

  close() {
    this.stopped = true;
    this.ws.close(1000);
  }
}

function pgbench(db, script, seconds) {
  const bin = process.env.PGNOTIFY_PGBENCH ?? (() => {
    const dirs = readdirSync('/usr/lib/postgresql').sort().reverse();
    const found = dirs.map((d) => `/usr/lib/postgresql/${d}/bin/pgbench`).find((p) => existsSync(p));
    if (!found) throw new Error('pgbench not found under /usr/lib/postgresql/*/bin (Debian package postgresql)');
    return found;
  })();
  const cs = Object.fromEntries(db.connectionString.split(';').map((kv) => kv.split('=')));
  const child = spawn(bin, [
    '-h', cs.Host, '-p', cs.Port, '-U', cs.Username, '-n', '-c', '4', '-j', '2',
    '-R', String(RATE), '-T', String(seconds), '-f', script, cs.Database,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c) => { output += c; });
  child.stderr.on('data', (c) => { output += c; });
  return once(child, 'exit').then(([code]) => {
    if (code !== 0) throw new Error(`pgbench failed (${code}):\n${output}`);
    return output;
  });
}

async function run(cluster) {
  const { db, hosts } = cluster;
  const url = `${cluster.nginx.url.replace('http', 'ws')}/ws/changes/`;
  const sockets = Array.from({ length: SOCKETS }, () => new ResumingSocket(url));
  try {
    await waitFor(`all ${SOCKETS} sockets subscribed`, () => sockets.every((s) => s.subscribed), 60_000);

    const { writeFile, mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(`${tmpdir()}/pgnotify-cluster-`);
    const script = `${dir}/upsert.sql`;
    await writeFile(script, [
      `\\set id random(1, ${ROWS})`,
      'INSERT INTO cluster_items AS t (id, v) VALUES (:id, 1) ON CONFLICT (id) DO UPDATE SET v = t.v + 1;',
      '',
    ].join('\n'));

    const writes = pgbench(db, script, SECONDS);

    // A third of the way in: SIGKILL one instance (no close frame: its sockets see nginx drop them).
    await new Promise((r) => setTimeout(r, (SECONDS * 1000) / 3));
    const killed = hosts[0];
    killed.child.kill('SIGKILL');
    await once(killed.child, 'exit').catch(() => {});
    // Bring it back, so that the graceful stop below still leaves two instances to move to.
    hosts[0] = await cluster.start(killed.port);

    // Two thirds of the way in: stop another one gracefully (close 1001), and bring it back too.
    await new Promise((r) => setTimeout(r, (SECONDS * 1000) / 3));
    await hosts[1].stop();
    hosts[1] = await cluster.start(hosts[1].port);

    const pgbenchOutput = await writes;
    const total = Number(await db.psql('SELECT coalesce(sum(v), 0) FROM cluster_items'));
    assert.ok(total > SECONDS * RATE * 0.5, `pgbench wrote too little (${total} changes):\n${pgbenchOutput}`);

    // Every write is one change (no deletes): the table's sum of v is the number of changes each socket must hold.
    await waitFor(`every socket at ${total} changes`, () => sockets.every((s) => s.count >= total), 120_000)
      .catch((error) => {
        const behind = sockets.filter((s) => s.count < total);
        throw new Error(`${error.message}: ${behind.length} behind, e.g. at ${behind[0]?.count} (position ${behind[0]?.position})`);
      });
    await new Promise((r) => setTimeout(r, 300)); // then nothing more may arrive: extras show as problems below

    const table = new Map((await db.psql('SELECT id, v FROM cluster_items ORDER BY id'))
      .split('\n').filter(Boolean).map((line) => line.split('|').map(Number)));
    const expected = (v) => Array.from({ length: v }, (_, i) => i + 1);
    const reconnects = sockets.reduce((n, s) => n + s.reconnects, 0);
    const goingAway = sockets.reduce((n, s) => n + (s.closeCodes.get(1001) ?? 0), 0);

    for (const [i, socket] of sockets.entries()) {
      assert.deepEqual(socket.problems, [], `socket ${i} had problems`);
      assert.equal(socket.rows.size, table.size, `socket ${i} saw ${socket.rows.size} rows, the table has ${table.size}`);
      for (const [id, v] of table) {
        assert.deepEqual(socket.rows.get(id), expected(v), `socket ${i}, row ${id}: changes not exactly 1..${v} in order`);
      }
    }
    // The kill and the stop really moved sockets: about a third of them each time.
    assert.ok(reconnects >= SOCKETS / 3, `only ${reconnects} reconnects after a SIGKILL and a SIGTERM`);
    assert.ok(goingAway > 0, 'no socket was closed with 1001 by the graceful stop');
    assert.ok(sockets.every((s) => s.count === total), 'a socket holds more changes than were written');
    console.log(`# cluster (${cluster.source}): ${total} changes, ${SOCKETS} sockets, ${reconnects} reconnects (${goingAway} after 1001)`);
  } finally {
    for (const s of sockets) s.close();
  }
}

for (const source of Object.keys(sources)) {
  test(`${SOCKETS} sockets over 3 instances behind nginx keep every change through a SIGKILL and a SIGTERM (${source} source)`, async () => {
    const cluster = { hosts: [], source };
    try {
      await startCluster(cluster);
      await run(cluster);
    } finally {
      await stopCluster(cluster);
    }
  });
}
