/**
 * Socket: a node:net-compatible stream over a xenring ring pair. It extends
 * Node's own stream.Duplex (http, ws and ioredis read its internal state) and
 * reproduces net.Socket's contract: allowHalfOpen defaults to false, 'close'
 * carries a boolean hadError and comes last, writes after the peer's FIN fail
 * with EPIPE, destroySoon() ends synchronously.
 */
import { Duplex } from 'node:stream';
import { codedError, invalidArgType, invalidArgValue, outOfRange, systemError } from './errors';
import { DEFAULT_LOCAL_POOL, DEFAULT_XEN_POOL, parsePoolOptions, type PoolOptions } from './pool/layout';
import { emptyPoolStats, type PoolStats } from './pool/pool_stats';
import { DEFAULT_SPIN_MICROS, RingChannel, STAGE_MAX, type ChannelOwner } from './ring/channel';
import type { Server } from './server';
import { Cancel, type CancelSignal } from './transports/cancel';
import { resolveTransport } from './transports/registry';
import type { RingLink } from './transports/transport';
import { validateMsecs, validatePort } from './validators';
import { UserBuffer, type OnReadOptions } from './user_buffer';

/** Options of `new Socket()`. */
export interface SocketOptions {
  /** Keep the writable side open after the peer ends (default false, as in net). */
  allowHalfOpen?: boolean;
  /**
   * Spin up to this many µs for data before sleeping on the wake-up fd, and
   * for room when writing into a full ring (latency vs CPU). Default 50;
   * adaptive: after spins that find nothing, exponentially more of the next
   * chances are skipped; a spin that succeeds resets that. Once this side
   * has ended (`end()`), reads wait asleep: what the peer still sends (its
   * end, a last reply) is not spun for. 0 disables spinning.
   */
  spinMicros?: number;
  /**
   * As in net: read into your own buffer and get `callback(bytesRead, buffer)`
   * instead of 'data' events (no allocation per read: the fastest way to
   * receive). 'end', 'close', pause() and resume() work as usual.
   */
  onread?: OnReadOptions;
  /** Bytes buffered for reading before reading pauses (stream default if unset). */
  /** Bytes buffered per direction before backpressure (stream default if unset). */
  highWaterMark?: number;
  /** Aborting it destroys the socket with an AbortError, as net's `signal` option. */
  signal?: AbortSignal;
  /**
   * The ring port (number or name) connect() uses in place of the port it is
   * given: for clients that call `socket.connect(port, host)` themselves with
   * a TCP port parsed as an integer (pg's `stream` option).
   */
  port?: number | string;
  /** Bytes buffered for reading before reading pauses (overrides highWaterMark). */
  readableHighWaterMark?: number;
  /** Bytes buffered for writing before write() returns false (overrides highWaterMark). */
  writableHighWaterMark?: number;
}

/**
 * The page-reference pool of a connection (`connect`, `createServer`,
 * `listen`): `{ size, views }`, or `false` for none.
 */
export interface PoolOption {
  /**
   * Bytes of pool per direction, a multiple of 4096 from 0 (off) to 1 GiB.
   * The peers use the smaller of their two sizes. Default 64 MiB on `local`
   * (untouched pages cost nothing), 1 MiB on `xen` (gntalloc's grant limit).
   */
  size?: number;
  /**
   * Deliver received pool payloads as views of the peer's pages (no copy).
   * Default: views only from a peer of our own uid on `local`; a private copy
   * otherwise (a view can change under its reader if the peer writes it).
   */
  views?: boolean;
}

/** Options of `connect()` / `socket.connect()`. */
export interface SocketConnectOptions extends SocketOptions {
  /** Port number (0..65535) or service name the server listens on. */
  port: number | string;
  /** 'local' or 'xen'; default 'xen' where the Xen devices are usable, else 'local'. */
  transport?: 'local' | 'xen';
  /** Xen: the server's domain id. */
  domid?: number;
  /** Bytes per direction asked for, a power of two (default: the listener's); the listener's `ringSize` caps it. */
  ringSize?: number;
  /** Local transport: rendezvous directory (default $XENRING_DIR or a per-user directory). */
  dir?: string;
  /** Local transport: uids besides ours the server may run as (default none). */
  allowUid?: number | number[];
  /** Page-reference pool (see {@link PoolOption}); `false` turns it off. On by default between xenring peers. */
  pool?: PoolOption | false;
  /** Idle timeout in ms, as socket.setTimeout(): emits 'timeout', does not close. */
  timeout?: number;
  /** Fail with ETIMEDOUT if the connection is not up after this many ms. */
  connectTimeout?: number;
  /** Accepted for net compatibility and ignored (there is no Nagle on a ring). */
  noDelay?: boolean;
  /** Accepted for net compatibility and ignored. */
  keepAlive?: boolean;
  /** Accepted for net compatibility and ignored. */
  keepAliveInitialDelay?: number;
}

