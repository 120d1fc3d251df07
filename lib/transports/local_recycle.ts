/**
 * The local server's pool regions kept after a clean close, for the next
 * connection from the same client process (issue 14: a new connection's
 * fresh memfd costs a page fault per page it touches, ~1 ms per MiB, and
 * making and mapping it ~50 µs; a TCP connection reuses kernel buffers).
 *
 * Safety (README "The peer is hostile"): a region goes back only to the
 * process that already had it, and only when nothing of the old connection
 * can touch it any more:
 * - identity: the client's pid from SO_PEERCRED (the process that
 *   connected), the same pid in its HELLO, its uid ours, and its start time
 *   (/proc/<pid>/stat field 22) read at the accept and again when the region
 *   is kept: a reused pid has another start time, so another key;
 * - kept only after an orderly close, and handed out only once the old
 *   peer has closed its end of the rendezvous socket (EOF: its old receiver
 *   no longer reads or writes the queue page), every extent we sent came
 *   back (its last completions taken and checked then: the old peer holds
 *   no view of it; PoolSender.close(true)), and no view of ours is left
 *   (mapping.holders 0: no loan, no spare view). The queue page is then
 *   zeroed as a fresh memfd's reads. Old payload bytes stay: the same peer
 *   had them.
 * Only the server keeps regions: a client's SO_PEERCRED names the process
 * that called listen(), which may not be the one that accepted.
 * Bounded (per peer, in all), freed after RECYCLE_IDLE_MS unused by an
 * unref'd timer; main thread only (a worker's teardown would leave fds).
 * XENRING_RECYCLE=0 turns it off.
 * @internal
 */
import * as fs from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { native } from '../native';
import { POOL_DATA_OFFSET } from '../pool/layout';
import type { PoolMapping } from '../pool/native_pool';
import { ownUid } from './local_trust';

/** A kept region unused this long is unmapped and closed. */
export const RECYCLE_IDLE_MS = 2000;
/** Regions kept per peer process (a client reconnecting while an older connection closes). */
export const RECYCLE_PER_PEER = 2;
/** Regions kept in all. */
export const RECYCLE_TOTAL = 8;

/** Who a connection's client is, as far as recycling goes. */
export interface PeerIdentity {
  readonly key: string;
  readonly pid: number;
  readonly startTime: string;
}

interface Kept {
  key: string;
  poolBytes: number;
  mapping: PoolMapping;
  /** Takes the old peer's last completions, closes the old queues: true if every extent came back (call once). */
  settle: () => boolean;
  fd: number;
  conn: number;
  timer: NodeJS.Timeout;
}

const kept: Kept[] = [];
let queuePageZero: Buffer | null = null;
let statBuffer: Buffer | null = null;

function closeQuietly(fd: number): void {
  if (fd < 0) return;
  try {
    native.closeFd(fd);
  } catch {
    /* already closed */
  }
}

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
 * The identity of an accepted client whose regions may be recycled, or
 * null: another uid, ourselves, a HELLO pid that is not the connecting
 * process's, or a process already gone.
 */
export function peerIdentity(peer: { pid: number; uid: number }, helloPid: number): PeerIdentity | null {
  if (!recyclingEnabled() || peer.uid !== ownUid() || !(peer.pid > 0) || peer.pid === process.pid || helloPid !== peer.pid) return null;
  const startTime = processStartTime(peer.pid);
  if (startTime === null) return null;
  return { key: peerKey(peer.uid, peer.pid, startTime), pid: peer.pid, startTime };
}

function dispose(entry: Kept, settled = false): void {
  clearTimeout(entry.timer);
  if (!settled) entry.settle();
  entry.mapping.close(); // unmapped now: no view is left, or the last one unmaps it
  closeQuietly(entry.fd);
  closeQuietly(entry.conn);
}

function remove(entry: Kept): void {
  const i = kept.indexOf(entry);
  if (i >= 0) kept.splice(i, 1);
}

/** The old peer closed its rendezvous socket (EOF); anything it left queued there is dropped. */
function peerClosed(conn: number): boolean {
  try {
    const msg = native.recvMessage(conn);
    if (msg === null) return false;
    msg.fds.forEach(closeQuietly);
    return msg.data.length === 0;
  } catch {
    return false;
  }
}

/**
 * Keeps our region of a connection that closed in order: `mapping` (open),
 * `settle` (PoolSender.close), its memfd `fd` and the old rendezvous socket
 * `conn` (to see the peer's close). False: not kept, the caller closes them.
 */
export function keepRegion(id: PeerIdentity, poolBytes: number, mapping: PoolMapping, settle: () => boolean, fd: number, conn: number): boolean {
  if (!recyclingEnabled() || processStartTime(id.pid) !== id.startTime) return false; // gone: nobody can ask for it again
  const same = kept.filter((e) => e.key === id.key);
  if (same.length >= RECYCLE_PER_PEER) {
    remove(same[0]);
    dispose(same[0]);
  }
  if (kept.length >= RECYCLE_TOTAL) dispose(kept.shift()!);
  const entry: Kept = { key: id.key, poolBytes, mapping, settle, fd, conn, timer: undefined as unknown as NodeJS.Timeout };
  entry.timer = setTimeout(() => {
    remove(entry);
    dispose(entry);
  }, RECYCLE_IDLE_MS);
  entry.timer.unref(); // never keeps the process alive
  kept.push(entry);
  return true;
}

/**
 * A kept region of `poolBytes` for the same peer process, its queue page
 * zeroed, or null (then a fresh memfd). Entries that fail the checks (a view
 * of ours still alive, the old peer not closed) are freed here.
 */
export function takeRegion(id: PeerIdentity, poolBytes: number): { fd: number; mapping: PoolMapping } | null {
  for (let i = kept.length - 1; i >= 0; i--) {
    const entry = kept[i];
    if (entry.key !== id.key || entry.poolBytes !== poolBytes) continue;
    kept.splice(i, 1);
    // In this order: the peer closed (no completion can follow), its last
    // completions taken (the queues close), then no holder but the mapping.
    if (!peerClosed(entry.conn)) {
      dispose(entry);
      continue;
    }
    if (!entry.settle() || entry.mapping.holders !== 0) {
      dispose(entry, true);
      continue;
    }
    clearTimeout(entry.timer);
    closeQuietly(entry.conn);
    try {
      // What a fresh memfd's queue page reads: indices, entries, reader flags.
      queuePageZero ??= Buffer.alloc(POOL_DATA_OFFSET);
      entry.mapping.write(0, queuePageZero);
    } catch {
      entry.mapping.close();
      closeQuietly(entry.fd);
      continue;
    }
    return { fd: entry.fd, mapping: entry.mapping };
  }
  return null;
}

/** Regions kept now (tests, leak checks). */
export function keptRegions(): number {
  return kept.length;
}

/** Frees every kept region now. */
export function dropKeptRegions(): void {
  for (const entry of kept.splice(0)) dispose(entry);
}
