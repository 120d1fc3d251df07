/**
 * The libxenvchan handshake, restated (see docs/xen.md and
 * ../shared/research/xen-anchors.md §1): the server grants the control page
 * and the ring pages to the client domain, binds an unbound event channel and
 * publishes `ring-ref` + `event-channel` in one xenstore transaction; the
 * client maps the pages (left ring read/write, right ring read-only), binds
 * the channel, sets `cli_live = 1`, asks to hear about data and kicks.
 *
 * Both sides are wire-compatible with libxenvchan when `ext` is false. Every
 * value read from the peer (xenstore strings, orders, grant list, live bytes)
 * is validated before use.
 */
import type { CancelSignal } from '../cancel';
import { PAGE_SHIFT, PAGE_SIZE } from '../../constants';
import { codedError, invalidArgType, outOfRange, systemError } from '../../errors';
import { UV_READABLE, type FdWatcher, type RingEndpoint, type SharedMapping } from '../../native';
import { CONTROL, Live, clientConnect, readPeerState } from '../../ring/vchan_state';
import type { RingLink, TransportAddress } from '../../ring/link';
import { addonBindings, type XenBindings } from './bindings';
import { devicesUsable } from './native_xen';
import { validateDomid } from '../../validators';
import { deadline, Wakeup } from './wait';
import { parseDecimal, xenStoreFor, type XenStore, type XsPerm, type XsWatch } from './xenstore';
import {
  acceptPool,
  holdRingGrants,
  POOL_PEER_SIZE_NODE,
  POOL_REF_NODE,
  POOL_SIZE_NODE,
  retryEagain,
  type PoolOffer,
  type XenPoolSetup,
} from './xen_pool';
import type { PoolOptions } from '../../pool/layout';
import type { PoolLink } from '../../pool/pool_link';

const OFF_LEFT_ORDER = CONTROL.leftOrder;
const OFF_RIGHT_ORDER = CONTROL.rightOrder;
const OFF_CLI_LIVE = CONTROL.cliLive;
const OFF_SRV_LIVE = CONTROL.srvLive;
const OFF_GRANTS = CONTROL.grants;
/** xenring's extension area (half-close flags) starts here in the control page. */
const EXT_AREA = CONTROL.extMagic;
export const MIN_ORDER = 10;
export const MAX_ORDER = 20;
const MAX_RING_SIZE = 1 << MAX_ORDER;
/** Grant refs 0..7 are reserved by Xen (GNTTAB_NR_RESERVED_ENTRIES). */
const FIRST_GRANT_REF = 8;

export const LIVE_GONE = Live.Gone;
export const LIVE_CONNECTED = Live.Connected;
export const LIVE_WAITING = Live.Waiting;

/** Default time a client waits for the server's xenstore nodes. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** In-page ring slot for orders 10 and 11, null for out-of-page rings. */
function inPageOffset(order: number): number | null {
  return order === 10 ? 1024 : order === 11 ? 2048 : null;
}

function pagesOf(order: number): number {
  return order >= PAGE_SHIFT ? 1 << (order - PAGE_SHIFT) : 0;
}

function minOrder(size: number): number {
  let o = PAGE_SHIFT;
  while (size > 1 << o) o++;
  return o;
}

/**
 * Ring orders as libxenvchan's server picks them from the minimum sizes
 * (left = client→server = our read side). With `ext` both rings go out of
 * page so the extension area of the control page stays free.
 */
export function chooseOrders(leftMin: number, rightMin: number, ext: boolean): [number, number] {
  for (const [name, v] of [['readSize', leftMin], ['writeSize', rightMin]] as const) {
    if (typeof v !== 'number') throw invalidArgType(`options.${name}`, 'of type number', v);
    if (!Number.isInteger(v) || v < 0 || v > MAX_RING_SIZE) throw outOfRange(`options.${name}`, `>= 0 and <= ${MAX_RING_SIZE}`, v);
  }
  let left = minOrder(leftMin);
  let right = minOrder(rightMin);
  if (ext) return [left, right];
  if (leftMin <= 1024 && rightMin <= 2048) [left, right] = [10, 11];
  else if (leftMin <= 2048 && rightMin <= 1024) [left, right] = [11, 10];
  else if (leftMin <= 2048) left = 11;
  else if (rightMin <= 2048) right = 11;
  return [left, right];
}

