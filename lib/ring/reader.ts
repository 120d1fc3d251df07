/**
 * RingReader: the read pump of one ring. It moves bytes out of the ring into
 * one of two sinks: pooled 'data' chunks (channelData), or the owner's own
 * buffer (net's onread: channelTarget/channelRead). It spins briefly for a
 * reply before asking the peer for a wake-up, and never stays in one
 * macrotask for more than a turn's budget, however fast the peer produces.
 * @internal
 */
import { codedError } from '../errors';
import { ReadFlag, WakeWord } from '../native';
import type { PoolReceiver } from '../pool/pool_receiver';
import { ReadPool } from './read_pool';
import { SpinBackoff } from './spin_backoff';
import type { VchanState } from './vchan_state';

/** Where read bytes go (the owner of the channel: a Socket). */
export interface ReadSink {
  /** A chunk arrived; return false to stop reading until resume(). */
  channelData(chunk: Buffer): boolean;
  /** Any I/O happened (refreshes idle timers). */
  channelActivity(): void;
  /** A buffer of the owner's to read into instead of a fresh chunk (net's
   * onread), or null; channelRead() then reports what was read into it. */
  channelTarget?(): Uint8Array | null;
  /** `n` bytes were read into the channelTarget() buffer; false: stop reading. */
  channelRead?(n: number): boolean;
}

/** What the reader reports to the channel that owns it. */
export interface ReaderHost {
  /** The ring is empty and the peer will write no more. */
  endOfData(): void;
  /** The ring broke (EPROTO, a failed kick, ...): fail the channel. */
  fail(err: Error): void;
  /** Bytes written into the other ring so far: did the handlers reply? */
  written?(): number;
}

export interface ReaderOptions {
  /** Bytes per 'data' chunk at most. */
  maxChunk: number;
  /** Spin at most this long for data before sleeping (µs); 0: never spin. */
  spinMicros: number;
  /** Bytes moved per turn of the event loop before yielding (default 1 MiB). */
  turnBytes?: number;
  /** Reads per turn before yielding (default 1024). */
  turnReads?: number;
}

/** As net reads a bounded amount per loop turn: then timers and other sockets run. */
export const TURN_BYTES = 1024 * 1024;
export const TURN_READS = 1024;
/** A spin that skips the loop turn (see spinSoon) lasts at most this (µs):
 * a peer in this same process cannot answer until the loop turns. */
const TICK_SPIN_MICROS = 10;
/** In-tick spins in a row before one loop turn, so a ping-pong cannot starve
 * timers, I/O and promises. */
const TICK_SPINS = 16;
/** Rounds of one wake-up's callback that may ask to sleep (see onWokenRead);
 * the round after the last asks in the pump. More than one kept the process
 * in one macrotask for up to that many replies: with 16, a 16 MiB hand-off
 * loop ran 5 major GCs instead of 0 (test/pool/handoff_gc.test.js). */
const WAKE_ROUNDS = 1;

/**
 * The spin chances of readers whose spins never caught the peer yet, shared
 * by this thread's connections. A new connection's first spins usually wait
 * for a peer that is still waking up: a 1-byte echo server spent ~90 µs of
 * CPU per connection spinning for the client's end (bench/connect.js). Once
 * new connections' spins keep missing, the next ones are skipped as a
 * reader's own misses skip its spins; a spin that catches the peer resets
 * this, and its reader goes on with its own backoff, as does a reader once
 * it was offered FRESH_CHANCES spins (a connection that lives on is not a
 * short one, and others' misses must not keep it from spinning). The shared
 * skips double only up to 16 (FRESH_DOUBLINGS): peers that never answer (a
 * hostile client's connections) can make other new connections skip at
 * most that many first spins in a row, each a wake-up instead.
 */
const FRESH_CHANCES = 4;
const FRESH_DOUBLINGS = 4; // the shared skips stop at 2^4 = 16
let freshSpin = new SpinBackoff(1, FRESH_DOUBLINGS);
let freshTickSpin = new SpinBackoff(0, FRESH_DOUBLINGS);

/**
 * Forgets the shared history of new readers' spins (for tests that count one reader's spins).
 * @internal
 */
export function resetFreshSpins(): void {
  freshSpin = new SpinBackoff(1, FRESH_DOUBLINGS);
  freshTickSpin = new SpinBackoff(0, FRESH_DOUBLINGS);
}

