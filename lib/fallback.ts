/**
 * Transparent TCP fallback: one service for peers that are sometimes on this
 * host (ring) and sometimes not (TCP).
 *
 * - `connect({ port, domid, fallback: { host, port } })` tries the ring first,
 *   bounded by `fallback.timeout` (nothing listening on the ring port, no Xen
 *   devices, peer domain not here: all fail fast), then TCP. The returned
 *   {@link FallbackSocket} is one stream over whichever was chosen;
 *   `socket.transport` says which ('local', 'xen' or 'tcp').
 * - `new FallbackSocket({ port })` is the same, unconnected, for clients
 *   that connect the stream themselves (pg's `stream`: `connect(port, host)`
 *   gives the TCP target).
 * - `server.listen({ port, tcp: { host, port } })` accepts ring and TCP
 *   clients on one Server: TCP sockets reach the same 'connection' handler,
 *   count in getConnections(), and close() stops both listeners.
 */
import * as net from 'node:net';
import { Duplex } from 'node:stream';
import { codedError, invalidArgType, outOfRange, systemError } from './errors';
import type { Server } from './server';
import { Socket, hostDomid, normalizeConnectArgs, type SocketConnectOptions } from './socket';
import { validateMsecs, validateTcpPort } from './validators';

/** Where to go when the ring is not reachable. */
export interface FallbackTarget {
  /** TCP host (default: the host connect() is given or the options' `host`, else 'localhost'). */
  host?: string;
  /** TCP port, a number or a string of digits, as net takes (default: the port connect() is given, else the constructor's). */
  port?: number | string;
  /** ms to wait for the ring before trying TCP (default 1000). */
  timeout?: number;
}

/** Options of `connect()` with a TCP fallback. */
export interface FallbackConnectOptions extends SocketConnectOptions, TcpOnlyOptions {
  fallback: FallbackTarget;
  /** TCP host where `fallback.host` is not given (default 'localhost'). */
  host?: string;
}

/**
 * Options of `new FallbackSocket()`: a ring socket's (its `port` is the ring
 * port connect() uses whatever port it is then given, as `new Socket({ port })`),
 * and where TCP goes (`fallback`; what it leaves out comes from connect()'s
 * arguments: `connect(5432, 'db.example')` falls back to db.example:5432).
 */
export interface FallbackSocketOptions extends Partial<SocketConnectOptions>, TcpOnlyOptions {
  fallback?: FallbackTarget;
  /** TCP host where `fallback.host` is not given (default 'localhost'). */
  host?: string;
}

/** net.connect()'s options that only the TCP path has: passed to it as given (the ring ignores them). */
export interface TcpOnlyOptions {
  family?: number;
  hints?: number;
  localAddress?: string;
  localPort?: number;
  lookup?: net.LookupFunction;
  autoSelectFamily?: boolean;
  autoSelectFamilyAttemptTimeout?: number;
}
const TCP_ONLY: readonly (keyof TcpOnlyOptions)[] = ['family', 'hints', 'localAddress', 'localPort', 'lookup', 'autoSelectFamily', 'autoSelectFamilyAttemptTimeout'];

/** The TCP side of `server.listen({ port, tcp })`. */
export interface TcpListenOptions {
  /** Address to bind (default '127.0.0.1'; '::' or '0.0.0.0' for every interface). */
  host?: string;
  /** TCP port (0 or none = any free one; see `tcpAddress(server)`). */
  port?: number | string;
}

type Inner = Duplex & {
  setTimeout?(ms: number, cb?: () => void): unknown;
  setNoDelay?(noDelay?: boolean): unknown;
  setKeepAlive?(enable?: boolean, initialDelay?: number): unknown;
  resetAndDestroy?(): unknown;
  ref?(): unknown;
  unref?(): unknown;
  address?(): unknown;
  bytesRead?: number;
  bytesWritten?: number;
  remoteAddress?: string;
  remotePort?: number | string;
  remoteFamily?: string;
  localAddress?: string;
  localPort?: number | string;
  localFamily?: string;
};

