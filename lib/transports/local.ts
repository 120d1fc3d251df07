/**
 * The local transport: the vchan ring between processes on one Linux host.
 * Pages: one sealed memfd (control page, left ring, right ring) created by the
 * server, as a vchan server grants pages. Wake-ups: a pipe per direction,
 * standing in for the event channel (each side waits on a read end only it
 * holds and kicks with a non-blocking vmsplice; see local_primitives.cc). Rendezvous: a UNIX seqpacket
 * socket `<dir>/<port>.sock` that passes the fds with SCM_RIGHTS, standing in
 * for xenstore + grant references. The connection socket stays open for the
 * life of the ring: when the peer process dies the kernel closes it, which is
 * our analogue of Xen's unmap-notify. After an orderly close both sides may
 * keep the whole link for the client's next connection to the same port
 * (REOPEN on the same socket: local_reuse.ts). The peer is hostile: every
 * message and fd it sends is checked (local_handshake.ts, local_trust.ts,
 * local_dir.ts).
 */
import * as fs from 'node:fs';
import { getSystemErrorName } from 'node:util';
import { PAGE_SIZE } from '../constants';
import { systemError } from '../errors';
import { closeQuietly, native, FdWatcher, SharedMapping, RingEndpoint, UV_READABLE, UV_DISCONNECT, type Notifier } from '../native';
import { DEFAULT_COPY_MAX, DEFAULT_COPY_THRESHOLD, DEFAULT_COPY_WINDOW, DEFAULT_LOCAL_POOL, type PoolOptions } from '../pool/layout';
import { externalBuffersWork, type PoolMapping } from '../pool/native_pool';
import { agreePoolSize, createLocalRegion, mapPeerRegion, PoolLink, viewsAllowed } from '../pool/pool_link';
import { LazyOpen } from '../pool/lazy_open';
import { MAX_LOCAL_RING_SIZE, ringOrder } from '../ring/ring_size';
import { clientConnect, CONTROL, decodePeerState, Live } from '../ring/vchan_state';
import {
  acceptFdsExpected,
  buildAccept,
  buildHello,
  buildReopen,
  buildReopened,
  grantOrder,
  isReopen,
  parseAccept,
  parseHello,
  parseReopen,
  parseReopened,
  type Accept,
} from './local_handshake';
import { allowedUids, ownUid, trustedPeer } from './local_trust';
import { checkDirOption, normalizePort, rendezvousDir, rendezvousPath, socketPath } from './local_dir';
import { readRendezvous, RegionExchange } from './local_regions';
import { keepRingMapping, takeRingMapping } from './local_ring_cache';
import type { CancelSignal } from './cancel';
import { closeScope, keepConnection, openScope, peerIdentity, takeKept, type PeerIdentity, type Revived } from './local_recycle';
import {
  clientKey,
  disposeKept,
  dropParked,
  keepClientLink,
  keptMessage,
  parkServerLink,
  parkedIn,
  reuseEnabled,
  takeClientLink,
  takeLate,
  REUSE_PER_PEER,
  REUSE_TOTAL,
  claimKept,
  clearReuse,
  dropReuse,
  isClaimed,
  prepareKept,
  unpark,
  reuseStats,
  REUSE_WAIT_MS,
  type AgreedPool,
  type KeptLink,
  type ServerParked,
} from './local_reuse';
import type {
  ConnectRequest,
  ListenRequest,
  Listener,
  RingLink,
  Transport,
  TransportAddress,
} from './transport';

const UV_EBADF = -9;
/** How long a handshake may take before it fails with ETIMEDOUT. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Connections a listener holds before their HELLO; past it the oldest is dropped. */
export const MAX_PENDING_HANDSHAKES = 64;

/** An accepted client: SO_PEERCRED, and its recycling identity read at the accept (null: none). */
interface AcceptedPeer {
  pid: number;
  uid: number;
  identity: PeerIdentity | null;
}

/** What a server connection may hand to the next one from the same client (local_recycle.ts). */
interface Recyclable {
  peer: PeerIdentity;
  /** The ring's memfd, kept open to send again, and its order. */
  ringFd: number;
  order: number;
  /** Our pool region, if any: its memfd (kept open too), its size, and whether it was kept from an earlier connection. */
  region: { fd: number; poolBytes: number; reused: boolean } | null;
  /**
   * Regions on demand: the region kept from an earlier connection, until our
   * sender first needs one (then it is `region`); kept again at an orderly
   * close if it never was.
   */
  spare: { fd: number; mapping: PoolMapping; poolBytes: number } | null;
}

/** A REOPEN that came before the server's link was parked: asking, or claimed (see reopenServer). */
type PendingReopen = 'ask' | 'claimed';

/** How a link is kept after an orderly close for the client's next connection (local_reuse.ts). */
interface LinkReuse {
  role: 'client' | 'server';
  leftOrder: number;
  rightOrder: number;
  pool: AgreedPool | null;
  peerUid: number;
  /** Keeps the link; false: not kept (the link frees it). `reopen`: its REOPEN already came, claimed or asking (server). */
  keep(kept: KeptLink, reopen: PendingReopen | null): boolean;
}

/** A watcher callback that does nothing. */
const idle = () => {};

/** A kept link's wait watcher's callback: takes any wake-up off the pipe (level-triggered: it would fire again), stops on a poll error. */
function consumeWakeups(wait: FdWatcher, notifier: Notifier): (events: number) => void {
  return (events) => {
    try {
      if (events >= 0) {
        notifier.ack();
        return;
      }
    } catch {
      /* the pipe failed: poll it no more */
    }
    wait.stop();
  };
}

/** Our endpoint wakes its peer through `kept` (a kept link's), or a new seam over the pipe ends. */
function wakeThrough(endpoint: RingEndpoint, kickFd: number, waitFd: number, kept?: Notifier): Notifier {
  const notifier = kept ?? native.pipeNotifier(kickFd, waitFd);
  endpoint.setNotifier(notifier);
  return notifier;
}

/** A connected local ring and the fds/pages behind it. */
class LocalLink implements RingLink {
  readonly ext = true;
  private released = false;
  /** The client's REOPEN came while this (server) connection was still open: answered once it closes. */
  private reopenPending: PendingReopen | null = null;
  constructor(
    readonly endpoint: RingEndpoint,
    /** The endpoint's wake-up seam, kept with a kept link. */
    private readonly notifier: Notifier,
    private readonly mapping: SharedMapping,
    readonly waitFd: number,
    private readonly kickFd: number,
    readonly hangupFd: number,
    readonly local: TransportAddress,
    readonly remote: TransportAddress,
    readonly pool: PoolLink | null = null,
    private readonly recyclable: Recyclable | null = null,
    private readonly regions: RegionExchange | null = null,
    /** A client's ring memfd identity, when its mapping may be kept at an orderly close (local_ring_cache.ts). */
    private readonly ringKey: string | null = null,
    /** Set when both sides agreed to keep the link after an orderly close. */
    private readonly reuse: LinkReuse | null = null,
  ) {}

  /** The client's handshake watcher on the rendezvous socket, until the channel takes it. */
  private handedWatcher: FdWatcher | null = null;
  /** A kept link's watcher on waitFd, until the channel takes it. */
  private handedWait: FdWatcher | null = null;
  /** The closing channel's watchers, offered for keeping (adoptWatchers). */
  private adopted: { wait: FdWatcher; hangup: FdWatcher | null } | null = null;

