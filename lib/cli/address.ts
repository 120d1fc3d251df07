/**
 * The addresses the `xenring` command speaks: `tcp:HOST:PORT`, `unix:PATH`
 * and `ring:[DOMID/]PORT`, and how to listen on or connect to each. Every
 * socket is made with allowHalfOpen, so that one direction can end while the
 * other still flows (a proxy must forward half-closes, not cause them).
 * @internal
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { resolve as resolvePath } from 'node:path';
import type { Duplex } from 'node:stream';
import { connect as ringConnect, createServer as ringCreateServer } from '../index';
import { UsageError } from './options';

export type Address =
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'unix'; path: string }
  | { kind: 'ring'; domid?: number; port: number | string };

/** Options that apply to ring addresses. */
export interface RingOptions {
  transport?: 'local' | 'xen';
  dir?: string;
  spinMicros?: number;
}

/** Bytes of a UNIX socket path, without its NUL (Linux's sun_path is 108). */
const UNIX_PATH_MAX = 107;

/** A port number, or a service name as the library takes it (lib/validators.ts: no '.', which xenstore paths lack). */
const RING_PORT_RE = /^(?:[0-9]{1,5}|[A-Za-z0-9][A-Za-z0-9_-]{0,63})$/;

/** Parses an address; `what` names it in errors ("--listen", "address"). */
export function parseAddress(text: string, what: string): Address {
  const colon = text.indexOf(':');
  const scheme = colon < 0 ? '' : text.slice(0, colon);
  const rest = text.slice(colon + 1);
  const bad = (why: string) => new UsageError(`${what} '${text}': ${why}`);
  switch (scheme) {
    case 'tcp': {
      // tcp:HOST:PORT, tcp:[v6]:PORT, or tcp:PORT (127.0.0.1).
      const m = /^(?:\[([^\]]+)\]:|([^:]*):)?([0-9]{1,5})$/.exec(rest);
      if (!m) throw bad('expected tcp:HOST:PORT');
      const port = Number(m[3]);
      if (port > 65535) throw bad('port must be 0..65535');
      return { kind: 'tcp', host: m[1] ?? (m[2] || '127.0.0.1'), port };
    }
    case 'unix':
      if (!rest) throw bad('expected unix:PATH');
      // sun_path holds 108 bytes with its NUL: a longer path was cut short by the bind, and the file left behind.
      if (Buffer.byteLength(rest) > UNIX_PATH_MAX) throw bad(`path longer than ${UNIX_PATH_MAX} bytes (the limit of a UNIX socket's address)`);
      return { kind: 'unix', path: rest };
    case 'ring': {
      const m = /^(?:([0-9]{1,5})\/)?(.+)$/.exec(rest);
      if (!m || !RING_PORT_RE.test(m[2])) throw bad('expected ring:[DOMID/]PORT (a number, or a service name: a letter or digit, then letters, digits, "_" or "-", up to 64)');
      const port = /^[0-9]+$/.test(m[2]) ? Number(m[2]) : m[2];
      if (typeof port === 'number' && port > 65535) throw bad('port must be 0..65535');
      const domid = m[1] === undefined ? undefined : Number(m[1]);
      if (domid !== undefined && domid > 0x7fef) throw bad('domid must be 0..32751');
      return { kind: 'ring', domid, port };
    }
    default:
      throw bad('expected tcp:HOST:PORT, unix:PATH or ring:[DOMID/]PORT');
  }
}

