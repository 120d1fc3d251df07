/**
 * The sending half of one direction's pool: loans extents as Buffers
 * (allocBuffer), announces a written one to the peer with a descriptor
 * ("at stream position P, extent (offset, length)"), and takes completions
 * back, each checked against the in-flight table. Never waits: when the
 * pool, or the in-flight bound, cannot serve, the caller takes the ring path.
 *
 * Ordering contract with the ring (see docs/pool.md): the caller has written
 * exactly `position` ring bytes when it calls send(), and publishes no ring
 * byte past `position` before send() returns.
 * @internal
 */
import {
  COMPLETION_WORDS,
  DESCRIPTOR_WORDS,
  POOL_DATA_OFFSET,
  POOL_PAGE,
  QUEUE_SLOTS,
  READER_FLAGS_OFFSET,
  READER_FLAGS_SET,
  READER_TAKES_VIEWS,
  RUN_BYTES,
  RUN_MIN_POOL,
  RUN_WINDOW,
} from './layout';
import { PoolMapping } from './native_pool';
import { emptyPoolStats, PoolStats } from './pool_stats';
import { poolProtocolError } from './protocol_error';
import { openQueues, DirectionQueues } from './queues';
import { Loan, SendTable } from './send_table';
import { SpareViews } from './spare_views';

export interface PoolSenderOptions {
  /**
   * This direction's region, mapped writable; or what makes it (and hands it
   * to the peer) when a payload first needs it: regions on demand
   * (transports/local_handshake.ts). If that fails, nothing more goes by
   * reference (the ring carries everything).
   */
  mapping: PoolMapping | (() => PoolMapping);
  /** Bytes of pool (the region minus the queue page). */
  poolBytes: number;
  /** Zero the queue indices: we created the region. */
  init: boolean;
  /** Ordinary Buffers of at least this many bytes are copied into the pool
   * and sent by reference (one copy instead of the ring's two). Default: never. */
  copyThreshold?: number;
  /** ...and of at most this many (larger ones take the ring, which paces them). Default: no limit. */
  copyMax?: number;
  /**
   * An ordinary Buffer is copied in only while the bytes announced and not
   * yet taken by the receiver stay within this (a reader that does not read
   * must make the writer wait, as a full socket buffer does; the ring path
   * does that). Default: no limit.
   */
  copyWindow?: number;
  /**
   * Lazy opening (lazy_open.ts): `opened()` is told before the first
   * descriptor; while `peerAnnounces()`, reader flags not yet written mean
   * "not known yet" (its receiver opens at our first descriptor).
   */
  lazy?: { opened(): void; peerAnnounces(): boolean } | null;
  /**
   * The region's pages come into being at their first write (a local memfd):
   * an ordinary Buffer is then copied only into pages written before, unless
   * send() is told the connection may fault new ones in (see send()). A Xen
   * region's pages exist from the grant on. Default: false.
   */
  coldPages?: boolean;
  /**
   * An ordinary Buffer is not copied into the pool for a reader that copies
   * payloads out (readerMode()): locally, where the ring is large (2 MiB by
   * default) and warm. Not on Xen: its 64 KiB ring would carry a MiB in 16
   * fills and wake-ups, where the pool takes one descriptor. Default: false.
   */
  ringForCopyingReaders?: boolean;
  /**
   * The region `mapping` (a function) hands back when it is one kept from an
   * earlier connection (a server's, local_recycle.ts): the pages it wrote
   * count before it is made.
   */
  kept?: PoolMapping | null;
}

/**
 * Bytes from the start of each region's pool this process has written at
 * least once (the allocator is first fit from the lowest page, so they are
 * the pages below the highest end sent). Keyed by the mapping: a recycled
 * region (transports/local_recycle.ts) keeps what it had.
 */
const warmBytes = new WeakMap<PoolMapping, number>();

const HI = 0x100000000;
/** What sending by reference needs (PoolSender.st). */
interface SendState {
  readonly table: SendTable;
  /** Each view's current loan (a view handed out again gets the new one). */
  readonly loans: WeakMap<ArrayBuffer, ViewLoan>;
  readonly unsent: FinalizationRegistry<ViewLoan>;
  readonly descriptor: Uint32Array;
  readonly completions: Uint32Array;
  readonly readerFlags: Uint8Array;
  /** Lengths of the descriptors pushed, oldest first, until the receiver takes them (see untakenBytes()): from announcedHead on, summing to announcedBytes. */
  readonly announced: number[];
  announcedHead: number;
  announcedBytes: number;
  /**
   * Views of loans sent by reference, for allocBuffer() to hand out again
   * (spare_views.ts): a Buffer written by reference may come back from a
   * later allocBuffer(), so writing into it after write() is a bug (README).
   */
  readonly spare: SpareViews;
}