  /** Keeps the handshake's watcher on hangupFd for the channel; until taken, an event stops it (level-triggered: it fires again once restarted). */
  handWatcher(watcher: FdWatcher): void {
    watcher.setCallback(() => watcher.stop());
    this.handedWatcher = watcher;
  }

  takeHangupWatcher(): FdWatcher | null {
    const w = this.handedWatcher;
    this.handedWatcher = null;
    return w;
  }

  /** A kept link's watchers (its socket's, and its stopped one on waitFd), for the channel to take over. */
  handKeptWatchers(kept: KeptLink): void {
    // Kept unref'd: as new watchers, they keep the loop alive until the socket says otherwise.
    kept.watcher.ref();
    kept.waitWatcher?.ref();
    this.handWatcher(kept.watcher);
    this.handedWait = kept.waitWatcher;
  }

  takeWaitWatcher(): FdWatcher | null {
    const w = this.handedWait;
    this.handedWait = null;
    return w;
  }

  /**
   * A link that may be kept takes the closing channel's watchers, their
   * callbacks dropped. The one on waitFd goes on polling (see KeptLink), now
   * only consuming wake-ups.
   */
  adoptWatchers(wait: FdWatcher, hangup: FdWatcher | null): boolean {
    if (this.reuse === null || this.released) return false;
    wait.bindRing(null);
    wait.setCallback(consumeWakeups(wait, this.notifier));
    hangup?.setCallback(idle);
    this.adopted = { wait, hangup };
    return true;
  }

  /** The peer's messages on the rendezvous socket (its pool region; a client's REOPEN): true once it hung up. */
  rendezvousRead(): boolean {
    if (this.reuse === null) return this.regions === null || this.regions.read();
    const server = this.reuse.role === 'server';
    return readRendezvous(this.hangupFd, (msg) => {
      if (server && isReopen(msg.data)) {
        msg.fds.forEach(closeQuietly);
        const claimed = parseReopen(msg.data, msg.fds.length);
        if (this.reopenPending !== null) throw systemError('EPROTO', 'recvmsg', 'a second reopen from the client');
        // The client closed its side: answered when ours closes. A claimed
        // one: the client prepared the ring after our live byte went (it
        // closed last) and is on it, while we are still closing.
        this.reopenPending = claimed ? 'claimed' : 'ask';
      } else if (this.regions !== null) {
        this.regions.handle(msg);
      } else {
        msg.fds.forEach(closeQuietly);
        throw systemError('EPROTO', 'recvmsg', 'a message the peer may not send on the rendezvous socket');
      }
    });
  }

  /** Whether this link may be kept: the peer still there, nothing unexpected queued, no pool region passed either way. */
  private quietForReuse(): boolean {
    try {
      if (this.rendezvousRead()) return false;
    } catch {
      return false;
    }
    return this.regions === null || this.regions.untouched;
  }

  /** Hands the link's fds and mapping to the reuse cache (its endpoint closed); false: the link frees them. */
  private keepForReuse(): boolean {
    const r = this.reuse!;
    const adopted = this.adopted;
    this.adopted = null;
    let watcher: FdWatcher;
    try {
      watcher = adopted?.hangup ?? new native.FdWatcher(this.hangupFd, () => {});
    } catch {
      adopted?.wait.close();
      return false;
    }
    const kept: KeptLink = {
      conn: this.hangupFd,
      waitFd: this.waitFd,
      kickFd: this.kickFd,
      mapping: this.mapping,
      leftOrder: r.leftOrder,
      rightOrder: r.rightOrder,
      pool: r.pool,
      peerUid: r.peerUid,
      local: this.local,
      remote: this.remote,
      watcher,
      waitWatcher: adopted?.wait ?? null,
      notifier: this.notifier,
    };
    if (!r.keep(kept, this.reopenPending)) {
      watcher.close();
      adopted?.wait.close();
      return false;
    }
    watcher.start(UV_READABLE | UV_DISCONNECT);
    // The side that closed last initialises the ring for the next
    // connection (a REOPEN already here: the server initialises it then).
    if (!this.reopenPending) prepareKept(this.mapping, r.role, () => ringEndpoint(this.mapping, 'server', r.leftOrder, r.rightOrder).close());
    return true;
  }

  release(orderly = false): void {
    if (this.released) return;
    this.released = true;
    this.handedWatcher?.close();
    this.handedWatcher = null;
    this.handedWait?.close();
    this.handedWait = null;
    const reusable = orderly && this.reuse !== null && this.quietForReuse();
    if (!reusable && this.adopted !== null) {
      this.adopted.wait.close();
      this.adopted.hangup?.close();
      this.adopted = null;
    }
    if (!reusable) this.regions?.drain();
    this.regions?.close();
    // A region kept from an earlier connection that this one never needed
    // (its sender made none): still ours, untouched since, so it goes on as
    // a reused region does (kept again, or freed).
    const rec = this.recyclable;
    const spare = rec?.spare ?? null;
    if (spare !== null) {
      rec!.spare = null;
      rec!.region = { fd: spare.fd, poolBytes: spare.poolBytes, reused: true };
    }
    const r = orderly ? rec : null;
    // A region is worth keeping only once its pages were touched: an
    // untouched one is cheaper to make again (~13 µs) than to keep
    // (docs/pool.md). The ring always is (its control page at least).
    const region = r?.region ?? null;
    const keepOwn = region !== null && (region.reused || this.pool?.sender?.used === true);
    const own = this.pool?.close(keepOwn) ?? (spare && { mapping: spare.mapping, settle: () => true });
    this.endpoint.close(); // unpins the mapping: nothing of ours touches the ring after this
    if (reusable && this.keepForReuse()) {
      if (own !== null) {
        own.settle();
        own.mapping.close();
      }
      return;
    }
    // A server's link not kept: no client may take its ring now.
    if (this.reuse?.role === 'server') dropReuse(this.mapping);
    closeQuietly(this.waitFd);
    closeQuietly(this.kickFd);
    // Kept: the cache owns the ring, the region, their memfds and the
    // rendezvous socket (whose EOF tells it the peer closed too).
    if (
      r !== null &&
      keepConnection(
        r.peer,
        { order: r.order, fd: r.ringFd, mapping: this.mapping },
        own && { poolBytes: region!.poolBytes, mapping: own.mapping, settle: own.settle, fd: region!.fd },
        this.hangupFd,
      )
    ) {
      if (own === null && region !== null) closeQuietly(region.fd);
      return;
    }
    if (own !== null) {
      own.settle();
      own.mapping.close();
    }
    if (orderly && this.ringKey !== null) keepRingMapping(this.ringKey, this.mapping);
    else this.mapping.unmap();
    if (this.recyclable !== null) {
      closeQuietly(this.recyclable.ringFd);
      if (this.recyclable.region !== null) closeQuietly(this.recyclable.region.fd);
    }
    closeQuietly(this.hangupFd);
  }
}

function ringLayout(leftOrder: number, rightOrder: number) {
  const left = 2 ** leftOrder;
  const right = 2 ** rightOrder;
  return { size: PAGE_SIZE + left + right, leftOffset: PAGE_SIZE, rightOffset: PAGE_SIZE + left };
}

/** Our endpoint on a local ring (ringLayout in one mapping); a server's initialises the control page. */
function ringEndpoint(mapping: SharedMapping, role: 'client' | 'server', leftOrder: number, rightOrder: number, init = role === 'server'): RingEndpoint {
  const { leftOffset, rightOffset } = ringLayout(leftOrder, rightOrder);
  // Positional: the options form reads 12 named properties, each key made anew.
  return new native.RingEndpoint(role === 'server', init, true, mapping, 0, mapping, leftOffset, leftOrder, mapping, rightOffset, rightOrder);
}