/**
 * Checks orders read from a server's control page, as libxenvchan's client
 * does plus the grant-list bound: each in [10, 20], two in-page rings not in
 * the same slot, the grant list ending before any in-page ring (and before the
 * extension area with `ext`, which also requires out-of-page rings).
 * Returns the number of grant refs that follow the header.
 */
export function validateOrders(left: number, right: number, ext: boolean): number {
  const bad = (why: string) => systemError('EPROTO', 'vchan connect', why);
  for (const o of [left, right]) {
    if (!Number.isInteger(o) || o < MIN_ORDER || o > MAX_ORDER) throw bad(`ring order ${o} outside [10, 20]`);
  }
  if (left === right && left < PAGE_SHIFT) throw bad('both rings claim the same in-page slot');
  if (ext && (left < PAGE_SHIFT || right < PAGE_SHIFT)) throw bad('xenring extension needs out-of-page rings');
  const count = pagesOf(left) + pagesOf(right);
  let limit = ext ? EXT_AREA : PAGE_SIZE;
  for (const o of [left, right]) {
    const off = inPageOffset(o);
    if (off !== null) limit = Math.min(limit, off);
  }
  if (OFF_GRANTS + 4 * count > limit) throw bad('grant list overlaps an in-page ring');
  return count;
}

/** Parses a grant ref or event-channel port published by the peer. */
export function parsePeerNumber(s: string | null, what: 'ring-ref' | 'event-channel'): number {
  const lo = what === 'ring-ref' ? FIRST_GRANT_REF : 1;
  const n = s === null ? null : parseDecimal(s, lo, 0xffffffff);
  if (n === null) throw systemError('EPROTO', 'vchan connect', `invalid ${what} '${s}'`);
  return n;
}

const checkDomid = (domid: unknown): number => validateDomid(domid);

function checkPath(path: unknown): string {
  if (typeof path !== 'string') throw invalidArgType('options.path', 'of type string', path);
  if (!/^\/?[A-Za-z0-9_@-]+(\/[A-Za-z0-9_@-]+)*$/.test(path) || path.length > 1024) {
    throw codedError('ERR_INVALID_ARG_VALUE', `The xenstore path '${path}' is not valid`);
  }
  return path;
}

function quiet(fn: () => void): void {
  try {
    fn();
  } catch {
    /* best effort on cleanup paths */
  }
}

/** How long a grant map keeps retrying while the granting domain pages its memory in. */
export const GNT_MAP_RETRY_MS = 1000;

/**
 * gntdev's mmap fails with EAGAIN while a granted page is paged out by its
 * domain; libxengnttab sleeps 1 ms and retries. We retry on timers instead, so
 * the loop keeps running, with a growing delay and a bound of
 * {@link GNT_MAP_RETRY_MS} (then the EAGAIN is the caller's).
 */
export function gntMapRetry(
  b: XenBindings,
  domid: number,
  refs: number[],
  writable: boolean,
  notifyOffset: number,
  notifyPort: number,
  budgetMs = GNT_MAP_RETRY_MS,
): Promise<SharedMapping> {
  return retryEagain(() => b.xen.gntMap(domid, refs, writable, notifyOffset, notifyPort), budgetMs);
}

/** The per-connection resources; release() frees each once, in libxenvchan's order. */
export class XenLink implements RingLink {
  readonly hangupFd = null;
  private released = false;
  /** Runs once after release (transport bookkeeping). */
  onRelease: (() => void) | null = null;
  /** The page-reference pool both xenring peers agreed on (null: none, or a plain vchan peer). */
  readonly pool: PoolLink | null;

