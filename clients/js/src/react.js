// React hooks for @pgnotify/client. React is a peer dependency: these hooks use the app's own copy.
//
// The rule that keeps sockets stable: callbacks live in refs, so that re-rendering with a new inline callback never
// reopens the socket or resubscribes. Only a new url opens a new socket, and only a change in the tables, operations
// or filter (compared by value) resubscribes.

import { useEffect, useMemo, useRef, useState } from 'react';
import { PgNotifyClient } from './index.js';

/**
 * One PgNotifyClient for the component, connected while it is mounted and closed on unmount. A new `url` makes a new
 * client; the other options are read once per client, except the callbacks, of which the latest are always called.
 */
export function useWebSocket(url, options = {}) {
  const callbacks = useLatest(options);
  const [state, setState] = useState('connecting');
  const client = useMemo(
    () => new PgNotifyClient(url, {
      WebSocket: options.WebSocket,
      minDelay: options.minDelay,
      maxDelay: options.maxDelay,
      maxRequestsPerSecond: options.maxRequestsPerSecond,
      onState: (next) => {
        setState(next);
        callbacks.current.onState?.(next);
      },
      onResync: (info) => callbacks.current.onResync?.(info),
      onError: (error) => {
        if (callbacks.current.onError) callbacks.current.onError(error);
        else console.error('PgNotify:', error);
      },
    }),
    [url], // eslint-disable-line react-hooks/exhaustive-deps -- a new socket only for a new url
  );

  // The close is deferred by a microtask: React's StrictMode unmounts and remounts every effect once in development,
  // and the remount cancels it, so the socket is not opened, closed and opened again.
  const pendingClose = useRef(null);
  useEffect(() => {
    if (pendingClose.current?.client === client) pendingClose.current.cancelled = true;
    client.connect();
    return () => {
      const close = { client, cancelled: false };
      pendingClose.current = close;
      queueMicrotask(() => close.cancelled || client.close());
    };
  }, [client]);

  return { client, state };
}

/**
 * Calls `onChange` with every change of `tables` (a name or an array), as long as the component is mounted.
 * Returns `{ ready, error }`: whether the server has acknowledged the subscription, or why it refused it.
 */
export function useTableChanges(tables, onChange, { client, operations, filter } = {}) {
  const latest = useLatest(onChange);
  const [status, setStatus] = useState({ key: null, ready: false, error: null });
  const key = JSON.stringify([tables, operations ?? null, filter ?? null]);
  const current = useRef(null); // { client, key, subscription, leaving }

  useEffect(() => {
    if (!client) return undefined;
    let entry = current.current;
    if (entry?.leaving && entry.client === client && entry.key === key) {
      entry.leaving = false; // StrictMode's remount: keep the subscription
    } else {
      entry?.subscription.unsubscribe(); // one still leaving goes now, before subscribing with other options
      const [names, ops, rowFilter] = JSON.parse(key);
      const subscription = client.subscribe(names, (change) => latest.current(change), {
        operations: ops ?? undefined,
        filter: rowFilter ?? undefined,
      });
      entry = { client, key, subscription, leaving: false };
      current.current = entry;
    }

    let active = true;
    entry.subscription.ready.then(
      () => active && setStatus({ key, ready: true, error: null }),
      (error) => active && error.code !== 'unsubscribed' && setStatus({ key, ready: false, error }),
    );
    return () => {
      // Deferred like the socket's close, so that StrictMode's unmount and remount do not resubscribe.
      active = false;
      entry.leaving = true;
      queueMicrotask(() => entry.leaving && entry.subscription.unsubscribe());
    };
  }, [client, key]); // eslint-disable-line react-hooks/exhaustive-deps -- `key` stands for tables/operations/filter

  // The status of the current tables/operations/filter only: not ready again as soon as they change.
  const isCurrent = status.key === key;
  return { ready: isCurrent && status.ready, error: isCurrent ? status.error : null };
}

/** A ref holding the latest value, updated after each commit. */
function useLatest(value) {
  const ref = useRef(value);
  useEffect(() => {
    ref.current = value;
  });
  return ref;
}
