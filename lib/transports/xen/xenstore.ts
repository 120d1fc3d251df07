/**
 * A small xenstore client speaking the xs_wire protocol over /dev/xen/xenbus
 * (works in dom0 and in guests; the kernel multiplexes it onto the domain's
 * xenstore ring). The fd is non-blocking and watched by libuv, so no call ever
 * blocks the event loop. One client per process is shared by every vchan.
 *
 * Wire format (xen/include/public/io/xs_wire.h): a 16-byte little-endian
 * header {type, req_id, tx_id, len} then `len` bytes of NUL-separated strings.
 * Several requests may be in flight; replies are matched by req_id, and each
 * request settles within its timeout even if its reply never comes.
 * @internal
 */
import { constants } from 'node:os';
import { MAX_DOMID } from '../../constants';
import { systemError } from '../../errors';
import { UV_READABLE, UV_WRITABLE, type FdWatcher } from '../../native';
import { addonBindings, type XenBindings } from './bindings';

const enum Op {
  Directory = 1,
  Read = 2,
  GetPerms = 3,
  Watch = 4,
  Unwatch = 5,
  TransactionStart = 6,
  TransactionEnd = 7,
  Write = 11,
  Rm = 13,
  SetPerms = 14,
  WatchEvent = 15,
  Error = 16,
  DirectoryPart = 22,
}

const HEADER = 16;
/** XENSTORE_PAYLOAD_MAX */
const PAYLOAD_MAX = 4096;
const OP_NAMES: Record<number, string> = {
  1: 'directory', 2: 'read', 3: 'get_perms', 4: 'watch', 5: 'unwatch', 6: 'transaction_start',
  7: 'transaction_end', 11: 'write', 13: 'rm', 14: 'set_perms', 22: 'directory_part',
};

/** Default time a request may wait for its reply once it is on the wire. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/**
 * Requests on the wire at once, per fd. One on /dev/xen/xenbus: Linux's
 * xenbus device (6.1, xenbus_dev_request_and_reply) queues a request with its
 * body still pointing into the fd's message buffer, which the next write()
 * overwrites before the xenbus thread has sent it; with several in flight the
 * lab's dom0 stopped getting replies (seen again with 8). The client matches
 * replies by req_id and can keep more in flight where the transport allows
 * (`maxInFlight`, e.g. over a socket to xenstored).
 */
export const DEFAULT_MAX_IN_FLIGHT = 1;

export interface XenStoreOptions {
  /** ms each request may wait for its reply (ETIMEDOUT after). */
  requestTimeout?: number;
  maxInFlight?: number;
}

/** A node permission as xenstore spells it: `n|r|w|b` + domid; the first entry is the owner. */
export interface XsPerm {
  domid: number;
  perm: 'n' | 'r' | 'w' | 'b';
}

interface Pending {
  op: Op;
  path: string;
  resolve: (payload: Buffer) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | null;
}

interface Outgoing {
  req: number;
  msg: Buffer;
  /** Bytes already written (a partially written message must be finished). */
  off: number;
  entry: Pending;
}

export interface XsWatch {
  close(): void;
}

interface WatchEntry {
  callback: (path: string) => void;
  onError?: (err: Error) => void;
}