  constructor(
    readonly endpoint: RingEndpoint,
    readonly waitFd: number,
    readonly port: number,
    private readonly mappings: SharedMapping[],
    readonly ext: boolean,
    readonly local: TransportAddress,
    readonly remote: TransportAddress,
    private xsPath: string | null,
    private readonly xs: XenStore,
    private readonly b: XenBindings,
    private readonly poolSetup: XenPoolSetup | null = null,
    /** Gives the ring grants we made back to the pool budget (xen_pool.ts). */
    private readonly dropRingGrants: (() => void) | null = null,
  ) {
    let pool: PoolLink | null = null;
    try {
      pool = poolSetup?.link() ?? null;
    } catch {
      // Queues that cannot open on pages we mapped: go on without a pool
      // (the peer's payloads then wait in its pool and it falls back to the ring).
      quiet(() => poolSetup?.close());
    }
    this.pool = pool;
  }

  /** Deletes the published xenstore nodes now (the client has mapped everything, pool included). */
  unpublish(): Promise<void> {
    this.poolSetup?.dropList();
    const p = this.xsPath;
    this.xsPath = null;
    return p ? this.xs.rmQuiet(p) : Promise.resolve();
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    // Own live byte to 0 and wake the peer, then unmap: the kernel's
    // unmap-notify does the same if we die instead of getting here.
    quiet(() => this.endpoint.setLive(LIVE_GONE));
    quiet(() => this.b.xen.evtchnNotify(this.waitFd, this.port));
    quiet(() => this.endpoint.close());
    for (const m of this.mappings) quiet(() => m.unmap());
    // Our pool grants go back once no loaned Buffer holds them; views of the
    // peer's pool the user holds stay mapped (and readable) until collected.
    quiet(() => this.poolSetup?.close());
    this.dropRingGrants?.();
    quiet(() => this.b.xen.evtchnUnbind(this.waitFd, this.port));
    quiet(() => this.b.closeFd(this.waitFd));
    void this.unpublish();
    const cb = this.onRelease;
    this.onRelease = null;
    cb?.();
  }
}

/** A Xen endpoint's address: the domain, and the port. */
export function xenAddress(domid: number, port: number | string): TransportAddress {
  return { address: String(domid), family: 'xen', port };
}

export interface VchanServerOptions {
  /** The only domain allowed to connect (grants and the event channel are for it). */
  domid: number;
  /** xenstore directory, e.g. `/local/domain/<self>/data/vchan/<domid>/<port>`. */
  path: string;
  /** Minimum bytes of the client→server ring. Default 65536. */
  readSize?: number;
  /** Minimum bytes of the server→client ring. Default 65536. */
  writeSize?: number;
  /** @internal xenring extension (half-close); both peers must be xenring. */
  ext?: boolean;
  /** @internal address reported as the local/remote `port`. */
  port?: number | string;
  /**
   * @internal `path` is a new directory of the transport's own, read only by
   * a xenring client: published without a transaction (see publishFresh).
   */
  freshDirectory?: boolean;
  /**
   * @internal the pool agreed with a xenring client (xen_pool.ts answerPool):
   * its nodes are published with ring-ref; the link owns the setup, and
   * frees it if the server fails.
   */
  pool?: { setup: XenPoolSetup; nodes: [string, string][] } | null;
}

/**
 * Publishes a vchan's nodes in a new directory of the transport's own, with
 * no transaction: the directory gets the vchan's permissions first (its
 * nodes inherit them), event-channel is written last, and a xenring client
 * reads the others only once it sees event-channel. Transactions creating
 * nodes in one directory conflict in xenstored and so ran one at a time: with
 * none, concurrent set-ups no longer queue behind each other here.
 */