export class RingReader {
  private reading = false;
  private stopped = false;
  /** Re-entry guard: a handler that pauses and resumes (or reads) from
   * inside a delivery re-enters pump(); the outer loop goes on in order. */
  private pumping = false;
  private spinScheduled = false;
  /** spinSoon already looked once more after the promise jobs (see afterPromises). */
  private promisesChecked = false;
  /** host.written() when the pump began. */
  private writtenMark = 0;
  private tickSpins = 0;
  /** Bytes and reads of the turn so far, carried into pumps chained by in-tick spins. */
  private turnUsedBytes = 0;
  private turnUsedReads = 0;
  private readonly tickSpin = new SpinBackoff();
  private yieldScheduled = false;
  private pool: ReadPool | null = null;
  /** Its misses mean wake-ups: one miss is forgiven (see SpinBackoff). */
  private readonly spin = new SpinBackoff(1);
  /** A spin caught the peer once, or FRESH_CHANCES were offered: this reader's own backoffs decide, not the shared fresh ones. */
  private graduated = false;
  /** Spin chances offered by the shared fresh backoffs. */
  private freshChances = 0;
  /** The pending spin's chance (before sleeping; in the tick) came from the shared backoff: its outcome goes there too. */
  private sharedSpin = false;
  private sharedTick = false;
  private readonly turnBytes: number;
  private readonly turnReads: number;
  /** Bytes read so far: out of the ring, or received by reference. */
  bytesRead = 0;
  /** Ring bytes read so far (the stream positions pool descriptors name). */
  private ringRead = 0;
  /**
   * Woken while reading: the wake-ups are consumed by the pump's first ring
   * read (one call instead of service() then read()), or by service() when
   * the pump ends without one. Until then the state array is stale.
   */
  private ackPending = false;
  /**
   * The wake-read words (native WakeWord): armed when the pump goes to sleep,
   * so the next wake-up reads natively before JS runs (one crossing per
   * wake-up: onWokenRead() gets the bytes). null: the endpoint cannot (a fake).
   */
  private readonly wake: Uint32Array | null = null;
  /** The buffer the endpoint reads into on a wake-up (bound natively). */
  private wakeTarget: Uint8Array | null = null;
  /** The armed read goes to the owner's buffer (onread), not the read pool. */
  private wakeIntoTarget = false;
  /** Inside the wait watcher's callback: its round (see onWokenRead); -1 outside. */
  private wakeRound = -1;
  /**
   * Spinning for the peer's bytes is on (spinMicros > 0, and our side has not
   * finished writing: after that what comes is the peer's end, or a reply to
   * a request already complete, and a short connection's spins for them
   * were most of its extra CPU against TCP; see noMoreSpins()).
   */
  private spins: boolean;
  /** The word bound with bindWatch() (see watchMark()). */
  private watched: Uint32Array | null = null;

  constructor(
    private readonly state: VchanState,
    private readonly sink: ReadSink,
    private readonly host: ReaderHost,
    private readonly options: ReaderOptions,
    /** This direction's pool (null: every byte comes through the ring). */
    private readonly receiver: PoolReceiver | null = null,
  ) {
    this.turnBytes = options.turnBytes ?? TURN_BYTES;
    this.spins = options.spinMicros > 0;
    this.turnReads = options.turnReads ?? TURN_READS;
    // With a pool, the native spin also watches the peer's descriptor index:
    // a payload ends it as a ring byte does.
    const word = receiver?.announceWord ?? null;
    if (word !== null) state.endpoint.bindWatch?.(word);
    this.watched = word;
    if (typeof state.endpoint.bindWakeRead === 'function') {
      this.wake = new Uint32Array(WakeWord.Count);
      state.endpoint.bindWakeRead(this.wake);
    }
  }

  /** Wake-ups may read natively (the channel binds its watcher to the endpoint). */
  get readsOnWake(): boolean {
    return this.wake !== null;
  }

  /** True while delivering, or waiting for the peer's next bytes. */
  get isReading(): boolean {
    return this.reading;
  }