/** The pool a connect/listen request asks for: local's default when it names none. */
function poolRequest(pool: PoolOptions | undefined): PoolOptions {
  return pool ?? { size: DEFAULT_LOCAL_POOL, views: undefined };
}

/**
 * The connection's pool from the regions each side made: ours (we send in
 * it) and the peer's (checked and mapped here). Views of the peer's pages
 * only for a peer of our own uid, unless the user chose (pool.views).
 * Owns the mappings: closed here if the link cannot be made.
 */
function makePoolLink(
  own: { mapping: PoolMapping | (() => PoolMapping); poolBytes: number; kept?: PoolMapping | null } | null,
  peer: { fd: number; poolBytes: number; announced: number } | { mapping: () => PoolMapping; poolBytes: number } | null,
  peerUid: number,
  options: PoolOptions,
  lazy: LazyOpen | null,
): PoolLink | null {
  let peerMapping: PoolMapping | (() => PoolMapping) | null = null;
  const ownMapping = own?.mapping;
  if (own !== null && own.poolBytes === 0) {
    if (typeof ownMapping !== 'function') ownMapping?.close(); // offered, but nothing agreed this way
    own = null;
  }
  try {
    if (peer !== null && peer.poolBytes > 0) peerMapping = 'fd' in peer ? mapPeerRegion(peer.fd, peer.poolBytes, peer.announced) : peer.mapping;
    if (peerMapping === null && own === null) return null;
    return new PoolLink({
      own,
      peer: peerMapping !== null ? { mapping: peerMapping, poolBytes: peer!.poolBytes } : null,
      // Our region is a fresh memfd, or a kept one whose queue page was
      // zeroed: its queues already read as zero.
      createdOwn: false,
      createdPeer: false,
      views: viewsAllowed('local', peerUid === ownUid(), options.views),
      copyThreshold: DEFAULT_COPY_THRESHOLD,
      copyMax: DEFAULT_COPY_MAX,
      copyWindow: DEFAULT_COPY_WINDOW,
      coldPages: true, // memfd pages: allocated at their first write
      ringForCopyingReaders: true, // the ring is large and warm here
      lazy,
    });
  } catch (err) {
    if (typeof ownMapping !== 'function') ownMapping?.close();
    if (typeof peerMapping !== 'function') peerMapping?.close();
    throw err;
  }
}

/**
 * The pool bytes of a new ring's control page (lib/pool/lazy_open.ts), ours
 * announced: set before the peer may look (the server's ACCEPT, the client's
 * going live). Null where the runtime refuses external buffers: receivers
 * then open at once, as an older xenring's do.
 */
function lazyOpen(endpoint: RingEndpoint, role: 'client' | 'server', regionsOnDemand = false): LazyOpen | null {
  let word: Uint32Array | null;
  try {
    word = endpoint.poolWord?.() ?? null;
  } catch {
    return null;
  }
  if (word === null) return null;
  // A server's client that does not announce is an older xenring once it is
  // live (a newer one sets its byte first); a client's server announced
  // before its ACCEPT or never will.
  const peerStarted = role === 'server' ? () => decodePeerState(endpoint.peerState()).live !== Live.Waiting : () => true;
  const lazy = new LazyOpen(word, role, peerStarted, regionsOnDemand);
  lazy.announce();
  return lazy;
}

function address(path: string, port: number | string): TransportAddress {
  return { address: path, family: 'local', port };
}

/**
 * A wake-up end the peer sent: the write end of its pipe, made by a process
 * of the uid on the other end of the rendezvous socket.
 */
function checkWakeEnd(fd: number, peerUid: number, syscall: string): void {
  const creator = native.wakeEndCheck(fd);
  if (creator.uid !== peerUid) throw systemError('EPROTO', syscall, `wake-up pipe made by uid ${creator.uid}, not by the peer`);
}

/**
 * Our region, made (or, on a server, the one kept for this client process)
 * when our sender first needs it, and handed to the peer (regions on demand,
 * local_regions.ts). A server keeps its memfd open to reuse the region
 * (`rec`); otherwise it is closed once sent (the mapping keeps the pages).
 */
function ownRegionOnDemand(exchange: RegionExchange, poolBytes: number, rec: Recyclable | null): PoolMapping {
  const spare = rec?.spare ?? null;
  if (rec !== null) rec.spare = null;
  const region = spare ?? createLocalRegion(poolBytes);
  try {
    exchange.send(region.fd);
  } catch (err) {
    region.mapping.close();
    closeQuietly(region.fd);
    throw err;
  }
  if (rec !== null) rec.region = { fd: region.fd, poolBytes, reused: spare !== null };
  else closeQuietly(region.fd);
  return region.mapping;
}

/**
 * Server side of one handshake: build the ring and send the fds. The ring
 * order is the client's ask capped by the listener's (`ceiling`). Owns
 * `fds` (those the HELLO carried): kept by the link or closed.
 */