/** A view's current loan (mutable: see SendState.loans). */
interface ViewLoan {
  loan: Loan;
}

export class PoolSender {
  readonly stats: PoolStats;
  /** Made with the region (a connection that never sends a payload makes none of it: ~4 KiB). */
  private st: SendState | null = null;
  /**
   * Opened at the first descriptor (see queues): most connections never send
   * one, and opening them (two native queues, the first touch of the queue
   * page: a page fault) was ~30-40 µs of every new connection. Null until then.
   */
  private opened: DirectionQueues | null = null;
  private readonly copyThreshold: number;
  private readonly copyMax: number;
  private readonly copyWindow: number;
  private readonly runWindow: number;
  /** The reader said it copies payloads (READER_FLAGS_OFFSET): no more runs. */
  private readerCopies = false;
  private closed = false;
  /** The region, once there is one (see options.mapping). */
  private made: PoolMapping | null;
  /** Making it failed: the pool sends nothing. */
  private unavailable = false;

  constructor(private readonly options: PoolSenderOptions) {
    this.made = typeof options.mapping === 'function' ? null : options.mapping;
    if (this.made !== null) this.st = this.newState();
    // Indices to zero: before the peer maps the region, so now.
    if (options.init) this.opened = openQueues(this.mapping, options.poolBytes, 'sender', true);
    this.stats = emptyPoolStats(options.poolBytes);
    this.copyThreshold = options.copyThreshold ?? Infinity;
    this.copyMax = options.copyMax ?? Infinity;
    this.copyWindow = options.copyWindow ?? Infinity;
    this.runWindow = Math.min(RUN_WINDOW, options.poolBytes / 2);
  }

  /** What the region came with (callers made sure there is one: a loan, or hasRegion()). */
  private get s(): SendState {
    return this.st!;
  }

  private newState(): SendState {
    const table = new SendTable(this.options.poolBytes, QUEUE_SLOTS);
    return {
      table,
      loans: new WeakMap<ArrayBuffer, ViewLoan>(),
      // A loan dropped unsent (never written) goes back to the pool when its
      // Buffer is collected; the pool never *waits* for this. Registered once
      // per view: discard() ignores a loan that was sent, or is already free.
      unsent: new FinalizationRegistry<ViewLoan>((held) => {
        if (!this.closed) table.discard(held.loan);
        this.stats.inUse = table.inUse;
      }),
      descriptor: new Uint32Array(DESCRIPTOR_WORDS),
      completions: new Uint32Array(QUEUE_SLOTS * COMPLETION_WORDS),
      readerFlags: new Uint8Array(4),
      announced: [],
      announcedHead: 0,
      announcedBytes: 0,
      spare: new SpareViews(),
    };
  }

  /** The region (callers made sure there is one: a loan, or hasRegion()). */
  private get mapping(): PoolMapping {
    return this.made!;
  }

  /** Our region, if made (what close(true) leaves to the caller). */
  get region(): PoolMapping | null {
    return this.made;
  }

  /** Makes the region on first need; false if there is none and cannot be. */
  private hasRegion(): boolean {
    if (this.made !== null) return true;
    if (this.unavailable || this.closed) return false;
    try {
      this.made = (this.options.mapping as () => PoolMapping)();
      this.st = this.newState();
      return true;
    } catch {
      this.unavailable = true; // out of fds or memory, or the peer is gone: the ring still works
      return false;
    }
  }

  /** A Buffer of `size` bytes in the pool, or null (the caller hands out an ordinary Buffer). */
  allocBuffer(size: number): Buffer | null {
    if (this.closed || !this.hasRegion()) return null;
    this.reclaim();
    const loan = this.s.table.loan(size);
    if (loan === null) {
      this.stats.fallbacks++;
      return null;
    }
    const spare = this.s.spare.take(loan.offset, size);
    if (spare !== null) {
      this.s.loans.get(spare.buffer as ArrayBuffer)!.loan = loan;
      this.stats.inUse = this.s.table.inUse;
      return spare;
    }
    let buf: Buffer;
    try {
      buf = this.mapping.view(POOL_DATA_OFFSET + loan.offset, size);
    } catch {
      // A runtime without external buffers (as PoolReceiver.take()): an ordinary Buffer, the loan back.
      this.s.table.discard(loan);
      this.stats.fallbacks++;
      return null;
    }
    const held: ViewLoan = { loan };
    this.s.loans.set(buf.buffer as ArrayBuffer, held);
    this.s.unsent.register(buf.buffer, held);
    this.stats.inUse = this.s.table.inUse;
    return buf;
  }

