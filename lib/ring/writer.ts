/**
 * RingWriter: the write side of one ring. Small writes are staged (copied
 * into a private buffer, no native call) and reach the ring together at the
 * end of the tick; other writes become the one pending write, moved into the
 * ring as the peer makes room, with a short spin before sleeping on a full
 * ring.
 * @internal
 */
import { codedError, systemError } from '../errors';
import type { PoolSender } from '../pool/pool_sender';
import { SpinBackoff } from './spin_backoff';
import type { VchanState } from './vchan_state';

/** Writes smaller than this complete on the next tick, so that the ones made
 * meanwhile reach the ring as one batch (_writev, one native call). */
const BATCH_BELOW = 16 * 1024;
/** Small writes are copied into a private staging buffer of this size and
 * reach the ring together at the end of the tick (see stage()). */
const STAGE_SIZE = 64 * 1024;
/** Writes up to this size may be staged. */
export const STAGE_MAX = 4 * 1024;
/** With a pool, a write of at least this size that finds unread bytes in the ring may start a run (see openRun()). */
const RUN_FROM = BATCH_BELOW;
/**
 * Runs start once this many times the ring's size has gone through the ring
 * (see openRun()): a run's extent is usually a fresh pool page range on a
 * new connection, 2.6-4.5 µs of page fault per page on this host where the
 * ring, written through once, is warm. A short exchange (a 1 MiB redis
 * reply through a proxy) then never faults pool pages in; a bulk stream
 * starts its runs after its first few MiB.
 */
export const RUNS_AFTER_RING_PASSES = 4;
/**
 * A run takes pool pages never written only once the ring has been written
 * through this many times (32 MiB with the default ring): before, runs use
 * pages written before, or none. A reply of a MiB to a reader that holds
 * its views until a GC (a redis client) otherwise faulted in a fresh MiB
 * per reply for the pool's first RUN_WINDOW (~1 ms per MiB here): 4 × 1 MiB
 * redis GETs through `xenring proxy` on a warm connection 0.73-0.75x the TCP
 * relay in three runs, 0.91x with this gate at 16 (`node bench/real.js
 * --only ioredis`). A bulk stream starts its runs after its first 32 MiB.
 */
export const COLD_RUNS_AFTER_RING_PASSES = 16;
/**
 * @internal Read when a writer is made. `ringPasses`: runs open once the
 * ring was written through this many times; `coldCopyPasses`: an ordinary
 * Buffer is copied into pool pages never written before only from then on
 * (PoolSender.send()'s `mayFault`). Tests set them to 0 to see runs and
 * copies into the pool on a fresh connection.
 */
export const runsGate = { ringPasses: RUNS_AFTER_RING_PASSES, coldCopyPasses: RUNS_AFTER_RING_PASSES, coldRunPasses: COLD_RUNS_AFTER_RING_PASSES };

/** An open run's extent (see RingWriter.openRun()). */
type Run = NonNullable<ReturnType<PoolSender['openRun']>>;

/** What the writer asks of the channel that owns it. */
export interface WriterHost {
  /** The ring is closed: refuse everything. */
  readonly closed: boolean;
  /** The peer reads no more: writes fail with EPIPE. */
  readonly peerGone: boolean;
  /** The writer saw the peer's live byte at 0 (in the state a call published). */
  notePeerGone(): void;
  /** A protocol error while flushing staged bytes: fail the channel. */
  fail(err: Error): void;
  /** Any bytes moved (refreshes idle timers). */
  activity(): void;
}

/**
 * Drops the chunks already in the ring from the front of a pending write:
 * the native write walks its chunk array from the start to the offset, so a
 * writev of many small chunks (cork + thousands of write()s) larger than the
 * free space was walked whole by every flush (quadratic).
 */
function dropWritten(p: PendingWrite): void {
  let i = 0;
  while (i < p.chunks.length && p.offset >= p.chunks[i].length) {
    p.offset -= p.chunks[i].length;
    p.total -= p.chunks[i].length;
    i++;
  }
  if (i > 0) p.chunks = p.chunks.slice(i); // a copy: the caller's array is left alone
}

interface PendingWrite {
  /** The ring part being written now (with a pool: up to the next by-reference chunk). */
  chunks: Buffer[];
  offset: number;
  total: number;
  callback: (err?: Error | null) => void;
  /** With a pool: the whole write, and the index of its next chunk not yet in `chunks`. */
  all: Buffer[] | null;
  next: number;
  /** Pool Buffers that fell back to the ring: their loans are freed once written. */
  fellBack: Buffer[] | null;
}

