// The React page: the same live tables as the plain page, with the hooks of clients/js/src/react.js. No JSX, so
// the page runs as is, without a build step: `h` is React.createElement.
import { createElement as h, useEffect, useRef, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { useTableChanges, useWebSocket } from '@pgnotify/client/react';

const STATE_TEXT = { open: 'connected', connecting: 'connecting', reconnecting: 'reconnecting', closed: 'closed' };
/** The tables shown, with their column order (row JSON from PostgreSQL's jsonb has its keys sorted by length). */
const COLUMNS = {
  profiles: ['id', 'name', 'email', 'user_id'],
  registrations: ['id', 'profile_id', 'event', 'created_at'],
  roles: ['id', 'name'],
};

const keyOf = (row) => String(row.id ?? JSON.stringify(row));

/** The rows after one change, as a new Map (React state is never mutated). */
function applyChange(rows, change) {
  const next = new Map(rows);
  if (change.operation === 'TRUNCATE') next.clear();
  if (change.old) next.delete(keyOf(change.old)); // UPDATE, DELETE
  if (change.data) next.set(keyOf(change.data), change.data); // INSERT, UPDATE
  return next;
}

function App() {
  const [renders, setRenders] = useState(0);
  const [resyncs, setResyncs] = useState(0);

  // A new options object with new inline callbacks on every render: the hook keeps its one socket regardless.
  const { client, state } = useWebSocket('/ws/changes/', {
    onResync: () => setResyncs((n) => n + 1), // a resync frame or a reconnect: reload every table
    onError: (error) => console.warn('PgNotify:', error.message),
  });
  const stateText = STATE_TEXT[state] ?? state;

  return h('div', null,
    h('p', null,
      'Connection: ',
      h('span', { id: 'connection-state', className: 'state', 'data-state': stateText }, stateText), ' ',
      h('button', { id: 'rerender', type: 'button', onClick: () => setRenders((n) => n + 1) },
        'Re-render with new props'), ' ',
      'renders: ', h('span', { id: 'render-count' }, String(renders))),
    Object.keys(COLUMNS).map((table) => h(LiveTable, {
      key: table,
      client,
      tables: [table], // a new array every render: the hook compares by value and keeps its subscription
      caption: `${table} (render ${renders})`,
      reloadKey: resyncs,
      onChange: (change) => console.debug(`${change.operation} on ${change.table}`), // a new callback every render
    })));
}

function LiveTable({ client, tables, caption, reloadKey, onChange }) {
  const table = tables[0];
  const [rows, setRows] = useState(() => new Map());
  // Changes that arrive while the rows are being (re)loaded: the snapshot may miss them, so they go on top of it.
  const pending = useRef(null);

  const { ready, error } = useTableChanges(tables, (change) => {
    onChange(change);
    if (pending.current) pending.current.push(change);
    else setRows((current) => applyChange(current, change));
  }, { client });

  // Listen first, then read: load once the subscription is live, and again after every resync.
  useEffect(() => {
    if (!ready) return undefined;
    let active = true;
    const buffer = [];
    pending.current = buffer;
    fetch(`/api/rows/${encodeURIComponent(table)}`)
      .then((response) => (response.ok ? response.json() : Promise.reject(new Error(`${response.status}`))))
      .then((list) => {
        if (!active) return;
        setRows(buffer.reduce(applyChange, new Map(list.map((row) => [keyOf(row), row]))));
      })
      .catch((e) => console.warn(`loading ${table} failed:`, e.message))
      .finally(() => {
        if (pending.current === buffer) pending.current = null;
      });
    return () => {
      active = false;
    };
  }, [ready, reloadKey, table]);

  const sorted = [...rows.values()].sort((a, b) => (a.id ?? 0) - (b.id ?? 0));
  const columns = [...new Set([...COLUMNS[table], ...sorted.flatMap((row) => Object.keys(row))])];
  return h('section', null,
    h('h2', null, caption),
    error && h('p', { role: 'alert' }, error.message),
    sorted.length === 0
      ? h('p', { className: ready ? 'empty' : 'loading' }, ready ? 'No rows yet.' : 'Subscribing…')
      : h('table', { id: `${table}-table` },
        h('thead', null, h('tr', null, columns.map((c) => h('th', { key: c }, c)))),
        h('tbody', null, sorted.map((row) => h('tr', { key: keyOf(row), id: `${table}-row-${keyOf(row)}` },
          columns.map((c) => h('td', { key: c }, cellText(row[c]))))))));
}

function cellText(value) {
  if (value === null || value === undefined) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

createRoot(document.getElementById('root')).render(h(App));
