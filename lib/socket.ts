/**
 * Socket: a node:net-compatible stream over a xenring ring pair. It extends
 * Node's own stream.Duplex (http, ws and ioredis read its internal state) and
 * reproduces net.Socket's contract: allowHalfOpen defaults to false, 'close'
 * carries a boolean hadError and comes last, writes after the peer's FIN fail
 * with EPIPE, destroySoon() ends synchronously.
 */
import { Duplex } from 'node:stream';
import { codedError, invalidArgType, outOfRange, systemError } from './errors';
import { DEFAULT_SPIN_MICROS, RingChannel, STAGE_MAX, type ChannelOwner } from './ring/channel';
import { resolveTransport } from './transports/registry';
import type { PendingConnect, RingLink } from './transports/transport';
import { UserBuffer, type OnReadOptions } from './user_buffer';

/** Options of `new Socket()`. */
export interface SocketOptions {
  /** Keep the writable side open after the peer ends (default false, as in net). */
  allowHalfOpen?: boolean;
  /**
   * Spin up to this many µs for data before sleeping on the wake-up fd, and
   * for room when writing into a full ring (latency vs CPU). Default 50;
   * adaptive: after spins that find nothing, exponentially more of the next
   * chances are skipped; a spin that succeeds resets that. 0 disables spinning.
   */
  spinMicros?: number;
  /**
   * As in net: read into your own buffer and get `callback(bytesRead, buffer)`
   * instead of 'data' events (no allocation per read: the fastest way to
   * receive). 'end', 'close', pause() and resume() work as usual.
   */
  onread?: OnReadOptions;
  readableHighWaterMark?: number;
  writableHighWaterMark?: number;
}

/** Options of `connect()` / `socket.connect()`. */
export interface SocketConnectOptions extends SocketOptions {
  /** Port number (0..65535) or service name the server listens on. */
  port: number | string;
  /** 'local' or 'xen'; default 'xen' where the Xen devices are usable, else 'local'. */
  transport?: 'local' | 'xen';
  /** Xen: the server's domain id. */
  domid?: number;
  /** Bytes per direction, a power of two (default 1 MiB locally, 64 KiB on Xen). */
  ringSize?: number;
  /** Local transport: rendezvous directory (default $XENRING_DIR or a per-user directory). */
  dir?: string;
  /** Local transport: uids besides ours the server may run as (default none). */
  allowUid?: number | number[];
  /** Idle timeout in ms, as socket.setTimeout(): emits 'timeout', does not close. */
  timeout?: number;
  /** Fail with ETIMEDOUT if the connection is not up after this many ms. */
  connectTimeout?: number;
  /** Accepted for net compatibility and ignored (there is no Nagle on a ring). */
  noDelay?: boolean;
  /** Accepted for net compatibility and ignored. */
  keepAlive?: boolean;
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
/** @internal Starts making a link; calls back once. */
export type LinkStarter = (callback: (err: Error | null, link?: RingLink) => void) => PendingConnect;

type WriteCb = (err?: Error | null) => void;

/** A stream over a xenring connection, shaped like net.Socket. */
export class Socket extends Duplex implements ChannelOwner {
  /** True from connect() until 'connect' is emitted. */
  connecting = false;
  /** The idle timeout set by setTimeout(), undefined until then. */
  timeout: number | undefined = undefined;
  /** The Server that accepted this socket, else null. */
  server: unknown = null;
  /** @internal */
  _server: unknown = null;
  /** Always null: there is no libuv stream handle (TLS and http check it). */
  readonly _handle: null = null;

  private channel: RingChannel | null = null;
  private pendingConnect: PendingConnect | null = null;
  private connectTimer: NodeJS.Timeout | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private wantRead = false;
  private refed = true;
  private readonly spinMicros: number;
  private bytesDone = 0;
  private bytesReadBase = 0;
  private link: RingLink | null = null;
  private readonly userBuffer: UserBuffer | null;