/** Address as reported by address(): family 'local' (address = socket path) or 'xen' (address = domid). */
export interface SocketAddress {
  address: string;
  family: string;
  port: number | string;
}

/** @internal */
export const kAttach = Symbol('xenring.attach');
/** @internal Connects through any link-producing function (vchan endpoints). */
export const kConnectWith = Symbol('xenring.connectWith');
/**
 * @internal Called once when an accepted socket is destroyed: its Server
 * stops counting it then, before its 'close' (net's _destroy does the same,
 * so the server's 'close' comes before the last connection's).
 */
export const kReleased = Symbol('xenring.released');
/** @internal Starts making a link; aborting `signal` gives it up (and frees what it took). */
export type LinkStarter = (signal: CancelSignal) => Promise<RingLink>;

type WriteCb = (err?: Error | null) => void;

/**
 * A stream over a xenring connection, shaped like net.Socket: create one with
 * {@link connect} (or `new Socket().connect()`), or receive it from a
 * {@link Server}'s 'connection' event.
 */
export class Socket extends Duplex {
  /** True from connect() until 'connect' is emitted. */
  connecting = false;
  /** The idle timeout set by setTimeout(), undefined until then. */
  timeout: number | undefined = undefined;
  /** The Server that accepted this socket, else null (a client socket). */
  server: Server | null = null;
  /** Same as {@link Socket.server} (net keeps both names). */
  _server: Server | null = null;
  /** Always null: there is no libuv stream handle (TLS and http check it). */
  readonly _handle: null = null;

  private channel: RingChannel | null = null;
  /** Aborts the connect in progress (destroy, connect timeout); null when none. */
  private connectAbort: Cancel | null = null;
  private connectTimer: NodeJS.Timeout | null = null;
  /** @internal See kReleased. */
  [kReleased]: (() => void) | undefined = undefined;
  private idleTimer: NodeJS.Timeout | null = null;
  private wantRead = false;
  private refed = true;
  private readonly spinMicros: number;
  /** The constructor's `port` option; checked by connect() (accepted sockets never use it). */
  private readonly presetPort: unknown;
  /** The constructor's `signal` option: once aborted, connect() does nothing (see connect()). */
  private readonly abortSignal: AbortSignal | undefined;
  /** Bytes handed to the channel (as net counts at dispatch, even if the write then fails). */
  private bytesDone = 0;
  /** Of those, bytes whose write has not called back yet (still in writableLength). */
  private bytesInFlight = 0;
  /** Bumped per connection, so a late callback cannot touch the next one's counters. */
  private connGeneration = 0;
  private bytesReadBase = 0;
  private link: RingLink | null = null;
  private readonly userBuffer: UserBuffer | null;
  /** What the channel calls back (kept off the public class). */
  private readonly owner: ChannelOwner = {
    channelData: (chunk) => {
      const more = this.push(chunk);
      if (!more) this.setReading(false);
      return more;
    },
    channelTarget: () => (this.userBuffer ? this.userBuffer.target() : null),
    channelRead: (n) => {
      const more = this.userBuffer!.deliver(this, n);
      if (this.userBuffer!.error) this.destroy(this.userBuffer!.error);
      if (!more) this.setReading(false);
      return more;
    },
    channelEnd: () => {
      this.setReading(false);
      this.push(null);
      // Why: as net's onStreamRead at EOF; emits 'end' now if nothing is buffered,
      // even when no one consumes the data. Deferred: EOF may be found inside
      // _read(), and a read() re-entered from there loses the 'end'.
      process.nextTick(() => this.read(0));
    },
    channelError: (err) => this.destroy(err),
    channelActivity: () => this.idleTimer?.refresh(),
  };

  constructor(options: SocketOptions = {}) {
    if (options === null || typeof options !== 'object') throw invalidArgType('options', 'of type object', options);
    rejectObjectMode(options);
    super({
      allowHalfOpen: Boolean(options.allowHalfOpen),
      emitClose: false,
      autoDestroy: true,
      highWaterMark: options.highWaterMark,
      readableHighWaterMark: options.readableHighWaterMark,
      writableHighWaterMark: options.writableHighWaterMark,
      // As net: the stream validates it and destroys us with an AbortError on abort.
      signal: options.signal,
    });
    this.spinMicros = validateSpin(options.spinMicros) ?? DEFAULT_SPIN_MICROS;
    this.userBuffer = UserBuffer.from(options.onread);
    this.presetPort = options.port;
    this.abortSignal = options.signal;
    this.on('end', () => this.onReadableEnd());
  }

