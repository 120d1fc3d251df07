/**
 * One xs_wire connection: an fd on /dev/xen/xenbus (or, in tests, a socket
 * to a xenstored), non-blocking and watched by libuv. It frames requests and
 * replies, keeps at most `maxInFlight` requests on the wire, finishes
 * partial writes, and fails a request whose reply does not come within its
 * timeout. Which request goes to which connection is the client's business
 * (xenstore.ts); a transaction and a watch live on the connection that
 * started them, as the kernel keeps them per open file.
 * @internal
 */
import { systemError } from '../../errors';
import { UV_READABLE, UV_WRITABLE, type FdWatcher } from '../../native';
import type { XenBindings } from './bindings';

export const HEADER = 16;
/** XENSTORE_PAYLOAD_MAX */
export const PAYLOAD_MAX = 4096;
export const OP_ERROR = 16;
export const OP_WATCH_EVENT = 15;
export const OP_TRANSACTION_START = 6;
export const OP_TRANSACTION_END = 7;

/** A request as xenstored reads it: the header (req_id 0: the connection numbers it) and `body`. */
export function encodeMessage(op: number, tx: number, body: Buffer): Buffer {
  const msg = Buffer.alloc(HEADER + body.length);
  msg.writeUInt32LE(op, 0);
  msg.writeUInt32LE(tx >>> 0, 8);
  msg.writeUInt32LE(body.length, 12);
  body.copy(msg, HEADER);
  return msg;
}

/** A plain decimal string (no sign, no spaces, no leading zeros) in [lo, hi], else null: how xenstore values are read. */
export function parseDecimal(s: string, lo: number, hi: number): number | null {
  if (!/^(0|[1-9][0-9]{0,9})$/.test(s)) return null;
  const n = Number(s);
  return n >= lo && n <= hi ? n : null;
}

/** A request as the client queues it; the connection stamps its req_id when it sends it. */
export interface XsRequest {
  readonly op: number;
  readonly tx: number;
  /** For error messages. */
  readonly path: string;
  /** Header (req_id filled in at send) and body. */
  readonly msg: Buffer;
  /** Settles once: the client's promise. */
  settle(err: Error | null, payload?: Buffer): void;
}

interface OnWire {
  req: XsRequest;
  timer: NodeJS.Timeout | null;
}

export interface ConnectionEvents {
  /** A reply (or error reply) came for `req`; payload is the raw reply body. */
  reply(conn: XenbusConnection, req: XsRequest, type: number, payload: Buffer): void;
  /** A reply to a request already given up (timed out or cancelled). */
  lateReply(conn: XenbusConnection, op: number, type: number, payload: Buffer): void;
  watchEvent(payload: Buffer): void;
  /** A slot came free, or a request left: the client may send more. */
  progress(conn: XenbusConnection): void;
  /** The connection is unusable (broken stream, closed device): the whole client must go. */
  fatal(err: Error): void;
}

let nextReqId = 1;
/** req_ids unique across the client's connections, so a trace reads unambiguously. */
function takeReqId(): number {
  const id = nextReqId;
  nextReqId = (nextReqId % 0x7ffffff0) + 1;
  return id;
}

export class XenbusConnection {
  private readonly fd: number;
  private readonly watcher: FdWatcher;
  private inbuf: Buffer = Buffer.alloc(0);
  private readonly onWire = new Map<number, OnWire>();
  /** The message being written, when the device took only part of it. */
  private partial: { id: number; off: number; entry: OnWire } | null = null;
  /** Requests given up on the wire: their late replies are reported, then forgotten. */
  private readonly abandoned = new Map<number, number>();
  private wantWritable = false;
  private retry: NodeJS.Timeout | null = null;
  private refed = false;
  closed = false;
  /** A reply never came here: take no new work; close once empty. */
  retiring = false;
  /** Transactions opened here and not yet ended. */
  readonly transactions = new Set<number>();
  /** Watch tokens registered here. */
  readonly watches = new Set<string>();
  /** When it last became idle (0: busy); the client closes extra idle fds after a while. */
  idleSince = 0;

