/**
 * When a receiver opens its half of a direction's pool (local transport).
 * Opening it (two native queues, views of the peer's indices, the first
 * touch of the peer's queue page, and closing all that again) was most of
 * what a pool added to a new connection that never sends by reference
 * (docs/benchmark.md, "Lazy pool receivers"). So a receiver opens only once
 * the peer's sender has: each side has a pool byte in the ring's control
 * page (xenring's extension area, native/vchan_layout.h kExtCliPool /
 * kExtSrvPool), which it alone writes:
 *
 * - ANNOUNCES: "I set OPENED before my first descriptor". The server sets
 *   it before its ACCEPT, the client before it goes live. A peer without it
 *   is an older xenring (or one that lies): its receiver opens at once and
 *   its descriptors come unannounced, so ours opens at once too (the
 *   server: once the client is live, since the client sets its byte first).
 * - OPENED: my sender opened its queues. Set before the first descriptor is
 *   pushed, so a reader that saw ring bytes past that descriptor (acquire on
 *   the ring index) also sees OPENED, then the descriptor.
 *
 * The byte is a hint, read once per look (twice when the peer seems not
 * to announce: again after its live byte, see peerOpened()): a peer that
 * never sets OPENED only hides its own payloads (and the ring bytes after
 * them wait for them, as for any descriptor it withholds); one that sets it
 * early only makes us open early. Nothing here is an index.
 * @internal
 */

/** Pool byte bits (one byte per side). */
export const POOL_ANNOUNCES = 1;
export const POOL_OPENED = 2;

/** Byte of each side's pool byte within the control page word poolWord() views (fin, fin, client pool, server pool). */
const POOL_BYTE = { client: 2, server: 3 } as const;

/** What a closed LazyOpen reads (undefined) and writes (nothing) through. */
const NO_WORD = new Uint32Array(0);
const NO_BYTES = new Uint8Array(0);

export class LazyOpen {
  private view: Uint32Array;
  private bytes: Uint8Array;
  private readonly own: number;
  private readonly peer: number;

  /**
   * @param word the endpoint's poolWord() view (after close(): reads undefined)
   * @param role our side of the ring
   * @param peerStarted the peer, if it does not announce, has started (its
   *   descriptors may come): a client's server always has; a server's
   *   client once its live byte left "waiting"
   * @param openedOnly regions on demand (transports/local_regions.ts): both
   *   sides are this version, so the receiver opens on OPENED alone (the
   *   "does not announce" rule could open before the peer's region came).
   */
  constructor(
    word: Uint32Array,
    role: 'client' | 'server',
    private readonly peerStarted: () => boolean,
    private readonly openedOnly = false,
  ) {
    this.view = word;
    this.bytes = new Uint8Array(word.buffer, word.byteOffset, 4);
    this.own = POOL_BYTE[role];
    this.peer = POOL_BYTE[role === 'client' ? 'server' : 'client'];
  }

  /** The pool word (empty after close()). */
  get word(): Uint32Array {
    return this.view;
  }

  /**
   * The connection is over: its view goes. The control page may serve the
   * next connection on a kept link (the buffer behind the view is the
   * mapping's, not detached at the endpoint's close), so nothing of this one
   * may read or write it any more.
   */
  close(): void {
    this.view = NO_WORD;
    this.bytes = NO_BYTES;
  }

  /** We announce our opening (before the peer may look: the ACCEPT, or going live). */
  announce(): void {
    this.bytes[this.own] |= POOL_ANNOUNCES;
  }

  /** Our sender opened its queues: before its first descriptor. */
  opened(): void {
    if (this.word.length === 0) return; // closed
    this.bytes[this.own] |= POOL_OPENED;
  }

  /** Whether the peer announces its opening (its receiver may not have opened, so its reader flags may not be written yet). */
  peerAnnounces(): boolean {
    return ((this.bytes[this.peer] ?? 0) & POOL_ANNOUNCES) !== 0;
  }

  /**
   * Whether our receiver must open, from `value`, one read of word[0]
   * (undefined once closed: no).
   */
  peerOpened(value: number | undefined): boolean {
    if (value === undefined) return false;
    const b = (value >>> (8 * this.peer)) & 0xff;
    if ((b & POOL_OPENED) !== 0) return true;
    if (this.openedOnly || (b & POOL_ANNOUNCES) !== 0 || !this.peerStarted()) return false;
    // The byte again, read after the live byte: a peer sets its byte before
    // it goes live, so one that announced and went live since `value` was
    // read shows it now (taken from `value` alone, it looked like a peer
    // that never announces: an early open, seen by a hostile-peer test
    // under load as a touched page of the peer's region).
    const now = this.view[0];
    if (now === undefined) return false;
    const again = (now >>> (8 * this.peer)) & 0xff;
    return (again & POOL_OPENED) !== 0 || (again & POOL_ANNOUNCES) === 0;
  }
}