  /**
   * Connects to a xenring server: `connect(options[, cb])`,
   * `connect(port[, host][, cb])` (host: the Xen domid, ignored locally).
   */
  connect(...args: unknown[]): this {
    if (this.presetPort !== undefined) args = withPort(args, this.presetPort);
    const [options, cb] = normalizeConnectArgs(args);
    if (this.connecting) {
      // As net, whose second connect() on a connecting handle fails with the OS's EALREADY: the socket is destroyed with it.
      this.destroy(systemError('EALREADY', 'connect'));
      return this;
    }
    const transport = resolveTransport(options.transport);
    if (this.channel) return this.reconnectLive(cb);
    if (options.allowHalfOpen !== undefined) this.allowHalfOpen = Boolean(options.allowHalfOpen);
    const req = {
      port: options.port,
      domid: options.domid,
      ringSize: options.ringSize,
      dir: options.dir,
      allowUid: options.allowUid,
      timeout: options.connectTimeout,
      pool: transportPoolOptions(options.pool, transport.name),
    };
    if (options.connectTimeout !== undefined) validateMsecs(options.connectTimeout, 'options.connectTimeout');
    // Destroyed by its own signal (AbortError): no connection. Undestroying
    // here would connect a socket that already emitted 'close', and the link
    // it got would keep the server's side open for good.
    if (this.abortSignal?.aborted) return this;
    if (this.destroyed) {
      // Reconnecting a closed socket, as net allows; the counters restart
      // with the new connection (net's come from the new handle).
      (this as unknown as { _undestroy(): void })._undestroy();
      this.write = Socket.prototype.write;
      this.link = null;
      this.bytesDone = 0;
      this.bytesInFlight = 0;
      this.connGeneration++;
      this.bytesReadBase = 0;
    }
    if (options.timeout) this.setTimeout(options.timeout);
    return this[kConnectWith]((signal) => transport.connect(req, signal), cb, options.connectTimeout);
  }

  /**
   * connect() on a connected socket, as net over TCP in Node 20: the live
   * connection is kept (the new address is not used), the socket is
   * 'opening' for a turn, holding writes, then emits 'connect' and 'ready'
   * again.
   */
  private reconnectLive(cb?: () => void): this {
    const ac = new Cancel();
    this.connectAbort = ac;
    this.connecting = true;
    if (cb) this.once('connect', cb);
    setImmediate(() => {
      if (ac.aborted || this.connectAbort !== ac || this.destroyed) return;
      this.connectAbort = null;
      this.connecting = false;
      this.emit('connect');
      this.emit('ready');
    });
    return this;
  }

  /** @internal */
  [kConnectWith](start: LinkStarter, cb?: () => void, connectTimeout?: number): this {
    const ac = new Cancel();
    if (!this.refed) ac.setRefed(false);
    // A start that throws (bad arguments) leaves the socket as it was, not "connecting".
    const linked = start(ac.signal);
    this.connectAbort = ac;
    this.connecting = true;
    if (cb) this.once('connect', cb);
    // Out of the promise chain (nextTick): 'connect' handlers and the first
    // reads are user code, whose exceptions must be uncaught, not rejections.
    linked.then(
      (link) => process.nextTick(() => this.afterConnect(ac, null, link)),
      (err: Error) => process.nextTick(() => this.afterConnect(ac, err)),
    );
    if (connectTimeout) {
      this.connectTimer = setTimeout(() => {
        this.connectTimer = null;
        const err = systemError('ETIMEDOUT', 'connect');
        ac.abort(err);
        this.destroy(err);
      }, connectTimeout);
      if (!this.refed) this.connectTimer.unref();
    }
    return this;
  }

  private afterConnect(ac: Cancel, err: Error | null, link?: RingLink): void {
    if (ac.aborted || this.connectAbort !== ac) {
      link?.release(); // given up (destroyed, timed out): nobody wants it
      return;
    }
    this.connectAbort = null;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    if (this.destroyed) {
      link?.release();
      return;
    }
    if (err || !link) {
      this.connecting = false;
      this.destroy(err ?? systemError('ECONNREFUSED', 'connect'));
      return;
    }
    // Why: as net's afterConnect, 'connect'/'ready' come before any 'data';
    // reading starts only after them (read(0) also starts it when nobody
    // listens for 'data', so the peer's FIN is still noticed).
    const broken = this[kAttach](link, false);
    this.connecting = false;
    if (broken !== null) {
      this.destroy(broken); // the connect fails, as when the handshake does
      return;
    }
    this.emit('connect');
    this.emit('ready');
    if (!this.destroyed && this.channel) {
      if (this.wantRead) this.scheduleRead();
      // A later turn, as net's first read (see kAttach).
      setImmediate(() => {
        if (!this.destroyed && this.channel && !this.isPaused()) this.read(0);
      });
    }
  }

