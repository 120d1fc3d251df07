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

export { Server, Socket };
export { vchanServer, vchanClient } from './vchan_sockets';
export type { VchanServerSocketOptions, VchanClientSocketOptions } from './vchan_sockets';
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
 */
export function connect(options: SocketConnectOptions, connectListener?: () => void): Socket;
export function connect(port: number | string, host?: string | number, connectListener?: () => void): Socket;
export function connect(port: number | string, connectListener?: () => void): Socket;
export function connect(...args: unknown[]): Socket {
  const [options] = normalizeConnectArgs([...args]);
  const socket = new Socket(options);
  return socket.connect(...args);
}

/** Same function as connect(), as in net. */
export const createConnection = connect;
