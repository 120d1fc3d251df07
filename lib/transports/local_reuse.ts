/**
 * Kept links (issue 14): what each side of a local connection keeps after an
 * orderly close, so that the client's next connection to the same port is
 * one message each way on the socket both already have (REOPEN, REOPENED:
 * local_handshake.ts) instead of a new rendezvous connection. A new
 * connection made afresh costs each side a socket, a pipe, fds passed and
 * checked, watchers and, on the server, a wake-up by connect(); a TCP
 * connection on loopback costs less than that (docs/benchmark.md).
 *
 * Kept: the rendezvous socket, both wake-up pipe ends, the ring mapping, the
 * orders and pool sizes agreed, and the watchers on the socket and the
 * wake-up pipe. Only links whose pool
 * made no region (regions on demand: none passed) are kept; a pool region
 * is never handed on.
 *
 * Safety (README "The peer is hostile"): a kept link goes back only to the
 * process at the other end of the same socket, which already had it; each
 * side's endpoint is closed before it is kept (nothing of ours touches the
 * ring until a REOPEN is answered), and the server initialises the control
 * page again (indices, orders, live and notify bytes, the extension: all a
 * side reads there) only when the client asks (it sends REOPEN after its own
 * endpoint closed). Every index is checked by the new endpoints as on a
 * fresh ring. A kept socket that reads anything but a
 * REOPEN (server) or is closed by the peer is freed. Bounded per peer and in
 * all, freed after an idle time by one unref'd timer (the client's shorter
 * than the server's, so that a client rarely asks for a link the server is
 * freeing; when it does it sees the close and connects afresh). Main thread
 * only (a worker's teardown would leave fds), and off with XENRING_RECYCLE=0
 * or XENRING_REUSE=0.
 * @internal
 */
import { closeQuietly, native, type FdWatcher, type SharedMapping } from '../native';
import type { TransportAddress } from '../ring/link';
import { CONTROL, Live } from '../ring/vchan_state';
import { ExpiringCache } from './expiring_cache';
import { recyclingEnabled, type RecycleScope } from './local_recycle';

/** A client's kept link unused this long is freed (shorter than the server's: see above). */
export const REUSE_CLIENT_IDLE_MS = 1000;
/** A server's parked link unused this long is freed. */
export const REUSE_SERVER_IDLE_MS = 2000;
/** Links kept per port (client) or per peer process (server). */
export const REUSE_PER_PEER = 2;
/** Links kept in all, per side. */
export const REUSE_TOTAL = 16;
/**
 * How long a client waits for REOPENED before it connects afresh. It asks
 * only a server that closed its side of the last connection (its live byte
 * reads gone), which answers at once; a hostile or hung one costs this.
 */
export const REUSE_WAIT_MS = 50;

/** What kept links did in this process so far (tests, benches). */
export const reuseStats = {
  /** Client connects served by a kept link. */
  reopened: 0,
  /** Client connects that sent REOPEN and then connected afresh (the server closed the link, or did not answer in time). */
  afresh: 0,
  /** REOPENs a server answered. */
  answered: 0,
};

/** Off with XENRING_REUSE=0 (and with recycling: XENRING_RECYCLE=0, worker threads). */
export function reuseEnabled(): boolean {
  return recyclingEnabled() && process.env.XENRING_REUSE !== '0';
}

/** The pool sizes agreed for a link (0: none that way). */
export interface AgreedPool {
  toServer: number;
  toClient: number;
}

/** What a side keeps of a link: its fds, its mapping of the ring, what was agreed. */
export interface KeptLink {
  /** The rendezvous socket. */
  conn: number;
  /** Our wake-up pipe's read end, and the peer's write end we kick. */
  waitFd: number;
  kickFd: number;
  mapping: SharedMapping;
  leftOrder: number;
  rightOrder: number;
  pool: AgreedPool | null;
  peerUid: number;
  local: TransportAddress;
  remote: TransportAddress;
  /** Polls `conn` while kept; handed to the next connection's channel. */
  watcher: FdWatcher;
  /** The last channel's watcher on `waitFd`, stopped; handed to the next one (null: it makes one). */
  waitWatcher: FdWatcher | null;
}

/**
 * What a poll event on a kept socket brought: a message (its fds already
 * closed: none is ever expected there), null when nothing is queued (a
 * spurious wake-up), undefined when the socket failed or the peer closed it.
 */
