/**
 * Server: accepts xenring connections on a port, shaped like net.Server.
 * Every connection gets its own ring pair.
 */
import { EventEmitter } from 'node:events';
import { codedError, invalidArgType, outOfRange } from './errors';
import { kAttach, Socket, validateSocketOptions, type SocketOptions } from './socket';
import { refuse } from './ring/vchan_state';
import { resolveTransport } from './transports/registry';
import type { Listener, RingLink, TransportAddress } from './transports/transport';

/** Options of `createServer()`. */
export interface ServerOptions extends SocketOptions {
  /** Accepted sockets start paused. */
  pauseOnConnect?: boolean;
}

/** Options of `server.listen()`. */
export interface ListenOptions {
  /** Port number (0 = any free one) or service name. */
  port?: number | string;
  /** 'local' or 'xen'; default 'xen' where the Xen devices are usable, else 'local'. */
  transport?: 'local' | 'xen';
  /** Xen: the only domain allowed to connect (default: any). */
  domid?: number;
  /** Bytes per direction for accepted connections (power of two, default 1 MiB). */
  ringSize?: number;
  /** Local transport: rendezvous directory. */
  dir?: string;
  backlog?: number;
  /**
   * Local transport: uids besides the server's own that may connect (default
   * none). The socket file is then 0666 and the directory must let them in.
   */
  allowUid?: number | number[];
}

/** Payload of the 'drop' event (a connection over maxConnections). */
export interface DropInfo {
  localAddress?: string;
  localPort?: number | string;
  localFamily?: string;
  remoteAddress?: string;
  remotePort?: number | string;
  remoteFamily?: string;
}

export class Server extends EventEmitter {
  /** Refuse (close at once) connections beyond this many. Unset by default. */
  maxConnections?: number;
  allowHalfOpen: boolean;
  pauseOnConnect: boolean;
  private readonly socketOptions: SocketOptions;
  private listener: Listener | null = null;
  private starting = false;
  private connections = new Set<Socket>();
  private refed = true;

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
    this.socketOptions = { ...options };
    if (connectionListener) this.on('connection', connectionListener);
  }

  /** True while accepting connections. */
  get listening(): boolean {
    return this.listener !== null;
  }

  /**
   * Starts accepting: `listen(port[, backlog][, cb])`, `listen(options[, cb])`
   * or `listen([cb])` (any free port).
   */
  listen(...args: unknown[]): this {
    let cb: (() => void) | undefined;
    if (args.length > 0 && typeof args[args.length - 1] === 'function') cb = args.pop() as () => void;
    let options: ListenOptions;
    const first = args[0];
    if (first === undefined || first === null) options = { port: 0 };
    else if (typeof first === 'object') options = { ...(first as ListenOptions) };
    else if (typeof first === 'number' || typeof first === 'string') {
      options = { port: first };
      if (typeof args[1] === 'number') options.backlog = args[1];
    } else throw invalidArgType('port', 'of type number, string or object', first);
    if (options.port === undefined) options.port = 0;
    if (options.backlog !== undefined && (!Number.isInteger(options.backlog) || options.backlog < 1)) {
      throw outOfRange('options.backlog', 'a positive integer', options.backlog);
    }
    if (this.listener || this.starting) throw codedError('ERR_SERVER_ALREADY_LISTEN', 'Listen method has been called more than once without closing.');
    const transport = resolveTransport(options.transport);
    if (cb) this.once('listening', cb);
    this.starting = true;
    transport.listen(
      {
        port: options.port,
        domid: options.domid,
        ringSize: options.ringSize,
        dir: options.dir,
        backlog: options.backlog,
        allowUid: options.allowUid,
      },
      (link) => this.onLink(link),
      (err, listener) => {
        this.starting = false;
        if (err || !listener) {
          if (cb) this.off('listening', cb);
          this.emit('error', err);
          return;
        }
        this.listener = listener;
        if (!this.refed) listener.unref();
        this.emit('listening');
      },
    );
    return this;
  }

  private onLink(link: RingLink): void {
    if (!this.listener) {
      link.release();
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
    socket[kAttach](link);
    socket.server = this;
    socket._server = this;
    this.connections.add(socket);
    socket.once('close', () => {
      this.connections.delete(socket);
      this.emitCloseIfDrained();
    });
    this.emit('connection', socket);
  }

  /**
   * Stops accepting new connections; existing ones live on. 'close' (and `cb`)
   * come once the last connection has closed. `cb` gets ERR_SERVER_NOT_RUNNING
   * if the server was not listening.
   */
  close(cb?: (err?: Error) => void): this {
    if (typeof cb === 'function') {
      if (!this.listener) {
        this.once('close', () => cb(codedError('ERR_SERVER_NOT_RUNNING', 'Server is not running.')));
      } else {
        this.once('close', cb);
      }
    }
    if (this.listener) {
      this.listener.close();
      this.listener = null;
    }
    this.emitCloseIfDrained();
    return this;
  }

  private emitCloseIfDrained(): void {
    if (this.listener || this.starting || this.connections.size > 0) return;
    process.nextTick(() => this.emit('close'));
  }

  /** `{ address, family, port }` while listening, else null. */
  address(): TransportAddress | null {
    return this.listener ? this.listener.address() : null;
  }

  /** Calls back with the number of open connections. */
  getConnections(cb: (err: Error | null, count: number) => void): this {
    if (typeof cb !== 'function') throw invalidArgType('callback', 'of type function', cb);
    process.nextTick(cb, null, this.connections.size);
    return this;
  }

  /** Lets the process exit while this server is listening. */
  unref(): this {
    this.refed = false;
    this.listener?.unref();
    return this;
  }

  ref(): this {
    this.refed = true;
    this.listener?.ref();
    return this;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.listener) return;
    await new Promise<void>((resolve) => this.close(() => resolve()));
  }
}
