/**
 * Moving bytes from one stream to another with backpressure (the source
 * pauses while the destination's buffer is full) and half-close (the
 * source's end becomes the destination's end, nothing more).
 *
 * Why not pipe(): a proxy forwards every chunk of every connection, so the
 * per-chunk cost is the proxy's cost. Sockets made with {@link pooledOnRead}
 * (net's and ours `onread` option) read straight into buffers of one shared
 * pool and hand them to write(): no allocation, no fresh pages and no
 * Readable queue per chunk. Reads start in 64 KiB buffers; a read that fills
 * one gets a 192 KiB buffer next (bulk), one that does not goes back to
 * 64 KiB. Accepted TCP and UNIX sockets get it too (see address.ts withOnRead);
 * other sources (stdin) use one 'data' listener.
 * @internal
 */
import type { Readable, Writable } from 'node:stream';
import { DEFAULT_COPY_THRESHOLD } from '../pool/layout';

/** Bytes per read buffer: what net reads at a time. */
const BUFFER_SIZE = 64 * 1024;
/**
 * After a read that filled its buffer (a bulk transfer), the next read gets
 * one this large: fewer callbacks and writes per MiB. Below the pool's copy
 * threshold, so a chunk written on to a ring goes through the ring (reused,
 * its pages warm) and not by reference: pool pages stay lent until the
 * receiver releases them (a Node client holding views: its next GC), so a
 * proxy's 512 KiB chunks kept landing on fresh pool pages, page faults on
 * both sides (1 MiB GET through the bridge: 2.28 -> 1.50 ms, TCP relay 1.39).
 */
const BULK_SIZE = DEFAULT_COPY_THRESHOLD - 64 * 1024;

/** Read buffers of one size, reused once nothing can still be reading them. */
class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly size: number,
    /** Free buffers kept for reuse; beyond that they are left to the GC. */
    private readonly keep: number,
  ) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  give(buf: Buffer): void {
    if (buf.length === this.size && this.free.length < this.keep) this.free.push(buf);
  }
}

const small = new BufferPool(BUFFER_SIZE, 64);
const bulk = new BufferPool(BULK_SIZE, 8);
/** Set by each read callback for the buffer request that follows it at once (net and
 * xenring sockets both ask for the next buffer right after the callback returns). */
let lastReadFilled = false;

function give(buf: Buffer): void {
  (buf.length === BULK_SIZE ? bulk : small).give(buf);
}

const relays = new WeakMap<object, Relay>();

/** One direction of a forwarded connection. */
class Relay {
  /**
   * Pool buffers given to to.write() that it had not finished with when it
   * returned (queued, or partly written): back to the pool once the
   * destination holds no unfinished write.
   */
  private readonly lent: Buffer[] = [];

  constructor(
    private readonly from: Readable,
    private readonly to: Writable,
    private readonly count: (n: number) => void,
  ) {}

  readonly onData = (chunk: Buffer): void => {
    this.count(chunk.length);
    if (!this.to.write(chunk)) this.from.pause();
  };

  /** `n` bytes were read into `buf`, a pool buffer (see pooledOnRead). */
  onRead(n: number, buf: Buffer): void {
    this.count(n);
    const more = this.to.write(n === buf.length ? buf : buf.subarray(0, n));
    // writableLength 0: every write finished (the bytes were copied out), so
    // no buffer is still referenced; otherwise this one may be.
    if (this.to.writableLength === 0) {
      this.release();
      give(buf);
    } else {
      this.lent.push(buf);
    }
    // pause(), not `return false`: net restarts reading on resume() only if
    // the stream was paused (readableFlowing false).
    if (!more) this.from.pause();
  }

  readonly onDrain = (): void => {
    this.release();
    this.from.resume();
  };

  private release(): void {
    for (const b of this.lent) give(b);
    this.lent.length = 0;
  }
}

/**
 * The `onread` option for sockets whose data goes to {@link forward}: reads
 * land in pool buffers and are written on at once. Only for sockets given
 * to forward() before they can read (paused, or not yet connected).
 */
export const pooledOnRead = {
  buffer: (): Buffer => {
    const filled = lastReadFilled;
    lastReadFilled = false;
    return filled ? bulk.take() : small.take();
  },
  callback(this: unknown, n: number, buf: Uint8Array): boolean {
    lastReadFilled = n === buf.length;
    const relay = relays.get(this as object);
    // Unreachable unless a socket reads before forward(): the bytes would be lost.
    if (relay === undefined) throw new Error('xenring: a pooled read arrived before forward() was set up');
    relay.onRead(n, buf as Buffer);
    return true; // backpressure is pause()/resume(), see onRead
  },
};

/**
 * Forwards `from` into `to`, calling `count(n)` for every chunk; `from`'s end
 * ends `to` (except stdout and stderr, as pipe() does). Returns a function
 * that stops forwarding (and leaves `from` paused).
 */
export function forward(from: Readable, to: Writable, count: (n: number) => void): () => void {
  const relay = new Relay(from, to, count);
  relays.set(from, relay);
  const onEnd = () => {
    if (to !== process.stdout && to !== process.stderr) to.end();
  };
  from.on('data', relay.onData); // only sources without pooledOnRead emit 'data'
  from.once('end', onEnd);
  to.on('drain', relay.onDrain);
  from.resume();
  return () => {
    from.off('data', relay.onData);
    from.off('end', onEnd);
    to.off('drain', relay.onDrain);
    relays.delete(from);
    from.pause();
  };
}
