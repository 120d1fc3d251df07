/**
 * The seam between the ring and the ways of sharing pages. A transport sets up
 * a ring pair with a peer (memfd + eventfd + UNIX socket locally; grants +
 * event channel + xenstore on Xen) and hands back a {@link RingLink}. Every
 * layer above (channel, Socket, Server) is shared by all transports.
 */
import type { CancelSignal } from './cancel';
import type { PoolOptions } from '../pool/layout';
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
  /** Page-reference pool asked for (parsed options.pool); undefined: the transport's default. */
  pool?: PoolOptions;
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
  /** Page-reference pool offered to each peer (parsed options.pool); undefined: the transport's default. */
  pool?: PoolOptions;
}

export interface Listener {
  address(): TransportAddress;
  close(): void;
  ref(): void;
  unref(): void;
}

/**
 * A listen() that completes later (Xen: xenstore) but may know its address
 * already, as net's listen() has bound it on return: `address()` gives it
 * (null when not known yet).
 */
export type PendingListener = Promise<Listener> & { address?: () => TransportAddress | null };

/**
 * One cancellation idiom for every wait: an AbortSignal (a connect's is a
 * CancelSignal, its cheaper subset: cancel.ts). Aborting gives up
 * the operation, frees whatever it took (a link made meanwhile is released,
 * a listener that came up is closed) and rejects with the signal's reason.
 */
export interface Transport {
  readonly name: 'local' | 'xen';
  /**
   * Connects: resolves with a link, or rejects with a Node-style coded error
   * (ECONNREFUSED, ETIMEDOUT, ...). Invalid arguments throw synchronously.
   */
  connect(req: ConnectRequest, signal: CancelSignal): Promise<RingLink>;
  /**
   * Starts listening and calls `onLink` for each accepted peer. Returns the
   * listener at once when it is bound synchronously (as net's, so that
   * server.address() works right after listen()), else a promise of it.
   * Invalid arguments throw synchronously; bind errors (EADDRINUSE) reject.
   * `onError`: a listening listener stopped hearing peers (it is closed by then).
   */
  listen(
    req: ListenRequest,
    onLink: (link: RingLink) => void,
    signal: AbortSignal,
    onError?: (err: Error) => void,
  ): Listener | PendingListener;
}
