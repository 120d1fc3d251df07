/**
 * `transport: 'xen'`: connect/listen between domains by domid and port, one
 * fresh vchan per connection. The accept protocol on xenstore (docs/xen.md):
 *
 *   listener  /local/domain/<S>/data/xenring/<port>          = "<pid>"
 *   request   /local/domain/<S>/data/xenring/<port>/<C>-<nonce> = "<ringSize>" | "<refusal code>"
 *             perms n<C> b<S>: owned by C, writable by C and S only
 *   vchan     /local/domain/<S>/data/vchan/<C>/xenring-<port>-<nonce>/{ring-ref,event-channel}
 *
 * The client C creates its request node and sets its permissions in one
 * transaction (xenstore makes an unprivileged C the owner; a privileged one
 * sets itself), then watches the vchan path and its request. The server acts
 * only on a request owned by the domain its name claims and writable by
 * nobody else, publishes a vchan granted to C only (the ring size is the
 * client's hint capped by the listener's), waits for C to map it (with a
 * timeout: a domain that dies first sends nothing), deletes the vchan nodes
 * and the request and hands the link to the stream layer. A refusal is
 * written into the request itself (the client's node, the client's quota).
 * The request is the client's "still waiting": when it disappears the server
 * drops the offer and frees its grants at once.
 */
import type { CancelSignal } from '../cancel';
import { randomBytes } from 'node:crypto';
import { MAX_DOMID, MAX_PORT } from '../../constants';
import { codedError, invalidArgType, outOfRange, systemError } from '../../errors';
import { MAX_XEN_RING_SIZE, ringOrder } from '../../ring/ring_size';
import { Live, readPeerState } from '../../ring/vchan_state';
import type { RingLink, TransportAddress } from '../../ring/link';
import type { ConnectRequest, ListenRequest, Listener, PendingListener, Transport } from '../transport';
import { addonBindings, type XenBindings } from './bindings';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  REFUSAL,
  vchanClient,
  vchanServer,
  waitForClient,
  xenAddress,
  type XenLink,
} from './handshake';
import { validateDomid, validatePort } from '../../validators';
import { parseDecimal, xenStoreFor, type XenStore, type XsPerm, type XsWatch } from './xenstore';
import type { PoolOptions } from '../../pool/layout';
import { answerPool, offerNodes, offerPool, parseOffer, POOL_REF_NODE, POOL_SIZE_NODE, xenPoolOptions, type PeerPoolOffer } from './xen_pool';

/**
 * Bytes per direction when none is asked for. 64 KiB = 33 grants per
 * connection (as Qubes' qrexec): the kernel's gntalloc allows 1024 grants per
 * domain by default, so 1 MiB rings (513 grants) would allow one connection.
 */
export const XEN_DEFAULT_RING_SIZE = 1 << 16;
const EPHEMERAL_LO = 49152;

export interface XenConnectRequest extends ConnectRequest {
  /** ms to wait for the server to publish the vchan. Default 10 s. */
  timeout?: number;
  /** Page-reference pool (parsed options.pool); default {@link DEFAULT_XEN_POOL} per direction, private copies. */
  pool?: PoolOptions;
}

export interface XenListenRequest extends ListenRequest {
  /** ms an accepted client has to map its vchan. Default 10 s. */
  timeout?: number;
  /**
   * Offers published and not yet mapped, in total. Default 16 (at most
   * `backlog`). Requests beyond these limits wait (at most `backlog` of
   * them), then are refused with EAGAIN.
   */
  maxPending?: number;
  /** Offers published and not yet mapped, per client domain. Default 4. */
  maxPendingPerDomain?: number;
  /** Grants all pending offers may hold together (one offer is always allowed). Default 512, half of gntalloc's default limit. */
  maxPendingGrants?: number;
  /** Page-reference pool offered to each client (the ceiling of what it gets); default as for connect. */
  pool?: PoolOptions;
}

export const DEFAULT_MAX_PENDING = 16;
export const DEFAULT_MAX_PENDING_PER_DOMAIN = 4;
export const DEFAULT_MAX_PENDING_GRANTS = 512;

/** Grants a vchan of `size` bytes each way takes: control page + both rings. */
export const grantsFor = (size: number) => 1 + 2 * Math.max(1, size >> 12);

/** A port: integer 0..65535 (1.. to connect) or a name (one alphabet for every transport). */
export function normalizeXenPort(port: unknown, allowZero: boolean): number | string {
  return validatePort(port, 'options.port', allowZero);
}