  constructor(
    private readonly b: XenBindings,
    private readonly requestTimeout: number,
    private readonly maxInFlight: number,
    private readonly events: ConnectionEvents,
  ) {
    this.fd = b.xen.xenbusOpen();
    try {
      this.watcher = new b.FdWatcher(this.fd, (ev) => this.onPoll(ev));
      this.watcher.start(UV_READABLE);
      this.watcher.unref();
    } catch (err) {
      b.closeFd(this.fd);
      throw err;
    }
  }

  /** Requests on the wire (or being written). */
  get inFlight(): number {
    return this.onWire.size;
  }

  /** Nothing on the wire, no transaction, no watch: the fd may be closed. */
  get idle(): boolean {
    return this.onWire.size === 0 && this.transactions.size === 0 && this.watches.size === 0;
  }

  /** Can put one more request on the wire now (ignores retiring: pinned requests still go). */
  get hasSlot(): boolean {
    return !this.closed && this.partial === null && this.onWire.size < this.maxInFlight;
  }

  /**
   * Puts `req` on the wire. Its timeout runs from now (waiting in the
   * client's queue does not count). A write error before any byte went out
   * fails only this request.
   */
  send(req: XsRequest): void {
    const id = takeReqId();
    req.msg.writeUInt32LE(id, 4);
    let n: number;
    try {
      n = this.b.xen.fdWrite(this.fd, req.msg);
    } catch (err) {
      req.settle(err as Error);
      return;
    }
    const entry: OnWire = { req, timer: null };
    this.onWire.set(id, entry);
    if (this.requestTimeout > 0) {
      entry.timer = setTimeout(() => this.expire(id, entry), this.requestTimeout);
      entry.timer.unref();
    }
    if (trace) process.stderr.write(`xs> ${id} op=${req.op} tx=${req.tx} ${JSON.stringify(req.msg.subarray(HEADER).toString('latin1'))}\n`);
    if (n < req.msg.length) {
      // EAGAIN (0) or short: the rest goes when the device takes it.
      this.partial = { id, off: n, entry };
      this.waitWritable();
    }
    this.updateRef();
  }

  /**
   * Gives up a request the caller no longer wants (aborted). It keeps its
   * slot until its reply or its timeout, so the wire stays in step.
   */
  forget(req: XsRequest): boolean {
    for (const [id, e] of this.onWire) {
      if (e.req !== req) continue;
      this.onWire.delete(id);
      if (e.timer) clearTimeout(e.timer);
      if (this.partial?.entry === e) {
        this.break(systemError('ECANCELED', 'xenstore', 'request given up while half written'));
        return true;
      }
      this.remember(id, req.op);
      this.retiring = true; // its reply may never come: new work goes elsewhere
      this.events.progress(this);
      return true;
    }
    return false;
  }

  /** Closes the fd (the kernel ends its transactions and drops its watches). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    this.watcher.close();
    this.b.closeFd(this.fd);
    for (const e of this.onWire.values()) if (e.timer) clearTimeout(e.timer);
  }

  /** Fails every request on the wire with `err`, closes. */
  fail(err: Error): void {
    const entries = [...this.onWire.values()];
    this.onWire.clear();
    this.partial = null;
    this.close();
    for (const e of entries) e.req.settle(err);
  }

  /**
   * This connection is out of step (a request half written was given up):
   * it is closed and its requests fail, the client carries on with others.
   */
  private break(err: Error): void {
    this.fail(err);
    this.events.progress(this);
  }

  private remember(id: number, op: number): void {
    this.abandoned.set(id, op);
    if (this.abandoned.size > 1024) this.abandoned.delete(this.abandoned.keys().next().value as number);
  }

  /** No reply in time: this request fails alone; the connection takes no new work (its slot may stay stuck). */
  private expire(id: number, entry: OnWire): void {
    entry.timer = null;
    if (this.onWire.get(id) !== entry) return;
    const err = systemError('ETIMEDOUT', `xenstore ${opName(entry.req.op)}`, entry.req.path);
    if (this.partial?.entry === entry) {
      this.break(err);
      return;
    }
    this.onWire.delete(id);
    this.remember(id, entry.req.op);
    this.retiring = true;
    entry.req.settle(err);
    this.updateRef();
    this.events.progress(this);
  }

