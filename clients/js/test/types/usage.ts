// Compiled with `tsc --noEmit` by test/types.test.js: the declarations must accept real usage and reject mistakes.
import { WebSocket } from 'ws';
import { createElement } from 'react';
import {
  comparePositions,
  LiveRows,
  matchesFilter,
  PgNotifyClient,
  PgNotifyError,
  type LiveRowsStatus,
  type Snapshot,
  type Change,
  type Position,
  type ConnectionState,
  type Resync,
  type ResyncReason,
  type SubscriptionState,
} from '@pgnotify/client';
import { PgNotifyProvider, useLiveRows, usePgNotify, useTableChanges, useWebSocket } from '@pgnotify/client/react';

interface Profile {
  id: number;
  name: string;
  email: string | null;
  user_id: number | null;
}

const client = new PgNotifyClient('/ws/changes/', {
  WebSocket,
  minDelay: 250,
  onState: (state: ConnectionState) => console.log(state),
  onResync: (resync: Resync) => console.log(resync.reason, resync.missed),
  onError: (error) => console.log(error instanceof PgNotifyError ? error.code : error.message),
});
const state: ConnectionState = client.connect().state;
void state;

const sub = client.subscribe<Profile>(
  'profiles',
  (change) => {
    if (change.operation === 'UPDATE') {
      const before: string = change.old.name;
      const after: string = change.data.name;
      void before, after;
    } else if (change.operation === 'DELETE') {
      const id: number = change.old.id;
      void id;
    }
  },
  { operations: ['INSERT', 'UPDATE'], filter: { user_id: 42, name: { in: ['a', 'b'] }, id: { gte: 10 } } },
);
sub.ready.then(() => sub.unsubscribe(), (error: PgNotifyError) => error.code);

// @ts-expect-error an unknown operation
client.subscribe('profiles', () => {}, { operations: ['UPSERT'] });
// @ts-expect-error a filter on a column the row type does not have
client.subscribe<Profile>('profiles', () => {}, { filter: { missing: 1 } });
// @ts-expect-error `data` is absent from a DELETE
client.subscribe<Profile>('profiles', (change: Change<Profile>) => change.operation === 'DELETE' && change.data.id);

export function Profiles({ userId }: { userId: number }) {
  const { client: socket, state: connection } = useWebSocket('/ws/changes/', { onResync: () => {} });
  const { ready, error } = useTableChanges<Profile>(
    ['profiles'],
    (change) => console.log(change.table, change.data?.name),
    { client: socket, filter: { user_id: userId } },
  );
  const label: string = `${connection} ${ready} ${error?.code ?? ''}`;
  return label;
}

// The browser's own WebSocket fits the option too.
new PgNotifyClient('wss://example.com/ws/changes/', { WebSocket: globalThis.WebSocket }).connect().close();

// Credentials, liveness, backoff, positions.
const withTicket = new PgNotifyClient(async () => `wss://example.com/ws/changes/?ticket=${await Promise.resolve('t')}`, {
  beforeConnect: async () => { await Promise.resolve(); },
  createWebSocket: (url) => new WebSocket(url, { headers: { Authorization: 'Bearer x' } }),
  heartbeatMs: 25_000,
  heartbeatTimeoutMs: 10_000,
  connectTimeoutMs: 15_000,
  welcomeTimeoutMs: 10_000,
  maxRetries: 10,
  minUptimeMs: 5_000,
  onGiveUp: (error) => console.log(error.code, error.attempt),
  positionStore: globalThis.sessionStorage,
});
withTicket.on('state', (s: ConnectionState) => s).on('resync', (r: Resync) => r.reason).off('error', () => {});
// @ts-expect-error an unknown event
withTicket.on('message', () => {});
const stopListening: () => void = withTicket.subscribe(() => {});
stopListening();
withTicket.reconnect().close();
const handle = withTicket.subscribe('profiles', () => {});
const subState: SubscriptionState = handle.state;
const recovered: boolean = handle.recovered;
void subState, recovered, handle.error?.code;

export function Shared() {
  const { client: shared, state: sharedState } = usePgNotify();
  const { ready, state: subscriptionState, recovered: resumed } = useTableChanges<Profile>('profiles', (change) => change.data?.name); // the provider's client
  const watched: SubscriptionState = subscriptionState;
  return `${shared?.state} ${sharedState} ${ready} ${watched} ${resumed}`;
}
export const app = createElement(PgNotifyProvider, { url: '/ws/changes/', options: { minDelay: 100 } }, createElement(Shared));
export const appWithClient = createElement(PgNotifyProvider, { client }, createElement(Shared));

// Every reason the server or the client gives for a resync is named by ResyncReason.
const reasons: ResyncReason[] = ['slow_consumer', 'listener_reconnected', 'listener_overflow', 'position_expired', 'server_error', 'reconnected'];
// @ts-expect-error not a reason
const notAReason: ResyncReason = 'lost';
void reasons, notAReason;

// Snapshot-then-stream.
client.subscribe<Profile>('profiles', (change) => change.data?.name, {
  snapshot: true,
  limit: 100,
  filter: { user_id: 42 },
  onSnapshot: (snapshot: Snapshot<Profile>) => snapshot.rows.map((row) => row.name.length + snapshot.key.length),
});
const liveProfiles = new LiveRows<Profile>(client, 'profiles', { filter: { user_id: { in: [1, 2] } }, limit: 500 });
const liveStatus: LiveRowsStatus = liveProfiles.status;
const firstName: string | undefined = liveProfiles.rows[0]?.name;
liveProfiles.on('change', (view) => view.rows.length + (view.error?.code.length ?? 0));
const stopWatching: () => void = liveProfiles.subscribe(() => {});
void [liveStatus, firstName, stopWatching, matchesFilter({ id: 1 }, { id: 1 })];
// @ts-expect-error rows are read-only
liveProfiles.rows.push({ id: 1, name: 'x', email: null, user_id: null });
// @ts-expect-error not a status
const wrongStatus: LiveRowsStatus = 'open';
void wrongStatus;
// @ts-expect-error limit is a number
new LiveRows(client, 'profiles', { limit: '10' });

function ProfileList() {
  const { rows, status, error, truncated } = useLiveRows<Profile>('profiles', { filter: { user_id: 42 }, limit: 100 });
  return createElement('ul', { 'data-status': status, 'data-error': error?.code, 'data-truncated': truncated },
    rows.map((row) => createElement('li', { key: row.id }, row.name)));
}
void ProfileList;

// Positions: a number or a string of digits, ordered with comparePositions; never compared with `<` as numbers.
declare const change: Change<Profile>;
const lastSeen: Position | undefined = change.position;
if (lastSeen !== undefined) void comparePositions(lastSeen, '9007199254740993');
// @ts-expect-error a position is not a number only: it may be a string above 2^53 - 1
const asNumber: number | undefined = change.position;
// @ts-expect-error comparePositions takes positions, not bigints
void comparePositions(1n, 2);
void asNumber;