function checkDomid(domid: unknown): number {
  return domid === undefined ? 0 : validateDomid(domid);
}

function checkTimeout(t: unknown): number {
  if (t === undefined) return DEFAULT_CONNECT_TIMEOUT_MS;
  if (typeof t !== 'number' || !(t >= 0) || !Number.isFinite(t)) throw outOfRange('options.timeout', 'a finite number >= 0', t);
  return t;
}

export const listenPath = (server: number, port: number | string) => `/local/domain/${server}/data/xenring/${port}`;
export const vchanPath = (server: number, client: number, port: number | string, nonce: string) =>
  `/local/domain/${server}/data/vchan/${client}/xenring-${port}-${nonce}`;

function refusal(code: string): Error {
  return systemError(code === 'EACCES' || code === 'ENOENT' || code === 'EPERM' ? 'ECONNREFUSED' : code, 'connect');
}

/** The store's quota errors, as the client sees them. */
function storeError(err: unknown): Error {
  const code = (err as NodeJS.ErrnoException).code ?? 'ECONNREFUSED';
  if (code === 'EQUOTA' || code === 'ENOSPC' || code === 'E2BIG') {
    return systemError('ENOSPC', 'connect', `xenstore quota (${code}): cannot create the request`);
  }
  return refusal(code);
}

function requestPerms(client: number, server: number): XsPerm[] {
  // Owner C, nobody else; the server may read it, write a refusal, delete it.
  return client === server ? [{ domid: client, perm: 'n' }] : [{ domid: client, perm: 'n' }, { domid: server, perm: 'b' }];
}

/**
 * A request node the server may act on: owned by the domain it names and
 * writable by nobody but that domain and the server.
 */
export function requestTrusted(perms: XsPerm[], client: number, server: number): boolean {
  if (perms.length === 0 || perms[0].domid !== client) return false;
  if (perms[0].perm === 'w' || perms[0].perm === 'b') return false; // everyone else may write
  return perms.slice(1).every((p) => p.perm === 'n' || p.perm === 'r' || p.domid === server || p.domid === client);
}

function connect(b: XenBindings, req: ConnectRequest, signal: CancelSignal): Promise<RingLink> {
  const run = async () => {
    const server = checkDomid(req.domid);
    const port = normalizeXenPort(req.port, false);
    const size = req.ringSize === undefined ? XEN_DEFAULT_RING_SIZE : 2 ** ringOrder(req.ringSize, MAX_XEN_RING_SIZE);
    const timeout = checkTimeout((req as XenConnectRequest).timeout);
    const xs = xenStoreFor(b);
    const self = await xs.ownDomid();
    const lpath = listenPath(server, port);
    // No listener (or not allowed to see it) is a refusal, as with TCP.
    try {
      if ((await xs.readOptional(lpath)) === null) throw systemError('ECONNREFUSED', 'connect');
    } catch (err) {
      throw refusal((err as NodeJS.ErrnoException).code ?? 'ECONNREFUSED');
    }
    const nonce = randomBytes(8).toString('hex');
    const request = `${lpath}/${self}-${nonce}`;
    // Our pool region is granted to the server before we ask (its refs go in
    // the request); a server that takes none of it makes us free it at once.
    const pool = xenPoolOptions((req as XenConnectRequest).pool);
    const offer = offerPool(b, server, pool);
    try {
      // Created with its permissions in one transaction: no other domain can
      // ever rewrite it (it would otherwise inherit the listener's "anyone").
      // The pool nodes, children of it, inherit them.
      await xs.transaction(
        async (tx) => {
          await xs.write(request, String(size), tx);
          await xs.setPerms(request, requestPerms(self, server), tx);
          for (const [name, value] of offerNodes(offer)) await xs.write(`${request}/${name}`, value, tx);
        },
        undefined,
        lpath, // requests of one listener conflict with each other: one at a time
      );
    } catch (err) {
      offer.region?.close();
      throw storeError(err);
    }
    try {
      signal.throwIfAborted();
      return await vchanClient(
        {
          domid: server,
          path: vchanPath(server, self, port, nonce),
          timeout,
          ext: true,
          port,
          request,
          signal,
          pool: { options: pool, offer },
        },
        b,
      );
    } catch (err) {
      offer.region?.close();
      throw err;
    } finally {
      // Deleted after we mapped (the server then sees a connected client) or
      // on failure (the server frees the offer at once).
      void xs.rmQuiet(request);
    }
  };
  return run().then((link: XenLink) => {
    if (!signal.aborted) return link;
    link.release(); // made while we were giving up
    throw signal.reason;
  });
}

