/**
 * Ring sizes: bytes per direction, a power of two. The vchan layout stores
 * the size as an order (log2); Xen rings are limited to orders 10..20 by
 * libxenvchan, the local transport allows up to 2^26.
 * @internal
 */
import { invalidArgType, outOfRange } from '../errors';

/**
 * Default bytes per direction. Large enough that bulk streams rarely sleep:
 * a writer waiting for room is woken once half the ring is free, so it
 * refills 1 MiB per wake-up while the reader reads the other half (64 KiB
 * bulk: 17-19 % less CPU per MiB than 1 MiB rings woken on every read;
 * 4 MiB rings no better: docs/benchmark.md). Pages are touched only as
 * data flows through them.
 */
export const DEFAULT_RING_SIZE = 2 << 20;
/** Smallest ring xenring↔xenring connections use (out-of-page, so the extension area is free). */
export const MIN_RING_SIZE = 1 << 12;
export const MAX_LOCAL_RING_SIZE = 1 << 26;
export const MAX_XEN_RING_SIZE = 1 << 20;

/** Validates `ringSize` and returns its order; undefined means the default. */
export function ringOrder(ringSize: unknown, max: number, name = 'options.ringSize'): number {
  if (ringSize === undefined) ringSize = DEFAULT_RING_SIZE;
  if (typeof ringSize !== 'number') throw invalidArgType(name, 'of type number', ringSize);
  if (!Number.isInteger(ringSize) || ringSize < MIN_RING_SIZE || ringSize > max || (ringSize & (ringSize - 1)) !== 0) {
    throw outOfRange(name, `a power of two from ${MIN_RING_SIZE} to ${max}`, ringSize);
  }
  return Math.log2(ringSize);
}
