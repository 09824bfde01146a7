// Types of @pgnotify/client/react.

import type { ReactNode } from 'react';
import type {
  Change,
  ConnectionState,
  LiveRowsOptions,
  LiveRowsView,
  PgNotifyClient,
  PgNotifyClientOptions,
  PgNotifyError,
  Row,
  SubscribeOptions,
  SubscriptionState,
  UrlSource,
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
export declare function useWebSocket(url: UrlSource, options?: PgNotifyClientOptions): UseWebSocketResult;

export type PgNotifyProviderProps =
  | { /** A client of yours, to connect and close yourself. */ client: PgNotifyClient; url?: undefined; options?: undefined; children?: ReactNode }
  | { client?: undefined; /** The url of a client made, connected and closed by the provider. */ url: UrlSource; options?: PgNotifyClientOptions; children?: ReactNode };

/** Shares one client with the components below it: usePgNotify, and useTableChanges without a `client`. */
export declare function PgNotifyProvider(props: PgNotifyProviderProps): ReactNode;

/** The client of the nearest PgNotifyProvider (null outside one), and its state. */
export declare function usePgNotify(): { client: PgNotifyClient | null; state: ConnectionState };

export interface UseTableChangesOptions<R = Row> extends SubscribeOptions<R> {
  /**
   * The client to subscribe with, e.g. from useWebSocket. Nothing is subscribed while it is null or undefined.
   * Leave it out to use the nearest PgNotifyProvider's.
   */
  client?: PgNotifyClient | null | undefined;
}

export interface UseTableChangesResult {
  /** Whether the server has acknowledged the subscription for the current tables, operations and filter. */
  ready: boolean;
  /** Why the server refused it, if it did. */
  error: PgNotifyError | null;
  /** The subscription's state: `resuming` while the socket is down, `live` again once resubscribed. */
  state: SubscriptionState;
  /** Whether its last return to `live` after a reconnect resumed without loss (see Subscription.recovered). */
  recovered: boolean;
}

/**
 * Calls `onChange` with every change of `tables` while the component is mounted. A new inline `onChange` on every
 * render is fine: it never resubscribes. Only a change of the tables, operations or filter (by value) does.
 */
export declare function useTableChanges<R = Row>(
  tables: string | string[],
  onChange: (change: Change<R>) => void,
  options?: UseTableChangesOptions<R>,
): UseTableChangesResult;

export interface UseLiveRowsOptions<R = Row> extends LiveRowsOptions<R> {
  /** The client to subscribe with; leave it out to use the nearest PgNotifyProvider's. Nothing happens while it is null. */
  client?: PgNotifyClient | null | undefined;
}

/**
 * The rows of `table` (under `filter`), live: a snapshot, then every change applied (see LiveRows). No socket of its
 * own: it uses the provider's client. A new inline filter object on every render is fine: only a change of the table,
 * the filter (by value) or the limit subscribes again. Without any client the status is `closed`.
 */
export declare function useLiveRows<R = Row>(table: string, options?: UseLiveRowsOptions<R>): LiveRowsView<R>;
