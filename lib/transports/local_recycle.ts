/**
 * What the local server keeps of a connection that closed in order, for the
 * next connection from the same client process (issue 14: a new
 * connection's fresh memfds cost a page fault per page first touched, 2.6-4.5
 * µs each on this VM, and making and mapping them ~50 µs; a TCP connection
 * reuses the kernel's warm buffers): its ring (memfd and our mapping) and
 * its pool region (ours, the one we send in).
 *
 * Safety (README "The peer is hostile"; docs/pool.md "Recycling"): memory
 * goes back only to the process that already had it, and only when nothing
 * of the old connection can touch it any more on our side:
 * - identity: the client's pid from SO_PEERCRED (the process that
 *   connected), the same pid in its HELLO, its uid ours, and its pidfs inode
 *   (Linux 6.9+) or its start time (/proc/<pid>/stat field 22) read at the
 *   accept: a process that reuses the pid later has another, so another
 *   key (an entry kept for a process gone since is never asked for, and
 *   expires);
 * - kept only after an orderly close, our ring endpoint closed (nothing of
 *   ours reads or writes the ring: no view of ring memory outlives it), and
 *   handed out only once the old peer has closed its end of the rendezvous
 *   socket (EOF: an honest peer has unmapped its ring and closed its pool
 *   first). The ring's control page is then zeroed as a fresh memfd reads
 *   (the server's usual init follows); ring data bytes stay (only the same
 *   peer had them, and a reader reads only between the indices). A region
 *   goes back only if every extent we sent came back (its last completions
 *   taken and checked then: PoolSender.close(true)) and no view of ours is
 *   left (mapping.holders 0); its queue page is zeroed. Old payload bytes
 *   stay, as ring bytes.
 * Only the server keeps memory for a peer: a client's SO_PEERCRED names the
 * process that called listen(), which may not be the one that accepted (a
 * client keeps only its own mapping of a ring handed to it again:
 * local_ring_cache.ts).
 * Bounded (per peer, in all), freed after RECYCLE_IDLE_MS unused by one
 * unref'd timer; main thread only (a worker's teardown would leave fds).
 * XENRING_RECYCLE=0 turns it off.
 * @internal
 */
import * as fs from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { PAGE_SIZE } from '../constants';
import { closeQuietly, native, type SharedMapping } from '../native';
import { POOL_DATA_OFFSET } from '../pool/layout';
import type { PoolMapping } from '../pool/native_pool';
import { ExpiringCache } from './expiring_cache';
import { ownUid } from './local_trust';

/** A kept region unused this long is unmapped and closed. */
export const RECYCLE_IDLE_MS = 2000;
/** Connections kept per peer process (a client reconnecting while an older connection closes). */
export const RECYCLE_PER_PEER = 2;
/** Connections kept in all. */
export const RECYCLE_TOTAL = 8;

/**
 * A local listener's share of the cache: what its connections leave is kept
 * while it is open, and freed when it closes (a closed server holds nothing
 * after it, whatever other listeners the process has).
 */
export interface RecycleScope {
  closed: boolean;
}

/** Who a connection's client is, as far as recycling goes. */
export interface PeerIdentity {
  /** uid, pid and start time (peerKey): all that kept entries are matched by. */
  readonly key: string;
  /** The listener that accepted it. */
  readonly scope: RecycleScope;
}

/** A kept connection's ring: its memfd, our mapping of it (no endpoint pins it any more), its order (each direction). */
export interface KeptRing {
  order: number;
  fd: number;
  mapping: SharedMapping;
}

/** A kept connection's pool region (ours: we send in it). */
export interface KeptRegion {
  poolBytes: number;
  mapping: PoolMapping;
  /** Takes the old peer's last completions, closes the old queues: true if every extent came back (call once). */
  settle: () => boolean;
  fd: number;
}

interface Kept {
  key: string;
  scope: RecycleScope;
  ring: KeptRing | null;
  region: KeptRegion | null;
  /** The old rendezvous socket: its EOF says the old peer let go. */
  conn: number;
}
let queuePageZero: Buffer | null = null;
let controlPageZero: Buffer | null = null;
let statBuffer: Buffer | null = null;

/**
 * A process's start time (clock ticks since boot, /proc/<pid>/stat field
 * 22) as text, or null when it is gone or a zombie (it can never connect
 * again).
 */