  /** Whether `buf` views this pool (a loan, sent or not): one look, for the writer's small-chunk path. */
  isPoolView(buf: Uint8Array): boolean {
    return this.st?.loans.has(buf.buffer as ArrayBuffer) === true;
  }

  /** Whether `buf` views an extent loaned by this pool (and not yet sent). */
  isLoaned(buf: Uint8Array): boolean {
    const held = this.st?.loans.get(buf.buffer as ArrayBuffer);
    return held !== undefined && held.loan.state === 'loaned';
  }

  /**
   * Whether `buf` is a loan already sent by reference (and not loaned out
   * again by allocBuffer()): its bytes are now the receiver's, or free.
   */
  wasSent(buf: Uint8Array): boolean {
    const held = this.st?.loans.get(buf.buffer as ArrayBuffer);
    // sentLength: announced (a loan that fell back to the ring never was, and may be written again).
    return held !== undefined && held.loan.state !== 'loaned' && held.loan.sentLength > 0;
  }

  /** Whether the writer should offer `buf` to send() (a loan of ours, or an ordinary Buffer to copy in). */
  goesByReference(buf: Uint8Array): boolean {
    return (buf.length >= this.copyThreshold && buf.length <= this.copyMax) || this.isLoaned(buf);
  }

  /**
   * The queues, opened on first use. Nothing was announced before, so the
   * peer (an honest one) has written nothing to them: no completion, no
   * consumer index; a peer that did meets the same checks, only later.
   */
  private get queues(): DirectionQueues {
    if (this.opened === null) {
      this.opened = openQueues(this.mapping, this.options.poolBytes, 'sender', false);
      this.options.lazy?.opened(); // before the first descriptor: the peer's receiver opens on it
    }
    return this.opened;
  }

  /**
   * What the reader said of payloads (READER_FLAGS_OFFSET): it takes views,
   * it copies them out (an `onread` socket, private copies), or nothing yet
   * (a receiver writes the word when it opens; one older than the word
   * never does). A reader that copies gains nothing from a run or from an
   * ordinary Buffer copied into the pool, and the pool's pages are colder
   * than the ring's (streaming stores): `npm run bench -- --cases bulk
   * --chunks 1M,256K`, an onread receiver: 4,854 and 5,568 MB/s with copies
   * into the pool, 7,651 and 9,674 through the ring. Copying is for good: a
   * reader clears the flag once, when it starts copying.
   */
  private readerMode(): 'views' | 'copies' | 'unknown' {
    if (this.readerCopies) return 'copies';
    this.mapping.read(READER_FLAGS_OFFSET, this.s.readerFlags, 0, 4);
    const flags = this.s.readerFlags[0];
    // Bit 0 alone: views (an older receiver writes no bit 1).
    if ((flags & READER_TAKES_VIEWS) !== 0) return 'views';
    if ((flags & READER_FLAGS_SET) === 0) return 'unknown';
    this.readerCopies = true;
    return 'copies';
  }

  /** Bytes from the pool's start this side has written (its region's, or the kept one's it will get). */
  private writtenBytes(): number {
    const region = this.made ?? this.options.kept ?? null;
    return region === null ? 0 : (warmBytes.get(region) ?? 0);
  }

  /**
   * An extent for an ordinary Buffer or a run, or null; `cold` (send()'s
   * `mayFault` false): only one inside pages this side wrote before (a full
   * pool and unwritten pages both send the bytes through the ring, no
   * fallback counted).
   */
  private loanFor(bytes: number, cold: boolean): Loan | null {
    const loan = this.s.table.loan(bytes);
    if (loan !== null && cold && loan.offset + loan.bytes > this.writtenBytes()) {
      this.s.table.discard(loan);
      return null;
    }
    return loan;
  }

  /** About to send: the queues open, and the peer's completions (a forged one among them) are checked first, as ever. */
  private reclaimBeforeSend(): void {
    void this.queues;
    this.reclaim();
  }

  /** Bytes announced by descriptors the receiver has not taken from the queue yet. */
  untakenBytes(): number {
    if (this.opened === null) return 0; // nothing announced yet
    const untaken = this.queues.descriptors.pending();
    const s = this.s;
    // Everything older than the last `untaken` descriptors was taken.
    while (s.announced.length - s.announcedHead > untaken) s.announcedBytes -= s.announced[s.announcedHead++];
    if (s.announcedHead > 64 && s.announcedHead * 2 > s.announced.length) {
      s.announced.splice(0, s.announcedHead);
      s.announcedHead = 0;
    }
    return s.announcedBytes;
  }