export class RingWriter {
  private pending: PendingWrite | null = null;
  private stageBuf: Buffer | null = null;
  private staged = 0;
  /** Ring bytes known free beyond what is staged. */
  private stageRoom = 0;
  private stageFlushScheduled = false;
  private readonly spin = new SpinBackoff();
  private readonly txSize: number;
  /** Bytes written so far: into the ring, or handed over by reference. */
  bytesWritten = 0;
  /** Ring bytes written so far (the stream positions pool descriptors name). */
  private ringWritten = 0;
  /**
   * With a pool: writes that found the ring full, gathered into one extent
   * and not yet announced. While a run is open no ring byte is written (its
   * position is ringWritten when it opened); sendRun() announces it.
   */
  private run: Run | null = null;
  private runUsed = 0;
  /** Runs opened so far: tells the end-of-turn send which run it was for. */
  private runCount = 0;
  /** Ring bytes written before the first run may open (RUNS_AFTER_RING_PASSES). */
  private readonly runsFrom: number;
  /** Ring bytes written before an ordinary Buffer may be copied into pool pages never written (runsGate). */
  private readonly coldCopiesFrom: number;
  /** Ring bytes written before a run may take pool pages never written (runsGate). */
  private readonly coldRunsFrom: number;
  /** A write was taken after the peer left in order (see flush()): the next one fails. */
  private tookAfterGone = false;

  constructor(
    private readonly state: VchanState,
    private readonly host: WriterHost,
    /** Spin up to this long (µs) for room before sleeping; 0: never. */
    private readonly spinMicros: number,
    /** This direction's pool (null: the ring carries every byte). */
    private readonly sender: PoolSender | null = null,
  ) {
    this.txSize = state.endpoint.info().txSize;
    this.runsFrom = runsGate.ringPasses * this.txSize;
    this.coldCopiesFrom = runsGate.coldCopyPasses * this.txSize;
    this.coldRunsFrom = runsGate.coldRunPasses * this.txSize;
  }

  /** A write is waiting for room. */
  get hasPending(): boolean {
    return this.pending !== null;
  }

  /**
   * Takes a small chunk at once if the ring is sure to have room for it:
   * copies it into the staging buffer (a JS copy, no native call) and writes
   * everything staged in one native call at the end of the tick. Returns
   * false when it could not: the caller then uses write(). The room is
   * counted against ring space already seen free, which only the peer's
   * reads can grow, so a staged byte never waits for the peer and can never
   * be lost on close.
   */
  stage(chunk: Buffer): boolean {
    if (this.host.closed || this.pending || this.host.peerGone || this.run !== null) return false;
    if (this.sender !== null && this.sender.isPoolView(chunk)) return false; // by reference, or refused by write()
    const n = chunk.length;
    // The tick's first small write goes straight into the ring (one native
    // call, as net's try-write): a reply reaches the peer now, not after this
    // tick's other work. Later ones are staged and go together at its end.
    if (!this.stageFlushScheduled && n <= this.state.writable) return this.writeThrough(chunk);
    if (n > this.stageRoom || this.staged + n > STAGE_SIZE) {
      try {
        this.writeStaged();
        // Free space as last published (a lower bound: only the peer's
        // reads grow it); ask the ring only when that is not enough.
        this.stageRoom = this.state.writable;
        if (n > this.stageRoom) this.stageRoom = this.state.endpoint.writable();
      } catch (err) {
        this.host.fail(err as Error);
        return false;
      }
      if (n > this.stageRoom) return false;
    }
    this.stageBuf ??= Buffer.allocUnsafeSlow(STAGE_SIZE);
    this.stageBuf.set(chunk, this.staged);
    this.staged += n;
    this.stageRoom -= n;
    if (!this.stageFlushScheduled) {
      this.stageFlushScheduled = true;
      process.nextTick(this.flushStaged);
    }
    return true;
  }

