/**
 * The local transport: the vchan ring between processes on one Linux host.
 * Pages: one sealed memfd (control page, left ring, right ring) created by the
 * server, as a vchan server grants pages. Wake-ups: two eventfds, one per
 * direction, standing in for the event channel. Rendezvous: a UNIX seqpacket
 * socket `<dir>/<port>.sock` that passes the fds with SCM_RIGHTS, standing in
 * for xenstore + grant references. The connection socket stays open for the
 * life of the ring: when the peer process dies the kernel closes it, which is
 * our analogue of Xen's unmap-notify.
 */
import * as fs from 'node:fs';
import { PAGE_SIZE } from '../constants';
import { systemError } from '../errors';
import { native, FdWatcher, SharedMapping, RingEndpoint, UV_READABLE, UV_DISCONNECT } from '../native';
import { MAX_LOCAL_RING_SIZE, ringOrder } from '../ring/ring_size';
import { clientConnect } from '../ring/vchan_state';
import { normalizePort, rendezvousDir, socketPath } from './local_dir';
import type {
  ConnectRequest,
  ListenRequest,
  Listener,
  RingLink,
  Transport,
  TransportAddress,
} from './transport';

const HELLO = 0x31485258; // "XRH1"
const ACCEPT = 0x31415258; // "XRA1"
const VERSION = 1;
/** How long a handshake may take before it fails with ETIMEDOUT. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

function closeQuietly(fd: number): void {
  if (fd < 0) return;
  try {
    native.closeFd(fd);
  } catch {
    /* already closed */
  }
}

/** A connected local ring and the fds/pages behind it. */
class LocalLink implements RingLink {
  readonly ext = true;
  private released = false;
  constructor(
    readonly endpoint: RingEndpoint,
    private readonly mapping: SharedMapping,
    readonly waitFd: number,
    private readonly kickFd: number,
    readonly hangupFd: number,
    readonly local: TransportAddress,
    readonly remote: TransportAddress,
  ) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    this.endpoint.close();
    this.mapping.unmap();
    closeQuietly(this.waitFd);
    closeQuietly(this.kickFd);
    closeQuietly(this.hangupFd);
  }
}

function ringLayout(leftOrder: number, rightOrder: number) {
  const left = 2 ** leftOrder;
  const right = 2 ** rightOrder;
  return { size: PAGE_SIZE + left + right, leftOffset: PAGE_SIZE, rightOffset: PAGE_SIZE + left };
}

function address(path: string, port: number | string): TransportAddress {
  return { address: path, family: 'local', port };
}

/** Server side of one handshake: build the ring and send the fds. */
function serveHello(conn: number, msg: Buffer, defaultOrder: number, path: string, port: number | string): RingLink {
  if (msg.length < 16 || msg.readUInt32LE(0) !== HELLO || msg.readUInt32LE(4) !== VERSION) {
    throw systemError('EPROTO', 'accept', 'bad hello from client');
  }
  const asked = msg.readUInt32LE(8);
  const order = asked === 0 ? defaultOrder : asked;
  if (order < 12 || order > Math.log2(MAX_LOCAL_RING_SIZE)) throw systemError('EPROTO', 'accept', 'bad ring order');
  const { size, leftOffset, rightOffset } = ringLayout(order, order);
  const memfd = native.memfdCreate('xenring', size);
  let mapping: SharedMapping | undefined;
  let endpoint: RingEndpoint | undefined;
  const fds: number[] = [];
  try {
    mapping = new native.SharedMapping(memfd, size, true);
    endpoint = new native.RingEndpoint({
      role: 'server',
      init: true,
      ext: true,
      control: mapping,
      controlOffset: 0,
      left: { mapping, offset: leftOffset, order },
      right: { mapping, offset: rightOffset, order },
    });
    const c2s = native.eventfdCreate();
    fds.push(c2s);
    const s2c = native.eventfdCreate();
    fds.push(s2c);
    endpoint.setNotifier(native.eventfdNotifier(s2c, c2s));
    const reply = Buffer.alloc(16);
    reply.writeUInt32LE(ACCEPT, 0);
    reply.writeUInt32LE(VERSION, 4);
    reply.writeUInt32LE(order, 8);
    reply.writeUInt32LE(order, 12);
    if (native.sendMessage(conn, reply, [memfd, c2s, s2c]) !== reply.length) {
      throw systemError('EAGAIN', 'sendmsg', 'handshake reply did not fit');
    }
    const peer = native.socketPeerPid(conn);
    return new LocalLink(endpoint, mapping, c2s, s2c, conn, address(path, port), {
      address: `pid:${peer}`,
      family: 'local',
      port,
    });
  } catch (err) {
    endpoint?.close();
    mapping?.unmap();
    fds.forEach(closeQuietly);
    throw err;
  } finally {
    closeQuietly(memfd); // the mappings keep the pages
  }
}

