/**
 * RingChannel: drives one RingLink for a stream. It sleeps on the link's wait
 * fd through libuv. A reader that went to sleep armed its next read, which
 * the fd's watcher does natively before calling back (wake-ups consumed,
 * bytes read, ring state published: one crossing per wake-up); otherwise a
 * wake-up is serviced in one native call. Then its reader (reader.ts) and
 * writer (writer.ts) move bytes. The connection's
 * lifecycle is one explicit state (lifecycle.ts); the vchan bytes are read
 * and written through vchan_state.ts. It knows nothing about how the pages
 * were shared.
 * @internal
 */
import { constants } from 'node:os';
import { getSystemErrorName } from 'node:util';
import { codedError, systemError } from '../errors';
import { native, FdWatcher, UV_DISCONNECT, UV_READABLE, type FdWatcherCallback } from '../native';
import { Lifecycle } from './lifecycle';
import type { RingLink } from './link';
import { RingReader, type ReadSink } from './reader';
import { RingWriter, STAGE_MAX, type WriterHost } from './writer';
import { Live, VchanState, closeOrderly, finish, readPeerState, reset } from './vchan_state';

/** What a channel tells the stream that owns it. */
export interface ChannelOwner extends ReadSink {
  /** The peer finished writing and every byte was delivered. */
  channelEnd(): void;
  /** The peer vanished or broke the protocol. */
  channelError(err: Error): void;
}

export interface ChannelOptions {
  /** Bytes per 'data' chunk at most. */
  maxChunk?: number;
  /** Spin at most this long for data before sleeping (µs); adapted per channel. */
  spinMicros?: number;
}

/** Default spin budget (µs): about one Node round trip, so replies are caught. */
export const DEFAULT_SPIN_MICROS = 50;
export { STAGE_MAX };

/** libuv's status for POLLERR. */
const UV_EBADF = -9;

/** A failed poll (libuv's negative errno) as a system error: the channel can never wake again. */
function pollError(status: number): Error {
  const name = getSystemErrorName(status);
  return systemError(name in constants.errno ? name : 'EIO', 'poll');
}

/**
 * The writer's view of its channel's lifecycle. A class, not an object
 * literal with getters: V8 keeps every such literal's getters, and all their
 * closures captured (the whole connection), alive through young-generation
 * GCs until the next full one (a new connection per request promoted its
 * whole graph to the old generation: 7x TCP's scavenge time).
 */
class ChannelWriterHost implements WriterHost {
  constructor(
    private readonly life: Lifecycle,
    readonly fail: (err: Error) => void,
    readonly activity: () => void,
  ) {}

  get closed(): boolean {
    return this.life.closed;
  }

  get peerGone(): boolean {
    return this.life.peerGone;
  }

  notePeerGone(): void {
    this.life.on('peerGone');
  }
}

export class RingChannel {
  private readonly waitWatcher: FdWatcher;
  private hangupWatcher: FdWatcher | null = null;
  private readonly life = new Lifecycle();
  /** The channel failed (peer died or reset, broke the protocol, a wake-up failed): its close is no orderly end for release(). */
  private failed = false;
  private readonly state: VchanState;
  private readonly reader: RingReader;
  private readonly writer: RingWriter;

