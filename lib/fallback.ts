/**
 * Transparent TCP fallback: one service for peers that are sometimes on this
 * host (ring) and sometimes not (TCP).
 *
 * - `connect({ port, domid, fallback: { host, port } })` tries the ring first,
 *   bounded by `fallback.timeout` (nothing listening on the ring port, no Xen
 *   devices, peer domain not here: all fail fast), then TCP. The returned
 *   {@link FallbackSocket} is one stream over whichever was chosen;
 *   `socket.transport` says which ('local', 'xen' or 'tcp').
 * - `server.listen({ port, tcp: { host, port } })` accepts ring and TCP
 *   clients on one Server: TCP sockets reach the same 'connection' handler,
 *   count in getConnections(), and close() stops both listeners.
 */
import * as net from 'node:net';
import { Duplex } from 'node:stream';
import { invalidArgType, outOfRange } from './errors';
import type { ListenOptions, Server } from './server';
import { Socket, type SocketConnectOptions } from './socket';

/** Where to go when the ring is not reachable. */
export interface FallbackTarget {
  /** TCP host (default 'localhost'). */
  host?: string;
  /** TCP port. */
  port: number;
  /** ms to wait for the ring before trying TCP (default 1000). */
  timeout?: number;
}

/** Options of `connect()` with a TCP fallback. */
export interface FallbackConnectOptions extends SocketConnectOptions {
  fallback: FallbackTarget;
}

/** The TCP side of `server.listen({ port, tcp })`. */
export interface TcpListenOptions {
  /** Address to bind (default '127.0.0.1'; '::' or '0.0.0.0' for every interface). */
  host?: string;
  /** TCP port (0 = any free one; see `tcpAddress(server)`). */
  port: number;
}

