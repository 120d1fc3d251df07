/**
 * Plain vchan endpoints, for talking to any libxenvchan program: exactly
 * libxenvchan's roles and xenstore layout, one peer each. Both return a
 * {@link Socket} that emits 'connect' once the peer is there.
 */
import { kConnectWith, Socket, type SocketOptions } from './socket';
import type { VchanClientOptions, VchanServerOptions } from './transports/xen';
import { xenModule } from './transports/xen_module';

/** Options of {@link vchanServer}. */
export interface VchanServerSocketOptions extends SocketOptions {
  /** The only domain allowed to connect. */
  domid: number;
  /** xenstore directory, e.g. `/local/domain/<self>/data/vchan/<domid>/<port>`. */
  path: string;
  /** Minimum bytes of the client→server ring (default 64 KiB; libxenvchan rounds as it does). */
  readSize?: number;
  /** Minimum bytes of the server→client ring (default 64 KiB). */
  writeSize?: number;
  /** Give up with ETIMEDOUT if no client connects within this many ms (default: wait forever). */
  connectTimeout?: number;
}

/** Options of {@link vchanClient}. */
export interface VchanClientSocketOptions extends SocketOptions {
  /** The server's domain. */
  domid: number;
  /** The xenstore directory the server published. */
  path: string;
  /** Give up with ETIMEDOUT after this many ms. */
  connectTimeout?: number;
}

/**
 * Serves one vchan (grants the pages to `domid`, publishes `ring-ref` and
 * `event-channel` under `path`) and returns its Socket; 'connect' fires when
 * the client has mapped the ring. Data written before that waits in the ring.
 */
export function vchanServer(options: VchanServerSocketOptions): Socket {
  const socket = new Socket(options);
  const serverOptions: VchanServerOptions = {
    domid: options.domid,
    path: options.path,
    readSize: options.readSize,
    writeSize: options.writeSize,
  };
  return socket[kConnectWith](async (signal) => {
    const xen = xenModule();
    const link = await xen.vchanServer(serverOptions);
    try {
      signal.throwIfAborted();
      await xen.waitForClient(link, 0, signal);
      signal.throwIfAborted();
      return link;
    } catch (err) {
      link.release();
      throw err;
    }
  }, undefined, options.connectTimeout);
}

/** Connects to the vchan a server in `domid` published under `path`. */
export function vchanClient(options: VchanClientSocketOptions): Socket {
  const socket = new Socket(options);
  return socket[kConnectWith](async (signal) => {
    const clientOptions: VchanClientOptions = {
      domid: options.domid,
      path: options.path,
      timeout: options.connectTimeout,
      signal,
    };
    const link = await xenModule().vchanClient(clientOptions);
    if (!signal.aborted) return link;
    link.release(); // made while we were giving up
    throw signal.reason;
  }, undefined, options.connectTimeout);
}
