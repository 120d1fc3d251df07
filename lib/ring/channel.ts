/**
 * RingChannel: drives one RingLink for a stream. It sleeps on the link's wait
 * fd through libuv, asks the peer for a wake-up only when it is about to sleep
 * (vchan's notify bits), and reports data, end of data, peer death and
 * writability to its owner. It knows nothing about how the pages were shared.
 * @internal
 */
import { systemError } from '../errors';
import { native, FdWatcher, UV_DISCONNECT, UV_READABLE } from '../native';
import type { RingLink } from './link';
import { ReadPool } from './read_pool';
import { SpinBackoff } from './spin_backoff';

const LIVE_GONE = 0;
const LIVE_WAITING = 2;
const FIN = 0x100;

/** What a channel tells the stream that owns it. */
export interface ChannelOwner {
  /** A chunk arrived; return false to stop reading until resume(). */
  channelData(chunk: Buffer): boolean;
  /** The peer finished writing and every byte was delivered. */
  channelEnd(): void;
  /** The peer vanished or broke the protocol. */
  channelError(err: Error): void;
  /** Any I/O happened (refreshes idle timers). */
  channelActivity(): void;
  /** A buffer of the owner's to read into instead of a fresh chunk (net's
   * onread), or null; channelRead() then reports what was read into it. */
  channelTarget?(): Uint8Array | null;
  /** `n` bytes were read into the channelTarget() buffer; false: stop reading. */
  channelRead?(n: number): boolean;
}

export interface ChannelOptions {
  /** Bytes per 'data' chunk at most. */
  maxChunk?: number;
  /** Spin at most this long for data before sleeping (µs); adapted per channel. */
  spinMicros?: number;
}

/** Default spin budget (µs): about one Node round trip, so replies are caught. */
export const DEFAULT_SPIN_MICROS = 50;
/** Writes smaller than this complete on the next tick, so that the ones made
 * meanwhile reach the ring as one batch (_writev, one native call). */
const BATCH_BELOW = 16 * 1024;
/** Small writes are copied into a private staging buffer of this size and
 * reach the ring together at the end of the tick (see stage()). */
const STAGE_SIZE = 64 * 1024;
/** Writes up to this size may be staged. */
export const STAGE_MAX = 4 * 1024;

interface PendingWrite {
  chunks: Buffer[];
  offset: number;
  total: number;
  callback: (err?: Error | null) => void;
}

export class RingChannel {
  private readonly waitWatcher: FdWatcher;
  private hangupWatcher: FdWatcher | null = null;
  private reading = false;
  private ended = false;
  private closed = false;
  private peerGone = false;
  private pending: PendingWrite | null = null;
  private pool: ReadPool | null = null;
  private readonly maxChunk: number;
  /** Spin up to spinMax µs (for data, or for room) before sleeping. */
  private readonly spinMax: number;
  private readonly readSpin = new SpinBackoff();
  private readonly writeSpin = new SpinBackoff();
  /** Bytes copied out of / into the ring so far. */
  bytesRead = 0;
  bytesWritten = 0;

  constructor(
    readonly link: RingLink,
    private readonly owner: ChannelOwner,
    options: ChannelOptions = {},
  ) {
    this.maxChunk = options.maxChunk ?? 512 * 1024;
    this.txSize = link.endpoint.info().txSize;
    this.spinMax = options.spinMicros ?? DEFAULT_SPIN_MICROS;
    this.waitWatcher = new native.FdWatcher(link.waitFd, () => this.onWake());
    this.waitWatcher.start(UV_READABLE);
    if (link.hangupFd !== null) {
      this.hangupWatcher = new native.FdWatcher(link.hangupFd, () => this.onHangup());
      this.hangupWatcher.start(UV_READABLE | UV_DISCONNECT);
    }
  }

  /** Starts (or resumes) delivering data to the owner. */
  resume(): void {
    if (this.closed) return;
    this.reading = true;
    this.pump();
  }

  pause(): void {
    this.reading = false;
  }