const DEFAULT_RING_WAIT_MS = 1000;

/** `options.fallback`, checked (undefined: an empty one). */
function validateFallback(t: unknown): FallbackTarget {
  if (t === undefined) return {};
  if (t === null || typeof t !== 'object') throw invalidArgType('options.fallback', 'of type object', t);
  const f = t as FallbackTarget;
  if (f.host !== undefined && typeof f.host !== 'string') throw invalidArgType('options.fallback.host', 'of type string', f.host);
  if (f.timeout !== undefined && (typeof f.timeout !== 'number' || !Number.isFinite(f.timeout) || f.timeout <= 0)) {
    throw outOfRange('options.fallback.timeout', 'a positive number', f.timeout);
  }
  return f;
}

/** connect()'s arguments: `(options[, cb])`, `(port[, host][, cb])` or `([cb])`. */
function connectArgs(args: unknown[]): { given: FallbackSocketOptions; host: string | undefined; cb: (() => void) | undefined } {
  const cb = typeof args[args.length - 1] === 'function' ? (args[args.length - 1] as () => void) : undefined;
  const first = args[0];
  if (first !== null && typeof first === 'object') {
    const given = first as FallbackSocketOptions & { host?: unknown };
    if (given.host !== undefined && typeof given.host !== 'string') throw invalidArgType('options.host', 'of type string', given.host);
    return { given, host: hostDomid(given.host) === undefined ? given.host : undefined, cb };
  }
  if (typeof first === 'number' || typeof first === 'string') {
    // As the ring socket's connect(port, host): a host of digits is a Xen domid (and no TCP host).
    const domid = hostDomid(args[1]);
    if (domid !== undefined) return { given: { port: first, domid }, host: undefined, cb };
    return { given: { port: first }, host: typeof args[1] === 'string' ? args[1] : undefined, cb };
  }
  if (first !== undefined && typeof first !== 'function') throw invalidArgType('options', 'of type object', first);
  return { given: {}, host: undefined, cb };
}

/** An abort of the caller's `signal`: the connect is given up, not moved to TCP. */
function isAbort(err: Error): boolean {
  return err.name === 'AbortError' || (err as NodeJS.ErrnoException).code === 'ABORT_ERR';
}

/**
 * A stream over a ring or, failing that, TCP, with net.Socket's events
 * ('connect', 'ready', 'data', 'end', 'error', 'timeout', 'close(hadError)')
 * and error codes (those of whichever transport is in use; when both fail,
 * the TCP error, e.g. ECONNREFUSED). Options given to connect() (`timeout`,
 * `signal`, `noDelay`, `keepAlive`) apply to whichever is chosen, net's
 * TCP-only ones to TCP. Unconnected until connect(), as net.Socket.
 */
export class FallbackSocket extends Duplex {
  /** 'local' or 'xen' when the ring was reached, 'tcp' when not; null while connecting. */
  transport: 'local' | 'xen' | 'tcp' | null = null;
  /** True from connect() until 'connect'. */
  connecting = false;
  /** Why the ring was not used (its connect error), when transport is 'tcp'. */
  ringError: Error | null = null;
  private inner: Inner | null = null;
  private attempt: Inner | null = null;
  private pendingWrite: { chunk: Buffer; cb: (err?: Error | null) => void } | null = null;
  private pendingFinal: ((err?: Error | null) => void) | null = null;
  private timeoutMs = 0;
  /** setNoDelay()/setKeepAlive() before 'connect': applied once a transport is chosen. */
  private noDelay: boolean | undefined;
  private keepAlive: [boolean, number] | undefined;
  private refed = true;
  /** The chosen transport's stream ended (its bytes are in ours, for the user to read). */
  private innerEnded = false;
  /** Bytes of the write handed to the inner stream and not yet completed (counted there already). */
  private inFlight = 0;

  /** The constructor's options (their `port`: the ring port every connect() uses). */
  private readonly preset: FallbackSocketOptions;

