/**
 * A small xenstore client speaking the xs_wire protocol over /dev/xen/xenbus
 * (works in dom0 and in guests; the kernel multiplexes it onto the domain's
 * xenstore ring). The fd is non-blocking and watched by libuv, so no call ever
 * blocks the event loop. One client per process is shared by every vchan.
 *
 * Wire format (xen/include/public/io/xs_wire.h): a 16-byte little-endian
 * header {type, req_id, tx_id, len} then `len` bytes of NUL-separated strings.
 * @internal
 */
import { constants } from 'node:os';
import { systemError } from '../../errors';
import { native, UV_READABLE, type FdWatcher } from '../../native';
import { xen } from './native_xen';

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
}

const HEADER = 16;
const MAX_IN_FLIGHT = 1;
/** XENSTORE_PAYLOAD_MAX */
const PAYLOAD_MAX = 4096;
const OP_NAMES: Record<number, string> = {
  1: 'directory', 2: 'read', 3: 'get_perms', 4: 'watch', 5: 'unwatch', 6: 'transaction_start',
  7: 'transaction_end', 11: 'write', 13: 'rm', 14: 'set_perms',
};

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
}

export interface XsWatch {
  close(): void;
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
  private inbuf: Buffer = Buffer.alloc(0);
  private nextReq = 1;
  private nextToken = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly queue: Array<{ req: number; msg: Buffer; entry: Pending }> = [];
  private readonly watches = new Map<string, (path: string) => void>();
  private holds = 0;
  private refed = false;
  private closed = false;
  private domidPromise: Promise<number> | null = null;
  private txChain: Promise<void> = Promise.resolve();

  constructor() {
    this.fd = xen.xenbusOpen();
    try {
      this.watcher = new native.FdWatcher(this.fd, (ev) => this.onReadable(ev));
      this.watcher.start(UV_READABLE);
    } catch (err) {
      native.closeFd(this.fd);
      throw err;
    }
    this.updateRef();
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

  /** rm() that ignores ENOENT and, with `quiet`, every error (for cleanup paths). */
  async rmQuiet(path: string): Promise<void> {
    try {
      await this.rm(path);
    } catch {
      /* already gone, or the store went away: nothing left to clean */
    }
  }

  async directory(path: string, tx = 0): Promise<string[]> {
    return splitNul(await this.request(Op.Directory, tx, path, [path]));
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
      const id = Number((await this.request(Op.TransactionStart, 0, '', [''])).toString('latin1').replace(/\0.*$/s, ''));
      if (!Number.isInteger(id) || id <= 0) throw systemError('EPROTO', 'xenstore transaction_start');
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
   */
  async watch(path: string, callback: (path: string) => void, keepAlive = false): Promise<XsWatch> {
    const token = `xr${process.pid}_${this.nextToken++}`;
    this.watches.set(token, callback);
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
        const d = parseDecimal(s, 0, 0x7fef);
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

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.watcher.close();
    native.closeFd(this.fd);
    const err = systemError('ECONNRESET', 'xenstore', 'client closed');
    for (const p of this.pending.values()) p.reject(err);
    for (const q of this.queue) q.entry.reject(err);
    this.pending.clear();
    this.queue.length = 0;
    this.watches.clear();
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
      this.queue.push({ req, msg, entry: { op, path, resolve, reject } });
      this.sendQueued();
    });
  }

  /**
   * One request in flight at a time, as libxenstore does: with several
   * outstanding requests on /dev/xen/xenbus, Linux 6.1 dom0 stopped
   * delivering replies in the lab (see docs/xen.md). Watch events may still
   * arrive at any time.
   */
  private sendQueued(): void {
    while (this.pending.size < MAX_IN_FLIGHT && this.queue.length > 0 && !this.closed) {
      const { req, msg, entry } = this.queue.shift()!;
      let n: number;
      try {
        n = xen.fdWrite(this.fd, msg);
      } catch (err) {
        entry.reject(err as Error);
        continue;
      }
      if (n !== msg.length) {
        entry.reject(systemError('EIO', `xenstore ${OP_NAMES[entry.op]}`, 'short write to xenbus'));
        continue;
      }
      if (trace) process.stderr.write(`xs> ${req} ${OP_NAMES[entry.op]} ${JSON.stringify(msg.subarray(HEADER).toString('latin1'))}\n`);
      this.pending.set(req, entry);
    }
    this.updateRef();
  }

  private onReadable(events: number): void {
    if (this.closed) return;
    if (events < 0) {
      this.fail(systemError('EIO', 'xenstore', 'xenbus poll failed'));
      return;
    }
    for (;;) {
      let chunk: Buffer | null;
      try {
        chunk = xen.fdRead(this.fd, 65536);
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
    while (this.inbuf.length >= HEADER) {
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
      const cb = token !== undefined ? this.watches.get(token) : undefined;
      if (cb && path !== undefined) {
        try {
          cb(path);
        } catch (err) {
          process.nextTick(() => {
            throw err;
          });
        }
      }
      return;
    }
    const p = this.pending.get(req);
    if (!p) return; // not ours (cannot happen on a private fd); ignore
    this.pending.delete(req);
    this.sendQueued();
    if (type === Op.Error) {
      const code = splitNul(payload)[0] || 'EIO';
      // Only a real errno name (xenstored's are); anything else is EIO, not a made-up code without errno.
      const known = /^E[A-Z0-9]+$/.test(code) && code in constants.errno;
      p.reject(systemError(known ? code : 'EIO', `xenstore ${OP_NAMES[p.op]}`, p.path));
    } else {
      p.resolve(payload);
    }
  }

  private fail(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.close();
    if (shared === this) shared = null;
  }

  private updateRef(): void {
    if (this.closed) return;
    const want = this.pending.size > 0 || this.queue.length > 0 || this.holds > 0;
    if (want === this.refed) return;
    this.refed = want;
    if (want) this.watcher.ref();
    else this.watcher.unref();
  }
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

let shared: XenStore | null = null;
/** XENRING_DEBUG=xenstore traces every request and reply on stderr. */
const trace = /\bxenstore\b/.test(process.env.XENRING_DEBUG ?? '');

/** The process-wide client (opened on first use; throws ENOENT without Xen). */
export function xenStore(): XenStore {
  if (!shared) shared = new XenStore();
  return shared;
}
