// What needs no server: resolving the socket's URL, and refusing to start without a WebSocket implementation.

import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { WebSocket } from 'ws';
import { PgNotifyClient } from '../src/index.js';

const saved = { location: globalThis.location, WebSocket: globalThis.WebSocket };
afterEach(() => {
  globalThis.location = saved.location;
  globalThis.WebSocket = saved.WebSocket;
});

test('a relative URL resolves against the page, http becoming ws and https wss', () => {
  globalThis.location = { href: 'https://app.example.com/admin/users?page=2' };
  assert.equal(new PgNotifyClient('/ws/changes/').url, 'wss://app.example.com/ws/changes/');
  globalThis.location = { href: 'http://localhost:5080/' };
  assert.equal(new PgNotifyClient('ws/changes/').url, 'ws://localhost:5080/ws/changes/');
});

test('absolute URLs keep their host; http(s) becomes ws(s), ws(s) stays', () => {
  assert.equal(new PgNotifyClient('http://127.0.0.1:8080/ws/changes/').url, 'ws://127.0.0.1:8080/ws/changes/');
  assert.equal(new PgNotifyClient(new URL('https://example.com/ws/changes/')).url, 'wss://example.com/ws/changes/');
  assert.equal(new PgNotifyClient('wss://example.com/x?tenant=1').url, 'wss://example.com/x?tenant=1');
});

test('connect() throws, without changing state, when there is no WebSocket or the URL cannot be resolved', () => {
  globalThis.WebSocket = undefined;
  const client = new PgNotifyClient('ws://127.0.0.1:1/ws/changes/');
  assert.throws(() => client.connect(), /No WebSocket implementation/);
  assert.equal(client.state, 'closed');

  const relative = new PgNotifyClient('/ws/changes/', { WebSocket }); // no page to resolve against in Node
  assert.throws(() => relative.connect(), TypeError);
  assert.equal(relative.state, 'closed');
});