  /**
   * An unconnected socket, as `new net.Socket()`: connect() starts it. For
   * clients that connect the stream they are given themselves (pg's
   * `stream` option calls `connect(port, host)`): the ring port comes from
   * `options.port`, TCP goes to `options.fallback`, else to that port and host.
   */
  constructor(options: FallbackSocketOptions = {}) {
    if (options === null || typeof options !== 'object') throw invalidArgType('options', 'of type object', options);
    super({ allowHalfOpen: Boolean(options.allowHalfOpen), emitClose: false, autoDestroy: true });
    validateFallback(options.fallback);
    if (options.host !== undefined && typeof options.host !== 'string') throw invalidArgType('options.host', 'of type string', options.host);
    this.preset = options;
    if (options.timeout) this.timeoutMs = options.timeout;
  }

  /**
   * Connects: the ring first (bounded by `fallback.timeout`), TCP if the ring
   * cannot be reached. `connect(options[, cb])`, `connect(port[, host][, cb])`
   * or `connect([cb])` (the constructor's options alone). As net: a socket
   * that closed connects again; connect() while connecting fails with EALREADY.
   */
  connect(options: FallbackSocketOptions, connectListener?: () => void): this;
  connect(port: number | string, host?: string | number, connectListener?: () => void): this;
  connect(port: number | string, connectListener?: () => void): this;
  connect(connectListener?: () => void): this;
  connect(...args: unknown[]): this {
    const { given, host, cb } = connectArgs(args);
    const o: FallbackSocketOptions = { ...this.preset, ...given };
    // What net.connect() would throw for, thrown here, before anything starts (not later, from the ring's error).
    if (o.keepAliveInitialDelay !== undefined && typeof o.keepAliveInitialDelay !== 'number') {
      throw invalidArgType('options.keepAliveInitialDelay', 'of type number', o.keepAliveInitialDelay);
    }
    // The constructor's fallback was checked there.
    const fallback = { ...this.preset.fallback, ...validateFallback(given.fallback) };
    // TCP: where fallback says, else the port (and host) connect() was given, else the constructor's.
    const tcpPort = validateTcpPort(fallback.port !== undefined ? fallback.port : (given.port ?? this.preset.port), 'options.fallback.port', true);
    const tcpHost = fallback.host ?? host ?? this.preset.host ?? 'localhost';
    // The ring gets the rest, less what only TCP takes. The idle timeout is
    // this socket's (setTimeout() may have changed it since the options):
    // armed on each attempt below.
    const { fallback: _f, host: _h, timeout: _t, ...forRing } = o as FallbackSocketOptions & Record<string, unknown>;
    void _f, _h, _t;
    const tcpOnly: Record<string, unknown> = {};
    for (const k of TCP_ONLY) {
      if (forRing[k] !== undefined) tcpOnly[k] = forRing[k];
      delete forRing[k];
    }
    // The transports below are half-open: this stream decides when its side
    // ends (allowHalfOpen false: once the user has read the peer's end), so
    // writes queued here still go out after the peer's end, as net's do.
    // normalizeConnectArgs checks the ring port before anything starts.
    const [ringOptions] = normalizeConnectArgs([{ ...forRing, port: this.preset.port ?? given.port, allowHalfOpen: true }]);
    if (this.connecting) {
      // As net (the OS's EALREADY on a connecting handle): destroyed with it.
      this.destroy(systemError('EALREADY', 'connect'));
      return this;
    }
    if (this.inner !== null && !this.destroyed) return this.reconnectLive(cb);
    if (this.destroyed) {
      (this as unknown as { _undestroy(): void })._undestroy();
      this.transport = null;
      this.ringError = null;
      this.inner = null;
      this.innerEnded = false;
      this.inFlight = 0;
    }
    if (cb) this.once('connect', cb);
    if (given.timeout) this.timeoutMs = given.timeout;
    this.connecting = true;
    const ring = new Socket(ringOptions).connect({ ...ringOptions, connectTimeout: o.connectTimeout ?? fallback.timeout ?? DEFAULT_RING_WAIT_MS });
    this.attempt = ring;
    if (this.timeoutMs) ring.setTimeout(this.timeoutMs);
    if (!this.refed) ring.unref();
    ring.on('timeout', this.forwardTimeout(ring));
    ring.once('connect', () => this.adopt(ring, ring.remoteFamily === 'xen' ? 'xen' : 'local'));
    ring.once('error', (err) => {
      if (this.attempt !== ring) return;
      // The caller's abort ends the connect: it is no reason to try TCP.
      if (isAbort(err) || o.signal?.aborted) return void this.destroy(err);
      this.ringError = err;
      this.tryTcp({
        host: tcpHost,
        port: tcpPort,
        allowHalfOpen: true,
        signal: o.signal,
        noDelay: o.noDelay,
        keepAlive: o.keepAlive,
        keepAliveInitialDelay: o.keepAliveInitialDelay,
        ...tcpOnly,
      });
    });
    return this;
  }

