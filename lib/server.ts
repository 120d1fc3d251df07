/**
 * Server: accepts xenring connections on a port, shaped like net.Server.
 * Every connection gets its own ring pair.
 */
import { EventEmitter } from 'node:events';
import { codedError, invalidArgType, invalidArgValue } from './errors';
import { kAttach, kReleased, Socket, transportPoolOptions, validateSocketOptions, type PoolOption, type SocketOptions } from './socket';
import { TcpListener, validateTcpListen, type TcpListenOptions } from './fallback';
import type * as net from 'node:net';
import { refuse } from './ring/vchan_state';
import { resolveTransport } from './transports/registry';
import { validatePort } from './validators';
import type { Listener, RingLink, TransportAddress } from './transports/transport';

/** Options of `createServer()`. */
export interface ServerOptions extends SocketOptions {
  /** Accepted sockets start paused. */
  pauseOnConnect?: boolean;
  /** Page-reference pool offered to each client (see {@link PoolOption}); listen()'s `pool` overrides it. */
  pool?: PoolOption | false;
  /** Bytes per direction for accepted connections, as listen()'s `ringSize` (which overrides it). */
  ringSize?: number;
  /** As net's, for the TCP clients of listen({ tcp }) (nothing to do on a ring). */
  noDelay?: boolean;
  /** As net's, for the TCP clients of listen({ tcp }) (nothing to do on a ring). */
  keepAlive?: boolean;
  /** As net's, for the TCP clients of listen({ tcp }). */
  keepAliveInitialDelay?: number;
}

/** Options of `server.listen()`. */
export interface ListenOptions {
  /** Port number (0 = any free one) or service name. */
  port?: number | string;
  /** 'local' or 'xen'; default 'xen' where the Xen devices are usable, else 'local'. */
  transport?: 'local' | 'xen';
  /** Xen: the only domain allowed to connect (default: any). */
  domid?: number;
  /**
   * Bytes per direction for accepted connections (power of two, default
   * createServer()'s, else 2 MiB locally, 64 KiB on Xen): the most a client
   * gets; one may ask for less, never more.
   */
  ringSize?: number;
  /** Local transport: rendezvous directory. */
  dir?: string;
  /** Pending connections the transport queues (a positive integer; default 511). */
  backlog?: number;
  /**
   * Local transport: uids besides the server's own that may connect (default
   * none). The socket file is then 0666 and the directory must let them in.
   */
  allowUid?: number | number[];
  /** Page-reference pool offered to each client (see {@link PoolOption}); default createServer()'s, else the transport's. */
  pool?: PoolOption | false;
  /** Aborting it closes the server, as net's listen({ signal }). */
  signal?: AbortSignal;
  /** Also accept TCP clients, on this address, through the same 'connection' handler (lib/fallback.ts). */
  tcp?: TcpListenOptions;
}

/** Payload of the 'drop' event (a connection over maxConnections). */
export interface DropInfo {
  /** This end's address (as `socket.localAddress` would have been). */
  localAddress?: string;
  /** The port the connection came in on. */
  localPort?: number | string;
  /** 'local' or 'xen'. */
  localFamily?: string;
  /** The peer's address (local: `pid:<n>`; xen: its domid). */
  remoteAddress?: string;
  /** The peer's port. */
  remotePort?: number | string;
  /** 'local' or 'xen'. */
  remoteFamily?: string;
}

/**
 * Accepts xenring connections, shaped like net.Server: create it with
 * {@link createServer}, start it with {@link Server.listen}, and get each
 * connection as a {@link Socket} from the 'connection' event.
 */
export class Server extends EventEmitter {
  /** Refuse (close at once, emitting 'drop') connections beyond this many. Unset by default. */
  maxConnections?: number;
  /** Accepted sockets keep their writable side open after the peer ends (default false). */
  allowHalfOpen: boolean;
  /** Accepted sockets start paused (default false). */
  pauseOnConnect: boolean;
  private readonly socketOptions: SocketOptions;
  private listener: Listener | null = null;
  /** Inside close()'s listener.close(): connections handed over then are announced on the next tick. */
  private closingListener = false;
  /** Aborts a listen() that is not up yet (close() before 'listening'); null when none. */
  private starting: AbortController | null = null;
  /** The address a listen() that is not up yet has bound (Xen: before xenstore is set up). */
  private bindingAddress: (() => TransportAddress | null) | null = null;
  private connections = new Set<Socket>();
  private refed = true;
  /** listen({ tcp })'s TCP listener (lib/fallback.ts), from listen() until close(). */
  private tcp: TcpListener | null = null;
  /** The last one closed: a new listen()'s TCP side binds once it let its address go. */
  private closedTcp: TcpListener | null = null;
  /** 'listening' was emitted (until close()): connections are announced from then on. */
  private announced = false;
  /** Connections that came before 'listening' (one listener of two up): handed over right after it; dropped by close(). */
  private held: { run: () => void; drop: () => void }[] = [];

