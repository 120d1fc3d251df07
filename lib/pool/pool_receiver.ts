/**
 * The receiving half of one direction's pool: takes descriptors (each checked
 * by the receive table), tells the ring reader how far it may read before the
 * next payload, delivers a payload as a view of the peer's pages (or, where
 * the peer is not trusted with views, as a private copy), and hands extents
 * back through the completion queue on release(), on garbage collection and
 * all at once at close. A view reports its own collection (its native
 * finalizer, which runs after minor GCs too; a FinalizationRegistry target
 * only comes back at a full GC), so a plain 'data' consumer that drops its
 * Buffers returns their pages within ~32 MiB of allocation, and V8 counts
 * view bytes as it counts any buffer's, which paces those GCs. A released
 * view is kept and delivered again for the same extent (no Buffer made or
 * dropped per payload), or detached when it is not (V8 drops it then, not
 * at a GC).
 *
 * Ordering contract with the ring (see docs/pool.md): the caller reads the
 * ring's readable count BEFORE poll(), and never reads more ring bytes than
 * allowance() says.
 * @internal
 */
import { COMPLETION_WORDS, DESCRIPTOR_WORDS, POOL_DATA_OFFSET, QUEUE_SLOTS, READER_FLAGS_OFFSET, READER_FLAGS_SET, READER_TAKES_VIEWS } from './layout';
import type { LazyOpen } from './lazy_open';
import { PoolMapping } from './native_pool';
import { emptyPoolStats, PoolStats } from './pool_stats';
import { poolProtocolError } from './protocol_error';
import { openQueues, DirectionQueues } from './queues';
import { Extent, ReceiveTable } from './receive_table';
import { SpareViews } from './spare_views';
import { returnedBuffers } from '../returned_buffers';

export interface PoolReceiverOptions {
  /**
   * The peer's region for this direction, mapped writable (completions are
   * written into it); or what maps it when the receiver opens (regions on
   * demand, transports/local_handshake.ts: it throws EPROTO if the peer
   * opened its sender without handing its region over).
   */
  mapping: PoolMapping | (() => PoolMapping);
  poolBytes: number;
  /** Zero the queue indices: we created the region. */
  init: boolean;
  /** Deliver views of the shared pages (true) or private copies (false). */
  views: boolean;
  /** Giving back collected views failed outside a read (the peer rewound our queue): the connection must fail. */
  onError?: (err: Error) => void;
  /** Open only once the peer's sender has (lazy_open.ts); absent: open now. */
  lazy?: LazyOpen | null;
}

const HI = 0x100000000;
/**
 * Views up to this size count as new external memory for V8 (which paces
 * the minor GCs that return dropped ones); larger ones do not: each would
 * cross V8's external-memory limit and start a full GC (measured before: ~1 ms,
 * most of a 16 MiB hand-off). Ordinary writes copied into the pool are never
 * larger (DEFAULT_COPY_MAX); large allocBuffer payloads are released by
 * their reader, or return at a full GC.
 */
const COUNTED_VIEW_MAX = 4 << 20;

/** What receiving by reference needs (PoolReceiver.st). */
interface ReceiveState {
  readonly table: ReceiveTable;
  /** The view's id (see ViewReturns), for release(). */
  readonly viewIds: WeakMap<ArrayBuffer, number>;
  /** Views delivered and not yet returned, by id. */
  readonly live: Map<number, Extent>;
  /**
   * Released views, for take() to deliver again for the same extent
   * (spare_views.ts): a released Buffer may show a later payload, so reading
   * it after release() is a bug (README). Only released views are kept: a
   * delivered one must stay collectable, for a reader that drops it without
   * release(). A view not kept forgets its id.
   */
  readonly spare: SpareViews;
  readonly collectedIds: Uint32Array;
  readonly descriptors: Uint32Array;
  readonly completion: Uint32Array;
}

function newReceiveState(poolBytes: number): ReceiveState {
  const viewIds = new WeakMap<ArrayBuffer, number>();
  return {
    table: new ReceiveTable(poolBytes, QUEUE_SLOTS),
    viewIds,
    live: new Map<number, Extent>(),
    spare: new SpareViews((ab) => viewIds.delete(ab)),
    collectedIds: new Uint32Array(QUEUE_SLOTS),
    descriptors: new Uint32Array(QUEUE_SLOTS * DESCRIPTOR_WORDS),
    completion: new Uint32Array(COMPLETION_WORDS),
  };
}