  /**
   * Announces `buf` at ring position `position`. True: sent by reference (the
   * Buffer now belongs to the receiver; a loan's view is kept for a later
   * allocBuffer()). False: the caller writes it through the ring, then calls recycle(buf).
   * `mayFault` false (a connection that has not carried much yet): an
   * ordinary Buffer is copied in only if its extent's pages were written
   * before. A fresh memfd page costs 2.6-4.5 µs to fault in on this host, a
   * MiB ~1 ms, where the ring (warm after one pass, and kept across
   * connections) carries the MiB in ~0.65 ms; the pool's page pays off only
   * when used again.
   */
  send(buf: Uint8Array, position: number, mayFault = true): boolean {
    if (this.closed || buf.length === 0) return false;
    let loan = this.st?.loans.get(buf.buffer as ArrayBuffer)?.loan;
    let copied: Loan | null = null;
    if (loan !== undefined) {
      this.reclaimBeforeSend(); // (a loan's region exists)
      // Only a loan still unsent, written from its first byte, travels by reference.
      if (loan.state !== 'loaned' || buf.byteOffset !== 0 || !this.s.table.canSend()) return this.fellBack();
    } else {
      if (buf.length < this.copyThreshold || buf.length > this.copyMax) return false;
      const cold = !mayFault && this.options.coldPages === true;
      // No written run that large: the ring, before any region is made or queue opened.
      if (cold && buf.length > this.writtenBytes()) return false;
      if (!this.hasRegion()) return false;
      this.reclaimBeforeSend();
      if (!this.s.table.canSend() || (this.options.ringForCopyingReaders === true && this.readerMode() === 'copies')) return false;
      if (this.copyWindow !== Infinity && this.untakenBytes() + buf.length > this.copyWindow) return false;
      const copy = this.loanFor(buf.length, cold);
      if (copy === null) return false; // an ordinary Buffer: the ring is its usual path, no fallback
      this.mapping.write(POOL_DATA_OFFSET + copy.offset, buf);
      loan = copied = copy;
    }
    this.announce(loan, buf.length, position);
    // The loan's view is kept for the next loan of this extent: detaching it
    // cost a wake-up of our loop for its finalizer, and leaving it for a GC
    // swings V8's external-memory count (docs/benchmark.md).
    if (copied === null) this.s.spare.keep(loan.offset, buf);
    return true;
  }

  /**
   * An extent to gather ordinary writes into (a run: see RingWriter), or null
   * when this pool does not gather (copy-in off, too small, or a reader that
   * copies payloads: READER_FLAGS_OFFSET) or cannot now
   * (full, too many in flight, or the reader has not taken what we sent).
   * Nothing is announced until sendRun().
   */
  openRun(mayFault = true): Loan | null {
    if (this.closed || this.readerCopies || this.copyThreshold === Infinity || this.options.poolBytes < RUN_MIN_POOL) return null;
    // Pages never written (as send()'s `mayFault`): not before the connection has carried more.
    const cold = !mayFault && this.options.coldPages === true;
    if (cold && RUN_BYTES > this.writtenBytes()) return null;
    if (!this.hasRegion()) return null;
    this.reclaimBeforeSend();
    // Runs take at most half the pool (RUN_WINDOW of the default):
    // allocBuffer() and large writes keep the rest, and the reader, which
    // returns views when it collects garbage, is not handed a whole pool of
    // pages to cycle through (each one a page fault on its first use).
    if (!this.s.table.canSend() || this.s.table.inUse + RUN_BYTES > this.runWindow) return null;
    if (this.copyWindow !== Infinity && this.untakenBytes() + RUN_BYTES > this.copyWindow) return null;
    // Last: a native read, and the checks above turn most refusals away first.
    // A lazy receiver writes its word when it opens, at our first descriptor: until then, gather.
    const mode = this.readerMode();
    if (mode === 'copies' || (mode === 'unknown' && this.options.lazy?.peerAnnounces() !== true)) return null;
    const run = this.loanFor(RUN_BYTES, cold);
    this.stats.inUse = this.s.table.inUse;
    return run;
  }

  /** Copies `chunk` into the run at byte `at` (the caller keeps within run.bytes). */
  appendRun(run: Loan, at: number, chunk: Uint8Array): void {
    this.mapping.write(POOL_DATA_OFFSET + run.offset + at, chunk);
  }

