// Types of @pgnotify/client/react.

import type {
  Change,
  ConnectionState,
  PgNotifyClient,
  PgNotifyClientOptions,
  PgNotifyError,
  Row,
  SubscribeOptions,
} from './index.js';

export interface UseWebSocketResult {
  /** The component's client, the same object for as long as the url stays the same. */
  client: PgNotifyClient;
  /** Its connection state, re-rendering the component when it changes. */
  state: ConnectionState;
}

/**
 * One PgNotifyClient per component and url: connected while mounted, closed on unmount. Only a new `url` opens a
 * new socket; the callbacks may change on every render (the latest are called), the other options are read once.
 */
export declare function useWebSocket(url: string, options?: PgNotifyClientOptions): UseWebSocketResult;

export interface UseTableChangesOptions<R = Row> extends SubscribeOptions<R> {
  /** The client to subscribe with, usually from useWebSocket. Nothing is subscribed while it is null or undefined. */
  client: PgNotifyClient | null | undefined;
}

export interface UseTableChangesResult {
  /** Whether the server has acknowledged the subscription for the current tables, operations and filter. */
  ready: boolean;
  /** Why the server refused it, if it did. */
  error: PgNotifyError | null;
}

/**
 * Calls `onChange` with every change of `tables` while the component is mounted. A new inline `onChange` on every
 * render is fine: it never resubscribes. Only a change of the tables, operations or filter (by value) does.
 */
export declare function useTableChanges<R = Row>(
  tables: string | string[],
  onChange: (change: Change<R>) => void,
  options: UseTableChangesOptions<R>,
): UseTableChangesResult;