export function formatAddress(a: Address): string {
  if (a.kind === 'tcp') return `tcp:${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
  if (a.kind === 'unix') return `unix:${a.path}`;
  return `ring:${a.domid === undefined ? '' : `${a.domid}/`}${a.port}`;
}

/** `onread` as net and xenring sockets take it (see forward.ts pooledOnRead). */
export interface ReadInto {
  buffer: () => Uint8Array;
  callback: (this: unknown, n: number, buf: Uint8Array) => boolean;
}

/** A socket of any kind; emits 'connect' once connected, as net.Socket does. */
export function connectTo(a: Address, ring: RingOptions, onread?: ReadInto): Duplex & { resetAndDestroy?(): unknown } {
  // noDelay: a forwarder must not hold back small writes (Nagle): its ends chose their own batching.
  if (a.kind === 'tcp') return net.connect({ host: a.host, port: a.port, allowHalfOpen: true, noDelay: true, onread });
  if (a.kind === 'unix') return net.connect({ path: a.path, allowHalfOpen: true, onread });
  return ringConnect({ port: a.port, domid: a.domid, transport: ring.transport, dir: ring.dir, spinMicros: ring.spinMicros, allowHalfOpen: true, onread });
}

export interface AnyServer {
  close(cb?: (err?: Error) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/**
 * An accepted net socket (accepted paused) as one that reads through `onread`:
 * net.Server has no onread option, but net.Socket honours `onread` together
 * with `handle`. The new socket takes over the handle and the server's count
 * of it (server.close() still waits for it); the old one is left without a
 * handle, never to read or close it.
 */
export function withOnRead(socket: net.Socket, onread: ReadInto): net.Socket {
  type Accepted = net.Socket & { _handle: unknown; _server: net.Server | null; server: net.Server | null };
  const old = socket as Accepted;
  if (old._handle === null || old.destroyed) return socket;
  const wrapped = new net.Socket({ handle: old._handle, allowHalfOpen: old.allowHalfOpen, pauseOnCreate: true, onread } as net.SocketConstructorOpts) as Accepted;
  wrapped._server = old._server;
  wrapped.server = old.server;
  old._server = null;
  old.server = null;
  old._handle = null;
  return wrapped;
}

/**
 * Listens on `a`; every accepted socket starts paused (nothing is read before
 * the caller is ready to forward it). Calls back with the address really
 * bound (port 0 resolved) or an error. `onread`: every accepted socket reads
 * through it (see withOnRead for net's).
 */
export function listenOn(
  a: Address,
  ring: RingOptions,
  onConnection: (socket: Duplex & { resetAndDestroy?(): unknown }) => void,
  callback: (err: Error | null, bound?: Address) => void,
  onread?: ReadInto,
): AnyServer {
  const options = { allowHalfOpen: true, pauseOnConnect: true };
  if (a.kind === 'ring') {
    const server = ringCreateServer({ ...options, spinMicros: ring.spinMicros, onread }, onConnection);
    const onError = (err: Error) => callback(err);
    server.once('error', onError);
    server.listen({ port: a.port, domid: a.domid, transport: ring.transport, dir: ring.dir }, () => {
      server.off('error', onError);
      callback(null, { ...a, port: server.address()?.port ?? a.port });
    });
    return server;
  }
  const server = net.createServer({ ...options, noDelay: true }, onread ? (socket) => onConnection(withOnRead(socket, onread)) : onConnection);
  const bind = (retryStale: boolean) => {
    const onError = (err: NodeJS.ErrnoException) => {
      if (a.kind === 'unix' && retryStale && err.code === 'EADDRINUSE') {
        return void replaceStaleUnixSocket(a.path, (replaced) => (replaced ? bind(false) : callback(err)));
      }
      callback(err);
    };
    server.once('error', onError);
    const onListening = () => {
      server.off('error', onError);
      if (a.kind === 'unix') return callback(null, a);
      callback(null, { kind: 'tcp', host: (a as { host: string }).host, port: (server.address() as net.AddressInfo).port });
    };
    if (a.kind === 'tcp') server.listen({ host: a.host, port: a.port }, onListening);
    else server.listen({ path: (a as { path: string }).path }, onListening);
  };
  bind(true);
  return server;
}

/**
 * A UNIX socket file left behind by a process that died keeps its path bound
 * (EADDRINUSE). Remove it only if it is a socket that nobody accepts on.
 */
function replaceStaleUnixSocket(path: string, callback: (replaced: boolean) => void): void {
  let isSocket = false;
  try {
    isSocket = fs.lstatSync(path).isSocket();
  } catch {
    /* gone already: let listen try again */
    return callback(true);
  }
  if (!isSocket) return callback(false); // never delete a file that is not a socket
  // A live listener accepts the probe as a client: `xenring listen` serves
  // one peer, took the probe for it and exited, and a proxy forwarded it.
  // Ask the kernel's table first; probe only a path it does not list.
  if (listensOn(path)) return callback(false);
  const probe = net.connect({ path });
  probe.once('connect', () => {
    probe.destroy();
    callback(false);
  });
  probe.once('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ECONNREFUSED') return callback(false);
    fs.rmSync(path, { force: true });
    callback(true);
  });
}

/**
 * Whether a socket of this network namespace listens on `path`, from
 * /proc/net/unix (the listening flag, and the path as it was bound, as given
 * or made absolute); false also when that cannot be read (the probe decides).
 */
function listensOn(path: string): boolean {
  let table: string;
  try {
    table = fs.readFileSync('/proc/net/unix', 'latin1');
  } catch {
    return false;
  }
  const want = new Set([path, resolvePath(path)]);
  for (const line of table.split('\n')) {
    // Num RefCount Protocol Flags Type St Inode Path
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && (parseInt(f[3], 16) & SO_ACCEPTCON) !== 0 && want.has(f.slice(7).join(' '))) return true;
  }
  return false;
}
/** /proc/net/unix's flag of a listening socket (__SO_ACCEPTCON). */
const SO_ACCEPTCON = 0x10000;

/** `--transport` and `--dir`, checked. */
export function ringOptions(options: Record<string, string | true | undefined>): RingOptions {
  const transport = options.transport;
  if (transport !== undefined && transport !== 'local' && transport !== 'xen') {
    throw new UsageError(`--transport '${String(transport)}': expected 'local' or 'xen'`);
  }
  let spinMicros: number | undefined;
  if (options.spin !== undefined) {
    spinMicros = Number(options.spin);
    if (!/^[0-9]+$/.test(String(options.spin)) || spinMicros > 1e6) throw new UsageError(`--spin '${String(options.spin)}': expected microseconds, 0..1000000`);
  }
  return { transport, dir: options.dir as string | undefined, spinMicros };
}

/** Help text lines for the address forms, shared by the subcommands. */
export const ADDRESS_HELP = `Addresses:
  tcp:HOST:PORT        TCP (tcp:PORT = 127.0.0.1; IPv6 as tcp:[::1]:PORT)
  unix:PATH            a UNIX stream socket
  ring:[DOMID/]PORT    a xenring port (number or service name); DOMID = the
                       server's Xen domain (connect) or the only domain let in
                       (listen)
Ring options:
  --transport local|xen  default: xen where its devices are usable, else local
  --dir DIR              local rendezvous directory (default $XENRING_DIR, ...)
  --spin MICROS          spin this long for data before sleeping (the library's
                         spinMicros; default 50, 0 = never spin)`;