/** Client side: validate the server's reply and map the ring. */
function acceptReply(conn: number, msg: { data: Buffer; fds: number[]; truncated?: boolean }, path: string, port: number | string): RingLink {
  const { data, fds } = msg;
  let mapping: SharedMapping | undefined;
  let endpoint: RingEndpoint | undefined;
  try {
    // The kernel drops passed fds it cannot install (RLIMIT_NOFILE): say so.
    if (msg.truncated && fds.length < 3) throw systemError('EMFILE', 'connect', 'no free fd for the ring (too many open files)');
    if (data.length < 16 || data.readUInt32LE(0) !== ACCEPT || data.readUInt32LE(4) !== VERSION || fds.length !== 3) {
      throw systemError('EPROTO', 'connect', 'bad handshake reply');
    }
    const leftOrder = data.readUInt32LE(8);
    const rightOrder = data.readUInt32LE(12);
    const maxOrder = Math.log2(MAX_LOCAL_RING_SIZE);
    if (leftOrder < 12 || rightOrder < 12 || leftOrder > maxOrder || rightOrder > maxOrder) {
      throw systemError('EPROTO', 'connect', 'bad ring order');
    }
    const [memfd, c2s, s2c] = fds;
    const { size, leftOffset, rightOffset } = ringLayout(leftOrder, rightOrder);
    native.memfdCheck(memfd, size);
    native.eventfdCheck(c2s);
    native.eventfdCheck(s2c);
    mapping = new native.SharedMapping(memfd, size, true);
    closeQuietly(memfd);
    fds[0] = -1;
    endpoint = new native.RingEndpoint({
      role: 'client',
      init: false,
      ext: true,
      control: mapping,
      controlOffset: 0,
      left: { mapping, offset: leftOffset, order: leftOrder },
      right: { mapping, offset: rightOffset, order: rightOrder },
    });
    endpoint.setNotifier(native.eventfdNotifier(c2s, s2c));
    // vchan client connect: live, ask for the server's writes, wake the server.
    clientConnect(endpoint);
    return new LocalLink(endpoint, mapping, s2c, c2s, conn, { address: `pid:${process.pid}`, family: 'local', port }, address(path, port));
  } catch (err) {
    endpoint?.close();
    mapping?.unmap();
    fds.forEach(closeQuietly);
    closeQuietly(conn);
    throw err;
  }
}

