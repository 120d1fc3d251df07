/**
 * The seam between the ring and the ways of sharing pages. A transport sets up
 * a ring pair with a peer (memfd + eventfd + UNIX socket locally; grants +
 * event channel + xenstore on Xen) and hands back a {@link RingLink}. Every
 * layer above (channel, Socket, Server) is shared by all transports.
 */
import type { RingLink, TransportAddress } from '../ring/link';

// The link a transport produces is the ring's own type (ring/link.ts).
export type { RingLink, TransportAddress };

export interface ConnectRequest {
  port: number | string;
  /** xen: the server's domain. */
  domid?: number;
  /** Bytes per direction (power of two). */
  ringSize?: number;
  /** local: rendezvous directory. */
  dir?: string;
  /** local: uids besides ours a server may run as. */
  allowUid?: number | readonly number[];
}

export interface ListenRequest {
  /** 0 picks a free port. */
  port: number | string;
  /** xen: the only domain allowed to connect (default: any). */
  domid?: number;
  ringSize?: number;
  dir?: string;
  backlog?: number;
  /** local: uids besides ours that may connect. */
  allowUid?: number | readonly number[];
}

export interface Listener {
  address(): TransportAddress;
  close(): void;
  ref(): void;
  unref(): void;
}

export interface PendingConnect {
  cancel(): void;
}

export interface Transport {
  readonly name: 'local' | 'xen';
  /** Calls back once: a link, or an error with a Node-style code (ECONNREFUSED, ...). */
  connect(req: ConnectRequest, callback: (err: Error | null, link?: RingLink) => void): PendingConnect;
  /** Calls `onLink` for each accepted peer; `callback` once the listener is up or failed. */
  listen(
    req: ListenRequest,
    onLink: (link: RingLink) => void,
    callback: (err: Error | null, listener?: Listener) => void,
  ): void;
}
