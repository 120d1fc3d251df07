/**
 * What a process keeps of closed local connections for its next ones (a
 * server's recycled rings and regions: local_recycle.ts; a client's ring
 * mappings: local_ring_cache.ts): bounded in count, each entry freed once
 * unused for `idleMs`. Entries are kept oldest first, so in order of expiry,
 * and one unref'd timer serves them all (not one per entry: ~5 µs a
 * connection); it never keeps the process alive.
 * @internal
 */
export class ExpiringCache<T> {
  /** Oldest first: `expires` is performance.now() past which an entry is freed (a monotonic clock). */
  private readonly entries: { value: T; expires: number }[] = [];
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    private readonly max: number,
    private readonly idleMs: number,
    private readonly dispose: (value: T) => void,
  ) {}

  get size(): number {
    return this.entries.length;
  }

  /** The values kept, oldest first. */
  values(): T[] {
    return this.entries.map((e) => e.value);
  }

  /** Keeps `value` for `idleMs`; the oldest entry is freed first when `max` are kept. */
  add(value: T): void {
    if (this.entries.length >= this.max) this.dispose(this.entries.shift()!.value);
    this.entries.push({ value, expires: performance.now() + this.idleMs });
    this.arm();
  }

  /** How many kept values `match`. */
  count(match: (value: T) => boolean): number {
    return this.entries.reduce((n, e) => n + (match(e.value) ? 1 : 0), 0);
  }

  /** The newest value that matches, left in place, or null. */
  find(match: (value: T) => boolean): T | null {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      if (match(this.entries[i].value)) return this.entries[i].value;
    }
    return null;
  }

  /** Takes `value` out without freeing it (the caller owns it now); false if it is not kept. */
  remove(value: T): boolean {
    const i = this.entries.findIndex((e) => e.value === value);
    if (i < 0) return false;
    this.entries.splice(i, 1);
    return true;
  }

  /** The oldest value that matches, taken out (the caller owns it now), or null. */
  takeOldest(match: (value: T) => boolean): T | null {
    const i = this.entries.findIndex((e) => match(e.value));
    return i < 0 ? null : this.entries.splice(i, 1)[0].value;
  }

  /** The newest value that matches, taken out (the caller owns it now), or null. */
  take(match: (value: T) => boolean): T | null {
    const value = this.find(match);
    if (value !== null) this.remove(value);
    return value;
  }

  /** Frees the oldest value that matches. */
  dropOldest(match: (value: T) => boolean): void {
    const i = this.entries.findIndex((e) => match(e.value));
    if (i >= 0) this.dispose(this.entries.splice(i, 1)[0].value);
  }

  /** Frees every value that matches (all without `match`). */
  drop(match: (value: T) => boolean = () => true): void {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      if (match(this.entries[i].value)) this.dispose(this.entries.splice(i, 1)[0].value);
    }
    if (this.entries.length === 0 && this.sweeper !== null) {
      clearTimeout(this.sweeper);
      this.sweeper = null;
    }
  }

  private arm(): void {
    if (this.sweeper !== null || this.entries.length === 0) return;
    this.sweeper = setTimeout(this.sweep, Math.max(1, this.entries[0].expires - performance.now()));
    this.sweeper.unref();
  }

  private readonly sweep = (): void => {
    this.sweeper = null;
    const now = performance.now();
    while (this.entries.length > 0 && this.entries[0].expires <= now) this.dispose(this.entries.shift()!.value);
    this.arm();
  };
}