  constructor(
    readonly link: RingLink,
    private readonly owner: ChannelOwner,
    options: ChannelOptions = {},
  ) {
    const spinMicros = options.spinMicros ?? DEFAULT_SPIN_MICROS;
    this.state = new VchanState(link.endpoint, link.ext);
    const host = {
      endOfData: () => this.onEndOfData(),
      fail: (err: Error) => this.fail(err),
      written: () => this.writer.bytesWritten,
    };
    const pool = link.pool ?? null;
    this.reader = new RingReader(this.state, owner, host, { maxChunk: options.maxChunk ?? 512 * 1024, spinMicros }, pool?.receiver ?? null);
    this.writer = new RingWriter(
      this.state,
      new ChannelWriterHost(
        this.life,
        (err) => this.fail(err),
        () => owner.channelActivity(),
      ),
      spinMicros,
      pool?.sender ?? null,
    );
    // A completion sent from a GC callback failed: the peer broke the pool protocol.
    if (pool) pool.errorSink = this;
    const onWake: FdWatcherCallback = (events, read, error, round) => this.onWake(events, read, error, round);
    // A kept link's watcher from its connection before, if it has one: no new poll handle.
    const handedWait = link.takeWaitWatcher?.() ?? null;
    handedWait?.setCallback(onWake);
    this.waitWatcher = handedWait ?? new native.FdWatcher(link.waitFd, onWake);
    // A wake-up then reads natively what the sleeping reader armed (one crossing).
    if (this.reader.readsOnWake) this.waitWatcher.bindRing(link.endpoint);
    this.waitWatcher.start(UV_READABLE);
    if (link.hangupFd !== null) {
      // libuv reports POLLERR as EBADF: on the rendezvous socket, the peer
      // closed it with our messages unread (a reset). That is a hang-up: the
      // socket's pending error is read there, and the live and fin bytes say
      // how the peer left (ECONNRESET without its fin).
      const onHangup = (events: number) => (events < 0 && events !== UV_EBADF ? this.fail(pollError(events)) : this.onHangup());
      // The transport's handshake watcher on the same fd, if it has one: one
      // poll handle less to make and close (5 epoll_ctl calls).
      const handed = link.takeHangupWatcher?.() ?? null;
      handed?.setCallback(onHangup);
      this.hangupWatcher = handed ?? new native.FdWatcher(link.hangupFd, onHangup);
      this.hangupWatcher.start(UV_READABLE | UV_DISCONNECT);
    }
  }

  /** Bytes copied out of / into the ring so far. */
  get bytesRead(): number {
    return this.reader.bytesRead;
  }

  get bytesWritten(): number {
    return this.writer.bytesWritten;
  }

  /** Starts (or resumes) delivering data to the owner. */
  resume(): void {
    if (this.life.closed) return;
    this.reader.resume();
  }

  pause(): void {
    this.reader.pause();
  }

  /** True while delivering, or waiting for the peer's next bytes. */
  get isReading(): boolean {
    return this.reader.isReading;
  }

  /** See RingWriter.stage(): false means use write(). */
  stage(chunk: Buffer): boolean {
    return this.writer.stage(chunk);
  }

  /** Writes the chunks; the callback runs once all bytes are in the ring. */
  write(chunks: Buffer[], callback: (err?: Error | null) => void): void {
    this.writer.write(chunks, callback);
  }

  /**
   * Our last byte is written: tell the peer (half-close). Plain vchan has no
   * half-close, so there we close once the peer has read everything (as
   * libxenvchan programs do on end of input) and report end of data.
   */
  finish(): void {
    if (this.life.closed) return;
    this.reader.noMoreSpins();
    if (this.writer.writeStagedOrFail()) return;
    try {
      if (finish(this.link.endpoint)) return;
    } catch (err) {
      this.fail(err as Error); // the wake-up failed
      return;
    }
    this.life.on('drain');
    this.checkDrained();
  }