  constructor(options: SocketOptions = {}) {
    if (options === null || typeof options !== 'object') throw invalidArgType('options', 'of type object', options);
    super({
      allowHalfOpen: Boolean(options.allowHalfOpen),
      emitClose: false,
      autoDestroy: true,
      readableHighWaterMark: options.readableHighWaterMark,
      writableHighWaterMark: options.writableHighWaterMark,
    });
    this.spinMicros = validateSpin(options.spinMicros) ?? DEFAULT_SPIN_MICROS;
    this.userBuffer = UserBuffer.from(options.onread);
    // net: once the peer ended and we are not half-open, writes fail with EPIPE.
    this.on('end', () => {
      if (!this.allowHalfOpen) this.write = writeAfterFIN;
    });
  }

  /**
   * Connects to a xenring server: `connect(options[, cb])`,
   * `connect(port[, host][, cb])` (host: the Xen domid, ignored locally).
   */
  connect(...args: unknown[]): this {
    const [options, cb] = normalizeConnectArgs(args);
    if (this.connecting || this.channel) throw codedError('ERR_SOCKET_CONNECTING', 'Socket is already connecting or connected');
    const transport = resolveTransport(options.transport);
    if (options.allowHalfOpen !== undefined) this.allowHalfOpen = Boolean(options.allowHalfOpen);
    const req = {
      port: options.port,
      domid: options.domid,
      ringSize: options.ringSize,
      dir: options.dir,
      allowUid: options.allowUid,
      timeout: options.connectTimeout,
    };
    if (options.connectTimeout !== undefined) validateMsecs(options.connectTimeout, 'options.connectTimeout');
    if (this.destroyed) {
      // Reconnecting a closed socket, as net allows.
      (this as unknown as { _undestroy(): void })._undestroy();
      this.write = Socket.prototype.write;
      this.link = null;
    }
    if (options.timeout) this.setTimeout(options.timeout);
    return this[kConnectWith]((callback) => transport.connect(req, callback), cb, options.connectTimeout);
  }

  /** @internal */
  [kConnectWith](start: LinkStarter, cb?: () => void, connectTimeout?: number): this {
    this.connecting = true;
    if (cb) this.once('connect', cb);
    this.pendingConnect = start((err, link) => this.afterConnect(err, link));
    if (connectTimeout) {
      this.connectTimer = setTimeout(() => {
        this.connectTimer = null;
        this.pendingConnect?.cancel();
        this.pendingConnect = null;
        this.destroy(systemError('ETIMEDOUT', 'connect'));
      }, connectTimeout);
      if (!this.refed) this.connectTimer.unref();
    }
    return this;
  }

  private afterConnect(err: Error | null, link?: RingLink): void {
    this.pendingConnect = null;
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
    this[kAttach](link, false);
    this.connecting = false;
    this.emit('connect');
    this.emit('ready');
    if (!this.destroyed && this.channel) {
      if (this.wantRead) this.channel.resume();
      // A later turn, as net's first read (see kAttach).
      setImmediate(() => {
        if (!this.destroyed && this.channel && !this.isPaused()) this.read(0);
      });
    }
  }

  /** @internal Binds a connected ring (client after connect, or accepted by a Server). */
  [kAttach](link: RingLink, startReading = true): void {
    this.link = link;
    this.channel = new RingChannel(link, this, { spinMicros: this.spinMicros });
    if (!this.refed) this.channel.unref();
    try {
      this.userBuffer?.start();
    } catch (err) {
      process.nextTick(() => this.destroy(err as Error));
      return;
    }
    if (!startReading) return;
    if (this.wantRead) this.channel.resume();
    // Why: net starts reading accepted sockets at once (read(0)); without it a
    // socket nobody reads from never sees the peer's FIN, never emits 'end'
    // and never closes (and a closing Server waits for it forever). On a later
    // turn of the loop, as net's first read: the peer's data or FIN may already
    // be in the ring, and 'end' must not fire before 'connection' handlers
    // (and their promise continuations) have attached their listeners.
    setImmediate(() => {
      if (!this.destroyed && this.channel && !this.isPaused()) this.read(0);
    });
  }

  // --- ChannelOwner -------------------------------------------------------