  /** Writes a chunk the ring has room for (the state array says so) at once; marks the tick as written. */
  private writeThrough(chunk: Buffer): boolean {
    let done: number;
    this.state.used();
    try {
      done = this.state.endpoint.write(chunk);
    } catch (err) {
      this.host.fail(err as Error);
      return false;
    }
    this.bytesWritten += done;
    this.ringWritten += done;
    this.host.activity();
    if (done !== chunk.length) {
      this.host.fail(systemError('EPROTO', 'write', 'peer took back ring space'));
      return false;
    }
    // Room as the write just published it (nothing is staged).
    this.stageRoom = this.state.writable;
    this.stageFlushScheduled = true;
    process.nextTick(this.flushStaged);
    return true;
  }

  private readonly flushStaged = (): void => {
    this.stageFlushScheduled = false;
    this.writeStagedOrFail();
  };

  /** writeStaged(), failing the channel on a protocol error; returns that error. */
  writeStagedOrFail(): Error | null {
    try {
      this.writeStaged();
      return null;
    } catch (err) {
      this.host.fail(err as Error);
      return err as Error;
    }
  }

  /** Moves the staged bytes into the ring (they always fit: see stage()), or announces the open run (never both: see stage()). */
  writeStaged(): void {
    if (this.run !== null) this.sendRun();
    const n = this.staged;
    if (n === 0 || this.host.closed) return;
    this.staged = 0;
    this.state.used();
    const done = this.state.endpoint.write(this.stageBuf!.subarray(0, n));
    this.bytesWritten += done;
    this.ringWritten += done;
    this.host.activity();
    // Only a peer that moved its consumer index backwards takes back space.
    if (done !== n) throw systemError('EPROTO', 'write', 'peer took back ring space');
  }

  /** Writes the chunks; the callback runs once all bytes are in the ring. */
  write(chunks: Buffer[], callback: (err?: Error | null) => void): void {
    if (this.host.closed) {
      callback(systemError('EPIPE', 'write'));
      return;
    }
    // A loan written again after it went by reference has no bytes left to
    // send (detached): fail loudly instead of sending nothing in its place.
    if (this.sender !== null && chunks.some((c) => this.sender!.wasSent(c))) {
      callback(sentAgain());
      return;
    }
    let total = 0;
    for (const c of chunks) total += c.length;
    if (this.run !== null && this.runUsed + total <= this.run.bytes && !this.host.peerGone && !this.byReference(chunks)) {
      this.appendRun(chunks);
      this.gathered(total, callback);
      return;
    }
    const err = this.writeStagedOrFail(); // staged bytes, or the open run, come first
    if (err) {
      callback(err);
      return;
    }
    this.stageRoom = 0;
    let gathered: boolean;
    try {
      gathered = this.sender !== null && this.openRun(chunks, total);
    } catch (err) {
      // Opening a run takes the peer's completions first: a forged one (or
      // a broken ring) fails the connection, as in flush(); never a throw
      // out of socket.write().
      callback(err as Error);
      this.host.fail(err as Error);
      return;
    }
    if (gathered) {
      this.gathered(total, callback);
      return;
    }
    if (this.sender !== null && this.byReference(chunks)) {
      // Cut at each by-reference chunk: see nextPart().
      this.pending = { chunks: [], offset: 0, total: 0, callback, all: chunks, next: 0, fellBack: null };
      this.flush(false);
      return;
    }
    this.pending = { chunks, offset: 0, total, callback, all: null, next: 0, fellBack: null };
    this.flush(total < BATCH_BELOW);
  }

  /** True when everything we wrote was read by the peer (an empty ring). */
  drained(): boolean {
    const ep = this.state.endpoint;
    return ep.writable() === this.txSize || ep.requestSpace() === this.txSize;
  }

  /** Fails the pending write with EPIPE (the ring closed under it); an unsent run is dropped (a reset). */
  abort(): void {
    if (this.run !== null) {
      this.sender!.dropRun(this.run);
      this.run = null;
    }
    const p = this.pending;
    this.pending = null;
    if (p) p.callback(systemError('EPIPE', 'write'));
  }

