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
import { Server, type ServerOptions } from './server';
import { Socket, normalizeConnectArgs, type SocketConnectOptions } from './socket';
import { FallbackSocket, type FallbackConnectOptions } from './fallback';

export { Server, Socket };
export { FallbackSocket, tcpAddress } from './fallback';
export type { FallbackConnectOptions, FallbackTarget, TcpListenOptions } from './fallback';
export { vchanServer, vchanClient } from './vchan';
export type { VchanServerSocketOptions, VchanClientSocketOptions } from './vchan';
export type { ListenOptions, ServerOptions, DropInfo } from './server';
export type { SocketAddress, SocketConnectOptions, SocketOptions } from './socket';
export type { TransportAddress } from './transports/transport';

/** Creates a Server, as net.createServer(). */
export function createServer(
  options?: ServerOptions | ((socket: Socket) => void),
  connectionListener?: (socket: Socket) => void,
): Server {
  return new Server(options, connectionListener);
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
  if (first !== null && typeof first === 'object' && first.fallback !== undefined) return new FallbackSocket(first as FallbackConnectOptions, args[1] as () => void);
  const [options] = normalizeConnectArgs([...args]);
  const socket = new Socket(options);
  return socket.connect(...args);
}

/** Same function as connect(), as in net. */
export const createConnection = connect;
