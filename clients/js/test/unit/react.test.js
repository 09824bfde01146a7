// The React hooks over a scripted socket: which client's state a component shows, when a subscription is renewed,
// and which callback receives a change. No server.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StrictMode, createElement as h, useLayoutEffect } from 'react';
import TestRenderer, { act } from 'react-test-renderer';
import { PgNotifyClient } from '../../src/index.js';
import { PgNotifyProvider, useLiveRows, usePgNotify, useTableChanges, useWebSocket } from '../../src/react.js';
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

test('useLiveRows: rows from the snapshot and the changes after it, on the provider\'s one socket, never resubscribing on re-render', async (t) => {
  const server = new FakeServer();
  const views = [];
  function Rows({ filter, tag }) {
    const view = useLiveRows('orders', { filter }); // a new filter object every render
    views.push({ tag, ...view });
    return null;
  }
  function App({ tag, shop }) {
    return h(PgNotifyProvider, { url: 'ws://a.test/ws/', options: { WebSocket: server.WebSocket } },
      h(Rows, { filter: { shop }, tag }), h(Rows, { filter: { shop }, tag }));
  }
  const view = await render(t, h(App, { tag: 0, shop: 1 }));
  assert.equal(views.at(-1).status, 'loading');
  await act(async () => { server.last.welcome(); await settle(); });
  const requests = server.last.requests('subscribe');
  assert.equal(requests.length, 1, 'one request for both components');
  assert.deepEqual(requests[0].filter, { shop: 1 });
  assert.equal(requests[0].snapshot, true);
  await act(async () => {
    server.last.answer(requests[0]);
    server.last.snapshot(requests[0], 'orders', [{ id: 2, shop: 1 }, { id: 1, shop: 1 }]);
    await settle();
  });
  assert.equal(views.at(-1).status, 'live');
  assert.deepEqual(views.at(-1).rows.map((r) => r.id), [1, 2]);
  assert.deepEqual(views.at(-2).rows.map((r) => r.id), [1, 2], 'the other component too');

  await act(async () => server.last.op('orders', 'UPDATE', { data: { id: 1, shop: 2 }, old: { id: 1, shop: 1 } }));
  assert.deepEqual(views.at(-1).rows.map((r) => r.id), [2], 'left the filter');

  for (let tag = 1; tag <= 3; tag++) await view.update(h(App, { tag, shop: 1 }));
  await act(async () => settle());
  assert.equal(views.at(-1).tag, 3);
  assert.equal(server.sockets.length, 1, 'one socket across re-renders');
  assert.deepEqual(server.last.sent.map((f) => f.type), ['subscribe'], 'no new request across re-renders');
  const rows = views.at(-1).rows;
  await view.update(h(App, { tag: 4, shop: 1 }));
  assert.equal(views.at(-1).rows, rows, 'the same rows array while nothing changed');

  // A new filter: one replacing request with a snapshot; loading until it comes.
  await view.update(h(App, { tag: 5, shop: 2 }));
  await act(async () => settle());
  assert.equal(views.at(-1).status, 'loading');
  const next = server.last.requests('subscribe');
  assert.equal(next.length, 1);
  assert.deepEqual(next[0].filter, { shop: 2 });
  await act(async () => {
    server.last.answer(next[0]);
    server.last.snapshot(next[0], 'orders', [{ id: 1, shop: 2 }]);
    await settle();
  });
  assert.deepEqual(views.at(-1).rows.map((r) => r.id), [1]);
  assert.equal(views.at(-1).status, 'live');

  await view.unmount();
  await settle();
  assert.deepEqual(server.last.requests('unsubscribe').length, 0, 'the provider closed the socket instead');
  assert.equal(server.last.closedWith?.code, 1000);
});

test('useLiveRows under StrictMode subscribes once, and shows failed with the error for a table without a primary key', async (t) => {
  const server = new FakeServer();
  const client = new PgNotifyClient('ws://a.test/ws/', { WebSocket: server.WebSocket, onError: () => {} }).connect();
  t.after(() => client.close());
  server.last.welcome();
  const views = [];
  function Rows() {
    views.push(useLiveRows('logs', { client }));
    return null;
  }
  await render(t, h(StrictMode, null, h(Rows)));
  await act(async () => settle());
  const requests = server.last.requests('subscribe');
  assert.equal(requests.length, 1, `StrictMode subscribed more than once: ${JSON.stringify(server.last.sent)}`);
  await act(async () => { server.last.answer(requests[0], { code: 'snapshot_unavailable' }); await settle(); });
  assert.equal(views.at(-1).status, 'failed');
  assert.equal(views.at(-1).error.code, 'snapshot_unavailable');
});

test('useLiveRows without any client returns an empty, closed view and opens nothing', async (t) => {
  const views = [];
  function Rows() {
    views.push(useLiveRows('orders'));
    return null;
  }
  await render(t, h(Rows));
  assert.deepEqual({ ...views.at(-1) }, { rows: [], status: 'closed', error: null, truncated: false });
});
