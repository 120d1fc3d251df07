/**
 * When to spin before sleeping. A spin that finds nothing (a slow peer, or a
 * peer that needs the CPU we are spinning on) makes the next ones
 * exponentially rarer: skip 2, 4, ... 1024 chances; a spin that finds what it
 * waited for resets that.
 * @internal
 */
export class SpinBackoff {
  private failures = 0;
  private skips = 0;

  /**
   * @param graceMisses misses in a row that skip nothing. A spin whose miss
   * means a wake-up (the reader's spin before sleeping) gets 1: under load
   * one miss is usually the peer preempted by a third process (3-6 % of the
   * hand-off's spins), and skipping the 2 chances after it doubled the
   * arrivals through a wake-up. A peer starved on our CPU misses every spin,
   * so backing off is only one spin later.
   */
  /**
   * @param maxDoublings the skips double up to 2^maxDoublings chances (1024
   * by default; the readers' shared fresh backoff stays lower, see reader.ts).
   */
  constructor(
    private readonly graceMisses = 0,
    private readonly maxDoublings = 10,
  ) {}

  /** True if this chance should spin; false uses up one skipped chance. */
  take(): boolean {
    if (this.skips === 0) return true;
    this.skips--;
    return false;
  }

  succeeded(): void {
    this.failures = 0;
  }

  failed(): void {
    this.failures = Math.min(this.failures + 1, this.graceMisses + this.maxDoublings);
    this.skips = this.failures > this.graceMisses ? 1 << (this.failures - this.graceMisses) : 0;
  }
}
