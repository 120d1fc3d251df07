/**
 * Kept links (issue 14): what each side of a local connection keeps after an
 * orderly close, so that the client's next connection to the same port is
 * one message each way on the socket both already have (REOPEN, REOPENED:
 * local_handshake.ts) instead of a new rendezvous connection. A new
 * connection made afresh costs each side a socket, a pipe, fds passed and
 * checked, watchers and, on the server, a wake-up by connect(); a TCP
 * connection on loopback costs less than that (docs/benchmark.md).
 *
 * Prepared rings: the side that closes last (it finds the peer's live byte
 * gone) initialises the ring for the next connection at once and marks it
 * Ready in the reuse byte (REUSE_BYTE); the client's next connect then
 * claims it (compare-and-swap), goes on it and sends a claimed REOPEN,
 * answered by nothing: like TCP's connect, it waits for no reply, and the
 * server attaches to the ring as it finds it. A ring nobody prepared (the
 * two sides closed at once and neither saw the other gone) is asked for as
 * before: REOPEN, the server initialises it, REOPENED. The server frees a
 * parked link only by moving the reuse byte to Dropped, which a claim
 * forbids: a claimed link freed from the cache waits for its REOPEN.
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
 * ring until a REOPEN is answered or a prepared ring claimed), and the
 * control page is initialised again (indices, orders, live and notify
 * bytes, the extension: all a side reads there) only once both endpoints
 * closed: by the side that closed last, or by the server when the client
 * asks (it sends REOPEN after its own endpoint closed). Every index is
 * checked by the new endpoints as on a fresh ring, whoever initialised it:
 * a peer that marks garbage Ready only breaks its own next connection
 * (EPROTO); one that claims and never sends its REOPEN holds the link until
 * the handshake timeout. A kept socket that reads anything but a
 * REOPEN (server) or is closed by the peer is freed. Bounded per peer and in
 * all, freed after an idle time by one unref'd timer (the client's shorter
 * than the server's, so that a client rarely asks for a link the server is
 * freeing; when it does it sees the close and connects afresh). Main thread
 * only (a worker's teardown would leave fds), and off with XENRING_RECYCLE=0
 * or XENRING_REUSE=0.
 * @internal
 */
import { closeQuietly, native, type FdWatcher, type Notifier, type SharedMapping } from '../native';
import type { TransportAddress } from '../ring/link';
import { CONTROL, Live, NOTIFY } from '../ring/vchan_state';
import { ExpiringCache } from './expiring_cache';
import { recyclingEnabled, type RecycleScope } from './local_recycle';

/**
 * A client's kept link unused this long is freed (shorter than the server's:
 * see above). Long enough for a client that connects every few seconds (a
 * poll, a health check): without its kept link a connect waits for the
 * server process to answer, which after a second of idleness took 1-3 ms
 * here against TCP's 0.3-0.4 (the kernel completes a TCP connect without the
 * server process); with it, 0.2-0.3 ms. A kept link holds no pool region:
 * its ring (the pages it touched: up to twice the ring size, 4 MiB with the
 * default 2 MiB rings) and a few fds; the peer's close frees it at once.
 */
export const REUSE_CLIENT_IDLE_MS = 10_000;
/** A server's parked link unused this long is freed. */
export const REUSE_SERVER_IDLE_MS = 12_000;
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

/**
 * The kept link's reuse byte on the ring's control page: past xenring's
 * extension (native/vchan_layout.h kExtEnd), on a page a local ring never
 * shares with ring data. Both sides write it, only by compare-and-swap
 * (SharedMapping.casByte): it decides who initialises a kept ring for its
 * next connection, and whether the client took it or the server freed it.
 * A new ring's page is zero (None), as is a recycled one's.
 */
export const REUSE_BYTE = 3080;

