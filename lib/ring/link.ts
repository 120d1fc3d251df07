/**
 * What the ring needs from a transport: a connected ring pair. A transport
 * sets one up with a peer (memfd + eventfd + UNIX socket locally; grants +
 * event channel + xenstore on Xen) and hands back a {@link RingLink}; the ring
 * and every layer above it are shared by all transports. Lives here, not in
 * transports/, so that the ring never imports from the layer above it.
 */
import type { FdWatcher, RingEndpoint } from '../native';
import type { PoolLink } from '../pool/pool_link';

/** Where an endpoint is, in the transport's own terms. */
export interface TransportAddress {
  /** local: the rendezvous socket path; xen: the domain id as a string. */
  address: string;
  /** 'local' or 'xen'. */
  family: string;
  /** The service the connection was made to (number or name). */
  port: number | string;
}

/** A connected ring pair, ready for a stream. */
export interface RingLink {
  readonly endpoint: RingEndpoint;
  /** Poll readable: the peer notified us (call endpoint.service() or ack(), then service the rings). */
  readonly waitFd: number;
  /** Optional fd that becomes readable/hung up when the peer process dies (local). */
  readonly hangupFd: number | null;
  /**
   * hangupFd became readable: reads what the peer sent there (a pool region,
   * local_regions.ts). True once it hung up; absent: readable means hung up.
   * Throws (EPROTO) for a message the peer may not send.
   */
  rendezvousRead?(): boolean;
  /**
   * A watcher the transport already has polling hangupFd for readable and
   * hang-up (its handshake's), for the channel to take over with its own
   * callback instead of making another; null once taken. release() closes
   * it if nobody took it.
   */
  takeHangupWatcher?(): FdWatcher | null;
  /**
   * A watcher the transport already has on waitFd (a kept link's, from the
   * connection before), stopped, for the channel to take with its own
   * callback instead of making one; null once taken or if there is none.
   */
  takeWaitWatcher?(): FdWatcher | null;
  /**
   * At close, before release(): offers the channel's watchers (on waitFd
   * and hangupFd) to a link that may keep them for its next connection.
   * True: the link owns them now (it closes them if it does not keep
   * them); false: the channel closes them.
   */
  adoptWatchers?(wait: FdWatcher, hangup: FdWatcher | null): boolean;
  /** Both sides speak xenring's extension (half-close); false for plain vchan peers. */
  readonly ext: boolean;
  readonly local: TransportAddress;
  readonly remote: TransportAddress;
  /**
   * The connection's page-reference pool (both directions), when the peers
   * agreed on one; absent or null: no pool, the ring carries every byte.
   * The link owns it: release() closes it (views the user holds stay readable).
   */
  readonly pool?: PoolLink | null;
  /**
   * Frees every resource the transport took (the pool too). Idempotent.
   * `orderly`: the channel closed in order (end of data told to the peer)
   * and never failed (no reset, peer death or protocol error seen), so a
   * transport may keep memory of its own for a next connection.
   */
  release(orderly?: boolean): void;
}