  /** The TCP attempt, once the ring failed. */
  private tryTcp(options: net.TcpNetConnectOpts): void {
    let tcp: Inner;
    try {
      tcp = net.connect(options);
    } catch (e) {
      // Anything net refuses that connect() did not check: this socket's error, never an uncaught one.
      return void this.destroy(e as Error);
    }
    this.attempt = tcp;
    tcp.on('timeout', this.forwardTimeout(tcp));
    // options.timeout, or what setTimeout() made of it since.
    if (this.timeoutMs) tcp.setTimeout?.(this.timeoutMs);
    if (!this.refed) tcp.unref?.();
    tcp.on('lookup', (...args: unknown[]) => this.emit('lookup', ...args));
    tcp.once('connect', () => this.adopt(tcp, 'tcp'));
    tcp.once('error', (e) => {
      if (this.attempt === tcp) this.destroy(e);
    });
  }

  /** connect() on a connected socket, as net's in Node 20: the connection is kept, 'connect' and 'ready' come again a turn later. */
  private reconnectLive(cb?: () => void): this {
    const inner = this.inner;
    this.connecting = true;
    if (cb) this.once('connect', cb);
    setImmediate(() => {
      if (this.inner !== inner || this.destroyed) return;
      this.connecting = false;
      this.emit('connect');
      this.emit('ready');
    });
    return this;
  }

  private adopt(inner: Inner, transport: 'local' | 'xen' | 'tcp'): void {
    if (this.destroyed || this.attempt !== inner) return void inner.destroy();
    this.inner = inner;
    this.attempt = null;
    this.transport = transport;
    this.connecting = false;
    // Each handler is for this connection only: after a reconnect, the last one's late events are not ours.
    inner.on('data', (chunk: Buffer) => {
      if (this.inner === inner && !this.push(chunk)) inner.pause();
    });
    inner.on('end', () => {
      if (this.inner !== inner) return;
      this.innerEnded = true;
      this.push(null);
      // As net on EOF: 'end' comes once the buffer is empty, read or not.
      this.read(0);
    });
    inner.on('error', (err) => {
      if (this.inner === inner) this.destroy(err);
    });
    inner.on('close', (hadError?: boolean) => {
      if (this.destroyed || this.inner !== inner) return;
      // Closed in order after its end: what it delivered waits in our
      // buffer for the user (net delivers a closed socket's data and 'end'
      // all the same); we close once that is read and our side finished.
      if (hadError !== true && this.innerEnded) {
        if (this.readableEnded && this.writableFinished) this.destroy();
        return;
      }
      this.destroy();
    });
    if (this.timeoutMs && inner.setTimeout) inner.setTimeout(this.timeoutMs);
    if (this.noDelay !== undefined) inner.setNoDelay?.(this.noDelay);
    if (this.keepAlive !== undefined) inner.setKeepAlive?.(...this.keepAlive);
    if (!this.refed) inner.unref?.();
    const w = this.pendingWrite;
    this.pendingWrite = null;
    if (w) this.writeInner(w.chunk, w.cb);
    const f = this.pendingFinal;
    this.pendingFinal = null;
    if (f) this._final(f);
    this.emit('connect');
    this.emit('ready');
  }

