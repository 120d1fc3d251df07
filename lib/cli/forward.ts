/**
 * Moving bytes from one stream to another with backpressure (pipe() pauses
 * the source while the destination's buffer is full) and half-close (the
 * source's end becomes the destination's end, nothing more).
 * @internal
 */
import type { Readable, Writable } from 'node:stream';

/** Pipes `from` into `to`, calling `count(n)` for every chunk. */
export function forward(from: Readable, to: Writable, count: (n: number) => void): void {
  from.on('data', (chunk: Buffer) => count(chunk.length));
  from.pipe(to);
}