async function publishFresh(xs: XenStore, path: string, perms: XsPerm[], nodes: [string, string][]): Promise<void> {
  await xs.write(path, '');
  await xs.setPerms(path, perms);
  await Promise.all(nodes.filter(([name]) => name !== 'event-channel').map(([name, value]) => xs.write(`${path}/${name}`, value)));
  const last = nodes.find(([name]) => name === 'event-channel');
  if (last) await xs.write(`${path}/${last[0]}`, last[1]);
}

/**
 * Publishes a vchan for `domid` and resolves with its link as soon as the
 * nodes are written (peerState() is LIVE_WAITING until the client maps it;
 * the client's connect arrives as an event). Like libxenvchan, the server may
 * write before the client is there.
 */
export async function vchanServer(options: VchanServerOptions, b: XenBindings = addonBindings): Promise<XenLink> {
  const setup = options.pool?.setup ?? null;
  let link: XenLink;
  try {
    link = await serveVchan(options, b);
  } catch (err) {
    quiet(() => setup?.close()); // whatever failed, before or after the devices were touched
    throw err;
  }
  // Only a xenring client can use a pool: a plain vchan link never holds one.
  if (setup && !link.ext) quiet(() => setup.close());
  return link;
}

async function serveVchan(options: VchanServerOptions, b: XenBindings): Promise<XenLink> {
  const domid = checkDomid(options.domid);
  const path = checkPath(options.path);
  const ext = options.ext === true;
  const [leftOrder, rightOrder] = chooseOrders(options.readSize ?? 65536, options.writeSize ?? 65536, ext);
  const xs = xenStoreFor(b);
  const self = await xs.ownDomid();
  const xen = b.xen;

  const evfd = xen.evtchnOpen();
  let port = -1;
  let mapping: SharedMapping | null = null;
  let endpoint: RingEndpoint | null = null;
  let dropRingGrants: (() => void) | null = null;
  try {
    port = xen.evtchnBindUnbound(evfd, domid);
    xen.evtchnUnmask(evfd, port);
    const pl = pagesOf(leftOrder);
    const pr = pagesOf(rightOrder);
    // One allocation: control page, then left pages, then right pages. The
    // kernel clears srv_live and signals the port when it goes away.
    const share = xen.gntShare(domid, 1 + pl + pr, true, OFF_SRV_LIVE, port);
    mapping = share.mapping;
    dropRingGrants = holdRingGrants(b, share.refs.length);
    if (pl + pr > 0) {
      const list = Buffer.alloc(4 * (pl + pr));
      share.refs.slice(1).forEach((r, i) => list.writeUInt32LE(r, 4 * i));
      xen.poke(mapping, OFF_GRANTS, list);
    }
    endpoint = new b.RingEndpoint({
      role: 'server',
      init: true,
      ext,
      control: mapping,
      controlOffset: 0,
      left: { mapping, offset: inPageOffset(leftOrder) ?? PAGE_SIZE, order: leftOrder },
      right: { mapping, offset: inPageOffset(rightOrder) ?? PAGE_SIZE * (1 + pl), order: rightOrder },
    });
    endpoint.setNotifier(xen.evtchnNotifier(evfd, port));
    const ringRef = share.refs[0];
    const perms = [
      { domid: self, perm: 'n' as const },
      { domid, perm: 'r' as const },
    ];
    const nodes: [string, string][] = [['ring-ref', String(ringRef)], ['event-channel', String(port)]];
    if (ext && options.pool) nodes.push(...options.pool.nodes);
    if (options.freshDirectory) await publishFresh(xs, path, perms, nodes);
    else {
      await xs.transaction(
        async (tx) => {
          for (const [name, value] of nodes) {
            await xs.write(`${path}/${name}`, value, tx);
            await xs.setPerms(`${path}/${name}`, perms, tx);
          }
        },
        undefined,
        path.slice(0, path.lastIndexOf('/')), // vchans published in one directory conflict: one at a time
      );
    }
  } catch (err) {
    if (endpoint) quiet(() => endpoint!.close());
    if (mapping) quiet(() => mapping!.unmap());
    dropRingGrants?.();
    if (port >= 0) quiet(() => xen.evtchnUnbind(evfd, port));
    quiet(() => b.closeFd(evfd));
    await xs.rmQuiet(path);
    throw err;
  }
  const tag = options.port ?? path;
  const setup = ext ? options.pool?.setup ?? null : null;
  return new XenLink(endpoint, evfd, port, [mapping], ext, xenAddress(self, tag), xenAddress(domid, tag), path, xs, b, setup, dropRingGrants);
}

