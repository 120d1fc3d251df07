/**
 * The pool's native primitives, typed (native/pool_mapping.cc, pool_queue.cc).
 * Kept here rather than in ../native.ts so the pool can grow without touching
 * the shared binding file. Nothing here holds policy.
 * @internal
 */
import { closeQuietly, native } from '../native';

/** A pool's pages, mapped once; views keep them mapped after close(). */
export interface PoolMapping {
  readonly length: number;
  /** Live views and queues of these pages (0 once closed). */
  readonly holders: number;
  /** A Buffer over [offset, offset + length) of the pages (bounds checked). */
  view(offset: number, length: number): Buffer;
  /** Copies `length` bytes at `offset` into `target` at `targetOffset` (bounds checked). */
  read(offset: number, target: Uint8Array, targetOffset: number, length: number): void;
  /** Copies `source` into the pages at `offset` (bounds checked). */
  write(offset: number, source: Uint8Array): void;
  /** Drops this object's reference; the pages are unmapped when no view or queue is left. */
  close(): void;
}

export interface PoolQueueOptions {
  mapping: PoolMapping;
  /** Byte offset of the queue in the mapping (64-byte aligned). */
  offset: number;
  /** Entries the queue holds (power of two). */
  slots: number;
  /** u32 words per entry; the last two are (offset, length) of an extent. */
  words: number;
  role: 'producer' | 'consumer';
  /** Zero both indices (the creator, once, before sharing). */
  init: boolean;
  /** Every popped extent must lie inside [0, limit); else EPROTO. */
  limit: number;
}

/** One side of an SPSC queue of fixed-size entries in shared memory. */
export interface PoolQueue {
  /** Queues up to `count` entries from `entries`; returns how many fit (never waits). */
  push(entries: Uint32Array, count: number): number;
  /** Moves up to `max` entries into `out`; EPROTO on corrupt indices or extents. */
  pop(out: Uint32Array, max: number): number;
  /** Producer: pushed and not yet popped. Consumer: ready to pop. */
  pending(): number;
  /** Our own index: entries pushed (producer) or popped (consumer), mod 2^32. */
  readonly index: number;
  /**
   * A 1-word view of the peer's index in shared memory (the same one on
   * every call): a hint for JS that costs no native call, never trusted
   * (push/pop read and check the index themselves). It holds no reference on
   * the region and is detached when the queue closes or is collected (it
   * then reads `undefined`). Throws where external buffers are refused.
   */
  peerIndex(): Uint32Array;
  close(): void;
}

export interface PoolBinding {
  PoolMapping: new (fd: number, length: number, writable: boolean, offset?: number) => PoolMapping;
  PoolQueue: new (options: PoolQueueOptions) => PoolQueue;
  /** Pool mappings still mapped in this process (leak checks). */
  poolRegionsAlive(): number;
  /**
   * Detaches the ArrayBuffer of a view the pool made and is done with (a
   * loan sent, a payload released): it reads as empty from then on, and V8
   * drops its bytes from the external-memory count now instead of at a GC.
   */
  detachView(buffer: ArrayBuffer): void;
}

export const poolNative = native as unknown as PoolBinding;

let externalBuffers: boolean | null = null;

/**
 * Whether this runtime lets a view of pool pages be a Buffer (some embedders
 * refuse external buffers). Probed once, on a page of a memfd.
 */
export function externalBuffersWork(): boolean {
  if (externalBuffers !== null) return externalBuffers;
  let fd = -1;
  let mapping: PoolMapping | null = null;
  try {
    fd = native.memfdCreate('xenring-probe', 4096);
    mapping = new poolNative.PoolMapping(fd, 4096, true);
  } catch {
    closeQuietly(fd);
    return false; // out of fds or memory now: asked again next time
  }
  try {
    const view = mapping.view(0, 1);
    poolNative.detachView(view.buffer as ArrayBuffer);
    externalBuffers = true;
  } catch {
    externalBuffers = false;
  } finally {
    mapping.close();
    closeQuietly(fd);
  }
  return externalBuffers;
}