export class PoolReceiver {
  readonly stats: PoolStats;
  /** Made when the queues open (a connection that never receives a payload makes none of it: ~6 KiB). */
  private st: ReceiveState | null = null;
  /** Made at open() (a native object: nothing to return before a payload). */
  private returns: InstanceType<typeof returnedBuffers.ViewReturns> | null = null;
  private nextId = 0;
  private closed = false;
  /** copyInto() delivered a payload (an onread reader): the sender was told. */
  private copies = false;
  /**
   * The peer's descriptor index (a view of the shared word, read as a hint
   * only) and how far we popped: a spin watches the word for a payload, and
   * a look at it costs no native call. null where external buffers are refused.
   */
  private descriptorWord: Uint32Array | null = null;
  private descriptorsTaken = 0;
  /** The peer's completion index (a hint, as above) and our own: completions it has not taken, without a native call. */
  private completionWord: Uint32Array | null = null;
  private completionsPushed = 0;
  /**
   * Null until open(): at once, or (lazy) once the peer's sender opened.
   * Until then nothing of the peer's region is touched, and the announce
   * word is the peer's pool byte's (lazyMark: its value at the last look).
   */
  private queues: DirectionQueues | null = null;
  private lazyMark = 0;
  /** A payload copyInto() has begun and not finished. */
  private partial: { extent: Extent; copied: number } | null = null;
  /** The peer's region, once mapped (see options.mapping). */
  private made: PoolMapping | null;

  constructor(private readonly options: PoolReceiverOptions) {
    this.made = typeof options.mapping === 'function' ? null : options.mapping;
    this.stats = emptyPoolStats(options.poolBytes);
    if (options.lazy) this.lazyMark = options.lazy.word[0];
    else this.open();
  }

  /** Opens the queues (their first look at the peer's page) and tells the sender how we read. */
  private open(): DirectionQueues {
    this.made ??= (this.options.mapping as () => PoolMapping)();
    const queues = openQueues(this.made, this.options.poolBytes, 'receiver', this.options.init);
    this.queues = queues;
    this.st = newReceiveState(this.options.poolBytes);
    this.returns = new returnedBuffers.ViewReturns(() => this.onCollected());
    this.descriptorWord = peerWord(queues.descriptors);
    this.descriptorsTaken = queues.descriptors.index;
    this.completionWord = peerWord(queues.completions);
    this.completionsPushed = queues.completions.index;
    this.tellSender(this.options.views && !this.copies);
    return queues;
  }

  /** The queues if open, opening them if the peer's sender has (one look at its pool byte); null while it has not. */
  private opened(): DirectionQueues | null {
    if (this.queues !== null) return this.queues;
    const lazy = this.options.lazy!;
    const value = lazy.word[0];
    if (value !== undefined) this.lazyMark = value;
    return lazy.peerOpened(value) ? this.open() : null;
  }

  /** What open() made (used only once open). */
  private get s(): ReceiveState {
    return this.st!;
  }

  /** The peer's region (mapped by open(): used only once open). */
  private get mapping(): PoolMapping {
    return this.made!;
  }

  /** Tells the sender whether payloads save us a copy (see READER_FLAGS_OFFSET in layout.ts). */
  private tellSender(views: boolean): void {
    this.mapping.write(READER_FLAGS_OFFSET, Uint8Array.of(READER_FLAGS_SET | (views ? READER_TAKES_VIEWS : 0), 0, 0, 0));
  }

  /** The peer-written word that moves when a payload is announced (for a spin to watch), or null. Until open: the word of the peer's pool byte. */
  get announceWord(): Uint32Array | null {
    return this.queues === null && this.options.lazy ? this.options.lazy.word : this.descriptorWord;
  }

  /** announceWord's value while nothing new is announced (as of the last poll). */
  get announceMark(): number {
    return this.queues === null && this.options.lazy ? this.lazyMark : this.descriptorsTaken;
  }