function serveHello(
  conn: number,
  peer: AcceptedPeer,
  msg: Buffer,
  fds: number[],
  ceiling: number,
  poolOptions: PoolOptions,
  path: string,
  port: number | string,
  park: LinkReuse['keep'] | null = null,
): RingLink {
  const owned = [...fds];
  let memfd = -1;
  let mapping: SharedMapping | undefined;
  let endpoint: RingEndpoint | undefined;
  let pool: PoolLink | null = null;
  let poolFd = -1;
  let recyclable: Recyclable | null = null;
  let kept: Revived | null = null;
  let regions: RegionExchange | null = null;
  try {
    const hello = parseHello(msg, fds.length);
    const order = grantOrder(hello.order, ceiling);
    const [kickFd, clientRegion] = fds; // wakes the client; the client's pool region
    checkWakeEnd(kickFd, peer.uid, 'accept');
    const offered = hello.poolSize ?? null; // null: an older client, no pool fields
    const poolSize = offered !== null ? agreePoolSize(poolOptions.size, offered) : 0;
    // The ring and our region this client process had before (local_recycle.ts:
    // the control page and the queue page zeroed), or fresh memfds; either
    // way they read as a fresh memfd does where anyone looks.
    const identity = hello.pid === peer.pid ? peer.identity : null;
    kept = identity && takeKept(identity, order, poolSize);
    const { size } = ringLayout(order, order);
    if (kept?.ring) {
      memfd = kept.ring.fd;
      mapping = kept.ring.mapping;
      kept.ring = null;
    } else {
      memfd = native.memfdCreate('xenring', size);
      mapping = new native.SharedMapping(memfd, size, true);
    }
    endpoint = ringEndpoint(mapping, 'server', order, order);
    let agreed: Accept['pool'] = null;
    const lazyRegions = hello.lazyRegions === true;
    // Kept for the client's next connection (local_reuse.ts) when it asks
    // and no region crosses in the handshake; such a link is kept whole, so
    // not recycled by parts.
    const reusable = hello.reusable === true && park !== null && offered !== null && (lazyRegions || offered === 0) && reuseEnabled();
    if (identity !== null && !reusable) recyclable = { peer: identity, ringFd: memfd, order, region: null, spare: null };
    if (offered !== null && lazyRegions) {
      // Regions on demand (local_regions.ts): each side's comes when its
      // sender first needs it; the client's receiver and ours open on the
      // control page's pool bytes, so without them (a runtime refusing
      // external buffers) there is no pool.
      const lazy = poolSize > 0 ? lazyOpen(endpoint, 'server', true) : null;
      const size = lazy !== null ? poolSize : 0;
      agreed = { toServer: size, toClient: size };
      const spare = kept?.region ?? null;
      if (kept) kept.region = null;
      if (spare !== null && (recyclable === null || size === 0)) {
        spare.mapping.close();
        closeQuietly(spare.fd);
      } else if (spare !== null) recyclable!.spare = { ...spare, poolBytes: size };
      if (size > 0) {
        const exchange = (regions = new RegionExchange(conn, size, size));
        const rec = recyclable;
        pool = makePoolLink(
          { mapping: () => ownRegionOnDemand(exchange, size, rec), poolBytes: size, kept: rec?.spare?.mapping ?? null },
          { mapping: () => exchange.takePeer(), poolBytes: size },
          peer.uid,
          poolOptions,
          lazy,
        );
      }
    } else if (offered !== null) {
      agreed = { toServer: poolSize, toClient: poolSize };
      // Our region (we send in it): its queues read as zero, so nothing is
      // written to it before a payload (the sender opens its queues then).
      const reused = kept?.region ?? null;
      if (kept) kept.region = null;
      const own = poolSize > 0 ? (reused ?? createLocalRegion(poolSize)) : null;
      poolFd = own?.fd ?? -1;
      if (own !== null && recyclable !== null) recyclable.region = { fd: own.fd, poolBytes: poolSize, reused: reused !== null };
      pool = makePoolLink(
        own && { mapping: own.mapping, poolBytes: poolSize },
        poolSize > 0 ? { fd: clientRegion, poolBytes: poolSize, announced: offered } : null,
        peer.uid,
        poolOptions,
        poolSize > 0 ? lazyOpen(endpoint, 'server') : null,
      );
    }
    const [waitFd, peerEnd] = native.wakePair();
    owned.push(waitFd, peerEnd);
    const notifier = wakeThrough(endpoint, kickFd, waitFd);
    const reply = buildAccept({ leftOrder: order, rightOrder: order, pool: agreed, lazyRegions: lazyRegions && agreed !== null, reusable });
    if (native.sendMessage(conn, reply, poolFd >= 0 ? [memfd, peerEnd, poolFd] : [memfd, peerEnd]) !== reply.length) {
      throw systemError('EAGAIN', 'sendmsg', 'handshake reply did not fit');
    }
    closeQuietly(peerEnd); // the client has its copy
    if (fds.length > 1) {
      closeQuietly(clientRegion); // mapped (or refused) above
      owned.splice(owned.indexOf(clientRegion), 1);
    }
    const reuse: LinkReuse | null = reusable
      ? { role: 'server', leftOrder: order, rightOrder: order, pool: agreed, peerUid: peer.uid, keep: park! }
      : null;
    const link = new LocalLink(endpoint, notifier, mapping, waitFd, kickFd, conn, address(path, port), {
      address: `pid:${peer.pid}`,
      family: 'local',
      port,
    }, pool, recyclable, regions, null, reuse);
    pool = null;
    if (recyclable !== null) memfd = poolFd = -1; // the link keeps them (a kept link needs only the mapping)
    return link;
  } catch (err) {
    pool?.close();
    regions?.close();
    if (recyclable?.spare) {
      recyclable.spare.mapping.close();
      closeQuietly(recyclable.spare.fd);
    }
    endpoint?.close();
    mapping?.unmap();
    kept?.region?.mapping.close();
    closeQuietly(kept?.region?.fd ?? -1);
    owned.forEach(closeQuietly);
    throw err;
  } finally {
    closeQuietly(memfd); // the mappings keep the pages
    closeQuietly(poolFd);
  }
}

/**
 * The pool of a link whose regions come on demand (local_regions.ts), as
 * `agreed` (null or nothing either way: none). Our pool byte is announced
 * on `endpoint`'s control page here, before the peer may look. Throws EPROTO
 * where this runtime cannot watch for the peer's region.
 */
function poolOnDemand(
  endpoint: RingEndpoint,
  role: 'client' | 'server',
  conn: number,
  agreed: AgreedPool | null,
  peerUid: number,
  poolOptions: PoolOptions,
): { pool: PoolLink | null; regions: RegionExchange | null } {
  if (agreed === null || (agreed.toClient === 0 && agreed.toServer === 0)) return { pool: null, regions: null };
  const lazy = lazyOpen(endpoint, role, true);
  if (lazy === null) throw systemError('EPROTO', role === 'client' ? 'connect' : 'accept', 'pool agreed where this runtime cannot watch for it');
  const [toUs, toPeer] = role === 'client' ? [agreed.toClient, agreed.toServer] : [agreed.toServer, agreed.toClient];
  const exchange = new RegionExchange(conn, toUs, toPeer);
  const pool = makePoolLink(
    toPeer > 0 ? { mapping: () => ownRegionOnDemand(exchange, toPeer, null), poolBytes: toPeer } : null,
    toUs > 0 ? { mapping: () => exchange.takePeer(), poolBytes: toUs } : null,
    peerUid,
    poolOptions,
    lazy,
  );
  return { pool, regions: exchange };
}

/** A client's ring, mapped, with what the handshake agreed (a kept link's parts, or a fresh one's). */
type ClientRing = Pick<KeptLink, 'conn' | 'waitFd' | 'kickFd' | 'mapping' | 'leftOrder' | 'rightOrder' | 'pool' | 'peerUid' | 'local' | 'remote'> & { notifier?: Notifier };

/**
 * The client's link over a ring it mapped (fresh, or kept: local_reuse.ts):
 * endpoint, pool, wake-ups, then live. If it throws it has freed what it
 * made; the fds and the mapping stay the caller's.
 */
function clientLink(ring: ClientRing, poolOptions: PoolOptions, ringKey: string | null, reuse: LinkReuse | null): LocalLink {
  const { conn, mapping } = ring;
  let endpoint: RingEndpoint | undefined;
  let pool: PoolLink | null = null;
  let regions: RegionExchange | null = null;
  try {
    endpoint = ringEndpoint(mapping, 'client', ring.leftOrder, ring.rightOrder);
    // Before we go live (clientConnect): the server reads our pool byte then.
    ({ pool, regions } = poolOnDemand(endpoint, 'client', conn, ring.pool, ring.peerUid, poolOptions));
    const notifier = wakeThrough(endpoint, ring.kickFd, ring.waitFd, ring.notifier);
    // vchan client connect: live, ask for the server's writes; no kick (a
    // server of this version needs none: it served us from the HELLO on).
    clientConnect(endpoint, false);
    const link = new LocalLink(endpoint, notifier, mapping, ring.waitFd, ring.kickFd, conn, ring.local, ring.remote, pool, null, regions, ringKey, reuse);
    pool = null;
    return link;
  } catch (err) {
    pool?.close();
    regions?.close();
    endpoint?.close();
    throw err;
  }
}

/** What a client link needs to be kept under `key` (local_reuse.ts). */
function clientReuse(key: string, ring: ClientRing): LinkReuse {
  return { role: 'client', leftOrder: ring.leftOrder, rightOrder: ring.rightOrder, pool: ring.pool, peerUid: ring.peerUid, keep: (kept) => keepClientLink(key, kept) };
}

/**
 * Client side: validate the server's reply and map the ring. Owns `waitFd`
 * and the reply's fds. `reuseKey`: our HELLO asked to keep the link (under
 * that key), null if it did not.
 */
