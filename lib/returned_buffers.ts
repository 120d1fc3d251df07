/**
 * Buffers whose memory comes back when V8 collects them (native/returned_buffers.cc),
 * typed. A Buffer's own finalizer runs after a minor GC as well; a
 * FinalizationRegistry target is kept alive by the minor GC, so it would come
 * back only at a full GC. Nothing here holds policy.
 * @internal
 */
import { native } from './native';
import type { PoolMapping } from './pool/native_pool';

/** Page-aligned slabs of one size; a collected slab is handed out again (faulted in, likely cached). */
export interface SlabRecycler {
  /** A slab (old contents: the caller overwrites what it hands on). */
  take(): Buffer;
  /** Frees collected slabs beyond `keep`, and until the next take() those collected later; returns how many were freed now. */
  trim(keep: number): number;
  /** Collected slabs waiting to be taken. */
  readonly cached: number;
  /** Slabs handed out again / newly allocated, so far. */
  readonly reused: number;
  readonly fresh: number;
}

/** Views of pool pages that report their own collection. */
export interface ViewReturns {
  /**
   * A Buffer over the mapping's [offset, offset + length) (bounds checked);
   * once V8 collects it, `id` is queued for drain(). `counted`: V8 counts its
   * bytes as new external memory (GCs are paced by them).
   */
  view(mapping: PoolMapping, offset: number, length: number, id: number, counted: boolean): Buffer;
  /** Moves the ids of collected views into `out`; returns how many. */
  drain(out: Uint32Array): number;
  /** Drops the onCollected callback (the owner is done; it held the owner alive). */
  close(): void;
}

interface ReturnedBuffersBinding {
  SlabRecycler: new (slabSize: number, keep: number) => SlabRecycler;
  /** onCollected(): a collected view's id was queued and none was waiting (called from the event loop). */
  ViewReturns: new (onCollected?: () => void) => ViewReturns;
}

export const returnedBuffers = native as unknown as ReturnedBuffersBinding;