  /**
   * `new Server([options][, connectionListener])`: options apply to every
   * accepted socket; the listener is added for 'connection'.
   */
  constructor(options?: ServerOptions | ((socket: Socket) => void), connectionListener?: (socket: Socket) => void) {
    super();
    if (typeof options === 'function') {
      connectionListener = options;
      options = {};
    } else if (options === undefined || options === null) {
      options = {};
    } else if (typeof options !== 'object') {
      throw invalidArgType('options', 'of type object', options);
    }
    this.allowHalfOpen = Boolean(options.allowHalfOpen);
    this.pauseOnConnect = Boolean(options.pauseOnConnect);
    validateSocketOptions(options);
    if (options.pool !== undefined) transportPoolOptions(options.pool, 'local'); // checked now, as net checks options
    this.socketOptions = { ...options };
    if (connectionListener) this.on('connection', connectionListener);
  }

  /** True while accepting connections (with `tcp`: on both listeners). */
  get listening(): boolean {
    return this.listener !== null && (this.tcp === null || this.tcp.listening);
  }

  /**
   * Starts accepting: `listen(port[, backlog][, cb])`, `listen(options[, cb])`
   * or `listen([cb])` (any free port). As net: arguments are checked at once
   * (ERR_SOCKET_BAD_PORT, ERR_INVALID_ARG_VALUE, ...); the local transport
   * binds at once, so address() works on return; 'listening' comes on a
   * later tick (not at all if close() came first); bind errors arrive as
   * 'error'. `options.signal` closes the server when aborted.
   */
  listen(...args: unknown[]): this {
    const [options, cb] = normalizeListenArgs(args);
    if (this.listener || this.starting || this.tcp) throw codedError('ERR_SERVER_ALREADY_LISTEN', 'Listen method has been called more than once without closing.');
    // Checked before anything listens, as the ring's own options are below.
    const tcpAddress = options.tcp !== undefined ? validateTcpListen(options.tcp) : null;
    const { signal } = options;
    if (signal !== undefined && (signal === null || typeof signal !== 'object' || !('aborted' in signal))) {
      throw invalidArgType('options.signal', 'an instance of AbortSignal', signal);
    }
    const transport = resolveTransport(options.transport);
    const ac = new AbortController();
    const req = {
      port: options.port!,
      domid: options.domid,
      ringSize: options.ringSize !== undefined ? options.ringSize : (this.socketOptions as ServerOptions).ringSize,
      dir: options.dir,
      backlog: options.backlog,
      allowUid: options.allowUid,
      pool: transportPoolOptions(options.pool !== undefined ? options.pool : (this.socketOptions as ServerOptions).pool, transport.name),
    };
    // A listen() that throws (bad dir, bad ring size) leaves the server as it was.
    const started = transport.listen(req, (link) => this.onLink(link), ac.signal, (err) => this.emit('error', err));
    this.starting = ac;
    // With `tcp`, also on TCP (lib/fallback.ts): 'listening' once both are up, and an error of either closes the other.
    if (tcpAddress) this.tcp = this.listenTcp(tcpAddress);
    if (cb) {
      this.listeningCallback = cb;
      this.once('listening', cb);
    }
    if (signal) {
      // As net's listen({ signal }): aborting closes the server.
      const onAbort = () => this.close();
      if (signal.aborted) process.nextTick(onAbort);
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        this.once('close', () => signal.removeEventListener('abort', onAbort));
      }
    }
    if (started instanceof Promise) {
      this.bindingAddress = started.address ?? null;
      // Out of the promise chain: an 'error' nobody listens for must throw (uncaught), as net's.
      started.then(
        (listener) => process.nextTick(() => this.onListening(ac, listener)),
        (err: Error) => process.nextTick(() => this.onListenError(ac, addressInUse(err, req.port))),
      );
    } else {
      this.onListening(ac, started);
    }
    return this;
  }

  /** The callback given to the current listen(), removed if it never listens. */
  private listeningCallback: (() => void) | null = null;

  private onListening(ac: AbortController, listener: Listener): void {
    if (ac.signal.aborted) {
      listener.close(); // close() came first: never listen
      return;
    }
    this.starting = null;
    this.bindingAddress = null;
    this.listener = listener;
    if (!this.refed) listener.unref();
    this.emitListeningSoon();
  }

  /** 'listening' once every listener is up: as net's emitListeningNT, later, and only if still listening. */
  private emitListeningSoon(): void {
    const listener = this.listener;
    if (listener === null || (this.tcp !== null && !this.tcp.listening)) return;
    process.nextTick(() => {
      if (this.listener !== listener) return;
      this.listeningCallback = null;
      this.announced = true;
      this.emit('listening');
      for (const h of this.held.splice(0)) h.run();
    });
  }

  private onListenError(ac: AbortController, err: Error): void {
    if (ac.signal.aborted) return;
    this.undoListen(null);
    this.emit('error', err);
  }

  /** A listen() that failed (either listener): what it started is closed, the other listener included; `abort`: aborts the transport's listen still in progress with it. */
  private undoListen(abort: Error | null): void {
    this.closeTcp();
    this.dropHeld();
    if (this.listener) {
      this.listener.close();
      this.listener = null;
    }
    if (this.starting) {
      if (abort) this.starting.abort(abort);
      this.starting = null;
      this.bindingAddress = null;
    }
    this.dropListeningCallback();
  }

  /** listen({ tcp })'s TCP side: its sockets join this server's; its failure undoes the listen (ring included). */
  private listenTcp(address: { host: string; port: number }): TcpListener {
    const o = this.socketOptions as ServerOptions;
    const options: net.ServerOpts = { allowHalfOpen: this.allowHalfOpen, pauseOnConnect: this.pauseOnConnect, noDelay: o.noDelay, keepAlive: o.keepAlive, keepAliveInitialDelay: o.keepAliveInitialDelay };
    const tcp = new TcpListener(
      address,
      options,
      (socket) => this.onTcpSocket(socket),
      () => this.emitListeningSoon(),
      (err) => {
        if (this.tcp !== tcp) return; // closed, or another listen() since
        this.undoListen(err);
        this.emit('error', err);
      },
      this.closedTcp,
    );
    if (!this.refed) tcp.server.unref();
    return tcp;
  }

  private closeTcp(): void {
    if (this.tcp === null) return;
    this.tcp.close();
    this.closedTcp = this.tcp;
    this.tcp = null;
  }

  /** A TCP client of listen({ tcp }): counted with the ring's, refused over maxConnections as they are. */
  private onTcpSocket(socket: net.Socket): void {
    if (!this.announced) {
      this.held.push({ run: () => this.onTcpSocket(socket), drop: () => socket.destroy() });
      return;
    }
    if (this.maxConnections !== undefined && this.connections.size >= this.maxConnections) {
      const drop: DropInfo = {
        localAddress: socket.localAddress,
        localPort: socket.localPort,
        localFamily: socket.localFamily,
        remoteAddress: socket.remoteAddress,
        remotePort: socket.remotePort,
        remoteFamily: socket.remoteFamily,
      };
      socket.destroy();
      this.emit('drop', drop);
      return;
    }
    // Says which, as a ring socket's `transport` does ('local' or 'xen').
    Object.defineProperty(socket, 'transport', { value: 'tcp', enumerable: true, configurable: true });
    this.adopt(socket as unknown as Socket);
  }

  private dropListeningCallback(): void {
    if (this.listeningCallback) this.off('listening', this.listeningCallback);
    this.listeningCallback = null;
  }

  private onLink(link: RingLink): void {
    if (!this.listener) {
      link.release();
      return;
    }
    // As net's: no 'connection' before 'listening' (with tcp, the ring may be up before TCP is).
    if (!this.announced) {
      this.held.push({ run: () => this.onLink(link), drop: () => link.release() });
      return;
    }
    if (this.maxConnections !== undefined && this.connections.size >= this.maxConnections) {
      // As net: the peer is accepted at the transport level, then sees an orderly close.
      const drop: DropInfo = {
        localAddress: link.local.address,
        localPort: link.local.port,
        localFamily: link.local.family,
        remoteAddress: link.remote.address,
        remotePort: link.remote.port,
        remoteFamily: link.remote.family,
      };
      try {
        refuse(link.endpoint);
      } finally {
        link.release();
      }
      this.emit('drop', drop);
      return;
    }
    const socket = new Socket(this.socketOptions);
    // Why: paused before attaching, so that kAttach does not start reading (net's pauseOnConnect).
    if (this.pauseOnConnect) socket.pause();
    // A ring the client broke before we looked: dropped as a failed handshake is, never a 'connection'.
    if (socket[kAttach](link) !== null) {
      socket.destroy();
      return;
    }
    this.adopt(socket);
  }

  /** Tracks an accepted socket (ring, or TCP with listen({ tcp })) and hands it to 'connection'. */
  private adopt(socket: Socket): void {
    socket.server = this;
    this.connections.add(socket);
    const release = () => {
      this.connections.delete(socket);
      this.emitCloseIfDrained();
    };
    // Released at its destroy, not its 'close': the server's 'close' then
    // comes first, as net's. A TCP one (listen({ tcp })) through its
    // _destroy, and it keeps its net.Server as _server: net's own
    // bookkeeping (its count, at destroy) is on it.
    if (socket instanceof Socket) {
      socket._server = this;
      socket[kReleased] = release;
    } else {
      const tcp = socket as unknown as net.Socket;
      const destroyImpl = tcp._destroy;
      tcp._destroy = function (this: net.Socket, err, cb) {
        release();
        destroyImpl.call(this, err, cb);
      };
    }
    if (this.closingListener) {
      process.nextTick(() => this.emitConnection(socket));
      return;
    }
    this.emitConnection(socket);
  }

  private emitConnection(socket: Socket): void {
    try {
      this.emit('connection', socket);
    } catch (err) {
      // A throwing handler is the user's bug, uncaught as with net; it must
      // not unwind into the transport's accept path (which would release
      // the link under the live socket).
      process.nextTick(() => {
        throw err;
      });
    }
  }

  /**
   * Stops accepting new connections; existing ones live on. 'close' (and `cb`)
   * come once the last connection has closed. `cb` gets ERR_SERVER_NOT_RUNNING
   * if the server was not listening.
   */
  close(cb?: (err?: Error) => void): this {
    if (typeof cb === 'function') {
      if (!this.listener && !this.starting) {
        this.once('close', () => cb(codedError('ERR_SERVER_NOT_RUNNING', 'Server is not running.')));
      } else {
        this.once('close', cb);
      }
    }
    this.closeTcp();
    if (this.listener) {
      // The transport may still hand over connections it had accepted
      // (local: reconnects already on their rings): their 'connection'
      // comes after close() returns, as net's never comes from inside it.
      this.closingListener = true;
      try {
        this.listener.close();
      } finally {
        this.closingListener = false;
      }
      this.listener = null;
    }
    // After the listener's close, which may hand over connections it had accepted.
    this.announced = false;
    this.dropHeld();
    if (this.starting) {
      this.starting.abort(codedError('ABORT_ERR', 'The server was closed before it listened'));
      this.starting = null;
      this.bindingAddress = null;
    }
    this.dropListeningCallback();
    this.emitCloseIfDrained();
    return this;
  }

  private dropHeld(): void {
    for (const h of this.held.splice(0)) h.drop();
  }

  private emitCloseIfDrained(): void {
    if (this.listener || this.starting || this.connections.size > 0) return;
    process.nextTick(() => this.emit('close'));
  }

  /**
   * `{ address, family, port }` once bound, else null. As net's, it is
   * known right after listen(): locally at once; on Xen at once in dom0,
   * and in a guest whose first xenstore read has not answered yet this call
   * reads the domain id (once per process, waiting at most 100 ms; listen()
   * itself never waits). Connections are accepted only from 'listening'.
   */
  address(): TransportAddress | null {
    if (this.listener) return this.listener.address();
    return this.bindingAddress?.() ?? null;
  }

  /** Calls back (asynchronously) with the number of open connections. */
  getConnections(cb: (err: Error | null, count: number) => void): this {
    if (typeof cb !== 'function') throw invalidArgType('callback', 'of type function', cb);
    process.nextTick(cb, null, this.connections.size);
    return this;
  }

  /** Lets the process exit while this server is listening. */
  unref(): this {
    this.refed = false;
    this.listener?.unref();
    this.tcp?.server.unref();
    return this;
  }

  /** Undoes unref(): a listening server keeps the process alive again. */
  ref(): this {
    this.refed = true;
    this.listener?.ref();
    this.tcp?.server.ref();
    return this;
  }

  /**
   * With `captureRejections`, an async 'connection' handler that rejects
   * destroys only that socket (as net); other events' rejections are 'error'.
   */
  override [EventEmitter.captureRejectionSymbol](err: Error, event: string | symbol, ...args: unknown[]): void {
    if (event === 'connection') (args[0] as Socket).destroy(err);
    else this.emit('error', err);
  }

  /** `await using server = ...`: closes the server and waits for 'close'. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.listener) return;
    await new Promise<void>((resolve) => this.close(() => resolve()));
  }
}

/** net's listen() argument forms and checks; returns options with a port, and the callback. */
function normalizeListenArgs(args: unknown[]): [ListenOptions, (() => void) | undefined] {
  let cb: (() => void) | undefined;
  if (args.length > 0 && typeof args[args.length - 1] === 'function') cb = args.pop() as () => void;
  const first = args[0];
  let options: ListenOptions;
  if (first !== null && typeof first === 'object') {
    options = { ...(first as ListenOptions) };
    if (args.length > 1 && typeof args[1] === 'number' && options.backlog === undefined) options.backlog = args[1];
  } else {
    options = { port: first as number | string | undefined };
    if (typeof args[1] === 'number') options.backlog = args[1];
  }
  // As net: no arguments, an explicit undefined port, or a null one: any free port.
  if (first === undefined || first === null || ('port' in options && options.port === undefined) || options.port === null) {
    options.port = 0;
  }
  if (typeof options.port !== 'number' && typeof options.port !== 'string') {
    const reason = 'port' in options ? 'is invalid' : 'must have the property "port"';
    throw invalidArgValue('options', options, reason);
  }
  options.port = validatePort(options.port, 'options.port');
  // As net, a backlog that is not a positive integer means the default.
  if (options.backlog !== undefined && !(Number.isInteger(options.backlog) && options.backlog >= 1)) delete options.backlog;
  return [options, cb];
}