  /** Moves the pending write into the ring; `deferDone`: complete on the next tick. */
  flush(deferDone = false): void {
    const p = this.pending;
    if (!p) return;
    const ep = this.state.endpoint;
    this.state.used();
    try {
      for (;;) {
        // The peer's live byte as the last call published it: a peer that
        // left while we were not waiting for it woke nobody (signalGone), so
        // a write finds out here, as a TCP write after the peer closed.
        if (!this.host.peerGone && this.state.peerGone) this.host.notePeerGone();
        if (this.host.peerGone) {
          this.pending = null;
          // A peer that closed in order and had read all we wrote (the ring
          // is empty: a peer killed after its end, or a plain vchan peer,
          // may have left bytes of ours unread): the first write that would
          // fit the ring is taken and its bytes dropped, as TCP sends a write
          // that fits its buffer to a closed peer and only the next one
          // fails, once the peer's RST is back. A server that answers after
          // the client's end (allowHalfOpen) with one write and end() then
          // finishes quietly, as over net. Ring writes only: one that goes
          // by reference (p.all) fails as before, whatever its size.
          if (!this.state.peerReset && !this.tookAfterGone && p.all === null && p.offset === 0 && p.total <= this.txSize && ep.writable() === this.txSize) {
            this.tookAfterGone = true;
            this.bytesWritten += p.total;
            p.callback();
            return;
          }
          // A peer that reset (closed with our bytes unread) is ECONNRESET, as after a TCP RST.
          p.callback(systemError(this.state.peerReset ? 'ECONNRESET' : 'EPIPE', 'write'));
          return;
        }
        const n = p.offset < p.total ? ep.write(p.chunks, p.offset) : 0;
        p.offset += n;
        if (n > 0 && p.offset < p.total) dropWritten(p);
        this.bytesWritten += n;
        this.ringWritten += n;
        if (n > 0) this.host.activity();
        if (p.offset >= p.total && p.all !== null && this.nextPart(p)) continue;
        if (p.offset >= p.total) {
          this.pending = null;
          if (deferDone) process.nextTick(p.callback);
          else p.callback();
          return;
        }
        if (n === 0) {
          // Ring full: is anyone still reading it? (the write just published
          // the peer's state; if not, the loop's first look fails the write,
          // with no spin for space first)
          if (this.state.peerGone) continue;
          if (this.spinForSpace(p.total - p.offset)) continue;
          // Sleep until the peer reads, unless it left meanwhile: its close
          // wakes only a writer that had asked (signalGone), so the state
          // published with the request is the last look.
          if (ep.requestSpace() === 0 && !this.state.peerGone) return;
        }
      }
    } catch (err) {
      this.pending = null;
      p.callback(err as Error);
      // A pool peer that broke the protocol fails the connection, as a ring EPROTO does.
      if ((err as NodeJS.ErrnoException).code === 'EPROTO' && p.all !== null) this.host.fail(err as Error);
    }
  }

  // --- The page-reference path (pool). Kept apart from the ring's hot path. ---

  /**
   * Runs: when ordinary writes outpace the reader, each one would be copied
   * into the ring, and again out by the reader (into memory that is cold by
   * then: its receive slabs come back only at its GCs). A write that finds
   * the reader behind (unread bytes in the ring) instead opens a run (one
   * pool extent), and it and the writes after it are copied into the extent
   * and complete at once; the run is announced as one payload (the reader
   * gets one view and copies nothing) when the next write does not fit in
   * it, one goes by reference, the stream ends, or at the end of this turn of
   * the loop. Meanwhile the reader has the unread ring bytes (no ring byte is
   * written while a run is open, so one that finishes them waits for the
   * run, at most until the end of this turn). A write to an empty ring (a
   * reader that keeps up, a request on an idle connection) goes straight
   * into it, woken at once. So does every write until the ring has been
   * written through RUNS_AFTER_RING_PASSES times: a new connection's pool
   * pages are not faulted in for an exchange the warm ring carries. A pool
   * that cannot serve leaves writes on the ring path, as before. Opens a run
   * for `chunks` if the ring holds unread bytes; true: they went into it.
   */
  private openRun(chunks: Buffer[], total: number): boolean {
    if (total < RUN_FROM || this.ringWritten < this.runsFrom || this.host.peerGone || this.byReference(chunks)) return false;
    // An empty ring as last published first (no call); ask the ring only when that says otherwise.
    if (this.state.writable >= this.txSize || this.state.endpoint.writable() >= this.txSize) return false;
    const run = this.sender!.openRun(this.ringWritten >= this.coldRunsFrom);
    if (run === null) return false;
    if (total > run.bytes) {
      this.sender!.dropRun(run);
      return false;
    }
    this.run = run;
    this.runUsed = 0;
    const count = ++this.runCount;
    this.appendRun(chunks);
    // Announced by the end of this turn at the latest, if no later write does it.
    setImmediate(() => {
      if (this.runCount === count && this.run !== null) this.writeStagedOrFail();
    });
    return true;
  }