export interface VchanClientOptions {
  /** The server's domain. */
  domid: number;
  /** The xenstore directory the server published. */
  path: string;
  /** How long to wait for the server's nodes (ms); 0 = they must exist now. Default 10 s. */
  timeout?: number;
  /** @internal */
  ext?: boolean;
  /** @internal */
  port?: number | string;
  /** @internal the accept protocol's request node: a refusal is written there. */
  request?: string;
  /** Aborting it gives the connect up (with the signal's reason) and frees what it took. */
  signal?: CancelSignal;
  /**
   * @internal the pool this xenring client offered in its request (xen_pool.ts
   * offerPool): the server's answer is read beside ring-ref. The offer's
   * region stays the caller's to close if this fails.
   */
  pool?: { options: PoolOptions; offer: PoolOffer } | null;
}

/** Reads the server's answer to our pool offer (xen_pool.ts acceptPool maps its region). */
async function readPoolAnswer(xs: XenStore, path: string): Promise<{ size: string | null; peerSize: string | null; ref: string | null }> {
  const [size, peerSize, ref] = await Promise.all(
    [POOL_SIZE_NODE, POOL_PEER_SIZE_NODE, POOL_REF_NODE].map((n) => readVisible(xs, `${path}/${n}`)),
  );
  return { size, peerSize, ref };
}

/**
 * A node the server has not written yet reads as ENOENT, or as EACCES from
 * another domain when its parent is not readable for us: both mean "not yet".
 */
async function readVisible(xs: XenStore, path: string, signal?: AbortSignal): Promise<string | null> {
  try {
    return await xs.readOptional(path, 0, { signal });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EACCES') return null;
    throw err;
  }
}

/** A refusal as the accept protocol writes it: an errno name. */
export const REFUSAL = /^E[A-Z0-9]{1,15}$/;

/**
 * Resolves with the published [ring-ref, event-channel], waiting on a
 * xenstore watch. With `opts.request` (the accept protocol) the client's
 * request node is watched too: a refusal code written there, or the node
 * deleted before the vchan appeared, ends the wait at once. Bounded by
 * `timeout` (ETIMEDOUT), cancelled by `opts.signal`.
 */