  /** True while delivering, or waiting for the peer's next bytes. */
  get isReading(): boolean {
    return this.reading;
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
    if (this.closed || this.pending || this.peerGone) return false;
    const n = chunk.length;
    if (n > this.stageRoom || this.staged + n > STAGE_SIZE) {
      try {
        this.writeStaged();
        this.stageRoom = this.link.endpoint.writable();
      } catch (err) {
        this.fail(err as Error);
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

  private stageBuf: Buffer | null = null;
  private staged = 0;
  /** Ring bytes known free beyond what is staged. */
  private stageRoom = 0;
  private stageFlushScheduled = false;
  private readonly flushStaged = (): void => {
    this.stageFlushScheduled = false;
    this.writeStagedOrFail();
  };

  /** writeStaged(), failing the channel on a protocol error; returns that error. */
  private writeStagedOrFail(): Error | null {
    try {
      this.writeStaged();
      return null;
    } catch (err) {
      this.fail(err as Error);
      return err as Error;
    }
  }

  /** Moves the staged bytes into the ring (they always fit: see stage()). */
  private writeStaged(): void {
    const n = this.staged;
    if (n === 0 || this.closed) return;
    this.staged = 0;
    const done = this.link.endpoint.write(this.stageBuf!.subarray(0, n));
    this.bytesWritten += done;
    this.owner.channelActivity();
    // Only a peer that moved its consumer index backwards takes back space.
    if (done !== n) throw systemError('EPROTO', 'write', 'peer took back ring space');
  }

  /** Writes the chunks; the callback runs once all bytes are in the ring. */
  write(chunks: Buffer[], callback: (err?: Error | null) => void): void {
    if (this.closed) {
      callback(systemError('EPIPE', 'write'));
      return;
    }
    const err = this.writeStagedOrFail(); // staged bytes come first
    if (err) {
      callback(err);
      return;
    }
    this.stageRoom = 0;
    let total = 0;
    for (const c of chunks) total += c.length;
    this.pending = { chunks, offset: 0, total, callback };
    this.flush(total < BATCH_BELOW);
  }

  /**
   * Our last byte is written: tell the peer (half-close). Plain vchan has no
   * half-close, so there we close once the peer has read everything (as
   * libxenvchan programs do on end of input) and report end of data.
   */
  finish(): void {
    if (this.closed) return;
    const ep = this.link.endpoint;
    if (this.writeStagedOrFail()) return;
    if (ep.setFin()) {
      ep.kick();
      return;
    }
    this.closeWhenDrained = true;
    this.checkDrained();
  }

  private closeWhenDrained = false;
  private readonly txSize: number;

  private checkDrained(): void {
    if (!this.closeWhenDrained || this.closed) return;
    let drained: boolean;
    try {
      drained = this.link.endpoint.writable() === this.txSize || this.peerGone;
      if (!drained) drained = this.link.endpoint.requestSpace() === this.txSize;
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    if (!drained) return; // woken when the peer reads
    this.close();
    if (!this.ended) {
      this.ended = true;
      this.owner.channelEnd();
    }
  }

  /**
   * Closes the ring. Orderly: the peer reads what we wrote, then sees end of
   * data. `reset`: the peer sees ECONNRESET (like a TCP RST).
   */
  close(reset = false): void {
    if (this.closed) return;
    const ep = this.link.endpoint;
    try {
      if (!reset) this.writeStaged(); // bytes whose write already succeeded
    } catch {
      /* a peer that broke the protocol gets nothing more */
    }
    this.closed = true;
    this.reading = false;
    try {
      if (!reset) ep.setFin();
      ep.setLive(LIVE_GONE);
      ep.kick();
    } catch {
      /* endpoint already closed */
    }
    this.waitWatcher.close();
    this.hangupWatcher?.close();
    this.hangupWatcher = null;
    const p = this.pending;
    this.pending = null;
    this.link.release();
    if (p) p.callback(systemError('EPIPE', 'write'));
  }

  ref(): void {
    this.waitWatcher.ref();
    this.hangupWatcher?.ref();
  }

  unref(): void {
    this.waitWatcher.unref();
    this.hangupWatcher?.unref();
  }

  private onWake(): void {
    if (this.closed) return;
    this.link.endpoint.ack();
    if (this.reading) this.pump();
    if (this.pending) this.flush();
    if (!this.closed && !this.reading && !this.pending) this.checkPeer();
    this.checkDrained();
  }

  private onHangup(): void {
    // The peer's rendezvous socket closed: its process is gone or it closed
    // the ring. If it closed properly, the live/fin bytes already say so.
    this.hangupWatcher?.close();
    this.hangupWatcher = null;
    if (this.closed) return;
    this.peerGone = true;
    const state = this.peerState();
    if (state === null) return;
    // Gone without saying it finished writing: it died (live byte still set)
    // or reset the connection (a xenring peer clears live without fin).
    if ((state & FIN) === 0 && ((state & 0xff) !== LIVE_GONE || this.link.ext)) {
      this.fail(systemError('ECONNRESET', 'read'));
      return;
    }
    this.onWake();
  }

  /** Peer state while we are neither reading nor writing. */
  private checkPeer(): void {
    const state = this.peerState();
    if (state !== null && (state & 0xff) === LIVE_GONE) this.peerGone = true;
  }

  /** The peer's state byte, or null after failing the channel (corrupt state). */
  private peerState(): number | null {
    try {
      return this.link.endpoint.peerState();
    } catch (err) {
      this.fail(err as Error);
      return null;
    }
  }

  private fail(err: Error): void {
    if (this.closed) return;
    this.reading = false;
    this.owner.channelError(err);
  }

  private pumping = false;

  private pump(): void {
    // Why the guard: a handler that pauses and resumes (or reads) from inside
    // a delivery re-enters here; the outer loop goes on in order instead.
    if (this.pumping) return;
    this.pumping = true;
    const ep = this.link.endpoint;
    // Why: an exception thrown by the owner's handlers (user code) is the
    // user's, as with net (uncaught); only the ring's own errors fail the channel.
    let delivering = false;
    try {
      while (this.reading && !this.closed) {
        let n = ep.readable();
        if (n === 0) {
          if (this.atEndOfData()) return;
          if (this.spinMax > 0 && this.readSpin.take()) {
            // Spin later, once this tick's 'data' handlers have run (and
            // perhaps written the message whose reply we are waiting for).
            if (!this.spinScheduled) {
              this.spinScheduled = true;
              setImmediate(this.spinThenSleep);
            }
            return;
          }
          n = ep.requestData(); // sleep unless data raced in
          if (n === 0) return;
        }
        const target = this.owner.channelTarget?.() ?? null;
        if (target !== null) {
          // The owner's own buffer (onread): nothing allocated per read.
          const got = ep.read(target, 0, target.length);
          if (got === 0) continue;
          this.bytesRead += got;
          this.owner.channelActivity();
          delivering = true;
          if (!this.owner.channelRead!(got)) this.reading = false;
          delivering = false;
          continue;
        }
        const want = Math.min(n, this.maxChunk);
        this.pool ??= new ReadPool(2 * this.maxChunk);
        const room = this.pool.space(want);
        const got = ep.read(room.buffer, room.offset, room.length);
        if (got === 0) continue;
        this.bytesRead += got;
        this.owner.channelActivity();
        delivering = true;
        if (!this.owner.channelData(this.pool.take(got))) this.reading = false;
        delivering = false;
      }
    } catch (err) {
      if (delivering) throw err;
      this.fail(err as Error);
    } finally {
      this.pumping = false;
    }
  }

  private spinScheduled = false;
  private readonly spinThenSleep = (): void => {
    this.spinScheduled = false;
    if (this.closed || !this.reading) return;
    const ep = this.link.endpoint;
    try {
      let n = ep.waitData(this.spinMax);
      if (n > 0) {
        this.readSpin.succeeded();
      } else {
        this.readSpin.failed();
        n = ep.requestData();
        if (n === 0) return;
      }
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    this.pump();
  };

  /**
   * A full ring with a live reader: spin briefly for room (a quarter of the
   * ring, or what is left to write) before sleeping, with the same
   * exponential back-off as the read spin. True if room appeared.
   */
  private spinForSpace(left: number): boolean {
    if (this.spinMax === 0 || !this.writeSpin.take()) return false;
    const want = Math.max(1, Math.min(left, this.txSize >>> 2));
    if (this.link.endpoint.waitSpace(this.spinMax, want) > 0) {
      this.writeSpin.succeeded();
      return true;
    }
    this.writeSpin.failed();
    return false;
  }

  /** True (and reported) when the peer will never write again and the ring is empty. */
  private atEndOfData(): boolean {
    const ep = this.link.endpoint;
    const state = ep.peerState(); // read before the index: fin implies final prod
    const live = state & 0xff;
    if (live === LIVE_GONE) this.peerGone = true;
    const fin = (state & FIN) !== 0;
    if (!fin && live !== LIVE_GONE) return false;
    if (ep.readable() !== 0) return false;
    if (this.ended) return true;
    this.reading = false;
    if (!fin && this.link.ext) {
      // A xenring peer that closes without fin was reset (resetAndDestroy).
      this.owner.channelError(systemError('ECONNRESET', 'read'));
      return true;
    }
    this.ended = true;
    this.owner.channelEnd();
    return true;
  }

  /** Moves the pending write into the ring; `deferDone`: complete on the next tick. */
  private flush(deferDone = false): void {
    const p = this.pending;
    if (!p) return;
    const ep = this.link.endpoint;
    try {
      for (;;) {
        if (this.peerGone) {
          this.pending = null;
          p.callback(systemError('EPIPE', 'write'));
          return;
        }
        const n = ep.write(p.chunks, p.offset);
        p.offset += n;
        this.bytesWritten += n;
        if (n > 0) this.owner.channelActivity();
        if (p.offset >= p.total) {
          this.pending = null;
          if (deferDone) process.nextTick(p.callback);
          else p.callback();
          return;
        }
        if (n === 0) {
          // Ring full: is anyone still reading it? (checked here, not per write)
          if ((ep.peerState() & 0xff) === LIVE_GONE) {
            this.peerGone = true;
            continue;
          }
          if (this.spinForSpace(p.total - p.offset)) continue;
          if (ep.requestSpace() === 0) return; // sleep until the peer reads
        }
      }
    } catch (err) {
      this.pending = null;
      p.callback(err as Error);
    }
  }
}

export { LIVE_WAITING };