export function keptMessage(conn: number, events: number): { data: Buffer; fdCount: number } | null | undefined {
  let msg;
  try {
    msg = events < 0 ? undefined : native.recvMessage(conn);
  } catch {
    msg = undefined;
  }
  if (msg === null || msg === undefined) return msg;
  msg.fds.forEach(closeQuietly);
  return msg.data.length === 0 ? undefined : { data: msg.data, fdCount: msg.fds.length };
}

/** Frees everything a kept link holds. */
export function disposeKept(k: KeptLink): void {
  k.watcher.close();
  k.waitWatcher?.close();
  closeQuietly(k.conn);
  closeQuietly(k.waitFd);
  closeQuietly(k.kickFd);
  try {
    k.mapping.unmap();
  } catch {
    /* still pinned: cannot be, its endpoint closed before it was kept */
  }
}

// ---- client ------------------------------------------------------------------

interface ClientKept extends KeptLink {
  /** Socket path, asked order and pool offered: a connect asking for the same gets it. */
  key: string;
}

const clientKept = new ExpiringCache<ClientKept>(REUSE_TOTAL, REUSE_CLIENT_IDLE_MS, disposeKept);

/** The cache key of a client's link. */
export function clientKey(path: string, order: number, poolOffered: number): string {
  return `${path}\0${order}\0${poolOffered}`;
}

/**
 * Keeps a client's link under `key`. Its watcher (unref'd: a kept link never
 * keeps the process alive) frees it when the server sends anything or closes.
 * False: not kept (the caller frees it all).
 */
export function keepClientLink(key: string, link: KeptLink): boolean {
  if (!reuseEnabled()) return false;
  const entry: ClientKept = Object.assign(link, { key });
  const same = (e: ClientKept) => e.key === key;
  if (clientKept.count(same) >= REUSE_PER_PEER) clientKept.dropOldest(same);
  entry.watcher.setCallback(() => {
    if (clientKept.remove(entry)) disposeKept(entry);
  });
  entry.watcher.unref();
  clientKept.add(entry);
  return true;
}

/**
 * Whether the server closed its side of a kept link's last connection: its
 * live byte on the ring's control page (at offset 0 of a local ring) reads
 * gone. Until then a REOPEN would wait for it, which an application that
 * never reads that connection's end makes forever.
 */
function serverClosed(e: KeptLink): boolean {
  try {
    return e.mapping.readByte(CONTROL.srvLive) === Live.Gone;
  } catch {
    return false;
  }
}

/**
 * The oldest link kept under `key` whose server runs as a uid `trusted`
 * accepts and closed its side of the last connection, taken out (the caller
 * owns it), or null. The others stay kept for a later connect.
 */
export function takeClientLink(key: string, trusted: (uid: number) => boolean): KeptLink | null {
  return clientKept.takeOldest((e) => e.key === key && trusted(e.peerUid) && serverClosed(e));
}

/** Links a client keeps now (tests, leak checks). */
export function keptClientLinks(): number {
  return clientKept.size;
}

// ---- server ------------------------------------------------------------------

export interface ServerParked extends KeptLink {
  /** uid:pid of the client process (SO_PEERCRED at the accept): the per-peer bound. */
  peer: string;
  /** The listener that accepted it: its close frees what it parked. */
  scope: RecycleScope;
}

const parked = new ExpiringCache<ServerParked>(REUSE_TOTAL, REUSE_SERVER_IDLE_MS, disposeKept);

/** Parks a server's link until its client sends REOPEN (the caller set the watcher's callback). False: not parked. */
export function parkServerLink(entry: ServerParked): boolean {
  if (!reuseEnabled() || entry.scope.closed) return false;
  const same = (e: ServerParked) => e.peer === entry.peer;
  if (parked.count(same) >= REUSE_PER_PEER) parked.dropOldest(same);
  entry.watcher.unref();
  parked.add(entry);
  return true;
}

/** Takes a parked link out (the caller owns it now); false if it was freed meanwhile. */
export function unpark(entry: ServerParked): boolean {
  return parked.remove(entry);
}

/** A listener closed: its parked links go (their clients see the close). */
export function dropParked(scope: RecycleScope): void {
  parked.drop((e) => e.scope === scope);
}

/** Links parked now (tests, leak checks). */
export function parkedLinks(): number {
  return parked.size;
}

/** Frees every kept link, both sides (tests). */
export function dropKeptLinks(): void {
  clientKept.drop();
  parked.drop();
}
