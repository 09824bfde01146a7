// The React hooks over a scripted socket: which client's state a component shows, when a subscription is renewed,
// and which callback receives a change. No server.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createElement as h, useLayoutEffect } from 'react';
import TestRenderer, { act } from 'react-test-renderer';
import { PgNotifyClient } from '../../src/index.js';
import { PgNotifyProvider, usePgNotify, useTableChanges, useWebSocket } from '../../src/react.js';
import { FakeServer, settle } from './fake.js';

globalThis.IS_REACT_ACT_ENVIRONMENT = true;
const consoleError = console.error;
console.error = (...args) => {
  if (!String(args[0]).includes('react-test-renderer is deprecated')) consoleError(...args);
};

async function render(t, element) {
  let renderer;
  await act(async () => {
    renderer = TestRenderer.create(element);
  });
  t.after(() => act(() => renderer.unmount()));
  return {
    update: (next) => act(async () => renderer.update(next)),
    unmount: () => act(async () => renderer.unmount()),
  };
}

test('after a url change, the component shows the new client\'s state, not the closing old one\'s', async (t) => {
  const server = new FakeServer();
  const renders = [];
  function Live({ url }) {
    const { client, state } = useWebSocket(url, { WebSocket: server.WebSocket });
    renders.push({ client, state });
    return null;
  }
  const view = await render(t, h(Live, { url: 'ws://a.test/ws/' }));
  await act(async () => server.last.welcome());
  assert.equal(renders.at(-1).state, 'open');

  await view.update(h(Live, { url: 'ws://b.test/ws/' }));
  await act(async () => settle());
  const last = renders.at(-1);
  assert.equal(last.client.url, 'ws://b.test/ws/');
  assert.equal(renders[0].client.state, 'closed', 'the old client was closed');
  assert.equal(last.state, last.client.state);
  assert.equal(last.state, 'connecting');
});

test('a filter whose keys come in another order keeps the subscription: no request, never not ready', async (t) => {
  const server = new FakeServer();
  const client = new PgNotifyClient('ws://a.test/ws/', { WebSocket: server.WebSocket }).connect();
  t.after(() => client.close());
  server.last.welcome();
  const readiness = [];
  function Live({ filter }) {
    readiness.push(useTableChanges('orders', () => {}, { client, filter }).ready);
    return null;
  }
  const view = await render(t, h(Live, { filter: { shop: 1, status: 'open' } }));
  await act(async () => { await settle(); server.last.answerAll(); });
  assert.equal(readiness.at(-1), true);
  const before = readiness.length;
  await view.update(h(Live, { filter: { status: 'open', shop: 1 } }));
  await act(async () => settle());
  assert.deepEqual(server.last.sent.map((f) => f.type), ['subscribe']);
  assert.deepEqual(readiness.slice(before), readiness.slice(before).map(() => true), 'ready in every render');
  assert.ok(readiness.length > before);
});

test('a change right after a render, before passive effects, reaches the latest callback', async (t) => {
  const server = new FakeServer();
  const client = new PgNotifyClient('ws://a.test/ws/', { WebSocket: server.WebSocket }).connect();
  t.after(() => client.close());
  server.last.welcome();
  const seen = [];
  function Live({ n }) {
    useTableChanges('orders', (change) => seen.push([n, change.data.id]), { client });
    return null;
  }
  // A sibling whose layout effect makes the server send a change: it runs in the commit, before passive effects.
  function Trigger({ n }) {
    useLayoutEffect(() => {
      if (n > 0) server.last.change('orders', null, { id: n });
    }, [n]);
    return null;
  }
  const app = (n) => h('div', null, h(Live, { n }), h(Trigger, { n }));
  const view = await render(t, app(0));
  await act(async () => { await settle(); server.last.answerAll(); });
  await view.update(app(1));
  await view.update(app(2));
  assert.deepEqual(seen, [[1, 1], [2, 2]]);
});

test('PgNotifyProvider shares one client: hooks below it subscribe on it, and its state shows', async (t) => {
  const server = new FakeServer();
  const states = [];
  const changes = [];
  function Orders() {
    const { state } = usePgNotify();
    states.push(state);
    const { ready } = useTableChanges('orders', (c) => changes.push(c.data.id));
    return ready ? 'ready' : 'waiting';
  }
  await render(t, h(PgNotifyProvider, { url: 'ws://a.test/ws/', options: { WebSocket: server.WebSocket } },
    h(Orders), h(Orders)));
  await act(async () => { server.last.welcome(); await settle(); });
  assert.equal(server.sockets.length, 1, 'one socket for both components');
  const requests = server.last.requests('subscribe');
  assert.equal(requests.length, 1, 'one request for both subscriptions');
  await act(async () => { server.last.answerAll(); await settle(); });
  await act(async () => server.last.change('orders', null, { id: 7 }));
  assert.deepEqual(changes, [7, 7]);
  assert.equal(states.at(-1), 'open');
});

test('useTableChanges reports its subscription resuming while the socket is down, and recovered after a resume', async (t) => {
  const server = new FakeServer();
  const client = new PgNotifyClient('ws://a.test/ws/', { WebSocket: server.WebSocket, minDelay: 1, maxDelay: 1 }).connect();
  t.after(() => client.close());
  server.last.welcome(true);
  const renders = [];
  function Live() {
    const { state, recovered } = useTableChanges('orders', () => {}, { client });
    renders.push([state, recovered]);
    return null;
  }
  await render(t, h(Live));
  await act(async () => { await settle(); server.last.answerAll(); await settle(); });
  assert.deepEqual(renders.at(-1), ['live', false]);
  await act(async () => { server.last.change('orders', 10); server.last.drop(); });
  assert.deepEqual(renders.at(-1), ['resuming', false]);
  await act(async () => { await new Promise((resolve) => setTimeout(resolve, 20)); });
  await act(async () => { server.last.welcome(true); await settle(); });
  assert.equal(server.last.requests('subscribe')[0].since, 10);
  await act(async () => { server.last.answerAll(); await settle(); });
  assert.deepEqual(renders.at(-1), ['live', true]);
});
