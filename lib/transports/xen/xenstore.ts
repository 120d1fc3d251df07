/**
 * A small xenstore client speaking the xs_wire protocol over /dev/xen/xenbus
 * (works in dom0 and in guests; the kernel multiplexes it onto the domain's
 * xenstore ring). Every fd is non-blocking and watched by libuv, so no call
 * ever blocks the event loop. One client per process is shared by every vchan.
 *
 * Wire format (xen/include/public/io/xs_wire.h): a 16-byte little-endian
 * header {type, req_id, tx_id, len} then `len` bytes of NUL-separated strings.
 *
 * Linux's xenbus device takes one request at a time per open file (see
 * DEFAULT_MAX_IN_FLIGHT), so the client keeps a small pool of xenbus fds
 * (xenbus_connection.ts) and schedules requests onto them: independent
 * requests never wait behind one stuck reply (each fails alone after its
 * timeout, and its fd takes no new work), a request waits only for earlier
 * changes (write, rm, set_perms) of the same path or a parent/child of it
 * (so changes keep their order and reads see them), and
 * a transaction's requests and a watch's unwatch go to the fd that started
 * them, as the kernel keeps those per open file. Every request is bounded by
 * its timeout and can be cancelled with an AbortSignal.
 * @internal
 */
import { constants } from 'node:os';
import { MAX_DOMID } from '../../constants';
import { systemError } from '../../errors';
import { addonBindings, type XenBindings } from './bindings';
import {
  encodeMessage,
  OP_ERROR,
  OP_TRANSACTION_END,
  OP_TRANSACTION_START,
  PAYLOAD_MAX,
  XenbusConnection,
  opName,
  parseDecimal,
  type ConnectionEvents,
  type XsRequest,
} from './xenbus_connection';

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
  DirectoryPart = 22,
}

/** Default time a request may wait for its reply once it is on the wire. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/**
 * Requests on the wire at once, per fd. One on /dev/xen/xenbus: Linux's
 * xenbus device (6.1, xenbus_dev_request_and_reply) queues a request with its
 * body still pointing into the fd's message buffer, which the next write()
 * overwrites before the xenbus thread has sent it; with several in flight the
 * lab's dom0 stopped getting replies (seen again with 8). More are allowed
 * where the transport takes them (`maxInFlight`, e.g. a socket to xenstored).
 */
export const DEFAULT_MAX_IN_FLIGHT = 1;
/** xenbus fds one client opens at most: requests in flight at once (xenstored allows a domain 20 outstanding). */
export const DEFAULT_MAX_CONNECTIONS = 8;
/** An idle fd beyond the first is closed after this long without work. */
const IDLE_LINGER_MS = 100;
/** Our transactions open at once, of different scopes (xenstored allows a domain 10). */
export const DEFAULT_MAX_TRANSACTIONS = 4;

export interface XenStoreOptions {
  /** ms each request may wait for its reply (ETIMEDOUT after). */
  requestTimeout?: number;
  /** Requests on the wire per fd. */
  maxInFlight?: number;
  /** fds the client may open. */
  maxConnections?: number;
  /** Transactions open at once. */
  maxTransactions?: number;
}

/** Per-request options. */
export interface XsRequestOptions {
  /** Aborting gives the request up at once (rejecting with the signal's reason). */
  signal?: AbortSignal;
}

/** A node permission as xenstore spells it: `n|r|w|b` + domid; the first entry is the owner. */
export interface XsPerm {
  domid: number;
  perm: 'n' | 'r' | 'w' | 'b';
}

export interface XsWatch {
  close(): void;
}

interface WatchEntry {
  callback: (path: string) => void;
  onError?: (err: Error) => void;
  conn: XenbusConnection | null;
}

/** A request waiting for, or on, a connection. */
interface Job extends XsRequest {
  /** The path it orders against (null: none, e.g. transaction control). */
  readonly key: string | null;
  /** write, rm, set_perms: later requests on related paths wait for it. */
  readonly mutates: boolean;
  /** The connection it must go to (its transaction's, its watch's). */
  readonly pin: XenbusConnection | null;
  /** Told which connection it went to. */
  readonly via?: (conn: XenbusConnection) => void;
  conn: XenbusConnection | null;
  done: boolean;
}