  /**
   * A spin chance (`tick`: in this macrotask; else before sleeping): true if
   * it spins. Until this reader graduates, the shared fresh backoff decides;
   * its own follows along, so alone it would decide the same.
   */
  private takeChance(tick: boolean): boolean {
    const own = (tick ? this.tickSpin : this.spin).take();
    const shared = !this.graduated;
    if (tick) this.sharedTick = shared;
    else this.sharedSpin = shared;
    if (!shared) return own;
    if (++this.freshChances >= FRESH_CHANCES) this.graduated = true;
    return (tick ? freshTickSpin : freshSpin).take();
  }

  /** A spin's outcome, to the backoffs its chance came from. */
  private spun(tick: boolean, caught: boolean): void {
    const own = tick ? this.tickSpin : this.spin;
    const shared = (tick ? this.sharedTick : this.sharedSpin) ? (tick ? freshTickSpin : freshSpin) : null;
    if (caught) {
      own.succeeded();
      shared?.succeeded();
      this.graduated = true;
    } else {
      own.failed();
      shared?.failed();
    }
  }

  /** Starts (or resumes) delivering; `fresh`: the state array is current. */
  resume(fresh = false): void {
    if (this.stopped) return;
    this.reading = true;
    this.pump(fresh);
  }

  pause(): void {
    this.reading = false;
    this.disarm();
  }

  /**
   * Our side finished writing (end()): wait for the peer's bytes asleep from
   * now on. What is still to come answers nothing we could write next, so a
   * spin only burns CPU both processes share: 1-byte echo connections spent
   * ~100 µs per connection spinning for the peer's end (bench/connect.js).
   */
  noMoreSpins(): void {
    this.spins = false;
  }

  /** For good (the channel closed or failed). */
  stop(): void {
    this.stopped = true;
    this.reading = false;
    this.disarm();
  }

  /**
   * The peer woke us. `consume`: the wake-ups are still pending, for the
   * first read to consume (the channel did not call service(): only when
   * reading); otherwise service() ran and the state array is current.
   */
  onWake(consume = false): void {
    if (!this.reading) return;
    this.ackPending = consume;
    this.pump(true);
  }

  /**
   * The peer woke us and the endpoint already did the read armed when we
   * went to sleep (armWake): the wake-ups are consumed, `got` bytes are in
   * the armed buffer and the state array is current. A pump that empties
   * the ring here asks for its next wake-up only once this callback has
   * returned (the watcher does it natively: one call fewer); if the reply
   * came first, the watcher reads it and calls again with the next `round`.
   */
  onWokenRead(got: number, round = 0): void {
    if (this.stopped) return; // closing: nothing more is delivered
    if (!this.reading || this.pumping) {
      // Never armed so (pause() and every pump disarm): bytes already taken
      // out of the ring would be lost, so fail loudly rather than drop them.
      if (got > 0) this.host.fail(codedError('ERR_INTERNAL_ASSERTION', `a wake-up read ${got} bytes for a reader that was not waiting`));
      return;
    }
    this.wakeRound = round;
    try {
      // A later round is the same macrotask: it goes on with the turn's budget.
      this.pump(true, round > 0, got);
    } finally {
      this.wakeRound = -1;
    }
  }

