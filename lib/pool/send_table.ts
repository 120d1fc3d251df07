/**
 * The sender's in-flight table: which extents of our pool are loaned to the
 * user (allocBuffer), which are sent and held by the peer, and whether a
 * completion from the peer names exactly one extent we sent (iceoryx2's rule:
 * anything else is a corrupt peer).
 *
 *   free -> loaned (loan) -> sent (send) -> free (complete)
 *   loaned -> free (discard: written through the ring, or dropped unsent)
 * @internal
 */
import { ExtentAllocator } from './extent_allocator';
import { POOL_PAGE } from './layout';
import { poolProtocolError } from './protocol_error';

export interface Loan {
  /** Byte offset of the extent in the pool (page-aligned). */
  readonly offset: number;
  /** Bytes of the extent (whole pages; trim() may shrink an unsent one). */
  bytes: number;
  state: 'loaned' | 'sent' | 'free';
  /** Bytes the descriptor announced (set by send()). */
  sentLength: number;
}

export class SendTable {
  private readonly allocator: ExtentAllocator;
  private readonly byOffset = new Map<number, Loan>();
  private sentCount = 0;
  /** Bytes loaned or in flight. */
  inUse = 0;

  /**
   * @param poolBytes bytes of pool (whole pages)
   * @param maxInFlight most extents sent and not yet returned (the queues' slots:
   *   the peer's completion queue can then never overflow)
   */
  constructor(
    readonly poolBytes: number,
    readonly maxInFlight: number,
  ) {
    this.allocator = new ExtentAllocator(Math.floor(poolBytes / POOL_PAGE));
  }

  /** Extents sent and not yet returned. */
  get inFlight(): number {
    return this.sentCount;
  }

  /** An extent of at least `bytes` bytes, or null when the pool cannot serve it now. */
  loan(bytes: number): Loan | null {
    if (!(bytes >= 1)) return null;
    const pages = Math.ceil(bytes / POOL_PAGE);
    const page = this.allocator.alloc(pages);
    if (page === null) return null;
    const loan: Loan = { offset: page * POOL_PAGE, bytes: pages * POOL_PAGE, state: 'loaned', sentLength: 0 };
    this.byOffset.set(loan.offset, loan);
    this.inUse += loan.bytes;
    return loan;
  }

  /** Whether another extent may be sent now (false: take the ring path). */
  canSend(): boolean {
    return this.sentCount < this.maxInFlight;
  }

  /** The loan's first `length` bytes are announced to the peer. */
  send(loan: Loan, length: number): void {
    if (loan.state !== 'loaned' || this.byOffset.get(loan.offset) !== loan) throw new Error('pool: sending an extent that is not loaned');
    if (!(length >= 1 && length <= loan.bytes)) throw new RangeError('pool: sent length outside the loan');
    if (!this.canSend()) throw new Error('pool: too many extents in flight');
    loan.state = 'sent';
    loan.sentLength = length;
    this.sentCount++;
  }

  /**
   * An unsent loan keeps only the pages its first `length` bytes need; the
   * rest go back to the pool at once (a run opened at 1 MiB and sent part
   * full would otherwise hold its empty tail until the peer returns it).
   */
  trim(loan: Loan, length: number): void {
    if (loan.state !== 'loaned' || this.byOffset.get(loan.offset) !== loan) throw new Error('pool: trimming an extent that is not loaned');
    if (!(length >= 1 && length <= loan.bytes)) throw new RangeError('pool: trimmed length outside the loan');
    const keep = Math.ceil(length / POOL_PAGE) * POOL_PAGE;
    if (keep === loan.bytes) return;
    this.allocator.release((loan.offset + keep) / POOL_PAGE, (loan.bytes - keep) / POOL_PAGE);
    this.inUse -= loan.bytes - keep;
    loan.bytes = keep;
  }

  /** A loan that was never sent goes back to the pool. No-op for any other state. */
  discard(loan: Loan): void {
    if (loan.state !== 'loaned' || this.byOffset.get(loan.offset) !== loan) return;
    this.free(loan);
  }

  /**
   * The peer returned (offset, length). Valid only for an extent we sent with
   * exactly that length and that is not yet returned: anything else (never
   * sent, still only loaned, returned twice, wrong length) throws EPROTO.
   */
  complete(offset: number, length: number): Loan {
    const loan = this.byOffset.get(offset);
    if (loan === undefined) throw poolProtocolError(`returned extent ${offset}+${length} that was never sent`);
    if (loan.state !== 'sent') throw poolProtocolError(`returned extent ${offset}+${length} that is not in flight`);
    if (loan.sentLength !== length) throw poolProtocolError(`returned extent ${offset}+${length} with the wrong length`);
    this.sentCount--;
    this.free(loan);
    return loan;
  }

  /** The connection is gone: every loan and every extent in flight is free. */
  closeAll(): void {
    for (const loan of this.byOffset.values()) loan.state = 'free';
    this.byOffset.clear();
    this.sentCount = 0;
    this.inUse = 0;
  }

  private free(loan: Loan): void {
    loan.state = 'free';
    this.byOffset.delete(loan.offset);
    this.inUse -= loan.bytes;
    this.allocator.release(loan.offset / POOL_PAGE, loan.bytes / POOL_PAGE);
  }
}