  /** Takes the descriptors the peer published. `consumed`: ring bytes read so far. */
  poll(consumed: number): void {
    if (this.closed) return;
    const queues = this.opened();
    if (queues === null) return;
    if (this.s.live.size > 0) this.returnCollected();
    const d = this.s.descriptors;
    const n = queues.descriptors.pop(d, QUEUE_SLOTS);
    if (n === 0) return;
    this.descriptorsTaken = (this.descriptorsTaken + n) >>> 0;
    // Read after the pop: the peer takes a completion before it reuses the
    // slot for a new descriptor, so a count read earlier could be stale-high
    // and flag an honest peer.
    const unreturned = this.unreturned();
    for (let i = 0; i < n; i++) {
      const at = i * DESCRIPTOR_WORDS;
      this.s.table.accept(d[at] + d[at + 1] * HI, d[at + 2], d[at + 3], consumed, unreturned);
    }
  }

  /** Ring bytes that may be read from `consumed` on before the next payload (Infinity: no payload announced). */
  allowance(consumed: number): number {
    if (this.partial !== null) return 0;
    if (this.st === null) return Infinity; // not open: nothing announced
    const next = this.st.table.nextPosition();
    return next < 0 ? Infinity : next - consumed;
  }

  /**
   * For `onread` (the user's buffer): copies as much of the payload due at
   * `consumed` as fits into target[offset, offset + max); returns the bytes
   * copied, 0 when no payload is due. The extent goes back to the peer once
   * its last byte is copied; until then allowance() stays 0.
   */
  copyInto(consumed: number, target: Uint8Array, offset: number, max: number): number {
    if (this.closed || max <= 0) return 0;
    if (this.partial === null) {
      if (this.st === null || this.st.table.nextPosition() !== consumed) return 0;
      if (this.options.views && !this.copies) {
        this.copies = true;
        this.tellSender(false); // an onread reader copies payloads: no runs for it
      }
      this.partial = { extent: this.deliverOne(), copied: 0 };
    }
    const { extent, copied } = this.partial;
    const n = Math.min(max, extent.length - copied);
    this.mapping.read(POOL_DATA_OFFSET + extent.offset + copied, target, offset, n);
    this.partial.copied += n;
    if (this.partial.copied === extent.length) {
      this.partial = null;
      this.giveBack(extent);
    }
    return n;
  }

  /** take()'s last payload was copied (not a view): the reader counts its bytes as read work. */
  copiedLast = false;

  /** The payload inserted at ring position `consumed`, or null when none is due there. */
  take(consumed: number): Buffer | null {
    if (this.closed) return null;
    this.copiedLast = true;
    if (this.partial !== null) {
      // The rest of a payload copyInto() began (the user switched off onread).
      const rest = Buffer.allocUnsafeSlow(this.partial.extent.length - this.partial.copied);
      this.copyInto(consumed, rest, 0, rest.length);
      return rest;
    }
    if (this.st === null || this.st.table.nextPosition() !== consumed) return null;
    const extent = this.deliverOne();
    const spare = this.s.spare.take(extent.offset, extent.length);
    this.copiedLast = false;
    if (spare !== null) {
      // Its id (viewIds) stays the ArrayBuffer's: a collection still names this extent.
      this.s.live.set(this.s.viewIds.get(spare.buffer as ArrayBuffer)!, extent);
      this.stats.held = this.s.table.heldBytes;
      return spare;
    }
    let view: Buffer | null = null;
    const id = this.nextId;
    // Spent even when no view is made: a view Node refused after taking its
    // finalizer may still report this id, which must never name a later view.
    this.nextId = (id + 1) >>> 0;
    if (this.options.views) {
      try {
        view = this.returns!.view(this.mapping, POOL_DATA_OFFSET + extent.offset, extent.length, id, extent.length <= COUNTED_VIEW_MAX);
      } catch {
        // A runtime without external buffers: deliver a copy instead.
      }
    }
    if (view === null) {
      this.copiedLast = true;
      const copy = Buffer.allocUnsafeSlow(extent.length);
      this.mapping.read(POOL_DATA_OFFSET + extent.offset, copy, 0, extent.length);
      this.giveBack(extent);
      return copy;
    }
    // Keyed by the ArrayBuffer: subarrays the user keeps hold it alive.
    this.s.viewIds.set(view.buffer as ArrayBuffer, id);
    this.s.live.set(id, extent);
    this.stats.held = this.s.table.heldBytes;
    return view;
  }