  /** Announces the run's first `length` bytes at ring position `position` (same contract as send()). */
  sendRun(run: Loan, length: number, position: number): void {
    if (this.closed) return;
    this.s.table.trim(run, length);
    this.announce(run, length, position);
  }

  /** A run that will not be sent (nothing was gathered, or the connection reset): its extent is free again. */
  dropRun(run: Loan): void {
    if (this.closed) return;
    this.s.table.discard(run);
    this.stats.inUse = this.s.table.inUse;
  }

  /** Publishes one descriptor: `loan`'s first `length` bytes at ring position `position`. */
  private announce(loan: Loan, length: number, position: number): void {
    this.s.table.send(loan, length);
    const end = loan.offset + Math.ceil(length / POOL_PAGE) * POOL_PAGE; // the pages the announced bytes fill
    if (end > (warmBytes.get(this.mapping) ?? 0)) warmBytes.set(this.mapping, end);
    const d = this.s.descriptor;
    d[0] = position % HI;
    d[1] = Math.floor(position / HI);
    d[2] = loan.offset;
    d[3] = length;
    // Space is guaranteed by the in-flight bound; a full queue means the peer
    // rewound our consumer index.
    if (this.queues.descriptors.push(d, 1) !== 1) throw poolProtocolError('descriptor queue index rewound');
    this.s.announced.push(length);
    this.s.announcedBytes += length;
    // Forget the ones the receiver took, or the record grows by one per payload
    // when nothing else asks (untakenBytes() runs only for copied-in Buffers).
    if (this.s.announced.length - this.s.announcedHead > QUEUE_SLOTS) this.untakenBytes();
    this.stats.sentByRef++;
    this.stats.bytesSentByRef += length;
    this.stats.inUse = this.s.table.inUse;
  }

  /** After a loaned Buffer went through the ring: its extent is free again. */
  recycle(buf: Uint8Array): void {
    const held = this.st?.loans.get(buf.buffer as ArrayBuffer);
    if (held === undefined || this.closed) return;
    this.s.table.discard(held.loan);
    this.stats.inUse = this.s.table.inUse;
  }

  /** Takes the peer's completions; EPROTO for any that does not name an extent in flight. */
  reclaim(): number {
    if (this.closed || this.opened === null) return 0; // nothing sent: nothing to take back
    const total = this.takeCompletions(this.queues, this.s.table);
    this.stats.returned += total;
    this.stats.inUse = this.s.table.inUse;
    return total;
  }

  /** Whether a payload went by reference (the queues opened): the region's pages were touched. */
  get used(): boolean {
    return this.opened !== null;
  }

  /** Extents sent and not yet returned. */
  get inFlight(): number {
    return this.st?.table.inFlight ?? 0;
  }

  /**
   * The connection is gone: every loan returns, the mapping is dropped (views
   * the user still holds keep it mapped). `keepRegion` (a region to reuse,
   * transports/local_recycle.ts): the mapping and the completion queue stay
   * open and a settle function is returned, to be called once, when the
   * peer has closed its end (it then pushes no more completions): it takes
   * the peer's last completions (checked as ever), closes the queues, and
   * says whether every extent we sent came back (no view of the peer's is
   * left). The mapping is then the caller's to close.
   */
  close(keepRegion = false): (() => boolean) | null {
    if (this.closed) return null;
    this.closed = true;
    this.stats.inUse = 0;
    const st = this.st;
    // Sent loans are not the user's: their views let go of the region now.
    st?.spare.clear();
    const table = st?.table ?? null;
    const queues = this.opened;
    if (!keepRegion) {
      table?.closeAll();
      if (queues !== null) queues.close();
      else this.made?.close(); // what closing the queues does to it
      return null;
    }
    if (this.made === null || table === null) return null; // never made: nothing to keep
    return () => {
      let idle = true;
      if (queues !== null) {
        try {
          this.takeCompletions(queues, table);
          idle = table.inFlight === 0;
        } catch {
          idle = false; // a forged completion: the region is not reused
        }
        queues.close(true);
      }
      table.closeAll();
      return idle;
    };
  }

  /** Pops every queued completion, each checked against the in-flight table (EPROTO otherwise). */
  private takeCompletions(queues: DirectionQueues, table: SendTable): number {
    const c = this.s.completions;
    let total = 0;
    for (;;) {
      const n = queues.completions.pop(c, QUEUE_SLOTS);
      for (let i = 0; i < n; i++) table.complete(c[i * COMPLETION_WORDS], c[i * COMPLETION_WORDS + 1]);
      total += n;
      if (n < QUEUE_SLOTS) return total;
    }
  }

  private fellBack(): false {
    this.stats.fallbacks++;
    return false;
  }
}