/** Ports this process listens on, per bindings (the pid in the node cannot tell two of ours apart). */
const activePorts = new WeakMap<XenBindings, Set<string>>();

/** A checked request: who, how big, where its vchan goes. */
interface Job {
  name: string;
  request: string;
  client: number;
  size: number;
  vpath: string;
  grants: number;
  /** The client's pool offer (size 0: none). */
  pool: PeerPoolOffer;
}

interface PendingAccept {
  client: number;
  grants: number;
  link: XenLink | null;
  /** The client deleted its request before our vchan was published (see abandoned()). */
  withdrawn: boolean;
  /** Gives the offer up (client withdrew, listener closed). */
  readonly abort: AbortController;
}

export interface ListenerLimits {
  ringSize: number;
  backlog: number;
  timeout: number;
  maxPending: number;
  maxPendingPerDomain: number;
  maxPendingGrants: number;
  pool: PoolOptions;
}

class XenListener implements Listener {
  private watch: XsWatch | null = null;
  private owned = false;
  private published = false;
  private closed = false;
  private refed = true;
  private busy = false;
  private again = false;
  /** Requests being handled (by name). */
  private readonly active = new Map<string, PendingAccept | null>();
  /** Names we do not act on (unreadable, not trusted, refused): remembered until they leave the listing. */
  private readonly ignored = new Set<string>();
  /** Checked requests waiting for room under the pending limits (at most `backlog`). */
  private readonly deferred = new Map<string, Job>();
  private readonly pending = new Set<PendingAccept>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private pendingGrants = 0;

  constructor(
    private readonly b: XenBindings,
    private readonly xs: XenStore,
    readonly self: number,
    readonly port: number | string,
    private readonly only: number | undefined,
    private readonly limits: ListenerLimits,
    private readonly onLink: (link: RingLink) => void,
    private readonly onError: ((err: Error) => void) | undefined,
  ) {}

  get path(): string {
    return listenPath(this.self, this.port);
  }

  private get ports(): Set<string> {
    let s = activePorts.get(this.b);
    if (!s) activePorts.set(this.b, (s = new Set()));
    return s;
  }

  async start(): Promise<void> {
    const key = String(this.port);
    if (this.ports.has(key)) throw systemError('EADDRINUSE', 'listen', key);
    this.ports.add(key);
    this.owned = true;
    const existing = await this.xs.readOptional(this.path);
    if (existing !== null) {
      // A live listener in this domain owns it; a dead one (crash) left a stale node.
      const pid = parseDecimal(existing, 1, 0x7fffffff);
      if (pid !== null && pid !== process.pid && pidAlive(pid)) throw systemError('EADDRINUSE', 'listen', key);
      await this.xs.rmQuiet(this.path);
    }
    if (this.closed) throw systemError('ECANCELED', 'listen');
    this.published = true;
    await this.publish();
    this.watch = await this.xs.watch(this.path, () => void this.scan(), true, (err) => this.die(err));
    if (!this.refed) this.xs.release();
    if (this.closed) this.dropWatch();
  }

  private async publish(): Promise<void> {
    // Clients must create children here; xenstore makes each child's creator its
    // owner and copies the rest of these perms, so an explicit entry for us keeps
    // the children readable by the server.
    const perms: XsPerm[] =
      this.only === undefined
        ? [{ domid: this.self, perm: 'b' }]
        : [
            { domid: this.self, perm: 'n' },
            { domid: this.only, perm: 'b' },
            { domid: this.self, perm: 'b' },
          ];
    await this.xs.transaction(
      async (tx) => {
        await this.xs.write(this.path, String(process.pid), tx);
        await this.xs.setPerms(this.path, perms, tx);
      },
      undefined,
      this.path,
    );
  }

  /** The listener can no longer hear requests: tell the Server, stop. */
  private die(err: Error): void {
    if (this.closed) return;
    this.watch = null; // the store dropped it
    this.close();
    this.onError?.(err);
  }

  address(): TransportAddress {
    return xenAddress(this.self, this.port);
  }