function acceptReply(
  conn: number,
  peerUid: number,
  waitFd: number,
  msg: { data: Buffer; fds: number[]; truncated?: boolean },
  asked: number,
  offered: number,
  poolOptions: PoolOptions,
  path: string,
  port: number | string,
  reuseKey: string | null,
): LocalLink {
  const { data, fds } = msg;
  let mapping: SharedMapping | undefined;
  try {
    // The kernel drops passed fds it cannot install (RLIMIT_NOFILE): say so.
    if (msg.truncated && fds.length < acceptFdsExpected(data)) throw systemError('EMFILE', 'connect', 'no free fd for the ring (too many open files)');
    // Our HELLO asked for regions on demand whenever it offered a pool.
    const accept = parseAccept(data, fds.length, asked, offered, offered > 0, reuseKey !== null);
    const { leftOrder, rightOrder } = accept;
    const [memfd, kickFd] = fds;
    const { size } = ringLayout(leftOrder, rightOrder);
    const ringId = native.memfdCheck(memfd, size);
    checkWakeEnd(kickFd, peerUid, 'connect');
    // Only a server of our uid recycles a ring for us (local_recycle.ts):
    // then the mapping we kept of it saves mapping it again.
    const ringKey = peerUid === ownUid() ? ringId : null;
    mapping = (ringKey !== null ? takeRingMapping(ringKey) : null) ?? new native.SharedMapping(memfd, size, true);
    closeQuietly(memfd);
    fds[0] = -1;
    const ring: ClientRing = {
      conn,
      waitFd,
      kickFd,
      mapping,
      leftOrder,
      rightOrder,
      pool: accept.pool ?? null,
      peerUid,
      local: { address: `pid:${process.pid}`, family: 'local', port },
      remote: address(path, port),
    };
    return clientLink(ring, poolOptions, ringKey, accept.reusable && reuseKey !== null ? clientReuse(reuseKey, ring) : null);
  } catch (err) {
    mapping?.unmap();
    fds.forEach(closeQuietly);
    closeQuietly(waitFd);
    closeQuietly(conn);
    throw err;
  }
}

/**
 * Client side of a kept link's REOPEN answered: the same ring, a new
 * endpoint on it. If it throws, `kept` is still the caller's (not freed).
 */
function reopenClient(kept: KeptLink, reuseKey: string, poolOptions: PoolOptions): LocalLink {
  const ring: ClientRing = kept;
  const link = clientLink(ring, poolOptions, null, clientReuse(reuseKey, ring));
  link.handKeptWatchers(kept);
  return link;
}

/**
 * Server side of a parked link's REOPEN: the control page initialised again
 * (the endpoint's init rewrites the header and the extension, all that
 * either side reads there), REOPENED sent. `claimed`: the ring was
 * initialised when the last connection closed and the client is on it
 * already: we attach to it as it is, and answer nothing. If it throws,
 * `entry` is still the caller's (not freed).
 */
function reopenServer(entry: ServerParked, claimed: boolean, poolOptions: PoolOptions, keep: LinkReuse['keep']): LocalLink {
  const { conn, mapping, leftOrder: order, pool: agreed, peerUid } = entry;
  let endpoint: RingEndpoint | undefined;
  let pool: PoolLink | null = null;
  let regions: RegionExchange | null = null;
  try {
    // Claimed: the ring must be one prepared for us (our live byte up, no
    // fin of ours: as its init leaves them) and claimed by the client.
    if (claimed && !(isClaimed(mapping) && mapping.readByte(CONTROL.srvLive) === Live.Connected && mapping.readByte(CONTROL.extSrvFin) === 0)) {
      throw systemError('EPROTO', 'accept', 'a claimed reopen of a ring not prepared and claimed');
    }
    endpoint = ringEndpoint(mapping, 'server', order, order, !claimed);
    clearReuse(mapping); // a connection is on the ring: whoever closes last prepares it again
    // Before REOPENED: the client reads our pool byte once it has it.
    ({ pool, regions } = poolOnDemand(endpoint, 'server', conn, agreed, peerUid, poolOptions));
    const notifier = wakeThrough(endpoint, entry.kickFd, entry.waitFd, entry.notifier);
    if (!claimed) {
      const reply = buildReopened(order, order);
      if (native.sendMessage(conn, reply, []) !== reply.length) throw systemError('EAGAIN', 'sendmsg', 'reopen reply did not fit');
    }
    const reuse: LinkReuse = { role: 'server', leftOrder: order, rightOrder: order, pool: agreed, peerUid, keep };
    const link = new LocalLink(endpoint, notifier, mapping, entry.waitFd, entry.kickFd, conn, entry.local, entry.remote, pool, null, regions, null, reuse);
    pool = null;
    link.handKeptWatchers(entry);
    return link;
  } catch (err) {
    pool?.close();
    regions?.close();
    endpoint?.close();
    throw err;
  }
}

/** Sends REOPEN (`claimed` or asking) on a kept socket: false if it did not go (the server closed the socket). */
function sendReopen(conn: number, claimed: boolean): boolean {
  const msg = buildReopen(claimed);
  try {
    return native.sendMessage(conn, msg, []) === msg.length;
  } catch {
    return false;
  }
}