  /**
   * Hands a received view back early; the view is kept to deliver the same
   * extent again (see spare). False when `buf` is not a view we hold.
   */
  release(buf: Uint8Array): boolean {
    if (this.st === null) return false; // not open: no view of ours exists
    const ab = buf.buffer as ArrayBuffer;
    const id = this.s.viewIds.get(ab);
    const extent = id === undefined ? undefined : this.s.live.get(id);
    if (extent === undefined || this.closed || !this.s.table.holds(extent)) return false;
    this.s.live.delete(id!);
    this.s.spare.keep(extent.offset, buf);
    this.giveBack(extent);
    this.stats.released++;
    return true;
  }

  /** A view was collected while no read was under way to look: give it back now (the sender may be waiting for room). */
  private onCollected(): void {
    if (this.closed) return;
    try {
      this.returnCollected();
    } catch (err) {
      this.options.onError?.(err as Error);
    }
  }

  /** Gives back the extents of views V8 collected (ids of released ones are stale: skipped). */
  private returnCollected(): void {
    const ids = this.s.collectedIds;
    for (;;) {
      const n = this.returns!.drain(ids);
      for (let i = 0; i < n; i++) {
        const extent = this.s.live.get(ids[i]);
        if (extent === undefined) continue;
        this.s.live.delete(ids[i]);
        if (!this.s.table.holds(extent)) continue;
        this.giveBack(extent);
        this.stats.releasedByGC++;
      }
      if (n < ids.length) return;
    }
  }

  /** Payloads announced but not yet taken. */
  get pending(): number {
    return this.st?.table.pendingCount ?? 0;
  }

  /** Whether the peer announced payloads we have not delivered (a close then resets, as unread ring bytes do). */
  hasUnread(): boolean {
    if (this.closed) return false;
    const queues = this.opened();
    return queues !== null && (this.partial !== null || this.s.table.pendingCount > 0 || queues.descriptors.pending() > 0);
  }

  /** The connection is gone: every held extent counts as returned; views the user holds stay readable. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.partial = null;
    const st = this.st;
    st?.live.clear();
    // Released views are not the user's: they let go of the peer's region now.
    st?.spare.clear();
    this.returns?.close();
    if (st !== null) this.stats.releasedAtClose += st.table.releaseAll();
    this.stats.held = 0;
    if (this.queues !== null) this.queues.close();
    else this.made?.close(); // what closing the queues does to it
  }

  private deliverOne(): Extent {
    const extent = this.s.table.deliver();
    this.stats.receivedByRef++;
    this.stats.bytesReceivedByRef += extent.length;
    return extent;
  }

  private giveBack(extent: Extent): void {
    this.s.table.release(extent);
    this.stats.held = this.s.table.heldBytes;
    this.s.completion[0] = extent.offset;
    this.s.completion[1] = extent.length;
    // The in-flight bound leaves room; a full queue means the peer rewound our index.
    if (this.queues!.completions.push(this.s.completion, 1) !== 1) throw poolProtocolError('completion queue index rewound');
    this.completionsPushed = (this.completionsPushed + 1) >>> 0;
  }

  /**
   * Completions the peer has not taken: what pending() counts, from the
   * shared word in JS (one native call less per payload). A count no honest
   * peer can cause goes to pending(), which fails with EPROTO.
   */
  private unreturned(): number {
    const taken = this.completionWord?.[0];
    if (taken !== undefined) {
      const queued = (this.completionsPushed - taken) >>> 0;
      if (queued <= QUEUE_SLOTS) return queued;
    }
    return this.queues!.completions.pending();
  }
}

/** A queue's view of the peer's index, or null where the runtime refuses external buffers. */
function peerWord(queue: DirectionQueues['descriptors']): Uint32Array | null {
  try {
    return queue.peerIndex();
  } catch {
    return null;
  }
}
