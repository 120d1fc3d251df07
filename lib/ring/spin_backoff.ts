/**
 * When to spin before sleeping. A spin pays only if it usually finds what it
 * waits for, and only if it takes the CPU from no one: on a host with more
 * runnable tasks than CPUs, a spinning receiver may be holding the very CPU
 * its peer needs to produce the data.
 *
 * - A spin that finds nothing makes the next ones exponentially rarer (skip
 *   2, 4, ... 1024 chances).
 * - The recent hit rate (a moving average) decides what a success does: a
 *   connection whose spins mostly find data spins every time again; one whose
 *   spins often miss (a stream whose next bytes need a loop turn of ours
 *   first) keeps skipping, and spins every time again only once enough of its
 *   rare spins hit (a spin that misses half the time costs more CPU than
 *   the wake-ups it saves).
 * - No spin while the host has no spare CPU (see hostHasSpareCpu); such a
 *   chance is not counted as a miss.
 * @internal
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** A connection spins every time while at least this share of recent spins found data. */
const GOOD_HIT_RATE = 0.75;
/** Weight of the newest spin in the hit rate. */
const HIT_WEIGHT = 1 / 8;

export class SpinBackoff {
  private failures = 0;
  private skips = 0;
  private hitRate = 1;

  /** `spareCpu`: whether spinning now takes the CPU from no one (tests pass their own). */
  constructor(private readonly spareCpu: () => boolean = hostHasSpareCpu) {}

  /** True if this chance should spin; false uses up one skipped chance. */
  take(): boolean {
    if (this.skips > 0) {
      this.skips--;
      return false;
    }
    return this.spareCpu();
  }

  succeeded(): void {
    this.hitRate += (1 - this.hitRate) * HIT_WEIGHT;
    if (this.hitRate < GOOD_HIT_RATE) {
      this.skips = 1 << this.failures;
      return;
    }
    this.failures = 0;
    this.skips = 0;
  }

  failed(): void {
    this.hitRate -= this.hitRate * HIT_WEIGHT;
    this.failures = Math.min(this.failures + 1, 10);
    this.skips = 1 << this.failures;
  }
}

/** The host's run queue is looked at this often at most (ms). */
const SAMPLE_MS = 20;
const hostCpus = cpus().length || 1;
let sampledAt = -Infinity;
let spare = true;

/**
 * Whether every task runnable on the host right now (this process included)
 * has a CPU, from /proc/loadavg's count of runnable tasks (`3/467`: 3), read
 * at most every SAMPLE_MS (a read costs 15-50 µs on a busy host). True where
 * it cannot be read.
 */
export function hostHasSpareCpu(): boolean {
  const now = performance.now();
  if (now - sampledAt < SAMPLE_MS) return spare;
  sampledAt = now;
  spare = runnableFits(readLoadavg(), hostCpus);
  return spare;
}

function readLoadavg(): string {
  try {
    return readFileSync('/proc/loadavg', 'latin1');
  } catch {
    return '';
  }
}

/** From /proc/loadavg's text: are `runnable` tasks at most `cpuCount`? True if the text has no such field. */
export function runnableFits(loadavg: string, cpuCount: number): boolean {
  const m = /^\S+ \S+ \S+ (\d+)\//.exec(loadavg);
  return m === null || Number(m[1]) <= cpuCount;
}
