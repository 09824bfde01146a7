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

  useEffect(() => {
    client.connect();
    return () => client.close();
  }, [client]);

  return { client, state };
}

/**
 * Calls `onChange` with every change of `tables` (a name or an array), as long as the component is mounted.
 * Returns `{ ready, error }`: whether the server has acknowledged the subscription, or why it refused it.
 */
export function useTableChanges(tables, onChange, { client, operations, filter } = {}) {
  const latest = useLatest(onChange);
  const [status, setStatus] = useState({ ready: false, error: null });
  const key = JSON.stringify([tables, operations ?? null, filter ?? null]);

  useEffect(() => {
    if (!client) return undefined;
    const [names, ops, rowFilter] = JSON.parse(key);
    let active = true;
    setStatus((current) => (current.ready || current.error ? { ready: false, error: null } : current));
    const subscription = client.subscribe(names, (change) => latest.current(change), {
      operations: ops ?? undefined,
      filter: rowFilter ?? undefined,
    });
    subscription.ready.then(
      () => active && setStatus({ ready: true, error: null }),
      (error) => active && setStatus({ ready: false, error }),
    );
    return () => {
      active = false;
      subscription.unsubscribe();
    };
  }, [client, key]); // eslint-disable-line react-hooks/exhaustive-deps -- `key` stands for tables/operations/filter

  return status;
}

/** A ref holding the latest value, updated after each commit. */
function useLatest(value) {
  const ref = useRef(value);
  useEffect(() => {
    ref.current = value;
  });
  return ref;
}
