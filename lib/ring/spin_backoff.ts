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
    this.failures = Math.min(this.failures + 1, 10);
    this.skips = 1 << this.failures;
  }
}
