// The React hooks against the real sample host: one socket per component and url, one subscription per distinct
// table/operations/filter, never a reconnect or resubscribe because a parent re-rendered with new inline callbacks.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createElement as h, StrictMode } from 'react';
import TestRenderer, { act } from 'react-test-renderer';
import { useTableChanges, useWebSocket } from '../src/react.js';
import { Inbox, marker, randomId, recordingWebSocket, startHost } from './harness.js';

globalThis.IS_REACT_ACT_ENVIRONMENT = true;

// React 19 deprecates react-test-renderer (it still works, and needs no DOM): keep its notice out of the output.
const consoleError = console.error;
console.error = (...args) => {
  if (!String(args[0]).includes('react-test-renderer is deprecated')) consoleError(...args);
};

describe('React hooks against the sample host', { timeout: 180_000 }, () => {
  let host;
  before(async () => {
    host = await startHost();
  });
  after(async () => {
    await host?.dispose();
  });

  /** Renders a component using both hooks; `renders` receives what the hooks returned on every render. */
  async function mount(t, props, { strict = false } = {}) {
    const wire = new Inbox();
    const renders = new Inbox();
    const errors = [];
    const WebSocket = recordingWebSocket(wire);
    function Live({ filter, onChange, onError }) {
      const { client, state } = useWebSocket(host.wsUrl, { WebSocket, minDelay: 50, onError });
      const { ready, error } = useTableChanges(['profiles'], onChange, { client, filter });
      renders.push({ client, state, ready, error, filter });
      return null;
    }
    const defaults = { onError: (e) => errors.push(e) };
    const element = (p) => (strict ? h(StrictMode, null, h(Live, { ...defaults, ...p })) : h(Live, { ...defaults, ...p }));
    let renderer;
    await act(async () => {
      renderer = TestRenderer.create(element(props));
    });
    t.after(() => act(() => renderer.unmount()));
    const rerender = (next) => act(async () => renderer.update(element(next)));
    const unmount = () => act(async () => renderer.unmount());
    return { wire, renders, errors, rerender, unmount };
  }

  /**
   * Waits for a render that satisfies `predicate`. These renders come from socket events, as in an app, so React
   * schedules them itself: act(), which holds updates back until its callback returns, is off meanwhile.
   */
  async function untilRender(renders, predicate, what) {
    globalThis.IS_REACT_ACT_ENVIRONMENT = false;
    try {
      return await renders.take(predicate, { what });
    } finally {
      globalThis.IS_REACT_ACT_ENVIRONMENT = true;
    }
  }

  test('re-rendering with new inline callbacks keeps the one socket and the one subscription', async (t) => {
    const seen = [];
    const { wire, renders, errors, rerender } = await mount(t, { onChange: (c) => seen.push(['first', c]) });
    const open = await untilRender(renders, (r) => r.state === 'open' && r.ready, 'the socket open and subscribed');
    renders.drain();

    // Ten renders, each with a new callback and a new (but equal) options object.
    for (let i = 0; i < 10; i++) {
      await rerender({ onChange: (c) => seen.push([`render ${i}`, c]), onError: (e) => errors.push(e) });
    }
    assert.equal(renders.pending.length, 10, 'one render per re-render: nothing else changed');
    assert.ok(renders.pending.every((r) => r.client === open.client && r.state === 'open'), 'the same client, open');

    const name = marker();
    await host.sql(`INSERT INTO profiles (name) VALUES ('${name}')`);
    await wire.take((e) => e.event === 'received' && e.frame.type === 'change' && e.frame.data?.name === name);
    const mine = seen.filter(([, c]) => c.data?.name === name);
    assert.deepEqual(mine.map(([who]) => who), ['render 9'], 'delivered once, to the latest callback');

    const sockets = wire.pending.filter((e) => e.event === 'open').length;
    const sent = wire.pending.filter((e) => e.event === 'sent').map((e) => e.frame.type);
    assert.equal(sockets, 1, 'one socket for the whole time');
    assert.deepEqual(sent, ['subscribe'], 'one subscribe, no unsubscribe');
    assert.deepEqual(errors, []);
  });

  test('a filter equal by value keeps the subscription; a different one resubscribes once', async (t) => {
    const changes = new Inbox();
    const onChange = (c) => changes.push(c);
    const userId = randomId();
    const { wire, renders, rerender } = await mount(t, { onChange, filter: { user_id: userId } });
    await untilRender(renders, (r) => r.state === 'open' && r.ready, 'the socket open and subscribed');

    await rerender({ onChange, filter: { user_id: userId } }); // a new object, the same value
    await rerender({ onChange, filter: { user_id: userId + 1 } });
    await untilRender(renders, (r) => r.ready && r.filter.user_id === userId + 1, 'the new subscription acknowledged');
    const firstWithNewFilter = renders.pending.find((r) => r.filter.user_id === userId + 1);
    assert.equal(firstWithNewFilter.ready, false, 'not ready for the new filter until the server acknowledges it');

    // A filter change is one replacing subscribe (the server replaces a table's filter): no unsubscribe, no gap.
    const sent = wire.pending.filter((e) => e.event === 'sent').map((e) => [e.frame.type, e.frame.filter?.user_id]);
    assert.deepEqual(sent, [['subscribe', userId], ['subscribe', userId + 1]]);

    const name = marker();
    await host.sql(`INSERT INTO profiles (name, user_id) VALUES ('${name}_old', ${userId})`);
    await host.sql(`INSERT INTO profiles (name, user_id) VALUES ('${name}_new', ${userId + 1})`);
    const first = await changes.take((c) => c.data?.name?.startsWith(name));
    assert.equal(first.data.name, `${name}_new`, 'only the new filter applies');
    assert.equal(wire.pending.filter((e) => e.event === 'open').length, 1, 'still the one socket');
  });

  test('in StrictMode, the double mount of development opens one socket and subscribes once', async (t) => {
    const { wire, renders, errors } = await mount(t, { onChange: () => {} }, { strict: true });
    await untilRender(renders, (r) => r.state === 'open' && r.ready, 'the socket open and subscribed');
    await wire.take((e) => e.event === 'received' && e.frame.type === 'subscribed');
    assert.equal(wire.pending.filter((e) => e.event === 'open').length, 1, 'one socket');
    assert.deepEqual(wire.pending.filter((e) => e.event === 'sent').map((e) => e.frame.type), ['subscribe']);
    assert.deepEqual(errors, []);
  });

  test('unmounting unsubscribes and closes the socket, for good', async (t) => {
    const { wire, renders, unmount } = await mount(t, { onChange: () => {} });
    const { client } = await untilRender(renders, (r) => r.state === 'open' && r.ready, 'the socket open and subscribed');
    await unmount();
    const closed = await wire.take((e) => e.event === 'close');
    assert.equal(closed.code, 1000);
    assert.equal(client.state, 'closed');
  });
});
