/**
 * Receive buffers carved from large slabs, so a read costs a subarray instead
 * of an allocation per chunk. A slab is dropped once full; the chunks handed
 * out keep it alive as long as the user does. Slabs come from a per-thread
 * recycler: once V8 has collected a slab (every chunk of it unreachable) it
 * is handed out again, its pages still faulted in and likely in cache. A
 * fresh slab costs a page fault per 4 KiB (2.5-7 µs each on our VM; most of
 * a 'data' receiver's time at 1 MiB/s rates, measured in docs/benchmark.md),
 * a reused one nothing. A Buffer handed to user code is never reused while
 * reachable: only V8 releases it.
 * @internal
 */
import { returnedBuffers, type SlabRecycler } from '../returned_buffers';

/**
 * Collected slabs kept for reuse, per slab size, per thread (each worker has
 * its own cache). A receiver has ~32 MiB of slabs out between two minor GCs
 * (V8 runs one when young buffers reach twice the semi-space), so fewer would
 * send most takes to fresh memory again.
 */
const KEEP_BYTES = 48 << 20;
/** A recycler that handed out no slab for this long gives its cache back. */
const IDLE_TRIM_MS = 2000;

class Recycler {
  readonly slabs: SlabRecycler;
  private taken = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(size: number) {
    this.slabs = new returnedBuffers.SlabRecycler(size, Math.max(2, Math.floor(KEEP_BYTES / size)));
  }

  take(): Buffer {
    this.taken = true;
    // Unref'd: a quiet process may exit with slabs cached.
    this.timer ??= setTimeout(this.checkIdle, IDLE_TRIM_MS).unref();
    return this.slabs.take();
  }

  private readonly checkIdle = (): void => {
    if (this.taken) {
      this.taken = false;
      this.timer = setTimeout(this.checkIdle, IDLE_TRIM_MS).unref();
      return;
    }
    this.timer = null;
    this.slabs.trim(0);
  };
}

const recyclers = new Map<number, Recycler>();

/** Slab sizes in use (for benches). */
export function slabSizes(): number[] {
  return [...recyclers.keys()];
}

/** Slabs of `slabSize` bytes handed out so far: reused after collection, or fresh (for benches). */
export function slabCounts(slabSize: number): { reused: number; fresh: number } {
  const r = recyclers.get(slabSize);
  return { reused: r?.slabs.reused ?? 0, fresh: r?.slabs.fresh ?? 0 };
}

/** Collected slabs of `slabSize` bytes waiting to be reused (for tests). */
export function cachedSlabs(slabSize: number): number {
  return recyclers.get(slabSize)?.slabs.cached ?? 0;
}

function recyclerFor(size: number): Recycler {
  let r = recyclers.get(size);
  if (r === undefined) {
    r = new Recycler(size);
    recyclers.set(size, r);
  }
  return r;
}

/**
 * A connection's first room: a slice of Node's own small-buffer pool
 * (Buffer.allocUnsafe below 4 KiB), no slab. Most short connections (a
 * request, its response) never read more; taking a slab for them cost each
 * side ~20-30 µs per connection (an external buffer, its finalizer, and the
 * GCs that V8's external-memory count starts).
 */
const FIRST_ROOM = 4032;
/** The slab after the first room (see ReadPool's constructor). */
const FIRST_SLAB = 64 * 1024;

export class ReadPool {
  private slab: Buffer;
  private used = 0;
  private readonly recycler: Recycler;

  constructor(private readonly slabSize: number) {
    this.recycler = recyclerFor(slabSize);
    this.slab = Buffer.allocUnsafe(Math.min(FIRST_ROOM, slabSize));
  }

  /** Room for up to `want` bytes (at least 1): fill it, then call take(n). */
  space(want: number): { buffer: Buffer; offset: number; length: number } {
    // The first room and slab are used up to their last KiB: a short connection needs no next one.
    const minRoom = this.slab.length < this.slabSize ? 1024 : 64 * 1024;
    if (this.slab.length - this.used < Math.min(want, minRoom) || this.used === this.slab.length) {
      this.slab = want > this.slabSize ? Buffer.allocUnsafeSlow(want) : this.nextSlab();
      this.used = 0;
    }
    return { buffer: this.slab, offset: this.used, length: Math.min(want, this.slab.length - this.used) };
  }

  /**
   * After the first room a small slab, then full ones: V8 counts every slab
   * handed out as external memory until a GC, so a full one per short
   * connection started a major GC every ~64 connections.
   */
  private nextSlab(): Buffer {
    if (this.slab.length < FIRST_SLAB && this.slabSize > FIRST_SLAB) return recyclerFor(FIRST_SLAB).take();
    return this.recycler.take();
  }

  /** Hands out the `n` bytes just filled. Keeps 64-byte alignment for the next chunk (whole cache lines for the copy). */
  take(n: number): Buffer {
    const chunk = this.slab.subarray(this.used, this.used + n);
    this.used = Math.min(this.slab.length, (this.used + n + 63) & ~63);
    return chunk;
  }
}