function connect(req: ConnectRequest, signal: AbortSignal): Promise<RingLink> {
  let callback!: (err: Error | null, link?: RingLink) => void;
  const result = new Promise<RingLink>((resolve, reject) => (callback = (err, link) => (err ? reject(err) : resolve(link!))));
  const port = normalizePort(req.port);
  const order = req.ringSize === undefined ? 0 : ringOrder(req.ringSize, MAX_LOCAL_RING_SIZE);
  const path = socketPath(rendezvousDir(req.dir), port);
  let conn = -1;
  let watcher: FdWatcher | null = null;
  let timer: NodeJS.Timeout | null = null;
  let done = false;

  const finish = (err: Error | null, link?: RingLink) => {
    if (done) return;
    done = true;
    if (timer) clearTimeout(timer);
    watcher?.close();
    // Without a link (error or cancel) the rendezvous socket is ours to close:
    // the server then sees the hang-up and drops its half of the handshake.
    if (!link) closeQuietly(conn);
    if (err || link) callback(err, link);
  };
  const refused = (code: string) => {
    const err = systemError(code === 'ENOENT' ? 'ECONNREFUSED' : code, 'connect', path);
    Object.assign(err, { address: path, port });
    return err;
  };

  let attempts = 0;
  const attempt = () => {
    timer = null;
    if (done) return; // cancelled before the attempt ran
    try {
      conn = native.unixConnect(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      // EAGAIN: the listener's backlog is full; it is alive, so retry briefly.
      if (code === 'EAGAIN' && attempts++ < 200) {
        timer = setTimeout(attempt, Math.min(50, 1 + attempts));
        return;
      }
      finish(refused(code));
      return;
    }
    const hello = Buffer.alloc(16);
    hello.writeUInt32LE(HELLO, 0);
    hello.writeUInt32LE(VERSION, 4);
    hello.writeUInt32LE(order, 8);
    hello.writeUInt32LE(process.pid, 12);
    try {
      native.sendMessage(conn, hello);
      watcher = new native.FdWatcher(conn, (events) => {
        let msg;
        try {
          msg = events < 0 ? null : native.recvMessage(conn);
        } catch (e) {
          finish(refused((e as NodeJS.ErrnoException).code ?? 'ECONNRESET'));
          return;
        }
        if (msg === null && events >= 0) return; // spurious wake-up
        if (msg === null || msg.data.length === 0) {
          // The server closed without a ring: it is going away, or refused us.
          finish(refused('ECONNREFUSED'));
          return;
        }
        try {
          const link = acceptReply(conn, msg, path, port);
          finish(null, link);
        } catch (e) {
          conn = -1; // acceptReply closed it
          finish(e as Error);
        }
      });
      watcher.start(UV_READABLE | UV_DISCONNECT);
      timer = setTimeout(() => finish(systemError('ETIMEDOUT', 'connect', path)), HANDSHAKE_TIMEOUT_MS);
    } catch (e) {
      finish(e as Error);
    }
  };
  // Asynchronous like net: errors and the link always arrive on a later tick.
  process.nextTick(attempt);
  signal.addEventListener('abort', () => finish(signal.reason as Error), { once: true });
  return result;
}

class LocalListener implements Listener {
  private watcher: FdWatcher;
  private pending = new Map<number, { watcher: FdWatcher; timer: NodeJS.Timeout }>();
  private closed = false;
  private refed = true;
  private readonly ino: number;

  constructor(
    private readonly fd: number,
    private readonly path: string,
    private readonly port: number | string,
    private readonly order: number,
    private readonly onLink: (link: RingLink) => void,
  ) {
    this.ino = fs.statSync(path).ino;
    this.watcher = new native.FdWatcher(fd, () => this.acceptAll());
    this.watcher.start(UV_READABLE);
  }

  private acceptAll(): void {
    while (!this.closed) {
      let conn: number;
      try {
        conn = native.unixAccept(this.fd);
      } catch {
        return; // EMFILE and friends: the next readiness retries
      }
      if (conn < 0) return;
      this.awaitHello(conn);
    }
  }

  private awaitHello(conn: number): void {
    const drop = () => {
      const p = this.pending.get(conn);
      if (!p) return;
      this.pending.delete(conn);
      clearTimeout(p.timer);
      p.watcher.close();
    };
    const watcher = new native.FdWatcher(conn, (events) => {
      let msg = null;
      try {
        msg = events < 0 ? null : native.recvMessage(conn);
        if (msg === null && events >= 0) return;
      } catch {
        msg = null;
      }
      drop();
      if (msg === null || msg.data.length === 0 || this.closed) {
        closeQuietly(conn);
        return;
      }
      let link: RingLink;
      try {
        link = serveHello(conn, msg.data, this.order, this.path, this.port);
      } catch {
        closeQuietly(conn); // the client sees ECONNREFUSED / EPROTO
        return;
      }
      this.onLink(link);
    });
    watcher.start(UV_READABLE | UV_DISCONNECT);
    if (!this.refed) watcher.unref();
    const timer = setTimeout(() => {
      drop();
      closeQuietly(conn);
    }, HANDSHAKE_TIMEOUT_MS);
    timer.unref();
    this.pending.set(conn, { watcher, timer });
  }

  address(): TransportAddress {
    return address(this.path, this.port);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.watcher.close();
    for (const [conn, p] of this.pending) {
      clearTimeout(p.timer);
      p.watcher.close();
      closeQuietly(conn);
    }
    this.pending.clear();
    closeQuietly(this.fd);
    // Remove the socket file only if it is still ours (a new listener may own it).
    try {
      if (fs.statSync(this.path).ino === this.ino) fs.unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }

  ref(): void {
    this.refed = true;
    this.watcher.ref();
    for (const p of this.pending.values()) p.watcher.ref();
  }

  unref(): void {
    this.refed = false;
    this.watcher.unref();
    for (const p of this.pending.values()) p.watcher.unref();
  }
}

/** Binds `path`, replacing a stale socket left by a crashed server. */
function bindListener(path: string, backlog: number): number {
  try {
    return native.unixListen(path, backlog);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
  }
  let probe = -1;
  try {
    probe = native.unixConnect(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ECONNREFUSED' || code === 'ENOENT') {
      try {
        fs.unlinkSync(path);
      } catch {
        /* raced with another cleaner */
      }
      return native.unixListen(path, backlog);
    }
  } finally {
    closeQuietly(probe);
  }
  throw systemError('EADDRINUSE', 'listen', path);
}

function listen(req: ListenRequest, onLink: (link: RingLink) => void, _signal: AbortSignal): Listener | Promise<Listener> {
  const requested = normalizePort(req.port);
  const order = ringOrder(req.ringSize, MAX_LOCAL_RING_SIZE);
  const dir = rendezvousDir(req.dir);
  const backlog = req.backlog ?? 511;
  let result: Listener;
  try {
    if (requested === 0) {
      // Ephemeral port: pick from the dynamic range until one is free.
      let fd = -1;
      let port = 0;
      for (let i = 0; i < 256 && fd < 0; i++) {
        port = 49152 + Math.floor(Math.random() * 16384);
        try {
          fd = bindListener(socketPath(dir, port), backlog);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
        }
      }
      if (fd < 0) throw systemError('EADDRINUSE', 'listen', 'no free port');
      result = new LocalListener(fd, socketPath(dir, port), port, order, onLink);
    } else {
      const path = socketPath(dir, requested);
      result = new LocalListener(bindListener(path, backlog), path, requested, order, onLink);
    }
  } catch (e) {
    return Promise.reject(e as Error);
  }
  return result; // bound now: nothing to wait for, so nothing to abort
}

/** The local transport (memfd pages, eventfd wake-ups, UNIX-socket rendezvous). */
export const localTransport: Transport = { name: 'local', connect, listen };