function connect(req: ConnectRequest, signal: CancelSignal): Promise<RingLink> {
  let callback!: (err: Error | null, link?: RingLink) => void;
  const result = new Promise<RingLink>((resolve, reject) => (callback = (err, link) => (err ? reject(err) : resolve(link!))));
  const port = normalizePort(req.port);
  const order = req.ringSize === undefined ? 0 : ringOrder(req.ringSize, MAX_LOCAL_RING_SIZE);
  checkDirOption(req.dir);
  const allowed = allowedUids(req.allowUid);
  const poolOptions = poolRequest(req.pool);
  // Offered with regions on demand (none made before a payload needs it):
  // where this runtime refuses external buffers, no pool (its receivers
  // could not watch for the peer's region).
  const offered = poolOptions.size > 0 && externalBuffersWork() ? poolOptions.size : 0;
  // A link kept from an earlier connection to this port with the same asks
  // goes first (local_reuse.ts); the HELLO asks to keep this one.
  const reuseKey = reuseEnabled() ? clientKey(socketPath(rendezvousPath(req.dir), port), order, offered) : null;
  let path = '';
  let conn = -1;
  let waitFd = -1; // our wake-up end until a link owns it
  let watcher: FdWatcher | null = null;
  let timer: NodeJS.Timeout | null = null;
  let done = false;
  /** The kept link whose REOPEN is unanswered: ours to free if this connect ends without it. */
  let reusing: KeptLink | null = null;
  /** A REOPEN was sent once: a connect waits for at most one answer, then connects afresh. */
  let reopened = false;

  const finish = (err: Error | null, link?: RingLink) => {
    if (done) return;
    done = true;
    if (timer) clearTimeout(timer);
    watcher?.close();
    if (reusing !== null) {
      disposeKept(reusing); // the server sees the close and frees its side
      reusing = null;
    }
    // Without a link (error or cancel) the rendezvous socket is ours to close:
    // the server then sees the hang-up and drops its half of the handshake.
    if (!link) {
      closeQuietly(conn);
      closeQuietly(waitFd);
      closeQuietly(peerEnd);
    }
    if (err || link) callback(err, link);
  };
  const refused = (code: string) => {
    const err = systemError(code === 'ENOENT' ? 'ECONNREFUSED' : code, 'connect', path);
    Object.assign(err, { address: path, port });
    return err;
  };

  let attempts = 0;
  // The fd the HELLO carries, ours until sent (closed by finish otherwise).
  let peerEnd = -1;
  // unref() while connecting (net's handle then stops holding the process):
  // the handshake's watcher and timer follow the socket's ref state; a
  // watcher handed to the link goes back ref'd (its channel sets its own).
  const applyRef = () => {
    if (signal.refed !== false) {
      watcher?.ref();
      timer?.ref();
    } else {
      watcher?.unref();
      timer?.unref();
    }
  };
  signal.onRefChange?.(applyRef);

  /** The kept link did not come back (the server closed it, or did not answer in time): connect afresh. */
  const afresh = (kept: KeptLink) => {
    reuseStats.afresh++;
    if (timer) clearTimeout(timer);
    timer = null;
    watcher = null;
    reusing = null;
    disposeKept(kept);
    attempt();
  };
  /** Asks the server for a kept link's next connection; false if the REOPEN could not be sent (the link is freed). */
  const reopen = (kept: KeptLink, key: string): boolean => {
    if (!sendReopen(kept.conn, false)) {
      disposeKept(kept);
      return false;
    }
    reopened = true;
    reusing = kept;
    watcher = kept.watcher;
    kept.watcher.ref(); // a connect in progress keeps the process alive, as the handshake's watcher does
    /** The server's answer (undefined: it closed the link, or none came in time). */
    const answered = (msg: { data: Buffer; fdCount: number } | undefined) => {
      if (msg === undefined) {
        afresh(kept); // the server freed it (idle, closed): its close is all it says
        return;
      }
      let link: LocalLink;
      try {
        parseReopened(msg.data, msg.fdCount, kept.leftOrder, kept.rightOrder);
        link = reopenClient(kept, key, poolOptions);
      } catch (e) {
        finish(e as Error); // frees the kept link
        return;
      }
      reusing = null;
      kept.watcher.ref();
      watcher = null; // the link's channel takes it
      reuseStats.reopened++;
      finish(null, link);
    };
    kept.watcher.setCallback((events) => {
      if (done) return;
      const msg = keptMessage(kept.conn, events);
      if (msg !== null) answered(msg); // null: a spurious wake-up
    });
    timer = setTimeout(() => {
      timer = null;
      if (done) return;
      // libuv runs timers before polling: a busy loop may find the answer
      // queued but not yet seen. Taken, it is not a phantom connection on
      // the server.
      answered(keptMessage(kept.conn, UV_READABLE) ?? undefined);
    }, REUSE_WAIT_MS);
    applyRef();
    return true;
  };

  /**
   * A kept link whose ring was prepared, claimed: we go on it at once and
   * tell the server (claimed REOPEN), as TCP's connect completes without
   * waiting for the server. False: the server is gone (nothing was sent).
   */
  const reopenClaimed = (kept: KeptLink, key: string): boolean => {
    let link: LocalLink;
    try {
      link = reopenClient(kept, key, poolOptions);
    } catch (e) {
      disposeKept(kept); // a ring the server broke: the server sees the close
      finish(e as Error);
      return true;
    }
    if (!sendReopen(kept.conn, true)) {
      link.release();
      return false;
    }
    reuseStats.reopened++;
    reuseStats.claimed++;
    finish(null, link);
    return true;
  };

  const attempt = () => {
    timer = null;
    if (done) return; // cancelled before the attempt ran
    if (reuseKey !== null && !reopened && attempts === 0 && path === '') {
      // A kept link needs no rendezvous directory: the socket it holds was
      // made through a checked one, to a server whose uid we checked then.
      for (;;) {
        const kept = takeClientLink(reuseKey, (uid) => uid === ownUid() || allowed.includes(uid));
        if (kept === null) break;
        if (claimKept(kept) ? reopenClaimed(kept, reuseKey) : reopen(kept, reuseKey)) return;
      }
    }
    try {
      path ||= socketPath(rendezvousDir(req.dir, 'connect', allowed), port);
      // Made before connecting, so that the HELLO follows the connect at
      // once: the server then usually finds it queued when it accepts.
      if (waitFd < 0) [waitFd, peerEnd] = native.wakePair(); // our wake-up end stays with us; the server gets the other one
    } catch (e) {
      finish(e as Error);
      return;
    }
    try {
      conn = native.unixConnect(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      // EAGAIN: the listener's backlog is full; it is alive, so retry briefly.
      if (code === 'EAGAIN' && attempts++ < 200) {
        timer = setTimeout(attempt, Math.min(50, 1 + attempts));
        applyRef();
        return;
      }
      finish(refused(code));
      return;
    }
    let serverUid: number;
    try {
      serverUid = trustedPeer(conn, allowed, 'connect').uid; // a server of another user could be impersonating ours
    } catch (e) {
      finish(e as Error);
      return;
    }
    const hello = buildHello({ order, pid: process.pid, poolSize: offered, lazyRegions: offered > 0, reusable: reuseKey !== null });
    try {
      let sent: number;
      try {
        sent = native.sendMessage(conn, hello, [peerEnd]);
      } finally {
        closeQuietly(peerEnd);
        peerEnd = -1;
      }
      // A fresh connection's send buffer is empty: EAGAIN here means the
      // kernel is out of buffers, and a HELLO never sent would only time out.
      if (sent !== hello.length) throw systemError('EAGAIN', 'connect', 'handshake hello not sent');
      watcher = new native.FdWatcher(conn, (events) => {
        if (events < 0) {
          // A poll error on the rendezvous socket: fail now, not at the
          // timeout. libuv reports POLLERR as EBADF; the socket's pending
          // error (ECONNRESET, ...) says what happened.
          let code = events === UV_EBADF ? 'ECONNREFUSED' : getSystemErrorName(events);
          try {
            native.recvMessage(conn)?.fds.forEach(closeQuietly);
          } catch (e) {
            code = (e as NodeJS.ErrnoException).code ?? code;
          }
          finish(refused(code));
          return;
        }
        let msg;
        try {
          msg = native.recvMessage(conn);
        } catch (e) {
          finish(refused((e as NodeJS.ErrnoException).code ?? 'ECONNRESET'));
          return;
        }
        if (msg === null) return; // spurious wake-up
        if (msg.data.length === 0) {
          // The server closed without a ring: it is going away, or refused us.
          msg.fds.forEach(closeQuietly);
          finish(refused('ECONNREFUSED'));
          return;
        }
        try {
          const wait = waitFd;
          waitFd = -1;
          const link = acceptReply(conn, serverUid, wait, msg, order, offered, poolOptions, path, port, reuseKey);
          // This watcher goes on as the link's hang-up watcher (same fd, same events).
          watcher!.ref();
          link.handWatcher(watcher!);
          watcher = null;
          finish(null, link);
        } catch (e) {
          conn = -1; // acceptReply closed it and our wake-up end
          finish(e as Error);
        }
      });
      watcher.start(UV_READABLE | UV_DISCONNECT);
      timer = setTimeout(() => finish(systemError('ETIMEDOUT', 'connect', path)), HANDSHAKE_TIMEOUT_MS);
      applyRef();
    } catch (e) {
      finish(e as Error);
    }
  };
  // Asynchronous like net: errors and the link always arrive on a later tick.
  process.nextTick(attempt);
  signal.addEventListener('abort', () => finish(signal.reason as Error), { once: true });
  return result;
}

/** A connection accepted but not yet through its HELLO. */
interface PendingHandshake {
  watcher: FdWatcher;
  timer: NodeJS.Timeout;
  /** Handles the HELLO if it is there; false if it has not arrived. */
  ready(events: number): boolean;
}

class LocalListener implements Listener {
  private watcher: FdWatcher;
  private pending = new Map<number, PendingHandshake>();
  private closed = false;
  private refed = true;
  private acceptBackoffMs = 0;
  private acceptTimer: NodeJS.Timeout | null = null;
  private readonly ino: number;
  /** What this listener's connections leave for their clients' next ones (local_recycle.ts). */
  private readonly recycleScope = openScope();

  constructor(
    private readonly fd: number,
    private readonly path: string,
    private readonly port: number | string,
    private readonly order: number,
    private readonly allowed: readonly number[],
    private readonly poolOptions: PoolOptions,
    private readonly onLink: (link: RingLink) => void,
  ) {
    this.ino = fs.statSync(path).ino;
    this.watcher = new native.FdWatcher(fd, () => this.acceptAll());
    this.watcher.start(UV_READABLE);
  }

  /**
   * Accepts what is queued, a bounded batch per turn. When the fd table is
   * full (EMFILE and friends) the listening socket stays readable, so the
   * watcher is stopped and accepting retried after a growing pause instead
   * of spinning a core; pending handshakes are the first fds to give back.
   */
  private acceptAll(): void {
    for (let batch = 0; batch < MAX_PENDING_HANDSHAKES && !this.closed; batch++) {
      let conn: number;
      try {
        conn = native.unixAccept(this.fd);
      } catch {
        if (this.pending.size > 0) {
          this.makeRoom();
          continue;
        }
        this.pauseAccepting();
        return;
      }
      this.acceptBackoffMs = 0;
      if (conn < 0) return;
      let peer: AcceptedPeer;
      try {
        const cred = trustedPeer(conn, this.allowed, 'accept');
        // The start time now, not at the HELLO: the process that connected
        // may exit and its pid go to another process before a HELLO sent in
        // its name (up to HANDSHAKE_TIMEOUT_MS), which must not get that
        // process's kept ring or region (local_recycle.ts).
        peer = { ...cred, identity: peerIdentity(cred, conn, this.recycleScope) };
      } catch {
        closeQuietly(conn); // another user, not allowed: the client sees ECONNREFUSED
        continue;
      }
      // Connections that never say HELLO hold an fd each: past the cap the
      // oldest is served if it spoke, else dropped (an honest client says
      // HELLO at once).
      if (this.pending.size >= MAX_PENDING_HANDSHAKES) this.makeRoom();
      this.awaitHello(conn, peer);
    }
  }

  private pauseAccepting(): void {
    this.watcher.stop();
    this.acceptBackoffMs = Math.min(1000, Math.max(10, this.acceptBackoffMs * 2));
    this.acceptTimer = setTimeout(() => {
      this.acceptTimer = null;
      if (this.closed) return;
      this.watcher.start(UV_READABLE);
      this.acceptAll();
    }, this.acceptBackoffMs);
    if (!this.refed) this.acceptTimer.unref();
  }

  /**
   * Frees the oldest pending handshake's slot: served now if its HELLO is
   * already queued (an honest burst), else dropped (a connection that never
   * speaks).
   */
  private makeRoom(): void {
    const [conn, p] = this.pending.entries().next().value as [number, PendingHandshake];
    if (p.ready(UV_READABLE)) return;
    this.pending.delete(conn);
    clearTimeout(p.timer);
    p.watcher.close();
    closeQuietly(conn);
  }

  private awaitHello(conn: number, peer: AcceptedPeer): void {
    // A client sends its HELLO right after connecting, so it is often queued
    // already: served now, without a watcher and a timer (fewer syscalls).
    const ready = (events: number): boolean => this.helloReady(conn, peer, events);
    if (ready(UV_READABLE)) return;
    const watcher = new native.FdWatcher(conn, (events) => void ready(events));
    watcher.start(UV_READABLE | UV_DISCONNECT);
    if (!this.refed) watcher.unref();
    const timer = setTimeout(() => {
      this.dropPending(conn);
      closeQuietly(conn);
    }, HANDSHAKE_TIMEOUT_MS);
    timer.unref();
    this.pending.set(conn, { watcher, timer, ready });
  }

  private dropPending(conn: number): void {
    const p = this.pending.get(conn);
    if (!p) return;
    this.pending.delete(conn);
    clearTimeout(p.timer);
    p.watcher.close();
  }

  /** Handles `conn`'s HELLO if it is there (or its failure): false while it has not arrived; otherwise the handshake is over. */
  private helloReady(conn: number, peer: AcceptedPeer, events: number): boolean {
    let msg = null;
    try {
      msg = events < 0 ? null : native.recvMessage(conn);
      if (msg === null && events >= 0) return false;
    } catch {
      msg = null;
    }
    this.dropPending(conn);
    if (msg === null || msg.data.length === 0 || this.closed) {
      msg?.fds.forEach(closeQuietly);
      closeQuietly(conn);
      return true;
    }
    let link: RingLink;
    try {
      // serveHello keeps the one fd a HELLO carries, or closes them all.
      link = serveHello(conn, peer, msg.data, msg.fds, this.order, this.poolOptions, this.path, this.port, (kept, reopen) => this.park(kept, peer, reopen));
    } catch {
      closeQuietly(conn); // the client sees ECONNREFUSED / EPROTO
      return true;
    }
    this.onLink(link);
    return true;
  }

  /**
   * Parks a link that closed in order until its client sends REOPEN
   * (local_reuse.ts); `reopen`: it already did. False: not parked.
   */
  private park(kept: KeptLink, peer: AcceptedPeer, reopen: PendingReopen | null): boolean {
    if (this.closed) return false;
    const entry: ServerParked = Object.assign(kept, {
      peer: `${peer.uid}:${peer.pid}`,
      scope: this.recycleScope,
      late: null,
      claimed: () => this.claimedLate(entry),
    });
    this.peerOf.set(entry, peer);
    entry.watcher.setCallback((events) => this.parkedEvent(entry, peer, events));
    if (!parkServerLink(entry)) return false;
    // Later, not inside the old channel's close (it may run in a callback of
    // the very watchers the next channel takes over); close() serves it
    // first if it comes before that.
    if (reopen !== null) {
      this.deferred.set(entry, reopen === 'claimed');
      setImmediate(() => {
        if (this.deferred.delete(entry)) this.reopen(entry, peer, reopen === 'claimed');
      });
    }
    return true;
  }

  /** A parked link's socket: a REOPEN is answered; anything else (its close, a message it may not send) frees it. */
  private parkedEvent(entry: ServerParked, peer: AcceptedPeer, events: number): void {
    const msg = keptMessage(entry.conn, events);
    if (msg === null) return; // spurious wake-up
    /** A good REOPEN came: whether it is a claimed one (null: none, or a bad one). */
    let claimed: boolean | null = null;
    if (msg !== undefined && isReopen(msg.data)) {
      try {
        claimed = parseReopen(msg.data, msg.fdCount);
      } catch {
        /* a bad REOPEN: freed below, the client sees the close */
      }
    }
    if (!unpark(entry) && !this.takeLate(entry)) return;
    if (claimed !== null) this.reopened(entry, peer, claimed);
    else disposeKept(entry);
  }

  /**
   * A parked link freed from the cache (idle, over the bound, listener
   * closed) whose ring the client had claimed: its REOPEN is queued or on
   * its way, and the client is on the ring already. Served when it comes
   * (parkedEvent), unless the listener closed (the client's connection then
   * resets, as a TCP connection does that was queued when its listener
   * closed); a client that never sends it has the link freed after the
   * handshake timeout.
   */
  private claimedLate(entry: ServerParked): void {
    if (this.closed) {
      disposeKept(entry);
      return;
    }
    this.late.add(entry);
    entry.late = setTimeout(() => {
      entry.late = null;
      this.late.delete(entry);
      disposeKept(entry);
    }, HANDSHAKE_TIMEOUT_MS);
    entry.late.unref();
    if (this.late.size > REUSE_TOTAL || this.lateOf(entry.peer) > REUSE_PER_PEER) {
      const check = setTimeout(() => this.boundLate(), REUSE_WAIT_MS);
      check.unref();
    }
  }

  /** Links freed from the cache while claimed, waiting for their REOPEN (claimedLate). */
  private readonly late = new Set<ServerParked>();
  /** The client of each link this listener parked (weak: a freed link is forgotten). */
  private readonly peerOf = new WeakMap<ServerParked, AcceptedPeer>();
  /** Inside close(): only claimed REOPENs already queued are still served (see close()). */
  private closing = false;
  /** Parked links whose REOPEN came before they were parked, served on the next turn (see park()): claimed or not. */
  private readonly deferred = new Map<ServerParked, boolean>();

  private lateOf(peer: string): number {
    let n = 0;
    for (const e of this.late) if (e.peer === peer) n++;
    return n;
  }

  /**
   * Bounds the links that wait for a REOPEN as the parked ones are
   * (REUSE_PER_PEER, REUSE_TOTAL): a client that claims and never sends it
   * would otherwise grow them by its connect rate times the timeout, an fd
   * and a ring mapping each. A REOPEN already queued is served first (an
   * honest client sends it with its claim, and its watcher may not have run
   * yet); then the oldest over a bound go (their clients see a reset).
   */
  private boundLate(): void {
    for (const e of [...this.late]) this.parkedEvent(e, this.peerOf.get(e)!, UV_READABLE);
    for (const e of [...this.late]) {
      if (this.late.size > REUSE_TOTAL || this.lateOf(e.peer) > REUSE_PER_PEER) this.dropLate(e);
    }
  }

  /** Frees a link that waits for its REOPEN (its client's connection resets). */
  private dropLate(entry: ServerParked): void {
    if (this.takeLate(entry)) disposeKept(entry);
  }

  /** Takes a link that waits for its REOPEN (claimedLate); false if it is no such link. */
  private takeLate(entry: ServerParked): boolean {
    if (!takeLate(entry)) return false;
    this.late.delete(entry);
    return true;
  }

  /** A REOPEN that came before the link was parked. */
  private reopen(entry: ServerParked, peer: AcceptedPeer, claimed: boolean): void {
    if (unpark(entry) || this.takeLate(entry)) this.reopened(entry, peer, claimed);
  }

  /** The parked link's next connection (the entry is ours now); `claimed`: see reopenServer. */
  private reopened(entry: ServerParked, peer: AcceptedPeer, claimed: boolean): void {
    let link: RingLink;
    try {
      if (this.closed || (this.closing && !claimed)) throw new Error('closed');
      link = reopenServer(entry, claimed, this.poolOptions, (kept, reopen) => this.park(kept, peer, reopen));
    } catch {
      disposeKept(entry); // the client sees the close and connects afresh
      return;
    }
    reuseStats.answered++;
    this.onLink(link);
  }

  address(): TransportAddress {
    return address(this.path, this.port);
  }

  close(): void {
    // closing: a 'connection' handler of a link served below may close the server again.
    if (this.closed || this.closing) return;
    // REOPENs already queued on our kept links first. A claimed one's client
    // is on its ring already ('connect' came with the claim), like a TCP
    // connection the kernel completed and the server accepted before it
    // closed: served, not reset (reset, it lost the request it had written:
    // close() right after a reconnect from the same process, found by a new
    // user's walkthrough). An asking one is refused as before: its client
    // connects afresh and finds the port closed (ECONNREFUSED, no 'connect').
    this.closing = true;
    for (const [e, claimed] of [...this.deferred]) {
      this.deferred.delete(e);
      const peer = this.peerOf.get(e);
      if (peer !== undefined) this.reopen(e, peer, claimed);
    }
    for (const e of [...parkedIn(this.recycleScope), ...this.late]) {
      const peer = this.peerOf.get(e);
      if (peer !== undefined) this.parkedEvent(e, peer, UV_READABLE);
    }
    this.closed = true;
    closeScope(this.recycleScope);
    dropParked(this.recycleScope);
    // Those waiting for a REOPEN go too (their clients' connections reset, as
    // TCP connections queued on a listener that closed).
    for (const e of [...this.late]) this.dropLate(e);
    this.watcher.close();
    if (this.acceptTimer) clearTimeout(this.acceptTimer);
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
    this.acceptTimer?.ref();
    for (const p of this.pending.values()) p.watcher.ref();
  }

  unref(): void {
    this.refed = false;
    this.watcher.unref();
    this.acceptTimer?.unref();
    for (const p of this.pending.values()) p.watcher.unref();
  }
}

/**
 * Connecting needs write permission on the socket file, so 0600 lets only
 * our uid in (bind made it from the umask). With other uids allowed it is
 * 0666 and SO_PEERCRED decides who stays.
 */
function setSocketMode(fd: number, path: string, shared: boolean): number {
  try {
    fs.chmodSync(path, shared ? 0o666 : 0o600);
  } catch (e) {
    closeQuietly(fd);
    throw e;
  }
  return fd;
}

/** Binds `path`, replacing a stale socket left by a crashed server. */
function bindListener(path: string, backlog: number, shared: boolean): number {
  try {
    return setSocketMode(native.unixListen(path, backlog), path, shared);
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
      return setSocketMode(native.unixListen(path, backlog), path, shared);
    }
  } finally {
    closeQuietly(probe);
  }
  throw Object.assign(systemError('EADDRINUSE', 'listen', path), { address: path });
}

