/**
 * Ring mappings a local client keeps after an orderly close, for the next
 * connection to which the server hands the same ring memfd (a server keeps a
 * closed connection's ring for the same client process: local_recycle.ts).
 * Mapping it again cost an mmap, a munmap (a TLB shootdown on every CPU the
 * process ran on) and the page faults of the pages the new connection
 * touches: ~50 µs of a new connection's client CPU here (bench/connect.js).
 *
 * Safety (README "The peer is hostile"):
 * - a kept mapping is inert: its endpoint is closed, so nothing of ours
 *   reads or writes it (what the server writes there meanwhile is read only
 *   by a later endpoint, which checks every index as on a fresh mapping);
 * - it is handed out for a memfd that is the same file: its device, inode
 *   and size, compared while our mapping holds the file open (since Linux
 *   5.9 shmem inode numbers are 64-bit and never given to a second file that
 *   exists at once; older kernels keep nothing); then it leaves the cache,
 *   so no two endpoints ever share a mapping;
 * - kept only for a server of our own uid (others never recycle for us)
 *   that has handed us this ring before (one that does not recycle, or
 *   turned it off, costs no memory: its second connection is mapped afresh,
 *   and kept from then on), bounded in count, unmapped after
 *   RECYCLE_IDLE_MS unused by one unref'd timer; main thread only and off
 *   with XENRING_RECYCLE=0, as the server's.
 * @internal
 */
import { release } from 'node:os';
import type { SharedMapping } from '../native';
import { ExpiringCache } from './expiring_cache';
import { RECYCLE_IDLE_MS, recyclingEnabled } from './local_recycle';

/** Linux 5.9+: shmem inode numbers name one file at a time (before, a 32-bit counter that wraps). */
const uniqueInodes = ((m) => m !== null && (Number(m[1]) > 5 || (Number(m[1]) === 5 && Number(m[2]) >= 9)))(/^(\d+)\.(\d+)/.exec(release()));

/** Mappings kept in all (a client reconnecting to a few servers at once). */
export const KEPT_RINGS = 4;

interface KeptMapping {
  /** The memfd's identity: memfdCheck()'s device:inode:size. */
  key: string;
  mapping: SharedMapping;
}
/** Mappings handed out again so far (for tests and benches). */
let reused = 0;
/** Identities of the rings closed lately (strings only: nothing held). */
const seen: string[] = [];

function unmap(entry: KeptMapping): void {
  try {
    entry.mapping.unmap();
  } catch {
    /* pinned: cannot be, its endpoint closed before it was kept */
  }
}

const kept = new ExpiringCache<KeptMapping>(KEPT_RINGS, RECYCLE_IDLE_MS, unmap);

/** Our mapping of the memfd `key` names, kept from an earlier connection, or null (map it afresh). */
export function takeRingMapping(key: string): SharedMapping | null {
  const entry = kept.take((e) => e.key === key);
  if (entry === null) return null;
  reused++;
  return entry.mapping;
}

/**
 * After an orderly close with a server of our uid: keeps `mapping` (its
 * endpoint closed) of the ring memfd `key` names if that server handed us
 * this ring before (it recycles); otherwise unmaps it.
 */
export function keepRingMapping(key: string, mapping: SharedMapping): void {
  const again = seen.includes(key);
  if (!again) {
    if (seen.length >= 2 * KEPT_RINGS) seen.shift();
    seen.push(key);
  }
  if (!again || !uniqueInodes || !recyclingEnabled()) {
    mapping.unmap();
    return;
  }
  kept.add({ key, mapping });
}

/** What the cache holds now (the memfd identities, device:inode:size) and how many mappings it handed out again (for tests). */
export function ringCacheStats(): { keys: string[]; reused: number } {
  return { keys: kept.values().map((e) => e.key), reused };
}