/** Splits a NUL-separated payload (trailing NUL optional) into strings. */
function splitNul(b: Buffer): string[] {
  const s = b.toString('latin1');
  const parts = s.split('\0');
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/** Same node, or one above the other: their requests keep their order. */
function related(a: string, b: string): boolean {
  if (a === b) return true;
  const [short, long] = a.length < b.length ? [a, b] : [b, a];
  return long.startsWith(short.endsWith('/') ? short : short + '/');
}

export class XenStore {
  private readonly requestTimeout: number;
  private readonly maxInFlight: number;
  private readonly maxConnections: number;
  private readonly maxTransactions: number;
  private readonly conns: XenbusConnection[] = [];
  /** Waiting for a connection, in order. */
  private readonly queue: Job[] = [];
  /** On a connection, not yet settled. */
  private readonly sent = new Set<Job>();
  /** Our open transactions, by id, and the connection each lives on. */
  private readonly txConns = new Map<number, XenbusConnection>();
  /** Connections with a transaction_start on the wire (one transaction per connection). */
  private readonly txStarting = new Set<XenbusConnection>();
  private txActive = 0;
  /** The last transaction of each scope (they run one after another). */
  private readonly txScopes = new Map<string, Promise<void>>();
  private readonly txWaiters: (() => void)[] = [];
  private readonly watches = new Map<string, WatchEntry>();
  private readonly events: ConnectionEvents;
  private nextToken = 1;
  private holds = 0;
  private pumping = false;
  private pumpAgain = false;
  private closed = false;
  private domid: number | null = null;
  private domidPromise: Promise<number> | null = null;

  constructor(
    private readonly b: XenBindings = addonBindings,
    options: XenStoreOptions = {},
  ) {
    this.requestTimeout = options.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.maxInFlight = Math.max(1, options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT);
    this.maxConnections = Math.max(1, options.maxConnections ?? DEFAULT_MAX_CONNECTIONS);
    this.maxTransactions = Math.max(1, options.maxTransactions ?? DEFAULT_MAX_TRANSACTIONS);
    this.events = {
      reply: (conn, req, type, payload) => this.onReply(conn, req as Job, type, payload),
      lateReply: (conn, op, type, payload) => this.onLateReply(conn, op, type, payload),
      watchEvent: (payload) => this.onWatchEvent(payload),
      progress: () => this.pump(),
      fatal: (err) => this.shutdown(err, true),
    };
    // The first fd now: without Xen this throws (ENOENT), as callers expect.
    this.conns.push(new XenbusConnection(b, this.requestTimeout, this.maxInFlight, this.events));
  }

  /** Requests sent and not yet answered, plus those waiting for a connection. */
  get outstanding(): number {
    return this.sent.size + this.queue.length;
  }

  /** xenbus fds open now. */
  get connections(): number {
    return this.conns.filter((c) => !c.closed).length;
  }

  // ---- requests ----------------------------------------------------------

  read(path: string, tx = 0, opts?: XsRequestOptions): Promise<string> {
    return this.request(Op.Read, tx, path, [path], undefined, opts).then((b) => b.toString('latin1'));
  }

  /** read() that resolves null instead of failing with ENOENT. */
  async readOptional(path: string, tx = 0, opts?: XsRequestOptions): Promise<string | null> {
    try {
      return await this.read(path, tx, opts);
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
   * Transactions with the same `scope` (the directory they create nodes in:
   * they would only conflict with each other) run one at a time; different
   * scopes run side by side, so a stuck one holds up only its own scope. At
   * most `maxTransactions` of ours are open at once (xenstored limits a
   * domain's), each on its own connection.
   */
  transaction<T>(fn: (tx: number) => Promise<T>, attempts = 32, scope = ''): Promise<T> {
    const prev = this.txScopes.get(scope) ?? Promise.resolve();
    const run = prev.then(() => this.withTxSlot(() => this.runTransaction(fn, attempts)));
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.txScopes.set(scope, tail);
    void tail.then(() => {
      if (this.txScopes.get(scope) === tail) this.txScopes.delete(scope);
    });
    return run;
  }

  private async withTxSlot<T>(body: () => Promise<T>): Promise<T> {
    if (this.txActive >= this.maxTransactions) await new Promise<void>((r) => this.txWaiters.push(r));
    else this.txActive++;
    try {
      return await body();
    } finally {
      // The slot passes straight to the next waiter (txActive unchanged), else frees.
      const next = this.txWaiters.shift();
      if (next) next();
      else this.txActive--;
    }
  }

  private async runTransaction<T>(fn: (tx: number) => Promise<T>, attempts: number): Promise<T> {
    for (let i = 0; ; i++) {
      const id = await this.startTransaction();
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

  /** Opens a transaction on a connection of its own; its requests will follow it there. */
  private async startTransaction(): Promise<number> {
    let conn: XenbusConnection | null = null;
    const via = (c: XenbusConnection) => {
      conn = c;
      this.txStarting.add(c);
    };
    try {
      const id = parseTxId(await this.request(Op.TransactionStart, 0, '', [''], undefined, undefined, via));
      const c = conn as XenbusConnection | null;
      if (!c || c.closed) throw systemError('ECONNRESET', 'xenstore transaction_start', 'its connection closed');
      c.transactions.add(id);
      this.txConns.set(id, c);
      return id;
    } finally {
      if (conn) this.txStarting.delete(conn);
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
    const entry: WatchEntry = { callback, onError, conn: null };
    this.watches.set(token, entry);
    if (keepAlive) this.hold();
    const via = (c: XenbusConnection) => {
      entry.conn = c;
      c.watches.add(token); // events come on this fd; it stays open while the watch lives
    };
    try {
      await this.request(Op.Watch, 0, path, [path, token], undefined, undefined, via);
    } catch (err) {
      this.dropWatch(token, entry);
      if (keepAlive) this.release();
      throw err;
    }
    let open = true;
    return {
      close: () => {
        if (!open) return;
        open = false;
        if (keepAlive) this.release();
        const conn = entry.conn;
        this.watches.delete(token);
        if (this.closed || !conn || conn.closed) {
          this.dropWatch(token, entry);
          return;
        }
        // Unwatch on the fd that holds the watch; that fd may close once it is done.
        this.request(Op.Unwatch, 0, path, [path, token], undefined, undefined, undefined, conn)
          .catch(() => undefined)
          .finally(() => this.dropWatch(token, entry));
      },
    };
  }

  private dropWatch(token: string, entry: WatchEntry): void {
    if (this.watches.get(token) === entry) this.watches.delete(token);
    entry.conn?.watches.delete(token);
    this.pump();
  }

  /** This domain's id (xenstore's relative key `domid`). */
  ownDomid(): Promise<number> {
    if (!this.domidPromise) {
      this.domidPromise = this.read('domid').then((s) => {
        const d = parseDecimal(s, 0, MAX_DOMID);
        if (d === null) throw systemError('EPROTO', 'xenstore read', `bad domid '${s}'`);
        this.domid = d;
        return d;
      });
      this.domidPromise.catch(() => {
        this.domidPromise = null;
      });
    }
    return this.domidPromise;
  }

  /** This domain's id if ownDomid() has resolved already, else null (no request is made). */
  get knownDomid(): number | null {
    return this.domid;
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

  // ---- scheduling ----------------------------------------------------------

  private request(
    op: Op,
    tx: number,
    path: string,
    args: string[],
    tail?: string,
    opts?: XsRequestOptions,
    via?: (conn: XenbusConnection) => void,
    pinTo?: XenbusConnection,
  ): Promise<Buffer> {
    const name = `xenstore ${opName(op)}`;
    if (this.closed) return Promise.reject(systemError('ECONNRESET', name, path));
    const signal = opts?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    // Each arg is NUL-terminated; a write's value is the unterminated tail.
    const body = Buffer.from(args.map((a) => a + '\0').join('') + (tail ?? ''), 'latin1');
    if (body.length > PAYLOAD_MAX) return Promise.reject(systemError('E2BIG', name, path));
    let pin = pinTo ?? null;
    if (tx !== 0) {
      // A transaction lives on the fd that started it.
      pin = this.txConns.get(tx) ?? null;
      if (!pin || pin.closed) return Promise.reject(systemError('ECONNRESET', name, `${path}: transaction ${tx} is gone`));
    }
    const msg = encodeMessage(op, tx, body);
    // Transactions see their own snapshot, watches order nothing: only plain requests keep a path order.
    const key = tx === 0 && path !== '' && op !== Op.Watch && op !== Op.Unwatch ? this.keyOf(path) : null;
    return new Promise<Buffer>((resolve, reject) => {
      const onAbort = () => this.cancel(job, signal!.reason as Error);
      const job: Job = {
        op,
        tx,
        path,
        msg,
        key,
        mutates: op === Op.Write || op === Op.Rm || op === Op.SetPerms,
        pin,
        via,
        conn: null,
        done: false,
        settle: (err, payload) => {
          if (job.done) return;
          job.done = true;
          this.sent.delete(job);
          signal?.removeEventListener('abort', onAbort);
          if (op === Op.TransactionEnd) this.endTransaction(tx);
          if (err) reject(err);
          else resolve(payload!);
          this.pump();
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(job);
      this.pump();
    });
  }

  /** Relative paths are under /local/domain/<us>; absolute once we know who we are. */
  private keyOf(path: string): string {
    return path.startsWith('/') || this.domid === null ? path : `/local/domain/${this.domid}/${path}`;
  }

  private cancel(job: Job, reason: Error): void {
    if (job.done) return;
    const i = this.queue.indexOf(job);
    if (i >= 0) this.queue.splice(i, 1);
    else job.conn?.forget(job);
    job.settle(reason);
  }

  private endTransaction(tx: number): void {
    const conn = this.txConns.get(tx);
    this.txConns.delete(tx);
    conn?.transactions.delete(tx);
  }

  /**
   * Hands queued requests to connections, oldest first: a request waits
   * while an earlier one on a related path is unsettled; a pinned one waits
   * for its connection; the others take a healthy connection with a free
   * slot (opening one more up to `maxConnections`). Then closes connections
   * nobody needs: idle ones beyond one spare, and given-up ones once empty.
   */
  private pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        if (this.closed) return;
        this.assign();
        this.trim();
      } while (this.pumpAgain);
    } finally {
      this.pumping = false;
    }
    this.updateRef();
  }

  private assign(): void {
    // Paths with an unsettled change: a request on a related path waits
    // (reads see earlier changes, changes keep their order; a change need
    // not wait for an earlier read, which may as well have come later).
    const busy: string[] = [];
    for (const j of this.sent) if (j.key !== null && j.mutates) busy.push(j.key);
    for (let i = 0; i < this.queue.length && !this.closed; ) {
      const job = this.queue[i];
      if (job.done) {
        this.queue.splice(i, 1); // failed while waiting (its connection closed, no fd to open)
        continue;
      }
      const waits = job.key !== null && busy.some((k) => related(k, job.key!));
      const conn = waits ? null : this.connectionFor(job);
      if (job.key !== null && job.mutates) busy.push(job.key);
      if (!conn) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      job.conn = conn;
      this.sent.add(job);
      job.via?.(conn);
      conn.send(job);
    }
  }

  private connectionFor(job: Job): XenbusConnection | null {
    if (job.pin) {
      if (job.pin.closed) {
        job.settle(systemError('ECONNRESET', `xenstore ${opName(job.op)}`, `${job.path}: its connection closed`));
        return null;
      }
      return job.pin.hasSlot ? job.pin : null;
    }
    // Healthy ones with a free slot, fewest in flight first, by kind: plain
    // ones; then those holding watches (their unwatch should not queue behind
    // our requests; new watches go there first, to keep them on few fds);
    // then those with a transaction open or opening (its own requests should
    // not queue behind ours; never a second transaction there).
    let plain: XenbusConnection | null = null;
    let watched: XenbusConnection | null = null;
    let withTx: XenbusConnection | null = null;
    const fewer = (a: XenbusConnection | null, c: XenbusConnection) => (!a || c.inFlight < a.inFlight ? c : a);
    for (const c of this.conns) {
      if (c.closed || c.retiring || !c.hasSlot) continue;
      if (c.transactions.size > 0 || this.txStarting.has(c)) withTx = fewer(withTx, c);
      else if (c.watches.size > 0) watched = fewer(watched, c);
      else plain = fewer(plain, c);
    }
    if (job.op === Op.Watch && watched?.inFlight === 0) return watched;
    if (plain?.inFlight === 0) return plain;
    const open = this.conns.filter((c) => !c.closed).length;
    if (open < this.maxConnections) {
      try {
        const c = new XenbusConnection(this.b, this.requestTimeout, this.maxInFlight, this.events);
        this.conns.push(c);
        return c;
      } catch (err) {
        // Out of fds (EMFILE) or the like: use what is open; with nothing open, the request fails.
        if (open === 0) {
          job.settle(err as Error);
          return null;
        }
      }
    }
    return plain ?? watched ?? (job.op === Op.TransactionStart ? null : withTx);
  }

  /**
   * Closes what nobody needs: a given-up connection once empty at once; an
   * idle healthy one beyond the first after IDLE_LINGER_MS (so that a burst
   * of requests every few ms does not open and close fds each time).
   */
  private trim(): void {
    const now = Date.now();
    let spare = false;
    let nextCheck = Infinity;
    for (let i = 0; i < this.conns.length; ) {
      const c = this.conns[i];
      if (!c.closed && c.idle && !this.txStarting.has(c)) {
        if (c.retiring) c.close();
        else if (!spare) spare = true;
        else {
          c.idleSince ||= now;
          if (now - c.idleSince >= IDLE_LINGER_MS) c.close();
          else nextCheck = Math.min(nextCheck, c.idleSince + IDLE_LINGER_MS - now);
        }
      } else c.idleSince = 0;
      if (c.closed) {
        this.conns.splice(i, 1);
        this.dropConnection(c);
      } else i++;
    }
    if (nextCheck !== Infinity && !this.trimTimer) {
      this.trimTimer = setTimeout(() => {
        this.trimTimer = null;
        this.pump();
      }, nextCheck);
      this.trimTimer.unref();
    }
  }

  private trimTimer: NodeJS.Timeout | null = null;

  /** A closed connection's transactions and watches are gone with it (the kernel dropped them). */
  private dropConnection(c: XenbusConnection): void {
    for (const tx of c.transactions) this.txConns.delete(tx);
    c.transactions.clear();
    if (c.watches.size === 0) return;
    const err = systemError('ECONNRESET', 'xenstore watch', 'its connection broke');
    for (const token of c.watches) {
      const w = this.watches.get(token);
      this.watches.delete(token);
      if (w) notify(w, err);
    }
    c.watches.clear();
  }

  private onReply(_conn: XenbusConnection, job: Job, type: number, payload: Buffer): void {
    if (type === OP_ERROR) {
      const raw = splitNul(payload)[0] || 'EIO';
      // oxenstored's quota error has no errno: it is what C xenstored calls ENOSPC.
      const code = raw === 'EQUOTA' ? 'ENOSPC' : raw;
      // Only a real errno name (xenstored's are); anything else is EIO, not a made-up code without errno.
      const known = /^E[A-Z0-9]+$/.test(code) && code in constants.errno;
      job.settle(systemError(known ? code : 'EIO', `xenstore ${opName(job.op)}`, job.path));
    } else {
      job.settle(null, payload);
    }
  }

  /** A transaction we gave up on would hold one of the domain's few transaction slots: end it. */
  private onLateReply(conn: XenbusConnection, op: number, type: number, payload: Buffer): void {
    if (op !== OP_TRANSACTION_START || type === OP_ERROR || conn.closed) return;
    let id: number;
    try {
      id = parseTxId(payload);
    } catch {
      return; // not a transaction id: nothing to end
    }
    conn.transactions.add(id);
    this.txConns.set(id, conn);
    this.request(OP_TRANSACTION_END, id, '', ['F']).catch(() => undefined);
  }

  private onWatchEvent(payload: Buffer): void {
    const [path, token] = splitNul(payload);
    const w = token !== undefined ? this.watches.get(token) : undefined;
    if (!w || path === undefined) return;
    try {
      w.callback(path);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }

  /** The store is unusable (or we close it): fail every request, tell every watch when it failed. */
  private shutdown(err: Error, notifyWatches: boolean): void {
    if (this.closed) return;
    this.closed = true;
    if (this.trimTimer) clearTimeout(this.trimTimer);
    this.trimTimer = null;
    const jobs = [...this.queue];
    this.queue.length = 0;
    for (const c of this.conns) c.fail(err);
    this.conns.length = 0;
    for (const j of jobs) j.settle(err);
    const watches = [...this.watches.values()];
    this.watches.clear();
    this.txConns.clear();
    if (notifyWatches) for (const w of watches) notify(w, err);
    this.onClose?.();
  }

  /** @internal the owner drops its reference (a fresh client is opened on next use). */
  onClose: (() => void) | null = null;

  /** One open connection carries the client's hold on the loop (requests on the wire hold their own). */
  private updateRef(): void {
    if (this.closed) return;
    const want = this.holds > 0 || this.queue.length > 0;
    let held = false;
    for (const c of this.conns) {
      c.keepAlive = want && !held && !c.closed;
      if (!c.closed) held = true;
    }
  }
}

function notify(w: WatchEntry, err: Error): void {
  try {
    w.onError?.(err);
  } catch (e) {
    process.nextTick(() => {
      throw e;
    });
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

export { parseDecimal };


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