  /** 'timeout' of a transport (connecting or chosen) as ours, while it is the one in use. */
  private forwardTimeout(from: Inner): () => void {
    return () => {
      if ((this.inner ?? this.attempt) === from) this.emit('timeout');
    };
  }

  private writeInner(chunk: Buffer, cb: (err?: Error | null) => void): void {
    this.inFlight = chunk.length;
    this.inner!.write(chunk, (err?: Error | null) => {
      this.inFlight = 0;
      cb(err);
    });
  }

  override _read(): void {
    this.inner?.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.inner) this.writeInner(chunk, cb);
    else if (this.connecting) this.pendingWrite = { chunk, cb };
    else cb(codedError('ERR_SOCKET_CLOSED', 'Socket is closed')); // never connected: as net's
  }

  override _final(cb: (err?: Error | null) => void): void {
    const inner = this.inner;
    if (!inner) return void (this.pendingFinal = cb);
    // Already ended or closed (allowHalfOpen false ends it after the peer's end): nothing left to end.
    if (inner.destroyed || inner.writableEnded) return void cb();
    inner.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    // Writes and an end() made before 'connect' fail, as net's (their callbacks would never run).
    const closedEarly = () => codedError('ERR_SOCKET_CLOSED_BEFORE_CONNECTION', 'Socket closed before the connection was established');
    const w = this.pendingWrite;
    const f = this.pendingFinal;
    this.pendingWrite = null;
    this.pendingFinal = null;
    if (w) w.cb(closedEarly());
    if (f) f(closedEarly());
    // Never connected (no transport tried): net's 'close' then has no hadError argument.
    const neverOpened = this.inner === null && this.attempt === null;
    this.timeoutMs = 0; // as net's destroy(): a later connect() starts without one
    this.inner?.destroy();
    this.attempt?.destroy();
    this.attempt = null;
    this.connecting = false;
    cb(err);
    // As net: 'close' last, with hadError.
    process.nextTick(() => (neverOpened ? this.emit('close') : this.emit('close', Boolean(err))));
  }

  /** As socket.setTimeout(): 'timeout' after `ms` idle, does not close; 0 turns it off (and removes `callback`). */
  setTimeout(ms: number, callback?: () => void): this {
    validateMsecs(ms, 'msecs');
    this.timeoutMs = ms;
    if (callback) {
      if (ms === 0) this.removeListener('timeout', callback);
      else this.once('timeout', callback);
    }
    (this.inner ?? this.attempt)?.setTimeout?.(ms);
    return this;
  }

  /** Ends with a reset where the transport has one (TCP RST, ring reset). */
  resetAndDestroy(): this {
    // As net's: while connecting, once connected; never connected, ERR_SOCKET_CLOSED.
    if (this.connecting && this.inner === null) return this.once('connect', () => this.resetAndDestroy());
    if (this.inner === null) return this.destroy(codedError('ERR_SOCKET_CLOSED', 'Socket is closed'));
    if (this.inner?.resetAndDestroy) {
      try {
        this.inner.resetAndDestroy();
      } catch {
        /* not resettable: a plain destroy below */
      }
    }
    this.destroy();
    return this;
  }

  /** As net's: ends the writable side, then destroys once it finished. */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  /** Nagle's algorithm off (true, the default) or on, on TCP; nothing to do on a ring. */
  setNoDelay(noDelay = true): this {
    this.noDelay = noDelay;
    this.inner?.setNoDelay?.(noDelay);
    return this;
  }

  /** TCP keep-alive probes, as net's; nothing to do on a ring. */
  setKeepAlive(enable = false, initialDelay = 0): this {
    this.keepAlive = [enable, initialDelay];
    this.inner?.setKeepAlive?.(enable, initialDelay);
    return this;
  }

  ref(): this {
    this.refed = true;
    (this.inner ?? this.attempt)?.ref?.();
    return this;
  }

  unref(): this {
    this.refed = false;
    (this.inner ?? this.attempt)?.unref?.();
    return this;
  }

  /** The chosen transport's local address (as its socket.address()), `{}` before 'connect'. */
  address(): unknown {
    return this.inner?.address?.() ?? {};
  }

  /** As net's: 'opening', 'open', 'readOnly', 'writeOnly' or 'closed'. */
  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  /** True until connected, and again once destroyed, as net's. */
  get pending(): boolean {
    return this.inner === null || this.connecting || this.destroyed;
  }

  /** Bytes written and not yet sent (net's bufferSize: its writableLength). */
  get bufferSize(): number {
    return this.writableLength;
  }

  get bytesRead(): number {
    return this.inner?.bytesRead ?? 0;
  }
  /** As net's: bytes handed to the transport, and those still queued. */
  get bytesWritten(): number {
    return (this.inner?.bytesWritten ?? 0) + this.writableLength - (this.inner ? this.inFlight : 0);
  }
  get remoteAddress(): string | undefined {
    return this.inner?.remoteAddress;
  }
  get remotePort(): number | string | undefined {
    return this.inner?.remotePort;
  }
  get remoteFamily(): string | undefined {
    return this.inner?.remoteFamily;
  }
  get localAddress(): string | undefined {
    return this.inner?.localAddress;
  }
  get localPort(): number | string | undefined {
    return this.inner?.localPort;
  }
  get localFamily(): string | undefined {
    return this.inner?.localFamily;
  }
}

