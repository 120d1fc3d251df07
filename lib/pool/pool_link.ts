/**
 * Both directions of one connection's pool, as a transport hands them to the
 * channel: our region (we send in it) and the peer's (we receive in it),
 * either of which may be absent (size 0). What the socket's allocBuffer(),
 * release() and poolStats() delegate to. Also the transport-side decisions
 * that are pool policy: the agreed size, the trust rule for views, and
 * making or checking a local region memfd.
 * @internal
 */
import { native } from '../native';
import { regionBytes } from './layout';
import { poolNative, PoolMapping } from './native_pool';
import { PoolReceiver } from './pool_receiver';
import { PoolSender } from './pool_sender';
import { connectionPoolStats, PoolStats } from './pool_stats';
import type { LazyOpen } from './lazy_open';

/** The size both sides use for one direction: the smaller offer; 0 if either is 0. */
export function agreePoolSize(ours: number, theirs: number): number {
  return Math.min(ours, theirs);
}

/**
 * Whether received payloads may be views of the peer's pages. Views are the
 * default only where the peer is as trusted as this process (local, same
 * uid); elsewhere a private copy, unless the user opted in (pool.views).
 */
export function viewsAllowed(transport: 'local' | 'xen', sameUid: boolean, optIn: boolean | undefined): boolean {
  if (optIn !== undefined) return optIn;
  return transport === 'local' && sameUid;
}

/** A new local region (sealed memfd) for a pool of `poolBytes`, mapped by us. The fd goes to the peer. */
export function createLocalRegion(poolBytes: number): { fd: number; mapping: PoolMapping } {
  const size = regionBytes(poolBytes);
  const fd = native.memfdCreate('xenring-pool', size);
  try {
    return { fd, mapping: new poolNative.PoolMapping(fd, size, true) };
  } catch (err) {
    native.closeFd(fd);
    throw err;
  }
}

/**
 * Maps the peer's region fd after checking it is a sealed memfd of the size
 * the peer announced (`announcedBytes` of pool, EPROTO otherwise); only the
 * agreed `poolBytes` (no more than announced) are mapped.
 */
export function mapPeerRegion(fd: number, poolBytes: number, announcedBytes = poolBytes): PoolMapping {
  if (poolBytes > announcedBytes) throw new RangeError('pool: agreed size above the announced one');
  native.memfdCheck(fd, regionBytes(announcedBytes));
  return new poolNative.PoolMapping(fd, regionBytes(poolBytes), true);
}

export interface PoolLinkOptions {
  /** Our region (we send in it) and its pool size; null: no pool this way. */
  own: { mapping: PoolMapping | (() => PoolMapping); poolBytes: number; kept?: PoolMapping | null } | null;
  /** The peer's region (we receive in it); null: no pool that way. Functions: regions on demand (see PoolSender, PoolReceiver). */
  peer: { mapping: PoolMapping | (() => PoolMapping); poolBytes: number } | null;
  /** Whoever created a region zeroes its queues, before the other side maps it. */
  createdOwn: boolean;
  createdPeer: boolean;
  views: boolean;
  copyThreshold?: number;
  copyMax?: number;
  copyWindow?: number;
  /** Our region's pages come into being at their first write (PoolSenderOptions.coldPages). */
  coldPages?: boolean;
  /** A reader that copies payloads gets ordinary Buffers through the ring (PoolSenderOptions.ringForCopyingReaders). */
  ringForCopyingReaders?: boolean;
  /** A GC-driven completion failed (EPROTO): the connection must fail. */
  onError?: (err: Error) => void;
  /** The pool bytes of the ring's control page (local): the receiver opens once the peer's sender has. Absent: at once. */
  lazy?: LazyOpen | null;
}

/** What fails a connection for its pool's errors (the channel driving the link). */
export interface PoolErrorSink {
  poolFailed(err: Error): void;
}

export class PoolLink {
  readonly sender: PoolSender | null;
  readonly receiver: PoolReceiver | null;
  /**
   * Told of an error found outside any stream call (a completion from a GC
   * callback failed): the channel that drives this link sets itself here and
   * fails the connection. Falls back to options.onError. An object with a
   * method, not a callback: a closure assigned where it was made stays
   * reachable through V8's young-generation GCs until the next full one, and
   * with it the whole connection (docs/benchmark.md, "Young garbage").
   */
  errorSink: PoolErrorSink | null = null;

  constructor(private readonly options: PoolLinkOptions) {
    const { own, peer } = options;
    this.sender = own && own.poolBytes > 0
      ? new PoolSender({ mapping: own.mapping, poolBytes: own.poolBytes, init: options.createdOwn, copyThreshold: options.copyThreshold, copyMax: options.copyMax, copyWindow: options.copyWindow, coldPages: options.coldPages, ringForCopyingReaders: options.ringForCopyingReaders, kept: own.kept, lazy: options.lazy })
      : null;
    try {
      this.receiver = peer && peer.poolBytes > 0
        ? new PoolReceiver({ mapping: peer.mapping, poolBytes: peer.poolBytes, init: options.createdPeer, views: options.views, onError: (err) => this.failed(err), lazy: options.lazy })
        : null;
    } catch (err) {
      this.sender?.close();
      throw err;
    }
  }

  /** A Buffer in our pool, or an ordinary one when the pool cannot serve (never throws for room). */
  allocBuffer(size: number): Buffer {
    // Bad sizes get Buffer's own errors (ERR_INVALID_ARG_TYPE, ERR_OUT_OF_RANGE); 0 is no fallback.
    if (!(Number.isSafeInteger(size) && size > 0)) return Buffer.allocUnsafe(size);
    try {
      return this.sender?.allocBuffer(size) ?? Buffer.allocUnsafe(size);
    } catch (err) {
      // The peer's completions were bad (EPROTO): the connection fails, the caller still gets a Buffer.
      this.failed(err as Error);
      return Buffer.allocUnsafe(size);
    }
  }

  /** Hands a received pool Buffer back early; false for any other Buffer. */
  release(buf: Uint8Array): boolean {
    try {
      return this.receiver?.release(buf) ?? false;
    } catch (err) {
      this.failed(err as Error); // the peer rewound our completion index
      return false;
    }
  }

  /** The size of the larger direction (0: no pool at all). */
  get size(): number {
    return Math.max(this.sender?.stats.size ?? 0, this.receiver?.stats.size ?? 0);
  }

  stats(): PoolStats {
    try {
      this.sender?.reclaim(); // current: completions the peer queued since the last write
    } catch (err) {
      this.failed(err as Error);
    }
    return connectionPoolStats(this.sender?.stats ?? null, this.receiver?.stats ?? null);
  }

  private failed(err: Error): void {
    if (this.errorSink) this.errorSink.poolFailed(err);
    else if (this.options.onError) this.options.onError(err);
    else throw err;
  }

  /**
   * Both halves close; views the user holds stay readable. `keepOwn`: our
   * region stays mapped, for the transport to reuse once the settle function
   * (see PoolSender.close) says every extent came back; null: closed.
   */
  close(keepOwn = false): { mapping: PoolMapping; settle: () => boolean } | null {
    const settle = this.sender?.close(keepOwn) ?? null;
    this.receiver?.close();
    this.options.lazy?.close(); // its view is of a control page a kept link reuses
    return settle !== null ? { mapping: this.sender!.region!, settle } : null;
  }
}
