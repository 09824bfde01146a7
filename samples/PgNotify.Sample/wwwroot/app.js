// The sample page: every table PgNotify streams, live. Each table is a LiveRows: the server sends its current rows
// (a snapshot) and then every change after them, with no race between the two; after a resync frame or a reconnect
// it takes a fresh snapshot by itself (or, with lossless delivery, resumes exactly from its position).
import { LiveRows, PgNotifyClient } from '@pgnotify/client';

const STATE_TEXT = { open: 'connected', connecting: 'connecting', reconnecting: 'reconnecting', closed: 'closed' };

/** The forms of the three sample tables: which form field edits which column. */
const FORMS = {
  profiles: { form: 'profile-form', fields: { name: 'name', email: 'email', userId: 'user_id' } },
  registrations: { form: 'registration-form', fields: { profileId: 'profile_id', event: 'event' } },
  roles: { form: 'role-form', fields: { name: 'name' } },
};

/** Column order of the sample tables (row JSON from PostgreSQL's jsonb has its keys sorted by length). */
const COLUMNS = {
  profiles: ['id', 'name', 'email', 'user_id'],
  registrations: ['id', 'profile_id', 'event', 'created_at'],
  roles: ['id', 'name'],
};

const stateElement = document.getElementById('connection-state');
const errorElement = document.getElementById('error');

/** @type {Map<string, { name: string, live: LiveRows, element: HTMLElement }>} */
const tables = new Map();

/** A row's key, from the table's primary key columns (LiveRows.key). */
const keyOf = (table, row) => (table.live.key ?? ['id']).map((column) => String(row[column])).join('-');

function showState(state) {
  const text = STATE_TEXT[state] ?? state;
  stateElement.textContent = text;
  stateElement.dataset.state = text;
}

function showError(error) {
  errorElement.textContent = error?.message ?? String(error);
  errorElement.hidden = false;
}

async function fetchJson(url, init) {
  const response = await fetch(url, init);
  if (!response.ok) {
    const text = await response.text();
    throw new Error(`${init?.method ?? 'GET'} ${url}: ${response.status} ${text}`);
  }
  return response.json();
}

function render(table) {
  const { rows, status, error } = table.live;
  table.element.dataset.status = status;
  if (status === 'failed') {
    table.element.replaceChildren(Object.assign(document.createElement('p'), { className: 'empty', textContent: error.message }));
    return;
  }
  if (status === 'loading') return; // 'Loading…' stays until the snapshot
  const columns = [...new Set([...(COLUMNS[table.name] ?? []), ...rows.flatMap((row) => Object.keys(row))])];
  const form = FORMS[table.name];

  if (rows.length === 0) {
    const empty = document.createElement('p');
    empty.className = 'empty';
    empty.textContent = 'No rows yet.';
    table.element.replaceChildren(empty);
    return;
  }

  const element = document.createElement('table');
  const head = element.createTHead().insertRow();
  for (const column of columns) head.appendChild(document.createElement('th')).textContent = column;
  if (form) head.appendChild(document.createElement('th'));

  const body = element.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    tr.id = `${table.name}-row-${keyOf(table, row)}`;
    for (const column of columns) tr.insertCell().textContent = cellText(row[column]);
    if (form) {
      const actions = tr.insertCell();
      actions.append(button('Edit', 'edit', () => startEdit(table.name, row)), ' ',
        button('Delete', 'delete', () => remove(table.name, row.id)));
    }
  }
  table.element.replaceChildren(element);
}

function cellText(value) {
  if (value === null || value === undefined) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function button(text, className, onClick) {
  const element = document.createElement('button');
  element.type = 'button';
  element.className = className;
  element.textContent = text;
  element.addEventListener('click', onClick);
  return element;
}

function addTable(name) {
  let element = document.getElementById(`${name}-table`);
  if (!element) {
    // A table added in configuration only (PgNotify__Tables__3=orders): shown read-only.
    const section = document.createElement('section');
    section.appendChild(document.createElement('h2')).textContent = name;
    element = section.appendChild(document.createElement('div'));
    element.id = `${name}-table`;
    element.className = 'rows';
    document.getElementById('other-tables').appendChild(section);
  }
  element.replaceChildren(Object.assign(document.createElement('p'), { className: 'loading', textContent: 'Loading…' }));
  const table = { name, live: new LiveRows(client, name), element };
  table.live.on('change', () => render(table));
  tables.set(name, table);
  return table;
}

// --- The forms: writes go to the JSON API; the page learns about them from the WebSocket, like about any change. ---

function startEdit(tableName, row) {
  const { form: formId, fields } = FORMS[tableName];
  const form = document.getElementById(formId);
  form.elements.id.value = row.id;
  for (const [field, column] of Object.entries(fields)) form.elements[field].value = row[column] ?? '';
  if (form.elements.password) form.elements.password.hidden = true;
  form.querySelector('[type=submit]').textContent = 'Save';
  form.querySelector('.cancel').hidden = false;
}

function resetForm(form) {
  form.reset();
  form.elements.id.value = '';
  if (form.elements.password) form.elements.password.hidden = false;
  form.querySelector('[type=submit]').textContent = 'Add';
  form.querySelector('.cancel').hidden = true;
}

async function remove(tableName, id) {
  try {
    await fetchJson(`/api/${tableName}/${id}`, { method: 'DELETE' });
  } catch (error) {
    showError(error);
  }
}

for (const [tableName, { form: formId }] of Object.entries(FORMS)) {
  const form = document.getElementById(formId);
  form.querySelector('.cancel').addEventListener('click', () => resetForm(form));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = {};
    for (const element of form.elements) {
      if (!element.name || element.name === 'id' || element.hidden) continue;
      body[element.name] = element.type === 'number' ? (element.value === '' ? null : Number(element.value)) : element.value;
    }
    const id = form.elements.id.value;
    try {
      await fetchJson(id ? `/api/${tableName}/${id}` : `/api/${tableName}`, {
        method: id ? 'PUT' : 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      errorElement.hidden = true;
      resetForm(form);
    } catch (error) {
      showError(error);
    }
  });
}

// --- Start: one client, a LiveRows for every streamed table, connect. ---

const client = new PgNotifyClient('/ws/changes/', { onState: showState, onError: showError });
showState(client.state === 'closed' ? 'connecting' : client.state);

try {
  const { tables: names } = await fetchJson('/api/tables');
  for (const name of names) addTable(name);
  client.connect();
} catch (error) {
  showError(error);
}

// For the console (and the browser tests): window.pgnotify.client.state, window.pgnotify.tables.get('roles').rows, …
window.pgnotify = { client, tables };