/** Values of the reuse byte. */
export const enum Reuse {
  /** A connection is on the ring, or nobody prepared it for the next one. */
  None = 0,
  /** A side that closed last is initialising the ring for the next connection. */
  Initialising = 1,
  /** Initialised for the next connection: the client may take it without waiting for the server. */
  Ready = 2,
  /** The client took it (its REOPEN says so); the server attaches to the ring as it is. */
  Claimed = 3,
  /** The server freed its side: nobody takes it. */
  Dropped = 4,
}

/** What kept links did in this process so far (tests, benches). */
export const reuseStats = {
  /** Client connects served by a kept link (claimed ones too). */
  reopened: 0,
  /** Of those, connects that took a ready link without waiting for the server (CLAIMED REOPEN). */
  claimed: 0,
  /** Client connects that sent REOPEN and then connected afresh (the server closed the link, or did not answer in time). */
  afresh: 0,
  /** REOPENs a server answered (REOPENED), or attached to (claimed). */
  answered: 0,
  /** Kept rings this process initialised for their next connection (it closed last). */
  prepared: 0,
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
  /**
   * The last channel's watcher on `waitFd`, handed to the next one (null: it
   * makes one). It goes on polling while kept, consuming any wake-up with
   * `notifier` (a peer's late kick): started and stopped per connection it
   * cost two failing epoll_ctl calls a connection (libuv's uv_poll_start
   * stops the handle first, and a connection that lives within one loop
   * turn never got it into epoll).
   */
  waitWatcher: FdWatcher | null;
  /** The last connection's wake-up seam over `kickFd`/`waitFd`, for the next endpoint. */
  notifier: Notifier;
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

/**
 * Prepares a kept ring for its next connection once both sides' endpoints
 * are closed (this side's already is): the side that closes last finds the
 * peer's live byte gone, initialises the control page as a server does
 * (`init`), and marks it Ready, so that the client's next connect need not
 * wait for the server to do it (one message, no answer: TCP's connect
 * costs the client no wait either). Two sides closing at once elect one by
 * the reuse byte; a side that finds the peer still open leaves it to the
 * peer. Safe against a hostile peer: it initialises only memory both
 * already share and every index is checked by the next endpoints.
 */
export function prepareKept(mapping: SharedMapping, role: 'client' | 'server', init: () => void): void {
  if (process.env.XENRING_REUSE_PREPARE === '0') return; // every reopen asks the server (A/Bs, tests of that path)
  try {
    if (mapping.readByte(role === 'client' ? CONTROL.srvLive : CONTROL.cliLive) !== Live.Gone) return;
    if (mapping.casByte(REUSE_BYTE, Reuse.None, Reuse.Initialising) !== Reuse.None) return;
    init();
    // The init asks for a kick at the client's first write; the server of a
    // prepared ring learns of it from the claimed REOPEN instead (and asks
    // once its reader sleeps): the client's kick would only wake it twice.
    mapping.casByte(CONTROL.cliNotify, NOTIFY.write, 0);
    // Fails only if the server freed it meanwhile (Dropped): then nobody takes it.
    if (mapping.casByte(REUSE_BYTE, Reuse.Initialising, Reuse.Ready) === Reuse.Initialising) reuseStats.prepared++;
  } catch {
    /* left Initialising: the next connect asks the server (REOPEN) */
  }
}

/** The client takes a Ready kept ring for its next connection: true if it did (the server cannot free it now). */
export function claimKept(k: KeptLink): boolean {
  try {
    return k.mapping.casByte(REUSE_BYTE, Reuse.Ready, Reuse.Claimed) === Reuse.Ready;
  } catch {
    return false;
  }
}

/** Whether the byte at `offset` of a kept ring's control page reads `value` (false if it cannot be read). */
function byteIs(mapping: SharedMapping, offset: number, value: number): boolean {
  try {
    return mapping.readByte(offset) === value;
  } catch {
    return false;
  }
}

/** Whether the client claimed the ring (the server's check of a claimed REOPEN). */
export function isClaimed(mapping: SharedMapping): boolean {
  return byteIs(mapping, REUSE_BYTE, Reuse.Claimed);
}

/**
 * Moves the reuse byte to `to` from whatever it holds, unless it holds
 * `unless` (false then, nothing written). A peer that keeps rewriting it
 * gets up to 8 tries: then it is taken as moved (nothing worse follows).
 */
function setReuse(mapping: SharedMapping, to: Reuse, unless: Reuse | null = null): boolean {
  for (let i = 0; i < 8; i++) {
    const v = mapping.readByte(REUSE_BYTE);
    if (v === unless) return false;
    if (v === to || mapping.casByte(REUSE_BYTE, v, to) === v) return true;
  }
  return true;
}

/** The reuse byte back to None, whatever it was (the server, as a connection starts on the ring). */
export function clearReuse(mapping: SharedMapping): void {
  setReuse(mapping, Reuse.None);
}

/**
 * The server frees its side (a parked link, or one it does not keep): the
 * reuse byte to Dropped unless the client claimed the ring (then its REOPEN
 * is coming: false, not freed). A mapping that cannot be read: freed.
 */
export function dropReuse(mapping: SharedMapping): boolean {
  try {
    return setReuse(mapping, Reuse.Dropped, Reuse.Claimed);
  } catch {
    return true;
  }
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
  entry.waitWatcher?.unref();
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
  return byteIs(e.mapping, CONTROL.srvLive, Live.Gone);
}

/**
 * The oldest link kept under `key` whose server runs as a uid `trusted`
 * accepts and closed its side of the last connection, taken out (the caller
 * owns it), or null. The others stay kept for a later connect.
 */
export function takeClientLink(key: string, trusted: (uid: number) => boolean): KeptLink | null {
  return clientKept.takeOldest((e) => e.key === key && trusted(e.peerUid) && (ready(e) || serverClosed(e)));
}

/** Whether a kept ring is initialised for its next connection (claimKept may take it). */
function ready(e: KeptLink): boolean {
  return byteIs(e.mapping, REUSE_BYTE, Reuse.Ready);
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
  /** Freed from the cache while the client had claimed it: waits for its REOPEN until this timer frees it. */
  late: NodeJS.Timeout | null;
  /** Freeing found the ring claimed: the listener waits for its REOPEN (or frees it, if closed). */
  claimed(): void;
}

/** Frees a parked link, or, if the client claimed its ring, leaves it to the listener (its REOPEN is coming). */
function dropParkedLink(e: ServerParked): void {
  if (dropReuse(e.mapping)) disposeKept(e);
  else e.claimed();
}

const parked = new ExpiringCache<ServerParked>(REUSE_TOTAL, REUSE_SERVER_IDLE_MS, dropParkedLink);

/** Parks a server's link until its client sends REOPEN (the caller set the watcher's callback). False: not parked. */
export function parkServerLink(entry: ServerParked): boolean {
  if (!reuseEnabled() || entry.scope.closed) return false;
  const same = (e: ServerParked) => e.peer === entry.peer;
  if (parked.count(same) >= REUSE_PER_PEER) parked.dropOldest(same);
  entry.watcher.unref();
  entry.waitWatcher?.unref();
  parked.add(entry);
  return true;
}

/** Takes a parked link out (the caller owns it now); false if it was freed meanwhile. */
export function unpark(entry: ServerParked): boolean {
  return parked.remove(entry);
}

/** Takes a link freed while claimed (ServerParked.late) for its REOPEN; false if it is no such link. */
export function takeLate(entry: ServerParked): boolean {
  if (entry.late === null) return false;
  clearTimeout(entry.late);
  entry.late = null;
  return true;
}

/** The links a listener has parked now, oldest first (its close looks for queued REOPENs first). */
export function parkedIn(scope: RecycleScope): ServerParked[] {
  return parked.values().filter((e) => e.scope === scope);
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