  /**
   * @internal Binds a connected ring (client after connect, or accepted by a
   * Server). Returns the error when the ring is already broken (the link is
   * then released and nothing is bound), else null.
   */
  [kAttach](link: RingLink, startReading = true): Error | null {
    this.link = link;
    try {
      this.channel = new RingChannel(link, this.owner, { spinMicros: this.spinMicros });
    } catch (err) {
      // The channel's first look at the control page found a byte the peer
      // wrote that is no state (EPROTO): the handshake does not read the live
      // bytes, so a hostile peer can have written it before we looked. The
      // connection fails before it started; the caller says how.
      link.release();
      this.link = null;
      return err as Error;
    }
    this.active = true; // a new channel's watchers start ref'd
    this.reading = false;
    this.draining = false;
    this.updateActive();
    try {
      this.userBuffer?.start();
    } catch (err) {
      process.nextTick(() => this.destroy(err as Error));
      return null;
    }
    if (!startReading) return null;
    if (this.wantRead) this.scheduleRead();
    // Why: net starts reading accepted sockets at once (read(0)); without it a
    // socket nobody reads from never sees the peer's FIN, never emits 'end'
    // and never closes (and a closing Server waits for it forever). On a later
    // turn of the loop, as net's first read: the peer's data or FIN may already
    // be in the ring, and 'end' must not fire before 'connection' handlers
    // (and their promise continuations) have attached their listeners.
    setImmediate(() => {
      if (!this.destroyed && this.channel && !this.isPaused()) this.read(0);
    });
    return null;
  }

  /**
   * net's allowHalfOpen=false: once the peer ended, writes fail with EPIPE
   * and (Duplex, right after 'end') our writable side ends. Not when Node's
   * stream wrapper (JSStreamSocket, used by tls and http2 for any stream
   * without a libuv handle) consumes this socket: net hands such consumers
   * its handle, so the raw socket's own half-close rule never runs and the
   * consumer (a TLSSocket that copied our allowHalfOpen) ends us itself once
   * its own writes are flushed. Ending here too would cut its reply short
   * (issue 12 item 2).
   */
  private onReadableEnd(): void {
    if (this.allowHalfOpen) return;
    if (wrappedAsStreamHandle(this)) {
      // Duplex reads allowHalfOpen right after the 'end' listeners to decide
      // whether to end(); restored on the next tick, so the option still reads false.
      this.allowHalfOpen = true;
      process.nextTick(() => (this.allowHalfOpen = false));
      return;
    }
    this.write = writeAfterFIN;
  }

  // --- Duplex implementation ----------------------------------------------

  override _read(): void {
    this.wantRead = true;
    // Why deferred: as net, bytes arrive from the event loop, never inside a
    // read() or a tick; read synchronously here, a reply the peer sent to our
    // FIN could be delivered before our own 'finish' (still a tick away).
    if (this.channel && !this.channel.isReading) this.scheduleRead();
  }

  /** Resumes the channel on a later turn of the loop (once, however often asked). */
  private scheduleRead(): void {
    if (this.readScheduled) return;
    this.readScheduled = true;
    setImmediate(this.scheduledRead);
  }

  private readScheduled = false;
  private readonly scheduledRead = (): void => {
    this.readScheduled = false;
    if (this.wantRead && this.channel && !this.destroyed) this.startReading();
  };

  /**
   * As net's handle, the channel keeps the process alive only while it is
   * active: reading (net's readStart: flowing or under the high-water mark,
   * and not at end of data), writing, or ending towards a plain vchan peer
   * (that waits for the peer to drain the ring). A paused socket, or one
   * holding unread data after the peer's end, lets the process exit.
   */
  private updateActive(): void {
    const ch = this.channel;
    if (!ch) return;
    const active = this.refed && (this.reading || this.writesInFlight > 0 || this.draining);
    if (active === this.active) return;
    this.active = active;
    if (active) ch.ref();
    else ch.unref();
  }

  private setReading(reading: boolean): void {
    this.reading = reading;
    this.updateActive();
  }