  /** @internal */
  channelData(chunk: Buffer): boolean {
    return this.push(chunk);
  }

  /** @internal */
  channelTarget(): Uint8Array | null {
    return this.userBuffer ? this.userBuffer.target() : null;
  }

  /** @internal */
  channelRead(n: number): boolean {
    const more = this.userBuffer!.deliver(this, n);
    if (this.userBuffer!.error) this.destroy(this.userBuffer!.error);
    return more;
  }

  /** @internal */
  channelEnd(): void {
    this.push(null);
    // Why: as net's onStreamRead at EOF; emits 'end' now if nothing is buffered,
    // even when no one consumes the data. Deferred: EOF may be found inside
    // _read(), and a read() re-entered from there loses the 'end'.
    process.nextTick(() => this.read(0));
  }

  /** @internal */
  channelError(err: Error): void {
    this.destroy(err);
  }

  /** @internal */
  channelActivity(): void {
    if (this.idleTimer) this.idleTimer.refresh();
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
    if (this.wantRead && this.channel && !this.destroyed) this.channel.resume();
  };

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
    this.channel.write(bufs, (err) => {
      if (!err) this.bytesDone += n;
      callback(err);
    });
  }

  override _final(callback: WriteCb): void {
    if (this.connecting) {
      this.once('connect', () => this._final(callback));
      return;
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
    this.pendingConnect?.cancel();
    this.pendingConnect = null;
    if (this.channel) {
      this.bytesReadBase += this.channel.bytesRead;
      this.channel.close();
      this.channel = null;
    }
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
    this.channel?.unref();
    this.connectTimer?.unref();
    return this;
  }

  ref(): this {
    this.refed = true;
    this.channel?.ref();
    this.connectTimer?.ref();
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

  get remoteAddress(): string | undefined {
    return this.channel ? this.link?.remote.address : undefined;
  }
  get remoteFamily(): string | undefined {
    return this.channel ? this.link?.remote.family : undefined;
  }
  get remotePort(): number | string | undefined {
    return this.channel ? this.link?.remote.port : undefined;
  }
  get localAddress(): string | undefined {
    return this.channel ? this.link?.local.address : undefined;
  }
  get localFamily(): string | undefined {
    return this.channel ? this.link?.local.family : undefined;
  }
  get localPort(): number | string | undefined {
    return this.channel ? this.link?.local.port : undefined;
  }

  /** Bytes received so far (kept after close). */
  get bytesRead(): number {
    return this.bytesReadBase + (this.channel ? this.channel.bytesRead : 0);
  }

  /** Bytes accepted for writing so far, including those still queued. */
  get bytesWritten(): number {
    return this.bytesDone + this.writableLength;
  }

  /** True until connected (and while connecting). */
  get pending(): boolean {
    return !this.channel || this.connecting;
  }

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

function validateMsecs(msecs: unknown, name: string): asserts msecs is number {
  if (typeof msecs !== 'number') throw invalidArgType(name, 'of type number', msecs);
  if (!Number.isFinite(msecs) || msecs < 0) throw outOfRange(name, 'a non-negative finite number', msecs);
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

/** net's argument forms: (options[, cb]) or (port[, host][, cb]). */
export function normalizeConnectArgs(args: unknown[]): [SocketConnectOptions, (() => void) | undefined] {
  let cb: (() => void) | undefined;
  if (args.length > 0 && typeof args[args.length - 1] === 'function') cb = args.pop() as () => void;
  const first = args[0];
  let options: SocketConnectOptions;
  if (first !== null && typeof first === 'object') {
    options = { ...(first as SocketConnectOptions) };
  } else if (typeof first === 'number' || typeof first === 'string') {
    options = { port: first };
    const host = args[1];
    if (typeof host === 'number' || (typeof host === 'string' && /^[0-9]+$/.test(host))) options.domid = Number(host);
  } else {
    throw invalidArgType('options', 'of type object, number or string', first);
  }
  if (options.port === undefined) throw invalidArgType('options.port', 'of type number or string', undefined);
  return [options, cb];
}