  private flushPartial(): void {
    const p = this.partial;
    if (!p || this.closed) return;
    let n: number;
    try {
      n = this.b.xen.fdWrite(this.fd, p.entry.req.msg.subarray(p.off));
    } catch (err) {
      // The stream is out of step with the store now: nothing later on this fd can be trusted.
      this.break(err as Error);
      return;
    }
    p.off += n;
    if (p.off < p.entry.req.msg.length) {
      this.waitWritable();
      return;
    }
    this.partial = null;
    this.setWritable(false);
    this.events.progress(this);
  }

  private waitWritable(): void {
    this.setWritable(true);
    // The xenbus device never reports POLLOUT: retry on a timer as well.
    if (!this.retry) {
      this.retry = setTimeout(() => {
        this.retry = null;
        this.flushPartial();
      }, 10);
      this.retry.unref();
    }
  }

  private setWritable(want: boolean): void {
    if (want === this.wantWritable || this.closed) return;
    this.wantWritable = want;
    this.watcher.start(want ? UV_READABLE | UV_WRITABLE : UV_READABLE);
  }

  private onPoll(events: number): void {
    if (this.closed) return;
    if (events < 0) {
      this.events.fatal(systemError('EIO', 'xenstore', 'xenbus poll failed'));
      return;
    }
    if (events & UV_WRITABLE) this.flushPartial();
    if (events & UV_READABLE) this.onReadable();
  }

  private onReadable(): void {
    for (;;) {
      let chunk: Buffer | null;
      try {
        chunk = this.b.xen.fdRead(this.fd, 65536);
      } catch (err) {
        this.events.fatal(err as Error);
        return;
      }
      if (chunk === null) break;
      if (chunk.length === 0) {
        this.events.fatal(systemError('ECONNRESET', 'xenstore', 'xenbus closed'));
        return;
      }
      this.inbuf = this.inbuf.length ? Buffer.concat([this.inbuf, chunk]) : chunk;
    }
    while (this.inbuf.length >= HEADER && !this.closed) {
      const len = this.inbuf.readUInt32LE(12);
      if (len > PAYLOAD_MAX) {
        this.events.fatal(systemError('EPROTO', 'xenstore', 'oversized reply'));
        return;
      }
      if (this.inbuf.length < HEADER + len) break;
      const type = this.inbuf.readUInt32LE(0);
      const id = this.inbuf.readUInt32LE(4);
      const payload = Buffer.from(this.inbuf.subarray(HEADER, HEADER + len));
      this.inbuf = this.inbuf.subarray(HEADER + len);
      this.dispatch(type, id, payload);
    }
  }

  private dispatch(type: number, id: number, payload: Buffer): void {
    if (trace) process.stderr.write(`xs< ${id} type=${type} ${JSON.stringify(payload.toString('latin1'))}\n`);
    if (type === OP_WATCH_EVENT) {
      this.events.watchEvent(payload);
      return;
    }
    const e = this.onWire.get(id);
    if (!e || this.partial?.entry === e) {
      const op = this.abandoned.get(id);
      if (op === undefined) return; // not ours: ignored
      this.abandoned.delete(id);
      this.events.lateReply(this, op, type, payload);
      return;
    }
    this.onWire.delete(id);
    if (e.timer) clearTimeout(e.timer);
    this.updateRef();
    this.events.reply(this, e.req, type, payload);
    this.events.progress(this);
  }

  /** Requests on the wire hold the loop, and the client's `keepAlive` (a listening server's watch). */
  private updateRef(): void {
    if (this.closed) return;
    const want = this.onWire.size > 0 || this.keepAliveFlag;
    if (want === this.refed) return;
    this.refed = want;
    if (want) this.watcher.ref();
    else this.watcher.unref();
  }

  private keepAliveFlag = false;
  set keepAlive(on: boolean) {
    this.keepAliveFlag = on;
    this.updateRef();
  }
}

const OP_NAMES: Record<number, string> = {
  1: 'directory', 2: 'read', 3: 'get_perms', 4: 'watch', 5: 'unwatch', 6: 'transaction_start',
  7: 'transaction_end', 11: 'write', 13: 'rm', 14: 'set_perms', 22: 'directory_part',
};
export const opName = (op: number): string => OP_NAMES[op] ?? String(op);

/** XENRING_DEBUG=xenstore traces every request and reply on stderr. */
const trace = /\bxenstore\b/.test(process.env.XENRING_DEBUG ?? '');
