/**
 * Page extents of the sender's pool: first fit from the lowest address (so a
 * lightly used pool touches, and on `local` commits, only its first pages),
 * coalescing on free. Bounded: alloc() returns null when no run of pages is
 * long enough; nothing here waits.
 * @internal
 */
export class ExtentAllocator {
  // Free runs, sorted by start page, never adjacent (always coalesced).
  private readonly starts: number[] = [];
  private readonly lengths: number[] = [];
  private free = 0;

  constructor(readonly pages: number) {
    if (pages > 0) {
      this.starts.push(0);
      this.lengths.push(pages);
      this.free = pages;
    }
  }

  /** Pages not allocated. */
  get freePages(): number {
    return this.free;
  }

  /** First page of a run of `count` pages, or null when none is free. */
  alloc(count: number): number | null {
    if (!(count >= 1) || count > this.free) return null;
    for (let i = 0; i < this.starts.length; i++) {
      if (this.lengths[i] < count) continue;
      const start = this.starts[i];
      if (this.lengths[i] === count) {
        this.starts.splice(i, 1);
        this.lengths.splice(i, 1);
      } else {
        this.starts[i] += count;
        this.lengths[i] -= count;
      }
      this.free -= count;
      return start;
    }
    return null;
  }

  /** Returns a run. Throws on a run that is not wholly allocated (a bug in the caller's table). */
  release(start: number, count: number): void {
    if (!Number.isInteger(start) || !Number.isInteger(count) || count < 1 || start < 0 || start + count > this.pages)
      throw new RangeError(`extent ${start}+${count} is outside the pool`);
    // i: first free run starting after `start`.
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid] <= start) lo = mid + 1;
      else hi = mid;
    }
    const i = lo;
    const prevEnd = i > 0 ? this.starts[i - 1] + this.lengths[i - 1] : 0;
    if ((i > 0 && prevEnd > start) || (i < this.starts.length && this.starts[i] < start + count))
      throw new RangeError(`extent ${start}+${count} is already free`);
    const joinPrev = i > 0 && prevEnd === start;
    const joinNext = i < this.starts.length && this.starts[i] === start + count;
    if (joinPrev && joinNext) {
      this.lengths[i - 1] += count + this.lengths[i];
      this.starts.splice(i, 1);
      this.lengths.splice(i, 1);
    } else if (joinPrev) {
      this.lengths[i - 1] += count;
    } else if (joinNext) {
      this.starts[i] = start;
      this.lengths[i] += count;
    } else {
      this.starts.splice(i, 0, start);
      this.lengths.splice(i, 0, count);
    }
    this.free += count;
  }
}
