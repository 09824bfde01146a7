// Compiled with `tsc --noEmit` by test/types.test.js: the declarations must accept real usage and reject mistakes.
import { WebSocket } from 'ws';
import { PgNotifyClient, PgNotifyError, type Change, type ConnectionState, type Resync } from '@pgnotify/client';
import { useTableChanges, useWebSocket } from '@pgnotify/client/react';

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
