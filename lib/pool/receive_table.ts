/**
 * The receiver's table: extents the peer announced, in stream order, and the
 * ones we hold (delivered as views, not yet released). Every descriptor is
 * checked before its extent is touched: page-aligned and inside the pool,
 * overlapping nothing announced or held, at a stream position that does not
 * go backwards, and within the in-flight bound both sides agreed on.
 * Violations throw EPROTO. The overlap check compares page ranges with the
 * extents in flight (at most the bound, usually one or two): a page map cost
 * a 16 MiB payload ~2 µs to scan and mark, a tenth of its hand-off.
 * @internal
 */
import { POOL_PAGE } from './layout';
import { poolProtocolError } from './protocol_error';

export interface Extent {
  /** Ring bytes of the stream that precede this payload. */
  readonly position: number;
  readonly offset: number;
  readonly length: number;
}

export class ReceiveTable {
  private readonly pending: Extent[] = [];
  private pendingHead = 0;
  private readonly held = new Map<number, Extent>();
  private lastPosition = 0;
  /** Bytes held (delivered, not released). */
  heldBytes = 0;

  constructor(
    readonly poolBytes: number,
    readonly maxInFlight: number,
  ) {}

  /** Extents announced and not yet delivered. */
  get pendingCount(): number {
    return this.pending.length - this.pendingHead;
  }

  get heldCount(): number {
    return this.held.size;
  }

  /**
   * Records a descriptor. `consumed`: ring bytes we have read so far (an
   * extent cannot be inserted behind them); `unreturned`: completions we
   * queued that the peer has not taken yet (they still count as in flight).
   */
  accept(position: number, offset: number, length: number, consumed: number, unreturned: number): void {
    if (!Number.isSafeInteger(position) || position < this.lastPosition || position < consumed)
      throw poolProtocolError(`extent at stream position ${position} goes backwards`);
    if (offset % POOL_PAGE !== 0 || !(length >= 1) || offset + length > this.poolBytes)
      throw poolProtocolError(`extent ${offset}+${length} is outside the pool`);
    if (this.pendingCount + this.held.size + unreturned >= this.maxInFlight)
      throw poolProtocolError('more extents in flight than the queues allow');
    if (this.overlapsInFlight(offset, length)) throw poolProtocolError(`extent ${offset}+${length} overlaps one in flight`);
    this.lastPosition = position;
    this.pending.push({ position, offset, length });
  }

  /** Whether the pages of [offset, offset + length) (offset page-aligned) share a page with an extent announced or held. */
  private overlapsInFlight(offset: number, length: number): boolean {
    const end = pageEnd(offset, length);
    for (let i = this.pendingHead; i < this.pending.length; i++) {
      const e = this.pending[i];
      if (offset < pageEnd(e.offset, e.length) && e.offset < end) return true;
    }
    for (const e of this.held.values()) {
      if (offset < pageEnd(e.offset, e.length) && e.offset < end) return true;
    }
    return false;
  }

  /** Stream position of the next payload to insert, or -1 when none is announced. */
  nextPosition(): number {
    return this.pendingHead < this.pending.length ? this.pending[this.pendingHead].position : -1;
  }

  /** Takes the next announced extent; it is held until released. */
  deliver(): Extent {
    if (this.pendingHead >= this.pending.length) throw new Error('pool: nothing to deliver');
    const extent = this.pending[this.pendingHead++];
    if (this.pendingHead > 64 && this.pendingHead * 2 > this.pending.length) {
      this.pending.splice(0, this.pendingHead);
      this.pendingHead = 0;
    }
    this.held.set(extent.offset, extent);
    this.heldBytes += extent.length;
    return extent;
  }

  /** Whether `extent` is still held (not yet released). */
  holds(extent: Extent): boolean {
    return this.held.get(extent.offset) === extent;
  }

  /** Stops holding `extent`; the caller returns it to the peer. */
  release(extent: Extent): void {
    if (!this.holds(extent)) throw new Error('pool: releasing an extent that is not held');
    this.held.delete(extent.offset);
    this.heldBytes -= extent.length;
  }

  /** The connection is gone: forget everything; returns how many were held. */
  releaseAll(): number {
    const n = this.held.size;
    this.held.clear();
    this.pending.length = 0;
    this.pendingHead = 0;
    this.heldBytes = 0;
    return n;
  }
}

/** End of the last page an extent at page-aligned `offset` touches. */
function pageEnd(offset: number, length: number): number {
  return offset + Math.ceil(length / POOL_PAGE) * POOL_PAGE;
}