async function waitForNodes(xs: XenStore, path: string, timeout: number, opts: VchanClientOptions): Promise<[number, number]> {
  const wait = deadline(opts.signal, timeout, () => systemError('ETIMEDOUT', 'connect', path));
  const { signal } = wait;
  const changed = new Wakeup();
  const watches: XsWatch[] = [];
  // The wait holds the event loop (a connect in progress), unless the socket
  // was unref()'d meanwhile: then, as net's connecting handle, it does not.
  let held = false;
  const follow = () => {
    const want = opts.signal?.refed !== false;
    if (want === held) return;
    held = want;
    if (want) xs.hold();
    else xs.release();
  };
  follow();
  opts.signal?.onRefChange?.(follow);
  try {
    if (timeout > 0) {
      // Each watch fires once when registered: the first check needs no other start.
      // event-channel only, not the whole directory: the server writes it last
      // (or in one transaction with ring-ref), and its other writes need no look.
      const paths = opts.request ? [`${path}/event-channel`, opts.request] : [`${path}/event-channel`];
      const made = await Promise.allSettled(paths.map((p) => xs.watch(p, () => changed.set(), false, (err) => wait.abort(err))));
      for (const m of made) if (m.status === 'fulfilled') watches.push(m.value);
      for (const m of made) if (m.status === 'rejected') throw m.reason;
    } else {
      changed.set();
    }
    for (;;) {
      await changed.wait(signal);
      // The server writes both keys in one transaction: seeing one means both.
      const ev = await readVisible(xs, `${path}/event-channel`, signal);
      if (ev !== null) {
        const ref = await xs.readOptional(`${path}/ring-ref`, 0, { signal });
        return [parsePeerNumber(ref, 'ring-ref'), parsePeerNumber(ev, 'event-channel')];
      }
      if (opts.request) {
        const state = await xs.readOptional(opts.request, 0, { signal });
        if (state === null) throw systemError('ECONNREFUSED', 'connect', 'request withdrawn');
        if (REFUSAL.test(state)) throw systemError(state, 'connect');
      }
      if (timeout === 0) throw systemError('ECONNREFUSED', 'connect', path);
    }
  } finally {
    wait.dispose();
    for (const w of watches) w.close();
    opts.signal?.offRefChange?.(follow);
    if (held) xs.release();
  }
}

/** Maps the server's vchan at `path` in domain `domid` (libxenvchan's client role). */
export async function vchanClient(options: VchanClientOptions, b: XenBindings = addonBindings): Promise<XenLink> {
  const domid = checkDomid(options.domid);
  const path = checkPath(options.path);
  const ext = options.ext === true;
  const timeout = options.timeout ?? DEFAULT_CONNECT_TIMEOUT_MS;
  if (typeof timeout !== 'number' || !(timeout >= 0)) throw outOfRange('options.timeout', '>= 0', timeout);
  // A server can only publish under its own home (or as dom0 anywhere).
  if (path.startsWith('/local/domain/') && !path.startsWith(`/local/domain/${domid}/`)) {
    throw codedError('ERR_INVALID_ARG_VALUE', `path '${path}' is not under /local/domain/${domid}/`);
  }
  const xs = xenStoreFor(b);
  const xen = b.xen;
  const self = await xs.ownDomid();
  const [ringRef, remotePort] = await waitForNodes(xs, path, timeout, options);
  // The server's pool answer, written with ring-ref, is read alongside the owner check (one round trip of latency).
  const poolAnswer = ext && options.pool ? readPoolAnswer(xs, path) : null;
  poolAnswer?.catch(() => undefined); // awaited below, unless the owner check fails first
  // The nodes must belong to the server domain (libxenvchan sets itself as owner).
  const owner = (await xs.getPerms(`${path}/ring-ref`))[0]?.domid;
  if (owner !== domid) throw systemError('EPROTO', 'vchan connect', `ring-ref is owned by domain ${owner}, not ${domid}`);

  const evfd = xen.evtchnOpen();
  let port = -1;
  const maps: SharedMapping[] = [];
  let endpoint: RingEndpoint | null = null;
  let setup: XenPoolSetup | null = null;
  try {
    port = xen.evtchnBindInterdomain(evfd, domid, remotePort);
    xen.evtchnUnmask(evfd, port);
    // Control page read/write; the kernel clears cli_live and signals if we die.
    const control = await gntMapRetry(b, domid, [ringRef], true, OFF_CLI_LIVE, port);
    maps.push(control);
    const hdr = xen.peek(control, 0, PAGE_SIZE); // one private snapshot, parsed below
    const leftOrder = hdr.readUInt16LE(OFF_LEFT_ORDER);
    const rightOrder = hdr.readUInt16LE(OFF_RIGHT_ORDER);
    const count = validateOrders(leftOrder, rightOrder, ext);
    if (hdr[OFF_SRV_LIVE] !== LIVE_CONNECTED) throw systemError('ECONNREFUSED', 'connect', 'vchan server is gone');
    if (hdr[OFF_CLI_LIVE] !== LIVE_WAITING) throw systemError('ECONNREFUSED', 'connect', 'vchan already has a client');
    const grants: number[] = [];
    for (let i = 0; i < count; i++) {
      const g = hdr.readUInt32LE(OFF_GRANTS + 4 * i);
      if (g < FIRST_GRANT_REF) throw systemError('EPROTO', 'vchan connect', `invalid grant ref ${g}`);
      grants.push(g);
    }
    const pl = pagesOf(leftOrder);
    let left: { mapping: SharedMapping; offset: number } = { mapping: control, offset: inPageOffset(leftOrder) ?? 0 };
    let right: { mapping: SharedMapping; offset: number } = { mapping: control, offset: inPageOffset(rightOrder) ?? 0 };
    if (pl > 0) {
      const m = await gntMapRetry(b, domid, grants.slice(0, pl), true, -1, -1);
      maps.unshift(m);
      left = { mapping: m, offset: 0 };
    }
    if (count > pl) {
      // We never write server→client data: map it read-only.
      const m = await gntMapRetry(b, domid, grants.slice(pl), false, -1, -1);
      maps.unshift(m);
      right = { mapping: m, offset: 0 };
    }
    endpoint = new b.RingEndpoint({
      role: 'client',
      init: false,
      ext,
      control,
      controlOffset: 0,
      left: { ...left, order: leftOrder },
      right: { ...right, order: rightOrder },
    });
    endpoint.setNotifier(xen.evtchnNotifier(evfd, port));
    // Before connecting: the server deletes its nodes once it sees us connected.
    if (poolAnswer && options.pool) setup = await acceptPool(b, domid, options.pool.options, options.pool.offer, await poolAnswer);
    // Opened now, so that a pool we cannot use fails the connect: going on without
    // it would lose the payloads the server sends by reference.
    setup?.link();
    clientConnect(endpoint); // lets the server see the connection before any data
  } catch (err) {
    quiet(() => setup?.close());
    if (endpoint) quiet(() => endpoint!.close());
    for (const m of maps) quiet(() => m.unmap());
    if (port >= 0) quiet(() => xen.evtchnUnbind(evfd, port));
    quiet(() => b.closeFd(evfd));
    throw err;
  }
  const tag = options.port ?? path;
  return new XenLink(endpoint, evfd, port, maps, ext, xenAddress(self, tag), xenAddress(domid, tag), null, xs, b, setup);
}