  /**
   * `chained`: called by an in-tick spin, in the macrotask of the pump before it.
   * `woken`: bytes a wake-up already read into the armed buffer.
   */
  private pump(fresh: boolean, chained = false, woken = 0): void {
    if (this.pumping) return;
    this.pumping = true;
    this.disarm();
    this.state.used();
    const ep = this.state.endpoint;
    // Why: an exception thrown by the owner's handlers (user code) is the
    // user's, as with net (uncaught); only the ring's own errors fail the channel.
    let delivering = false;
    // A pump chained by an in-tick spin goes on with the turn's budget.
    let bytes = chained ? this.turnUsedBytes : 0;
    let reads = chained ? this.turnUsedReads : 0;
    try {
      if (!fresh) ep.waitData(0); // publishes the state without spinning
      this.writtenMark = this.host.written?.() ?? 0;
      if (woken > 0) {
        reads++;
        this.delivered(woken);
        bytes += woken;
        delivering = true;
        if (!(this.wakeIntoTarget ? this.sink.channelRead!(woken) : this.sink.channelData(this.pool!.take(woken)))) this.reading = false;
        delivering = false;
      }
      while (this.reading && !this.stopped) {
        // With a pool: how many ring bytes may be read before the next payload (0: it is due now).
        const allowance = this.receiver !== null ? this.poolAllowance() : Infinity;
        if (allowance === 0) {
          if (this.turnSpent(bytes, reads)) return;
          reads++;
          const target = this.sink.channelTarget?.() ?? null;
          // Taken (and checked) before delivery: a pool error is the ring's, not the user's.
          const payload = this.takePayload(target);
          if (payload === null) return; // a zero-length onread buffer: nothing can move
          const n = typeof payload === 'number' ? payload : payload.length;
          this.delivered(n, false);
          // A view costs this turn one read, whatever its length: counted as
          // bytes, every 16 MiB payload ended the turn (a loop turn and a
          // state refresh per hand-off). Copies are work: they count.
          if (typeof payload === 'number' || this.receiver!.copiedLast) bytes += n;
          delivering = true;
          if (typeof payload === 'number' ? !this.sink.channelRead!(n) : !this.sink.channelData(payload)) this.reading = false;
          delivering = false;
          continue;
        }
        if (this.state.readable === 0 && !this.ackPending) {
          // The array was filled peer state first, then indices: fin with an
          // empty ring means every byte was read.
          if (this.state.peerDoneWriting) {
            this.reading = false;
            this.host.endOfData();
            return;
          }
          if (this.spins && this.takeChance(false)) {
            // Spin later, once this tick's 'data' handlers have run (and
            // perhaps written the message whose reply we are waiting for).
            if (!this.spinScheduled) {
              this.spinScheduled = true;
              this.promisesChecked = false;
              process.nextTick(this.spinSoon);
            }
            return;
          }
          // Ask for a wake-up and re-check in one call; sleep if still nothing
          // (a payload may have been announced meanwhile: checked after asking).
          // As late as this: a reply that comes back before it costs the peer
          // no kick and us no wake-up (asking in the read that emptied the
          // ring saved this call but lost that: 1.5-2.5 µs more per round
          // trip as bench/crossings.js --spin-micros 0 --fork counts it).
          // In the watcher's callback, the watcher asks once it returns
          // (later still, and without a call; it re-checks for all of these).
          if (this.wakeRound >= 0 && this.wakeRound < WAKE_ROUNDS && this.armWake()) {
            this.wake![WakeWord.Sleep] = 1;
            return;
          }
          if (ep.waitData(0, true) === 0 && !this.state.peerDoneWriting && !this.payloadDue()) {
            this.armWake();
            return;
          }
          continue;
        }
        if (this.turnSpent(bytes, reads)) return;
        reads++;
        const target = this.sink.channelTarget?.() ?? null;
        let got: number;
        if (target !== null) {
          // The owner's own buffer (onread): nothing allocated per read.
          got = this.readRing(target, 0, this.receiver !== null ? this.ringCap(target.length, allowance) : target.length);
          if (got === 0) continue;
          this.delivered(got);
          bytes += got;
          delivering = true;
          if (!this.sink.channelRead!(got)) this.reading = false;
          delivering = false;
          continue;
        }
        // Woken: the readable count is not known until the read.
        const want = Math.min(this.ackPending ? this.options.maxChunk : this.state.readable, this.options.maxChunk, allowance);
        this.pool ??= new ReadPool(2 * this.options.maxChunk);
        const room = this.pool.space(want);
        got = this.readRing(room.buffer, room.offset, room.length);
        if (got === 0) continue;
        this.delivered(got);
        bytes += got;
        delivering = true;
        if (!this.sink.channelData(this.pool.take(got))) this.reading = false;
        delivering = false;
      }
    } catch (err) {
      if (delivering) throw err;
      this.stop();
      this.host.fail(err as Error);
    } finally {
      this.pumping = false;
      this.turnUsedBytes = bytes;
      this.turnUsedReads = reads;
      // No ring read took the wake-ups: consume them (and refresh the state) now.
      if (this.ackPending) this.consumeWake();
    }
  }

  /**
   * One ring read. Woken, it consumes the wake-ups first (what service()
   * did, in the same call); with a pool it then reads nothing if a payload
   * was announced since poll() (it may lie inside these bytes: the caller
   * polls and reads again).
   */
  private readRing(target: Uint8Array, offset: number, max: number): number {
    if (!this.ackPending) return this.state.endpoint.read(target, offset, max);
    this.ackPending = false;
    return this.state.endpoint.read(target, offset, max, ReadFlag.Ack, this.watchMark());
  }