  /** Resumes the channel; marked reading first (resume() may deliver the end at once). */
  private startReading(): void {
    this.setReading(true);
    this.channel!.resume();
  }

  private reading = false;
  private writesInFlight = 0;
  private draining = false;
  /** Whether the channel's watchers are ref'd; they start ref'd. */
  private active = true;

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: WriteCb): void {
    // A small chunk the ring surely has room for is taken at once (staged and
    // written at the end of the tick), so the next write() goes straight on.
    if (chunk.length <= STAGE_MAX && !this.connecting && this.channel?.stage(chunk)) {
      this.bytesDone += chunk.length;
      callback();
      return;
    }
    this.writeChunks([chunk], callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: WriteCb): void {
    this.writeChunks(
      chunks.map((c) => c.chunk),
      callback,
    );
  }

  private writeChunks(bufs: Buffer[], callback: WriteCb): void {
    if (this.connecting) {
      // As net: hold the write until connected; fail it if we close first.
      const onClose = () => callback(codedError('ERR_SOCKET_CLOSED_BEFORE_CONNECTION', 'Socket closed before the connection was established'));
      this.once('close', onClose);
      this.once('connect', () => {
        this.off('close', onClose);
        this.writeChunks(bufs, callback);
      });
      return;
    }
    if (!this.channel) {
      callback(codedError('ERR_SOCKET_CLOSED', 'Socket is closed'));
      return;
    }
    let n = 0;
    for (const b of bufs) n += b.length;
    this.writesInFlight++;
    this.updateActive();
    this.bytesDone += n;
    this.bytesInFlight += n;
    const generation = this.connGeneration;
    this.channel.write(bufs, (err) => {
      this.writesInFlight--;
      this.updateActive();
      if (generation === this.connGeneration) this.bytesInFlight -= n;
      callback(err);
    });
  }

  override _final(callback: WriteCb): void {
    if (this.connecting) {
      this.once('connect', () => this._final(callback));
      return;
    }
    if (this.channel && !this.link?.ext) {
      // Plain vchan has no half-close: the channel closes once the peer has read everything.
      this.draining = true;
      this.updateActive();
    }
    this.channel?.finish();
    callback();
  }

  override _destroy(err: Error | null, callback: (err: Error | null) => void): void {
    this.connecting = false;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.connectAbort?.abort(codedError('ABORT_ERR', 'The connection attempt was given up'));
    this.connectAbort = null;
    if (this.channel) {
      this.bytesReadBase += this.channel.bytesRead;
      this.channel.close();
      this.channel = null;
    }
    const released = this[kReleased];
    this[kReleased] = undefined;
    released?.();
    callback(err);
    // Why setImmediate: net emits 'close' from the handle's close callback, a
    // loop turn later, so callbacks of writes refused in the same tick
    // (ERR_STREAM_DESTROYED) still come before 'close', which is always last.
    setImmediate(() => this.emit('close', Boolean(err)));
  }

  // --- net.Socket surface -------------------------------------------------

  /** Stops reading (with onread, at once: no more callbacks until resume()). */
  override pause(): this {
    if (this.userBuffer) {
      this.wantRead = false;
      this.channel?.pause();
      this.setReading(false);
    }
    return super.pause();
  }

  /** Resumes reading (with onread, the callbacks start again). */
  override resume(): this {
    if (this.userBuffer && !this.connecting && this.channel && !this.destroyed) {
      this.wantRead = true;
      // Why deferred: net restarts the handle; bytes arrive on a later turn,
      // never inside resume() itself.
      this.scheduleRead();
    }
    return super.resume();
  }

  /** Sets an idle timeout: 'timeout' is emitted after `msecs` without I/O (0 disables). */
  setTimeout(msecs: number, callback?: () => void): this {
    validateMsecs(msecs, 'msecs');
    if (callback !== undefined && typeof callback !== 'function') throw invalidArgType('callback', 'of type function', callback);
    if (this.destroyed) return this;
    this.timeout = msecs;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (msecs === 0) {
      if (callback) this.removeListener('timeout', callback);
      return this;
    }
    // Unref'd like net's socket timers: a timeout alone never keeps a process alive.
    this.idleTimer = setTimeout(() => this.onIdle(), msecs);
    this.idleTimer.unref();
    if (callback) this.once('timeout', callback);
    return this;
  }

  private onIdle(): void {
    this.idleTimer = null;
    if (this.destroyed) return;
    this.emit('timeout');
  }

  /** Accepted and ignored: a ring has no Nagle algorithm; chainable. */
  setNoDelay(_noDelay?: boolean): this {
    return this;
  }

  /** Accepted and ignored: peer death is detected directly (live byte, hang-up); chainable. */
  setKeepAlive(_enable?: boolean, _initialDelay?: number): this {
    return this;
  }

  /** Lets the process exit while this socket is open. */
  unref(): this {
    this.refed = false;
    this.updateActive();
    this.connectTimer?.unref();
    this.connectAbort?.setRefed(false); // the transport's handshake, as net's connecting handle
    return this;
  }

  /** Undoes unref(): an open socket keeps the process alive again. */
  ref(): this {
    this.refed = true;
    this.updateActive();
    this.connectTimer?.ref();
    this.connectAbort?.setRefed(true);
    return this;
  }

  /** Ends the writable side, then destroys once it has finished. `writable` is false on return. */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  /** Closes abruptly: the peer sees ECONNRESET instead of an orderly end. */
  resetAndDestroy(): this {
    if (this.channel) {
      if (this.idleTimer) clearTimeout(this.idleTimer);
      this.bytesReadBase += this.channel.bytesRead;
      this.channel.close(true);
      this.channel = null;
      this.destroy();
    } else if (this.connecting) {
      this.once('connect', () => this.resetAndDestroy());
    } else {
      this.destroy(codedError('ERR_SOCKET_CLOSED', 'Socket is closed'));
    }
    return this;
  }

  /** `{ address, family, port }` of this end while connected, else `{}`. */
  address(): SocketAddress | Record<string, never> {
    return this.channel && this.link ? { ...this.link.local } : {};
  }

  /** The peer's address while connected (local: `pid:<n>`; xen: its domid). */
  get remoteAddress(): string | undefined {
    return this.channel ? this.link?.remote.address : undefined;
  }
  /** 'local' or 'xen' while connected, else null: as a FallbackSocket's (and a listen({ tcp }) server's TCP sockets say 'tcp'). */
  get transport(): 'local' | 'xen' | null {
    return this.channel ? ((this.link?.remote.family as 'local' | 'xen' | undefined) ?? null) : null;
  }
  /** 'local' or 'xen' while connected. */
  get remoteFamily(): string | undefined {
    return this.channel ? this.link?.remote.family : undefined;
  }
  /** The peer's port while connected. */
  get remotePort(): number | string | undefined {
    return this.channel ? this.link?.remote.port : undefined;
  }
  /** This end's address while connected (local: the rendezvous socket path). */
  get localAddress(): string | undefined {
    return this.channel ? this.link?.local.address : undefined;
  }
  /** 'local' or 'xen' while connected. */
  get localFamily(): string | undefined {
    return this.channel ? this.link?.local.family : undefined;
  }
  /** The port of the connection (the server's port, on both ends). */
  get localPort(): number | string | undefined {
    return this.channel ? this.link?.local.port : undefined;
  }

  /** Bytes received so far (kept after close). */
  get bytesRead(): number {
    return this.bytesReadBase + (this.channel ? this.channel.bytesRead : 0);
  }

  /** Bytes accepted for writing so far, including those still queued. */
  get bytesWritten(): number {
    // On the prototype (no stream state), undefined as net's, not NaN.
    if (!(this as unknown as { _writableState?: object })._writableState) return undefined as unknown as number;
    // writableLength still holds the chunks in flight, already in bytesDone.
    return this.bytesDone + this.writableLength - this.bytesInFlight;
  }

  /**
   * A Buffer of `size` bytes in this connection's pool: writing it sends only
   * a reference, the receiver gets the same pages. When the pool cannot
   * serve it (full, off, not connected) an ordinary Buffer, written through
   * the ring (counted in poolStats().fallbacks); never blocks, never throws
   * for lack of room. After `write(buf)` the buffer belongs to the receiver
   * until it is released: writing into it afterwards is a bug (the reader
   * may see it). Once its pages are back, a later allocBuffer() of the same
   * size may return this same Buffer (no Buffer is made per message).
   */
  allocBuffer(size: number): Buffer {
    const pool = this.link?.pool;
    return pool ? pool.allocBuffer(size) : Buffer.allocUnsafe(size);
  }

  /**
   * Hands a Buffer received from the pool ('data') back to the sender now,
   * rather than when it is garbage-collected or the socket closes. Reading
   * it afterwards is a bug: the next payload of the same size may arrive in
   * these pages, delivered as this same Buffer. Returns false for any other
   * Buffer (nothing happens).
   */
  release(buf: Uint8Array): boolean {
    if (!(buf instanceof Uint8Array)) throw invalidArgType('buf', 'an instance of Buffer or Uint8Array', buf);
    return this.link?.pool?.release(buf) ?? false;
  }

  /** This connection's pool counters (zeros, size 0, without a pool). */
  poolStats(): PoolStats {
    return this.link?.pool?.stats() ?? emptyPoolStats(0);
  }

  /** Old name of {@link Socket.connecting}, as net keeps it. */
  get _connecting(): boolean {
    return this.connecting;
  }

  /** True until connected (and while connecting). */
  get pending(): boolean {
    return !this.channel || this.connecting;
  }

  /** As net: 'opening' while connecting, then 'open', 'readOnly', 'writeOnly' or 'closed'. */
  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable && !this.writable) return 'readOnly';
    if (!this.readable && this.writable) return 'writeOnly';
    return 'closed';
  }

  /** Deprecated alias of writableLength, as in net; undefined before connecting. */
  get bufferSize(): number | undefined {
    // Why `connecting` too: net has a handle from connect() on, so writes queued
    // while connecting are counted (test-net-buffersize).
    return this.channel || this.connecting ? this.writableLength : undefined;
  }
}