/**
 * Waits until the client of a server link has connected (cli_live = 1).
 * Rejects with ECONNRESET if it connected and left, ETIMEDOUT after
 * `timeout` ms (0 = no limit; a client domain that dies before connecting
 * sends nothing), or the reason of `signal` when it aborts. The temporary
 * watcher on the event channel is gone when this settles, so the stream
 * layer can poll the same fd.
 */
export async function waitForClient(link: XenLink, timeout: number, signal?: CancelSignal, b: XenBindings = addonBindings): Promise<void> {
  const wait = deadline(signal, timeout, () => systemError('ETIMEDOUT', 'accept'));
  const kicked = new Wakeup();
  const watcher: FdWatcher = new b.FdWatcher(link.waitFd, () => kicked.set());
  try {
    watcher.start(UV_READABLE);
    for (;;) {
      link.endpoint.ack();
      const { live } = readPeerState(link.endpoint);
      if (live === LIVE_CONNECTED) return;
      if (live === LIVE_GONE) throw systemError('ECONNRESET', 'accept');
      await kicked.wait(wait.signal);
    }
  } finally {
    watcher.close();
    wait.dispose();
  }
}

/** True when the four Xen devices exist and are usable by this process. */
export function xenAvailable(b: XenBindings = addonBindings): boolean {
  return devicesUsable(b.xen);
}