  /**
   * Going to sleep: has the next wake-up read natively (see onWokenRead)
   * into the buffer the pump would read into next, no further than a pool
   * payload due (its allowance; the watched mark covers one announced later).
   */
  private armWake(): boolean {
    const w = this.wake;
    if (w === null || !this.reading || this.stopped) return false;
    // The pool was just polled (payloadDue(), or the pump's turn): the allowance is current.
    const allowance = this.receiver !== null ? this.receiver.allowance(this.ringRead) : Infinity;
    if (allowance === 0) return false;
    const target = this.sink.channelTarget?.() ?? null;
    let buffer: Uint8Array;
    if (target !== null) {
      buffer = target;
      w[WakeWord.Offset] = 0;
      w[WakeWord.Max] = Math.min(target.length, allowance);
    } else {
      this.pool ??= new ReadPool(2 * this.options.maxChunk);
      const room = this.pool.space(Math.min(this.options.maxChunk, allowance));
      buffer = room.buffer;
      w[WakeWord.Offset] = room.offset;
      w[WakeWord.Max] = room.length;
    }
    // A new slab, or the owner's next buffer: one call (a slab serves many reads).
    if (buffer !== this.wakeTarget) {
      this.state.endpoint.setWakeTarget!(buffer);
      this.wakeTarget = buffer;
    }
    const mark = this.watchMark();
    w[WakeWord.Watch] = mark === undefined ? 0 : 1;
    w[WakeWord.Mark] = mark ?? 0;
    this.wakeIntoTarget = target !== null;
    w[WakeWord.Armed] = 1;
    return true;
  }

  private disarm(): void {
    if (this.wake === null) return;
    this.wake[WakeWord.Armed] = 0;
    this.wake[WakeWord.Sleep] = 0;
  }

  private consumeWake(): void {
    this.ackPending = false;
    if (this.stopped) return;
    try {
      this.state.service();
    } catch (err) {
      this.stop();
      this.host.fail(err as Error);
    }
  }

  private delivered(n: number, ring = true): void {
    this.bytesRead += n;
    if (ring) this.ringRead += n;
    this.sink.channelActivity();
  }

  /** The turn's budget is spent (the peer keeps producing): let the loop run, then go on. */
  private turnSpent(bytes: number, reads: number): boolean {
    if (bytes < this.turnBytes && reads < this.turnReads) return false;
    if (!this.yieldScheduled) {
      this.yieldScheduled = true;
      setImmediate(this.afterYield);
    }
    return true;
  }

  // --- The page-reference path (pool). Kept apart from the ring's hot path. ---

  /**
   * Takes the descriptors the peer published and returns the ring bytes that
   * may be read before the next payload. The state array (the ring index)
   * was read before this, so a descriptor at any position up to what it
   * shows is already visible (the writer publishes it first).
   */
  private poolAllowance(): number {
    const rx = this.receiver!;
    rx.poll(this.ringRead);
    return rx.allowance(this.ringRead);
  }

  /**
   * The mark of the word the receiver watches for announcements, after
   * binding that word to the endpoint if it changed (a lazy receiver
   * watches the peer's pool byte until it opens, then the descriptor index).
   */
  private watchMark(): number | undefined {
    const rx = this.receiver;
    if (rx === null) return undefined;
    const word = rx.announceWord;
    if (word !== this.watched) {
      this.watched = word;
      this.state.endpoint.bindWatch?.(word);
    }
    return rx.announceMark;
  }

  /** After asking for a wake-up on an empty ring: is a payload due anyway? */
  private payloadDue(): boolean {
    return this.receiver !== null && this.poolAllowance() === 0;
  }