/* eslint-disable @typescript-eslint/no-explicit-any -- the catch-all overloads are @types/node's */
/**
 * Socket's events, as net.Socket's: 'connect' and 'ready' once connected, 'data'
 * (Buffers, or strings after setEncoding()), 'end' when the peer ended, 'finish'
 * when our end() completed, 'timeout' after setTimeout()'s idle time, 'drain',
 * 'error', and 'close' last, once, with `hadError`.
 */
export interface Socket {
  addListener(event: 'close', listener: (hadError: boolean) => void): this;
  addListener(event: 'connect', listener: () => void): this;
  addListener(event: 'data', listener: (data: Buffer) => void): this;
  addListener(event: 'drain', listener: () => void): this;
  addListener(event: 'end', listener: () => void): this;
  addListener(event: 'error', listener: (err: Error) => void): this;
  addListener(event: 'finish', listener: () => void): this;
  addListener(event: 'ready', listener: () => void): this;
  addListener(event: 'timeout', listener: () => void): this;
  addListener(event: string | symbol, listener: (...args: any[]) => void): this;
  on(event: 'close', listener: (hadError: boolean) => void): this;
  on(event: 'connect', listener: () => void): this;
  on(event: 'data', listener: (data: Buffer) => void): this;
  on(event: 'drain', listener: () => void): this;
  on(event: 'end', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'finish', listener: () => void): this;
  on(event: 'ready', listener: () => void): this;
  on(event: 'timeout', listener: () => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'close', listener: (hadError: boolean) => void): this;
  once(event: 'connect', listener: () => void): this;
  once(event: 'data', listener: (data: Buffer) => void): this;
  once(event: 'drain', listener: () => void): this;
  once(event: 'end', listener: () => void): this;
  once(event: 'error', listener: (err: Error) => void): this;
  once(event: 'finish', listener: () => void): this;
  once(event: 'ready', listener: () => void): this;
  once(event: 'timeout', listener: () => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
  prependListener(event: 'close', listener: (hadError: boolean) => void): this;
  prependListener(event: 'connect', listener: () => void): this;
  prependListener(event: 'data', listener: (data: Buffer) => void): this;
  prependListener(event: 'drain', listener: () => void): this;
  prependListener(event: 'end', listener: () => void): this;
  prependListener(event: 'error', listener: (err: Error) => void): this;
  prependListener(event: 'finish', listener: () => void): this;
  prependListener(event: 'ready', listener: () => void): this;
  prependListener(event: 'timeout', listener: () => void): this;
  prependListener(event: string | symbol, listener: (...args: any[]) => void): this;
  prependOnceListener(event: 'close', listener: (hadError: boolean) => void): this;
  prependOnceListener(event: 'connect', listener: () => void): this;
  prependOnceListener(event: 'data', listener: (data: Buffer) => void): this;
  prependOnceListener(event: 'drain', listener: () => void): this;
  prependOnceListener(event: 'end', listener: () => void): this;
  prependOnceListener(event: 'error', listener: (err: Error) => void): this;
  prependOnceListener(event: 'finish', listener: () => void): this;
  prependOnceListener(event: 'ready', listener: () => void): this;
  prependOnceListener(event: 'timeout', listener: () => void): this;
  prependOnceListener(event: string | symbol, listener: (...args: any[]) => void): this;
  emit(event: 'close', hadError: boolean): boolean;
  emit(event: 'connect'): boolean;
  emit(event: 'data', data: Buffer): boolean;
  emit(event: 'drain'): boolean;
  emit(event: 'end'): boolean;
  emit(event: 'error', err: Error): boolean;
  emit(event: 'finish'): boolean;
  emit(event: 'ready'): boolean;
  emit(event: 'timeout'): boolean;
  emit(event: string | symbol, ...args: any[]): boolean;
}

/**
 * True if Node's JSStreamSocket wraps `socket` (it is the only consumer
 * that forwards our 'end' to a native handle with emitEOF()). Node gives no
 * public sign of the wrapping; its 'end' listener is the stable one (the
 * same since Node 10).
 */
function wrappedAsStreamHandle(socket: Socket): boolean {
  return socket.listeners('end').some((fn) => Function.prototype.toString.call(fn).includes('emitEOF'));
}

function writeAfterFIN(this: Socket, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
  if (!this.writableEnded) {
    return Duplex.prototype.write.call(this, chunk, encoding as BufferEncoding, cb as WriteCb);
  }
  if (typeof encoding === 'function') cb = encoding;
  const err = codedError('EPIPE', 'This socket has been ended by the other party');
  if (typeof cb === 'function') process.nextTick(cb as WriteCb, err);
  this.destroy(err);
  return false;
}

/** @internal Checks the options every Socket takes (a Server checks them up front). */
export function validateSocketOptions(options: SocketOptions): void {
  validateSpin(options.spinMicros);
  UserBuffer.from(options.onread);
}

function validateSpin(v: unknown): number | undefined {
  if (v === undefined) return undefined; // the channel's adaptive default
  if (typeof v !== 'number') throw invalidArgType('options.spinMicros', 'of type number', v);
  if (!Number.isInteger(v) || v < 0 || v > 1_000_000) throw outOfRange('options.spinMicros', 'an integer from 0 to 1000000', v);
  return v;
}

/** net's argument forms: (options[, cb]) or (port[, host][, cb]); checks the port as net does. */
export function normalizeConnectArgs(args: unknown[]): [SocketConnectOptions, (() => void) | undefined] {
  let cb: (() => void) | undefined;
  if (args.length > 0 && typeof args[args.length - 1] === 'function') cb = args.pop() as () => void;
  const first = args[0];
  let options: SocketConnectOptions;
  if (first !== null && typeof first === 'object') {
    options = { ...(first as SocketConnectOptions) };
  } else if (typeof first === 'number' || typeof first === 'string') {
    options = { port: first };
    const domid = hostDomid(args[1]);
    if (domid !== undefined) options.domid = domid;
  } else {
    options = {} as SocketConnectOptions;
  }
  if (options.port === undefined) throw codedError('ERR_MISSING_ARGS', 'The "options" or "port" or "path" argument must be specified', TypeError);
  if (typeof options.port !== 'number' && typeof options.port !== 'string') {
    throw invalidArgType('options.port', 'one of type number or string', options.port);
  }
  // Numbers as net ('Port should be >= 0 and < 65536'); names checked the same way.
  validatePort(options.port, 'Port');
  return [options, cb];
}

/** @internal connect(port, host)'s `host` as a Xen domid (a number, or a string of digits), else undefined (locally a host name means nothing). */
export function hostDomid(host: unknown): number | undefined {
  return typeof host === 'number' || (typeof host === 'string' && /^[0-9]+$/.test(host)) ? Number(host) : undefined;
}

/** connect()'s arguments with the port replaced by `port` (the constructor's `port` option). */
function withPort(args: unknown[], port: unknown): unknown[] {
  const [first, ...rest] = args;
  if (first !== null && typeof first === 'object') return [{ ...first, port }, ...rest];
  if (typeof first === 'number' || typeof first === 'string') return [port, ...rest];
  return [port, ...args]; // connect() or connect(cb)
}

/** As net: object mode is refused (a socket carries bytes). */
function rejectObjectMode(options: SocketOptions): void {
  const o = options as { objectMode?: unknown; readableObjectMode?: unknown; writableObjectMode?: unknown };
  for (const name of ['objectMode', 'readableObjectMode', 'writableObjectMode'] as const) {
    if (o[name]) throw invalidArgValue(`options.${name}`, o[name], 'is not supported');
  }
}

/**
 * `options.pool` checked (ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE) for a
 * transport; undefined leaves the transport's default.
 * @internal
 */
export function transportPoolOptions(value: unknown, transport: 'local' | 'xen'): PoolOptions | undefined {
  if (value === undefined) return undefined;
  return parsePoolOptions(value, transport === 'xen' ? DEFAULT_XEN_POOL : DEFAULT_LOCAL_POOL);
}