  /** A write went into the run: it is done (as a write the ring took whole). */
  private gathered(total: number, callback: (err?: Error | null) => void): void {
    this.bytesWritten += total;
    this.host.activity();
    if (total < BATCH_BELOW) process.nextTick(callback);
    else callback();
  }

  private appendRun(chunks: Buffer[]): void {
    for (const c of chunks) {
      if (c.length === 0) continue;
      this.sender!.appendRun(this.run!, this.runUsed, c);
      this.runUsed += c.length;
    }
  }

  /** Announces the open run at the ring position where it opened (no ring byte was written since). */
  private sendRun(): void {
    const run = this.run!;
    const used = this.runUsed;
    this.run = null;
    this.runUsed = 0;
    if (used === 0) this.sender!.dropRun(run);
    else this.sender!.sendRun(run, used, this.ringWritten);
    // The peer may be asleep waiting for ring bytes that are not coming: wake it if it asked.
    this.state.endpoint.signalWrite();
  }

  /** Whether any chunk may go by reference (a loan of ours, or big enough to copy into the pool). */
  private byReference(chunks: Buffer[]): boolean {
    const sender = this.sender!;
    for (const c of chunks) if (sender.goesByReference(c)) return true;
    return false;
  }

  /**
   * The ring part of `p` is all in the ring: frees the loans that fell back
   * to it, sends the by-reference chunks that come next (their stream
   * position is exact now: every ring byte before them is written, none
   * after), and loads the ring chunks up to the following one. False when
   * the write is complete. Descriptors are published before any ring byte
   * past their position (the ordering contract, docs/pool.md).
   */
  private nextPart(p: PendingWrite): boolean {
    const sender = this.sender!;
    if (p.fellBack !== null) {
      for (const c of p.fellBack) sender.recycle(c);
      p.fellBack = null;
    }
    const all = p.all!;
    // The state array answers without a call: every write, wait and wake-up
    // refreshes it, as the ring path's own peerGone check relies on.
    if (p.next < all.length && this.state.peerGone) {
      // Nobody will take a reference: fail as a full ring with no reader does.
      this.host.notePeerGone();
      return true;
    }
    p.chunks = [];
    p.offset = 0;
    p.total = 0;
    let sent = false;
    while (p.next < all.length) {
      const c = all[p.next];
      if (sender.wasSent(c)) throw sentAgain(); // the same loan earlier in this write went by reference
      if (c.length === 0) {
        // Nothing to move; kept in `chunks`, it made a part of no bytes that
        // read as the end of the write, and the chunks after it were lost.
        p.next++;
        continue;
      }
      if (sender.goesByReference(c)) {
        if (p.chunks.length > 0) break; // its position is after these ring bytes
        const n = c.length; // send() detaches a loan it sent
        if (sender.send(c, this.ringWritten, this.ringWritten >= this.coldCopiesFrom)) {
          p.next++;
          this.bytesWritten += n;
          sent = true;
          continue;
        }
        // The pool could not take it (full, too many in flight): through the ring.
        if (sender.isLoaned(c)) (p.fellBack ??= []).push(c);
      }
      p.chunks.push(c);
      p.total += c.length;
      p.next++;
    }
    if (sent) {
      // The peer may be asleep waiting for ring bytes that are not coming: wake it if it asked.
      this.state.endpoint.signalWrite();
      this.host.activity();
    }
    return p.total > 0;
  }

  /**
   * A full ring with a live reader: spin briefly for room (a quarter of the
   * ring, or what is left to write) before sleeping, with the same
   * exponential back-off as the read spin. True if room appeared.
   */
  private spinForSpace(left: number): boolean {
    if (this.spinMicros === 0 || !this.spin.take()) return false;
    const want = Math.max(1, Math.min(left, this.txSize >>> 2));
    if (this.state.endpoint.waitSpace(this.spinMicros, want) > 0) {
      this.spin.succeeded();
      return true;
    }
    this.spin.failed();
    return false;
  }
}

/** A loan written again after it went by reference: detached, it has no bytes left to send. */
function sentAgain(): Error {
  return codedError(
    'ERR_INVALID_ARG_VALUE',
    'The chunk is an allocBuffer() Buffer already sent by reference: its bytes belong to the receiver (allocate a new one to send again)',
    TypeError,
  );
}
