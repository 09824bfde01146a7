// The React page: the same live tables as the plain page, with the hooks of clients/js/src/react.js. No JSX, so
// the page runs as is, without a build step: `h` is React.createElement. One PgNotifyProvider holds the page's one
// socket; each table is a useLiveRows: its current rows (a snapshot) and every change after them, with no race, and a
// fresh snapshot by itself after a resync or a reconnect.
import { createElement as h, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { PgNotifyProvider, useLiveRows, usePgNotify } from '@pgnotify/client/react';

const STATE_TEXT = { open: 'connected', connecting: 'connecting', reconnecting: 'reconnecting', closed: 'closed' };
/** The tables shown, with their column order (row JSON from PostgreSQL's jsonb has its keys sorted by length). */
const COLUMNS = {
  profiles: ['id', 'name', 'email', 'user_id'],
  registrations: ['id', 'profile_id', 'event', 'created_at'],
  roles: ['id', 'name'],
};

function App() {
  const [renders, setRenders] = useState(0);
  const { state } = usePgNotify(); // the provider's client
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
      table,
      caption: `${table} (render ${renders})`,
      options: {}, // a new object every render: the hook compares by value and keeps its subscription
    })));
}

function LiveTable({ table, caption, options }) {
  const { rows, status, error } = useLiveRows(table, options);
  const columns = [...new Set([...COLUMNS[table], ...rows.flatMap((row) => Object.keys(row))])];
  return h('section', { 'data-status': status, id: `${table}-section` },
    h('h2', null, caption),
    error && h('p', { role: 'alert' }, error.message),
    rows.length === 0
      ? h('p', { className: status === 'loading' ? 'loading' : 'empty' }, status === 'loading' ? 'Loading…' : 'No rows yet.')
      : h('table', { id: `${table}-table` },
        h('thead', null, h('tr', null, columns.map((c) => h('th', { key: c }, c)))),
        h('tbody', null, rows.map((row) => h('tr', { key: row.id, id: `${table}-row-${row.id}` },
          columns.map((c) => h('td', { key: c }, cellText(row[c]))))))));
}

function cellText(value) {
  if (value === null || value === undefined) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

createRoot(document.getElementById('root')).render(
  h(PgNotifyProvider, { url: '/ws/changes/', options: { onError: (error) => console.warn('PgNotify:', error.message) } },
    h(App)));