/**
 * Server's events, as net.Server's: 'listening', 'connection' with each accepted
 * Socket, 'drop' for a connection refused over maxConnections, 'error', and
 * 'close' once closed and every connection has closed.
 */
export interface Server {
  addListener(event: 'close', listener: () => void): this;
  addListener(event: 'connection', listener: (socket: Socket) => void): this;
  addListener(event: 'drop', listener: (data?: DropInfo) => void): this;
  addListener(event: 'error', listener: (err: Error) => void): this;
  addListener(event: 'listening', listener: () => void): this;
  addListener(event: string | symbol, listener: (...args: any[]) => void): this;
  on(event: 'close', listener: () => void): this;
  on(event: 'connection', listener: (socket: Socket) => void): this;
  on(event: 'drop', listener: (data?: DropInfo) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'listening', listener: () => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'close', listener: () => void): this;
  once(event: 'connection', listener: (socket: Socket) => void): this;
  once(event: 'drop', listener: (data?: DropInfo) => void): this;
  once(event: 'error', listener: (err: Error) => void): this;
  once(event: 'listening', listener: () => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
  prependListener(event: 'close', listener: () => void): this;
  prependListener(event: 'connection', listener: (socket: Socket) => void): this;
  prependListener(event: 'drop', listener: (data?: DropInfo) => void): this;
  prependListener(event: 'error', listener: (err: Error) => void): this;
  prependListener(event: 'listening', listener: () => void): this;
  prependListener(event: string | symbol, listener: (...args: any[]) => void): this;
  prependOnceListener(event: 'close', listener: () => void): this;
  prependOnceListener(event: 'connection', listener: (socket: Socket) => void): this;
  prependOnceListener(event: 'drop', listener: (data?: DropInfo) => void): this;
  prependOnceListener(event: 'error', listener: (err: Error) => void): this;
  prependOnceListener(event: 'listening', listener: () => void): this;
  prependOnceListener(event: string | symbol, listener: (...args: any[]) => void): this;
  emit(event: 'close'): boolean;
  emit(event: 'connection', socket: Socket): boolean;
  emit(event: 'drop', data?: DropInfo): boolean;
  emit(event: 'error', err: Error): boolean;
  emit(event: 'listening'): boolean;
  emit(event: string | symbol, ...args: any[]): boolean;
}

/**
 * EADDRINUSE as net words it (uvExceptionWithHostPort): what is in use in
 * the message, and the port on the error (`address`: the transport's own
 * name for it, a rendezvous socket path or a xenstore key, when it gave one).
 */
function addressInUse(err: Error, port: number | string | undefined): Error {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number | string };
  if (e.code !== 'EADDRINUSE' || e.syscall !== 'listen' || port === undefined || port === 0) return err;
  e.port ??= port;
  const message = `listen EADDRINUSE: address already in use ${e.address ?? String(port)}`;
  if (e.stack?.startsWith(`${e.name}: ${e.message}`)) e.stack = `${e.name}: ${message}${e.stack.slice(e.name.length + 2 + e.message.length)}`;
  e.message = message;
  return err;
}
