// React hooks for @pgnotify/client. React is a peer dependency: these hooks use the app's own copy.
//
// The rule that keeps sockets stable: callbacks live in refs, so that re-rendering with a new inline callback never
// reopens the socket or resubscribes. Only a new url opens a new socket, and only a change in the tables, operations
// or filter (compared by value, whatever the order of their keys) resubscribes.

import * as React from 'react';
import { LiveRows, PgNotifyClient } from './index.js';

const { createContext, createElement, useCallback, useContext, useEffect, useMemo, useRef, useState, useSyncExternalStore } = React;

// Refs to the latest callbacks are updated before any layout effect or socket event can run after a commit.
const useBeforeLayout = React.useInsertionEffect ?? React.useLayoutEffect;

const PgNotifyContext = createContext(null);

/**
 * One PgNotifyClient for the component, connected while it is mounted and closed on unmount. A new `url` makes a new
 * client (a URL function may change on every render: the latest is called); the other options are read once per
 * client, except the callbacks, of which the latest are always called.
 */
export function useWebSocket(url, options = {}) {
  const latest = useLatest({ ...options, url });
  const urlKey = typeof url === 'function' ? url : String(url);
  const isFunction = typeof url === 'function';
  const client = useMemo(
    () => new PgNotifyClient(isFunction ? () => latest.current.url() : url, {
      ...options,
      onState: (next) => latest.current.onState?.(next),
      onResync: (info) => latest.current.onResync?.(info),
      onGiveUp: (error) => latest.current.onGiveUp?.(error),
      beforeConnect: options.beforeConnect ? () => latest.current.beforeConnect?.() : undefined,
      onError: (error) => {
        if (latest.current.onError) latest.current.onError(error);
        else console.error('PgNotify:', error);
      },
    }),
    [isFunction ? 'function' : urlKey], // eslint-disable-line react-hooks/exhaustive-deps -- a new socket only for a new url
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

  return { client, state: useClientState(client) };
}

/**
 * Shares one client with the components below: `usePgNotify()` and `useTableChanges` without a `client` use it.
 * Give either `client` (yours to connect and close) or `url` and `options` (a client made, connected and closed here,
 * as useWebSocket does).
 */
export function PgNotifyProvider({ client, url, options, children }) {
  if (client) return createElement(PgNotifyContext.Provider, { value: client }, children);
  return createElement(OwnClient, { url, options }, children);
}

function OwnClient({ url, options, children }) {
  const { client } = useWebSocket(url, options);
  return createElement(PgNotifyContext.Provider, { value: client }, children);
}

/** The client of the nearest PgNotifyProvider (null outside one), and its state. */
export function usePgNotify() {
  const client = useContext(PgNotifyContext);
  return { client, state: useClientState(client) };
}

/** The client's state, re-rendering on changes: always the state of the client given, never an older one's. */
function useClientState(client) {
  const subscribe = useCallback((listener) => (client ? client.subscribe(listener) : () => {}), [client]);
  const snapshot = () => client?.state ?? 'closed';
  return useSyncExternalStore(subscribe, snapshot, snapshot);
}

/**
 * Calls `onChange` with every change of `tables` (a name or an array), as long as the component is mounted.
 * Returns `{ ready, error, state, recovered }`: whether the server has acknowledged the subscription, why it refused
 * it, the subscription's state (`pending`, `live`, `resuming`...) and whether its last resume lost nothing.
 */
export function useTableChanges(tables, onChange, options = {}) {
  const provided = useContext(PgNotifyContext);
  const client = 'client' in options ? options.client : provided;
  const { operations, filter } = options;
  const latest = useLatest(onChange);
  const [status, setStatus] = useState({ key: null, ready: false, error: null });
  const names = [...new Set(Array.isArray(tables) ? tables : [tables])].sort();
  const key = stableJson([names, operations ? [...new Set(operations)].sort() : null, filter ?? null]);
  const current = useRef(null); // { client, key, subscription, leaving }

  useEffect(() => {
    if (!client) return undefined;
    let entry = current.current;
    if (entry?.leaving && entry.client === client && entry.key === key) {
      entry.leaving = false; // StrictMode's remount: keep the subscription
    } else {
      entry?.subscription.unsubscribe(); // one still leaving goes now, before subscribing with other options
      const [tableNames, ops, rowFilter] = JSON.parse(key);
      const subscription = client.subscribe(tableNames, (change) => latest.current(change), {
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

  // The subscription's state and `recovered`, from the client's store (the current subscription's only).
  const subscribe = useCallback((listener) => (client ? client.subscribe(listener) : () => {}), [client]);
  const currentSubscription = () => {
    const entry = current.current;
    return entry && entry.client === client && entry.key === key && !entry.leaving ? entry.subscription : null;
  };
  const state = useSyncExternalStore(subscribe, () => currentSubscription()?.state ?? 'pending', () => 'pending');
  const recovered = useSyncExternalStore(subscribe, () => currentSubscription()?.recovered ?? false, () => false);

  // The status of the current tables/operations/filter only: not ready again as soon as they change.
  const isCurrent = status.key === key;
  return { ready: isCurrent && status.ready, error: isCurrent ? status.error : null, state, recovered };
}

const LOADING = Object.freeze({ rows: Object.freeze([]), status: 'loading', error: null, truncated: false });
const NO_CLIENT = Object.freeze({ ...LOADING, status: 'closed' });
const noStore = () => () => {};

/**
 * The rows of `table` (under `filter`), live: a snapshot, then every change applied (LiveRows). Returns
 * `{ rows, status, error, truncated }`; `rows` is ordered by primary key and is the same array until something changes.
 * Uses the nearest PgNotifyProvider's client (or `options.client`): no socket of its own. Only a change of the table,
 * the filter (by value, whatever the order of its keys) or the limit subscribes again.
 */
export function useLiveRows(table, options = {}) {
  const provided = useContext(PgNotifyContext);
  const client = 'client' in options ? options.client : provided;
  const key = stableJson([String(table), options.filter ?? null, options.limit ?? null]);
  const [live, setLive] = useState(null); // { client, key, rows: LiveRows }
  const current = useRef(null); // { client, key, rows, leaving }

  useEffect(() => {
    if (!client) return undefined;
    let entry = current.current;
    if (entry?.leaving && entry.client === client && entry.key === key) {
      entry.leaving = false; // StrictMode's remount: keep the subscription
    } else {
      entry?.rows.close();
      const [name, filter, limit] = JSON.parse(key);
      entry = { client, key, rows: new LiveRows(client, name, { filter: filter ?? undefined, limit: limit ?? undefined }), leaving: false };
      current.current = entry;
    }
    setLive(entry);
    return () => {
      // Deferred like the socket's close, so that StrictMode's unmount and remount do not subscribe again.
      entry.leaving = true;
      queueMicrotask(() => entry.leaving && entry.rows.close());
    };
  }, [client, key]);

  const rows = live && live.client === client && live.key === key ? live.rows : null;
  const view = useSyncExternalStore(rows ? rows.subscribe : noStore, () => (rows ? rows.getSnapshot() : client ? LOADING : NO_CLIENT),
    () => LOADING);
  return view;
}

/** A ref holding the latest value, updated during the commit, before layout effects and before any socket event. */
function useLatest(value) {
  const ref = useRef(value);
  useBeforeLayout(() => {
    ref.current = value;
  });
  return ref;
}

// The same as index.js's (each file stands alone: the client is one file to copy for apps without a bundler).
/** JSON with object keys sorted, so that `{a, b}` and `{b, a}` compare equal. */
function stableJson(value) {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${stableJson(value[key])}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}
