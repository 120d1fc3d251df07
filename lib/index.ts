/**
 * xenring: stream data between processes and Xen domains through
 * shared-memory rings (libxenvchan layout), behind the node:net API.
 *
 * ```js
 * const xenring = require('xenring');
 * const server = xenring.createServer((sock) => sock.pipe(sock)).listen(7000);
 * const sock = xenring.connect({ port: 7000 }, () => sock.end('hello'));
 * ```
 */
import { Server as ServerClass, type ServerOptions } from './server';
import { Socket as SocketClass, normalizeConnectArgs, type SocketConnectOptions, type SocketOptions } from './socket';
import { FallbackSocket as FallbackSocketClass, type FallbackConnectOptions, type FallbackSocketOptions } from './fallback';

/**
 * Makes a class callable without `new`, as net's Socket and Server are (instanceof still works).
 * The construct trap passes the class itself as new.target (a subclass keeps its own): with the
 * proxy as new.target, V8 gave every instance a hidden class of its own, so each new connection
 * deoptimized the code handling sockets (pg through a bridge: twice the client CPU per query).
 */
function callable<C extends new (...args: never[]) => object, A extends unknown[]>(cls: C): C & ((...args: A) => InstanceType<C>) {
  const proxy: C = new Proxy(cls, {
    apply: (target, _this, args: unknown[]) => Reflect.construct(target, args),
    construct: (target, args: unknown[], newTarget: object) => Reflect.construct(target, args, newTarget === proxy ? target : (newTarget as C)),
  });
  return proxy as C & ((...args: A) => InstanceType<C>);
}

/** A stream over a xenring connection, shaped like net.Socket; `Socket()` without `new` works too. */
export const Socket = callable<typeof SocketClass, [options?: SocketOptions]>(SocketClass);
export type Socket = SocketClass;
/** Accepts xenring connections, shaped like net.Server; `Server()` without `new` works too. */
export const Server = callable<typeof ServerClass, [options?: ServerOptions | ((socket: SocketClass) => void), connectionListener?: (socket: SocketClass) => void]>(ServerClass);
export type Server = ServerClass;
/** A stream over a ring or, failing that, TCP (see {@link connect}); unconnected until connect(), as net.Socket; `FallbackSocket()` without `new` works too. */
export const FallbackSocket = callable<typeof FallbackSocketClass, [options?: FallbackSocketOptions]>(FallbackSocketClass);
export type FallbackSocket = FallbackSocketClass;
export { tcpAddress } from './fallback';
export type { FallbackConnectOptions, FallbackSocketOptions, FallbackTarget, TcpListenOptions, TcpOnlyOptions } from './fallback';
export { vchanServer, vchanClient } from './vchan_sockets';
export type { VchanServerSocketOptions, VchanClientSocketOptions } from './vchan_sockets';
export type { ListenOptions, ServerOptions, DropInfo } from './server';
export type { PoolOption, SocketAddress, SocketConnectOptions, SocketOptions } from './socket';
export type { PoolStats } from './pool/pool_stats';
export type { TransportAddress } from './transports/transport';

/** Creates a Server, as net.createServer(). */
export function createServer(
  options?: ServerOptions | ((socket: Socket) => void),
  connectionListener?: (socket: Socket) => void,
): Server {
  return new ServerClass(options, connectionListener);
}

/**
 * Opens a connection, as net.connect(): `connect(options[, cb])` or
 * `connect(port[, host][, cb])`. Errors (e.g. ECONNREFUSED) arrive as 'error'.
 * With `options.fallback` ({ host, port }): the ring if reachable, else TCP,
 * as a {@link FallbackSocket} whose `transport` says which.
 */
export function connect(options: FallbackConnectOptions, connectListener?: () => void): FallbackSocket;
export function connect(options: SocketConnectOptions, connectListener?: () => void): Socket;
export function connect(port: number | string, host?: string | number, connectListener?: () => void): Socket;
export function connect(port: number | string, connectListener?: () => void): Socket;
export function connect(...args: unknown[]): Socket | FallbackSocket {
  const first = args[0] as { fallback?: unknown } | null;
  if (first !== null && typeof first === 'object' && first.fallback !== undefined) {
    const options = first as FallbackConnectOptions;
    return new FallbackSocketClass(options).connect(options, typeof args[1] === 'function' ? (args[1] as () => void) : undefined);
  }
  const [options] = normalizeConnectArgs([...args]);
  const socket = new SocketClass(options);
  return socket.connect(...args);
}

/** Same function as connect(), as in net. */
export const createConnection = connect;
