// A TCP proxy for the tests against the sample host: it can refuse connections, cut them, cut them a few
// milliseconds after the server's `subscribed` passes (in the middle of a replay), or black-hole them.

import { createConnection, createServer } from 'node:net';

/** A TCP proxy in front of the host that can refuse connections and cut the ones it carries, at chosen moments. */
export class CuttingProxy {
  #server;
  #pairs = new Set();
  down = false;
  /** Cut each connection this many ms after the server's first `subscribed` passes through it, while cutsLeft > 0. */
  cutAfterSubscribedMs = null;
  cutsLeft = 0;
  cuts = 0;

  constructor(targetPort) {
    this.targetPort = targetPort;
  }

  async start() {
    this.#server = createServer((client) => this.#accept(client));
    await new Promise((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = this.#server.address().port;
  }

  /** The connections open now stop carrying anything, both ways, but stay open: a half-open connection. */
  blackHoleAll() {
    for (const pair of this.#pairs) pair.blackHoled = true;
  }

  #accept(client) {
    if (this.down) {
      client.destroy();
      return;
    }
    const upstream = createConnection(this.targetPort, '127.0.0.1');
    const pair = { client, upstream, armed: false };
    this.#pairs.add(pair);
    const end = () => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk) => pair.blackHoled || upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (pair.blackHoled) return;
      if (!pair.armed && this.cutAfterSubscribedMs !== null && this.cutsLeft > 0 && chunk.includes('"subscribed"')) {
        pair.armed = true;
        this.cutsLeft--;
        setTimeout(() => {
          this.cuts++;
          end();
        }, this.cutAfterSubscribedMs());
      }
      client.write(chunk);
    });
    for (const socket of [client, upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  }

  cutAll() {
    for (const { client, upstream } of [...this.#pairs]) {
      client.destroy();
      upstream.destroy();
    }
  }

  async stop() {
    this.cutAll();
    await new Promise((resolve) => this.#server?.close(resolve) ?? resolve());
  }
}