function listen(req: ListenRequest, onLink: (link: RingLink) => void, _signal: AbortSignal): Listener | Promise<Listener> {
  const requested = normalizePort(req.port);
  const order = ringOrder(req.ringSize, MAX_LOCAL_RING_SIZE);
  checkDirOption(req.dir);
  const allowed = allowedUids(req.allowUid);
  const backlog = req.backlog ?? 511;
  const poolOptions = poolRequest(req.pool);
  let result: Listener;
  try {
    const dir = rendezvousDir(req.dir, 'listen');
    if (requested === 0) {
      // Ephemeral port: pick from the dynamic range until one is free.
      let fd = -1;
      let port = 0;
      for (let i = 0; i < 256 && fd < 0; i++) {
        port = 49152 + Math.floor(Math.random() * 16384);
        try {
          fd = bindListener(socketPath(dir, port), backlog, allowed.length > 0);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
        }
      }
      if (fd < 0) throw systemError('EADDRINUSE', 'listen', 'no free port');
      result = new LocalListener(fd, socketPath(dir, port), port, order, allowed, poolOptions, onLink);
    } else {
      const path = socketPath(dir, requested);
      result = new LocalListener(bindListener(path, backlog, allowed.length > 0), path, requested, order, allowed, poolOptions, onLink);
    }
  } catch (e) {
    return Promise.reject(e as Error);
  }
  return result; // bound now: nothing to wait for, so nothing to abort
}

/** The local transport (memfd pages, pipe wake-ups, UNIX-socket rendezvous). */
export const localTransport: Transport = { name: 'local', connect, listen };