type Inner = Duplex & {
  setTimeout?(ms: number, cb?: () => void): unknown;
  resetAndDestroy?(): unknown;
  ref?(): unknown;
  unref?(): unknown;
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

function validateTarget(t: unknown): FallbackTarget {
  if (t === null || typeof t !== 'object') throw invalidArgType('options.fallback', 'of type object', t);
  const f = t as FallbackTarget;
  if (!Number.isInteger(f.port) || f.port < 0 || f.port > 65535) throw outOfRange('options.fallback.port', '>= 0 and <= 65535', f.port);
  if (f.host !== undefined && typeof f.host !== 'string') throw invalidArgType('options.fallback.host', 'of type string', f.host);
  if (f.timeout !== undefined && (!Number.isFinite(f.timeout) || f.timeout <= 0)) throw outOfRange('options.fallback.timeout', 'a positive number', f.timeout);
  return f;
}

/**
 * A stream over a ring or, failing that, TCP, with net.Socket's events
 * ('connect', 'ready', 'data', 'end', 'error', 'timeout', 'close(hadError)')
 * and error codes (those of whichever transport is in use; when both fail,
 * the TCP error, e.g. ECONNREFUSED).
 */
export class FallbackSocket extends Duplex {
  /** 'local' or 'xen' when the ring was reached, 'tcp' when not; null while connecting. */
  transport: 'local' | 'xen' | 'tcp' | null = null;
  /** True until 'connect'. */
  connecting = true;
  /** Why the ring was not used (its connect error), when transport is 'tcp'. */
  ringError: Error | null = null;
  private inner: Inner | null = null;
  private attempt: Inner | null = null;
  private pendingWrite: { chunk: Buffer; cb: (err?: Error | null) => void } | null = null;
  private pendingFinal: ((err?: Error | null) => void) | null = null;
  private timeoutMs = 0;

  constructor(options: FallbackConnectOptions, connectListener?: () => void) {
    super({ allowHalfOpen: Boolean(options.allowHalfOpen), emitClose: false, autoDestroy: true });
    const target = validateTarget(options.fallback);
    if (connectListener) this.once('connect', connectListener);
    const { fallback: _unused, ...ringOptions } = options;
    void _unused;
    const ring = new Socket(ringOptions).connect({ ...ringOptions, connectTimeout: options.connectTimeout ?? target.timeout ?? DEFAULT_RING_WAIT_MS });
    this.attempt = ring;
    ring.once('connect', () => this.adopt(ring, ring.remoteFamily === 'xen' ? 'xen' : 'local'));
    ring.once('error', (err) => {
      if (this.inner || this.destroyed) return;
      this.ringError = err;
      const tcp: Inner = net.connect({ host: target.host ?? 'localhost', port: target.port, allowHalfOpen: Boolean(options.allowHalfOpen) });
      this.attempt = tcp;
      tcp.once('connect', () => this.adopt(tcp, 'tcp'));
      tcp.once('error', (e) => {
        if (!this.inner) this.destroy(e);
      });
    });
  }

  private adopt(inner: Inner, transport: 'local' | 'xen' | 'tcp'): void {
    if (this.destroyed) return void inner.destroy();
    this.inner = inner;
    this.attempt = null;
    this.transport = transport;
    this.connecting = false;
    inner.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('error', (err) => this.destroy(err));
    inner.on('timeout', () => this.emit('timeout'));
    inner.on('close', () => {
      if (!this.destroyed && this.readableEnded && this.writableFinished) this.destroy();
      else if (!this.destroyed) this.destroy();
    });
    if (this.timeoutMs && inner.setTimeout) inner.setTimeout(this.timeoutMs);
    const w = this.pendingWrite;
    this.pendingWrite = null;
    if (w) inner.write(w.chunk, w.cb);
    const f = this.pendingFinal;
    this.pendingFinal = null;
    if (f) this._final(f);
    this.emit('connect');
    this.emit('ready');
  }

  override _read(): void {
    this.inner?.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.inner) this.inner.write(chunk, cb);
    else this.pendingWrite = { chunk, cb };
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.inner) return void (this.pendingFinal = cb);
    this.inner.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.inner?.destroy();
    this.attempt?.destroy();
    this.attempt = null;
    this.connecting = false;
    cb(err);
    // As net: 'close' last, with hadError.
    process.nextTick(() => this.emit('close', Boolean(err)));
  }

  /** As socket.setTimeout(): 'timeout' after `ms` idle, does not close. */
  setTimeout(ms: number, callback?: () => void): this {
    this.timeoutMs = ms;
    if (callback) this.once('timeout', callback);
    this.inner?.setTimeout?.(ms);
    return this;
  }

  /** Ends with a reset where the transport has one (TCP RST, ring reset). */
  resetAndDestroy(): this {
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

  setNoDelay(): this {
    (this.inner as net.Socket | null)?.setNoDelay?.(true);
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  ref(): this {
    this.inner?.ref?.();
    return this;
  }

  unref(): this {
    this.inner?.unref?.();
    return this;
  }

  get bytesRead(): number {
    return this.inner?.bytesRead ?? 0;
  }
  get bytesWritten(): number {
    return this.inner?.bytesWritten ?? 0;
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

const kTcp = Symbol('xenring.tcpServer');
type WithTcp = Server & { [kTcp]?: net.Server };

/** @internal The hook of server.listen(): listens on TCP first, then on the ring; 'listening' once both are up. */
export function listenWithTcp(server: Server, options: ListenOptions, cb: (() => void) | undefined, adopt: (socket: net.Socket) => void): void {
  const tcpOptions = options.tcp!;
  if (tcpOptions === null || typeof tcpOptions !== 'object') throw invalidArgType('options.tcp', 'of type object', tcpOptions);
  if (!Number.isInteger(tcpOptions.port) || tcpOptions.port < 0 || tcpOptions.port > 65535) {
    throw outOfRange('options.tcp.port', '>= 0 and <= 65535', tcpOptions.port);
  }
  const tcp = net.createServer({ allowHalfOpen: server.allowHalfOpen, pauseOnConnect: server.pauseOnConnect }, adopt);
  (server as WithTcp)[kTcp] = tcp;
  tcp.once('error', (err) => {
    (server as WithTcp)[kTcp] = undefined;
    server.emit('error', err);
  });
  tcp.listen({ host: tcpOptions.host ?? '127.0.0.1', port: tcpOptions.port }, () => {
    const onError = () => tcp.close();
    server.once('error', onError);
    server.listen({ ...options, tcp: undefined }, () => {
      server.off('error', onError);
      cb?.();
    });
  });
}

/** @internal The hook of server.close(): stops the TCP listener too. */
export function closeTcp(server: Server): void {
  const tcp = (server as WithTcp)[kTcp];
  (server as WithTcp)[kTcp] = undefined;
  tcp?.close();
}

/** The TCP address of a server listening with `tcp` (e.g. the port picked for port 0), else null. */
export function tcpAddress(server: Server): net.AddressInfo | null {
  const a = (server as WithTcp)[kTcp]?.address();
  return a && typeof a === 'object' ? a : null;
}
