/**
 * Views of pool extents the pool has taken back (a loan sent by reference,
 * a payload released), kept to be handed out again when the same extent is
 * loaned or delivered with the same length: a stream of equal messages
 * reuses one extent (first fit from the lowest page) and so one Buffer,
 * instead of making a new external Buffer and detaching the old one per
 * message (each a native call, and each detached one a wake-up of the event
 * loop for Node to run its finalizer: docs/benchmark.md, the 16 MiB
 * hand-off). Bounded; a view that is not kept is detached (it reads as
 * empty, and V8 drops it now rather than at a GC).
 * @internal
 */
import { poolNative } from './native_pool';

/** Views kept per pool direction: a stream of equal messages needs one per extent in flight. */
export const SPARE_VIEWS = 16;

export class SpareViews {
  // By extent offset, oldest first.
  private readonly views = new Map<number, Buffer>();

  /** @param onDrop told of each view detached (before it is) */
  constructor(private readonly onDrop: (ab: ArrayBuffer) => void = () => {}) {}

  /** The kept view of [offset, offset + length), taken out, or null (one of another length is dropped). */
  take(offset: number, length: number): Buffer | null {
    const view = this.views.get(offset);
    if (view === undefined) return null;
    this.views.delete(offset);
    if (view.length === length) return view;
    this.drop(view);
    return null;
  }

  /**
   * Keeps the view of the extent at `offset`; `buf` is it or a subarray of
   * it (the whole view is kept). The oldest goes when SPARE_VIEWS are kept.
   */
  keep(offset: number, buf: Uint8Array): void {
    const ab = buf.buffer as ArrayBuffer;
    const view = Buffer.isBuffer(buf) && buf.byteOffset === 0 && buf.length === ab.byteLength ? buf : Buffer.from(ab);
    const old = this.views.get(offset);
    if (old !== undefined) {
      this.views.delete(offset);
      if (old.buffer !== ab) this.drop(old);
    }
    if (this.views.size >= SPARE_VIEWS) {
      const [oldest, first] = this.views.entries().next().value as [number, Buffer];
      this.views.delete(oldest);
      this.drop(first);
    }
    this.views.set(offset, view);
  }

  /** Detaches every kept view (the connection closed: none of them is the user's). */
  clear(): void {
    for (const view of this.views.values()) this.drop(view);
    this.views.clear();
  }

  private drop(view: Buffer): void {
    const ab = view.buffer as ArrayBuffer;
    this.onDrop(ab);
    poolNative.detachView(ab);
  }
}