/** Splits a NUL-separated payload (trailing NUL optional) into strings. */
function splitNul(b: Buffer): string[] {
  const s = b.toString('latin1');
  const parts = s.split('\0');
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

export class XenStore {
  private readonly fd: number;
  private readonly watcher: FdWatcher;
  private readonly requestTimeout: number;
  private readonly maxInFlight: number;
  private inbuf: Buffer = Buffer.alloc(0);
  private nextReq = 1;
  private nextToken = 1;
  /** Sent (or being sent), awaiting a reply. */
  private readonly pending = new Map<number, Pending>();
  /** Waiting for a slot; `out[0]` may be partially written. */
  private readonly out: Outgoing[] = [];
  /** Requests that timed out on the wire: their late replies are dropped (a late transaction is ended). */
  private readonly abandoned = new Map<number, Op>();
  private readonly watches = new Map<string, WatchEntry>();
  private holds = 0;
  private refed = false;
  private wantWritable = false;
  private retry: NodeJS.Timeout | null = null;
  private closed = false;
  private domidPromise: Promise<number> | null = null;
  private txChain: Promise<void> = Promise.resolve();

  constructor(
    private readonly b: XenBindings = addonBindings,
    options: XenStoreOptions = {},
  ) {
    this.requestTimeout = options.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.maxInFlight = Math.max(1, options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT);
    this.fd = b.xen.xenbusOpen();
    try {
      this.watcher = new b.FdWatcher(this.fd, (ev) => this.onPoll(ev));
      this.watcher.start(UV_READABLE);
    } catch (err) {
      b.closeFd(this.fd);
      throw err;
    }
    this.updateRef();
  }

  /** Requests sent and not yet answered, plus those waiting for a slot. */
  get outstanding(): number {
    return this.pending.size + this.out.length;
  }

  // ---- requests ----------------------------------------------------------

  read(path: string, tx = 0): Promise<string> {
    return this.request(Op.Read, tx, path, [path]).then((b) => b.toString('latin1'));
  }

  /** read() that resolves null instead of failing with ENOENT. */
  async readOptional(path: string, tx = 0): Promise<string | null> {
    try {
      return await this.read(path, tx);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async write(path: string, value: string, tx = 0): Promise<void> {
    await this.request(Op.Write, tx, path, [path], value);
  }

  async rm(path: string, tx = 0): Promise<void> {
    await this.request(Op.Rm, tx, path, [path]);
  }

  /** rm() that ignores every error (for cleanup paths: already gone, or the store went away). */
  async rmQuiet(path: string): Promise<void> {
    try {
      await this.rm(path);
    } catch {
      /* nothing left to clean */
    }
  }

  async directory(path: string, tx = 0): Promise<string[]> {
    return splitNul(await this.request(Op.Directory, tx, path, [path]));
  }

  /**
   * Every child of `path`, read with XS_DIRECTORY_PART in pieces of at most
   * one payload (a plain XS_DIRECTORY fails with E2BIG once the names exceed
   * 4 KiB, which any domain allowed to create children could cause). Restarts
   * when the node changes between pieces; falls back to XS_DIRECTORY on a
   * store without the operation.
   */
  async directoryAll(path: string, tx = 0): Promise<string[]> {
    for (let restart = 0; restart < 8; restart++) {
      const names: string[] = [];
      let offset = 0;
      let gen: string | null = null;
      let changed = false;
      for (;;) {
        let payload: Buffer;
        try {
          payload = await this.request(Op.DirectoryPart, tx, path, [path, String(offset)]);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOSYS' || (code === 'EINVAL' && offset === 0)) return this.directory(path, tx);
          throw err;
        }
        // generation NUL name NUL name NUL ... [NUL]: the extra NUL ends the list.
        const s = payload.toString('latin1');
        const g = s.indexOf('\0');
        if (g < 0) throw systemError('EPROTO', 'xenstore directory_part', path);
        if (gen === null) gen = s.slice(0, g);
        else if (gen !== s.slice(0, g)) {
          changed = true;
          break;
        }
        const rest = s.slice(g + 1);
        const end = rest === '' || rest.endsWith('\0\0') || rest === '\0';
        const body = end ? rest.replace(/\0$/, '') : rest;
        const parts = body.split('\0');
        if (parts[parts.length - 1] === '') parts.pop();
        for (const p of parts) {
          names.push(p);
          offset += p.length + 1;
        }
        if (end) return names;
        if (parts.length === 0) throw systemError('EPROTO', 'xenstore directory_part', `${path}: no progress`);
      }
      if (!changed) break;
    }
    throw systemError('EAGAIN', 'xenstore directory_part', `${path} kept changing`);
  }

  async getPerms(path: string, tx = 0): Promise<XsPerm[]> {
    return splitNul(await this.request(Op.GetPerms, tx, path, [path])).map(parsePerm);
  }

  async setPerms(path: string, perms: XsPerm[], tx = 0): Promise<void> {
    await this.request(Op.SetPerms, tx, path, [path, ...perms.map((p) => `${p.perm}${p.domid}`)]);
  }

  /**
   * Runs `fn` inside a transaction and commits; retries the whole body when
   * the commit fails with EAGAIN (another writer touched the same nodes).
   * Our own transactions run one at a time: they would only conflict with
   * each other (e.g. many vchans created under one parent at once).
   */
  transaction<T>(fn: (tx: number) => Promise<T>, attempts = 32): Promise<T> {
    const run = this.txChain.then(() => this.runTransaction(fn, attempts));
    this.txChain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async runTransaction<T>(fn: (tx: number) => Promise<T>, attempts: number): Promise<T> {
    for (let i = 0; ; i++) {
      const id = parseTxId(await this.request(Op.TransactionStart, 0, '', ['']));
      let result: T;
      try {
        result = await fn(id);
      } catch (err) {
        await this.request(Op.TransactionEnd, id, '', ['F']).catch(() => undefined);
        throw err;
      }
      try {
        await this.request(Op.TransactionEnd, id, '', ['T']);
        return result;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || i + 1 >= attempts) throw err;
        // Another domain or process committed first: back off a little, with jitter.
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 2 ** i)));
      }
    }
  }

  /**
   * Watches `path` and everything below it. xenstore fires once right after
   * registration, so callers can (re)check state in the callback only.
   * `keepAlive` makes the watch hold the event loop open (a listening server).
   * `onError` hears once if the store connection fails: the watch is dead.
   */
  async watch(path: string, callback: (path: string) => void, keepAlive = false, onError?: (err: Error) => void): Promise<XsWatch> {
    const token = `xr${process.pid}_${this.nextToken++}`;
    this.watches.set(token, { callback, onError });
    if (keepAlive) this.hold();
    try {
      await this.request(Op.Watch, 0, path, [path, token]);
    } catch (err) {
      this.watches.delete(token);
      if (keepAlive) this.release();
      throw err;
    }
    let open = true;
    return {
      close: () => {
        if (!open) return;
        open = false;
        this.watches.delete(token);
        if (keepAlive) this.release();
        if (!this.closed) this.request(Op.Unwatch, 0, path, [path, token]).catch(() => undefined);
      },
    };
  }

  /** This domain's id (xenstore's relative key `domid`). */
  ownDomid(): Promise<number> {
    if (!this.domidPromise) {
      this.domidPromise = this.read('domid').then((s) => {
        const d = parseDecimal(s, 0, MAX_DOMID);
        if (d === null) throw systemError('EPROTO', 'xenstore read', `bad domid '${s}'`);
        return d;
      });
      this.domidPromise.catch(() => {
        this.domidPromise = null;
      });
    }
    return this.domidPromise;
  }

  /** Keep the loop alive while a listener or connection needs the store. */
  hold(): void {
    this.holds++;
    this.updateRef();
  }

  release(): void {
    if (this.holds > 0) this.holds--;
    this.updateRef();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.shutdown(systemError('ECONNRESET', 'xenstore', 'client closed'), false);
  }

  // ---- wire --------------------------------------------------------------

  private request(op: Op, tx: number, path: string, args: string[], tail?: string): Promise<Buffer> {
    if (this.closed) return Promise.reject(systemError('ECONNRESET', `xenstore ${OP_NAMES[op]}`, path));
    // Each arg is NUL-terminated; a write's value is the unterminated tail.
    const body = Buffer.from(args.map((a) => a + '\0').join('') + (tail ?? ''), 'latin1');
    if (body.length > PAYLOAD_MAX) return Promise.reject(systemError('E2BIG', `xenstore ${OP_NAMES[op]}`, path));
    const req = this.nextReq;
    this.nextReq = (this.nextReq % 0x7ffffff0) + 1;
    const msg = Buffer.alloc(HEADER + body.length);
    msg.writeUInt32LE(op, 0);
    msg.writeUInt32LE(req, 4);
    msg.writeUInt32LE(tx >>> 0, 8);
    msg.writeUInt32LE(body.length, 12);
    body.copy(msg, HEADER);
    return new Promise<Buffer>((resolve, reject) => {
      const entry: Pending = { op, path, resolve, reject, timer: null };
      this.out.push({ req, msg, off: 0, entry });
      this.flush();
    });
  }

  /**
   * A request whose reply did not come in time fails alone and frees its
   * slot: the queue behind it goes on. One still half written means the
   * device takes nothing more: the connection is given up.
   */
  private expire(item: Outgoing): void {
    const { req, entry } = item;
    entry.timer = null;
    if (this.pending.get(req) !== entry) return;
    const err = systemError('ETIMEDOUT', `xenstore ${OP_NAMES[entry.op]}`, entry.path);
    if (this.out[0] === item) {
      this.fail(err);
      return;
    }
    this.pending.delete(req);
    this.abandoned.set(req, entry.op);
    if (this.abandoned.size > 1024) this.abandoned.delete(this.abandoned.keys().next().value as number);
    entry.reject(err);
    this.flush();
  }

  /**
   * Writes queued requests while slots are free. The device takes a message
   * in pieces, so a short write (or EAGAIN, 0 bytes) keeps the rest and waits
   * for the fd to become writable.
   */
  private flush(): void {
    while (!this.closed && this.out.length > 0) {
      const item = this.out[0];
      if (item.off === 0 && this.pending.size >= this.maxInFlight) break;
      let n: number;
      try {
        n = this.b.xen.fdWrite(this.fd, item.off === 0 ? item.msg : item.msg.subarray(item.off));
      } catch (err) {
        this.out.shift();
        if (item.off > 0) {
          // The stream is out of step with the store now: nothing later can be trusted.
          this.fail(err as Error);
          return;
        }
        if (item.entry.timer) clearTimeout(item.entry.timer);
        item.entry.reject(err as Error);
        continue;
      }
      if (item.off === 0 && n > 0) {
        // On the wire: its timeout runs from now (waiting in the queue does not count).
        this.pending.set(item.req, item.entry);
        if (this.requestTimeout > 0) {
          item.entry.timer = setTimeout(() => this.expire(item), this.requestTimeout);
          item.entry.timer.unref();
        }
        if (trace) process.stderr.write(`xs> ${item.req} ${OP_NAMES[item.entry.op]} ${JSON.stringify(item.msg.subarray(HEADER).toString('latin1'))}\n`);
      }
      item.off += n;
      if (item.off < item.msg.length) break; // EAGAIN or short: wait for POLLOUT
      this.out.shift();
    }
    const blocked = !this.closed && this.out.length > 0 && (this.out[0].off > 0 || this.pending.size < this.maxInFlight);
    this.setWritable(blocked);
    // The xenbus device never reports POLLOUT: retry on a timer as well.
    if (blocked && !this.retry) {
      this.retry = setTimeout(() => {
        this.retry = null;
        this.flush();
      }, 10);
      this.retry.unref();
    }
    this.updateRef();
  }

  private setWritable(want: boolean): void {
    if (want === this.wantWritable || this.closed) return;
    this.wantWritable = want;
    this.watcher.start(want ? UV_READABLE | UV_WRITABLE : UV_READABLE);
  }

  private onPoll(events: number): void {
    if (this.closed) return;
    if (events < 0) {
      this.fail(systemError('EIO', 'xenstore', 'xenbus poll failed'));
      return;
    }
    if (events & UV_WRITABLE) this.flush();
    if (events & UV_READABLE) this.onReadable();
  }

  private onReadable(): void {
    for (;;) {
      let chunk: Buffer | null;
      try {
        chunk = this.b.xen.fdRead(this.fd, 65536);
      } catch (err) {
        this.fail(err as Error);
        return;
      }
      if (chunk === null) break;
      if (chunk.length === 0) {
        this.fail(systemError('ECONNRESET', 'xenstore', 'xenbus closed'));
        return;
      }
      this.inbuf = this.inbuf.length ? Buffer.concat([this.inbuf, chunk]) : chunk;
    }
    while (this.inbuf.length >= HEADER && !this.closed) {
      const len = this.inbuf.readUInt32LE(12);
      if (len > PAYLOAD_MAX) {
        this.fail(systemError('EPROTO', 'xenstore', 'oversized reply'));
        return;
      }
      if (this.inbuf.length < HEADER + len) break;
      const type = this.inbuf.readUInt32LE(0);
      const req = this.inbuf.readUInt32LE(4);
      const payload = Buffer.from(this.inbuf.subarray(HEADER, HEADER + len));
      this.inbuf = this.inbuf.subarray(HEADER + len);
      this.dispatch(type, req, payload);
    }
    this.updateRef();
  }

  private dispatch(type: number, req: number, payload: Buffer): void {
    if (trace) process.stderr.write(`xs< ${req} type=${type} ${JSON.stringify(payload.toString('latin1'))}\n`);
    if (type === Op.WatchEvent) {
      const [path, token] = splitNul(payload);
      const w = token !== undefined ? this.watches.get(token) : undefined;
      if (w && path !== undefined) {
        try {
          w.callback(path);
        } catch (err) {
          process.nextTick(() => {
            throw err;
          });
        }
      }
      return;
    }
    const p = this.pending.get(req);
    if (!p) {
      const op = this.abandoned.get(req);
      this.abandoned.delete(req);
      // A transaction we gave up on would hold one of the domain's few transaction slots.
      if (op === Op.TransactionStart && type !== Op.Error) {
        try {
          const id = parseTxId(payload);
          this.request(Op.TransactionEnd, id, '', ['F']).catch(() => undefined);
        } catch {
          /* not a transaction id: nothing to end */
        }
      }
      return;
    }
    this.pending.delete(req);
    if (p.timer) clearTimeout(p.timer);
    this.flush();
    if (type === Op.Error) {
      const raw = splitNul(payload)[0] || 'EIO';
      // oxenstored's quota error has no errno: it is what C xenstored calls ENOSPC.
      const code = raw === 'EQUOTA' ? 'ENOSPC' : raw;
      // Only a real errno name (xenstored's are); anything else is EIO, not a made-up code without errno.
      const known = /^E[A-Z0-9]+$/.test(code) && code in constants.errno;
      p.reject(systemError(known ? code : 'EIO', `xenstore ${OP_NAMES[p.op]}`, p.path));
    } else {
      p.resolve(payload);
    }
  }

  /** The connection is unusable: fail every request and tell every watch. */
  private fail(err: Error): void {
    this.shutdown(err, true);
  }

  private shutdown(err: Error, notifyWatches: boolean): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.watcher.close();
    this.b.closeFd(this.fd);
    const entries = [...this.pending.values(), ...this.out.map((o) => o.entry)];
    this.pending.clear();
    this.out.length = 0;
    for (const p of entries) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(err);
    }
    const watches = [...this.watches.values()];
    this.watches.clear();
    if (notifyWatches) {
      for (const w of watches) {
        try {
          w.onError?.(err);
        } catch (e) {
          process.nextTick(() => {
            throw e;
          });
        }
      }
    }
    this.onClose?.();
  }

  /** @internal the owner drops its reference (a fresh client is opened on next use). */
  onClose: (() => void) | null = null;

  private updateRef(): void {
    if (this.closed) return;
    const want = this.pending.size > 0 || this.out.length > 0 || this.holds > 0;
    if (want === this.refed) return;
    this.refed = want;
    if (want) this.watcher.ref();
    else this.watcher.unref();
  }
}