  /**
   * Spins up to `micros` for ring bytes or (with a pool) an announced
   * payload, in one native call: the spin watches the peer's descriptor
   * index beside the ring. `arm`: if neither came, asks for a wake-up and
   * re-checks. True if either arrived, or the peer finished writing.
   */
  private spinFor(micros: number, arm: boolean): boolean {
    const rx = this.receiver;
    const mark = this.watchMark();
    // The peer's fin (or leaving) ends a spin as bytes do: what it waited for came.
    if (this.state.endpoint.waitData(micros, arm, mark) > 0 || this.payloadDue() || this.state.peerDoneWriting) return true;
    // A spin ended by a payload's announcement asks for no wake-up (we take
    // the payload instead). But a payload placed after ring bytes the spin
    // did not see yet is not due: without asking now we would sleep with
    // those bytes unread, and the peer, never asked, would never kick.
    if (arm && rx !== null && rx.announceMark !== mark) return this.state.endpoint.waitData(0, true) > 0 || this.payloadDue();
    return false;
  }

  /** What a read into the owner's buffer may take: no more than the ring showed (unknown when woken), nor past the next payload. */
  private ringCap(length: number, allowance: number): number {
    return Math.min(length, this.ackPending ? length : this.state.readable, allowance);
  }

  /**
   * The payload due now: a Buffer for 'data' (a view, or a private copy), or
   * with the owner's buffer `target` (onread), the bytes copied into it
   * (a payload larger than it arrives over several reads). null: nothing moved.
   */
  private takePayload(target: Uint8Array | null): Buffer | number | null {
    const rx = this.receiver!;
    if (target === null) return rx.take(this.ringRead);
    const n = rx.copyInto(this.ringRead, target, 0, target.length);
    return n > 0 ? n : null;
  }

  private readonly afterYield = (): void => {
    this.yieldScheduled = false;
    if (this.reading && !this.stopped) this.pump(false);
  };

  /**
   * Queued after this tick's staged writes are flushed. If the handlers wrote
   * (a reply: the peer's answer is what we wait for), spin briefly now, in
   * this macrotask: a loop turn costs ~0.8 µs here, a third of a round trip.
   * If not, or nothing came, the handlers may still reply (a promise, a
   * timer) or the peer may need this loop: spin after the turn, as before.
   */
  private readonly spinSoon = (): void => {
    if (this.stopped || !this.reading) {
      this.spinScheduled = false;
      return;
    }
    const wrote = (this.host.written?.() ?? 0) !== this.writtenMark;
    // Node runs the tick queue before the promise jobs: a handler that
    // resolves a promise whose continuation writes (`await` per message) has
    // not written yet. Look once more after those jobs, or every such round
    // trip waits a loop turn before it spins (13-21 µs instead of ~5: see
    // docs/benchmark.md, "The 1-byte round trip on a pool connection").
    if (this.spins && !wrote && !this.promisesChecked) {
      this.promisesChecked = true;
      queueMicrotask(this.afterPromises);
      return;
    }
    if (this.spins && wrote && this.tickSpins < TICK_SPINS && this.takeChance(true)) {
      let got: boolean;
      try {
        got = this.spinFor(Math.min(this.options.spinMicros, TICK_SPIN_MICROS), false);
      } catch (err) {
        this.spinScheduled = false;
        this.stop();
        this.host.fail(err as Error);
        return;
      }
      if (got) {
        this.spun(true, true);
        this.spun(false, true);
        this.tickSpins++;
        this.spinScheduled = false;
        this.pump(true, true);
        return;
      }
      this.spun(true, false);
    }
    this.tickSpins = 0;
    setImmediate(this.spinThenSleep);
  };

  /**
   * After the promise jobs queued before it: if one wrote, spin in this
   * macrotask, but from the tick queue, after the staged-write flush that
   * write queued there (the whole message is out before we wait for its reply).
   */
  private readonly afterPromises = (): void => {
    if ((this.host.written?.() ?? 0) !== this.writtenMark) process.nextTick(this.spinSoon);
    else this.spinSoon();
  };

  private readonly spinThenSleep = (): void => {
    this.spinScheduled = false;
    if (this.stopped || !this.reading) return;
    try {
      // Spin for data; if none came, ask for a wake-up and re-check (one call).
      if (this.spinFor(this.spins ? this.options.spinMicros : 0, true)) {
        if (this.spins) this.spun(false, true);
      } else {
        if (this.spins) this.spun(false, false);
        if (!this.state.peerDoneWriting) {
          this.armWake();
          return; // sleep until woken
        }
      }
    } catch (err) {
      this.stop();
      this.host.fail(err as Error);
      return;
    }
    this.pump(true);
  };
}