export function processStartTime(pid: number): string | null {
  // open/read/close into one buffer: half the CPU of readFileSync (~10 µs
  // here), paid at each accept that may recycle.
  let fd: number;
  try {
    fd = fs.openSync(`/proc/${pid}/stat`, 'r');
  } catch {
    return null;
  }
  let stat: string;
  try {
    statBuffer ??= Buffer.allocUnsafe(1024);
    stat = statBuffer.toString('latin1', 0, fs.readSync(fd, statBuffer, 0, statBuffer.length, 0));
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
  // The command name (field 2) may hold spaces and parentheses: fields 3.. follow the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ', 20);
  const state = fields[0];
  const start = fields[19];
  if (state === 'Z' || state === 'X' || state === 'x' || start === undefined || !/^\d+$/.test(start)) return null;
  return start;
}

/** The cache key of a peer process: a pid alone could be a later process's. */
export function peerKey(uid: number, pid: number, startTime: string): string {
  return `${uid}:${pid}:${startTime}`;
}

/** Off with XENRING_RECYCLE=0, and in worker threads. */
export function recyclingEnabled(): boolean {
  return isMainThread && process.env.XENRING_RECYCLE !== '0';
}

/**
 * The identity of the client process behind accepted socket `conn` (its
 * SO_PEERCRED `peer`), read at the accept, or null: another uid, ourselves,
 * a process already gone, or a kernel without SO_PEERPIDFD (then nothing is
 * recycled). Where pidfds are pidfs (Linux 6.9+), the connector's pidfs
 * inode names it: no later process has it. Elsewhere the start time comes
 * from /proc/<pid>; then the process that connected (its pidfd, the
 * kernel's reference taken at connect()) must still exist: while it does its
 * pid is no other process's, so the /proc entry read was its own. A
 * connector that exited between connect() and this accept may have left its
 * pid to another process, whose kept ring and region would otherwise go to
 * whoever holds the socket.
 */
export function peerIdentity(peer: { pid: number; uid: number }, conn: number, scope: RecycleScope): PeerIdentity | null {
  if (!recyclingEnabled() || peer.uid !== ownUid() || !(peer.pid > 0) || peer.pid === process.pid) return null;
  let pidfd = -1;
  try {
    // Linux 6.9+: the connector's pidfs inode names it for good, whatever
    // became of its pid (one getsockopt and one fstat instead of /proc).
    const id = native.socketPeerProcessId(conn);
    if (id !== null) return { key: peerKey(peer.uid, peer.pid, `p${id}`), scope };
    pidfd = native.socketPeerPidfd(conn);
    if (pidfd < 0) return null;
    const startTime = processStartTime(peer.pid);
    if (startTime === null || !native.pidfdAlive(pidfd)) return null;
    return { key: peerKey(peer.uid, peer.pid, startTime), scope };
  } catch {
    return null; // recycling is only a saving: without a sure identity, fresh memory
  } finally {
    closeQuietly(pidfd);
  }
}

function disposeRing(ring: KeptRing | null): void {
  if (ring === null) return;
  try {
    ring.mapping.unmap();
  } catch {
    /* still pinned: cannot be, the endpoint closed before it was kept */
  }
  closeQuietly(ring.fd);
}

function disposeRegion(region: KeptRegion | null, settled = false): void {
  if (region === null) return;
  if (!settled) region.settle();
  region.mapping.close(); // unmapped now: no view is left, or the last one unmaps it
  closeQuietly(region.fd);
}

function dispose(entry: Kept): void {
  disposeRing(entry.ring);
  disposeRegion(entry.region);
  closeQuietly(entry.conn);
}

const kept = new ExpiringCache<Kept>(RECYCLE_TOTAL, RECYCLE_IDLE_MS, dispose);

/**
 * Whether the old peer closed its rendezvous socket (EOF): 'closed'; 'open'
 * while it has not (nothing queued); 'bad' when it sent something after its
 * close or the socket failed (the entry is freed). On a SEQPACKET socket an
 * empty record reads as EOF does (0 bytes), so EOF is confirmed by a second
 * read: EOF reads 0 again, where an empty record, once taken, leaves nothing
 * (EAGAIN) or the next record.
 */
function peerState(conn: number): 'closed' | 'open' | 'bad' {
  try {
    for (let reads = 0; reads < 2; reads++) {
      const msg = native.recvMessage(conn);
      if (msg === null) return reads === 0 ? 'open' : 'bad';
      msg.fds.forEach(closeQuietly);
      if (msg.data.length !== 0) return 'bad';
    }
    return 'closed';
  } catch {
    return 'bad';
  }
}

/**
 * Keeps what we had of a connection that closed in order: its `ring` (our
 * endpoint closed), our pool `region` (PoolSender.close(true)), and the old
 * rendezvous socket `conn` (to see the peer's close). False: nothing kept,
 * the caller frees them.
 */
export function keepConnection(id: PeerIdentity, ring: KeptRing | null, region: KeptRegion | null, conn: number): boolean {
  // (The start time is not read again here: a process that took the pid
  // since has another key, and this entry just expires; ~25 µs saved.)
  if ((ring === null && region === null) || !recyclingEnabled() || id.scope.closed) return false;
  const samePeer = (e: Kept) => e.key === id.key;
  if (kept.count(samePeer) >= RECYCLE_PER_PEER) kept.dropOldest(samePeer);
  kept.add({ key: id.key, scope: id.scope, ring, region, conn });
  return true;
}

/** The ring with its control page zeroed (what a fresh memfd reads: the server's init follows), or null (freed). */
function reviveRing(ring: KeptRing): { fd: number; mapping: SharedMapping } | null {
  try {
    // Through the memfd, the page our mapping shows: ring memory never reaches JS.
    controlPageZero ??= Buffer.alloc(PAGE_SIZE);
    if (fs.writeSync(ring.fd, controlPageZero, 0, PAGE_SIZE, 0) !== PAGE_SIZE) throw new Error('short write');
  } catch {
    disposeRing(ring);
    return null;
  }
  return { fd: ring.fd, mapping: ring.mapping };
}

/** The region if nothing of the old connection holds it, its queue page zeroed; or null (freed). */
function reviveRegion(region: KeptRegion): { fd: number; mapping: PoolMapping } | null {
  if (!region.settle() || region.mapping.holders !== 0) {
    disposeRegion(region, true);
    return null;
  }
  try {
    // What a fresh memfd's queue page reads: indices, entries, reader flags.
    queuePageZero ??= Buffer.alloc(POOL_DATA_OFFSET);
    region.mapping.write(0, queuePageZero);
  } catch {
    disposeRegion(region, true);
    return null;
  }
  return { fd: region.fd, mapping: region.mapping };
}

/** What takeKept hands out: each part null when there is none to reuse (then a fresh memfd). */
export interface Revived {
  ring: { fd: number; mapping: SharedMapping } | null;
  region: { fd: number; mapping: PoolMapping } | null;
}

/**
 * The newest connection kept for the same peer process with a ring of
 * `order` or a region of `poolBytes` (0: none wanted), or null. Its parts
 * that do not fit, and entries that fail the checks (the old peer not
 * closed, an extent still out, a view of ours alive), are freed here.
 */
export function takeKept(id: PeerIdentity, order: number, poolBytes: number): Revived | null {
  const ringFits = (e: Kept) => e.ring !== null && e.ring.order === order;
  const regionFits = (e: Kept) => e.region !== null && poolBytes > 0 && e.region.poolBytes === poolBytes;
  let waiting: Kept[] | null = null;
  for (;;) {
    const entry = kept.find((e) => e.key === id.key && (ringFits(e) || regionFits(e)) && !waiting?.includes(e));
    if (entry === null) return null;
    // First the peer's close: it then touches neither its old ring mapping
    // (an honest peer unmapped it) nor the queues, and no completion follows.
    const state = peerState(entry.conn);
    if (state === 'open') {
      // A client that connects again before its last connection has closed
      // on its side (a reconnect right after end()): that entry waits, kept,
      // for a later connection; 6 of 20 redis reconnects lost it before.
      (waiting ??= []).push(entry);
      continue;
    }
    kept.remove(entry);
    if (state === 'bad') {
      dispose(entry);
      continue;
    }
    closeQuietly(entry.conn);
    const ring = ringFits(entry) ? reviveRing(entry.ring!) : (disposeRing(entry.ring), null);
    const region = regionFits(entry) ? reviveRegion(entry.region!) : (disposeRegion(entry.region), null);
    if (ring === null && region === null) continue;
    return { ring, region };
  }
}

/** A local listener opened: its connections may be kept for its next ones. */
export function openScope(): RecycleScope {
  return { closed: false };
}

/** A local listener closed: what its connections left goes at once, and nothing more is kept for it. */
export function closeScope(scope: RecycleScope): void {
  if (scope.closed) return;
  scope.closed = true;
  kept.drop((e) => e.scope === scope);
}

/** Connections kept now (tests, leak checks). */
export function keptConnections(): number {
  return kept.size;
}

/** Frees everything kept now. */
export function dropKept(): void {
  kept.drop();
}