function parseTxId(payload: Buffer): number {
  const id = Number(payload.toString('latin1').replace(/\0.*$/s, ''));
  if (!Number.isInteger(id) || id <= 0 || id > 0xffffffff) throw systemError('EPROTO', 'xenstore transaction_start');
  return id;
}

function parsePerm(s: string): XsPerm {
  const perm = s[0] as XsPerm['perm'];
  const domid = parseDecimal(s.slice(1), 0, 0xffff);
  if (!'nrwb'.includes(perm) || domid === null) throw systemError('EPROTO', 'xenstore get_perms', `bad perm '${s}'`);
  return { domid, perm };
}

/** A plain decimal string (no sign, no spaces, no leading zeros) in [lo, hi], else null. */
export function parseDecimal(s: string, lo: number, hi: number): number | null {
  if (!/^(0|[1-9][0-9]{0,9})$/.test(s)) return null;
  const n = Number(s);
  return n >= lo && n <= hi ? n : null;
}

/** XENRING_DEBUG=xenstore traces every request and reply on stderr. */
const trace = /\bxenstore\b/.test(process.env.XENRING_DEBUG ?? '');

/**
 * One client per bindings object, opened on first use (throws ENOENT without
 * Xen) and replaced by a fresh one after the connection fails.
 */
const clients = new WeakMap<XenBindings, XenStore>();
export function xenStoreFor(b: XenBindings): XenStore {
  let s = clients.get(b);
  if (!s || s.isClosed) {
    const fresh = new XenStore(b, b.storeOptions);
    fresh.onClose = () => {
      if (clients.get(b) === fresh) clients.delete(b);
    };
    clients.set(b, fresh);
    s = fresh;
  }
  return s;
}

/** The process-wide client over the real devices. */
export function xenStore(): XenStore {
  return xenStoreFor(addonBindings);
}