  private checkDrained(): void {
    if (!this.life.draining) return;
    let drained: boolean;
    try {
      // drained() asks for a wake-up and publishes the peer's state: peerGone
      // after it is current (a peer known gone is not asked again).
      drained = this.state.peerGone || this.writer.drained() || this.state.peerGone;
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    if (!drained) return; // woken when the peer reads
    const ended = this.life.ended;
    this.close();
    if (!ended) this.owner.channelEnd();
  }

  /**
   * Closes the ring. Orderly: the peer reads what we wrote, then sees end of
   * data. `reset` (or bytes left unread in our ring): the peer sees
   * ECONNRESET (like a TCP RST).
   */
  close(doReset = false): void {
    if (this.life.closed) return;
    const ep = this.link.endpoint;
    // As TCP, which answers a close with unread data by an RST: the peer's
    // writer gets ECONNRESET, not a clean end (or EPIPE) as if we had read it all.
    if (!doReset && this.unreadInRing()) doReset = true;
    try {
      if (!doReset) this.writer.writeStaged(); // bytes whose write already succeeded
    } catch {
      /* a peer that broke the protocol gets nothing more */
    }
    this.life.on('close');
    this.reader.stop();
    let orderly = !doReset;
    try {
      if (doReset) reset(ep);
      else closeOrderly(ep);
    } catch {
      /* endpoint already closed, or the last wake-up failed: nothing to tell */
      orderly = false;
    }
    // A link that may be kept for another connection takes our watchers
    // (its next channel's need no new poll handles); otherwise they close.
    if (!(this.link.adoptWatchers?.(this.waitWatcher, this.hangupWatcher) ?? false)) {
      this.waitWatcher.close();
      this.hangupWatcher?.close();
    }
    this.hangupWatcher = null;
    // A close after a failure still tells the peer in order (as net's FIN
    // after destroy(err)), but the connection did not end in order.
    this.link.release(orderly && !this.failed);
    this.writer.abort();
  }

  /** Bytes the peer wrote that we never took out of the ring, or pool payloads never delivered (a broken ring counts as unread). */
  private unreadInRing(): boolean {
    try {
      return this.link.endpoint.readable() > 0 || (this.link.pool?.receiver?.hasUnread() ?? false);
    } catch {
      return true;
    }
  }

  ref(): void {
    if (this.life.closed) return; // its watchers are closed, or a kept link's now
    this.waitWatcher.ref();
    this.hangupWatcher?.ref();
  }

  unref(): void {
    if (this.life.closed) return;
    this.waitWatcher.unref();
    this.hangupWatcher?.unref();
  }

  /** `read` (>= 0): the wake-up's native read armed by the reader took the wake-ups and these bytes (`round`: see FdWatcherCallback); `error`: it failed. */
  private onWake(events: number, read?: number, error?: Error, round = 0): void {
    if (this.life.closed) return;
    if (events < 0) {
      this.fail(pollError(events));
      return;
    }
    if (error !== undefined) {
      this.fail(error);
      return;
    }
    if (read === undefined && events > 0 && this.reader.readsOnWake) {
      // The bound watcher reports every readable event's read (-1: none armed).
      // Called back without it (a wrapper that dropped the arguments), the
      // bytes that read took out of the ring are gone: fail, never sleep on.
      this.fail(codedError('ERR_INTERNAL_ASSERTION', 'the wait watcher called back without its wake-up read: bytes it read are lost'));
      return;
    }
    // A reading reader consumes the wake-ups in its first read (one call);
    // otherwise service() does: wake-ups consumed, state published.
    if (read !== undefined && read >= 0) {
      this.reader.onWokenRead(read, round);
    } else {
      const reading = this.reader.isReading;
      if (!reading) {
        try {
          this.state.service();
        } catch (err) {
          this.fail(err as Error);
          return;
        }
      }
      this.reader.onWake(reading);
    }
    if (this.writer.hasPending) this.writer.flush();
    if (!this.life.closed && !this.reader.isReading && !this.writer.hasPending && this.state.peerGone) {
      this.life.on('peerGone');
    }
    this.checkDrained();
  }

  private onHangup(): void {
    // A message first (its pool region): the socket is still open.
    try {
      if (this.link.rendezvousRead?.() === false) return;
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    // The peer's rendezvous socket closed: its process is gone or it closed
    // the ring. If it closed properly, the live/fin bytes already say so.
    this.hangupWatcher?.close();
    this.hangupWatcher = null;
    if (this.life.closed) return;
    this.life.on('peerGone');
    let peer;
    try {
      peer = readPeerState(this.link.endpoint);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    // Gone without saying it finished writing: it died (live byte still set)
    // or reset the connection (a xenring peer clears live without fin).
    if (!peer.fin && (peer.live !== Live.Gone || this.link.ext)) {
      this.fail(systemError('ECONNRESET', 'read'));
      return;
    }
    this.onWake(0);
  }

  /** The link's pool found the peer broke its protocol outside any stream call (a completion from a GC callback). */
  poolFailed(err: Error): void {
    this.fail(err);
  }

  /** The ring is empty and the peer writes no more: end of data, or a reset. */
  private onEndOfData(): void {
    if (this.state.peerGone) this.life.on('peerGone');
    if (this.life.ended) return;
    if (this.state.peerReset) {
      // A xenring peer that closes without fin was reset (resetAndDestroy).
      this.failed = true;
      this.owner.channelError(systemError('ECONNRESET', 'read'));
      return;
    }
    this.life.on('ended');
    this.owner.channelEnd();
  }

  private fail(err: Error): void {
    if (this.life.closed) return;
    this.failed = true;
    this.reader.stop();
    this.owner.channelError(err);
  }
}