  private async scan(): Promise<void> {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    try {
      do {
        this.again = false;
        if (this.closed) return;
        let names: string[];
        try {
          names = await this.xs.directoryAll(this.path);
        } catch (err) {
          if (this.closed) continue;
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
            this.retryLater(); // out of fds or memory, a stuck store: waiting clients are not forgotten
            continue;
          }
          // Someone removed our node (any allowed domain may): put it back, or say we are deaf.
          await this.publish().catch((e: Error) => this.die(e));
          names = [];
        }
        const present = new Set(names);
        for (const n of this.ignored) if (!present.has(n)) this.ignored.delete(n);
        for (const n of this.deferred.keys()) if (!present.has(n)) this.deferred.delete(n); // the client gave up
        for (const [n, entry] of this.active) {
          if (!present.has(n) && entry) this.abandoned(entry);
        }
        for (const name of names) {
          if (this.closed) break;
          if (this.ignored.has(name) || this.active.has(name) || this.deferred.has(name)) continue;
          this.active.set(name, null);
          void this.accept(name).finally(() => this.active.delete(name));
        }
      } while (this.again);
    } finally {
      this.busy = false;
    }
  }

  /**
   * Lists the requests again after a pause that grows while failures go on
   * (10 ms to 1 s, as the local listener backs off on EMFILE); one timer at
   * a time. A request that is still there is then tried again.
   */
  private retryLater(): void {
    if (this.closed || this.retryTimer) return;
    this.retryMs = Math.min(1000, Math.max(10, this.retryMs * 2));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.scan();
    }, this.retryMs);
    this.retryTimer.unref();
  }

  private retryTimer: NodeJS.Timeout | null = null;
  private retryMs = 0;

  /** The client deleted its request: drop the offer now, unless it connected first. */
  private abandoned(entry: PendingAccept): void {
    // Our vchan is not published as far as we know yet: a fast client may
    // have seen its nodes before our last write's reply came, connected and
    // cleaned up. offer() decides once the link is ours (aborting here lost
    // such a connection: "accepted 3 of 4" in the lab, now and then).
    if (entry.link === null) {
      entry.withdrawn = true;
      return;
    }
    if (this.clientConnected(entry.link)) return; // it mapped first, then cleaned up: the accept completes
    entry.abort.abort(systemError('ECONNABORTED', 'accept', 'client withdrew its request'));
  }

  private clientConnected(link: XenLink): boolean {
    try {
      return readPeerState(link.endpoint).live === Live.Connected;
    } catch {
      return false;
    }
  }

  private async accept(name: string): Promise<void> {
    const request = `${this.path}/${name}`;
    const m = /^([0-9]{1,5})-([0-9a-f]{16})$/.exec(name);
    const client = m ? parseDecimal(m[1], 0, MAX_DOMID) : null;
    if (!m || client === null) {
      this.ignored.add(name);
      await this.xs.rmQuiet(request);
      return;
    }
    const nonce = m[2];
    let hint: string;
    let poolNodes: [string | null, string | null];
    try {
      // Asked at once (one round trip of latency, not four); the values are
      // used only once the permissions show the request is trustworthy.
      const [perms, h, size, ref] = await Promise.all([
        this.xs.getPerms(request),
        this.xs.read(request),
        this.xs.readOptional(`${request}/${POOL_SIZE_NODE}`),
        this.xs.readOptional(`${request}/${POOL_REF_NODE}`),
      ]);
      if (!requestTrusted(perms, client, this.self)) {
        // Not the named domain's, or writable by others: never act on it.
        this.ignored.add(name);
        await this.xs.rmQuiet(request);
        return;
      }
      hint = h;
      poolNodes = [size, ref];
      this.retryMs = 0;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return; // withdrawn meanwhile
      // Unreadable for us: not ours, do not ask again. Anything else (EMFILE,
      // ENOMEM, EAGAIN, a stuck reply) passes: ask again after a pause, so the
      // client is served or refused, not left to its timeout.
      if (code === 'EACCES' || code === 'EPERM') this.ignored.add(name);
      else this.retryLater();
      return;
    }
    if (REFUSAL.test(hint)) {
      this.ignored.add(name); // refused already, waiting for the client to read it
      return;
    }
    const vpath = vchanPath(this.self, client, this.port, nonce);
    // The listener's ring size is the ceiling; a client may ask for less.
    let size = this.limits.ringSize;
    if (hint !== '') {
      const n = parseDecimal(hint, 0, MAX_XEN_RING_SIZE);
      try {
        if (n === null) throw new Error('bad ring size');
        size = Math.min(size, 2 ** ringOrder(n, MAX_XEN_RING_SIZE));
      } catch {
        await this.refuse(name, request, 'EINVAL');
        return;
      }
    }
    if (this.closed || (this.only !== undefined && client !== this.only)) {
      await this.refuse(name, request, 'ECONNREFUSED');
      return;
    }
    let pool: PeerPoolOffer;
    try {
      pool = parseOffer(...poolNodes);
    } catch {
      await this.refuse(name, request, 'EPROTO');
      return;
    }
    const job: Job = { name, request, client, size, vpath, grants: grantsFor(size), pool };
    if (this.admits(client, job.grants)) {
      await this.offer(job);
    } else if (this.deferred.size < this.limits.backlog) {
      // Over a limit: the request waits in the client's own node, costing us nothing.
      this.deferred.set(name, job);
    } else {
      await this.refuse(name, request, 'EAGAIN'); // the backlog is full
    }
  }

  /** Starts deferred requests while the limits allow, oldest first. */
  private startDeferred(): void {
    for (const [name, job] of this.deferred) {
      if (this.closed) return;
      if (!this.admits(job.client, job.grants)) continue;
      this.deferred.delete(name);
      this.active.set(name, null);
      void this.offer(job).finally(() => this.active.delete(name));
    }
  }

  /** Publishes a vchan for the request and hands the link on once the client mapped it. */
  private async offer(job: Job): Promise<void> {
    const { name, request, client, size, vpath, grants } = job;
    const entry: PendingAccept = { client, grants, link: null, withdrawn: false, abort: new AbortController() };
    const { signal } = entry.abort;
    this.pending.add(entry);
    this.pendingGrants += grants;
    this.active.set(name, entry);
    try {
      // The client's region mapped, ours granted; vchanServer owns them from here.
      const pool = await answerPool(this.b, client, this.limits.pool, job.pool);
      entry.link = await vchanServer({ domid: client, path: vpath, readSize: size, writeSize: size, ext: true, port: this.port, pool, freshDirectory: true }, this.b);
      signal.throwIfAborted();
      // Withdrawn while we published: connected already, or gone for good.
      if (entry.withdrawn && !this.clientConnected(entry.link)) throw systemError('ECONNABORTED', 'accept', 'client withdrew its request');
      await waitForClient(entry.link, this.limits.timeout, signal, this.b);
      await entry.link.unpublish();
      this.drop(entry);
      void this.xs.rmQuiet(request);
      if (this.closed) throw systemError('ECANCELED', 'accept');
    } catch (err) {
      this.drop(entry);
      entry.link?.release(); // grants, channel and vchan nodes, now
      if (!entry.link && !this.closed && !signal.aborted) await this.refuse(name, request, (err as NodeJS.ErrnoException).code ?? 'ECONNREFUSED');
      else void this.xs.rmQuiet(request);
      return;
    }
    // The link is the stream layer's now: an exception from a 'connection'
    // handler must surface as net's does (uncaught, from the loop), not
    // release the link under the live socket.
    const link = entry.link;
    try {
      this.onLink(link);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }

  /** Room for one more offer: per domain, in total, and in grants (one offer always fits). */
  private admits(client: number, grants: number): boolean {
    const l = this.limits;
    let mine = 0;
    for (const e of this.pending) if (e.client === client) mine++;
    if (mine >= l.maxPendingPerDomain || this.pending.size >= l.maxPending) return false;
    return this.pending.size === 0 || this.pendingGrants + grants <= l.maxPendingGrants;
  }

  private drop(entry: PendingAccept): void {
    if (!this.pending.delete(entry)) return;
    this.pendingGrants -= entry.grants;
    if (this.deferred.size > 0) process.nextTick(() => this.startDeferred());
  }

  /**
   * Writes the refusal into the client's own request node (its quota, not
   * ours); the client reads it and deletes the node. If it never does, we
   * delete it after the connect timeout.
   */
  private async refuse(name: string, request: string, code: string): Promise<void> {
    this.ignored.add(name);
    try {
      await this.xs.write(request, REFUSAL.test(code) ? code : 'ECONNREFUSED');
    } catch {
      await this.xs.rmQuiet(request);
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      void this.xs.rmQuiet(request);
    }, this.limits.timeout || DEFAULT_CONNECT_TIMEOUT_MS);
    t.unref();
    this.timers.add(t);
  }

  private dropWatch(): void {
    if (this.watch && !this.refed) this.xs.hold(); // watch.close() drops the hold it took
    this.watch?.close();
    this.watch = null;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.owned) this.ports.delete(String(this.port));
    if (!this.published) return; // the node (if any) is someone else's
    this.dropWatch();
    // Deletes the pending requests with it: waiting clients are refused at once.
    void this.xs.rmQuiet(this.path);
    this.deferred.clear();
    for (const e of this.pending) {
      e.abort.abort(systemError('ECANCELED', 'accept'));
    }
    for (const t of this.timers) {
      clearTimeout(t);
    }
    this.timers.clear();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  ref(): void {
    if (this.refed) return;
    this.refed = true;
    if (this.watch) this.xs.hold();
  }

  unref(): void {
    if (!this.refed) return;
    this.refed = false;
    if (this.watch) this.xs.release();
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function positive(v: unknown, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw outOfRange(`options.${name}`, 'a positive integer', v);
  return v;
}

/** A random port from the ephemeral range (as the kernel picks for TCP port 0). */
const ephemeralPort = () => EPHEMERAL_LO + Math.floor(Math.random() * (MAX_PORT - EPHEMERAL_LO + 1));

function listen(
  b: XenBindings,
  req: ListenRequest,
  onLink: (link: RingLink) => void,
  signal: AbortSignal,
  onError?: (err: Error) => void,
): PendingListener {
  // What address() reports while xenstore is being set up (net has bound by
  // the time listen() returns): the port (a free one is picked now for 0) and
  // our domid. listen() itself never waits for it: address() asks only when
  // the asynchronous read has not answered yet (dom0 knows it at once; a
  // guest reads it from xenstore once per process, synchronously with a short
  // bound, see own_domid.ts; null only if that read failed).
  const bound: { self: number | null; port: number | string; xs?: XenStore } = { self: null, port: 0 };
  const run = async (): Promise<XenListener> => {
    const x = req as XenListenRequest;
    const only = req.domid === undefined ? undefined : checkDomid(req.domid);
    const asked = normalizeXenPort(req.port, true);
    const anyPort = asked === 0;
    let port = anyPort ? ephemeralPort() : asked;
    const backlog = req.backlog === undefined ? 511 : Math.max(1, Math.floor(req.backlog));
    const limits: ListenerLimits = {
      ringSize: req.ringSize === undefined ? XEN_DEFAULT_RING_SIZE : 2 ** ringOrder(req.ringSize, MAX_XEN_RING_SIZE),
      backlog,
      timeout: checkTimeout(x.timeout),
      maxPending: Math.min(backlog, positive(x.maxPending, 'maxPending', DEFAULT_MAX_PENDING)),
      maxPendingPerDomain: positive(x.maxPendingPerDomain, 'maxPendingPerDomain', DEFAULT_MAX_PENDING_PER_DOMAIN),
      maxPendingGrants: positive(x.maxPendingGrants, 'maxPendingGrants', DEFAULT_MAX_PENDING_GRANTS),
      pool: xenPoolOptions(x.pool),
    };
    const xs = (bound.xs = xenStoreFor(b));
    bound.port = port;
    bound.self = xs.knownDomid;
    const self = await xs.ownDomid();
    bound.self = self;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        if (attempt > 64) throw systemError('EADDRINUSE', 'listen', 'no free port');
        bound.port = port = ephemeralPort();
      }
      if (anyPort && (await xs.readOptional(listenPath(self, port))) !== null) continue;
      const l = new XenListener(b, xs, self, port, only, limits, onLink, onError);
      try {
        await l.start();
        return l;
      } catch (err) {
        l.close();
        if (!anyPort || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      }
    }
  };
  const pending: PendingListener = run().then((l) => {
    if (!signal.aborted) return l;
    l.close(); // came up after the server was closed
    throw signal.reason;
  });
  pending.address = () => {
    if (bound.self === null && bound.xs) bound.self = bound.xs.knownDomid ?? b.knownDomid?.() ?? null;
    return bound.self === null ? null : xenAddress(bound.self, bound.port);
  };
  return pending;
}

/** A Xen transport over the given bindings (the addon by default; fakes in tests). */
export function createXenTransport(b: XenBindings = addonBindings): Transport {
  return {
    name: 'xen',
    connect: (req, signal) => connect(b, req, signal),
    listen: (req, onLink, signal, onError) => listen(b, req, onLink, signal, onError),
  };
}

/** The Xen transport (grants + event channels + xenstore). */
export const xenTransport: Transport = createXenTransport();
