/**
 * When to spin before sleeping. A spin that finds nothing (a slow peer, or a
 * peer that needs the CPU we are spinning on) makes the next ones rarer, but
 * only from the second such spin in a row: one miss is usually the peer being
 * preempted by someone else (7-15 % of spins under load), and skipping the
 * chances after it turned most of those into extra wake-ups. Misses in a row
 * (a peer starved on our CPU misses every spin) skip 2, 4, ... 1024 chances;
 * a spin that finds what it waited for resets that.
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
    this.failures = Math.min(this.failures + 1, MAX_FAILURES);
    this.skips = this.failures < 2 ? 0 : 1 << (this.failures - 1);
  }
}

/** Misses in a row counted: the 11th and later skip 1024 chances. */
const MAX_FAILURES = 11;