/** @internal `listen()`'s `tcp`, checked: the address to bind. */
export function validateTcpListen(t: unknown): { host: string; port: number } {
  if (t === null || typeof t !== 'object') throw invalidArgType('options.tcp', 'of type object', t);
  const o = t as TcpListenOptions;
  if (o.host !== undefined && typeof o.host !== 'string') throw invalidArgType('options.tcp.host', 'of type string', o.host);
  return { host: o.host ?? '127.0.0.1', port: validateTcpPort(o.port, 'options.tcp.port', false) };
}

/**
 * @internal The TCP side of `server.listen({ port, tcp })`: a net.Server
 * whose sockets go to `onSocket`. Closed before it listened, it closes once
 * it does, and its errors are no longer reported. `after`: the listener a
 * close() just ended, still binding (net looks the host up first): this one
 * binds once that one has let its address go, so listen(); close();
 * listen() on one address works as it does without `tcp`.
 */
export class TcpListener {
  readonly server: net.Server;
  listening = false;
  private closed = false;
  /** Holds no address any more (closed, or never bound), and who waits for that. */
  private released = false;
  private onReleased: (() => void)[] = [];

  constructor(
    address: { host: string; port: number },
    options: net.ServerOpts,
    onSocket: (socket: net.Socket) => void,
    onListening: () => void,
    onError: (err: Error) => void,
    after: TcpListener | null = null,
  ) {
    this.server = net.createServer(options, onSocket);
    this.server.on('error', (err) => {
      this.release(); // a failed bind holds nothing
      if (!this.closed) onError(err);
    });
    const bind = () => {
      if (this.closed) return this.release();
      this.server.listen(address, () => {
        this.listening = true;
        if (!this.closed) return onListening();
        this.server.close();
        this.release();
      });
    };
    if (after !== null) after.whenReleased(bind);
    else bind();
  }

  /** Stops listening: at once if bound, else once bound (or never, if it had not started). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.listening || this.server.listening) {
      this.server.close();
      this.release();
    }
  }

  private whenReleased(cb: () => void): void {
    if (this.released) cb();
    else this.onReleased.push(cb);
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    for (const cb of this.onReleased.splice(0)) cb();
  }
}

/** The TCP address of a server listening with `tcp` (e.g. the port picked for port 0), else null. */
export function tcpAddress(server: Server): net.AddressInfo | null {
  const tcp = (server as unknown as { tcp: TcpListener | null }).tcp;
  const a = tcp?.listening ? tcp.server.address() : null;
  return a && typeof a === 'object' ? a : null;
}
